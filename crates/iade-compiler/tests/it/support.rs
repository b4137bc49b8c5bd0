//! Helpers shared by the compiler's tests.

use std::path::{Path, PathBuf};

use iade_compiler::{Database, Options};
use iade_diagnostics::{Diagnostic, RenderOptions};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root exists")
}

pub fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).to_string_lossy().into_owned()
}

/// A database whose loader reads files relative to the workspace root.
pub fn disk_db(log_queries: bool) -> Database {
    disk_db_with(log_queries, false)
}

/// [`disk_db`], for a caller that compiles it once when `once` (`Options::once`).
pub fn disk_db_with(log_queries: bool, once: bool) -> Database {
    let root = root();
    let probe_root = root.clone();
    Database::new(Options {
        stdlib: None,
        loader: Box::new(move |p: &str| std::fs::read_to_string(root.join(p)).map_err(|e| e.to_string())),
        probe: Box::new(move |p: &str| {
            std::fs::File::open(probe_root.join(p)).map(drop).map_err(|e| e.to_string())
        }),
        params_optional: false,
        log_queries,
        // Two, whatever the machine: a large stack's tests go through the parallel paths.
        threads: 2,
        once,
    })
}

/// A database over in-memory files only.
pub fn memory_db(files: &[(&str, &str)], log_queries: bool) -> Database {
    // Two, whatever the machine: a large stack's tests go through the parallel paths.
    memory_db_on(files, log_queries, 2)
}

/// [`memory_db`] on `threads` threads.
pub fn memory_db_on(files: &[(&str, &str)], log_queries: bool, threads: usize) -> Database {
    memory_db_with(files, log_queries, threads, false)
}

/// [`memory_db`] for a caller that compiles it once (`Options::once`).
pub fn memory_db_once(files: &[(&str, &str)], log_queries: bool) -> Database {
    memory_db_with(files, log_queries, 2, true)
}

fn memory_db_with(files: &[(&str, &str)], log_queries: bool, threads: usize, once: bool) -> Database {
    let extra: Vec<(String, String)> = files.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
    let names: Vec<String> = extra.iter().map(|(p, _)| p.clone()).collect();
    let mut db = Database::new(Options {
        stdlib: None,
        loader: Box::new(move |p: &str| {
            extra.iter().find(|(q, _)| q == p).map(|(_, t)| t.clone()).ok_or_else(|| format!("no file `{p}`"))
        }),
        probe: Box::new(
            move |p: &str| if names.iter().any(|n| n == p) { Ok(()) } else { Err(format!("no file `{p}`")) },
        ),
        params_optional: false,
        log_queries,
        threads,
        once,
    });
    let stack: Vec<(String, String)> = files
        .iter()
        .filter(|(p, _)| !p.contains('/') && p.ends_with(".iade"))
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    db.set_stack_files(stack);
    db
}

/// The stack files of a golden input: the file itself, or a directory's top-level files.
pub fn load_stack(db: &mut Database, input: &Path) {
    let mut files = Vec::new();
    if input.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
            .expect("readable dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "iade"))
            .collect();
        entries.sort();
        files.extend(entries);
    } else {
        files.push(input.to_path_buf());
    }
    let texts = files.iter().map(|f| (rel(f), std::fs::read_to_string(f).expect("readable input"))).collect();
    db.set_stack_files(texts);
}

pub fn render(db: &Database, diags: &[Diagnostic]) -> String {
    let sources = db.sources();
    let mut out = String::new();
    for d in diags {
        out.push_str(&iade_diagnostics::render_text(&sources, d, RenderOptions { color: false }));
        out.push_str("\n\n");
    }
    out
}
