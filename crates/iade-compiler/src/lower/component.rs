//! Lowering of components and their instances.
//!
//! A component's body lowers like a top-level generator, with its params and `name` bound to
//! local slots and its members referred to by ids relative to the instance
//! ([`IrKind::Sibling`]); the evaluator adds the instance's prefix (`vhost.api/`). An instance
//! lowers to [`Gen::Instance`]: its param values and the meta-attributes that apply to every
//! member.

use std::collections::BTreeMap;
use std::sync::Arc;

use iade_diagnostics::codes;
use iade_intent::ir::{Ir, IrKind};
use iade_intent::{Origin, Ty};
use iade_span::Span;
use iade_syntax::ast::{self, StmtKind};

use super::{BodyStmt, Cx, Gen, LoweredKind, ResName, key_text, types_only};
use crate::db::Db;
use crate::items::{Item, item_tree};
use crate::scope::{Def, ItemName, Scope, module_of, module_scope, split_name};
use crate::suggest::did_you_mean;

/// Meta-attributes an instance body may hold besides its params.
pub const INSTANCE_META: &[&str] = &["after", "notify", "manage", "provider", "protect"];

/// How deep instances may nest (a component that contains itself stops here).
pub const MAX_INSTANCE_DEPTH: usize = 32;

/// A lowered component: `name` (slot `name_slot`), its params (the slots after it, in
/// order) and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentIr {
    pub name: String,
    pub params: Vec<ComponentParamIr>,
    pub body: Vec<Gen>,
    pub slots: u32,
    pub name_slot: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentParamIr {
    pub name: String,
    pub ty: Ty,
    /// Evaluated in the instance, after the params before it are set.
    pub default: Option<Ir>,
    pub span: Span,
}

/// `vhost api { port = 8080 }`: an instance of a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceIr {
    pub component: Item,
    pub component_name: String,
    pub name: ResName,
    /// Param values as `(param, value, span of the entry)`.
    pub args: Vec<(String, Ir, Span)>,
    /// `after`, `notify`, `manage`, `provider` and `protect`, for every member.
    pub meta: Vec<BodyStmt>,
    pub span: Span,
    pub name_span: Span,
}

/// What a name in the position of a kind (`NAME id { … }`) declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Declares {
    Kind(Item),
    Component(Item),
}

/// Resolves `file`, `web.vhost`: a kind or a component in scope.
pub fn resolve_declared(db: &dyn Db, scope: &Scope, path: &[ast::Name]) -> Option<Declares> {
    super::path_defs(db, scope, path).iter().find_map(|d| match d {
        Def::Kind(k) => Some(Declares::Kind(*k)),
        Def::Component(c) => Some(Declares::Component(*c)),
        _ => None,
    })
}

/// A component's declared name (`vhost`).
pub fn component_name(db: &dyn Db, comp: Item) -> String {
    match split_name(comp.name(db)) {
        ItemName::Component(n) => n.to_string(),
        _ => comp.name(db).clone(),
    }
}

/// The component an instance item instantiates.
#[salsa::tracked(returns(copy))]
pub fn instance_component(db: &dyn Db, item: Item) -> Option<Item> {
    let stmt = item_tree(db, item)?;
    let StmtKind::Resource(r) = &stmt.kind else { return None };
    let scope = module_scope(db, module_of(db, item.file(db)));
    match resolve_declared(db, scope, &r.kind)? {
        Declares::Component(c) => Some(c),
        Declares::Kind(_) => None,
    }
}

/// A component's params: name, type and whether it has a default. From the declaration's
/// types alone, so components that contain each other do not make lowering recursive.
#[salsa::tracked(returns(ref))]
pub fn component_signature(db: &dyn Db, comp: Item) -> Vec<(String, Ty, bool)> {
    let Some(stmt) = item_tree(db, comp) else { return Vec::new() };
    let StmtKind::Component(c) = &stmt.kind else { return Vec::new() };
    types_only(db, comp, |cx| {
        c.params.iter().map(|p| (p.name.text.clone(), cx.ty(&p.ty), p.default.is_some())).collect()
    })
}

/// A component's members with fixed names, at any depth of its `if`s: name, what the member
/// declares, and the span of its name (relative to the component).
#[salsa::tracked(returns(ref))]
pub fn component_members(db: &dyn Db, comp: Item) -> Vec<(String, Declares, Span)> {
    let Some(stmt) = item_tree(db, comp) else { return Vec::new() };
    let StmtKind::Component(c) = &stmt.kind else { return Vec::new() };
    let scope = module_scope(db, module_of(db, comp.file(db)));
    let mut out = Vec::new();
    collect_members(db, scope, &c.body.stmts, &mut out);
    out
}

fn collect_members(db: &dyn Db, scope: &Scope, stmts: &[ast::Stmt], out: &mut Vec<(String, Declares, Span)>) {
    for stmt in stmts {
        match &stmt.kind {
            StmtKind::Resource(r) => {
                let (name, span) = match &r.name {
                    ast::ResourceName::Ident(n) => (Some(n.text.clone()), n.span),
                    ast::ResourceName::Str(s) => (s.as_plain(), s.span),
                };
                if let (Some(name), Some(d)) = (name, resolve_declared(db, scope, &r.kind)) {
                    out.push((name, d, span));
                }
            }
            StmtKind::If(i) => {
                collect_members(db, scope, &i.then.stmts, out);
                match &i.otherwise {
                    Some(ast::Else::Block(b)) => collect_members(db, scope, &b.stmts, out),
                    Some(ast::Else::If(s)) => collect_members(db, scope, std::slice::from_ref(&**s), out),
                    None => {}
                }
            }
            _ => {}
        }
    }
}

/// Where an id comes from: a fixed id, or one relative to the instance being evaluated.
#[derive(Clone, Debug)]
pub(super) enum IdBase {
    Abs(String),
    Rel(String),
}

impl IdBase {
    pub(super) fn join(&self, member: &str) -> IdBase {
        match self {
            IdBase::Abs(a) => IdBase::Abs(format!("{a}/{member}")),
            IdBase::Rel(r) => IdBase::Rel(format!("{r}/{member}")),
        }
    }

    pub(super) fn ir(&self, db: &dyn Db, span: Span) -> Ir {
        db.note_reference_by_id();
        match self {
            IdBase::Abs(id) => Ir::new(IrKind::Resource(Arc::from(id.as_str())), span),
            IdBase::Rel(id) => Ir::new(IrKind::Sibling(Arc::from(id.as_str())), span),
        }
    }
}

/// The lowering context of a component's body: its members, by name.
#[derive(Clone, Debug, Default)]
pub(super) struct ComponentCx {
    pub members: BTreeMap<String, Declares>,
}

impl Cx<'_> {
    pub(super) fn component(&mut self, c: &ast::ComponentDecl) -> LoweredKind {
        let members = component_members(self.db, self.item);
        self.component =
            Some(ComponentCx { members: members.iter().map(|(n, d, _)| (n.clone(), *d)).collect() });
        // `name` first, so that a param's default may use it (`server: string = name`).
        let name_slot = self.bind("name", Some(Ty::String));
        let mut params = Vec::new();
        let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
        for p in &c.params {
            if let Some(first) = seen.get(p.name.text.as_str()) {
                let d = self
                    .at(
                        codes::E0104,
                        p.name.span,
                        format!("param `{}` is declared twice", p.name.text),
                        "declared again here",
                    )
                    .secondary(&self.origin, *first, "first declared here")
                    .help("rename one of them");
                self.error(d);
            }
            seen.insert(&p.name.text, p.name.span);
            self.reserved_name(&p.name);
            let ty = self.ty(&p.ty);
            let default = p.default.as_ref().map(|e| self.expr(e, Some(&ty)).0);
            self.bind(&p.name.text, Some(ty.clone()));
            params.push(ComponentParamIr { name: p.name.text.clone(), ty, default, span: p.name.span });
        }
        // Members share one namespace, whatever their kinds, and may not take a param's name.
        let top: Vec<(String, Span)> = c
            .body
            .stmts
            .iter()
            .filter_map(|s| match &s.kind {
                StmtKind::Resource(r) => match &r.name {
                    ast::ResourceName::Ident(n) => Some((n.text.clone(), n.span)),
                    ast::ResourceName::Str(s) => s.as_plain().map(|p| (p, s.span)),
                },
                _ => None,
            })
            .collect();
        let mut first_member: BTreeMap<&str, Span> = BTreeMap::new();
        for (name, span) in &top {
            if let Some(param) = seen.get(name.as_str()) {
                let d = self
                    .at(codes::E0214, *span, format!("member `{name}` has the name of a param"), "a member")
                    .secondary(&self.origin, *param, "the param")
                    .help(format!(
                        "`{}.ID.{name}` would be ambiguous: rename the member or the param",
                        c.name.text
                    ));
                self.error(d);
            } else if name == "name" {
                let d = self
                    .at(codes::E0214, *span, "a member may not be called `name`", "a member")
                    .help("`name` is the instance's name; rename the member");
                self.error(d);
            } else if let Some(first) = first_member.get(name.as_str()) {
                let d = self
                    .at(codes::E0214, *span, format!("two members are named `{name}`"), "declared again here")
                    .secondary(&self.origin, *first, "first declared here")
                    .help("members of a component share one namespace whatever their kinds: rename one");
                self.error(d);
            } else {
                first_member.insert(name, *span);
            }
        }
        let body = self.gens(&c.body.stmts);
        let body = self.member_order(body);
        LoweredKind::Component(Arc::new(ComponentIr {
            name: c.name.text.clone(),
            params,
            body,
            slots: self.max_slot,
            name_slot,
        }))
    }

    /// The body's statements in an order where a member is evaluated after the members and
    /// `let`s it refers to (members may refer to each other in any order of declaration).
    fn member_order(&mut self, body: Vec<Gen>) -> Vec<Gen> {
        let n = body.len();
        let declares: Vec<Option<String>> = body.iter().map(gen_member_id).collect();
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, g) in body.iter().enumerate() {
            let mut siblings = Vec::new();
            let mut slots = Vec::new();
            gen_uses(g, &mut siblings, &mut slots);
            for (j, d) in declares.iter().enumerate() {
                let refers = |d: &String| {
                    siblings.iter().any(|s| {
                        s == d
                            || s.starts_with(&format!("{d}/"))
                            || (s.ends_with('.') && d.starts_with(s.as_str()))
                    })
                };
                if j != i && d.as_ref().is_some_and(refers) {
                    deps[i].push(j);
                }
            }
            for (j, other) in body.iter().enumerate() {
                if let Gen::Let { slot, .. } = other
                    && j < i
                    && slots.contains(slot)
                {
                    deps[i].push(j);
                }
            }
        }
        // Kahn's algorithm, taking the earliest declared statement whose dependencies are done.
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            let next = (0..n).find(|&i| !done[i] && deps[i].iter().all(|&j| done[j]));
            match next {
                Some(i) => {
                    done[i] = true;
                    order.push(i);
                }
                None => {
                    // A cycle among members: keep the declared order; evaluation reports it.
                    order.extend((0..n).filter(|&i| !done[i]));
                    break;
                }
            }
        }
        let mut slots: Vec<Option<Gen>> = body.into_iter().map(Some).collect();
        order.into_iter().filter_map(|i| slots[i].take()).collect()
    }

    /// `vhost api { port = 8080 }`
    pub(super) fn instance(&mut self, comp: Item, r: &ast::ResourceDecl, span: Span) -> Option<Gen> {
        let comp_name = component_name(self.db, comp);
        let (name, name_span) = match &r.name {
            ast::ResourceName::Ident(n) => (ResName::Static(n.text.clone()), n.span),
            ast::ResourceName::Str(s) => match s.as_plain() {
                Some(p) => (ResName::Static(p), s.span),
                None => (ResName::Dynamic(self.string(s, false)), s.span),
            },
        };
        let sig = component_signature(self.db, comp).clone();
        let mut args = Vec::new();
        let mut meta_stmts = Vec::new();
        let mut seen = BTreeMap::new();
        for stmt in &r.body.stmts {
            let StmtKind::Attr(a) = &stmt.kind else {
                let d = self
                    .at(codes::E0209, stmt.span, format!("{} is not allowed in an instance", stmt.kind.describe()), "not a param")
                    .help(format!(
                        "an instance of `{comp_name}` holds its params and the meta-attributes {}; compute values in the component",
                        INSTANCE_META.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
                    ));
                self.error(d);
                continue;
            };
            let key = key_text(&a.key);
            let key_span = a.key.span();
            if self.set_twice(&mut seen, key.clone(), key_span) {
                continue;
            }
            if INSTANCE_META.contains(&&*key) {
                meta_stmts.push(stmt.clone());
                continue;
            }
            match sig.iter().find(|(p, _, _)| *p == key) {
                Some((_, ty, _)) => {
                    let ty = ty.clone();
                    self.decimal_mode(&ty, &a.value);
                    let value = self.expr(&a.value, Some(&ty)).0;
                    args.push((key.into_owned(), value, key_span.cover(a.value.span)));
                }
                None if key == "name" => {
                    let d = self
                        .at(codes::E0214, key_span, "`name` is the instance's name", "set by the declaration")
                        .help(format!("the name is written after the component: `{comp_name} NAME {{ … }}`"));
                    self.error(d);
                }
                None => {
                    let names = sig.iter().map(|(p, _, _)| p.as_str()).chain(INSTANCE_META.iter().copied());
                    let help = did_you_mean(&key, names).unwrap_or_else(|| {
                        if sig.is_empty() {
                            format!("component `{comp_name}` takes no params")
                        } else {
                            format!(
                                "`{comp_name}` params: {}",
                                sig.iter()
                                    .map(|(p, t, _)| format!("{p}: {t}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    });
                    let d = self
                        .at(
                            codes::E0103,
                            key_span,
                            format!("component `{comp_name}` has no param `{key}`"),
                            "no such param",
                        )
                        .help(help);
                    self.error(d);
                }
            }
        }
        let missing: Vec<&(String, Ty, bool)> =
            sig.iter().filter(|(p, _, has_default)| !has_default && !seen.contains_key(p.as_str())).collect();
        if !missing.is_empty() {
            let list = missing.iter().map(|(p, _, _)| format!("`{p}`")).collect::<Vec<_>>().join(", ");
            let example =
                missing.iter().map(|(p, t, _)| format!("{p} = …  # {t}")).collect::<Vec<_>>().join("; ");
            let d = self
                .at(
                    codes::E0213,
                    name_span,
                    format!(
                        "instance of `{comp_name}` does not set {} {list}",
                        if missing.len() == 1 { "its required param" } else { "its required params" }
                    ),
                    format!("{} missing", if missing.len() == 1 { "a param is" } else { "params are" }),
                )
                .help(format!("set {}: {example}", if missing.len() == 1 { "it" } else { "them" }));
            self.error(d);
        }
        // The meta-attributes lower as in a resource body, against a schema with no fields.
        let empty = iade_intent::KindSchema {
            name: Arc::from(comp_name.as_str()),
            module: Arc::from(""),
            provider: None,
            fields: Vec::new(),
            doc: None,
            refreshable: false,
            exclusive: Vec::new(),
            checks: Vec::new(),
        };
        let block = ast::Block { stmts: meta_stmts, span: r.body.span };
        let meta = self.scoped(|cx| cx.body(&empty, &block));
        Some(Gen::Instance(Box::new(InstanceIr {
            component: comp,
            component_name: comp_name,
            name,
            args,
            meta,
            span,
            name_span,
        })))
    }

    /// The static type of an instance's value: its params, `name`, and its members.
    pub(super) fn instance_ty(&self, comp: Item) -> Ty {
        let mut fields: Vec<(String, Ty)> =
            component_signature(self.db, comp).iter().map(|(n, t, _)| (n.clone(), t.clone())).collect();
        fields.push(("name".into(), Ty::String));
        for (n, d, _) in component_members(self.db, comp) {
            let ty = match d {
                Declares::Kind(k) => Ty::Kind(super::kind_name(self.db, *k)),
                Declares::Component(_) => Ty::Any,
            };
            fields.push((n.clone(), ty));
        }
        Ty::Record(fields.into_iter().collect())
    }

    /// An expression that names a component instance with a fixed id: `vhost.api`, a nested
    /// `site.a.web`, or inside a component a member instance `web`.
    pub(super) fn static_instance(&mut self, e: &ast::Expr) -> Option<(IdBase, Item)> {
        match &e.kind {
            ast::ExprKind::Name(n) => {
                if self.lookup_local(&n.text).is_some() {
                    return None;
                }
                match self.component.as_ref()?.members.get(&n.text)? {
                    Declares::Component(c) => {
                        let id = format!("{}.{}", component_name(self.db, *c), n.text);
                        Some((IdBase::Rel(id), *c))
                    }
                    Declares::Kind(_) => None,
                }
            }
            ast::ExprKind::Member(inner, seg) => {
                if let Some(super::Path::Component(c)) = self.path(inner) {
                    let cname = component_name(self.db, c);
                    if let Some(Declares::Component(_)) =
                        self.component.as_ref().and_then(|m| m.members.get(&seg.text))
                    {
                        return Some((IdBase::Rel(format!("{cname}.{}", seg.text)), c));
                    }
                    if self.instance_declared(c, &seg.text) {
                        return Some((IdBase::Abs(format!("{cname}.{}", seg.text)), c));
                    }
                    return None;
                }
                let (base, comp) = self.static_instance(inner)?;
                let (member, d) = component_members(self.db, comp)
                    .iter()
                    .find(|(m, _, _)| *m == seg.text)
                    .map(|(m, d, _)| (m.clone(), *d))?;
                match d {
                    Declares::Component(c) => {
                        Some((base.join(&format!("{}.{member}", component_name(self.db, c))), c))
                    }
                    Declares::Kind(_) => None,
                }
            }
            ast::ExprKind::Paren(inner) => self.static_instance(inner),
            _ => None,
        }
    }

    /// Whether the scope declares an instance of `comp` with this fixed name.
    fn instance_declared(&self, comp: Item, name: &str) -> bool {
        self.scope.get(name).is_some_and(|defs| {
            defs.iter().any(|d| match d {
                Def::Resource(i) => instance_component(self.db, *i) == Some(comp),
                Def::Nested(_, n) => {
                    let path: Vec<ast::Name> = n
                        .kind(self.db)
                        .iter()
                        .map(|t| ast::Name { text: t.clone(), span: Span::default() })
                        .collect();
                    resolve_declared(self.db, self.scope, &path) == Some(Declares::Component(comp))
                }
                _ => false,
            })
        })
    }

    /// `vhost.api.conf`, `vhost.api.port`: a member or param of an instance with a fixed id.
    pub(super) fn instance_member(
        &mut self,
        base: IdBase,
        comp: Item,
        name: &ast::Name,
        span: Span,
    ) -> (Ir, Option<Ty>) {
        let comp_name = component_name(self.db, comp);
        if let Some((m, d, _)) = component_members(self.db, comp).iter().find(|(m, _, _)| *m == name.text) {
            return match d {
                Declares::Kind(k) => {
                    let kind = super::kind_name(self.db, *k);
                    (base.join(&format!("{kind}.{m}")).ir(self.db, span), Some(Ty::Kind(kind)))
                }
                Declares::Component(c) => {
                    let ty = self.instance_ty(*c);
                    (base.join(&format!("{}.{m}", component_name(self.db, *c))).ir(self.db, span), Some(ty))
                }
            };
        }
        let sig = component_signature(self.db, comp).clone();
        if let Some((p, ty, _)) = sig.iter().find(|(p, _, _)| *p == name.text) {
            let inner = base.ir(self.db, span);
            return (Ir::new(IrKind::Member(Box::new(inner), Arc::from(p.as_str())), span), Some(ty.clone()));
        }
        if name.text == "name" {
            let inner = base.ir(self.db, span);
            return (Ir::new(IrKind::Member(Box::new(inner), Arc::from("name")), span), Some(Ty::String));
        }
        let names: Vec<String> = sig
            .iter()
            .map(|(p, _, _)| p.clone())
            .chain(component_members(self.db, comp).iter().map(|(m, _, _)| m.clone()))
            .collect();
        let d = self
            .at(
                codes::E0103,
                name.span,
                format!("component `{comp_name}` has no param or member `{}`", name.text),
                "not declared in the component",
            )
            .help(did_you_mean(&name.text, names.iter().map(String::as_str)).unwrap_or_else(|| {
                if names.is_empty() {
                    format!("`{comp_name}` has no params or members")
                } else {
                    format!("`{comp_name}` has: {}", names.join(", "))
                }
            }));
        self.error(d);
        (Ir::new(IrKind::Error, span), None)
    }
}

/// The id (relative to the instance) a generator statement declares, when it is fixed.
fn gen_member_id(g: &Gen) -> Option<String> {
    match g {
        Gen::Resource(r) => match &r.name {
            ResName::Static(n) => Some(format!("{}.{n}", r.kind_name)),
            ResName::Dynamic(_) => None,
        },
        Gen::Instance(i) => match &i.name {
            ResName::Static(n) => Some(format!("{}.{n}", i.component_name)),
            ResName::Dynamic(_) => None,
        },
        _ => None,
    }
}

/// The sibling ids and local slots a generator statement reads.
fn gen_uses(g: &Gen, siblings: &mut Vec<String>, slots: &mut Vec<u32>) {
    let mut irs: Vec<&Ir> = Vec::new();
    match g {
        Gen::Resource(r) => body_irs(&r.body, &mut irs),
        Gen::Instance(i) => {
            irs.extend(i.args.iter().map(|(_, v, _)| v));
            body_irs(&i.meta, &mut irs);
            if let ResName::Dynamic(n) = &i.name {
                irs.push(n);
            }
        }
        Gen::Let { value, .. } => irs.push(value),
        Gen::For { iter, body, .. } => {
            irs.push(iter);
            for g in body {
                gen_uses(g, siblings, slots);
            }
        }
        Gen::If { cond, then, otherwise } => {
            irs.push(cond);
            for g in then.iter().chain(otherwise) {
                gen_uses(g, siblings, slots);
            }
        }
    }
    for ir in irs {
        ir_uses(ir, siblings, slots);
    }
}

fn body_irs<'a>(body: &'a [BodyStmt], out: &mut Vec<&'a Ir>) {
    for b in body {
        match b {
            BodyStmt::Attr { value, .. } | BodyStmt::Let { value, .. } => out.push(value),
            BodyStmt::After(v) | BodyStmt::Notify(v) => out.push(v),
            BodyStmt::If { cond, then, otherwise } => {
                out.push(cond);
                body_irs(then, out);
                body_irs(otherwise, out);
            }
            BodyStmt::Manage(_) | BodyStmt::Provider(_) | BodyStmt::Protect(_) => {}
        }
    }
}

fn ir_uses(ir: &Ir, siblings: &mut Vec<String>, slots: &mut Vec<u32>) {
    match &ir.kind {
        IrKind::Sibling(id) => siblings.push(id.to_string()),
        IrKind::Local(s) => slots.push(*s),
        IrKind::ResourceByName { kind, name, relative: true } => {
            // Any member of the kind may be meant: depend on all of them.
            siblings.push(format!("{kind}."));
            ir_uses(name, siblings, slots);
        }
        IrKind::ResourceByName { name, .. } => ir_uses(name, siblings, slots),
        IrKind::List(items) | IrKind::Interp(items) | IrKind::Call(_, items) => {
            items.iter().for_each(|i| ir_uses(i, siblings, slots));
        }
        IrKind::RuleCall(call) => call.args.iter().for_each(|i| ir_uses(i, siblings, slots)),
        IrKind::Record(entries) => entries.iter().for_each(|(_, v)| ir_uses(v, siblings, slots)),
        IrKind::Unary(_, a) | IrKind::Member(a, _) => ir_uses(a, siblings, slots),
        IrKind::Binary(_, a, b) | IrKind::Index(a, b) => {
            ir_uses(a, siblings, slots);
            ir_uses(b, siblings, slots);
        }
        IrKind::If(a, b, c) => {
            ir_uses(a, siblings, slots);
            ir_uses(b, siblings, slots);
            ir_uses(c, siblings, slots);
        }
        IrKind::Comprehension(c) => {
            ir_uses(&c.iter, siblings, slots);
            if let Some(cond) = &c.cond {
                ir_uses(cond, siblings, slots);
            }
            ir_uses(&c.value, siblings, slots);
        }
        IrKind::Objects { under: Some(u), .. } => ir_uses(u, siblings, slots),
        _ => {}
    }
}

/// Where an instance's values come from, for diagnostics inside its members.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstanceSite {
    pub id: String,
    pub origin: Origin,
    pub span: Span,
}
