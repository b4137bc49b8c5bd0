//! The engine end to end, through the binary, on real files in temporary directories: cold
//! converge, no-op, drift repair, detect-only, crashes at every protocol point and `kill -9`
//! at random instants, concurrent engines, watch mode and secrets.

use std::path::{Path, PathBuf};

use iade_journal::Store;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn iade_bin() -> &'static str {
    watchdog();
    env!("CARGO_BIN_EXE_iade")
}

/// How long this whole test binary may run: several times what it takes, so passing it means
/// a test hangs (in its own code, where no [`COMMAND_LIMIT`] applies).
const SUITE_LIMIT: Duration = Duration::from_secs(25 * 60);

/// Ends the test process once it has run [`SUITE_LIMIT`], saying so, so a hang fails the
/// suite instead of holding it until an outer limit kills it silently.
fn watchdog() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        std::thread::spawn(|| {
            std::thread::sleep(SUITE_LIMIT);
            eprintln!("the end-to-end tests ran for {SUITE_LIMIT:?}: a test hangs; stopping them");
            std::process::exit(101);
        });
    });
}

pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(iade_bin());
    cmd.args(args).current_dir(dir).env_remove("IADE_FAILPOINT");
    // A fleet journal, host id or lease lifetime of the shell running the tests is not theirs.
    for k in ["IADE_JOURNAL", "IADE_JOURNAL_CA", "IADE_HOST_ID", "IADE_LEASE_TTL"] {
        cmd.env_remove(k);
    }
    // Stack-name locks beside the test's stacks, not in the host's /run/iade.
    if let Some(parent) = dir.parent() {
        cmd.env("IADE_LOCK_DIR", parent.join(".iade-locks"));
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    output_within(cmd.spawn().expect("iade runs"), COMMAND_LIMIT, &format!("iade {}", args.join(" ")))
}

/// How long one `iade` command of a test may take before the test fails: far beyond any
/// command's time, so reaching it means the command hangs.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// What `child` printed once it exits; a child still running after `limit` is killed and the
/// test fails with what it had printed, instead of waiting for ever.
pub fn output_within(child: std::process::Child, limit: Duration, what: &str) -> Output {
    let pid = rustix::process::Pid::from_child(&child);
    let (sent, got) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sent.send(child.wait_with_output());
    });
    match got.recv_timeout(limit) {
        Ok(output) => output.expect("the command's output is read"),
        Err(_) => {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let printed = got.recv().ok().and_then(Result::ok).map(|o| text(&o)).unwrap_or_default();
            panic!("`{what}` did not finish within {limit:?}; it printed:\n{printed}");
        }
    }
}

pub fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A test's own directory (a `tempfile` one, named after the test), removed when the test
/// ends, passed or failed. Dereferences to its path.
pub struct TempDir {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TempDir {
    /// A new, empty directory for a test.
    pub fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new().prefix(&format!("iade-{name}-")).tempdir().expect("temp dir");
        TempDir { path: dir.path().to_path_buf(), _dir: dir }
    }
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

pub fn stack(name: &str, source: &str) -> TempDir {
    let d = TempDir::new(&format!("engine-{name}"));
    std::fs::write(d.join("main.iade"), source).expect("write source");
    d
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("exists").permissions().mode() & 0o7777
}

/// Every temporary file a write may leave behind.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().contains(".iade-tmp.") {
                out.push(p);
            }
        }
    }
    out
}

/// The journal is consistent: SQLite's integrity check passes, no step is left started, and
/// no run is left running.
pub fn assert_journal_consistent(dir: &Path) {
    let j = journal(dir);
    assert_eq!(j.check_integrity().expect("integrity check runs"), Vec::<String>::new());
    let left = j.interrupted().expect("interrupted");
    assert!(left.steps.is_empty(), "steps left started: {:?}", left.steps);
    assert!(left.runs.is_empty(), "runs left running: {:?}", left.runs);
}

/// The stack's journal, read as the engine wrote it.
pub fn journal(dir: &Path) -> iade_journal_sqlite::SqliteJournal {
    let stack = iade_journal::StackId { name: "test".into(), host: "test".into() };
    iade_journal_sqlite::SqliteJournal::open(&dir.join(".iade/journal.db"), &stack).expect("journal opens")
}

/// Recent runs, newest first.
pub fn runs(dir: &Path) -> Vec<iade_journal::RunRow> {
    journal(dir).runs(&iade_journal::RunFilter { limit: 1000, ..Default::default() }).expect("runs")
}

const FILES: &str = r#"use std.fs.{file, directory}
use std.exec.{exec}

param gen: int = 0

directory root {
  path = "./tree"
  mode = 0o755
}

directory sub {
  path = "${root.path}/sub"
  mode = 0o750
}

file a {
  path = "${root.path}/a.txt"
  content = "a ${gen}\n"
  mode = 0o644
}

file b {
  path = "${sub.path}/b.txt"
  content = "b ${gen}\n"
  mode = 0o600
}

exec marker {
  name = "marker"
  check = "test -f tree/marker-${gen}"
  apply = "echo ran >> tree/apply-count-${gen}; touch tree/marker-${gen}"
  after = [directory.root]
}

rule not_world_writable(f: file) =
  f.mode & 0o002 == 0 else "${f.path} is world-writable (mode ${f.mode})"

control tree_files {
  title = "No world-writable files in the tree"
  severity = high
  for f in observe(file, under = "./tree") {
    require not_world_writable(f)
  }
}
"#;

#[test]
fn converge_creates_then_changes_nothing_then_repairs_drift() {
    let dir = stack("basic", FILES);
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(!dir.join("tree").exists(), "plan changed something");

    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(dir.join("tree/a.txt")).expect("a"), "a 0\n");
    assert_eq!(mode(&dir.join("tree/sub/b.txt")), 0o600);
    assert_eq!(mode(&dir.join("tree/sub")), 0o750);
    assert_eq!(std::fs::read_to_string(dir.join("tree/apply-count-0")).expect("count"), "ran\n");

    // A second converge observes everything and changes nothing: one run, no steps.
    let o = run(&dir, &["converge", "--format", "json"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["run"]["steps"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(std::fs::read_to_string(dir.join("tree/apply-count-0")).expect("count"), "ran\n");

    // Drift: content edited, mode changed, file deleted.
    std::fs::write(dir.join("tree/a.txt"), "edited\n").expect("edit");
    std::fs::set_permissions(dir.join("tree/sub/b.txt"), std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod");
    let o = run(&dir, &["converge", "--detect-only"], &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(text(&o).contains("the intent is compliant: reality drifted from it"), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("tree/a.txt")).expect("a"),
        "edited\n",
        "detect-only changed a file"
    );
    std::fs::remove_file(dir.join("tree/sub/b.txt")).expect("rm");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(dir.join("tree/a.txt")).expect("a"), "a 0\n");
    assert_eq!(std::fs::read_to_string(dir.join("tree/sub/b.txt")).expect("b"), "b 0\n");
    assert_eq!(mode(&dir.join("tree/sub/b.txt")), 0o600);

    // The history has the drift, when it was found and when it was corrected.
    let o = run(&dir, &["history", "--format", "json", "--resource", "file.a"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let drift: Vec<serde_json::Value> = h["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .flat_map(|r| r["drift"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(drift.iter().any(|d| d["field"] == "content" && d["corrected_ms"].is_i64()), "{h}");

    // An unmanaged world-writable file fails the control: exit 4.
    std::fs::write(dir.join("tree/stray.txt"), "x").expect("stray");
    std::fs::set_permissions(dir.join("tree/stray.txt"), std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(4), "{}", text(&o));
    let o = run(&dir, &["converge", "--format", "sarif"], &[]);
    let sarif: serde_json::Value = serde_json::from_slice(&o.stdout).expect("sarif json");
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "tree_files");
    assert_eq!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "main.iade"
    );
    assert_journal_consistent(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// After a converge with `gen`, the tree equals intent: plan finds nothing, no temp file
/// remains, the journal is consistent, and the guarded exec applied exactly once.
fn assert_converged(dir: &Path, generation: u32) {
    let g = format!("gen={generation}");
    let o = run(dir, &["plan", "--param", &g], &[]);
    assert_eq!(
        code(&o),
        Some(0),
        "after generation {generation}, the tree differs from intent:\n{}",
        text(&o)
    );
    assert!(temp_files(dir).is_empty(), "temp files left: {:?}", temp_files(dir));
    assert_journal_consistent(dir);
    let count = std::fs::read_to_string(dir.join(format!("tree/apply-count-{generation}")))
        .expect("the exec applied");
    assert_eq!(count, "ran\n", "the guarded exec applied more than once for generation {generation}");
}

#[test]
fn a_crash_at_every_protocol_point_is_resumed_to_the_intent() {
    let dir = stack("failpoints", FILES);
    let mut generation = 0;
    for point in ["before-intent", "after-intent", "after-effect", "after-outcome"] {
        for nth in ["1", "2"] {
            generation += 1;
            let g = format!("gen={generation}");
            let fp = format!("{point}:{nth}");
            let o = run(&dir, &["converge", "--param", &g], &[("IADE_FAILPOINT", &fp)]);
            assert_eq!(code(&o), None, "{fp}: expected an abrupt stop:\n{}", text(&o));
            assert!(text(&o).contains("failpoint"), "{fp}: {}", text(&o));
            let o = run(&dir, &["converge", "--param", &g], &[]);
            assert_eq!(code(&o), Some(0), "{fp}: resume failed:\n{}", text(&o));
            if point != "before-intent" && nth == "1" {
                assert!(text(&o).contains("resumed after an interrupted run"), "{fp}: {}", text(&o));
            }
            assert_converged(&dir, generation);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn many_files(n: usize) -> String {
    let mut s = String::from("use std.fs.{file, directory}\nuse std.exec.{exec}\n\nparam gen: int = 0\n\n");
    for d in 0..10 {
        s.push_str(&format!(
            "directory d{d} {{\n  path = \"./tree/d{d}\"\n  mode = 0o755\n  after = [directory.root]\n}}\n\n"
        ));
    }
    s.push_str("directory root {\n  path = \"./tree\"\n  mode = 0o755\n}\n\n");
    for i in 0..n {
        let d = i % 10;
        s.push_str(&format!(
            "file f{i} {{\n  path = \"${{d{d}.path}}/f{i}.txt\"\n  content = \"file {i} of generation ${{gen}}: {}\\n\"\n  mode = 0o644\n}}\n\n",
            "x".repeat(40)
        ));
    }
    s.push_str("exec marker {\n  name = \"marker\"\n  check = \"test -f tree/marker-${gen}\"\n  apply = \"echo ran >> tree/apply-count-${gen}; touch tree/marker-${gen}\"\n  after = [directory.root]\n}\n");
    s
}

#[test]
fn a_wave_of_1100_files_runs_in_two_batches_and_a_crash_between_them_keeps_the_first() {
    let dir = stack("batches", &many_files(1100));
    let files = |generation: u32| {
        (0..1100)
            .filter(|i| {
                std::fs::read_to_string(dir.join(format!("tree/d{}/f{i}.txt", i % 10)))
                    .is_ok_and(|t| t.contains(&format!("generation {generation}:")))
            })
            .count()
    };
    // Waves: the root, then its directories and the exec, then the 1,100 files in batches of
    // 1,024. The third outcome point is the first batch's: its files are all there, the rest
    // not begun.
    let o = run(&dir, &["converge", "--param", "gen=1"], &[("IADE_FAILPOINT", "after-outcome:3")]);
    assert_eq!(code(&o), None, "expected an abrupt stop:\n{}", text(&o));
    assert_eq!(files(1), 1024, "{}", text(&o));
    let o = run(&dir, &["converge", "--param", "gen=1"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains("76 changed"), "only the second batch is left: {}", text(&o));
    assert_eq!(files(1), 1100);
    assert_converged(&dir, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wave_repairing_the_modes_of_600_files_needs_no_descriptor_per_file() {
    let dir = stack("in-place-wave", &many_files(600));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let files: Vec<PathBuf> = (0..600).map(|i| dir.join(format!("tree/d{}/f{i}.txt", i % 10))).collect();
    for f in &files {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o666)).expect("chmod");
    }
    // 128 descriptors: far fewer than the files the wave changes in place.
    let o = Command::new("sh")
        .args(["-c", "ulimit -n 128 && exec \"$0\" converge \"$1\"", iade_bin()])
        .arg(dir.as_ref())
        .output()
        .expect("iade runs");
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    for f in &files {
        assert_eq!(mode(f), 0o644, "{f:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_at_random_instants_during_a_500_file_converge_never_loses_the_way() {
    let dir = stack("kill9", &many_files(500));
    // A first full converge gives the time one run takes, to aim the kills inside it.
    let t = Instant::now();
    let o = run(&dir, &["converge", "--param", "gen=0"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    // Kills aim inside a run: the window starts at the first run's length and shrinks when a
    // run ends before its kill (a later run can be quicker than the first, cold one).
    let mut span = t.elapsed().as_millis().max(20) as u64;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(std::process::id());
    let mut killed_mid_run = 0;
    let mut generation = 0u32;
    while killed_mid_run < 20 {
        generation += 1;
        assert!(generation <= 80, "only {killed_mid_run} of {generation} kills landed inside a run");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % span);
        let g = format!("gen={generation}");
        let mut child = Command::new(iade_bin())
            .args(["converge", "--param", &g])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns");
        std::thread::sleep(delay);
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::KILL,
        );
        let status = child.wait().expect("waits");
        if status.code().is_none() {
            killed_mid_run += 1;
        } else {
            span = (span * 3 / 4).max(5);
        }
        let o = run(&dir, &["converge", "--param", &g], &[]);
        assert_eq!(
            code(&o),
            Some(0),
            "generation {generation} (killed after {delay:?}): resume failed:\n{}",
            text(&o)
        );
        assert_converged(&dir, generation);
    }

    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_engine_exits_3_naming_the_holder_or_waits() {
    // The first engine's apply waits for a `go` file: the test decides when it may finish.
    let src = "use std.exec.{exec}\n\nexec slow {\n  name = \"slow\"\n  check = \"test -f done\"\n  apply = \"while [ ! -f go ]; do sleep 0.05; done; touch done\"\n  timeout = 120\n}\n";
    let dir = stack("lease", src);
    let first = Command::new(iade_bin())
        .args(["converge"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    // Wait until the first engine holds the lease and its step has started.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = dir.join(".iade/journal.db").exists()
            && journal(&dir).interrupted().is_ok_and(|left| !left.steps.is_empty());
        if started {
            break;
        }
        assert!(Instant::now() < deadline, "the first engine never started its step");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(3), "{}", text(&o));
    assert!(text(&o).contains("another engine holds this stack's lease: pid"), "{}", text(&o));
    // `plan` needs no lease.
    let o = run(&dir, &["plan"], &[]);
    assert!(matches!(code(&o), Some(0) | Some(2)), "{}", text(&o));
    // A waiting engine gets the lease once the first one is done.
    let waiter = Command::new(iade_bin())
        .args(["converge", "--wait"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(dir.join("go"), "").expect("go");
    let waited = waiter.wait_with_output().expect("the waiter finishes");
    assert_eq!(waited.status.code(), Some(0), "{}", String::from_utf8_lossy(&waited.stderr));
    let out = first.wait_with_output().expect("first finishes");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_journal_consistent(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn watch_corrects_an_outside_edit_promptly_and_a_one_shot_converge_asks_it_for_a_pass() {
    let src = "use std.fs.{file}\n\nfile watched {\n  path = \"./watched.txt\"\n  content = \"managed\\n\"\n  mode = 0o644\n}\n";
    let dir = stack("watch", src);
    let mut child = Command::new(iade_bin())
        .args(["converge", "--watch", "--interval", "60s"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let target = dir.join("watched.txt");
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("the first pass", &|| std::fs::read_to_string(&target).is_ok_and(|t| t == "managed\n"));
    // The first pass is recorded: the watcher is idle, waiting for events.
    wait_for("the first pass to be recorded", &|| {
        dir.join(".iade/journal.db").exists()
            && runs(&dir).iter().any(|r| r.status == iade_journal::RunStatus::Done)
    });
    std::fs::write(&target, "edited from outside\n").expect("edit");
    let edited = Instant::now();
    wait_for("the correction", &|| std::fs::read_to_string(&target).is_ok_and(|t| t == "managed\n"));
    let latency = edited.elapsed();
    assert!(latency < Duration::from_secs(5), "correction took {latency:?}");

    // A source change is recompiled and applied at once.
    let source = std::fs::read_to_string(dir.join("main.iade")).expect("source");
    std::fs::write(dir.join("main.iade"), source.replace("managed\\n", "managed, version 2\\n"))
        .expect("edit source");
    wait_for("the new intent", &|| {
        std::fs::read_to_string(&target).is_ok_and(|t| t == "managed, version 2\n")
    });

    // A one-shot converge does not fail: the watching engine runs a pass for it.
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains("asking it for a pass"), "{}", text(&o));
    // It prints the run's report like any other run, summary line included.
    assert!(text(&o).contains("the watching engine ran this pass"), "{}", text(&o));
    assert!(
        text(&o).contains(": run ") && text(&o).contains("1 resource, 0 changed, 0 failed"),
        "{}",
        text(&o)
    );
    // Another intent is not handed off: the watcher refuses, and the one-shot says why.
    let o = run(&dir, &["converge", "--target", "file.watched"], &[]);
    assert_eq!(code(&o), Some(3), "{}", text(&o));
    assert!(text(&o).contains("refused a pass: it enforces another intent"), "{}", text(&o));

    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    let status = child.wait().expect("stops");
    assert_eq!(status.code(), Some(0));
    let j = journal(&dir);
    let drift: Vec<_> = runs(&dir)
        .iter()
        .flat_map(|r| j.drift(r.id).expect("drift"))
        .filter(|d| d.resource == "file.watched")
        .collect();
    assert!(drift.iter().any(|d| d.field == "content" && d.corrected_ms.is_some()), "{drift:?}");
    assert!(j.holder().expect("holder").is_none(), "the lease was not released");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_secret_reaches_the_file_and_nothing_else() {
    let src = r#"use std.fs.{file}

let token = secret("API_TOKEN")

file creds {
  path = "./creds.env"
  content = "TOKEN=${token}\n"
  mode = 0o600
}
"#;
    let dir = stack("secret", src);
    let secret = "hunter2-s3cr3t-value";
    let env = [("IADE_SECRET_API_TOKEN", secret)];
    let mut outputs = String::new();
    for args in [
        &["plan"][..],
        &["converge"],
        &["converge", "--format", "json"],
        &["history", "--format", "json"],
        &["graph", "--format", "json"],
    ] {
        let o = run(&dir, args, &env);
        outputs.push_str(&text(&o));
    }
    std::fs::write(dir.join("creds.env"), "TOKEN=old\n").expect("drift");
    for args in [&["plan", "--format", "json"][..], &["converge"], &["history"]] {
        outputs.push_str(&text(&run(&dir, args, &env)));
    }
    assert_eq!(std::fs::read_to_string(dir.join("creds.env")).expect("written"), format!("TOKEN={secret}\n"));
    assert!(!outputs.contains(secret), "a secret was printed:\n{outputs}");
    for name in ["journal.db", "journal.db-wal", "journal.db-shm"] {
        if let Ok(bytes) = std::fs::read(dir.join(".iade").join(name)) {
            let hay = String::from_utf8_lossy(&bytes);
            assert!(!hay.contains(secret), "{name} holds the secret");
        }
    }
    // Without the secret, the step fails clearly instead of writing something else.
    std::fs::remove_file(dir.join("creds.env")).expect("rm");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("IADE_SECRET_API_TOKEN"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_observe_only_resource_is_reported_never_changed() {
    let src = "use std.fs.{file}\n\nfile site {\n  path = \"./site.conf\"\n  content = \"listen 80\\n\"\n  mode = 0o644\n  manage = observe\n}\n";
    let dir = stack("observe", src);
    std::fs::write(dir.join("site.conf"), "listen 8080\n").expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains("drifted (observe only, not changed)"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(dir.join("site.conf")).expect("read"), "listen 8080\n");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn deletes_run_from_dependents_to_dependencies() {
    let present = "use std.fs.{file, directory}\n\ndirectory d {\n  path = \"./d\"\n  ensure = present\n}\n\nfile f {\n  path = \"${d.path}/f.txt\"\n  content = \"x\\n\"\n  ensure = present\n}\n";
    let dir = stack("deletes", present);
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(dir.join("d/f.txt").exists());
    std::fs::write(dir.join("main.iade"), present.replace("ensure = present", "ensure = absent"))
        .expect("edit");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(!dir.join("d").exists(), "the directory is still there:\n{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_secret_symlink_target_is_compared_without_being_shown() {
    let src = "use std.fs.{symlink}\n\nsymlink s {\n  path = \"./link\"\n  target = \"/opt/${secret(\"HIDDEN_DIR\")}\"\n}\n";
    let dir = stack("secret-link", src);
    let env = [("IADE_SECRET_HIDDEN_DIR", "tops3cret-dir")];
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_link(dir.join("link")).expect("link").to_string_lossy(), "/opt/tops3cret-dir");
    // Converged: nothing differs, and nothing shows the secret.
    let o = run(&dir, &["plan"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    std::os::unix::fs::symlink("/elsewhere", dir.join("link2")).expect("link2");
    std::fs::remove_file(dir.join("link")).expect("rm");
    std::fs::rename(dir.join("link2"), dir.join("link")).expect("swap");
    let o = run(&dir, &["plan", "--format", "json"], &env);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(!text(&o).contains("tops3cret"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_command_left_running_by_a_killed_engine_is_killed_by_the_next_run() {
    let src = "use std.exec.{exec}\n\nexec long {\n  name = \"long\"\n  check = \"test -f started\"\n  apply = \"touch started; sleep 60\"\n  timeout = 120\n}\n";
    let dir = stack("reap", src);
    let mut child = Command::new(iade_bin())
        .args(["converge"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    // Wait for the command to record its process group.
    let running = dir.join(".iade/running");
    let deadline = Instant::now() + Duration::from_secs(30);
    let pgid = loop {
        let found = std::fs::read_dir(&running)
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse::<i32>().ok());
        if let (Some(p), true) = (found, dir.join("started").exists()) {
            break p;
        }
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::KILL,
    );
    let _ = child.wait();
    assert!(Path::new(&format!("/proc/{pgid}")).exists(), "the command died with the engine already");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    // The group leader is gone (or a zombie of the reaper's, which is the same to us).
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{pgid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
        assert!(Instant::now() < deadline, "the orphaned command still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
