//! `converge --watch`: keep reconciling. A full pass every interval; a pass over just the
//! affected resources as soon as a managed path changes; a recompile and a full pass when a
//! source file changes; an immediate pass when a one-shot `converge` asks for one (through the
//! journal). A provider error never stops the loop; SIGINT or SIGTERM ends it after the pass
//! in flight, releasing the lease.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use iade_engine::{ConvergeOptions, Stack};
use iade_intent::Value;
use notify::{RecursiveMode, Watcher};

use crate::output::{self, Exit};
use crate::run::{
    Compiled, EnvSecrets, RunOptions, SessionError, compile_loaded, journal_path, open_session, providers,
};

/// What woke the loop.
enum Wake {
    Tick,
    Paths(BTreeSet<PathBuf>),
    Signal,
}

fn managed_paths(c: &Compiled, stack_dir: &Path) -> BTreeMap<PathBuf, Vec<String>> {
    let mut out: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for n in &c.graph.nodes {
        if let Some(Value::Str(p)) = n.identity.get("path") {
            out.entry(iade_provider::resolve_path(stack_dir, Path::new(p.as_ref())))
                .or_default()
                .push(n.id.clone());
        }
    }
    out
}

/// An event's path as the managed paths are keyed (event paths are absolute already).
fn normalize(p: &Path) -> PathBuf {
    iade_provider::resolve_path(Path::new("/"), p)
}

/// Every file the compiler read from disk (stack files, modules, included files), absolute.
fn source_paths(loaded: &crate::stack::Loaded) -> BTreeSet<PathBuf> {
    loaded.db.disk_paths().into_iter().filter_map(|p| std::fs::canonicalize(p).ok()).collect()
}

/// Watches the stack directory, the directories of every source file, and the directories
/// that hold managed paths.
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
        // A managed directory is watched itself too, for changes to its own metadata.
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

pub fn watch(path: &Path, options: &RunOptions, interval: Duration) -> Exit {
    // One database for the whole watch: a source change is recompiled incrementally.
    let mut loaded = match crate::files::load(path, &options.load) {
        Ok(l) => l,
        Err(exit) => return exit,
    };
    let mut compiled = match compile_loaded(&loaded, path, options.color, false) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let stack_dir = std::fs::canonicalize(&compiled.stack_dir).unwrap_or_else(|_| compiled.stack_dir.clone());
    let journal = journal_path(&stack_dir, &options.journal);
    let mut session = match open_session(&stack_dir, &journal, true, options.wait) {
        Ok(s) => s,
        Err(SessionError::Held(h)) => {
            output::error(&format!("another engine holds this stack's lease: pid {} on {}", h.pid, h.host));
            return Exit::LeaseHeld;
        }
        Err(SessionError::Failed(e)) => {
            output::error(&e);
            return Exit::Errors;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            output::error(&format!("cannot start the watch loop: {e}"));
            return Exit::Errors;
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Reads (iade's own observations and recompiles among them) change nothing.
        if let Ok(event) = res
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            for p in event.paths {
                let _ = tx.send(p);
            }
        }
    }) {
        Ok(w) => w,
        Err(e) => {
            output::error(&format!("cannot watch the filesystem: {e}"));
            return Exit::Errors;
        }
    };
    let mut paths = managed_paths(&compiled, &stack_dir);
    let mut watched = BTreeSet::new();
    rewatch(&mut watcher, &mut watched, &stack_dir, &source_paths(&loaded), &paths);
    let providers = providers();
    let secrets = EnvSecrets::from_env();
    let cancelled = std::sync::Arc::new(AtomicBool::new(false));
    crate::run::cancel_on_signal(cancelled.clone());
    let mut last_renewal = Instant::now();
    eprintln!(
        "watching {} ({} resources): a full pass every {} s; Ctrl-C stops after the pass in flight",
        crate::files::display_path(path),
        compiled.graph.nodes.len(),
        interval.as_secs()
    );
    let mut full_pass_due = Instant::now();
    let mut failures = 0u32;
    // Source events that arrived during a pass: handled right after it.
    let mut carried: BTreeSet<PathBuf> = BTreeSet::new();
    loop {
        let wake = if !carried.is_empty() {
            Wake::Paths(std::mem::take(&mut carried))
        } else {
            runtime.block_on(async {
                let until = tokio::time::Instant::from_std(full_pass_due.max(Instant::now()));
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
        // Signals are caught by a thread of their own (see `cancel_on_signal`), so none is lost
        // between two turns; the poll wakes the loop to notice.
        let wake = if cancelled.load(std::sync::atomic::Ordering::Relaxed) { Wake::Signal } else { wake };
        if last_renewal.elapsed() >= crate::run::LEASE_TTL / 3 {
            if let Err(e) = session.journal.renew_lease(session.epoch, crate::run::LEASE_TTL) {
                output::error(&format!("stopping: {e}"));
                return Exit::LeaseHeld;
            }
            last_renewal = Instant::now();
        }
        let mut only: Option<BTreeSet<String>> = None;
        let mut requests = session.journal.pending_requests().unwrap_or_default();
        match wake {
            Wake::Signal => break,
            Wake::Tick => full_pass_due = Instant::now() + interval,
            Wake::Paths(set) if set.is_empty() && requests.is_empty() => continue,
            Wake::Paths(set) => {
                let sources = source_paths(&loaded);
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
                    let reloaded = crate::stack::reload(&mut loaded, path);
                    if let Err(e) = &reloaded {
                        output::error(&e.message);
                    }
                    match reloaded
                        .map_err(|_| Exit::Errors)
                        .and_then(|()| compile_loaded(&loaded, path, options.color, true))
                    {
                        Ok(c) => {
                            eprintln!("sources changed: recompiled ({} resources)", c.graph.nodes.len());
                            compiled = c;
                            paths = managed_paths(&compiled, &stack_dir);
                            rewatch(&mut watcher, &mut watched, &stack_dir, &source_paths(&loaded), &paths);
                        }
                        Err(_) => {
                            eprintln!(
                                "sources changed but do not compile: still enforcing the last good version"
                            );
                            continue;
                        }
                    }
                } else if requests.is_empty() {
                    let ids: BTreeSet<String> = set
                        .iter()
                        .filter(|p| !p.to_string_lossy().contains(iade_provider_local::TEMP_MARKER))
                        .filter_map(|p| paths.get(&normalize(p)))
                        .flatten()
                        .cloned()
                        .collect();
                    if ids.is_empty() {
                        continue;
                    }
                    only = Some(ids);
                }
            }
        }
        if !requests.is_empty() {
            only = None;
        }
        let env = iade_engine::Env {
            providers: &providers,
            secrets: &secrets,
            stack_dir: stack_dir.clone(),
            parallelism: options.parallelism,
            cancelled: &cancelled,
        };
        let stack = Stack { graph: &compiled.graph, program: &compiled.program };
        if let Err(e) = session.journal.renew_lease(session.epoch, crate::run::LEASE_TTL) {
            output::error(&format!("stopping: {e}"));
            return Exit::LeaseHeld;
        }
        let started = Instant::now();
        let opts = ConvergeOptions {
            failpoint: None,
            retries: 3,
            only: only.as_ref(),
            lease_ttl: crate::run::LEASE_TTL,
        };
        match iade_engine::converge(&stack, &env, &mut session.journal, session.epoch, &opts) {
            Ok(report) => {
                failures = 0;
                let done: Vec<&str> =
                    report.steps.iter().filter(|s| s.status == "done").map(|s| s.resource.as_str()).collect();
                let failed = report.failed();
                if !done.is_empty() || failed > 0 || only.is_none() {
                    eprintln!(
                        "pass {} ({} ms, {}): {} corrected{}{}; controls {} failed",
                        report.run,
                        started.elapsed().as_millis(),
                        if only.is_some() { "event" } else { "full" },
                        done.len(),
                        if done.is_empty() { String::new() } else { format!(" ({})", done.join(", ")) },
                        if failed > 0 { format!(", {failed} failed") } else { String::new() },
                        report.compliance.failed
                    );
                }
                if !requests.is_empty() {
                    let _ = session.journal.serve_requests(&requests, report.run);
                    requests.clear();
                }
            }
            Err(iade_journal::JournalError::LeaseLost(_)) => {
                output::error("stopping: another engine took the lease");
                return Exit::LeaseHeld;
            }
            Err(e) => {
                // Never stop the loop on a failing pass: back off and try again.
                failures += 1;
                let wait = Duration::from_millis(200u64 << failures.min(8));
                eprintln!("pass failed: {e}; retrying in {} ms", wait.as_millis());
                std::thread::sleep(wait);
            }
        }
        // Directories the pass created can be watched now.
        rewatch(&mut watcher, &mut watched, &stack_dir, &source_paths(&loaded), &paths);
        // Every event that arrived during the pass is looked at again: most are the echo of
        // the pass's own corrections (an event pass that finds nothing leaves no trace), but an
        // outside edit made while the pass ran must not be lost.
        while let Ok(p) = rx.try_recv() {
            if !p.to_string_lossy().contains(iade_provider_local::TEMP_MARKER) {
                carried.insert(p);
            }
        }
    }
    let _ = session.journal.release_lease(session.epoch);
    eprintln!("stopped: the lease is released");
    Exit::Success
}
