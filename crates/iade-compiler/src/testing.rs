//! Running the `test` blocks of `*_test.iade` files: policies and expressions over the intent,
//! controls over the test's `observed` objects. Nothing touches the environment. Snapshots are
//! judged by the caller (they read and write files).

use std::collections::BTreeMap;
use std::sync::Arc;

use iade_intent::eval::{Env, Evaluator, TemplateError};
use iade_intent::ir::{CheckKind, ObjectSource, Origin, RuleIr};
use iade_intent::{Outcome, ResourceValue, Value, Verdict};

use crate::db::{Database, Db};
use crate::eval::CompilerEnv;
use crate::graph::stack_modules;
use crate::items::Item;
use crate::lower::test::{ExpectIr, Expected, TestIr};
use crate::lower::{LoweredKind, lower_item};
use crate::scope::own_scope;

/// A test of the stack, by name.
#[derive(Clone, Debug)]
pub struct TestCase {
    pub name: String,
    item: Item,
    test: Arc<TestIr>,
}

/// How one expectation went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectResult {
    /// Judged here: what was expected, whether it held, and what explains it.
    Judged { what: String, ok: bool, detail: Vec<String>, line: u32 },
    /// A snapshot of the rendered intent, for the caller to compare with the file.
    Snapshot { path: String, line: u32 },
}

/// The tests of the stack's files (test files are stack files when `iade test` loads them),
/// in source order.
pub fn test_cases(db: &Database) -> Vec<TestCase> {
    let db: &dyn Db = db;
    let mut out = Vec::new();
    for &m in stack_modules(db).iter().take(1) {
        for &item in &own_scope(db, m).items {
            if let LoweredKind::Test(t) = &lower_item(db, item).kind {
                out.push(TestCase { name: t.name.clone(), item, test: t.clone() });
            }
        }
    }
    out
}

impl TestCase {
    /// The params the test sets, as `--param` would give them.
    pub fn params(&self, db: &Database) -> Result<Vec<(String, String)>, String> {
        let env = CompilerEnv::new(db);
        let mut out = Vec::new();
        for (name, ir, _) in &self.test.params {
            let v = Evaluator::new(&env, self.test.origin.clone(), 0)
                .eval(ir)
                .map_err(|e| format!("`with param {name}`: {}", e.message))?;
            let text = match v {
                Value::Str(s) => s.to_string(),
                Value::Unknown(u) => return Err(format!("`with param {name}` is not known: {}", u.reason)),
                other => other.to_string(),
            };
            out.push((name.clone(), text));
        }
        Ok(out)
    }

    /// The path of the file that declares it.
    pub fn file(&self, db: &Database) -> String {
        let dbd: &dyn Db = db;
        self.item.file(dbd).path(dbd).clone()
    }

    /// Runs the test's expectations on the database as it is (its params already set).
    pub fn run(&self, db: &Database) -> Vec<ExpectResult> {
        let line = |span: iade_span::Span| {
            let dbd: &dyn Db = db;
            let file = self.item.file(dbd);
            let offset = crate::items::item_offset(dbd, file, self.item.name(dbd)).unwrap_or(0);
            let index = iade_span::LineIndex::new(file.text(dbd));
            index.line_col(span.start + offset).line + 1
        };
        let observed = self.observed(db);
        let mut out = Vec::new();
        for e in &self.test.expects {
            out.push(match e {
                ExpectIr::Snapshot { path, span } => {
                    ExpectResult::Snapshot { path: path.clone(), line: line(*span) }
                }
                ExpectIr::Expr { check, text, span } => {
                    let env = CompilerEnv::new(db);
                    let verdicts = Evaluator::new(&env, check.origin.clone(), check.slots).run_check(check);
                    let (ok, detail) = match verdicts.first() {
                        Some(v) if v.outcome == Outcome::Pass => (true, Vec::new()),
                        Some(v) => (false, explain(v)),
                        None => (false, vec!["it was not evaluated".into()]),
                    };
                    ExpectResult::Judged { what: format!("expect {text}"), ok, detail, line: line(*span) }
                }
                ExpectIr::Check { control, name, outcome, span } => {
                    let what = format!(
                        "expect {} {name} {}",
                        if *control { "control" } else { "policy" },
                        outcome.word()
                    );
                    let (ok, detail) = match self.check(db, *control, name, &observed) {
                        Err(message) => (false, vec![message]),
                        Ok(verdicts) if verdicts.is_empty() => {
                            (false, vec!["0 subjects: the check was evaluated on nothing".into()])
                        }
                        Ok(verdicts) => {
                            let got = if verdicts.iter().any(|v| v.outcome == Outcome::Fail) {
                                Expected::Fails
                            } else if verdicts.iter().any(|v| matches!(v.outcome, Outcome::Unknown(_))) {
                                Expected::Unknown
                            } else {
                                Expected::Passes
                            };
                            let detail = if got == *outcome {
                                Vec::new()
                            } else {
                                let n = verdicts.len();
                                let verb = if got == Expected::Unknown { "is unknown" } else { got.word() };
                                let mut d =
                                    vec![format!("it {verb} ({n} subject{})", if n == 1 { "" } else { "s" })];
                                for v in verdicts.iter().filter(|v| v.outcome != Outcome::Pass).take(5) {
                                    d.extend(explain(v));
                                }
                                d
                            };
                            (got == *outcome, detail)
                        }
                    };
                    ExpectResult::Judged { what, ok, detail, line: line(*span) }
                }
            });
        }
        out
    }

    /// The verdicts of a policy on the intent, or of a control on the test's observed objects.
    fn check(
        &self,
        db: &Database,
        control: bool,
        name: &str,
        observed: &BTreeMap<String, Vec<Value>>,
    ) -> Result<Vec<Verdict>, String> {
        let dbd: &dyn Db = db;
        let want = if control { CheckKind::Control } else { CheckKind::Policy };
        let mut names = Vec::new();
        for &m in stack_modules(dbd) {
            for &item in &own_scope(dbd, m).items {
                let LoweredKind::Check(c) = &lower_item(dbd, item).kind else { continue };
                if c.kind != want {
                    continue;
                }
                if c.name == name {
                    let env = TestEnv { inner: CompilerEnv::new(db), observed };
                    return Ok(Evaluator::new(&env, c.origin.clone(), c.slots).run_check(c));
                }
                names.push(c.name.clone());
            }
        }
        let what = if control { "control" } else { "policy" };
        Err(match crate::suggest::did_you_mean(name, names.iter().map(String::as_str)) {
            Some(hint) => format!("the stack has no {what} `{name}`; {hint}"),
            None => format!("the stack has no {what} `{name}`"),
        })
    }

    /// The test's `observed` objects by kind, as controls see them.
    fn observed(&self, db: &Database) -> BTreeMap<String, Vec<Value>> {
        let env = CompilerEnv::new(db);
        let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for o in &self.test.observed {
            let kind = crate::lower::kind_schema(db, o.kind);
            let mut fields: iade_intent::VecMap<Arc<str>, Value> = iade_intent::VecMap::new();
            for (name, ir, _) in &o.fields {
                let v = Evaluator::new(&env, self.test.origin.clone(), 0)
                    .eval(ir)
                    .unwrap_or_else(|e| Value::unknown(e.message));
                // Typed as the kind types it (an octal literal is a mode).
                let v = match kind.as_ref().and_then(|k| k.field(name)) {
                    Some(f) => f.ty.check(&v).unwrap_or_else(Value::unknown),
                    None => v,
                };
                fields.insert(Arc::from(name.as_str()), v);
            }
            let schema = crate::eval::kind_fields(db, o.kind);
            let identity = schema
                .iter()
                .find(|(_, role)| *role == iade_intent::FieldRole::Identity)
                .and_then(|(f, _)| fields.get(f.as_str()))
                .map(|v| match v {
                    Value::Str(s) => s.to_string(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            out.entry(o.kind_name.clone()).or_default().push(Value::Resource(Arc::new(ResourceValue {
                id: Arc::from(format!("{}[{identity}]", o.kind_name)),
                kind: Arc::from(o.kind_name.as_str()),
                fields,
                schema: schema.clone(),
            })));
        }
        out
    }
}

/// Why a verdict did not pass: its message and the values that decided it.
fn explain(v: &Verdict) -> Vec<String> {
    let mut out = Vec::new();
    if let Outcome::Unknown(reason) = &v.outcome {
        out.push(format!("unknown: {reason}"));
    }
    if let Some(e) = &v.error {
        out.push(e.message.clone());
    }
    let subject = v.subject.as_ref().map(|s| format!("{s}: ")).unwrap_or_default();
    if let Some(m) = &v.message {
        out.push(format!("{subject}{m}"));
    }
    out.extend(v.evidence.iter().map(|e| format!("  `{}` is {}", e.text, e.value)));
    out
}

/// The compiler's environment, with `observe(kind)` answered by the test's objects.
struct TestEnv<'a> {
    inner: CompilerEnv<'a>,
    observed: &'a BTreeMap<String, Vec<Value>>,
}

impl Env for TestEnv<'_> {
    fn global(&self, name: &str) -> Value {
        self.inner.global(name)
    }

    fn resource(&self, id: &str) -> Option<Value> {
        self.inner.resource(id)
    }

    fn resource_by_name(&self, kind: &str, name: &str) -> Option<Value> {
        self.inner.resource_by_name(kind, name)
    }

    fn rule(&self, name: &str) -> Option<Arc<RuleIr>> {
        self.inner.rule(name)
    }

    fn objects(&self, source: ObjectSource, kind: &str, under: Option<&str>) -> Result<Vec<Value>, String> {
        match source {
            ObjectSource::Intent => self.inner.objects(source, kind, under),
            ObjectSource::Observe => {
                let all = self.observed.get(kind).cloned().unwrap_or_default();
                let Some(under) = under else { return Ok(all) };
                let prefix = under.trim_end_matches('/');
                Ok(all
                    .into_iter()
                    .filter(|v| match v {
                        Value::Resource(r) => match r.fields.get("path") {
                            Some(Value::Str(p)) => {
                                p.as_ref() == prefix
                                    || p.starts_with(&format!("{prefix}/"))
                                    || prefix.is_empty()
                            }
                            _ => true,
                        },
                        _ => true,
                    })
                    .collect())
            }
        }
    }

    fn include(&self, origin: &Origin, path: &str) -> Result<Value, String> {
        self.inner.include(origin, path)
    }

    fn template(&self, origin: &Origin, path: &str, vars: &Value) -> Result<Value, TemplateError> {
        self.inner.template(origin, path, vars)
    }
}
