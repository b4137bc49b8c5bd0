//! The one evaluator: expressions, rules, policies and controls.
//!
//! Evaluation is total: every operator is defined on unknown values (they propagate), rule
//! calls nest at most [`MAX_RULE_DEPTH`] deep, and a fuel counter bounds the work one
//! evaluation may do. The evaluator asks its [`Env`] for everything outside the expression:
//! globals, resources and the objects of `intent(kind)` / `observe(kind)`. The compiler's
//! environment answers from intent; the engine's from observation.

use std::collections::BTreeMap;
use std::sync::Arc;

use iade_span::Span;

use crate::ir::{BinOp, Builtin, CheckIr, CheckStmt, Ir, IrKind, ObjectSource, Origin, RuleIr, UnOp};
use crate::value::{SecretPart, SecretValue, Value, format_mode};

/// The reason of the unknown that code with a compile error evaluates to; verdicts that
/// depend on it are not reported again.
pub const POISONED: &str = "an expression it depends on has an error";

/// How deep rule calls may nest; recursion between rules stops here with an error.
pub const MAX_RULE_DEPTH: u32 = 64;
/// The most list elements `range` produces.
pub const MAX_RANGE: i64 = 100_000;
/// How much one evaluation may do, so that no input can exhaust the machine: raised in the
/// stack's settings (`stack NAME { max_steps = … }`) when a real stack needs more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Expression steps one evaluation (one item, one check) may take.
    pub steps: u64,
    /// Bytes in one string.
    pub string_bytes: usize,
    /// Elements in one list.
    pub list_length: usize,
    /// Resources the stack may declare (counted by the compiler).
    pub resources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { steps: 50_000_000, string_bytes: 64 << 20, list_length: 1_000_000, resources: 250_000 }
    }
}

/// Which limit an evaluation reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    Steps,
    StringBytes,
    ListLength,
    Resources,
}

impl Limit {
    /// The `stack` setting that raises it.
    pub fn setting(self) -> &'static str {
        match self {
            Limit::Steps => "max_steps",
            Limit::StringBytes => "max_string_bytes",
            Limit::ListLength => "max_list_length",
            Limit::Resources => "max_resources",
        }
    }
}

/// What the evaluator needs from the world around the expression.
pub trait Env {
    /// The value of a `let` or `param` by qualified name.
    fn global(&self, name: &str) -> Value;
    /// A resource by id; `None` when no such resource exists.
    fn resource(&self, id: &str) -> Option<Value>;
    /// A resource of `kind` by its name (`file["log_access"]`).
    fn resource_by_name(&self, kind: &str, name: &str) -> Option<Value>;
    /// A rule by qualified name.
    fn rule(&self, name: &str) -> Option<Arc<RuleIr>>;
    /// The objects of a kind: intended ones, or observed ones under a path.
    fn objects(&self, source: ObjectSource, kind: &str, under: Option<&str>) -> Result<Vec<Value>, String>;
    /// The contents of a file named relative to the file of `origin`.
    fn include(&self, origin: &Origin, path: &str) -> Result<Value, String>;
    /// A template named relative to the file of `origin`, filled in from `vars`.
    fn template(&self, _origin: &Origin, _path: &str, _vars: &Value) -> Result<Value, TemplateError> {
        Err(TemplateError::Here("templates are filled in by the compiler".into()))
    }
}

/// Why a template could not be filled in: an error inside the template (at its line), or one
/// at the call (the file is missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    At(EvalError),
    Here(String),
}

/// An evaluation error: a message, where it happened, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EvalError {
    pub message: String,
    pub origin: Origin,
    pub span: Span,
    pub help: Option<String>,
    /// The limit this evaluation reached, when that is why it stopped.
    pub limit: Option<Limit>,
}

/// The outcome of one `require`: three, never two.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Pass,
    Fail,
    /// A value the check needs is unknown; the reason says which.
    Unknown(String),
}

/// A sub-expression's value that explains a failure: `f.mode` is `0o666`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Evidence {
    pub text: String,
    pub value: String,
    pub origin: Origin,
    pub span: Span,
}

/// The verdict of one `require` for one subject.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Verdict {
    pub outcome: Outcome,
    /// The `require` statement.
    pub origin: Origin,
    pub span: Span,
    /// The rule the `require` called, with the span of the rule's name.
    pub rule: Option<(Arc<str>, Origin, Span)>,
    /// The resource the verdict is about, when there is one.
    pub subject: Option<Arc<str>>,
    /// The failure message (rule message, `else` message, or a default).
    pub message: Option<String>,
    pub evidence: Vec<Evidence>,
    /// Resource fields the failing condition read: where the intent that failed was declared.
    pub reads: Vec<(Arc<str>, Arc<str>)>,
    /// An evaluation error, reported instead of a verdict on the condition.
    pub error: Option<EvalError>,
}

pub struct Evaluator<'e> {
    env: &'e dyn Env,
    origin: Origin,
    locals: Vec<Value>,
    depth: u32,
    fuel: u64,
    limits: Limits,
    /// Resource fields read since the last `take_reads`.
    reads: Vec<(Arc<str>, Arc<str>)>,
    /// Resource ids referenced since the last `take_refs`: the dependency edges.
    refs: Vec<(Arc<str>, Span)>,
    /// The id prefix of the component instance being evaluated (`vhost.api/`), if any.
    instance: Option<Arc<str>>,
}

impl std::fmt::Debug for Evaluator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator").field("origin", &self.origin).field("depth", &self.depth).finish()
    }
}

type R = Result<Value, EvalError>;

impl<'e> Evaluator<'e> {
    pub fn new(env: &'e dyn Env, origin: Origin, slots: u32) -> Self {
        Evaluator {
            env,
            origin,
            locals: vec![Value::Null; slots as usize],
            depth: 0,
            fuel: Limits::default().steps,
            limits: Limits::default(),
            reads: Vec::new(),
            refs: Vec::new(),
            instance: None,
        }
    }

    /// An evaluator for the body of a component instance whose member ids start with
    /// `prefix` (`vhost.api/`).
    pub fn with_instance(mut self, prefix: &str) -> Self {
        self.instance = Some(Arc::from(prefix));
        self
    }

    /// The steps this evaluator may still take (a nested evaluator continues from here).
    pub fn fuel(&self) -> u64 {
        self.fuel
    }

    /// Takes over the budget a nested evaluator left.
    pub fn set_fuel(&mut self, fuel: u64) {
        self.fuel = fuel;
    }

    /// Continues the budget of another evaluator.
    pub fn with_fuel(mut self, fuel: u64) -> Self {
        self.fuel = fuel;
        self
    }

    /// An evaluator held to `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.fuel = limits.steps;
        self.limits = limits;
        self
    }

    /// The error of a limit reached, naming it and the setting that raises it.
    fn limit(&self, span: Span, limit: Limit, what: String) -> EvalError {
        EvalError {
            message: what,
            origin: self.origin.clone(),
            span,
            help: Some(format!(
                "if the stack really needs more, raise it in its settings: `stack NAME {{ {} = … }}`",
                limit.setting()
            )),
            limit: Some(limit),
        }
    }

    pub fn set_local(&mut self, slot: u32, value: Value) {
        let i = slot as usize;
        if self.locals.len() <= i {
            self.locals.resize(i + 1, Value::Null);
        }
        self.locals[i] = value;
    }

    /// Resources referenced so far, with where (in this evaluator's origin).
    pub fn take_refs(&mut self) -> Vec<(Arc<str>, Span)> {
        std::mem::take(&mut self.refs)
    }

    fn error(&self, span: Span, message: impl Into<String>) -> EvalError {
        EvalError { message: message.into(), origin: self.origin.clone(), span, help: None, limit: None }
    }

    fn error_help(&self, span: Span, message: impl Into<String>, help: impl Into<String>) -> EvalError {
        EvalError {
            message: message.into(),
            origin: self.origin.clone(),
            span,
            help: Some(help.into()),
            limit: None,
        }
    }

    pub fn eval(&mut self, ir: &Ir) -> R {
        if self.fuel == 0 {
            let steps = self.limits.steps;
            return Err(self.limit(
                ir.span,
                Limit::Steps,
                format!("evaluation took more than {steps} steps"),
            ));
        }
        self.fuel -= 1;
        let v = self.eval_inner(ir)?;
        match &v {
            Value::Str(s) if s.len() > self.limits.string_bytes => Err(self.limit(
                ir.span,
                Limit::StringBytes,
                format!(
                    "this string is {} bytes, more than the limit of {}",
                    s.len(),
                    self.limits.string_bytes
                ),
            )),
            Value::List(items) if items.len() > self.limits.list_length => Err(self.limit(
                ir.span,
                Limit::ListLength,
                format!(
                    "this list has {} elements, more than the limit of {}",
                    items.len(),
                    self.limits.list_length
                ),
            )),
            _ => Ok(v),
        }
    }

    fn eval_inner(&mut self, ir: &Ir) -> R {
        match &ir.kind {
            IrKind::Lit(v) => Ok(v.clone()),
            IrKind::Local(slot) => Ok(self.locals.get(*slot as usize).cloned().unwrap_or(Value::Null)),
            IrKind::Global(name) => Ok(self.env.global(name)),
            IrKind::Resource(id) => {
                self.refs.push((id.clone(), ir.span));
                match self.env.resource(id) {
                    Some(v) => Ok(v),
                    None => Ok(Value::unknown(format!("resource `{id}` has no value"))),
                }
            }
            IrKind::Sibling(rel) => {
                let id: Arc<str> =
                    Arc::from(format!("{}{rel}", self.instance.as_deref().unwrap_or_default()));
                self.refs.push((id.clone(), ir.span));
                match self.env.resource(&id) {
                    Some(v) => Ok(v),
                    None => Ok(Value::unknown(format!("resource `{id}` has no value"))),
                }
            }
            IrKind::Comprehension(c) => self.comprehension(c),
            IrKind::ResourceByName { kind, name, relative } => {
                let name_value = self.eval(name)?;
                let name = match &name_value {
                    Value::Str(s) => s.clone(),
                    Value::Unknown(_) => return Ok(name_value),
                    other => {
                        return Err(self.error(
                            name.span,
                            format!("a resource name is a string, not {}", crate::ty::describe(other)),
                        ));
                    }
                };
                let found = if *relative {
                    self.env
                        .resource(&format!("{}{kind}.{name}", self.instance.as_deref().unwrap_or_default()))
                } else {
                    self.env.resource_by_name(kind, &name)
                };
                match found {
                    Some(v) => {
                        if let Value::Resource(r) = &v {
                            self.refs.push((r.id.clone(), ir.span));
                        }
                        Ok(v)
                    }
                    None => Err(self.error_help(
                        ir.span,
                        format!("no resource `{kind}[\"{name}\"]`"),
                        format!("no `{kind}` resource is named \"{name}\""),
                    )),
                }
            }
            IrKind::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?);
                }
                Ok(Value::list(out))
            }
            IrKind::Record(entries) => {
                let mut out = BTreeMap::new();
                for (k, v) in entries {
                    let value = self.eval(v)?;
                    out.insert(k.clone(), value);
                }
                Ok(Value::record(out))
            }
            IrKind::Interp(parts) => self.interp(parts),
            IrKind::Unary(op, e) => {
                let v = self.eval(e)?;
                self.unary(*op, v, ir.span)
            }
            IrKind::Binary(op, a, b) => self.binary(*op, a, b, ir.span),
            IrKind::Member(e, name) => {
                let v = self.eval(e)?;
                self.member(v, name, ir.span)
            }
            IrKind::Index(e, i) => {
                let v = self.eval(e)?;
                let i = self.eval(i)?;
                self.index(v, i, ir.span)
            }
            IrKind::If(c, a, b) => match self.eval(c)? {
                Value::Bool(true) => self.eval(a),
                Value::Bool(false) => self.eval(b),
                u @ Value::Unknown(_) => Ok(u),
                other => {
                    Err(self
                        .error(c.span, format!("a condition is a bool, not {}", crate::ty::describe(&other))))
                }
            },
            IrKind::Call(b, args) => self.call(*b, args, ir.span),
            IrKind::RuleCall(call) => {
                let mut values = Vec::with_capacity(call.args.len());
                for a in &call.args {
                    values.push(self.eval(a)?);
                }
                Ok(self.run_rule(&call.name, values, ir.span)?.0)
            }
            IrKind::Objects { source, kind, under } => {
                let under = match under {
                    Some(u) => match self.eval(u)? {
                        Value::Str(s) => Some(s),
                        v @ Value::Unknown(_) => return Ok(v),
                        other => {
                            return Err(self.error(
                                u.span,
                                format!("`under` is a path, not {}", crate::ty::describe(&other)),
                            ));
                        }
                    },
                    None => None,
                };
                match self.env.objects(*source, kind, under.as_deref()) {
                    Ok(objects) => Ok(Value::list(objects)),
                    Err(reason) => Ok(Value::unknown(reason)),
                }
            }
            IrKind::Error => Ok(Value::unknown(POISONED)),
        }
    }

    /// Runs a rule; returns its result (`Bool` or unknown) and the frame it ran in.
    fn run_rule(
        &mut self,
        name: &str,
        args: Vec<Value>,
        span: Span,
    ) -> Result<(Value, Option<RuleRun>), EvalError> {
        let Some(rule) = self.env.rule(name) else {
            return Ok((Value::unknown(format!("rule `{name}` has errors")), None));
        };
        if self.depth >= MAX_RULE_DEPTH {
            return Err(self.error_help(
                span,
                format!("rule calls nest deeper than {MAX_RULE_DEPTH}"),
                "rules may not call themselves, directly or through other rules",
            ));
        }
        let mut frame = vec![Value::Null; rule.slots.max(rule.params.len() as u32) as usize];
        for (i, ((pname, ty), v)) in rule.params.iter().zip(args).enumerate() {
            match ty.check(&v) {
                Ok(v) => frame[i] = v,
                Err(e) => {
                    return Err(self.error(span, format!("argument `{pname}` of rule `{}`: {e}", rule.name)));
                }
            }
        }
        let saved_locals = std::mem::replace(&mut self.locals, frame);
        let saved_origin = std::mem::replace(&mut self.origin, rule.origin.clone());
        self.depth += 1;
        let result = self.eval(&rule.body);
        self.depth -= 1;
        let frame = std::mem::replace(&mut self.locals, saved_locals);
        self.origin = saved_origin;
        let value = match result? {
            v @ (Value::Bool(_) | Value::Unknown(_)) => v,
            other => {
                return Err(EvalError {
                    message: format!(
                        "rule `{}` must be a bool, not {}",
                        rule.name,
                        crate::ty::describe(&other)
                    ),
                    origin: rule.origin.clone(),
                    span: rule.body.span,
                    help: None,
                    limit: None,
                });
            }
        };
        Ok((value, Some(RuleRun { rule, frame })))
    }

    fn interp(&mut self, parts: &[Ir]) -> R {
        // Room for the literal parts and as much again: most interpolations grow it once.
        let literal: usize = parts
            .iter()
            .map(|p| match &p.kind {
                IrKind::Lit(Value::Str(s)) => s.len(),
                _ => 0,
            })
            .sum();
        let mut text = String::with_capacity(literal * 2);
        let mut secret: Option<Vec<SecretPart>> = None;
        for part in parts {
            let v = self.eval(part)?;
            match v {
                Value::Unknown(_) => return Ok(v),
                Value::Secret(s) => {
                    let acc = secret.get_or_insert_with(Vec::new);
                    if !text.is_empty() {
                        acc.push(SecretPart::Text(std::mem::take(&mut text)));
                    }
                    acc.extend(s.parts.iter().cloned());
                }
                other => {
                    if !other.push_text(&mut text) {
                        return Err(self.error_help(
                            part.span,
                            format!("cannot interpolate a {} into a string", other.type_name()),
                            "interpolate one of its elements or fields, or use join(list, \", \")",
                        ));
                    }
                }
            }
        }
        match secret {
            Some(mut acc) => {
                if !text.is_empty() {
                    acc.push(SecretPart::Text(text));
                }
                Ok(Value::Secret(Arc::new(SecretValue { parts: acc })))
            }
            None => Ok(Value::str(text)),
        }
    }

    fn unary(&self, op: UnOp, v: Value, span: Span) -> R {
        match (op, v) {
            (_, v @ Value::Unknown(_)) => Ok(v),
            (UnOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
            (UnOp::Neg, Value::Int(i)) => {
                i.checked_neg().map(Value::Int).ok_or_else(|| self.error(span, "integer overflow"))
            }
            (UnOp::Not, other) => {
                Err(self.error(span, format!("`not` needs a bool, not {}", crate::ty::describe(&other))))
            }
            (UnOp::Neg, other) => {
                Err(self.error(span, format!("`-` needs an int, not {}", crate::ty::describe(&other))))
            }
        }
    }

    fn binary(&mut self, op: BinOp, a: &Ir, b: &Ir, span: Span) -> R {
        if matches!(op, BinOp::And | BinOp::Or) {
            return self.logic(op, a, b);
        }
        let x = self.eval(a)?;
        let y = self.eval(b)?;
        self.apply_binary(op, x, y, a.span, b.span, span)
    }

    /// Three-valued `and` / `or`: a known deciding side wins over an unknown one.
    fn logic(&mut self, op: BinOp, a: &Ir, b: &Ir) -> R {
        let decisive = op == BinOp::Or;
        let x = self.eval(a)?;
        let x = self.as_bool(x, a.span, op)?;
        if x == Some(decisive) {
            return Ok(Value::Bool(decisive));
        }
        let y = self.eval(b)?;
        let y_known = self.as_bool(y.clone(), b.span, op)?;
        match (x, y_known) {
            (_, Some(v)) if v == decisive => Ok(Value::Bool(decisive)),
            (Some(_), Some(v)) => Ok(Value::Bool(v)),
            (None, _) => self.eval(a),
            (Some(_), None) => Ok(y),
        }
    }

    fn as_bool(&self, v: Value, span: Span, op: BinOp) -> Result<Option<bool>, EvalError> {
        match v {
            Value::Bool(b) => Ok(Some(b)),
            Value::Unknown(_) => Ok(None),
            other => Err(self
                .error(span, format!("`{}` needs bools, not {}", op.as_str(), crate::ty::describe(&other)))),
        }
    }

    fn apply_binary(&self, op: BinOp, x: Value, y: Value, xs: Span, ys: Span, span: Span) -> R {
        if let Value::Unknown(_) = x {
            return Ok(x);
        }
        if let Value::Unknown(_) = y {
            return Ok(y);
        }
        if matches!(x, Value::Secret(_)) || matches!(y, Value::Secret(_)) {
            if op == BinOp::Add {
                return Err(self.error_help(
                    span,
                    "cannot add to a secret",
                    "build strings with interpolation: \"${a}${b}\"",
                ));
            }
            return Ok(Value::unknown("secret values are never compared or computed with"));
        }
        let overflow = || self.error(span, format!("integer overflow in `{}`", op.as_str()));
        match op {
            BinOp::Eq => Ok(Value::Bool(values_equal(&x, &y))),
            BinOp::Ne => Ok(Value::Bool(!values_equal(&x, &y))),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ord = match (&x, &y) {
                    (Value::Int(a) | Value::Mode(a), Value::Int(b) | Value::Mode(b)) => a.cmp(b),
                    (Value::Str(a), Value::Str(b)) => a.cmp(b),
                    _ => {
                        return Err(self.error(
                            span,
                            format!(
                                "cannot compare {} with {}",
                                crate::ty::describe(&x),
                                crate::ty::describe(&y)
                            ),
                        ));
                    }
                };
                Ok(Value::Bool(match op {
                    BinOp::Lt => ord.is_lt(),
                    BinOp::Le => ord.is_le(),
                    BinOp::Gt => ord.is_gt(),
                    _ => ord.is_ge(),
                }))
            }
            BinOp::In => match &y {
                Value::List(items) => Ok(Value::Bool(items.iter().any(|i| values_equal(i, &x)))),
                Value::Record(entries) => match x.as_text() {
                    Some(k) => Ok(Value::Bool(entries.contains_key(&k))),
                    None => Err(self.error(xs, "a map key is a string")),
                },
                Value::Str(s) => match &x {
                    Value::Str(n) => Ok(Value::Bool(s.contains(n.as_ref()))),
                    other => Err(self.error(
                        xs,
                        format!("`in` a string needs a string, not {}", crate::ty::describe(other)),
                    )),
                },
                other => Err(self.error(
                    ys,
                    format!("`in` needs a list, map or string, not {}", crate::ty::describe(other)),
                )),
            },
            BinOp::Add => match (&x, &y) {
                (Value::Str(a), Value::Str(b)) => Ok(Value::str(format!("{a}{b}"))),
                (Value::List(a), Value::List(b)) => {
                    Ok(Value::list(a.iter().chain(b.iter()).cloned().collect()))
                }
                // Record merge: the right side wins.
                (Value::Record(a), Value::Record(b)) => {
                    let mut out = (**a).clone();
                    out.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
                    Ok(Value::record(out))
                }
                _ => int_op(&x, &y, false, |a, b| a.checked_add(b))
                    .map(|r| r.ok_or_else(overflow))
                    .unwrap_or_else(|| {
                        Err(self.error(
                            span,
                            format!("cannot add {} and {}", crate::ty::describe(&x), crate::ty::describe(&y)),
                        ))
                    }),
            },
            BinOp::Div | BinOp::Rem if matches!(y, Value::Int(0) | Value::Mode(0)) => {
                Err(self.error(ys, format!("division by zero in `{}`", op.as_str())))
            }
            _ => {
                let f: fn(i64, i64) -> Option<i64> = match op {
                    BinOp::Sub => i64::checked_sub,
                    BinOp::Mul => i64::checked_mul,
                    BinOp::Div => i64::checked_div,
                    BinOp::Rem => i64::checked_rem,
                    BinOp::BitAnd => |a, b| Some(a & b),
                    BinOp::BitOr => |a, b| Some(a | b),
                    _ => |a, b| Some(a ^ b),
                };
                let bits = matches!(op, BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor);
                int_op(&x, &y, bits, f).map(|r| r.ok_or_else(overflow)).unwrap_or_else(|| {
                    Err(self.error(
                        span,
                        format!(
                            "`{}` needs ints, not {} and {}",
                            op.as_str(),
                            crate::ty::describe(&x),
                            crate::ty::describe(&y)
                        ),
                    ))
                })
            }
        }
    }

    fn member(&mut self, v: Value, name: &Arc<str>, span: Span) -> R {
        match v {
            Value::Unknown(_) => Ok(v),
            Value::Record(entries) => match entries.get(&**name) {
                Some(v) => {
                    // A member of a component instance reached through the instance's value
                    // (`vhost["x"].conf`) is a dependency like a direct reference.
                    if let Value::Resource(r) = v {
                        self.refs.push((r.id.clone(), span));
                    }
                    Ok(v.clone())
                }
                None => {
                    let keys: Vec<&str> = entries.keys().map(String::as_str).collect();
                    Err(self.error_help(
                        span,
                        format!("no field `{name}` in this record"),
                        fields_help(&keys),
                    ))
                }
            },
            Value::Resource(r) => match r.field(name) {
                Some(v) => {
                    self.reads.push((r.id.clone(), name.clone()));
                    // A member of a component instance (`vhost["x"].conf`) is a dependency.
                    if let Value::Resource(m) = &v {
                        self.refs.push((m.id.clone(), span));
                    }
                    Ok(v)
                }
                None => {
                    let keys: Vec<&str> = r.field_names().collect();
                    Err(self.error_help(
                        span,
                        format!("kind `{}` has no field `{name}`", r.kind),
                        fields_help(&keys),
                    ))
                }
            },
            other => Err(self.error(span, format!("{} has no fields", crate::ty::describe(&other)))),
        }
    }

    fn index(&self, v: Value, i: Value, span: Span) -> R {
        match (&v, &i) {
            (Value::Unknown(_), _) => Ok(v),
            (_, Value::Unknown(_)) => Ok(i),
            (Value::List(items), Value::Int(n)) => {
                usize::try_from(*n).ok().and_then(|n| items.get(n).cloned()).ok_or_else(|| {
                    self.error(span, format!("index {n} is out of range for a list of {}", items.len()))
                })
            }
            (Value::Record(entries), Value::Str(k) | Value::Enum(k)) => match entries.get(k.as_ref()) {
                Some(v) => Ok(v.clone()),
                None => {
                    let keys: Vec<&str> = entries.keys().map(String::as_str).collect();
                    Err(self.error_help(span, format!("no key \"{k}\" in this map"), fields_help(&keys)))
                }
            },
            _ => Err(self.error(
                span,
                format!("cannot index {} with {}", crate::ty::describe(&v), crate::ty::describe(&i)),
            )),
        }
    }

    fn comprehension(&mut self, c: &crate::ir::ComprehensionIr) -> R {
        let iter = self.eval(&c.iter)?;
        let pairs: Vec<(Option<Value>, Value)> = match &iter {
            Value::List(items) => items.iter().map(|v| (None, v.clone())).collect(),
            Value::Record(entries) => entries
                .iter()
                .map(|(k, v)| match c.key {
                    Some(_) => (Some(Value::str(k.as_str())), v.clone()),
                    None => (None, Value::str(k.as_str())),
                })
                .collect(),
            Value::Unknown(_) => return Ok(iter),
            other => {
                return Err(self.error(
                    c.iter.span,
                    format!("`for` needs a list or a map, not {}", crate::ty::describe(other)),
                ));
            }
        };
        let mut out = Vec::new();
        for (key, value) in pairs {
            if let (Some(slot), Some(k)) = (c.key, key) {
                self.set_local(slot, k);
            }
            self.set_local(c.slot, value);
            if let Some(cond) = &c.cond {
                match self.eval(cond)? {
                    Value::Bool(true) => {}
                    Value::Bool(false) => continue,
                    u @ Value::Unknown(_) => return Ok(u),
                    other => {
                        return Err(self.error(
                            cond.span,
                            format!("a condition is a bool, not {}", crate::ty::describe(&other)),
                        ));
                    }
                }
            }
            let v = self.eval(&c.value)?;
            out.push(v);
            if out.len() > self.limits.list_length {
                return Err(self.limit(
                    c.value.span,
                    Limit::ListLength,
                    format!("this list has more than {} elements", self.limits.list_length),
                ));
            }
        }
        Ok(Value::list(out))
    }

    fn call(&mut self, b: Builtin, args: &[Ir], span: Span) -> R {
        // Builtins take at most three arguments: held inline.
        let mut values: smallvec::SmallVec<[Value; 3]> = smallvec::SmallVec::with_capacity(args.len());
        for a in args {
            values.push(self.eval(a)?);
        }
        if b == Builtin::Get {
            // The default may be anything, unknown included; only the map and key must be known.
            if let Some(u) = values.iter().take(2).find(|v| v.is_unknown()) {
                return Ok(u.clone());
            }
        } else if let Some(u) = values.iter().find(|v| v.is_unknown()) {
            return Ok(u.clone());
        }
        if b == Builtin::Template {
            let path = match values.first() {
                Some(Value::Str(p)) => p.clone(),
                Some(other) => {
                    return Err(self.error(
                        span,
                        format!("a template's path is a string, not {}", crate::ty::describe(other)),
                    ));
                }
                None => return Err(self.error(span, "template needs a path")),
            };
            let vars = values.get(1).cloned().unwrap_or(Value::Null);
            if !matches!(vars, Value::Record(_)) {
                return Err(self.error_help(
                    span,
                    format!("a template's variables are a record, not {}", crate::ty::describe(&vars)),
                    "pass the names it uses: template(\"site.conf.tmpl\", { port = 8080 })",
                ));
            }
            return self.env.template(&self.origin, &path, &vars).map_err(|e| match e {
                TemplateError::At(e) => e,
                TemplateError::Here(m) => {
                    self.error_help(span, m, "a template's path is relative to the file that uses it")
                }
            });
        }
        let result = match b {
            Builtin::Include => match values.first() {
                Some(Value::Str(p)) => self.env.include(&self.origin, p),
                _ => Err("include needs a path string".to_string()),
            },
            _ => crate::eval_builtins::call(b, &values),
        };
        result.map_err(|m| match b {
            Builtin::Include => {
                self.error_help(span, m, "a path in include() is relative to the file that includes it")
            }
            _ => self.error(span, m),
        })
    }

    /// Runs the statements of a policy or control; returns one verdict per `require` run.
    pub fn run_check(&mut self, check: &CheckIr) -> Vec<Verdict> {
        let mut out = Vec::new();
        self.origin = check.origin.clone();
        if self.locals.len() < check.slots as usize {
            self.locals.resize(check.slots as usize, Value::Null);
        }
        self.run_stmts(&check.body, None, &mut out);
        out
    }

    /// Runs the body of a `for` once per object, with the binding in `slot`: how a caller
    /// that splits `for x in intent(kind)` by resource runs one slice of it.
    pub fn run_for_each(
        &mut self,
        origin: &Origin,
        slot: u32,
        body: &[CheckStmt],
        objects: &[Value],
    ) -> Vec<Verdict> {
        self.origin = origin.clone();
        let mut out = Vec::new();
        for item in objects {
            let sub = match item {
                Value::Resource(r) => Some(r.id.clone()),
                _ => None,
            };
            self.set_local(slot, item.clone());
            self.run_stmts(body, sub.as_ref(), &mut out);
        }
        out
    }

    fn run_stmts(&mut self, stmts: &[CheckStmt], subject: Option<&Arc<str>>, out: &mut Vec<Verdict>) {
        for stmt in stmts {
            match stmt {
                CheckStmt::Require { cond, message, span } => {
                    let v = self.require(cond, message.as_ref(), *span, subject);
                    out.push(v);
                }
                CheckStmt::Let { slot, value } => match self.eval(value) {
                    Ok(v) => self.set_local(*slot, v),
                    Err(e) => {
                        out.push(self.error_verdict(e, value.span, subject));
                        self.set_local(*slot, Value::unknown("this value has an error"));
                    }
                },
                CheckStmt::If { cond, then, otherwise } => match self.eval(cond) {
                    Ok(Value::Bool(true)) => self.run_stmts(then, subject, out),
                    Ok(Value::Bool(false)) => self.run_stmts(otherwise, subject, out),
                    Ok(Value::Unknown(u)) => out.push(Verdict {
                        outcome: Outcome::Unknown(format!("the condition is unknown: {}", u.reason)),
                        ..self.blank_verdict(cond.span, subject)
                    }),
                    Ok(other) => {
                        let e = self.error(
                            cond.span,
                            format!("a condition is a bool, not {}", crate::ty::describe(&other)),
                        );
                        out.push(self.error_verdict(e, cond.span, subject));
                    }
                    Err(e) => out.push(self.error_verdict(e, cond.span, subject)),
                },
                CheckStmt::For { key, slot, iter, body } => {
                    let items = match self.eval(iter) {
                        Ok(v) => v,
                        Err(e) => {
                            out.push(self.error_verdict(e, iter.span, subject));
                            continue;
                        }
                    };
                    match items {
                        Value::List(items) => {
                            for item in items.iter() {
                                let sub = match item {
                                    Value::Resource(r) => Some(r.id.clone()),
                                    _ => subject.cloned(),
                                };
                                self.set_local(*slot, item.clone());
                                self.run_stmts(body, sub.as_ref(), out);
                            }
                        }
                        Value::Record(entries) => {
                            for (k, v) in entries.iter() {
                                if let Some(key) = key {
                                    self.set_local(*key, Value::str(k.as_str()));
                                    self.set_local(*slot, v.clone());
                                } else {
                                    self.set_local(*slot, Value::str(k.as_str()));
                                }
                                self.run_stmts(body, subject, out);
                            }
                        }
                        Value::Unknown(u) => out.push(Verdict {
                            outcome: Outcome::Unknown(format!(
                                "the objects to check are unknown: {}",
                                u.reason
                            )),
                            ..self.blank_verdict(iter.span, subject)
                        }),
                        other => {
                            let e = self.error(
                                iter.span,
                                format!("`for` needs a list or map, not {}", crate::ty::describe(&other)),
                            );
                            out.push(self.error_verdict(e, iter.span, subject));
                        }
                    }
                }
            }
        }
    }

    fn blank_verdict(&self, span: Span, subject: Option<&Arc<str>>) -> Verdict {
        Verdict {
            outcome: Outcome::Pass,
            origin: self.origin.clone(),
            span,
            rule: None,
            subject: subject.cloned(),
            message: None,
            evidence: Vec::new(),
            reads: Vec::new(),
            error: None,
        }
    }

    fn error_verdict(&self, e: EvalError, span: Span, subject: Option<&Arc<str>>) -> Verdict {
        Verdict {
            outcome: Outcome::Unknown(format!("evaluation failed: {}", e.message)),
            error: Some(e),
            ..self.blank_verdict(span, subject)
        }
    }

    fn require(
        &mut self,
        cond: &Ir,
        message: Option<&Ir>,
        span: Span,
        subject: Option<&Arc<str>>,
    ) -> Verdict {
        let mut verdict = self.blank_verdict(span, subject);
        self.reads.clear();
        // A rule call is run here rather than through `eval`, so its frame is kept for the
        // message and the evidence.
        let result = if let IrKind::RuleCall(call) = &cond.kind {
            let (name, args) = (&call.name, &call.args);
            let mut values = Vec::with_capacity(args.len());
            let mut failed = None;
            for a in args {
                match self.eval(a) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if let Some(Value::Resource(r)) = values.first() {
                verdict.subject = Some(r.id.clone());
            }
            match failed {
                Some(e) => Err(e),
                None => self.run_rule(name, values, cond.span),
            }
        } else {
            self.eval(cond).map(|v| (v, None))
        };
        let (value, run) = match result {
            Ok(r) => r,
            Err(e) => return self.error_verdict(e, span, verdict.subject.as_ref()),
        };
        if let Some(run) = &run {
            verdict.rule = Some((run.rule.name.clone(), run.rule.origin.clone(), run.rule.name_span));
        }
        match value {
            Value::Bool(true) => verdict,
            Value::Unknown(u) => {
                verdict.outcome = Outcome::Unknown(u.reason.clone());
                verdict
            }
            Value::Bool(false) => {
                verdict.outcome = Outcome::Fail;
                verdict.reads = std::mem::take(&mut self.reads);
                match run {
                    Some(run) => {
                        let saved_locals = std::mem::replace(&mut self.locals, run.frame);
                        let saved_origin = std::mem::replace(&mut self.origin, run.rule.origin.clone());
                        verdict.message = match (message, &run.rule.message) {
                            (Some(_), _) => None,
                            (None, Some(m)) => self.message_text(m),
                            (None, None) => None,
                        };
                        self.explain(&run.rule.body, &mut verdict.evidence, true);
                        self.locals = saved_locals;
                        self.origin = saved_origin;
                        if let Some(m) = message {
                            verdict.message = self.message_text(m);
                        }
                    }
                    None => {
                        verdict.message = message.and_then(|m| self.message_text(m)).or_else(|| {
                            Some(match &cond.text {
                                Some(t) => format!("`{t}` does not hold"),
                                None => "the requirement does not hold".to_string(),
                            })
                        });
                        self.explain(cond, &mut verdict.evidence, true);
                    }
                }
                verdict
            }
            other => {
                let e = self.error(
                    cond.span,
                    format!("a requirement is a bool, not {}", crate::ty::describe(&other)),
                );
                self.error_verdict(e, span, verdict.subject.as_ref())
            }
        }
    }

    /// The text of a failure message; `None` when it cannot be shown (a value in it is
    /// unknown), so the caller says something generic instead of printing a hole.
    fn message_text(&mut self, m: &Ir) -> Option<String> {
        match self.eval(m) {
            Ok(Value::Secret(_)) => Some("<redacted>".to_string()),
            Ok(Value::Unknown(_)) | Err(_) => None,
            Ok(v) => Some(v.as_text().unwrap_or_else(|| v.to_string())),
        }
    }

    /// Collects the values of the sub-expressions of a failed condition, outermost first,
    /// following only the operands that decided the outcome of `and` / `or`.
    fn explain(&mut self, ir: &Ir, out: &mut Vec<Evidence>, root: bool) {
        const MAX_EVIDENCE: usize = 8;
        if out.len() >= MAX_EVIDENCE {
            return;
        }
        match &ir.kind {
            IrKind::Lit(_) | IrKind::Error => return,
            IrKind::Binary(BinOp::And, a, b) => {
                for side in [a, b] {
                    if let Ok(Value::Bool(false)) = self.eval(side) {
                        self.explain(side, out, true);
                        return;
                    }
                }
                return;
            }
            IrKind::Binary(BinOp::Or, a, b) => {
                self.explain(a, out, true);
                self.explain(b, out, true);
                return;
            }
            _ => {}
        }
        // Operands first, so the evidence reads from the values up: `f.mode` is 0o666, then
        // `f.mode & 0o002` is 0o002.
        match &ir.kind {
            IrKind::Binary(_, a, b) => {
                self.explain(a, out, false);
                self.explain(b, out, false);
            }
            IrKind::Unary(_, a) => self.explain(a, out, false),
            IrKind::Call(_, args) => {
                for a in args {
                    self.explain(a, out, false);
                }
            }
            _ => {}
        }
        if !root
            && !matches!(ir.kind, IrKind::Local(_))
            && out.len() < MAX_EVIDENCE
            && let (Some(text), Ok(v)) = (&ir.text, self.eval(ir))
            && !matches!(v, Value::Resource(_) | Value::List(_) | Value::Record(_))
        {
            let value = v.to_string();
            if !out.iter().any(|e| e.text == **text) && value != **text {
                out.push(Evidence {
                    text: text.to_string(),
                    value,
                    origin: self.origin.clone(),
                    span: ir.span,
                });
            }
        }
    }
}

struct RuleRun {
    rule: Arc<RuleIr>,
    frame: Vec<Value>,
}

fn fields_help(keys: &[&str]) -> String {
    if keys.is_empty() {
        "it has no fields".to_string()
    } else {
        format!("its fields are: {}", keys.join(", "))
    }
}

/// `Some(result)` when both are integers (a mode stays a mode), `None` otherwise.
/// Bit operators keep a mode a mode (`0o666 & 0o002` is `0o002`); arithmetic gives an int.
fn int_op(
    x: &Value,
    y: &Value,
    bits: bool,
    f: impl Fn(i64, i64) -> Option<i64>,
) -> Option<Result<Value, ()>> {
    let (a, b, mode) = match (x, y) {
        (Value::Int(a), Value::Int(b)) => (*a, *b, false),
        (Value::Int(a) | Value::Mode(a), Value::Int(b) | Value::Mode(b)) => (*a, *b, bits),
        _ => return None,
    };
    Some(match f(a, b) {
        Some(r) if mode => Ok(Value::Mode(r)),
        Some(r) => Ok(Value::Int(r)),
        None => Err(()),
    })
}

trait OkOrElse {
    fn ok_or_else(self, f: impl FnOnce() -> EvalError) -> R;
}

impl OkOrElse for Result<Value, ()> {
    fn ok_or_else(self, f: impl FnOnce() -> EvalError) -> R {
        self.map_err(|()| f())
    }
}

/// Equality as the language defines it: a mode equals the same integer, an enum member the
/// string of its name.
pub fn values_equal(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Int(a) | Value::Mode(a), Value::Int(b) | Value::Mode(b)) => a == b,
        (Value::Str(a) | Value::Enum(a), Value::Str(b) | Value::Enum(b)) => a == b,
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| values_equal(x, y))
        }
        (Value::Record(a), Value::Record(b)) => {
            a.len() == b.len()
                && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| ka == kb && values_equal(va, vb))
        }
        (Value::Resource(a), Value::Resource(b)) => a.id == b.id,
        _ => x == y,
    }
}

/// Text for a mode in messages, re-exported for callers that print values.
pub fn mode_text(m: i64) -> String {
    format_mode(m)
}
