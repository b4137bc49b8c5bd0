//! What an editor asks of a stack: the items of a file, what a name means at a place, the
//! docs of kinds and fields, and evaluated values. Plain functions over the database, with
//! absolute spans; `iade-ide` builds its features on them.

use std::sync::Arc;

use iade_intent::{KindSchema, Value};
use iade_span::Span;
use iade_syntax::ast::StmtKind;

use crate::db::{Database, Db};
use crate::items::{Item, SourceFile, file_items, item_offset, item_tree};
use crate::lower::component::Declares;
use crate::lower::{LoweredKind, decl_name_span, lower_item};
use crate::scope::{Def, module_of, module_scope};

/// What an item declares, as an outline shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemCategory {
    Resource,
    Instance,
    Generator,
    Component,
    Param,
    Let,
    Rule,
    Policy,
    Control,
    Kind,
    Provider,
    Stack,
    /// A `test` of a `*_test.iade` file; its name is the test's.
    Test,
    Use,
    Other,
}

/// A top-level item of a file: its name as written, what it is, and where (absolute).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemInfo {
    pub name: String,
    /// The kind or component of a resource or instance (`file`, `vhost`).
    pub detail: Option<String>,
    pub category: ItemCategory,
    pub span: Span,
    pub name_span: Span,
}

/// A name that may follow a `.`: a field of a resource, a param or member of an instance, a
/// key of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Its type, or the kind or component a member declares.
    pub detail: String,
    pub doc: Option<String>,
}

/// What a resource or an instance must set and does not yet: identity fields of a resource,
/// params without defaults of an instance, with their types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingRequired {
    /// The item's span (absolute).
    pub span: Span,
    pub missing: Vec<(String, iade_intent::Ty)>,
}

/// A place a name is declared: the file's path and the absolute span of the declared name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub path: String,
    pub span: Span,
}

impl Database {
    /// The source file the database knows at this path (as the driver names it).
    pub fn file_at(&self, path: &str) -> Option<SourceFile> {
        self.known_file(path)
    }

    /// The paths of the stack's own files.
    pub fn stack_file_paths(&self) -> Vec<String> {
        let db: &dyn Db = self;
        db.stack().files(db).iter().map(|f| f.path(db).clone()).collect()
    }

    /// The text of a known file.
    pub fn file_text(&self, path: &str) -> Option<String> {
        let f = self.known_file(path)?;
        Some(f.text(self).clone())
    }

    /// The top-level items of a file, in source order.
    pub fn file_outline(&self, file: SourceFile) -> Vec<ItemInfo> {
        let db: &dyn Db = self;
        let mut out = Vec::new();
        for &item in &file_items(db, file).items {
            let Some(stmt) = item_tree(db, item) else { continue };
            let offset = item_offset(db, file, item.name(db)).unwrap_or(0);
            let name_span = decl_name_span(db, item).absolute_from(offset);
            let span = stmt.span.absolute_from(offset);
            let text = |s: Span| file.text(db).get(s.range()).unwrap_or_default().to_string();
            let (category, detail) = match &stmt.kind {
                StmtKind::Resource(r) => {
                    let kind: Vec<&str> = r.kind.iter().map(|n| n.text.as_str()).collect();
                    let instance = crate::lower::component::instance_component(db, item).is_some();
                    (
                        if instance { ItemCategory::Instance } else { ItemCategory::Resource },
                        Some(kind.join(".")),
                    )
                }
                StmtKind::Component(_) => (ItemCategory::Component, None),
                StmtKind::Param(_) => (ItemCategory::Param, None),
                StmtKind::Let(_) => (ItemCategory::Let, None),
                StmtKind::Rule(_) => (ItemCategory::Rule, None),
                StmtKind::Policy(_) => (ItemCategory::Policy, None),
                StmtKind::Control(_) => (ItemCategory::Control, None),
                StmtKind::Kind(_) => (ItemCategory::Kind, None),
                StmtKind::Provider(_) => (ItemCategory::Provider, None),
                StmtKind::Stack(_) => (ItemCategory::Stack, None),
                StmtKind::Test(_) => (ItemCategory::Test, None),
                StmtKind::For(_) | StmtKind::If(_) => (ItemCategory::Generator, None),
                StmtKind::Use(_) => (ItemCategory::Use, None),
                _ => (ItemCategory::Other, None),
            };
            let name = match &stmt.kind {
                StmtKind::Test(t) => t.name.as_plain().unwrap_or_default(),
                _ => text(name_span),
            };
            out.push(ItemInfo { name, detail, category, span, name_span });
        }
        out
    }

    /// Where `name`, as written in `file`, is declared (a let, param, resource, rule, kind,
    /// component, provider or imported module's item), standard library files included.
    pub fn declaration_of(&self, file: SourceFile, name: &str) -> Vec<Place> {
        let db: &dyn Db = self;
        let scope = module_scope(db, module_of(db, file));
        let Some(defs) = scope.get(name) else { return Vec::new() };
        defs.iter()
            .filter_map(|d| match d {
                Def::Value(i)
                | Def::Resource(i)
                | Def::Rule(i)
                | Def::Kind(i)
                | Def::Provider(i)
                | Def::Component(i) => self.place_of(*i),
                Def::Nested(i, _) => self.place_of(*i),
                Def::Module(m) => {
                    m.files(db).first().map(|f| Place { path: f.path(db).clone(), span: Span::empty(0) })
                }
            })
            .collect()
    }

    /// Where a resource with this id (`file.config`) is declared: its item's name.
    pub fn resource_declaration(&self, id: &str) -> Option<Place> {
        let db: &dyn Db = self;
        let top = id.split('/').next().unwrap_or(id);
        let item = crate::graph::static_index(db).get(top).copied()?;
        self.place_of(item)
    }

    fn place_of(&self, item: Item) -> Option<Place> {
        let db: &dyn Db = self;
        let file = item.file(db);
        let offset = item_offset(db, file, item.name(db))?;
        Some(Place { path: file.path(db).clone(), span: decl_name_span(db, item).absolute_from(offset) })
    }

    /// Every place in the stack's files (and its modules') where `name` is written as a whole
    /// identifier that resolves to the same declaration as it does in `file`.
    pub fn references_of(&self, file: SourceFile, name: &str) -> Vec<Place> {
        let db: &dyn Db = self;
        let target = self.declaration_of(file, name);
        if target.is_empty() {
            return Vec::new();
        }
        let mut files: Vec<SourceFile> = db.stack().files(db).clone();
        files.extend(crate::graph::module_files(db).iter().copied());
        let mut out = Vec::new();
        for f in files {
            if self.declaration_of(f, name) != target {
                continue;
            }
            let lexed = iade_syntax::token::lex(f.id(db), f.text(db));
            for t in &lexed.tokens {
                if t.token == iade_syntax::token::Token::Ident(name) {
                    out.push(Place { path: f.path(db).clone(), span: t.span });
                }
            }
        }
        out
    }

    /// The schema of a kind by name, as the stack sees it (its docs included).
    pub fn kind_named(&self, file: SourceFile, name: &str) -> Option<Arc<KindSchema>> {
        let db: &dyn Db = self;
        let scope = module_scope(db, module_of(db, file));
        let defs = scope.get(name)?;
        defs.iter().find_map(|d| match d {
            Def::Kind(k) => crate::lower::kind_schema(db, *k),
            _ => None,
        })
    }

    /// Every kind the file can name (imported or declared), for completion.
    pub fn kinds_in_scope(&self, file: SourceFile) -> Vec<(String, Arc<KindSchema>)> {
        let db: &dyn Db = self;
        let scope = module_scope(db, module_of(db, file));
        let mut out = Vec::new();
        for (name, defs) in scope.declared() {
            for d in defs {
                if let Def::Kind(k) = d
                    && let Some(s) = crate::lower::kind_schema(db, *k)
                {
                    out.push((name.clone(), s));
                }
            }
        }
        out
    }

    /// Names a file can use: values, resources, rules, kinds, components, modules.
    pub fn names_in_scope(&self, file: SourceFile) -> Vec<(String, &'static str)> {
        let db: &dyn Db = self;
        let scope = module_scope(db, module_of(db, file));
        // Resources are reached as `kind.name`, not by their bare name: a stack of thousands of
        // resources does not flood the list.
        scope
            .declared()
            .into_iter()
            .filter_map(|(n, defs)| {
                let d = defs.iter().find(|d| !matches!(d, Def::Resource(_) | Def::Nested(..)))?;
                Some((n.clone(), d.describe()))
            })
            .collect()
    }

    /// The evaluated value of a `let` or `param` named `name` in `file`'s scope (secrets stay
    /// secrets: their `Display` is redacted).
    pub fn value_of(&self, file: SourceFile, name: &str) -> Option<Value> {
        let db: &dyn Db = self;
        let scope = module_scope(db, module_of(db, file));
        let item =
            scope.get(name)?.iter().find_map(|d| if let Def::Value(i) = d { Some(*i) } else { None })?;
        match lower_item(db, item).kind {
            LoweredKind::Param { .. } | LoweredKind::Let { .. } => {
                Some(crate::eval::eval_global(db, item).value.clone())
            }
            _ => None,
        }
    }

    /// The resource (or component instance member) declared by the item at `offset` of `file`,
    /// with its evaluated value, for hover.
    pub fn resource_at(&self, file: SourceFile, offset: u32) -> Option<(String, Value)> {
        let db: &dyn Db = self;
        for &item in &file_items(db, file).items {
            let Some(stmt) = item_tree(db, item) else { continue };
            let start = item_offset(db, file, item.name(db))?;
            if !stmt.span.absolute_from(start).contains(offset) {
                continue;
            }
            let values = crate::eval::resource_values(db, item);
            return values.first().map(|(id, v)| (id.to_string(), v.clone()));
        }
        None
    }

    /// The names that may follow `chain.` in `file`: `[file, config]` gives the fields of
    /// the file kind, `[vhost, api]` the params and members of the component, `[vhost, api,
    /// conf]` the fields of that member's kind, `[cfg]` (a let holding a record) its keys.
    pub fn members_after(&self, file: SourceFile, chain: &[String]) -> Vec<Member> {
        let db: &dyn Db = self;
        let scope = module_scope(db, module_of(db, file));
        let Some(head) = chain.first() else { return Vec::new() };
        let Some(defs) = scope.get(head) else { return Vec::new() };
        for d in defs {
            match (d, chain.len()) {
                (Def::Kind(k), 2) => {
                    let Some(schema) = crate::lower::kind_schema(db, *k) else { continue };
                    return kind_members(&schema);
                }
                (Def::Component(c), n) if n >= 2 => return self.component_members_after(*c, &chain[2..]),
                (Def::Value(_), _) => {
                    let Some(mut v) = self.value_of(file, head) else { continue };
                    for key in &chain[1..] {
                        let Value::Record(r) = &v else { return Vec::new() };
                        let Some(next) = r.get(key) else { return Vec::new() };
                        v = next.clone();
                    }
                    let Value::Record(r) = &v else { return Vec::new() };
                    return r
                        .iter()
                        .map(|(k, v)| Member { name: k.clone(), detail: value_detail(v), doc: None })
                        .collect();
                }
                _ => {}
            }
        }
        Vec::new()
    }

    fn component_members_after(&self, comp: Item, rest: &[String]) -> Vec<Member> {
        let db: &dyn Db = self;
        let members = crate::lower::component::component_members(db, comp);
        match rest.first() {
            None => {
                let mut out: Vec<Member> = crate::lower::component::component_signature(db, comp)
                    .iter()
                    .map(|(n, ty, _)| Member { name: n.clone(), detail: ty.to_string(), doc: None })
                    .collect();
                out.extend(members.iter().map(|(n, decl, _)| Member {
                    name: n.clone(),
                    detail: match decl {
                        Declares::Kind(k) => {
                            crate::lower::kind_schema(db, *k).map(|s| s.name.to_string()).unwrap_or_default()
                        }
                        Declares::Component(c) => crate::lower::component::component_name(db, *c),
                    },
                    doc: None,
                }));
                out
            }
            Some(member) => match members.iter().find(|(n, _, _)| n == member).map(|(_, d, _)| *d) {
                Some(Declares::Kind(k)) if rest.len() == 1 => {
                    crate::lower::kind_schema(db, k).map(|s| kind_members(&s)).unwrap_or_default()
                }
                Some(Declares::Component(c)) if rest.len() >= 2 => {
                    self.component_members_after(c, &rest[2..])
                }
                _ => Vec::new(),
            },
        }
    }

    /// The required fields (or params) the resource (or instance) at `offset` does not set.
    pub fn missing_required(&self, file: SourceFile, offset: u32) -> Option<MissingRequired> {
        let db: &dyn Db = self;
        for &item in &file_items(db, file).items {
            let Some(stmt) = item_tree(db, item) else { continue };
            let start = item_offset(db, file, item.name(db))?;
            let span = stmt.span.absolute_from(start);
            if !span.contains(offset) {
                continue;
            }
            let StmtKind::Resource(r) = &stmt.kind else { return None };
            let set: Vec<String> = r
                .body
                .stmts
                .iter()
                .filter_map(|s| match &s.kind {
                    StmtKind::Attr(a) => Some(crate::lower::key_text(&a.key).into_owned()),
                    _ => None,
                })
                .collect();
            let missing: Vec<(String, iade_intent::Ty)> =
                match crate::lower::component::instance_component(db, item) {
                    Some(comp) => crate::lower::component::component_signature(db, comp)
                        .iter()
                        .filter(|(n, _, has_default)| !has_default && !set.contains(n))
                        .map(|(n, ty, _)| (n.clone(), ty.clone()))
                        .collect(),
                    None => {
                        let kind: Vec<&str> = r.kind.iter().map(|n| n.text.as_str()).collect();
                        let schema = self.kind_named(file, &kind.join("."))?;
                        schema
                            .identity_fields()
                            .filter(|f| !set.iter().any(|s| **s == *f.name))
                            .map(|f| (f.name.to_string(), f.ty.clone()))
                            .collect()
                    }
                };
            return Some(MissingRequired { span, missing });
        }
        None
    }

    /// The evaluated value of each interpolated string a top-level `let` or a field of a
    /// top-level resource holds, at the string's end (absolute), for inlay hints. Generated
    /// resources and component members are left out: one string stands for many values there.
    pub fn interpolation_values(&self, file: SourceFile) -> Vec<(u32, Value)> {
        let db: &dyn Db = self;
        let interpolated = |e: &iade_syntax::ast::Expr| match &e.kind {
            iade_syntax::ast::ExprKind::Str(s) => {
                s.parts.iter().any(|p| matches!(p, iade_syntax::ast::StrPart::Interp(_)))
            }
            _ => false,
        };
        let mut out = Vec::new();
        for &item in &file_items(db, file).items {
            let Some(stmt) = item_tree(db, item) else { continue };
            let Some(start) = item_offset(db, file, item.name(db)) else { continue };
            match &stmt.kind {
                StmtKind::Let(l) if interpolated(&l.value) => {
                    if let Some(v) = self.value_of(file, &l.name.text) {
                        out.push((l.value.span.absolute_from(start).end, v));
                    }
                }
                StmtKind::Resource(r) if crate::lower::component::instance_component(db, item).is_none() => {
                    let values = crate::eval::resource_values(db, item);
                    let Some((_, Value::Resource(res))) = values.first() else { continue };
                    for s in &r.body.stmts {
                        if let StmtKind::Attr(a) = &s.kind
                            && interpolated(&a.value)
                            && let Some(v) = res.fields.get(&*crate::lower::key_text(&a.key))
                        {
                            out.push((a.value.span.absolute_from(start).end, v.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn kind_members(schema: &KindSchema) -> Vec<Member> {
    schema
        .fields
        .iter()
        .map(|f| Member { name: f.name.to_string(), detail: f.ty.to_string(), doc: f.doc.clone() })
        .collect()
}

fn value_detail(v: &Value) -> String {
    match v {
        Value::Secret(_) => "secret".into(),
        Value::Record(_) => "record".into(),
        Value::List(_) => "list".into(),
        Value::Unknown(_) => "unknown".into(),
        other => {
            let s = other.to_string();
            if s.chars().count() > 40 { format!("{}…", s.chars().take(40).collect::<String>()) } else { s }
        }
    }
}
