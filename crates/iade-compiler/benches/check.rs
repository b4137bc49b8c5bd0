//! Compiler benchmark: cold `check` of generated stacks (1k, 10k and 100k resources in one
//! file, with references, interpolation and a policy over every resource; compiled once, its
//! syntax trees released after lowering, as `iade check` does), and the re-check
//! of a 10k-resource stack of 100 files and of a 100k-resource stack of 1,000 files after a
//! one-line edit in one of them; a stack of 15,000 errors (unknown names, duplicates,
//! syntax errors), compiled and rendered as a terminal shows them; and a 100k-resource stack
//! whose every resource still uses a renamed `let` (100,000 unknown names, each with its "did
//! you mean"), 100,000 resources in one dependency cycle, and 100,000 resources in as many
//! files, compiled.
//!
//! Run with `cargo bench -p iade-compiler --bench check`. Each size runs in a child process
//! of its own so its peak memory (VmHWM) is its own. Targets: 10k cold ≤ 110 ms and ≤ 60 MB,
//! 100k ≤ 1.1 s, re-check after a one-line edit ≤ 20 ms at 10k and ≤ 40 ms at 100k.

use std::process::Command;
use std::time::Instant;

use iade_compiler::{Database, Options};

/// The allocator the `iade` binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn resources(start: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 120);
    for i in start..start + n {
        if i % 10 == 0 {
            s.push_str(&format!("directory d{i} {{\n  path = \"/srv/bench/d{i}\"\n  mode = 0o755\n}}\n\n"));
        } else {
            let d = i - i % 10;
            s.push_str(&format!(
                "file f{i} {{\n  path = \"${{d{d}.path}}/f{i}.txt\"\n  content = \"n = {i}\\n\"\n  mode = 0o644\n}}\n\n"
            ));
        }
    }
    s
}

const HEADER: &str = "use std.fs.{file, directory}\n\n";

const POLICY: &str = "rule not_world_writable(f: file) =\n  f.mode & 0o002 == 0 else \"${f.path} is world-writable\"\n\npolicy safe {\n  for f in intent(file) {\n    require not_world_writable(f)\n  }\n}\n";

fn db() -> Database {
    // As the driver sets it: the machine's parallelism, at most eight.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8);
    Database::new(Options { threads, ..Options::default() })
}

/// A database for one compile of `text`, as `iade check` makes it: lowered at once, its syntax
/// trees released (`Options::once`).
fn db_once(name: &str, text: &str) -> Database {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8);
    let mut db = Database::new(Options { threads, once: true, ..Options::default() });
    db.set_stack_files(vec![(name.into(), text.into())]);
    db.lower();
    db
}

fn peak_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn check(db: &Database) -> usize {
    let diags = db.diagnostics();
    assert!(diags.is_empty(), "generated stack has diagnostics: {:?}", diags.first());
    db.summary().resources
}

fn cold(n: usize) {
    let text = format!("{HEADER}{}{POLICY}", resources(0, n));
    let before = peak_kb();
    let t = Instant::now();
    let db = db_once("main.iade", &text);
    let count = check(&db);
    let elapsed = t.elapsed();
    assert_eq!(count, n);
    println!(
        "cold check, {n:>6} resources in 1 file ({:>5} KB): {:>8.1} ms, peak memory {:>6.1} MB (process baseline {:.1} MB)",
        text.len() / 1024,
        elapsed.as_secs_f64() * 1000.0,
        peak_kb() as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

/// The same 10k resources written as 1,000 instances of a component with one directory and
/// nine files: the cost of components against the flat stack of `cold(10000)`.
fn components() {
    let mut text = String::from(HEADER);
    text.push_str("component group(base: path) {\n  directory d {\n    path = \"${base}/${name}\"\n    mode = 0o755\n  }\n");
    for k in 1..10 {
        text.push_str(&format!(
            "  file f{k} {{\n    path = \"${{d.path}}/f{k}.txt\"\n    content = \"n = ${{name}}-{k}\\n\"\n    mode = 0o644\n  }}\n"
        ));
    }
    text.push_str("}\n\n");
    for i in 0..1000 {
        text.push_str(&format!("group g{i} {{\n  base = \"/srv/bench\"\n}}\n\n"));
    }
    text.push_str(POLICY);
    let t = Instant::now();
    let db = db_once("main.iade", &text);
    let count = check(&db);
    let elapsed = t.elapsed();
    assert_eq!(count, 10_000);
    println!(
        "cold check, {count:>6} resources as 1000 component instances ({:>5} KB): {:>8.1} ms, peak memory {:>6.1} MB",
        text.len() / 1024,
        elapsed.as_secs_f64() * 1000.0,
        peak_kb() as f64 / 1024.0,
    );
}

/// 5,000 each of unknown names, duplicate resources and syntax errors (each file parses on
/// its own, so the syntax errors do not hide the rest): compiled, then every diagnostic
/// rendered as text. What a user with errors in bulk waits for; it must grow linearly.
fn errors() {
    let n = 5000;
    let mut unknown = String::from(HEADER);
    let mut duplicates = String::from(HEADER);
    let mut syntax = String::from(HEADER);
    for i in 0..n {
        unknown
            .push_str(&format!("file u{i} {{\n  path = \"/srv/${{undefined_{i}}}\"\n  mode = 0o644\n}}\n\n"));
        duplicates.push_str(&format!("file dup {{\n  path = \"/srv/dup/{i}\"\n  mode = 0o644\n}}\n\n"));
        syntax.push_str(&format!("file s{i} {{\n  path = \"/srv/s/{i}\"\n  mode = = 1\n}}\n\n"));
    }
    let mut shown = 0usize;
    let t = Instant::now();
    for (name, text) in [("unknown", unknown), ("duplicates", duplicates), ("syntax", syntax)] {
        let db = db_once(&format!("{name}.iade"), &text);
        let diags = db.diagnostics();
        assert!(diags.len() >= n - 1, "{name}: only {} diagnostics", diags.len());
        let sources = db.sources();
        for d in &diags {
            shown +=
                iade_diagnostics::render_text(&sources, d, iade_diagnostics::RenderOptions::default()).len();
        }
    }
    println!(
        "15,000 errors in 3 files, compiled and rendered ({} KB of text): {:.1} ms",
        shown / 1024,
        t.elapsed().as_secs_f64() * 1000.0
    );
}

/// A `let` renamed while 100,000 resources still use its old name: every use is an unknown
/// name with a suggestion, out of a scope of 100,000 names. It must grow linearly: each
/// unknown name once compared every name of the scope, and this took 50 s.
fn renamed() {
    let n = 100_000;
    let mut text = String::from(HEADER);
    text.push_str("let owners = \"app\"\n\n");
    for i in 0..n {
        text.push_str(&format!("file f{i} {{\n  path = \"/srv/bench/f{i}\"\n  owner = owner\n}}\n\n"));
    }
    let t = Instant::now();
    let db = db_once("main.iade", &text);
    let diags = db.diagnostics();
    let elapsed = t.elapsed();
    let suggested = diags.iter().filter(|d| d.help.as_deref() == Some("did you mean `owners`?")).count();
    assert_eq!(suggested, n);
    println!(
        "one renamed `let` used by {n} resources: {n} unknown names with their suggestion, compiled in {:.1} ms",
        elapsed.as_secs_f64() * 1000.0
    );
}

/// 100,000 resources in one cycle, once through their values and once through `after`: one
/// E0303 each. Evaluated, a cycle of references was a cycle of queries, quadratic in its
/// length (10,000 took 3–5 s and 1.2 GB; 100,000 did not finish).
fn cycles() {
    let n = 100_000;
    for (what, attr) in [("values", "owner = file.s{next}.owner"), ("`after`", "after = [file.s{next}]")] {
        let mut text = String::from(HEADER);
        for i in 0..n {
            let attr = attr.replace("{next}", &((i + 1) % n).to_string());
            text.push_str(&format!("file s{i} {{\n  path = \"/srv/bench/s{i}\"\n  {attr}\n}}\n\n"));
        }
        let t = Instant::now();
        let db = db_once("main.iade", &text);
        let diags = db.diagnostics();
        let elapsed = t.elapsed();
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].labels.len(), n);
        println!(
            "{n} resources in one cycle through {what}: reported once in {:.1} ms",
            elapsed.as_secs_f64() * 1000.0
        );
    }
    println!("  peak memory {:.1} MB", peak_kb() as f64 / 1024.0);
}

/// 100,000 resources in 100,000 files: what a stack split into a file per host or user looks
/// like. Each item asked whether its file is the stack's by scanning every file, and a check
/// took 11 s.
fn many_files() {
    let n = 100_000;
    let files: Vec<(String, String)> =
        (0..n).map(|k| (format!("f{k:06}.iade"), format!("{HEADER}{}", resources(k, 1)))).collect();
    let mut db = db();
    db.set_stack_files(files);
    let t = Instant::now();
    let count = check(&db);
    let elapsed = t.elapsed();
    assert_eq!(count, n);
    println!(
        "cold check, {n} resources in {n} files: {:.1} ms, peak memory {:.1} MB",
        elapsed.as_secs_f64() * 1000.0,
        peak_kb() as f64 / 1024.0
    );
}

/// `files` files of 100 resources each: the cold check, then a one-line edit re-checked.
fn recheck(files: usize) {
    let total = files * 100;
    let files: Vec<(String, String)> = (0..files)
        .map(|k| {
            let policy = if k == 0 { POLICY } else { "" };
            (format!("f{k:03}.iade"), format!("{HEADER}{}{policy}", resources(k * 100, 100)))
        })
        .collect();
    let mut db = db();
    db.set_stack_files(files.clone());
    let t = Instant::now();
    assert_eq!(check(&db), total);
    let cold = t.elapsed();
    let mut times = Vec::new();
    for round in 0..10 {
        let mut edited = files.clone();
        // One line of one file: a file's content changes.
        edited[42].1 =
            edited[42].1.replacen("content = \"n = 4201\\n\"", &format!("content = \"n = {round}\\n\""), 1);
        assert_ne!(edited[42].1, files[42].1);
        db.set_stack_files(edited);
        let t = Instant::now();
        check(&db);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    // The floor: an edit that changes no meaning (a comment) still revalidates every query.
    let mut floor = Vec::new();
    for round in 0..5 {
        let mut edited = files.clone();
        edited[42].1 = format!("# edit {round}\n{}", edited[42].1);
        db.set_stack_files(edited);
        let t = Instant::now();
        check(&db);
        floor.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    floor.sort_by(f64::total_cmp);
    println!("  (re-check after a comment-only edit: median {:.2} ms)", floor[floor.len() / 2]);
    println!(
        "{total} resources in {} files: cold {:.1} ms; re-check after a one-line edit: median {:.2} ms, max {:.2} ms; peak memory {:.1} MB",
        files.len(),
        cold.as_secs_f64() * 1000.0,
        times[times.len() / 2],
        times[times.len() - 1],
        peak_kb() as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--one").and_then(|i| args.get(i + 1)) {
        Some(what) if what == "recheck" => recheck(100),
        Some(what) if what == "recheck100k" => recheck(1000),
        Some(what) if what == "components" => components(),
        Some(what) if what == "errors" => errors(),
        Some(what) if what == "renamed" => renamed(),
        Some(what) if what == "cycles" => cycles(),
        Some(what) if what == "files" => many_files(),
        Some(n) => cold(n.parse().expect("a size")),
        None => {
            let exe = std::env::current_exe().expect("own path");
            for what in [
                "1000",
                "10000",
                "100000",
                "components",
                "errors",
                "renamed",
                "cycles",
                "recheck",
                "recheck100k",
            ] {
                let status = Command::new(&exe).args(["--one", what]).status().expect("child runs");
                assert!(status.success(), "{what} failed");
            }
        }
    }
}
