//! Prometheus metrics of a watching engine, fed by the driver's events and served over HTTP
//! (`/metrics` in the OpenMetrics text format, `/healthz`). Labels are bounded: kinds,
//! controls, severities and outcomes, never paths or values.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::events::{Event, Sink};

/// After this many failing passes in a row, `/healthz` answers 503.
pub const UNHEALTHY_AFTER: u32 = 3;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PassLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    control: String,
    severity: String,
    outcome: String,
}

/// The metrics, and the sink that keeps them.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    passes: Family<PassLabels, Counter>,
    pass_seconds: Histogram,
    drift_found: Family<KindLabels, Counter>,
    drift_corrected: Family<KindLabels, Counter>,
    steps: Family<OutcomeLabels, Counter>,
    pending_refreshes: Gauge,
    findings: Family<FindingLabels, Gauge>,
    lease_held: Gauge,
    journal_bytes: Gauge,
    last_success: Gauge,
    observation_errors: Counter,
    failing_in_a_row: AtomicU32,
    journal: Mutex<Option<std::path::PathBuf>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("iade")),
            passes: Family::default(),
            pass_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            drift_found: Family::default(),
            drift_corrected: Family::default(),
            steps: Family::default(),
            pending_refreshes: Gauge::default(),
            findings: Family::default(),
            lease_held: Gauge::default(),
            journal_bytes: Gauge::default(),
            last_success: Gauge::default(),
            observation_errors: Counter::default(),
            failing_in_a_row: AtomicU32::new(0),
            journal: Mutex::new(None),
        };
        {
            let mut r = lock(&m.registry);
            r.register(
                "passes",
                "Watch passes, by kind (full, event, requested) and outcome",
                m.passes.clone(),
            );
            r.register("pass_duration_seconds", "How long a watch pass took", m.pass_seconds.clone());
            r.register(
                "drift_found",
                "Resources found differing from their intent, by kind",
                m.drift_found.clone(),
            );
            r.register("drift_corrected", "Resources corrected, by kind", m.drift_corrected.clone());
            r.register("steps", "Steps, by outcome (done, failed, skipped)", m.steps.clone());
            r.register(
                "pending_refreshes",
                "Refreshes owed after the last pass",
                m.pending_refreshes.clone(),
            );
            r.register(
                "findings",
                "Control findings of the last pass, by control, severity and outcome (failing, waived, unknown)",
                m.findings.clone(),
            );
            r.register("lease_held", "1 while this engine holds the stack's lease", m.lease_held.clone());
            r.register("journal_bytes", "Size of the journal file", m.journal_bytes.clone());
            r.register(
                "last_success_timestamp_seconds",
                "When the last pass without errors ended (Unix time)",
                m.last_success.clone(),
            );
            r.register(
                "observation_errors",
                "Resources that could not be observed",
                m.observation_errors.clone(),
            );
        }
        m
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &lock(&self.registry));
        out
    }

    /// Whether the recent passes succeed (fewer than [`UNHEALTHY_AFTER`] failures in a row).
    pub fn healthy(&self) -> bool {
        self.failing_in_a_row.load(Ordering::Relaxed) < UNHEALTHY_AFTER
    }

    fn journal_size(&self) {
        if let Some(p) = lock(&self.journal).as_ref() {
            let size = std::fs::metadata(p).map_or(0, |m| m.len())
                + std::fs::metadata(p.with_extension("db-wal")).map_or(0, |m| m.len());
            self.journal_bytes.set(i64::try_from(size).unwrap_or(i64::MAX));
        }
    }

    fn pass(&self, kind: &str, report: &iade_engine::RunReport, took: std::time::Duration) {
        use iade_engine::Action;
        let ok = !report.summary.has_errors();
        let outcome = if ok { "ok" } else { "failed" };
        self.passes.get_or_create(&PassLabels { kind: kind.into(), outcome: outcome.into() }).inc();
        self.pass_seconds.observe(took.as_secs_f64());
        let kinds: std::collections::HashMap<&str, &str> =
            report.plan.resources.iter().map(|r| (r.id.as_str(), r.kind.as_str())).collect();
        for r in &report.plan.resources {
            if matches!(
                r.action,
                Action::Create | Action::Update | Action::Delete | Action::Run | Action::Drift
            ) {
                self.drift_found.get_or_create(&KindLabels { kind: r.kind.clone() }).inc();
            }
        }
        for s in &report.steps {
            self.steps.get_or_create(&OutcomeLabels { outcome: s.status.as_str().into() }).inc();
            if s.status == iade_journal::StepStatus::Done {
                let kind = kinds.get(s.resource.as_str()).copied().unwrap_or("unknown");
                self.drift_corrected.get_or_create(&KindLabels { kind: kind.into() }).inc();
            }
        }
        self.observation_errors.inc_by(report.errors.len() as u64);
        self.pending_refreshes.set(report.plan.refreshes.iter().filter(|r| r.pending).count() as i64);
        self.findings.clear();
        for f in &report.compliance.findings {
            let outcome = match f.outcome {
                iade_journal::FindingOutcome::Fail => "failing",
                iade_journal::FindingOutcome::Waived => "waived",
                iade_journal::FindingOutcome::Unknown => "unknown",
            };
            let labels = FindingLabels {
                control: f.control.clone(),
                severity: format!("{:?}", f.severity).to_lowercase(),
                outcome: outcome.into(),
            };
            self.findings.get_or_create(&labels).inc();
        }
        if ok {
            self.failing_in_a_row.store(0, Ordering::Relaxed);
            self.last_success.set(now_secs());
        } else {
            self.failing_in_a_row.fetch_add(1, Ordering::Relaxed);
        }
        self.journal_size();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[expect(clippy::disallowed_methods, reason = "the time of the last good pass, for alerts")]
fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Sink for Metrics {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::WatchStarted { journal, .. } => {
                self.lease_held.set(1);
                *lock(&self.journal) = Some(std::path::PathBuf::from(journal));
                self.journal_size();
            }
            Event::Pass { kind, report, took } => self.pass(kind.as_str(), report, took),
            Event::PassFailed { .. } => {
                self.passes
                    .get_or_create(&PassLabels { kind: "full".into(), outcome: "failed".into() })
                    .inc();
                self.failing_in_a_row.fetch_add(1, Ordering::Relaxed);
            }
            Event::Stopped => {
                self.lease_held.set(0);
            }
            _ => {}
        }
    }
}

/// Events to two sinks: what a watch prints, and its metrics.
#[expect(missing_debug_implementations, reason = "sinks are trait objects without Debug")]
pub struct Tee<'a>(pub &'a dyn Sink, pub &'a dyn Sink);

impl Sink for Tee<'_> {
    fn event(&self, event: Event<'_>) {
        self.0.event(event.clone());
        self.1.event(event);
    }
}

/// Serves `/metrics` and `/healthz` on `addr` from a thread of its own; returns the address
/// it is bound to (port 0 picks a free one).
pub fn serve(metrics: Arc<Metrics>, addr: &str) -> Result<std::net::SocketAddr, crate::Error> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| crate::Error::Io(format!("cannot serve metrics on {addr}: {e}")))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| crate::Error::Io(format!("cannot serve metrics on {addr}: not an IP address")))?;
    std::thread::Builder::new()
        .name("iade-metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let (status, body, kind) = match request.url() {
                    "/metrics" => {
                        (200, metrics.encode(), "application/openmetrics-text; version=1.0.0; charset=utf-8")
                    }
                    "/healthz" if metrics.healthy() => (200, "ok\n".to_string(), "text/plain; charset=utf-8"),
                    "/healthz" => (
                        503,
                        format!("the last {UNHEALTHY_AFTER} or more passes failed\n"),
                        "text/plain; charset=utf-8",
                    ),
                    _ => {
                        (404, "iade serves /metrics and /healthz\n".to_string(), "text/plain; charset=utf-8")
                    }
                };
                let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", kind) {
                    response = response.with_header(h);
                }
                let _ = request.respond(response);
            }
        })
        .map_err(|e| crate::Error::Io(format!("cannot start the metrics server: {e}")))?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_fails_after_three_failing_passes_in_a_row_and_labels_stay_bounded() {
        let m = Metrics::new();
        for i in 0..UNHEALTHY_AFTER {
            assert!(m.healthy(), "after {i} failures");
            m.event(Event::PassFailed {
                error: "journal locked".into(),
                retry_in: std::time::Duration::from_secs(1),
            });
        }
        assert!(!m.healthy());
        let text = m.encode();
        assert!(text.contains("iade_passes_total{kind=\"full\",outcome=\"failed\"} 3"), "{text}");
        assert!(!text.contains("journal locked"), "an error's text is never a label: {text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
