//! Name resolution: what a name means in a module.
//!
//! A module's *own* scope holds what its files declare; its full scope adds what its `use`
//! declarations import from other modules' own scopes. Imports read only own scopes, so
//! resolving names never recurses through modules (an import cycle is reported, not looped
//! on).

use std::collections::BTreeMap;
use std::sync::Arc;

use iade_diagnostics::codes;
use iade_intent::Origin;
use iade_span::Span;
use iade_syntax::ast::{UseDecl, UsePath};

use crate::db::Db;
use crate::diag::Diag;
use crate::items::{Item, Module, SourceFile, file_items, stack_module};
use crate::suggest::{Scored, Typos, closest_scored, did_you_mean, nearer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Def {
    /// A `let` or `param`.
    Value(Item),
    Resource(Item),
    Rule(Item),
    Kind(Item),
    Provider(Item),
    Component(Item),
    Module(Module),
    /// A resource with a fixed name declared inside a top-level `if` or `for`.
    Nested(Item, NestedRes),
}

/// A resource declared inside a generator item: its kind as written and its name.
#[salsa::interned(unsafe(no_lifetime), revisions = usize::MAX, debug)]
pub struct NestedRes {
    #[returns(ref)]
    pub kind: Vec<String>,
    #[returns(ref)]
    pub name: String,
}

fn nested_resources(db: &dyn Db, item: Item, stmts: &[iade_syntax::ast::Stmt], out: &mut Vec<(String, Def)>) {
    use iade_syntax::ast::{Else, ResourceName, StmtKind};
    for stmt in stmts {
        match &stmt.kind {
            StmtKind::Resource(r) => {
                let name = match &r.name {
                    ResourceName::Ident(n) => Some(n.text.clone()),
                    ResourceName::Str(s) => s.as_plain(),
                };
                if let Some(name) = name {
                    let kind: Vec<String> = r.kind.iter().map(|n| n.text.clone()).collect();
                    out.push((name.clone(), Def::Nested(item, NestedRes::new(db, kind, name))));
                }
            }
            StmtKind::If(i) => {
                nested_resources(db, item, &i.then.stmts, out);
                match &i.otherwise {
                    Some(Else::Block(b)) => nested_resources(db, item, &b.stmts, out),
                    Some(Else::If(s)) => nested_resources(db, item, std::slice::from_ref(&**s), out),
                    None => {}
                }
            }
            StmtKind::For(f) => nested_resources(db, item, &f.body.stmts, out),
            _ => {}
        }
    }
}

impl Def {
    pub fn describe(&self) -> &'static str {
        match self {
            Def::Value(_) => "a value",
            Def::Resource(_) => "a resource",
            Def::Rule(_) => "a rule",
            Def::Kind(_) => "a kind",
            Def::Provider(_) => "a provider",
            Def::Component(_) => "a component",
            Def::Module(_) => "a module",
            Def::Nested(..) => "a resource",
        }
    }
}

/// What an item name says about the item: its category and declared name.
pub enum ItemName<'a> {
    Value(&'a str),
    Resource { name: &'a str },
    Kind(&'a str),
    Rule(&'a str),
    Policy,
    Control,
    Provider(&'a str),
    Component(&'a str),
    Other,
}

pub fn split_name(name: &str) -> ItemName<'_> {
    // A duplicate's name ends in `#k`; it declares the same name as the first.
    let base = match name.rfind('#') {
        Some(i) if name.contains(':') => &name[..i],
        _ => name,
    };
    let Some((prefix, rest)) = base.split_once(':') else { return ItemName::Other };
    match prefix {
        "value" => ItemName::Value(rest),
        "res" => match rest.rsplit_once(':') {
            Some((_kind, name)) => ItemName::Resource { name },
            None => ItemName::Other,
        },
        "kind" => ItemName::Kind(rest),
        "rule" => ItemName::Rule(rest),
        "policy" => ItemName::Policy,
        "control" => ItemName::Control,
        "provider" => ItemName::Provider(rest),
        "comp" => ItemName::Component(rest),
        _ => ItemName::Other,
    }
}

pub fn origin(db: &dyn Db, item: Item) -> Origin {
    Origin { file: item.file(db).id(db), item: Arc::from(item.name(db).as_str()) }
}

/// What one name declares: almost always one thing, kept inline.
pub type Defs = smallvec::SmallVec<[Def; 1]>;

/// The names a module declares, each with what it declares. Found by hashing (every name the
/// stack's expressions use is looked up here, and a large stack declares 100,000); listed in
/// the names' order, for messages and completions.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Names {
    defs: rustc_hash::FxHashMap<String, Defs>,
    /// The names that declare something other than a resource (a value, rule, kind, …), in
    /// no particular order: the few that duplicates are looked for among, and that completion
    /// and "kinds in scope" list, found without sorting 100,000 resource names.
    declared: Vec<String>,
    /// For "did you mean": built when a name is first not found.
    typos: Typos,
}

impl Names {
    pub fn get(&self, name: &str) -> Option<&Defs> {
        self.defs.get(name)
    }

    /// Every name with what it declares, in the names' order.
    pub fn sorted(&self) -> Vec<(&String, &Defs)> {
        let mut out: Vec<(&String, &Defs)> = self.defs.iter().collect();
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// The names that declare something other than a resource, with what each declares, in
    /// the names' order.
    pub fn declared(&self) -> Vec<(&String, &Defs)> {
        let mut out: Vec<(&String, &Defs)> =
            self.declared.iter().filter_map(|n| Some((n, self.defs.get(n)?))).collect();
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// The names in no particular order: for a search whose answer does not depend on it
    /// ([`crate::suggest::closest`] takes the least distance, then the least name). Sorting them
    /// for each unknown name made 5,000 unknown names in a stack of 5,000 take 0.6 s.
    pub fn unordered(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }

    /// The declared name closest to `name` (see [`crate::suggest::closest`]), with its
    /// distance. Each name's answer is kept: a stack that misspells one name in 100,000
    /// places searches once.
    pub fn closest(&self, name: &str) -> Option<Scored> {
        self.typos.closest(name, || self.unordered())
    }

    /// `did you mean `x`?` over the declared names, or nothing.
    pub fn did_you_mean(&self, name: &str) -> Option<String> {
        did_you_mean(name, self.closest(name).as_ref().map(|(_, c)| &**c))
    }

    /// An empty set of names with room for `count`.
    fn with_capacity(count: usize) -> Names {
        Names {
            defs: rustc_hash::FxHashMap::with_capacity_and_hasher(count, Default::default()),
            declared: Vec::new(),
            typos: Typos::default(),
        }
    }

    fn add(&mut self, name: String, def: Def) {
        if declares(&def) && !self.defs.get(&name).is_some_and(|d| d.iter().any(declares)) {
            self.declared.push(name.clone());
        }
        self.defs.entry(name).or_default().push(def);
    }
}

/// "it declares: …", for a name a module does not have: its names in order, the first
/// [`LISTED`] of a large module.
fn declares_note(names: &Names) -> String {
    let all = names.sorted();
    let shown: Vec<&str> = all.iter().take(LISTED).map(|(n, _)| n.as_str()).collect();
    match all.len().checked_sub(LISTED) {
        Some(more) if more > 0 => format!("it declares: {}, and {more} more", shown.join(", ")),
        _ => format!("it declares: {}", shown.join(", ")),
    }
}

/// How many names a message lists.
const LISTED: usize = 30;

/// Whether a definition declares something other than a resource.
fn declares(d: &Def) -> bool {
    !matches!(d, Def::Resource(_) | Def::Nested(..))
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OwnScope {
    /// Shared with the module's [`Scope`], which adds only what `use` brings in.
    pub defs: Arc<Names>,
    /// Every item of the module, in file and source order.
    pub items: Vec<Item>,
}

#[salsa::tracked(returns(ref))]
pub fn own_scope(db: &dyn Db, module: Module) -> OwnScope {
    let mut scope = OwnScope::default();
    let count = module.files(db).iter().map(|f| file_items(db, *f).items.len()).sum();
    let mut defs = Names::with_capacity(count);
    for file in module.files(db) {
        for &item in &file_items(db, *file).items {
            scope.items.push(item);
            let (name, def) = match split_name(item.name(db)) {
                ItemName::Value(n) => (n, Def::Value(item)),
                ItemName::Resource { name, .. } => (name, Def::Resource(item)),
                ItemName::Kind(n) => (n, Def::Kind(item)),
                ItemName::Rule(n) => (n, Def::Rule(item)),
                ItemName::Provider(n) => (n, Def::Provider(item)),
                ItemName::Component(n) => (n, Def::Component(item)),
                ItemName::Other if item.name(db).starts_with("if#") || item.name(db).starts_with("for#") => {
                    let mut nested = Vec::new();
                    if let Some(stmt) = crate::items::item_tree(db, item) {
                        nested_resources(db, item, std::slice::from_ref(&*stmt), &mut nested);
                    }
                    for (name, def) in nested {
                        defs.add(name, def);
                    }
                    continue;
                }
                _ => continue,
            };
            defs.add(name.to_string(), def);
        }
    }
    scope.defs = Arc::new(defs);
    scope
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Scope {
    /// The module's own declarations ([`OwnScope::defs`], not copied).
    own: Arc<Names>,
    /// Each name `use` brings in, with the module's own declarations of it first.
    imported: BTreeMap<String, Defs>,
    pub diags: Vec<Diag>,
    /// Modules imported, with the `use` that imports each.
    pub imports: Vec<(Module, Origin, Span)>,
}

impl Scope {
    /// What a name declares in the module, imported declarations last.
    pub fn get(&self, name: &str) -> Option<&Defs> {
        self.imported.get(name).or_else(|| self.own.get(name))
    }

    /// The names that declare something other than a resource (imported, or the module's
    /// own), with what each declares, in the names' order: what completion offers. A stack of
    /// 100,000 resources has few, and they are found without sorting its resources' names.
    pub fn declared(&self) -> Vec<(&String, &Defs)> {
        let imported = self.imported.iter().filter(|(_, d)| d.iter().any(declares));
        let own = self.own.declared().into_iter().filter(|(n, _)| !self.imported.contains_key(*n));
        let mut out: Vec<(&String, &Defs)> = imported.chain(own).collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// The names that declare a `which` (a kind, a provider, …), in their order: what a
    /// message lists when one is not found.
    pub fn names_of(&self, which: impl Fn(&Def) -> bool) -> Vec<&str> {
        self.declared().into_iter().filter(|(_, d)| d.iter().any(&which)).map(|(n, _)| n.as_str()).collect()
    }

    /// `did you mean `x`?` over the scope's names and `locals` (the names an expression
    /// binds), or nothing.
    pub fn did_you_mean<'a>(
        &'a self,
        name: &str,
        locals: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        let imported = self.imported.keys().map(String::as_str);
        let more = closest_scored(name, locals.into_iter().chain(imported));
        let own = self.own.closest(name);
        let best = nearer(more, own.as_ref().map(|(d, c)| (*d, &**c)));
        did_you_mean(name, best.map(|(_, c)| c))
    }

    /// The declarations of a name, to add an imported one to.
    fn entry(&mut self, name: String) -> &mut Defs {
        let own = &self.own;
        self.imported.entry(name).or_insert_with_key(|n| own.get(n).cloned().unwrap_or_default())
    }
}

#[salsa::tracked(returns(ref))]
pub fn module_scope(db: &dyn Db, module: Module) -> Scope {
    let own = own_scope(db, module);
    let mut scope = Scope { own: own.defs.clone(), ..Scope::default() };
    // Two declarations of one name (other than resources, which may share a name across
    // kinds and are checked by id in the graph).
    for (_, defs) in own.defs.declared() {
        for (i, d) in defs.iter().enumerate() {
            // A kind and a component share one namespace: both are written `NAME id { … }`.
            let class = |x: &Def| match x {
                Def::Component(_) => 4,
                Def::Value(_) => 0,
                Def::Rule(_) => 1,
                Def::Kind(_) => 4,
                Def::Provider(_) => 3,
                _ => 5,
            };
            let same = |a: &Def| class(a) == class(d) && !matches!(d, Def::Module(_) | Def::Nested(..));
            if matches!(d, Def::Resource(_)) || !defs[..i].iter().any(same) {
                continue;
            }
            let first = defs[..i].iter().copied().find(same);
            if let (
                Some(Def::Value(a) | Def::Rule(a) | Def::Kind(a) | Def::Provider(a) | Def::Component(a)),
                Def::Value(b) | Def::Rule(b) | Def::Kind(b) | Def::Provider(b) | Def::Component(b),
            ) = (first, d)
            {
                let name = match split_name(b.name(db)) {
                    ItemName::Value(n)
                    | ItemName::Rule(n)
                    | ItemName::Kind(n)
                    | ItemName::Provider(n)
                    | ItemName::Component(n) => n.to_string(),
                    _ => String::new(),
                };
                let (oa, ob) = (origin(db, a), origin(db, *b));
                let span_a = crate::lower::decl_name_span(db, a);
                let span_b = crate::lower::decl_name_span(db, *b);
                scope.diags.push(
                    Diag::new(codes::E0104, format!("`{name}` is declared twice"))
                        .primary(&ob, span_b, "declared again here")
                        .secondary(&oa, span_a, "first declared here")
                        .help("rename one of them; names are shared by every file of a stack"),
                );
            }
        }
    }
    for file in module.files(db) {
        for (item, decl) in &file_items(db, *file).uses {
            import(db, *file, *item, decl, &mut scope);
        }
    }
    scope
}

fn import(db: &dyn Db, file: SourceFile, item: Item, decl: &UseDecl, scope: &mut Scope) {
    let o = origin(db, item);
    let (target, path_span, default_name) = match &decl.path {
        UsePath::Module(segs) => {
            let name: Vec<&str> = segs.iter().map(|s| s.text.as_str()).collect();
            let name = name.join(".");
            let span = match (segs.first(), segs.last()) {
                (Some(a), Some(b)) => a.span.cover(b.span),
                _ => Span::default(),
            };
            let Some(f) = db.stdlib_module(&name) else {
                let names = db.stdlib_names();
                scope.diags.push(
                    Diag::new(codes::E0105, format!("unknown module `{name}`"))
                        .primary(&o, span, "no such module")
                        .help(
                            did_you_mean(&name, names.iter().map(String::as_str))
                                .unwrap_or_else(|| format!("the standard library has: {}", names.join(", "))),
                        ),
                );
                return;
            };
            (Module::new(db, name, vec![f]), span, segs.last().map(|s| s.text.clone()))
        }
        UsePath::File(lit) => {
            let Some(rel) = lit.as_plain() else { return };
            let path = join_relative(file.path(db), &rel);
            match db.load_file(&path) {
                Ok(f) => (Module::new(db, path, vec![f]), lit.span, None),
                Err(e) => {
                    scope.diags.push(
                        Diag::new(codes::E0105, format!("cannot load module \"{rel}\""))
                            .primary(&o, lit.span, e)
                            .help("a module path is relative to the file that uses it"),
                    );
                    return;
                }
            }
        }
    };
    scope.imports.push((target, o.clone(), path_span));
    match &decl.names {
        Some(names) => {
            let own = own_scope(db, target);
            for n in names {
                match own.defs.get(&n.name.text) {
                    Some(defs) => {
                        let local = n.alias.as_ref().unwrap_or(&n.name).text.clone();
                        let entry = scope.entry(local);
                        for d in defs {
                            if !entry.contains(d) {
                                entry.push(*d);
                            }
                        }
                    }
                    None => scope.diags.push(
                        Diag::new(
                            codes::E0107,
                            format!("module `{}` has no `{}`", target.name(db), n.name.text),
                        )
                        .primary(&o, n.name.span, "not declared in that module")
                        .help_opt(own.defs.did_you_mean(&n.name.text))
                        .note(declares_note(&own.defs)),
                    ),
                }
            }
        }
        None => {
            let local = decl.alias.as_ref().map(|a| a.text.clone()).or(default_name);
            match local {
                Some(local) => {
                    let entry = scope.entry(local);
                    if !entry.contains(&Def::Module(target)) {
                        entry.push(Def::Module(target));
                    }
                }
                None => scope.diags.push(
                    Diag::new(codes::E0105, "a module file needs a name")
                        .primary(&o, path_span, "imported without a name")
                        .help("name it with `as`: use \"./modules/web.iade\" as web"),
                ),
            }
        }
    }
}

/// `dir/of/file.iade` + `./x/../y.iade` → `dir/of/y.iade`, lexically.
pub fn join_relative(from_file: &str, rel: &str) -> String {
    let base = if rel.starts_with('/') {
        String::new()
    } else {
        match from_file.rfind('/') {
            Some(i) => from_file[..i].to_string(),
            None => String::new(),
        }
    };
    normalize_path(&format!("{base}/{rel}"), from_file.starts_with('/') || rel.starts_with('/'))
}

pub fn normalize_path(p: &str, absolute: bool) -> String {
    normalize_path_if_needed(p, absolute).unwrap_or_else(|| p.to_string())
}

/// [`normalize_path`], or none when the path is already normal (most are).
pub fn normalize_path_if_needed(p: &str, absolute: bool) -> Option<String> {
    if is_normal(p, absolute) {
        return None;
    }
    Some(normalize_lexically(p, absolute))
}

/// Whether a path is already as [`normalize_path`] writes it (most are): no empty, `.` or `..`
/// segment, and a leading `/` exactly when absolute.
fn is_normal(p: &str, absolute: bool) -> bool {
    let rest = match (absolute, p.strip_prefix('/')) {
        (true, Some(rest)) => rest,
        (false, None) => p,
        _ => return false,
    };
    (absolute && rest.is_empty()) || rest.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
}

fn normalize_lexically(p: &str, absolute: bool) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// The stack's own files, as a set: asked for every item, and a stack may have 100,000.
#[salsa::tracked(returns(ref))]
pub fn stack_file_set(db: &dyn Db) -> rustc_hash::FxHashSet<SourceFile> {
    db.stack().files(db).iter().copied().collect()
}

/// The module an item's file belongs to.
pub fn module_of(db: &dyn Db, file: SourceFile) -> Module {
    if stack_file_set(db).contains(&file) {
        return stack_module(db);
    }
    for name in db.stdlib_names() {
        if db.stdlib_module(&name) == Some(file) {
            return Module::new(db, name, vec![file]);
        }
    }
    Module::new(db, file.path(db).clone(), vec![file])
}

#[cfg(test)]
mod tests {
    use super::{normalize_lexically, normalize_path};

    #[test]
    fn a_normal_path_is_returned_as_the_segment_by_segment_normalization_writes_it() {
        let paths = [
            "/",
            "",
            ".",
            "..",
            "a",
            "a/b",
            "/a/b",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/../a",
            "a/..",
            "../a",
            "./a",
            "a/",
            "/a/",
            "//",
            "/srv/app/svc-1/config.yaml",
            "a/b/../../..",
            "/a/b/c/..",
        ];
        for p in paths {
            for absolute in [true, false] {
                assert_eq!(
                    normalize_path(p, absolute),
                    normalize_lexically(p, absolute),
                    "`{p}`, absolute: {absolute}"
                );
            }
        }
    }
}
