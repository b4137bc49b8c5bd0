//! The database: salsa storage plus the inputs the driver sets.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use iade_diagnostics::{Diagnostic, Severity, Sources};
use iade_intent::IntentGraph;
use iade_span::{FileId, Span};
use salsa::Setter;

use crate::diag::Diag;
use crate::items::{Item, SourceFile, Stack, item_offset};
use crate::lower::LoweredKind;

/// Stacks with at least this many items are lowered on several threads.
const PARALLEL_ITEMS: usize = 256;

/// How many items a thread takes at a time in [`Database::on_item_threads`]: enough that taking
/// costs nothing, few enough that the threads end together.
const ITEMS_PER_TAKE: usize = 64;

/// How many items a stack compiled once evaluates before it releases their IR (see
/// [`Database::lower`]): the IR of this many items is the most held beside the evaluations.
const ITEMS_PER_RELEASE: usize = 4096;

/// Stacks with fewer resource items keep their IR: it is a few megabytes, and releasing it
/// (a pause of the other threads between runs) took longer than it saved.
const RELEASE_FROM_ITEMS: usize = 16_384;

/// Runs each job on a thread of its own and waits for all of them, or with `here`, the last
/// job on the calling thread. A query cancelled by an edit unwinds with salsa's `Cancelled`:
/// it is passed on as it is, so that the caller (the language server) recognizes it.
fn on_threads<'a, F: FnOnce() + Send + 'a>(mut jobs: Vec<F>, here: bool) {
    let last = if here { jobs.pop() } else { None };
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs.into_iter().map(|job| scope.spawn(job)).collect();
        let mut unwound =
            last.and_then(|job| std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).err());
        for h in handles {
            if let Err(payload) = h.join() {
                unwound.get_or_insert(payload);
            }
        }
        if let Some(payload) = unwound {
            std::panic::resume_unwind(payload);
        }
    });
}

/// Lowers an item, and in a database that compiles once finds a resource item's kind while
/// its tree is there: the stack's index reads it after the trees are released
/// ([`crate::graph::file_static_ids`]).
fn lower_for_stack(db: &Database, item: Item) {
    if let LoweredKind::Resources { .. } = crate::lower::lower_item(db, item).kind
        && db.shared.once
    {
        crate::lower::resource_kind(db, item);
    }
}

/// Reads a file the sources refer to (`use "./x.iade"`, `include("…")`): the driver's one
/// door to the filesystem. Gets a normalized path; returns the text or a reason.
pub type Loader = dyn Fn(&str) -> Result<String, String> + Send + Sync;

/// Checks that a file a resource takes its content from (`source = …`) can be read, without
/// reading it: it may be large or binary. Gets a normalized path; returns a reason on failure.
pub type Prober = dyn Fn(&str) -> Result<(), String> + Send + Sync;

#[salsa::db]
pub trait Db: salsa::Database {
    fn stack(&self) -> Stack;
    /// A standard library module by dotted name (`std.fs`).
    fn stdlib_module(&self, name: &str) -> Option<SourceFile>;
    fn stdlib_names(&self) -> Vec<String>;
    /// A file by normalized path, loaded once through the driver's loader.
    fn load_file(&self, path: &str) -> Result<SourceFile, String>;
    fn file_by_id(&self, id: FileId) -> Option<SourceFile>;
    /// The item a qualified key (`3:value:root`, as the IR names globals and rules) names.
    fn item_by_key(&self, key: &str) -> Option<Item>;
    /// Whether a file can be read (for `source = …`), through the driver's prober.
    fn probe_file(&self, path: &str) -> Result<(), String>;
    /// Whether a param without a value is unknown rather than an error (in an editor, where
    /// no `--param` is given).
    fn params_optional(&self) -> bool;
    /// How many threads a large file's parse and a large stack's lowering may use.
    fn threads(&self) -> usize;
    /// Whether the stack is compiled once and never edited ([`Options::once`]).
    fn once(&self) -> bool;
    /// Lowering made IR that names a resource by id (`file.x`, `file["x"]`, a member of an
    /// instance). Noted as items are lowered; read only once [`Database::lower`] has lowered
    /// them all (see [`Db::names_no_resource_by_id`]).
    fn note_reference_by_id(&self);
    /// Whether the stack, compiled once and lowered whole by [`Database::lower`], names no
    /// resource by id: its resources then have no references to search for cycles.
    fn names_no_resource_by_id(&self) -> bool;
    /// The facts of every resource item, in [`crate::graph::resource_items`]'s order, when
    /// [`Database::prepare`] built them on several threads for a stack compiled once; taken by
    /// the one query that reads them ([`crate::graph::stack_resources`]). `None` otherwise:
    /// the query builds them itself.
    fn take_facts(&self) -> Option<Vec<crate::graph::Facts>>;
}

pub struct Options {
    /// Standard library modules as `(name, path, text)`; the embedded ones when `None`.
    pub stdlib: Option<Vec<(String, String, String)>>,
    pub loader: Box<Loader>,
    pub probe: Box<Prober>,
    /// A param without a value is unknown, not an error (an editor's view of a stack).
    pub params_optional: bool,
    /// Record which queries execute (for incremental tests and `--explain`-style tracing).
    pub log_queries: bool,
    /// How many threads a large file's parse and a large stack's lowering may use: the driver
    /// gives the machine's parallelism; 1 runs everything on the caller's thread.
    pub threads: usize,
    /// The caller compiles the stack once and never edits it (a one-shot command):
    /// [`Database::lower`] then releases the syntax trees once every item is lowered.
    pub once: bool,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("log_queries", &self.log_queries).finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stdlib: None,
            loader: Box::new(|p| Err(format!("cannot read `{p}`: no loader"))),
            probe: Box::new(|p| Err(format!("cannot read `{p}`: no loader"))),
            params_optional: false,
            log_queries: false,
            threads: 1,
            once: false,
        }
    }
}

/// Queries that executed: the query's name and its key.
type QueryLog = Arc<Mutex<Vec<(String, salsa::Id)>>>;

struct Shared {
    loader: Box<Loader>,
    probe: Box<Prober>,
    params_optional: bool,
    threads: usize,
    once: bool,
    /// Every file known to the database, by id (ids are dense indexes). Read for every global
    /// and rule a query names, from several threads at once; written only when a file is added.
    files: RwLock<Vec<SourceFile>>,
    by_path: Mutex<HashMap<String, SourceFile>>,
    /// Failed loads are remembered per path so a query sees one consistent answer.
    failed: Mutex<HashMap<String, String>>,
    stdlib: Mutex<BTreeMap<String, SourceFile>>,
    /// Items by qualified key, as found for the IR's globals and rules: every read of a
    /// global would otherwise intern its item again, and threads reading the same global
    /// would wait on each other's interning. An item is its file and name, whatever their
    /// text, and items are never collected, so an entry stays right.
    items_by_key: RwLock<rustc_hash::FxHashMap<String, Item>>,
    log: Option<QueryLog>,
    /// Whether the database has been prepared once: its first compile computes everything and
    /// is worth spreading over threads; a compile after an edit finds nearly all of it done,
    /// and walking every item to spread the rest would cost more than it saves.
    prepared: AtomicBool,
    /// Whether [`Database::lower`] has lowered every item.
    lowered: AtomicBool,
    /// Whether lowering named a resource by id (see [`Db::note_reference_by_id`]).
    referred_by_id: AtomicBool,
    /// Whether [`Database::lower`] has evaluated the independent items already.
    evaluated_independent: AtomicBool,
    /// Resource items' facts built on several threads (see [`Db::take_facts`]).
    facts: Mutex<Option<Vec<crate::graph::Facts>>>,
}

#[salsa::db]
#[derive(Clone)]
pub struct Database {
    storage: salsa::Storage<Self>,
    shared: Arc<Shared>,
    stack: Option<Stack>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").finish_non_exhaustive()
    }
}

#[salsa::db]
impl salsa::Database for Database {}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another query panicked; the maps stay consistent because
    // every update is a single insert.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}

impl Database {
    pub fn new(options: Options) -> Database {
        let log = options.log_queries.then(|| Arc::new(Mutex::new(Vec::new())));
        let callback: Option<Box<dyn Fn(salsa::Event) + Send + Sync>> = log.clone().map(|log| {
            Box::new(move |event: salsa::Event| {
                if let salsa::EventKind::WillExecute { database_key } = event.kind {
                    let text = format!("{database_key:?}");
                    let name = text.split('(').next().unwrap_or_default().to_string();
                    lock(&log).push((name, database_key.key_index()));
                }
            }) as Box<dyn Fn(salsa::Event) + Send + Sync>
        });
        let shared = Arc::new(Shared {
            loader: options.loader,
            probe: options.probe,
            params_optional: options.params_optional,
            threads: options.threads.max(1),
            once: options.once,
            files: RwLock::new(Vec::new()),
            by_path: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            stdlib: Mutex::new(BTreeMap::new()),
            items_by_key: RwLock::new(rustc_hash::FxHashMap::default()),
            log,
            prepared: AtomicBool::new(false),
            lowered: AtomicBool::new(false),
            evaluated_independent: AtomicBool::new(false),
            facts: Mutex::new(None),
            referred_by_id: AtomicBool::new(false),
        });
        let mut db = Database { storage: salsa::Storage::new(callback), shared, stack: None };
        let stdlib = options.stdlib.unwrap_or_else(|| {
            crate::stdlib::EMBEDDED
                .iter()
                .map(|(n, p, t)| (n.to_string(), p.to_string(), t.to_string()))
                .collect()
        });
        for (name, path, text) in stdlib {
            let file = db.new_file(path, text);
            lock(&db.shared.stdlib).insert(name, file);
        }
        db.stack = Some(Stack::new(&db, Vec::new(), BTreeMap::new()));
        db
    }

    fn new_file(&self, path: String, text: String) -> SourceFile {
        let mut files = write(&self.shared.files);
        let id = FileId(files.len() as u32);
        let file = SourceFile::new(self, id, path.clone(), text);
        files.push(file);
        lock(&self.shared.by_path).insert(path, file);
        file
    }

    /// Sets the stack's top-level files: new paths are added, changed texts updated.
    pub fn set_stack_files(&mut self, files: Vec<(String, String)>) {
        let mut handles = Vec::with_capacity(files.len());
        for (path, text) in files {
            handles.push(self.set_file(path, text));
        }
        let stack = self.stack();
        if stack.files(self) != &handles {
            stack.set_files(self).to(handles);
        }
    }

    /// The file already known at this path, without loading it.
    pub fn known_file(&self, path: &str) -> Option<SourceFile> {
        lock(&self.shared.by_path).get(path).copied()
    }

    /// Sets a file's text (an edit, or an unsaved buffer in the language server).
    pub fn set_file(&mut self, path: String, text: String) -> SourceFile {
        let existing = lock(&self.shared.by_path).get(&path).copied();
        match existing {
            Some(file) => {
                if file.text(self) != &text {
                    file.set_text(self).to(text);
                }
                file
            }
            None => self.new_file(path, text),
        }
    }

    /// Paths of every file read from disk: the stack's and those loaded through `use` or
    /// `include` (the standard library's excluded), for a watcher.
    pub fn disk_paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        self.for_each_disk_file(|path, _| paths.push(path.to_string()));
        paths
    }

    /// Calls `each` with the path and the compiled text of every file of
    /// [`Database::disk_paths`]: what a compile cache keys on.
    pub fn for_each_disk_file(&self, mut each: impl FnMut(&str, &str)) {
        let stdlib: Vec<SourceFile> = lock(&self.shared.stdlib).values().copied().collect();
        let files: Vec<SourceFile> = read(&self.shared.files).clone();
        for f in files.into_iter().filter(|f| !stdlib.contains(f)) {
            each(f.path(self), f.text(self));
        }
    }

    /// Reads again every file loaded through `use` or `include` and updates those that
    /// changed; a file that can no longer be read keeps its last text. Paths that failed to
    /// load are tried again.
    pub fn reload_loaded_files(&mut self) {
        lock(&self.shared.failed).clear();
        let stack: rustc_hash::FxHashSet<SourceFile> = self.stack().files(self).iter().copied().collect();
        let stdlib: Vec<SourceFile> = lock(&self.shared.stdlib).values().copied().collect();
        let files: Vec<SourceFile> = read(&self.shared.files).clone();
        for f in files {
            if stack.contains(&f) || stdlib.contains(&f) {
                continue;
            }
            let path = f.path(self).clone();
            if let Ok(text) = (self.shared.loader)(&path) {
                self.set_file(path, text);
            }
        }
    }

    pub fn set_params(&mut self, params: BTreeMap<String, String>) {
        let stack = self.stack();
        if stack.params(self) != &params {
            stack.set_params(self).to(params);
        }
    }

    /// Every file the database knows, for rendering diagnostics.
    pub fn sources(&self) -> Sources {
        self.sources_where(|_| true, |_| None)
    }

    /// Every file the database knows, by the same ids, with the text only of those `keep`
    /// accepts (the others are empty: nothing refers into them). `shown` may give a file
    /// another text to show.
    pub fn sources_where(
        &self,
        keep: impl Fn(FileId) -> bool,
        shown: impl Fn(&str) -> Option<String>,
    ) -> Sources {
        let mut sources = Sources::new();
        for file in read(&self.shared.files).iter() {
            let path = file.path(self);
            // Copied once, into the text the sources share.
            let text: Arc<str> = match shown(path) {
                Some(text) => text.into(),
                None if keep(file.id(self)) => Arc::from(file.text(self).as_str()),
                None => Arc::from(""),
            };
            sources.add(path.clone(), text);
        }
        sources
    }

    /// Every diagnostic of the stack, absolute and sorted: syntax, names, types, evaluation,
    /// graph and policies.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut out: Vec<Diagnostic> = Vec::new();
        for file in self.compiled_files() {
            out.extend(crate::items::file_layout(self, file).diagnostics.iter().cloned());
        }
        // A syntax error is reported alone: what follows from a misparsed item would only
        // repeat it in other words.
        if !out.iter().any(Diagnostic::is_error) {
            self.prepare();
            for d in crate::graph::stack_diagnostics(self) {
                out.extend(self.absolute(d));
            }
        }
        iade_diagnostics::sort(&mut out);
        out.dedup();
        out
    }

    /// Lowers every item of the stack now, on several threads for a large stack, unless a file
    /// has a syntax error (the compile then reports it alone and lowers nothing).
    ///
    /// With [`Options::once`], the syntax trees are released afterwards: nothing but lowering
    /// reads them, and evaluation reuses their memory (a tenth of a large stack's). A database
    /// that is edited must keep them: an edit compares each item's new tree with its old one,
    /// and an item whose tree is gone would be lowered again. Reading a released tree (an
    /// error that points at a declaration's name) parses its file again.
    ///
    /// When no resource is named by id, the independent resource items of a large stack are
    /// then evaluated here, [`ITEMS_PER_RELEASE`] at a time, and the IR of each run released
    /// once it is evaluated: the rest of the compile reads their evaluation (diagnostics
    /// included) and never their IR, which was a quarter of the memory a large stack held.
    /// Where a resource is named by id, the search for cycles reads every item's IR, and it
    /// is kept.
    pub fn lower(&mut self) {
        if self.shared.lowered.load(Ordering::Relaxed) {
            return;
        }
        let files = self.compiled_files();
        if files
            .iter()
            .any(|f| crate::items::file_layout(self, *f).diagnostics.iter().any(Diagnostic::is_error))
        {
            return;
        }
        let items = self.items_of(&files);
        // A large stack compiled once is lowered and evaluated with the calling thread as one of
        // the threads: the memory its share frees (released IR) is reused by its next share at
        // once, where a thread of its own leaves what it held behind when it ends (100,000
        // resources peaked 12 MB lower). A smaller stack took longer so.
        let large = self.shared.once && self.resource_items_among(&items) >= RELEASE_FROM_ITEMS;
        self.on_threads_by(&items, ITEMS_PER_TAKE, large, |db, item| {
            lower_for_stack(db, item);
            true
        });
        self.shared.lowered.store(true, Ordering::Relaxed);
        if self.shared.once {
            crate::items::release_parses(self, &files);
            if large && self.names_no_resource_by_id() {
                self.evaluate_and_release();
            }
        }
    }

    /// How many of `items` may declare resources, told by their names.
    fn resource_items_among(&self, items: &[Item]) -> usize {
        items.iter().filter(|i| crate::graph::declares_resources(i.name(self))).count()
    }

    /// Evaluates the independent resource items of a large stack in runs, releasing each
    /// run's IR (see [`Database::lower`]).
    fn evaluate_and_release(&mut self) {
        let limit = crate::graph::stack_settings(self).settings.limits.resources;
        let items = self.items_in_order();
        self.shared.evaluated_independent.store(true, Ordering::Relaxed);
        let globals = crate::schedule::Independence::globals(self, items.iter().copied());
        let evaluated = AtomicUsize::new(0);
        let runs = items.len().div_ceil(ITEMS_PER_RELEASE);
        for (i, run) in items.chunks(ITEMS_PER_RELEASE).enumerate() {
            let done = Mutex::new(Vec::with_capacity(run.len()));
            let within = self.evaluate_independent(run, &globals, &evaluated, limit, Some(&done));
            if !within || i + 1 == runs {
                // The last run's IR is kept: nothing evaluated after it would reuse the room.
                break;
            }
            let done = done.into_inner().unwrap_or_else(PoisonError::into_inner);
            crate::lower::release_lowerings(self, &done);
        }
    }

    /// Computes the per-item queries before the queries that read them all.
    ///
    /// Items are lowered on several threads ([`Database::lower_in_parallel`]), then evaluated
    /// here, in the order the stack's diagnostics visit them (so a cycle is entered where it
    /// always was), each at the top of the query stack. salsa keeps one frame per depth of its
    /// query stack and reuses it; a frame keeps the room its largest query needed to record
    /// its reads, and clearing it costs that room on every query that completes at that depth
    /// afterwards. Evaluated under a query that reads every item (a policy, the stack's
    /// resources), 100,000 items made the compilation quadratic.
    fn prepare(&self) {
        let first = !self.shared.prepared.swap(true, Ordering::Relaxed);
        if first && !self.shared.lowered.load(Ordering::Relaxed) {
            self.lower_in_parallel();
        }
        // Queries that read every item (the scopes, the settings) are run here first; the
        // items are evaluated through a handle of its own, whose query stack (each handle has
        // one) they have not grown.
        let limit = crate::graph::stack_settings(self).settings.limits.resources;
        crate::graph::stack_modules(self);
        // Read by the first resource that reads another; it reads every item.
        crate::graph::cycle_components(self);
        if first && !self.shared.evaluated_independent.load(Ordering::Relaxed) {
            self.evaluate_independent_in_parallel(limit);
        }
        let db = self.clone();
        let all_evaluated = AtomicBool::new(false);
        let all = &all_evaluated;
        on_threads(
            vec![move || {
                let mut seen = 0usize;
                for &m in crate::graph::stack_modules(&db) {
                    for file in m.files(&db) {
                        for &item in &crate::items::file_items(&db, *file).items {
                            // Resource items told by their names: their IR may be released.
                            if crate::graph::declares_resources(item.name(&db)) {
                                // Up to the stack's limit, as `stack_resources` does.
                                if seen <= limit {
                                    seen += crate::graph::resource_count(&db, item);
                                }
                                continue;
                            }
                            if let LoweredKind::Param { .. } | LoweredKind::Let { .. } =
                                &crate::lower::lower_item(&db, item).kind
                            {
                                crate::eval::eval_global(&db, item);
                            }
                        }
                    }
                }
                all.store(seen <= limit, Ordering::Relaxed);
            }],
            false,
        );
        if first && all_evaluated.load(Ordering::Relaxed) {
            self.check_policies_in_parallel();
            self.build_facts_in_parallel();
        }
    }

    /// Builds the graph's facts of a large stack's resource items on several threads, once
    /// every item is evaluated, for a stack compiled once (an edited database remembers them
    /// per file, [`crate::graph::file_facts`]). An item's facts read its evaluation and its
    /// kind's schema, both computed by then, so they do not depend on where they are built.
    fn build_facts_in_parallel(&self) {
        let items = crate::graph::resource_items(self);
        if !self.shared.once || self.shared.threads < 2 || items.len() < PARALLEL_ITEMS {
            return;
        }
        let starts: Vec<usize> = (0..items.len()).step_by(ITEMS_PER_TAKE).collect();
        let built = Mutex::new(Vec::with_capacity(starts.len()));
        self.on_threads_by(&starts, 1, false, |db, start| {
            let run = &items[start..(start + ITEMS_PER_TAKE).min(items.len())];
            let facts: Vec<_> = run.iter().map(|&item| crate::graph::facts_of(db, item)).collect();
            lock(&built).push((start, facts));
            true
        });
        let mut built = built.into_inner().unwrap_or_else(PoisonError::into_inner);
        built.sort_unstable_by_key(|(start, _)| *start);
        let facts: Vec<_> = built.into_iter().flat_map(|(_, facts)| facts).collect();
        *lock(&self.shared.facts) = Some(facts);
    }

    /// The files a compile reads: the stack's own and the module files it imports.
    fn compiled_files(&self) -> Vec<SourceFile> {
        self.stack().files(self).iter().chain(crate::graph::module_files(self).iter()).copied().collect()
    }

    /// The items of `files`, file by file in source order.
    fn items_of(&self, files: &[SourceFile]) -> Vec<Item> {
        files.iter().flat_map(|f| crate::items::file_items(self, *f).items.iter().copied()).collect()
    }

    /// The items of every module of the stack, in the order `prepare` evaluates them.
    fn items_in_order(&self) -> Vec<Item> {
        let mut items = Vec::new();
        for &m in crate::graph::stack_modules(self) {
            for file in m.files(self) {
                items.extend(crate::items::file_items(self, *file).items.iter().copied());
            }
        }
        items
    }

    /// Evaluates the independent items of a large stack (see [`crate::schedule`]) on several
    /// threads, before the rest is evaluated in order. They are on no cycle, so their results
    /// and diagnostics do not depend on when or where they are computed. Stops past the
    /// stack's resource limit, as the evaluation in order does.
    fn evaluate_independent_in_parallel(&self, limit: usize) {
        let threads = self.shared.threads;
        if threads < 2 {
            return;
        }
        // Each item is decided on the thread that evaluates it; the globals it may read are
        // decided first, once.
        let items = self.items_in_order();
        if self.resource_items_among(&items) < PARALLEL_ITEMS {
            return;
        }
        let globals = crate::schedule::Independence::globals(self, items.iter().copied());
        self.evaluate_independent(&items, &globals, &AtomicUsize::new(0), limit, None);
    }

    /// Evaluates the independent resource items among `items` on the database's threads,
    /// adding the resources found to `evaluated` and noting each item evaluated in `done`
    /// (then, as for [`Database::lower`]'s large stacks, the calling thread is one of them).
    /// Returns false once `evaluated` passes `limit` (the threads then stop).
    fn evaluate_independent(
        &self,
        items: &[Item],
        globals: &crate::schedule::Globals,
        evaluated: &AtomicUsize,
        limit: usize,
        done: Option<&Mutex<Vec<Item>>>,
    ) -> bool {
        let within = AtomicBool::new(true);
        self.on_threads_by(items, ITEMS_PER_TAKE, done.is_some(), |db, item| {
            if !crate::graph::declares_resources(item.name(db))
                || !crate::schedule::Independence::with(db, globals).resources(item)
            {
                return true;
            }
            let n = crate::graph::resource_count(db, item);
            if let Some(done) = done {
                lock(done).push(item);
            }
            let ok = evaluated.fetch_add(n, Ordering::Relaxed) + n <= limit;
            if !ok {
                within.store(false, Ordering::Relaxed);
            }
            ok
        });
        within.into_inner()
    }

    /// Runs `each` on every item on the database's threads, each through a handle of its own.
    /// The threads take the items in runs of [`ITEMS_PER_TAKE`], the next run whenever one is
    /// done, so a thread that drew cheap items does not sit idle while another finishes. `each`
    /// returns false to end the work: no thread takes another item after that.
    fn on_item_threads(&self, items: &[Item], each: impl Fn(&Database, Item) -> bool + Sync) {
        self.on_threads_by(items, ITEMS_PER_TAKE, false, each);
    }

    /// [`Database::on_item_threads`] over any work, taken `per_take` at a time; with `here`,
    /// the calling thread is one of the threads.
    fn on_threads_by<T: Copy + Sync>(
        &self,
        items: &[T],
        per_take: usize,
        here: bool,
        each: impl Fn(&Database, T) -> bool + Sync,
    ) {
        let per_take = per_take.max(1);
        let next = AtomicUsize::new(0);
        let ended = AtomicBool::new(false);
        let (each, next, ended) = (&each, &next, &ended);
        let threads = self.shared.threads.min(items.len().div_ceil(per_take)).max(1);
        on_threads(
            (0..threads)
                .map(|_| {
                    let db = self.clone();
                    move || {
                        while !ended.load(Ordering::Relaxed) {
                            let start = next.fetch_add(per_take, Ordering::Relaxed);
                            let Some(run) = items.get(start..(start + per_take).min(items.len())) else {
                                break;
                            };
                            for &item in run {
                                if !each(&db, item) {
                                    ended.store(true, Ordering::Relaxed);
                                    break;
                                }
                            }
                        }
                    }
                })
                .collect(),
            here,
        );
    }

    /// Checks the policies' per-item slices on several threads once every item is evaluated:
    /// a slice reads evaluated resources and the policy, and nothing reads a slice but its
    /// policy, so they can run in any order.
    fn check_policies_in_parallel(&self) {
        let threads = self.shared.threads;
        let resources = crate::graph::resource_items(self);
        if threads < 2 || resources.len() < PARALLEL_ITEMS {
            return;
        }
        // Told by their names, without a lowering per resource.
        let policies = self
            .items_in_order()
            .into_iter()
            .filter(|i| matches!(crate::scope::split_name(i.name(self)), crate::scope::ItemName::Policy));
        for policy in policies {
            let LoweredKind::Check(check) = &crate::lower::lower_item(self, policy).kind else { continue };
            if check.kind != iade_intent::ir::CheckKind::Policy
                || !check.body.iter().any(|s| crate::policy::is_sliceable(s).is_some())
            {
                continue;
            }
            if self.shared.once {
                // One query per chunk of resources: nothing is edited, so nothing is gained by
                // checking each resource in a query of its own.
                let chunks = crate::policy::chunks(self, policy);
                self.on_threads_by(&chunks, 1, false, |db, chunk| {
                    crate::policy::policy_chunk(db, chunk);
                    true
                });
                continue;
            }
            self.on_item_threads(resources, |db, item| {
                crate::policy::policy_slice(db, crate::policy::SliceKey::new(db, policy, item));
                true
            });
        }
    }

    /// Lowers the items of a large stack on several threads, each with its own handle on the
    /// database, so that the queries that follow find them lowered (and a resource item's
    /// kind and references found). Lowering an item reads only its syntax, the scopes and the
    /// kinds and rules it names (never another item's evaluation), so it has no cycle to run
    /// into and its results do not depend on the order.
    ///
    /// Only on the first compile: after an edit nearly every item is lowered already, and two
    /// threads checking that 10,000 items are still valid took longer (2 ms of a 23 ms
    /// re-check) than the in-order pass checking them alone.
    fn lower_in_parallel(&self) {
        let threads = self.shared.threads;
        let items = self.items_of(&self.compiled_files());
        if threads < 2 || items.len() < PARALLEL_ITEMS {
            return;
        }
        self.on_item_threads(&items, |db, item| {
            lower_for_stack(db, item);
            true
        });
    }

    /// The intent graph with absolute source locations.
    pub fn intent_graph(&self) -> IntentGraph {
        self.prepare();
        crate::graph::intent_graph(self)
    }

    /// The controls, rules and globals the engine evaluates on observed state.
    pub fn program(&self) -> iade_intent::Program {
        crate::graph::program(self)
    }

    /// Counts for a one-line summary.
    pub fn summary(&self) -> crate::graph::Summary {
        crate::graph::summary(self)
    }

    /// The stack's settings from its `stack` item (its name, `prune`, the limits).
    pub fn stack_settings(&self) -> crate::lower::StackSettings {
        crate::graph::stack_settings(self).settings.clone()
    }

    /// The stack's params: name, type, and whether it has a default.
    pub fn stack_params(&self) -> Vec<(String, String, bool)> {
        crate::graph::stack_params(self)
    }

    /// Converts an item-relative diagnostic to an absolute one.
    pub fn absolute(&self, d: &Diag) -> Option<Diagnostic> {
        let mut out = Diagnostic::new(d.code, d.message.clone());
        if d.warning {
            out.severity = Severity::Warning;
        }
        for l in &d.labels {
            let (file, span) = self.resolve(&l.origin, l.span)?;
            out.labels.push(iade_diagnostics::Label {
                file,
                span,
                message: l.message.clone(),
                primary: l.primary,
            });
        }
        out.help = d.help.clone();
        out.notes = d.notes.clone();
        for f in &d.fixes {
            let (file, span) = self.resolve(&f.origin, f.span)?;
            out.fixes.push(iade_diagnostics::Fix {
                file,
                span,
                replacement: f.replacement.clone(),
                title: f.title.clone(),
            });
        }
        Some(out)
    }

    /// An item-relative span made absolute.
    pub fn resolve(&self, origin: &iade_intent::Origin, span: Span) -> Option<(FileId, Span)> {
        let file = self.file_by_id(origin.file)?;
        // A template's spans are relative to the start of its file.
        if &*origin.item == crate::template::TEMPLATE_ITEM {
            return Some((origin.file, span));
        }
        let offset = item_offset(self, file, &origin.item)?;
        Some((origin.file, span.absolute_from(offset)))
    }

    /// The queries that executed since the last call, as `query(label)`: an item's label is
    /// `file::name` (`main.iade::res:file:config`), a file's its path.
    pub fn take_executed(&self) -> Vec<String> {
        use salsa::plumbing::FromId;
        let Some(log) = &self.shared.log else { return Vec::new() };
        let entries = std::mem::take(&mut *lock(log));
        entries
            .into_iter()
            .map(|(name, id)| match name.as_str() {
                "parse_file" | "file_items" | "file_facts" | "file_refs" | "file_static_ids" => {
                    format!("{name}({})", SourceFile::from_id(id).path(self))
                }
                "item_syntax" | "lower_item" | "eval_global" | "eval_resources" | "check_policy"
                | "resource_values" | "resource_kind" => {
                    let item = Item::from_id(id);
                    format!("{name}({}::{})", item.file(self).path(self), item.name(self))
                }
                "policy_slice" => {
                    let key = crate::policy::SliceKey::from_id(id);
                    format!("{name}({} × {})", key.policy(self).name(self), key.resources(self).name(self))
                }
                _ => name,
            })
            .collect()
    }
}

#[salsa::db]
impl Db for Database {
    fn stack(&self) -> Stack {
        self.stack.expect("invariant: the stack input is created in Database::new")
    }

    fn stdlib_module(&self, name: &str) -> Option<SourceFile> {
        lock(&self.shared.stdlib).get(name).copied()
    }

    fn stdlib_names(&self) -> Vec<String> {
        lock(&self.shared.stdlib).keys().cloned().collect()
    }

    fn load_file(&self, path: &str) -> Result<SourceFile, String> {
        if let Some(f) = lock(&self.shared.by_path).get(path) {
            return Ok(*f);
        }
        if let Some(e) = lock(&self.shared.failed).get(path) {
            return Err(e.clone());
        }
        match (self.shared.loader)(path) {
            Ok(text) => Ok(self.new_file(path.to_string(), text)),
            Err(e) => {
                lock(&self.shared.failed).insert(path.to_string(), e.clone());
                Err(e)
            }
        }
    }

    fn probe_file(&self, path: &str) -> Result<(), String> {
        (self.shared.probe)(path)
    }

    fn params_optional(&self) -> bool {
        self.shared.params_optional
    }

    fn threads(&self) -> usize {
        self.shared.threads
    }

    fn once(&self) -> bool {
        self.shared.once
    }

    fn note_reference_by_id(&self) {
        if !self.shared.referred_by_id.load(Ordering::Relaxed) {
            self.shared.referred_by_id.store(true, Ordering::Relaxed);
        }
    }

    fn take_facts(&self) -> Option<Vec<crate::graph::Facts>> {
        lock(&self.shared.facts).take()
    }

    fn names_no_resource_by_id(&self) -> bool {
        // Only where nothing is edited: a query that returns early on this reads no input,
        // and would not run again after an edit that adds a reference.
        self.shared.once
            && self.shared.lowered.load(Ordering::Relaxed)
            && !self.shared.referred_by_id.load(Ordering::Relaxed)
    }

    fn file_by_id(&self, id: FileId) -> Option<SourceFile> {
        read(&self.shared.files).get(id.0 as usize).copied()
    }

    fn item_by_key(&self, key: &str) -> Option<Item> {
        if let Some(item) = read(&self.shared.items_by_key).get(key) {
            return Some(*item);
        }
        let (file, name) = key.split_once(':')?;
        let file = self.file_by_id(FileId(file.parse().ok()?))?;
        let item = Item::new(self, file, name);
        write(&self.shared.items_by_key).insert(key.to_string(), item);
        Some(item)
    }
}
