//! The journal's typed rows: ids, lease, runs, steps, drift, errors, findings, obligations and
//! pass requests. What crosses the [`Store`](crate::Store) boundary is one of these, never a
//! string to parse back.

use std::time::Duration;

use iade_intent::{Severity, SourceLoc};
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A run, numbered from 1 in the order runs began.
    RunId
);
id_type!(
    /// A step of a run.
    StepId
);
id_type!(
    /// The lease's generation: it grows with every take, and every write of a run is
    /// conditional on the epoch the run holds.
    Epoch
);
id_type!(
    /// A one-shot `converge`'s request for a pass by the watching engine.
    RequestId
);

/// Which stack a journal (or a row of a shared one) belongs to: its name and the host it
/// runs on. Nothing may assume it is a path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StackId {
    pub name: String,
    pub host: String,
}

impl std::fmt::Display for StackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.name, self.host)
    }
}

/// Who holds a stack's lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub since_ms: i64,
    pub expires_ms: i64,
    /// A `--watch` engine, which a one-shot `converge` asks for a pass instead of waiting.
    pub watch: bool,
}

/// An engine asking for the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseClaim {
    pub pid: u32,
    pub host: String,
    pub ttl: Duration,
    pub watch: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    Acquired { epoch: Epoch },
    Held(Holder),
}

/// Why a run was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// A full pass over every resource (or the `--target`ed ones).
    Converge,
    /// A pass over the resources a filesystem event touched.
    Event,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Converge => "converge",
            RunMode::Event => "event",
        }
    }

    pub fn parse(text: &str) -> Option<RunMode> {
        [RunMode::Converge, RunMode::Event].into_iter().find(|m| m.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Every step done and every resource observed.
    Done,
    /// A step failed or a resource could not be observed.
    Failed,
    /// Its engine stopped before it finished; a later run resumed it.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        [RunStatus::Running, RunStatus::Done, RunStatus::Failed, RunStatus::Interrupted]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What a step does to its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    Create,
    Update,
    Delete,
    /// A command pair's `apply` (its `check` failed).
    Run,
    /// A refresh a change notified (an `exec`'s `refresh` command).
    Refresh,
    /// An existing object the stack declares, without an ownership mark, gets this stack's
    /// mark (nothing else about it differs; not drift).
    Adopt,
}

impl StepAction {
    pub fn as_str(self) -> &'static str {
        match self {
            StepAction::Create => "create",
            StepAction::Update => "update",
            StepAction::Delete => "delete",
            StepAction::Run => "run",
            StepAction::Refresh => "refresh",
            StepAction::Adopt => "adopt",
        }
    }

    pub fn parse(text: &str) -> Option<StepAction> {
        [
            StepAction::Create,
            StepAction::Update,
            StepAction::Delete,
            StepAction::Run,
            StepAction::Refresh,
            StepAction::Adopt,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

impl std::fmt::Display for StepAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Started,
    Done,
    /// Found already done when a resumed run re-observed it: not repeated.
    DoneByObservation,
    Failed,
    Skipped,
    /// Left unfinished by a crash and not visible on re-observation: re-planned.
    Abandoned,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Started => "started",
            StepStatus::Done => "done",
            StepStatus::DoneByObservation => "done_by_observation",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(text: &str) -> Option<StepStatus> {
        [
            StepStatus::Started,
            StepStatus::Done,
            StepStatus::DoneByObservation,
            StepStatus::Failed,
            StepStatus::Skipped,
            StepStatus::Abandoned,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for StepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attribute a step changes, as a plan shows it (values rendered, secrets redacted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepChange {
    pub field: String,
    /// `None` when the object is absent or the field was not observed.
    pub observed: Option<String>,
    pub intended: String,
}

/// A step about to run: what it will do and how to recognize it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepIntent {
    pub resource: String,
    pub action: StepAction,
    /// A digest of the intended attributes (secrets excluded), so a resumed run can tell
    /// whether the intent is still the same.
    pub digest: String,
    /// Resource, action and digest together: the same step in another run has the same key.
    pub idempotency_key: String,
    pub changes: Vec<StepChange>,
}

/// The end of what a command printed (secrets scrubbed), kept with its step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }
}

/// How a step ended, recorded after its effect is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepOutcome {
    pub step: StepId,
    pub status: StepStatus,
    pub error: Option<String>,
    pub output: Option<Output>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRow {
    pub id: StepId,
    pub run: RunId,
    pub resource: String,
    pub action: StepAction,
    pub digest: String,
    pub idempotency_key: String,
    pub status: StepStatus,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub error: Option<String>,
    pub output: Option<Output>,
    pub changes: Vec<StepChange>,
}

/// Drift one observation found on one attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub resource: String,
    pub field: String,
    /// As a plan shows it; `None` when the object is absent or the value is not known.
    pub observed: Option<String>,
    pub intended: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftRow {
    pub run: RunId,
    pub resource: String,
    pub field: String,
    pub observed: Option<String>,
    pub intended: String,
    pub detected_ms: i64,
    pub corrected_ms: Option<i64>,
}

/// A resource the run could not observe, or an attribute it could not decide, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceError {
    pub resource: String,
    /// The attribute that could not be decided (a content whose secret is not set); `None`
    /// when the whole resource could not be observed.
    pub field: Option<String>,
    pub message: String,
}

/// How a control judged one subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingOutcome {
    Fail,
    Unknown,
    /// A failure a `waive` covers until its expiry.
    Waived,
}

impl FindingOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingOutcome::Fail => "fail",
            FindingOutcome::Unknown => "unknown",
            FindingOutcome::Waived => "waived",
        }
    }

    pub fn parse(text: &str) -> Option<FindingOutcome> {
        [FindingOutcome::Fail, FindingOutcome::Unknown, FindingOutcome::Waived]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// A control's verdict on one subject that did not pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub control: String,
    pub severity: Severity,
    /// The resource id (`file.config`) or discovered object (`file[/etc/x]`); `None` for a
    /// check on the stack as a whole.
    pub subject: Option<String>,
    pub outcome: FindingOutcome,
    pub message: Option<String>,
    /// The values of the sub-expressions that decided it, as ``"`f.mode` is 0o666"``.
    pub evidence: Vec<String>,
    /// For a failure on a managed resource: whether its intent passes the same check (then
    /// reality drifted) or not (then the intent is wrong).
    pub intent_compliant: Option<bool>,
    /// The `require` that failed.
    pub location: Option<SourceLoc>,
}

/// Counts of a run, kept with it for `history` and fleet queries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSummary {
    /// Resources the run looked at.
    pub resources: usize,
    /// Resources found different from their intent.
    pub drifted: usize,
    /// Steps that changed the environment.
    #[serde(alias = "done")]
    pub changed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Resources that could not be observed, or attributes that could not be decided.
    #[serde(alias = "observe_errors")]
    pub unobservable: usize,
    /// Objects the run refused to touch: another stack's, or protected ones it would delete.
    pub refused: usize,
    /// Refreshes that ran (changes notified them).
    pub refreshed: usize,
    pub controls: ControlCounts,
    pub resumed: ResumeCounts,
}

impl RunSummary {
    /// Whether the run had errors: a failed step or something it could not observe.
    pub fn has_errors(&self) -> bool {
        self.failed > 0 || self.unobservable > 0 || self.refused > 0
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlCounts {
    pub passed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub waived: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResumeCounts {
    pub done_by_observation: usize,
    pub abandoned: usize,
}

/// What a run starts with: its mode and what its observation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStart {
    pub mode: RunMode,
    pub pid: u32,
    pub host: String,
    pub drift: Vec<Drift>,
    pub errors: Vec<ResourceError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: RunId,
    pub mode: RunMode,
    pub status: RunStatus,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub pid: u32,
    pub host: String,
    pub summary: RunSummary,
}

/// A refresh a change notified and that has not yet succeeded: an obligation that survives
/// crashes and failed runs until its success is recorded.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PendingRefresh {
    /// The resource to refresh.
    pub resource: String,
    /// The resource whose change notified it.
    pub notified_by: String,
    pub run: RunId,
}

/// An object this stack applied: where its mark cannot prove ownership, this record does,
/// and it names the orphan candidates when the source no longer declares the resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedIdentity {
    pub resource: String,
    pub kind: String,
    /// The provider type that serves the kind, and the instance (`provider = NAME`), if any.
    pub provider: String,
    pub instance: Option<String>,
    /// The identity fields, as JSON (strings and numbers).
    #[serde(deserialize_with = "identity_or_null")]
    pub identity: Identity,
    /// Declared with `protect = true` when it was applied: never deleted, even once the
    /// source no longer declares it.
    #[serde(default)]
    pub protected: bool,
}

/// An applied object's identity fields by name, in their JSON form; a map of a few entries.
pub type Identity = iade_intent::VecMap<String, serde_json::Value>;

/// Reads an identity as the journal stores it: a JSON object (`null`, which an identity that
/// could not be converted was written as, reads as none).
pub fn identity_from_json(text: &str) -> Result<Identity, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let identity = identity_or_null(&mut de)?;
    de.end()?;
    Ok(identity)
}

fn identity_or_null<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Identity, D::Error> {
    Ok(<Option<Identity> as serde::Deserialize>::deserialize(de)?.unwrap_or_default())
}

/// Everything one wave's outcomes commit together, after the wave's effects are durable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaveOutcome {
    pub steps: Vec<StepOutcome>,
    /// Resources whose drift (found by this run) the wave corrected.
    pub corrected: Vec<String>,
    /// Refreshes the wave's changes notified.
    pub notified: Vec<PendingRefresh>,
    /// Resources whose pending refreshes the wave ran successfully.
    pub refreshed: Vec<String>,
    /// Objects the wave applied (recorded or updated).
    pub applied: Vec<AppliedIdentity>,
    /// Resources whose objects the wave deleted (their applied records go).
    pub deleted: Vec<String>,
}

/// What a one-shot `converge` asks of a watching engine: a pass over exactly this intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassRequest {
    /// A digest of the compiled intent, the secret names it uses and the run options; the
    /// watcher serves the request only when its own digest is the same.
    pub digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestAnswer {
    Served(RunId),
    /// The watcher enforces another intent, with the reason.
    Refused(String),
}

/// Which runs `history` reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFilter {
    /// Newest first, at most this many.
    pub limit: usize,
    /// Only runs older than this one (for paging).
    pub before: Option<RunId>,
    /// Only runs in which this resource drifted, had a step or a finding, or an error.
    pub resource: Option<String>,
}

impl Default for RunFilter {
    fn default() -> Self {
        RunFilter { limit: 50, before: None, resource: None }
    }
}

/// How much history to keep. Obligations (pending refreshes, applied identities) are never
/// pruned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Step detail (steps, drift, errors, findings) of runs beyond the newest this many goes.
    pub detail_runs: usize,
    /// Step detail older than this goes, whatever the count.
    pub detail_age: Duration,
    /// Runs themselves (their summaries) older than this go.
    pub summary_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Retention {
            detail_runs: 1000,
            detail_age: Duration::from_secs(30 * DAY),
            summary_age: Duration::from_secs(365 * DAY),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Runs whose step detail was removed.
    pub detail_runs: usize,
    /// Runs removed altogether.
    pub runs: usize,
}

/// Runs a crashed engine left `running`, and their unfinished steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interrupted {
    pub runs: Vec<RunId>,
    pub steps: Vec<StepRow>,
}

impl Interrupted {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.steps.is_empty()
    }
}

/// An engine's own account of its lease on the monotonic clock: when it asked for the lease
/// or a renewal that succeeded, plus four fifths of the lifetime (the rest covers clocks that
/// differ between hosts). An engine checks it before every effect on the environment, so one
/// that was paused (SIGSTOP, a frozen VM) past its lease changes nothing when it wakes, even
/// before the journal refuses its next write.
#[derive(Debug)]
pub struct LeaseClock {
    ttl: Duration,
    deadline: std::sync::Mutex<std::time::Instant>,
}

impl LeaseClock {
    /// A lease asked for at `asked` (before the request was sent) and granted.
    pub fn new(asked: std::time::Instant, ttl: Duration) -> LeaseClock {
        LeaseClock { ttl, deadline: std::sync::Mutex::new(asked + ttl * 4 / 5) }
    }

    /// A renewal asked for at `asked` succeeded.
    pub fn renewed(&self, asked: std::time::Instant) {
        let mut d = self.deadline.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *d = (*d).max(asked + self.ttl * 4 / 5);
    }

    /// Whether the lease is still surely held.
    pub fn holds(&self) -> bool {
        std::time::Instant::now() < *self.deadline.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}
