//! Objects the source does not declare: the undeclared entries of a directory declared with
//! `purge = true`, and the objects this stack applied and no longer declares (orphans).
//!
//! **Invariant:** nothing is deleted that ownership does not prove. An orphan is deleted only
//! when its object exists and carries this stack's mark, or, where no mark is possible, when
//! the journal records that this stack applied it; an object another stack's mark claims is
//! never touched; a protected object is never deleted (the plan fails instead).

use std::collections::{BTreeSet, HashSet};

use iade_intent::{Manage, Node, SourceLoc, Value};
use iade_provider::{Change, Fields, Mark, Observed, Target};
use serde::Serialize;

use crate::plan::{Action, PlannedResource, observe_targets};
use crate::{Env, Stack, target};

/// Why an object the source does not declare is in the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Removal {
    /// An entry under a directory declared with `purge = true` that no resource declares.
    Purge { directory: String },
    /// An object this stack applied and no longer declares; `proof` says what proves it is
    /// this stack's (`None`: nothing does, so it is kept).
    Orphan { proof: Option<Proof> },
}

/// What proves that an object is this stack's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proof {
    /// Its ownership mark names this stack.
    Mark,
    /// It cannot carry a mark, and the journal records that this stack applied it.
    Journal,
}

struct Candidate {
    target: Target,
    provider: String,
    removal: Removal,
    protected: bool,
    declared: SourceLoc,
}

fn nowhere() -> SourceLoc {
    SourceLoc { file: std::sync::Arc::from(""), line: 0, column: 0, start: 0, end: 0 }
}

fn key(provider: &str, instance: Option<&str>, identity: &Fields) -> (String, String) {
    let text: Vec<String> = identity.iter().map(|(k, v)| format!("{k}={v}")).collect();
    (format!("{provider}\u{0}{}", instance.unwrap_or_default()), text.join("\u{0}"))
}

/// An identity as the journal keeps it (JSON), as fields.
fn identity_fields(json: &iade_journal::Identity) -> Fields {
    json.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect()
}

/// How deep an object lies: removals go deepest first (a directory after its entries).
pub(crate) fn depth(target: &Target) -> usize {
    target.identity.values().filter_map(Value::as_text).map(|t| t.matches('/').count()).max().unwrap_or(0)
}

/// The removals of a plan, observed now: purged entries first, then orphans, each deepest
/// first. Orphans are deleted only with `prune`.
pub(crate) fn plan_removals(stack: &Stack<'_>, env: &Env<'_>) -> Vec<PlannedResource> {
    let cx = env.context();
    let purges = |n: &Node| {
        n.manage == Manage::Enforce
            && matches!(n.attrs.get("purge").map(|a| &a.value), Some(Value::Bool(true)))
    };
    // The declared objects and the applied ones by identity serve only a purge.
    let purging = stack.graph.nodes.iter().any(purges);
    let mut declared: HashSet<(String, String)> = HashSet::new();
    let mut declared_objects: Vec<(String, String, Fields)> = Vec::new();
    for n in &stack.graph.nodes {
        let Some(provider) = n.provider_type.as_deref() else { continue };
        let Some(p) = env.providers.get(provider) else { continue };
        let canon = p.canonical_identity(&n.kind, &n.identity, &cx);
        declared.insert(key(provider, n.provider.as_deref(), &canon));
        if purging {
            declared_objects.push((provider.to_string(), n.kind.clone(), canon));
        }
    }
    // What the stack applied, by identity: a purged entry it applied keeps its resource id.
    let applied_by_key: std::collections::HashMap<(String, String), &iade_journal::AppliedIdentity> = stack
        .applied
        .iter()
        .filter(|_| purging)
        .filter_map(|a| {
            let p = env.providers.get(&a.provider)?;
            let canon = p.canonical_identity(&a.kind, &identity_fields(&a.identity), &cx);
            Some((key(&a.provider, a.instance.as_deref(), &canon), a))
        })
        .collect();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut problems: Vec<PlannedResource> = Vec::new();
    for n in stack.graph.nodes.iter().filter(|n| purges(n)) {
        let provider = n.provider_type.clone().unwrap_or_default();
        let Some(p) = env.providers.get(&provider) else { continue };
        let t = target(n);
        if !t.wants_present() {
            continue;
        }
        match p.purge_candidates(&n.kind, &t, &cx) {
            Ok(list) => {
                for c in list {
                    let canon = p.canonical_identity(&c.kind, &c.identity, &cx);
                    let k = key(&provider, c.instance.as_deref(), &canon);
                    if declared.contains(&k) || !seen.insert(k.clone()) {
                        continue;
                    }
                    let mut c = c;
                    let mut protected = false;
                    if let Some(a) = applied_by_key.get(&k) {
                        c.id = a.resource.clone();
                        protected = a.protected;
                    }
                    // An entry that holds a declared object stays (so does what leads to it).
                    let under = canon.values().find_map(Value::as_text).unwrap_or_default();
                    let holds_declared = declared_objects.iter().any(|(prov, kind, ident)| {
                        *prov == provider && *ident != canon && p.contains(kind, ident, &under, &cx)
                    });
                    if holds_declared {
                        continue;
                    }
                    candidates.push(Candidate {
                        target: c,
                        provider: provider.clone(),
                        removal: Removal::Purge { directory: n.id.clone() },
                        protected,
                        declared: n.declared.clone(),
                    });
                }
            }
            Err(e) => {
                let mut r = crate::plan::deferred(n, Vec::new());
                r.action = Action::None;
                r.error = Some(format!("cannot list what to purge: {}", e.message));
                r.removal = Some(Removal::Purge { directory: n.id.clone() });
                problems.push(r);
            }
        }
    }
    let protected_ids: BTreeSet<&str> =
        stack.applied.iter().filter(|a| a.protected).map(|a| a.resource.as_str()).collect();
    let mut orphans: Vec<Candidate> = Vec::new();
    for a in stack.applied {
        let Some(p) = env.providers.get(&a.provider) else { continue };
        let identity = identity_fields(&a.identity);
        let canon = p.canonical_identity(&a.kind, &identity, &cx);
        let k = key(&a.provider, a.instance.as_deref(), &canon);
        if declared.contains(&k) {
            continue;
        }
        if !seen.insert(k.clone()) {
            // Purge found it too (under its resource id).
            continue;
        }
        let mut intended = identity.clone();
        intended.insert("ensure".into(), Value::Enum("absent".into()));
        orphans.push(Candidate {
            target: Target {
                id: a.resource.clone(),
                kind: a.kind.clone(),
                instance: a.instance.clone(),
                identity,
                intended,
            },
            provider: a.provider.clone(),
            removal: Removal::Orphan { proof: None },
            protected: protected_ids.contains(a.resource.as_str()),
            declared: nowhere(),
        });
    }
    orphans
        .sort_by(|a, b| depth(&b.target).cmp(&depth(&a.target)).then_with(|| a.target.id.cmp(&b.target.id)));
    candidates.extend(orphans);
    let targets: Vec<Target> = candidates.iter().map(|c| c.target.clone()).collect();
    let providers: Vec<String> = candidates.iter().map(|c| c.provider.clone()).collect();
    let observed = observe_targets(&targets, &providers, env);
    let mut out = problems;
    for (c, (result, mark)) in candidates.into_iter().zip(observed) {
        let mut r = PlannedResource {
            id: c.target.id.clone(),
            kind: c.target.kind.clone(),
            action: Action::None,
            manage: Manage::Enforce,
            declared: c.declared,
            identity: c
                .target
                .identity
                .iter()
                .map(|(k, v)| (k.clone(), v.as_text().unwrap_or_else(|| v.to_string())))
                .collect(),
            changes: Vec::new(),
            error: None,
            after: Vec::new(),
            refused: false,
            removal: Some(c.removal.clone()),
            observed: None,
            target: c.target,
            provider: c.provider,
        };
        match result {
            Err(e) => r.error = Some(e.message),
            // Gone already: the journal forgets it.
            Ok(Observed::Absent) => r.observed = Some(Observed::Absent),
            Ok(obs @ Observed::Present(_)) => {
                r.observed = Some(obs);
                let ours = match &mark {
                    // Another stack's: never touched.
                    Mark::Stack(other) if other != env.stack => continue,
                    Mark::Stack(_) => Some(Proof::Mark),
                    Mark::Unsupported => Some(Proof::Journal),
                    Mark::Unmarked => None,
                };
                let delete = match &mut r.removal {
                    Some(Removal::Purge { .. }) => true,
                    Some(Removal::Orphan { proof }) => {
                        *proof = ours;
                        ours.is_some() && stack.prune
                    }
                    None => false,
                };
                let wanted = match &r.removal {
                    Some(Removal::Orphan { proof: None }) => Action::Orphan,
                    Some(Removal::Orphan { .. }) if !delete => Action::Orphan,
                    _ => Action::Delete,
                };
                if c.protected && (delete || matches!(r.removal, Some(Removal::Orphan { proof: Some(_) }))) {
                    r.refused = true;
                    r.error = Some(
                        "refused: it is protected (`protect = true` when it was applied) and the source no longer declares it: iade will not delete it; declare it again, or delete it by hand"
                            .to_string(),
                    );
                    out.push(r);
                    continue;
                }
                r.action = wanted;
                if wanted == Action::Delete {
                    r.changes = vec![crate::plan::planned_change_plain(Change::new(
                        "ensure",
                        Some(Value::Enum("present".into())),
                        Value::Enum("absent".into()),
                    ))];
                }
            }
        }
        out.push(r);
    }
    out
}
