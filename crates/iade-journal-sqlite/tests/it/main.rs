//! The SQLite journal: the whole conformance suite, migration from the first release's
//! schema, and what only a file-backed journal can be asked.

use std::cell::RefCell;
use std::path::PathBuf;

use iade_journal::conformance::{self, Harness};
use iade_journal::{
    FindingOutcome, RunFilter, RunId, RunMode, RunStatus, StackId, StepAction, StepStatus, Store,
};
use iade_journal_sqlite::SqliteJournal;

struct Files {
    dir: tempfile::TempDir,
    last: RefCell<Option<PathBuf>>,
    count: RefCell<usize>,
}

fn stack() -> StackId {
    StackId { name: "conformance".into(), host: "conformance-host".into() }
}

impl Harness for Files {
    fn create(&self) -> Box<dyn Store> {
        *self.count.borrow_mut() += 1;
        let path = self.dir.path().join(format!("j{}", self.count.borrow())).join("journal.db");
        *self.last.borrow_mut() = Some(path.clone());
        Box::new(SqliteJournal::open(&path, &stack()).expect("a new journal opens"))
    }

    fn reopen(&self) -> Box<dyn Store> {
        let path = self.last.borrow().clone().expect("create was called first");
        Box::new(SqliteJournal::open(&path, &stack()).expect("the journal opens again"))
    }
}

#[test]
fn the_sqlite_journal_passes_the_conformance_suite() {
    let h = Files {
        dir: tempfile::tempdir().expect("temp dir"),
        last: RefCell::new(None),
        count: RefCell::new(0),
    };
    conformance::run_all(&h);
}

/// A journal as the first release wrote it: one converge with a step, drift (one absent
/// object), a finding with a `path:line:column` location, and a served request.
fn first_release_journal(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).expect("sqlite opens");
    conn.execute_batch(iade_journal_sqlite::SCHEMA_V1).expect("the first schema");
    conn.execute_batch("PRAGMA user_version = 1;
        INSERT INTO lease (id, holder_pid, holder_host, since_ms, expires_ms, epoch, watch) VALUES (1, NULL, NULL, 1, 0, 3, 0);
        INSERT INTO runs (id, mode, status, started_ms, finished_ms, pid, epoch, summary) VALUES
          (1, 'converge', 'done', 1000, 1200, 77, 3,
           '{\"resources\":2,\"drifted\":1,\"done\":1,\"failed\":0,\"skipped\":0,\"observe_errors\":0,\"controls\":{\"passed\":0,\"failed\":1,\"unknown\":0},\"resumed\":{\"done_by_observation\":0,\"abandoned\":0}}');
        INSERT INTO steps (run, resource, action, digest, idempotency_key, status, started_ms, finished_ms, error, changes) VALUES
          (1, 'file.a', 'create', 'abc', 'file.a:create:abc', 'done', 1100, 1150, NULL,
           '[{\"field\":\"ensure\",\"observed\":\"absent\",\"intended\":\"present\",\"source\":null}]');
        INSERT INTO drift (run, resource, field, observed, intended, detected_ms, corrected_ms) VALUES
          (1, 'file.a', 'ensure', '(absent)', 'present', 1050, 1150);
        INSERT INTO findings (run, control, severity, subject, outcome, message, evidence, intent_compliant, location) VALUES
          (1, 'no_ww', 'high', 'file[/tmp/x]', 'fail', 'world-writable', '[\"`f.mode` is 0o666\"]', NULL, 'main.iade:12:7');
        INSERT INTO requests (requested_ms, served_run) VALUES (1000, 1);")
    .expect("the first release's rows");
}

#[test]
fn a_journal_written_by_the_first_release_opens_and_keeps_its_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.db");
    first_release_journal(&path);
    let j = SqliteJournal::open(&path, &stack()).expect("the old journal migrates");
    let runs = j.runs(&RunFilter::default()).expect("runs");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!((run.id, run.mode, run.status, run.pid), (RunId(1), RunMode::Converge, RunStatus::Done, 77));
    assert_eq!(run.summary.changed, 1, "`done` is read as `changed`");
    assert_eq!(run.summary.controls.failed, 1);
    let steps = j.steps(RunId(1)).expect("steps");
    assert_eq!((steps[0].action, steps[0].status), (StepAction::Create, StepStatus::Done));
    assert_eq!(steps[0].changes[0].intended, "present");
    let drift = j.drift(RunId(1)).expect("drift");
    assert_eq!(drift[0].observed, None, "the old `(absent)` marker becomes an absent observation");
    let findings = j.findings(RunId(1)).expect("findings");
    assert_eq!(findings[0].outcome, FindingOutcome::Fail);
    let loc = findings[0].location.as_ref().expect("the location is kept");
    assert_eq!((&*loc.file, loc.line, loc.column), ("main.iade", 12, 7));
    assert_eq!(j.check_integrity().expect("check"), Vec::<String>::new());
    drop(j);
    let again = SqliteJournal::open(&path, &stack()).expect("a migrated journal opens again");
    assert_eq!(again.runs(&RunFilter::default()).expect("runs").len(), 1, "migrating twice changes nothing");
}

#[test]
fn a_journal_from_a_newer_iade_is_refused_not_misread() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.db");
    rusqlite::Connection::open(&path)
        .and_then(|c| c.execute_batch("PRAGMA user_version = 99;"))
        .expect("sql runs");
    let err = SqliteJournal::open(&path, &stack()).expect_err("refused");
    assert!(err.to_string().contains("newer iade"), "{err}");
}
