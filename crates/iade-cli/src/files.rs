//! `check` and `fmt` over files and stack directories.

use std::path::{Path, PathBuf};

use iade_diagnostics::{Diagnostic, RenderOptions, Sources};

use crate::cli::Format;
use crate::output::{self, Exit};
use crate::stack::LoadOptions;

/// The `.iade` files of a path: itself if a file, else every `.iade` file below it in
/// sorted order, skipping hidden directories (the journal lives in `.iade/`).
pub fn collect(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let p = entry.path();
            let ft = entry.file_type()?;
            if ft.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    stack.push(p);
                }
            } else if name.ends_with(".iade") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn display_path(p: &Path) -> String {
    let s = p.to_string_lossy();
    s.strip_prefix("./").unwrap_or(&s).to_string()
}

pub fn print_diagnostics(sources: &Sources, diags: &[Diagnostic], format: Format, color: bool) {
    match format {
        Format::Human => {
            for d in diags {
                eprintln!("{}\n", iade_diagnostics::render_text(sources, d, RenderOptions { color }));
            }
        }
        Format::Json => {
            let report = iade_diagnostics::to_json(sources, diags);
            match serde_json::to_string_pretty(&report) {
                Ok(s) => println!("{s}"),
                Err(e) => output::error(&format!("cannot serialize diagnostics: {e}")),
            }
        }
    }
}

fn summary(files: usize, diags: &[Diagnostic], s: &iade_compiler::Summary) -> String {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let plural = |n: usize, w: &str| if n == 1 { format!("{n} {w}") } else { format!("{n} {w}s") };
    let mut fs = plural(files, "file");
    fs.push_str(&format!(", {}", plural(s.resources, "resource")));
    if s.policies > 0 {
        let checks = s.checks_passed + s.checks_failed + s.checks_unknown;
        let policies =
            if s.policies == 1 { "1 policy".to_string() } else { format!("{} policies", s.policies) };
        fs.push_str(&format!(", {policies} ({}", plural(checks, "check")));
        if s.checks_failed > 0 {
            fs.push_str(&format!(", {} failed", s.checks_failed));
        }
        if s.checks_unknown > 0 {
            fs.push_str(&format!(", {} undecided", s.checks_unknown));
        }
        fs.push(')');
    }
    if s.controls > 0 {
        fs.push_str(&format!(", {}", plural(s.controls, "control")));
    }
    match (errors, warnings) {
        (0, 0) => format!("checked {fs}: no problems"),
        (0, w) => format!("checked {fs}: {}", plural(w, "warning")),
        (e, 0) => format!("checked {fs}: {}", plural(e, "error")),
        (e, w) => format!("checked {fs}: {}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// Loads a stack, or reports why not (and exits 1, or 64 for a `--param` the stack lacks).
pub fn load(path: &Path, options: &LoadOptions) -> Result<crate::stack::Loaded, Exit> {
    let loaded = crate::stack::load(path, options).map_err(|e| {
        output::error(&e.message);
        eprintln!("  help: {}", e.help);
        Exit::Errors
    })?;
    let unknown = crate::stack::unknown_params(&loaded, &options.params);
    if !unknown.is_empty() {
        for u in &unknown {
            output::error(u);
        }
        return Err(Exit::Usage);
    }
    Ok(loaded)
}

pub fn check(path: &Path, options: &LoadOptions, format: Format, color: bool) -> Exit {
    let loaded = match load(path, options) {
        Ok(l) => l,
        Err(exit) => return exit,
    };
    let diags = loaded.diagnostics();
    print_diagnostics(&loaded.sources(), &diags, format, color);
    if format == Format::Human {
        let s = loaded.db.summary();
        eprintln!("{}", summary(loaded.files, &diags, &s));
    }
    // The process ends here; see `run::compile` for why the database is not freed.
    std::mem::forget(loaded);
    if diags.iter().any(Diagnostic::is_error) { Exit::Errors } else { Exit::Success }
}

pub fn graph(path: &Path, options: &LoadOptions, format: crate::cli::GraphFormat, color: bool) -> Exit {
    let loaded = match load(path, options) {
        Ok(l) => l,
        Err(exit) => return exit,
    };
    let diags = loaded.diagnostics();
    if diags.iter().any(Diagnostic::is_error) {
        print_diagnostics(&loaded.sources(), &diags, Format::Human, color);
        eprintln!("no graph: the stack has errors (see `iade check`)");
        return Exit::Errors;
    }
    let graph = loaded.db.intent_graph();
    match format {
        crate::cli::GraphFormat::Dot => print!("{}", graph.to_dot()),
        crate::cli::GraphFormat::Json => match serde_json::to_string_pretty(&graph) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                output::error(&format!("cannot serialize the graph: {e}"));
                return Exit::Errors;
            }
        },
    }
    Exit::Success
}

/// Writes `text` to `path` atomically: a temp file beside it, then a rename.
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.iade-fmt-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn fmt(paths: &[PathBuf], check: bool, color: bool) -> Exit {
    if paths.iter().any(|p| p.as_os_str() == "-") {
        let mut text = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            output::error(&format!("cannot read standard input: {e}"));
            return Exit::Errors;
        }
        return match iade_fmt::format(&text) {
            Ok(out) => {
                print!("{out}");
                if check && out != text { Exit::Errors } else { Exit::Success }
            }
            Err(iade_fmt::FormatError::Syntax(diags)) => {
                let mut sources = Sources::new();
                sources.add("<stdin>", text);
                print_diagnostics(&sources, &diags, Format::Human, color);
                Exit::Errors
            }
        };
    }
    let mut files = Vec::new();
    for p in paths {
        match collect(p) {
            Ok(f) => files.extend(f),
            Err(e) => {
                output::error(&format!("cannot read `{}`: {e}", display_path(p)));
                return Exit::Errors;
            }
        }
    }
    let mut sources = Sources::new();
    let (mut changed, mut failed, mut unformatted) = (0usize, 0usize, Vec::new());
    for f in &files {
        let shown = display_path(f);
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                output::error(&format!("cannot read `{shown}`: {e}"));
                failed += 1;
                continue;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let (text, parse) = iade_syntax::parse_bytes(sources.next_id(), e.as_bytes());
                sources.add(shown, text);
                print_diagnostics(&sources, &parse.diagnostics, Format::Human, color);
                failed += 1;
                continue;
            }
        };
        match iade_fmt::format(&text) {
            Ok(out) if out == text => {}
            Ok(out) => {
                if check {
                    unformatted.push(shown);
                } else if let Err(e) = write_atomic(f, &out) {
                    output::error(&format!("cannot write `{shown}`: {e}"));
                    failed += 1;
                } else {
                    changed += 1;
                }
            }
            Err(iade_fmt::FormatError::Syntax(diags)) => {
                let id = sources.add(shown.clone(), text);
                let diags: Vec<Diagnostic> = diags
                    .into_iter()
                    .filter(Diagnostic::is_error)
                    .map(|mut d| {
                        for l in &mut d.labels {
                            l.file = id;
                        }
                        d
                    })
                    .collect();
                print_diagnostics(&sources, &diags, Format::Human, color);
                eprintln!("not formatted: `{shown}` has syntax errors\n");
                failed += 1;
            }
        }
    }
    for u in &unformatted {
        eprintln!("would reformat: {u}");
    }
    let n = files.len();
    if check {
        eprintln!("{n} file(s) checked: {} would be reformatted, {failed} with errors", unformatted.len());
    } else {
        eprintln!("{n} file(s) checked: {changed} reformatted, {failed} with errors");
    }
    if failed > 0 || !unformatted.is_empty() { Exit::Errors } else { Exit::Success }
}
