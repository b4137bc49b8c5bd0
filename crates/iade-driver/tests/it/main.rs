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

/// A test's stack directory (a `tempfile` one), removed when the test ends, passed or failed.
/// Dereferences to its canonical path.
#[derive(Debug)]
struct TempDir {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TempDir {
    type Target = PathBuf;

    fn deref(&self) -> &PathBuf {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

fn stack(name: &str, source: &str) -> TempDir {
    let dir = tempfile::Builder::new().prefix(&format!("iade-driver-{name}-")).tempdir().expect("temp dir");
    std::fs::write(dir.path().join("main.iade"), source).expect("write source");
    TempDir { path: std::fs::canonicalize(dir.path()).expect("canonical"), _dir: dir }
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

/// A stack that reads every kind of input a compile has: a module, an included file, a
/// template, a `source` file and a param.
fn cached_stack(name: &str) -> TempDir {
    let d = stack(
        name,
        "use std.fs.{file}\nuse \"./lib.iade\" as lib\n\nparam greeting: string = \"hello\"\n\n\
         file a {\n  path    = \"./a.txt\"\n  content = \"${greeting} ${lib.suffix}\\n\"\n}\n\n\
         file b {\n  path    = \"./b.txt\"\n  content = include(\"b.part\")\n}\n\n\
         file c {\n  path    = \"./c.txt\"\n  content = template(\"c.tmpl\", { who = \"x\" })\n}\n\n\
         file d {\n  path   = \"./d.txt\"\n  source = \"d.src\"\n}\n",
    );
    std::fs::write(d.join("lib.iade"), "let suffix = \"!\"\n").expect("write");
    std::fs::write(d.join("b.part"), "part one\n").expect("write");
    std::fs::write(d.join("c.tmpl"), "to ${who}\n").expect("write");
    std::fs::write(d.join("d.src"), "source\n").expect("write");
    std::fs::create_dir_all(d.join(".iade")).expect("the stack ran before");
    d
}

/// Compiles and stores, as `plan` and `converge` do on a miss; the compiled stack.
fn compile_and_store(dir: &Path, options: &LoadOptions) -> iade_driver::Compiled {
    let stack = LoadedStack::load(dir, options).expect("loads");
    let compiled = stack.compile().expect("compiles");
    iade_driver::cache::store(&stack, options, &compiled);
    compiled
}

fn content_of(c: &iade_driver::Compiled, id: &str) -> String {
    let node = c.graph.node(id).expect("node");
    format!("{:?}", node.attrs.get("content").map(|a| &a.value))
}

#[test]
fn a_cached_compile_is_used_only_while_every_input_it_read_is_unchanged() {
    let dir = cached_stack("cache-inputs");
    let options = LoadOptions::default();
    assert!(iade_driver::cache::load(&dir, &options).is_none(), "nothing is cached before a compile");
    let fresh = compile_and_store(&dir, &options);
    let cached = iade_driver::cache::load(&dir, &options).expect("the entry is used");
    assert_eq!(cached.graph, fresh.graph);
    assert_eq!(cached.settings, fresh.settings);
    assert_eq!(cached.stack_dir, fresh.stack_dir);
    assert_eq!(format!("{:?}", cached.program), format!("{:?}", fresh.program));

    // Each input, changed, makes the entry unusable; compiling again makes a usable one.
    type Change<'a> = Box<dyn Fn() + 'a>;
    let changes: Vec<(&str, Change<'_>)> = vec![
        (
            "the stack's file",
            Box::new(|| {
                std::fs::write(
                    dir.join("main.iade"),
                    std::fs::read_to_string(dir.join("main.iade")).expect("read") + "\n",
                )
                .expect("write")
            }),
        ),
        (
            "a module",
            Box::new(|| std::fs::write(dir.join("lib.iade"), "let suffix = \"?\"\n").expect("write")),
        ),
        ("an included file", Box::new(|| std::fs::write(dir.join("b.part"), "part two\n").expect("write"))),
        ("a template", Box::new(|| std::fs::write(dir.join("c.tmpl"), "for ${who}\n").expect("write"))),
        (
            "a new file of the stack",
            Box::new(|| std::fs::write(dir.join("more.iade"), "let more = 1\n").expect("write")),
        ),
        ("a source file gone", Box::new(|| std::fs::remove_file(dir.join("d.src")).expect("remove"))),
    ];
    for (what, change) in changes {
        change();
        assert!(iade_driver::cache::load(&dir, &options).is_none(), "{what} changed, yet the entry was used");
        if what == "a source file gone" {
            std::fs::write(dir.join("d.src"), "source again\n").expect("write");
        }
        compile_and_store(&dir, &options);
        assert!(iade_driver::cache::load(&dir, &options).is_some(), "after {what}, a new entry is used");
    }
    let recompiled = iade_driver::cache::load(&dir, &options).expect("cached");
    assert_eq!(content_of(&recompiled, "file.b"), "Some(Str(\"part two\\n\"))");

    // A param's value is an input too, from a flag or from the environment.
    let flag = LoadOptions { params: vec![("greeting".into(), "hi".into())], ..LoadOptions::default() };
    assert!(iade_driver::cache::load(&dir, &flag).is_none(), "a param given changes the compile");
    compile_and_store(&dir, &flag);
    let with_flag = iade_driver::cache::load(&dir, &flag).expect("cached with the param");
    assert_eq!(content_of(&with_flag, "file.a"), "Some(Str(\"hi ?\\n\"))");
    let env = LoadOptions {
        env_params: [("greeting".to_string(), "hey".to_string())].into(),
        ..LoadOptions::default()
    };
    assert!(
        iade_driver::cache::load(&dir, &env).is_none(),
        "a param from the environment changes the compile"
    );
    // A param the stack does not declare is never answered from the cache (loading reports it).
    let unknown = LoadOptions { params: vec![("nope".into(), "1".into())], ..LoadOptions::default() };
    assert!(iade_driver::cache::load(&dir, &unknown).is_none());
    // Neither are the views that do not use it.
    compile_and_store(&dir, &options);
    let tests = LoadOptions { tests: true, ..LoadOptions::default() };
    assert!(iade_driver::cache::load(&dir, &tests).is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stack_built_from_secrets_or_with_warnings_is_never_cached() {
    let entry = |d: &Path| d.join(".iade").join("compile-cache");
    let options = LoadOptions::default();
    let ran = |d: TempDir| {
        std::fs::create_dir_all(d.join(".iade")).expect("the stack ran before");
        d
    };
    let param = ran(stack(
        "cache-secret-param",
        "use std.fs.{file}\n\nparam token: secret\n\nfile a {\n  path    = \"./a.txt\"\n  content = \"x\\n\"\n}\n",
    ));
    let with_token =
        LoadOptions { params: vec![("token".into(), "s3cr3t-value".into())], ..LoadOptions::default() };
    compile_and_store(&param, &with_token);
    assert!(!entry(&param).exists(), "a stack with a secret param was cached");
    let named = ran(stack(
        "cache-secret-named",
        "use std.exec.{exec}\n\nexec e {\n  name  = \"e\"\n  check = \"true\"\n  apply = \"echo ${secret(\"api_key\")}\"\n}\n",
    ));
    compile_and_store(&named, &options);
    assert!(!entry(&named).exists(), "a stack holding a secret was cached");
    let warned = ran(stack("cache-warned", &format!("{ONE_FILE}\n## documents nothing\n")));
    let compiled = compile_and_store(&warned, &options);
    assert!(!compiled.warnings.is_empty(), "the stack compiles with a warning");
    assert!(!entry(&warned).exists(), "a compile with a warning was cached");
    let never_ran = stack("cache-never-ran", ONE_FILE);
    compile_and_store(&never_ran, &options);
    assert!(!never_ran.join(".iade").exists(), "a stack that never ran got a .iade directory");
    let plain = ran(stack("cache-plain", ONE_FILE));
    compile_and_store(&plain, &options);
    let bytes = std::fs::read(entry(&plain)).expect("a plain stack is cached");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(entry(&plain)).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the entry is private");
    assert!(!String::from_utf8_lossy(&bytes).contains("s3cr3t"), "no secret in an entry");
    for d in [param, named, warned, plain, never_ran] {
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn a_damaged_linked_or_writable_cache_entry_is_never_used() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = stack("cache-damaged", ONE_FILE);
    std::fs::create_dir_all(dir.join(".iade")).expect("the stack ran before");
    let options = LoadOptions::default();
    compile_and_store(&dir, &options);
    let entry = dir.join(".iade").join("compile-cache");
    assert!(iade_driver::cache::load(&dir, &options).is_some());
    let mut bytes = std::fs::read(&entry).expect("read");
    let last = bytes.len() - 10;
    bytes[last] ^= 0x20;
    std::fs::write(&entry, &bytes).expect("write");
    assert!(iade_driver::cache::load(&dir, &options).is_none(), "a damaged entry was used");
    compile_and_store(&dir, &options);
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    assert!(iade_driver::cache::load(&dir, &options).is_none(), "an entry others may write was used");
    // A link to a good entry is not an entry.
    compile_and_store(&dir, &options);
    let elsewhere = dir.join("entry-elsewhere");
    std::fs::rename(&entry, &elsewhere).expect("move");
    std::os::unix::fs::symlink(&elsewhere, &entry).expect("link");
    assert!(iade_driver::cache::load(&dir, &options).is_none(), "an entry was read through a link");
    std::fs::remove_file(&entry).expect("unlink");
    std::fs::write(&entry, b"iade compile cache 1\nnot an entry").expect("write");
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(iade_driver::cache::load(&dir, &options).is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cached_graph_reads_back_equal_with_instances_notifications_providers_and_several_files() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/nginx");
    let dir = stack("cache-rows", &std::fs::read_to_string(example.join("main.iade")).expect("example"));
    std::fs::copy(example.join("vhost.conf.tmpl"), dir.join("vhost.conf.tmpl")).expect("template");
    std::fs::write(
        dir.join("extra.iade"),
        "use std.fs.{file}\n\nprovider postgres main {\n  url = \"postgres://iade@db:5432/postgres\"\n}\n\n\
         file watched {\n  path = \"./watched.txt\"\n  content = \"x\\n\"\n  manage = observe\n  protect = true\n}\n",
    )
    .expect("write");
    std::fs::create_dir_all(dir.join(".iade")).expect("the stack ran before");
    let options = LoadOptions::default();
    let fresh = compile_and_store(&dir, &options);
    let g = &fresh.graph;
    assert!(!g.instances.is_empty() && !g.providers.is_empty(), "the stack has instances and a provider");
    assert!(g.nodes.iter().any(|n| n.protect && n.manage == iade_intent::Manage::Observe));
    assert!(g.nodes.iter().any(|n| !n.notify.is_empty() && n.instance.is_some()));
    let files: std::collections::BTreeSet<&str> = g
        .nodes
        .iter()
        .flat_map(|n| n.attrs.values().filter_map(|a| a.source.as_ref()).chain([&n.declared]))
        .map(|l| &*l.file)
        .collect();
    assert!(files.len() >= 2, "locations in several files: {files:?}");
    let cached = iade_driver::cache::load(&dir, &options).expect("the entry is used");
    assert_eq!(cached.graph, fresh.graph);
}
