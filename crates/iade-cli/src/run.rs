//! `plan`, `converge` and `history`: the driver around the engine — compile, take the lease,
//! run, report.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use iade_diagnostics::Diagnostic;
use iade_engine::{Action, Plan, Providers, RunReport, Stack};
use iade_intent::{IntentGraph, Program};
use iade_journal::{Journal, LeaseOutcome};
use iade_provider::{ProviderError, Secrets};

use crate::files::print_diagnostics;
use crate::output::{self, Exit};
use crate::stack::LoadOptions;

/// How long a lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunFormat {
    Human,
    Json,
    /// SARIF 2.1.0: the compliance findings, for code-scanning tools.
    Sarif,
}

#[derive(Debug)]
pub struct RunOptions {
    pub load: LoadOptions,
    pub format: RunFormat,
    pub color: bool,
    pub journal: Option<PathBuf>,
    pub parallelism: usize,
    pub detect_only: bool,
    pub wait: bool,
}

/// Secrets from the environment: `secret("DB_PASSWORD")` reads `IADE_SECRET_DB_PASSWORD`.
#[derive(Default)]
pub struct EnvSecrets {
    values: HashMap<String, String>,
}

impl std::fmt::Debug for EnvSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSecrets").field("names", &self.values.keys().collect::<Vec<_>>()).finish()
    }
}

impl EnvSecrets {
    pub fn from_env() -> Self {
        let mut values = HashMap::new();
        for (k, v) in std::env::vars_os() {
            if let (Some(k), Some(v)) = (k.to_str(), v.to_str())
                && let Some(name) = k.strip_prefix("IADE_SECRET_")
            {
                values.insert(name.to_string(), v.to_string());
            }
        }
        EnvSecrets { values }
    }
}

impl Secrets for EnvSecrets {
    fn resolve(&self, name: &str) -> Result<String, ProviderError> {
        self.values.get(name).cloned().ok_or_else(|| {
            ProviderError::permanent(format!(
                "secret `{name}` is not set (give it as the environment variable IADE_SECRET_{name})"
            ))
        })
    }
}

pub fn providers() -> Providers {
    Providers::new()
        .with(Arc::new(iade_provider_local::LocalProvider::new()))
        .with(Arc::new(iade_provider_local::ExecProvider::new()))
}

/// A compiled stack, ready for the engine.
pub struct Compiled {
    pub graph: IntentGraph,
    pub program: Program,
    pub stack_dir: PathBuf,
}

/// Compiles the stack; prints diagnostics; `Err` with the exit code when it has errors (a
/// denied policy among them: denied intent is never planned).
pub fn compile(
    path: &Path,
    options: &LoadOptions,
    color: bool,
    quiet_warnings: bool,
) -> Result<Compiled, Exit> {
    let loaded = crate::files::load(path, options)?;
    let compiled = compile_loaded(&loaded, path, color, quiet_warnings);
    // A one-shot command needs the database until it exits: freeing its many small values
    // one by one would only delay the exit (a few milliseconds for a thousand resources).
    std::mem::forget(loaded);
    compiled
}

/// The engine's inputs from an already loaded (or reloaded) stack.
pub fn compile_loaded(
    loaded: &crate::stack::Loaded,
    path: &Path,
    color: bool,
    quiet_warnings: bool,
) -> Result<Compiled, Exit> {
    let diags = loaded.diagnostics();
    let errors = diags.iter().any(Diagnostic::is_error);
    if errors || (!diags.is_empty() && !quiet_warnings) {
        print_diagnostics(&loaded.sources(), &diags, crate::cli::Format::Human, color);
    }
    if errors {
        eprintln!("nothing was observed or changed: the stack has errors (see above)");
        return Err(Exit::Errors);
    }
    let stack_dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let stack_dir = if stack_dir.as_os_str().is_empty() { PathBuf::from(".") } else { stack_dir };
    Ok(Compiled { graph: loaded.db.intent_graph(), program: loaded.db.program(), stack_dir })
}

fn engine_env<'a>(
    c: &Compiled,
    providers: &'a Providers,
    secrets: &'a EnvSecrets,
    parallelism: usize,
    cancelled: &'a AtomicBool,
) -> iade_engine::Env<'a> {
    let stack_dir = std::fs::canonicalize(&c.stack_dir).unwrap_or_else(|_| c.stack_dir.clone());
    iade_engine::Env { providers, secrets, stack_dir, parallelism, cancelled }
}

pub fn plan(path: &Path, options: &RunOptions) -> Exit {
    let compiled = match compile(path, &options.load, options.color, false) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let providers = providers();
    let secrets = EnvSecrets::from_env();
    let cancelled = AtomicBool::new(false);
    let env = engine_env(&compiled, &providers, &secrets, options.parallelism, &cancelled);
    let stack = Stack { graph: &compiled.graph, program: &compiled.program };
    let started = Instant::now();
    let plan = iade_engine::plan(&stack, &env, None);
    match options.format {
        RunFormat::Json => {
            print_json(&Versioned { version: 1, plan: Some(&plan), compliance: None, run: None })
        }
        _ => print_plan(&plan, &compiled.stack_dir, options.color, started.elapsed()),
    }
    if plan.errors().next().is_some() {
        Exit::Errors
    } else if plan.has_drift() {
        Exit::Pending
    } else {
        Exit::Success
    }
}

/// The JSON documents of `plan` and `converge`: a version and what the command produced.
#[derive(serde::Serialize)]
struct Versioned<'a> {
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a Plan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compliance: Option<&'a iade_engine::ComplianceReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<&'a RunReport>,
}

/// Writes a value as pretty JSON straight to standard output (no copy of it in memory).
fn print_json<T: serde::Serialize>(v: &T) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, v)
        .and_then(|()| writeln!(out).and_then(|()| out.flush()).map_err(serde_json::Error::io));
    // A closed pipe is not an error worth a message; a value that cannot be written is.
    if let Err(e) = written
        && !e.is_io()
    {
        output::error(&format!("cannot serialize: {e}"));
    }
}

fn paint(color: bool, code: &str, text: &str) -> String {
    if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
}

fn short(loc: &iade_intent::SourceLoc) -> String {
    format!("{}:{}", loc.file, loc.line)
}

pub fn print_plan(plan: &Plan, stack_dir: &Path, color: bool, took: Duration) {
    let pending: Vec<_> = plan.pending().collect();
    for r in &pending {
        let (code, verb) = match r.action {
            Action::Create => ("32", "create"),
            Action::Update => ("33", "update"),
            Action::Run => ("33", "run"),
            Action::Delete => ("31", "delete"),
            Action::Drift => ("35", "drifted (observe only: not changed)"),
            Action::None => ("0", ""),
        };
        println!(
            "{} {}  {}  {}",
            paint(color, code, r.action.symbol()),
            paint(color, "1", &r.id),
            verb,
            paint(color, "2", &short(&r.declared))
        );
        for c in &r.changes {
            let what = match &c.observed {
                Some(o) => format!("{}: {o} → {}", c.field, c.intended),
                None => format!("{} = {}", c.field, c.intended),
            };
            let src =
                c.source.as_ref().map(|s| format!("  {}", paint(color, "2", &short(s)))).unwrap_or_default();
            println!("    {what}{src}");
        }
    }
    for r in plan.errors() {
        println!(
            "{} {}  cannot be observed: {}",
            paint(color, "31", "?"),
            paint(color, "1", &r.id),
            r.error.clone().unwrap_or_default()
        );
    }
    let count = |a: Action| pending.iter().filter(|r| r.action == a).count();
    let shown = crate::files::display_path(stack_dir);
    let mut parts: Vec<String> = [
        (Action::Create, "to create"),
        (Action::Update, "to update"),
        (Action::Delete, "to delete"),
        (Action::Run, "to run"),
        (Action::Drift, "drifted (observe only)"),
    ]
    .iter()
    .filter(|(a, _)| count(*a) > 0)
    .map(|(a, what)| format!("{} {what}", count(*a)))
    .collect();
    let unobservable = plan.errors().count();
    if unobservable > 0 {
        parts.push(format!("{unobservable} not observable"));
    }
    eprintln!(
        "{}: {} resources observed in {}: {}",
        if shown.is_empty() { "." } else { shown.as_str() },
        plan.resources.len(),
        fmt_ms(took),
        if parts.is_empty() { "nothing differs".to_string() } else { parts.join(", ") }
    );
}

/// Renews a run's lease every third of its lifetime, from a connection of its own, however
/// long a step takes.
pub struct Heartbeat {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start(journal: &Path, epoch: i64) -> Heartbeat {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let path = journal.to_path_buf();
        let thread = std::thread::spawn(move || {
            // Waits a third of the lease's life, or until told to stop (or its sender is gone).
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(LEASE_TTL / 3) {
                if let Ok(mut j) = Journal::open(&path) {
                    let _ = j.renew_lease(epoch, LEASE_TTL);
                }
            }
        });
        Heartbeat { stop, thread: Some(thread) }
    }

    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// On SIGINT or SIGTERM, sets `cancelled`: running commands are killed with their process
/// groups, nothing is retried, and the run is recorded before the process exits.
pub fn cancel_on_signal(cancelled: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
        });
        eprintln!("stopping: the steps in flight are being cancelled and recorded");
        cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

/// `0.4 ms`, `38 ms`, `1.2 s`.
fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// The lock and lease that make one engine the only one correcting a stack.
pub struct Session {
    _lock: File,
    pub journal: Journal,
    pub epoch: i64,
}

pub fn journal_path(stack_dir: &Path, given: &Option<PathBuf>) -> PathBuf {
    given.clone().unwrap_or_else(|| stack_dir.join(".iade").join("journal.db"))
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether a process lives (a zombie, exited but not yet reaped, does not).
fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

pub enum SessionError {
    Held(iade_journal::Holder),
    Failed(String),
}

/// Takes the stack's lock (`.iade/lock`, an `flock`) and the journal's lease.
pub fn open_session(
    stack_dir: &Path,
    journal: &Path,
    watch: bool,
    wait: bool,
) -> Result<Session, SessionError> {
    let dir = stack_dir.join(".iade");
    std::fs::create_dir_all(&dir)
        .map_err(|e| SessionError::Failed(format!("cannot create `{}`: {e}", dir.display())))?;
    let lock_path = dir.join("lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| SessionError::Failed(format!("cannot open `{}`: {e}", lock_path.display())))?;
    // The lock first: the journal is opened (and migrated) only by its holder, or read to
    // name the holder.
    let open = || Journal::open(journal).map_err(|e| SessionError::Failed(e.to_string()));
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = open()?.holder().ok().flatten();
            // A watching holder is asked for a pass rather than waited for.
            let watcher = holder.as_ref().is_some_and(|h| h.watch);
            if wait && !watcher {
                if let Some(h) = &holder {
                    eprintln!("waiting for the lease held by pid {} on {}", h.pid, h.host);
                }
                lock.lock().map_err(|e| {
                    SessionError::Failed(format!("cannot lock `{}`: {e}", lock_path.display()))
                })?;
            } else {
                return Err(SessionError::Held(holder.unwrap_or(iade_journal::Holder {
                    pid: 0,
                    host: "(unknown)".into(),
                    since_ms: 0,
                    expires_ms: 0,
                    watch: false,
                })));
            }
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(SessionError::Failed(format!("cannot lock `{}`: {e}", lock_path.display())));
        }
    }
    let mut j = open()?;
    match j.acquire_lease(i64::from(std::process::id()), &host(), LEASE_TTL, watch, &alive) {
        Ok(LeaseOutcome::Acquired { epoch }) => Ok(Session { _lock: lock, journal: j, epoch }),
        Ok(LeaseOutcome::Held(h)) => Err(SessionError::Held(h)),
        Err(e) => Err(SessionError::Failed(e.to_string())),
    }
}

fn since(ms: i64) -> String {
    let ago = (iade_journal::now_ms() - ms) / 1000;
    match ago {
        ..60 => format!("{ago} s ago"),
        60..3600 => format!("{} min ago", ago / 60),
        _ => format!("{} h ago", ago / 3600),
    }
}

pub fn converge(path: &Path, options: &RunOptions) -> Exit {
    let compiled = match compile(path, &options.load, options.color, false) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let providers = providers();
    let secrets = EnvSecrets::from_env();
    let cancelled = Arc::new(AtomicBool::new(false));
    cancel_on_signal(cancelled.clone());
    let env = engine_env(&compiled, &providers, &secrets, options.parallelism, &cancelled);
    let stack = Stack { graph: &compiled.graph, program: &compiled.program };
    let started = Instant::now();
    if options.detect_only {
        // Never takes the lease and never writes: observe, diff, check controls, report.
        let plan = iade_engine::plan(&stack, &env, None);
        let compliance = iade_engine::evaluate_controls(&stack, &env, &plan);
        match options.format {
            RunFormat::Json => print_json(&Versioned {
                version: 1,
                plan: Some(&plan),
                compliance: Some(&compliance),
                run: None,
            }),
            RunFormat::Sarif => print_json(&crate::sarif::sarif(&compliance, &compiled.program)),
            RunFormat::Human => {
                print_plan(&plan, &compiled.stack_dir, options.color, started.elapsed());
                print_compliance(&compliance, options.color);
            }
        }
        return exit_for(plan.errors().next().is_some(), plan.has_drift(), compliance.failed > 0);
    }
    let journal = journal_path(&env.stack_dir, &options.journal);
    let mut session = match open_session(&env.stack_dir, &journal, false, options.wait) {
        Ok(s) => s,
        Err(SessionError::Held(h)) if h.watch => return ask_watcher(&journal, &h, options),
        Err(SessionError::Held(h)) => {
            output::error(&format!(
                "another engine holds this stack's lease: pid {} on {}, since {}",
                h.pid,
                h.host,
                since(h.since_ms)
            ));
            eprintln!(
                "  help: wait for it with `iade converge --wait`, or run `iade plan` (which needs no lease)"
            );
            return Exit::LeaseHeld;
        }
        Err(SessionError::Failed(e)) => {
            output::error(&e);
            return Exit::Errors;
        }
    };
    let failpoint = crate::stack::failpoint_from_env().and_then(|s| iade_engine::Failpoint::parse(&s));
    let opts = iade_engine::ConvergeOptions {
        failpoint: failpoint.as_ref(),
        retries: 3,
        only: None,
        lease_ttl: LEASE_TTL,
    };
    let heartbeat = Heartbeat::start(&journal, session.epoch);
    let result = iade_engine::converge(&stack, &env, &mut session.journal, session.epoch, &opts);
    heartbeat.stop();
    let _ = session.journal.release_lease(session.epoch);
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            output::error(&format!("the run stopped: {e}"));
            return Exit::Errors;
        }
    };
    report_run(&report, &compiled, options, started.elapsed())
}

pub fn report_run(report: &RunReport, compiled: &Compiled, options: &RunOptions, took: Duration) -> Exit {
    match options.format {
        RunFormat::Json => {
            print_json(&Versioned { version: 1, plan: None, compliance: None, run: Some(report) })
        }
        RunFormat::Sarif => print_json(&crate::sarif::sarif(&report.compliance, &compiled.program)),
        RunFormat::Human => print_report(report, &compiled.stack_dir, options.color, took),
    }
    exit_for(
        report.failed() > 0 || report.plan.errors().next().is_some(),
        false,
        report.compliance.failed > 0,
    )
}

/// Exit codes in DESIGN.md's order of precedence: 1, then 2, then 4 (3 is decided earlier).
fn exit_for(errors: bool, pending: bool, controls_fail: bool) -> Exit {
    if errors {
        Exit::Errors
    } else if pending {
        Exit::Pending
    } else if controls_fail {
        Exit::ControlsFail
    } else {
        Exit::Success
    }
}

fn print_report(report: &RunReport, stack_dir: &Path, color: bool, took: Duration) {
    let r = &report.resume;
    if !r.interrupted_runs.is_empty() {
        eprintln!(
            "resumed after an interrupted run ({}): {} step(s) found done, {} planned again, {} temporary file(s) removed",
            r.interrupted_runs.iter().map(|i| format!("run {i}")).collect::<Vec<_>>().join(", "),
            r.done_by_observation.len(),
            r.abandoned.len(),
            r.temp_files_removed
        );
    }
    for s in &report.steps {
        let planned = report.plan.resources.iter().find(|p| p.id == s.resource);
        let sym = planned.map_or("~", |p| p.action.symbol());
        match s.status.as_str() {
            "done" => {
                println!("{} {}  {}", paint(color, "32", sym), s.resource, paint(color, "2", &s.action))
            }
            "failed" => println!(
                "{} {}  failed: {}",
                paint(color, "31", "✗"),
                s.resource,
                s.error.clone().unwrap_or_default()
            ),
            _ => println!(
                "{} {}  skipped: {}",
                paint(color, "33", "·"),
                s.resource,
                s.error.clone().unwrap_or_default()
            ),
        }
    }
    for p in report.plan.pending().filter(|p| p.action == Action::Drift) {
        println!("{} {}  drifted (observe only, not changed)", paint(color, "35", "!"), p.id);
    }
    for p in report.plan.errors() {
        println!(
            "{} {}  cannot be observed: {}",
            paint(color, "31", "?"),
            p.id,
            p.error.clone().unwrap_or_default()
        );
    }
    print_compliance(&report.compliance, color);
    let done = report.steps.iter().filter(|s| s.status == "done").count();
    let shown = crate::files::display_path(stack_dir);
    eprintln!(
        "{}: run {} in {}: {} resources, {} changed, {} failed, {} skipped{}",
        if shown.is_empty() { "." } else { shown.as_str() },
        report.run,
        fmt_ms(took),
        report.plan.resources.len(),
        done,
        report.failed(),
        report.steps.iter().filter(|s| s.status == "skipped").count(),
        if report.compliance.passed + report.compliance.failed + report.compliance.unknown > 0 {
            format!(
                "; controls: {} passed, {} failed, {} unknown",
                report.compliance.passed, report.compliance.failed, report.compliance.unknown
            )
        } else {
            String::new()
        }
    );
}

pub fn print_compliance(c: &iade_engine::ComplianceReport, color: bool) {
    for f in &c.findings {
        let head = format!("control {} [{}]", f.control, f.severity);
        let subject = f.subject.clone().unwrap_or_else(|| "(stack)".into());
        let label = if f.outcome == "fail" {
            paint(color, "31", "fails")
        } else {
            paint(color, "33", "cannot decide")
        };
        println!(
            "{} {label} on {subject}: {}",
            paint(color, "1", &head),
            f.message.clone().unwrap_or_default()
        );
        for e in &f.evidence {
            println!("    {e}");
        }
        match f.intent_compliant {
            Some(true) => println!("    the intent is compliant: reality drifted from it"),
            Some(false) => println!("    the intent itself fails this control: fix the source"),
            None => {}
        }
        if let Some(loc) = &f.location {
            println!("    {}", paint(color, "2", &format!("at {loc}")));
        }
    }
}

/// A `--watch` engine holds the lease: ask it for an immediate pass and report that run.
fn ask_watcher(journal: &Path, holder: &iade_journal::Holder, options: &RunOptions) -> Exit {
    let mut j = match Journal::open(journal) {
        Ok(j) => j,
        Err(e) => {
            output::error(&e.to_string());
            return Exit::Errors;
        }
    };
    eprintln!(
        "a watching engine (pid {} on {}) holds the lease: asking it for a pass",
        holder.pid, holder.host
    );
    let request = match j.request_pass() {
        Ok(r) => r,
        Err(e) => {
            output::error(&e.to_string());
            return Exit::Errors;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(Some(run)) = j.served_by(request) {
            let row = j.run(run).ok().flatten();
            let summary = row.map(|r| r.summary).unwrap_or_default();
            match options.format {
                RunFormat::Human => eprintln!("pass done by the watching engine: run {run}: {summary}"),
                _ => print_json(
                    &serde_json::json!({ "version": 1, "served_by_watcher": { "run": run, "summary": summary } }),
                ),
            }
            let failed = summary["failed"].as_u64().unwrap_or(0) > 0
                || summary["observe_errors"].as_u64().unwrap_or(0) > 0;
            let controls = summary["controls"]["failed"].as_u64().unwrap_or(0) > 0;
            return exit_for(failed, false, controls);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    output::error("the watching engine did not answer within 120 s");
    Exit::LeaseHeld
}

pub fn history(
    path: &Path,
    journal: &Option<PathBuf>,
    run: Option<i64>,
    resource: Option<&str>,
    json: bool,
) -> Exit {
    let stack_dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let jp = journal_path(&stack_dir, journal);
    if !jp.exists() {
        output::error(&format!("no journal at `{}`: this stack has never been converged", jp.display()));
        eprintln!("  help: run `iade converge {}` first", crate::files::display_path(path));
        return Exit::Errors;
    }
    let j = match Journal::open(&jp) {
        Ok(j) => j,
        Err(e) => {
            output::error(&e.to_string());
            return Exit::Errors;
        }
    };
    let result = (|| -> Result<serde_json::Value, iade_journal::JournalError> {
        let runs = match run {
            Some(id) => j.run(id)?.into_iter().collect::<Vec<_>>(),
            None => j.runs(50)?,
        };
        let mut out = Vec::new();
        for r in &runs {
            let steps: Vec<_> = j
                .steps_of_run(r.id)?
                .into_iter()
                .filter(|s| resource.is_none_or(|res| s.resource == res))
                .collect();
            let drift: Vec<_> = j.drift(Some(r.id), resource)?;
            let findings: Vec<_> = j
                .findings(r.id)?
                .into_iter()
                .filter(|f| resource.is_none_or(|res| f.subject.as_deref() == Some(res)))
                .collect();
            if resource.is_some() && steps.is_empty() && drift.is_empty() && findings.is_empty() {
                continue;
            }
            out.push(serde_json::json!({ "run": r, "steps": steps, "drift": drift, "findings": findings }));
        }
        Ok(serde_json::json!({ "version": 1, "runs": out }))
    })();
    let value = match result {
        Ok(v) => v,
        Err(e) => {
            output::error(&e.to_string());
            return Exit::Errors;
        }
    };
    if json {
        print_json(&value);
        return Exit::Success;
    }
    let runs = value["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        eprintln!("no runs match");
    }
    for entry in runs {
        let r = &entry["run"];
        println!(
            "run {}  {}  {}  {}",
            r["id"],
            r["mode"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            fmt_time(r["started_ms"].as_i64().unwrap_or(0))
        );
        for d in entry["drift"].as_array().into_iter().flatten() {
            let corrected = match d["corrected_ms"].as_i64() {
                Some(c) => {
                    format!("corrected {} ms after detection", c - d["detected_ms"].as_i64().unwrap_or(c))
                }
                None => "not corrected".into(),
            };
            println!(
                "  drift  {}.{}: {} → {}  ({corrected})",
                d["resource"].as_str().unwrap_or(""),
                d["field"].as_str().unwrap_or(""),
                d["observed"].as_str().unwrap_or(""),
                d["intended"].as_str().unwrap_or("")
            );
        }
        for s in entry["steps"].as_array().into_iter().flatten() {
            println!(
                "  step   {} {}: {}{}",
                s["action"].as_str().unwrap_or(""),
                s["resource"].as_str().unwrap_or(""),
                s["status"].as_str().unwrap_or(""),
                s["error"].as_str().map(|e| format!(" ({e})")).unwrap_or_default()
            );
        }
        for f in entry["findings"].as_array().into_iter().flatten() {
            println!(
                "  control {} [{}] {} on {}: {}",
                f["control"].as_str().unwrap_or(""),
                f["severity"].as_str().unwrap_or(""),
                f["outcome"].as_str().unwrap_or(""),
                f["subject"].as_str().unwrap_or("(stack)"),
                f["message"].as_str().unwrap_or("")
            );
        }
    }
    Exit::Success
}

/// `2026-11-26 14:39:34 UTC`, from milliseconds since the epoch (civil-from-days).
fn fmt_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}
