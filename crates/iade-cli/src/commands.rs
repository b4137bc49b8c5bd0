//! Each command: ask the driver, render what it returns, choose the exit code.

use std::path::{Path, PathBuf};
use std::time::Instant;

use iade_diagnostics::{Diagnostic, RenderOptions, Sources};
use iade_driver::files::FmtFailure;
use iade_driver::{
    Compiled, Converged, Detection, Document, Error, HistoryQuery, JournalLocation, LoadOptions, LoadedStack,
    RunOptions, RunView, Runtime, WatchEnd, WatchOptions, display_path,
};

use crate::cli::{Format, RunFormat};
use crate::output::{Exit, error, error_help, print_json};
use crate::render::{self, Printer, Style};
use iade_driver::text::{safe, since};

pub fn print_diagnostics(sources: &Sources, diags: &[Diagnostic], format: Format, style: Style) {
    match format {
        Format::Human => {
            for d in diags {
                eprintln!(
                    "{}\n",
                    iade_diagnostics::render_text(sources, d, RenderOptions { color: style.color })
                );
            }
        }
        Format::Json => print_json(&iade_diagnostics::to_json(sources, diags)),
    }
}

/// Reports a driver error; the exit code says what kind it was.
fn failed(e: Error, sources: Option<&Sources>, style: Style) -> Exit {
    if let (Error::Diagnostics(diags), Some(sources)) = (&e, sources) {
        print_diagnostics(sources, diags, Format::Human, style);
    }
    match e.help() {
        Some(help) => error_help(&e.to_string(), &help),
        None => error(&e.to_string()),
    }
    if e.is_usage() { Exit::Usage } else { Exit::Errors }
}

pub fn load(path: &Path, options: &LoadOptions, style: Style) -> Result<LoadedStack, Exit> {
    LoadedStack::load(path, options).map_err(|e| failed(e, None, style))
}

/// Loads a stack that this command compiles once (see [`LoadedStack::load_once`]).
fn load_once(path: &Path, options: &LoadOptions, style: Style) -> Result<LoadedStack, Exit> {
    LoadedStack::load_once(path, options).map_err(|e| failed(e, None, style))
}

/// Compiles the stack; with `cached` (`plan`, `converge`), through the compile cache.
fn compile(path: &Path, options: &LoadOptions, style: Style, cached: bool) -> Result<Compiled, Exit> {
    if cached && let Some(c) = iade_driver::cache::load(path, options) {
        return Ok(c);
    }
    let stack = load_once(path, options, style)?;
    let compiled = match stack.compile() {
        Ok(c) => {
            if !c.warnings.is_empty() {
                print_diagnostics(&stack.sources_for(&c.warnings), &c.warnings, Format::Human, style);
            }
            if cached {
                iade_driver::cache::store(&stack, options, &c);
            }
            Ok(c)
        }
        Err(e) => Err(failed(e, Some(&stack.sources()), style)),
    };
    // What runs next (observing, correcting) needs only the compiled stack: the database is
    // freed on a thread of its own, while the run begins, so the run reuses its memory.
    std::thread::spawn(move || drop(stack));
    compiled
}

/// A one-shot command's compiler database lives until the process ends: freeing its many
/// small values one by one would only delay the exit. (The driver never does this; a
/// long-lived caller such as the language server keeps and drops its stacks.)
fn exiting(stack: LoadedStack) {
    std::mem::forget(stack);
}

pub fn check(path: &Path, options: &LoadOptions, format: Format, style: Style) -> Exit {
    let stack = match load_once(path, options, style) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let diags = stack.diagnostics();
    print_diagnostics(&stack.sources_for(&diags), &diags, format, style);
    if format == Format::Human {
        eprintln!("{}", stack.summary(&diags));
    }
    exiting(stack);
    if diags.iter().any(Diagnostic::is_error) { Exit::Errors } else { Exit::Success }
}

pub fn graph(path: &Path, options: &LoadOptions, json: bool, style: Style) -> Exit {
    match compile(path, options, style, false) {
        Ok(c) if json => print_json(&c.graph),
        Ok(c) => print!("{}", c.graph.to_dot()),
        Err(exit) => return exit,
    }
    Exit::Success
}

/// `iade test`: one line per test, the failures with what explains them, a summary.
pub fn test(
    path: &Path,
    load: &iade_driver::LoadOptions,
    options: &iade_driver::TestOptions,
    format: crate::cli::TestFormat,
    style: Style,
) -> Exit {
    use crate::cli::TestFormat;
    let report = match iade_driver::run_tests(path, load, options) {
        Ok(r) => r,
        Err(Error::Diagnostics(diags)) => {
            let options = iade_driver::LoadOptions { tests: true, params_optional: true, ..load.clone() };
            if let Ok(stack) = iade_driver::LoadedStack::load(path, &options) {
                print_diagnostics(&stack.sources_for(&diags), &diags, Format::Human, style);
            }
            error_help(
                "no test ran: the stack or its tests have errors",
                "fix them (`iade check` checks the stack alone), then run the tests again",
            );
            return Exit::Errors;
        }
        Err(e) => return failed(e, None, style),
    };
    if report.results.is_empty() && report.filtered_out == 0 && format == TestFormat::Human {
        eprintln!(
            "{}: no tests: write `test \"name\" {{ … }}` blocks in a `*_test.iade` file or in `tests/` (see `iade test --help`)",
            display_path(path)
        );
    }
    match format {
        TestFormat::Json => print_json(&report),
        TestFormat::Junit => print!("{}", render::tests_junit(&report)),
        TestFormat::Human => render::tests(&report, style),
    }
    if report.failed() > 0 { Exit::Errors } else { Exit::Success }
}

/// `iade import`: the source on stdout, or in `out/imported.iade`; what was done on stderr.
pub fn import(options: &iade_driver::ImportOptions, out: Option<&Path>, style: Style) -> Exit {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let imported = match iade_driver::import(&Runtime::from_env(), options, out.unwrap_or(&here)) {
        Ok(i) => i,
        Err(e) => return failed(e, None, style),
    };
    for s in &imported.skipped {
        eprintln!("skipped {}", iade_driver::text::safe(s));
    }
    match out {
        None => print!("{}", imported.source),
        Some(dir) => {
            let file = dir.join("imported.iade");
            if file.exists() {
                error_help(
                    &format!("`{}` exists already", file.display()),
                    "move it away or give another --out directory: iade import never overwrites",
                );
                return Exit::Errors;
            }
            if let Err(e) =
                std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&file, &imported.source))
            {
                error(&format!("cannot write `{}`: {e}", file.display()));
                return Exit::Errors;
            }
            eprintln!(
                "wrote {} ({}){}",
                file.display(),
                iade_driver::text::count(imported.resources, "resource"),
                match imported.copied.len() {
                    0 => String::new(),
                    n => format!(
                        ", and {} under {}",
                        iade_driver::text::count(n, "file"),
                        dir.join("files").display()
                    ),
                }
            );
        }
    }
    Exit::Success
}

pub fn fmt(paths: &[PathBuf], check: bool, style: Style) -> Exit {
    if paths.iter().any(|p| p.as_os_str() == "-") {
        let mut text = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            error(&format!("cannot read standard input: {e}"));
            return Exit::Errors;
        }
        return match iade_fmt::format(&text) {
            Ok(out) => {
                print!("{out}");
                if check && out != text { Exit::Errors } else { Exit::Success }
            }
            Err(iade_fmt::FormatError::Syntax(diags)) => {
                let mut sources = Sources::new();
                sources.add("<stdin>", text);
                print_diagnostics(&sources, &diags, Format::Human, style);
                Exit::Errors
            }
        };
    }
    let r = match iade_driver::files::format_paths(paths, check) {
        Ok(r) => r,
        Err(e) => return failed(e, None, style),
    };
    for (path, why) in &r.failed {
        match why {
            FmtFailure::Io(e) => error(e),
            FmtFailure::Syntax(diags) => {
                print_diagnostics(&r.sources, diags, Format::Human, style);
                eprintln!("not formatted: `{path}` has errors\n");
            }
        }
    }
    for u in &r.unformatted {
        eprintln!("would reformat: {u}");
    }
    let (n, failed) = (r.files, r.failed.len());
    match check {
        true => eprintln!(
            "{n} file(s) checked: {} would be reformatted, {failed} with errors",
            r.unformatted.len()
        ),
        false => eprintln!("{n} file(s) checked: {} reformatted, {failed} with errors", r.reformatted),
    }
    if failed > 0 || !r.unformatted.is_empty() { Exit::Errors } else { Exit::Success }
}

/// `plan`, `converge` and `converge --detect-only`/`--watch`.
pub struct Engine<'a> {
    pub path: &'a Path,
    pub load: LoadOptions,
    pub run: RunOptions,
    pub format: crate::cli::RunFormat,
    pub style: Style,
    /// Events as JSON log lines instead of human lines.
    pub log_json: bool,
    /// Serve metrics here while watching.
    pub metrics: Option<String>,
}

impl Engine<'_> {
    fn printer(&self, stack_dir: &Path) -> Printer {
        let shown = display_path(self.path);
        let stack = if shown.is_empty() || shown == "." { display_path(stack_dir) } else { shown };
        Printer { style: self.style, stack: safe(&stack).into_owned() }
    }

    /// `plan`, and with `controls` `converge --detect-only`: observe and report, change nothing.
    pub fn plan(&self, controls: bool) -> Exit {
        let Ok(compiled) = compile(self.path, &self.load, self.style, true) else { return Exit::Errors };
        let (rt, printer, started) = (Runtime::from_env(), self.printer(&compiled.stack_dir), Instant::now());
        let found = match controls {
            true => iade_driver::detect(&compiled, &rt, &self.run, &printer),
            false => iade_driver::plan(&compiled, &rt, &self.run, &printer)
                .map(|plan| Detection { plan, compliance: Default::default() }),
        };
        let Detection { plan, compliance } = match found {
            Ok(d) => d,
            Err(e) => return failed(e, None, self.style),
        };
        match self.format {
            RunFormat::Json => print_json(&Document {
                plan: Some(&plan),
                compliance: controls.then_some(&compliance),
                ..Document::new()
            }),
            RunFormat::Sarif => print_json(&iade_driver::sarif(&compliance.findings, &compiled.program)),
            RunFormat::Junit => print!("{}", iade_driver::junit(&compliance.findings, &compiled.program)),
            RunFormat::Human => {
                render::plan(&plan, &printer.stack, self.style, started.elapsed());
                render::findings(&compliance.findings, self.style);
            }
        }
        let s = plan.summary();
        Exit::of(s.has_errors(), s.has_changes(), compliance.failed > 0)
    }

    pub fn converge(&self) -> Exit {
        let Ok(compiled) = compile(self.path, &self.load, self.style, true) else { return Exit::Errors };
        let rt = Runtime::from_env();
        iade_driver::cancel_on_signal(rt.cancelled.clone(), || {
            eprintln!("stopping: the steps in flight are being cancelled and recorded");
        });
        let printer = self.printer(&compiled.stack_dir);
        let log = crate::logs::JsonLog { stack: compiled.stack_name() };
        let progress = crate::progress::Progress::new(&printer);
        let sink: &dyn iade_driver::Sink = if self.log_json { &log } else { &progress };
        let started = Instant::now();
        let converged = iade_driver::converge(&compiled, &rt, &self.run, sink);
        progress.finish();
        let outcome = match converged {
            Ok(o) => o,
            Err(e) => return failed(e, None, self.style),
        };
        let view = match &outcome {
            Converged::Ran(report) => RunView::of_report(report, started.elapsed()),
            Converged::Served { record, .. } => RunView::of_record(record),
            Converged::Refused { holder, reason } => {
                let who = format!("a watching engine (pid {} on {})", holder.pid, safe(&holder.host));
                error_help(
                    &format!("{who} holds this stack's lease and refused a pass: {reason}"),
                    "stop it first, or converge with the same sources, params, secrets and targets",
                );
                return Exit::LeaseHeld;
            }
            Converged::Held(holder) => return held(holder.as_ref()),
        };
        match (self.format, &outcome) {
            (RunFormat::Json, Converged::Ran(r)) => print_json(&Document { run: Some(r), ..Document::new() }),
            (RunFormat::Json, Converged::Served { record, .. }) => {
                print_json(&Document { served_by_watcher: Some(record), ..Document::new() })
            }
            (RunFormat::Sarif, _) => print_json(&iade_driver::sarif(&view.findings, &compiled.program)),
            (RunFormat::Junit, _) => print!("{}", iade_driver::junit(&view.findings, &compiled.program)),
            (_, Converged::Ran(report)) if self.log_json => {
                log.run(report, None, started.elapsed().as_millis())
            }
            (_, served) => {
                if matches!(served, Converged::Served { .. }) {
                    eprintln!("the watching engine ran this pass:");
                }
                render::run(&view, &printer.stack, self.style)
            }
        }
        let s = &view.summary;
        let exit = Exit::of(s.has_errors(), false, s.controls.failed > 0);
        // Like the compiler's database (see `exiting`), the run's plan and report live until
        // the process ends: dropping a thousand observed resources only delays the exit.
        std::mem::forget(view);
        std::mem::forget(outcome);
        std::mem::forget(compiled);
        exit
    }

    pub fn watch(&self, interval: std::time::Duration) -> Exit {
        let mut stack = match load(self.path, &self.load, self.style) {
            Ok(s) => s,
            Err(exit) => return exit,
        };
        let rt = Runtime::from_env();
        iade_driver::cancel_on_signal(rt.cancelled.clone(), || {});
        let printer = self.printer(stack.stack_dir());
        let log = crate::logs::JsonLog { stack: stack.stack_name() };
        let shown: &dyn iade_driver::Sink = if self.log_json { &log } else { &printer };
        let metrics = std::sync::Arc::new(iade_driver::Metrics::new());
        if let Some(addr) = &self.metrics {
            match iade_driver::serve_metrics(metrics.clone(), addr) {
                Ok(bound) if self.log_json => {
                    tracing::info!(target: "iade", event = "metrics", stack = %log.stack, addr = %bound);
                }
                Ok(bound) => eprintln!("serving metrics at http://{bound}/metrics (health at /healthz)"),
                Err(e) => return failed(e, None, self.style),
            }
        }
        let tee = iade_driver::Tee(shown, metrics.as_ref());
        let sink: &dyn iade_driver::Sink = if self.metrics.is_some() { &tee } else { shown };
        let options = WatchOptions { interval, run: self.run.clone() };
        match iade_driver::watch(&mut stack, &rt, &options, sink) {
            Ok(WatchEnd::Stopped) => Exit::Success,
            Ok(WatchEnd::LeaseLost) => {
                error("stopping: another engine took the lease");
                Exit::LeaseHeld
            }
            Ok(WatchEnd::Held(h)) => held(h.as_ref()),
            Err(e) => failed(e, Some(&stack.sources()), self.style),
        }
    }
}

/// Another engine holds the lease: say who, and what to do.
fn held(holder: Option<&iade_journal::Holder>) -> Exit {
    // A holder named by its lock file has no recorded start (`since_ms` 0).
    let who = holder.map_or(String::new(), |h| match h.since_ms {
        0 => format!(": pid {} on {}", h.pid, safe(&h.host)),
        at => format!(": pid {} on {}, since {}", h.pid, safe(&h.host), since(at)),
    });
    error_help(
        &format!("another engine holds this stack's lease{who}"),
        "wait for it with `--wait`, or run `iade plan` (which needs no lease)",
    );
    Exit::LeaseHeld
}

/// A journal's runs as `query` asks, printed as JSON or for a person; how many.
fn print_history(
    store: &dyn iade_journal::Store,
    query: &HistoryQuery,
    json: bool,
    style: Style,
) -> Result<usize, Error> {
    match json {
        true => iade_driver::write_history(store, query, &mut std::io::stdout().lock()),
        false => {
            let mut printed = 0;
            iade_driver::history(store, query, |r| {
                render::history(&r, style);
                printed += 1;
            })
            .map(|()| printed)
        }
    }
}

fn history_exit(result: Result<usize, Error>, json: bool, style: Style) -> Exit {
    match result {
        Err(e) => failed(e, None, style),
        Ok(0) if !json => {
            eprintln!("no runs match");
            Exit::Success
        }
        Ok(_) => Exit::Success,
    }
}

pub fn history(
    path: &Path,
    journal: Option<JournalLocation>,
    query: &HistoryQuery,
    json: bool,
    style: Style,
) -> Exit {
    let store = match iade_driver::open_history(path, journal.clone()) {
        Ok(s) => s,
        Err(e) => return failed(e, None, style),
    };
    let result = print_history(store.as_ref(), query, json, style);
    if let (Some(resource), false, Ok(_)) = (&query.resource, json, &result) {
        let kept = iade_driver::backups(path, journal, resource);
        if !kept.is_empty() {
            println!("backups of {resource}, newest first (restore one with cp):");
            for b in kept {
                println!(
                    "  {}  {} bytes  {}",
                    iade_driver::text::fmt_time(b.taken_ms as i64),
                    b.size,
                    iade_driver::text::safe(&b.path.display().to_string())
                );
            }
        }
    }
    history_exit(result, json, style)
}

/// A command line that cannot work as given: what is wrong and what to do.
pub fn usage_error(message: &str, help: &str) -> Exit {
    error_help(message, help);
    Exit::Usage
}

/// `iade history --stack`: one stack's history from a shared journal.
pub fn fleet_history(
    journal: &JournalLocation,
    stack: &str,
    query: &HistoryQuery,
    json: bool,
    style: Style,
) -> Exit {
    let store = match iade_driver::open_fleet_stack(journal, stack) {
        Ok(s) => s,
        Err(e) => return failed(e, None, style),
    };
    let result = print_history(store.as_ref(), query, json, style);
    history_exit(result, json, style)
}

/// `iade status`: the fleet's stacks, one line each.
pub fn status(journal: &JournalLocation, json: bool, style: Style) -> Exit {
    let stacks = match iade_driver::fleet_status(journal) {
        Ok(s) => s,
        Err(e) => return failed(e, None, style),
    };
    if json {
        print_json(&serde_json::json!({ "version": 1, "journal": journal.to_string(), "stacks": stacks }));
    } else {
        render::status(&stacks, style);
        if stacks.is_empty() {
            eprintln!("no stack has run with the journal at {journal} yet");
        }
    }
    let failed_runs = stacks.iter().any(|s| {
        s.last_run
            .as_ref()
            .is_some_and(|r| r.status != iade_journal::RunStatus::Done || r.summary.has_errors())
    });
    let failing = stacks.iter().any(|s| !s.failing_controls.is_empty());
    Exit::of(failed_runs, false, failing)
}

pub fn journal(
    action: crate::cli::JournalAction,
    path: &Path,
    journal: Option<JournalLocation>,
    retention: &iade_journal::Retention,
    style: Style,
) -> Exit {
    use crate::cli::JournalAction as A;
    let shown = display_path(path);
    match action {
        A::Check => match iade_driver::check_journal(path, journal) {
            Ok(problems) if problems.is_empty() => eprintln!("{shown}: the journal is sound"),
            Ok(problems) => {
                for p in &problems {
                    error(&safe(p));
                }
                eprintln!("  help: `iade journal recover {shown}` moves it aside and keeps its obligations");
                return Exit::Errors;
            }
            Err(e) => return failed(e, None, style),
        },
        A::Prune => match iade_driver::prune_journal(path, journal, retention) {
            Ok(r) => {
                eprintln!("{shown}: removed the detail of {} run(s) and {} old run(s)", r.detail_runs, r.runs)
            }
            Err(e) => return failed(e, None, style),
        },
        A::Recover => match iade_driver::recover_journal(path, journal) {
            Ok(r) => {
                eprintln!("the damaged journal is now `{}`", display_path(&r.moved_to));
                eprintln!(
                    "a fresh journal keeps {} pending refresh(es) and {} applied object(s); its history starts again",
                    r.refreshes, r.applied
                );
                for l in &r.lost {
                    eprintln!("lost: {}", safe(l));
                }
            }
            Err(e) => return failed(e, None, style),
        },
    }
    Exit::Success
}

pub fn explain(code: Option<String>, list: bool) -> Exit {
    if list {
        for info in iade_diagnostics::registry() {
            println!("{}  {}", info.code, info.title);
        }
        return Exit::Success;
    }
    let code = code.unwrap_or_default();
    match iade_diagnostics::lookup(&code) {
        Some(info) => {
            println!("{}: {}\n\n{}", info.code, info.title, info.explanation);
            Exit::Success
        }
        None => {
            error_help(
                &format!("unknown diagnostic code `{code}`"),
                "`iade explain --list` lists every code",
            );
            Exit::Usage
        }
    }
}
