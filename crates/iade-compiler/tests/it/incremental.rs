//! What re-runs after an edit, read from salsa's event log (`Database::take_executed`).

use iade_compiler::Database;

use crate::support::{disk_db_with, load_stack, memory_db, memory_db_once, render, root};

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
fn editing_a_resource_does_not_reevaluate_the_resources_ordered_or_notified_after_it() {
    // `after` and `notify` need the resources' ids, not their values.
    let text = "use std.fs.{file}\nuse std.exec.{exec}\nfile a {\n  path = \"/srv/a\"\n  content = \"1\"\n}\n\
                file b {\n  path = \"/srv/b\"\n  after = [file.a]\n}\n\
                exec reload {\n  name = \"reload\"\n  apply = \"true\"\n  refresh_only = true\n}\n\
                file c {\n  path = \"/srv/c\"\n  after = file.a\n  notify = [exec.reload]\n}\n";
    let mut db = memory_db(&[("a.iade", text)], true);
    assert!(db.diagnostics().is_empty(), "{:?}", db.diagnostics());
    let graph = db.intent_graph();
    db.take_executed();
    db.set_stack_files(vec![("a.iade".into(), text.replace("content = \"1\"", "content = \"2\""))]);
    db.diagnostics();
    let log = db.take_executed();
    assert_eq!(ran(&log, "eval_resources"), vec!["eval_resources(a.iade::res:file:a)"], "{log:#?}");
    let edges = |g: &iade_intent::IntentGraph| {
        g.edges.iter().map(|e| format!("{} -> {}", e.from, e.to)).collect::<Vec<_>>()
    };
    assert_eq!(edges(&db.intent_graph()), edges(&graph));
    assert_eq!(edges(&graph), ["file.a -> file.b", "file.a -> file.c", "file.c -> exec.reload"]);
}

#[test]
fn editing_a_resource_rebuilds_its_files_facts_alone_and_no_stack_wide_graph_query() {
    let mut db = warm();
    let log = edit(&mut db, "content = \"x = 1\\n\"", "content = \"x = 2\\n\"");
    // What the graph reads of resources is remembered per file: only the edited file's is
    // built again, and it is equal (a content is none of it), so nothing above it reruns.
    assert_eq!(ran(&log, "file_facts"), vec!["file_facts(a.iade)"], "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("b.iade")), "{log:#?}");
    for stack_wide in ["stack_resources", "static_cycles", "static_index", "generator_items"] {
        assert!(!log.iter().any(|l| l == stack_wide), "{stack_wide} reran: {log:#?}");
    }
    // The graph after the edit is a fresh compile's.
    let fresh = memory_db(
        &[("a.iade", &A.replace("content = \"x = 1\\n\"", "content = \"x = 2\\n\"")), ("b.iade", B)],
        false,
    );
    assert_eq!(db.intent_graph(), fresh.intent_graph());
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

#[test]
fn edits_in_another_file_that_make_and_then_mend_a_duplicate_and_a_cycle_are_seen_at_once() {
    // What the graph reads of each file is remembered per file: an edit to one file must
    // still be seen against the other's remembered facts, references and ids.
    let mut db = warm();
    let steps = [
        // `file.unrelated` declared again in b.iade (E0301).
        B.replace("file motd {", "file unrelated {"),
        // Mended.
        B.to_string(),
        // A cycle across the files: a.iade's `logs` refers to `app`, and now `app`'s path
        // to b.iade's `motd`, which refers to `logs` (E0303).
        B.replace("path = \"/etc/motd\"", "path = \"${directory.logs.path}/motd\""),
    ];
    let a_cycle = A.replace("path = \"/srv/app\"", "path = \"${file.motd.path}.d\"");
    for (k, b) in steps.iter().enumerate() {
        let a = if k == 2 { a_cycle.as_str() } else { A };
        db.set_stack_files(vec![("a.iade".into(), a.into()), ("b.iade".into(), b.clone())]);
        let fresh = memory_db(&[("a.iade", a), ("b.iade", b)], false);
        let diags = db.diagnostics();
        assert_eq!(diags, fresh.diagnostics(), "step {k}");
        let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
        match k {
            0 => assert!(codes.contains(&"E0301"), "step 0: {codes:?}"),
            1 => assert!(codes.is_empty(), "step 1: {codes:?}"),
            _ => assert!(codes.contains(&"E0303"), "step 2: {codes:?}"),
        }
        assert_eq!(db.intent_graph(), fresh.intent_graph(), "step {k}");
    }
}

/// Everything a compile gives: diagnostics as rendered, the graph, the program, the summary.
fn compile_all(db: &Database) -> (String, String, String, String) {
    let diags = db.diagnostics();
    (
        render(db, &diags),
        format!("{:?}", db.intent_graph()),
        format!("{:?}", db.program()),
        format!("{:?}", db.summary()),
    )
}

#[test]
fn a_stack_compiled_once_releases_its_trees_after_lowering_and_compiles_as_one_that_keeps_them() {
    // A stack of several files, a module file, a provider, components, policies and
    // controls.
    let input = root().join("examples/webapp");
    let mut kept = disk_db_with(true, false);
    load_stack(&mut kept, &input);
    let mut once = disk_db_with(true, true);
    load_stack(&mut once, &input);
    once.lower();
    assert_eq!(compile_all(&once), compile_all(&kept));
    let (once_log, kept_log) = (once.take_executed(), kept.take_executed());
    // Each file is parsed once: nothing read a tree after it was released. The trees are read
    // from the parses, with no memo of their own.
    assert_eq!(ran(&once_log, "parse_file"), ran(&kept_log, "parse_file"));
    assert!(!ran(&once_log, "parse_file").is_empty());
    assert_eq!(ran(&once_log, "item_syntax"), Vec::<String>::new());
    assert!(!ran(&kept_log, "item_syntax").is_empty());

    // The trees are gone: reading one parses its file again. The database that keeps them
    // has them.
    let file = |db: &Database| db.known_file("examples/webapp/main.iade").expect("the stack's file");
    let app = |db: &Database| iade_compiler::Item::new(db, file(db), "res:directory:app");
    assert!(iade_compiler::item_tree(&once, app(&once)).is_some());
    assert_eq!(ran(&once.take_executed(), "parse_file"), ["parse_file(examples/webapp/main.iade)"]);
    assert!(iade_compiler::item_tree(&kept, app(&kept)).is_some());
    assert_eq!(ran(&kept.take_executed(), "parse_file"), Vec::<String>::new());
}

/// `head` followed by `count` files under `dir`, one in 97 of them open to others: 700 are
/// enough for a compile's parallel paths (items evaluated on threads, a policy checked in
/// chunks); 17,000 for its release of IR as it evaluates.
fn with_files(count: usize, head: &str, dir: &str) -> String {
    let mut text = head.to_string();
    for i in 0..count {
        let mode = if i % 97 == 0 { "0o644" } else { "0o640" };
        text.push_str(&format!("file f{i} {{\n  path = \"{dir}/{i}\"\n  mode = {mode}\n}}\n\n"));
    }
    text
}

#[test]
fn a_large_stack_compiled_once_parses_and_lowers_each_item_once() {
    // Enough resources for the parallel paths: independent items evaluated on threads, their
    // IR released in runs, a policy checked in chunks (failed by some, whose diagnostics
    // point at them), a program with a rule, a control and a let. Nothing reads a released
    // tree or IR.
    let text = with_files(
        17_000,
        "use std.fs.{file}\n\nlet root = \"/srv\"\n\n\
         rule private(f: file) = f.mode & 0o007 == 0 else \"${f.path} is open to others\"\n\n\
         policy modes {\n  for f in intent(file) {\n    require private(f)\n  }\n}\n\n\
         control c1 {\n  for f in observe(file, under = root) {\n    require private(f)\n  }\n}\n\n",
        "${root}",
    );
    let kept = memory_db(&[("main.iade", &text)], true);
    let mut once = memory_db_once(&[("main.iade", &text)], true);
    once.lower();
    let compiled = compile_all(&once);
    assert!(compiled.0.contains("E0401"));
    assert_eq!(compiled, compile_all(&kept));
    let (once_log, kept_log) = (once.take_executed(), kept.take_executed());
    assert_eq!(ran(&once_log, "parse_file"), ran(&kept_log, "parse_file"));
    assert_eq!(ran(&once_log, "lower_item").len(), ran(&kept_log, "lower_item").len());
    assert!(ran(&once_log, "lower_item").len() > 17_000);
}

#[test]
fn a_large_stack_with_errors_compiled_once_reports_them_as_one_that_keeps_its_trees() {
    // Errors that point at declarations' names read released trees again; a policy over
    // enough resources to be checked on several threads, in chunks, fails for some.
    let text = with_files(
        700,
        "use std.fs.{file}\n\nlet a = b\nlet b = a\n\nfile x {\n  path = \"${file.y.path}/x\"\n}\n\n\
         file y {\n  path = \"${file.x.path}/y\"\n}\n\nfile x {\n  path = \"/x\"\n}\n\n\
         file z {\n  path = 1 + \"s\"\n}\n\n\
         rule private(f: file) = f.mode & 0o007 == 0 else \"${f.path} is open to others\"\n\n\
         policy modes {\n  for f in intent(file) {\n    require private(f)\n  }\n}\n\n",
        "/srv",
    );
    let kept = memory_db(&[("main.iade", &text)], false);
    let mut once = memory_db_once(&[("main.iade", &text)], false);
    once.lower();
    let (diags, graph, _, summary) = compile_all(&kept);
    for code in ["E0303", "E0207", "E0401"] {
        assert!(diags.contains(code), "no {code}: {diags}");
    }
    let (once_diags, once_graph, _, once_summary) = compile_all(&once);
    assert_eq!((once_diags, once_graph, once_summary), (diags, graph, summary));
}
