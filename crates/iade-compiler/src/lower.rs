//! Lowering: an item's syntax tree, with names resolved and types checked where they are
//! known statically, to the rule IR.
//!
//! The result of [`lower_item`] keeps spans relative to the item and no positions, so it is
//! equal after an edit that did not change the item's meaning, and evaluation is not redone.

use std::collections::BTreeMap;
use std::sync::Arc;

use iade_diagnostics::codes;
use iade_intent::ir::{
    BinOp, Builtin, CheckIr, CheckKind, CheckStmt, Ir, IrKind, ObjectSource, RuleIr, UnOp,
};
use iade_intent::{FieldRole, FieldSchema, KindSchema, Origin, Severity, Ty, Value};
use iade_span::Span;
use iade_syntax::ast::{self, Block, Expr, ExprKind, Key, StmtKind, StrLit, StrPart, Type, TypeKind};

use crate::db::Db;
use crate::diag::Diag;
use crate::items::{Item, Module, item_syntax};
use crate::scope::{Def, ItemName, Scope, module_of, module_scope, origin, own_scope, split_name};
use crate::suggest::did_you_mean;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lowered {
    pub kind: LoweredKind,
    pub diags: Vec<Diag>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoweredKind {
    Nothing,
    Param {
        name: String,
        ty: Ty,
        default: Option<Ir>,
        name_span: Span,
    },
    Let {
        ty: Option<Ty>,
        value: Ir,
        slots: u32,
    },
    /// A resource declaration, or a top-level `for`/`if` that generates resources.
    Resources {
        body: Vec<Gen>,
        slots: u32,
    },
    Rule(Arc<RuleIr>),
    Check(Arc<CheckIr>),
    Kind(Arc<KindSchema>),
    Provider {
        provider_type: String,
        attrs: Vec<(String, Ir)>,
    },
    Stack(StackSettings),
}

/// The `stack` item's settings: the stack's name, whether removed resources are pruned, and
/// the evaluation limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StackSettings {
    pub name: Option<String>,
    pub prune: bool,
    pub limits: iade_intent::Limits,
}

/// The settings a `stack` item takes, with their doc, as `(name, type, doc)`.
pub const STACK_SETTINGS: &[(&str, &str, &str)] = &[
    ("prune", "bool", "delete objects this stack applied and no longer declares (as `converge --prune`)"),
    ("max_resources", "int", "resources the stack may declare (default 250000)"),
    ("max_steps", "int", "expression steps one evaluation may take (default 50000000)"),
    ("max_string_bytes", "int", "bytes in one string (default 67108864)"),
    ("max_list_length", "int", "elements in one list (default 1000000)"),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gen {
    Resource(Box<ResourceIr>),
    For { key: Option<u32>, slot: u32, iter: Ir, body: Vec<Gen> },
    If { cond: Ir, then: Vec<Gen>, otherwise: Vec<Gen> },
    Let { slot: u32, value: Ir },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceIr {
    pub kind: Item,
    pub kind_name: String,
    pub name: ResName,
    pub body: Vec<BodyStmt>,
    pub span: Span,
    pub name_span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResName {
    Static(String),
    Dynamic(Ir),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyStmt {
    Attr {
        name: String,
        value: Ir,
        span: Span,
    },
    /// `after = [...]`: resources to apply first.
    After(Ir),
    /// `manage = enforce | observe`
    Manage(iade_intent::Manage),
    /// `provider = NAME`
    Provider(String),
    If {
        cond: Ir,
        then: Vec<BodyStmt>,
        otherwise: Vec<BodyStmt>,
    },
    Let {
        slot: u32,
        value: Ir,
    },
}

/// The qualified key of a `let`/`param`/`rule` item, as the IR names it.
pub fn item_key(db: &dyn Db, item: Item) -> Arc<str> {
    Arc::from(format!("{}:{}", item.file(db).id(db).0, item.name(db)))
}

/// The item a qualified key names.
pub fn item_from_key(db: &dyn Db, key: &str) -> Option<Item> {
    let (file, name) = key.split_once(':')?;
    let file = db.file_by_id(iade_span::FileId(file.parse().ok()?))?;
    Some(Item::new(db, file, name.to_string()))
}

/// The span of the name an item declares (relative to the item).
pub fn decl_name_span(db: &dyn Db, item: Item) -> Span {
    let Some(stmt) = item_syntax(db, item) else { return Span::default() };
    match &stmt.kind {
        StmtKind::Param(p) => p.name.span,
        StmtKind::Let(l) => l.name.span,
        StmtKind::Resource(r) => match &r.name {
            ast::ResourceName::Ident(n) => n.span,
            ast::ResourceName::Str(s) => s.span,
        },
        StmtKind::Kind(k) => k.name.span,
        StmtKind::Rule(r) => r.name.span,
        StmtKind::Policy(p) => p.name.span,
        StmtKind::Provider(p) => p.name.span,
        StmtKind::Stack(st) => st.name.span,
        // `for x in xs`: up to the end of what it iterates over, not the whole body.
        StmtKind::For(f) => Span { start: stmt.span.start, end: f.iter.span.end },
        _ => stmt.span,
    }
}

/// The kind item a resource item declares a resource of.
#[salsa::tracked(returns(copy))]
pub fn resource_kind(db: &dyn Db, item: Item) -> Option<Item> {
    let stmt = item_syntax(db, item).as_ref()?;
    let StmtKind::Resource(r) = &stmt.kind else { return None };
    let scope = module_scope(db, module_of(db, item.file(db)));
    resolve_kind_path(db, scope, &r.kind).ok()
}

fn resolve_kind_path(db: &dyn Db, scope: &Scope, path: &[ast::Name]) -> Result<Item, String> {
    let mut defs: Vec<Def> = scope
        .defs
        .get(&path.first().map(|n| n.text.clone()).unwrap_or_default())
        .cloned()
        .unwrap_or_default();
    for seg in path.iter().skip(1) {
        let Some(Def::Module(m)) = defs.iter().find(|d| matches!(d, Def::Module(_))) else {
            return Err(String::new());
        };
        defs = own_scope(db, *m).defs.get(&seg.text).cloned().unwrap_or_default();
    }
    defs.iter().find_map(|d| if let Def::Kind(k) = d { Some(*k) } else { None }).ok_or_default()
}

trait OkOrDefault<T> {
    fn ok_or_default(self) -> Result<T, String>;
}

impl<T> OkOrDefault<T> for Option<T> {
    fn ok_or_default(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

/// A kind's declared name (`file`).
pub fn kind_name(db: &dyn Db, kind: Item) -> String {
    match split_name(kind.name(db)) {
        ItemName::Kind(n) => n.to_string(),
        _ => kind.name(db).clone(),
    }
}

/// The schema of a kind item.
pub fn kind_schema(db: &dyn Db, kind: Item) -> Option<Arc<KindSchema>> {
    match &lower_item(db, kind).kind {
        LoweredKind::Kind(k) => Some(k.clone()),
        _ => None,
    }
}

/// A rule's parameter types: what a call is checked against. Equal across edits of the
/// rule's body, so callers are not re-lowered for those.
///
/// Computed from the parameter types alone, never from the body, so rules that call each
/// other do not make lowering recursive.
#[salsa::tracked(returns(ref))]
pub fn rule_signature(db: &dyn Db, rule: Item) -> Vec<(String, Ty)> {
    let Some(stmt) = item_syntax(db, rule).clone() else { return Vec::new() };
    let StmtKind::Rule(r) = &stmt.kind else { return Vec::new() };
    types_only(db, rule, |cx| r.params.iter().map(|p| (p.name.text.clone(), cx.ty(&p.ty))).collect())
}

/// The declared type of a `param` or an annotated `let`, from its annotation alone (never
/// from its value, so values that refer to each other do not make lowering recursive).
#[salsa::tracked(returns(ref))]
pub fn declared_type(db: &dyn Db, item: Item) -> Option<Ty> {
    let stmt = item_syntax(db, item).clone()?;
    match &stmt.kind {
        StmtKind::Param(p) => Some(types_only(db, item, |cx| cx.ty(&p.ty))),
        StmtKind::Let(l) => l.ty.as_ref().map(|t| types_only(db, item, |cx| cx.ty(t))),
        _ => None,
    }
}

/// Runs `f` with a lowering context whose diagnostics are dropped (the item's own lowering
/// reports them).
fn types_only<T>(db: &dyn Db, item: Item, f: impl FnOnce(&mut Cx<'_>) -> T) -> T {
    f(&mut Cx::new(db, item, "", 0))
}

#[salsa::tracked(returns(ref))]
pub fn lower_item(db: &dyn Db, item: Item) -> Lowered {
    let Some(stmt) = item_syntax(db, item).clone() else {
        return Lowered { kind: LoweredKind::Nothing, diags: Vec::new() };
    };
    let text = item.file(db).text(db);
    let offset = crate::items::item_offset(db, item.file(db), item.name(db)).unwrap_or(0);
    let mut cx = Cx::new(db, item, text, offset);
    let kind = cx.item(item, &stmt);
    Lowered { kind, diags: cx.diags }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Config,
    Rule,
    Policy,
    Control,
    Kind,
}

struct Local {
    name: String,
    slot: u32,
    ty: Option<Ty>,
}

struct Cx<'a> {
    db: &'a dyn Db,
    scope: &'a Scope,
    module: Module,
    origin: Origin,
    diags: Vec<Diag>,
    locals: Vec<Local>,
    next_slot: u32,
    max_slot: u32,
    source: &'a str,
    offset: u32,
    keep_text: bool,
    mode: Mode,
}

/// What a name path (`pg.role`, `directory.app`) refers to, when not a value.
enum Path {
    Module(Module),
    Kind(Item),
}

impl<'a> Cx<'a> {
    /// A context for lowering `item`; `source` and `offset` give the text that evidence in
    /// rules and checks quotes.
    fn new(db: &'a dyn Db, item: Item, source: &'a str, offset: u32) -> Cx<'a> {
        let module = module_of(db, item.file(db));
        Cx {
            db,
            scope: module_scope(db, module),
            module,
            origin: origin(db, item),
            diags: Vec::new(),
            locals: Vec::new(),
            next_slot: 0,
            max_slot: 0,
            source,
            offset,
            keep_text: false,
            mode: Mode::Config,
        }
    }

    fn error(&mut self, d: Diag) {
        self.diags.push(d);
    }

    fn at(
        &self,
        code: iade_diagnostics::Code,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Diag {
        Diag::new(code, message).primary(&self.origin, span, label)
    }

    fn bind(&mut self, name: &str, ty: Option<Ty>) -> u32 {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.max_slot = self.max_slot.max(self.next_slot);
        self.locals.push(Local { name: name.to_string(), slot, ty });
        slot
    }

    fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let (n, s) = (self.locals.len(), self.next_slot);
        let r = f(self);
        self.locals.truncate(n);
        self.next_slot = s;
        r
    }

    fn item(&mut self, item: Item, stmt: &ast::Stmt) -> LoweredKind {
        match &stmt.kind {
            StmtKind::Param(p) => {
                let ty = self.ty(&p.ty);
                let default = p.default.as_ref().map(|e| self.expr(e, Some(&ty)).0);
                LoweredKind::Param { name: p.name.text.clone(), ty, default, name_span: p.name.span }
            }
            StmtKind::Let(l) => {
                let ty = l.ty.as_ref().map(|t| self.ty(t));
                let value = self.expr(&l.value, ty.as_ref()).0;
                LoweredKind::Let { ty, value, slots: self.max_slot }
            }
            StmtKind::Resource(_) | StmtKind::For(_) | StmtKind::If(_) => {
                let body = self.gens(std::slice::from_ref(stmt));
                LoweredKind::Resources { body, slots: self.max_slot }
            }
            StmtKind::Rule(r) => {
                self.mode = Mode::Rule;
                self.keep_text = true;
                let mut params = Vec::new();
                for p in &r.params {
                    let ty = self.ty(&p.ty);
                    self.bind(&p.name.text, Some(ty.clone()));
                    params.push((p.name.text.clone(), ty));
                }
                let body = self.expr(&r.body, None).0;
                let message = r.message.as_ref().map(|m| self.expr(m, None).0);
                LoweredKind::Rule(Arc::new(RuleIr {
                    name: item_key(self.db, item),
                    params,
                    body,
                    message,
                    slots: self.max_slot,
                    origin: self.origin.clone(),
                    name_span: r.name.span,
                }))
            }
            StmtKind::Policy(p) => self.check(CheckKind::Policy, p.name.text.clone(), p.name.span, &p.body),
            StmtKind::Control(c) => {
                let (name, span) = match &c.id {
                    ast::ControlId::Ident(n) => (n.text.clone(), n.span),
                    ast::ControlId::Str(s) => (s.as_plain().unwrap_or_default(), s.span),
                };
                self.check(CheckKind::Control, name, span, &c.body)
            }
            StmtKind::Kind(k) => self.kind(k, stmt.doc.clone()),
            StmtKind::Provider(p) => {
                let mut attrs = Vec::new();
                for s in &p.body.stmts {
                    if let StmtKind::Attr(a) = &s.kind {
                        let value = self.expr(&a.value, None).0;
                        attrs.push((key_text(&a.key), value));
                    }
                }
                LoweredKind::Provider { provider_type: p.provider_type.text.clone(), attrs }
            }
            StmtKind::Stack(st) => self.stack(st),
            _ => LoweredKind::Nothing,
        }
    }

    fn stack(&mut self, st: &ast::StackDecl) -> LoweredKind {
        let mut settings = StackSettings { name: Some(st.name.text.clone()), ..StackSettings::default() };
        for stmt in &st.body.stmts {
            let StmtKind::Attr(a) = &stmt.kind else { continue };
            let key = key_text(&a.key);
            let Some((_, ty, _)) = STACK_SETTINGS.iter().find(|(n, _, _)| *n == key) else {
                let names = STACK_SETTINGS.iter().map(|(n, _, _)| *n);
                let help = match crate::suggest::did_you_mean(&key, names) {
                    Some(d) => d,
                    None => format!(
                        "a `stack` takes {}",
                        STACK_SETTINGS
                            .iter()
                            .map(|(n, _, _)| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let d = self
                    .at(codes::E0209, a.key.span(), format!("unknown stack setting `{key}`"), "not a setting")
                    .help(help);
                self.error(d);
                continue;
            };
            let value = self.expr(&a.value, None).0;
            match (&value.kind, *ty) {
                (IrKind::Lit(Value::Bool(b)), "bool") => settings.prune = *b,
                (IrKind::Lit(Value::Int(n)), "int") if *n > 0 => {
                    let n = *n;
                    let l = &mut settings.limits;
                    match key.as_str() {
                        "max_resources" => l.resources = usize::try_from(n).unwrap_or(usize::MAX),
                        "max_steps" => l.steps = u64::try_from(n).unwrap_or(u64::MAX),
                        "max_string_bytes" => l.string_bytes = usize::try_from(n).unwrap_or(usize::MAX),
                        _ => l.list_length = usize::try_from(n).unwrap_or(usize::MAX),
                    }
                }
                (IrKind::Error, _) => {}
                _ => {
                    let what = if *ty == "bool" { "`true` or `false`" } else { "a positive whole number" };
                    let d = self
                        .at(
                            codes::E0209,
                            a.value.span,
                            format!("`{key}` is {what}"),
                            format!("expected {what}"),
                        )
                        .help(format!(
                            "write it out: `{key} = {}`",
                            if *ty == "bool" { "true" } else { "500000" }
                        ));
                    self.error(d);
                }
            }
        }
        LoweredKind::Stack(settings)
    }

    // ----- resources -----

    fn gens(&mut self, stmts: &[ast::Stmt]) -> Vec<Gen> {
        let mut out = Vec::new();
        for stmt in stmts {
            match &stmt.kind {
                StmtKind::Resource(r) => {
                    if let Some(res) = self.resource(r, stmt.span) {
                        out.push(Gen::Resource(Box::new(res)));
                    }
                }
                StmtKind::For(f) => {
                    let iter = self.expr(&f.iter, None).0;
                    let body = self.scoped(|cx| {
                        let (key, slot) = match f.bindings.as_slice() {
                            [k, v] => (Some(cx.bind(&k.text, Some(Ty::String))), cx.bind(&v.text, None)),
                            [v, ..] => (None, cx.bind(&v.text, None)),
                            [] => (None, cx.bind("_", None)),
                        };
                        (key, slot, cx.gens(&f.body.stmts))
                    });
                    out.push(Gen::For { key: body.0, slot: body.1, iter, body: body.2 });
                }
                StmtKind::If(i) => out.push(self.gen_if(i)),
                StmtKind::Let(l) => {
                    let value = self.expr(&l.value, None).0;
                    let slot = self.bind(&l.name.text, None);
                    out.push(Gen::Let { slot, value });
                }
                _ => {}
            }
        }
        out
    }

    fn gen_if(&mut self, i: &ast::IfStmt) -> Gen {
        let cond = self.expr(&i.cond, Some(&Ty::Bool)).0;
        let then = self.scoped(|cx| cx.gens(&i.then.stmts));
        let otherwise = match &i.otherwise {
            None => Vec::new(),
            Some(ast::Else::Block(b)) => self.scoped(|cx| cx.gens(&b.stmts)),
            Some(ast::Else::If(s)) => self.scoped(|cx| cx.gens(std::slice::from_ref(&**s))),
        };
        Gen::If { cond, then, otherwise }
    }

    fn resource(&mut self, r: &ast::ResourceDecl, span: Span) -> Option<ResourceIr> {
        let kind_span = match (r.kind.first(), r.kind.last()) {
            (Some(a), Some(b)) => a.span.cover(b.span),
            _ => span,
        };
        let written: Vec<&str> = r.kind.iter().map(|n| n.text.as_str()).collect();
        let written = written.join(".");
        let kind = match resolve_kind_path(self.db, self.scope, &r.kind) {
            Ok(k) => k,
            Err(_) => {
                let kinds: Vec<&str> = self
                    .scope
                    .defs
                    .iter()
                    .filter(|(_, d)| d.iter().any(|d| matches!(d, Def::Kind(_))))
                    .map(|(n, _)| n.as_str())
                    .collect();
                let help = did_you_mean(&written, kinds.iter().copied()).unwrap_or_else(|| {
                    if kinds.is_empty() {
                        "import kinds with `use`, for example `use std.fs.{file, directory}`".to_string()
                    } else {
                        format!("kinds in scope: {}; import others with `use`", kinds.join(", "))
                    }
                });
                self.error(
                    self.at(
                        codes::E0102,
                        kind_span,
                        format!("unknown kind `{written}`"),
                        "not a kind in scope",
                    )
                    .help(help),
                );
                return None;
            }
        };
        let schema = kind_schema(self.db, kind)?;
        let (name, name_span) = match &r.name {
            ast::ResourceName::Ident(n) => (ResName::Static(n.text.clone()), n.span),
            ast::ResourceName::Str(s) => match s.as_plain() {
                Some(p) => (ResName::Static(p), s.span),
                None => (ResName::Dynamic(self.string(s, false)), s.span),
            },
        };
        let body = self.scoped(|cx| cx.body(&schema, &r.body));
        // Identity fields are required; only a top-level entry is certain to be set.
        let set: Vec<&str> = body
            .iter()
            .filter_map(|b| if let BodyStmt::Attr { name, .. } = b { Some(name.as_str()) } else { None })
            .collect();
        for f in schema.identity_fields() {
            if !set.contains(&f.name.as_str()) {
                let d = self
                    .at(
                        codes::E0202,
                        name_span,
                        format!("missing identity field `{}`", f.name),
                        format!("this {} has no `{}`", schema.name, f.name),
                    )
                    .help(format!(
                        "add `{} = …` (of type {}): it identifies the {} in the environment",
                        f.name, f.ty, schema.name
                    ));
                self.error(d);
            }
        }
        Some(ResourceIr { kind, kind_name: schema.name.clone(), name, body, span, name_span })
    }

    fn body(&mut self, schema: &KindSchema, block: &Block) -> Vec<BodyStmt> {
        let mut out = Vec::new();
        let mut seen: BTreeMap<String, Span> = BTreeMap::new();
        for stmt in &block.stmts {
            match &stmt.kind {
                StmtKind::Attr(a) => {
                    let name = key_text(&a.key);
                    let key_span = a.key.span();
                    if let Some(first) = seen.get(&name) {
                        let d = self
                            .at(codes::E0104, key_span, format!("`{name}` is set twice"), "set again here")
                            .secondary(&self.origin, *first, "first set here")
                            .help("remove one of them");
                        self.error(d);
                        continue;
                    }
                    seen.insert(name.clone(), key_span);
                    match name.as_str() {
                        "after" => {
                            let v = self.expr(&a.value, None).0;
                            out.push(BodyStmt::After(v));
                        }
                        "manage" => {
                            let hint = Ty::Enum(vec!["enforce".into(), "observe".into()]);
                            match self.expr(&a.value, Some(&hint)).0.kind {
                                IrKind::Lit(Value::Enum(e)) => out.push(BodyStmt::Manage(
                                    iade_intent::Manage::parse(&e).unwrap_or_default(),
                                )),
                                IrKind::Error => {}
                                _ => {
                                    let d = self
                                        .at(
                                            codes::E0304,
                                            a.value.span,
                                            "`manage` is `enforce` or `observe`",
                                            "not one of them",
                                        )
                                        .help(
                                            "write `manage = observe` to observe and report without changing",
                                        );
                                    self.error(d);
                                }
                            }
                        }
                        "provider" => match &a.value.kind {
                            ExprKind::Name(n) => {
                                let found = self
                                    .scope
                                    .defs
                                    .get(&n.text)
                                    .is_some_and(|d| d.iter().any(|d| matches!(d, Def::Provider(_))));
                                if found {
                                    out.push(BodyStmt::Provider(n.text.clone()));
                                } else {
                                    let providers: Vec<&str> = self
                                        .scope
                                        .defs
                                        .iter()
                                        .filter(|(_, d)| d.iter().any(|d| matches!(d, Def::Provider(_))))
                                        .map(|(k, _)| k.as_str())
                                        .collect();
                                    let d = self
                                        .at(
                                            codes::E0101,
                                            n.span,
                                            format!("unknown provider `{}`", n.text),
                                            "no `provider` block has this name",
                                        )
                                        .help(did_you_mean(&n.text, providers).unwrap_or_else(|| {
                                            format!(
                                                "configure it: provider {} {} {{ … }}",
                                                schema.provider.as_deref().unwrap_or("TYPE"),
                                                n.text
                                            )
                                        }));
                                    self.error(d);
                                }
                            }
                            _ => {
                                let d = self
                                    .at(
                                        codes::E0304,
                                        a.value.span,
                                        "`provider` names a provider instance",
                                        "not a name",
                                    )
                                    .help("write the name of a `provider` block: provider = main");
                                self.error(d);
                            }
                        },
                        _ => match schema.field(&name) {
                            None => {
                                let settable = schema
                                    .fields
                                    .iter()
                                    .filter(|f| f.role != FieldRole::Observed)
                                    .map(|f| f.name.as_str());
                                let help = did_you_mean(&name, settable.clone()).unwrap_or_else(|| {
                                    format!(
                                        "`{}` fields: {}",
                                        schema.name,
                                        settable.collect::<Vec<_>>().join(", ")
                                    )
                                });
                                let d = self
                                    .at(
                                        codes::E0103,
                                        key_span,
                                        format!("unknown field `{name}` for kind `{}`", schema.name),
                                        "no such field",
                                    )
                                    .help(help);
                                self.error(d);
                            }
                            Some(f) if f.role == FieldRole::Observed => {
                                let d = self
                                    .at(
                                        codes::E0204,
                                        key_span,
                                        format!("`{name}` is observed only and cannot be set"),
                                        "observed-only field",
                                    )
                                    .help(format!(
                                        "iade reads `{}.{name}` from the environment; remove this line",
                                        schema.name
                                    ));
                                self.error(d);
                            }
                            Some(f) => {
                                let ty = f.ty.clone();
                                let value = self.expr(&a.value, Some(&ty)).0;
                                out.push(BodyStmt::Attr { name, value, span: key_span.cover(a.value.span) });
                            }
                        },
                    }
                }
                StmtKind::If(i) => {
                    let cond = self.expr(&i.cond, Some(&Ty::Bool)).0;
                    let then = self.scoped(|cx| cx.body(schema, &i.then));
                    let otherwise = match &i.otherwise {
                        None => Vec::new(),
                        Some(ast::Else::Block(b)) => self.scoped(|cx| cx.body(schema, b)),
                        Some(ast::Else::If(s)) => {
                            let block = Block { stmts: vec![(**s).clone()], span: s.span };
                            self.scoped(|cx| cx.body(schema, &block))
                        }
                    };
                    out.push(BodyStmt::If { cond, then, otherwise });
                }
                StmtKind::Let(l) => {
                    let value = self.expr(&l.value, None).0;
                    let slot = self.bind(&l.name.text, None);
                    out.push(BodyStmt::Let { slot, value });
                }
                StmtKind::For(_) => {
                    let d = self
                        .at(codes::E0209, stmt.span, "`for` cannot generate the attributes of a resource", "`for` in a resource body")
                        .help("build the value with an expression instead, or move the `for` outside to generate resources");
                    self.error(d);
                }
                _ => {}
            }
        }
        out
    }

    // ----- policies and controls -----

    fn check(&mut self, kind: CheckKind, name: String, name_span: Span, body: &Block) -> LoweredKind {
        self.mode = if kind == CheckKind::Policy { Mode::Policy } else { Mode::Control };
        self.keep_text = true;
        let (severities, default) = match kind {
            CheckKind::Policy => (Severity::POLICY, Some(Severity::Deny)),
            CheckKind::Control => (Severity::CONTROL, None),
        };
        let mut severity = None;
        let mut title = None;
        let mut stmts = Vec::new();
        for stmt in &body.stmts {
            if let StmtKind::Attr(a) = &stmt.kind {
                match key_text(&a.key).as_str() {
                    "severity" => {
                        let hint = Ty::Enum(severities.iter().map(|s| s.as_str().to_string()).collect());
                        match self.expr(&a.value, Some(&hint)).0.kind {
                            IrKind::Lit(Value::Enum(e)) if Severity::parse(&e).is_some() => {
                                severity = Severity::parse(&e)
                            }
                            IrKind::Error => {}
                            _ => {
                                let d = self
                                    .at(
                                        codes::E0209,
                                        a.value.span,
                                        format!(
                                            "`severity` is one of {}",
                                            severities
                                                .iter()
                                                .map(|s| s.as_str())
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        ),
                                        "not a severity",
                                    )
                                    .help(format!(
                                        "write for example `severity = {}`",
                                        severities[severities.len() / 2]
                                    ));
                                self.error(d);
                            }
                        }
                    }
                    "title" if kind == CheckKind::Control => match &a.value.kind {
                        ExprKind::Str(s) if s.as_plain().is_some() => title = s.as_plain(),
                        _ => {
                            let d = self
                                .at(
                                    codes::E0209,
                                    a.value.span,
                                    "`title` is a plain string",
                                    "not a plain string",
                                )
                                .help("write `title = \"…\"`");
                            self.error(d);
                        }
                    },
                    other => {
                        let allowed =
                            if kind == CheckKind::Control { "`title` and `severity`" } else { "`severity`" };
                        let d = self
                            .at(
                                codes::E0209,
                                a.key.span(),
                                format!("unknown setting `{other}`"),
                                "not a setting here",
                            )
                            .help(format!(
                                "a {} takes {allowed}, then `require` checks",
                                if kind == CheckKind::Policy { "policy" } else { "control" }
                            ));
                        self.error(d);
                    }
                }
            } else {
                stmts.push(stmt.clone());
            }
        }
        let body = self.check_stmts(&stmts);
        let severity = match (severity, default) {
            (Some(s), _) => s,
            (None, Some(d)) => d,
            (None, None) => {
                let d = self
                    .at(codes::E0209, name_span, "control has no `severity`", "add a severity")
                    .help("write `severity = low`, `medium`, `high` or `critical`");
                self.error(d);
                Severity::Medium
            }
        };
        LoweredKind::Check(Arc::new(CheckIr {
            kind,
            name,
            severity,
            title,
            body,
            slots: self.max_slot,
            origin: self.origin.clone(),
            name_span,
        }))
    }

    fn check_stmts(&mut self, stmts: &[ast::Stmt]) -> Vec<CheckStmt> {
        let mut out = Vec::new();
        for stmt in stmts {
            match &stmt.kind {
                StmtKind::Require(r) => {
                    let cond = self.expr(&r.cond, Some(&Ty::Bool)).0;
                    let message = r.message.as_ref().map(|m| self.expr(m, None).0);
                    out.push(CheckStmt::Require { cond, message, span: stmt.span });
                }
                StmtKind::For(f) => {
                    let (iter, ty) = self.expr(&f.iter, None);
                    let elem = ty.and_then(|t| t.element().cloned());
                    let (key, slot, body) = self.scoped(|cx| {
                        let (key, slot) = match f.bindings.as_slice() {
                            [k, v] => (Some(cx.bind(&k.text, Some(Ty::String))), cx.bind(&v.text, elem)),
                            [v, ..] => (None, cx.bind(&v.text, elem)),
                            [] => (None, cx.bind("_", None)),
                        };
                        (key, slot, cx.check_stmts(&f.body.stmts))
                    });
                    out.push(CheckStmt::For { key, slot, iter, body });
                }
                StmtKind::If(i) => {
                    let cond = self.expr(&i.cond, Some(&Ty::Bool)).0;
                    let then = self.scoped(|cx| cx.check_stmts(&i.then.stmts));
                    let otherwise = match &i.otherwise {
                        None => Vec::new(),
                        Some(ast::Else::Block(b)) => self.scoped(|cx| cx.check_stmts(&b.stmts)),
                        Some(ast::Else::If(s)) => {
                            self.scoped(|cx| cx.check_stmts(std::slice::from_ref(&**s)))
                        }
                    };
                    out.push(CheckStmt::If { cond, then, otherwise });
                }
                StmtKind::Let(l) => {
                    let (value, ty) = self.expr(&l.value, None);
                    let slot = self.bind(&l.name.text, ty);
                    out.push(CheckStmt::Let { slot, value });
                }
                _ => {}
            }
        }
        out
    }

    // ----- kinds -----

    fn kind(&mut self, k: &ast::KindDecl, doc: Option<String>) -> LoweredKind {
        self.mode = Mode::Kind;
        let module = self.module.name(self.db).clone();
        let mut schema =
            KindSchema { name: k.name.text.clone(), module, provider: None, fields: Vec::new(), doc };
        for stmt in &k.body.stmts {
            match &stmt.kind {
                StmtKind::Attr(a) if key_text(&a.key) == "provider" => match &a.value.kind {
                    ExprKind::Str(s) if s.as_plain().is_some() => schema.provider = s.as_plain(),
                    _ => {
                        let d = self
                            .at(
                                codes::E0209,
                                a.value.span,
                                "a kind's `provider` is a plain string",
                                "not a plain string",
                            )
                            .help("write `provider = \"local\"`");
                        self.error(d);
                    }
                },
                StmtKind::Field(f) => {
                    let role = match f.role.text.as_str() {
                        "identity" => FieldRole::Identity,
                        "desired" => FieldRole::Desired,
                        "observed" => FieldRole::Observed,
                        other => {
                            let d = self
                                .at(
                                    codes::E0209,
                                    f.role.span,
                                    format!("unknown field role `{other}`"),
                                    "not a role",
                                )
                                .help(
                                    did_you_mean(other, ["identity", "desired", "observed"]).unwrap_or_else(
                                        || "a field is `identity`, `desired` or `observed`".into(),
                                    ),
                                );
                            self.error(d);
                            continue;
                        }
                    };
                    if schema.field(&f.name.text).is_some() {
                        let d = self.at(
                            codes::E0104,
                            f.name.span,
                            format!("field `{}` is declared twice", f.name.text),
                            "declared again here",
                        );
                        self.error(d);
                        continue;
                    }
                    let ty = self.ty(&f.ty);
                    let default = f.default.as_ref().and_then(|e| {
                        let ir = self.expr(e, Some(&ty)).0;
                        let v = crate::eval::eval_constant(self.db, &self.origin, &ir);
                        match v.and_then(|v| ty.check(&v).map_err(|m| (m, e.span))) {
                            Ok(v) => Some(v),
                            Err((m, span)) => {
                                let d = self.at(
                                    codes::E0201,
                                    span,
                                    format!("default of `{}`: {m}", f.name.text),
                                    "this default",
                                );
                                self.error(d);
                                None
                            }
                        }
                    });
                    let (constraint, constraint_text) = match &f.constraint {
                        Some(c) => self.scoped(|cx| {
                            cx.bind(&f.name.text, Some(ty.clone()));
                            let ir = cx.expr(c, Some(&Ty::Bool)).0;
                            (Some(ir), Some(cx.slice(c.span).to_string()))
                        }),
                        None => (None, None),
                    };
                    schema.fields.push(FieldSchema {
                        name: f.name.text.clone(),
                        role,
                        ty,
                        default,
                        constraint,
                        constraint_text,
                        doc: stmt.doc.clone(),
                    });
                }
                _ => {}
            }
        }
        LoweredKind::Kind(Arc::new(schema))
    }

    // ----- types -----

    fn ty(&mut self, t: &Type) -> Ty {
        match &t.kind {
            TypeKind::Named(path) => {
                if let [n] = path.as_slice() {
                    let prim = match n.text.as_str() {
                        "bool" => Some(Ty::Bool),
                        "int" => Some(Ty::Int),
                        "mode" => Some(Ty::Mode),
                        "string" => Some(Ty::String),
                        "path" => Some(Ty::Path),
                        "secret" => Some(Ty::Secret),
                        "any" => Some(Ty::Any),
                        "null" => Some(Ty::Null),
                        _ => None,
                    };
                    if let Some(p) = prim {
                        return p;
                    }
                }
                match resolve_kind_path(self.db, self.scope, path) {
                    Ok(k) => Ty::Kind(kind_name(self.db, k)),
                    Err(_) => {
                        let written: Vec<&str> = path.iter().map(|n| n.text.as_str()).collect();
                        let written = written.join(".");
                        let mut names: Vec<&str> =
                            vec!["bool", "int", "mode", "string", "path", "secret", "any"];
                        names.extend(
                            self.scope
                                .defs
                                .iter()
                                .filter(|(_, d)| d.iter().any(|d| matches!(d, Def::Kind(_))))
                                .map(|(n, _)| n.as_str()),
                        );
                        let d = self
                            .at(codes::E0102, t.span, format!("unknown type `{written}`"), "not a type")
                            .help(did_you_mean(&written, names.iter().copied()).unwrap_or_else(|| {
                                format!("types: {}, list(T), map(T), and kinds in scope", names.join(", "))
                            }));
                        self.error(d);
                        Ty::Any
                    }
                }
            }
            TypeKind::App(name, args) => match (name.text.as_str(), args.as_slice()) {
                ("list", [a]) => Ty::List(Box::new(self.ty(a))),
                ("map", [a]) => Ty::Map(Box::new(self.ty(a))),
                ("enum", members) => {
                    let mut names = Vec::new();
                    for m in members {
                        match &m.kind {
                            TypeKind::Named(p) if p.len() == 1 => names.push(p[0].text.clone()),
                            _ => {
                                let d = self
                                    .at(codes::E0102, m.span, "an enum member is a bare name", "not a name")
                                    .help("write enum(present, absent)");
                                self.error(d);
                            }
                        }
                    }
                    Ty::Enum(names)
                }
                (other, _) => {
                    let d = self
                        .at(codes::E0102, t.span, format!("unknown type `{other}(…)`"), "not a type")
                        .help("parameterized types are list(T), map(T) and enum(a, b, …)");
                    self.error(d);
                    Ty::Any
                }
            },
            TypeKind::Record(fields) => {
                Ty::Record(fields.iter().map(|(k, t)| (key_text(k), self.ty(t))).collect())
            }
            TypeKind::Optional(t) => Ty::Optional(Box::new(self.ty(t))),
            TypeKind::Union(ts) => Ty::Union(ts.iter().map(|t| self.ty(t)).collect()),
            TypeKind::Str(s) => Ty::StrLit(s.as_plain().unwrap_or_default()),
            TypeKind::Int(i) => Ty::IntLit(i.value),
            TypeKind::Error => Ty::Any,
        }
    }

    // ----- expressions -----

    fn slice(&self, span: Span) -> &str {
        let abs = span.absolute_from(self.offset);
        self.source.get(abs.range()).unwrap_or("")
    }

    fn node(&self, kind: IrKind, span: Span) -> Ir {
        let text = self.keep_text.then(|| Arc::from(self.slice(span)));
        Ir { kind, span, text }
    }

    /// Lowers an expression; also returns its static type where it is known.
    fn expr(&mut self, e: &Expr, hint: Option<&Ty>) -> (Ir, Option<Ty>) {
        let span = e.span;
        match &e.kind {
            ExprKind::Int(i) => (Ir::lit(Value::Int(i.value), span), Some(Ty::Int)),
            ExprKind::Bool(b) => (Ir::lit(Value::Bool(*b), span), Some(Ty::Bool)),
            ExprKind::Null => (Ir::lit(Value::Null, span), Some(Ty::Null)),
            ExprKind::Str(s) => (self.string(s, true), Some(Ty::String)),
            ExprKind::Paren(inner) => self.expr(inner, hint),
            ExprKind::Name(n) => self.name(n, hint),
            ExprKind::List(items) => {
                let elem = hint.and_then(Ty::element).cloned();
                let irs = items.iter().map(|i| self.expr(i, elem.as_ref()).0).collect();
                (Ir::new(IrKind::List(irs), span), None)
            }
            ExprKind::Record(entries) => {
                let mut out = Vec::new();
                for entry in entries {
                    let k = key_text(&entry.key);
                    let h = hint.and_then(|h| h.field(&k)).cloned();
                    out.push((k, self.expr(&entry.value, h.as_ref()).0));
                }
                (Ir::new(IrKind::Record(out), span), None)
            }
            ExprKind::Unary(op, inner) => {
                let op = match op {
                    ast::UnOp::Neg => UnOp::Neg,
                    ast::UnOp::Not => UnOp::Not,
                };
                let (ir, _) = self.expr(inner, None);
                let ty = if op == UnOp::Not { Ty::Bool } else { Ty::Int };
                (self.node(IrKind::Unary(op, Box::new(ir)), span), Some(ty))
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, span),
            ExprKind::If(c, a, b) => {
                let c = self.expr(c, Some(&Ty::Bool)).0;
                let (a, ta) = self.expr(a, hint);
                let (b, _) = self.expr(b, hint);
                (self.node(IrKind::If(Box::new(c), Box::new(a), Box::new(b)), span), ta)
            }
            ExprKind::Member(inner, name) => self.member(inner, name, span),
            ExprKind::Index(inner, index) => {
                if let Some(Path::Kind(k)) = self.path(inner) {
                    let (name, _) = self.expr(index, Some(&Ty::String));
                    let kind = kind_name(self.db, k);
                    return (
                        self.node(
                            IrKind::ResourceByName { kind: Arc::from(kind.as_str()), name: Box::new(name) },
                            span,
                        ),
                        Some(Ty::Kind(kind)),
                    );
                }
                let (base, ty) = self.expr(inner, None);
                let (index, _) = self.expr(index, None);
                let elem = ty.and_then(|t| t.element().cloned());
                (self.node(IrKind::Index(Box::new(base), Box::new(index)), span), elem)
            }
            ExprKind::Call(f, args) => self.call(f, args, span),
            ExprKind::Error => (Ir::new(IrKind::Error, span), None),
        }
    }

    fn binary(&mut self, op: ast::BinOp, a: &Expr, b: &Expr, span: Span) -> (Ir, Option<Ty>) {
        let op = bin_op(op);
        let (x, tx) = self.expr(a, None);
        // An enum member on one side of a comparison is resolved against the other side.
        let hint = if op.is_comparison() { tx.clone().filter(|t| t.enum_members().is_some()) } else { None };
        let (y, ty) = self.expr(b, hint.as_ref());
        let numeric = matches!(
            op,
            BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem
        );
        if numeric {
            for (t, e) in [(&tx, a), (&ty, b)] {
                if let Some(t) = t
                    && !t.is_integer()
                    && !matches!(t, Ty::Any | Ty::Optional(_))
                {
                    let d = self
                        .at(
                            codes::E0201,
                            e.span,
                            format!("`{}` needs ints, but this is {t}", op.as_str()),
                            format!("{t}"),
                        )
                        .help(if t.is_string() {
                            "strings are joined with interpolation: \"${a}${b}\""
                        } else {
                            "only ints and modes take arithmetic and bit operators"
                        });
                    self.error(d);
                }
            }
        }
        let result = match op {
            BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor
                if matches!(tx, Some(Ty::Mode)) || matches!(ty, Some(Ty::Mode)) =>
            {
                Some(Ty::Mode)
            }
            _ if numeric => Some(Ty::Int),
            _ if op.is_comparison() || matches!(op, BinOp::And | BinOp::Or) => Some(Ty::Bool),
            _ => None,
        };
        (self.node(IrKind::Binary(op, Box::new(x), Box::new(y)), span), result)
    }

    fn string(&mut self, s: &StrLit, keep: bool) -> Ir {
        let parts = if s.multiline { dedent(&s.parts) } else { s.parts.iter().map(Seg::from).collect() };
        let mut irs = Vec::new();
        for part in parts {
            match part {
                Seg::Text(raw, span) => irs.push(Ir::lit(Value::str(iade_syntax::token::cook(&raw)), span)),
                Seg::Interp(e) => irs.push(self.expr(e, None).0),
            }
        }
        let _ = keep;
        match irs.as_slice() {
            [] => Ir::lit(Value::str(""), s.span),
            [Ir { kind: IrKind::Lit(Value::Str(_)), .. }] => {
                let mut only = irs.remove(0);
                only.span = s.span;
                only
            }
            _ => self.node(IrKind::Interp(irs), s.span),
        }
    }

    fn lookup_local(&self, name: &str) -> Option<&Local> {
        self.locals.iter().rev().find(|l| l.name == name)
    }

    /// A name or member chain that denotes a module or a kind (not a value).
    fn path(&mut self, e: &Expr) -> Option<Path> {
        match &e.kind {
            ExprKind::Name(n) => {
                if self.lookup_local(&n.text).is_some() {
                    return None;
                }
                let defs = self.scope.defs.get(&n.text)?;
                if defs.iter().any(|d| matches!(d, Def::Value(_) | Def::Resource(_) | Def::Nested(..))) {
                    return None;
                }
                defs.iter().find_map(|d| match d {
                    Def::Module(m) => Some(Path::Module(*m)),
                    Def::Kind(k) => Some(Path::Kind(*k)),
                    _ => None,
                })
            }
            ExprKind::Member(inner, seg) => match self.path(inner)? {
                Path::Module(m) => own_scope(self.db, m).defs.get(&seg.text)?.iter().find_map(|d| match d {
                    Def::Kind(k) => Some(Path::Kind(*k)),
                    Def::Module(m) => Some(Path::Module(*m)),
                    _ => None,
                }),
                Path::Kind(_) => None,
            },
            _ => None,
        }
    }

    fn resource_ref(&mut self, item: Item, span: Span) -> (Ir, Option<Ty>) {
        let Some(kind) = resource_kind(self.db, item) else {
            return (Ir::new(IrKind::Error, span), None);
        };
        let kind = kind_name(self.db, kind);
        let name = match split_name(item.name(self.db)) {
            ItemName::Resource { name, .. } => name.to_string(),
            _ => String::new(),
        };
        let id = format!("{kind}.{name}");
        (self.node(IrKind::Resource(Arc::from(id.as_str())), span), Some(Ty::Kind(kind)))
    }

    fn nested_kind(&self, nested: crate::scope::NestedRes) -> Option<Item> {
        let path: Vec<ast::Name> = nested
            .kind(self.db)
            .iter()
            .map(|t| ast::Name { text: t.clone(), span: Span::default() })
            .collect();
        resolve_kind_path(self.db, self.scope, &path).ok()
    }

    fn nested_ref(&mut self, nested: crate::scope::NestedRes, span: Span) -> (Ir, Option<Ty>) {
        let Some(kind) = self.nested_kind(nested) else { return (Ir::new(IrKind::Error, span), None) };
        let kind = kind_name(self.db, kind);
        let id = format!("{kind}.{}", nested.name(self.db));
        (self.node(IrKind::Resource(Arc::from(id.as_str())), span), Some(Ty::Kind(kind)))
    }

    fn name(&mut self, n: &ast::Name, hint: Option<&Ty>) -> (Ir, Option<Ty>) {
        let span = n.span;
        if let Some(l) = self.lookup_local(&n.text) {
            let (slot, ty) = (l.slot, l.ty.clone());
            return (self.node(IrKind::Local(slot), span), ty);
        }
        if let Some(members) = hint.and_then(Ty::enum_members)
            && members.contains(&n.text)
        {
            return (Ir::lit(Value::Enum(Arc::from(n.text.as_str())), span), hint.cloned());
        }
        let defs = self.scope.defs.get(&n.text).cloned().unwrap_or_default();
        let values: Vec<&Def> =
            defs.iter().filter(|d| matches!(d, Def::Value(_) | Def::Resource(_) | Def::Nested(..))).collect();
        match values.as_slice() {
            [Def::Nested(_, nested)] => self.nested_ref(*nested, span),
            [Def::Value(item)] => {
                let ty = self.global_ty(*item);
                let key = item_key(self.db, *item);
                (self.node(IrKind::Global(key), span), ty)
            }
            [Def::Resource(item)] => self.resource_ref(*item, span),
            [] => {
                if let Some(d) = defs.first() {
                    let help = match d {
                        Def::Kind(_) => format!(
                            "a kind names resources: `{0}.NAME`, `{0}[\"NAME\"]`, or `intent({0})` in a policy",
                            n.text
                        ),
                        Def::Rule(_) => format!("call the rule: `{}(…)`", n.text),
                        Def::Module(_) => format!("refer to a name inside it: `{}.NAME`", n.text),
                        _ => "use it where it is expected".to_string(),
                    };
                    let e = self
                        .at(
                            codes::E0109,
                            span,
                            format!("`{}` is {}, not a value", n.text, d.describe()),
                            d.describe(),
                        )
                        .help(help);
                    self.error(e);
                    return (Ir::new(IrKind::Error, span), None);
                }
                let help = match hint.and_then(Ty::enum_members) {
                    Some(members) => did_you_mean(&n.text, members.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("expected one of: {}", members.join(", "))),
                    None => {
                        let mut names: Vec<&str> = self.locals.iter().map(|l| l.name.as_str()).collect();
                        names.extend(self.scope.names());
                        did_you_mean(&n.text, names).unwrap_or_else(|| {
                            "declare it with `let`, `param` or a resource, or import it with `use`".into()
                        })
                    }
                };
                let e = self
                    .at(codes::E0101, span, format!("unknown name `{}`", n.text), "not found in this scope")
                    .help(help);
                self.error(e);
                (Ir::new(IrKind::Error, span), None)
            }
            many => {
                let kinds: Vec<String> = many
                    .iter()
                    .filter_map(|d| match d {
                        Def::Resource(i) => resource_kind(self.db, *i)
                            .map(|k| format!("`{}.{}`", kind_name(self.db, k), n.text)),
                        Def::Nested(_, r) => {
                            self.nested_kind(*r).map(|k| format!("`{}.{}`", kind_name(self.db, k), n.text))
                        }
                        _ => None,
                    })
                    .collect();
                let e = self
                    .at(
                        codes::E0108,
                        span,
                        format!("`{}` is ambiguous", n.text),
                        format!("{} things are named `{}`", many.len(), n.text),
                    )
                    .help(if kinds.is_empty() {
                        "rename one of them".to_string()
                    } else {
                        format!("say which: {}", kinds.join(" or "))
                    });
                self.error(e);
                (Ir::new(IrKind::Error, span), None)
            }
        }
    }

    /// The declared type of a `let` or `param`, when it has one.
    fn global_ty(&self, item: Item) -> Option<Ty> {
        declared_type(self.db, item).clone()
    }

    fn member(&mut self, inner: &Expr, name: &ast::Name, span: Span) -> (Ir, Option<Ty>) {
        match self.path(inner) {
            Some(Path::Kind(k)) => {
                // `directory.app`: the resource of this kind named `app`.
                let kind = kind_name(self.db, k);
                let found = self.scope.defs.get(&name.text).and_then(|defs| {
                    defs.iter().find_map(|d| match d {
                        Def::Resource(i) if resource_kind(self.db, *i) == Some(k) => Some(*d),
                        Def::Nested(_, n) if self.nested_kind(*n) == Some(k) => Some(*d),
                        _ => None,
                    })
                });
                return match found {
                    Some(Def::Resource(item)) => self.resource_ref(item, span),
                    Some(Def::Nested(_, n)) => self.nested_ref(n, span),
                    _ => {
                        let e = self
                            .at(
                                codes::E0101,
                                name.span,
                                format!("no `{kind}` resource named `{}`", name.text),
                                "not declared",
                            )
                            .help(format!("a resource generated by `for` is reached as {kind}[\"NAME\"]"));
                        self.error(e);
                        (Ir::new(IrKind::Error, span), None)
                    }
                };
            }
            Some(Path::Module(m)) => {
                let own = own_scope(self.db, m);
                let defs = own.defs.get(&name.text).cloned().unwrap_or_default();
                return match defs.first() {
                    Some(Def::Value(item)) => {
                        let ty = self.global_ty(*item);
                        (self.node(IrKind::Global(item_key(self.db, *item)), span), ty)
                    }
                    Some(Def::Resource(item)) => self.resource_ref(*item, span),
                    Some(d) => {
                        let e = self.at(
                            codes::E0109,
                            span,
                            format!("`{}` is {}, not a value", name.text, d.describe()),
                            d.describe(),
                        );
                        self.error(e);
                        (Ir::new(IrKind::Error, span), None)
                    }
                    None => {
                        let e = self
                            .at(
                                codes::E0107,
                                name.span,
                                format!("module `{}` has no `{}`", m.name(self.db), name.text),
                                "not declared there",
                            )
                            .help_opt(did_you_mean(&name.text, own.defs.keys().map(String::as_str)));
                        self.error(e);
                        (Ir::new(IrKind::Error, span), None)
                    }
                };
            }
            None => {}
        }
        let (base, ty) = self.expr(inner, None);
        let mut field_ty = None;
        match &ty {
            Some(Ty::Kind(k)) => {
                if let Some(schema) = self.schema_by_name(k) {
                    match schema.field(&name.text) {
                        Some(f) => field_ty = Some(f.ty.clone()),
                        None => {
                            let names = schema.fields.iter().map(|f| f.name.as_str());
                            let help = did_you_mean(&name.text, names.clone()).unwrap_or_else(|| {
                                format!("`{k}` fields: {}", names.collect::<Vec<_>>().join(", "))
                            });
                            let e = self
                                .at(
                                    codes::E0103,
                                    name.span,
                                    format!("unknown field `{}` for kind `{k}`", name.text),
                                    "no such field",
                                )
                                .help(help);
                            self.error(e);
                            return (Ir::new(IrKind::Error, span), None);
                        }
                    }
                }
            }
            Some(t @ Ty::Record(_)) => field_ty = t.field(&name.text).cloned(),
            Some(Ty::Map(t)) => field_ty = Some((**t).clone()),
            _ => {}
        }
        (self.node(IrKind::Member(Box::new(base), Arc::from(name.text.as_str())), span), field_ty)
    }

    fn schema_by_name(&self, kind: &str) -> Option<Arc<KindSchema>> {
        let item = self
            .scope
            .defs
            .get(kind)?
            .iter()
            .find_map(|d| if let Def::Kind(k) = d { Some(*k) } else { None });
        let item = item.or_else(|| {
            // A kind reached through a module (`pg.role`): look in every imported module.
            self.scope.imports.iter().find_map(|(m, _, _)| {
                own_scope(self.db, *m)
                    .defs
                    .get(kind)?
                    .iter()
                    .find_map(|d| if let Def::Kind(k) = d { Some(*k) } else { None })
            })
        })?;
        kind_schema(self.db, item)
    }

    fn call(&mut self, f: &Expr, args: &[ast::Arg], span: Span) -> (Ir, Option<Ty>) {
        // The callee: a rule (possibly in a module) or a builtin.
        let (callee_name, rule) = match &f.kind {
            ExprKind::Name(n) => {
                let rule =
                    self.scope.defs.get(&n.text).and_then(|d| {
                        d.iter().find_map(|d| if let Def::Rule(r) = d { Some(*r) } else { None })
                    });
                (n.text.clone(), rule)
            }
            ExprKind::Member(inner, n) => match self.path(inner) {
                Some(Path::Module(m)) => {
                    let rule = own_scope(self.db, m).defs.get(&n.text).and_then(|d| {
                        d.iter().find_map(|d| if let Def::Rule(r) = d { Some(*r) } else { None })
                    });
                    (format!("{}.{}", m.name(self.db), n.text), rule)
                }
                _ => (String::new(), None),
            },
            _ => (String::new(), None),
        };
        if let Some(rule) = rule {
            let params = rule_signature(self.db, rule).clone();
            let mut irs = Vec::new();
            for a in args {
                if let Some(n) = &a.name {
                    let e = self
                        .at(codes::E0111, n.span, "rules take positional arguments only", "named argument")
                        .help("pass the arguments in order");
                    self.error(e);
                }
                let hint = params.get(irs.len()).map(|(_, t)| t.clone());
                let (ir, ty) = self.expr(&a.value, hint.as_ref());
                if let (Some((pname, want @ Ty::Kind(k))), Some(Ty::Kind(got))) = (params.get(irs.len()), &ty)
                    && k != got
                {
                    let e = self
                        .at(
                            codes::E0201,
                            a.value.span,
                            format!("argument `{pname}` of `{callee_name}` is a {want}, not a {got}"),
                            format!("a {got}"),
                        )
                        .help(format!("`{callee_name}` checks resources of kind `{k}`"));
                    self.error(e);
                }
                irs.push(ir);
            }
            if irs.len() != params.len() {
                let sig: Vec<String> = params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
                let e = self
                    .at(
                        codes::E0111,
                        span,
                        format!(
                            "`{callee_name}` takes {} argument{}, not {}",
                            params.len(),
                            if params.len() == 1 { "" } else { "s" },
                            irs.len()
                        ),
                        "wrong number of arguments",
                    )
                    .help(format!("the rule is `{callee_name}({})`", sig.join(", ")));
                self.error(e);
                return (Ir::new(IrKind::Error, span), Some(Ty::Bool));
            }
            return (self.node(IrKind::RuleCall(item_key(self.db, rule), irs), span), Some(Ty::Bool));
        }
        let Some(builtin) = (if callee_name.contains('.') { None } else { Builtin::from_name(&callee_name) })
        else {
            let mut names: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
            names.extend(
                self.scope
                    .defs
                    .iter()
                    .filter(|(_, d)| d.iter().any(|d| matches!(d, Def::Rule(_))))
                    .map(|(n, _)| n.as_str()),
            );
            let shown =
                if callee_name.is_empty() { self.slice(f.span).to_string() } else { callee_name.clone() };
            let e = self
                .at(codes::E0110, f.span, format!("unknown function `{shown}`"), "not a builtin or a rule")
                .help(did_you_mean(&shown, names).unwrap_or_else(|| {
                    "builtins are listed in docs/language.md §11; rules are declared with `rule`".into()
                }));
            self.error(e);
            for a in args {
                self.expr(&a.value, None);
            }
            return (Ir::new(IrKind::Error, span), None);
        };
        if matches!(builtin, Builtin::Intent | Builtin::Observe) {
            return self.objects(builtin, args, span);
        }
        let (min, max) = builtin.arity();
        let mut irs = Vec::new();
        for a in args {
            if let Some(n) = &a.name {
                let e = self
                    .at(
                        codes::E0111,
                        n.span,
                        format!("`{}` takes no named arguments", builtin.name()),
                        "named argument",
                    )
                    .help(format!("it is `{}`", builtin.signature()));
                self.error(e);
            }
            irs.push(self.expr(&a.value, None).0);
        }
        if irs.len() < min || irs.len() > max {
            let e = self
                .at(
                    codes::E0111,
                    span,
                    format!(
                        "`{}` takes {} arguments, not {}",
                        builtin.name(),
                        if min == max { min.to_string() } else { format!("{min} to {max}") },
                        irs.len()
                    ),
                    "wrong number of arguments",
                )
                .help(format!("it is `{}`", builtin.signature()));
            self.error(e);
            return (Ir::new(IrKind::Error, span), None);
        }
        let ty = match builtin {
            Builtin::Len => Some(Ty::Int),
            Builtin::Contains | Builtin::StartsWith | Builtin::EndsWith => Some(Ty::Bool),
            Builtin::Secret => Some(Ty::Secret),
            Builtin::Upper
            | Builtin::Lower
            | Builtin::Trim
            | Builtin::Join
            | Builtin::Replace
            | Builtin::Basename
            | Builtin::ToString
            | Builtin::Include => Some(Ty::String),
            Builtin::Dirname | Builtin::JoinPath => Some(Ty::Path),
            _ => None,
        };
        (self.node(IrKind::Call(builtin, irs), span), ty)
    }

    fn objects(&mut self, b: Builtin, args: &[ast::Arg], span: Span) -> (Ir, Option<Ty>) {
        let (source, allowed) = match b {
            Builtin::Intent => (ObjectSource::Intent, matches!(self.mode, Mode::Policy | Mode::Control)),
            _ => (ObjectSource::Observe, self.mode == Mode::Control),
        };
        if !allowed {
            let (what, help) = match source {
                ObjectSource::Intent => (
                    "`intent(…)` is only available in policies and controls",
                    "check intended resources in a `policy`",
                ),
                ObjectSource::Observe => (
                    "`observe(…)` is only available in controls",
                    "check observed objects in a `control`; a `policy` uses `intent(kind)`",
                ),
            };
            let e = self.at(codes::E0208, span, what, "not allowed here").help(help);
            self.error(e);
            return (Ir::new(IrKind::Error, span), None);
        }
        let mut kind = None;
        let mut under = None;
        for (i, a) in args.iter().enumerate() {
            match (&a.name, i) {
                (None, 0) => match self.path(&a.value) {
                    Some(Path::Kind(k)) => kind = Some(kind_name(self.db, k)),
                    _ => {
                        let e = self
                            .at(
                                codes::E0111,
                                a.value.span,
                                format!("`{}` needs a kind", b.name()),
                                "not a kind",
                            )
                            .help(format!("write `{}(file)`; import the kind with `use`", b.name()));
                        self.error(e);
                    }
                },
                (Some(n), _) if n.text == "under" && source == ObjectSource::Observe => {
                    under = Some(Box::new(self.expr(&a.value, Some(&Ty::Path)).0));
                }
                _ => {
                    let e = self
                        .at(
                            codes::E0111,
                            a.span,
                            format!("unexpected argument to `{}`", b.name()),
                            "unexpected",
                        )
                        .help(format!("it is `{}`", b.signature()));
                    self.error(e);
                }
            }
        }
        let Some(kind) = kind else { return (Ir::new(IrKind::Error, span), None) };
        let ty = Ty::List(Box::new(Ty::Kind(kind.clone())));
        (self.node(IrKind::Objects { source, kind: Arc::from(kind.as_str()), under }, span), Some(ty))
    }
}

fn bin_op(op: ast::BinOp) -> BinOp {
    match op {
        ast::BinOp::Or => BinOp::Or,
        ast::BinOp::And => BinOp::And,
        ast::BinOp::Eq => BinOp::Eq,
        ast::BinOp::Ne => BinOp::Ne,
        ast::BinOp::Lt => BinOp::Lt,
        ast::BinOp::Le => BinOp::Le,
        ast::BinOp::Gt => BinOp::Gt,
        ast::BinOp::Ge => BinOp::Ge,
        ast::BinOp::In => BinOp::In,
        ast::BinOp::BitOr => BinOp::BitOr,
        ast::BinOp::BitXor => BinOp::BitXor,
        ast::BinOp::BitAnd => BinOp::BitAnd,
        ast::BinOp::Add => BinOp::Add,
        ast::BinOp::Sub => BinOp::Sub,
        ast::BinOp::Mul => BinOp::Mul,
        ast::BinOp::Div => BinOp::Div,
        ast::BinOp::Rem => BinOp::Rem,
    }
}

pub fn key_text(k: &Key) -> String {
    match k {
        Key::Ident(n) => n.text.clone(),
        Key::Str(s) => s.as_plain().unwrap_or_default(),
    }
}

enum Seg<'a> {
    Text(String, Span),
    Interp(&'a Expr),
}

impl<'a> From<&'a StrPart> for Seg<'a> {
    fn from(p: &'a StrPart) -> Seg<'a> {
        match p {
            StrPart::Text { raw, span } => Seg::Text(raw.clone(), *span),
            StrPart::Interp(e) => Seg::Interp(e),
        }
    }
}

/// The parts of a multi-line string with its layout removed: the line break after the
/// opening `"""`, the line of the closing `"""` (and the break before it), and the closing
/// line's indentation at the start of every line. The lexer has checked the layout.
fn dedent(parts: &[StrPart]) -> Vec<Seg<'_>> {
    let mut segs: Vec<Seg<'_>> = parts.iter().map(Seg::from).collect();
    if let Some(Seg::Text(first, _)) = segs.first_mut()
        && let Some(i) = first.find('\n')
    {
        first.replace_range(..=i, "");
    }
    let mut indent = String::new();
    if let Some(Seg::Text(last, _)) = segs.last_mut() {
        if let Some(i) = last.rfind('\n') {
            indent = last[i + 1..].to_string();
            last.truncate(i);
        } else if last.chars().all(|c| c == ' ' || c == '\t') {
            // The closing line is the first content line: the string is empty.
            indent = std::mem::take(last);
        }
    }
    if indent.is_empty() {
        return segs;
    }
    let mut at_line_start = true;
    for seg in &mut segs {
        match seg {
            Seg::Text(t, _) => {
                let mut out = String::with_capacity(t.len());
                let mut rest = t.as_str();
                loop {
                    if at_line_start {
                        rest = rest.strip_prefix(indent.as_str()).unwrap_or(rest);
                    }
                    match rest.find('\n') {
                        Some(i) => {
                            out.push_str(&rest[..=i]);
                            rest = &rest[i + 1..];
                            at_line_start = true;
                        }
                        None => {
                            out.push_str(rest);
                            if !rest.is_empty() {
                                at_line_start = false;
                            }
                            break;
                        }
                    }
                }
                *t = out;
            }
            Seg::Interp(_) => at_line_start = false,
        }
    }
    segs
}
