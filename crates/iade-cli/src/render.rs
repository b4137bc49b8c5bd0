//! Human output: plans, run reports (of this engine, of a watching engine, from history),
//! findings, and the driver's events. Every text from the environment is escaped, so a file
//! name cannot forge a line of output or send escapes to the terminal; JSON stays exact.

use std::borrow::Cow;
use std::time::Duration;

use iade_driver::{Event, PassKind, RunRecord, Sink};
use iade_engine::{Action, Plan, RunReport};
use iade_journal::{
    Finding, FindingOutcome, Output, ResourceError, RunId, RunSummary, StepAction, StepStatus,
};

#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint<'a>(self, code: &str, text: &'a str) -> Cow<'a, str> {
        if self.color { Cow::Owned(format!("\x1b[{code}m{text}\x1b[0m")) } else { Cow::Borrowed(text) }
    }
}

/// Control characters escaped (`\n`, `\x1b`): text from the environment printed safely.
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
            .collect(),
    )
}

/// `0.4 ms`, `38 ms`, `1.2 s`.
pub fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

fn count(parts: &mut Vec<String>, n: usize, what: &str) {
    if n > 0 {
        parts.push(format!("{n} {what}"));
    }
}

pub fn plan(p: &Plan, stack: &str, style: Style, took: Duration) {
    for r in p.pending() {
        let (code, verb) = match r.action {
            Action::Create => ("32", "create".to_string()),
            Action::Update => ("33", "update".to_string()),
            Action::Run => ("33", "run".to_string()),
            Action::Delete => ("31", "delete".to_string()),
            Action::Drift => ("35", "drifted (observe only: not changed)".to_string()),
            Action::Deferred => ("36", format!("observed after its dependencies ({})", r.after.join(", "))),
            Action::None => ("0", String::new()),
        };
        let identity: Vec<String> = r.identity.values().map(|v| safe(v).into_owned()).collect();
        println!(
            "{} {} ({})  {verb}  {}",
            style.paint(code, r.action.symbol()),
            style.paint("1", &r.id),
            identity.join(", "),
            style.paint("2", &format!("{}:{}", r.declared.file, r.declared.line))
        );
        for c in r.changes.iter().filter(|c| c.unknown.is_none()) {
            let what = match &c.observed {
                Some(o) => format!("{}: {} → {}", c.field, safe(o), safe(&c.intended)),
                None => format!("{} = {}", c.field, safe(&c.intended)),
            };
            let src = c
                .source
                .as_ref()
                .map(|s| format!("  {}", style.paint("2", &format!("{}:{}", s.file, s.line))));
            println!("    {what}{}", src.unwrap_or_default());
            for line in c.diff.iter().flat_map(|d| d.lines()) {
                let code = match line.chars().next() {
                    Some('+') if !line.starts_with("+++") => "32",
                    Some('-') if !line.starts_with("---") => "31",
                    Some('@') => "36",
                    _ => "0",
                };
                println!("      {}", style.paint(code, &safe(line)));
            }
        }
    }
    for r in p.resources.iter() {
        if let Some(e) = &r.error {
            println!(
                "{} {}  cannot be observed: {}",
                style.paint("31", "?"),
                style.paint("1", &r.id),
                safe(e)
            );
        }
        for c in r.unknown() {
            let why = c.unknown.as_deref().unwrap_or_default();
            println!(
                "{} {}  {} cannot be compared: {}",
                style.paint("31", "?"),
                style.paint("1", &r.id),
                c.field,
                safe(why)
            );
        }
    }
    let s = p.summary();
    let mut parts = Vec::new();
    count(&mut parts, s.create, "to create");
    count(&mut parts, s.update, "to update");
    count(&mut parts, s.delete, "to delete");
    count(&mut parts, s.run, "to run");
    count(&mut parts, s.deferred, "to observe after their dependencies");
    count(&mut parts, s.drift, "drifted (observe only)");
    count(&mut parts, s.unobservable, "not observable");
    let what = if parts.is_empty() { "nothing differs".to_string() } else { parts.join(", ") };
    eprintln!("{stack}: {} resources observed in {}: {what}", s.resources, fmt_ms(took));
}

pub fn findings(findings: &[Finding], style: Style) {
    for f in findings {
        let head = format!("control {} [{}]", f.control, f.severity);
        let subject = f.subject.as_deref().map_or(Cow::Borrowed("(stack)"), safe);
        let label = match f.outcome {
            FindingOutcome::Fail => style.paint("31", "fails"),
            FindingOutcome::Unknown => style.paint("33", "cannot decide"),
            FindingOutcome::Waived => style.paint("36", "fails (waived)"),
        };
        println!(
            "{} {label} on {subject}: {}",
            style.paint("1", &head),
            safe(f.message.as_deref().unwrap_or_default())
        );
        for e in &f.evidence {
            println!("    {}", safe(e));
        }
        match f.intent_compliant {
            Some(true) => println!("    the intent is compliant: reality drifted from it"),
            Some(false) => println!("    the intent itself fails this control: fix the source"),
            None => {}
        }
        if let Some(loc) = &f.location {
            println!("    {}", style.paint("2", &format!("at {loc}")));
        }
    }
}

/// One step as a report shows it.
pub struct StepLine<'a> {
    resource: &'a str,
    action: Option<StepAction>,
    status: StepStatus,
    error: Option<&'a str>,
    output: Option<&'a Output>,
}

/// A run as both a run report and the journal know it, so a run of this engine, a pass of the
/// watching engine and a run in history print alike.
pub struct RunView<'a> {
    pub run: Option<RunId>,
    pub took: Duration,
    pub resumed: Option<String>,
    pub steps: Vec<StepLine<'a>>,
    pub observe_only: Vec<&'a str>,
    pub errors: &'a [ResourceError],
    pub findings: &'a [Finding],
    pub summary: &'a RunSummary,
}

impl<'a> RunView<'a> {
    pub fn of_report(r: &'a RunReport, took: Duration) -> RunView<'a> {
        let resumed = (!r.resume.interrupted_runs.is_empty()).then(|| {
            let runs: Vec<String> = r.resume.interrupted_runs.iter().map(|i| format!("run {i}")).collect();
            format!(
                "resumed after an interrupted run ({}): {} step(s) found done, {} planned again, {} leftover(s) removed",
                runs.join(", "),
                r.resume.done_by_observation.len(),
                r.resume.abandoned.len(),
                r.resume.temp_files_removed
            )
        });
        RunView {
            run: r.run,
            took,
            resumed,
            steps: r
                .steps
                .iter()
                .filter(|s| s.action.is_some())
                .map(|s| StepLine {
                    resource: &s.resource,
                    action: s.action,
                    status: s.status,
                    error: s.error.as_deref(),
                    output: s.output.as_ref(),
                })
                .collect(),
            observe_only: r
                .plan
                .pending()
                .filter(|p| p.action == Action::Drift)
                .map(|p| p.id.as_str())
                .collect(),
            errors: &r.errors,
            findings: &r.compliance.findings,
            summary: &r.summary,
        }
    }

    pub fn of_record(r: &'a RunRecord) -> RunView<'a> {
        let took = r.run.finished_ms.map_or(0, |f| f - r.run.started_ms);
        let stepped = |res: &str| r.steps.iter().any(|s| s.resource == res);
        let mut observe_only: Vec<&str> = r
            .drift
            .iter()
            .filter(|d| d.corrected_ms.is_none() && !stepped(&d.resource))
            .map(|d| d.resource.as_str())
            .collect();
        observe_only.dedup();
        RunView {
            run: Some(r.run.id),
            took: Duration::from_millis(u64::try_from(took).unwrap_or(0)),
            resumed: None,
            steps: r
                .steps
                .iter()
                .map(|s| StepLine {
                    resource: &s.resource,
                    action: Some(s.action),
                    status: s.status,
                    error: s.error.as_deref(),
                    output: s.output.as_ref(),
                })
                .collect(),
            observe_only,
            errors: &r.errors,
            findings: &r.findings,
            summary: &r.run.summary,
        }
    }

    pub fn print(&self, stack: &str, style: Style) {
        if let Some(r) = &self.resumed {
            eprintln!("{r}");
        }
        for StepLine { resource, action, status, error, output } in &self.steps {
            let action = action.map(|a| a.as_str()).unwrap_or("observe");
            let symbol = match action {
                "create" => "+",
                "delete" => "-",
                _ => "~",
            };
            match status {
                StepStatus::Done | StepStatus::DoneByObservation => {
                    println!("{} {resource}  {}", style.paint("32", symbol), style.paint("2", action))
                }
                StepStatus::Failed => {
                    println!(
                        "{} {resource}  {action} failed: {}",
                        style.paint("31", "✗"),
                        safe(error.unwrap_or_default())
                    );
                    print_output(*output, style);
                }
                _ => println!(
                    "{} {resource}  skipped: {}",
                    style.paint("33", "·"),
                    safe(error.unwrap_or_default())
                ),
            }
        }
        for id in &self.observe_only {
            println!("{} {id}  drifted (observe only, not changed)", style.paint("35", "!"));
        }
        for e in self.errors {
            let what = match &e.field {
                Some(f) => format!("{f} cannot be compared"),
                None => "cannot be observed".to_string(),
            };
            println!("{} {}  {what}: {}", style.paint("31", "?"), e.resource, safe(&e.message));
        }
        findings(self.findings, style);
        eprintln!("{stack}: {}", self.summary_line());
    }

    pub fn summary_line(&self) -> String {
        let s = self.summary;
        let mut line = format!(
            "{} in {}: {} resources, {} changed, {} failed, {} skipped",
            self.run.map_or("nothing to do".to_string(), |r| format!("run {r}")),
            fmt_ms(self.took),
            s.resources,
            s.changed,
            s.failed,
            s.skipped
        );
        if s.unobservable > 0 {
            line.push_str(&format!(", {} not observable", s.unobservable));
        }
        let c = s.controls;
        if c.passed + c.failed + c.unknown > 0 {
            line.push_str(&format!(
                "; controls: {} passed, {} failed, {} unknown",
                c.passed, c.failed, c.unknown
            ));
        }
        line
    }
}

fn print_output(output: Option<&Output>, style: Style) {
    let Some(o) = output else { return };
    for (name, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            continue;
        }
        println!("    {}", style.paint("2", &format!("{name} (last {} lines):", lines.len().min(10))));
        for l in &lines[lines.len().saturating_sub(10)..] {
            println!("      {}", safe(l));
        }
    }
}

/// `2026-11-26 14:39:34 UTC`, from milliseconds since the epoch (civil-from-days).
pub fn fmt_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

pub fn history(r: &RunRecord, style: Style) {
    let run = &r.run;
    println!(
        "{}  {}  {}  {}  on {} (pid {})",
        style.paint("1", &format!("run {}", run.id)),
        run.mode.as_str(),
        run.status.as_str(),
        fmt_time(run.started_ms),
        safe(&run.host),
        run.pid
    );
    for d in &r.drift {
        let corrected = match d.corrected_ms {
            Some(c) => format!("corrected {} ms after detection", c - d.detected_ms),
            None => "not corrected".into(),
        };
        let observed = d.observed.as_deref().map_or(Cow::Borrowed("(absent)"), safe);
        println!("  drift  {}.{}: {observed} → {}  ({corrected})", d.resource, d.field, safe(&d.intended));
    }
    for e in &r.errors {
        let what = e.field.as_ref().map_or(String::new(), |f| format!(".{f}"));
        println!("  error  {}{what}: {}", e.resource, safe(&e.message));
    }
    for s in &r.steps {
        let error = s.error.as_deref().map(|e| format!(" ({})", safe(e))).unwrap_or_default();
        println!("  step   {} {}: {}{error}", s.action, s.resource, s.status);
        print_output(s.output.as_ref(), style);
    }
    for f in &r.findings {
        println!(
            "  control {} [{}] {} on {}: {}",
            f.control,
            f.severity,
            f.outcome.as_str(),
            f.subject.as_deref().map_or(Cow::Borrowed("(stack)"), safe),
            safe(f.message.as_deref().unwrap_or_default())
        );
    }
    println!("  {}", RunView::of_record(r).summary_line());
}

/// The driver's events on standard error, for a person at a terminal.
pub struct Printer {
    pub style: Style,
    pub stack: String,
}

impl Sink for Printer {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::WaitingForLease(Some(h)) => {
                eprintln!("waiting for the lease held by pid {} on {}", h.pid, safe(&h.host))
            }
            Event::WaitingForLease(None) => eprintln!("waiting for the lease held by another engine"),
            Event::AskingWatcher(h) => eprintln!(
                "a watching engine (pid {} on {}) holds the lease: asking it for a pass",
                h.pid,
                safe(&h.host)
            ),
            Event::WatchStarted { resources, interval, journal } => eprintln!(
                "watching {} ({resources} resources, journal {journal}): a full pass every {} s; Ctrl-C stops after the pass in flight",
                self.stack,
                interval.as_secs()
            ),
            Event::Recompiled { resources } => {
                eprintln!("sources changed: recompiled ({resources} resources)")
            }
            Event::SourcesBroken { diagnostics, sources } => {
                for d in diagnostics.iter().filter(|d| d.is_error()) {
                    let options = iade_diagnostics::RenderOptions { color: self.style.color };
                    eprintln!("{}\n", iade_diagnostics::render_text(sources, d, options));
                }
                eprintln!("sources changed but do not compile: still enforcing the last good version");
            }
            Event::Pass { kind, report, took } => {
                let kind = match kind {
                    PassKind::Full => "full",
                    PassKind::Event => "event",
                    PassKind::Requested => "requested",
                };
                let done: Vec<&str> = report
                    .steps
                    .iter()
                    .filter(|s| s.status == StepStatus::Done)
                    .map(|s| s.resource.as_str())
                    .collect();
                let list = if done.is_empty() { String::new() } else { format!(" ({})", done.join(", ")) };
                eprintln!("{kind} pass: {}{list}", RunView::of_report(report, took).summary_line());
            }
            Event::PassFailed { error, retry_in } => {
                eprintln!("pass failed: {}; retrying in {}", safe(&error), fmt_ms(retry_in))
            }
            Event::RequestRefused { reason } => eprintln!("refused a pass request: {reason}"),
            Event::Stopped => eprintln!("stopped: the lease is released"),
            Event::Engine(_) | Event::JournalChecked { .. } => {}
        }
    }
}
