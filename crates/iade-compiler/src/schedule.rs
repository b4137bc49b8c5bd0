//! Which items can be evaluated in any order, on any thread.
//!
//! Evaluating an item may read other items: the resources it refers to, the `let`s and
//! `param`s it names, the objects of `intent(…)`, the rules it calls. Where such reads close a
//! cycle, which item reports it depends on where evaluation entered the cycle, so those items
//! are evaluated one after the other in source order (`Database::prepare`). An item whose
//! evaluation reads nothing but literals, its own bindings, builtins and independent `let`s and
//! `param`s can be on no cycle: it is independent, and its result is the same whichever thread
//! computes it and when.

use std::sync::Arc;

use iade_intent::ir::{Ir, IrKind};

use crate::db::Db;
use crate::items::Item;
use crate::lower::{BodyStmt, Gen, LoweredKind, ResName, item_from_key, lower_item};

/// Whether each `let` and `param` is independent, by qualified key.
pub(crate) type Globals = rustc_hash::FxHashMap<Arc<str>, bool>;

/// Decides independence, remembering what it found for each `let` and `param`, or reading
/// what was decided for them before (to decide items on several threads at once).
pub(crate) struct Independence<'db, 'g> {
    db: &'db dyn Db,
    /// Decided before: a global not among them is taken as dependent, and none is learnt.
    decided: Option<&'g Globals>,
    learnt: Globals,
}

impl<'db> Independence<'db, 'static> {
    pub(crate) fn new(db: &'db dyn Db) -> Self {
        Self { db, decided: None, learnt: Globals::default() }
    }

    /// Decides the globals of `items` (the others are ignored), for [`Independence::with`].
    pub(crate) fn globals(db: &'db dyn Db, items: impl Iterator<Item = Item>) -> Globals {
        let mut independence = Self::new(db);
        for item in items.filter(|i| i.name(db).starts_with("value:")) {
            independence.global(&crate::lower::item_key(db, item));
        }
        independence.learnt
    }
}

impl<'db, 'g> Independence<'db, 'g> {
    /// Reads the globals decided by [`Independence::globals`]; holds nothing of its own.
    pub(crate) fn with(db: &'db dyn Db, globals: &'g Globals) -> Self {
        Self { db, decided: Some(globals), learnt: Globals::default() }
    }

    /// Whether `item` declares resources (not component instances) and evaluating them reads
    /// no other resource, no objects and no rule.
    pub(crate) fn resources(&mut self, item: Item) -> bool {
        match &lower_item(self.db, item).kind {
            LoweredKind::Resources { body, .. } => body.iter().all(|g| self.generator(g)),
            _ => false,
        }
    }

    fn generator(&mut self, g: &Gen) -> bool {
        match g {
            Gen::Resource(r) => {
                let name = match &r.name {
                    ResName::Static(_) => true,
                    ResName::Dynamic(ir) => self.ir(ir),
                };
                name && r.body.iter().all(|b| self.body(b))
            }
            // A component's members may refer to each other and to anything else.
            Gen::Instance(_) => false,
            Gen::For { iter, body, .. } => self.ir(iter) && body.iter().all(|g| self.generator(g)),
            Gen::If { cond, then, otherwise } => {
                self.ir(cond) && then.iter().chain(otherwise).all(|g| self.generator(g))
            }
            Gen::Let { value, .. } => self.ir(value),
        }
    }

    fn body(&mut self, b: &BodyStmt) -> bool {
        match b {
            BodyStmt::Attr { value, .. }
            | BodyStmt::Let { value, .. }
            | BodyStmt::After(value)
            | BodyStmt::Notify(value) => self.ir(value),
            BodyStmt::If { cond, then, otherwise } => {
                self.ir(cond) && then.iter().chain(otherwise).all(|b| self.body(b))
            }
            BodyStmt::Manage(_) | BodyStmt::Provider(_) | BodyStmt::Protect(_) => true,
        }
    }

    fn ir(&mut self, ir: &Ir) -> bool {
        match &ir.kind {
            IrKind::Lit(_) | IrKind::Local(_) | IrKind::Error => true,
            IrKind::Global(key) => self.global(key),
            IrKind::Resource(_)
            | IrKind::ResourceByName { .. }
            | IrKind::Sibling(_)
            | IrKind::RuleCall(..)
            | IrKind::Objects { .. } => false,
            IrKind::Comprehension(c) => {
                self.ir(&c.iter) && c.cond.as_ref().is_none_or(|cond| self.ir(cond)) && self.ir(&c.value)
            }
            IrKind::List(items) | IrKind::Interp(items) | IrKind::Call(_, items) => {
                items.iter().all(|i| self.ir(i))
            }
            IrKind::Record(entries) => entries.iter().all(|(_, v)| self.ir(v)),
            IrKind::Unary(_, a) | IrKind::Member(a, _) => self.ir(a),
            IrKind::Binary(_, a, b) | IrKind::Index(a, b) => self.ir(a) && self.ir(b),
            IrKind::If(a, b, c) => self.ir(a) && self.ir(b) && self.ir(c),
        }
    }

    /// A `let` or `param` is independent when its value (or default) is; one that refers back
    /// to itself is not.
    fn global(&mut self, key: &Arc<str>) -> bool {
        if let Some(decided) = self.decided {
            return decided.get(key).copied().unwrap_or(false);
        }
        if let Some(&known) = self.learnt.get(key) {
            return known;
        }
        self.learnt.insert(key.clone(), false);
        let independent = match item_from_key(self.db, key) {
            Some(item) => match &lower_item(self.db, item).kind {
                LoweredKind::Let { value, .. } => self.ir(value),
                LoweredKind::Param { default, .. } => default.as_ref().is_none_or(|d| self.ir(d)),
                _ => false,
            },
            None => false,
        };
        self.learnt.insert(key.clone(), independent);
        independent
    }
}

#[cfg(test)]
mod tests {
    use super::Independence;
    use crate::db::{Database, Options};
    use crate::graph::resource_items;

    /// Each resource of `source` by name, and whether it is independent, as decided with the
    /// globals learnt on the way and with them decided first (as items decided on several
    /// threads are): both ways agree.
    fn independence(source: &str) -> Vec<(String, bool)> {
        let mut db = Database::new(Options {
            stdlib: None,
            loader: Box::new(|p: &str| Err(format!("no file `{p}`"))),
            probe: Box::new(|p: &str| Err(format!("no file `{p}`"))),
            params_optional: false,
            log_queries: false,
            threads: 1,
            once: false,
        });
        db.set_stack_files(vec![("main.iade".into(), source.into())]);
        let mut independence = Independence::new(&db);
        let items = crate::db::Db::stack(&db)
            .files(&db)
            .iter()
            .flat_map(|f| crate::items::file_items(&db, *f).items.clone())
            .collect::<Vec<_>>();
        let globals = Independence::globals(&db, items.iter().copied());
        let mut out: Vec<(String, bool)> = resource_items(&db)
            .iter()
            .map(|&item| {
                let learnt = independence.resources(item);
                assert_eq!(Independence::with(&db, &globals).resources(item), learnt);
                (crate::eval::static_id(&db, item, crate::lower::resource_kind).unwrap_or_default(), learnt)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_resource_is_independent_when_it_reads_only_values_that_read_no_resource() {
        let source = r#"use std.fs.{file}

param root: string = "/srv"
let base = "${root}/base"
let linked = file.plain.path
let loop_a = loop_b
let loop_b = loop_a

rule inside(f: file) = starts_with(f.path, root)

file plain { path = "/srv/plain" }
file computed { path = "${base}/${upper("x")}/${len([x for x in [1, 2] if x > 1])}" }
file refers { path = "${file.plain.path}/b" }
file by_name { path = file["plain"].path }
file through_let { path = linked }
file through_loop { path = loop_a }
file with_after {
  path = "/srv/after"
  after = [file.plain]
}
file calling { path = if inside(file.plain) then "/a" else "/b" }
"#;
        let expected = [
            ("file.by_name", false),
            ("file.calling", false),
            ("file.computed", true),
            ("file.plain", true),
            ("file.refers", false),
            ("file.through_let", false),
            ("file.through_loop", false),
            ("file.with_after", false),
        ];
        let found = independence(source);
        let found: Vec<(&str, bool)> = found.iter().map(|(id, i)| (id.as_str(), *i)).collect();
        assert_eq!(found, expected);
    }
}
