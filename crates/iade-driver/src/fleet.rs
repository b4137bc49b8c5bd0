//! Questions about a fleet, asked of the journal its engines share: how each stack stands,
//! and one stack's history by name.

use iade_journal::{StackId, Store};

use crate::Error;
use crate::session::JournalLocation;

pub use iade_journal_postgres::StackStatus;

/// Every stack of a shared journal, by name then host.
pub fn fleet_status(location: &JournalLocation) -> Result<Vec<StackStatus>, Error> {
    match location {
        JournalLocation::Postgres { url, ca } => Ok(iade_journal_postgres::fleet_status(url, ca.as_deref())?),
        JournalLocation::Sqlite(_) => {
            Err(Error::Io("a fleet's status is read from a shared journal (postgres://…)".into()))
        }
    }
}

/// The journal of stack `NAME` or `NAME@HOST` in a shared journal. A name alone must be one
/// host's: with several, the error lists them.
pub fn open_fleet_stack(location: &JournalLocation, stack: &str) -> Result<Box<dyn Store>, Error> {
    let id = match stack.rsplit_once('@') {
        Some((name, host)) => StackId { name: name.to_string(), host: host.to_string() },
        None => {
            let hosts: Vec<String> = fleet_status(location)?
                .into_iter()
                .filter(|s| s.stack.name == stack)
                .map(|s| s.stack.host)
                .collect();
            match hosts.as_slice() {
                [host] => StackId { name: stack.to_string(), host: host.clone() },
                [] => {
                    return Err(Error::Load {
                        message: format!("no stack `{stack}` in the journal at {location}"),
                        help: "`iade status` lists the fleet's stacks".into(),
                    });
                }
                many => {
                    return Err(Error::Load {
                        message: format!("stack `{stack}` runs on {} hosts", many.len()),
                        help: format!(
                            "say which: {}",
                            many.iter()
                                .map(|h| format!("--stack {stack}@{h}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
            }
        }
    };
    Ok(location.open(&id)?)
}
