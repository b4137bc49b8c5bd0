//! Durable refresh on real files and processes: once per run after the target's own step, never
//! lost to a crash or a failed run, shown by `plan` and `history`.

use std::path::Path;

use super::engine::{code, run, stack, text};

fn source(dir: &Path) -> String {
    format!(
        r#"use std.fs.{{file, directory}}
use std.exec.{{exec}}

param gen: int = 0

directory out {{ path = "{d}/out" }}

component site(port: int) {{
  file conf {{
    path    = "${{directory.out.path}}/${{name}}.conf"
    content = "listen ${{port}}; generation ${{gen}}\n"
  }}
}}

site a {{ port = 1, notify = [exec.reload] }}
site b {{ port = 2, notify = [exec.reload] }}

file extra {{
  path    = "${{directory.out.path}}/extra"
  content = "${{gen}}\n"
  notify  = [exec.reload]
}}

exec reload {{
  name         = "reload"
  check        = "true"
  apply        = "echo apply >> {d}/applied"
  refresh      = "test ! -f {d}/broken && echo refresh >> {d}/refreshed"
  refresh_only = true
}}
"#,
        d = dir.display()
    )
}

fn refreshes(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("refreshed")).map_or(0, |t| t.lines().count())
}

#[test]
fn changes_refresh_their_target_once_per_run_and_nothing_else_runs_it() {
    let dir = stack("refresh-once", "");
    std::fs::write(dir.join("main.iade"), source(&dir)).expect("source");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(text(&o).contains("exec.reload  refresh"), "plan shows the refresh:\n{}", text(&o));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(refreshes(&dir), 1, "three changes, one refresh");
    assert!(!dir.join("applied").exists(), "a refresh-only exec never runs its apply on its own");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(refreshes(&dir), 1, "no change, no refresh");
    let o = run(&dir, &["converge", "--param", "gen=1"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(refreshes(&dir), 2);
    let o = run(&dir, &["history", "--format", "json"], &[]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"refresh\""), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_refresh_stays_pending_and_runs_when_nothing_differs_any_more() {
    let dir = stack("refresh-failed", "");
    std::fs::write(dir.join("main.iade"), source(&dir)).expect("source");
    std::fs::write(dir.join("broken"), "").expect("break the refresh");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert_eq!(refreshes(&dir), 0);
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "a pending refresh is pending work:\n{}", text(&o));
    assert!(text(&o).contains("pending from an earlier run"), "{}", text(&o));
    std::fs::remove_file(dir.join("broken")).expect("repair");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(refreshes(&dir), 1, "the owed refresh ran though nothing differs");
    assert_eq!(code(&run(&dir, &["plan"], &[])), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_crash_between_a_change_and_its_refresh_never_loses_or_doubles_it() {
    // Wave 0 creates the directory, wave 1 changes the files (the 2nd pass of each point);
    // the refresh is the 3rd. A crash before the refresh's outcome is recorded runs it once
    // more only if the refresh itself was interrupted after it ran (after-effect:3).
    let cases: [(&str, usize); 9] = [
        ("after-intent:2", 1),
        ("after-effect:2", 1),
        ("after-outcome:2", 1),
        ("before-intent:3", 1),
        ("after-intent:3", 1),
        ("after-effect:3", 2),
        ("after-outcome:3", 1),
        ("after-effect:1", 1),
        ("before-intent:2", 1),
    ];
    for (point, want) in cases {
        let dir = stack(&format!("refresh-crash-{}", point.replace(':', "-")), "");
        std::fs::write(dir.join("main.iade"), source(&dir)).expect("source");
        let o = run(&dir, &["converge"], &[("IADE_FAILPOINT", point)]);
        assert_eq!(code(&o), None, "{point}: expected an abrupt stop:\n{}", text(&o));
        let o = run(&dir, &["plan"], &[]);
        let owed = if point == "after-outcome:3" { 0 } else { 2 };
        assert_eq!(code(&o), Some(owed), "{point}: what is still owed:\n{}", text(&o));
        let o = run(&dir, &["converge"], &[]);
        assert_eq!(code(&o), Some(0), "{point}: {}", text(&o));
        assert_eq!(refreshes(&dir), want, "{point}: refreshes after recovery");
        let o = run(&dir, &["converge"], &[]);
        assert_eq!(code(&o), Some(0), "{point}: {}", text(&o));
        assert_eq!(refreshes(&dir), want, "{point}: a later run refreshes nothing more");
        assert_eq!(code(&run(&dir, &["plan"], &[])), Some(0), "{point}");
        super::engine::assert_journal_consistent(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn the_nginx_example_converges_reloads_once_and_then_changes_nothing() {
    let src = super::root().join("examples/nginx");
    let dir = std::env::temp_dir().join(format!("iade-nginx-example-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for f in ["main.iade", "vhost.conf.tmpl"] {
        std::fs::copy(src.join(f), dir.join(f)).expect("copy the example");
    }
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let log = std::fs::read_to_string(dir.join("out/reloads.log")).expect("reloaded");
    assert_eq!(log.lines().count(), 1, "two sites, one reload");
    let conf = std::fs::read_to_string(dir.join("out/nginx/sites-available/shop.conf")).expect("rendered");
    assert!(conf.contains("server_name shop www.shop.example;"), "{conf}");
    assert!(conf.contains("try_files $uri $uri/ =404;"), "{conf}");
    let link = std::fs::read_link(dir.join("out/nginx/sites-enabled/blog.conf")).expect("enabled");
    assert_eq!(link, std::path::Path::new("../sites-available/blog.conf"));
    std::fs::write(dir.join("out/nginx/sites-enabled/stray.conf"), "x").expect("stray");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(!dir.join("out/nginx/sites-enabled/stray.conf").exists(), "purged");
    assert_eq!(std::fs::read_to_string(dir.join("out/reloads.log")).expect("log").lines().count(), 1);
    assert_eq!(code(&run(&dir, &["plan"], &[])), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
