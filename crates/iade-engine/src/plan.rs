//! Observation and diff: what differs between intent and the environment, right now.

use std::collections::{BTreeMap, BTreeSet};

use iade_intent::{Manage, Node, SourceLoc, Value};
use iade_journal::StepAction;
use iade_provider::{Change, Mark, Observed, ProviderError, Target, Verb};
use serde::Serialize;

use crate::graph::Deps;
use crate::{Env, Stack, parallel_map, target};

/// How many objects one provider call observes.
const BATCH: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Nothing differs.
    None,
    Create,
    Update,
    Delete,
    /// A command runs to make it right (an exec whose check fails).
    Run,
    /// An observe-only resource differs from its intent: reported, never changed.
    Drift,
    /// Observed only after its dependencies are applied: it depends on pending changes, and
    /// observing it now would see the environment before them.
    Deferred,
    /// An existing object without an ownership mark gets this stack's (nothing else differs;
    /// not drift).
    Adopt,
    /// An object this stack applied and no longer declares, kept: `--prune` (or `stack {
    /// prune = true }`) deletes it.
    Orphan,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::None => " ",
            Action::Create => "+",
            Action::Update | Action::Run => "~",
            Action::Delete => "-",
            Action::Drift => "!",
            Action::Deferred => "…",
            Action::Adopt => "@",
            Action::Orphan => "?",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Run => "run",
            Action::Drift => "drift",
            Action::Deferred => "deferred",
            Action::Adopt => "adopt",
            Action::Orphan => "orphan",
        }
    }

    /// Whether a change of this kind notifies the resources in `notify`.
    pub fn notifies(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete | Action::Run)
    }

    /// The step a correction of this kind journals.
    pub fn step(self) -> Option<StepAction> {
        match self {
            Action::Create => Some(StepAction::Create),
            Action::Update => Some(StepAction::Update),
            Action::Delete => Some(StepAction::Delete),
            Action::Run => Some(StepAction::Run),
            Action::Adopt => Some(StepAction::Adopt),
            Action::None | Action::Drift | Action::Deferred | Action::Orphan => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    pub field: String,
    /// As written in iade (`0o644`, `"text"`), or a description when the value is not shown
    /// (`7 bytes, sha256 68f01b…` for file contents); `null` when absent or unknown.
    pub observed: Option<String>,
    pub intended: String,
    /// Where the intended value was declared; `null` for a kind default.
    pub source: Option<SourceLoc>,
    /// Why the field could not be compared, when it could not (a secret that is not set):
    /// such a field is reported and left alone while the rest is corrected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// A unified diff of text content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedResource {
    pub id: String,
    pub kind: String,
    pub action: Action,
    pub manage: Manage,
    pub declared: SourceLoc,
    /// The identity fields as shown (`path`, `name`): which object this is.
    pub identity: iade_intent::VecMap<String, String>,
    pub changes: Vec<PlannedChange>,
    /// Why the resource could not be observed, when it could not.
    pub error: Option<String>,
    /// Dependencies with pending changes: this resource is observed (again) after them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// The plan refuses to touch it: another stack's mark claims it, or it is protected and
    /// would be deleted. `error` says why.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// For an object the source does not declare: why it is removed (or kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removal: Option<crate::removal::Removal>,
    #[serde(skip)]
    pub(crate) observed: Option<Observed>,
    #[serde(skip)]
    pub(crate) target: Target,
    #[serde(skip)]
    pub(crate) provider: String,
}

impl PlannedResource {
    pub fn observed(&self) -> Option<&Observed> {
        self.observed.as_ref()
    }

    /// Whether correcting it changes the environment.
    pub fn is_pending(&self) -> bool {
        self.action.step().is_some()
    }

    /// Fields that could not be compared.
    pub fn unknown(&self) -> impl Iterator<Item = &PlannedChange> {
        self.changes.iter().filter(|c| c.unknown.is_some())
    }

    /// What could not be observed or compared, as the journal records it.
    pub fn problems(&self) -> Vec<iade_journal::ResourceError> {
        let whole = self.error.iter().map(|e| iade_journal::ResourceError {
            resource: self.id.clone(),
            field: None,
            message: e.clone(),
        });
        let fields = self.unknown().map(|c| iade_journal::ResourceError {
            resource: self.id.clone(),
            field: Some(c.field.clone()),
            message: c.unknown.clone().unwrap_or_default(),
        });
        whole.chain(fields).collect()
    }
}

/// A refresh the plan would run: notified by changes it makes, or pending from earlier runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedRefresh {
    pub resource: String,
    /// The resources whose changes notify it (in this plan or earlier runs).
    pub notified_by: Vec<String>,
    /// Whether an earlier run notified it and it has not run yet.
    pub pending: bool,
}

/// The result of one observation pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Every resource looked at, sorted by id.
    pub resources: Vec<PlannedResource>,
    /// Objects the source does not declare: a purged directory's undeclared entries (listed
    /// first), then the objects this stack applied and no longer declares.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removals: Vec<PlannedResource>,
    /// Refreshes this plan's changes would notify, and those pending from earlier runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refreshes: Vec<PlannedRefresh>,
}

/// A plan's counts, for its one-line summary and its exit code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    pub resources: usize,
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub run: usize,
    /// Observe-only resources that differ.
    pub drift: usize,
    pub deferred: usize,
    /// Resources that could not be observed, and attributes that could not be compared.
    pub unobservable: usize,
    /// Objects the plan refuses to touch (another stack's, or protected).
    pub refused: usize,
    /// Existing objects that get this stack's mark (not drift).
    pub adopt: usize,
    /// Objects this stack applied and no longer declares, kept without `--prune`.
    pub orphans: usize,
    /// Refreshes to run.
    pub refresh: usize,
}

impl std::fmt::Display for PlanSummary {
    /// `1 to create, 2 to update, 1 not observable`, or `nothing differs`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            (self.create, "to create"),
            (self.update, "to update"),
            (self.delete, "to delete"),
            (self.run, "to run"),
            (self.deferred, "to observe after their dependencies"),
            (self.drift, "drifted (observe only)"),
            (self.refresh, "to refresh"),
            (self.unobservable, "not observable"),
            (self.refused, "refused"),
            (self.orphans, "no longer declared (kept; --prune deletes)"),
            (self.adopt, "to mark as this stack's"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() { f.write_str("nothing differs") } else { f.write_str(&parts.join(", ")) }
    }
}

impl PlanSummary {
    pub fn has_errors(&self) -> bool {
        self.unobservable + self.refused > 0
    }

    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.delete + self.run + self.drift + self.deferred + self.refresh > 0
    }
}

impl Plan {
    /// Resources that differ: to correct, observe-only drift, or to observe after their
    /// dependencies.
    pub fn pending(&self) -> impl Iterator<Item = &PlannedResource> {
        self.resources.iter().filter(|r| !matches!(r.action, Action::None | Action::Adopt))
    }

    pub fn errors(&self) -> impl Iterator<Item = &PlannedResource> {
        self.resources.iter().chain(&self.removals).filter(|r| r.error.is_some())
    }

    /// Whether anything differs (including observe-only drift, deletions of what the source
    /// no longer declares, and refreshes to run).
    pub fn has_drift(&self) -> bool {
        self.pending().next().is_some()
            || self.removals.iter().any(|r| r.action == Action::Delete)
            || !self.refreshes.is_empty()
    }

    pub fn summary(&self) -> PlanSummary {
        let mut s = PlanSummary { resources: self.resources.len(), ..PlanSummary::default() };
        for r in self.resources.iter().chain(&self.removals) {
            match r.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Delete => s.delete += 1,
                Action::Run => s.run += 1,
                Action::Drift => s.drift += 1,
                Action::Deferred => s.deferred += 1,
                Action::Adopt => s.adopt += 1,
                Action::Orphan => s.orphans += 1,
                Action::None => {}
            }
            if r.refused {
                s.refused += 1;
            } else {
                s.unobservable += usize::from(r.error.is_some()) + r.unknown().count();
            }
        }
        s.refresh = self.refreshes.len();
        s
    }
}

/// Observes every resource of the stack (or only those in `only`) at once and diffs it; a
/// resource with a dependency that has pending changes is marked as observed after it, and
/// if it cannot be observed now it is [`Action::Deferred`] rather than an error. This is
/// `plan`'s view: it changes nothing, so it cannot wait for the dependencies.
pub fn plan(stack: &Stack<'_>, env: &Env<'_>, only: Option<&BTreeSet<String>>) -> Plan {
    let nodes: Vec<&Node> =
        stack.graph.nodes.iter().filter(|n| only.is_none_or(|o| o.contains(&n.id))).collect();
    let observed = observe(&nodes, env);
    let mut resources: Vec<PlannedResource> =
        nodes.iter().zip(observed).map(|(node, result)| planned(node, result, env)).collect();
    let deps = Deps::new(stack.graph);
    // In id order is not dependency order: settle every resource's dependencies first.
    let order = deps.order(&resources.iter().map(|r| r.id.as_str()).collect::<Vec<_>>());
    let index: BTreeMap<String, usize> =
        resources.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
    let mut waiting: BTreeSet<String> = BTreeSet::new();
    for id in order {
        let Some(&i) = index.get(&id) else { continue };
        let after: Vec<String> = deps
            .direct(&id)
            .iter()
            .filter(|d| {
                // A dependency being deleted goes after its dependents, not before.
                waiting.contains(**d)
                    || index
                        .get(**d)
                        .is_some_and(|&j| resources[j].is_pending() && resources[j].action != Action::Delete)
            })
            .map(|d| d.to_string())
            .collect();
        if after.is_empty() {
            continue;
        }
        waiting.insert(id.clone());
        let r = &mut resources[i];
        if r.error.is_some() {
            r.error = None;
            r.action = Action::Deferred;
            r.changes.clear();
        }
        r.after = after;
    }
    let removals = if only.is_none() { crate::removal::plan_removals(stack, env) } else { Vec::new() };
    let mut plan = Plan { resources, removals, refreshes: Vec::new() };
    plan.refreshes = planned_refreshes(stack, &plan, stack.pending_refreshes);
    plan
}

/// The refreshes a plan's changes notify, with those pending from earlier runs.
pub(crate) fn planned_refreshes(
    stack: &Stack<'_>,
    plan: &Plan,
    pending: &[iade_journal::PendingRefresh],
) -> Vec<PlannedRefresh> {
    let mut by_target: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
    for p in pending {
        if stack.graph.node(&p.resource).is_some() {
            let e = by_target.entry(p.resource.clone()).or_default();
            e.0.insert(p.notified_by.clone());
            e.1 = true;
        }
    }
    for r in plan.resources.iter().filter(|r| r.action.notifies()) {
        let Some(node) = stack.graph.node(&r.id) else { continue };
        for t in &node.notify {
            by_target.entry(t.clone()).or_default().0.insert(r.id.clone());
        }
    }
    by_target
        .into_iter()
        .map(|(resource, (by, pending))| PlannedRefresh {
            resource,
            notified_by: by.into_iter().collect(),
            pending,
        })
        .collect()
}

/// A resource not observed yet: it waits for `after`, dependencies with pending changes.
pub(crate) fn deferred(node: &Node, after: Vec<String>) -> PlannedResource {
    PlannedResource {
        id: node.id.clone(),
        kind: node.kind.clone(),
        action: Action::Deferred,
        manage: node.manage,
        declared: node.declared.clone(),
        identity: node.identity.iter().map(|(k, v)| (k.clone(), shown(v))).collect(),
        changes: Vec::new(),
        error: None,
        after,
        refused: false,
        removal: None,
        observed: None,
        target: target(node),
        provider: node.provider_type.clone().unwrap_or_default(),
    }
}

/// A resource as planned from one observation: its changes and what correcting it does.
pub(crate) fn planned(
    node: &Node,
    (result, mark): (Result<Observed, ProviderError>, Mark),
    env: &Env<'_>,
) -> PlannedResource {
    let provider = env.provider(node);
    let mut r = deferred(node, Vec::new());
    r.action = Action::None;
    if let Some(other) = other_owner(&result, &mark, env) {
        r.refused = true;
        let unmark = provider
            .map(|p| p.unmark_hint(&node.kind, &crate::target(node)))
            .unwrap_or_else(|| "remove the mark".to_string());
        r.error = Some(format!(
            "refused: it belongs to stack `{other}` (its ownership mark says so); iade leaves it alone: manage it in one stack only, or {unmark} to let this stack adopt it"
        ));
        r.observed = result.ok();
        return r;
    }
    let unmarked = mark == Mark::Unmarked;
    match (result, provider) {
        (Err(e), _) => r.error = Some(e.message),
        (Ok(_), None) => r.error = Some(format!("no provider `{}` in this build of iade", r.provider)),
        (Ok(obs), Some(p)) => {
            let cx = env.context();
            let changes = p.diff(&node.kind, &r.target, &obs, &cx);
            let known = changes.iter().any(|c| c.unknown.is_none());
            r.action = match (known, node.manage) {
                (false, _) => Action::None,
                (true, Manage::Observe) => Action::Drift,
                (true, Manage::Enforce) => match p.verb(&node.kind, &r.target, &obs) {
                    Verb::Create => Action::Create,
                    Verb::Update => Action::Update,
                    Verb::Delete => Action::Delete,
                    Verb::Run => Action::Run,
                },
            };
            r.changes = changes.into_iter().map(|c| planned_change(node, c)).collect();
            // An existing object without a mark is adopted: marked with the next write, or
            // alone when nothing else differs.
            if r.action == Action::None
                && unmarked
                && node.manage == Manage::Enforce
                && matches!(obs, Observed::Present(_))
                && r.target.wants_present()
            {
                r.action = Action::Adopt;
            }
            if r.action == Action::Delete && node.protect {
                r.refused = true;
                r.error = Some(
                    "refused: it is protected (`protect = true`) and its intent is `ensure = absent`: iade will not delete it; remove `protect` first"
                        .to_string(),
                );
                r.action = Action::None;
            }
            r.observed = Some(obs);
        }
    }
    r
}

/// The stack that owns an object found present, when its ownership mark names another one:
/// this stack refuses to manage it, but keeps what it observed.
pub(crate) fn other_owner<'a>(
    result: &Result<Observed, ProviderError>,
    mark: &'a Mark,
    env: &Env<'_>,
) -> Option<&'a str> {
    match (result, mark) {
        (Ok(Observed::Present(_)), Mark::Stack(other)) if other != env.stack => Some(other),
        _ => None,
    }
}

/// A value as an identity is shown: text without quotes, anything else as iade writes it.
fn shown(v: &Value) -> String {
    match v {
        Value::Secret(_) => "<redacted>".into(),
        other => other.as_text().unwrap_or_else(|| other.to_string()),
    }
}

/// A change as a plan shows it, for an object no resource declares.
pub(crate) fn planned_change_plain(c: Change) -> PlannedChange {
    let (observed, intended) = match c.shown {
        Some(shown) => shown,
        None => (c.observed.map(|v| v.to_string()), c.intended.to_string()),
    };
    PlannedChange { field: c.field, observed, intended, source: None, unknown: c.unknown, diff: c.diff }
}

fn planned_change(node: &Node, c: Change) -> PlannedChange {
    let source = node.attrs.get(&c.field).and_then(|a| a.source.clone());
    let (observed, intended) = match c.shown {
        Some(shown) => shown,
        None => (c.observed.map(|v| v.to_string()), c.intended.to_string()),
    };
    PlannedChange { field: c.field, observed, intended, source, unknown: c.unknown, diff: c.diff }
}

/// Observes nodes through their providers: batched per kind, at most `parallelism` calls at
/// once. One result per node, in order.
pub(crate) fn observe(nodes: &[&Node], env: &Env<'_>) -> Vec<(Result<Observed, ProviderError>, Mark)> {
    let targets: Vec<Target> = nodes.iter().map(|n| target(n)).collect();
    let providers: Vec<String> = nodes.iter().map(|n| n.provider_type.clone().unwrap_or_default()).collect();
    observe_targets(&targets, &providers, env)
}

/// Observes targets (and reads their ownership marks) through the providers named beside
/// them: batched per provider and kind, at most `parallelism` calls at once.
pub(crate) fn observe_targets(
    targets: &[Target],
    providers: &[String],
    env: &Env<'_>,
) -> Vec<(Result<Observed, ProviderError>, Mark)> {
    // Batches of one provider and one kind; each remembers where its results go.
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, t) in targets.iter().enumerate() {
        groups.entry((providers[i].clone(), t.kind.clone())).or_default().push(i);
    }
    let mut batches: Vec<(String, String, Vec<usize>)> = Vec::new();
    for ((provider, kind), mut idx) in groups {
        // Objects with neighbouring identities (the files of one directory) share a batch, so
        // a provider can reach them together.
        idx.sort_by_cached_key(|&i| {
            targets[i].identity.values().map(|v| v.as_text().unwrap_or_default()).collect::<Vec<_>>()
        });
        let size = env.providers.get(&provider).map_or(BATCH, |p| p.batch_size(&kind).max(1));
        for chunk in idx.chunks(size) {
            batches.push((provider.clone(), kind.clone(), chunk.to_vec()));
        }
    }
    let cx = env.context();
    let results = parallel_map(&batches, env.parallelism, |(provider, kind, idx)| {
        let Some(p) = env.providers.get(provider) else {
            let e = ProviderError::permanent(format!("no provider `{provider}` in this build of iade"));
            return idx.iter().map(|_| (Err(e.clone()), Mark::Unsupported)).collect::<Vec<_>>();
        };
        let batch: Vec<&Target> = idx.iter().map(|&i| &targets[i]).collect();
        let mut out = p.observe(kind, &batch, &cx);
        out.resize_with(idx.len(), || {
            Err(ProviderError::permanent("the provider returned too few observations"))
        });
        // An absent object carries no mark: only the present ones are asked for theirs.
        let present: Vec<&Target> = batch
            .iter()
            .zip(&out)
            .filter(|(_, o)| matches!(o, Ok(Observed::Present(_))))
            .map(|(t, _)| *t)
            .collect();
        let mut marks = if present.is_empty() { Vec::new() } else { p.marks(kind, &present, &cx) };
        marks.resize(present.len(), Mark::Unsupported);
        let mut marks = marks.into_iter();
        out.into_iter()
            .map(|o| {
                let mark = match o {
                    Ok(Observed::Present(_)) => marks.next().unwrap_or(Mark::Unsupported),
                    _ => Mark::Unsupported,
                };
                (o, mark)
            })
            .collect()
    });
    let mut out: Vec<Option<(Result<Observed, ProviderError>, Mark)>> =
        (0..targets.len()).map(|_| None).collect();
    for ((_, _, idx), rs) in batches.iter().zip(results) {
        for (&i, r) in idx.iter().zip(rs) {
            out[i] = Some(r);
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| (Err(ProviderError::permanent("not observed")), Mark::Unsupported)))
        .collect()
}
