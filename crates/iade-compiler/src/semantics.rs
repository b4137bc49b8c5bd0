//! What an editor asks of a stack: the items of a file, what a name means at a place, the
//! docs of kinds and fields, and evaluated values. Plain functions over the database, with
//! absolute spans; `iade-ide` builds its features on them.

use std::sync::Arc;

use iade_intent::{KindSchema, Value};
use iade_span::Span;
use iade_syntax::ast::StmtKind;

use crate::db::{Database, Db};
use crate::items::{Item, SourceFile, file_items, item_offset, item_syntax};
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
            let Some(stmt) = item_syntax(db, item).clone() else { continue };
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
                StmtKind::For(_) | StmtKind::If(_) => (ItemCategory::Generator, None),
                StmtKind::Use(_) => (ItemCategory::Use, None),
                _ => (ItemCategory::Other, None),
            };
            out.push(ItemInfo { name: text(name_span), detail, category, span, name_span });
        }
        out
    }

    /// Where `name`, as written in `file`, is declared (a let, param, resource, rule, kind,
    /// component, provider or imported module's item), standard library files included.
    pub fn declaration_of(&self, file: SourceFile, name: &str) -> Vec<Place> {
        let db: &dyn Db = self;
        let scope = module_scope(db, module_of(db, file));
        let Some(defs) = scope.defs.get(name) else { return Vec::new() };
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
        let defs = scope.defs.get(name)?;
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
        for (name, defs) in &scope.defs {
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
            .defs
            .iter()
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
            scope.defs.get(name)?.iter().find_map(|d| if let Def::Value(i) = d { Some(*i) } else { None })?;
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
            let Some(stmt) = item_syntax(db, item).clone() else { continue };
            let start = item_offset(db, file, item.name(db))?;
            if !stmt.span.absolute_from(start).contains(offset) {
                continue;
            }
            let values = crate::eval::resource_values(db, item);
            return values.first().cloned();
        }
        None
    }
}
