//! The whole stack: its modules, its resources, the dependency graph, and every diagnostic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use thin_vec::ThinVec;

use iade_diagnostics::codes;
use iade_intent::ir::{CheckKind, Ir, IrKind};
use iade_intent::{Edge, EdgeReason, IntentGraph, Node, NodeAttr, Origin, SourceLoc, Value};
use iade_span::{LineIndex, Span};

use crate::db::{Database, Db};
use crate::diag::Diag;
use crate::eval::{EvaluatedResource, eval_global, eval_resources};
use crate::items::{Item, Module, SourceFile, stack_module};
use crate::lower::component::InstanceSite;
use crate::lower::{BodyStmt, Gen, LoweredKind, ResName, StackSettings, decl_name_span, lower_item};
use crate::scope::{ItemName, module_scope, origin, own_scope, split_name};

/// A kind's name as a query key.
#[salsa::interned(unsafe(no_lifetime), revisions = usize::MAX, debug)]
pub struct KindKey {
    #[returns(ref)]
    pub name: String,
}

/// Every module the stack reaches through `use`, the stack itself first.
#[salsa::tracked(returns(ref))]
pub fn stack_modules(db: &dyn Db) -> Vec<Module> {
    let mut out = vec![stack_module(db)];
    let mut i = 0;
    while i < out.len() {
        for (m, _, _) in &module_scope(db, out[i]).imports {
            if !out.contains(m) {
                out.push(*m);
            }
        }
        i += 1;
    }
    out
}

/// Files of the modules the stack imports (not the stack's own files).
#[salsa::tracked(returns(ref))]
pub fn module_files(db: &dyn Db) -> Vec<SourceFile> {
    // Sets: the stack module is among the modules, and a stack may have 100,000 files.
    let own = crate::scope::stack_file_set(db);
    let mut seen = rustc_hash::FxHashSet::default();
    let mut out = Vec::new();
    for m in stack_modules(db) {
        for f in m.files(db) {
            if !own.contains(f) && seen.insert(*f) {
                out.push(*f);
            }
        }
    }
    out
}

/// Whether an item of this name declares resources or component instances (and nothing
/// else): told without its tree or lowering.
pub fn declares_resources(name: &str) -> bool {
    name.starts_with("res") || name.starts_with("for#") || name.starts_with("if#")
}

/// Items that may declare resources: those of the stack and of imported module files (the
/// standard library declares kinds and rules, never resources).
#[salsa::tracked(returns(ref))]
pub fn resource_items(db: &dyn Db) -> Vec<Item> {
    let stdlib: Vec<String> = db.stdlib_names();
    let mut out = Vec::new();
    for m in stack_modules(db) {
        if stdlib.contains(m.name(db)) {
            continue;
        }
        for &item in &own_scope(db, *m).items {
            if declares_resources(item.name(db)) {
                out.push(item);
            }
        }
    }
    out
}

/// The ids of a file's resource items declared with a fixed name (`None` for the others), in
/// the order of [`file_resource_items`]: what the stack's index and its generator items are
/// built from. A query per file, as [`file_facts`] is, and each kind found from the scope
/// without a query per item, except in a database that compiles once: there the trees are
/// released, and the kinds were found while lowering ([`Database::lower`]).
#[salsa::tracked(returns(ref))]
pub fn file_static_ids(db: &dyn Db, file: SourceFile) -> Vec<Option<Arc<str>>> {
    let kind_of = if db.once() { crate::lower::resource_kind } else { crate::lower::resolve_resource_kind };
    file_resource_items(db, file)
        .map(|item| crate::eval::static_id(db, item, kind_of).map(Arc::from))
        .collect()
}

/// Every resource item with its fixed id, if it has one.
fn static_ids(db: &dyn Db) -> impl Iterator<Item = (Item, Option<&Arc<str>>)> + '_ {
    resource_items_by_file(db).flat_map(move |(file, items)| {
        let ids = file_static_ids(db, file);
        debug_assert_eq!(ids.len(), items.len(), "invariant: a file's ids follow its resource items");
        items.iter().copied().zip(ids.iter().map(Option::as_ref))
    })
}

/// Resources with a fixed name, by id.
#[salsa::tracked(returns(ref))]
pub fn static_index(db: &dyn Db) -> BTreeMap<Arc<str>, Item> {
    let mut ids: Vec<(Arc<str>, Item)> =
        static_ids(db).filter_map(|(item, id)| Some((id?.clone(), item))).collect();
    // Sorted, the first declaration of an id first; the map is built from them at once.
    ids.sort_by(|a, b| a.0.cmp(&b.0));
    ids.dedup_by(|later, first| later.0 == first.0);
    ids.into_iter().collect()
}

/// Items whose resources have names known only after evaluation (`for`, `if`, interpolated).
#[salsa::tracked(returns(ref))]
pub fn generator_items(db: &dyn Db) -> Vec<Item> {
    static_ids(db).filter(|(_, id)| id.is_none()).map(|(item, _)| item).collect()
}

/// A resource of the stack: its id and where its evaluation is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRef {
    pub id: Arc<str>,
    pub item: Item,
    pub index: u32,
}

impl ResourceRef {
    pub fn get<'db>(&self, db: &'db dyn Db) -> Option<&'db EvaluatedResource> {
        eval_resources(db, self.item).resources.get(self.index as usize)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StackResources {
    /// Sorted by id; a duplicate id keeps its first declaration.
    pub resources: Vec<ResourceRef>,
    pub edges: Vec<Edge>,
    pub diags: Vec<Diag>,
    /// The resources each resource notifies, instances expanded to their refreshable members.
    pub notify: HashMap<String, Vec<String>>,
    /// Component instances by id: the item that declares them and their members.
    pub instances: BTreeMap<String, (Item, Vec<String>)>,
}

/// What the graph needs to know of one resource: its id, identity and dependencies. Equal
/// across edits of other attributes, so such edits do not rebuild the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub id: Arc<str>,
    pub kind: Arc<str>,
    pub origin: Origin,
    pub name_span: Span,
    /// The identity as compared (normalized), and where it was written. How a message shows
    /// it is worked out only for a conflict (`identity_shown`).
    /// One identity field's key is its value's text (shared with the value when already
    /// normal); several fields' keys are joined, each followed by a NUL.
    pub identity: Option<(Arc<str>, Span)>,
    /// Most resources have none of the lists below: a `ThinVec` holds nothing but a pointer
    /// then.
    pub refs: ThinVec<Arc<str>>,
    /// The module of its kind (`std.users`), with `kind`: what a `refers` names.
    pub module: Arc<str>,
    /// What its `refers` fields name: the kind and the identity key (as `identity` compares).
    pub names: ThinVec<(Arc<iade_intent::Refers>, Arc<str>)>,
    pub after: ThinVec<Arc<str>>,
    pub notify: ThinVec<(Arc<str>, Span)>,
    /// Whether its kind can be refreshed.
    pub refreshable: bool,
    pub sites: ThinVec<InstanceSite>,
    pub index: u32,
}

/// What the graph needs of a component instance: its id, members and where it was declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceFact {
    pub id: String,
    pub origin: Origin,
    pub name_span: Span,
    pub members: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Facts {
    pub facts: Vec<Fact>,
    pub instances: Vec<InstanceFact>,
    pub cyclic: bool,
}

/// What the graph needs of the resources of a file's items (each resource item's, in the
/// file's order), remembered: an edit that leaves them alone stops here. One query per file,
/// not per item: after an edit every remembered query is checked again before it is reused,
/// and at 100,000 items checking a query per item cost more than what it saved (a file's
/// facts are built again in a fraction of a millisecond). A database that compiles once
/// builds them in `stack_resources` instead (a large stack's on several threads first, in
/// `Database::prepare`), and drops them with it (`facts_of`): nothing is edited there, and the
/// memos held a tenth of a large stack's memory.
#[salsa::tracked(returns(ref))]
pub fn file_facts(db: &dyn Db, file: SourceFile) -> Vec<Facts> {
    file_resource_items(db, file).map(|item| facts_of(db, item)).collect()
}

/// The items of a file that may declare resources, in order: a file's run of
/// [`resource_items`].
fn file_resource_items(db: &dyn Db, file: SourceFile) -> impl Iterator<Item = Item> + '_ {
    crate::items::file_items(db, file).items.iter().copied().filter(|i| declares_resources(i.name(db)))
}

/// [`resource_items`] in runs of the same file, with the file: what the queries per file
/// ([`file_facts`], [`file_refs`]) follow.
fn resource_items_by_file(db: &dyn Db) -> impl Iterator<Item = (SourceFile, &[Item])> + '_ {
    resource_items(db).chunk_by(|a, b| a.file(db) == b.file(db)).map(|run| (run[0].file(db), run))
}

/// How many resources an item declares, evaluating it.
pub(crate) fn resource_count(db: &dyn Db, item: Item) -> usize {
    eval_resources(db, item).resources.len()
}

pub(crate) fn facts_of(db: &dyn Db, item: Item) -> Facts {
    let evaluated = eval_resources(db, item);
    let mut out = Facts {
        cyclic: evaluated.cyclic,
        facts: Vec::with_capacity(evaluated.resources.len()),
        instances: evaluated
            .instances
            .iter()
            .map(|i| InstanceFact {
                id: i.id.clone(),
                origin: i.origin.clone(),
                name_span: i.name_span,
                members: i.members.clone(),
            })
            .collect(),
    };
    for (index, r) in evaluated.resources.iter().enumerate() {
        let mut identity = None;
        let schema = crate::lower::kind_schema(db, r.kind_item);
        if let Some(schema) = &schema {
            // Most kinds have one identity field: its text is the key. Several are joined.
            let mut first: Option<(Arc<str>, Span)> = None;
            let mut joined: Option<String> = None;
            let mut complete = true;
            for f in schema.identity_fields() {
                match r.attr(&f.name) {
                    Some((v, s)) if !v.is_unknown() => {
                        let text = identity_text(v);
                        match (&first, &mut joined) {
                            (None, _) => first = Some((text, s)),
                            (Some((k, _)), joined) => {
                                let joined = joined.get_or_insert_with(|| format!("{k}\u{0}"));
                                joined.push_str(&text);
                                joined.push('\u{0}');
                            }
                        }
                    }
                    _ => complete = false,
                }
            }
            if complete {
                identity = match (first, joined) {
                    (Some((_, span)), Some(joined)) => Some((Arc::from(joined), span)),
                    (first, None) => first,
                    (None, Some(_)) => None,
                };
            }
        }
        let mut refs: ThinVec<Arc<str>> = r.refs.iter().map(|(id, _)| id.clone()).collect();
        refs.sort();
        refs.dedup();
        let mut names = ThinVec::new();
        for f in schema.iter().flat_map(|s| s.fields.iter()) {
            // Few fields refer to other resources: look the value up only for those.
            let Some(to) = &f.refers else { continue };
            let Some((v, _)) = r.attr(&f.name) else { continue };
            // One name, or a list of names (`groups`).
            let values: &[Value] = match v {
                Value::List(items) => items.as_slice(),
                other => std::slice::from_ref(other),
            };
            for v in values.iter().filter(|v| matches!(v, Value::Str(_))) {
                names.push((to.clone(), identity_text(v)));
            }
        }
        // Kept for the whole compilation; a vector grown by pushing holds room for four.
        names.shrink_to_fit();
        out.facts.push(Fact {
            id: r.id.clone(),
            kind: r.kind.clone(),
            origin: r.origin.clone(),
            name_span: r.name_span,
            identity,
            refs,
            module: schema.as_ref().map(|s| s.module.clone()).unwrap_or_default(),
            names,
            after: r.after.iter().map(|(id, _)| id.clone()).collect(),
            notify: r.notify.clone(),
            refreshable: schema.is_some_and(|s| s.refreshable),
            sites: r.sites.clone(),
            index: index as u32,
        });
    }
    out
}

/// The stack's waivers, each naming one of its controls.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WaiversResult {
    pub waivers: Vec<iade_intent::ir::Waiver>,
    pub diags: Vec<Diag>,
}

#[salsa::tracked(returns(ref))]
pub fn stack_waivers(db: &dyn Db) -> WaiversResult {
    let mut out = WaiversResult::default();
    let mut controls: Vec<String> = Vec::new();
    let mut found = Vec::new();
    for &m in stack_modules(db) {
        // Only controls and waivers are lowered here, told by their names: reading every
        // item's lowering would redo this after any edit.
        for &item in own_scope(db, m).items.iter().filter(|i| {
            let name = i.name(db);
            name.starts_with("control") || name.starts_with("waive#")
        }) {
            match &lower_item(db, item).kind {
                LoweredKind::Check(c) if c.kind == CheckKind::Control => controls.push(c.name.clone()),
                LoweredKind::Waiver(w, span) => found.push((item, w.clone(), *span)),
                _ => {}
            }
        }
    }
    for (item, w, span) in found {
        if controls.contains(&w.control) {
            out.waivers.push(*w);
            continue;
        }
        let help = crate::suggest::did_you_mean(&w.control, controls.iter().map(String::as_str))
            .unwrap_or_else(|| "a waiver names a `control` of the stack".into());
        out.diags.push(
            Diag::new(codes::E0101, format!("no control `{}` to waive", w.control))
                .primary(&origin(db, item), span, "not a control of this stack")
                .help(help),
        );
    }
    out
}

/// The stack's settings, from its `stack` item (the defaults when it has none), and what is
/// wrong with its `stack` items: more than one, or one in a module file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StackSettingsResult {
    pub settings: StackSettings,
    pub diags: Vec<Diag>,
}

#[salsa::tracked(returns(ref))]
pub fn stack_settings(db: &dyn Db) -> StackSettingsResult {
    let mut out = StackSettingsResult::default();
    let mut first: Option<Item> = None;
    for m in stack_modules(db) {
        let own = *m == stack_module(db);
        // Only `stack` items are lowered here, told by their names: reading every item's
        // lowering would redo this after any edit.
        for &item in own_scope(db, *m).items.iter().filter(|i| i.name(db).starts_with("stack:")) {
            let LoweredKind::Stack(settings) = &lower_item(db, item).kind else { continue };
            let o = origin(db, item);
            if !own {
                out.diags.push(
                    Diag::new(codes::E0212, "a module may not declare the stack")
                        .primary(&o, decl_name_span(db, item), "in a module file")
                        .help("move the `stack` item to one of the stack's own files"),
                );
                continue;
            }
            match first {
                Some(f) => out.diags.push(
                    Diag::new(codes::E0212, "the stack is declared twice")
                        .primary(&o, decl_name_span(db, item), "declared again here")
                        .secondary(&origin(db, f), decl_name_span(db, f), "first declared here")
                        .help("a stack has at most one `stack` item; merge their settings"),
                ),
                None => {
                    first = Some(item);
                    out.settings = settings.clone();
                }
            }
        }
    }
    out
}

#[salsa::tracked(returns(ref))]
pub fn stack_resources(db: &dyn Db) -> StackResources {
    let mut out = StackResources::default();
    let limit = stack_settings(db).settings.limits.resources;
    // Every item's facts first (up to the limit, as below), then the cycles (see
    // `Database::prepare`).
    let mut seen = 0usize;
    // Built here and dropped with the query in a database that compiles once (see
    // `file_facts`).
    let mut built: Vec<(Item, Facts)> =
        Vec::with_capacity(if db.once() { resource_items(db).len() } else { 0 });
    let mut all_facts: Vec<(Item, &Facts)> = Vec::with_capacity(resource_items(db).len());
    if db.once() {
        // Built on several threads already for a large stack (see `Database::prepare`).
        let mut prebuilt =
            db.take_facts().filter(|f| f.len() == resource_items(db).len()).map(Vec::into_iter);
        for &item in resource_items(db) {
            if seen > limit {
                break;
            }
            let facts = match prebuilt.as_mut().and_then(Iterator::next) {
                Some(facts) => facts,
                None => facts_of(db, item),
            };
            seen += facts.facts.len();
            built.push((item, facts));
        }
    } else {
        for (file, items) in resource_items_by_file(db) {
            if seen > limit {
                break;
            }
            let facts = file_facts(db, file);
            debug_assert_eq!(facts.len(), items.len(), "invariant: a file's facts follow its resource items");
            seen += facts.iter().map(|f| f.facts.len()).sum::<usize>();
            all_facts.extend(items.iter().copied().zip(facts));
        }
    }
    all_facts.extend(built.iter().map(|(item, facts)| (*item, facts)));
    let cycles = &static_cycles(db).diags;
    out.diags.extend(cycles.iter().cloned());
    let mut count = 0usize;
    // Lookups by id hash; the order that diagnostics and the result follow is the ids' order.
    // Made with room for every fact counted above, so they are never grown by copying.
    let mut by_id: FxHashMap<&str, usize> = FxHashMap::with_capacity_and_hasher(seen, Default::default());
    let mut order: Vec<(&Fact, Item)> = Vec::with_capacity(seen);
    let mut instance_facts: FxHashMap<&str, &InstanceFact> = FxHashMap::default();
    // Instances declared twice: the second's members are not reported again.
    let mut shadowed: Vec<String> = Vec::new();
    for (item, facts) in all_facts {
        for inst in &facts.instances {
            match instance_facts.get(inst.id.as_str()) {
                Some(first) => {
                    out.diags.push(
                        Diag::new(codes::E0301, format!("instance `{}` is declared twice", inst.id))
                            .primary(&inst.origin, inst.name_span, "declared again here")
                            .secondary(&first.origin, first.name_span, "first declared here")
                            .help("instance ids (COMPONENT.NAME) are unique in a stack; rename one"),
                    );
                    shadowed.push(format!("{}/", inst.id));
                }
                None => {
                    instance_facts.insert(&inst.id, inst);
                    out.instances.insert(inst.id.clone(), (item, inst.members.clone()));
                }
            }
        }
        if facts.cyclic && cycles.is_empty() {
            let o = origin(db, item);
            out.diags.push(
                Diag::new(codes::E0303, "this resource depends on itself")
                    .primary(&o, decl_name_span(db, item), "its attributes refer back to it")
                    .help("break the cycle: remove a reference or an `after` entry"),
            );
        }
        count += facts.facts.len();
        if count > limit {
            let o = origin(db, item);
            out.diags.push(
                Diag::new(codes::E0211, format!("the stack declares more than {limit} resources"))
                    .primary(&o, decl_name_span(db, item), "the limit is passed here")
                    .help("if the stack really needs more, raise it in its settings: `stack NAME { max_resources = … }`"),
            );
            break;
        }
        for f in &facts.facts {
            if let Some(&i) = by_id.get(&*f.id) {
                if shadowed.iter().any(|p| f.id.starts_with(p.as_str())) {
                    continue;
                }
                let first = order[i].0;
                out.diags.push(
                    Diag::new(codes::E0301, format!("resource `{}` is declared twice", f.id))
                        .primary(&f.origin, f.name_span, "declared again here")
                        .secondary(&first.origin, first.name_span, "first declared here")
                        .help("resource ids (KIND.NAME) are unique in a stack; rename one"),
                );
                continue;
            }
            by_id.insert(&f.id, order.len());
            order.push((f, item));
        }
    }
    order.sort_unstable_by(|a, b| a.0.id.cmp(&b.0.id));
    // Two resources that name the same object in the environment.
    let mut identities: FxHashMap<(&str, &str), &Fact> =
        FxHashMap::with_capacity_and_hasher(order.len(), Default::default());
    for &(f, item) in &order {
        let Some((key, span)) = &f.identity else { continue };
        match identities.get(&(&*f.kind, &**key)) {
            Some(first) => {
                let first_span = first.identity.as_ref().map_or(first.name_span, |(_, s)| *s);
                let shown = identity_shown(db, item, f.index);
                let mut d = Diag::new(
                    codes::E0302,
                    format!("`{}` and `{}` are the same {} ({shown})", first.id, f.id, f.kind),
                )
                .primary(&f.origin, *span, format!("{} names it", f.id))
                .secondary(&first.origin, first_span, format!("{} names it too", first.id));
                // Members of instances: where each instance was declared.
                for site in f.sites.iter().chain(&first.sites) {
                    d = d.secondary(&site.origin, site.span, format!("instance `{}` declared here", site.id));
                }
                out.diags.push(d.help(
                    "two resources may not manage one object: remove one, or give it another identity",
                ));
            }
            None => {
                identities.insert((&*f.kind, &**key), f);
            }
        }
    }
    // Read for `notify` only: most stacks have none, and the map is not built for them.
    let fact_of: FxHashMap<&str, &Fact> = if order.iter().any(|(f, _)| !f.notify.is_empty()) {
        order.iter().map(|(f, _)| (&*f.id, *f)).collect()
    } else {
        FxHashMap::default()
    };
    // An instance in `after` or `notify` stands for its members.
    let expand = |id: &str| -> Vec<String> {
        match instance_facts.get(id) {
            Some(inst) => inst.members.clone(),
            None => vec![id.to_string()],
        }
    };
    let mut edges = Vec::new();
    let mut unrefreshable: BTreeSet<(Origin, Span, String)> = BTreeSet::new();
    // What `refers` fields can name: resources by kind and identity, of the kinds named (a
    // stack of files whose `owner` names a user indexes its users, not its files).
    let mut referred: Vec<(&str, &str)> = Vec::new();
    for (to, _) in order.iter().flat_map(|(f, _)| &f.names) {
        let kind = (to.module.as_str(), to.kind.as_str());
        if !referred.contains(&kind) {
            referred.push(kind);
        }
    }
    let named: FxHashMap<(&str, &str, &str), &str> = order
        .iter()
        .filter(|(f, _)| referred.contains(&(&*f.module, &*f.kind)))
        .filter_map(|(f, _)| {
            let (key, _) = f.identity.as_ref()?;
            Some(((&*f.module, &*f.kind, &**key), &*f.id))
        })
        .collect();
    for (f, _) in &order {
        for dep in &f.refs {
            if by_id.contains_key(&**dep) {
                edges.push(Edge {
                    from: dep.to_string(),
                    to: f.id.to_string(),
                    reason: EdgeReason::Reference,
                });
            }
        }
        // A file whose `owner` names a declared user is applied after that user.
        for (to, key) in &f.names {
            if let Some(dep) = named.get(&(to.module.as_str(), to.kind.as_str(), &**key))
                && **dep != *f.id
            {
                edges.push(Edge {
                    from: (*dep).to_string(),
                    to: f.id.to_string(),
                    reason: EdgeReason::Reference,
                });
            }
        }
        for dep in f.after.iter().flat_map(|a| expand(a)) {
            if *dep != *f.id && by_id.contains_key(dep.as_str()) && !f.refs.iter().any(|r| **r == *dep) {
                edges.push(Edge { from: dep, to: f.id.to_string(), reason: EdgeReason::After });
            }
        }
        let mut targets: Vec<String> = Vec::new();
        for (target, span) in &f.notify {
            let key = (f.origin.clone(), *span, target.to_string());
            let refreshable = |id: &str| fact_of.get(id).is_some_and(|f| f.refreshable);
            let found: Vec<String> = expand(target).into_iter().filter(|m| refreshable(m)).collect();
            if found.is_empty() {
                // A `notify` in a component is reported once, not once per instance.
                if !unrefreshable.insert(key) {
                    continue;
                }
                let what = if instance_facts.contains_key(&**target) {
                    format!("instance `{target}` has no member that can be refreshed")
                } else {
                    let kind = fact_of.get(&**target).map_or("", |f| &*f.kind);
                    format!("`{target}` cannot be refreshed: kind `{kind}` has no refresh action")
                };
                out.diags.push(
                    Diag::new(codes::E0218, what)
                        .primary(&f.origin, *span, format!("{} notifies it", f.id))
                        .help("notify an `exec` whose `refresh` (or `apply`) reloads the service; use `after` for ordering alone"),
                );
                continue;
            }
            for t in found {
                if *t == *f.id {
                    continue;
                }
                if !targets.contains(&t) {
                    targets.push(t.clone());
                }
                edges.push(Edge { from: f.id.to_string(), to: t, reason: EdgeReason::Notify });
            }
        }
        if !targets.is_empty() {
            out.notify.insert(f.id.to_string(), targets);
        }
    }
    edges.sort_unstable();
    edges.dedup();
    out.edges = edges;
    out.resources =
        order.into_iter().map(|(f, item)| ResourceRef { id: f.id.clone(), item, index: f.index }).collect();
    // A large stack's facts (100,000 resources: a million small values) are freed on a thread
    // of their own: this thread goes on with what reads the result. Should no thread start,
    // they are freed here.
    if built.len() >= FREE_APART_FROM {
        let _ = std::thread::Builder::new().spawn(move || drop(built));
    }
    out
}

/// From this many resource items on, [`stack_resources`] frees the facts it built apart.
const FREE_APART_FROM: usize = 4096;

/// A resource's identity as a message shows it: `path = "/etc/motd"`.
fn identity_shown(db: &dyn Db, item: Item, index: u32) -> String {
    let Some(r) = eval_resources(db, item).resources.get(index as usize) else { return String::new() };
    let Some(schema) = crate::lower::kind_schema(db, r.kind_item) else { return String::new() };
    let shown: Vec<String> = schema
        .identity_fields()
        .filter_map(|f| r.attr(&f.name).map(|(v, _)| format!("{} = {v}", f.name)))
        .collect();
    shown.join(", ")
}

/// How an identity value is compared: paths lexically normalized. A string already normal
/// (most are) is shared, not copied.
fn identity_text(v: &Value) -> Arc<str> {
    match v {
        Value::Str(s) => match crate::scope::normalize_path_if_needed(s, s.starts_with('/')) {
            Some(normal) => Arc::from(normal),
            None => s.clone(),
        },
        other => Arc::from(other.to_string()),
    }
}

/// A resource item's reference by fixed id: the id, where, and whether it is a `notify`
/// (the named resource comes after the item's, where every other reference comes before).
pub type StaticRef = (String, Span, bool);

/// The references of the items of resources with fixed names, by item: what the search for
/// cycles walks. Empty when no resource refers to another by id.
fn static_refs(db: &dyn Db) -> rustc_hash::FxHashMap<Item, std::borrow::Cow<'_, [StaticRef]>> {
    // Lowered whole and naming no resource by id: no resource refers to another.
    if db.names_no_resource_by_id() {
        return rustc_hash::FxHashMap::default();
    }
    // The items' references first, then the index (see `Database::prepare`). A stack whose
    // resources refer to none by a fixed id has no cycle, and its index is not built here.
    // A database that compiles once reads them from the IR, without a query per item.
    let mut refs: rustc_hash::FxHashMap<Item, std::borrow::Cow<'_, [StaticRef]>> =
        rustc_hash::FxHashMap::default();
    if db.once() {
        for &item in resource_items(db) {
            let found = refs_in(db, item);
            if !found.is_empty() {
                refs.insert(item, found.into());
            }
        }
    } else {
        for (file, _) in resource_items_by_file(db) {
            refs.extend(file_refs(db, file).iter().map(|(item, found)| (*item, found.as_slice().into())));
        }
    }
    refs
}

/// An edge of the static graph: from a resource to one that must come before it.
#[derive(Clone, Copy)]
struct StaticEdge<'a> {
    to: &'a str,
    /// Where the reference is written, in the item of resource `at`.
    span: Span,
    at: &'a str,
    /// Written as `at`'s `notify`: the edge runs from the notified resource to `at`.
    notify: bool,
}

/// The static graph of references among resources with fixed names (values, `after` and
/// `notify`), by id: each resource with those that must come before it, without references
/// to themselves. A `notify` runs the other way: the notified resource comes after.
/// Borrowed from the items' references and the index: building it copies no id.
fn static_graph<'a>(
    index: &'a BTreeMap<Arc<str>, Item>,
    refs: &'a rustc_hash::FxHashMap<Item, std::borrow::Cow<'_, [StaticRef]>>,
) -> BTreeMap<&'a str, Vec<StaticEdge<'a>>> {
    let mut graph: BTreeMap<&str, Vec<StaticEdge<'a>>> = index.keys().map(|id| (&**id, Vec::new())).collect();
    for (id, item) in index {
        for (to, span, notify) in refs.get(item).map_or(&[][..], |r| &r[..]) {
            let Some((to, _)) = index.get_key_value(to.as_str()) else { continue };
            if to == id {
                continue;
            }
            let (from, to) = if *notify { (&**to, &**id) } else { (&**id, &**to) };
            let edge = StaticEdge { to, span: *span, at: id, notify: *notify };
            graph.entry(from).or_default().push(edge);
        }
    }
    graph
}

/// The resources with fixed names that are on a dependency cycle, each with the number of its
/// cycle: a strongly connected component of the static graph, found by Tarjan's algorithm.
fn components(ids: &[&Arc<str>], succ: &[Vec<usize>]) -> BTreeMap<Arc<str>, u32> {
    let mut out = BTreeMap::new();
    // Without recursion: a cycle may be 100,000 resources long.
    const UNSEEN: u32 = u32::MAX;
    let (mut order, mut low) = (vec![UNSEEN; ids.len()], vec![0u32; ids.len()]);
    let mut on_stack = vec![false; ids.len()];
    let (mut stack, mut next, mut component) = (Vec::new(), 0u32, 0u32);
    for root in 0..ids.len() {
        if order[root] != UNSEEN || succ[root].is_empty() {
            continue;
        }
        // (resource, its next successor to look at)
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&(v, i)) = work.last() {
            if order[v] == UNSEEN {
                order[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = succ[v].get(i) {
                if let Some(top) = work.last_mut() {
                    top.1 += 1;
                }
                if order[w] == UNSEEN {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(u, _)) = work.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == order[v] {
                let mut members = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                if members.len() > 1 {
                    out.extend(members.into_iter().map(|m| (ids[m].clone(), component)));
                    component += 1;
                }
            }
        }
    }
    out
}

/// Dependency cycles among resources with fixed names, found from their IR before anything is
/// evaluated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cycles {
    /// Each cycle, reported once with every step.
    pub diags: Vec<Diag>,
    /// The resources on a cycle, each with the number of its cycle (its strongly connected
    /// component). A resource never evaluates another of its own cycle
    /// ([`crate::eval::CompilerEnv`]): a cycle of references evaluated was a cycle of queries,
    /// which salsa resolves in time and memory quadratic in its length (10,000 resources took
    /// 3.3 s and 1.2 GB; 100,000 did not finish).
    pub components: BTreeMap<Arc<str>, u32>,
}

/// The resources on a dependency cycle, with the number of their cycle ([`Cycles::components`]):
/// what evaluation reads, apart from the cycles' diagnostics, so an edit that moves a span of
/// one does not evaluate the resources that read others again.
#[salsa::tracked(returns(ref))]
pub fn cycle_components(db: &dyn Db) -> BTreeMap<Arc<str>, u32> {
    static_cycles(db).components.clone()
}

/// Dependency cycles among resources with fixed names (see [`Cycles`]). Empty for a stack
/// without any.
#[salsa::tracked(returns(ref))]
pub fn static_cycles(db: &dyn Db) -> Cycles {
    let refs = static_refs(db);
    if refs.is_empty() {
        return Cycles::default();
    }
    let index = static_index(db);
    let graph = static_graph(index, &refs);
    // Only resources that refer to something can be on a cycle; most stacks have none.
    if graph.values().all(Vec::is_empty) {
        return Cycles::default();
    }
    let ids: Vec<&Arc<str>> = index.keys().collect();
    let at: FxHashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (&***id, i)).collect();
    let succ: Vec<Vec<usize>> =
        ids.iter().map(|id| graph[&***id].iter().filter_map(|e| at.get(e.to).copied()).collect()).collect();
    let components = components(&ids, &succ);
    if components.is_empty() {
        return Cycles::default();
    }
    let origin_of = |id: &str| index.get(id).map(|item| origin(db, *item));
    // Depth-first search; a back edge closes a cycle.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    let mut out = Vec::new();
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    for &start in graph.keys() {
        if state.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some((node, next)) = path.last().copied() {
            let edges = &graph[node];
            if next >= edges.len() {
                state.insert(node, 2);
                path.pop();
                continue;
            }
            if let Some(last) = path.last_mut() {
                last.1 += 1;
            }
            let to = edges[next].to;
            match state.get(to).copied().unwrap_or(0) {
                0 => {
                    state.insert(to, 1);
                    path.push((to, 0));
                }
                1 => {
                    let at = path.iter().position(|(n, _)| *n == to).unwrap_or(0);
                    let cycle: Vec<(&str, usize)> = path[at..].to_vec();
                    let mut key: Vec<String> = cycle.iter().map(|(n, _)| n.to_string()).collect();
                    key.sort();
                    if !reported.insert(key) {
                        continue;
                    }
                    let names: Vec<&str> = cycle.iter().map(|(n, _)| *n).collect();
                    let mut d = Diag::new(
                        codes::E0303,
                        format!("dependency cycle: {} → {}", names.join(" → "), names[0]),
                    );
                    for (i, (n, taken)) in cycle.iter().enumerate() {
                        let e = graph[*n][taken - 1];
                        let label = if e.notify {
                            format!("{} notifies {n}", e.to)
                        } else {
                            format!("{n} refers to {}", e.to)
                        };
                        let Some(o) = origin_of(e.at) else { continue };
                        d = if i == 0 {
                            d.primary(&o, e.span, label)
                        } else {
                            d.secondary(&o, e.span, label)
                        };
                    }
                    out.push(
                        d.help("remove one of these references, or the `after` entry that closes the cycle"),
                    );
                }
                _ => {}
            }
        }
    }
    Cycles { diags: out, components }
}

/// The resources that the IR of a file's resource items refers to by fixed id, with where:
/// each item that refers to any. A query per file, as [`file_facts`] is.
#[salsa::tracked(returns(ref))]
pub fn file_refs(db: &dyn Db, file: SourceFile) -> Vec<(Item, Vec<StaticRef>)> {
    file_resource_items(db, file)
        .map(|item| (item, refs_in(db, item)))
        .filter(|(_, found)| !found.is_empty())
        .collect()
}

fn refs_in(db: &dyn Db, item: Item) -> Vec<StaticRef> {
    let mut refs = Vec::new();
    if let LoweredKind::Resources { body, .. } = &lower_item(db, item).kind {
        for g in body {
            if let Gen::Resource(r) = g {
                if let ResName::Dynamic(ir) = &r.name {
                    collect_into(ir, false, &mut refs);
                }
                for b in &r.body {
                    body_refs(b, &mut refs);
                }
            }
        }
    }
    refs
}

/// The references of `ir`, each marked as a `notify` or not.
fn collect_into(ir: &Ir, notify: bool, out: &mut Vec<StaticRef>) {
    let from = out.len();
    collect_refs(ir, out);
    if notify {
        out[from..].iter_mut().for_each(|r| r.2 = true);
    }
}

fn body_refs(b: &BodyStmt, out: &mut Vec<StaticRef>) {
    match b {
        BodyStmt::Attr { value, .. } | BodyStmt::Let { value, .. } | BodyStmt::After(value) => {
            collect_into(value, false, out)
        }
        BodyStmt::Notify(value) => collect_into(value, true, out),
        BodyStmt::If { cond, then, otherwise } => {
            collect_into(cond, false, out);
            for b in then.iter().chain(otherwise) {
                body_refs(b, out);
            }
        }
        BodyStmt::Manage(_) | BodyStmt::Provider(_) | BodyStmt::Protect(_) => {}
    }
}

/// The resources `ir` names by fixed id, as references that are not a `notify`.
fn collect_refs(ir: &Ir, out: &mut Vec<StaticRef>) {
    match &ir.kind {
        IrKind::Resource(id) => out.push((id.to_string(), ir.span, false)),
        IrKind::ResourceByName { kind, name, relative } => {
            if let (IrKind::Lit(Value::Str(n)), false) = (&name.kind, relative) {
                out.push((format!("{kind}.{n}"), ir.span, false));
            }
            collect_refs(name, out);
        }
        IrKind::List(items) | IrKind::Interp(items) | IrKind::Call(_, items) => {
            items.iter().for_each(|i| collect_refs(i, out));
        }
        IrKind::RuleCall(call) => call.args.iter().for_each(|i| collect_refs(i, out)),
        IrKind::Record(entries) => entries.iter().for_each(|(_, v)| collect_refs(v, out)),
        IrKind::Unary(_, a) | IrKind::Member(a, _) => collect_refs(a, out),
        IrKind::Binary(_, a, b) | IrKind::Index(a, b) => {
            collect_refs(a, out);
            collect_refs(b, out);
        }
        IrKind::If(a, b, c) => {
            collect_refs(a, out);
            collect_refs(b, out);
            collect_refs(c, out);
        }
        IrKind::Objects { under: Some(u), .. } => collect_refs(u, out),
        IrKind::Comprehension(c) => {
            collect_refs(&c.iter, out);
            if let Some(cond) = &c.cond {
                collect_refs(cond, out);
            }
            collect_refs(&c.value, out);
        }
        _ => {}
    }
}

/// `intent(kind)`: the intended resources of a kind, as rules see them.
#[salsa::tracked(returns(ref))]
pub fn intent_of_kind(db: &dyn Db, kind: KindKey) -> Vec<Value> {
    let name = kind.name(db);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for &item in resource_items(db) {
        for (id, v) in crate::eval::values_in(db, item) {
            if let Value::Resource(r) = v
                && *r.kind == **name
                && seen.insert(id)
            {
                out.push(v.clone());
            }
        }
    }
    out
}

/// Import cycles among modules, each reported at the `use` that closes it.
#[salsa::tracked(returns(ref))]
pub fn import_cycles(db: &dyn Db) -> Vec<Diag> {
    let modules = stack_modules(db);
    let mut out = Vec::new();
    for &m in modules {
        // A cycle through `m` exists when `m` is reachable from one of its imports.
        for (first, o, span) in &module_scope(db, m).imports {
            let mut seen = vec![*first];
            let mut path = vec![*first];
            let mut found = *first == m;
            let mut i = 0;
            while !found && i < seen.len() {
                for (next, _, _) in &module_scope(db, seen[i]).imports {
                    if *next == m {
                        found = true;
                        path.push(seen[i]);
                        break;
                    }
                    if !seen.contains(next) {
                        seen.push(*next);
                    }
                }
                i += 1;
            }
            if found && m.name(db) <= first.name(db) {
                let name = |m: &Module| {
                    if m.name(db).is_empty() { "the stack".to_string() } else { m.name(db).clone() }
                };
                out.push(
                    Diag::new(
                        codes::E0106,
                        format!("import cycle: {} imports {} which imports it back", name(&m), name(first)),
                    )
                    .primary(o, *span, "this `use` closes the cycle")
                    .help("move what both modules need into a third module that neither imports"),
                );
            }
        }
    }
    out
}

/// Every diagnostic of the stack except syntax errors, item-relative.
#[salsa::tracked(returns(ref))]
pub fn stack_diagnostics(db: &dyn Db) -> Vec<Diag> {
    let mut out = Vec::new();
    out.extend(import_cycles(db).iter().cloned());
    out.extend(stack_settings(db).diags.iter().cloned());
    out.extend(stack_waivers(db).diags.iter().cloned());
    for &m in stack_modules(db) {
        out.extend(module_scope(db, m).diags.iter().cloned());
        for f in m.files(db) {
            out.extend(file_diagnostics(db, *f).iter().cloned());
        }
    }
    out.extend(stack_resources(db).diags.iter().cloned());
    out
}

/// The diagnostics of one file's items: lowering, evaluation and policies.
#[salsa::tracked(returns(ref))]
pub fn file_diagnostics(db: &dyn Db, file: SourceFile) -> Vec<Diag> {
    let mut out = Vec::new();
    for &item in &crate::items::file_items(db, file).items {
        // A resource item's evaluation holds its lowering's diagnostics too: its IR may be
        // released (see `Database::lower`).
        if declares_resources(item.name(db)) {
            out.extend(eval_resources(db, item).diags.iter().cloned());
            continue;
        }
        let lowered = lower_item(db, item);
        out.extend(lowered.diags.iter().cloned());
        match &lowered.kind {
            LoweredKind::Param { .. } | LoweredKind::Let { .. } => {
                out.extend(eval_global(db, item).diags.iter().cloned())
            }
            LoweredKind::Check(c) if c.kind == CheckKind::Policy => {
                out.extend(crate::policy::check_policy(db, item).diags.iter().cloned());
            }
            _ => {}
        }
    }
    out
}

/// The intent graph with absolute, line-and-column source locations.
pub fn intent_graph(db: &Database) -> IntentGraph {
    let resources = stack_resources(db);
    let mut lines: HashMap<iade_span::FileId, (Arc<str>, LineIndex)> = HashMap::new();
    let mut loc = |origin: &Origin, span: Span| -> Option<SourceLoc> {
        let (file, abs) = db.resolve(origin, span)?;
        let (path, index) = lines.entry(file).or_insert_with(|| {
            let f = db.file_by_id(file);
            let path = f.map_or_else(|| Arc::from(""), |f| Arc::from(f.path(db).as_str()));
            (path, LineIndex::new(f.map_or("", |f| f.text(db).as_str())))
        });
        let lc = index.line_col(abs.start);
        Some(SourceLoc {
            file: path.clone(),
            line: lc.line + 1,
            column: lc.col + 1,
            start: abs.start,
            end: abs.end,
        })
    };
    let mut nodes = Vec::new();
    for r in resources.resources.iter().filter_map(|r| r.get(db)) {
        let schema = crate::lower::kind_schema(db, r.kind_item);
        let mut attrs = iade_intent::VecMap::new();
        for (k, v, span) in r.attrs() {
            attrs.insert(k.to_string(), NodeAttr { value: v.clone(), source: loc(&r.origin, span) });
        }
        // Managed fields the resource leaves unset take their kind's default.
        for f in schema.iter().flat_map(|s| s.fields.iter()) {
            if let Some(d) = &f.default
                && !r.has_attr(&f.name)
            {
                attrs.insert(f.name.to_string(), NodeAttr { value: d.clone(), source: None });
            }
        }
        let identity = schema
            .iter()
            .flat_map(|s| s.identity_fields())
            .filter_map(|f| r.attr(&f.name).map(|(v, _)| (f.name.to_string(), v.clone())))
            .collect();
        let Some(declared) = loc(&r.origin, r.span) else { continue };
        nodes.push(Node {
            id: r.id.to_string(),
            kind: r.kind.to_string(),
            name: r.name().to_string(),
            provider_type: r.provider_type.as_deref().map(str::to_string),
            provider: r.provider.clone(),
            manage: r.manage,
            identity,
            attrs,
            declared,
            instance: r.instance.clone(),
            notify: resources.notify.get(&*r.id).cloned().unwrap_or_default(),
            protect: r.protect,
        });
    }
    let mut instances = Vec::new();
    for (id, (item, members)) in &resources.instances {
        let Some(inst) = eval_resources(db, *item).instances.iter().find(|i| i.id == *id) else { continue };
        let Some(declared) = loc(&inst.origin, inst.span) else { continue };
        let mut members = members.clone();
        members.sort();
        instances.push(iade_intent::Instance {
            id: id.clone(),
            component: inst.component.clone(),
            name: inst.name.clone(),
            parent: inst.parent.clone(),
            members,
            declared,
        });
    }
    IntentGraph {
        version: IntentGraph::VERSION,
        nodes,
        edges: resources.edges.clone(),
        instances,
        providers: provider_instances(db),
    }
}

/// The stack's `provider TYPE NAME { … }` items with their settings evaluated.
fn provider_instances(db: &Database) -> Vec<iade_intent::ProviderInstance> {
    let env = crate::eval::CompilerEnv::new(db);
    let mut out = Vec::new();
    for &m in stack_modules(db) {
        for &item in &own_scope(db, m).items {
            // Named `provider:NAME` (see `items`): the name is read without the item's tree.
            let Some(name) = item.name(db).strip_prefix("provider:") else { continue };
            let LoweredKind::Provider { provider_type, attrs } = &lower_item(db, item).kind else { continue };
            let mut settings = BTreeMap::new();
            for (key, ir) in attrs {
                let v = iade_intent::eval::Evaluator::new(&env, origin(db, item), 0)
                    .eval(ir)
                    .unwrap_or_else(|e| Value::unknown(e.message));
                settings.insert(key.clone(), v);
            }
            out.push(iade_intent::ProviderInstance {
                name: name.to_string(),
                provider_type: provider_type.clone(),
                settings,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Counts for the one-line summary of `iade check`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The stack's own top-level files.
    pub files: usize,
    /// Module files loaded through `use` (the standard library's not counted).
    pub modules: usize,
    pub resources: usize,
    /// Policies and controls of the stack and of its modules.
    pub policies: usize,
    pub controls: usize,
    pub checks_passed: usize,
    pub checks_failed: usize,
    pub checks_unknown: usize,
}

pub fn summary(db: &dyn Db) -> Summary {
    let stdlib: Vec<SourceFile> = db.stdlib_names().iter().filter_map(|n| db.stdlib_module(n)).collect();
    let mut s = Summary { files: db.stack().files(db).len(), ..Summary::default() };
    s.modules = module_files(db).iter().filter(|f| !stdlib.contains(f)).count();
    s.resources = stack_resources(db).resources.len();
    for m in stack_modules(db) {
        if m.files(db).iter().any(|f| stdlib.contains(f)) {
            continue;
        }
        for &item in &own_scope(db, *m).items {
            // Told by the prefix first: a stack of 100,000 resources has a few policies and
            // controls, and this runs after every edit.
            let name = item.name(db);
            if !(name.starts_with("policy:") || name.starts_with("control:")) {
                continue;
            }
            match split_name(name) {
                ItemName::Policy => {
                    s.policies += 1;
                    let r = crate::policy::check_policy(db, item);
                    s.checks_passed += r.passed;
                    s.checks_failed += r.failed;
                    s.checks_unknown += r.unknown;
                }
                ItemName::Control => s.controls += 1,
                _ => {}
            }
        }
    }
    s
}

/// The stack's declared params: name, type and whether it has a default.
pub fn stack_params(db: &dyn Db) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    // Params are named like lets (`value:NAME`): only those items' trees are read here, and only
    // a `param` is lowered; the rest of the stack is lowered when it is checked.
    for &item in own_scope(db, stack_module(db)).items.iter().filter(|i| i.name(db).starts_with("value:")) {
        let is_param = crate::items::item_tree(db, item)
            .as_deref()
            .is_some_and(|s| matches!(s.kind, iade_syntax::ast::StmtKind::Param(_)));
        if !is_param {
            continue;
        }
        if let LoweredKind::Param { name, ty, default, .. } = &lower_item(db, item).kind {
            out.push((name.clone(), ty.to_string(), default.is_some()));
        }
    }
    out
}

/// The controls of the stack with the rules and globals they may use, for the engine.
pub fn program(db: &Database) -> iade_intent::Program {
    use std::sync::Arc;
    let mut p = iade_intent::Program { waivers: stack_waivers(db).waivers.clone(), ..Default::default() };
    for &m in stack_modules(db) {
        // Resources are none of what a program holds, and are told by their names.
        for &item in own_scope(db, m).items.iter().filter(|i| !declares_resources(i.name(db))) {
            let lowered = &lower_item(db, item).kind;
            // A finding is located at its control's `require`; the other items (most of them
            // resources) are never located through the program.
            if matches!(lowered, LoweredKind::Rule(_))
                || matches!(lowered, LoweredKind::Check(c) if c.kind == CheckKind::Control)
            {
                let o = origin(db, item);
                let file = item.file(db);
                if let Some(offset) = crate::items::item_offset(db, file, item.name(db)) {
                    p.items.insert(o.clone(), (Arc::from(file.path(db).as_str()), offset));
                    p.lines.entry(o.file).or_insert_with(|| Arc::new(LineIndex::new(file.text(db))));
                }
            }
            match lowered {
                LoweredKind::Rule(r) => {
                    p.rules.insert(r.name.to_string(), r.clone());
                }
                LoweredKind::Param { .. } | LoweredKind::Let { .. } => {
                    p.globals.insert(
                        crate::lower::item_key(db, item).to_string(),
                        eval_global(db, item).value.clone(),
                    );
                }
                LoweredKind::Check(c) if c.kind == CheckKind::Control => p.controls.push(c.clone()),
                LoweredKind::Kind(k) => {
                    p.kinds.insert(k.name.to_string(), crate::eval::kind_fields(db, item).clone());
                    if let Some(provider) = &k.provider {
                        p.providers.insert(k.name.to_string(), provider.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    p
}
