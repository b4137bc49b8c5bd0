//! What the driver reports while it works. The CLI renders these as lines on a terminal (or
//! JSON logs); the language server ignores most of them. The driver itself never prints.

use std::time::Duration;

use iade_diagnostics::{Diagnostic, Sources};
use iade_engine::RunReport;
use iade_journal::Holder;

/// Why a watch pass ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PassKind {
    /// The interval came round: every resource.
    Full,
    /// A managed path changed: the resources it belongs to.
    Event,
    /// A one-shot `converge` asked for it.
    Requested,
}

impl PassKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PassKind::Full => "full",
            PassKind::Event => "event",
            PassKind::Requested => "requested",
        }
    }
}

#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// Something the engine reports during a run (observation rounds, waves, steps).
    Engine(&'a iade_engine::Event),
    /// Another engine holds the lease; waiting for it.
    WaitingForLease(Option<&'a Holder>),
    /// A watching engine holds the lease; asking it for a pass.
    AskingWatcher(&'a Holder),
    WatchStarted {
        resources: usize,
        interval: Duration,
        journal: String,
    },
    /// The sources changed and compile: the watch enforces the new intent.
    Recompiled {
        resources: usize,
    },
    /// The sources changed but do not compile: the last good intent stays enforced.
    SourcesBroken {
        diagnostics: &'a [Diagnostic],
        sources: &'a Sources,
    },
    /// A watch pass finished (an event pass that found nothing is not reported).
    Pass {
        kind: PassKind,
        report: &'a RunReport,
        took: Duration,
    },
    /// A pass failed; the next try is after `retry_in`.
    PassFailed {
        error: String,
        retry_in: Duration,
    },
    /// A one-shot `converge` asked for a pass over another intent, and was refused.
    RequestRefused {
        reason: &'a str,
    },
    /// The watching engine checked its journal (and pruned old history).
    JournalChecked {
        problems: usize,
    },
    /// The watch stopped (a signal), and the lease is released.
    Stopped,
}

/// Receives the driver's events, on the thread that runs the work.
pub trait Sink: Sync {
    fn event(&self, event: Event<'_>);
}

/// Discards every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Sink for Quiet {
    fn event(&self, _: Event<'_>) {}
}

/// Forwards the engine's events of a run to a driver sink.
pub(crate) struct Forward<'a>(pub &'a dyn Sink);

impl iade_engine::Events for Forward<'_> {
    fn emit(&self, event: &iade_engine::Event) {
        self.0.event(Event::Engine(event));
    }
}
