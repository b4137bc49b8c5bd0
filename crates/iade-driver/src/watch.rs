//! `converge --watch`: keep reconciling. A full pass every interval; a pass over just the
//! affected resources as soon as a path a provider watches changes; a recompile and a full pass
//! when a source file changes; an immediate pass when a one-shot `converge` asks for one over
//! the same intent (through the journal). A failing pass never stops the loop; cancellation
//! (a signal) ends it after the pass in flight, releasing the lease.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use iade_engine::{ConvergeOptions, Stack};
use iade_journal::{Holder, JournalError, RequestAnswer, RunMode};
use notify::{RecursiveMode, Watcher};

use crate::Error;
use crate::events::{Event, Forward, PassKind, Sink};
use crate::load::{Compiled, LoadedStack};
use crate::run::{RunOptions, env, intent_digest};
use crate::runtime::Runtime;
use crate::session::{Session, SessionError, SessionOptions};

#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Time between full passes.
    pub interval: Duration,
    pub run: RunOptions,
}

/// Why a watch ended.
#[derive(Debug, PartialEq, Eq)]
pub enum WatchEnd {
    /// Cancelled (a signal): the pass in flight finished and the lease is released.
    Stopped,
    /// Another engine took the lease over.
    LeaseLost,
    /// Another engine holds the lease.
    Held(Option<Holder>),
}

/// How often a watching engine checks its journal and prunes old history.
const UPKEEP: Duration = Duration::from_secs(3600);

/// What woke the loop.
enum Wake {
    Tick,
    Paths(BTreeSet<PathBuf>),
}

/// The paths the providers watch for each resource, absolute.
fn managed_paths(compiled: &Compiled, rt: &Runtime) -> BTreeMap<PathBuf, Vec<String>> {
    let name = compiled.stack_name();
    let cx = iade_provider::Context {
        stack: &name,
        secrets: rt.secrets.as_ref(),
        stack_dir: &compiled.stack_dir,
        cancelled: &rt.cancelled,
        diffs: false,
        state_dir: None,
    };
    let mut out: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for n in &compiled.graph.nodes {
        let Some(p) = n.provider_type.as_deref().and_then(|p| rt.providers.get(p)) else { continue };
        for path in p.watch_paths(&n.kind, &iade_engine::target(n), &cx) {
            out.entry(normalize(&path)).or_default().push(n.id.clone());
        }
    }
    out
}

fn normalize(p: &Path) -> PathBuf {
    iade_provider::resolve_path(Path::new("/"), p)
}

fn is_artifact(rt: &Runtime, p: &Path) -> bool {
    rt.providers.iter().any(|(_, provider)| provider.is_artifact(p))
}

/// Watches the stack directory, the directories of every source file, and the directories
/// that hold watched paths (and watched directories themselves, for their own metadata).
fn rewatch(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut BTreeSet<PathBuf>,
    stack_dir: &Path,
    sources: &BTreeSet<PathBuf>,
    paths: &BTreeMap<PathBuf, Vec<String>>,
) {
    let mut want: BTreeSet<PathBuf> = BTreeSet::new();
    want.insert(stack_dir.to_path_buf());
    want.extend(sources.iter().filter_map(|s| s.parent().map(Path::to_path_buf)));
    for p in paths.keys() {
        if let Some(parent) = p.parent() {
            want.insert(parent.to_path_buf());
        }
        if p.is_dir() {
            want.insert(p.clone());
        }
    }
    for gone in watched.difference(&want).cloned().collect::<Vec<_>>() {
        let _ = watcher.unwatch(&gone);
        watched.remove(&gone);
    }
    for dir in want {
        if !watched.contains(&dir) && dir.is_dir() && watcher.watch(&dir, RecursiveMode::NonRecursive).is_ok()
        {
            watched.insert(dir);
        }
    }
}

/// Keeps the stack converged until cancelled. One compiler database for the whole watch: a
/// source change is recompiled incrementally.
pub fn watch(
    stack: &mut LoadedStack,
    rt: &Runtime,
    options: &WatchOptions,
    sink: &dyn Sink,
) -> Result<WatchEnd, Error> {
    let mut compiled = stack.compile()?;
    let stack_dir = compiled.stack_dir.clone();
    let location = options.run.journal_for(&compiled);
    let id = compiled.stack_id(&rt.host);
    let session_options = SessionOptions {
        watch: true,
        wait: options.run.wait,
        pid: std::process::id(),
        host: rt.host.clone(),
        lease_ttl: rt.lease_ttl,
    };
    let waiting = |h: Option<&Holder>| sink.event(Event::WaitingForLease(h));
    let mut session = match Session::open(&id, &stack_dir, &location, &session_options, &waiting) {
        Ok(s) => s,
        Err(SessionError::Held(h)) => return Ok(WatchEnd::Held(h)),
        Err(SessionError::Failed(e)) => return Err(e),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("cannot start the watch loop: {e}")))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Reads (iade's own observations and recompiles among them) change nothing.
        if let Ok(event) = res
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            for p in event.paths {
                let _ = tx.send(p);
            }
        }
    })
    .map_err(|e| Error::Io(format!("cannot watch the filesystem: {e}")))?;
    let mut paths = managed_paths(&compiled, rt);
    let mut watched = BTreeSet::new();
    rewatch(&mut watcher, &mut watched, &stack_dir, &stack.source_paths(), &paths);
    let mut digest = intent_digest(&compiled, rt.secrets.as_ref(), &[]);
    sink.event(Event::WatchStarted {
        resources: compiled.graph.nodes.len(),
        interval: options.interval,
        journal: location.to_string(),
    });
    let mut last_renewal = Instant::now();
    let mut last_upkeep = Instant::now();
    let mut full_pass_due = Instant::now();
    let mut failures = 0u32;
    // Events that arrived during a pass: looked at right after it.
    let mut carried: BTreeSet<PathBuf> = BTreeSet::new();
    let end = loop {
        let wake = if !carried.is_empty() {
            Wake::Paths(std::mem::take(&mut carried))
        } else {
            runtime.block_on(async {
                let until = tokio::time::Instant::from_std(full_pass_due.max(Instant::now()));
                // The poll notices cancellation and pass requests, which come without events.
                let poll = tokio::time::sleep(Duration::from_millis(200));
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => Wake::Tick,
                    _ = poll => Wake::Paths(BTreeSet::new()),
                    Some(p) = rx.recv() => {
                        // Events come in bursts (a write is several); collect what arrives at once.
                        let mut set = BTreeSet::from([p]);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        while let Ok(p) = rx.try_recv() {
                            set.insert(p);
                        }
                        Wake::Paths(set)
                    }
                }
            })
        };
        if rt.is_cancelled() {
            break WatchEnd::Stopped;
        }
        if last_renewal.elapsed() >= rt.lease_ttl / 3 {
            if let Err(e) = session.renew() {
                return lease_lost(e);
            }
            last_renewal = Instant::now();
        }
        if last_upkeep.elapsed() >= UPKEEP {
            last_upkeep = Instant::now();
            let store = session.store();
            let problems = store.check_integrity()?;
            sink.event(Event::JournalChecked { problems: problems.len() });
            if !problems.is_empty() {
                let location = store.location();
                return Err(Error::Journal(JournalError::Corrupt { location, detail: problems.join("; ") }));
            }
            store.prune(&iade_journal::Retention::default())?;
        }
        let requests = session.store().pending_requests().unwrap_or_default();
        let (served, refused): (Vec<_>, Vec<_>) = requests.into_iter().partition(|(_, r)| r.digest == digest);
        if !refused.is_empty() {
            let reason = "it enforces another intent (other sources, params, secrets or targets)";
            let answers: Vec<_> =
                refused.iter().map(|(id, _)| (*id, RequestAnswer::Refused(reason.to_string()))).collect();
            let _ = session.store().answer_requests(&answers);
            sink.event(Event::RequestRefused { reason });
        }
        let mut only: Option<BTreeSet<String>> = None;
        let kind = match wake {
            _ if !served.is_empty() => PassKind::Requested,
            Wake::Tick => {
                full_pass_due = Instant::now() + options.interval;
                PassKind::Full
            }
            Wake::Paths(set) if set.is_empty() => continue,
            Wake::Paths(set) => {
                let sources = stack.source_paths();
                let sources_changed = set.iter().any(|p| {
                    (p.extension().is_some_and(|e| e == "iade")
                        && !p.components().any(|c| c.as_os_str() == ".iade"))
                        || sources.contains(&normalize(p))
                });
                if sources_changed {
                    // Let the writer finish (an editor may truncate, then write).
                    std::thread::sleep(Duration::from_millis(30));
                    while let Ok(p) = rx.try_recv() {
                        if paths.contains_key(&normalize(&p)) {
                            carried.insert(p);
                        }
                    }
                    match stack.reload().and_then(|()| stack.compile()) {
                        Ok(c) => {
                            compiled = c;
                            digest = intent_digest(&compiled, rt.secrets.as_ref(), &[]);
                            sink.event(Event::Recompiled { resources: compiled.graph.nodes.len() });
                            paths = managed_paths(&compiled, rt);
                            rewatch(&mut watcher, &mut watched, &stack_dir, &stack.source_paths(), &paths);
                        }
                        Err(Error::Diagnostics(diagnostics)) => {
                            let sources = stack.sources();
                            sink.event(Event::SourcesBroken { diagnostics: &diagnostics, sources: &sources });
                            continue;
                        }
                        Err(e) => {
                            sink.event(Event::PassFailed {
                                error: e.to_string(),
                                retry_in: options.interval,
                            });
                            continue;
                        }
                    }
                    PassKind::Full
                } else {
                    let ids: BTreeSet<String> = set
                        .iter()
                        .filter(|p| !is_artifact(rt, p))
                        .filter_map(|p| paths.get(&normalize(p)))
                        .flatten()
                        .cloned()
                        .collect();
                    if ids.is_empty() {
                        continue;
                    }
                    only = Some(ids);
                    PassKind::Event
                }
            }
        };
        if let Err(e) = session.renew() {
            return lease_lost(e);
        }
        let started = Instant::now();
        let engine_options = ConvergeOptions {
            failpoint: None,
            retries: options.run.retries,
            only: only.as_ref(),
            mode: if only.is_some() { RunMode::Event } else { RunMode::Converge },
            lease_ttl: rt.lease_ttl,
            host: &rt.host,
        };
        let forward = Forward(sink);
        let name = compiled.stack_name();
        let env = iade_engine::Env { diffs: false, ..env(&compiled, &name, rt, &options.run, &forward) };
        let clock = session.clock();
        let env = iade_engine::Env { lease: Some(&clock), ..env };
        let graph = Stack::new(&compiled.graph, &compiled.program).pruning(options.run.prunes(&compiled));
        let epoch = session.epoch();
        match iade_engine::converge(&graph, &env, session.store(), epoch, &engine_options) {
            Ok(report) => {
                failures = 0;
                if report.run.is_some() {
                    sink.event(Event::Pass { kind, report: &report, took: started.elapsed() });
                }
                if let (Some(run), false) = (report.run, served.is_empty()) {
                    let answers: Vec<_> =
                        served.iter().map(|(id, _)| (*id, RequestAnswer::Served(run))).collect();
                    let _ = session.store().answer_requests(&answers);
                }
            }
            Err(JournalError::LeaseLost(_)) => break WatchEnd::LeaseLost,
            Err(e) => {
                // Never stop the loop on a failing pass: back off and try again.
                failures += 1;
                let wait = Duration::from_millis(200u64 << failures.min(8));
                sink.event(Event::PassFailed { error: e.to_string(), retry_in: wait });
                std::thread::sleep(wait);
            }
        }
        // Directories the pass created can be watched now.
        rewatch(&mut watcher, &mut watched, &stack_dir, &stack.source_paths(), &paths);
        // Every event that arrived during the pass is looked at again: most are the echo of
        // the pass's own corrections (an event pass that finds nothing leaves no trace), but an
        // outside edit made while the pass ran must not be lost.
        while let Ok(p) = rx.try_recv() {
            if !is_artifact(rt, &p) {
                carried.insert(p);
            }
        }
    };
    if end == WatchEnd::Stopped {
        session.close()?;
        sink.event(Event::Stopped);
    }
    Ok(end)
}

fn lease_lost(e: JournalError) -> Result<WatchEnd, Error> {
    match e {
        JournalError::LeaseLost(_) => Ok(WatchEnd::LeaseLost),
        other => Err(Error::Journal(other)),
    }
}
