//! End-to-end tests of the `iade` binary: exit codes, output formats, fmt in place.

mod editors;
mod engine;
mod fleet;
mod hardening;
mod host;
mod import;
mod journal;
mod lsp;
mod ownership;
mod postgres;
mod refresh;
mod runs;
mod secrets;
mod service;
mod testing;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root exists")
}

fn iade(args: &[&str], cwd: &Path) -> Output {
    Command::new(engine::iade_bin()).args(args).current_dir(cwd).output().expect("iade runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally, not by a signal")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> engine::TempDir {
    engine::TempDir::new(&format!("cli-{name}"))
}

#[test]
fn checking_the_examples_succeeds_with_exit_0() {
    for ex in [
        "examples/quickstart",
        "examples/webapp",
        "examples/nginx",
        "examples/host",
        "examples/postgres",
        "stdlib/std",
    ] {
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

const DESIGN_EXAMPLE: &str = include_str!("../../../iade-compiler/tests/it/design_example.iade");

#[test]
fn the_design_example_checks_clean_and_denies_a_world_writable_config() {
    let dir = temp_dir("design");
    std::fs::write(dir.join("main.iade"), DESIGN_EXAMPLE).expect("write");
    let o = iade(&["check", "--color", "never"], &dir);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    std::fs::write(dir.join("main.iade"), DESIGN_EXAMPLE.replace("0o640", "0o666")).expect("write");
    let o = iade(&["check", "--color", "never"], &dir);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("E0401"), "{err}");
    assert!(err.contains("mode is 0o666"), "{err}");
    assert!(err.contains("rule `not_world_writable` does not hold"), "{err}");
    assert!(err.contains("`f.mode & 0o002` is 0o002"), "{err}");
}

#[test]
fn params_come_from_flags_then_the_environment_and_unknown_names_are_usage_errors() {
    let ex = "examples/webapp";
    let o = iade(&["check", ex, "--param", "tier=prod", "--param", "port=8443"], &root());
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let o = iade(&["check", "--color", "never", ex, "--param", "port=80"], &root());
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("E0205"), "{}", stderr(&o));

    let o = iade(&["check", ex, "--param", "teir=prod"], &root());
    assert_eq!(code(&o), 64, "{}", stderr(&o));
    assert!(stderr(&o).contains("no param `teir`"), "{}", stderr(&o));

    let o = iade(&["check", ex, "--param", "novalue"], &root());
    assert_eq!(code(&o), 64, "{}", stderr(&o));

    let o = Command::new(engine::iade_bin())
        .args(["check", "--color", "never", ex])
        .env("IADE_PARAM_PORT", "1234")
        .current_dir(root())
        .output()
        .expect("runs");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid value for param `port`"), "{}", stderr(&o));
}

#[test]
fn graph_prints_dot_and_documented_json() {
    let o = iade(&["graph", "examples/quickstart"], &root());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let dot = String::from_utf8_lossy(&o.stdout);
    assert!(dot.starts_with("digraph intent {"), "{dot}");
    assert!(dot.contains("\"directory.out\" -> \"directory.notes\";"), "{dot}");

    let o = iade(&["graph", "examples/quickstart", "--format", "json"], &root());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let g: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(g["version"], 1);
    let ids: Vec<&str> =
        g["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["id"].as_str()).collect();
    assert!(ids.contains(&"file.note_monday") && ids.contains(&"directory.out"), "{ids:?}");
    let readme =
        g["nodes"].as_array().expect("nodes").iter().find(|n| n["id"] == "file.readme").expect("readme");
    assert_eq!(readme["attrs"]["mode"]["value"]["mode"], "0o644");
    assert_eq!(readme["attrs"]["ensure"]["source"], serde_json::Value::Null);
    assert_eq!(readme["attrs"]["path"]["source"]["file"], "examples/quickstart/main.iade");
    assert!(
        g["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|e| e["from"] == "directory.out" && e["to"] == "file.readme")
    );

    // A secret never appears, however it is spelled in the graph.
    let o = iade(&["graph", "examples/webapp", "--format", "json"], &root());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("<redacted>") && !text.contains("DB_PASSWORD"), "{text}");
}

#[test]
fn a_stack_with_errors_prints_no_graph() {
    let o = iade(&["graph", "--color", "never", "tests/check/err/dependency_cycle.iade"], &root());
    assert_eq!(code(&o), 1);
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("E0303"), "{}", stderr(&o));
}

#[test]
fn the_stdlib_can_be_replaced_and_a_bad_one_is_a_clear_error() {
    let o = iade(&["check", "--stdlib", "stdlib", "examples/webapp"], &root());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = iade(&["check", "--stdlib", "examples", "examples/webapp"], &root());
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("--stdlib takes a directory"), "{}", stderr(&o));
}

#[test]
fn completions_are_scripts_each_shell_accepts_and_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let o = iade(&["completions", shell], &root());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let script = String::from_utf8_lossy(&o.stdout).into_owned();
        for command in ["check", "plan", "converge", "history", "import", "lsp"] {
            assert!(script.contains(command), "{shell} completions lack `{command}`");
        }
        if shell == "bash" {
            let path = std::env::temp_dir().join(format!("iade-completions-{}.bash", std::process::id()));
            std::fs::write(&path, &script).expect("write");
            let syntax = Command::new("bash").arg("-n").arg(&path).output().expect("bash runs");
            assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
            let _ = std::fs::remove_file(&path);
        }
    }
    let o = iade(&["completions", "tcsh"], &root());
    assert_eq!(code(&o), 64, "an unknown shell is a usage error");
}
