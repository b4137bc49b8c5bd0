//! Each hook of the provider contract, through the in-memory provider: the engine learns what
//! a change does, how identities compare, where objects lie and what they are called from the
//! provider, never from kind names.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use iade_engine::{Action, Env, Event, Events, NoEvents, Providers, Stack};
use iade_intent::ir::{BinOp, ObjectSource};
use iade_intent::{
    CheckIr, CheckKind, CheckStmt, Edge, EdgeReason, FieldRole, IntentGraph, Ir, IrKind, NodeAttr, Origin,
    Program, Severity, Value,
};
use iade_journal::{RunStatus, StepAction, Store};
use iade_provider::{MemoryProvider, Output};
use iade_span::{FileId, Span};

use super::{NoSecrets, converge_graph, journal, node, status};

fn env<'a>(providers: &'a Providers, cancelled: &'a AtomicBool, events: &'a dyn Events) -> Env<'a> {
    Env {
        stack: "test",
        providers,
        secrets: &NoSecrets,
        stack_dir: std::env::temp_dir(),
        parallelism: 2,
        cancelled,
        events,
        diffs: false,
        state_dir: None,
        lease: None,
    }
}

/// A graph with its nodes sorted by id, as the compiler gives them.
fn graph(ids: &[&str], edges: &[(&str, &str)]) -> IntentGraph {
    let mut nodes: Vec<_> = ids.iter().map(|i| node(i)).collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    IntentGraph {
        version: 1,
        nodes,
        edges: edges
            .iter()
            .map(|(f, t)| Edge { from: f.to_string(), to: t.to_string(), reason: EdgeReason::Reference })
            .collect(),
        instances: Vec::new(),
        providers: Vec::new(),
    }
}

fn plan(provider: &Arc<MemoryProvider>, g: &IntentGraph) -> iade_engine::Plan {
    let providers = Providers::new().with_as("memory", provider.clone());
    let cancelled = AtomicBool::new(false);
    let program = Program::default();
    iade_engine::plan(&Stack::new(g, &program), &env(&providers, &cancelled, &NoEvents), None)
}

#[test]
fn a_provider_that_runs_commands_names_its_correction_run() {
    let provider = Arc::new(MemoryProvider::default());
    provider.run_kinds.lock().expect("lock").insert("thing".into());
    let g = graph(&["thing.a"], &[]);
    assert_eq!(plan(&provider, &g).resources[0].action, Action::Run);
    let (mut j, epoch) = journal("verb");
    let report = converge_graph(&provider, &g, &mut j, epoch);
    assert_eq!(report.steps[0].action, Some(StepAction::Run));
    let run = report.run.expect("a run");
    assert_eq!(j.steps(run).expect("steps")[0].action, StepAction::Run);
}

#[test]
fn a_field_that_cannot_be_compared_is_reported_while_the_rest_is_corrected() {
    let provider = Arc::new(MemoryProvider::default());
    provider.insert("thing", "thing.a", iade_intent::VecMap::from([("size".to_string(), Value::Int(7))]));
    provider
        .unknown
        .lock()
        .expect("lock")
        .insert(("thing.a".into(), "name".into()), "secret `K` is not set".into());
    let g = graph(&["thing.a"], &[]);
    let p = plan(&provider, &g);
    let r = &p.resources[0];
    assert_eq!(r.action, Action::Update, "the size still differs and can be corrected");
    assert_eq!(r.unknown().map(|c| c.field.as_str()).collect::<Vec<_>>(), vec!["name"]);
    assert!(p.summary().has_errors(), "an unknown field is not a silent pass");

    let (mut j, epoch) = journal("unknown");
    let report = converge_graph(&provider, &g, &mut j, epoch);
    let object = provider.object("thing", "thing.a").expect("still there");
    assert_eq!(object.get("size"), Some(&Value::Int(1)), "the size was corrected");
    assert_eq!(object.get("name"), None, "the unknown field was left alone");
    assert_eq!(report.status, RunStatus::Failed, "summary and status agree: something is unknown");
    assert_eq!(report.summary.unobservable, 1);
    let errors = j.errors(report.run.expect("a run")).expect("errors");
    assert_eq!(errors[0].field.as_deref(), Some("name"));
    assert!(errors[0].message.contains("secret `K`"), "{errors:?}");
}

#[test]
fn an_absent_object_is_not_created_without_a_field_that_cannot_be_compared() {
    let provider = Arc::new(MemoryProvider::default());
    provider.unknown.lock().expect("lock").insert(("thing.a".into(), "size".into()), "not set".into());
    let (mut j, epoch) = journal("unknown-absent");
    let report = converge_graph(&provider, &graph(&["thing.a"], &[]), &mut j, epoch);
    assert_eq!(status(&report, "thing.a"), "failed");
    assert!(report.steps[0].error.as_deref().is_some_and(|e| e.contains("cannot create it without `size`")));
    assert!(provider.object("thing", "thing.a").is_none());
}

#[test]
fn a_resource_whose_dependency_changes_is_observed_after_it() {
    // thing.b cannot be observed until thing.a exists (an exec whose working directory another
    // resource creates).
    let provider = Arc::new(MemoryProvider::default());
    provider.requires.lock().expect("lock").insert("thing.b".into(), ("thing".into(), "thing.a".into()));
    let g = graph(&["thing.a", "thing.b"], &[("thing.a", "thing.b")]);
    let p = plan(&provider, &g);
    let b = p.resources.iter().find(|r| r.id == "thing.b").expect("b");
    assert_eq!(b.action, Action::Deferred);
    assert_eq!(b.after, vec!["thing.a".to_string()]);
    assert!(!p.summary().has_errors(), "a resource waiting for its dependencies is not an error");

    let (mut j, epoch) = journal("deferred");
    let report = converge_graph(&provider, &g, &mut j, epoch);
    assert_eq!(report.status, RunStatus::Done, "{:?}", report.errors);
    assert_eq!((status(&report, "thing.a"), status(&report, "thing.b")), ("done".into(), "done".into()));
    assert!(provider.object("thing", "thing.b").is_some());
}

#[test]
fn a_deferred_resource_whose_dependency_fails_is_skipped_unobserved() {
    let provider = Arc::new(MemoryProvider::default());
    provider.requires.lock().expect("lock").insert("thing.b".into(), ("thing".into(), "thing.a".into()));
    provider
        .fail
        .lock()
        .expect("lock")
        .insert("thing.a".into(), iade_provider::ProviderError::permanent("boom"));
    let (mut j, epoch) = journal("deferred-skip");
    let g = graph(&["thing.a", "thing.b"], &[("thing.a", "thing.b")]);
    let report = converge_graph(&provider, &g, &mut j, epoch);
    let b = report.steps.iter().find(|s| s.resource == "thing.b").expect("b is reported");
    assert_eq!((b.action, b.status.as_str()), (None, "skipped"));
    assert!(b.error.as_deref().is_some_and(|e| e.contains("depends on thing.a")), "{b:?}");
    let errors = j.errors(report.run.expect("a run")).expect("errors");
    assert!(
        errors.iter().any(|e| e.resource == "thing.b"),
        "history says why b was not observed: {errors:?}"
    );
}

#[test]
fn an_observation_failure_is_journaled_with_its_reason_and_fails_the_run() {
    let provider = Arc::new(MemoryProvider::default());
    provider.requires.lock().expect("lock").insert("thing.a".into(), ("thing".into(), "elsewhere".into()));
    let (mut j, epoch) = journal("observe-error");
    let report = converge_graph(&provider, &graph(&["thing.a"], &[]), &mut j, epoch);
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.summary.unobservable, 1);
    let run = report.run.expect("a run");
    assert!(j.errors(run).expect("errors")[0].message.contains("`elsewhere` does not exist"));
    assert_eq!(j.run(run).expect("run").expect("exists").status, RunStatus::Failed);
}

#[test]
fn command_output_is_journaled_with_its_step() {
    let provider = Arc::new(MemoryProvider::default());
    let out = Output { stdout: "migrated 3 tables\n".into(), stderr: "notice: slow\n".into() };
    provider.output.lock().expect("lock").insert("thing.a".into(), out);
    let (mut j, epoch) = journal("output");
    let report = converge_graph(&provider, &graph(&["thing.a"], &[]), &mut j, epoch);
    let steps = j.steps(report.run.expect("a run")).expect("steps");
    let o = steps[0].output.as_ref().expect("output kept");
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("migrated 3 tables\n", "notice: slow\n"));
}

#[test]
fn applied_identities_are_recorded_in_canonical_form_and_forgotten_on_delete() {
    let provider = Arc::new(MemoryProvider::default());
    provider.fold_case.store(true, Ordering::Relaxed);
    let mut g = graph(&["thing.A"], &[]);
    let (mut j, epoch) = journal("applied");
    converge_graph(&provider, &g, &mut j, epoch);
    let applied = j.applied().expect("applied");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].identity["name"], "thing.a", "the provider's canonical form");
    g.nodes[0].attrs.insert("ensure".into(), NodeAttr { value: Value::Enum("absent".into()), source: None });
    let report = converge_graph(&provider, &g, &mut j, epoch);
    assert_eq!(report.steps[0].action, Some(StepAction::Delete));
    assert!(j.applied().expect("applied").is_empty());
}

fn control(name: &str, source: ObjectSource, under: Option<&str>, size: i64) -> Arc<CheckIr> {
    let span = Span { start: 0, end: 1 };
    let lit = |v: Value| Ir::lit(v, span);
    let objects = Ir::new(
        IrKind::Objects { source, kind: "thing".into(), under: under.map(|u| Box::new(lit(Value::str(u)))) },
        span,
    );
    let size_of = Ir::new(IrKind::Member(Box::new(Ir::new(IrKind::Local(0), span)), "size".into()), span);
    let cond = Ir::new(IrKind::Binary(BinOp::Eq, Box::new(size_of), Box::new(lit(Value::Int(size)))), span);
    Arc::new(CheckIr {
        kind: CheckKind::Control,
        name: name.into(),
        severity: Severity::High,
        title: None,
        body: vec![CheckStmt::For {
            key: None,
            slot: 0,
            iter: objects,
            body: vec![CheckStmt::Require { cond, message: None, span }],
        }],
        slots: 1,
        origin: Origin { file: FileId(0), item: format!("control:{name}").into() },
        name_span: span,
    })
}

fn program(controls: Vec<Arc<CheckIr>>) -> Program {
    let fields = vec![("name".to_string(), FieldRole::Identity), ("size".to_string(), FieldRole::Desired)];
    Program {
        controls,
        kinds: BTreeMap::from([("thing".to_string(), Arc::new(fields))]),
        providers: BTreeMap::from([("thing".to_string(), "memory".to_string())]),
        ..Program::default()
    }
}

fn subjects(provider: &Arc<MemoryProvider>, g: &IntentGraph, program: &Program) -> Vec<String> {
    let providers = Providers::new().with_as("memory", provider.clone());
    let cancelled = AtomicBool::new(false);
    let env = env(&providers, &cancelled, &NoEvents);
    let stack = Stack::new(g, program);
    let p = iade_engine::plan(&stack, &env, None);
    let report = iade_engine::evaluate_controls(&stack, &env, &p);
    report.findings.iter().filter_map(|f| f.subject.clone()).collect()
}

#[test]
fn a_discovered_object_is_the_resource_whose_identity_the_provider_says_it_is() {
    let provider = Arc::new(MemoryProvider::default());
    provider.insert("thing", "THING.A", iade_intent::VecMap::from([("size".to_string(), Value::Int(5))]));
    let g = graph(&["thing.a"], &[]);
    let p = program(vec![control("sizes", ObjectSource::Observe, None, 1)]);
    assert_eq!(
        subjects(&provider, &g, &p),
        vec!["thing[THING.A]".to_string()],
        "named as the provider names it"
    );
    provider.fold_case.store(true, Ordering::Relaxed);
    assert_eq!(subjects(&provider, &g, &p), vec!["thing.a".to_string()], "the same object as the resource");
}

#[test]
fn intent_under_a_location_is_what_the_provider_says_lies_there() {
    let provider = Arc::new(MemoryProvider::default());
    let g = graph(&["thing.a", "thing.b1", "thing.b2"], &[]);
    let p = program(vec![control("under", ObjectSource::Intent, Some("thing.b"), 99)]);
    assert_eq!(subjects(&provider, &g, &p), vec!["thing.b1".to_string(), "thing.b2".to_string()]);
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Events for Recorder {
    fn emit(&self, event: &Event) {
        let text = match event {
            Event::Observed { resources, differ } => format!("observed {resources} ({differ} differ)"),
            Event::Wave { index, steps, .. } => format!("wave {index}: {steps} steps"),
            Event::Step(s) => format!("{} {}", s.resource, s.status),
        };
        self.0.lock().expect("lock").push(text);
    }
}

/// Converges `g` through a memory provider, recording the run's events; the journal is named
/// `name`.
fn converge_recorded(g: &IntentGraph, name: &str) -> (iade_engine::RunReport, Vec<String>) {
    let provider = Arc::new(MemoryProvider::default());
    let providers = Providers::new().with_as("memory", provider.clone());
    let cancelled = AtomicBool::new(false);
    let recorder = Recorder::default();
    let program = Program::default();
    let (mut j, epoch) = journal(name);
    let env = env(&providers, &cancelled, &recorder);
    let report = iade_engine::converge(&Stack::new(g, &program), &env, &mut *j, epoch, &super::options(0))
        .expect("run");
    let events = recorder.0.lock().expect("lock").clone();
    (report, events)
}

#[test]
fn a_run_reports_observation_waves_and_steps_as_events_in_order() {
    let g = graph(&["thing.a", "thing.b"], &[("thing.a", "thing.b")]);
    let (_, events) = converge_recorded(&g, "events");
    assert_eq!(
        events,
        vec![
            "observed 1 (1 differ)",
            "wave 0: 1 steps",
            "thing.a done",
            "observed 1 (1 differ)",
            "wave 1: 1 steps",
            "thing.b done",
        ],
        "thing.b is observed only after thing.a is done"
    );
}

#[test]
fn a_wave_of_more_than_1024_steps_starts_once_per_batch_and_ends_each_batch_before_the_next() {
    let ids: Vec<String> = (0..1100).map(|i| format!("thing.t{i:04}")).collect();
    let g = graph(&ids.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let (report, events) = converge_recorded(&g, "batches");
    assert_eq!(report.summary.changed, 1100);
    let starts: Vec<(usize, &String)> =
        events.iter().enumerate().filter(|(_, e)| e.starts_with("wave")).collect();
    assert_eq!(
        starts.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>(),
        ["wave 0: 1024 steps", "wave 0: 76 steps"]
    );
    // Every step of the first batch ends before the second starts.
    assert_eq!(starts[1].0, starts[0].0 + 1 + 1024, "{:?}", &events[starts[0].0..starts[1].0 + 2]);
}

#[test]
fn a_target_takes_what_it_depends_on_and_an_unknown_one_is_named() {
    let g = graph(
        &["thing.a", "thing.b", "thing.c", "thing.d"],
        &[("thing.a", "thing.b"), ("thing.b", "thing.c")],
    );
    let closure = iade_engine::dependency_closure(&g, &["thing.c".into()]).expect("known");
    assert_eq!(closure.into_iter().collect::<Vec<_>>(), vec!["thing.a", "thing.b", "thing.c"]);
    assert_eq!(iade_engine::dependency_closure(&g, &["thing.x".into()]), Err(vec!["thing.x".to_string()]));
}
