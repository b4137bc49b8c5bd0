//! One-shot runs: `plan` and `converge --detect-only` (observe, change nothing, take no
//! lease) and `converge` (the lease, a durable run, or a pass asked of the watching engine).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use iade_engine::{ComplianceReport, ConvergeOptions, Env, Failpoint, Plan, RunReport, Stack};
use iade_intent::Value;
use iade_journal::{Holder, PassRequest, RequestAnswer, RunMode};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::events::{Event, Forward, Sink};
use crate::history::{RunRecord, record};
use crate::load::Compiled;
use crate::runtime::Runtime;
use crate::session::{JournalLocation, LEASE_TTL, Session, SessionError, SessionOptions, Wait};

/// How a run goes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// At most this many provider calls at once.
    pub parallelism: usize,
    /// Whether plans carry unified diffs of text content.
    pub diffs: bool,
    /// Only these resources (or component instances) and what they depend on.
    pub targets: Vec<String>,
    /// The journal; `.iade/journal.db` in the stack directory when `None`.
    pub journal: Option<JournalLocation>,
    pub wait: Wait,
    /// A protocol point to crash at, for crash tests (`IADE_FAILPOINT`).
    pub failpoint: Option<String>,
    /// How often a transient error is retried.
    pub retries: u32,
    /// Delete objects the stack applied and no longer declares (also `stack { prune = true }`).
    pub prune: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            parallelism: 8,
            diffs: true,
            targets: Vec::new(),
            journal: None,
            wait: Wait::No,
            failpoint: None,
            retries: 3,
            prune: false,
        }
    }
}

impl RunOptions {
    /// Whether removed objects are pruned: `--prune`, or the stack's `stack { prune = true }`.
    pub fn prunes(&self, compiled: &Compiled) -> bool {
        self.prune || compiled.settings.prune
    }

    pub fn journal_for(&self, compiled: &Compiled) -> JournalLocation {
        self.journal.clone().unwrap_or_else(|| JournalLocation::default_for(&compiled.stack_dir))
    }
}

/// The resources a run covers: every one, or the targets and their dependencies.
pub fn scope(compiled: &Compiled, targets: &[String]) -> Result<Option<BTreeSet<String>>, Error> {
    if targets.is_empty() {
        return Ok(None);
    }
    iade_engine::dependency_closure(&compiled.graph, targets).map(Some).map_err(|unknown| {
        let ids = || compiled.graph.nodes.iter().map(|n| n.id.as_str());
        let did_you_mean =
            unknown.iter().filter_map(|u| iade_compiler::closest(u, ids())).map(str::to_string).collect();
        Error::UnknownTargets { unknown, did_you_mean }
    })
}

pub(crate) fn env<'a>(
    compiled: &Compiled,
    name: &'a str,
    rt: &'a Runtime,
    options: &RunOptions,
    events: &'a dyn iade_engine::Events,
) -> Env<'a> {
    // Each provider learns the stack's instances of its type before the run.
    for (provider_type, provider) in rt.providers.iter() {
        let instances: std::collections::BTreeMap<String, iade_provider::Fields> = compiled
            .graph
            .providers
            .iter()
            .filter(|p| p.provider_type == provider_type)
            .map(|p| (p.name.clone(), p.settings.clone().into()))
            .collect();
        provider.configure(&instances);
    }
    Env {
        stack: name,
        providers: &rt.providers,
        secrets: rt.secrets.as_ref(),
        stack_dir: compiled.stack_dir.clone(),
        parallelism: options.parallelism,
        cancelled: &rt.cancelled,
        events,
        diffs: options.diffs,
        state_dir: Some(options.journal_for(compiled).state_dir(&compiled.stack_dir)),
        lease: None,
    }
}

/// What the journal owes and remembers, read without the lease: the objects the stack
/// applied and the refreshes still pending. Nothing when the stack has no journal yet.
fn obligations(
    compiled: &Compiled,
    rt: &Runtime,
    options: &RunOptions,
) -> Result<(Vec<iade_journal::AppliedIdentity>, Vec<iade_journal::PendingRefresh>), Error> {
    let location = options.journal_for(compiled);
    if !location.exists() {
        return Ok((Vec::new(), Vec::new()));
    }
    let store = location.open(&compiled.stack_id(&rt.host))?;
    let mut pending = store.pending_refreshes()?;
    // A change a crash interrupted before its outcome was recorded owes its refreshes too: the
    // next converge settles it and records them (or makes the change again, which notifies).
    use iade_journal::StepAction::{Create, Delete, Run, Update};
    for step in store.interrupted()?.steps {
        if !matches!(step.action, Create | Update | Delete | Run) {
            continue;
        }
        let Some(node) = compiled.graph.node(&step.resource) else { continue };
        for t in &node.notify {
            pending.push(iade_journal::PendingRefresh {
                resource: t.clone(),
                notified_by: step.resource.clone(),
                run: step.run,
            });
        }
    }
    Ok((store.applied()?, pending))
}

/// Observes and diffs, changing nothing and taking no lease.
pub fn plan(compiled: &Compiled, rt: &Runtime, options: &RunOptions, sink: &dyn Sink) -> Result<Plan, Error> {
    Ok(observe(compiled, rt, options, sink, false)?.0)
}

/// What `converge --detect-only` found: the plan and the controls on what it observed.
#[derive(Debug, Clone)]
pub struct Detection {
    pub plan: Plan,
    pub compliance: ComplianceReport,
}

/// Observes, diffs and evaluates the controls, changing nothing and taking no lease.
pub fn detect(
    compiled: &Compiled,
    rt: &Runtime,
    options: &RunOptions,
    sink: &dyn Sink,
) -> Result<Detection, Error> {
    let (plan, compliance) = observe(compiled, rt, options, sink, true)?;
    Ok(Detection { plan, compliance: compliance.unwrap_or_default() })
}

/// The plan of `plan` and `--detect-only`, with the journal's obligations read (never
/// written), and the controls on what it observed when asked.
fn observe(
    compiled: &Compiled,
    rt: &Runtime,
    options: &RunOptions,
    sink: &dyn Sink,
    controls: bool,
) -> Result<(Plan, Option<ComplianceReport>), Error> {
    let only = scope(compiled, &options.targets)?;
    let forward = Forward(sink);
    let name = compiled.stack_name();
    let env = env(compiled, &name, rt, options, &forward);
    let (applied, pending) = obligations(compiled, rt, options)?;
    let stack = Stack::new(&compiled.graph, &compiled.program)
        .with_obligations(&applied, &pending)
        .pruning(options.prunes(compiled));
    let plan = iade_engine::plan(&stack, &env, only.as_ref());
    let compliance = controls.then(|| iade_engine::evaluate_controls(&stack, &env, &plan));
    Ok((plan, compliance))
}

/// How a one-shot `converge` ended.
#[derive(Debug)]
pub enum Converged {
    /// This engine ran.
    Ran(RunReport),
    /// The watching engine that holds the lease ran a pass for it.
    Served { holder: Holder, record: RunRecord },
    /// The watching engine enforces another intent and refused.
    Refused { holder: Holder, reason: String },
    /// Another engine holds the lease (named when the journal knows it).
    Held(Option<Holder>),
}

/// Takes the lease and runs a durable converge; or, when a `--watch` engine holds the lease,
/// asks it for a pass over the same intent.
pub fn converge(
    compiled: &Compiled,
    rt: &Runtime,
    options: &RunOptions,
    sink: &dyn Sink,
) -> Result<Converged, Error> {
    let only = scope(compiled, &options.targets)?;
    let location = options.journal_for(compiled);
    let stack = compiled.stack_id(&rt.host);
    let session_options = SessionOptions {
        watch: false,
        wait: options.wait,
        pid: std::process::id(),
        host: rt.host.clone(),
        lease_ttl: rt.lease_ttl,
    };
    let waiting = |h: Option<&Holder>| sink.event(Event::WaitingForLease(h));
    let mut session = match Session::open(&stack, &compiled.stack_dir, &location, &session_options, &waiting)
    {
        Ok(s) => s,
        Err(SessionError::Held(Some(h))) if h.watch => {
            return ask_watcher(compiled, rt, options, &location, h, sink);
        }
        Err(SessionError::Held(h)) => return Ok(Converged::Held(h)),
        Err(SessionError::Failed(e)) => return Err(e),
    };
    let failpoint = options.failpoint.as_deref().and_then(Failpoint::parse);
    let engine_options = ConvergeOptions {
        failpoint: failpoint.as_ref(),
        retries: options.retries,
        only: only.as_ref(),
        mode: RunMode::Converge,
        lease_ttl: rt.lease_ttl,
        host: &rt.host,
    };
    session.start_heartbeat();
    let forward = Forward(sink);
    // A converge shows what it did, not diffs of what it is about to write.
    let name = compiled.stack_name();
    let env = Env { diffs: false, ..env(compiled, &name, rt, options, &forward) };
    let clock = session.clock();
    let env = Env { lease: Some(&clock), ..env };
    let graph = Stack::new(&compiled.graph, &compiled.program).pruning(options.prunes(compiled));
    let epoch = session.epoch();
    let result = iade_engine::converge(&graph, &env, session.store(), epoch, &engine_options);
    session.close()?;
    Ok(Converged::Ran(result?))
}

/// A digest of what a pass enforces: the compiled intent (secrets by name, never value), which
/// of the secrets it uses are given, and the run's targets. A watcher serves a request only
/// when its own digest is the same.
pub fn intent_digest(
    compiled: &Compiled,
    secrets: &dyn iade_provider::Secrets,
    targets: &[String],
) -> String {
    let mut used = BTreeSet::new();
    fn canon(v: &Value, out: &mut String) {
        match v {
            Value::Secret(s) => {
                out.push_str("secret(");
                out.push_str(&s.names().collect::<Vec<_>>().join(","));
                out.push(')');
            }
            Value::List(items) => {
                out.push('[');
                for i in items.iter() {
                    canon(i, out);
                    out.push(',');
                }
                out.push(']');
            }
            Value::Record(entries) => {
                out.push('{');
                for (k, i) in entries.iter() {
                    out.push_str(&format!("{k:?}="));
                    canon(i, out);
                    out.push(',');
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    fn names(v: &Value, used: &mut BTreeSet<String>) {
        match v {
            Value::Secret(s) => used.extend(s.names().map(str::to_string)),
            Value::List(items) => items.iter().for_each(|i| names(i, used)),
            Value::Record(entries) => entries.values().for_each(|i| names(i, used)),
            _ => {}
        }
    }
    let mut text = String::new();
    for n in &compiled.graph.nodes {
        let (id, kind, manage) = (&n.id, &n.kind, n.manage.as_str());
        text.push_str(&format!("\n{id}|{kind}|{:?}|{:?}|{manage}", n.provider_type, n.provider));
        for (k, a) in &n.attrs {
            text.push_str(&format!("|{k}="));
            canon(&a.value, &mut text);
            names(&a.value, &mut used);
        }
    }
    let given: Vec<&String> = used.iter().filter(|n| secrets.resolve(n).is_ok()).collect();
    for e in &compiled.graph.edges {
        text.push_str(&format!("\n{}>{}", e.from, e.to));
    }
    text.push_str(&format!("\nsecrets given={given:?}\ntargets={targets:?}"));
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Asks the watching engine for a pass over this intent and waits for its answer.
fn ask_watcher(
    compiled: &Compiled,
    rt: &Runtime,
    options: &RunOptions,
    location: &JournalLocation,
    holder: Holder,
    sink: &dyn Sink,
) -> Result<Converged, Error> {
    sink.event(Event::AskingWatcher(&holder));
    let stack = compiled.stack_id(&rt.host);
    let mut store = location.open(&stack)?;
    let digest = intent_digest(compiled, rt.secrets.as_ref(), &options.targets);
    let request = store.request_pass(&PassRequest { digest })?;
    let deadline = Instant::now() + LEASE_TTL;
    while Instant::now() < deadline && !rt.is_cancelled() {
        match store.request_answer(request)? {
            Some(RequestAnswer::Served(run)) => {
                let record = record(store.as_ref(), run)?.ok_or(Error::NoSuchRun(run))?;
                return Ok(Converged::Served { holder, record });
            }
            Some(RequestAnswer::Refused(reason)) => return Ok(Converged::Refused { holder, reason }),
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    Err(Error::Io(format!(
        "the watching engine (pid {} on {}) did not answer within {} s",
        holder.pid,
        holder.host,
        LEASE_TTL.as_secs()
    )))
}
