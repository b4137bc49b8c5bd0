//! Inputs, items and the per-file parse.
//!
//! An [`Item`] is a top-level declaration keyed by its file and a *name* that does not depend
//! on its position (`value:days`, `res:file:config`, `for#1`). [`item_syntax`] returns the
//! item's tree (spans relative to the item) and is equal across edits elsewhere in the file,
//! so salsa stops there and nothing downstream of an untouched item re-runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use iade_span::FileId;
use iade_syntax::Parse;
use iade_syntax::ast::{ResourceName, Stmt, StmtKind, UseDecl};

use crate::db::Db;

#[salsa::input(debug)]
pub struct SourceFile {
    #[returns(copy)]
    pub id: FileId,
    #[returns(ref)]
    pub path: String,
    #[returns(ref)]
    pub text: String,
}

/// The stack being compiled: its top-level files and the param values given to it.
#[salsa::input(debug)]
pub struct Stack {
    #[returns(ref)]
    pub files: Vec<SourceFile>,
    #[returns(ref)]
    pub params: BTreeMap<String, String>,
}

/// A top-level declaration: its file and its position-independent name.
#[salsa::interned(unsafe(no_lifetime), revisions = usize::MAX, debug)]
pub struct Item {
    #[returns(copy)]
    pub file: SourceFile,
    #[returns(ref)]
    pub name: String,
}

/// A namespace: the stack's top-level files together, a stdlib module, or a module file.
#[salsa::interned(unsafe(no_lifetime), revisions = usize::MAX, debug)]
pub struct Module {
    /// `""` for the stack, `std.fs`, or the module file's path.
    #[returns(ref)]
    pub name: String,
    #[returns(ref)]
    pub files: Vec<SourceFile>,
}

/// A file's parse: its items' trees, comments and syntax diagnostics.
///
/// Only lowering reads the trees. A database that compiles once releases them after lowering
/// (see [`crate::Database::lower`]); what the rest of a compile reads of a parse is in
/// [`file_layout`], which is kept.
#[salsa::tracked(returns(ref), no_eq, lru = 0)]
pub fn parse_file(db: &dyn Db, file: SourceFile) -> Parse {
    iade_syntax::parse_with(file.id(db), file.text(db), db.threads())
}

/// What a compile reads of a file's parse besides the trees: each item's name and where it
/// starts, and the syntax diagnostics.
#[derive(Debug)]
pub struct FileLayout {
    /// The name of each item, by index.
    pub names: Vec<String>,
    /// The index of each name, hashed; the names are `names`'s (a large file has 100,000).
    index: hashbrown::HashTable<u32>,
    /// Each item's absolute start, by index.
    pub offsets: Vec<u32>,
    pub diagnostics: Vec<iade_diagnostics::Diagnostic>,
}

impl FileLayout {
    /// The index of the item named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index
            .find(hash_name(name), |&i| self.names.get(i as usize).is_some_and(|n| n == name))
            .map(|&i| i as usize)
    }

    /// Adds `name` as the next item.
    fn push(&mut self, name: String) {
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.index.insert_unique(hash_name(&name), i, |&j| {
            hash_name(self.names.get(j as usize).map_or("", String::as_str))
        });
        self.names.push(name);
    }
}

fn hash_name(name: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(name)
}

#[salsa::tracked(returns(ref), no_eq)]
pub fn file_layout(db: &dyn Db, file: SourceFile) -> FileLayout {
    let parse = parse_file(db, file);
    let mut layout = FileLayout {
        names: Vec::with_capacity(parse.tree.items.len()),
        index: hashbrown::HashTable::with_capacity(parse.tree.items.len()),
        offsets: parse.tree.items.iter().map(|item| item.offset).collect(),
        diagnostics: parse.diagnostics.clone(),
    };
    let mut counters: HashMap<&'static str, usize> = HashMap::new();
    let mut last_duplicate: HashMap<String, usize> = HashMap::new();
    for item in &parse.tree.items {
        let base = match item_class(&item.stmt) {
            ItemClass::Named(name) => name,
            ItemClass::Anonymous(prefix) => {
                let n = counters.entry(prefix).or_default();
                *n += 1;
                format!("{prefix}#{n}")
            }
        };
        // A second declaration of the same name gets a name of its own, so both are
        // compiled; the duplicate is reported by the scope. Every `#k` below the last one a
        // name got is taken: the next duplicate starts after it, so a thousand duplicates do
        // not try a million names.
        let mut name = base;
        if layout.index_of(&name).is_some() {
            let base = name.clone();
            let k = last_duplicate.entry(base.clone()).or_insert(1);
            loop {
                *k += 1;
                name = format!("{base}#{k}");
                if layout.index_of(&name).is_none() {
                    break;
                }
            }
        }
        layout.push(name);
    }
    layout
}

enum ItemClass {
    /// `PREFIX:NAME`, made in one allocation: a file may have 100,000 items.
    Named(String),
    Anonymous(&'static str),
}

fn item_class(stmt: &Stmt) -> ItemClass {
    let named = |prefix: &str, name: &str| {
        let mut s = String::with_capacity(prefix.len() + 1 + name.len());
        s.push_str(prefix);
        s.push(':');
        s.push_str(name);
        ItemClass::Named(s)
    };
    match &stmt.kind {
        StmtKind::Param(p) => named("value", &p.name.text),
        StmtKind::Let(l) => named("value", &l.name.text),
        StmtKind::Resource(r) => {
            let name = match &r.name {
                ResourceName::Ident(n) => std::borrow::Cow::Borrowed(n.text.as_str()),
                ResourceName::Str(s) => match s.as_plain() {
                    Some(p) => std::borrow::Cow::Owned(p),
                    None => return ItemClass::Anonymous("res"),
                },
            };
            // `res:KIND:NAME`, the kind's parts joined with dots.
            let kind_len: usize = r.kind.iter().map(|n| n.text.len() + 1).sum();
            let mut s = String::with_capacity(4 + kind_len + name.len());
            s.push_str("res:");
            for (i, part) in r.kind.iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                s.push_str(&part.text);
            }
            s.push(':');
            s.push_str(&name);
            ItemClass::Named(s)
        }
        StmtKind::Kind(k) => named("kind", &k.name.text),
        StmtKind::Rule(r) => named("rule", &r.name.text),
        StmtKind::Policy(p) => named("policy", &p.name.text),
        StmtKind::Control(c) => match &c.id {
            iade_syntax::ast::ControlId::Ident(n) => named("control", &n.text),
            iade_syntax::ast::ControlId::Str(s) => match s.as_plain() {
                Some(p) => named("control", &p),
                None => ItemClass::Anonymous("control"),
            },
        },
        StmtKind::Provider(p) => named("provider", &p.name.text),
        StmtKind::Stack(st) => named("stack", &st.name.text),
        StmtKind::Waive(_) => ItemClass::Anonymous("waive"),
        StmtKind::Test(t) => match t.name.as_plain() {
            Some(n) => named("test", &n),
            None => ItemClass::Anonymous("test"),
        },
        StmtKind::Component(c) => named("comp", &c.name.text),
        StmtKind::Use(_) => ItemClass::Anonymous("use"),
        StmtKind::For(_) => ItemClass::Anonymous("for"),
        StmtKind::If(_) => ItemClass::Anonymous("if"),
        _ => ItemClass::Anonymous("stmt"),
    }
}

/// The item's syntax tree, spans relative to the item.
///
/// Read through [`item_syntax`], whose memo is equal across edits that leave the item's own
/// text alone, except in a database that compiles once (`Options::once`): nothing is edited
/// there, and the tree is read from its file's parse without a memo of its own.
pub fn item_tree(db: &dyn Db, item: Item) -> Option<Arc<Stmt>> {
    if db.once() { tree_in_parse(db, item) } else { item_syntax(db, item).clone() }
}

/// The item's syntax tree, remembered. Equal across edits that leave the item's own text
/// alone.
#[salsa::tracked(returns(ref))]
pub fn item_syntax(db: &dyn Db, item: Item) -> Option<Arc<Stmt>> {
    tree_in_parse(db, item)
}

fn tree_in_parse(db: &dyn Db, item: Item) -> Option<Arc<Stmt>> {
    let i = file_layout(db, item.file(db)).index_of(item.name(db))?;
    Some(parse_file(db, item.file(db)).tree.items.get(i)?.stmt.clone())
}

/// Releases the parses of `files` (see [`crate::Database::lower`]), through salsa's LRU
/// eviction: with a capacity of one (the least there is), each parse is read once more so
/// that the eviction knows it, all but the last read are evicted, and the capacity is set
/// back to none, which stops the recording. The smallest file is read last: its parse is the
/// one kept.
pub(crate) fn release_parses(db: &mut dyn Db, files: &[SourceFile]) {
    let mut files = files.to_vec();
    files.sort_by_key(|f| std::cmp::Reverse(f.text(db).len()));
    parse_file::set_lru_capacity(db, 1);
    for file in files {
        parse_file(db, file);
    }
    db.trigger_lru_eviction();
    parse_file::set_lru_capacity(db, 0);
}

/// The absolute offset of an item in its file (for turning relative spans absolute).
pub fn item_offset(db: &dyn Db, file: SourceFile, name: &str) -> Option<u32> {
    let layout = file_layout(db, file);
    layout.index_of(name).and_then(|i| layout.offsets.get(i).copied())
}

/// The items of a file in source order, and the `use` declarations among them. Equal across
/// edits inside item bodies, so scopes are not rebuilt for them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileItems {
    pub items: Vec<Item>,
    pub uses: Vec<(Item, UseDecl)>,
}

#[salsa::tracked(returns(ref))]
pub fn file_items(db: &dyn Db, file: SourceFile) -> FileItems {
    let parse = parse_file(db, file);
    let layout = file_layout(db, file);
    let mut items = Vec::with_capacity(layout.names.len());
    let mut uses = Vec::new();
    for (name, tree) in layout.names.iter().zip(&parse.tree.items) {
        let item = Item::new(db, file, name.as_str());
        if let StmtKind::Use(u) = &tree.stmt.kind {
            uses.push((item, u.clone()));
        }
        items.push(item);
    }
    FileItems { items, uses }
}

/// The module of the stack's own files.
#[salsa::tracked(returns(copy))]
pub fn stack_module(db: &dyn Db) -> Module {
    let files = db.stack().files(db).clone();
    Module::new(db, String::new(), files)
}
