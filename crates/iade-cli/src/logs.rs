//! `--log-format json`: one JSON object per event on stderr, through `tracing` and
//! `tracing-subscriber`'s JSON formatter, each with the stack and, where there is one, the run
//! and the resource. The schema is documented in `docs/engine.md` ("Structured logs").

use iade_driver::{Event, Sink};

/// A value as its JSON documents name it (`create`, `done`, `high`): the same words in logs.
fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Null) => String::new(),
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Installs the JSON formatter as the process's subscriber: one line per event on stderr, only
/// iade's own events (libraries' tracing stays out of the log).
pub fn init_json() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_filter(tracing_subscriber::filter::Targets::new().with_target("iade", tracing::Level::TRACE));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// The driver's events as structured log lines.
pub struct JsonLog {
    pub stack: String,
}

impl JsonLog {
    /// A run's end, its drift and its findings, as one line each.
    pub fn run(&self, report: &iade_engine::RunReport, pass: Option<&str>, took_ms: u128) {
        // 0: an event pass that found nothing leaves no run in the journal.
        let run = report.run.map_or(0, |r| r.0);
        let s = &report.summary;
        for r in report.plan.resources.iter().filter(|r| !r.changes.is_empty()) {
            let fields: Vec<&str> = r.changes.iter().map(|c| c.field.as_str()).collect();
            tracing::info!(target: "iade",
                event = "drift",
                stack = %self.stack,
                run,
                resource = %r.id,
                kind = %r.kind,
                action = %word(&r.action),
                fields = %fields.join(","),
            );
        }
        for f in &report.compliance.findings {
            tracing::warn!(target: "iade",
                event = "finding",
                stack = %self.stack,
                run,
                control = %f.control,
                severity = %word(&f.severity),
                subject = f.subject.as_deref().unwrap_or(""),
                outcome = %word(&f.outcome),
                message = f.message.as_deref().unwrap_or(""),
            );
        }
        tracing::info!(target: "iade",
            event = "run_end",
            stack = %self.stack,
            run,
            pass = pass.unwrap_or("one-shot"),
            status = %word(&report.status),
            resources = s.resources,
            changed = s.changed,
            failed = s.failed,
            drifted = s.drifted,
            controls_failed = s.controls.failed,
            took_ms = took_ms as u64,
        );
    }
}

impl Sink for JsonLog {
    fn event(&self, event: Event<'_>) {
        let stack = self.stack.as_str();
        match event {
            Event::Engine(iade_engine::Event::Observed { resources, differ }) => {
                tracing::info!(target: "iade", event = "observed", stack, resources, differ);
            }
            Event::Engine(iade_engine::Event::Wave { index, waves, steps }) => {
                tracing::info!(target: "iade", event = "wave", stack, index, waves, steps);
            }
            Event::Engine(iade_engine::Event::Step(s)) => {
                let error = s.error.as_deref().unwrap_or("");
                tracing::info!(target: "iade",
                    event = "step",
                    stack,
                    resource = %s.resource,
                    action = %word(&s.action),
                    status = %word(&s.status),
                    attempts = s.attempts,
                    error,
                );
            }
            Event::WaitingForLease(h) => {
                tracing::info!(target: "iade", event = "lease_wait", stack, holder_pid = h.map(|h| h.pid), holder_host = h.map_or("", |h| h.host.as_str()));
            }
            Event::AskingWatcher(h) => {
                tracing::info!(target: "iade", event = "lease_watcher", stack, holder_pid = h.pid, holder_host = %h.host);
            }
            Event::WatchStarted { resources, interval, journal } => {
                tracing::info!(target: "iade", event = "watch_start", stack, resources, interval_s = interval.as_secs(), journal = %journal);
            }
            Event::Recompiled { resources } => {
                tracing::info!(target: "iade", event = "recompiled", stack, resources)
            }
            Event::SourcesBroken { diagnostics, .. } => {
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                tracing::error!(target: "iade", event = "sources_broken", stack, errors);
            }
            Event::Pass { kind, report, took } => self.run(report, Some(kind.as_str()), took.as_millis()),
            Event::PassFailed { error, retry_in } => {
                tracing::error!(target: "iade", event = "pass_failed", stack, error = %error, retry_in_s = retry_in.as_secs());
            }
            Event::RequestRefused { reason } => {
                tracing::warn!(target: "iade", event = "request_refused", stack, reason)
            }
            Event::JournalChecked { problems } => {
                tracing::info!(target: "iade", event = "journal_checked", stack, problems)
            }
            Event::Stopped => tracing::info!(target: "iade", event = "watch_stop", stack),
        }
    }
}
