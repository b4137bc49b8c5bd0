//! What re-runs after an edit, read from salsa's event log (`Database::take_executed`).

use iade_compiler::Database;

use crate::support::memory_db;

const A: &str = r#"use std.fs.{file, directory}

# The application directory.
directory app {
  path = "/srv/app"
  mode = 0o755
}

directory logs {
  path = "${app.path}/logs"
  mode = 0o750
}

file unrelated {
  path = "/etc/unrelated.conf"
  content = "x = 1\n"
  mode = 0o644
}

rule not_world_writable(f: file) =
  f.mode & 0o002 == 0 else "${f.path} is world-writable"

rule small(f: file) = len(f.content) < 1000 else "${f.path} is too big"

policy safe {
  for f in intent(file) {
    require not_world_writable(f)
  }
}

policy sizes {
  for f in intent(file) {
    require small(f)
  }
}
"#;

const B: &str = r#"use std.fs.{file}

file motd {
  path = "/etc/motd"
  content = "hello\n"
  mode = 0o644
}
"#;

fn warm() -> Database {
    let db = memory_db(&[("a.iade", A), ("b.iade", B)], true);
    assert!(db.diagnostics().is_empty(), "{:?}", db.diagnostics());
    db.take_executed();
    db
}

fn edit(db: &mut Database, from: &str, to: &str) -> Vec<String> {
    assert!(A.contains(from), "edit target `{from}` not in the source");
    db.set_stack_files(vec![("a.iade".into(), A.replace(from, to)), ("b.iade".into(), B.into())]);
    db.diagnostics();
    db.take_executed()
}

fn ran(log: &[String], query: &str) -> Vec<String> {
    log.iter().filter(|l| l.starts_with(&format!("{query}("))).cloned().collect()
}

#[test]
fn editing_a_comment_or_whitespace_reevaluates_no_resource_and_reparses_only_that_file() {
    let mut db = warm();
    for (from, to) in [
        ("# The application directory.", "# The application's directory, where it lives."),
        ("directory app {", "\n\n\ndirectory app {"),
        ("policy safe {\n", "## Files nobody else may write.\npolicy safe {\n"),
        ("rule small", "\n# Sizes are in bytes.\n\nrule small"),
    ] {
        let log = edit(&mut db, from, to);
        assert_eq!(ran(&log, "parse_file"), vec!["parse_file(a.iade)"], "{log:#?}");
        assert!(ran(&log, "eval_resources").is_empty(), "{log:#?}");
        assert!(ran(&log, "eval_global").is_empty(), "{log:#?}");
        assert!(ran(&log, "check_policy").is_empty() && ran(&log, "policy_slice").is_empty(), "{log:#?}");
        // Put it back for the next edit (which re-runs the same queries in reverse).
        db.set_stack_files(vec![("a.iade".into(), A.into()), ("b.iade".into(), B.into())]);
        db.diagnostics();
        db.take_executed();
    }
}

#[test]
fn whitespace_inside_an_item_reevaluates_that_item_but_not_its_dependents() {
    let mut db = warm();
    let log = edit(&mut db, "  mode = 0o755", "  mode    =    0o755");
    assert_eq!(ran(&log, "eval_resources"), vec!["eval_resources(a.iade::res:directory:app)"], "{log:#?}");
    assert!(ran(&log, "check_policy").is_empty(), "{log:#?}");
}

#[test]
fn editing_one_attribute_reevaluates_only_that_resource_and_its_dependents() {
    let mut db = warm();
    let log = edit(&mut db, "path = \"/srv/app\"", "path = \"/srv/application\"");
    let evaluated = ran(&log, "eval_resources");
    assert!(evaluated.contains(&"eval_resources(a.iade::res:directory:app)".to_string()), "{log:#?}");
    assert!(evaluated.contains(&"eval_resources(a.iade::res:directory:logs)".to_string()), "{log:#?}");
    assert!(!evaluated.iter().any(|e| e.contains("unrelated") || e.contains("motd")), "{log:#?}");
    assert_eq!(ran(&log, "parse_file"), vec!["parse_file(a.iade)"], "{log:#?}");
}

#[test]
fn editing_a_resource_relowers_no_other_resource_and_reruns_no_stack_wide_settings() {
    let mut db = warm();
    let log = edit(&mut db, "content = \"x = 1\\n\"", "content = \"x = 2\\n\"");
    assert_eq!(ran(&log, "eval_resources"), vec!["eval_resources(a.iade::res:file:unrelated)"], "{log:#?}");
    // The file's text moved under every item; only rules and checks quote it.
    let lowered = ran(&log, "lower_item");
    assert!(lowered.contains(&"lower_item(a.iade::res:file:unrelated)".to_string()), "{log:#?}");
    assert!(!lowered.iter().any(|l| l.contains("directory")), "{log:#?}");
    // Both read only the items that can declare them (`stack`, `control`, `waive`).
    assert!(!log.iter().any(|l| l == "stack_settings" || l == "stack_waivers"), "{log:#?}");
}

#[test]
fn editing_one_rule_rechecks_only_the_policies_that_use_it() {
    let mut db = warm();
    let log = edit(&mut db, "len(f.content) < 1000", "len(f.content) < 2000");
    // The policy is checked per resource item; the slices that call the rule (the files)
    // re-ran, the other policy's did not, and nothing was re-evaluated.
    assert_eq!(
        ran(&log, "policy_slice"),
        vec!["policy_slice(policy:sizes × res:file:unrelated)", "policy_slice(policy:sizes × res:file:motd)"],
        "{log:#?}"
    );
    assert!(!ran(&log, "check_policy").iter().any(|l| l.contains("policy:safe")), "{log:#?}");
    assert!(ran(&log, "eval_resources").is_empty(), "{log:#?}");
}

#[test]
fn other_files_are_not_reparsed_and_an_unchanged_text_reruns_nothing() {
    let mut db = warm();
    db.set_stack_files(vec![("a.iade".into(), A.into()), ("b.iade".into(), B.into())]);
    db.diagnostics();
    assert!(db.take_executed().is_empty());
    let log = edit(&mut db, "mode = 0o750", "mode = 0o700");
    assert!(!log.iter().any(|l| l.contains("b.iade")), "{log:#?}");
}

#[test]
fn results_after_edits_equal_a_fresh_compile() {
    let mut db = warm();
    let edited = A.replace("mode = 0o755", "mode = 0o777").replace("\"x = 1\\n\"", "\"x = 2\\n\"");
    db.set_stack_files(vec![("a.iade".into(), edited.clone()), ("b.iade".into(), B.into())]);
    let fresh = memory_db(&[("a.iade", &edited), ("b.iade", B)], false);
    assert_eq!(db.diagnostics(), fresh.diagnostics());
    assert_eq!(db.intent_graph(), fresh.intent_graph());
}
