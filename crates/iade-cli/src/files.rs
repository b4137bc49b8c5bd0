//! `check` and `fmt` over files and stack directories.

use std::path::{Path, PathBuf};

use iade_diagnostics::{Diagnostic, RenderOptions, Sources};

use crate::cli::Format;
use crate::output::{self, Exit};

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

fn summary(files: usize, diags: &[Diagnostic]) -> String {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let plural = |n: usize, w: &str| if n == 1 { format!("{n} {w}") } else { format!("{n} {w}s") };
    let fs = plural(files, "file");
    match (errors, warnings) {
        (0, 0) => format!("checked {fs}: no problems"),
        (0, w) => format!("checked {fs}: {}", plural(w, "warning")),
        (e, 0) => format!("checked {fs}: {}", plural(e, "error")),
        (e, w) => format!("checked {fs}: {}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

pub fn check(path: &Path, format: Format, color: bool) -> Exit {
    let files = match collect(path) {
        Ok(f) => f,
        Err(e) => {
            output::error(&format!("cannot read `{}`: {e}", display_path(path)));
            return Exit::Errors;
        }
    };
    if files.is_empty() {
        output::error(&format!("no .iade files in `{}`", display_path(path)));
        eprintln!("  help: a stack is a directory of .iade files; try `iade check examples/quickstart`");
        return Exit::Errors;
    }
    let mut sources = Sources::new();
    let mut diags = Vec::new();
    for f in &files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                output::error(&format!("cannot read `{}`: {e}", display_path(f)));
                return Exit::Errors;
            }
        };
        let id = iade_span::FileId(sources.iter().count() as u32);
        let (text, parse) = iade_syntax::parse_bytes(id, &bytes);
        sources.add(display_path(f), text);
        diags.extend(parse.diagnostics);
    }
    print_diagnostics(&sources, &diags, format, color);
    if format == Format::Human {
        eprintln!("{}", summary(files.len(), &diags));
    }
    if diags.iter().any(Diagnostic::is_error) { Exit::Errors } else { Exit::Success }
}

pub fn fmt(_paths: &[PathBuf], _check: bool, _color: bool) -> Exit {
    output::error("not yet");
    Exit::Errors
}
