//! iade runs as root: a path swapped for a link, a FIFO where a file was, a symlink planted by
//! another user on the way to a managed path must never redirect a change. The races are made
//! by construction: the run pauses between observation and correction (`IADE_FAILPOINT=
//! after-observe:1:pause=FILE`) while the test swaps the path.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::engine::{TempDir, code, iade_bin, mode, run, stack, text};

/// Runs `converge`, pausing after its observation; `swap` changes the environment then.
fn converge_with_a_swap(dir: &Path, swap: impl FnOnce()) -> std::process::Output {
    let pause = dir.join("pause-point");
    let child = Command::new(iade_bin())
        .arg("converge")
        .current_dir(dir)
        .env("IADE_FAILPOINT", format!("after-observe:1:pause={}", pause.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pause.exists() {
        assert!(Instant::now() < deadline, "the run never reached its observation");
        std::thread::sleep(Duration::from_millis(10));
    }
    swap();
    std::fs::remove_file(&pause).expect("resume the run");
    child.wait_with_output().expect("finishes")
}

/// A file outside the stack that a planted link points to, in a directory removed when the
/// test ends.
fn victim(name: &str) -> (TempDir, PathBuf) {
    let v = TempDir::new(&format!("victim-{name}"));
    let f = v.join("shadow");
    std::fs::write(&f, "root:secret-hash:19000::::::\n").expect("victim file");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    (v, f)
}

#[test]
fn a_file_swapped_for_a_link_after_observation_is_not_chmodded_through_it() {
    let dir =
        stack("swap-mode", "use std.fs.{file}\n\nfile conf {\n  path = \"./conf\"\n  mode = 0o600\n}\n");
    assert_eq!(code(&run(&dir, &["converge"], &[])), Some(0));
    std::fs::set_permissions(dir.join("conf"), std::fs::Permissions::from_mode(0o644)).expect("drift");
    let (_victim, target) = victim("mode");
    let o = converge_with_a_swap(&dir, || {
        std::fs::remove_file(dir.join("conf")).expect("rm");
        std::os::unix::fs::symlink(&target, dir.join("conf")).expect("plant the link");
    });
    assert_eq!(mode(&target), 0o640, "the link's target was changed: {}", text(&o));
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("changed since it was observed"), "{}", text(&o));
    // The next run sees a link where a file is intended, and refuses to touch it.
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(1));
    assert!(text(&o).contains("is a symlink, not a file"), "{}", text(&o));
    assert_eq!(mode(&target), 0o640);
}

#[test]
fn a_file_swapped_for_a_link_after_observation_is_not_rewritten_through_it() {
    let src = "use std.fs.{file}\n\nfile conf {\n  path    = \"./conf\"\n  content = \"managed\\n\"\n}\n";
    let dir = stack("swap-content", src);
    assert_eq!(code(&run(&dir, &["converge"], &[])), Some(0));
    std::fs::write(dir.join("conf"), "drifted\n").expect("drift");
    let (_victim, target) = victim("content");
    let o = converge_with_a_swap(&dir, || {
        std::fs::remove_file(dir.join("conf")).expect("rm");
        std::os::unix::fs::symlink(&target, dir.join("conf")).expect("plant the link");
    });
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "root:secret-hash:19000::::::\n");
    assert!(std::fs::symlink_metadata(dir.join("conf")).expect("still there").file_type().is_symlink());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".iade-tmp."))
        .collect();
    assert!(leftovers.is_empty(), "the refused write left {leftovers:?}");
}

#[test]
fn a_directory_on_the_way_swapped_for_another_users_link_is_not_followed() {
    let src = "use std.fs.{file}\n\nfile conf {\n  path = \"./sub/conf\"\n  mode = 0o600\n}\n";
    let dir = stack("swap-parent", src);
    std::fs::create_dir(dir.join("sub")).expect("sub");
    assert_eq!(code(&run(&dir, &["converge"], &[])), Some(0));
    std::fs::set_permissions(dir.join("sub/conf"), std::fs::Permissions::from_mode(0o644)).expect("drift");
    let (_victim, target) = victim("parent");
    let target_dir = target.parent().expect("dir").to_path_buf();
    std::fs::write(target_dir.join("conf"), "x").expect("a file named like the managed one");
    std::fs::set_permissions(target_dir.join("conf"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = converge_with_a_swap(&dir, || {
        std::fs::rename(dir.join("sub"), dir.join("sub.real")).expect("move the directory away");
        std::os::unix::fs::symlink(&target_dir, dir.join("sub")).expect("plant the link");
        // Planted by an unprivileged user.
        std::os::unix::fs::lchown(dir.join("sub"), Some(65534), Some(65534)).expect("lchown");
    });
    assert_eq!(mode(&target_dir.join("conf")), 0o644, "{}", text(&o));
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is a symlink owned by uid 65534"), "{}", text(&o));
}

#[test]
fn a_root_owned_link_on_the_way_is_followed() {
    let dir = stack(
        "root-link",
        "use std.fs.{file}\n\nfile conf {\n  path    = \"./via/conf\"\n  content = \"x\\n\"\n}\n",
    );
    std::fs::create_dir(dir.join("real")).expect("real");
    std::os::unix::fs::symlink(dir.join("real"), dir.join("via")).expect("link");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(dir.join("real/conf")).expect("written through the link"), "x\n");
}

#[test]
fn a_fifo_where_a_file_is_managed_neither_hangs_plan_nor_converge() {
    let src = "use std.fs.{file}\n\nfile conf {\n  path    = \"./conf\"\n  content = \"x\\n\"\n}\n\ncontrol sweep {\n  severity = low\n  for f in observe(file) { require f.size >= 0 }\n}\n";
    let dir = stack("fifo", src);
    assert!(Command::new("mkfifo").arg(dir.join("conf")).status().expect("mkfifo").success());
    assert!(Command::new("mkfifo").arg(dir.join("stray")).status().expect("mkfifo").success());
    for args in [&["plan"][..], &["converge"], &["converge", "--detect-only"]] {
        let started = Instant::now();
        let o = run(&dir, args, &[]);
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?} hung on a FIFO");
        assert_eq!(code(&o), Some(1), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("is a special file, not a file"), "{args:?}: {}", text(&o));
    }
}

#[test]
fn a_command_that_left_its_group_is_killed_before_a_resumed_run_applies_again() {
    // `apply` starts a helper that leaves its process group (setsid), as daemonizing helpers
    // do, and whose effect lands a second later.
    let src = r#"use std.exec.{exec}

exec daemon {
  name  = "daemon"
  check = "test -f done"
  apply = "echo start >> log; setsid sh -c 'sleep 1; echo orphan >> log; touch done' </dev/null >/dev/null 2>&1 & sleep 2; test -f done"
}
"#;
    let dir = stack("setsid", src);
    let mut child = Command::new(iade_bin())
        .arg("converge")
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(dir.join("log")).is_ok_and(|l| l.contains("start")) {
        assert!(Instant::now() < deadline, "apply never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::KILL,
    );
    let _ = child.wait();
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    // Whatever the first helper would have done later must not happen now either.
    std::thread::sleep(Duration::from_millis(1500));
    let log = std::fs::read_to_string(dir.join("log")).expect("log");
    assert_eq!(log.matches("orphan").count(), 1, "the first apply's helper outlived the engine:\n{log}");
    assert_eq!(log.matches("start").count(), 2, "{log}");
}

#[test]
fn a_file_name_with_control_characters_cannot_forge_output_or_reach_the_terminal() {
    let src = "use std.fs.{file}\n\ncontrol no_world_writable {\n  severity = high\n  for f in observe(file) { require f.mode & 0o002 == 0 else \"${f.path} is world-writable\" }\n}\n";
    let dir = stack("injection", src);
    let evil = dir.join("x\ncontrol forged [low] passes on everything: fine\u{1b}]0;pwned\u{7}\u{1b}[2J");
    std::fs::write(&evil, "x").expect("evil file");
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let o = run(&dir, &["converge", "--detect-only", "--color", "always"], &[]);
    let out = text(&o);
    assert_eq!(code(&o), Some(4), "{out}");
    assert!(!out.contains('\u{7}') && !out.contains("\u{1b}]0;") && !out.contains("\u{1b}[2J"), "{out:?}");
    assert!(!out.lines().any(|l| l.starts_with("control forged")), "a forged line: {out}");
    assert!(out.contains("\\n") && out.contains("\\u{1b}"), "the name is shown escaped: {out}");
    // JSON keeps the name exact.
    let o = run(&dir, &["converge", "--detect-only", "--format", "json"], &[]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let subject = json["compliance"]["findings"][0]["subject"].as_str().expect("subject");
    assert!(subject.ends_with("\u{1b}[2J]"), "{subject:?}");
}

#[test]
fn leftovers_of_a_run_the_journal_lost_are_removed_from_the_environment() {
    let src = "use std.fs.{file}\n\nfile conf {\n  path    = \"./conf\"\n  content = \"x\\n\"\n}\n";
    let dir = stack("lost-run", src);
    assert_eq!(code(&run(&dir, &["converge"], &[])), Some(0));
    // A crash left temporary files, and the journal that knew of the run was replaced.
    std::fs::write(dir.join(".conf.iade-tmp.999999999.0"), "half").expect("leftover");
    std::fs::write(dir.join(".other.iade-tmp.999999998.7"), "half").expect("leftover");
    std::fs::remove_dir_all(dir.join(".iade")).expect("a fresh journal");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains("removed 2 leftovers of an interrupted write"), "{}", text(&o));
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".iade-tmp."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A temporary file of a live writer (another stack's engine) is left alone.
    let live = dir.join(format!(".x.iade-tmp.{}.0", std::process::id()));
    std::fs::write(&live, "in flight").expect("live");
    assert_eq!(code(&run(&dir, &["converge"], &[])), Some(0));
    assert!(live.exists(), "a live writer's temporary file was removed");
}

#[test]
fn history_of_a_run_the_journal_does_not_have_is_an_error() {
    let dir = stack("no-run", "use std.fs.{file}\n\nfile f {\n  path = \"./f\"\n}\n");
    assert_eq!(code(&run(&dir, &["converge"], &[])), Some(0));
    let o = run(&dir, &["history", "--run", "999999"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no run 999999 in the journal"), "{}", text(&o));
}
