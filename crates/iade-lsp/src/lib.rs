//! `iade lsp`: the language server, over stdio. The only crate that knows the protocol: every
//! feature is a function of `iade-ide` over the compiler's database, and stacks are loaded
//! through `iade-driver` with the editor's unsaved buffers as overlays. Positions are converted
//! here, at the edge, between LSP's UTF-16 lines and columns and the byte offsets every other
//! layer speaks.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use iade_driver::{LoadOptions, LoadedStack, Snapshot, absolute};
use iade_span::LineIndex;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

/// An open document: its text and version.
struct Doc {
    text: String,
    version: i32,
}

#[derive(Default)]
struct State {
    docs: HashMap<PathBuf, Doc>,
    /// One loaded stack per stack directory, kept across requests.
    stacks: HashMap<PathBuf, LoadedStack>,
    /// What each stack's journal last saw (live status), by stack directory.
    status: HashMap<PathBuf, iade_driver::LiveStatus>,
    /// Stack directories whose journal is watched for changes.
    watched: HashSet<PathBuf>,
    /// How many edits each stack (by directory) has seen: diagnostics computed before the
    /// latest edit are never published.
    revisions: HashMap<PathBuf, u64>,
}

pub struct Backend {
    client: Client,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The journal's view of the stack in `dir`, when it has a journal with a run.
fn read_status(dir: &Path) -> Option<iade_driver::LiveStatus> {
    let store = iade_driver::open_history(dir, None).ok()?;
    iade_driver::live_status(store.as_ref()).ok().flatten()
}

/// Status lines for a resource, as hover and information diagnostics show them.
fn status_lines(status: &iade_driver::LiveStatus, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let when = iade_driver::text::fmt_time;
    for d in status.drift.iter().filter(|d| d.resource == id) {
        out.push(format!(
            "drifted (run {}, {}): `{}` is {}, intended {}",
            status.run.id,
            when(d.detected_ms),
            d.field,
            d.observed.as_deref().unwrap_or("absent"),
            d.intended
        ));
    }
    for f in status.findings.iter().filter(|f| f.subject.as_deref() == Some(id)) {
        out.push(format!(
            "control {} fails (run {}): {}",
            f.control,
            status.run.id,
            f.message.as_deref().unwrap_or("")
        ));
    }
    out
}

/// The stack directory a file belongs to: its directory, or for a file of a stack's `tests/`
/// directory, the stack's.
fn stack_dir(path: &Path) -> Option<PathBuf> {
    let dir = path.parent()?;
    if dir.file_name().is_some_and(|n| n == "tests")
        && let Some(up) = dir.parent()
        && iade_driver::files::stack_files(up).is_ok_and(|f| !f.is_empty())
    {
        return Some(up.to_path_buf());
    }
    Some(dir.to_path_buf())
}

fn path_of(uri: &Uri) -> Option<PathBuf> {
    uri.to_file_path().map(|p| absolute(&p))
}

fn position(index: &LineIndex, offset: u32) -> Position {
    let lc = index.line_col_utf16(offset);
    Position { line: lc.line, character: lc.col }
}

fn offset(index: &LineIndex, p: Position) -> u32 {
    index.offset_utf16(iade_span::LineCol { line: p.line, col: p.character })
}

fn range(text: &str, span: iade_span::Span) -> Range {
    let index = LineIndex::new(text);
    Range { start: position(&index, span.start), end: position(&index, span.end) }
}

impl State {
    /// The stack a document belongs to (its directory), loaded on first use, with every open
    /// document of that directory as an overlay.
    fn stack_for(&mut self, path: &Path) -> Option<&mut LoadedStack> {
        let dir = stack_dir(path)?;
        if !self.stacks.contains_key(&dir) {
            let mut overlays = std::collections::BTreeMap::new();
            for (p, d) in &self.docs {
                if stack_dir(p).as_ref() == Some(&dir) {
                    overlays.insert(p.clone(), d.text.clone());
                }
            }
            // The stack's test files too: they are checked as they are written.
            let options = LoadOptions { params_optional: true, tests: true, ..LoadOptions::default() };
            let stack = LoadedStack::load_with(&dir, &options, overlays).ok()?;
            self.stacks.insert(dir.clone(), stack);
        }
        self.stacks.get_mut(&dir)
    }

    /// Counts an edit of the stack `path` belongs to.
    fn edited(&mut self, path: &Path) {
        if let Some(dir) = stack_dir(path) {
            *self.revisions.entry(dir).or_default() += 1;
        }
    }

    /// The path under which the stack's database knows a file.
    fn db_path(stack: &LoadedStack, path: &Path) -> Option<String> {
        stack.known_path(path)
    }
}

/// A unit of work for the analysis thread.
type Job = Box<dyn FnOnce() + Send>;

/// The analysis thread: it answers every request and computes every diagnostic from database
/// snapshots, one at a time. One thread, so the memory the answers allocate is reused from one
/// edit to the next rather than spread over a pool's threads.
fn analysis() -> &'static std::sync::mpsc::Sender<Job> {
    static ANALYSIS: std::sync::OnceLock<std::sync::mpsc::Sender<Job>> = std::sync::OnceLock::new();
    ANALYSIS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("iade-analysis".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .map(drop)
            .unwrap_or_else(|e| eprintln!("iade lsp: cannot start the analysis thread: {e}"));
        tx
    })
}

/// Runs `f` on the analysis thread, catching the cancellation of its queries: `f` owns the
/// snapshot it reads, so the snapshot is dropped (and an edit waiting for it proceeds) as soon
/// as `f` returns or unwinds. A panic in `f` answers an internal error; the thread goes on.
///
/// **Invariant:** a database snapshot lives only inside such a closure, never across an
/// `await` or while the state lock is taken: an edit holds the lock while it waits for every
/// snapshot to be dropped.
async fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> Option<T> + Send + 'static) -> Result<Option<T>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    let internal = |message: String| tower_lsp_server::jsonrpc::Error {
        code: tower_lsp_server::jsonrpc::ErrorCode::InternalError,
        message: message.into(),
        data: None,
    };
    if analysis().send(job).is_err() {
        return Err(internal("the analysis thread is gone".into()));
    }
    match rx.await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(payload)) if payload.is::<iade_compiler::Cancelled>() => Err(content_modified()),
        Ok(Err(payload)) => {
            let what = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            Err(internal(format!("the request failed: {what}")))
        }
        Err(_) => Err(internal("the analysis thread is gone".into())),
    }
}

/// LSP's "content modified": the document changed while the request was answered.
fn content_modified() -> tower_lsp_server::jsonrpc::Error {
    tower_lsp_server::jsonrpc::Error {
        code: tower_lsp_server::jsonrpc::ErrorCode::ServerError(-32801),
        message: "the document changed while the request was answered".into(),
        data: None,
    }
}

/// Recomputes the diagnostics of the stack `path` belongs to and publishes them for each of
/// its files, tagged with the open documents' versions; drift and failing controls the
/// journal last recorded are information diagnostics on their resources.
async fn publish(client: &Client, state: &Arc<Mutex<State>>, path: &Path) {
    let dir = stack_dir(path).unwrap_or_default();
    let (snapshot, versions, status, revision) = {
        let mut state = lock(state);
        let versions: HashMap<PathBuf, i32> =
            state.docs.iter().map(|(p, d)| (p.clone(), d.version)).collect();
        let status = state.status.get(&dir).cloned();
        let revision = state.revisions.get(&dir).copied().unwrap_or(0);
        let Some(stack) = state.stack_for(path) else { return };
        (stack.snapshot(), versions, status, revision)
    };
    // Cancelled by a newer edit: that edit publishes its own diagnostics.
    let Ok(Some(by_file)) = off_runtime(move || Some(diagnostics_by_file(&snapshot, status.as_ref()))).await
    else {
        return;
    };
    // Never stale: an edit since the snapshot was taken publishes its own.
    if lock(state).revisions.get(&dir).copied().unwrap_or(0) != revision {
        return;
    }
    for (p, diags) in by_file {
        let Some(uri) = Uri::from_file_path(&p) else { continue };
        client.publish_diagnostics(uri, diags, versions.get(&p).copied()).await;
    }
}

/// The diagnostics of a stack by file (every file of the stack, also those without any), with
/// drift and failing controls the journal last recorded as information on their resources.
fn diagnostics_by_file(
    stack: &Snapshot,
    status: Option<&iade_driver::LiveStatus>,
) -> HashMap<PathBuf, Vec<Diagnostic>> {
    let diags = stack.diagnostics();
    // Every file by path, but the text (and its line index) only of those the diagnostics
    // point into: the others are not copied on every publish.
    let sources = stack.sources_for(&diags);
    let mut by_file: HashMap<PathBuf, Vec<Diagnostic>> = HashMap::new();
    for (_, f) in sources.iter() {
        if f.path.ends_with(".iade") && !f.path.starts_with('<') {
            by_file.entry(absolute(Path::new(&f.path))).or_default();
        }
    }
    for d in &diags {
        let Some(primary) = d.primary_label() else { continue };
        let Some(file) = sources.get(primary.file) else { continue };
        // The index the sources built once: a file with many diagnostics is not indexed again
        // for each of them.
        let index = &file.lines;
        let related: Vec<DiagnosticRelatedInformation> = d
            .labels
            .iter()
            .filter(|l| !l.primary)
            .filter_map(|l| {
                let f = sources.get(l.file)?;
                Some(DiagnosticRelatedInformation {
                    location: Location {
                        uri: Uri::from_file_path(absolute(Path::new(&f.path)))?,
                        range: Range {
                            start: position(&f.lines, l.span.start),
                            end: position(&f.lines, l.span.end),
                        },
                    },
                    message: l.message.clone(),
                })
            })
            .collect();
        let mut message = d.message.clone();
        if let Some(h) = &d.help {
            message.push_str(&format!("\nhelp: {h}"));
        }
        by_file.entry(absolute(Path::new(&file.path))).or_default().push(Diagnostic {
            range: Range {
                start: position(index, primary.span.start),
                end: position(index, primary.span.end),
            },
            severity: Some(if d.is_error() {
                DiagnosticSeverity::ERROR
            } else {
                DiagnosticSeverity::WARNING
            }),
            code: Some(NumberOrString::String(d.code.as_str().to_string())),
            source: Some("iade".into()),
            message,
            related_information: (!related.is_empty()).then_some(related),
            ..Diagnostic::default()
        });
    }
    // Live status: what the journal's last run saw, on the resources it concerns.
    if let Some(status) = status {
        let mut ids: Vec<&str> = status.drift.iter().map(|d| d.resource.as_str()).collect();
        ids.extend(status.findings.iter().filter_map(|f| f.subject.as_deref()));
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let Some(place) = stack.database().resource_declaration(id) else { continue };
            let Some(text) = stack.database().file_text(&place.path) else { continue };
            for line in status_lines(status, id) {
                by_file.entry(absolute(Path::new(&place.path))).or_default().push(Diagnostic {
                    range: range(&text, place.span),
                    severity: Some(DiagnosticSeverity::INFORMATION),
                    source: Some("iade (journal)".into()),
                    message: format!("{id} {line}"),
                    ..Diagnostic::default()
                });
            }
        }
    }
    by_file
}

/// Reads the stack's live status and, once per stack, follows its journal: each change
/// (a run of any engine) re-reads the status and publishes again. No polling: the journal's
/// change notification wakes it.
fn follow_journal(client: &Client, state: &Arc<Mutex<State>>, path: &Path) {
    let Some(dir) = stack_dir(path) else { return };
    {
        let mut st = lock(state);
        if let Some(status) = read_status(&dir) {
            st.status.insert(dir.clone(), status);
        }
        if !st.watched.insert(dir.clone()) {
            return;
        }
    }
    let Ok(store) = iade_driver::open_history(&dir, None) else { return };
    let Ok(subscription) = store.subscribe() else { return };
    let handle = tokio::runtime::Handle::current();
    let (client, state, path) = (client.clone(), state.clone(), path.to_path_buf());
    std::thread::spawn(move || {
        let _keep = subscription.keep;
        while subscription.changes.recv().is_ok() {
            // A run writes in bursts: let it settle, then read once.
            std::thread::sleep(std::time::Duration::from_millis(100));
            while subscription.changes.try_recv().is_ok() {}
            if let Some(status) = iade_driver::live_status(store.as_ref()).ok().flatten() {
                lock(&state).status.insert(dir.clone(), status);
            }
            let (client, state, path) = (client.clone(), state.clone(), path.clone());
            handle.spawn(async move { publish(&client, &state, &path).await });
        }
    });
}

impl Backend {
    async fn publish(&self, path: &Path) {
        follow_journal(&self.client, &self.state, path);
        publish(&self.client, &self.state, path).await;
    }

    /// Runs `f` with a snapshot of the document's stack, the document's path in its database
    /// and its text, off the async runtime. An edit that arrives meanwhile cancels the
    /// computation (the request answers "content modified"), so a stale request never delays
    /// the edit's own diagnostics.
    async fn with_doc<T: Send + 'static>(
        &self,
        uri: &Uri,
        f: impl FnOnce(&Snapshot, &str, &str) -> Option<T> + Send + 'static,
    ) -> Result<Option<T>> {
        let view = {
            let Some(path) = path_of(uri) else { return Ok(None) };
            let mut state = lock(&self.state);
            let text = state.docs.get(&path).map(|d| d.text.clone());
            let Some(stack) = state.stack_for(&path) else { return Ok(None) };
            let Some(db_path) = State::db_path(stack, &path) else { return Ok(None) };
            let Some(text) = text.or_else(|| stack.database().file_text(&db_path)) else { return Ok(None) };
            (stack.snapshot(), db_path, text)
        };
        off_runtime(move || {
            let (snapshot, db_path, text) = view;
            f(&snapshot, &db_path, &text)
        })
        .await
    }

    fn location(&self, place: &iade_compiler::Place) -> Option<Location> {
        let state = lock(&self.state);
        let text =
            state.stacks.values().find_map(|s| s.database().file_text(&place.path)).unwrap_or_default();
        let mut abs = absolute(Path::new(&place.path));
        // The embedded standard library has no file on disk: it is served as read-only copies
        // under one directory per version, so its URIs are stable.
        if !abs.exists() && !text.is_empty() {
            abs = stdlib_copy(&place.path, &text)?;
        }
        let uri = Uri::from_file_path(&abs)?;
        Some(Location { uri, range: range(&text, place.span) })
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, _: InitializeParams) -> Result<InitializeResult> {
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::INCREMENTAL)),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                document_symbol_provider: Some(OneOf::Left(true)),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                document_formatting_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                rename_provider: Some(OneOf::Left(true)),
                inlay_hint_provider: Some(OneOf::Left(true)),
                code_lens_provider: Some(CodeLensOptions { resolve_provider: Some(false) }),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![RUN_TEST.into()],
                    ..ExecuteCommandOptions::default()
                }),
                semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
                    SemanticTokensOptions {
                        legend: SemanticTokensLegend {
                            token_types: TOKEN_TYPES.to_vec(),
                            token_modifiers: Vec::new(),
                        },
                        full: Some(SemanticTokensFullOptions::Bool(true)),
                        range: None,
                        ..SemanticTokensOptions::default()
                    },
                )),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![".".into()]),
                    ..CompletionOptions::default()
                }),
                ..ServerCapabilities::default()
            },
            server_info: Some(ServerInfo {
                name: "iade".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            ..InitializeResult::default()
        })
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let Some(path) = path_of(&params.text_document.uri) else { return };
        {
            let mut state = lock(&self.state);
            let text = params.text_document.text;
            state
                .docs
                .insert(path.clone(), Doc { text: text.clone(), version: params.text_document.version });
            if let Some(stack) = state.stack_for(&path) {
                let _ = stack.set_overlay(&path, Some(text));
            }
            state.edited(&path);
        }
        self.publish(&path).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let Some(path) = path_of(&params.text_document.uri) else { return };
        {
            let mut state = lock(&self.state);
            let Some(doc) = state.docs.get_mut(&path) else { return };
            // Changes apply in order, each to the text the previous one left.
            for change in params.content_changes {
                match change.range {
                    Some(r) => {
                        let index = LineIndex::new(&doc.text);
                        let (a, b) = (offset(&index, r.start) as usize, offset(&index, r.end) as usize);
                        if a <= b
                            && b <= doc.text.len()
                            && doc.text.is_char_boundary(a)
                            && doc.text.is_char_boundary(b)
                        {
                            doc.text.replace_range(a..b, &change.text);
                        }
                    }
                    None => doc.text = change.text,
                }
            }
            doc.version = params.text_document.version;
            let text = doc.text.clone();
            if let Some(stack) = state.stack_for(&path) {
                let _ = stack.set_overlay(&path, Some(text));
            }
            state.edited(&path);
        }
        self.publish(&path).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let Some(path) = path_of(&params.text_document.uri) else { return };
        {
            let mut state = lock(&self.state);
            state.docs.remove(&path);
            if let Some(stack) = state.stack_for(&path) {
                let _ = stack.set_overlay(&path, None);
            }
            state.edited(&path);
        }
        self.publish(&path).await;
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let p = params.text_document_position_params;
        let status = path_of(&p.text_document.uri)
            .and_then(|path| stack_dir(&path))
            .and_then(|dir| lock(&self.state).status.get(&dir).cloned());
        self.with_doc(&p.text_document.uri, move |stack, db_path, text| {
            let index = LineIndex::new(text);
            let at = offset(&index, p.position);
            let mut h = iade_ide::hover(stack.database(), db_path, at)?;
            // A resource's last observed state, as the journal recorded it.
            if let (Some(status), Some(file)) = (&status, stack.database().file_at(db_path))
                && let Some((id, _)) = stack.database().resource_at(file, at)
                && h.markdown.contains(&id)
            {
                let lines = status_lines(status, &id);
                h.markdown.push_str("\n\n---\n\n");
                if lines.is_empty() {
                    h.markdown.push_str(&format!(
                        "in sync as of run {} ({})",
                        status.run.id,
                        iade_driver::text::fmt_time(status.run.started_ms)
                    ));
                } else {
                    h.markdown.push_str(&lines.join("\n\n"));
                }
                if let Some((_, ms)) = status.corrected.iter().find(|(r, _)| *r == id) {
                    h.markdown.push_str(&format!("\n\nlast corrected {}", iade_driver::text::fmt_time(*ms)));
                }
            }
            Some(Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: h.markdown,
                }),
                range: Some(Range {
                    start: position(&index, h.span.start),
                    end: position(&index, h.span.end),
                }),
            })
        })
        .await
    }

    async fn goto_definition(&self, params: GotoDefinitionParams) -> Result<Option<GotoDefinitionResponse>> {
        let p = params.text_document_position_params;
        let places = self
            .with_doc(&p.text_document.uri, move |stack, db_path, text| {
                let index = LineIndex::new(text);
                Some(iade_ide::definition(stack.database(), db_path, offset(&index, p.position)))
            })
            .await?
            .unwrap_or_default();
        let locations: Vec<Location> = places.iter().filter_map(|pl| self.location(pl)).collect();
        Ok((!locations.is_empty()).then_some(GotoDefinitionResponse::Array(locations)))
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let p = params.text_document_position;
        let places = self
            .with_doc(&p.text_document.uri, move |stack, db_path, text| {
                let index = LineIndex::new(text);
                Some(iade_ide::references(stack.database(), db_path, offset(&index, p.position)))
            })
            .await?
            .unwrap_or_default();
        Ok(Some(places.iter().filter_map(|pl| self.location(pl)).collect()))
    }

    async fn document_symbol(&self, params: DocumentSymbolParams) -> Result<Option<DocumentSymbolResponse>> {
        self.with_doc(&params.text_document.uri, move |stack, db_path, text| {
            let symbols: Vec<DocumentSymbol> = iade_ide::outline(stack.database(), db_path)
                .into_iter()
                .map(|s| {
                    let kind = match s.category {
                        iade_compiler::ItemCategory::Resource | iade_compiler::ItemCategory::Instance => {
                            SymbolKind::OBJECT
                        }
                        iade_compiler::ItemCategory::Component | iade_compiler::ItemCategory::Kind => {
                            SymbolKind::CLASS
                        }
                        iade_compiler::ItemCategory::Param | iade_compiler::ItemCategory::Let => {
                            SymbolKind::VARIABLE
                        }
                        iade_compiler::ItemCategory::Rule => SymbolKind::FUNCTION,
                        _ => SymbolKind::NAMESPACE,
                    };
                    #[expect(deprecated, reason = "the field is deprecated in LSP but required by the type")]
                    DocumentSymbol {
                        name: if s.name.is_empty() { "(anonymous)".into() } else { s.name },
                        detail: s.detail,
                        kind,
                        tags: None,
                        deprecated: None,
                        range: range(text, s.span),
                        selection_range: range(text, s.name_span),
                        children: None,
                    }
                })
                .collect();
            Some(DocumentSymbolResponse::Nested(symbols))
        })
        .await
    }

    async fn symbol(&self, params: WorkspaceSymbolParams) -> Result<Option<WorkspaceSymbolResponse>> {
        let query = params.query.to_lowercase();
        let mut places: Vec<(String, Option<String>, iade_compiler::Place)> = Vec::new();
        {
            let state = lock(&self.state);
            for stack in state.stacks.values() {
                let db = stack.database();
                for path in db.stack_file_paths() {
                    for s in iade_ide::outline(db, &path) {
                        if s.name.to_lowercase().contains(&query) {
                            places.push((
                                s.name,
                                s.detail,
                                iade_compiler::Place { path: path.clone(), span: s.name_span },
                            ));
                        }
                    }
                }
            }
        }
        let symbols: Vec<WorkspaceSymbol> = places
            .into_iter()
            .filter_map(|(name, detail, place)| {
                let location = self.location(&place)?;
                Some(WorkspaceSymbol {
                    name,
                    kind: SymbolKind::OBJECT,
                    tags: None,
                    container_name: detail,
                    location: OneOf::Left(location),
                    data: None,
                })
            })
            .collect();
        Ok(Some(WorkspaceSymbolResponse::Nested(symbols)))
    }

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        self.with_doc(&params.text_document.uri, move |_, _, text| {
            let formatted = iade_ide::format(text)?;
            if formatted == text {
                return Some(Vec::new());
            }
            let whole = range(text, iade_span::Span::from(0..text.len()));
            Some(vec![TextEdit { range: whole, new_text: formatted }])
        })
        .await
    }

    async fn semantic_tokens_full(
        &self,
        params: SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        self.with_doc(&params.text_document.uri, move |_, _, text| {
            Some(SemanticTokensResult::Tokens(SemanticTokens {
                result_id: None,
                data: semantic_tokens(text),
            }))
        })
        .await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = params.text_document.uri.clone();
        let fixes = self
            .with_doc(&uri, move |stack, db_path, text| {
                let index = LineIndex::new(text);
                let span = iade_span::Span::new(
                    offset(&index, params.range.start),
                    offset(&index, params.range.end),
                );
                let diags = stack.diagnostics();
                let mut fixes = iade_ide::quick_fixes(stack.database(), &diags, db_path, span);
                fixes.extend(iade_ide::add_missing_fields(stack.database(), db_path, span.start));
                Some(fixes)
            })
            .await?
            .unwrap_or_default();
        let mut actions = Vec::new();
        for fix in fixes {
            let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
            for e in &fix.edits {
                let Some(loc) = self.location(&iade_compiler::Place { path: e.path.clone(), span: e.span })
                else {
                    continue;
                };
                changes
                    .entry(loc.uri)
                    .or_default()
                    .push(TextEdit { range: loc.range, new_text: e.text.clone() });
            }
            // A fix a diagnostic carries is preferred; placeholders to fill in are not.
            let preferred = !fix.code.is_empty();
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: fix.title,
                kind: Some(CodeActionKind::QUICKFIX),
                is_preferred: Some(preferred),
                edit: Some(WorkspaceEdit { changes: Some(changes), ..WorkspaceEdit::default() }),
                ..CodeAction::default()
            }));
        }
        Ok(Some(actions))
    }

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let p = params.text_document_position;
        let result = self
            .with_doc(&p.text_document.uri, move |stack, db_path, text| {
                let index = LineIndex::new(text);
                Some(iade_ide::rename(
                    stack.database(),
                    db_path,
                    offset(&index, p.position),
                    &params.new_name,
                ))
            })
            .await?;
        let edits = match result {
            Some(Ok(edits)) => edits,
            Some(Err(iade_ide::RenameError::InvalidName(n))) => {
                return Err(tower_lsp_server::jsonrpc::Error::invalid_params(format!(
                    "`{n}` is not a valid name"
                )));
            }
            Some(Err(iade_ide::RenameError::Taken(n))) => {
                return Err(tower_lsp_server::jsonrpc::Error::invalid_params(format!(
                    "`{n}` is already declared"
                )));
            }
            _ => return Ok(None),
        };
        let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
        for e in edits {
            let Some(loc) = self.location(&iade_compiler::Place { path: e.path.clone(), span: e.span })
            else {
                continue;
            };
            changes.entry(loc.uri).or_default().push(TextEdit { range: loc.range, new_text: e.text });
        }
        Ok(Some(WorkspaceEdit { changes: Some(changes), ..WorkspaceEdit::default() }))
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        let uri = params.text_document.uri.clone();
        let dir = path_of(&uri).and_then(|p| stack_dir(&p)).unwrap_or_default();
        self.with_doc(&uri, move |stack, db_path, text| {
            let lenses = iade_ide::outline(stack.database(), db_path)
                .into_iter()
                .filter(|s| s.category == iade_compiler::ItemCategory::Test)
                .map(|s| CodeLens {
                    range: range(text, s.name_span),
                    command: Some(Command {
                        title: "▶ run test".into(),
                        command: RUN_TEST.into(),
                        arguments: Some(vec![
                            serde_json::Value::String(dir.to_string_lossy().into_owned()),
                            serde_json::Value::String(s.name.clone()),
                        ]),
                    }),
                    data: None,
                })
                .collect();
            Some(lenses)
        })
        .await
    }

    /// `iade.runTest DIR NAME`: runs the tests named NAME of the stack in DIR, as `iade test
    /// --filter NAME` does, shows the outcome and returns the report.
    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        if params.command != RUN_TEST {
            return Err(tower_lsp_server::jsonrpc::Error::method_not_found());
        }
        let (Some(dir), Some(name)) = (
            params.arguments.first().and_then(|v| v.as_str()).map(PathBuf::from),
            params.arguments.get(1).and_then(|v| v.as_str()).map(str::to_string),
        ) else {
            return Err(tower_lsp_server::jsonrpc::Error::invalid_params(
                "iade.runTest takes a stack directory and a test name",
            ));
        };
        let options = iade_driver::TestOptions { filter: Some(name.clone()), bless: false };
        let ran = tokio::task::spawn_blocking(move || {
            iade_driver::run_tests(&dir, &LoadOptions::default(), &options)
        })
        .await;
        let report = match ran {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.client.show_message(MessageType::ERROR, format!("iade test: {e}")).await;
                return Ok(None);
            }
            Err(e) => {
                return Err(tower_lsp_server::jsonrpc::Error {
                    code: tower_lsp_server::jsonrpc::ErrorCode::InternalError,
                    message: format!("the test run failed: {e}").into(),
                    data: None,
                });
            }
        };
        let mut text = Vec::new();
        for r in &report.results {
            if r.passed {
                text.push(format!("test {} ... ok", r.name));
                continue;
            }
            text.push(format!("test {} ... FAILED", r.name));
            for f in &r.failures {
                text.push(format!("{} (line {}): not met", f.expect, f.line));
                text.extend(f.detail.iter().map(|d| format!("  {d}")));
            }
        }
        if report.results.is_empty() {
            text.push(format!("no test named {name}"));
        }
        let kind = if report.failed() > 0 || report.results.is_empty() {
            MessageType::ERROR
        } else {
            MessageType::INFO
        };
        self.client.show_message(kind, text.join("\n")).await;
        Ok(serde_json::to_value(&report).ok())
    }

    async fn inlay_hint(&self, params: InlayHintParams) -> Result<Option<Vec<InlayHint>>> {
        let wanted = params.range;
        self.with_doc(&params.text_document.uri, move |stack, db_path, text| {
            let index = LineIndex::new(text);
            let hints = iade_ide::inlay_hints(stack.database(), db_path)
                .into_iter()
                .map(|h| (position(&index, h.offset), h.label))
                .filter(|(at, _)| wanted.start <= *at && *at <= wanted.end)
                .map(|(at, label)| InlayHint {
                    position: at,
                    label: InlayHintLabel::String(label),
                    kind: None,
                    text_edits: None,
                    tooltip: Some(InlayHintTooltip::String("the value this string evaluates to".into())),
                    padding_left: Some(true),
                    padding_right: None,
                    data: None,
                })
                .collect();
            Some(hints)
        })
        .await
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let p = params.text_document_position;
        self.with_doc(&p.text_document.uri, move |stack, db_path, text| {
            let index = LineIndex::new(text);
            let items: Vec<CompletionItem> =
                iade_ide::completion(stack.database(), db_path, offset(&index, p.position))
                    .into_iter()
                    .map(|c| CompletionItem {
                        label: c.label,
                        detail: Some(c.detail),
                        documentation: c.doc.map(|d| {
                            Documentation::MarkupContent(MarkupContent {
                                kind: MarkupKind::Markdown,
                                value: d,
                            })
                        }),
                        kind: Some(match c.kind {
                            iade_ide::CompletionKind::Kind => CompletionItemKind::CLASS,
                            iade_ide::CompletionKind::Field => CompletionItemKind::FIELD,
                            iade_ide::CompletionKind::Name => CompletionItemKind::VARIABLE,
                            iade_ide::CompletionKind::Function => CompletionItemKind::FUNCTION,
                            iade_ide::CompletionKind::EnumMember => CompletionItemKind::ENUM_MEMBER,
                        }),
                        ..CompletionItem::default()
                    })
                    .collect();
            Some(CompletionResponse::Array(items))
        })
        .await
    }
}

/// The command a code lens above a test runs: arguments are the stack directory and the
/// test's name.
const RUN_TEST: &str = "iade.runTest";

/// The semantic token types, in the order of `iade_ide::TokenClass`'s mapping below.
const TOKEN_TYPES: [SemanticTokenType; 6] = [
    SemanticTokenType::KEYWORD,
    SemanticTokenType::STRING,
    SemanticTokenType::NUMBER,
    SemanticTokenType::COMMENT,
    SemanticTokenType::OPERATOR,
    SemanticTokenType::VARIABLE,
];

/// Semantic tokens of a text, LSP's relative encoding, one token per line of a multi-line one.
fn semantic_tokens(text: &str) -> Vec<SemanticToken> {
    let index = LineIndex::new(text);
    let mut out = Vec::new();
    let (mut prev_line, mut prev_col) = (0u32, 0u32);
    for (span, class) in iade_ide::highlight(text) {
        let kind = match class {
            iade_ide::TokenClass::Keyword => 0,
            iade_ide::TokenClass::String => 1,
            iade_ide::TokenClass::Number => 2,
            iade_ide::TokenClass::Comment => 3,
            iade_ide::TokenClass::Operator => 4,
            iade_ide::TokenClass::Name => 5,
        };
        // Split at line breaks: a token never spans lines in LSP's encoding.
        let mut start = span.start as usize;
        let end = (span.end as usize).min(text.len());
        while start < end {
            let line_end = text[start..end].find('\n').map_or(end, |i| start + i);
            if line_end > start {
                let a = index.line_col_utf16(start as u32);
                let length = text[start..line_end].encode_utf16().count() as u32;
                let delta_line = a.line - prev_line;
                let delta_start = if delta_line == 0 { a.col - prev_col } else { a.col };
                out.push(SemanticToken {
                    delta_line,
                    delta_start,
                    length,
                    token_type: kind,
                    token_modifiers_bitset: 0,
                });
                prev_line = a.line;
                prev_col = a.col;
            }
            start = line_end + 1;
        }
    }
    out
}

/// A read-only copy of an embedded standard library file (`std/fs.iade`), written once per
/// version under the temporary directory.
fn stdlib_copy(path: &str, text: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let rel: PathBuf = Path::new(path)
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(n) if !n.to_string_lossy().starts_with('<')))
        .collect();
    let dir = std::env::temp_dir().join(format!("iade-stdlib-{}", env!("CARGO_PKG_VERSION")));
    let file = dir.join(rel);
    if std::fs::read_to_string(&file).ok().as_deref() != Some(text) {
        std::fs::create_dir_all(file.parent()?).ok()?;
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644));
        std::fs::write(&file, text).ok()?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).ok()?;
    }
    Some(file)
}

/// Serves the language server on stdin and stdout until the client exits.
pub fn run() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let (stdin, stdout) = (tokio::io::stdin(), tokio::io::stdout());
        let (service, socket) =
            LspService::new(|client| Backend { client, state: Arc::new(Mutex::new(State::default())) });
        Server::new(stdin, stdout, socket).serve(service).await;
    });
    Ok(())
}
