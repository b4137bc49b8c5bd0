//! History queries: runs with their drift, errors, steps and findings, read from the journal
//! one run at a time so memory stays bounded however long the history is.

use iade_journal::{DriftRow, Finding, ResourceError, RunFilter, RunId, RunRow, StepRow, Store};

use crate::session::{JournalLocation, stack_id};
use crate::{Error, stack_dir_of};

/// The journal of the stack at `path` (or the one given), for reading history; an error when
/// the stack has never been converged.
pub fn open_history(
    path: &std::path::Path,
    journal: Option<JournalLocation>,
) -> Result<Box<dyn Store>, Error> {
    let stack_dir = stack_dir_of(path);
    let location = journal.unwrap_or_else(|| JournalLocation::default_for(&stack_dir));
    if !location.exists() {
        return Err(Error::NoJournal(location.to_string()));
    }
    Ok(location.open(&stack_id(&stack_dir, &crate::runtime::host_id()))?)
}

/// A file's content kept before a change replaced it (`file { backup = true }`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Backup {
    /// When it was taken, in milliseconds since the Unix epoch.
    pub taken_ms: u64,
    pub size: u64,
    /// Where it is kept: `cp` it back to restore it.
    pub path: std::path::PathBuf,
}

/// The backups kept of a resource's file, newest first.
pub fn backups(path: &std::path::Path, journal: Option<JournalLocation>, resource: &str) -> Vec<Backup> {
    let stack_dir = stack_dir_of(path);
    let state = journal.unwrap_or_else(|| JournalLocation::default_for(&stack_dir)).state_dir(&stack_dir);
    let dir = iade_provider_local::backup_dir(&state, resource);
    let mut out: Vec<Backup> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let taken_ms = e.file_name().to_str()?.parse().ok()?;
                    Some(Backup { taken_ms, size: e.metadata().ok()?.len(), path: e.path() })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|b| std::cmp::Reverse(b.taken_ms));
    out
}

/// One run and everything recorded about it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    pub run: RunRow,
    pub drift: Vec<DriftRow>,
    pub errors: Vec<ResourceError>,
    pub steps: Vec<StepRow>,
    pub findings: Vec<Finding>,
}

/// Which runs to read.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Exactly this run.
    pub run: Option<RunId>,
    /// Only what concerns this resource (its drift, errors, steps and findings).
    pub resource: Option<String>,
    /// At most this many runs, newest first.
    pub limit: usize,
}

/// Reads one run whole.
pub fn record(store: &dyn Store, run: RunId) -> Result<Option<RunRecord>, Error> {
    let Some(row) = store.run(run)? else { return Ok(None) };
    Ok(Some(RunRecord {
        drift: store.drift(run)?,
        errors: store.errors(run)?,
        steps: store.steps(run)?,
        findings: store.findings(run)?,
        run: row,
    }))
}

/// Calls `each` with every run the query selects, newest first, one at a time. A run asked
/// for by id that does not exist is [`Error::NoSuchRun`].
pub fn history(
    store: &dyn Store,
    query: &HistoryQuery,
    mut each: impl FnMut(RunRecord),
) -> Result<(), Error> {
    let keep = |mut r: RunRecord| {
        if let Some(res) = &query.resource {
            r.drift.retain(|d| &d.resource == res);
            r.errors.retain(|e| &e.resource == res);
            r.steps.retain(|s| &s.resource == res);
            r.findings.retain(|f| f.subject.as_ref() == Some(res));
        }
        r
    };
    if let Some(id) = query.run {
        let r = record(store, id)?.ok_or(Error::NoSuchRun(id))?;
        each(keep(r));
        return Ok(());
    }
    let limit = if query.limit == 0 { 50 } else { query.limit };
    let page = limit.min(100);
    let mut before = None;
    let mut seen = 0;
    while seen < limit {
        let runs = store.runs(&RunFilter {
            limit: page.min(limit - seen),
            before,
            resource: query.resource.clone(),
        })?;
        let Some(last) = runs.last() else { break };
        before = Some(last.id);
        for row in runs {
            seen += 1;
            if let Some(r) = record(store, row.id)? {
                each(keep(r));
            }
        }
    }
    Ok(())
}

/// What the journal last saw of a stack, for an editor's live status: the newest run, the
/// drift it found and did not correct, the findings that fail, and the resources it corrected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveStatus {
    pub run: RunRow,
    pub drift: Vec<DriftRow>,
    pub findings: Vec<Finding>,
    /// Resources a step of that run corrected, with when.
    pub corrected: Vec<(String, i64)>,
}

/// The stack's live status, or `None` when it has no journal or no run yet.
pub fn live_status(store: &dyn Store) -> Result<Option<LiveStatus>, Error> {
    let runs = store.runs(&RunFilter { limit: 1, ..RunFilter::default() })?;
    let Some(run) = runs.into_iter().next() else { return Ok(None) };
    let drift = store.drift(run.id)?.into_iter().filter(|d| d.corrected_ms.is_none()).collect();
    let findings = store
        .findings(run.id)?
        .into_iter()
        .filter(|f| f.outcome == iade_journal::FindingOutcome::Fail)
        .collect();
    let corrected = store
        .steps(run.id)?
        .into_iter()
        .filter(|s| s.status == iade_journal::StepStatus::Done)
        .map(|s| (s.resource, s.finished_ms.unwrap_or(s.started_ms)))
        .collect();
    Ok(Some(LiveStatus { run, drift, findings, corrected }))
}
