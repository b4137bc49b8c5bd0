//! Observation and diff: what differs between intent and the environment, right now.

use std::collections::{BTreeMap, BTreeSet};

use iade_intent::{Node, SourceLoc};
use iade_provider::{Change, Observed, ProviderError, Target};
use serde::Serialize;

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
    /// An exec whose check fails: its apply will run.
    Run,
    /// An observe-only resource differs from its intent: reported, never changed.
    Drift,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::None => " ",
            Action::Create => "+",
            Action::Update | Action::Run => "~",
            Action::Delete => "-",
            Action::Drift => "!",
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
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    pub field: String,
    /// As written in iade (`0o644`, `"text"`), or a description when the value is not shown
    /// (`7 bytes, sha256 68f01b…` for file contents); `null` when absent.
    pub observed: Option<String>,
    pub intended: String,
    /// Where the intended value was declared; `null` for a kind default.
    pub source: Option<SourceLoc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedResource {
    pub id: String,
    pub kind: String,
    pub action: Action,
    pub manage: String,
    pub declared: SourceLoc,
    pub changes: Vec<PlannedChange>,
    /// Why the resource could not be observed, when it could not.
    pub error: Option<String>,
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
}

/// The result of one observation pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Every resource observed, sorted by id.
    pub resources: Vec<PlannedResource>,
}

impl Plan {
    pub fn pending(&self) -> impl Iterator<Item = &PlannedResource> {
        self.resources.iter().filter(|r| r.action != Action::None)
    }

    pub fn errors(&self) -> impl Iterator<Item = &PlannedResource> {
        self.resources.iter().filter(|r| r.error.is_some())
    }

    /// Whether anything differs (including observe-only drift).
    pub fn has_drift(&self) -> bool {
        self.pending().next().is_some()
    }
}

/// Observes every resource of the stack (or only those in `only`) and diffs it.
pub fn plan(stack: &Stack<'_>, env: &Env<'_>, only: Option<&BTreeSet<String>>) -> Plan {
    let nodes: Vec<&Node> =
        stack.graph.nodes.iter().filter(|n| only.is_none_or(|o| o.contains(&n.id))).collect();
    let observed = observe(&nodes, env);
    let cx = env.context();
    let mut resources = Vec::with_capacity(nodes.len());
    for (node, result) in nodes.iter().zip(observed) {
        let t = target(node);
        let provider = node.provider_type.as_deref().and_then(|p| env.providers.get(p));
        let mut r = PlannedResource {
            id: node.id.clone(),
            kind: node.kind.clone(),
            action: Action::None,
            manage: node.manage.clone(),
            declared: node.declared.clone(),
            changes: Vec::new(),
            error: None,
            observed: None,
            target: t.clone(),
            provider: node.provider_type.clone().unwrap_or_default(),
        };
        match (result, provider) {
            (Err(e), _) => r.error = Some(e.message),
            (Ok(_), None) => r.error = Some("no provider".into()),
            (Ok(obs), Some(p)) => {
                let changes = p.diff(&node.kind, &t, &obs, &cx);
                r.action = action(node, &t, &obs, &changes);
                r.changes = changes.into_iter().map(|c| planned(node, c)).collect();
                r.observed = Some(obs);
            }
        }
        resources.push(r);
    }
    Plan { resources }
}

fn action(node: &Node, target: &Target, observed: &Observed, changes: &[Change]) -> Action {
    if changes.is_empty() {
        return Action::None;
    }
    if node.manage == "observe" {
        return Action::Drift;
    }
    if node.kind == "exec" {
        return Action::Run;
    }
    match (target.wants_present(), observed) {
        (false, _) => Action::Delete,
        (true, Observed::Absent) => Action::Create,
        (true, Observed::Present(_)) => Action::Update,
    }
}

fn planned(node: &Node, c: Change) -> PlannedChange {
    let source = node.attrs.get(&c.field).and_then(|a| a.source.clone());
    let (observed, intended) = match c.shown {
        Some(shown) => shown,
        None => (c.observed.map(|v| v.to_string()), c.intended.to_string()),
    };
    PlannedChange { field: c.field, observed, intended, source }
}

/// Observes nodes through their providers: batched per kind, at most `parallelism` calls at
/// once. One result per node, in order.
pub(crate) fn observe(nodes: &[&Node], env: &Env<'_>) -> Vec<Result<Observed, ProviderError>> {
    // Batches of one provider and one kind; each remembers where its results go.
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        groups.entry((n.provider_type.clone().unwrap_or_default(), n.kind.clone())).or_default().push(i);
    }
    let mut batches: Vec<(String, String, Vec<usize>)> = Vec::new();
    for ((provider, kind), idx) in groups {
        for chunk in idx.chunks(BATCH) {
            batches.push((provider.clone(), kind.clone(), chunk.to_vec()));
        }
    }
    let targets: Vec<Target> = nodes.iter().map(|n| target(n)).collect();
    let cx = env.context();
    let results = parallel_map(&batches, env.parallelism, |(provider, kind, idx)| {
        let Some(p) = env.providers.get(provider) else {
            let e = ProviderError::permanent(format!("no provider `{provider}` in this build of iade"));
            return idx.iter().map(|_| Err(e.clone())).collect::<Vec<_>>();
        };
        let batch: Vec<&Target> = idx.iter().map(|&i| &targets[i]).collect();
        let mut out = p.observe(kind, &batch, &cx);
        out.resize_with(idx.len(), || {
            Err(ProviderError::permanent("the provider returned too few observations"))
        });
        out
    });
    let mut out: Vec<Option<Result<Observed, ProviderError>>> = (0..nodes.len()).map(|_| None).collect();
    for ((_, _, idx), rs) in batches.iter().zip(results) {
        for (&i, r) in idx.iter().zip(rs) {
            out[i] = Some(r);
        }
    }
    out.into_iter().map(|r| r.unwrap_or_else(|| Err(ProviderError::permanent("not observed")))).collect()
}
