//! Compliance: the stack's controls evaluated on what was observed — managed resources and
//! objects discovered under a path — by the same evaluator policies use on intent.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use iade_intent::eval::Evaluator;
use iade_intent::ir::ObjectSource;
use iade_intent::{Node, Outcome, Program, ResourceValue, RuleIr, Value, Verdict};
use iade_journal::{Finding, FindingOutcome};
use iade_provider::{Fields, Observed};
use serde::Serialize;

use crate::plan::Plan;
use crate::{Env, Stack};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ComplianceReport {
    pub passed: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Failures a waiver in force covers: reported, not counted as failures.
    pub waived: usize,
    /// Failures and unknowns, as the journal keeps them (passes are counted, not listed).
    pub findings: Vec<Finding>,
}

fn resource_value(program: &Program, id: &str, kind: &str, fields: Fields) -> Value {
    let schema = program.kinds.get(kind).cloned().unwrap_or_default();
    // A resource value's field names are shared strings; a provider reports owned ones.
    let fields = fields.into_iter().map(|(k, v)| (Arc::from(k), v)).collect();
    Value::Resource(Arc::new(ResourceValue { id: Arc::from(id), kind: Arc::from(kind), fields, schema }))
}

/// Discovered objects by kind and path, so one pass sweeps each path once.
type Sweeps = BTreeMap<(String, String), Result<Vec<Value>, String>>;

/// Answers a control's questions from observation (or, for the intent check, from intent).
struct ControlEnv<'a> {
    stack: &'a Stack<'a>,
    env: &'a Env<'a>,
    /// Managed resources as observed (or intended), by id.
    values: HashMap<String, Value>,
    /// Managed resources as intended: what `intent(kind)` lists.
    intended: HashMap<String, Value>,
    /// Managed resource ids by kind and canonical identity, so a discovered object that is
    /// managed carries its resource id.
    managed: HashMap<(String, Fields), String>,
    on_intent: bool,
    cache: RefCell<Sweeps>,
}

impl iade_intent::Env for ControlEnv<'_> {
    fn global(&self, name: &str) -> Value {
        self.stack
            .program
            .globals
            .get(name)
            .cloned()
            .unwrap_or_else(|| Value::unknown(format!("`{name}` has no value")))
    }

    fn resource(&self, id: &str) -> Option<Value> {
        Some(
            self.values
                .get(id)
                .cloned()
                .unwrap_or_else(|| Value::unknown(format!("`{id}` was not observed"))),
        )
    }

    fn resource_by_name(&self, kind: &str, name: &str) -> Option<Value> {
        self.resource(&format!("{kind}.{name}"))
    }

    fn rule(&self, name: &str) -> Option<Arc<RuleIr>> {
        self.stack.program.rules.get(name).cloned()
    }

    fn objects(&self, source: ObjectSource, kind: &str, under: Option<&str>) -> Result<Vec<Value>, String> {
        if source == ObjectSource::Intent || self.on_intent {
            // Managed resources of the kind (under the location, when one is given).
            let cx = self.env.context();
            let mut out = Vec::new();
            for n in self.stack.graph.nodes.iter().filter(|n| n.kind == kind) {
                let inside = match (under, self.env.provider(n)) {
                    (None, _) => true,
                    (Some(u), Some(p)) => p.contains(kind, &n.identity, u, &cx),
                    (Some(_), None) => false,
                };
                let pool = if source == ObjectSource::Intent { &self.intended } else { &self.values };
                if inside && let Some(v) = pool.get(&n.id) {
                    out.push(v.clone());
                }
            }
            return Ok(out);
        }
        // Without `under`, a sweep covers the stack directory, never the whole machine.
        let key = (kind.to_string(), under.unwrap_or(".").to_string());
        if let Some(hit) = self.cache.borrow().get(&key) {
            return hit.clone();
        }
        let result = self.discover(kind, under.unwrap_or("."));
        self.cache.borrow_mut().insert(key, result.clone());
        result
    }

    fn include(&self, _: &iade_intent::Origin, _: &str) -> Result<Value, String> {
        Err("include() is evaluated by the compiler, not in controls".into())
    }
}

impl ControlEnv<'_> {
    fn discover(&self, kind: &str, under: &str) -> Result<Vec<Value>, String> {
        let provider_name = self
            .stack
            .program
            .providers
            .get(kind)
            .cloned()
            .ok_or_else(|| format!("no provider serves kind `{kind}`"))?;
        let provider = self
            .env
            .providers
            .get(&provider_name)
            .ok_or_else(|| format!("no provider `{provider_name}` in this build"))?;
        let cx = self.env.context();
        let found = provider
            .discover(kind, under, &cx)
            .map_err(|e| format!("cannot observe {kind} under {under}: {e}"))?;
        Ok(found
            .into_iter()
            .map(|d| {
                let identity = provider.canonical_identity(kind, &d.identity, &cx);
                match self.managed.get(&(kind.to_string(), identity)) {
                    // What was just discovered is at least as fresh as the run's observation
                    // (another resource's correction may have changed this object).
                    Some(id) => match self.stack.graph.node(id) {
                        Some(n) if !self.on_intent => observed_value(self.stack, self.env, n, d.fields),
                        _ => self
                            .values
                            .get(id)
                            .cloned()
                            .unwrap_or_else(|| resource_value(self.stack.program, id, kind, d.fields)),
                    },
                    None => {
                        resource_value(self.stack.program, &format!("{kind}[{}]", d.name), kind, d.fields)
                    }
                }
            })
            .collect())
    }
}

/// A node's identity as its provider knows it in the environment.
fn canonical(env: &Env<'_>, n: &Node) -> Fields {
    match env.provider(n) {
        Some(p) => p.canonical_identity(&n.kind, &n.identity, &env.context()),
        None => n.identity.clone(),
    }
}

fn managed(stack: &Stack<'_>, env: &Env<'_>) -> HashMap<(String, Fields), String> {
    stack.graph.nodes.iter().map(|n| ((n.kind.clone(), canonical(env, n)), n.id.clone())).collect()
}

/// A value observed where the intent holds a secret is a secret too (a symlink's target, the
/// digest of a secret content): it is compared, never shown.
fn as_secret(v: &Value) -> Value {
    match v {
        Value::Secret(_) => v.clone(),
        other => Value::Secret(Arc::new(iade_intent::SecretValue::hidden(
            other.as_text().unwrap_or_else(|| other.to_string()),
        ))),
    }
}

fn observed_values(stack: &Stack<'_>, env: &Env<'_>, plan: &Plan) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for r in &plan.resources {
        if let (Some(Observed::Present(fields)), Some(n)) = (r.observed(), stack.graph.node(&r.id)) {
            out.insert(r.id.clone(), observed_value(stack, env, n, fields.clone()));
        }
    }
    out
}

/// A managed resource's observed fields as a value: where its intent holds a secret, the
/// observed field (and what a provider derives from it) is a secret too.
fn observed_value(stack: &Stack<'_>, env: &Env<'_>, n: &Node, mut fields: Fields) -> Value {
    for name in n.attrs.iter().filter(|(_, a)| a.value.contains_secret()).map(|(k, _)| k) {
        let derived = env.provider(n).map_or(&[][..], |p| p.derived_fields(&n.kind, name));
        for f in std::iter::once(name.as_str()).chain(derived.iter().copied()) {
            if let Some(v) = fields.get_mut(f) {
                *v = as_secret(v);
            }
        }
    }
    fields.extend(canonical(env, n));
    resource_value(stack.program, &n.id, &n.kind, fields)
}

fn intended_values(stack: &Stack<'_>, env: &Env<'_>) -> HashMap<String, Value> {
    stack
        .graph
        .nodes
        .iter()
        .map(|n| {
            let mut fields: Fields = n.attrs.iter().map(|(k, a)| (k.clone(), a.value.clone())).collect();
            fields.extend(canonical(env, n));
            (n.id.clone(), resource_value(stack.program, &n.id, &n.kind, fields))
        })
        .collect()
}

/// Evaluates every control on the observed state of `plan` (after corrections, when the
/// caller re-observed what it changed).
pub fn evaluate_controls(stack: &Stack<'_>, env: &Env<'_>, plan: &Plan) -> ComplianceReport {
    let mut report = ComplianceReport::default();
    if stack.program.controls.is_empty() {
        return report;
    }
    let managed = managed(stack, env);
    let intended_map = intended_values(stack, env);
    let observed = ControlEnv {
        stack,
        env,
        values: observed_values(stack, env, plan),
        intended: intended_map.clone(),
        managed: managed.clone(),
        on_intent: false,
        cache: RefCell::new(BTreeMap::new()),
    };
    let intended = ControlEnv {
        stack,
        env,
        values: intended_map.clone(),
        intended: intended_map,
        managed,
        on_intent: true,
        cache: RefCell::new(BTreeMap::new()),
    };
    for control in &stack.program.controls {
        let verdicts = Evaluator::new(&observed, control.origin.clone(), control.slots).run_check(control);
        let mut on_intent: Option<HashMap<Arc<str>, Outcome>> = None;
        for v in verdicts {
            match v.outcome {
                Outcome::Pass => report.passed += 1,
                Outcome::Fail => {
                    report.failed += 1;
                    // For a managed subject: does its intent pass the same check?
                    let compliant = match &v.subject {
                        Some(s) if stack.graph.node(s).is_some() => {
                            let map = on_intent.get_or_insert_with(|| {
                                Evaluator::new(&intended, control.origin.clone(), control.slots)
                                    .run_check(control)
                                    .into_iter()
                                    .filter_map(|v| v.subject.clone().map(|s| (s, v.outcome)))
                                    .collect()
                            });
                            match map.get(&**s) {
                                Some(Outcome::Pass) => Some(true),
                                Some(Outcome::Fail) => Some(false),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    let mut f = finding(stack.program, control, &v, FindingOutcome::Fail, compliant);
                    let waiver = stack.program.waivers.iter().find(|w| {
                        w.control == control.name && v.subject.as_deref() == Some(w.subject.as_str())
                    });
                    if let Some(w) = waiver {
                        let message = f.message.clone().unwrap_or_else(|| "the control does not hold".into());
                        if today() <= w.until {
                            report.failed -= 1;
                            report.waived += 1;
                            f.outcome = FindingOutcome::Waived;
                            f.message = Some(format!("{message} (waived until {}: {})", w.until, w.reason));
                        } else {
                            f.message = Some(format!(
                                "{message} (its waiver expired after {}: {})",
                                w.until, w.reason
                            ));
                        }
                    }
                    report.findings.push(f);
                }
                Outcome::Unknown(_) => {
                    report.unknown += 1;
                    report.findings.push(finding(stack.program, control, &v, FindingOutcome::Unknown, None));
                }
            }
        }
    }
    report
}

fn finding(
    program: &Program,
    control: &iade_intent::CheckIr,
    v: &Verdict,
    outcome: FindingOutcome,
    intent_compliant: Option<bool>,
) -> Finding {
    let message = match (&v.outcome, &v.message) {
        (Outcome::Unknown(reason), _) => Some(format!("unknown: {reason}")),
        (_, Some(m)) => Some(m.clone()),
        (_, None) => v.rule.as_ref().map(|(name, _, _)| {
            format!("rule `{}` does not hold", name.rsplit("rule:").next().unwrap_or(name))
        }),
    };
    Finding {
        control: control.name.clone(),
        severity: control.severity,
        subject: v.subject.as_deref().map(str::to_string),
        outcome,
        message,
        evidence: v.evidence.iter().map(|e| format!("`{}` is {}", e.text, e.value)).collect(),
        intent_compliant,
        location: program.location(&v.origin, v.span),
    }
}

/// Today's date in UTC, `YYYY-MM-DD`, to judge waivers by. Evaluation never sees it.
#[expect(clippy::disallowed_methods, reason = "waivers expire at run time; evaluation stays free of clocks")]
fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    civil_date((secs / 86_400) as i64)
}

/// The date of a day number since 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn day_numbers_become_dates() {
        assert_eq!(super::civil_date(0), "1970-01-01");
        assert_eq!(super::civil_date(19_782), "2024-02-29");
        assert_eq!(super::civil_date(20_787), "2026-11-30");
    }
}
