//! The driver without the CLI: loading with unsaved buffers, check, plan, converge, sessions,
//! watch, history, and the files it refuses to read.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use iade_driver::{
    Converged, Error, Event, HistoryQuery, JournalLocation, LoadOptions, LoadedStack, RunOptions, Runtime,
    Session, SessionError, SessionOptions, Sink, Wait, WatchEnd, WatchOptions,
};
use iade_journal::RunStatus;

fn stack(name: &str, source: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iade-driver-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    std::fs::write(d.join("main.iade"), source).expect("write source");
    std::fs::canonicalize(&d).expect("canonical")
}

const ONE_FILE: &str =
    "use std.fs.{file}\n\nfile conf {\n  path    = \"./conf.txt\"\n  content = \"v1\\n\"\n}\n";

/// Records every event as a line.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Sink for Lines {
    fn event(&self, event: Event<'_>) {
        let line = match event {
            Event::Pass { kind, report, .. } => format!("pass {kind:?} changed {}", report.summary.changed),
            Event::WatchStarted { resources, .. } => format!("started {resources}"),
            Event::Stopped => "stopped".into(),
            Event::Engine(_) => return,
            other => format!("{other:?}"),
        };
        self.0.lock().expect("lock").push(line);
    }
}

impl Lines {
    fn has(&self, prefix: &str) -> bool {
        self.0.lock().expect("lock").iter().any(|l| l.starts_with(prefix))
    }
}

#[test]
fn an_unsaved_buffer_stands_in_for_its_file_and_for_a_file_not_yet_saved() {
    let dir = stack("overlay", "use std.fs.{file}\n\nfile conf {\n  path = 42\n}\n");
    let mut s = LoadedStack::load(&dir, &LoadOptions::default()).expect("loads");
    assert!(s.diagnostics().iter().any(|d| d.is_error()), "the file on disk has an error");
    s.set_overlay(&dir.join("main.iade"), Some(ONE_FILE.into())).expect("overlay");
    assert_eq!(s.diagnostics(), Vec::new(), "the buffer replaces the file");
    s.set_overlay(
        &dir.join("extra.iade"),
        Some("use std.fs.{file}\n\nfile x {\n  path = \"./x\"\n}\n".into()),
    )
    .expect("new buffer");
    assert_eq!(
        s.compile().expect("compiles").graph.nodes.len(),
        2,
        "an unsaved new file belongs to the stack"
    );
    s.set_overlay(&dir.join("main.iade"), None).expect("closed");
    assert!(s.diagnostics().iter().any(|d| d.is_error()), "closing the buffer brings the disk back");
}

#[test]
fn check_plan_and_converge_run_without_the_cli() {
    let dir = stack("run", ONE_FILE);
    let s = LoadedStack::load(&dir, &LoadOptions::default()).expect("loads");
    let summary = s.summary(&s.diagnostics());
    assert_eq!((summary.files, summary.resources, summary.errors), (1, 1, 0));
    let compiled = s.compile().expect("compiles");
    let rt = Runtime::from_env();
    let options = RunOptions::default();
    let plan = iade_driver::plan(&compiled, &rt, &options, &iade_driver::Quiet).expect("plan");
    assert!(plan.summary().has_changes());
    let Converged::Ran(report) =
        iade_driver::converge(&compiled, &rt, &options, &iade_driver::Quiet).expect("runs")
    else {
        panic!("no other engine holds the lease")
    };
    assert_eq!((report.status, report.summary.changed), (RunStatus::Done, 1));
    assert_eq!(std::fs::read_to_string(dir.join("conf.txt")).expect("written"), "v1\n");
    let Converged::Ran(again) =
        iade_driver::converge(&compiled, &rt, &options, &iade_driver::Quiet).expect("runs")
    else {
        panic!("no other engine holds the lease")
    };
    assert_eq!(again.summary.changed, 0);
    let mut seen = Vec::new();
    let store =
        JournalLocation::default_for(&dir).open(&iade_driver::stack_id(&dir, &rt.host)).expect("journal");
    iade_driver::history(store.as_ref(), &HistoryQuery::default(), |r| seen.push(r.run.id)).expect("history");
    assert_eq!(seen.len(), 2, "newest first: {seen:?}");
    assert!(seen[0] > seen[1]);
    let missing = HistoryQuery { run: Some(iade_journal::RunId(999)), ..HistoryQuery::default() };
    assert!(matches!(iade_driver::history(store.as_ref(), &missing, |_| {}), Err(Error::NoSuchRun(_))));
}

#[test]
fn a_second_session_is_refused_and_told_who_holds_the_lease() {
    let dir = stack("session", ONE_FILE);
    let location = JournalLocation::default_for(&dir);
    let id = iade_driver::stack_id(&dir, "host-a");
    let options = SessionOptions {
        watch: true,
        wait: Wait::No,
        pid: 4242,
        host: "host-a".into(),
        lease_ttl: iade_driver::LEASE_TTL,
    };
    let first = Session::open(&id, &dir, &location, &options, &|_| {}).expect("first session");
    // The lock is per process here, so the second attempt comes from a child process's view:
    // the journal already names the holder, and the lock is held.
    let second = std::thread::spawn(move || {
        let options = SessionOptions {
            watch: false,
            wait: Wait::No,
            pid: 1,
            host: "host-a".into(),
            lease_ttl: iade_driver::LEASE_TTL,
        };
        match Session::open(&id, &dir, &location, &options, &|_| {}) {
            Err(SessionError::Held(Some(h))) => (h.pid, h.watch),
            other => panic!("expected the lease to be held, got {other:?}"),
        }
    })
    .join()
    .expect("thread");
    assert_eq!(second, (4242, true));
    first.close().expect("released");
}

#[test]
fn watch_corrects_drift_reports_passes_and_stops_when_cancelled() {
    let dir = stack("watch", ONE_FILE);
    let mut s = LoadedStack::load(&dir, &LoadOptions::default()).expect("loads");
    let rt = Runtime::from_env();
    let cancelled = rt.cancelled.clone();
    let lines = Lines::default();
    let options = WatchOptions { interval: Duration::from_secs(3600), run: RunOptions::default() };
    let end = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| iade_driver::watch(&mut s, &rt, &options, &lines));
        let wait_for = |what: &str, f: &dyn Fn() -> bool| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !f() {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        wait_for("the first pass", &|| lines.has("pass Full changed 1"));
        std::fs::write(dir.join("conf.txt"), "edited\n").expect("edit");
        wait_for("the correction", &|| {
            std::fs::read_to_string(dir.join("conf.txt")).is_ok_and(|t| t == "v1\n")
        });
        wait_for("the event pass", &|| lines.has("pass Event changed 1"));
        cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().expect("watch thread")
    });
    assert_eq!(end.expect("watch ends cleanly"), WatchEnd::Stopped);
    assert!(lines.has("started 1") && lines.has("stopped"));
    let store =
        JournalLocation::default_for(&dir).open(&iade_driver::stack_id(&dir, &rt.host)).expect("journal");
    assert!(store.holder().expect("holder").is_none(), "the lease is released");
}

#[test]
fn the_digest_a_watcher_compares_follows_intent_targets_and_given_secrets() {
    let dir =
        stack("digest", "use std.fs.{file}\n\nfile t {\n  path    = \"./t\"\n  content = secret(\"K\")\n}\n");
    let compiled =
        LoadedStack::load(&dir, &LoadOptions::default()).expect("loads").compile().expect("compiles");
    struct Given(bool);
    impl iade_provider::Secrets for Given {
        fn resolve(&self, _: &str) -> Result<String, iade_provider::ProviderError> {
            if self.0 { Ok("value".into()) } else { Err(iade_provider::ProviderError::permanent("unset")) }
        }
    }
    let base = iade_driver::intent_digest(&compiled, &Given(true), &[]);
    assert_eq!(base, iade_driver::intent_digest(&compiled, &Given(true), &[]), "deterministic");
    assert_ne!(base, iade_driver::intent_digest(&compiled, &Given(false), &[]), "a secret given or not");
    assert_ne!(base, iade_driver::intent_digest(&compiled, &Given(true), &["file.t".into()]), "targets");
}

#[test]
fn a_fifo_or_a_kernel_file_is_never_read_as_a_source() {
    let dir = stack(
        "fifo",
        "use std.fs.{file}\n\nfile f {\n  path    = \"./f\"\n  content = include(\"pipe\")\n}\n",
    );
    let fifo = dir.join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let started = Instant::now();
    let s = LoadedStack::load(&dir, &LoadOptions::default()).expect("loads");
    let text: Vec<String> = s.diagnostics().iter().map(|d| format!("{} {:?}", d.message, d.labels)).collect();
    assert!(started.elapsed() < Duration::from_secs(5), "reading a FIFO must not block");
    assert!(text.iter().any(|t| t.contains("not a regular file")), "{text:?}");
    let err = iade_driver::files::read_text(Path::new("/proc/self/environ")).expect_err("refused");
    assert!(err.contains("/proc"), "{err}");
    let dev = iade_driver::files::read_text(Path::new("/dev/zero")).expect_err("refused");
    assert!(dev.contains("/dev"), "{dev}");
}
