//! Runs that are right, and say so: observation in dependency order, a missing secret failing
//! only what needs it, history that says why, plans that show identities and diffs, summaries
//! that agree with exit codes, and `--target`.

use std::os::unix::fs::PermissionsExt;

use super::engine::{code, journal, mode, run, runs, stack, text};
use iade_journal::Store;

const INIT_IN_NEW_DIR: &str = r#"use std.fs.{directory, file}
use std.exec.{exec}

directory app {
  path = "./app"
  mode = 0o755
}

exec init {
  name  = "init"
  cwd   = app.path
  check = "test -f marker"
  apply = "echo initialising; touch marker"
}

file conf {
  path    = "${app.path}/conf.txt"
  content = "port = 8080\n"
}
"#;

#[test]
fn a_command_whose_directory_the_run_creates_is_observed_after_it() {
    let dir = stack("after-deps", INIT_IN_NEW_DIR);
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "pending, not an error: {}", text(&o));
    assert!(
        text(&o).contains("exec.init (init)  observed after its dependencies (directory.app)"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("cannot be observed"), "{}", text(&o));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "the first converge succeeds: {}", text(&o));
    assert!(text(&o).contains("3 changed, 0 failed"), "{}", text(&o));
    assert!(dir.join("app/marker").exists(), "the command ran in the new directory");
    let o = run(&dir, &["converge"], &[]);
    assert!(text(&o).contains("0 changed, 0 failed"), "{}", text(&o));
}

const SECRET_FILE: &str = r#"use std.fs.{file}

file token {
  path    = "./token"
  content = secret("K")
  mode    = 0o600
}
"#;

#[test]
fn a_missing_secret_fails_only_the_field_that_needs_it() {
    let dir = stack("missing-secret", SECRET_FILE);
    let o = run(&dir, &["converge"], &[("IADE_SECRET_K", "s3cret-value")]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    std::fs::set_permissions(dir.join("token"), std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(1), "the content cannot be decided: {}", text(&o));
    assert!(text(&o).contains("mode: 0o644 → 0o600"), "{}", text(&o));
    assert!(text(&o).contains("content cannot be compared: secret `K` is not set"), "{}", text(&o));
    assert!(!text(&o).contains("content:"), "no false drift of the content: {}", text(&o));

    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert_eq!(mode(&dir.join("token")), 0o600, "what can be corrected is corrected");
    assert_eq!(
        std::fs::read_to_string(dir.join("token")).expect("read"),
        "s3cret-value",
        "the content is left alone"
    );
    assert!(text(&o).contains("1 changed, 0 failed, 0 skipped, 1 not observable"), "{}", text(&o));

    let last = runs(&dir)[0].id;
    let j = journal(&dir);
    let drift = j.drift(last).expect("drift");
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!((drift[0].field.as_str(), drift[0].observed.as_deref()), ("mode", Some("0o644")));
    assert!(j.errors(last).expect("errors")[0].message.contains("secret `K` is not set"));
    let o = run(&dir, &["history", "--run", &last.to_string()], &[]);
    assert!(text(&o).contains("error  file.token.content: secret `K` is not set"), "{}", text(&o));
    assert!(!text(&o).contains("(absent)"), "the present file is never recorded as absent: {}", text(&o));
}

#[test]
fn history_says_why_a_run_failed() {
    let src = r#"use std.fs.{file}
use std.exec.{exec}

file conf {
  path    = "./conf"
  content = "x\n"
}

exec migrate {
  name  = "migrate"
  check = "false"
  apply = "echo applying step 1; echo 'fatal: relation app does not exist' >&2; exit 3"
}
"#;
    let dir = stack("why-failed", src);
    std::fs::create_dir(dir.join("conf")).expect("a directory where the file should be");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("0 changed, 1 failed, 0 skipped, 1 not observable"), "{}", text(&o));
    assert!(
        text(&o).contains("fatal: relation app does not exist"),
        "the failing command's stderr: {}",
        text(&o)
    );
    let o = run(&dir, &["history"], &[]);
    let h = text(&o);
    assert!(h.contains("error  file.conf: `") && h.contains("is a directory, not a file"), "{h}");
    assert!(
        h.contains("step   run exec.migrate: failed (apply exited 3: fatal: relation app does not exist)"),
        "{h}"
    );
    assert!(h.contains("applying step 1"), "stdout is kept too: {h}");
    let o = run(&dir, &["history", "--format", "json"], &[]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("history JSON");
    let step = &json["runs"][0]["steps"][0];
    assert_eq!(step["output"]["stderr"], "fatal: relation app does not exist\n", "{json}");
    assert_eq!(json["runs"][0]["run"]["summary"]["failed"], 1);
}

#[test]
fn plan_shows_each_objects_identity_and_a_diff_of_text_content() {
    let src =
        "use std.fs.{file}\n\nfile conf {\n  path    = \"./conf.txt\"\n  content = \"a\\nb\\nc\\n\"\n}\n";
    let dir = stack("plan-diff", src);
    run(&dir, &["converge"], &[]);
    std::fs::write(dir.join("conf.txt"), "a\nB\nc\n").expect("edit");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2));
    let t = text(&o);
    assert!(t.contains("~ file.conf (./conf.txt)  update"), "{t}");
    assert!(t.contains("      -B\n") && t.contains("      +b\n") && t.contains("       a\n"), "{t}");
    let o = run(&dir, &["plan", "--no-diff"], &[]);
    assert!(!text(&o).contains("+b"), "{}", text(&o));
    let o = run(&dir, &["plan", "--format", "json"], &[]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("plan JSON");
    let r = &json["plan"]["resources"][0];
    assert_eq!(r["identity"]["path"], "./conf.txt");
    assert!(r["changes"][0]["diff"].as_str().is_some_and(|d| d.contains("-B\n+b\n")), "{json}");
}

#[test]
fn a_secret_content_is_never_diffed() {
    let dir = stack("secret-diff", SECRET_FILE);
    run(&dir, &["converge"], &[("IADE_SECRET_K", "old-secret")]);
    let o = run(&dir, &["plan", "--format", "json"], &[("IADE_SECRET_K", "new-secret")]);
    let t = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(t.contains("<redacted>") && !t.contains("\"diff\""), "{t}");
    assert!(!t.contains("old-secret") && !t.contains("new-secret"), "{t}");
}

#[test]
fn a_target_converges_that_resource_and_what_it_depends_on_only() {
    let src = r#"use std.fs.{directory, file}

directory d {
  path = "./d"
}

file a {
  path    = "${d.path}/a"
  content = "a\n"
}

file b {
  path    = "./b"
  content = "b\n"
}
"#;
    let dir = stack("target", src);
    let o = run(&dir, &["converge", "--target", "file.a"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(dir.join("d/a").exists() && !dir.join("b").exists(), "{}", text(&o));
    let o = run(&dir, &["plan", "--target", "file.bb"], &[]);
    assert_eq!(code(&o), Some(64), "{}", text(&o));
    assert!(
        text(&o).contains("no resource `file.bb` in this stack")
            && text(&o).contains("did you mean `file.b`?")
    );
}

#[test]
fn check_counts_module_files_and_their_policies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/webapp");
    let o = run(&root, &["check", "."], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("checked 2 files and 1 module file,") && text(&o).contains("3 policies"),
        "{}",
        text(&o)
    );
}

#[test]
fn junit_output_is_a_well_formed_report_with_each_control_a_test_case() {
    use super::engine::{code, run, stack, text};
    let dir = stack(
        "junit",
        "use std.fs.{file}\n\nfile a {\n  path = \"./a <&> \\\"q\\\".txt\"\n  content = \"x\\n\"\n  mode = 0o666\n}\n\ncontrol no_world_writable {\n  severity = high\n  for f in observe(file, under = \".\") { require f.mode & 0o002 == 0 else \"${f.path} is world-writable\" }\n}\n\ncontrol always {\n  severity = low\n  require true\n}\n",
    );
    let o = run(&dir, &["converge", "--format", "junit"], &[]);
    assert_eq!(code(&o), Some(4), "{}", text(&o));
    let xml = String::from_utf8_lossy(&o.stdout).into_owned();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).expect("a testsuite");
    for attr in ["name", "tests", "failures", "errors"] {
        assert!(suite.attribute(attr).is_some(), "testsuite without {attr}: {xml}");
    }
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert!(
        cases.iter().all(|c| c.attribute("name").is_some() && c.attribute("classname").is_some()),
        "{xml}"
    );
    assert_eq!(suite.attribute("tests"), Some(cases.len().to_string().as_str()));
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|k| k.has_tag_name("failure")))
        .filter_map(|c| c.attribute("name"))
        .collect();
    assert_eq!(failed.len(), 1, "{xml}");
    assert_eq!(failed[0], "no_world_writable on file.a", "{xml}");
    let failure = doc.descendants().find(|n| n.has_tag_name("failure")).expect("failure");
    assert!(
        failure.attribute("message").is_some_and(|m| m.ends_with("a <&> \"q\".txt is world-writable")),
        "text survives escaping: {xml}"
    );
    assert!(cases.iter().any(|c| c.attribute("name") == Some("always")), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_waived_failure_is_reported_but_does_not_fail_the_run_until_its_waiver_expires() {
    // The object is quoted: the directory's name starts with a digit, which unquoted would
    // read as a number.
    use super::engine::{code, run, stack, text};
    let src = |until: &str| {
        format!(
            "use std.fs.{{file}}\n\ncontrol no_world_writable {{\n  severity = high\n  for f in observe(file, under = \"2fa\") {{\n    require f.mode & 0o002 == 0 else \"${{f.path}} is world-writable\"\n  }}\n}}\n\nwaive control no_world_writable for file[\"OUT/legacy.sh\"] until \"{until}\" reason \"vendor script\"\n"
        )
    };
    let dir = stack("waiver", "");
    let out = dir.join("2fa");
    std::fs::create_dir_all(&out).expect("out");
    let legacy = out.join("legacy.sh");
    std::fs::write(&legacy, "x\n").expect("write");
    std::fs::set_permissions(&legacy, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let write = |until: &str| {
        std::fs::write(dir.join("main.iade"), src(until).replace("OUT", &out.display().to_string()))
            .expect("write")
    };
    write("2999-12-31");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "a waived failure does not fail the run: {}", text(&o));
    assert!(
        text(&o).contains("fails (waived)") && text(&o).contains("waived until 2999-12-31: vendor script"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("1 waived"), "{}", text(&o));
    write("2001-01-01");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(4), "an expired waiver counts again: {}", text(&o));
    assert!(text(&o).contains("its waiver expired after 2001-01-01"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_converge_after_an_unchanged_one_uses_the_compile_cache_and_an_edit_is_never_missed() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = stack(
        "compile-cache",
        "use std.fs.{file}\n\nfile a {\n  path    = \"./a.txt\"\n  content = include(\"a.part\")\n}\n",
    );
    std::fs::write(dir.join("a.part"), "one\n").expect("write");
    let entry = dir.join(".iade").join("compile-cache");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(!dir.join(".iade").exists(), "plan wrote into a stack that never ran");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).expect("read"), "one\n");
    // The first converge made the stack's `.iade` directory; the next run keeps its compile.
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let first = std::fs::metadata(&entry).expect("the compile is cached").ino();
    // Unchanged sources: the entry is used, not written again.
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::metadata(&entry).expect("entry").ino(), first, "an unchanged stack compiled again");
    // An included file edited behind the cache's back: compiled again, and applied.
    std::fs::write(dir.join("a.part"), "two\n").expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).expect("read"), "two\n");
    assert_ne!(std::fs::metadata(&entry).expect("entry").ino(), first, "the edit made a new entry");
    // A syntax error is reported as always, whatever the cache holds.
    std::fs::write(dir.join("main.iade"), "use std.fs.{file}\n\nfile a {\n  path = \n}\n").expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("error"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
