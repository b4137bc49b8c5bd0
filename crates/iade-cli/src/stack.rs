//! Loading a stack into the compiler: files from disk, params from flags and the environment,
//! the standard library (embedded or `--stdlib DIR`). The compiler itself does no I/O.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use iade_compiler::{Database, Options};
use iade_diagnostics::{Diagnostic, Sources};

use crate::files::display_path;

/// How to load a stack: the command-line flags shared by `check`, `graph` and later `plan`.
#[derive(Debug, Default)]
pub struct LoadOptions {
    pub params: Vec<(String, String)>,
    pub stdlib: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Loaded {
    pub db: Database,
    /// Problems found while reading the files themselves (invalid UTF-8).
    pub read_diags: Vec<Diagnostic>,
    /// Texts to show for files whose bytes were not UTF-8 (the database holds none for them).
    pub shown_text: HashMap<String, String>,
    pub files: usize,
}

impl Loaded {
    pub fn sources(&self) -> Sources {
        let db_sources = self.db.sources();
        let mut out = Sources::new();
        for (_, f) in db_sources.iter() {
            let text = self.shown_text.get(&f.path).cloned().unwrap_or_else(|| f.text.clone());
            out.add(f.path.clone(), text);
        }
        out
    }

    /// Every diagnostic: reading, syntax and semantics, sorted.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut out = self.read_diags.clone();
        out.extend(self.db.diagnostics());
        iade_diagnostics::sort(&mut out);
        out
    }
}

/// The top-level `.iade` files of a stack directory, sorted; or the one file given.
pub fn stack_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !std::fs::metadata(path)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".iade") && entry.file_type()?.is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Params from `IADE_PARAM_<NAME>` (lowercased name), overridden by `--param`.
fn params_from_env(flags: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in std::env::vars_os() {
        let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else { continue };
        if let Some(name) = k.strip_prefix("IADE_PARAM_") {
            out.insert(name.to_lowercase(), v.to_string());
        }
    }
    for (k, v) in flags {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn read_stdlib(dir: &Path) -> Result<Vec<(String, String, String)>, String> {
    let std_dir = dir.join("std");
    let entries =
        std::fs::read_dir(&std_dir).map_err(|e| format!("cannot read `{}`: {e}", std_dir.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let p = entry.path();
        let Some(stem) = p.file_stem().and_then(|s| s.to_str()) else { continue };
        if p.extension().and_then(|e| e.to_str()) != Some("iade") {
            continue;
        }
        let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
        out.push((format!("std.{stem}"), display_path(&p), text));
    }
    out.sort();
    Ok(out)
}

/// Why a stack could not be loaded, and what to do.
#[derive(Debug)]
pub struct LoadError {
    pub message: String,
    pub help: String,
}

/// Reads a stack and sets up the compiler database for it.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let files = stack_files(path).map_err(|e| LoadError {
        message: format!("cannot read `{}`: {e}", display_path(path)),
        help: "give a stack directory or a .iade file; try `iade check examples/quickstart`".to_string(),
    })?;
    if files.is_empty() {
        let mut stacks: Vec<String> = std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| stack_files(&e.path()).is_ok_and(|f| !f.is_empty()) && e.path().is_dir())
                    .map(|e| display_path(&e.path()))
                    .collect()
            })
            .unwrap_or_default();
        stacks.sort();
        let help = if stacks.is_empty() {
            "a stack is a directory of .iade files; try `iade check examples/quickstart`".to_string()
        } else {
            format!("it holds stacks of its own: {}", stacks.join(", "))
        };
        return Err(LoadError { message: format!("no .iade files in `{}`", display_path(path)), help });
    }
    let stdlib = match &options.stdlib {
        Some(dir) => Some(read_stdlib(dir).map_err(|message| LoadError {
            message,
            help: "--stdlib takes a directory that holds std/fs.iade, std/exec.iade, …".to_string(),
        })?),
        None => None,
    };
    let loader = Box::new(|p: &str| match std::fs::read(p) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| "the file is not valid UTF-8".to_string()),
        Err(e) => Err(e.to_string()),
    });
    let db = Database::new(Options { stdlib, loader, log_queries: false });
    let mut loaded = Loaded { db, read_diags: Vec::new(), shown_text: HashMap::new(), files: 0 };
    reload(&mut loaded, path)?;
    loaded.db.set_params(params_from_env(&options.params));
    Ok(loaded)
}

/// Reads the stack's files into its database; again after a change, so only what changed is
/// recompiled.
pub fn reload(loaded: &mut Loaded, path: &Path) -> Result<(), LoadError> {
    let files = stack_files(path).map_err(|e| LoadError {
        message: format!("cannot read `{}`: {e}", display_path(path)),
        help: "the stack directory must stay readable while it is watched".to_string(),
    })?;
    let mut texts = Vec::with_capacity(files.len());
    let mut invalid = Vec::new();
    for f in &files {
        let shown = display_path(f);
        let bytes = std::fs::read(f).map_err(|e| LoadError {
            message: format!("cannot read `{shown}`: {e}"),
            help: "check the file's permissions".to_string(),
        })?;
        match String::from_utf8(bytes) {
            Ok(text) => texts.push((shown, text)),
            Err(e) => {
                invalid.push((shown.clone(), e.into_bytes()));
                texts.push((shown, String::new()));
            }
        }
    }
    loaded.db.set_stack_files(texts);
    loaded.read_diags.clear();
    loaded.shown_text.clear();
    let sources = loaded.db.sources();
    for (shown, bytes) in invalid {
        let id = sources.iter().find(|(_, f)| f.path == shown).map_or(iade_span::FileId(0), |(id, _)| id);
        let (lossy, parse) = iade_syntax::parse_bytes(id, &bytes);
        loaded.read_diags.extend(parse.diagnostics);
        loaded.shown_text.insert(shown, lossy);
    }
    loaded.db.reload_loaded_files();
    loaded.files = files.len();
    Ok(())
}

/// Names given with `--param` that the stack does not declare: a usage error worth stopping
/// for, since a typo would otherwise silently leave the default in place.
pub fn unknown_params(loaded: &Loaded, flags: &[(String, String)]) -> Vec<String> {
    let declared = loaded.db.stack_params();
    let mut out = Vec::new();
    for (name, _) in flags {
        if !declared.iter().any(|(n, _, _)| n == name) {
            let mut msg = format!("the stack has no param `{name}`");
            let names: Vec<&str> = declared.iter().map(|(n, _, _)| n.as_str()).collect();
            if names.is_empty() {
                msg.push_str(" (it declares none)");
            } else {
                msg.push_str(&format!(" (its params: {})", names.join(", ")));
            }
            out.push(msg);
        }
    }
    out
}

/// `IADE_FAILPOINT`: a protocol point where a converge stops abruptly, for crash tests.
pub fn failpoint_from_env() -> Option<String> {
    std::env::vars_os().find(|(k, _)| k == "IADE_FAILPOINT").and_then(|(_, v)| v.into_string().ok())
}
