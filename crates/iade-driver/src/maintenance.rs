//! Upkeep of a stack's journal: check it, prune its history, recover from damage.

use std::path::Path;

use iade_journal::{PruneReport, Retention};
use iade_journal_sqlite::Recovery;

use crate::Error;
use crate::session::{JournalLocation, Wait, lock_stack, stack_id};

fn location(stack_dir: &Path, journal: Option<JournalLocation>) -> Result<JournalLocation, Error> {
    let location = journal.unwrap_or_else(|| JournalLocation::default_for(stack_dir));
    if !location.exists() {
        return Err(Error::NoJournal(location.to_string()));
    }
    Ok(location)
}

/// The problems the journal's own consistency check finds (none: an empty list).
pub fn check_journal(path: &Path, journal: Option<JournalLocation>) -> Result<Vec<String>, Error> {
    let stack_dir = crate::stack_dir_of(path);
    let location = location(&stack_dir, journal)?;
    let store = location.open(&stack_id(&stack_dir, &crate::host_id()))?;
    Ok(store.check_integrity()?)
}

/// Removes old history as `retention` says; obligations are kept.
pub fn prune_journal(
    path: &Path,
    journal: Option<JournalLocation>,
    retention: &Retention,
) -> Result<PruneReport, Error> {
    let stack_dir = crate::stack_dir_of(path);
    let location = location(&stack_dir, journal)?;
    let mut store = location.open(&stack_id(&stack_dir, &crate::host_id()))?;
    Ok(store.prune(retention)?)
}

/// Moves a damaged journal aside and starts a fresh one with the obligations it still yields,
/// holding the stack's lock so no engine runs meanwhile.
pub fn recover_journal(path: &Path, journal: Option<JournalLocation>) -> Result<Recovery, Error> {
    let stack_dir = crate::stack_dir_of(path);
    let location = location(&stack_dir, journal)?;
    let lock = lock_stack(&stack_dir, None, Wait::No, &|| {})?;
    if lock.is_none() {
        return Err(Error::Io(
            "an engine is running on this stack: stop it before recovering its journal".into(),
        ));
    }
    Ok(location.recover(&stack_id(&stack_dir, &crate::host_id()))?)
}
