//! The engine with an in-memory provider: ordering, failure isolation, the environment (never
//! the journal) as the source of truth, and each hook of the provider contract.

mod hooks;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use iade_engine::{ConvergeOptions, Env, NoEvents, Providers, Stack};
use iade_intent::{Edge, EdgeReason, IntentGraph, Manage, Node, NodeAttr, Program, SourceLoc, Value};
use iade_journal::{Epoch, LeaseClaim, LeaseOutcome, RunMode, StackId, StepStatus, Store};
use iade_journal_sqlite::SqliteJournal;
use iade_provider::{MemoryProvider, ProviderError, Secrets};

#[derive(Debug)]
pub struct NoSecrets;

impl Secrets for NoSecrets {
    fn resolve(&self, name: &str) -> Result<String, ProviderError> {
        Err(ProviderError::permanent(format!("no secret {name}")))
    }
}

pub fn node(id: &str) -> Node {
    let loc = SourceLoc { file: "main.iade".into(), line: 1, column: 1, start: 0, end: 0 };
    let mut attrs = iade_intent::VecMap::new();
    attrs.insert("name".to_string(), NodeAttr { value: Value::str(id), source: None });
    attrs.insert("size".to_string(), NodeAttr { value: Value::Int(1), source: None });
    Node {
        id: id.to_string(),
        kind: "thing".into(),
        name: id.into(),
        provider_type: Some("memory".into()),
        provider: None,
        manage: Manage::Enforce,
        identity: iade_intent::VecMap::from([("name".to_string(), Value::str(id))]),
        attrs,
        declared: loc,
        instance: None,
        notify: Vec::new(),
        protect: false,
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
        instances: Vec::new(),
        providers: Vec::new(),
    }
}

/// A test's journal in a directory of its own. Fields drop in order: the journal is closed,
/// then the directory removed, when the test ends.
#[derive(Debug)]
pub struct TestJournal {
    journal: SqliteJournal,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestJournal {
    type Target = SqliteJournal;

    fn deref(&self) -> &SqliteJournal {
        &self.journal
    }
}

impl std::ops::DerefMut for TestJournal {
    fn deref_mut(&mut self) -> &mut SqliteJournal {
        &mut self.journal
    }
}

pub fn journal(name: &str) -> (TestJournal, Epoch) {
    let dir =
        tempfile::Builder::new().prefix(&format!("iade-engine-it-{name}-")).tempdir().expect("temp dir");
    let stack = StackId { name: name.into(), host: "test".into() };
    let mut j = SqliteJournal::open(&dir.path().join("journal.db"), &stack).expect("journal");
    let claim =
        LeaseClaim { pid: 1, host: "test".into(), ttl: std::time::Duration::from_secs(60), watch: false };
    let LeaseOutcome::Acquired { epoch } = j.acquire_lease(&claim, &|_| true).expect("lease") else {
        panic!("lease held")
    };
    (TestJournal { journal: j, _dir: dir }, epoch)
}

pub fn options<'a>(retries: u32) -> ConvergeOptions<'a> {
    ConvergeOptions {
        failpoint: None,
        retries,
        only: None,
        mode: RunMode::Converge,
        lease_ttl: std::time::Duration::from_secs(60),
        host: "test",
    }
}

/// Converges `g` with the memory provider serving it.
pub fn converge_graph(
    provider: &Arc<MemoryProvider>,
    g: &IntentGraph,
    j: &mut SqliteJournal,
    epoch: Epoch,
) -> iade_engine::RunReport {
    let providers = Providers::new().with_as("memory", provider.clone());
    let cancelled = AtomicBool::new(false);
    let env = Env {
        stack: "test",
        providers: &providers,
        secrets: &NoSecrets,
        stack_dir: std::env::temp_dir(),
        parallelism: 2,
        cancelled: &cancelled,
        events: &NoEvents,
        diffs: false,
        state_dir: None,
        lease: None,
    };
    let program = Program::default();
    let stack = Stack::new(g, &program);
    iade_engine::converge(&stack, &env, j, epoch, &options(2)).expect("run completes")
}

fn run(provider: &Arc<MemoryProvider>, j: &mut SqliteJournal, epoch: Epoch) -> iade_engine::RunReport {
    converge_graph(provider, &graph(), j, epoch)
}

pub fn status(report: &iade_engine::RunReport, id: &str) -> String {
    report.steps.iter().find(|s| s.resource == id).map(|s| s.status.as_str().to_string()).unwrap_or_default()
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
    assert_eq!((d.status, d.attempts), (StepStatus::Done, 2));
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
    assert_eq!(report.steps[0].status, StepStatus::Done);
}

/// Random stacks of up to 40 resources with random dependencies and random failures: an
/// applied resource's dependencies were applied before it, a dependent of a failure is
/// skipped, and once nothing fails, a second run has nothing to do.
#[test]
fn random_graphs_converge_in_dependency_order_and_then_stay_converged() {
    let mut seed = 0x1234_5678_9ABC_DEF0u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n.max(1)
    };
    for round in 0..25 {
        let n = 2 + next(39) as usize;
        let ids: Vec<String> = (0..n).map(|i| format!("thing.r{i}")).collect();
        let mut edges = Vec::new();
        for to in 1..n {
            for _ in 0..next(3) {
                let from = next(to as u64) as usize;
                edges.push(Edge {
                    from: ids[from].clone(),
                    to: ids[to].clone(),
                    reason: EdgeReason::Reference,
                });
            }
        }
        edges.sort();
        edges.dedup();
        // Nodes sorted by id, as the compiler gives them.
        let mut nodes: Vec<Node> = ids.iter().map(|i| node(i)).collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let g = IntentGraph {
            version: 1,
            nodes,
            edges: edges.clone(),
            instances: Vec::new(),
            providers: Vec::new(),
        };
        let provider = Arc::new(MemoryProvider::default());
        let failing: Vec<String> = ids.iter().filter(|_| next(10) == 0).cloned().collect();
        for f in &failing {
            provider.fail.lock().expect("lock").insert(f.clone(), ProviderError::permanent("injected"));
        }
        let (mut j, epoch) = journal(&format!("random-{round}"));
        let providers = Providers::new().with_as("memory", provider.clone());
        let cancelled = AtomicBool::new(false);
        let env = Env {
            stack: "test",
            providers: &providers,
            secrets: &NoSecrets,
            stack_dir: std::env::temp_dir(),
            parallelism: 3,
            cancelled: &cancelled,
            events: &NoEvents,
            diffs: false,
            state_dir: None,
            lease: None,
        };
        let program = Program::default();
        let stack = Stack::new(&g, &program);
        let options = options(0);
        let report = iade_engine::converge(&stack, &env, &mut *j, epoch, &options).expect("run");
        let calls = provider.calls.lock().expect("lock").clone();
        let position = |id: &str| calls.iter().position(|c| c == &format!("apply {id}"));
        for e in &edges {
            if let (Some(a), Some(b)) = (position(&e.from), position(&e.to)) {
                assert!(a < b, "round {round}: {} applied before its dependency {}", e.to, e.from);
            }
            let from_status = status(&report, &e.from);
            if from_status == "failed" || from_status == "skipped" {
                assert_eq!(status(&report, &e.to), "skipped", "round {round}: {} should be skipped", e.to);
            }
        }
        // Each failure is injected once: every run uses up at least one (a resource skipped
        // before meets its own failure later), so runs finish within a bounded number, and
        // then nothing is left to do.
        let mut runs = 1;
        loop {
            let again = iade_engine::converge(&stack, &env, &mut *j, epoch, &options).expect("run");
            if again.steps.is_empty() {
                break;
            }
            runs += 1;
            assert!(runs <= failing.len() + 2, "round {round}: no progress: {:?}", again.steps);
        }
        assert!(
            provider.fail.lock().expect("lock").is_empty(),
            "round {round}: an injected failure was never met"
        );
    }
}
