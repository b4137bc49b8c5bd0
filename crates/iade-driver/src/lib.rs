//! The driver: everything the CLI and the language server share. It loads a stack (from disk
//! or with unsaved buffers as overlays), registers the providers, holds a [`Session`] (lock,
//! lease, heartbeat, journal), runs one-shot checks, plans and converges, keeps a stack
//! converged ([`watch`]), asks a watching engine for a pass, and reads history.
//!
//! It returns typed results and reports progress as [`Event`]s to a [`Sink`]. **It never
//! prints and never picks an exit code**: rendering and exit codes belong to the shells
//! (`iade-cli`, `iade-lsp`). It owns its compiler database for as long as the caller keeps the
//! [`LoadedStack`], and frees it when dropped (a long-lived server loads many).

pub mod cache;
mod events;
pub mod files;
mod fleet;
mod history;
mod import;
mod json;
mod junit;
mod load;
mod maintenance;
mod metrics;
mod run;
mod runtime;
mod sarif;
mod session;
mod tests;
pub mod text;
mod view;
mod watch;

pub use events::{Event, PassKind, Quiet, Sink};
pub use files::{absolute, display_path, stack_dir_of};
pub use fleet::{StackStatus, fleet_status, open_fleet_stack};
pub use history::{
    Backup, HistoryQuery, LiveStatus, RunRecord, backups, history, live_status, open_history, record,
};
pub use import::{ImportOptions, Imported, import, quote};
pub use json::{Document, write_history};
pub use junit::junit;
pub use load::{CheckSummary, Compiled, LoadOptions, LoadedStack, Snapshot, params_from_env};
pub use maintenance::{check_journal, prune_journal, recover_journal};
pub use metrics::{Metrics, Tee, UNHEALTHY_AFTER, serve as serve_metrics};
pub use run::{Converged, Detection, RunOptions, converge, detect, intent_digest, plan, scope};
pub use runtime::{EnvSecrets, Runtime, builtin_providers, cancel_on_signal, host_id, host_name};
pub use sarif::sarif;
pub use session::{JournalLocation, LEASE_TTL, Session, SessionError, SessionOptions, Wait, stack_id};
pub use tests::{TestFailure, TestOptions, TestReport, TestResult, run_tests, snapshot};
pub use view::{RunView, StepView};
pub use watch::{WatchEnd, WatchOptions, watch};

use iade_diagnostics::Diagnostic;
use iade_journal::{JournalError, RunId};

/// Why the driver could not do what was asked. Each variant carries what a shell needs to say
/// so ([`Error::help`]) and to choose an exit code ([`Error::is_usage`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stack could not be read.
    #[error("{message}")]
    Load { message: String, help: String },
    /// `--param` names the stack does not declare (a usage error).
    #[error("the stack has no param {} ({})", quoted(unknown), match declared.is_empty() {
        true => "it declares none".to_string(),
        false => format!("its params: {}", declared.join(", ")),
    })]
    UnknownParams { unknown: Vec<String>, declared: Vec<String> },
    /// The stack does not compile (or a `deny` policy fails): its diagnostics.
    #[error("nothing was observed or changed: the stack has errors")]
    Diagnostics(Vec<Diagnostic>),
    /// `--target` names that are no resource or instance of the stack.
    #[error("no resource {} in this stack", quoted(unknown))]
    UnknownTargets {
        unknown: Vec<String>,
        /// The ids closest to those given, likely what was meant.
        did_you_mean: Vec<String>,
    },
    #[error("no run {0} in the journal")]
    NoSuchRun(RunId),
    #[error("no journal at `{0}`: this stack has never been converged")]
    NoJournal(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Io(String),
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

impl Error {
    /// What to do about it, when there is something to say.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Load { help, .. } => Some(help.clone()),
            Error::UnknownParams { .. } => {
                Some("declare it with `param NAME: TYPE`, or check its spelling".into())
            }
            Error::UnknownTargets { did_you_mean, .. } if !did_you_mean.is_empty() => {
                Some(format!("did you mean {}?", quoted(did_you_mean)))
            }
            Error::UnknownTargets { .. } => Some("`iade graph --format json` lists every resource id".into()),
            Error::NoSuchRun(_) => Some("`iade history` lists the recent runs".into()),
            Error::NoJournal(_) => Some("run `iade converge` first".into()),
            Error::Journal(JournalError::LeaseLost(_)) => {
                Some("another engine took the stack over; `iade history` shows its runs".into())
            }
            Error::Journal(JournalError::Backend { location, transient: true, .. })
                if iade_journal_postgres::is_url(location) =>
            {
                Some("is the journal's server running and reachable? Check the URL (--journal or IADE_JOURNAL)".into())
            }
            Error::Journal(JournalError::Corrupt { .. }) => Some(
                "nothing was written into it; `iade journal recover` moves it aside and starts a fresh journal that keeps its obligations".into(),
            ),
            _ => None,
        }
    }

    /// Whether the request itself was wrong (a usage error), rather than the stack or the
    /// environment.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::UnknownParams { .. } | Error::UnknownTargets { .. })
    }
}
