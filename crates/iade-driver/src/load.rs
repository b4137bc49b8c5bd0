//! Loading a stack into the compiler: its files from disk or from in-memory overlays (an
//! editor's unsaved buffers), params, and the standard library (embedded or `--stdlib DIR`).
//! The compiler itself does no I/O: this is its one door to the filesystem.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use iade_compiler::{Database, Options};
use iade_diagnostics::{Diagnostic, Sources};
use iade_intent::{IntentGraph, Program};
use iade_span::FileId;

use crate::Error;
use crate::files::{absolute, display_path, stack_dir_of};

/// How to load a stack.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Params given explicitly (`--param NAME=VALUE`): each must be declared by the stack.
    pub params: Vec<(String, String)>,
    /// Params from the environment (`IADE_PARAM_<NAME>`), overridden by `params`.
    pub env_params: BTreeMap<String, String>,
    /// The standard library's directory (`DIR/std/*.iade`) instead of the embedded one.
    pub stdlib: Option<PathBuf>,
    /// A param without a value is unknown rather than an error: an editor's view, where no
    /// `--param` is given.
    pub params_optional: bool,
    /// Load the stack's test files too (`*_test.iade`, `tests/*.iade`): `iade test`'s view.
    pub tests: bool,
}

/// Params from `IADE_PARAM_<NAME>` (the name lowercased).
pub fn params_from_env() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in std::env::vars_os() {
        let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else { continue };
        if let Some(name) = k.strip_prefix("IADE_PARAM_") {
            out.insert(name.to_lowercase(), v.to_string());
        }
    }
    out
}

type Overlays = Arc<Mutex<BTreeMap<PathBuf, String>>>;
pub(crate) type Probed = Arc<Mutex<BTreeSet<String>>>;

fn lock(m: &Mutex<BTreeMap<PathBuf, String>>) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, String>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `p` is a regular file this process can read: what the compiler asks of a
/// resource's `source`.
pub(crate) fn probe(p: &str) -> Result<(), String> {
    let path = Path::new(p);
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read `{p}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("`{p}` is not a regular file"));
    }
    std::fs::File::open(path).map(drop).map_err(|e| format!("cannot read `{p}`: {e}"))
}

/// The threads a compile may use: the machine's parallelism, at most eight (asked once).
fn compile_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8))
}

fn sources_of(db: &Database, shown_text: &HashMap<String, String>, diags: Option<&[Diagnostic]>) -> Sources {
    let named: Option<HashSet<FileId>> = diags.map(|diags| {
        diags
            .iter()
            .flat_map(|d| d.labels.iter().map(|l| l.file).chain(d.fixes.iter().map(|f| f.file)))
            .collect()
    });
    db.sources_where(|f| named.as_ref().is_none_or(|n| n.contains(&f)), |path| shown_text.get(path).cloned())
}

fn diagnostics_of(db: &Database, read_diags: &[Diagnostic]) -> Vec<Diagnostic> {
    let mut out = read_diags.to_vec();
    out.extend(db.diagnostics());
    iade_diagnostics::sort(&mut out);
    out
}

/// A read-only view of a [`LoadedStack`], see [`LoadedStack::snapshot`].
#[derive(Clone, Debug)]
pub struct Snapshot {
    db: Database,
    read_diags: Arc<Vec<Diagnostic>>,
    shown_text: Arc<HashMap<String, String>>,
}

impl Snapshot {
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Every file the database knows, for rendering diagnostics.
    pub fn sources(&self) -> Sources {
        sources_of(&self.db, &self.shown_text, None)
    }

    /// Every file, with the text only of those these diagnostics point into (see
    /// [`LoadedStack::sources_for`]).
    pub fn sources_for(&self, diags: &[Diagnostic]) -> Sources {
        sources_of(&self.db, &self.shown_text, Some(diags))
    }

    /// Every diagnostic: reading, syntax and semantics, sorted.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        diagnostics_of(&self.db, &self.read_diags)
    }
}

/// A stack loaded into one compiler database. Reloading it after an edit recompiles only what
/// changed.
#[derive(Debug)]
pub struct LoadedStack {
    pub db: Database,
    /// As given: a stack directory or one `.iade` file.
    path: PathBuf,
    stack_dir: PathBuf,
    overlays: Overlays,
    /// Every path the compiler asked to be a readable file (a resource's `source`).
    pub(crate) probed: Probed,
    /// Problems found while reading the files themselves (invalid UTF-8).
    read_diags: Vec<Diagnostic>,
    /// Texts to show for files whose bytes were not UTF-8 (the database holds none for them).
    shown_text: HashMap<String, String>,
    files: usize,
    /// Whether the test files are part of it (`iade test`).
    tests: bool,
}

/// What a stack compiles to: the engine's inputs.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub graph: IntentGraph,
    pub program: Program,
    /// The stack directory, absolute.
    pub stack_dir: PathBuf,
    /// Warnings of the compile (errors stop it).
    pub warnings: Vec<Diagnostic>,
    /// The `stack` item's settings (its name, `prune`, the limits).
    pub settings: iade_compiler::StackSettings,
}

impl Compiled {
    /// The stack's id on `host`: its declared name, or its directory's name.
    pub fn stack_id(&self, host: &str) -> iade_journal::StackId {
        match &self.settings.name {
            Some(name) => iade_journal::StackId { name: name.clone(), host: host.to_string() },
            None => crate::session::stack_id(&self.stack_dir, host),
        }
    }

    /// The stack's name: what its ownership marks say.
    pub fn stack_name(&self) -> String {
        self.stack_id("").name
    }
}

/// Counts for `check`'s summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckSummary {
    pub files: usize,
    pub modules: usize,
    pub resources: usize,
    pub policies: usize,
    pub controls: usize,
    pub checks_passed: usize,
    pub checks_failed: usize,
    pub checks_unknown: usize,
    pub errors: usize,
    pub warnings: usize,
}

impl std::fmt::Display for CheckSummary {
    /// `checked 2 files and 1 module file, 18 resources, 3 policies (29 checks), 3 controls: no
    /// problems`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = crate::text::count;
        write!(f, "checked {}", plural(self.files, "file"))?;
        if self.modules > 0 {
            write!(f, " and {}", plural(self.modules, "module file"))?;
        }
        write!(f, ", {}", plural(self.resources, "resource"))?;
        if self.policies > 0 {
            let checks = self.checks_passed + self.checks_failed + self.checks_unknown;
            let policies = if self.policies == 1 {
                "1 policy".to_string()
            } else {
                format!("{} policies", self.policies)
            };
            write!(f, ", {policies} ({}", plural(checks, "check"))?;
            if self.checks_failed > 0 {
                write!(f, ", {} failed", self.checks_failed)?;
            }
            if self.checks_unknown > 0 {
                write!(f, ", {} undecided", self.checks_unknown)?;
            }
            write!(f, ")")?;
        }
        if self.controls > 0 {
            write!(f, ", {}", plural(self.controls, "control"))?;
        }
        match (self.errors, self.warnings) {
            (0, 0) => write!(f, ": no problems"),
            (0, w) => write!(f, ": {}", plural(w, "warning")),
            (e, 0) => write!(f, ": {}", plural(e, "error")),
            (e, w) => write!(f, ": {}, {}", plural(e, "error"), plural(w, "warning")),
        }
    }
}

impl LoadedStack {
    /// Reads a stack and sets up its compiler database.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<LoadedStack, Error> {
        Self::load_with(path, options, BTreeMap::new())
    }

    /// Like [`LoadedStack::load`], with some files' texts given instead of read (unsaved
    /// buffers, by absolute path).
    pub fn load_with(
        path: &Path,
        options: &LoadOptions,
        overlays: BTreeMap<PathBuf, String>,
    ) -> Result<LoadedStack, Error> {
        Self::load_inner(path, options, overlays, false)
    }

    /// Like [`LoadedStack::load`], for a caller that compiles the stack once and never reloads
    /// it (a one-shot command): every item is lowered here, and the syntax trees are released
    /// before evaluation, which reuses their memory (see `Database::lower`).
    pub fn load_once(path: &Path, options: &LoadOptions) -> Result<LoadedStack, Error> {
        let mut loaded = Self::load_inner(path, options, BTreeMap::new(), true)?;
        loaded.db.lower();
        Ok(loaded)
    }

    fn load_inner(
        path: &Path,
        options: &LoadOptions,
        overlays: BTreeMap<PathBuf, String>,
        once: bool,
    ) -> Result<LoadedStack, Error> {
        let stdlib = match &options.stdlib {
            Some(dir) => Some(read_stdlib(dir).map_err(|message| Error::Load {
                message,
                help: "--stdlib takes a directory that holds std/fs.iade, std/exec.iade, …".to_string(),
            })?),
            None => None,
        };
        let overlays: Overlays =
            Arc::new(Mutex::new(overlays.into_iter().map(|(k, v)| (absolute(&k), v)).collect()));
        let seen = overlays.clone();
        let loader = Box::new(move |p: &str| {
            if let Some(text) = lock(&seen).get(&absolute(Path::new(p))) {
                return Ok(text.clone());
            }
            crate::files::read_text(Path::new(p))
        });
        let probed: Probed = Arc::default();
        let seen_probes = probed.clone();
        let probe = Box::new(move |p: &str| {
            seen_probes.lock().unwrap_or_else(PoisonError::into_inner).insert(p.to_string());
            probe(p)
        });
        let db = Database::new(Options {
            stdlib,
            loader,
            probe,
            params_optional: options.params_optional,
            log_queries: false,
            threads: compile_threads(),
            once,
        });
        let stack_dir = stack_dir_of(path);
        let mut loaded = LoadedStack {
            db,
            path: path.to_path_buf(),
            stack_dir,
            overlays,
            probed,
            read_diags: Vec::new(),
            shown_text: HashMap::new(),
            files: 0,
            tests: options.tests,
        };
        loaded.reload()?;
        let declared = loaded.db.stack_params();
        let unknown: Vec<String> = options
            .params
            .iter()
            .filter(|(name, _)| !declared.iter().any(|(n, _, _)| n == name))
            .map(|(name, _)| name.clone())
            .collect();
        if !unknown.is_empty() {
            return Err(Error::UnknownParams {
                unknown,
                declared: declared.into_iter().map(|(n, _, _)| n).collect(),
            });
        }
        let mut params = options.env_params.clone();
        params.extend(options.params.iter().cloned());
        loaded.db.set_params(params);
        Ok(loaded)
    }

    /// The stack's name: its declared name, or its directory's name.
    pub fn stack_name(&self) -> String {
        match self.db.stack_settings().name {
            Some(name) => name,
            None => crate::session::stack_id(&self.stack_dir, "").name,
        }
    }

    /// The compiler database, for the editor features of `iade-ide`.
    pub fn database(&self) -> &iade_compiler::Database {
        &self.db
    }

    /// The stack directory, absolute.
    pub fn stack_dir(&self) -> &Path {
        &self.stack_dir
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path under which the database knows the file at `path` (absolute), if it does: a
    /// stack file is known by the path it was read from; any other by a scan.
    pub fn known_path(&self, path: &Path) -> Option<String> {
        if let Some(name) = path.file_name() {
            let shown = display_path(&self.path.join(name));
            if absolute(Path::new(&shown)) == path && self.db.known_file(&shown).is_some() {
                return Some(shown);
            }
        }
        self.db
            .sources()
            .iter()
            .find(|(_, f)| absolute(Path::new(&f.path)) == path)
            .map(|(_, f)| f.path.clone())
    }

    /// Sets (or with `None` removes) an unsaved buffer and reloads.
    pub fn set_overlay(&mut self, path: &Path, text: Option<String>) -> Result<(), Error> {
        let key = absolute(path);
        // An edit of a file the database already knows only sets that file's text: nothing is
        // read again, and only what depends on the file is recompiled.
        if let Some(t) = &text {
            let known = self.known_path(&key);
            if let Some(shown) = known {
                lock(&self.overlays).insert(key, t.clone());
                self.db.set_file(shown, t.clone());
                return Ok(());
            }
        }
        match text {
            Some(t) => lock(&self.overlays).insert(key, t),
            None => lock(&self.overlays).remove(&key),
        };
        self.reload()
    }

    /// Reads the stack's files into its database again, so only what changed is recompiled.
    pub fn reload(&mut self) -> Result<(), Error> {
        let files = self.stack_files()?;
        let overlays = lock(&self.overlays).clone();
        let mut texts = Vec::with_capacity(files.len());
        let mut invalid = Vec::new();
        for f in &files {
            let shown = display_path(f);
            if let Some(text) = overlays.get(&absolute(f)) {
                texts.push((shown, text.clone()));
                continue;
            }
            let bytes = crate::files::read_bytes(f).map_err(|e| Error::Load {
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
        self.db.set_stack_files(texts);
        self.read_diags.clear();
        self.shown_text.clear();
        for (shown, bytes) in invalid {
            let id = self.db.known_file(&shown).map_or(iade_span::FileId(0), |f| f.id(&self.db));
            let (lossy, parse) = iade_syntax::parse_bytes(id, &bytes);
            self.read_diags.extend(parse.diagnostics);
            self.shown_text.insert(shown, lossy);
        }
        self.db.reload_loaded_files();
        self.files = files.len();
        Ok(())
    }

    /// The top-level `.iade` files of the stack directory (and unsaved ones in it), sorted;
    /// or the one file given.
    fn stack_files(&self) -> Result<Vec<PathBuf>, Error> {
        let mut files = crate::files::stack_files(&self.path).map_err(|e| self.unreadable(e))?;
        if self.tests && self.path.is_dir() {
            files.extend(crate::files::test_files(&self.path).map_err(|e| self.unreadable(e))?);
        }
        if files.is_empty() && self.path.is_dir() && lock(&self.overlays).is_empty() {
            return Err(crate::files::no_stack_here(&self.path));
        }
        if self.path.is_dir() {
            let dir = absolute(&self.path);
            for p in lock(&self.overlays).keys() {
                let new = p.parent() == Some(dir.as_path())
                    && p.extension().is_some_and(|e| e == "iade")
                    && !files.iter().any(|f| absolute(f) == *p);
                if new {
                    files.push(self.path.join(p.file_name().unwrap_or_default()));
                }
            }
            files.sort();
        }
        Ok(files)
    }

    fn unreadable(&self, e: std::io::Error) -> Error {
        Error::Load {
            message: format!("cannot read `{}`: {e}", display_path(&self.path)),
            help: "give a stack directory or a .iade file; try `iade check examples/quickstart`".to_string(),
        }
    }

    /// Every file the database knows, for rendering diagnostics.
    pub fn sources(&self) -> Sources {
        sources_of(&self.db, &self.shown_text, None)
    }

    /// The files as [`LoadedStack::sources`] gives them, with the text only of those these
    /// diagnostics point into: all a renderer of them needs, without a copy of every source.
    pub fn sources_for(&self, diags: &[Diagnostic]) -> Sources {
        sources_of(&self.db, &self.shown_text, Some(diags))
    }

    /// Every diagnostic: reading, syntax and semantics, sorted.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        diagnostics_of(&self.db, &self.read_diags)
    }

    /// A read-only view of the stack as it is now, to answer from another thread. It shares
    /// the database's storage: an edit of the stack (`set_overlay`, `reload`) cancels the
    /// snapshot's running queries — they unwind with [`iade_compiler::Cancelled`], which the
    /// caller catches — and waits until every snapshot is dropped.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            db: self.db.clone(),
            read_diags: Arc::new(self.read_diags.clone()),
            shown_text: Arc::new(self.shown_text.clone()),
        }
    }

    pub fn summary(&self, diagnostics: &[Diagnostic]) -> CheckSummary {
        let s = self.db.summary();
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        CheckSummary {
            files: self.files,
            modules: s.modules,
            resources: s.resources,
            policies: s.policies,
            controls: s.controls,
            checks_passed: s.checks_passed,
            checks_failed: s.checks_failed,
            checks_unknown: s.checks_unknown,
            errors,
            warnings: diagnostics.len() - errors,
        }
    }

    /// The engine's inputs, or the diagnostics that stop the stack from compiling (a denied
    /// policy among them: denied intent is never planned).
    pub fn compile(&self) -> Result<Compiled, Error> {
        let diags = self.diagnostics();
        if diags.iter().any(Diagnostic::is_error) {
            return Err(Error::Diagnostics(diags));
        }
        Ok(Compiled {
            graph: self.db.intent_graph(),
            program: self.db.program(),
            stack_dir: self.stack_dir.clone(),
            warnings: diags,
            settings: self.db.stack_settings(),
        })
    }

    /// Every file the compiler read from disk (stack files, modules, included files),
    /// absolute: what a watcher follows.
    pub fn source_paths(&self) -> BTreeSet<PathBuf> {
        self.db.disk_paths().into_iter().map(|p| absolute(Path::new(&p))).collect()
    }
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
        let text = crate::files::read_text(&p)?;
        out.push((format!("std.{stem}"), display_path(&p), text));
    }
    out.sort();
    Ok(out)
}
