//! Human output: plans, run reports (of this engine, of a watching engine, from history),
//! findings, and the driver's events. Every text from the environment is escaped, so a file
//! name cannot forge a line of output or send escapes to the terminal; JSON stays exact.

use std::borrow::Cow;
use std::time::Duration;

use iade_driver::text::{fmt_ms, fmt_time, safe};
use iade_driver::{Event, RunRecord, RunView, Sink};
use iade_engine::{Action, Plan, Proof, Removal};
use iade_journal::{Finding, FindingOutcome, Output, ResourceError, StepStatus};

#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint<'a>(self, code: &str, text: &'a str) -> Cow<'a, str> {
        if self.color { Cow::Owned(format!("\x1b[{code}m{text}\x1b[0m")) } else { Cow::Borrowed(text) }
    }
}

pub fn plan(p: &Plan, stack: &str, style: Style, took: Duration) {
    // What the source does not declare comes first: a purge is the user's explicit request.
    for r in p.removals.iter().filter(|r| r.action != Action::None || r.error.is_some()) {
        let identity: Vec<String> = r.identity.values().map(|v| safe(v).into_owned()).collect();
        let why = match &r.removal {
            Some(Removal::Purge { directory }) => format!("not declared under {directory} (purge = true)"),
            Some(Removal::Orphan { proof: Some(Proof::Mark) }) => {
                "no longer declared; its mark proves it this stack's".to_string()
            }
            Some(Removal::Orphan { proof: Some(Proof::Journal) }) => {
                "no longer declared; the journal proves it this stack's (it cannot carry a mark)".to_string()
            }
            Some(Removal::Orphan { proof: None }) => {
                "no longer declared; kept: no mark proves it this stack's".to_string()
            }
            None => String::new(),
        };
        let (code, verb) = match (r.action, &r.error) {
            (_, Some(e)) => ("31", safe(e).into_owned()),
            (Action::Delete, None) => ("31", "delete".to_string()),
            (Action::Orphan, None) if matches!(r.removal, Some(Removal::Orphan { proof: Some(_) })) => {
                ("33", "kept (converge --prune deletes it)".to_string())
            }
            _ => ("2", "kept".to_string()),
        };
        let symbol = if r.error.is_some() { "!" } else { r.action.symbol() };
        // An entry found on disk is named by its path already.
        let shown = if identity.iter().all(|i| r.id.contains(i.as_str())) {
            String::new()
        } else {
            format!(" ({})", identity.join(", "))
        };
        println!(
            "{} {}{shown}  {verb}  {}",
            style.paint(code, symbol),
            style.paint("1", &safe(&r.id)),
            style.paint("2", &why)
        );
    }
    for r in p.pending() {
        let (code, verb) = match r.action {
            Action::Create => ("32", "create".to_string()),
            Action::Update => ("33", "update".to_string()),
            Action::Run => ("33", "run".to_string()),
            Action::Delete => ("31", "delete".to_string()),
            Action::Drift => ("35", "drifted (observe only: not changed)".to_string()),
            Action::Deferred => ("36", format!("observed after its dependencies ({})", r.after.join(", "))),
            Action::None | Action::Adopt | Action::Orphan => ("0", String::new()),
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
    for f in &p.refreshes {
        let when = if f.pending { "pending from an earlier run" } else { "after the changes above" };
        println!(
            "{} {}  refresh ({when}; notified by {})",
            style.paint("36", "↻"),
            style.paint("1", &f.resource),
            f.notified_by.join(", ")
        );
    }
    problems(&p.resources.iter().flat_map(|r| r.problems()).collect::<Vec<_>>(), style);
    let s = p.summary();
    eprintln!(
        "{stack}: {} observed in {}: {s}",
        iade_driver::text::count(s.resources, "resource"),
        fmt_ms(took)
    );
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

/// What could not be observed or compared.
fn problems(errors: &[ResourceError], style: Style) {
    for e in errors {
        // The engine's refusals (another stack's object, a protected one) say so themselves.
        if e.message.starts_with("refused: ") {
            println!("{} {}  {}", style.paint("31", "!"), style.paint("1", &e.resource), safe(&e.message));
            continue;
        }
        let what =
            e.field.as_ref().map_or("cannot be observed".into(), |f| format!("{f} cannot be compared"));
        println!(
            "{} {}  {what}: {}",
            style.paint("31", "?"),
            style.paint("1", &e.resource),
            safe(&e.message)
        );
    }
}

/// A run's report: the steps, what could not be observed, the findings and a summary line.
pub fn run(v: &RunView, stack: &str, style: Style) {
    match &v.resumed {
        Some((runs, done, again, leftovers)) if !runs.is_empty() => {
            let which = if runs.len() == 1 { "an interrupted run" } else { "interrupted runs" };
            let runs: Vec<String> = runs.iter().map(|i| format!("run {i}")).collect();
            eprintln!(
                "resumed after {which} ({}): {} found done, {again} planned again, {} removed",
                runs.join(", "),
                iade_driver::text::count(*done, "step"),
                iade_driver::text::count(*leftovers, "leftover"),
            );
        }
        Some((_, _, _, leftovers)) => {
            eprintln!("removed {} of an interrupted write", iade_driver::text::count(*leftovers, "leftover"))
        }
        None => {}
    }
    for s in &v.steps {
        let action = s.action.map(|a| a.as_str()).unwrap_or("observe");
        let symbol = match action {
            "create" => "+",
            "delete" => "-",
            _ => "~",
        };
        let error = safe(s.error.as_deref().unwrap_or_default());
        match s.status {
            StepStatus::Done | StepStatus::DoneByObservation => {
                println!("{} {}  {}", style.paint("32", symbol), s.resource, style.paint("2", action))
            }
            StepStatus::Failed => {
                println!("{} {}  {action} failed: {error}", style.paint("31", "✗"), s.resource);
                print_output(s.output.as_ref(), style);
            }
            _ => println!("{} {}  skipped: {error}", style.paint("33", "·"), s.resource),
        }
    }
    for id in &v.observe_only {
        println!("{} {id}  drifted (observe only, not changed)", style.paint("35", "!"));
    }
    problems(&v.errors, style);
    findings(&v.findings, style);
    eprintln!("{stack}: {v}");
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
    println!("  {}", RunView::of_record(r));
}

/// The driver's events on standard error, for a person at a terminal.
pub struct Printer {
    pub style: Style,
    pub stack: String,
}

impl Sink for Printer {
    fn event(&self, event: Event<'_>) {
        if let Event::SourcesBroken { diagnostics, sources } = &event {
            for d in diagnostics.iter().filter(|d| d.is_error()) {
                let options = iade_diagnostics::RenderOptions { color: self.style.color };
                eprintln!("{}\n", iade_diagnostics::render_text(sources, d, options));
            }
        }
        if let Some(line) = iade_driver::text::event_line(&event, &self.stack) {
            eprintln!("{line}");
        }
    }
}

/// `iade test`'s report, as `cargo test` prints one.
pub fn tests(report: &iade_driver::TestReport, style: Style) {
    let n = report.results.len();
    println!("running {n} test{}", if n == 1 { "" } else { "s" });
    for r in &report.results {
        let verdict = if r.passed { style.paint("32", "ok") } else { style.paint("31", "FAILED") };
        println!("test {} ... {verdict}", safe(&r.name));
        for b in &r.blessed {
            println!("  wrote {}", safe(b));
        }
    }
    let failed: Vec<&iade_driver::TestResult> = report.results.iter().filter(|r| !r.passed).collect();
    if !failed.is_empty() {
        println!("\nfailures:");
        for r in &failed {
            println!("\n---- {} ({}) ----", safe(&r.name), safe(&r.file));
            for f in &r.failures {
                let at = if f.line > 0 { format!(" (line {})", f.line) } else { String::new() };
                println!("{}{at}: not met", safe(&f.expect));
                for d in &f.detail {
                    println!("    {}", safe(d));
                }
            }
        }
    }
    let result = if failed.is_empty() { style.paint("32", "ok") } else { style.paint("31", "FAILED") };
    let filtered = if report.filtered_out > 0 {
        format!("; {} filtered out", report.filtered_out)
    } else {
        String::new()
    };
    println!("\ntest result: {result}. {} passed; {} failed{filtered}", report.passed(), report.failed());
}

/// `iade test --format junit`.
pub fn tests_junit(report: &iade_driver::TestReport) -> String {
    let esc = |t: &str| {
        t.chars()
            .map(|c| match c {
                '&' => "&amp;".to_string(),
                '<' => "&lt;".to_string(),
                '>' => "&gt;".to_string(),
                '"' => "&quot;".to_string(),
                c if c.is_control() && c != '\n' => format!("\\u{{{:x}}}", c as u32),
                c => c.to_string(),
            })
            .collect::<String>()
    };
    let mut cases = String::new();
    for r in &report.results {
        let class = format!("iade.test.{}", r.file);
        if r.passed {
            cases.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\"/>\n",
                esc(&r.name),
                esc(&class)
            ));
            continue;
        }
        let mut text = String::new();
        for f in &r.failures {
            text.push_str(&format!("{} (line {}): not met\n", f.expect, f.line));
            for d in &f.detail {
                text.push_str(&format!("  {d}\n"));
            }
        }
        let first = r.failures.first().map(|f| f.expect.as_str()).unwrap_or("failed");
        cases.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}\">\n      <failure message=\"{} not met\">{}</failure>\n    </testcase>\n",
            esc(&r.name),
            esc(&class),
            esc(first),
            esc(&text)
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"iade\" tests=\"{n}\" failures=\"{f}\" errors=\"0\">\n  <testsuite name=\"iade tests\" tests=\"{n}\" failures=\"{f}\" errors=\"0\" skipped=\"0\">\n{cases}  </testsuite>\n</testsuites>\n",
        n = report.results.len(),
        f = report.failed()
    )
}

/// `iade status`: a line per stack, aligned, then what holds which lease.
pub fn status(stacks: &[iade_driver::StackStatus], style: Style) {
    use iade_driver::text::{fmt_time, safe};
    let name_width = stacks.iter().map(|s| s.stack.name.chars().count()).max().unwrap_or(5).max(5);
    let host_width = stacks.iter().map(|s| s.stack.host.chars().count()).max().unwrap_or(4).max(4);
    if !stacks.is_empty() {
        println!(
            "{}",
            style.paint(
                "1",
                &format!(
                    "{:name_width$}  {:host_width$}  {:<23}  {:<11}  {:>5}  {}",
                    "stack", "host", "last run", "result", "drift", "controls failing / lease"
                )
            )
        );
    }
    for s in stacks {
        let (when, result) = match &s.last_run {
            Some(r) => {
                let result = match (r.status, r.summary.has_errors()) {
                    (iade_journal::RunStatus::Done, false) => style.paint("32", "done").into_owned(),
                    (iade_journal::RunStatus::Done, true) => style.paint("31", "errors").into_owned(),
                    (other, _) => style.paint("31", other.as_str()).into_owned(),
                };
                (fmt_time(r.started_ms), result)
            }
            None => ("never".to_string(), "-".to_string()),
        };
        let mut tail = if s.failing_controls.is_empty() {
            String::new()
        } else {
            let names =
                s.failing_controls.iter().map(|c| safe(c).into_owned()).collect::<Vec<_>>().join(", ");
            style.paint("31", &names).into_owned()
        };
        if let Some(h) = &s.holder {
            let what = if h.watch { "watched" } else { "held" };
            tail.push_str(&format!(
                "{}{what} by pid {} on {}",
                if tail.is_empty() { "" } else { "; " },
                h.pid,
                safe(&h.host)
            ));
        }
        // Padding counts characters; a coloured result carries escapes, so pad its plain width.
        let plain = match &s.last_run {
            Some(r) if r.status == iade_journal::RunStatus::Done && !r.summary.has_errors() => 4,
            Some(r) if r.status == iade_journal::RunStatus::Done => 6,
            Some(r) => r.status.as_str().len(),
            None => 1,
        };
        println!(
            "{:name_width$}  {:host_width$}  {:<23}  {result}{}  {:>5}  {tail}",
            safe(&s.stack.name),
            safe(&s.stack.host),
            when,
            " ".repeat(11usize.saturating_sub(plain)),
            s.drift_open,
        );
    }
}
