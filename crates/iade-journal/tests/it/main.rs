//! The journal's typed rows: text forms that round-trip, summaries written by the first
//! release, and what the contract's small helpers say.

use iade_journal::{FindingOutcome, Interrupted, RunMode, RunStatus, RunSummary, StepAction, StepStatus};

#[test]
fn every_status_action_and_mode_round_trips_through_its_text() {
    for s in [RunStatus::Running, RunStatus::Done, RunStatus::Failed, RunStatus::Interrupted] {
        assert_eq!(RunStatus::parse(s.as_str()), Some(s));
    }
    for m in [RunMode::Converge, RunMode::Event] {
        assert_eq!(RunMode::parse(m.as_str()), Some(m));
    }
    for a in
        [StepAction::Create, StepAction::Update, StepAction::Delete, StepAction::Run, StepAction::Refresh]
    {
        assert_eq!(StepAction::parse(a.as_str()), Some(a));
        assert_eq!(serde_json::to_value(a).expect("json"), a.as_str());
    }
    for s in [
        StepStatus::Started,
        StepStatus::Done,
        StepStatus::DoneByObservation,
        StepStatus::Failed,
        StepStatus::Skipped,
        StepStatus::Abandoned,
    ] {
        assert_eq!(StepStatus::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_value(s).expect("json"), s.as_str());
    }
    for o in [FindingOutcome::Fail, FindingOutcome::Unknown, FindingOutcome::Waived] {
        assert_eq!(FindingOutcome::parse(o.as_str()), Some(o));
    }
    assert_eq!(StepStatus::parse("exploded"), None, "an unknown text is not guessed");
}

#[test]
fn a_summary_written_by_the_first_release_reads_with_todays_names() {
    let old = r#"{"resources":2,"drifted":1,"done":1,"failed":0,"skipped":0,"observe_errors":3,
        "controls":{"passed":1,"failed":1,"unknown":0},"resumed":{"done_by_observation":0,"abandoned":0}}"#;
    let s: RunSummary = serde_json::from_str(old).expect("parses");
    assert_eq!((s.changed, s.unobservable, s.controls.failed, s.controls.waived), (1, 3, 1, 0));
    assert!(s.has_errors(), "something could not be observed");
    let empty: RunSummary = serde_json::from_str("{}").expect("an empty summary parses");
    assert_eq!(empty, RunSummary::default());
}

#[test]
fn nothing_interrupted_is_empty() {
    assert!(Interrupted::default().is_empty());
}

#[test]
fn an_applied_identity_reads_back_from_the_json_object_the_journal_stores() {
    let text = r#"{"path":"/etc/app.conf","port":5432}"#;
    let identity = iade_journal::identity_from_json(text).expect("an object reads");
    assert_eq!(identity.get("path"), Some(&serde_json::json!("/etc/app.conf")));
    assert_eq!(identity.get("port"), Some(&serde_json::json!(5432)));
    assert_eq!(serde_json::to_string(&identity).expect("json"), text);
    // An identity that could not be converted was stored as `null`: it reads as none.
    assert!(iade_journal::identity_from_json("null").expect("null reads").is_empty());
    assert!(iade_journal::identity_from_json("[1]").is_err(), "a list is not an identity");
    assert!(iade_journal::identity_from_json("{} trailing").is_err(), "nothing may follow");
}
