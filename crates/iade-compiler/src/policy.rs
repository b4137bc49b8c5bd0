//! Policies: rules checked on intent, before anything changes.

use iade_diagnostics::codes;
use iade_intent::eval::Evaluator;
use iade_intent::ir::{CheckStmt, IrKind, ObjectSource};
use iade_intent::{Outcome, Value, Verdict};

use crate::db::Db;
use crate::diag::Diag;
use crate::eval::{CompilerEnv, eval_resources, find_resource};
use crate::items::Item;
use crate::lower::{LoweredKind, item_from_key, lower_item};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PolicyResult {
    pub passed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub diags: Vec<Diag>,
}

/// A top-level `for x in intent(kind) { … }` of a policy: checked one resource item at a
/// time (see [`policy_slice`]), so a change to one resource re-checks only its slice.
pub(crate) fn is_sliceable(stmt: &CheckStmt) -> Option<(&str, u32, &[CheckStmt])> {
    match stmt {
        CheckStmt::For { key: None, slot, iter, body } => match &iter.kind {
            IrKind::Objects { source: ObjectSource::Intent, kind, under: None } => Some((kind, *slot, body)),
            _ => None,
        },
        _ => None,
    }
}

#[salsa::tracked(returns(ref))]
pub fn check_policy(db: &dyn Db, item: Item) -> PolicyResult {
    let LoweredKind::Check(check) = &lower_item(db, item).kind else { return PolicyResult::default() };
    let env = CompilerEnv::new(db);
    let mut out = PolicyResult::default();
    let mut rest = Vec::new();
    for stmt in &check.body {
        if is_sliceable(stmt).is_some() {
            continue;
        }
        rest.push(stmt.clone());
    }
    let sliced = rest.len() < check.body.len();
    if sliced && db.once() {
        for chunk in chunks(db, item) {
            add(&mut out, policy_chunk(db, chunk));
        }
    } else if sliced {
        for &res in crate::graph::resource_items(db) {
            add(&mut out, policy_slice(db, SliceKey::new(db, item, res)));
        }
    }
    let rest_check = iade_intent::CheckIr { body: rest, ..(**check).clone() };
    let verdicts = Evaluator::new(&env, check.origin.clone(), check.slots).run_check(&rest_check);
    tally(db, &check.name, check.severity == iade_intent::Severity::Deny, verdicts, None, &mut out);
    out
}

/// A policy and an item of resources.
#[salsa::interned(unsafe(no_lifetime), revisions = usize::MAX, debug)]
pub struct SliceKey {
    #[returns(copy)]
    pub policy: Item,
    #[returns(copy)]
    pub resources: Item,
}

fn add(out: &mut PolicyResult, slice: &PolicyResult) {
    out.passed += slice.passed;
    out.failed += slice.failed;
    out.unknown += slice.unknown;
    out.diags.extend(slice.diags.iter().cloned());
}

/// The verdicts of a policy's `for x in intent(kind)` loops over the resources of one item.
#[salsa::tracked(returns(ref))]
pub fn policy_slice(db: &dyn Db, key: SliceKey) -> PolicyResult {
    slice(db, key.policy(db), key.resources(db))
}

/// Resource items per chunk in a database that compiles once (see [`policy_chunk`]).
const CHUNK: usize = 128;

/// A policy and a run of [`CHUNK`] resource items from `start` (in `resource_items` order).
#[salsa::interned(unsafe(no_lifetime), revisions = usize::MAX, debug)]
pub struct ChunkKey {
    #[returns(copy)]
    pub policy: Item,
    #[returns(copy)]
    pub start: u32,
}

/// A policy's chunks of resource items, in order.
pub(crate) fn chunks(db: &dyn Db, policy: Item) -> Vec<ChunkKey> {
    let n = crate::graph::resource_items(db).len();
    (0..n).step_by(CHUNK).map(|start| ChunkKey::new(db, policy, start as u32)).collect()
}

/// The slices of a run of resource items together: in a database that compiles once (the
/// stack is never edited), one query per [`CHUNK`] resource items instead of one each, which
/// cost more to record than to check.
#[salsa::tracked(returns(ref))]
pub fn policy_chunk(db: &dyn Db, key: ChunkKey) -> PolicyResult {
    let items = crate::graph::resource_items(db);
    let start = (key.start(db) as usize).min(items.len());
    let mut out = PolicyResult::default();
    for &res in &items[start..(start + CHUNK).min(items.len())] {
        add(&mut out, &slice(db, key.policy(db), res));
    }
    out
}

fn slice(db: &dyn Db, policy: Item, resources: Item) -> PolicyResult {
    let LoweredKind::Check(check) = &lower_item(db, policy).kind else { return PolicyResult::default() };
    let env = CompilerEnv::new(db);
    let mut out = PolicyResult::default();
    for stmt in &check.body {
        let Some((kind, slot, body)) = is_sliceable(stmt) else { continue };
        let objects: Vec<Value> = crate::eval::evaluated_values(db, resources)
            .filter(|(_, v)| matches!(v, Value::Resource(r) if *r.kind == *kind))
            .map(|(_, v)| v.clone())
            .collect();
        if objects.is_empty() {
            continue;
        }
        let verdicts = Evaluator::new(&env, check.origin.clone(), check.slots).run_for_each(
            &check.origin,
            slot,
            body,
            &objects,
        );
        tally(
            db,
            &check.name,
            check.severity == iade_intent::Severity::Deny,
            verdicts,
            Some(resources),
            &mut out,
        );
    }
    out
}

/// Counts the verdicts and reports the failures; `item` is the item whose resources they
/// judged, if one did (a slice's), where a failure's resource is looked for first.
fn tally(
    db: &dyn Db,
    policy: &str,
    deny: bool,
    verdicts: Vec<Verdict>,
    item: Option<Item>,
    out: &mut PolicyResult,
) {
    let check_name = policy;
    for v in verdicts {
        match &v.outcome {
            Outcome::Pass => out.passed += 1,
            Outcome::Fail => {
                out.failed += 1;
                out.diags.push(violation(db, check_name, deny, &v, item));
            }
            Outcome::Unknown(reason) if reason.contains(iade_intent::eval::POISONED) && v.error.is_none() => {
                // The compile error behind it is reported already.
                out.unknown += 1;
            }
            Outcome::Unknown(reason) => {
                out.unknown += 1;
                let d = match &v.error {
                    Some(e) => Diag::new(codes::E0207, e.message.clone())
                        .primary(&e.origin, e.span, "while checking this")
                        .help_opt(e.help.clone()),
                    None => {
                        let subject = v.subject.as_deref().map(|s| format!(" for `{s}`")).unwrap_or_default();
                        Diag::new(codes::W0402, format!("policy `{check_name}` cannot decide{subject}: {reason}"))
                            .primary(&v.origin, v.span, "unknown, not passed")
                            .help("set the field in the resource so the policy can check it, or accept that it is checked only on observation")
                    }
                };
                out.diags.push(d);
            }
        }
    }
}

fn violation(db: &dyn Db, policy: &str, deny: bool, v: &Verdict, item: Option<Item>) -> Diag {
    let subject = v.subject.as_deref().map(|s| format!(" `{s}`")).unwrap_or_default();
    let verb = if deny { "denies" } else { "warns about" };
    let message = v.message.clone().unwrap_or_else(|| match &v.rule {
        Some((name, _, _)) => {
            let shown = item_from_key(db, name)
                .map(|i| i.name(db).trim_start_matches("rule:").to_string())
                .unwrap_or_default();
            format!("rule `{shown}` does not hold")
        }
        None => "the requirement does not hold".into(),
    });
    let code = if deny { codes::E0401 } else { codes::W0401 };
    let mut d = Diag::new(code, format!("policy `{policy}` {verb}{subject}: {message}"));
    // Point at the attribute whose intended value failed, where it was declared.
    let mut pointed = false;
    for (id, field) in &v.reads {
        // Most often in the item judged: the stack's index of ids is not built for it.
        let judged =
            item.and_then(|i| eval_resources(db, i).resources.iter().find(|r| *r.id == **id).cloned());
        let Some(r) = judged.or_else(|| find_resource(db, id)) else { continue };
        if let Some((value, span)) = r.attr(field) {
            d = d.primary(&r.origin, span, format!("{field} is {value}"));
            pointed = true;
            break;
        }
    }
    if pointed {
        d = d.secondary(&v.origin, v.span, format!("required by policy `{policy}`"));
    } else {
        d = d.primary(&v.origin, v.span, format!("required by policy `{policy}`"));
    }
    if let Some((name, origin, span)) = &v.rule {
        let shown = item_from_key(db, name)
            .map(|i| i.name(db).trim_start_matches("rule:").to_string())
            .unwrap_or_default();
        d = d.secondary(origin, *span, format!("rule `{shown}` does not hold"));
    }
    for e in &v.evidence {
        d = d.note(format!("`{}` is {}", e.text, e.value));
    }
    d.help(if deny {
        "change the intent so the rule holds; a denied stack is never applied"
    } else {
        "this policy only warns; nothing is blocked"
    })
}
