//! One view of a run, whoever ran it: this engine (a [`RunReport`]), a watching engine or
//! history (a [`RunRecord`] read from the journal). Shells render this one shape, so a run
//! reads the same wherever it comes from.

use std::time::Duration;

use iade_engine::{Action, RunReport};
use iade_journal::{Finding, Output, ResourceError, RunId, RunSummary, StepAction, StepStatus};

use crate::history::RunRecord;

/// One step as a report shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepView {
    pub resource: String,
    /// `None` for a resource never observed because a dependency failed.
    pub action: Option<StepAction>,
    pub status: StepStatus,
    pub error: Option<String>,
    pub output: Option<Output>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunView {
    /// `None` for an event pass that found nothing to record.
    pub run: Option<RunId>,
    pub took: Duration,
    /// What resuming an interrupted run did, when there was one: `(runs, done, again, leftovers)`.
    pub resumed: Option<(Vec<RunId>, usize, usize, usize)>,
    pub steps: Vec<StepView>,
    /// Observe-only resources that differ (reported, never changed).
    pub observe_only: Vec<String>,
    pub errors: Vec<ResourceError>,
    pub findings: Vec<Finding>,
    pub summary: RunSummary,
}

impl RunView {
    pub fn of_report(r: &RunReport, took: Duration) -> RunView {
        let resume = &r.resume;
        RunView {
            run: r.run,
            took,
            resumed: (!resume.interrupted_runs.is_empty() || resume.temp_files_removed > 0).then(|| {
                let (done, again) = (resume.done_by_observation.len(), resume.abandoned.len());
                (resume.interrupted_runs.clone(), done, again, resume.temp_files_removed)
            }),
            steps: r
                .steps
                .iter()
                .filter(|s| s.action.is_some())
                .map(|s| StepView {
                    resource: s.resource.clone(),
                    action: s.action,
                    status: s.status,
                    error: s.error.clone(),
                    output: s.output.clone(),
                })
                .collect(),
            observe_only: r
                .plan
                .pending()
                .filter(|p| p.action == Action::Drift)
                .map(|p| p.id.clone())
                .collect(),
            errors: r.errors.clone(),
            findings: r.compliance.findings.clone(),
            summary: r.summary.clone(),
        }
    }

    pub fn of_record(r: &RunRecord) -> RunView {
        let took = r.run.finished_ms.map_or(0, |f| f - r.run.started_ms);
        let stepped = |res: &str| r.steps.iter().any(|s| s.resource == res);
        let mut observe_only: Vec<String> = r
            .drift
            .iter()
            .filter(|d| d.corrected_ms.is_none() && !stepped(&d.resource))
            .map(|d| d.resource.clone())
            .collect();
        observe_only.dedup();
        RunView {
            run: Some(r.run.id),
            took: Duration::from_millis(u64::try_from(took).unwrap_or(0)),
            resumed: None,
            steps: r
                .steps
                .iter()
                .map(|s| StepView {
                    resource: s.resource.clone(),
                    action: Some(s.action),
                    status: s.status,
                    error: s.error.clone(),
                    output: s.output.clone(),
                })
                .collect(),
            observe_only,
            errors: r.errors.clone(),
            findings: r.findings.clone(),
            summary: r.run.summary.clone(),
        }
    }
}
