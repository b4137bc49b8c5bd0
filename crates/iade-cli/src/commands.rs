//! Each command: ask the driver, render what it returns, choose the exit code.

use std::path::{Path, PathBuf};
use std::time::Instant;

use iade_diagnostics::{Diagnostic, RenderOptions, Sources};
use iade_driver::{
    CheckSummary, Compiled, Converged, Error, HistoryQuery, JournalLocation, LoadOptions, LoadedStack,
    RunOptions, Runtime, WatchEnd, WatchOptions, display_path,
};
use serde::Serialize;

use crate::cli::Format;
use crate::output::{Exit, error, error_help, print_json};
use crate::render::{self, Printer, RunView, Style, safe};

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
    match e {
        Error::Load { message, help } => error_help(&message, &help),
        Error::UnknownParams { unknown, declared } => {
            let theirs = if declared.is_empty() {
                "it declares none".into()
            } else {
                format!("its params: {}", declared.join(", "))
            };
            for u in unknown {
                error(&format!("the stack has no param `{u}` ({theirs})"));
            }
            return Exit::Usage;
        }
        Error::UnknownTargets { unknown, did_you_mean } => {
            let quoted = |v: &[String]| v.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ");
            let help = match did_you_mean.is_empty() {
                true => "`iade graph --format json` lists every resource id".to_string(),
                false => format!("did you mean {}?", quoted(&did_you_mean)),
            };
            error_help(&format!("no resource {} in this stack", quoted(&unknown)), &help);
            return Exit::Usage;
        }
        Error::Diagnostics(diags) => {
            if let Some(sources) = sources {
                print_diagnostics(sources, &diags, Format::Human, style);
            }
            eprintln!("nothing was observed or changed: the stack has errors (see above)");
        }
        Error::NoSuchRun(run) => {
            error_help(&format!("no run {run} in the journal"), "`iade history` lists the recent runs")
        }
        Error::NoJournal(at) => error_help(
            &format!("no journal at `{at}`: this stack has never been converged"),
            "run `iade converge` first",
        ),
        Error::Journal(e) => error(&e.to_string()),
        Error::Io(e) => error(&e),
    }
    Exit::Errors
}

pub fn load(path: &Path, options: &LoadOptions, style: Style) -> Result<LoadedStack, Exit> {
    LoadedStack::load(path, options).map_err(|e| failed(e, None, style))
}

fn compile(path: &Path, options: &LoadOptions, style: Style) -> Result<(LoadedStack, Compiled), Exit> {
    let stack = load(path, options, style)?;
    match stack.compile() {
        Ok(c) => {
            if !c.warnings.is_empty() {
                print_diagnostics(&stack.sources(), &c.warnings, Format::Human, style);
            }
            Ok((stack, c))
        }
        Err(e) => Err(failed(e, Some(&stack.sources()), style)),
    }
}

fn summary_line(s: &CheckSummary) -> String {
    let plural = |n: usize, w: &str| if n == 1 { format!("{n} {w}") } else { format!("{n} {w}s") };
    let mut text = plural(s.files, "file");
    if s.modules > 0 {
        text.push_str(&format!(" and {}", plural(s.modules, "module file")));
    }
    text.push_str(&format!(", {}", plural(s.resources, "resource")));
    if s.policies > 0 {
        let policies =
            if s.policies == 1 { "1 policy".to_string() } else { format!("{} policies", s.policies) };
        text.push_str(&format!(
            ", {policies} ({}",
            plural(s.checks_passed + s.checks_failed + s.checks_unknown, "check")
        ));
        if s.checks_failed > 0 {
            text.push_str(&format!(", {} failed", s.checks_failed));
        }
        if s.checks_unknown > 0 {
            text.push_str(&format!(", {} undecided", s.checks_unknown));
        }
        text.push(')');
    }
    if s.controls > 0 {
        text.push_str(&format!(", {}", plural(s.controls, "control")));
    }
    match (s.errors, s.warnings) {
        (0, 0) => format!("checked {text}: no problems"),
        (0, w) => format!("checked {text}: {}", plural(w, "warning")),
        (e, 0) => format!("checked {text}: {}", plural(e, "error")),
        (e, w) => format!("checked {text}: {}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

pub fn check(path: &Path, options: &LoadOptions, format: Format, style: Style) -> Exit {
    let stack = match load(path, options, style) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let diags = stack.diagnostics();
    print_diagnostics(&stack.sources(), &diags, format, style);
    if format == Format::Human {
        eprintln!("{}", summary_line(&stack.summary(&diags)));
    }
    if diags.iter().any(Diagnostic::is_error) { Exit::Errors } else { Exit::Success }
}

pub fn graph(path: &Path, options: &LoadOptions, json: bool, style: Style) -> Exit {
    match compile(path, options, style) {
        Ok((_, c)) if json => print_json(&c.graph),
        Ok((_, c)) => print!("{}", c.graph.to_dot()),
        Err(exit) => return exit,
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
    let mut files = Vec::new();
    for p in paths {
        match iade_driver::files::collect(p) {
            Ok(f) => files.extend(f),
            Err(e) => {
                error(&format!("cannot read `{}`: {e}", display_path(p)));
                return Exit::Errors;
            }
        }
    }
    let mut sources = Sources::new();
    let (mut changed, mut failed, mut unformatted) = (0usize, 0usize, Vec::new());
    for f in &files {
        let shown = display_path(f);
        let bytes = match iade_driver::files::read_bytes(f) {
            Ok(b) => b,
            Err(e) => {
                error(&format!("cannot read `{shown}`: {e}"));
                failed += 1;
                continue;
            }
        };
        let (text, diags) = match String::from_utf8(bytes) {
            Ok(text) => match iade_fmt::format(&text) {
                Ok(out) if out == text => continue,
                Ok(_) if check => {
                    unformatted.push(shown);
                    continue;
                }
                Ok(out) => {
                    match iade_driver::files::write_atomic(f, &out) {
                        Ok(()) => changed += 1,
                        Err(e) => {
                            error(&format!("cannot write `{shown}`: {e}"));
                            failed += 1;
                        }
                    }
                    continue;
                }
                Err(iade_fmt::FormatError::Syntax(diags)) => (text, diags),
            },
            Err(e) => {
                let (text, parse) = iade_syntax::parse_bytes(sources.next_id(), e.as_bytes());
                (text, parse.diagnostics)
            }
        };
        let id = sources.add(shown.clone(), text);
        let diags: Vec<Diagnostic> = diags
            .into_iter()
            .filter(Diagnostic::is_error)
            .map(|mut d| {
                d.labels.iter_mut().for_each(|l| l.file = id);
                d
            })
            .collect();
        print_diagnostics(&sources, &diags, Format::Human, style);
        eprintln!("not formatted: `{shown}` has errors\n");
        failed += 1;
    }
    for u in &unformatted {
        eprintln!("would reformat: {u}");
    }
    let n = files.len();
    if check {
        eprintln!("{n} file(s) checked: {} would be reformatted, {failed} with errors", unformatted.len());
    } else {
        eprintln!("{n} file(s) checked: {changed} reformatted, {failed} with errors");
    }
    if failed > 0 || !unformatted.is_empty() { Exit::Errors } else { Exit::Success }
}

/// The JSON documents of `plan` and `converge`: a version and what the command produced.
#[derive(Serialize)]
struct Versioned<'a> {
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a iade_engine::Plan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compliance: Option<&'a iade_engine::ComplianceReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<&'a iade_engine::RunReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    served_by_watcher: Option<&'a iade_driver::RunRecord>,
}

const VERSION: u32 = 2;

fn versioned() -> Versioned<'static> {
    Versioned { version: VERSION, plan: None, compliance: None, run: None, served_by_watcher: None }
}

/// `plan`, `converge` and `converge --detect-only`/`--watch`.
pub struct Engine<'a> {
    pub path: &'a Path,
    pub load: LoadOptions,
    pub run: RunOptions,
    pub format: crate::cli::RunFormat,
    pub style: Style,
}

impl Engine<'_> {
    fn printer(&self, stack_dir: &Path) -> Printer {
        let shown = display_path(self.path);
        let stack = if shown.is_empty() || shown == "." { display_path(stack_dir) } else { shown };
        Printer { style: self.style, stack: safe(&stack).into_owned() }
    }

    fn human(&self) -> bool {
        self.format == crate::cli::RunFormat::Human
    }

    pub fn plan(&self) -> Exit {
        let Ok((_, compiled)) = compile(self.path, &self.load, self.style) else { return Exit::Errors };
        let rt = Runtime::from_env();
        let printer = self.printer(&compiled.stack_dir);
        let started = Instant::now();
        let plan = match iade_driver::plan(&compiled, &rt, &self.run, &printer) {
            Ok(p) => p,
            Err(e) => return failed(e, None, self.style),
        };
        if self.human() {
            render::plan(&plan, &printer.stack, self.style, started.elapsed());
        } else {
            print_json(&Versioned { plan: Some(&plan), ..versioned() });
        }
        let s = plan.summary();
        Exit::of(s.has_errors(), s.has_changes(), false)
    }

    pub fn detect(&self) -> Exit {
        let Ok((_, compiled)) = compile(self.path, &self.load, self.style) else { return Exit::Errors };
        let rt = Runtime::from_env();
        let printer = self.printer(&compiled.stack_dir);
        let started = Instant::now();
        let d = match iade_driver::detect(&compiled, &rt, &self.run, &printer) {
            Ok(d) => d,
            Err(e) => return failed(e, None, self.style),
        };
        match self.format {
            crate::cli::RunFormat::Json => {
                print_json(&Versioned { plan: Some(&d.plan), compliance: Some(&d.compliance), ..versioned() })
            }
            crate::cli::RunFormat::Sarif => {
                print_json(&crate::sarif::sarif(&d.compliance.findings, &compiled.program))
            }
            crate::cli::RunFormat::Human => {
                render::plan(&d.plan, &printer.stack, self.style, started.elapsed());
                render::findings(&d.compliance.findings, self.style);
            }
        }
        let s = d.plan.summary();
        Exit::of(s.has_errors(), s.has_changes(), d.compliance.failed > 0)
    }

    pub fn converge(&self) -> Exit {
        let Ok((_, compiled)) = compile(self.path, &self.load, self.style) else { return Exit::Errors };
        let rt = Runtime::from_env();
        iade_driver::cancel_on_signal(rt.cancelled.clone(), || {
            eprintln!("stopping: the steps in flight are being cancelled and recorded");
        });
        let printer = self.printer(&compiled.stack_dir);
        let started = Instant::now();
        let outcome = match iade_driver::converge(&compiled, &rt, &self.run, &printer) {
            Ok(o) => o,
            Err(e) => return failed(e, None, self.style),
        };
        let summary = match &outcome {
            Converged::Ran(report) => {
                match self.format {
                    crate::cli::RunFormat::Json => {
                        print_json(&Versioned { run: Some(report), ..versioned() })
                    }
                    crate::cli::RunFormat::Sarif => {
                        print_json(&crate::sarif::sarif(&report.compliance.findings, &compiled.program))
                    }
                    crate::cli::RunFormat::Human => {
                        RunView::of_report(report, started.elapsed()).print(&printer.stack, self.style)
                    }
                }
                report.summary.clone()
            }
            Converged::Served { record, .. } => {
                match self.format {
                    crate::cli::RunFormat::Json => {
                        print_json(&Versioned { served_by_watcher: Some(record), ..versioned() })
                    }
                    crate::cli::RunFormat::Sarif => {
                        print_json(&crate::sarif::sarif(&record.findings, &compiled.program))
                    }
                    crate::cli::RunFormat::Human => {
                        eprintln!("the watching engine ran this pass:");
                        RunView::of_record(record).print(&printer.stack, self.style)
                    }
                }
                record.run.summary.clone()
            }
            Converged::Refused { holder, reason } => {
                let who = format!("a watching engine (pid {} on {})", holder.pid, safe(&holder.host));
                error_help(
                    &format!("{who} holds this stack's lease and refused a pass: {reason}"),
                    "stop it first, or converge with the same sources, params, secrets and targets",
                );
                return Exit::LeaseHeld;
            }
            Converged::Held(holder) => {
                let who = match holder {
                    Some(h) => format!(": pid {} on {}, since {}", h.pid, safe(&h.host), since(h.since_ms)),
                    None => String::new(),
                };
                error_help(
                    &format!("another engine holds this stack's lease{who}"),
                    "wait for it with `iade converge --wait`, or run `iade plan` (which needs no lease)",
                );
                return Exit::LeaseHeld;
            }
        };
        Exit::of(summary.has_errors(), false, summary.controls.failed > 0)
    }

    pub fn watch(&self, interval: std::time::Duration) -> Exit {
        let mut stack = match load(self.path, &self.load, self.style) {
            Ok(s) => s,
            Err(exit) => return exit,
        };
        let rt = Runtime::from_env();
        iade_driver::cancel_on_signal(rt.cancelled.clone(), || {});
        let printer = self.printer(stack.stack_dir());
        let options = WatchOptions { interval, run: self.run.clone() };
        match iade_driver::watch(&mut stack, &rt, &options, &printer) {
            Ok(WatchEnd::Stopped) => Exit::Success,
            Ok(WatchEnd::LeaseLost) => {
                error("stopping: another engine took the lease");
                Exit::LeaseHeld
            }
            Ok(WatchEnd::Held(h)) => {
                let who = h.map(|h| format!(": pid {} on {}", h.pid, safe(&h.host))).unwrap_or_default();
                error(&format!("another engine holds this stack's lease{who}"));
                Exit::LeaseHeld
            }
            Err(e) => failed(e, Some(&stack.sources()), self.style),
        }
    }
}

fn since(ms: i64) -> String {
    let ago = (iade_journal::now_ms() - ms).max(0) / 1000;
    match ago {
        ..60 => format!("{ago} s ago"),
        60..3600 => format!("{} min ago", ago / 60),
        _ => format!("{} h ago", ago / 3600),
    }
}

pub fn history(
    path: &Path,
    journal: Option<JournalLocation>,
    query: &HistoryQuery,
    json: bool,
    style: Style,
) -> Exit {
    let stack_dir = iade_driver::stack_dir_of(path);
    let location = journal.unwrap_or_else(|| JournalLocation::default_for(&stack_dir));
    if !location.exists() {
        return failed(Error::NoJournal(location.to_string()), None, style);
    }
    let id = iade_driver::stack_id(&stack_dir, &iade_driver::host_name());
    let store = match location.open(&id) {
        Ok(s) => s,
        Err(e) => return failed(e.into(), None, style),
    };
    let mut printed = 0usize;
    let result = if json {
        // One run at a time, as a JSON array streamed to standard output.
        println!("{{\n  \"version\": {VERSION},\n  \"runs\": [");
        let r = iade_driver::history(store.as_ref(), query, |r| {
            let text = serde_json::to_string_pretty(&r).unwrap_or_default().replace('\n', "\n    ");
            println!("{}    {text}", if printed > 0 { "," } else { "" });
            printed += 1;
        });
        println!("  ]\n}}");
        r
    } else {
        iade_driver::history(store.as_ref(), query, |r| {
            render::history(&r, style);
            printed += 1;
        })
    };
    match result {
        Err(e) => failed(e, None, style),
        Ok(()) if printed == 0 && !json => {
            eprintln!("no runs match");
            Exit::Success
        }
        Ok(()) => Exit::Success,
    }
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
