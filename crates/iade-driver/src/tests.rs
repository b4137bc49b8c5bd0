//! `iade test`: loads a stack with its test files and runs each `test` block: param overrides,
//! expectations over policies, controls (on the test's `observed` objects) and the intent, and
//! snapshots of the rendered intent, compared with their files or rewritten (`bless`). Nothing
//! touches the environment.

use std::path::Path;

use iade_compiler::ExpectResult;

use crate::Error;
use crate::load::{LoadOptions, LoadedStack};

/// How to run tests.
#[derive(Clone, Debug, Default)]
pub struct TestOptions {
    /// Only tests whose name contains this.
    pub filter: Option<String>,
    /// Rewrite snapshot files instead of comparing them.
    pub bless: bool,
}

/// An expectation that did not hold.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TestFailure {
    /// `expect control no_world_writable fails`.
    pub expect: String,
    pub line: u32,
    /// What explains it: the values that decided, a snapshot's diff.
    pub detail: Vec<String>,
}

/// One test's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TestResult {
    pub name: String,
    pub file: String,
    pub passed: bool,
    pub expectations: usize,
    pub failures: Vec<TestFailure>,
    /// Snapshot files written (`bless`).
    pub blessed: Vec<String>,
}

/// Every test's result, and how many were left out by the filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TestReport {
    pub results: Vec<TestResult>,
    pub filtered_out: usize,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

/// The intent graph as a snapshot: no source locations, paths under the stack directory
/// relative to it, so it is the same in any checkout.
pub fn snapshot(graph: &iade_intent::IntentGraph, stack_dir: &Path) -> String {
    fn strip(v: &mut serde_json::Value, dir: &str) {
        match v {
            serde_json::Value::Object(map) => {
                for key in ["source", "declared", "sites", "location", "span"] {
                    map.remove(key);
                }
                for (_, v) in map.iter_mut() {
                    strip(v, dir);
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| strip(i, dir)),
            serde_json::Value::String(s) if !dir.is_empty() && s.starts_with(dir) => {
                *s = format!(".{}", &s[dir.len()..]);
            }
            _ => {}
        }
    }
    let mut v = serde_json::to_value(graph).unwrap_or_default();
    strip(&mut v, &stack_dir.to_string_lossy());
    let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
    text.push('\n');
    text
}

fn diff(expected: &str, actual: &str) -> Vec<String> {
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = Vec::new();
    let mut i = 0;
    while i < old.len().max(new.len()) && out.len() < 40 {
        match (old.get(i), new.get(i)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => {
                if let Some(a) = a {
                    out.push(format!("  line {}: - {a}", i + 1));
                }
                if let Some(b) = b {
                    out.push(format!("  line {}: + {b}", i + 1));
                }
            }
        }
        i += 1;
    }
    out
}

/// Loads the stack at `path` with its test files and runs the tests.
pub fn run_tests(path: &Path, load: &LoadOptions, options: &TestOptions) -> Result<TestReport, Error> {
    let load = LoadOptions { tests: true, params_optional: true, ..load.clone() };
    let mut stack = LoadedStack::load(path, &load)?;
    let errors: Vec<_> = stack.diagnostics().into_iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        return Err(Error::Diagnostics(errors));
    }
    let stack_dir = stack.stack_dir().to_path_buf();
    let mut base: std::collections::BTreeMap<String, String> = load.env_params.clone();
    base.extend(load.params.iter().cloned());
    let mut report = TestReport::default();
    let cases = iade_compiler::test_cases(&stack.db);
    for case in cases {
        if options.filter.as_ref().is_some_and(|f| !case.name.contains(f.as_str())) {
            report.filtered_out += 1;
            continue;
        }
        let mut result = TestResult {
            name: case.name.clone(),
            file: case.file(&stack.db),
            passed: true,
            expectations: 0,
            failures: Vec::new(),
            blessed: Vec::new(),
        };
        let mut params = base.clone();
        match case.params(&stack.db) {
            Ok(p) => params.extend(p),
            Err(message) => {
                result.failures.push(TestFailure {
                    expect: "with param".into(),
                    line: 0,
                    detail: vec![message],
                });
            }
        }
        stack.db.set_params(params);
        let errors: Vec<String> =
            stack.diagnostics().into_iter().filter(|d| d.is_error()).map(|d| d.message.clone()).collect();
        if !errors.is_empty() {
            result.failures.push(TestFailure {
                expect: "the stack checks with the test's params".into(),
                line: 0,
                detail: errors,
            });
        } else {
            for e in case.run(&stack.db) {
                result.expectations += 1;
                match e {
                    ExpectResult::Judged { ok: true, .. } => {}
                    ExpectResult::Judged { what, detail, line, .. } => {
                        result.failures.push(TestFailure { expect: what, line, detail });
                    }
                    ExpectResult::Snapshot { path, line } => {
                        let actual = snapshot(&stack.db.intent_graph(), &stack_dir);
                        let file = stack_dir.join(&path);
                        let expected = std::fs::read_to_string(&file).ok();
                        if options.bless {
                            if expected.as_deref() != Some(actual.as_str()) {
                                let written = file
                                    .parent()
                                    .map_or(Ok(()), std::fs::create_dir_all)
                                    .and_then(|()| std::fs::write(&file, &actual));
                                if let Err(err) = written {
                                    return Err(Error::Io(format!(
                                        "cannot write `{}`: {err}",
                                        file.display()
                                    )));
                                }
                                result.blessed.push(path.clone());
                            }
                            continue;
                        }
                        let what = format!("expect snapshot \"{path}\"");
                        match expected {
                            None => result.failures.push(TestFailure {
                                expect: what,
                                line,
                                detail: vec![format!(
                                    "`{path}` does not exist: run `iade test --bless` to write it, then review it"
                                )],
                            }),
                            Some(expected) if expected != actual => {
                                let mut detail = vec![format!(
                                    "the intent differs from `{path}` (run `iade test --bless` to accept it):"
                                )];
                                detail.extend(diff(&expected, &actual));
                                result.failures.push(TestFailure { expect: what, line, detail });
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        result.passed = result.failures.is_empty();
        report.results.push(result);
    }
    stack.db.set_params(base);
    Ok(report)
}
