//! The engine with an in-memory provider: ordering, failure isolation, and the environment
//! (never the journal) as the source of truth.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use iade_engine::{ConvergeOptions, Env, Providers, Stack};
use iade_intent::{Edge, EdgeReason, IntentGraph, Node, NodeAttr, Program, SourceLoc, Value};
use iade_journal::{Journal, LeaseOutcome};
use iade_provider::{MemoryProvider, ProviderError, Secrets};

struct NoSecrets;

impl Secrets for NoSecrets {
    fn resolve(&self, name: &str) -> Result<String, ProviderError> {
        Err(ProviderError::permanent(format!("no secret {name}")))
    }
}

fn node(id: &str) -> Node {
    let loc = SourceLoc { file: "main.iade".into(), line: 1, column: 1, start: 0, end: 0 };
    let mut attrs = BTreeMap::new();
    attrs.insert("name".to_string(), NodeAttr { value: Value::str(id), source: None });
    attrs.insert("size".to_string(), NodeAttr { value: Value::Int(1), source: None });
    Node {
        id: id.to_string(),
        kind: "thing".into(),
        name: id.into(),
        provider_type: Some("memory".into()),
        provider: None,
        manage: "enforce".into(),
        identity: BTreeMap::from([("name".to_string(), Value::str(id))]),
        attrs,
        declared: loc,
    }
}

/// a → b → c, and an independent d.
fn graph() -> IntentGraph {
    let edge =
        |from: &str, to: &str| Edge { from: from.into(), to: to.into(), reason: EdgeReason::Reference };
    IntentGraph {
        version: 1,
        nodes: vec![node("thing.a"), node("thing.b"), node("thing.c"), node("thing.d")],
        edges: vec![edge("thing.a", "thing.b"), edge("thing.b", "thing.c")],
    }
}

fn journal(name: &str) -> (Journal, i64) {
    let dir = std::env::temp_dir().join(format!("iade-engine-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut j = Journal::open(&dir.join("journal.db")).expect("journal");
    let LeaseOutcome::Acquired { epoch } =
        j.acquire_lease(1, "test", std::time::Duration::from_secs(60), false, &|_| true).expect("lease")
    else {
        panic!("lease held")
    };
    (j, epoch)
}

fn run(provider: &Arc<MemoryProvider>, j: &mut Journal, epoch: i64) -> iade_engine::RunReport {
    let providers = Providers::new().with_as("memory", provider.clone());
    let cancelled = AtomicBool::new(false);
    let env = Env {
        providers: &providers,
        secrets: &NoSecrets,
        stack_dir: std::env::temp_dir(),
        parallelism: 2,
        cancelled: &cancelled,
    };
    let g = graph();
    let program = Program::default();
    let stack = Stack { graph: &g, program: &program };
    let options = ConvergeOptions {
        failpoint: None,
        retries: 2,
        only: None,
        lease_ttl: std::time::Duration::from_secs(60),
    };
    iade_engine::converge(&stack, &env, j, epoch, &options).expect("run completes")
}

fn status(report: &iade_engine::RunReport, id: &str) -> String {
    report.steps.iter().find(|s| s.resource == id).map(|s| s.status.clone()).unwrap_or_default()
}

#[test]
fn a_failed_step_skips_its_dependents_while_independent_branches_go_on() {
    let provider = Arc::new(MemoryProvider::default());
    provider.fail.lock().expect("lock").insert("thing.b".into(), ProviderError::permanent("boom"));
    let (mut j, epoch) = journal("skip");
    let report = run(&provider, &mut j, epoch);
    assert_eq!(status(&report, "thing.a"), "done");
    assert_eq!(status(&report, "thing.b"), "failed");
    assert_eq!(status(&report, "thing.c"), "skipped");
    assert_eq!(status(&report, "thing.d"), "done");
    let calls = provider.calls.lock().expect("lock").clone();
    assert!(
        calls.iter().position(|c| c == "apply thing.a") < calls.iter().position(|c| c == "apply thing.b"),
        "{calls:?}"
    );
    assert!(!calls.contains(&"apply thing.c".to_string()), "{calls:?}");

    // The next run finishes what was left.
    let report = run(&provider, &mut j, epoch);
    assert_eq!(status(&report, "thing.b"), "done");
    assert_eq!(status(&report, "thing.c"), "done");
    assert_eq!(report.steps.len(), 2, "{:?}", report.steps);
}

#[test]
fn transient_errors_are_retried_and_permanent_ones_are_not() {
    let provider = Arc::new(MemoryProvider::default());
    provider.fail.lock().expect("lock").insert("thing.d".into(), ProviderError::transient("busy"));
    let (mut j, epoch) = journal("retry");
    let report = run(&provider, &mut j, epoch);
    let d = report.steps.iter().find(|s| s.resource == "thing.d").expect("step");
    assert_eq!((d.status.as_str(), d.attempts), ("done", 2));
}

#[test]
fn the_environment_not_the_journal_decides_what_to_do() {
    let provider = Arc::new(MemoryProvider::default());
    let (mut j, epoch) = journal("truth");
    let first = run(&provider, &mut j, epoch);
    assert_eq!(first.steps.len(), 4);
    assert!(run(&provider, &mut j, epoch).steps.is_empty(), "a second run found work");
    // Someone changes one object behind the engine's back; the journal still says done.
    provider
        .objects
        .lock()
        .expect("lock")
        .values_mut()
        .next()
        .expect("an object")
        .insert("size".into(), Value::Int(2));
    let report = run(&provider, &mut j, epoch);
    assert_eq!(report.steps.len(), 1, "{:?}", report.steps);
    assert_eq!(report.steps[0].status, "done");
}
