//! End-to-end tests of the `iade` binary: exit codes, output formats, fmt in place.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root exists")
}

fn iade(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iade")).args(args).current_dir(cwd).output().expect("iade runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally, not by a signal")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iade-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn checking_the_examples_succeeds_with_exit_0() {
    for ex in ["examples/quickstart", "examples/webapp", "stdlib/std"] {
        let o = iade(&["check", ex], &root());
        assert_eq!(code(&o), 0, "{ex}: {}", stderr(&o));
        assert!(stderr(&o).contains("no problems"), "{ex}: {}", stderr(&o));
    }
}

#[test]
fn every_malformed_input_exits_1_with_a_diagnostic_and_never_panics() {
    let dir = root().join("tests/syntax/err");
    let mut entries: Vec<_> =
        std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for p in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "iade")) {
        let o = iade(&["check", "--color", "never", p.to_str().expect("utf-8 path")], &root());
        let err = stderr(&o);
        assert!(!err.contains("this is a bug in iade"), "{}: panicked\n{err}", p.display());
        let is_warning_only = err.contains("Warning") && !err.contains("Error");
        let want = if is_warning_only { 0 } else { 1 };
        assert_eq!(code(&o), want, "{}: {err}", p.display());
        assert!(err.contains('['), "{}: no diagnostic printed\n{err}", p.display());
    }
}

#[test]
fn json_output_is_a_parseable_report_on_stdout() {
    let o = iade(&["check", "--format", "json", "tests/syntax/err/unterminated_string.iade"], &root());
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["diagnostics"][0]["code"], "E0004");
    assert_eq!(v["summary"]["errors"], 1);
}

#[test]
fn usage_errors_exit_64() {
    for args in [
        &["check", "--format", "yaml"][..],
        &["frobnicate"],
        &["fmt", "--no-such-flag"],
        &["explain", "E9999"],
    ] {
        let o = iade(args, &root());
        assert_eq!(code(&o), 64, "{args:?}: {}", stderr(&o));
    }
    assert_eq!(code(&iade(&["--help"], &root())), 0);
    assert_eq!(code(&iade(&["--version"], &root())), 0);
}

#[test]
fn help_teaches_with_examples_and_exit_codes() {
    let o = iade(&["--help"], &root());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Examples:") && out.contains("Exit codes:"), "{out}");
}

#[test]
fn explain_prints_every_registered_code() {
    for info in iade_diagnostics::registry() {
        let o = iade(&["explain", info.code.as_str()], &root());
        assert_eq!(code(&o), 0);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(info.title), "{}: {out}", info.code);
    }
}

#[test]
fn a_missing_path_is_a_clear_error() {
    let o = iade(&["check", "no/such/stack"], &root());
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("cannot read `no/such/stack`"), "{}", stderr(&o));
}

#[test]
fn fmt_rewrites_files_and_check_mode_reports_them() {
    let dir = temp_dir("fmt");
    let f = dir.join("main.iade");
    std::fs::write(&f, "directory app{path=\"/a\" mode=0o755}\n").expect("write");
    let o = iade(&["fmt", "--check", "."], &dir);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("would reformat: main.iade"), "{}", stderr(&o));
    let o = iade(&["fmt", "."], &dir);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(&f).expect("read");
    assert_eq!(text, "directory app {\n  path = \"/a\"\n  mode = 0o755\n}\n");
    assert_eq!(code(&iade(&["fmt", "--check", "."], &dir)), 0);
    let leftovers: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
    assert_eq!(leftovers.len(), 1, "no temp file is left behind");
}

#[test]
fn fmt_leaves_files_with_syntax_errors_untouched() {
    let dir = temp_dir("fmt-broken");
    let f = dir.join("main.iade");
    let broken = "directory app {\n  path = \"/a\n}\n";
    std::fs::write(&f, broken).expect("write");
    let o = iade(&["fmt", "."], &dir);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("E0004"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&f).expect("read"), broken);
}
