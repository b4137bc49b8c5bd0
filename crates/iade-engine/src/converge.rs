//! A durable run: resume what a crash interrupted, observe, plan, and correct in dependency
//! order, journaling each step's intent before its effect and its outcome after.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use iade_journal::{Drift, JournalError, StepIntent, StepStatus, Store};
use iade_provider::{ErrorClass, Observed, ProviderError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::compliance::{ComplianceReport, evaluate_controls};
use crate::plan::{Action, Plan, PlannedResource, plan};
use crate::{Env, Stack};

/// A deterministic crash at a protocol point, for tests: `IADE_FAILPOINT=after-intent` (or
/// `after-intent:3` for the third time the point is reached). The process aborts there, as a
/// `kill -9` would stop it.
#[derive(Debug)]
pub struct Failpoint {
    point: String,
    nth: u32,
    seen: AtomicU32,
}

/// The protocol points, in the order a step passes them.
pub const FAILPOINTS: &[&str] = &["before-intent", "after-intent", "after-effect", "after-outcome"];

impl Failpoint {
    pub fn parse(spec: &str) -> Option<Failpoint> {
        let (point, nth) = match spec.split_once(':') {
            Some((p, n)) => (p, n.parse().ok()?),
            None => (spec, 1),
        };
        FAILPOINTS.contains(&point).then(|| Failpoint {
            point: point.to_string(),
            nth,
            seen: AtomicU32::new(0),
        })
    }

    fn hit(this: Option<&Failpoint>, point: &str) {
        if let Some(f) = this
            && f.point == point
            && f.seen.fetch_add(1, Ordering::SeqCst) + 1 == f.nth
        {
            eprintln!("iade: failpoint `{point}` reached; stopping abruptly");
            std::process::abort();
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepReport {
    pub resource: String,
    pub action: String,
    /// `done`, `failed` or `skipped`.
    pub status: String,
    pub error: Option<String>,
    pub attempts: u32,
}

/// What resuming an interrupted run found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResumeReport {
    pub interrupted_runs: Vec<i64>,
    /// Steps a crash left unfinished whose effect was visible: recorded done, not repeated.
    pub done_by_observation: Vec<String>,
    /// Steps a crash left unfinished whose effect was not visible: planned again.
    pub abandoned: Vec<String>,
    pub temp_files_removed: usize,
}

/// Where a run's time went, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timings {
    pub observe_ms: f64,
    pub apply_ms: f64,
    /// Time spent committing to the journal (intents, outcomes, drift, findings, the run).
    pub journal_ms: f64,
    pub controls_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub run: i64,
    pub timings: Timings,
    pub resume: ResumeReport,
    pub plan: Plan,
    pub steps: Vec<StepReport>,
    pub compliance: ComplianceReport,
}

impl RunReport {
    pub fn failed(&self) -> usize {
        self.steps.iter().filter(|s| s.status == "failed").count()
    }
}

pub struct Options<'a> {
    pub failpoint: Option<&'a Failpoint>,
    /// How often a transient error is retried.
    pub retries: u32,
    /// Reconcile only these resources (a filesystem event on one of them).
    pub only: Option<&'a BTreeSet<String>>,
    /// The lease is renewed for this long before each wave, so a long run keeps it.
    pub lease_ttl: Duration,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("retries", &self.retries).finish_non_exhaustive()
    }
}

fn digest(r: &PlannedResource) -> String {
    let mut h = Sha256::new();
    h.update(r.id.as_bytes());
    for (k, v) in &r.target.intended {
        // Display redacts secrets: the digest never depends on a secret's value.
        h.update(format!("\u{0}{k}={v}").as_bytes());
    }
    let mut out = String::with_capacity(16);
    for b in h.finalize().iter().take(8) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn changes_json(r: &PlannedResource) -> String {
    serde_json::to_string(&r.changes).unwrap_or_else(|_| "[]".into())
}

/// Settles what a crashed run left: re-observes each unfinished step's resource; if its
/// effect is visible, records it done by observation, otherwise abandoned (this run plans it
/// again). Removes temporary files the crash may have left.
fn resume(
    stack: &Stack<'_>,
    env: &Env<'_>,
    journal: &mut dyn Store,
    epoch: i64,
) -> Result<ResumeReport, JournalError> {
    let (runs, steps) = journal.interrupted(None)?;
    let mut report = ResumeReport { interrupted_runs: runs.clone(), ..ResumeReport::default() };
    if runs.is_empty() && steps.is_empty() {
        return Ok(report);
    }
    // What a crash left behind goes first (temporary files, commands still running), so the
    // observation below sees the environment as it is.
    let cx = env.context();
    for node in &stack.graph.nodes {
        let Some(p) = node.provider_type.as_deref().and_then(|p| env.providers.get(p)) else { continue };
        if let Ok(n) = p.cleanup(&node.kind, &crate::target(node), &cx) {
            report.temp_files_removed += n;
        }
    }
    let ids: BTreeSet<String> = steps.iter().map(|s| s.resource.clone()).collect();
    let fresh = plan(stack, env, Some(&ids));
    let settled_now: HashMap<&str, bool> = fresh
        .resources
        .iter()
        .map(|r| (r.id.as_str(), r.error.is_none() && r.action == Action::None))
        .collect();
    let mut statuses = Vec::new();
    for s in &steps {
        let visible = settled_now.get(s.resource.as_str()).copied().unwrap_or(false);
        // Visible in the page cache is not yet durable: the crash may have come between a
        // rename and the sync of its directory. Sync it before recording it done.
        let durable = visible
            && fresh.resources.iter().find(|r| r.id == s.resource).is_some_and(|r| {
                env.providers
                    .get(&r.provider)
                    .is_some_and(|p| p.make_durable(&r.kind, &r.target, &cx).is_ok())
            });
        if durable {
            statuses.push((s.id, StepStatus::DoneByObservation));
            report.done_by_observation.push(s.resource.clone());
        } else {
            statuses.push((s.id, StepStatus::Abandoned));
            report.abandoned.push(s.resource.clone());
        }
    }
    journal.settle_interrupted(epoch, &runs, &statuses)?;
    Ok(report)
}

/// Converges the stack: the whole durable run, journaled under `epoch`.
pub fn converge(
    stack: &Stack<'_>,
    env: &Env<'_>,
    journal: &mut dyn Store,
    epoch: i64,
    options: &Options<'_>,
) -> Result<RunReport, JournalError> {
    let mut timings = Timings::default();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    let resume = resume(stack, env, journal, epoch)?;
    // Observation first: the run is recorded together with the drift it found.
    let t = Instant::now();
    let mut current = plan(stack, env, options.only);
    timings.observe_ms += ms(t);
    let drift: Vec<Drift> = current
        .pending()
        .flat_map(|r| {
            r.changes.iter().map(|c| Drift {
                resource: r.id.clone(),
                field: c.field.clone(),
                observed: c.observed.clone().unwrap_or_else(|| "(absent)".into()),
                intended: c.intended.clone(),
            })
        })
        .collect();
    // A filesystem event that turns out to be no drift (often the echo of a correction)
    // leaves no trace in the journal.
    if options.only.is_some()
        && drift.is_empty()
        && current.errors().next().is_none()
        && resume.interrupted_runs.is_empty()
    {
        return Ok(RunReport {
            run: 0,
            timings,
            resume,
            plan: current,
            steps: Vec::new(),
            compliance: ComplianceReport::default(),
        });
    }
    let t = Instant::now();
    let run = journal.begin_run(epoch, if options.only.is_some() { "event" } else { "converge" }, &drift)?;
    timings.journal_ms += ms(t);
    let steps = execute(stack, env, (journal, epoch, run), &current, options, &mut timings)?;

    // What changed is observed again, so controls judge the environment as it now is.
    let changed: BTreeSet<String> =
        steps.iter().filter(|s| s.status == "done").map(|s| s.resource.clone()).collect();
    if !changed.is_empty() {
        let t = Instant::now();
        let again = plan(stack, env, Some(&changed));
        timings.observe_ms += ms(t);
        for r in again.resources {
            if let Some(slot) = current.resources.iter_mut().find(|x| x.id == r.id) {
                slot.observed = r.observed.clone();
            }
        }
    }
    let t = Instant::now();
    let compliance = evaluate_controls(stack, env, &current);
    timings.controls_ms += ms(t);
    let t = Instant::now();
    let failed = steps.iter().filter(|s| s.status == "failed").count();
    let summary = serde_json::json!({
        "resources": current.resources.len(),
        "drifted": current.pending().count(),
        "done": changed.len(),
        "failed": failed,
        "skipped": steps.iter().filter(|s| s.status == "skipped").count(),
        "observe_errors": current.errors().count(),
        "controls": { "passed": compliance.passed, "failed": compliance.failed, "unknown": compliance.unknown },
        "resumed": { "done_by_observation": resume.done_by_observation.len(), "abandoned": resume.abandoned.len() },
    });
    let status = if failed > 0 || current.errors().next().is_some() { "failed" } else { "done" };
    journal.finish_run(epoch, run, status, &summary, &compliance.findings)?;
    timings.journal_ms += ms(t);
    Ok(RunReport { run, timings, resume, plan: current, steps, compliance })
}

/// The depth of each resource in the dependency graph: 0 for no dependencies.
fn levels(stack: &Stack<'_>) -> (HashMap<String, usize>, HashMap<String, Vec<String>>) {
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    for e in &stack.graph.edges {
        deps.entry(e.to.clone()).or_default().push(e.from.clone());
    }
    let mut level: HashMap<String, usize> = HashMap::new();
    fn depth(
        id: &str,
        deps: &HashMap<String, Vec<String>>,
        level: &mut HashMap<String, usize>,
        guard: usize,
    ) -> usize {
        if let Some(l) = level.get(id) {
            return *l;
        }
        // The compiler rejects cycles; the guard only keeps a malformed graph from looping.
        let l = if guard > 10_000 {
            0
        } else {
            deps.get(id)
                .map_or(0, |ds| ds.iter().map(|d| depth(d, deps, level, guard + 1) + 1).max().unwrap_or(0))
        };
        level.insert(id.to_string(), l);
        l
    }
    for n in &stack.graph.nodes {
        depth(&n.id, &deps, &mut level, 0);
    }
    (level, deps)
}

fn depends_on_failed(
    id: &str,
    deps: &HashMap<String, Vec<String>>,
    failed: &BTreeSet<String>,
    seen: &mut BTreeSet<String>,
) -> Option<String> {
    for d in deps.get(id).into_iter().flatten() {
        if failed.contains(d) {
            return Some(d.clone());
        }
        if seen.insert(d.clone())
            && let Some(f) = depends_on_failed(d, deps, failed, seen)
        {
            return Some(f);
        }
    }
    None
}

/// Runs the steps in waves of equal dependency depth. Per wave: the intents are committed in
/// one transaction, the effects run (at most `parallelism` at once, transient errors retried
/// with backoff), then the outcomes are committed in one transaction.
fn execute(
    stack: &Stack<'_>,
    env: &Env<'_>,
    (journal, epoch, run): (&mut dyn Store, i64, i64),
    plan: &Plan,
    options: &Options<'_>,
    timings: &mut Timings,
) -> Result<Vec<StepReport>, JournalError> {
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    let (level, deps) = levels(stack);
    // Creates and updates go from dependencies to dependents; deletes the other way round and
    // after them (a directory is removed once what was in it is gone).
    let deepest = level.values().copied().max().unwrap_or(0);
    let mut waves: BTreeMap<usize, Vec<&PlannedResource>> = BTreeMap::new();
    for r in plan.pending().filter(|r| {
        r.error.is_none()
            && matches!(r.action, Action::Create | Action::Update | Action::Delete | Action::Run)
    }) {
        let l = level.get(&r.id).copied().unwrap_or(0);
        let wave = if r.action == Action::Delete { deepest + 1 + (deepest - l) } else { l };
        waves.entry(wave).or_default().push(r);
    }
    // Resources that could not be observed count as failed for their dependents.
    let mut failed: BTreeSet<String> = plan.errors().map(|r| r.id.clone()).collect();
    let mut reports = Vec::new();
    let cx = env.context();
    for (_, wave) in waves {
        let mut runnable = Vec::new();
        let mut skipped = Vec::new();
        for r in wave {
            match depends_on_failed(&r.id, &deps, &failed, &mut BTreeSet::new()) {
                Some(dep) => skipped.push((r, dep)),
                None => runnable.push(r),
            }
        }
        let intents: Vec<StepIntent> = runnable
            .iter()
            .chain(skipped.iter().map(|(r, _)| r))
            .map(|r| {
                let d = digest(r);
                StepIntent {
                    resource: r.id.clone(),
                    action: r.action.as_str().to_string(),
                    idempotency_key: format!("{}:{}:{d}", r.id, r.action.as_str()),
                    digest: d,
                    changes: changes_json(r),
                }
            })
            .collect();
        Failpoint::hit(options.failpoint, "before-intent");
        let t = Instant::now();
        journal.renew_lease(epoch, options.lease_ttl)?;
        let ids = journal.record_intents(epoch, run, &intents)?;
        timings.journal_ms += ms(t);
        Failpoint::hit(options.failpoint, "after-intent");
        let t = Instant::now();
        let mut results =
            crate::parallel_map(&runnable, env.parallelism, |r| apply_once(env, &cx, r, options.retries));
        // The effects become durable together; only then are the steps recorded done.
        let used: BTreeSet<&str> = runnable.iter().map(|r| r.provider.as_str()).collect();
        for name in used {
            let Some(p) = env.providers.get(name) else { continue };
            match p.flush(&cx) {
                Ok(failures) => {
                    for (id, e) in failures {
                        for ((result, _), r) in results.iter_mut().zip(&runnable) {
                            if r.id == id && result.is_ok() {
                                *result = Err(e.clone());
                            }
                        }
                    }
                }
                Err(e) => {
                    for ((result, _), r) in results.iter_mut().zip(&runnable) {
                        if r.provider == name && result.is_ok() {
                            *result = Err(e.clone());
                        }
                    }
                }
            }
        }
        timings.apply_ms += ms(t);
        Failpoint::hit(options.failpoint, "after-effect");
        let mut outcomes = Vec::new();
        for ((r, (result, attempts)), id) in runnable.iter().zip(results).zip(&ids) {
            let (status, error) = match result {
                Ok(()) => (StepStatus::Done, None),
                Err(e) => {
                    failed.insert(r.id.clone());
                    (StepStatus::Failed, Some(e.message))
                }
            };
            reports.push(StepReport {
                resource: r.id.clone(),
                action: r.action.as_str().into(),
                status: status.as_str().into(),
                error: error.clone(),
                attempts,
            });
            outcomes.push((*id, status, error));
        }
        for ((r, dep), id) in skipped.iter().zip(&ids[runnable.len()..]) {
            failed.insert(r.id.clone());
            let why = format!("it depends on {dep}, which failed");
            reports.push(StepReport {
                resource: r.id.clone(),
                action: r.action.as_str().into(),
                status: "skipped".into(),
                error: Some(why.clone()),
                attempts: 0,
            });
            outcomes.push((*id, StepStatus::Skipped, Some(why)));
        }
        let corrected: Vec<String> = runnable
            .iter()
            .filter(|r| reports.iter().any(|s| s.resource == r.id && s.status == "done"))
            .map(|r| r.id.clone())
            .collect();
        let t = Instant::now();
        journal.record_outcomes(epoch, run, &outcomes, &corrected)?;
        timings.journal_ms += ms(t);
        Failpoint::hit(options.failpoint, "after-outcome");
    }
    Ok(reports)
}

fn apply_once(
    env: &Env<'_>,
    cx: &iade_provider::Context<'_>,
    r: &PlannedResource,
    retries: u32,
) -> (Result<(), ProviderError>, u32) {
    let Some(provider) = env.providers.get(&r.provider) else {
        return (
            Err(ProviderError::permanent(format!("no provider `{}` in this build of iade", r.provider))),
            0,
        );
    };
    let observed = r.observed.clone().unwrap_or(Observed::Absent);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match r.action {
            Action::Delete => provider.delete(&r.kind, &r.target, cx),
            _ => provider.apply(&r.kind, &r.target, &observed, cx),
        };
        match result {
            Err(e)
                if e.class == ErrorClass::Transient
                    && attempt <= retries
                    && !env.cancelled.load(std::sync::atomic::Ordering::Relaxed) =>
            {
                // Exponential backoff with jitter, so retries from parallel steps spread out.
                let base = 50u64 << attempt.min(6);
                let jitter =
                    (u64::from(std::process::id()) ^ (attempt as u64 * 7919) ^ (r.id.len() as u64 * 104_729))
                        % base;
                std::thread::sleep(Duration::from_millis(base + jitter));
            }
            other => return (other, attempt),
        }
    }
}
