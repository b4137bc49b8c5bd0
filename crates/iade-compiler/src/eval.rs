//! Evaluation of `let`, `param` and resources, through the one evaluator of `iade-intent`
//! with an environment that answers from the database.

use std::collections::BTreeMap;
use std::sync::Arc;

use thin_vec::ThinVec;

use iade_diagnostics::codes;
use iade_intent::eval::Evaluator;
use iade_intent::ir::{Ir, IrKind, ObjectSource, RuleIr};
use iade_intent::{Env, EvalError, FieldRole, KindSchema, Origin, ResourceValue, Ty, Value};
use iade_span::Span;

use crate::db::Db;
use crate::diag::Diag;
use crate::items::{Item, stack_module};
use crate::lower::component::{InstanceIr, InstanceSite, MAX_INSTANCE_DEPTH};
use crate::lower::{BodyStmt, Gen, LoweredKind, ResName, ResourceIr, item_from_key, kind_schema, lower_item};
use crate::scope::{ItemName, module_of, origin, split_name};

/// The environment of compile-time evaluation: globals, resources and rules from the
/// database; `intent(kind)` from the evaluated resources; `observe` is unknown.
pub(crate) struct CompilerEnv<'a> {
    pub db: &'a dyn Db,
    /// Resources already evaluated by the item being evaluated: a `for` or `if` may refer to
    /// what it declared before.
    pub local: std::cell::RefCell<BTreeMap<Arc<str>, Value>>,
    /// Resources that the globals read so far depend on.
    pub global_refs: std::cell::RefCell<Vec<Arc<str>>>,
    /// The resource being evaluated: it does not read the resources of its own dependency
    /// cycle ([`crate::graph::Cycles`]).
    pub reader: std::cell::RefCell<Option<Arc<str>>>,
}

impl<'a> CompilerEnv<'a> {
    pub fn new(db: &'a dyn Db) -> Self {
        CompilerEnv {
            db,
            local: Default::default(),
            global_refs: Default::default(),
            reader: Default::default(),
        }
    }
}

impl Env for CompilerEnv<'_> {
    fn global(&self, name: &str) -> Value {
        let Some(item) = item_from_key(self.db, name) else {
            return Value::unknown(format!("`{name}` is not declared"));
        };
        let g = deep(|| eval_global(self.db, item));
        self.global_refs.borrow_mut().extend(g.refs.iter().cloned());
        g.value.clone()
    }

    fn resource(&self, id: &str) -> Option<Value> {
        if let Some(v) = self.local.borrow().get(id) {
            return Some(v.clone());
        }
        if let Some(reader) = self.reader.borrow().as_deref() {
            let cycles = crate::graph::cycle_components(self.db);
            if cycles.get(reader).is_some_and(|c| cycles.get(id) == Some(c)) {
                // The cycle is the error (E0303, reported once): what reads its values is not
                // reported again.
                return Some(Value::unknown(format!(
                    "{}: `{reader}` and `{id}` depend on each other",
                    iade_intent::eval::POISONED
                )));
            }
        }
        find_value(self.db, id)
    }

    fn resource_by_name(&self, kind: &str, name: &str) -> Option<Value> {
        self.resource(&format!("{kind}.{name}"))
    }

    fn rule(&self, name: &str) -> Option<Arc<RuleIr>> {
        let item = item_from_key(self.db, name)?;
        match &lower_item(self.db, item).kind {
            LoweredKind::Rule(r) => Some(r.clone()),
            _ => None,
        }
    }

    fn objects(&self, source: ObjectSource, kind: &str, _under: Option<&str>) -> Result<Vec<Value>, String> {
        match source {
            ObjectSource::Intent => {
                let key = crate::graph::KindKey::new(self.db, kind.to_string());
                Ok(crate::graph::intent_of_kind(self.db, key).clone())
            }
            ObjectSource::Observe => Err("observed objects are known only when the engine observes".into()),
        }
    }

    fn include(&self, origin: &Origin, path: &str) -> Result<Value, String> {
        let file = self.db.file_by_id(origin.file).ok_or("the including file is gone")?;
        let full = crate::scope::join_relative(file.path(self.db), path);
        let f =
            self.db.load_file(&full).map_err(|e| format!("cannot include `{full}`: {}", e.to_lowercase()))?;
        Ok(Value::str(f.text(self.db).as_str()))
    }

    fn template(
        &self,
        origin: &Origin,
        path: &str,
        vars: &Value,
    ) -> Result<Value, iade_intent::eval::TemplateError> {
        let limits = crate::graph::stack_settings(self.db).settings.limits;
        crate::template::fill(self.db, &NullEnv, origin, path, vars, limits)
    }
}

/// An environment with nothing in it, for constants (kind defaults).
struct NullEnv;

impl Env for NullEnv {
    fn global(&self, _: &str) -> Value {
        Value::unknown("a default must be a constant")
    }
    fn resource(&self, _: &str) -> Option<Value> {
        None
    }
    fn resource_by_name(&self, _: &str, _: &str) -> Option<Value> {
        None
    }
    fn rule(&self, _: &str) -> Option<Arc<RuleIr>> {
        None
    }
    fn objects(&self, _: ObjectSource, _: &str, _: Option<&str>) -> Result<Vec<Value>, String> {
        Err("a default must be a constant".into())
    }
    fn include(&self, _: &Origin, _: &str) -> Result<Value, String> {
        Err("a default must be a constant".into())
    }
}

pub(crate) fn eval_constant(_db: &dyn Db, origin: &Origin, ir: &Ir) -> Result<Value, (String, Span)> {
    Evaluator::new(&NullEnv, origin.clone(), 0).eval(ir).map_err(|e| (e.message, e.span))
}

fn eval_error(e: EvalError) -> Diag {
    let code = if e.limit.is_some() {
        codes::E0211
    } else if &*e.origin.item == crate::template::TEMPLATE_ITEM {
        codes::E0217
    } else {
        codes::E0207
    };
    let label = if code == codes::E0217 { "in the template" } else { "while evaluating this" };
    Diag::new(code, e.message.clone()).primary(&e.origin, e.span, label).help_opt(e.help)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalResult {
    pub value: Value,
    pub diags: Vec<Diag>,
    /// Resources the value was computed from (directly or through other globals).
    pub refs: Vec<Arc<str>>,
}

fn global_cycle(db: &dyn Db, _id: salsa::Id, item: Item) -> GlobalResult {
    let o = origin(db, item);
    let span = crate::lower::decl_name_span(db, item);
    GlobalResult {
        refs: Vec::new(),
        value: Value::unknown("this value depends on itself"),
        diags: vec![
            Diag::new(codes::E0303, "this value depends on itself")
                .primary(&o, span, "defined in terms of itself")
                .help("break the cycle: a value may not refer to itself, directly or through other values"),
        ],
    }
}

#[salsa::tracked(returns(ref), cycle_result = global_cycle)]
pub fn eval_global(db: &dyn Db, item: Item) -> GlobalResult {
    let o = origin(db, item);
    let env = CompilerEnv::new(db);
    let mut diags = Vec::new();
    let mut refs: Vec<Arc<str>> = Vec::new();
    let value = match &lower_item(db, item).kind {
        LoweredKind::Param { name, ty, default, name_span } => {
            let given = if module_of(db, item.file(db)) == stack_module(db) {
                db.stack().params(db).get(name).cloned()
            } else {
                None
            };
            match (given, default) {
                (Some(text), _) => match parse_param(&text, ty) {
                    Ok(v) => v,
                    Err(m) => {
                        diags.push(
                            Diag::new(codes::E0205, format!("invalid value for param `{name}`: {m}"))
                                .primary(&o, *name_span, format!("declared as {ty}"))
                                .help(format!("give a value of type {ty}: --param {name}=…")),
                        );
                        Value::unknown("the param's value is invalid")
                    }
                },
                (None, Some(d)) => match Evaluator::new(&env, o.clone(), 0).eval(d) {
                    Ok(v) => match ty.check(&v) {
                        Ok(v) => v,
                        Err(m) => {
                            diags.push(Diag::new(codes::E0201, format!("default of `{name}`: {m}")).primary(
                                &o,
                                d.span,
                                format!("expected {ty}"),
                            ));
                            Value::unknown("the param's default is invalid")
                        }
                    },
                    Err(e) => {
                        diags.push(eval_error(e));
                        Value::unknown("the param's default has an error")
                    }
                },
                (None, None) if db.params_optional() => Value::unknown(format!(
                    "param `{name}` has no value here (give it with --param {name}=…)"
                )),
                (None, None) => {
                    diags.push(
                        Diag::new(codes::E0205, format!("param `{name}` has no value"))
                            .primary(&o, *name_span, "no default")
                            .help(format!(
                                "give it one: --param {name}=… or the environment variable IADE_PARAM_{}",
                                name.to_uppercase()
                            )),
                    );
                    Value::unknown(format!("param `{name}` has no value"))
                }
            }
        }
        LoweredKind::Let { ty, value, slots } => match eval_collecting(&env, &o, *slots, value, &mut refs) {
            Ok(v) => match ty {
                Some(ty) => match ty.check(&v) {
                    Ok(v) => v,
                    Err(m) => {
                        diags.push(Diag::new(codes::E0201, m).primary(
                            &o,
                            value.span,
                            format!("expected {ty}"),
                        ));
                        Value::unknown("the value does not match its type")
                    }
                },
                None => v,
            },
            Err(e) => {
                diags.push(eval_error(e));
                Value::unknown("this value has an error")
            }
        },
        _ => Value::unknown("not a value"),
    };
    refs.extend(env.global_refs.borrow_mut().drain(..));
    refs.sort();
    refs.dedup();
    GlobalResult { value, diags, refs }
}

fn eval_collecting(
    env: &CompilerEnv<'_>,
    o: &Origin,
    slots: u32,
    value: &Ir,
    refs: &mut Vec<Arc<str>>,
) -> Result<Value, EvalError> {
    let limits = crate::graph::stack_settings(env.db).settings.limits;
    let mut ev = Evaluator::new(env, o.clone(), slots).with_limits(limits);
    let v = ev.eval(value);
    refs.extend(ev.take_refs().into_iter().map(|(id, _)| id));
    v
}

/// A `--param` text read as a value of the param's type.
fn parse_param(text: &str, ty: &Ty) -> Result<Value, String> {
    let int =
        |t: &str| iade_syntax::token::parse_int(t.trim()).map_err(|_| format!("`{t}` is not an integer"));
    let value = match ty {
        Ty::Int | Ty::IntLit(_) => Value::Int(int(text)?),
        Ty::Mode => Value::Mode(int(text)?),
        Ty::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("`{text}` is not `true` or `false`")),
        },
        Ty::Optional(t) if text == "null" => return t.check(&Value::Null).or(Ok(Value::Null)),
        Ty::Optional(t) => return parse_param(text, t),
        Ty::Union(ts) => {
            return ts
                .iter()
                .find_map(|t| parse_param(text, t).ok())
                .ok_or_else(|| format!("expected {ty}, got `{text}`"));
        }
        Ty::Enum(_) => Value::Enum(Arc::from(text)),
        _ => Value::str(text),
    };
    ty.check(&value)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluatedResource {
    /// `KIND.NAME`
    pub id: Arc<str>,
    pub kind: Arc<str>,
    pub kind_item: Item,
    /// How long its name is: the name ends its id.
    name_len: u32,
    /// The attributes set in the source, with the span of each entry (relative to `origin`):
    /// their values are the value's fields ([`EvaluatedResource::attr`]).
    attr_spans: Box<[(Arc<str>, Span)]>,
    /// The resource as rules see it: every field of its kind.
    pub value: Value,
    /// Resources this one refers to, and where. Most resources have none of these lists: a
    /// `ThinVec` holds nothing but a pointer then.
    pub refs: ThinVec<(Arc<str>, Span)>,
    pub after: ThinVec<(Arc<str>, Span)>,
    pub manage: iade_intent::Manage,
    pub provider: Option<String>,
    pub provider_type: Option<Arc<str>>,
    pub origin: Origin,
    pub span: Span,
    pub name_span: Span,
    /// Resources to refresh when this one changes, and where.
    pub notify: ThinVec<(Arc<str>, Span)>,
    /// `protect = true` (set on the resource or on an instance it is a member of).
    pub protect: bool,
    /// The innermost component instance it is a member of (`vhost.api`).
    pub instance: Option<String>,
    /// Where its instances were declared, outermost first.
    pub sites: ThinVec<InstanceSite>,
}

impl EvaluatedResource {
    /// Its name (`config` of `file.config`), which ends its id.
    pub fn name(&self) -> &str {
        self.id.get(self.id.len().saturating_sub(self.name_len as usize)..).unwrap_or_default()
    }

    /// An attribute set in the source: its value and where it was set.
    pub fn attr(&self, name: &str) -> Option<(&Value, Span)> {
        let (_, span) = self.attr_spans.iter().find(|(k, _)| **k == *name)?;
        let Value::Resource(r) = &self.value else { return None };
        Some((r.fields.get(name)?, *span))
    }

    /// Whether the source sets the attribute.
    pub fn has_attr(&self, name: &str) -> bool {
        self.attr_spans.iter().any(|(k, _)| **k == *name)
    }

    /// The attributes set in the source, by name.
    pub fn attrs(&self) -> impl Iterator<Item = (&Arc<str>, &Value, Span)> {
        self.attr_spans.iter().filter_map(|(k, span)| Some((k, self.attr(k)?.0, *span)))
    }
}

/// A component instance: its id, value (params, `name` and members) and where it was
/// declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluatedInstance {
    pub id: String,
    pub component: String,
    pub name: String,
    pub value: Value,
    /// The instance it is a member of, when nested.
    pub parent: Option<String>,
    /// Every resource of the instance, nested ones included.
    pub members: Vec<String>,
    pub origin: Origin,
    pub span: Span,
    pub name_span: Span,
    /// Where it and the instances around it were declared, outermost first (itself last).
    pub sites: Vec<InstanceSite>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EvalResources {
    pub resources: Vec<EvaluatedResource>,
    /// Rare, as the diagnostics are: a `ThinVec` is one pointer when empty.
    pub instances: ThinVec<EvaluatedInstance>,
    /// The item's diagnostics: its lowering's, then its evaluation's. A compile reads them
    /// here, not from the lowering, whose IR a stack compiled once releases after evaluation
    /// (see `Database::lower`).
    pub diags: ThinVec<Diag>,
    /// Evaluation ran into itself (a dependency cycle).
    pub cyclic: bool,
}

fn resources_cycle(db: &dyn Db, _id: salsa::Id, item: Item) -> EvalResources {
    EvalResources {
        cyclic: true,
        diags: lower_item(db, item).diags.iter().cloned().collect(),
        ..EvalResources::default()
    }
}

#[salsa::tracked(returns(ref), cycle_result = resources_cycle)]
pub fn eval_resources(db: &dyn Db, item: Item) -> EvalResources {
    let lowered = lower_item(db, item);
    let LoweredKind::Resources { body, slots } = &lowered.kind else {
        return EvalResources { diags: lowered.diags.iter().cloned().collect(), ..EvalResources::default() };
    };
    let env = CompilerEnv::new(db);
    let poisoned = !lowered.diags.is_empty();
    let limits = crate::graph::stack_settings(db).settings.limits;
    let origin = origin(db, item);
    let mut run = Run {
        db,
        env: &env,
        checker: Evaluator::new(&NullEnv, origin.clone(), 1),
        origin,
        out: EvalResources { diags: lowered.diags.iter().cloned().collect(), ..EvalResources::default() },
        poisoned,
        limits,
        stopped: false,
        prefix: String::new(),
        sites: Vec::new(),
        attrs: Attrs::new(),
        inherit: Inherited::default(),
    };
    let mut ev = Evaluator::new(&env, run.origin.clone(), *slots).with_limits(limits);
    run.gens(body, &mut ev);
    // Kept for the whole compilation, one per item: most items declare one resource, and a
    // vector grown by pushing holds room for four.
    run.out.resources.shrink_to_fit();
    run.out.instances.shrink_to_fit();
    run.out.diags.shrink_to_fit();
    run.out
}

/// A resource's attributes while it is evaluated.
type Attrs = iade_intent::VecMap<Arc<str>, (Value, Span)>;

struct Run<'a> {
    db: &'a dyn Db,
    env: &'a CompilerEnv<'a>,
    /// Evaluates fields' constraints, for every resource of the item in turn.
    checker: Evaluator<'static>,
    origin: Origin,
    out: EvalResources,
    /// The item has compile errors: a field it leaves unset may be one it meant to set (a
    /// misspelt `mod`), so it is not "unmanaged" but poisoned, and checks on it stay quiet.
    poisoned: bool,
    limits: iade_intent::Limits,
    /// A limit was reached: nothing more is generated.
    stopped: bool,
    /// The id prefix of the instance being evaluated (`vhost.api/`), or empty.
    prefix: String,
    /// The instances being evaluated, outermost first.
    sites: Vec<InstanceSite>,
    /// The attributes of the resource being evaluated, with where each was set; one buffer
    /// for every resource of the item.
    attrs: Attrs,
    /// What the instances around apply to every member.
    inherit: Inherited,
}

/// Meta-attributes of the instances around a member, applied to it.
#[derive(Clone, Debug, Default)]
struct Inherited {
    /// What the instances' params were computed from: every member depends on it.
    refs: Vec<(Arc<str>, Span)>,
    after: Vec<(Arc<str>, Span)>,
    notify: Vec<(Arc<str>, Span)>,
    manage: Option<iade_intent::Manage>,
    provider: Option<String>,
    protect: bool,
}

impl Run<'_> {
    fn error(&mut self, e: EvalError) {
        // A limit reached stops the item: every later step would only report it again.
        self.stopped |= e.limit.is_some();
        self.out.diags.push(eval_error(e));
    }

    /// Whether this item already declares more resources than the stack may: generation stops
    /// there (the stack-wide count reports it).
    fn full(&self) -> bool {
        self.stopped || self.out.resources.len() > self.limits.resources
    }

    fn gens(&mut self, gens: &[Gen], ev: &mut Evaluator<'_>) {
        for g in gens {
            if self.full() {
                return;
            }
            match g {
                Gen::Resource(r) => self.resource(r, ev),
                Gen::Instance(i) => self.instance(i, ev),
                Gen::Let { slot, value } => match ev.eval(value) {
                    Ok(v) => ev.set_local(*slot, v),
                    Err(e) => {
                        self.error(e);
                        ev.set_local(*slot, Value::unknown("this value has an error"));
                    }
                },
                Gen::If { cond, then, otherwise } => match ev.eval(cond) {
                    Ok(Value::Bool(true)) => self.gens(then, ev),
                    Ok(Value::Bool(false)) => self.gens(otherwise, ev),
                    Ok(Value::Unknown(u)) => self.out.diags.push(
                        Diag::new(codes::E0207, "the condition of this `if` is not known before observation")
                            .primary(&self.origin, cond.span, format!("unknown: {}", u.reason))
                            .help("resources must be decided from the source and params alone"),
                    ),
                    Ok(other) => self.out.diags.push(
                        Diag::new(
                            codes::E0201,
                            format!("a condition is a bool, not {}", iade_intent::ty::describe(&other)),
                        )
                        .primary(&self.origin, cond.span, "not a bool"),
                    ),
                    Err(e) => self.error(e),
                },
                Gen::For { key, slot, iter, body } => match ev.eval(iter) {
                    Ok(Value::List(items)) => {
                        for v in items.iter() {
                            if self.full() {
                                break;
                            }
                            ev.set_local(*slot, v.clone());
                            self.gens(body, ev);
                        }
                    }
                    Ok(Value::Record(entries)) => {
                        for (k, v) in entries.iter() {
                            match key {
                                Some(key) => {
                                    ev.set_local(*key, Value::str(k.as_str()));
                                    ev.set_local(*slot, v.clone());
                                }
                                None => ev.set_local(*slot, Value::str(k.as_str())),
                            }
                            self.gens(body, ev);
                        }
                    }
                    Ok(Value::Unknown(u)) => self.out.diags.push(
                        Diag::new(
                            codes::E0207,
                            "what this `for` iterates over is not known before observation",
                        )
                        .primary(&self.origin, iter.span, format!("unknown: {}", u.reason))
                        .help("resources must be decided from the source and params alone"),
                    ),
                    Ok(other) => self.out.diags.push(
                        Diag::new(
                            codes::E0201,
                            format!("`for` needs a list or a map, not {}", iade_intent::ty::describe(&other)),
                        )
                        .primary(&self.origin, iter.span, "not a list or map"),
                    ),
                    Err(e) => self.error(e),
                },
            }
        }
    }

    /// A generated name, checked: a plain string of `[A-Za-z0-9_-]`.
    fn gen_name(&mut self, name: &ResName, ev: &mut Evaluator<'_>) -> Option<String> {
        match name {
            ResName::Static(n) => Some(n.clone()),
            ResName::Dynamic(ir) => match ev.eval(ir) {
                Ok(Value::Str(s)) => {
                    if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                        self.out.diags.push(
                            Diag::new(codes::E0206, format!("invalid resource name \"{s}\""))
                                .primary(&self.origin, ir.span, "evaluates to this name")
                                .help("generated names may use only A-Z a-z 0-9 _ - (and may not be empty)"),
                        );
                        return None;
                    }
                    Some(s.to_string())
                }
                Ok(Value::Secret(_)) => {
                    self.out.diags.push(
                        Diag::new(codes::E0206, "a resource name may not be built from a secret")
                            .primary(&self.origin, ir.span, "built from a secret")
                            .help("names appear in plans and logs; use a plain value"),
                    );
                    None
                }
                Ok(other) => {
                    self.out.diags.push(
                        Diag::new(
                            codes::E0206,
                            format!("a resource name is a string, not {}", iade_intent::ty::describe(&other)),
                        )
                        .primary(&self.origin, ir.span, "not a known string"),
                    );
                    None
                }
                Err(e) => {
                    self.error(e);
                    None
                }
            },
        }
    }

    /// The kind's `require` checks over the resource's fields; a check that reads an unset
    /// field (or one not known yet) decides nothing here.
    fn kind_checks(&mut self, schema: &KindSchema, res: &EvaluatedResource, attrs: &Attrs) {
        for check in &schema.checks {
            let mut cev = Evaluator::new(&NullEnv, self.origin.clone(), schema.fields.len() as u32);
            for (i, f) in schema.fields.iter().enumerate() {
                let v = match (attrs.get(&f.name), &f.default) {
                    (Some((v, _)), _) => v.clone(),
                    (None, Some(d)) => d.clone(),
                    (None, None) => Value::unknown(format!("`{}` is not set", f.name)),
                };
                cev.set_local(i as u32, v);
            }
            if let Ok(Value::Bool(false)) = cev.eval(&check.cond) {
                let message = match check.message.as_ref().map(|m| cev.eval(m)) {
                    Some(Ok(Value::Str(m))) => m.to_string(),
                    _ => format!("`{}` does not hold", check.text),
                };
                self.out.diags.push(
                    Diag::new(codes::E0203, format!("`{}`: {message}", res.id))
                        .primary(&self.origin, res.name_span, message)
                        .help(format!("kind `{}` requires `{}`", schema.name, check.text)),
                );
            }
        }
    }

    fn resource(&mut self, r: &ResourceIr, ev: &mut Evaluator<'_>) {
        let Some(schema) = kind_schema(self.db, r.kind) else { return };
        let errors_before = self.out.diags.len();
        let Some(name) = self.gen_name(&r.name, ev) else { return };
        ev.take_refs();
        self.env.global_refs.borrow_mut().clear();
        // `PREFIX KIND.NAME`, written after the prefix and cut back: one allocation, the id's.
        let prefix = self.prefix.len();
        self.prefix.push_str(&schema.name);
        self.prefix.push('.');
        self.prefix.push_str(&name);
        let id = Arc::from(self.prefix.as_str());
        self.prefix.truncate(prefix);
        let mut res = EvaluatedResource {
            id,
            kind: schema.name.clone(),
            kind_item: r.kind,
            name_len: name.len() as u32,
            attr_spans: Box::default(),
            value: Value::Null,
            refs: ThinVec::new(),
            after: ThinVec::new(),
            manage: iade_intent::Manage::Enforce,
            provider: None,
            provider_type: schema.provider.clone(),
            origin: self.origin.clone(),
            span: r.span,
            name_span: r.name_span,
            notify: ThinVec::new(),
            protect: false,
            instance: self.sites.last().map(|s| s.id.clone()),
            sites: self.sites.iter().cloned().collect(),
        };
        // Taken for the resource (an instance's members are evaluated from inside an instance's
        // evaluation), and given back for the next.
        let mut attrs = std::mem::take(&mut self.attrs);
        attrs.clear();
        let reader = self.env.reader.replace(Some(res.id.clone()));
        self.body(&schema, &r.body, ev, &mut res, &mut attrs);
        self.env.reader.replace(reader);
        self.apply_inherited(&mut res);
        self.kind_checks(&schema, &res, &attrs);
        for group in &schema.exclusive {
            let set: Vec<&str> =
                group.iter().map(String::as_str).filter(|f| attrs.contains_key(*f)).collect();
            if let [first, second, ..] = set.as_slice() {
                let span = attrs.get(*second).map_or(r.name_span, |(_, s)| *s);
                let first_span = attrs.get(*first).map_or(r.name_span, |(_, s)| *s);
                self.out.diags.push(
                    Diag::new(
                        codes::E0209,
                        format!("`{first}` and `{second}` of `{}` exclude each other", res.id),
                    )
                    .primary(&self.origin, span, format!("`{second}` set here"))
                    .secondary(&self.origin, first_span, format!("`{first}` set here"))
                    .help(format!(
                        "a {} takes at most one of {}",
                        schema.name,
                        group.join(", ")
                    )),
                );
            }
        }
        let refs = ev.take_refs();
        res.refs.extend(refs);
        // References made through a `let` are dependencies too.
        for id in std::mem::take(&mut *self.env.global_refs.borrow_mut()) {
            res.refs.push((id, r.name_span));
        }
        res.refs.retain(|(id, _)| *id != res.id);
        let poisoned = self.poisoned || errors_before < self.out.diags.len();
        // Attributes are keyed by the schema's own names (see `body`), so a field is found by
        // comparing pointers, not text; keys from another copy of the schema are compared as text.
        let shared = attrs.keys().all(|k| schema.fields.iter().any(|f| Arc::ptr_eq(&f.name, k)));
        let attr = |f: &iade_intent::FieldSchema| {
            if shared {
                attrs.iter().find(|(k, _)| Arc::ptr_eq(k, &f.name)).map(|(_, v)| v)
            } else {
                attrs.get(&*f.name)
            }
        };
        // Made to size: kept for the whole compilation, and a kind has more fields than a
        // resource sets.
        let count =
            schema.fields.iter().filter(|f| poisoned || f.default.is_some() || attr(f).is_some()).count();
        let mut fields = iade_intent::VecMap::with_capacity(count);
        for f in &schema.fields {
            match (attr(f), &f.default) {
                (Some((v, _)), _) => {
                    fields.insert(f.name.clone(), v.clone());
                }
                (None, Some(d)) => {
                    fields.insert(f.name.clone(), d.clone());
                }
                (None, None) if poisoned => {
                    fields.insert(f.name.clone(), Value::unknown(iade_intent::eval::POISONED));
                }
                (None, None) => {}
            }
        }
        res.attr_spans = attrs.iter().map(|(k, (_, span))| (k.clone(), *span)).collect();
        self.attrs = attrs;
        let schema_fields = kind_fields(self.db, r.kind).clone();
        res.value = Value::Resource(Arc::new(ResourceValue {
            id: res.id.clone(),
            kind: res.kind.clone(),
            fields,
            schema: schema_fields,
        }));
        self.env.local.borrow_mut().insert(res.id.clone(), res.value.clone());
        self.out.resources.push(res);
    }

    fn body(
        &mut self,
        schema: &KindSchema,
        body: &[BodyStmt],
        ev: &mut Evaluator<'_>,
        res: &mut EvaluatedResource,
        attrs: &mut Attrs,
    ) {
        for stmt in body {
            match stmt {
                BodyStmt::Attr { name, value, span } => {
                    let Some(field) = schema.field(name) else { continue };
                    let v = match ev.eval(value) {
                        Ok(v) => v,
                        Err(e) => {
                            self.error(e);
                            continue;
                        }
                    };
                    let v = match field.ty.check(&v) {
                        Ok(v) => v,
                        Err(m) => {
                            self.out.diags.push(
                                Diag::new(codes::E0201, format!("`{name}` of `{}`: {m}", res.id))
                                    .primary(&self.origin, value.span, format!("expected {}", field.ty))
                                    .help(type_help(&field.ty)),
                            );
                            continue;
                        }
                    };
                    let v = match (&field.ty, &v) {
                        (iade_intent::Ty::Source, Value::Str(rel)) => {
                            let Some(file) = self.db.file_by_id(self.origin.file) else { continue };
                            let full = crate::scope::join_relative(file.path(self.db), rel);
                            if let Err(m) = self.db.probe_file(&full) {
                                self.out.diags.push(
                                    Diag::new(codes::E0219, format!("cannot read the source of `{}`", res.id))
                                        .primary(&self.origin, value.span, m)
                                        .help("a source is a file of the stack, named relative to the file that declares it"),
                                );
                                continue;
                            }
                            Value::str(full)
                        }
                        _ => v,
                    };
                    if field.role == iade_intent::FieldRole::Identity && v.contains_secret() {
                        self.out.diags.push(
                            Diag::new(codes::E0210, format!("the identity `{name}` of `{}` is built from a secret", res.id))
                                .primary(&self.origin, value.span, "a secret in an identity")
                                .help("an identity names the object in plans and history: build it from plain values"),
                        );
                        continue;
                    }
                    if let (Some(c), false) = (&field.constraint, v.is_unknown()) {
                        // Each check has the whole budget, as a check of its own would.
                        self.checker.set_fuel(iade_intent::Limits::default().steps);
                        self.checker.set_local(0, v.clone());
                        if let Ok(Value::Bool(false)) = self.checker.eval(c) {
                            let text = field.constraint_text.clone().unwrap_or_default();
                            self.out.diags.push(
                                Diag::new(codes::E0203, format!("`{name}` is {v}, which breaks `{text}`"))
                                    .primary(&self.origin, value.span, format!("{name} is {v}"))
                                    .help(format!("kind `{}` requires `{text}`", schema.name)),
                            );
                            continue;
                        }
                    }
                    attrs.insert(field.name.clone(), (v, *span));
                }
                BodyStmt::Notify(ir) => {
                    let mut targets = Vec::new();
                    self.resource_list(ev, ir, &mut res.refs, &mut targets, "notify");
                    res.notify.extend(targets);
                }
                BodyStmt::Protect(p) => res.protect = *p,
                BodyStmt::After(ir) => match eval_after(self.db, ev, ir, &mut res.refs) {
                    Ok(Value::List(items)) => {
                        for v in items.iter() {
                            match v {
                                Value::Resource(r) => res.after.push((r.id.clone(), ir.span)),
                                Value::Unknown(_) => {}
                                other => self.out.diags.push(
                                    Diag::new(
                                        codes::E0304,
                                        format!(
                                            "`after` lists resources, not {}",
                                            iade_intent::ty::describe(other)
                                        ),
                                    )
                                    .primary(&self.origin, ir.span, "not a resource")
                                    .help("write resources: after = [file.config, exec.migrate]"),
                                ),
                            }
                        }
                    }
                    Ok(Value::Resource(r)) => res.after.push((r.id.clone(), ir.span)),
                    Ok(other) => self.out.diags.push(
                        Diag::new(
                            codes::E0304,
                            format!(
                                "`after` is a list of resources, not {}",
                                iade_intent::ty::describe(&other)
                            ),
                        )
                        .primary(&self.origin, ir.span, "not a list of resources")
                        .help("write resources: after = [file.config, exec.migrate]"),
                    ),
                    Err(e) => self.error(e),
                },
                BodyStmt::Manage(m) => res.manage = *m,
                BodyStmt::Provider(p) => res.provider = Some(p.clone()),
                BodyStmt::Let { slot, value } => match ev.eval(value) {
                    Ok(v) => ev.set_local(*slot, v),
                    Err(e) => self.error(e),
                },
                BodyStmt::If { cond, then, otherwise } => match ev.eval(cond) {
                    Ok(Value::Bool(true)) => self.body(schema, then, ev, res, attrs),
                    Ok(Value::Bool(false)) => self.body(schema, otherwise, ev, res, attrs),
                    // Unknown through an error reported already.
                    Ok(Value::Unknown(u)) if u.reason.contains(iade_intent::eval::POISONED) => {}
                    Ok(_) => self.out.diags.push(
                        Diag::new(codes::E0207, "the condition of this `if` is not a known bool")
                            .primary(&self.origin, cond.span, "not a known bool")
                            .help("attributes must be decided from the source and params alone"),
                    ),
                    Err(e) => self.error(e),
                },
            }
        }
    }
}

impl Run<'_> {
    /// Evaluates a list of resources (`notify`): their ids, with the list's span.
    fn resource_list(
        &mut self,
        ev: &mut Evaluator<'_>,
        ir: &Ir,
        refs: &mut ThinVec<(Arc<str>, Span)>,
        out: &mut Vec<(Arc<str>, Span)>,
        what: &str,
    ) {
        let items = match eval_after(self.db, ev, ir, refs) {
            Ok(Value::List(items)) => items.iter().cloned().collect::<Vec<_>>(),
            Ok(v @ Value::Resource(_)) => vec![v],
            Ok(Value::Unknown(_)) => Vec::new(),
            Ok(other) => {
                self.out.diags.push(
                    Diag::new(
                        codes::E0304,
                        format!("`{what}` is a list of resources, not {}", iade_intent::ty::describe(&other)),
                    )
                    .primary(&self.origin, ir.span, "not a list of resources")
                    .help(format!("write resources: {what} = [exec.reload_nginx]")),
                );
                return;
            }
            Err(e) => return self.error(e),
        };
        for v in items {
            match v {
                Value::Resource(r) => out.push((r.id.clone(), ir.span)),
                Value::Unknown(_) => {}
                other => self.out.diags.push(
                    Diag::new(
                        codes::E0304,
                        format!("`{what}` lists resources, not {}", iade_intent::ty::describe(&other)),
                    )
                    .primary(&self.origin, ir.span, "not a resource")
                    .help(format!("write resources: {what} = [exec.reload_nginx]")),
                ),
            }
        }
    }

    /// Applies what the instances around a member set for all of their members.
    fn apply_inherited(&self, res: &mut EvaluatedResource) {
        let inherit = &self.inherit;
        for r in &inherit.refs {
            if !res.refs.contains(r) {
                res.refs.push(r.clone());
            }
        }
        for a in &inherit.after {
            if !res.after.contains(a) {
                res.after.push(a.clone());
            }
        }
        for n in &inherit.notify {
            if !res.notify.contains(n) {
                res.notify.push(n.clone());
            }
        }
        if let Some(m) = inherit.manage {
            res.manage = m;
        }
        if res.provider.is_none() {
            res.provider.clone_from(&inherit.provider);
        }
        res.protect |= inherit.protect;
    }

    /// `vhost api { port = 8080 }`: evaluates the component's body for this instance.
    fn instance(&mut self, inst: &InstanceIr, ev: &mut Evaluator<'_>) {
        let Some(name) = self.gen_name(&inst.name, ev) else { return };
        let id = format!("{}{}.{name}", self.prefix, inst.component_name);
        if self.sites.len() >= MAX_INSTANCE_DEPTH {
            self.stopped = true;
            let chain: Vec<&str> = self.sites.iter().map(|s| s.id.as_str()).collect();
            self.out.diags.push(
                Diag::new(codes::E0215, format!("instances nest more than {MAX_INSTANCE_DEPTH} deep"))
                    .primary(
                        &self.origin,
                        inst.name_span,
                        format!("instance {} levels deep", self.sites.len() + 1),
                    )
                    .help(format!(
                        "component `{}` contains itself (first through `{}`); remove the instance that closes the loop",
                        inst.component_name,
                        chain.first().copied().unwrap_or_default()
                    )),
            );
            return;
        }
        let LoweredKind::Component(comp) = &lower_item(self.db, inst.component).kind else { return };
        let comp = comp.clone();
        let comp_origin = origin(self.db, inst.component);
        let comp_poisoned = !lower_item(self.db, inst.component).diags.is_empty();
        // Params, in the instance's evaluator.
        ev.take_refs();
        self.env.global_refs.borrow_mut().clear();
        let mut given: BTreeMap<&str, Value> = BTreeMap::new();
        for (pname, value, span) in &inst.args {
            let Some(param) = comp.params.iter().find(|p| p.name == *pname) else { continue };
            match ev.eval(value) {
                Ok(v) => match param.ty.check(&v) {
                    Ok(v) => {
                        given.insert(pname.as_str(), v);
                    }
                    Err(m) => {
                        self.out.diags.push(
                            Diag::new(codes::E0201, format!("param `{pname}` of `{id}`: {m}"))
                                .primary(&self.origin, value.span, format!("expected {}", param.ty))
                                .secondary(
                                    &comp_origin,
                                    param.span,
                                    format!("`{pname}` is declared {}", param.ty),
                                )
                                .help(type_help(&param.ty)),
                        );
                        given.insert(pname.as_str(), Value::unknown(iade_intent::eval::POISONED));
                    }
                },
                Err(e) => {
                    self.error(e);
                    given.insert(pname.as_str(), Value::unknown(iade_intent::eval::POISONED));
                }
            }
            let _ = span;
        }
        // Meta-attributes for every member, in the instance's evaluator.
        let mut meta = EvaluatedResource {
            id: Arc::from(id.as_str()),
            kind: Arc::from(inst.component_name.as_str()),
            kind_item: inst.component,
            name_len: name.len() as u32,
            attr_spans: Box::default(),
            value: Value::Null,
            refs: ThinVec::new(),
            after: ThinVec::new(),
            manage: iade_intent::Manage::Enforce,
            provider: None,
            provider_type: None,
            origin: self.origin.clone(),
            span: inst.span,
            name_span: inst.name_span,
            notify: ThinVec::new(),
            protect: false,
            instance: None,
            sites: ThinVec::new(),
        };
        let empty = KindSchema {
            name: Arc::from(inst.component_name.as_str()),
            module: Arc::from(""),
            provider: None,
            fields: Vec::new(),
            doc: None,
            refreshable: false,
            exclusive: Vec::new(),
            checks: Vec::new(),
        };
        self.body(&empty, &inst.meta, ev, &mut meta, &mut Attrs::new());
        let mut inherit = self.inherit.clone();
        inherit.refs.extend(ev.take_refs());
        inherit.refs.extend(meta.refs.iter().cloned());
        for id in std::mem::take(&mut *self.env.global_refs.borrow_mut()) {
            inherit.refs.push((id, inst.name_span));
        }
        inherit.after.extend(meta.after.iter().cloned());
        inherit.notify.extend(meta.notify.iter().cloned());
        if inst.meta.iter().any(|m| matches!(m, BodyStmt::Manage(_))) {
            inherit.manage = Some(meta.manage);
        }
        if meta.provider.is_some() {
            inherit.provider = meta.provider.clone();
        }
        inherit.protect |= meta.protect;
        // The component's body, in an evaluator of its own.
        let prefix = format!("{id}/");
        let mut inner = Evaluator::new(self.env, comp_origin.clone(), comp.slots)
            .with_limits(self.limits)
            .with_instance(&prefix)
            .with_fuel(ev.fuel());
        inner.set_local(comp.name_slot, Value::str(name.as_str()));
        let mut params = BTreeMap::new();
        for (i, p) in comp.params.iter().enumerate() {
            let v =
                match given.remove(p.name.as_str()) {
                    Some(v) => v,
                    None => match &p.default {
                        Some(d) => match inner.eval(d) {
                            Ok(v) => match p.ty.check(&v) {
                                Ok(v) => v,
                                Err(m) => {
                                    self.out.diags.push(
                                        Diag::new(codes::E0201, format!("default of `{}`: {m}", p.name))
                                            .primary(&comp_origin, d.span, format!("expected {}", p.ty)),
                                    );
                                    Value::unknown(iade_intent::eval::POISONED)
                                }
                            },
                            Err(e) => {
                                self.error(e);
                                Value::unknown(iade_intent::eval::POISONED)
                            }
                        },
                        // Reported where the instance is lowered (E0213).
                        None => Value::unknown(iade_intent::eval::POISONED),
                    },
                };
            inner.set_local(comp.name_slot + 1 + i as u32, v.clone());
            params.insert(p.name.clone(), v);
        }
        let site = InstanceSite { id: id.clone(), origin: self.origin.clone(), span: inst.name_span };
        let diags_before = self.out.diags.len();
        let resources_before = self.out.resources.len();
        let instances_before = self.out.instances.len();
        let saved_origin = std::mem::replace(&mut self.origin, comp_origin.clone());
        let saved_prefix = std::mem::replace(&mut self.prefix, prefix.clone());
        let saved_inherit = std::mem::replace(&mut self.inherit, inherit);
        let saved_poisoned = self.poisoned;
        self.poisoned |= comp_poisoned;
        self.sites.push(site.clone());
        self.gens(&comp.body, &mut inner);
        let sites = self.sites.clone();
        self.sites.pop();
        self.poisoned = saved_poisoned;
        self.inherit = saved_inherit;
        self.prefix = saved_prefix;
        self.origin = saved_origin;
        ev.set_fuel(inner.fuel());
        // What went wrong inside says which instance it was evaluated for.
        for d in &mut self.out.diags[diags_before..] {
            if d.code != codes::E0215 && d.labels.iter().any(|l| l.origin == comp_origin) {
                *d = std::mem::replace(d, Diag::new(d.code, String::new())).secondary(
                    &site.origin,
                    site.span,
                    format!("in instance `{id}`"),
                );
            }
        }
        // The instance's value: its params, `name`, and its direct members.
        let mut fields: iade_intent::VecMap<Arc<str>, Value> =
            params.into_iter().map(|(k, v)| (Arc::from(k), v)).collect();
        fields.insert("name".into(), Value::str(name.as_str()));
        let mut members = Vec::new();
        for r in &self.out.resources[resources_before..] {
            members.push(r.id.to_string());
            if let Some(rest) = r.id.strip_prefix(&prefix)
                && !rest.contains('/')
            {
                fields.insert(Arc::from(r.name()), r.value.clone());
            }
        }
        for i in &self.out.instances[instances_before..] {
            if let Some(rest) = i.id.strip_prefix(&prefix)
                && !rest.contains('/')
            {
                fields.insert(Arc::from(i.name.as_str()), i.value.clone());
            }
        }
        let schema: Vec<(String, iade_intent::FieldRole)> =
            fields.keys().map(|k| (k.to_string(), iade_intent::FieldRole::Desired)).collect();
        let value = Value::Resource(Arc::new(ResourceValue {
            id: Arc::from(id.as_str()),
            kind: Arc::from(inst.component_name.as_str()),
            fields,
            schema: Arc::new(schema),
        }));
        self.env.local.borrow_mut().insert(Arc::from(id.as_str()), value.clone());
        self.out.instances.push(EvaluatedInstance {
            id,
            component: inst.component_name.clone(),
            name,
            value,
            parent: self.sites.last().map(|s| s.id.clone()),
            members,
            origin: self.origin.clone(),
            span: inst.span,
            name_span: inst.name_span,
            sites,
        });
    }
}

/// Evaluates an `after` list. Its entries are ordering edges of their own kind, not
/// references: the references made before it are kept, its own are dropped.
fn eval_after(
    db: &dyn Db,
    ev: &mut Evaluator<'_>,
    ir: &Ir,
    refs: &mut ThinVec<(Arc<str>, Span)>,
) -> Result<Value, EvalError> {
    refs.extend(ev.take_refs());
    if let Some(named) = declared_resources(db, ir) {
        return Ok(named);
    }
    let v = ev.eval(ir);
    ev.take_refs();
    v
}

/// The usual `after` and `notify`: a declared resource or a list of them
/// (`after = [file.config, exec.migrate]`), read without evaluating them. Ordering needs only
/// their ids; evaluating each made a cycle of `after`s a cycle of queries, and 10,000 resources
/// in one cycle took 5 s and 1.2 GB before the cycle was reported. The values hold the ids
/// alone (no fields): nothing else reads them. `None` for any other expression, or a resource
/// not declared with a fixed name: those are evaluated.
fn declared_resources(db: &dyn Db, ir: &Ir) -> Option<Value> {
    let index = crate::graph::static_index(db);
    let named = |ir: &Ir| match &ir.kind {
        IrKind::Resource(id) if index.contains_key(id) => Some(Value::Resource(Arc::new(ResourceValue {
            id: id.clone(),
            // Read by nothing: for an instance (`vhost.api`), its component.
            kind: Arc::from(id.split_once('.').map_or(&**id, |(kind, _)| kind)),
            fields: iade_intent::VecMap::new(),
            schema: Arc::default(),
        }))),
        _ => None,
    };
    match &ir.kind {
        IrKind::List(items) => {
            Some(Value::List(items.iter().map(named).collect::<Option<Vec<Value>>>()?.into()))
        }
        _ => named(ir),
    }
}

fn type_help(ty: &Ty) -> String {
    match ty {
        Ty::Mode => "a mode is an integer, usually octal: 0o644".into(),
        Ty::Enum(m) => format!("one of: {}", m.join(", ")),
        Ty::Path | Ty::String => "write a string: \"…\"".into(),
        _ => format!("give a value of type {ty}"),
    }
}

/// A kind's fields and their roles, shared by every resource value of the kind.
#[salsa::tracked(returns(ref))]
pub fn kind_fields(db: &dyn Db, kind: Item) -> Arc<Vec<(String, FieldRole)>> {
    let fields = kind_schema(db, kind)
        .map(|s| s.fields.iter().map(|f| (f.name.to_string(), f.role)).collect())
        .unwrap_or_default();
    Arc::new(fields)
}

/// The values of an item's resources, without where they were declared: what other resources
/// and policies read, so an edit that only moves text inside an item stops here.
#[salsa::tracked(returns(ref))]
pub fn resource_values(db: &dyn Db, item: Item) -> Vec<(Arc<str>, Value)> {
    let out = eval_resources(db, item);
    out.resources
        .iter()
        .map(|r| (r.id.clone(), r.value.clone()))
        .chain(out.instances.iter().map(|i| (Arc::from(i.id.as_str()), i.value.clone())))
        .collect()
}

/// The values of an item's resources and instances, by id, in `resource_values`' order: read
/// through that query, or in a database that compiles once straight from the item's
/// evaluation. Nothing is edited there, so a query per item that stops edits at values would
/// only cost its recording.
pub(crate) fn values_in<'db>(
    db: &'db dyn Db,
    item: Item,
) -> impl Iterator<Item = (&'db str, &'db Value)> + 'db {
    let (memo, direct) = if db.once() {
        (None, Some(evaluated_values(db, item)))
    } else {
        (Some(resource_values(db, item)), None)
    };
    let memo = memo.into_iter().flatten().map(|(id, v)| (&**id, v));
    memo.chain(direct.into_iter().flatten())
}

/// [`values_in`] straight from the item's evaluation in every database: for a reader that
/// costs less to run again than a query per item costs to check after every edit (a policy's
/// slice of one item).
pub(crate) fn evaluated_values(db: &dyn Db, item: Item) -> impl Iterator<Item = (&str, &Value)> + '_ {
    let e = eval_resources(db, item);
    e.resources
        .iter()
        .map(|r| (&*r.id, &r.value))
        .chain(e.instances.iter().map(|i| (i.id.as_str(), &i.value)))
}

/// Runs `evaluate`, an evaluation of another item, with room for it on the stack. Evaluation
/// recurses through what items refer to: a resource that refers to one declared after it,
/// which refers to one after that, thousands deep, took a few kilobytes of stack per level and
/// overflowed a thread's stack at about 300. The stack grows instead, by segments.
fn deep<R>(evaluate: impl FnOnce() -> R) -> R {
    const ROOM: usize = 256 * 1024;
    const SEGMENT: usize = 8 * 1024 * 1024;
    stacker::maybe_grow(ROOM, SEGMENT, evaluate)
}

fn find_value(db: &dyn Db, id: &str) -> Option<Value> {
    let index = crate::graph::static_index(db);
    // A member of an instance is stored with its outermost instance (`vhost.api/file.conf`).
    let top = id.split('/').next().unwrap_or(id);
    if let Some(item) = index.get(top) {
        return deep(|| values_in(db, *item).find(|(i, _)| *i == id).map(|(_, v)| v.clone()));
    }
    for item in crate::graph::generator_items(db) {
        if let Some(v) = deep(|| values_in(db, *item).find(|(i, _)| *i == id).map(|(_, v)| v.clone())) {
            return Some(v);
        }
    }
    None
}

/// The evaluated resource with this id, wherever it is declared.
pub(crate) fn find_resource(db: &dyn Db, id: &str) -> Option<EvaluatedResource> {
    let index = crate::graph::static_index(db);
    let top = id.split('/').next().unwrap_or(id);
    if let Some(item) = index.get(top) {
        return eval_resources(db, *item).resources.iter().find(|r| *r.id == *id).cloned();
    }
    for item in crate::graph::generator_items(db) {
        if let Some(r) = eval_resources(db, *item).resources.iter().find(|r| *r.id == *id) {
            return Some(r.clone());
        }
    }
    None
}

/// The id of a resource or component instance declared with a fixed name, the kind of a
/// resource item found by `kind_of` (through its query, or straight from the scope where a
/// query per item would cost more than it saves).
pub(crate) fn static_id(
    db: &dyn Db,
    item: Item,
    kind_of: fn(&dyn Db, Item) -> Option<Item>,
) -> Option<String> {
    let ItemName::Resource { name, .. } = split_name(item.name(db)) else { return None };
    if let Some(kind) = kind_of(db, item) {
        return Some(format!("{}.{name}", crate::lower::kind_name(db, kind)));
    }
    let comp = crate::lower::component::instance_component(db, item)?;
    Some(format!("{}.{name}", crate::lower::component::component_name(db, comp)))
}
