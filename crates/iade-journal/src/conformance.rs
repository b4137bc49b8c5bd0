//! The conformance suite: what every [`Store`] must do, as functions an implementation's tests
//! call with a [`Harness`]. A failure panics with what the contract expected.
//!
//! The SQLite journal runs it, and so must any other implementation (a shared PostgreSQL
//! journal): `iade_journal::conformance::run_all(&harness)`.

use std::time::{Duration, Instant};

use iade_intent::{Severity, SourceLoc};

use crate::{
    AppliedIdentity, Drift, Epoch, Finding, FindingOutcome, Holder, JournalError, LeaseClaim, LeaseOutcome,
    Output, PassRequest, PendingRefresh, RequestAnswer, ResourceError, Retention, RunFilter, RunMode,
    RunStart, RunStatus, RunSummary, StepAction, StepChange, StepIntent, StepOutcome, StepStatus, Store,
    WaveOutcome,
};

/// Makes journals for the suite.
pub trait Harness {
    /// A new, empty journal.
    fn create(&self) -> Box<dyn Store>;
    /// Another handle on the journal `create` made last (another engine on the same stack).
    fn reopen(&self) -> Box<dyn Store>;
}

/// Every case of the suite, in order.
pub fn run_all(h: &dyn Harness) {
    a_free_lease_is_acquired_and_a_held_one_names_its_holder(h);
    a_stale_epoch_can_neither_renew_nor_write(h);
    a_gone_holder_is_taken_over_with_a_new_epoch(h);
    a_run_round_trips_every_typed_field(h);
    an_interrupted_run_is_listed_and_settled(h);
    obligations_survive_reopening_and_clear_only_on_success(h);
    pass_requests_are_answered_served_or_refused(h);
    history_lists_runs_newest_first_and_filters_by_resource(h);
    pruning_removes_old_detail_and_never_an_obligation(h);
    a_write_by_another_handle_is_notified(h);
    integrity_check_of_a_sound_journal_finds_nothing(h);
}

fn claim(pid: u32, watch: bool) -> LeaseClaim {
    LeaseClaim { pid, host: "conformance-host".into(), ttl: Duration::from_secs(60), watch }
}

fn never_gone(_: &Holder) -> bool {
    false
}

fn acquire(j: &mut dyn Store, pid: u32) -> Epoch {
    match j.acquire_lease(&claim(pid, false), &never_gone) {
        Ok(LeaseOutcome::Acquired { epoch }) => epoch,
        other => panic!("a free lease must be acquired, got {other:?}"),
    }
}

fn start(drift: Vec<Drift>) -> RunStart {
    RunStart { mode: RunMode::Converge, pid: 42, host: "conformance-host".into(), drift, errors: Vec::new() }
}

fn intent(resource: &str) -> StepIntent {
    StepIntent {
        resource: resource.into(),
        action: StepAction::Update,
        digest: "d1".into(),
        idempotency_key: format!("{resource}:update:d1"),
        changes: vec![StepChange {
            field: "mode".into(),
            observed: Some("0o600".into()),
            intended: "0o644".into(),
        }],
    }
}

pub fn a_free_lease_is_acquired_and_a_held_one_names_its_holder(h: &dyn Harness) {
    let mut a = h.create();
    let mut b = h.reopen();
    assert_eq!(a.holder().expect("holder"), None, "a new journal has no lease holder");
    let epoch = acquire(a.as_mut(), 100);
    match b.acquire_lease(&claim(200, true), &never_gone).expect("acquire") {
        LeaseOutcome::Held(holder) => {
            assert_eq!(holder.pid, 100);
            assert_eq!(holder.host, "conformance-host");
            assert!(!holder.watch);
            assert!(holder.expires_ms > holder.since_ms, "a lease expires after it was taken");
        }
        other => panic!("a held lease must be refused, got {other:?}"),
    }
    a.release_lease(epoch).expect("release");
    assert_eq!(b.holder().expect("holder"), None, "a released lease has no holder");
    let next = match b.acquire_lease(&claim(200, true), &never_gone).expect("acquire") {
        LeaseOutcome::Acquired { epoch } => epoch,
        other => panic!("a released lease must be acquired, got {other:?}"),
    };
    assert!(next > epoch, "the epoch grows with every take: {next:?} after {epoch:?}");
    assert!(b.holder().expect("holder").is_some_and(|h| h.watch && h.pid == 200));
}

pub fn a_stale_epoch_can_neither_renew_nor_write(h: &dyn Harness) {
    let mut a = h.create();
    let mut b = h.reopen();
    let old = acquire(a.as_mut(), 1);
    let run = a.begin_run(old, &start(Vec::new())).expect("begin");
    // The holder is declared gone: another engine takes over.
    let new = match b.acquire_lease(&claim(2, false), &|_| true).expect("take over") {
        LeaseOutcome::Acquired { epoch } => epoch,
        other => panic!("a gone holder's lease must be taken over, got {other:?}"),
    };
    assert!(new > old);
    assert_eq!(a.renew_lease(old, Duration::from_secs(60)), Err(JournalError::LeaseLost(old)));
    assert!(matches!(a.begin_run(old, &start(Vec::new())), Err(JournalError::LeaseLost(_))));
    assert!(matches!(
        a.record_intents(old, run, &[intent("file.a")], &[], &[]),
        Err(JournalError::LeaseLost(_))
    ));
    assert!(matches!(
        a.finish_run(old, run, RunStatus::Done, &RunSummary::default(), &[]),
        Err(JournalError::LeaseLost(_))
    ));
    assert!(matches!(a.record_outcomes(old, run, &WaveOutcome::default()), Err(JournalError::LeaseLost(_))));
    assert!(matches!(a.settle_interrupted(old, &[run], &[], &[]), Err(JournalError::LeaseLost(_))));
    // Releasing with a stale epoch does not free the new holder's lease.
    a.release_lease(old).expect("release is a no-op for a stale epoch");
    assert!(b.holder().expect("holder").is_some_and(|h| h.pid == 2));
    b.renew_lease(new, Duration::from_secs(60)).expect("the current holder renews");
}

pub fn a_gone_holder_is_taken_over_with_a_new_epoch(h: &dyn Harness) {
    let mut a = h.create();
    let first = acquire(a.as_mut(), 7);
    let mut b = h.reopen();
    let seen = std::cell::RefCell::new(None);
    let outcome = b
        .acquire_lease(&claim(8, false), &|holder| {
            *seen.borrow_mut() = Some(holder.pid);
            true
        })
        .expect("acquire");
    assert_eq!(*seen.borrow(), Some(7), "`gone` is asked about the current holder");
    assert!(matches!(outcome, LeaseOutcome::Acquired { epoch } if epoch > first));
}

pub fn a_run_round_trips_every_typed_field(h: &dyn Harness) {
    let mut j = h.create();
    let epoch = acquire(j.as_mut(), 1);
    let drift = vec![
        Drift {
            resource: "file.a".into(),
            field: "mode".into(),
            observed: Some("0o600".into()),
            intended: "0o644".into(),
        },
        Drift {
            resource: "file.b".into(),
            field: "ensure".into(),
            observed: None,
            intended: "present".into(),
        },
    ];
    let mut s = start(drift.clone());
    s.errors = vec![ResourceError { resource: "exec.x".into(), field: None, message: "cannot run".into() }];
    let run = j.begin_run(epoch, &s).expect("begin");
    let row = j.run(run).expect("run").expect("the run exists");
    assert_eq!(row.status, RunStatus::Running);
    assert_eq!(row.mode, RunMode::Converge);
    assert_eq!((row.pid, row.host.as_str()), (42, "conformance-host"));
    let late =
        ResourceError { resource: "file.c".into(), field: Some("content".into()), message: "secret".into() };
    let ids = j
        .record_intents(epoch, run, &[intent("file.a"), intent("file.b")], &[], std::slice::from_ref(&late))
        .expect("intents");
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1], "step ids follow the order of the intents");
    let steps = j.steps(run).expect("steps");
    assert!(steps.iter().all(|s| s.status == StepStatus::Started), "intents are recorded started");
    assert_eq!(steps[0].changes, intent("file.a").changes);
    let output = Output { stdout: "ok\n".into(), stderr: "warn: x\n".into() };
    j.record_outcomes(
        epoch,
        run,
        &WaveOutcome {
            steps: vec![
                StepOutcome {
                    step: ids[0],
                    status: StepStatus::Done,
                    error: None,
                    output: Some(output.clone()),
                },
                StepOutcome {
                    step: ids[1],
                    status: StepStatus::Failed,
                    error: Some("denied".into()),
                    output: None,
                },
            ],
            corrected: vec!["file.a".into()],
            ..WaveOutcome::default()
        },
    )
    .expect("outcomes");
    let finding = Finding {
        control: "CIS-1".into(),
        severity: Severity::High,
        subject: Some("file[/etc/x]".into()),
        outcome: FindingOutcome::Fail,
        message: Some("/etc/x is world-writable".into()),
        evidence: vec!["`f.mode` is 0o666".into()],
        intent_compliant: Some(true),
        location: Some(SourceLoc { file: "main.iade".into(), line: 3, column: 5, start: 40, end: 60 }),
    };
    let summary = RunSummary {
        resources: 3,
        drifted: 2,
        changed: 1,
        failed: 1,
        unobservable: 2,
        ..RunSummary::default()
    };
    j.finish_run(epoch, run, RunStatus::Failed, &summary, std::slice::from_ref(&finding)).expect("finish");

    let row = j.run(run).expect("run").expect("the run exists");
    assert_eq!(row.status, RunStatus::Failed);
    assert_eq!(row.summary, summary);
    assert!(row.finished_ms.is_some());
    let steps = j.steps(run).expect("steps");
    assert_eq!(steps[0].status, StepStatus::Done);
    assert_eq!(steps[0].output.as_ref(), Some(&output));
    assert_eq!(steps[1].status, StepStatus::Failed);
    assert_eq!(steps[1].error.as_deref(), Some("denied"));
    assert_eq!(steps[1].action, StepAction::Update);
    let rows = j.drift(run).expect("drift");
    assert_eq!(rows.len(), 2);
    assert!(rows[0].corrected_ms.is_some(), "corrected drift has its time");
    assert_eq!(rows[1].observed, None, "an absent observation stays absent, not a string");
    assert!(rows[1].corrected_ms.is_none());
    let errors = j.errors(run).expect("errors");
    assert_eq!(errors, vec![s.errors[0].clone(), late]);
    assert_eq!(j.findings(run).expect("findings"), vec![finding]);
}

pub fn an_interrupted_run_is_listed_and_settled(h: &dyn Harness) {
    let mut j = h.create();
    let epoch = acquire(j.as_mut(), 1);
    let run = j.begin_run(epoch, &start(Vec::new())).expect("begin");
    let ids = j.record_intents(epoch, run, &[intent("file.a"), intent("file.b")], &[], &[]).expect("intents");
    j.record_outcomes(
        epoch,
        run,
        &WaveOutcome {
            steps: vec![StepOutcome { step: ids[0], status: StepStatus::Done, error: None, output: None }],
            ..WaveOutcome::default()
        },
    )
    .expect("outcomes");
    // The engine dies here. The next one takes over and finds what was left.
    let mut next = h.reopen();
    let epoch2 = match next.acquire_lease(&claim(2, false), &|_| true).expect("take over") {
        LeaseOutcome::Acquired { epoch } => epoch,
        other => panic!("{other:?}"),
    };
    let left = next.interrupted().expect("interrupted");
    assert_eq!(left.runs, vec![run]);
    assert_eq!(left.steps.iter().map(|s| s.id).collect::<Vec<_>>(), vec![ids[1]]);
    let notified = PendingRefresh { resource: "exec.reload".into(), notified_by: "file.b".into(), run };
    next.settle_interrupted(
        epoch2,
        &[run],
        &[(ids[1], StepStatus::Abandoned)],
        std::slice::from_ref(&notified),
    )
    .expect("settle");
    assert!(next.interrupted().expect("interrupted").is_empty());
    assert_eq!(next.pending_refreshes().expect("refreshes"), vec![notified], "recorded with the settlement");
    assert_eq!(next.run(run).expect("run").map(|r| r.status), Some(RunStatus::Interrupted));
    assert_eq!(next.steps(run).expect("steps")[1].status, StepStatus::Abandoned);
}

pub fn obligations_survive_reopening_and_clear_only_on_success(h: &dyn Harness) {
    let mut j = h.create();
    let epoch = acquire(j.as_mut(), 1);
    let run = j.begin_run(epoch, &start(Vec::new())).expect("begin");
    let refresh = PendingRefresh { resource: "exec.reload".into(), notified_by: "file.conf".into(), run };
    let applied = AppliedIdentity {
        resource: "file.conf".into(),
        kind: "file".into(),
        provider: "local".into(),
        instance: None,
        identity: crate::Identity::from([("path".to_string(), serde_json::json!("/etc/app.conf"))]),
        protected: true,
    };
    j.record_outcomes(
        epoch,
        run,
        &WaveOutcome {
            notified: vec![refresh.clone(), refresh.clone()],
            applied: vec![applied.clone()],
            ..WaveOutcome::default()
        },
    )
    .expect("outcomes");
    // The run fails before the refresh runs.
    j.finish_run(epoch, run, RunStatus::Failed, &RunSummary::default(), &[]).expect("finish");
    drop(j);
    let mut again = h.reopen();
    assert_eq!(
        again.pending_refreshes().expect("refreshes"),
        vec![refresh.clone()],
        "notified twice, pending once"
    );
    assert_eq!(again.applied().expect("applied"), vec![applied.clone()]);
    let epoch = match again.acquire_lease(&claim(2, false), &|_| true).expect("lease") {
        LeaseOutcome::Acquired { epoch } => epoch,
        other => panic!("{other:?}"),
    };
    let run2 = again.begin_run(epoch, &start(Vec::new())).expect("begin");
    // A wave that records nothing about the refresh leaves it pending.
    again.record_outcomes(epoch, run2, &WaveOutcome::default()).expect("outcomes");
    assert_eq!(again.pending_refreshes().expect("refreshes").len(), 1);
    again
        .record_outcomes(
            epoch,
            run2,
            &WaveOutcome {
                refreshed: vec!["exec.reload".into()],
                deleted: vec!["file.conf".into()],
                ..WaveOutcome::default()
            },
        )
        .expect("outcomes");
    assert!(again.pending_refreshes().expect("refreshes").is_empty(), "a recorded success clears it");
    assert!(again.applied().expect("applied").is_empty(), "a deleted object is no longer applied");
}

pub fn pass_requests_are_answered_served_or_refused(h: &dyn Harness) {
    let mut j = h.create();
    let r1 = j.request_pass(&PassRequest { digest: "same".into() }).expect("request");
    let r2 = j.request_pass(&PassRequest { digest: "other".into() }).expect("request");
    let pending = j.pending_requests().expect("pending");
    assert_eq!(pending.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![r1, r2]);
    assert_eq!(pending[1].1.digest, "other");
    assert_eq!(j.request_answer(r1).expect("answer"), None);
    let epoch = acquire(j.as_mut(), 1);
    let run = j.begin_run(epoch, &start(Vec::new())).expect("begin");
    j.answer_requests(&[
        (r1, RequestAnswer::Served(run)),
        (r2, RequestAnswer::Refused("another intent".into())),
    ])
    .expect("answer");
    let other = h.reopen();
    assert_eq!(other.request_answer(r1).expect("answer"), Some(RequestAnswer::Served(run)));
    assert_eq!(
        other.request_answer(r2).expect("answer"),
        Some(RequestAnswer::Refused("another intent".into()))
    );
    assert!(other.pending_requests().expect("pending").is_empty());
}

pub fn history_lists_runs_newest_first_and_filters_by_resource(h: &dyn Harness) {
    let mut j = h.create();
    let epoch = acquire(j.as_mut(), 1);
    let mut runs = Vec::new();
    for i in 0..5 {
        let drift = if i == 2 {
            vec![Drift {
                resource: "file.x".into(),
                field: "mode".into(),
                observed: None,
                intended: "0o644".into(),
            }]
        } else {
            Vec::new()
        };
        let run = j.begin_run(epoch, &start(drift)).expect("begin");
        j.finish_run(epoch, run, RunStatus::Done, &RunSummary::default(), &[]).expect("finish");
        runs.push(run);
    }
    let all = j.runs(&RunFilter { limit: 3, ..RunFilter::default() }).expect("runs");
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![runs[4], runs[3], runs[2]]);
    let older = j.runs(&RunFilter { limit: 10, before: Some(runs[2]), resource: None }).expect("runs");
    assert_eq!(older.iter().map(|r| r.id).collect::<Vec<_>>(), vec![runs[1], runs[0]]);
    let x = j.runs(&RunFilter { resource: Some("file.x".into()), ..RunFilter::default() }).expect("runs");
    assert_eq!(x.iter().map(|r| r.id).collect::<Vec<_>>(), vec![runs[2]]);
    assert_eq!(
        j.run(crate::RunId(runs[4].0 + 100)).expect("run"),
        None,
        "an unknown run is none, not an error"
    );
}

pub fn pruning_removes_old_detail_and_never_an_obligation(h: &dyn Harness) {
    let mut j = h.create();
    let epoch = acquire(j.as_mut(), 1);
    let mut runs = Vec::new();
    for _ in 0..4 {
        let run = j.begin_run(epoch, &start(Vec::new())).expect("begin");
        let ids = j.record_intents(epoch, run, &[intent("file.a")], &[], &[]).expect("intents");
        j.record_outcomes(
            epoch,
            run,
            &WaveOutcome {
                steps: vec![StepOutcome {
                    step: ids[0],
                    status: StepStatus::Done,
                    error: None,
                    output: None,
                }],
                notified: vec![PendingRefresh {
                    resource: "exec.r".into(),
                    notified_by: "file.a".into(),
                    run,
                }],
                ..WaveOutcome::default()
            },
        )
        .expect("outcomes");
        j.finish_run(epoch, run, RunStatus::Done, &RunSummary::default(), &[]).expect("finish");
        runs.push(run);
    }
    let report = j
        .prune(&Retention {
            detail_runs: 2,
            detail_age: Duration::from_secs(3600),
            summary_age: Duration::from_secs(7200),
        })
        .expect("prune");
    assert_eq!(report.detail_runs, 2);
    assert_eq!(report.runs, 0, "summaries outlive their detail");
    assert!(j.steps(runs[0]).expect("steps").is_empty());
    assert_eq!(j.steps(runs[3]).expect("steps").len(), 1);
    assert!(j.run(runs[0]).expect("run").is_some());
    assert_eq!(j.pending_refreshes().expect("refreshes").len(), 1, "obligations are never pruned");
    let again = j
        .prune(&Retention {
            detail_runs: 2,
            detail_age: Duration::from_secs(3600),
            summary_age: Duration::from_secs(7200),
        })
        .expect("prune");
    assert_eq!(again.detail_runs, 0, "pruning twice prunes nothing more");
}

pub fn a_write_by_another_handle_is_notified(h: &dyn Harness) {
    let watcher = h.create();
    let sub = watcher.subscribe().expect("subscribe");
    let mut writer = h.reopen();
    let epoch = acquire(writer.as_mut(), 1);
    let run = writer.begin_run(epoch, &start(Vec::new())).expect("begin");
    writer.finish_run(epoch, run, RunStatus::Done, &RunSummary::default(), &[]).expect("finish");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut notified = false;
    while Instant::now() < deadline && !notified {
        notified = sub.changes.recv_timeout(Duration::from_millis(100)).is_ok();
    }
    assert!(notified, "a commit by another handle must be notified within 10 s");
}

pub fn integrity_check_of_a_sound_journal_finds_nothing(h: &dyn Harness) {
    let mut j = h.create();
    let epoch = acquire(j.as_mut(), 1);
    let run = j.begin_run(epoch, &start(Vec::new())).expect("begin");
    j.finish_run(epoch, run, RunStatus::Done, &RunSummary::default(), &[]).expect("finish");
    assert_eq!(j.check_integrity().expect("check"), Vec::<String>::new());
}
