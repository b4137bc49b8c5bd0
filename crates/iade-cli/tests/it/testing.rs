//! `iade test`: its output for passing, failing and unknown expectations, a snapshot that
//! differs, and broken test files (goldens in `tests/iade-test/CASE.out`, `IADE_BLESS=1`
//! rewrites them); and every example's own tests pass.

use std::process::Command;

fn iade_test(dir: &str) -> (i32, String) {
    let o = Command::new(super::engine::iade_bin())
        .args(["test", dir, "--color", "never"])
        .current_dir(super::root())
        // Blessing these goldens must not bless the snapshots under test.
        .env_remove("IADE_BLESS")
        .output()
        .expect("iade runs");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), text)
}

#[test]
fn iade_test_output_matches_its_goldens() {
    let root = super::root().join("tests/iade-test");
    let mut cases: Vec<String> = std::fs::read_dir(&root)
        .expect("cases")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "{cases:?}");
    let bless = std::env::var_os("IADE_BLESS").is_some_and(|v| v == "1");
    let mut wrong = Vec::new();
    for case in cases {
        let (code, text) = iade_test(&format!("tests/iade-test/{case}"));
        let actual = format!("exit: {code}\n{text}");
        let golden = root.join(format!("{case}.out"));
        if bless {
            std::fs::write(&golden, &actual).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != actual {
            wrong.push(format!("{case}:\n--- expected\n{expected}\n--- actual\n{actual}"));
        }
    }
    assert!(wrong.is_empty(), "IADE_BLESS=1 rewrites them; review the diff:\n{}", wrong.join("\n"));
}

#[test]
fn every_example_ships_tests_that_pass_and_expect_a_failure() {
    for example in ["quickstart", "webapp", "nginx", "host", "postgres"] {
        let (code, text) = iade_test(&format!("examples/{example}"));
        assert_eq!(code, 0, "examples/{example}: {text}");
        assert!(text.contains("test result: ok"), "{text}");
        let sources: String = std::fs::read_dir(super::root().join(format!("examples/{example}/tests")))
            .expect("a tests directory")
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        if example != "nginx" {
            assert!(sources.contains(" fails"), "examples/{example} has no case that fails");
        }
    }
}

#[test]
fn test_files_are_never_part_of_the_stack_otherwise() {
    let o = Command::new(super::engine::iade_bin())
        .args(["check", "tests/iade-test/bad_test_syntax"])
        .current_dir(super::root())
        .output()
        .expect("iade runs");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn iade_test_junit_is_a_well_formed_report() {
    let o = Command::new(super::engine::iade_bin())
        .args(["test", "tests/iade-test/failing", "--format", "junit"])
        .current_dir(super::root())
        .env_remove("IADE_BLESS")
        .output()
        .expect("iade runs");
    assert_eq!(o.status.code(), Some(1));
    let xml = String::from_utf8_lossy(&o.stdout).into_owned();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).expect("testsuite");
    assert_eq!(suite.attribute("tests"), Some("3"), "{xml}");
    assert_eq!(suite.attribute("failures"), Some("3"), "{xml}");
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert!(cases.iter().all(|c| c.attribute("name").is_some() && c.attribute("classname").is_some()));
    let failure = doc.descendants().find(|n| n.has_tag_name("failure")).expect("failure");
    assert!(failure.text().is_some_and(|t| t.contains("`file.conf.mode` is 0o644")), "{xml}");
}

#[test]
fn a_snapshot_never_holds_a_secret_nor_where_the_checkout_is() {
    let dir = std::env::temp_dir().join(format!("iade-test-secret-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("main.iade"),
        "use std.fs.{file}\n\nfile token {\n  path = \"./token\"\n  content = secret(\"API_TOKEN\")\n}\n",
    )
    .expect("write");
    std::fs::write(dir.join("snap_test.iade"), "test \"snapshot\" {\n  expect snapshot \"intent.json\"\n}\n")
        .expect("write");
    let o = Command::new(super::engine::iade_bin())
        .args(["test", "--bless"])
        .current_dir(&dir)
        .env("IADE_SECRET_API_TOKEN", "hunter2-very-secret")
        .output()
        .expect("iade runs");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let snapshot = std::fs::read_to_string(dir.join("intent.json")).expect("snapshot");
    assert!(snapshot.contains("<redacted>") && !snapshot.contains("hunter2"), "{snapshot}");
    assert!(!snapshot.contains(&dir.to_string_lossy().into_owned()), "paths are relative: {snapshot}");
    assert!(!snapshot.contains("\"line\""), "no source locations: {snapshot}");
    let _ = std::fs::remove_dir_all(&dir);
}
