//! A durable run: resume what a crash interrupted, observe in dependency order, and correct in
//! waves, journaling each step's intent before its effect and its outcome after.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use iade_intent::Node;
use iade_journal::{
    AppliedIdentity, Drift, Epoch, JournalError, Output, PendingRefresh, ResourceError, RunId, RunMode,
    RunStart, RunStatus, RunSummary, StepAction, StepChange, StepIntent, StepOutcome, StepStatus, Store,
    WaveOutcome,
};
use iade_provider::{Applied, ErrorClass, Observed, ProviderError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::compliance::{ComplianceReport, evaluate_controls};
use crate::events::Event;
use crate::graph::Deps;
use crate::plan::{Action, Plan, PlannedResource, deferred, observe, plan, planned};
use crate::{Env, Stack};

/// A deterministic crash at a protocol point, for tests: `IADE_FAILPOINT=after-intent` (or
/// `after-intent:3` for the third time the point is reached). The process aborts there, as a
/// `kill -9` would stop it. With `:pause=FILE` it does not abort: it creates `FILE` and waits
/// until the test removes it, so a test can change the environment at exactly that point
/// (swap a file for a link between observation and correction).
#[derive(Debug)]
pub struct Failpoint {
    point: String,
    nth: u32,
    pause: Option<std::path::PathBuf>,
    seen: AtomicU32,
}

/// The protocol points, in the order a run passes them.
pub const FAILPOINTS: &[&str] =
    &["after-observe", "before-intent", "after-intent", "after-effect", "after-outcome"];

impl Failpoint {
    pub fn parse(spec: &str) -> Option<Failpoint> {
        let (spec, pause) = match spec.split_once(":pause=") {
            Some((s, file)) => (s, Some(std::path::PathBuf::from(file))),
            None => (spec, None),
        };
        let (point, nth) = match spec.split_once(':') {
            Some((p, n)) => (p, n.parse().ok()?),
            None => (spec, 1),
        };
        FAILPOINTS.contains(&point).then(|| Failpoint {
            point: point.to_string(),
            nth,
            pause,
            seen: AtomicU32::new(0),
        })
    }

    fn hit(this: Option<&Failpoint>, point: &str) {
        let Some(f) = this else { return };
        if f.point != point || f.seen.fetch_add(1, Ordering::SeqCst) + 1 != f.nth {
            return;
        }
        match &f.pause {
            Some(file) => {
                let _ = std::fs::write(file, point);
                let deadline = Instant::now() + Duration::from_secs(60);
                while file.exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            None => {
                eprintln!("iade: failpoint `{point}` reached; stopping abruptly");
                std::process::abort();
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepReport {
    pub resource: String,
    /// What the step does; `null` for a resource never observed because a dependency failed.
    pub action: Option<StepAction>,
    pub status: StepStatus,
    pub error: Option<String>,
    /// What the command that made (or failed to make) the change printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    pub attempts: u32,
}

/// What resuming an interrupted run found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResumeReport {
    pub interrupted_runs: Vec<RunId>,
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
    /// The journal's run; `null` for an event pass that found nothing (it leaves no trace).
    pub run: Option<RunId>,
    pub status: RunStatus,
    pub summary: RunSummary,
    pub timings: Timings,
    pub resume: ResumeReport,
    pub plan: Plan,
    pub steps: Vec<StepReport>,
    /// What could not be observed or compared, as the journal records it.
    pub errors: Vec<ResourceError>,
    pub compliance: ComplianceReport,
}

pub struct Options<'a> {
    pub failpoint: Option<&'a Failpoint>,
    /// How often a transient error is retried.
    pub retries: u32,
    /// Reconcile only these resources (a filesystem event on them, or `--target`).
    pub only: Option<&'a BTreeSet<String>>,
    pub mode: RunMode,
    /// How long the lease lasts; it is renewed before every wave.
    pub lease_ttl: Duration,
    /// The host the run is recorded on.
    pub host: &'a str,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("retries", &self.retries)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The most steps a wave runs at once (see [`execute_waves`]).
const STEPS_PER_BATCH: usize = 1024;

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

fn drift_of(r: &PlannedResource) -> Vec<Drift> {
    if !(r.is_pending() || r.action == Action::Drift) {
        return Vec::new();
    }
    r.changes
        .iter()
        .filter(|c| c.unknown.is_none())
        .map(|c| Drift {
            resource: r.id.clone(),
            field: c.field.clone(),
            observed: c.observed.clone(),
            intended: c.intended.clone(),
        })
        .collect()
}

/// Settles what a crashed run left: re-observes each unfinished step's resource; if its
/// effect is visible, records it done by observation, otherwise abandoned (this run plans it
/// again). Removes what the crash may have left behind (temporary files, commands).
fn resume(
    stack: &Stack<'_>,
    env: &Env<'_>,
    journal: &mut dyn Store,
    epoch: Epoch,
) -> Result<ResumeReport, JournalError> {
    let left = journal.interrupted()?;
    let mut report = ResumeReport { interrupted_runs: left.runs.clone(), ..ResumeReport::default() };
    // What a crash left behind goes first, found in the environment, whether or not the
    // journal still knows of the interrupted run (it may have been replaced or restored).
    report.temp_files_removed = cleanup(stack, env);
    if left.is_empty() {
        return Ok(report);
    }
    let cx = env.context();
    let ids: BTreeSet<String> = left.steps.iter().map(|s| s.resource.clone()).collect();
    let fresh = plan(stack, env, Some(&ids));
    let mut statuses = Vec::new();
    let mut notified = Vec::new();
    let at: HashMap<&str, &crate::plan::PlannedResource> =
        fresh.resources.iter().map(|r| (r.id.as_str(), r)).collect();
    for s in &left.steps {
        let r = at.get(s.resource.as_str()).copied();
        // A refresh leaves nothing to observe: one a crash interrupted runs again (it is still
        // pending; only its recorded success clears it).
        let visible = s.action != StepAction::Refresh
            && r.is_some_and(|r| r.error.is_none() && r.action == Action::None);
        // Visible in the page cache is not yet durable: the crash may have come between a
        // rename and the sync of its directory. Sync it before recording it done.
        let durable = visible
            && r.is_some_and(|r| {
                env.providers
                    .get(&r.provider)
                    .is_some_and(|p| p.make_durable(&r.kind, &r.target, &cx).is_ok())
            });
        if durable {
            statuses.push((s.id, StepStatus::DoneByObservation));
            report.done_by_observation.push(s.resource.clone());
            // The change happened: what it notifies is owed, as if its outcome had been
            // recorded.
            let changes_env = matches!(
                s.action,
                StepAction::Create | StepAction::Update | StepAction::Delete | StepAction::Run
            );
            if changes_env && let Some(node) = stack.graph.node(&s.resource) {
                for t in &node.notify {
                    notified.push(PendingRefresh {
                        resource: t.clone(),
                        notified_by: s.resource.clone(),
                        run: s.run,
                    });
                }
            }
        } else {
            statuses.push((s.id, StepStatus::Abandoned));
            report.abandoned.push(s.resource.clone());
        }
    }
    journal.settle_interrupted(epoch, &left.runs, &statuses, &notified)?;
    Ok(report)
}

/// Asks every provider to remove what interrupted changes left (temporary files, commands
/// still running), per kind; returns how many things went.
fn cleanup(stack: &Stack<'_>, env: &Env<'_>) -> usize {
    let mut groups: BTreeMap<(&str, &str), Vec<iade_provider::Target>> = BTreeMap::new();
    for n in &stack.graph.nodes {
        if let Some(p) = n.provider_type.as_deref() {
            // By identity: every run pays for this, so the intended values are not copied.
            groups.entry((p, n.kind.as_str())).or_default().push(crate::identity_target(n));
        }
    }
    let cx = env.context();
    groups
        .iter()
        .filter_map(|((p, kind), targets)| {
            let refs: Vec<&iade_provider::Target> = targets.iter().collect();
            env.providers.get(p)?.cleanup(kind, &refs, &cx).ok()
        })
        .sum()
}

/// The first observation of a converge, one dependency depth at a time: a resource whose
/// dependency has pending changes is not observed yet (it is [`Action::Deferred`]) but at its
/// own wave, after them, so it sees the environment they make.
fn observe_in_order(stack: &Stack<'_>, env: &Env<'_>, only: Option<&BTreeSet<String>>, deps: &Deps) -> Plan {
    let mut levels: BTreeMap<usize, Vec<&Node>> = BTreeMap::new();
    for n in stack.graph.nodes.iter().filter(|n| only.is_none_or(|o| o.contains(&n.id))) {
        levels.entry(deps.level(&n.id)).or_default().push(n);
    }
    // Each node is planned once (deferred or observed), so ids do not repeat.
    let mut out: Vec<PlannedResource> = Vec::with_capacity(stack.graph.nodes.len());
    let mut waiting: BTreeSet<String> = BTreeSet::new();
    for nodes in levels.into_values() {
        let mut now = Vec::new();
        for n in nodes {
            let after: Vec<String> =
                deps.direct(&n.id).iter().filter(|d| waiting.contains(**d)).map(|d| d.to_string()).collect();
            if after.is_empty() {
                now.push(n);
            } else {
                waiting.insert(n.id.clone());
                out.push(deferred(n, after));
            }
        }
        let mut differ = 0;
        for (n, result) in now.iter().zip(observe(&now, env)) {
            let r = planned(n, result, env);
            // A dependency being deleted goes after its dependents: they are observed now.
            if r.is_pending() && r.action != Action::Delete {
                waiting.insert(r.id.clone());
            }
            differ += usize::from(r.action != Action::None);
            out.push(r);
        }
        if !now.is_empty() {
            env.events.emit(&Event::Observed { resources: now.len(), differ });
        }
    }
    out.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    Plan { resources: out, removals: Vec::new(), refreshes: Vec::new() }
}

/// Converges the stack: the whole durable run, journaled under `epoch`.
pub fn converge(
    stack: &Stack<'_>,
    env: &Env<'_>,
    journal: &mut dyn Store,
    epoch: Epoch,
    options: &Options<'_>,
) -> Result<RunReport, JournalError> {
    let mut timings = Timings::default();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    let resume = resume(stack, env, journal, epoch)?;
    // The obligations, read under the lease: they are this engine's to fulfil now.
    let applied = journal.applied()?;
    let pending = journal.pending_refreshes()?;
    let full = &Stack {
        graph: stack.graph,
        program: stack.program,
        applied: &applied,
        pending_refreshes: &pending,
        prune: stack.prune,
    };
    let deps = Deps::new(stack.graph);
    let t = Instant::now();
    let mut current = observe_in_order(full, env, options.only, &deps);
    if options.only.is_none() {
        current.removals = crate::removal::plan_removals(full, env);
    }
    current.refreshes = crate::plan::planned_refreshes(full, &current, &pending);
    timings.observe_ms += ms(t);
    // Past the removals, what the journal knew of a resource is only whether it was recorded
    // and protected (the upkeep below): the identities, a large stack's megabytes, go.
    let known: HashMap<String, bool> = applied.iter().map(|a| (a.resource.clone(), a.protected)).collect();
    drop(applied);
    let stack = &Stack {
        graph: stack.graph,
        program: stack.program,
        applied: &[],
        pending_refreshes: &pending,
        prune: stack.prune,
    };
    Failpoint::hit(options.failpoint, "after-observe");
    let drift: Vec<Drift> = current.resources.iter().flat_map(drift_of).collect();
    let errors: Vec<ResourceError> =
        current.resources.iter().chain(&current.removals).flat_map(PlannedResource::problems).collect();
    // A filesystem event that turns out to be no drift (often the echo of a correction)
    // leaves no trace in the journal.
    if options.mode == RunMode::Event
        && !current.has_drift()
        && errors.is_empty()
        && resume.interrupted_runs.is_empty()
    {
        let summary = RunSummary { resources: current.resources.len(), ..RunSummary::default() };
        return Ok(RunReport {
            run: None,
            status: RunStatus::Done,
            summary,
            timings,
            resume,
            plan: current,
            steps: Vec::new(),
            errors: Vec::new(),
            compliance: ComplianceReport::default(),
        });
    }
    let t = Instant::now();
    let mut start = RunStart {
        mode: options.mode,
        pid: std::process::id(),
        host: options.host.to_string(),
        drift,
        errors,
    };
    let run = journal.begin_run(epoch, &start)?;
    timings.journal_ms += ms(t);
    let mut errors = std::mem::take(&mut start.errors);
    let steps =
        execute(stack, env, (journal, epoch, run), &mut current, &deps, options, &mut timings, &mut errors)?;
    // Records of what the stack manages and the journal does not know yet (objects applied
    // before the journal existed, or adopted), and of orphans found gone.
    let t = Instant::now();
    let mut upkeep = WaveOutcome::default();
    for r in &current.resources {
        let present = matches!(r.observed, Some(Observed::Present(_)));
        let protect = stack.graph.node(&r.id).is_some_and(|n| n.protect);
        let owns = env.providers.get(&r.provider).is_some_and(|p| p.owns_objects(&r.kind));
        if r.action == Action::None
            && owns
            && r.error.is_none()
            && present
            && r.manage == iade_intent::Manage::Enforce
            && known.get(r.id.as_str()) != Some(&protect)
        {
            upkeep.applied.push(applied_identity(env, stack, r));
        }
    }
    for r in &current.removals {
        if r.observed == Some(Observed::Absent)
            && matches!(r.removal, Some(crate::removal::Removal::Orphan { .. }))
        {
            upkeep.deleted.push(r.id.clone());
        }
    }
    if !upkeep.applied.is_empty() || !upkeep.deleted.is_empty() {
        journal.record_outcomes(epoch, run, &upkeep)?;
    }
    timings.journal_ms += ms(t);

    // What changed is observed again, so controls judge the environment as it now is.
    let changed: BTreeSet<String> =
        steps.iter().filter(|s| s.status == StepStatus::Done).map(|s| s.resource.clone()).collect();
    if !changed.is_empty() {
        let t = Instant::now();
        let at: HashMap<&str, usize> =
            current.resources.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
        let nodes: Vec<(usize, &Node)> = stack
            .graph
            .nodes
            .iter()
            .filter(|n| changed.contains(&n.id))
            .filter_map(|n| at.get(n.id.as_str()).map(|&i| (i, n)))
            .collect();
        // In batches, as the steps ran: a large run does not hold every new observation twice.
        for batch in nodes.chunks(STEPS_PER_BATCH) {
            let just: Vec<&Node> = batch.iter().map(|(_, n)| *n).collect();
            for (&(i, n), (result, mark)) in batch.iter().zip(crate::plan::observe(&just, env)) {
                // Only what is observed is kept, as a plan would keep it: the object found
                // (also when another stack's mark refuses it), nothing on an error or without a
                // provider.
                let refused = crate::plan::other_owner(&result, &mark, env).is_some();
                current.resources[i].observed = match result {
                    Ok(obs) if refused || env.provider(n).is_some() => Some(obs),
                    _ => None,
                };
            }
        }
        timings.observe_ms += ms(t);
    }
    let t = Instant::now();
    let compliance = evaluate_controls(stack, env, &current);
    timings.controls_ms += ms(t);
    let summary = summarize(&current, &steps, &compliance, &resume);
    let status = if summary.has_errors() { RunStatus::Failed } else { RunStatus::Done };
    let t = Instant::now();
    journal.finish_run(epoch, run, status, &summary, &compliance.findings)?;
    timings.journal_ms += ms(t);
    Ok(RunReport {
        run: Some(run),
        status,
        summary,
        timings,
        resume,
        plan: current,
        steps,
        errors,
        compliance,
    })
}

fn summarize(
    plan: &Plan,
    steps: &[StepReport],
    compliance: &ComplianceReport,
    resume: &ResumeReport,
) -> RunSummary {
    let count = |s: StepStatus| steps.iter().filter(|r| r.status == s).count();
    let quiet = |r: &&StepReport| matches!(r.action, Some(StepAction::Refresh | StepAction::Adopt));
    RunSummary {
        resources: plan.resources.len(),
        drifted: plan
            .resources
            .iter()
            .chain(&plan.removals)
            .filter(|r| (r.is_pending() && r.action != Action::Adopt) || r.action == Action::Drift)
            .count(),
        changed: steps.iter().filter(|r| r.status == StepStatus::Done && !quiet(r)).count(),
        failed: count(StepStatus::Failed),
        skipped: count(StepStatus::Skipped),
        unobservable: plan
            .resources
            .iter()
            .chain(&plan.removals)
            .filter(|r| !r.refused)
            .map(|r| usize::from(r.error.is_some()) + r.unknown().count())
            .sum(),
        refused: plan.resources.iter().chain(&plan.removals).filter(|r| r.refused).count(),
        refreshed: steps
            .iter()
            .filter(|r| r.status == StepStatus::Done && r.action == Some(StepAction::Refresh))
            .count(),
        controls: iade_journal::ControlCounts {
            passed: compliance.passed,
            failed: compliance.failed,
            unknown: compliance.unknown,
            waived: compliance.waived,
        },
        resumed: iade_journal::ResumeCounts {
            done_by_observation: resume.done_by_observation.len(),
            abandoned: resume.abandoned.len(),
        },
    }
}

/// Runs the steps in waves of equal dependency depth. Per wave: deferred resources are
/// observed (their dependencies are done now), the intents are committed in one transaction,
/// the effects run (at most `parallelism` at once, transient errors retried with backoff),
/// the providers flush, then the outcomes are committed in one transaction. After a wave, the
/// refreshes of its depth run (each resource refreshed once, after its own step); deletions
/// of what the source no longer declares come last, deepest first.
#[expect(clippy::too_many_arguments, reason = "the run's parts, each borrowed differently")]
fn execute(
    stack: &Stack<'_>,
    env: &Env<'_>,
    (journal, epoch, run): (&mut dyn Store, Epoch, RunId),
    current: &mut Plan,
    deps: &Deps,
    options: &Options<'_>,
    timings: &mut Timings,
    errors: &mut Vec<ResourceError>,
) -> Result<Vec<StepReport>, JournalError> {
    let base = current.resources.len();
    current.resources.append(&mut current.removals);
    let result = execute_waves(stack, env, (journal, epoch, run), current, deps, options, timings, errors);
    current.removals = current.resources.split_off(base);
    result
}

#[expect(clippy::too_many_arguments, reason = "the run's parts, each borrowed differently")]
fn execute_waves(
    stack: &Stack<'_>,
    env: &Env<'_>,
    (journal, epoch, run): (&mut dyn Store, Epoch, RunId),
    current: &mut Plan,
    deps: &Deps,
    options: &Options<'_>,
    timings: &mut Timings,
    errors: &mut Vec<ResourceError>,
) -> Result<Vec<StepReport>, JournalError> {
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    // Creates and updates go from dependencies to dependents; deletes the other way round and
    // after them (a directory is removed once what was in it is gone); removals of what the
    // source no longer declares last, deepest first.
    let deepest = deps.deepest();
    let deepest_removal = current
        .resources
        .iter()
        .filter(|r| r.removal.is_some())
        .map(|r| crate::removal::depth(&r.target))
        .max();
    let mut waves: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, r) in current.resources.iter().enumerate() {
        let level = deps.level(&r.id);
        let wave = match r.action {
            _ if r.error.is_some() => continue,
            Action::Delete if r.removal.is_some() => {
                2 * deepest + 2 + (deepest_removal.unwrap_or(0) - crate::removal::depth(&r.target))
            }
            Action::Delete => deepest + 1 + (deepest - level),
            Action::Create | Action::Update | Action::Run | Action::Deferred | Action::Adopt => level,
            Action::None | Action::Drift | Action::Orphan => continue,
        };
        waves.entry(wave).or_default().push(i);
    }
    // Refreshes owed from earlier runs, and the depths at which refreshes may come due.
    let in_scope = |id: &str| options.only.is_none_or(|o| o.contains(id));
    let mut owed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in stack.pending_refreshes {
        if stack.graph.node(&p.resource).is_some() && in_scope(&p.resource) {
            owed.entry(p.resource.clone()).or_default().insert(p.notified_by.clone());
        }
    }
    for n in &stack.graph.nodes {
        for t in &n.notify {
            waves.entry(deps.level(t)).or_default();
        }
    }
    for t in owed.keys() {
        waves.entry(deps.level(t)).or_default();
    }
    // Resources that could not be observed count as failed for their dependents.
    let mut failed: BTreeSet<String> = current.errors().map(|r| r.id.clone()).collect();
    // One report per step, most of them known now: grown by doubling, 10,000 reports held
    // room for 16,384.
    let mut reports = Vec::with_capacity(current.resources.iter().filter(|r| r.is_pending()).count());
    let cx = env.context();
    let count = waves.len();
    for (index, (wave_key, in_wave)) in waves.into_iter().enumerate() {
        // A large wave runs in batches, each the whole protocol (intents, effects, outcomes):
        // what a batch holds is dropped before the next, so a run of 10,000 changes does not
        // hold every intent, drift and outcome at once. Resources of one wave do not depend
        // on each other, so the batches' order is free.
        for members in in_wave.chunks(STEPS_PER_BATCH) {
            'steps: {
                let mut found_drift = Vec::new();
                let mut found_errors = Vec::new();
                // Deferred resources: observed now that their dependencies are done, or never,
                // when one of those failed.
                let mut observe_now = Vec::new();
                for &i in members {
                    let r = &current.resources[i];
                    if r.action != Action::Deferred {
                        continue;
                    }
                    match deps.failed_dependency(&r.id, &failed) {
                        Some(dep) => {
                            let why = format!("not observed: it depends on {dep}, which failed");
                            failed.insert(r.id.clone());
                            found_errors.push(ResourceError {
                                resource: r.id.clone(),
                                field: None,
                                message: why.clone(),
                            });
                            let report = StepReport {
                                resource: r.id.clone(),
                                action: None,
                                status: StepStatus::Skipped,
                                error: Some(why),
                                output: None,
                                attempts: 0,
                            };
                            env.events.emit(&Event::Step(report.clone()));
                            reports.push(report);
                        }
                        None => observe_now.push(i),
                    }
                }
                if !observe_now.is_empty() {
                    let t = Instant::now();
                    let pairs: Vec<(usize, &Node)> = observe_now
                        .iter()
                        .filter_map(|&i| stack.graph.node(&current.resources[i].id).map(|n| (i, n)))
                        .collect();
                    let nodes: Vec<&Node> = pairs.iter().map(|(_, n)| *n).collect();
                    let results = observe(&nodes, env);
                    let mut differ = 0;
                    for ((i, node), result) in pairs.into_iter().zip(results) {
                        let mut fresh = planned(node, result, env);
                        fresh.after = std::mem::take(&mut current.resources[i].after);
                        if fresh.error.is_some() {
                            failed.insert(fresh.id.clone());
                        }
                        differ += usize::from(fresh.action != Action::None);
                        found_drift.extend(drift_of(&fresh));
                        found_errors.extend(fresh.problems());
                        current.resources[i] = fresh;
                    }
                    timings.observe_ms += ms(t);
                    env.events.emit(&Event::Observed { resources: nodes.len(), differ });
                }
                let mut runnable = Vec::new();
                let mut skipped = Vec::new();
                for &i in members {
                    let r = &current.resources[i];
                    if !r.is_pending() || r.error.is_some() {
                        continue;
                    }
                    match deps.failed_dependency(&r.id, &failed) {
                        Some(dep) => skipped.push((i, dep)),
                        None => runnable.push(i),
                    }
                }
                errors.extend(found_errors.iter().cloned());
                if runnable.is_empty() && skipped.is_empty() {
                    if !found_drift.is_empty() || !found_errors.is_empty() {
                        journal.record_intents(epoch, run, &[], &found_drift, &found_errors)?;
                    }
                    break 'steps;
                }
                let intents: Vec<StepIntent> = runnable
                    .iter()
                    .chain(skipped.iter().map(|(i, _)| i))
                    .map(|&i| step_intent(&current.resources[i]))
                    .collect();
                Failpoint::hit(options.failpoint, "before-intent");
                let t = Instant::now();
                journal.renew_lease(epoch, options.lease_ttl)?;
                if let Some(lease) = env.lease {
                    lease.renewed(t);
                }
                let ids = journal.record_intents(epoch, run, &intents, &found_drift, &found_errors)?;
                timings.journal_ms += ms(t);
                Failpoint::hit(options.failpoint, "after-intent");
                env.events.emit(&Event::Wave { index, waves: count, steps: runnable.len() });
                let t = Instant::now();
                let batch: Vec<&PlannedResource> = runnable.iter().map(|&i| &current.resources[i]).collect();
                let mut results = crate::parallel_map(&batch, env.parallelism, |r| {
                    apply_once(env, &cx, r, options.retries)
                });
                // The effects become durable together; only then are the steps recorded done.
                flush(env, &cx, &batch, &mut results);
                timings.apply_ms += ms(t);
                Failpoint::hit(options.failpoint, "after-effect");
                let mut wave = WaveOutcome::default();
                for ((r, (result, attempts)), id) in batch.iter().zip(results).zip(&ids) {
                    let action = r.action.step();
                    let (status, error, output) = match result {
                        Ok(applied) => (StepStatus::Done, None, applied.output.map(output)),
                        Err(e) => {
                            failed.insert(r.id.clone());
                            (StepStatus::Failed, Some(e.message), e.output.map(output))
                        }
                    };
                    if status == StepStatus::Done {
                        wave.corrected.push(r.id.clone());
                        let owns = env.providers.get(&r.provider).is_some_and(|p| p.owns_objects(&r.kind));
                        match r.action {
                            Action::Delete => wave.deleted.push(r.id.clone()),
                            Action::Create | Action::Update | Action::Adopt if owns => {
                                wave.applied.push(applied_identity(env, stack, r))
                            }
                            _ => {}
                        }
                        // A change notifies; the refresh it owes is recorded with its outcome.
                        if r.action.notifies()
                            && r.removal.is_none()
                            && let Some(node) = stack.graph.node(&r.id)
                        {
                            for t in &node.notify {
                                wave.notified.push(PendingRefresh {
                                    resource: t.clone(),
                                    notified_by: r.id.clone(),
                                    run,
                                });
                                if in_scope(t) {
                                    owed.entry(t.clone()).or_default().insert(r.id.clone());
                                }
                            }
                        }
                    }
                    wave.steps.push(StepOutcome {
                        step: *id,
                        status,
                        error: error.clone(),
                        output: output.clone(),
                    });
                    let report =
                        StepReport { resource: r.id.clone(), action, status, error, output, attempts };
                    env.events.emit(&Event::Step(report.clone()));
                    reports.push(report);
                }
                for ((i, dep), id) in skipped.iter().zip(&ids[runnable.len()..]) {
                    let r = &current.resources[*i];
                    failed.insert(r.id.clone());
                    let why = format!("it depends on {dep}, which failed");
                    wave.steps.push(StepOutcome {
                        step: *id,
                        status: StepStatus::Skipped,
                        error: Some(why.clone()),
                        output: None,
                    });
                    let report = StepReport {
                        resource: r.id.clone(),
                        action: r.action.step(),
                        status: StepStatus::Skipped,
                        error: Some(why),
                        output: None,
                        attempts: 0,
                    };
                    env.events.emit(&Event::Step(report.clone()));
                    reports.push(report);
                }
                let t = Instant::now();
                journal.record_outcomes(epoch, run, &wave)?;
                timings.journal_ms += ms(t);
                Failpoint::hit(options.failpoint, "after-outcome");
            }
        }
        if wave_key <= deepest {
            let due: Vec<String> = owed.keys().filter(|t| deps.level(t) == wave_key).cloned().collect();
            refresh(
                stack,
                env,
                (&mut *journal, epoch, run),
                &due,
                &mut owed,
                &mut failed,
                options,
                timings,
                &mut reports,
            )?;
        }
    }
    // What the last waves notified (a deletion notifies after its target's depth has passed).
    let rest: Vec<String> = deps.order(&owed.keys().map(String::as_str).collect::<Vec<_>>());
    refresh(
        stack,
        env,
        (journal, epoch, run),
        &rest,
        &mut owed,
        &mut failed,
        options,
        timings,
        &mut reports,
    )?;
    Ok(reports)
}

/// What a step is about to do, as the journal records it before the effect.
fn step_intent(r: &PlannedResource) -> StepIntent {
    let d = digest(r);
    let action = r.action.step().unwrap_or(StepAction::Update);
    StepIntent {
        resource: r.id.clone(),
        action,
        idempotency_key: format!("{}:{}:{d}", r.id, action.as_str()),
        digest: d,
        changes: r
            .changes
            .iter()
            .filter(|c| c.unknown.is_none())
            .map(|c| StepChange {
                field: c.field.clone(),
                observed: c.observed.clone(),
                intended: c.intended.clone(),
            })
            .collect(),
    }
}

/// Makes a wave's effects durable, provider by provider; a change that could not be
/// completed turns its step's result into that error.
fn flush(
    env: &Env<'_>,
    cx: &iade_provider::Context<'_>,
    batch: &[&PlannedResource],
    results: &mut [(Result<Applied, ProviderError>, u32)],
) {
    let used: BTreeSet<&str> = batch.iter().map(|r| r.provider.as_str()).collect();
    for name in used {
        let Some(p) = env.providers.get(name) else { continue };
        match p.flush(cx) {
            Ok(failures) => {
                for (id, e) in failures {
                    for ((result, _), r) in results.iter_mut().zip(batch) {
                        if r.id == id && result.is_ok() {
                            *result = Err(e.clone());
                        }
                    }
                }
            }
            Err(e) => {
                for ((result, _), r) in results.iter_mut().zip(batch) {
                    if r.provider == name && result.is_ok() {
                        *result = Err(e.clone());
                    }
                }
            }
        }
    }
}

/// Runs the refreshes of `due` that are owed, each once: its intent journaled, the refresh
/// run, its success recorded (which clears every pending refresh of it). A target that failed
/// in this run, or could not be observed, keeps its refresh pending for the next run.
#[expect(clippy::too_many_arguments, reason = "the run's parts, each borrowed differently")]
fn refresh(
    stack: &Stack<'_>,
    env: &Env<'_>,
    (journal, epoch, run): (&mut dyn Store, Epoch, RunId),
    due: &[String],
    owed: &mut BTreeMap<String, BTreeSet<String>>,
    failed: &mut BTreeSet<String>,
    options: &Options<'_>,
    timings: &mut Timings,
    reports: &mut Vec<StepReport>,
) -> Result<(), JournalError> {
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    let mut targets: Vec<(PlannedResource, Vec<String>)> = Vec::new();
    for id in due {
        let Some(by) = owed.remove(id) else { continue };
        let Some(node) = stack.graph.node(id) else { continue };
        if failed.contains(id)
            || deps_failed(stack, id, failed)
            || node.manage != iade_intent::Manage::Enforce
        {
            continue;
        }
        let mut r = deferred(node, Vec::new());
        r.action = Action::None;
        targets.push((r, by.into_iter().collect()));
    }
    if targets.is_empty() {
        return Ok(());
    }
    let intents: Vec<StepIntent> = targets
        .iter()
        .map(|(r, by)| {
            let d = digest(r);
            StepIntent {
                resource: r.id.clone(),
                action: StepAction::Refresh,
                idempotency_key: format!("{}:refresh:{d}", r.id),
                digest: d,
                changes: vec![StepChange {
                    field: "refresh".into(),
                    observed: None,
                    intended: format!("notified by {}", by.join(", ")),
                }],
            }
        })
        .collect();
    Failpoint::hit(options.failpoint, "before-intent");
    let t = Instant::now();
    journal.renew_lease(epoch, options.lease_ttl)?;
    if let Some(lease) = env.lease {
        lease.renewed(t);
    }
    let ids = journal.record_intents(epoch, run, &intents, &[], &[])?;
    timings.journal_ms += ms(t);
    Failpoint::hit(options.failpoint, "after-intent");
    let cx = env.context();
    let t = Instant::now();
    let results =
        crate::parallel_map(&targets, env.parallelism, |(r, _)| match env.providers.get(&r.provider) {
            _ if env.lease.is_some_and(|l| !l.holds()) => Err(lease_expired()),
            Some(p) => p.refresh(&r.kind, &r.target, &cx),
            None => {
                Err(ProviderError::permanent(format!("no provider `{}` in this build of iade", r.provider)))
            }
        });
    timings.apply_ms += ms(t);
    Failpoint::hit(options.failpoint, "after-effect");
    let mut wave = WaveOutcome::default();
    for (((r, _), result), id) in targets.iter().zip(results).zip(ids) {
        let (status, error, out) = match result {
            Ok(applied) => {
                wave.refreshed.push(r.id.clone());
                (StepStatus::Done, None, applied.output.map(output))
            }
            Err(e) => {
                failed.insert(r.id.clone());
                (StepStatus::Failed, Some(e.message), e.output.map(output))
            }
        };
        wave.steps.push(StepOutcome { step: id, status, error: error.clone(), output: out.clone() });
        let report = StepReport {
            resource: r.id.clone(),
            action: Some(StepAction::Refresh),
            status,
            error,
            output: out,
            attempts: 1,
        };
        env.events.emit(&Event::Step(report.clone()));
        reports.push(report);
    }
    let t = Instant::now();
    journal.record_outcomes(epoch, run, &wave)?;
    timings.journal_ms += ms(t);
    Failpoint::hit(options.failpoint, "after-outcome");
    Ok(())
}

/// Whether a dependency of `id` failed in this run.
fn deps_failed(stack: &Stack<'_>, id: &str, failed: &BTreeSet<String>) -> bool {
    stack.graph.edges.iter().any(|e| e.to == id && failed.contains(&e.from))
}

fn output(o: iade_provider::Output) -> Output {
    Output { stdout: o.stdout, stderr: o.stderr }
}

/// The record that proves this stack applied the object, where no mark on it can.
fn applied_identity(env: &Env<'_>, stack: &Stack<'_>, r: &PlannedResource) -> AppliedIdentity {
    let cx = env.context();
    let identity = match env.providers.get(&r.provider) {
        Some(p) => p.canonical_identity(&r.kind, &r.target.identity, &cx),
        None => r.target.identity.clone(),
    };
    AppliedIdentity {
        resource: r.id.clone(),
        kind: r.kind.clone(),
        provider: r.provider.clone(),
        instance: r.target.instance.clone(),
        identity: identity
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null)))
            .collect(),
        protected: stack.graph.node(&r.id).is_some_and(|n| n.protect),
    }
}

/// Why an effect was not made: the lease may belong to another engine by now.
fn lease_expired() -> ProviderError {
    ProviderError::permanent(
        "not changed: this engine's lease on the stack ran out before the change (it was paused, or cut off from its journal), so another engine may hold the stack now",
    )
}

fn apply_once(
    env: &Env<'_>,
    cx: &iade_provider::Context<'_>,
    r: &PlannedResource,
    retries: u32,
) -> (Result<Applied, ProviderError>, u32) {
    let Some(provider) = env.providers.get(&r.provider) else {
        return (
            Err(ProviderError::permanent(format!("no provider `{}` in this build of iade", r.provider))),
            0,
        );
    };
    let observed = r.observed.clone().unwrap_or(Observed::Absent);
    // Fields that could not be compared are left alone while the rest is corrected; an object
    // that does not exist yet cannot be created without them.
    let mut target = r.target.clone();
    for c in r.unknown() {
        if observed == Observed::Absent {
            let why = c.unknown.clone().unwrap_or_default();
            return (
                Err(ProviderError::permanent(format!("cannot create it without `{}`: {why}", c.field))),
                0,
            );
        }
        target.intended.remove(&c.field);
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Checked before every effect: an engine paused past its lease changes nothing.
        if env.lease.is_some_and(|l| !l.holds()) {
            return (Err(lease_expired()), attempt);
        }
        let result = match r.action {
            Action::Delete => provider.delete(&r.kind, &target, cx),
            Action::Adopt => provider.set_mark(&r.kind, &target, cx),
            _ => provider.apply(&r.kind, &target, &observed, cx),
        };
        match result {
            Err(e)
                if e.class == ErrorClass::Transient
                    && attempt <= retries
                    && !env.cancelled.load(std::sync::atomic::Ordering::Relaxed) =>
            {
                // Exponential backoff with jitter, so retries from parallel steps spread out.
                let base = 50u64 << attempt.min(6);
                let jitter = (u64::from(std::process::id())
                    ^ (u64::from(attempt) * 7919)
                    ^ (r.id.len() as u64 * 104_729))
                    % base;
                std::thread::sleep(Duration::from_millis(base + jitter));
            }
            other => return (other, attempt),
        }
    }
}
