//! The driver: everything the CLI and the language server share. It loads a stack (from disk
//! or with unsaved buffers as overlays), registers the providers, holds a [`Session`] (lock,
//! lease, heartbeat, journal), runs one-shot checks, plans and converges, keeps a stack
//! converged ([`watch`]), asks a watching engine for a pass, and reads history.
//!
//! It returns typed results and reports progress as [`Event`]s to a [`Sink`]. **It never
//! prints and never picks an exit code**: rendering and exit codes belong to the shells
//! (`iade-cli`, `iade-lsp`). It owns its compiler database for as long as the caller keeps the
//! [`LoadedStack`], and frees it when dropped (a long-lived server loads many).

mod events;
pub mod files;
mod history;
mod load;
mod run;
mod runtime;
mod session;
mod watch;

pub use events::{Event, PassKind, Quiet, Sink};
pub use history::{HistoryQuery, RunRecord, history, record};
pub use load::{
    CheckSummary, Compiled, LoadOptions, LoadedStack, absolute, display_path, params_from_env, stack_dir_of,
};
pub use run::{Converged, Detection, RunOptions, converge, detect, intent_digest, plan, scope};
pub use runtime::{EnvSecrets, Runtime, builtin_providers, cancel_on_signal, host_name};
pub use session::{JournalLocation, LEASE_TTL, Session, SessionError, SessionOptions, Wait, stack_id};
pub use watch::{WatchEnd, WatchOptions, watch};

use iade_diagnostics::Diagnostic;
use iade_journal::{JournalError, RunId};

/// Why the driver could not do what was asked. Each variant carries what a shell needs to say
/// so and to choose an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stack could not be read.
    #[error("{message}")]
    Load { message: String, help: String },
    /// `--param` names the stack does not declare (a usage error).
    #[error("the stack has no param {}", unknown.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "))]
    UnknownParams { unknown: Vec<String>, declared: Vec<String> },
    /// The stack does not compile (or a `deny` policy fails): its diagnostics.
    #[error("the stack has errors")]
    Diagnostics(Vec<Diagnostic>),
    /// `--target` names that are no resource or instance of the stack.
    #[error("no resource {}", unknown.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "))]
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
