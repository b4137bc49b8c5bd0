//! Golden files: `tests/check/ok/*` must check without any diagnostic; `tests/check/err/*`
//! must give at least one, rendered exactly as in the `.stderr` beside it. An input is a
//! `.iade` file or a directory (a stack of its top-level files). `IADE_BLESS=1` rewrites
//! expectations; a missing or orphaned expectation fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::{disk_db, load_stack, rel, render, root};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("golden directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "iade"))
        .collect();
    v.sort();
    v
}

fn expectation(input: &Path) -> PathBuf {
    let name = input.file_name().expect("named").to_string_lossy().trim_end_matches(".iade").to_string();
    input.with_file_name(format!("{name}.stderr"))
}

fn check(input: &Path) -> (usize, Vec<&'static str>, String) {
    let mut db = disk_db(false);
    load_stack(&mut db, input);
    let diags = db.diagnostics();
    let codes = diags.iter().map(|d| d.code.as_str()).collect();
    (diags.len(), codes, render(&db, &diags))
}

#[test]
fn valid_stacks_check_without_diagnostics() {
    let mut bad = Vec::new();
    for input in inputs(&root().join("tests/check/ok")) {
        let (n, _, rendered) = check(&input);
        if n > 0 {
            bad.push(format!("{}: expected no diagnostics, got:\n{rendered}", rel(&input)));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn invalid_stacks_report_diagnostics_matching_their_goldens() {
    let dir = root().join("tests/check/err");
    let bless = std::env::var_os("IADE_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for input in inputs(&dir) {
        let (n, _, actual) = check(&input);
        if n == 0 {
            failures.push(format!("{}: expected at least one diagnostic, got none", rel(&input)));
            continue;
        }
        let expected_path = expectation(&input);
        if bless {
            std::fs::write(&expected_path, &actual).expect("writable expectation");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{} differs from {}:\n--- expected\n{expected}\n--- actual\n{actual}",
                rel(&input),
                rel(&expected_path)
            )),
            Err(_) => failures.push(format!(
                "{}: missing {} (run with IADE_BLESS=1)",
                rel(&input),
                rel(&expected_path)
            )),
        }
    }
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "stderr") {
            let stem = p.file_stem().expect("named").to_string_lossy().into_owned();
            if !dir.join(format!("{stem}.iade")).exists() && !dir.join(&stem).is_dir() {
                failures.push(format!("{}: orphaned expectation", rel(&p)));
            }
        }
    }
    assert!(failures.is_empty(), "{} golden failure(s):\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn every_semantic_code_is_triggered_by_a_golden() {
    let mut seen = BTreeSet::new();
    for input in inputs(&root().join("tests/check/err")) {
        seen.extend(check(&input).1);
    }
    let missing: Vec<&str> = iade_diagnostics::registry()
        .iter()
        .map(|c| c.code.as_str())
        .filter(|c| !c[1..].starts_with("00") && !seen.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes without a golden test: {missing:?}");
}

#[test]
fn every_example_and_the_whole_stdlib_check_clean() {
    for stack in ["examples/quickstart", "examples/webapp", "stdlib/std"] {
        let (n, _, rendered) = check(&root().join(stack));
        assert_eq!(n, 0, "{stack}:\n{rendered}");
    }
    // With every param value the examples accept.
    for tier in ["dev", "staging", "prod"] {
        let mut db = disk_db(false);
        load_stack(&mut db, &root().join("examples/webapp"));
        db.set_params([("tier".to_string(), tier.to_string()), ("port".into(), "8443".into())].into());
        let diags = db.diagnostics();
        assert!(diags.is_empty(), "webapp tier={tier}:\n{}", render(&db, &diags));
    }
}

/// DESIGN.md's example, verbatim: it must check clean; with `0o666` it must be denied, the
/// diagnostic pointing at the attribute and the rule and showing the values.
const DESIGN_EXAMPLE: &str = include_str!("design_example.iade");

#[test]
fn the_design_example_checks_clean_and_its_world_writable_variant_is_denied() {
    let db = crate::support::memory_db(&[("main.iade", DESIGN_EXAMPLE)], false);
    let diags = db.diagnostics();
    assert!(diags.is_empty(), "{}", render(&db, &diags));

    let bad = DESIGN_EXAMPLE.replace("mode    = 0o640", "mode    = 0o666");
    assert_ne!(bad, DESIGN_EXAMPLE);
    let db = crate::support::memory_db(&[("main.iade", &bad)], false);
    let diags = db.diagnostics();
    assert_eq!(diags.len(), 1, "{}", render(&db, &diags));
    let d = &diags[0];
    assert_eq!(d.code.as_str(), "E0401");
    let text = render(&db, &diags);
    assert!(text.contains("mode is 0o666"), "{text}");
    assert!(text.contains("rule `not_world_writable` does not hold"), "{text}");
    assert!(text.contains("`f.mode` is 0o666"), "{text}");
    assert!(text.contains("`f.mode & 0o002` is 0o002"), "{text}");
    assert!(d.message.contains("file.config"), "{}", d.message);
}

#[test]
fn edges_come_from_references_through_lets_and_from_after() {
    let src = r#"use std.fs.{file, directory}

directory app {
  path = "/srv/app"
}

let base = app.path

file config {
  path = "${base}/config"
}

file marker {
  path = "/srv/marker"
  after = [file.config]
}
"#;
    let db = crate::support::memory_db(&[("main.iade", src)], false);
    assert!(db.diagnostics().is_empty(), "{:?}", db.diagnostics());
    let edges: Vec<(String, String, String)> = db
        .intent_graph()
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone(), format!("{:?}", e.reason)))
        .collect();
    assert_eq!(
        edges,
        [
            ("directory.app".into(), "file.config".into(), "Reference".into()),
            ("file.config".into(), "file.marker".into(), "After".into()),
        ]
    );
}

#[test]
fn a_secret_param_is_redacted_everywhere_it_flows() {
    let src = r#"use std.fs.{file}

param token: secret

file creds {
  path = "/etc/app/token"
  content = "token=${token}\n"
  mode = 0o600
}

policy short {
  require len(token) < 5 else "token is ${token}"
}
"#;
    let mut db = crate::support::memory_db(&[("main.iade", src)], false);
    db.set_params([("token".to_string(), "hunter2-very-secret".to_string())].into());
    let diags = db.diagnostics();
    let rendered = crate::support::render(&db, &diags);
    let graph = serde_json::to_string(&db.intent_graph()).expect("serializes");
    assert!(!rendered.contains("hunter2") && !graph.contains("hunter2"), "{rendered}\n{graph}");
    assert!(graph.contains("<redacted>"), "{graph}");
}
