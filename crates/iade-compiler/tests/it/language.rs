//! The language of real stacks: components, templates, comprehensions, and sources read the
//! same whatever their line endings.

use iade_intent::{IntentGraph, Value};

use crate::support::{memory_db, memory_db_on, memory_db_once, render};

fn graph_json(g: &IntentGraph) -> serde_json::Value {
    let mut v = serde_json::to_value(g).expect("graph serializes");
    // Byte offsets differ between line endings; lines and columns do not.
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("start");
                m.remove("end");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

fn content(g: &IntentGraph, id: &str) -> String {
    text_attr(g, id, "content")
}

fn text_attr(g: &IntentGraph, id: &str, field: &str) -> String {
    match g.node(id).and_then(|n| n.attrs.get(field)).map(|a| &a.value) {
        Some(Value::Str(s)) => s.to_string(),
        other => panic!("{id} has no {field}: {other:?}"),
    }
}

const STACK: &str = r#"use std.fs.{file}

## A site.
component site(port: int, hosts: list(string) = []) {
  file conf {
    path    = "/etc/sites/${name}.conf"
    content = """
      listen ${port};
      hosts ${join(hosts, " ")};
      """
  }
}

site api { port = 8080, hosts = ["a", "b"] }
file summary {
  path = "/etc/sites/summary"
  content = "${site.api.conf.path}\n"
}
"#;

#[test]
fn a_crlf_source_gives_the_same_graph_as_its_lf_twin() {
    let crlf = STACK.replace('\n', "\r\n");
    let lf_db = memory_db(&[("main.iade", STACK)], false);
    let crlf_db = memory_db(&[("main.iade", &crlf)], false);
    assert!(lf_db.diagnostics().is_empty(), "{:?}", lf_db.diagnostics());
    assert!(crlf_db.diagnostics().is_empty(), "{:?}", crlf_db.diagnostics());
    let (a, b) = (lf_db.intent_graph(), crlf_db.intent_graph());
    assert_eq!(content(&b, "site.api/file.conf"), "listen 8080;\nhosts a b;");
    assert_eq!(graph_json(&a), graph_json(&b));
}

#[test]
fn an_included_file_keeps_its_crlf_line_endings() {
    let db = memory_db(
        &[
            (
                "main.iade",
                "use std.fs.{file}\r\nfile f {\r\n  path = \"/x\"\r\n  content = include(\"dos.txt\")\r\n}\r\n",
            ),
            ("dos.txt", "one\r\ntwo\r\n"),
        ],
        false,
    );
    assert!(db.diagnostics().is_empty(), "{:?}", db.diagnostics());
    assert_eq!(content(&db.intent_graph(), "file.f"), "one\r\ntwo\r\n");
}

#[test]
fn members_are_reached_through_their_instance_by_fixed_and_generated_names() {
    let db = memory_db(
        &[(
            "main.iade",
            r#"use std.fs.{file}
component site(port: int) {
  file conf { path = "/etc/sites/${name}.conf"  content = "${port}" }
}
site api { port = 1 }
for n in ["x", "y"] { site "${n}" { port = 2 } }
file summary {
  path = "/etc/summary"
  content = "${site.api.conf.path} ${site.api.port} ${site.api.name} ${site["x"].conf.path} ${site["y"].port}"
}
"#,
        )],
        false,
    );
    assert!(db.diagnostics().is_empty(), "{:?}", db.diagnostics());
    let g = db.intent_graph();
    assert_eq!(content(&g, "file.summary"), "/etc/sites/api.conf 1 api /etc/sites/x.conf 2");
    let deps: Vec<&str> =
        g.edges.iter().filter(|e| e.to == "file.summary").map(|e| e.from.as_str()).collect();
    assert_eq!(deps, ["site.api/file.conf", "site.x/file.conf"], "members read are dependencies");
    let ids: Vec<&str> = g.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["site.api", "site.x", "site.y"]);
}

#[test]
fn comprehensions_merge_and_get_compute_values() {
    let db = memory_db(
        &[(
            "main.iade",
            r#"use std.fs.{file}
let base = { user = "www", workers = 4 }
let tuned = base + { workers = 8 }
let listens = ["listen ${p};" for p in [80, 443, 8080] if p != 8080]
let pairs = ["${k}=${v}" for k, v in { a = 1, b = 2 }]
file f {
  path = "/etc/f"
  content = "${join(listens, " ")} ${join(pairs, ",")} ${tuned.workers} ${tuned.user} ${get(tuned, "missing", "dflt")}"
}
"#,
        )],
        false,
    );
    assert!(db.diagnostics().is_empty(), "{:?}", db.diagnostics());
    assert_eq!(content(&db.intent_graph(), "file.f"), "listen 80; listen 443; a=1,b=2 8 www dflt");
}

#[test]
fn editing_a_template_recomputes_what_uses_it() {
    let mut db = memory_db(
        &[
            (
                "main.iade",
                "use std.fs.{file}\nfile f {\n  path = \"/x\"\n  content = template(\"t.tmpl\", { port = 1 })\n}\n",
            ),
            ("t.tmpl", "port ${port}\n"),
        ],
        false,
    );
    assert_eq!(content(&db.intent_graph(), "file.f"), "port 1\n");
    db.set_file("t.tmpl".into(), "listen ${port + 1}; $${HOME}\n".into());
    assert_eq!(content(&db.intent_graph(), "file.f"), "listen 2; ${HOME}\n");
    db.set_file("t.tmpl".into(), "listen ${prot}\n".into());
    let d = db.diagnostics();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].code.as_str(), "E0217");
    assert!(d[0].help.as_deref().unwrap_or_default().contains("did you mean `port`"), "{:?}", d[0].help);
}

#[test]
fn a_name_misspelt_in_every_resource_gets_the_same_suggestion_in_each() {
    // A renamed `let` still used by every resource, among many other names: each use is
    // reported, and each suggests the new name, ahead of a local or a resource one edit away.
    let mut text = String::from("use std.fs.{file}\nlet owners = \"app\"\n");
    for i in 0..2000 {
        text.push_str(&format!("file f{i} {{\n  path = \"/srv/{i}\"\n  owner = owner\n}}\n"));
    }
    text.push_str("let xs = [ownerx for ownera in [1]]\nlet zs = [ownerx for ownerz in [1]]\n");
    text.push_str("let y = mystery(1)\n");
    text.push_str("rule mysterz(x: int) = x > 0 else \"no\"\n");
    let db = memory_db_once(&[("main.iade", &text)], false);
    let d = db.diagnostics();
    let unknown: Vec<_> = d.iter().filter(|d| d.code.as_str() == "E0101").collect();
    assert_eq!(unknown.len(), 2002, "{d:?}");
    for u in &unknown[..2000] {
        assert_eq!(u.help.as_deref(), Some("did you mean `owners`?"), "{u:?}");
    }
    // `ownerx` is one edit from the locals `ownera` and `ownerz` and from the declared `owners`:
    // the least name of equal distance wins, wherever it is declared.
    assert_eq!(unknown[2000].help.as_deref(), Some("did you mean `ownera`?"), "{:?}", unknown[2000]);
    assert_eq!(unknown[2001].help.as_deref(), Some("did you mean `owners`?"), "{:?}", unknown[2001]);
    let call = d.iter().find(|d| d.code.as_str() == "E0110").expect("an unknown function");
    assert_eq!(call.help.as_deref(), Some("did you mean `mysterz`?"), "{call:?}");
}

#[test]
fn a_cycle_of_after_through_thousands_of_resources_is_reported_once_with_every_step() {
    let n = 3000;
    let mut text = String::from("use std.fs.{file}\n");
    for i in 0..n {
        let next = (i + 1) % n;
        text.push_str(&format!("file s{i} {{\n  path = \"/srv/{i}\"\n  after = [file.s{next}]\n}}\n"));
    }
    let db = memory_db_once(&[("main.iade", &text)], false);
    let d = db.diagnostics();
    assert_eq!(d.len(), 1, "{:?}", d.iter().map(|d| &d.message).collect::<Vec<_>>());
    assert_eq!(d[0].code.as_str(), "E0303");
    assert_eq!(d[0].labels.len(), n);
}

#[test]
fn a_cycle_of_values_through_thousands_of_resources_is_reported_once_in_either_compile() {
    let n = 3000;
    let mut text = String::from("use std.fs.{file}\n");
    for i in 0..n {
        let next = (i + 1) % n;
        text.push_str(&format!("file s{i} {{\n  path = \"/srv/{i}\"\n  owner = file.s{next}.owner\n}}\n"));
    }
    for db in [memory_db_once(&[("main.iade", &text)], false), memory_db(&[("main.iade", &text)], false)] {
        let d = db.diagnostics();
        assert_eq!(d.len(), 1, "{:?}", d.iter().map(|d| &d.message).collect::<Vec<_>>());
        assert_eq!(d[0].code.as_str(), "E0303");
        assert_eq!(d[0].labels.len(), n);
    }
}

#[test]
fn a_resource_on_a_cycle_still_reads_the_values_of_resources_off_it() {
    // a and b refer to each other; c and d too; a also reads c, which is on another cycle.
    let text = "use std.fs.{file}\n\
        file a {\n  path = \"${file.c.path}/a\"\n  owner = file.b.owner\n}\n\
        file b {\n  path = \"/srv/b\"\n  owner = file.a.owner\n}\n\
        file c {\n  path = \"/srv/c\"\n  owner = file.d.owner\n}\n\
        file d {\n  path = \"/srv/d\"\n  owner = file.c.owner\n}\n";
    let db = memory_db(&[("main.iade", text)], false);
    let d = db.diagnostics();
    let codes: Vec<&str> = d.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["E0303", "E0303"], "{d:?}");
    assert_eq!(text_attr(&db.intent_graph(), "file.a", "path"), "/srv/c/a");
}

#[test]
fn a_notified_command_may_read_the_resource_that_notifies_it() {
    // The reload runs after the file changes, and names its path: no cycle.
    let text = "use std.fs.{file}\nuse std.exec.{exec}\n\
        file conf {\n  path = \"/srv/app.conf\"\n  content = \"x\"\n  notify = [exec.reload]\n}\n\
        exec reload {\n  name = \"reload\"\n  apply = \"reload ${file.conf.path}\"\n  refresh_only = true\n}\n";
    let db = memory_db(&[("main.iade", text)], false);
    let d = db.diagnostics();
    assert!(d.is_empty(), "{}", render(&db, &d));
    assert_eq!(text_attr(&db.intent_graph(), "exec.reload", "apply"), "reload /srv/app.conf");
}

#[test]
fn a_notify_that_closes_a_cycle_is_reported_where_it_is_written() {
    // b runs after a (its `after`), and a after b (b notifies it): a cycle.
    let text = "use std.fs.{file}\n\
        file a {\n  path = \"/srv/a\"\n}\n\
        file b {\n  path = \"/srv/b\"\n  after = [file.a]\n  notify = [file.a]\n}\n";
    let db = memory_db(&[("main.iade", text)], false);
    let d: Vec<_> = db.diagnostics().into_iter().filter(|d| d.code.as_str() == "E0303").collect();
    assert_eq!(d.len(), 1, "{d:?}");
    let labels: Vec<&str> = d[0].labels.iter().map(|l| l.message.as_str()).collect();
    assert!(labels.contains(&"file.b notifies file.a"), "{labels:?}");
    assert!(labels.contains(&"file.b refers to file.a"), "{labels:?}");
}

#[test]
fn what_reads_a_value_on_a_cycle_reports_only_the_cycle() {
    // A policy over the cycle's resources and an `if` on one of its values add nothing: the
    // cycle is the error.
    let text = "use std.fs.{file}\n\
        file a {\n  path = \"/srv/a\"\n  owner = file.b.owner\n  if file.b.owner == \"x\" {\n    mode = 0o600\n  }\n}\n\
        file b {\n  path = \"/srv/b\"\n  owner = file.a.owner\n}\n\
        rule owned(f: file) = f.owner != \"root\" else \"root\"\n\
        policy p {\n  for f in intent(file) {\n    require owned(f)\n  }\n}\n";
    for db in [memory_db(&[("main.iade", text)], false), memory_db_once(&[("main.iade", text)], false)] {
        let d = db.diagnostics();
        let codes: Vec<&str> = d.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["E0303"], "{}", render(&db, &d));
    }
}

#[test]
fn resources_of_an_unknown_kind_each_list_the_kinds_in_scope() {
    // Every resource of a stack that forgot its `use` is reported with the kinds it could
    // name, imported and declared, in order; found without sorting the stack's names each time.
    let mut text = String::from("use std.fs.{directory}\nkind widget {\n  identity name: string\n}\n");
    for i in 0..2000 {
        text.push_str(&format!("file f{i} {{\n  path = \"/srv/{i}\"\n}}\n"));
    }
    let db = memory_db_once(&[("main.iade", &text)], false);
    let d = db.diagnostics();
    let unknown: Vec<_> = d.iter().filter(|d| d.code.as_str() == "E0102").collect();
    assert_eq!(unknown.len(), 2000, "{d:?}");
    for u in unknown {
        assert_eq!(u.help.as_deref(), Some("kinds in scope: directory, widget; import others with `use`"));
    }
}

#[test]
fn a_name_a_large_module_does_not_have_lists_its_first_names_and_counts_the_rest() {
    let mut module = String::new();
    for i in 0..40 {
        module.push_str(&format!("let v{i:02} = {i}\n"));
    }
    let db = memory_db(&[("main.iade", "use \"./m.iade\".{v99}\n"), ("m.iade", &module)], false);
    let d = db.diagnostics();
    let e = d.iter().find(|d| d.code.as_str() == "E0107").expect("an unknown imported name");
    let first: Vec<String> = (0..30).map(|i| format!("v{i:02}")).collect();
    assert_eq!(e.notes, [format!("it declares: {}, and 10 more", first.join(", "))]);
}

#[test]
fn a_decimal_mode_carries_a_fix_that_writes_it_in_octal() {
    let db =
        memory_db(&[("main.iade", "use std.fs.{file}\nfile f {\n  path = \"/x\"\n  mode = 644\n}\n")], false);
    let d = db.diagnostics();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].code.as_str(), "E0216");
    assert_eq!(d[0].fixes.len(), 1);
    assert_eq!(d[0].fixes[0].replacement, "0o644");
    let text = "use std.fs.{file}\nfile f {\n  path = \"/x\"\n  mode = 644\n}\n";
    assert_eq!(&text[d[0].fixes[0].span.range()], "644");
}

#[test]
fn notifying_an_instance_notifies_its_members_that_can_be_refreshed() {
    let db = memory_db(
        &[(
            "main.iade",
            r#"use std.fs.{file}
use std.exec.{exec}
component service() {
  file unit { path = "/etc/${name}.service" }
  exec restart { name = "restart-${name}"  apply = "true"  refresh_only = true }
}
service web {}
file conf { path = "/etc/web.conf"  notify = [service.web] }
"#,
        )],
        false,
    );
    assert!(db.diagnostics().is_empty(), "{:?}", db.diagnostics());
    let g = db.intent_graph();
    assert_eq!(
        g.node("file.conf").map(|n| n.notify.clone()),
        Some(vec!["service.web/exec.restart".to_string()])
    );
    assert!(g.edges.iter().any(|e| e.from == "file.conf"
        && e.to == "service.web/exec.restart"
        && e.reason == iade_intent::EdgeReason::Notify));
}

#[test]
fn a_field_that_refers_to_a_user_or_group_orders_its_resource_after_the_declared_one() {
    let db = memory_db(
        &[(
            "main.iade",
            r#"use std.fs.{file, directory}
use std.users.{user, group}

file key {
  path  = "/home/deploy/.ssh/authorized_keys"
  owner = "deploy"
  group = "root"
}
directory www {
  path  = "/srv/www"
  group = "web"
}
user deploy {
  name   = "deploy"
  groups = ["web", "adm"]
}
group web { name = "web" }
"#,
        )],
        false,
    );
    assert!(db.diagnostics().is_empty(), "{:?}", db.diagnostics());
    let g = db.intent_graph();
    let mut edges: Vec<(&str, &str)> = g.edges.iter().map(|e| (e.from.as_str(), e.to.as_str())).collect();
    edges.sort_unstable();
    // `root` and `adm` are not declared: nothing to order after.
    assert_eq!(
        edges,
        [("group.web", "directory.www"), ("group.web", "user.deploy"), ("user.deploy", "file.key")]
    );
}

#[test]
fn a_large_stack_lowered_on_several_threads_reports_every_error_once_in_order() {
    // Enough items for the stack to be lowered on several threads; every 50th resource has a
    // misspelt field (a lowering error) and refers to the one before it.
    let mut text = String::from("use std.fs.{file}\n\nlet root = \"/srv\"\n\n");
    let mut expected_lines = Vec::new();
    for i in 0..400 {
        if i % 50 == 0 {
            let line = text.matches('\n').count() + 3;
            expected_lines.push(line);
            let before = if i == 0 { "root".to_string() } else { format!("file.f{}.path", i - 1) };
            text.push_str(&format!("file f{i} {{\n  path = \"${{{before}}}/{i}\"\n  mod = 0o644\n}}\n\n"));
        } else {
            text.push_str(&format!("file f{i} {{\n  path = \"${{root}}/{i}\"\n  mode = 0o644\n}}\n\n"));
        }
    }
    let db = memory_db(&[("main.iade", &text)], false);
    let diags = db.diagnostics();
    let lines: Vec<usize> = diags
        .iter()
        .map(|d| {
            assert_eq!(d.code.as_str(), "E0103", "{d:?}");
            let at = d.primary_label().expect("a primary label").span.start as usize;
            text[..at].matches('\n').count() + 1
        })
        .collect();
    assert_eq!(lines, expected_lines);
    let graph = db.intent_graph();
    assert_eq!(graph.nodes.len(), 400);
    assert_eq!(text_attr(&graph, "file.f50", "path"), "/srv/49/50");
}

#[test]
fn a_large_stack_evaluated_on_several_threads_compiles_as_on_one() {
    // Independent resources (evaluated on several threads first), resources that refer to
    // others or to a `let` that does, a cycle, evaluation errors on both sides, and a policy
    // checked slice by slice.
    let mut text = String::from(
        "use std.fs.{file}\n\nlet root = \"/srv\"\nlet base = \"${root}/base\"\nlet linked = file.f7.path\n\n\
         rule inside(f: file) = starts_with(f.path, root) else \"${f.path} is outside\"\n\n\
         policy layout {\n  for f in intent(file) {\n    require inside(f)\n  }\n}\n\n\
         file loop_a {\n  path = \"${file.loop_b.path}/a\"\n}\n\nfile loop_b {\n  path = \"${file.loop_a.path}/b\"\n}\n\n",
    );
    for i in 0..600 {
        let path = match i % 7 {
            0 => format!("${{file.f{}.path}}/{i}", if i == 0 { 1 } else { i - 1 }),
            1 => format!("${{linked}}/{i}"),
            2 => format!("/outside/{i}"),
            3 => format!("${{base}}/{i}/${{1 / (({i} % 3) - 1)}}"),
            _ => format!("${{root}}/{i}"),
        };
        text.push_str(&format!("file f{i} {{\n  path = \"{path}\"\n  mode = 0o644\n}}\n\n"));
    }
    let on_two = memory_db_on(&[("main.iade", &text)], false, 2);
    let on_one = memory_db_on(&[("main.iade", &text)], false, 1);
    let (two, one) = (on_two.diagnostics(), on_one.diagnostics());
    for code in ["E0303", "E0207"] {
        assert!(one.iter().any(|d| d.code.as_str() == code), "no {code}: {}", render(&on_one, &one));
    }
    assert!(one.iter().any(|d| d.message.contains("policy `layout`")), "{}", render(&on_one, &one));
    assert_eq!(render(&on_two, &two), render(&on_one, &one));
    assert_eq!(on_two.intent_graph(), on_one.intent_graph());
}

#[test]
fn references_thousands_deep_compile_whatever_order_they_are_declared_in() {
    // Each resource and each `let` refers to the next one declared, so evaluating the first
    // evaluates all the others inside it.
    let n = 3000;
    let mut text = String::from("use std.fs.{file}\n\n");
    for i in (0..n).rev() {
        let path = if i == 0 { "${v0}".to_string() } else { format!("${{file.f{}.path}}/x", i - 1) };
        text.push_str(&format!("file f{i} {{\n  path = \"{path}\"\n  mode = 0o644\n}}\n\n"));
    }
    for i in 0..n {
        let value = if i + 1 == n { "\"/srv\"".to_string() } else { format!("v{}", i + 1) };
        text.push_str(&format!("let v{i} = {value}\n"));
    }
    let db = memory_db_on(&[("main.iade", &text)], false, 2);
    let diags = db.diagnostics();
    assert!(diags.is_empty(), "{}", render(&db, &diags));
    let graph = db.intent_graph();
    let deepest = graph.nodes.iter().find(|r| r.id == format!("file.f{}", n - 1)).expect("the last resource");
    let path = deepest.attrs.get("path").map(|a| a.value.to_string()).unwrap_or_default();
    assert_eq!(path.matches("/x").count(), n - 1, "{path:.80}");
}
