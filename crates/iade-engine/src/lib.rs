//! The engine: observe → diff → plan → correct, durably.
//!
//! It reconciles an [`IntentGraph`] against the environment through providers, journaling
//! every correction through the [`Store`](iade_journal::Store) contract. **Invariant:** the
//! engine never depends on the compiler, the syntax or a journal implementation, and names no
//! provider, kind or identity field: what a change does, how an identity compares and where an
//! object lies all come from the provider. So crash-resume and "no plan without observation"
//! are testable with an in-memory provider. **Invariant:** no plan is computed without
//! observing the environment in the same run: [`plan`] always starts with a fresh observation,
//! and nothing read from the journal stands in for one.

mod compliance;
mod converge;
mod events;
mod graph;
mod plan;
mod removal;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use iade_intent::{IntentGraph, Node, Program};
use iade_provider::{Context, Provider, Secrets, Target};

pub use compliance::{ComplianceReport, evaluate_controls};
pub use converge::{
    FAILPOINTS, Failpoint, Options as ConvergeOptions, ResumeReport, RunReport, StepReport, Timings, converge,
};
pub use events::{Event, Events, NoEvents};
pub use graph::dependency_closure;
pub use plan::{Action, Plan, PlanSummary, PlannedChange, PlannedRefresh, PlannedResource, plan};
pub use removal::{Proof, Removal};

/// The providers available to a run, by the provider type kinds bind to.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Providers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, provider: Arc<dyn Provider>) -> Self {
        self.by_name.insert(provider.name().to_string(), provider);
        self
    }

    /// Serves `name` with `provider` (an in-memory provider standing in for `local`).
    pub fn with_as(mut self, name: &str, provider: Arc<dyn Provider>) -> Self {
        self.by_name.insert(name.to_string(), provider);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn Provider>)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// What every run needs: providers, secrets, where the stack is, how wide to go, and where its
/// events go.
pub struct Env<'a> {
    /// The stack's name: what ownership marks this run writes and accepts say.
    pub stack: &'a str,
    pub providers: &'a Providers,
    pub secrets: &'a dyn Secrets,
    pub stack_dir: PathBuf,
    /// At most this many provider calls at once.
    pub parallelism: usize,
    pub cancelled: &'a AtomicBool,
    pub events: &'a dyn Events,
    /// Whether plans carry unified diffs of text content.
    pub diffs: bool,
    /// The journal's directory, for what providers keep (backups); `None` for a plan.
    pub state_dir: Option<PathBuf>,
    /// The run's lease, checked before every effect; `None` for a plan.
    pub lease: Option<&'a iade_journal::LeaseClock>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("stack_dir", &self.stack_dir)
            .field("parallelism", &self.parallelism)
            .finish_non_exhaustive()
    }
}

impl Env<'_> {
    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            stack: self.stack,
            secrets: self.secrets,
            stack_dir: &self.stack_dir,
            cancelled: self.cancelled,
            diffs: self.diffs,
            state_dir: self.state_dir.as_deref(),
        }
    }

    pub(crate) fn provider(&self, node: &Node) -> Option<&Arc<dyn Provider>> {
        node.provider_type.as_deref().and_then(|p| self.providers.get(p))
    }
}

/// The provider target of a graph node: identity and managed attributes.
pub fn target(node: &Node) -> Target {
    Target {
        intended: node.attrs.iter().map(|(k, a)| (k.clone(), a.value.clone())).collect(),
        ..identity_target(node)
    }
}

/// A node's target without its intended values: what a provider needs to find the object.
pub(crate) fn identity_target(node: &Node) -> Target {
    Target {
        id: node.id.clone(),
        kind: node.kind.clone(),
        instance: node.provider.clone(),
        identity: node.identity.clone(),
        intended: iade_provider::Fields::new(),
    }
}

/// The program's kinds and the graph's node of a resource, as the run sees them, with the
/// journal's obligations (objects applied, refreshes pending) for a `plan`; `converge` reads
/// them from its journal itself.
pub struct Stack<'a> {
    pub graph: &'a IntentGraph,
    pub program: &'a Program,
    /// Objects the stack applied (orphan candidates, ownership where no mark can prove it).
    pub applied: &'a [iade_journal::AppliedIdentity],
    /// Refreshes notified earlier and not yet run.
    pub pending_refreshes: &'a [iade_journal::PendingRefresh],
    /// Whether objects the stack applied and no longer declares are deleted.
    pub prune: bool,
}

impl<'a> Stack<'a> {
    pub fn new(graph: &'a IntentGraph, program: &'a Program) -> Stack<'a> {
        Stack { graph, program, applied: &[], pending_refreshes: &[], prune: false }
    }

    /// With the journal's obligations, as `plan` reads them.
    pub fn with_obligations(
        mut self,
        applied: &'a [iade_journal::AppliedIdentity],
        pending_refreshes: &'a [iade_journal::PendingRefresh],
    ) -> Stack<'a> {
        self.applied = applied;
        self.pending_refreshes = pending_refreshes;
        self
    }

    pub fn pruning(mut self, prune: bool) -> Stack<'a> {
        self.prune = prune;
        self
    }
}

impl std::fmt::Debug for Stack<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("resources", &self.graph.nodes.len()).finish_non_exhaustive()
    }
}

/// Runs `f` over `items` on at most `width` threads, keeping the order of results.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    width: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if items.is_empty() {
        return Vec::new();
    }
    let width = width.clamp(1, items.len());
    if width == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(width);
    std::thread::scope(|s| {
        let handles: Vec<_> =
            items.chunks(chunk).map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>())).collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}
