//! Lowering: an item's syntax tree, with names resolved and types checked where they are
//! known statically, to the rule IR.
//!
//! The result of [`lower_item`] keeps spans relative to the item and no positions, so it is
//! equal after an edit that did not change the item's meaning, and evaluation is not redone.

use std::collections::BTreeMap;
use std::sync::Arc;

use iade_diagnostics::codes;
use iade_intent::ir::{BinOp, CheckIr, CheckKind, CheckStmt, Ir, IrKind, RuleIr};
use iade_intent::{FieldRole, FieldSchema, KindSchema, Origin, Severity, Ty, Value};
use iade_span::Span;
use iade_syntax::ast::{self, Block, Expr, ExprKind, Key, StmtKind, StrPart, Type, TypeKind};

use crate::db::Db;
use crate::diag::Diag;
use crate::items::{Item, Module, item_tree};
use crate::scope::{Def, ItemName, Scope, module_of, module_scope, origin, own_scope, split_name};
use crate::suggest::did_you_mean;

pub mod component;
mod expr;
mod kind;
pub mod test;

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
        default: Option<Box<Ir>>,
        name_span: Span,
    },
    Let {
        ty: Option<Ty>,
        value: Box<Ir>,
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
    /// A `test` of a `*_test.iade` file.
    Test(Arc<test::TestIr>),
    /// A `waive` (its control is checked against the stack's controls by the graph).
    Waiver(Box<iade_intent::ir::Waiver>, Span),
    Component(Arc<component::ComponentIr>),
}

/// The `stack` item's settings: the stack's name, whether removed resources are pruned, and
/// the evaluation limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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
    Instance(Box<component::InstanceIr>),
    For { key: Option<u32>, slot: u32, iter: Box<Ir>, body: Box<[Gen]> },
    If { cond: Box<Ir>, then: Box<[Gen]>, otherwise: Box<[Gen]> },
    Let { slot: u32, value: Box<Ir> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceIr {
    pub kind: Item,
    pub kind_name: Arc<str>,
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
        name: Arc<str>,
        value: Ir,
        span: Span,
    },
    /// `after = [...]`: resources to apply first.
    After(Ir),
    /// `manage = enforce | observe`
    Manage(iade_intent::Manage),
    /// `provider = NAME`
    Provider(String),
    /// `notify = [...]`: resources to refresh when this one changes.
    Notify(Ir),
    /// `protect = true`: never deleted.
    Protect(bool),
    If {
        cond: Box<Ir>,
        then: Box<[BodyStmt]>,
        otherwise: Box<[BodyStmt]>,
    },
    Let {
        slot: u32,
        value: Ir,
    },
}

/// The qualified key of a `let`/`param`/`rule` item, as the IR names it. A query: every
/// reference to the item shares one copy.
#[salsa::tracked(returns(clone))]
pub fn item_key(db: &dyn Db, item: Item) -> Arc<str> {
    Arc::from(format!("{}:{}", item.file(db).id(db).0, item.name(db)))
}

/// The item a qualified key names.
pub fn item_from_key(db: &dyn Db, key: &str) -> Option<Item> {
    db.item_by_key(key)
}

/// The span of the name an item declares (relative to the item).
pub fn decl_name_span(db: &dyn Db, item: Item) -> Span {
    let Some(stmt) = item_tree(db, item) else { return Span::default() };
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
        StmtKind::Component(c) => c.name.span,
        StmtKind::Test(t) => t.name.span,
        // `for x in xs`: up to the end of what it iterates over, not the whole body.
        StmtKind::For(f) => Span { start: stmt.span.start, end: f.iter.span.end },
        _ => stmt.span,
    }
}

/// The kind item a resource item declares a resource of: a query, read by the items that
/// refer to it.
#[salsa::tracked(returns(copy))]
pub fn resource_kind(db: &dyn Db, item: Item) -> Option<Item> {
    resolve_resource_kind(db, item)
}

/// [`resource_kind`] without its query.
pub(crate) fn resolve_resource_kind(db: &dyn Db, item: Item) -> Option<Item> {
    let stmt = item_tree(db, item)?;
    let StmtKind::Resource(r) = &stmt.kind else { return None };
    let scope = module_scope(db, module_of(db, item.file(db)));
    resolve_kind_path(db, scope, &r.kind).ok()
}

/// The kind path a resource item is declared with, as written (`pg.role`): how the module
/// that declares it names the kind.
pub fn written_kind(db: &dyn Db, item: Item) -> Option<String> {
    let stmt = item_tree(db, item)?;
    let StmtKind::Resource(r) = &stmt.kind else { return None };
    Some(r.kind.iter().map(|n| n.text.as_str()).collect::<Vec<_>>().join("."))
}

/// What a path (`pg.role`) names: the definitions of its last segment, through the modules its
/// other segments name. Borrowed from the scopes: every resource item resolves its kind.
pub(crate) fn path_defs<'db>(db: &'db dyn Db, scope: &'db Scope, path: &[ast::Name]) -> &'db [Def] {
    let Some(first) = path.first() else { return &[] };
    let mut defs: &[Def] = scope.get(&first.text).map_or(&[], |d| d.as_slice());
    for seg in path.iter().skip(1) {
        let Some(Def::Module(m)) = defs.iter().find(|d| matches!(d, Def::Module(_))) else {
            return &[];
        };
        defs = own_scope(db, *m).defs.get(&seg.text).map_or(&[], |d| d.as_slice());
    }
    defs
}

fn resolve_kind_path(db: &dyn Db, scope: &Scope, path: &[ast::Name]) -> Result<Item, String> {
    path_defs(db, scope, path)
        .iter()
        .find_map(|d| if let Def::Kind(k) = d { Some(*k) } else { None })
        .ok_or_default()
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
    let Some(stmt) = item_tree(db, rule) else { return Vec::new() };
    let StmtKind::Rule(r) = &stmt.kind else { return Vec::new() };
    types_only(db, rule, |cx| r.params.iter().map(|p| (p.name.text.clone(), cx.ty(&p.ty))).collect())
}

/// The declared type of a `param` or an annotated `let`, from its annotation alone (never
/// from its value, so values that refer to each other do not make lowering recursive).
#[salsa::tracked(returns(ref))]
pub fn declared_type(db: &dyn Db, item: Item) -> Option<Ty> {
    let stmt = item_tree(db, item)?;
    match &stmt.kind {
        StmtKind::Param(p) => Some(types_only(db, item, |cx| cx.ty(&p.ty))),
        StmtKind::Let(l) => l.ty.as_ref().map(|t| types_only(db, item, |cx| cx.ty(t))),
        _ => None,
    }
}

/// Runs `f` with a lowering context whose diagnostics are dropped (the item's own lowering
/// reports them).
fn types_only<T>(db: &dyn Db, item: Item, f: impl FnOnce(&mut Cx<'_>) -> T) -> T {
    f(&mut Cx::new(db, item, Source::Text("", 0)))
}

#[salsa::tracked(returns(ref), lru = 0)]
pub fn lower_item(db: &dyn Db, item: Item) -> Lowered {
    let Some(stmt) = item_tree(db, item) else {
        return Lowered { kind: LoweredKind::Nothing, diags: Vec::new() };
    };
    let mut cx = Cx::new(db, item, Source::Item(std::cell::OnceCell::new()));
    let kind = cx.item(item, &stmt);
    Lowered { kind, diags: cx.diags }
}

/// Releases the IR of items already evaluated, in a stack compiled once (see
/// `Database::lower`): salsa's eviction drops the values of the lowerings read last, all but
/// one, and the capacity set back to none stops the recording. A lowering read again is
/// computed again.
pub(crate) fn release_lowerings(db: &mut dyn Db, items: &[Item]) {
    if items.len() < 2 {
        return;
    }
    lower_item::set_lru_capacity(db, 1);
    for &item in items {
        lower_item(db, item);
    }
    db.trigger_lru_eviction();
    lower_item::set_lru_capacity(db, 0);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Config,
    /// A template's expressions: names are its variables.
    Template,
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

pub(crate) struct Cx<'a> {
    db: &'a dyn Db,
    item: Item,
    /// Inside a component's body: its members.
    component: Option<component::ComponentCx>,
    scope: &'a Scope,
    module: Module,
    origin: Origin,
    diags: Vec<Diag>,
    locals: Vec<Local>,
    next_slot: u32,
    max_slot: u32,
    source: Source<'a>,
    keep_text: bool,
    mode: Mode,
}

/// The text that spans index, for what lowering quotes (evidence, constraints, messages).
enum Source<'a> {
    /// A text, and the offset in it that spans are relative to.
    Text(&'a str, u32),
    /// The item's file, read only when something is quoted: most items quote nothing, and an
    /// item that reads the file's text is lowered again after any edit of that file.
    Item(std::cell::OnceCell<(&'a str, u32)>),
}

/// What a name path (`pg.role`, `directory.app`) refers to, when not a value.
enum Path {
    Module(Module),
    Kind(Item),
    Component(Item),
}

impl<'a> Cx<'a> {
    /// A context for lowering `item`; `source` gives the text that evidence in rules and
    /// checks quotes.
    fn new(db: &'a dyn Db, item: Item, source: Source<'a>) -> Cx<'a> {
        let module = module_of(db, item.file(db));
        Cx {
            db,
            item,
            component: None,
            scope: module_scope(db, module),
            module,
            origin: origin(db, item),
            diags: Vec::new(),
            locals: Vec::new(),
            next_slot: 0,
            max_slot: 0,
            source,
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

    /// A context for the expressions of a template file: no scope, and slot 0 holds the
    /// record of its variables.
    pub(crate) fn for_template(db: &'a dyn Db, file: crate::items::SourceFile) -> Cx<'a> {
        let item = Item::new(db, file, crate::template::TEMPLATE_ITEM);
        let module = Module::new(db, crate::template::TEMPLATE_ITEM.to_string(), Vec::new());
        let mut cx = Cx {
            db,
            item,
            component: None,
            scope: module_scope(db, module),
            module,
            origin: Origin { file: file.id(db), item: Arc::from(crate::template::TEMPLATE_ITEM) },
            diags: Vec::new(),
            locals: Vec::new(),
            next_slot: 0,
            max_slot: 0,
            source: Source::Text("", 0),
            keep_text: false,
            mode: Mode::Template,
        };
        cx.bind(crate::template::VARS, None);
        cx
    }

    /// Lowers one expression of a template; returns its IR, the variable names it reads, and
    /// what is wrong with it.
    pub(crate) fn template_expr(&mut self, e: &Expr) -> Ir {
        self.expr(e, None).0
    }

    pub(crate) fn take_diags(&mut self) -> Vec<Diag> {
        std::mem::take(&mut self.diags)
    }

    pub(crate) fn slots(&self) -> u32 {
        self.max_slot
    }

    /// A decimal integer literal where a mode is expected (`mode = 644`) is an error: it is
    /// almost always an octal mode missing its `0o`.
    fn decimal_mode(&mut self, ty: &Ty, e: &Expr) {
        let is_mode = matches!(ty, Ty::Mode) || matches!(ty, Ty::Optional(t) if **t == Ty::Mode);
        let ExprKind::Int(lit) = &e.kind else { return };
        if !is_mode || !lit.raw.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return;
        }
        let raw = lit.raw.replace('_', "");
        if raw == "0" {
            return;
        }
        let octal = raw.trim_start_matches('0');
        let mut d = self.at(
            codes::E0216,
            e.span,
            format!("the mode `{}` is written in decimal", lit.raw),
            format!("the decimal number {} is {}", lit.value, iade_intent::value::format_mode(lit.value)),
        );
        if !octal.is_empty() && octal.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            d = d.help(format!("write it in octal: `0o{octal}`")).fix(
                &self.origin,
                e.span,
                format!("0o{octal}"),
                format!("write `0o{octal}`"),
            );
        } else {
            d = d.help("a mode is written in octal, with digits 0 to 7: `0o644`, `0o755`");
        }
        self.error(d);
    }

    /// Reports an entry set a second time in one body (E0104); records the first.
    fn set_twice<'k>(
        &mut self,
        seen: &mut BTreeMap<std::borrow::Cow<'k, str>, Span>,
        name: std::borrow::Cow<'k, str>,
        span: Span,
    ) -> bool {
        if let Some(first) = seen.get(&*name) {
            let d = self
                .at(codes::E0104, span, format!("`{name}` is set twice"), "set again here")
                .secondary(&self.origin, *first, "first set here")
                .help("remove one of them");
            self.error(d);
            return true;
        }
        seen.insert(name, span);
        false
    }

    /// Binds a variable the source names (a loop or comprehension variable); inside a
    /// component, `name` is the instance's name and may not be rebound.
    fn bind_var(&mut self, n: &ast::Name, ty: Option<Ty>) -> u32 {
        self.reserved_name(n);
        self.bind(&n.text, ty)
    }

    /// Reports `name` declared inside a component, where it is the instance's name.
    fn reserved_name(&mut self, n: &ast::Name) {
        if self.component.is_some() && n.text == "name" {
            let d = self
                .at(
                    codes::E0214,
                    n.span,
                    "`name` is reserved inside a component",
                    "`name` is the instance's name here",
                )
                .help("choose another name; `name` always holds the name of the instance being declared");
            self.error(d);
        }
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
                LoweredKind::Param {
                    name: p.name.text.clone(),
                    ty,
                    default: default.map(Box::new),
                    name_span: p.name.span,
                }
            }
            StmtKind::Let(l) => {
                let ty = l.ty.as_ref().map(|t| self.ty(t));
                let value = self.expr(&l.value, ty.as_ref()).0;
                LoweredKind::Let { ty, value: Box::new(value), slots: self.max_slot }
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
            StmtKind::Kind(k) => self.kind(k, stmt.doc.as_deref().map(str::to_string)),
            StmtKind::Provider(p) => {
                let mut attrs = Vec::new();
                for s in &p.body.stmts {
                    if let StmtKind::Attr(a) = &s.kind {
                        let value = self.expr(&a.value, None).0;
                        attrs.push((key_text(&a.key).into_owned(), value));
                    }
                }
                LoweredKind::Provider { provider_type: p.provider_type.text.clone(), attrs }
            }
            StmtKind::Stack(st) => self.stack(st),
            StmtKind::Waive(w) => self.waive(w),
            StmtKind::Test(t) => self.test(t),
            StmtKind::Component(c) => self.component(c),
            _ => LoweredKind::Nothing,
        }
    }

    fn waive(&mut self, w: &ast::WaiveDecl) -> LoweredKind {
        let mut subject: String = w.subject.iter().map(|n| n.text.as_str()).collect::<Vec<_>>().join(".");
        if let Some(span) = w.object {
            let text = self.slice(span).trim().to_string();
            // Quoted, the object is what the string says: for a name iade cannot read as
            // written, such as a path with a part that starts with a digit (`/srv/2fa`).
            let object = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                Some(inner) if !inner.contains('"') => iade_syntax::token::cook(inner).into_owned(),
                _ => {
                    // `file[/srv/"2fa"/run.sh]`, as the lexer's help for `2fa` suggests: taken
                    // as written, it would never match a finding.
                    if text.contains('"') {
                        let d = self
                            .at(codes::E0209, span, "a waiver's object is quoted in part", "quoted in part")
                            .help(format!(
                                "quote the whole object: {subject}[\"{}\"]",
                                text.replace('"', "")
                            ));
                        self.error(d);
                    }
                    text
                }
            };
            subject = format!("{subject}[{object}]");
        }
        let until = w.until.as_plain().unwrap_or_default();
        if !valid_date(&until) {
            let d = self
                .at(codes::E0209, w.until.span, format!("`{until}` is not a date"), "not YYYY-MM-DD")
                .help("write the last day the waiver holds as \"2027-03-31\"");
            self.error(d);
        }
        let reason = w.reason.as_plain().unwrap_or_default();
        if reason.trim().is_empty() {
            let d = self.at(codes::E0209, w.reason.span, "a waiver needs a reason", "empty").help(
                "say why the finding is accepted, for whoever reads the report: reason \"vendor script\"",
            );
            self.error(d);
        }
        LoweredKind::Waiver(
            Box::new(iade_intent::ir::Waiver { control: w.control.text.clone(), subject, until, reason }),
            w.control.span,
        )
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
                    match &*key {
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
        // Most statements make one generator: room for them, not the four a first push makes.
        let mut out = Vec::with_capacity(stmts.len());
        for stmt in stmts {
            match &stmt.kind {
                StmtKind::Resource(r) => {
                    if let Some(component::Declares::Component(c)) =
                        component::resolve_declared(self.db, self.scope, &r.kind)
                    {
                        out.extend(self.instance(c, r, stmt.span));
                    } else if let Some(res) = self.resource(r, stmt.span) {
                        out.push(Gen::Resource(Box::new(res)));
                    }
                }
                StmtKind::For(f) => {
                    let iter = self.expr(&f.iter, None).0;
                    let body = self.scoped(|cx| {
                        let (key, slot) = match f.bindings.as_slice() {
                            [k, v] => (Some(cx.bind_var(k, Some(Ty::String))), cx.bind_var(v, None)),
                            [v, ..] => (None, cx.bind_var(v, None)),
                            [] => (None, cx.bind("_", None)),
                        };
                        (key, slot, cx.gens(&f.body.stmts))
                    });
                    out.push(Gen::For {
                        key: body.0,
                        slot: body.1,
                        iter: Box::new(iter),
                        body: body.2.into(),
                    });
                }
                StmtKind::If(i) => out.push(self.gen_if(i)),
                StmtKind::Let(l) => {
                    let value = self.expr(&l.value, None).0;
                    let slot = self.bind_var(&l.name, None);
                    out.push(Gen::Let { slot, value: Box::new(value) });
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
        Gen::If { cond: Box::new(cond), then: then.into(), otherwise: otherwise.into() }
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
                let kinds = self.scope.names_of(|d| matches!(d, Def::Kind(_)));
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
            .filter_map(|b| if let BodyStmt::Attr { name, .. } = b { Some(&**name) } else { None })
            .collect();
        for f in schema.identity_fields() {
            if !set.contains(&&*f.name) {
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
        let mut out = Vec::with_capacity(block.stmts.len());
        let mut seen = BTreeMap::new();
        for stmt in &block.stmts {
            match &stmt.kind {
                StmtKind::Attr(a) => {
                    let name = key_text(&a.key);
                    let key_span = a.key.span();
                    if self.set_twice(&mut seen, name.clone(), key_span) {
                        continue;
                    }
                    match &*name {
                        "after" => {
                            let v = self.expr(&a.value, None).0;
                            out.push(BodyStmt::After(v));
                        }
                        "notify" => {
                            let v = self.expr(&a.value, None).0;
                            out.push(BodyStmt::Notify(v));
                        }
                        "protect" => match self.expr(&a.value, Some(&Ty::Bool)).0.kind {
                            IrKind::Lit(Value::Bool(b)) => out.push(BodyStmt::Protect(b)),
                            IrKind::Error => {}
                            _ => {
                                let d = self
                                    .at(codes::E0304, a.value.span, "`protect` is `true` or `false`", "not a literal bool")
                                    .help("write `protect = true` to make the plan fail instead of deleting the object");
                                self.error(d);
                            }
                        },
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
                                    .get(&n.text)
                                    .is_some_and(|d| d.iter().any(|d| matches!(d, Def::Provider(_))));
                                if found {
                                    out.push(BodyStmt::Provider(n.text.clone()));
                                } else {
                                    let providers = self.scope.names_of(|d| matches!(d, Def::Provider(_)));
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
                                    .map(|f| &*f.name);
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
                                let (name, ty) = (f.name.clone(), f.ty.clone());
                                self.decimal_mode(&ty, &a.value);
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
                    out.push(BodyStmt::If {
                        cond: Box::new(cond),
                        then: then.into(),
                        otherwise: otherwise.into(),
                    });
                }
                StmtKind::Let(l) => {
                    let value = self.expr(&l.value, None).0;
                    let slot = self.bind_var(&l.name, None);
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
                match &*key_text(&a.key) {
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

pub fn key_text(k: &Key) -> std::borrow::Cow<'_, str> {
    match k {
        Key::Ident(n) => std::borrow::Cow::Borrowed(&n.text),
        Key::Str(s) => std::borrow::Cow::Owned(s.as_plain().unwrap_or_default()),
    }
}

enum Seg<'a> {
    /// Borrowed from the tree unless its layout was removed.
    Text(std::borrow::Cow<'a, str>, Span),
    Interp(&'a Expr),
}

impl<'a> From<&'a StrPart> for Seg<'a> {
    fn from(p: &'a StrPart) -> Seg<'a> {
        match p {
            StrPart::Text { raw, span } => Seg::Text(std::borrow::Cow::Borrowed(raw), *span),
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
        first.to_mut().replace_range(..=i, "");
    }
    let mut indent = String::new();
    if let Some(Seg::Text(last, _)) = segs.last_mut() {
        if let Some(i) = last.rfind('\n') {
            indent = last[i + 1..].to_string();
            // The break before the closing line goes, `\r\n` as well as `\n`.
            let cut = if last[..i].ends_with('\r') { i - 1 } else { i };
            last.to_mut().truncate(cut);
        } else if last.chars().all(|c| c == ' ' || c == '\t') {
            // The closing line is the first content line: the string is empty.
            indent = std::mem::take(last).into_owned();
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
                let mut rest: &str = t;
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
                *t = std::borrow::Cow::Owned(out);
            }
            Seg::Interp(_) => at_line_start = false,
        }
    }
    segs
}

/// `YYYY-MM-DD` with a month and a day that exist.
fn valid_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return false };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else { return false };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}
