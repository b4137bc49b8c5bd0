//! What a run reports while it works: progress for long runs, each step as it ends. The driver
//! forwards these to whoever renders them (a terminal, JSON logs, metrics).

use serde::Serialize;

use crate::converge::StepReport;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A round of observation finished.
    Observed {
        /// Resources observed in this round.
        resources: usize,
        /// Of those, how many differ from their intent.
        differ: usize,
    },
    /// A wave of steps (resources of one dependency depth) starts; a wave of more than 1,024
    /// steps starts once per batch, with that batch's steps.
    Wave { index: usize, waves: usize, steps: usize },
    /// A step ended (done, failed or skipped).
    Step(StepReport),
}

/// Receives a run's events. Called from the run's own thread, in order.
pub trait Events: Sync {
    fn emit(&self, event: &Event);
}

/// Discards every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl Events for NoEvents {
    fn emit(&self, _: &Event) {}
}
