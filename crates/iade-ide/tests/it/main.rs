//! The editor features on real stacks, without a server.

use iade_compiler::{Database, ItemCategory, Options};

const MAIN: &str = r#"use std.fs.{file, directory}

## Where the app lives.
param root: path = "/srv/app"

let port = 8080

directory app {
  path = root
}

file config {
  path = "${directory.app.path}/config.toml"
  content = "port = ${port}\n"
  mode = 0o640
}
"#;

fn db() -> Database {
    let mut db = Database::new(Options::default());
    db.set_stack_files(vec![("main.iade".into(), MAIN.into())]);
    db
}

fn at(text: &str, needle: &str) -> u32 {
    text.find(needle).expect("needle in text") as u32
}

#[test]
fn the_outline_lists_every_item_with_its_name_span() {
    let db = db();
    let symbols = iade_ide::outline(&db, "main.iade");
    let names: Vec<(&str, ItemCategory)> = symbols.iter().map(|s| (s.name.as_str(), s.category)).collect();
    assert_eq!(
        names,
        [
            ("root", ItemCategory::Param),
            ("port", ItemCategory::Let),
            ("app", ItemCategory::Resource),
            ("config", ItemCategory::Resource)
        ]
    );
    let config = &symbols[3];
    assert_eq!(&MAIN[config.name_span.range()], "config");
    assert_eq!(config.detail.as_deref(), Some("file"));
}

#[test]
fn definition_goes_to_a_resource_a_value_and_a_kind_in_the_standard_library() {
    let db = db();
    let d = iade_ide::definition(&db, "main.iade", at(MAIN, "app.path") + 1);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].path, "main.iade");
    assert_eq!(&MAIN[d[0].span.range()], "app");
    let d = iade_ide::definition(&db, "main.iade", at(MAIN, "port}") + 1);
    assert_eq!(&MAIN[d[0].span.range()], "port");
    let d = iade_ide::definition(&db, "main.iade", at(MAIN, "file config") + 1);
    assert!(d[0].path.contains("fs.iade"), "{d:?}");
}

#[test]
fn references_find_every_use_of_a_value() {
    let db = db();
    let refs = iade_ide::references(&db, "main.iade", at(MAIN, "root\n") + 1);
    assert_eq!(refs.len(), 2, "{refs:?}");
}

#[test]
fn hover_shows_kind_and_field_docs_values_and_builtins() {
    let db = db();
    let h = iade_ide::hover(&db, "main.iade", at(MAIN, "file config") + 1).expect("kind hover");
    assert!(h.markdown.contains("kind file") && h.markdown.contains("content"), "{}", h.markdown);
    let h = iade_ide::hover(&db, "main.iade", at(MAIN, "mode = 0o640") + 1).expect("field hover");
    assert!(h.markdown.contains("desired mode: mode"), "{}", h.markdown);
    let h = iade_ide::hover(&db, "main.iade", at(MAIN, "port}") + 1).expect("value hover");
    assert!(h.markdown.contains("port = 8080"), "{}", h.markdown);
}

#[test]
fn completion_offers_unset_fields_first_then_kinds_names_and_builtins() {
    let db = db();
    let c = iade_ide::completion(&db, "main.iade", at(MAIN, "mode = 0o640"));
    let labels: Vec<&str> = c.iter().map(|c| c.label.as_str()).collect();
    assert!(labels.contains(&"owner") && labels.contains(&"group"), "{labels:?}");
    assert!(!labels.contains(&"content"), "a field already set is left out: {labels:?}");
    assert!(labels.contains(&"directory") && labels.contains(&"join"), "{labels:?}");
}

#[test]
fn formatting_is_byte_identical_to_iade_fmt() {
    let messy = "directory app{path=\"/a\" mode=0o755}\n";
    assert_eq!(
        iade_ide::format(messy).as_deref(),
        Some("directory app {\n  path = \"/a\"\n  mode = 0o755\n}\n")
    );
    assert_eq!(iade_ide::format("file x {"), None);
}

#[test]
fn a_param_without_a_value_is_unknown_in_an_editor_not_an_error() {
    let text = "use std.fs.{file}\nparam token: string\nfile f {\n  path = \"/x\"\n  content = token\n}\n";
    let mut db = Database::new(Options { params_optional: true, ..Options::default() });
    db.set_stack_files(vec![("main.iade".into(), text.into())]);
    assert!(db.diagnostics().is_empty(), "{:?}", db.diagnostics());
    let h = iade_ide::hover(&db, "main.iade", text.find("token\n}").expect("use") as u32 + 1).expect("hover");
    assert!(h.markdown.contains("unknown") && h.markdown.contains("--param token"), "{}", h.markdown);
}

#[test]
fn completion_after_a_kind_lists_its_resources_and_an_enum_field_its_members() {
    let text = format!("{MAIN}\nfile other {{\n  path = file.\n  ensure = \n}}\n");
    let mut db = Database::new(Options::default());
    db.set_stack_files(vec![("main.iade".into(), text.clone())]);
    let after_dot = text.find("= file.").expect("dot") as u32 + 7;
    let labels: Vec<String> =
        iade_ide::completion(&db, "main.iade", after_dot).into_iter().map(|c| c.label).collect();
    assert!(labels.contains(&"config".to_string()), "{labels:?}");
    assert!(!labels.contains(&"app".to_string()), "a directory is not a file: {labels:?}");
    let after_eq = text.find("ensure = ").expect("ensure") as u32 + 9;
    let labels: Vec<String> =
        iade_ide::completion(&db, "main.iade", after_eq).into_iter().map(|c| c.label).collect();
    assert_eq!(labels, ["present", "absent"]);
}

const COMPONENTS: &str = r#"use std.fs.{file, directory}

let settings = { tier = "web", limits = { cpu = 2 } }

component vhost(port: int, root: path = "/srv") {
  directory dir {
    path = "${root}/${name}"
  }
  file conf {
    path = "${directory.dir.path}/site.conf"
    content = "listen ${port}\n"
  }
}

vhost api {
  port = 8080
}
"#;

fn labels_at(text: &str, offset: u32) -> Vec<String> {
    let mut db = Database::new(Options::default());
    db.set_stack_files(vec![("main.iade".into(), text.into())]);
    iade_ide::completion(&db, "main.iade", offset).into_iter().map(|c| c.label).collect()
}

#[test]
fn completion_after_an_instance_a_member_a_resource_and_a_record_lists_what_follows_the_dot() {
    for (written, expected, absent) in [
        ("vhost.", &["api"][..], "conf"),
        ("vhost.api.", &["port", "root", "dir", "conf"][..], "api"),
        ("vhost.api.conf.", &["path", "content", "mode", "sha256"][..], "port"),
        ("file.config.", &["path", "content", "owner"][..], "config"),
        ("settings.", &["tier", "limits"][..], "cpu"),
        ("settings.limits.", &["cpu"][..], "tier"),
    ] {
        let text = format!("{MAIN}\n{COMPONENTS_BODY}\nlet probe = {written}\n");
        let labels = labels_at(&text, text.len() as u32 - 1);
        for e in expected {
            assert!(labels.contains(&(*e).to_string()), "after `{written}`: {labels:?}");
        }
        assert!(!labels.contains(&absent.to_string()), "after `{written}`, not {absent}: {labels:?}");
    }
}

/// The component stack without its `use` line (MAIN has one).
const COMPONENTS_BODY: &str = r#"
let settings = { tier = "web", limits = { cpu = 2 } }

component vhost(port: int, root: path = "/srv") {
  directory dir {
    path = "${root}/${name}"
  }
  file conf {
    path = "${directory.dir.path}/site.conf"
    content = "listen ${port}\n"
  }
}

vhost api {
  port = 8080
}
"#;

fn apply(text: &str, fix: &iade_ide::QuickFix) -> String {
    let mut out = text.to_string();
    let mut edits = fix.edits.clone();
    edits.sort_by_key(|e| std::cmp::Reverse(e.span.start));
    for e in edits {
        out.replace_range(e.span.range(), &e.text);
    }
    out
}

#[test]
fn adding_the_missing_required_fields_fills_a_resource_and_an_instance_with_placeholders() {
    let mut text =
        format!("{COMPONENTS}\nfile bare {{\n  mode = 0o600\n}}\n\nvhost web {{ root = \"/www\" }}\n");
    let mut db = Database::new(Options::default());
    db.set_stack_files(vec![("main.iade".into(), text.clone())]);
    let codes =
        |db: &Database| db.diagnostics().iter().map(|d| d.code.as_str().to_string()).collect::<Vec<_>>();
    assert_eq!(codes(&db), ["E0202", "E0213"]);
    assert_eq!(iade_ide::add_missing_fields(&db, "main.iade", at(&text, "api")), None, "api sets its port");

    let fix = iade_ide::add_missing_fields(&db, "main.iade", at(&text, "bare")).expect("a fix for bare");
    assert_eq!(fix.title, "add the missing required field `path`");
    text = apply(&text, &fix);
    assert!(text.contains("file bare {\n  mode = 0o600\n    path = \"\"\n}"), "{text}");
    db.set_stack_files(vec![("main.iade".into(), text.clone())]);
    assert!(!codes(&db).contains(&"E0202".to_string()), "{:?}", codes(&db));

    let fix = iade_ide::add_missing_fields(&db, "main.iade", at(&text, "vhost web")).expect("a fix for web");
    assert_eq!(fix.title, "add the missing required field `port`");
    text = apply(&text, &fix);
    assert!(text.contains("vhost web {\n    root = \"/www\"\n    port = 0\n}"), "{text}");
    db.set_stack_files(vec![("main.iade".into(), text.clone())]);
    assert!(!codes(&db).contains(&"E0213".to_string()), "{:?}", codes(&db));
}

#[test]
fn inlay_hints_show_the_evaluated_value_of_interpolated_strings() {
    let db = db();
    let hints: Vec<(u32, String)> =
        iade_ide::inlay_hints(&db, "main.iade").into_iter().map(|h| (h.offset, h.label)).collect();
    let end_of = |needle: &str| at(MAIN, needle) + needle.len() as u32;
    assert_eq!(
        hints,
        [
            (end_of("config.toml\""), "= \"/srv/app/config.toml\"".to_string()),
            (end_of("${port}\\n\""), "= \"port = 8080\\n\"".to_string())
        ]
    );
}
