//! The journal contract: the [`Store`] trait and its typed rows, with a conformance suite that
//! every implementation must pass. No SQL lives here: the embedded SQLite journal is
//! `iade-journal-sqlite`, and a shared PostgreSQL journal implements the same trait.
//!
//! A journal is a **history, never a source of truth**: nothing read from it decides what the
//! environment looks like; a resumed run re-observes. It records runs, steps (the intent before
//! the side effect, the outcome after), the drift and errors each observation found, findings,
//! and two kinds of obligations: pending refreshes and the identities the stack applied.
//!
//! **Invariant:** every write of a run is conditional on the lease epoch the run holds,
//! checked in the same transaction, so an engine that lost its lease cannot write over the one
//! that took it.

#[cfg(feature = "conformance")]
pub mod conformance;
mod types;

use std::time::Duration;

pub use types::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("the lease was taken over by another engine (epoch {0} is no longer current)")]
    LeaseLost(Epoch),
    #[error("journal `{location}` was written by a newer iade (schema {found}, this one knows {known})")]
    TooNew { location: String, found: i64, known: i64 },
    #[error("journal `{location}` is damaged: {detail}")]
    Corrupt { location: String, detail: String },
    #[error("journal `{location}`: {message}")]
    Backend {
        location: String,
        message: String,
        /// Whether trying again may succeed (a busy database, a lost connection).
        transient: bool,
    },
}

pub type Result<T> = std::result::Result<T, JournalError>;

/// Milliseconds since the Unix epoch. Journals read the clock only to timestamp what they
/// record; nothing evaluates it.
#[expect(clippy::disallowed_methods, reason = "the journal timestamps events; evaluation never reads it")]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A stream of "the journal changed" notices, for a language server or a watcher that shows
/// live status. Dropping it stops the notices.
pub struct Subscription {
    pub changes: std::sync::mpsc::Receiver<()>,
    /// Whatever produces the notices (a filesystem watcher, a listening connection).
    pub keep: Box<dyn Send>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

/// The whole journal contract, for one stack. The engine and the driver use nothing else, so
/// any implementation that passes [`conformance`] can take the embedded one's place.
pub trait Store: Send {
    /// Where the journal is, as shown in messages (a path or a URL without its password).
    fn location(&self) -> String;
    /// The stack this journal belongs to.
    fn stack(&self) -> &StackId;

    // The lease.

    /// Takes the lease when it is free, expired, or held by an engine `gone` says is dead.
    /// The epoch grows with every take.
    fn acquire_lease(&mut self, claim: &LeaseClaim, gone: &dyn Fn(&Holder) -> bool) -> Result<LeaseOutcome>;
    /// Extends the lease; [`JournalError::LeaseLost`] if another engine took it.
    fn renew_lease(&mut self, epoch: Epoch, ttl: Duration) -> Result<()>;
    fn release_lease(&mut self, epoch: Epoch) -> Result<()>;
    fn holder(&self) -> Result<Option<Holder>>;

    // A run, in the order the protocol writes it.

    /// Runs left `running` by an engine that is gone, and their unfinished steps.
    fn interrupted(&self) -> Result<Interrupted>;
    /// Marks interrupted runs as such and settles their unfinished steps; in the same
    /// transaction, records the refreshes that steps found done (by observation) notified.
    fn settle_interrupted(
        &mut self,
        epoch: Epoch,
        runs: &[RunId],
        steps: &[(StepId, StepStatus)],
        notified: &[PendingRefresh],
    ) -> Result<()>;
    /// Begins a run with what its observation found, in one transaction.
    fn begin_run(&mut self, epoch: Epoch, start: &RunStart) -> Result<RunId>;
    /// Commits the intents of a wave, before any of their effects starts, with the drift and
    /// errors that observing the wave's resources again found.
    fn record_intents(
        &mut self,
        epoch: Epoch,
        run: RunId,
        steps: &[StepIntent],
        drift: &[Drift],
        errors: &[ResourceError],
    ) -> Result<Vec<StepId>>;
    /// Commits a wave's outcomes and the obligations they create or clear, in one transaction,
    /// after the effects are durable.
    fn record_outcomes(&mut self, epoch: Epoch, run: RunId, wave: &WaveOutcome) -> Result<()>;
    /// Finishes a run with its summary and its controls' findings, in one transaction.
    fn finish_run(
        &mut self,
        epoch: Epoch,
        run: RunId,
        status: RunStatus,
        summary: &RunSummary,
        findings: &[Finding],
    ) -> Result<()>;

    // Obligations.

    fn pending_refreshes(&self) -> Result<Vec<PendingRefresh>>;
    fn applied(&self) -> Result<Vec<AppliedIdentity>>;

    // Pass requests from a one-shot `converge` to a watching engine.

    fn request_pass(&mut self, request: &PassRequest) -> Result<RequestId>;
    fn pending_requests(&self) -> Result<Vec<(RequestId, PassRequest)>>;
    fn answer_requests(&mut self, answers: &[(RequestId, RequestAnswer)]) -> Result<()>;
    fn request_answer(&self, request: RequestId) -> Result<Option<RequestAnswer>>;

    // History.

    /// Runs, newest first.
    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>>;
    fn run(&self, id: RunId) -> Result<Option<RunRow>>;
    fn steps(&self, run: RunId) -> Result<Vec<StepRow>>;
    fn drift(&self, run: RunId) -> Result<Vec<DriftRow>>;
    fn errors(&self, run: RunId) -> Result<Vec<ResourceError>>;
    fn findings(&self, run: RunId) -> Result<Vec<Finding>>;

    // Upkeep.

    /// Removes old history as `retention` says; never an obligation.
    fn prune(&mut self, retention: &Retention) -> Result<PruneReport>;
    /// Problems the backend's own consistency check finds; empty when there are none.
    fn check_integrity(&self) -> Result<Vec<String>>;
    /// Notices of changes made by any engine, for live views.
    fn subscribe(&self) -> Result<Subscription>;
}
