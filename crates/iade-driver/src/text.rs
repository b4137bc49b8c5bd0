//! Plain text for people, shared by every shell: escaped names, durations, times and summary
//! lines. No colour and no terminal here; a shell decides where the text goes.

use std::borrow::Cow;
use std::time::Duration;

use iade_journal::StepStatus;

use crate::events::Event;
use crate::view::RunView;

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

/// How long ago a time was: `12 s ago`, `3 min ago`, `2 h ago`.
pub fn since(ms: i64) -> String {
    let ago = (iade_journal::now_ms() - ms).max(0) / 1000;
    match ago {
        ..60 => format!("{ago} s ago"),
        60..3600 => format!("{} min ago", ago / 60),
        _ => format!("{} h ago", ago / 3600),
    }
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

/// `1 resource`, `2 resources`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

impl std::fmt::Display for RunView {
    /// `run 12 in 38 ms: 40 resources, 2 changed, 0 failed, 0 skipped; controls: 3 passed, …`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.summary;
        match self.run {
            Some(r) => write!(f, "run {r}")?,
            None => write!(f, "nothing to do")?,
        }
        write!(
            f,
            " in {}: {}, {} changed, {} failed, {} skipped",
            fmt_ms(self.took),
            count(s.resources, "resource"),
            s.changed,
            s.failed,
            s.skipped
        )?;
        if s.refreshed > 0 {
            write!(f, ", {} refreshed", s.refreshed)?;
        }
        if s.unobservable > 0 {
            write!(f, ", {} not observable", s.unobservable)?;
        }
        if s.refused > 0 {
            write!(f, ", {} refused", s.refused)?;
        }
        let c = s.controls;
        if c.passed + c.failed + c.unknown + c.waived > 0 {
            write!(f, "; controls: {} passed, {} failed, {} unknown", c.passed, c.failed, c.unknown)?;
            if c.waived > 0 {
                write!(f, ", {} waived", c.waived)?;
            }
        }
        Ok(())
    }
}

/// The line a person reads for an event of the driver (the engine's own events, which a
/// progress display shows, have none). `stack` is how the stack is named.
pub fn event_line(event: &Event<'_>, stack: &str) -> Option<String> {
    Some(match event {
        Event::WaitingForLease(Some(h)) => {
            format!("waiting for the lease held by pid {} on {}", h.pid, safe(&h.host))
        }
        Event::WaitingForLease(None) => "waiting for the lease held by another engine".into(),
        Event::AskingWatcher(h) => {
            format!(
                "a watching engine (pid {} on {}) holds the lease: asking it for a pass",
                h.pid,
                safe(&h.host)
            )
        }
        Event::WatchStarted { resources, interval, journal } => format!(
            "watching {stack} ({}, journal {journal}): a full pass every {} s; \
             Ctrl-C stops after the pass in flight",
            count(*resources, "resource"),
            interval.as_secs()
        ),
        Event::Recompiled { resources } => {
            format!("sources changed: recompiled ({})", count(*resources, "resource"))
        }
        Event::SourcesBroken { .. } => {
            "sources changed but do not compile: still enforcing the last good version".into()
        }
        Event::Pass { kind, report, took } => {
            let done: Vec<&str> = report
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Done)
                .map(|s| s.resource.as_str())
                .collect();
            let list = if done.is_empty() { String::new() } else { format!(" ({})", done.join(", ")) };
            format!("{} pass: {}{list}", kind.as_str(), RunView::of_report(report, *took))
        }
        Event::PassFailed { error, retry_in } => {
            format!("pass failed: {}; retrying in {}", safe(error), fmt_ms(*retry_in))
        }
        Event::RequestRefused { reason } => format!("refused a pass request: {reason}"),
        Event::Stopped => "stopped: the lease is released".into(),
        Event::Engine(_) | Event::JournalChecked { .. } => return None,
    })
}
