//! `template(path, vars)`: a file of the stack read as a template, lowered once per edit of the
//! file and filled in for every call.

use std::collections::BTreeSet;
use std::sync::Arc;

use iade_diagnostics::codes;
use iade_intent::eval::{EvalError, Evaluator, TemplateError};
use iade_intent::ir::{Ir, IrKind};
use iade_intent::{Origin, Value};
use iade_span::Span;
use iade_syntax::template::{TemplatePart, parse_template};

use crate::db::Db;
use crate::items::SourceFile;
use crate::lower::Cx;

/// The item name of a template's origin: its spans are relative to the file's start.
pub const TEMPLATE_ITEM: &str = "<template>";
/// The local that holds a template's variables (not a name the source can write).
pub const VARS: &str = "<vars>";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateIr {
    /// The whole template as one interpolation.
    pub body: Ir,
    pub slots: u32,
    /// The variables it reads, with where (the first use of each).
    pub names: Vec<(String, Span)>,
    /// The first problem with the template, as an evaluation error at its place.
    pub error: Option<EvalError>,
}

#[salsa::tracked(returns(ref))]
pub fn template_ir(db: &dyn Db, file: SourceFile) -> TemplateIr {
    let origin = Origin { file: file.id(db), item: Arc::from(TEMPLATE_ITEM) };
    let (parts, diags) = parse_template(file.id(db), file.text(db));
    let mut cx = Cx::for_template(db, file);
    let mut irs = Vec::new();
    for p in &parts {
        match p {
            TemplatePart::Text(t) => irs.push(Ir::lit(Value::str(t.as_str()), Span::default())),
            TemplatePart::Expr(e) => irs.push(cx.template_expr(e)),
        }
    }
    let mut error = diags.into_iter().next().map(|d| {
        let span = d.primary_label().map_or(Span::default(), |l| l.span);
        EvalError { message: d.message, origin: origin.clone(), span, help: d.help, limit: None }
    });
    if error.is_none()
        && let Some(d) = cx.take_diags().into_iter().next()
    {
        let span = d.labels.first().map_or(Span::default(), |l| l.span);
        error =
            Some(EvalError { message: d.message, origin: origin.clone(), span, help: d.help, limit: None });
    }
    let mut names = Vec::new();
    let mut seen = BTreeSet::new();
    for ir in &irs {
        var_names(ir, &mut names, &mut seen);
    }
    TemplateIr { body: Ir::new(IrKind::Interp(irs), Span::default()), slots: cx.slots(), names, error }
}

/// Names read from the variables record (`Local(0).name`).
fn var_names(ir: &Ir, out: &mut Vec<(String, Span)>, seen: &mut BTreeSet<String>) {
    match &ir.kind {
        IrKind::Member(base, name)
            if matches!(base.kind, IrKind::Local(0)) && seen.insert(name.to_string()) =>
        {
            out.push((name.to_string(), ir.span));
        }
        IrKind::Member(base, _) if matches!(base.kind, IrKind::Local(0)) => {}
        IrKind::Member(a, _) | IrKind::Unary(_, a) => var_names(a, out, seen),
        IrKind::List(items) | IrKind::Interp(items) | IrKind::Call(_, items) => {
            items.iter().for_each(|i| var_names(i, out, seen));
        }
        IrKind::RuleCall(call) => call.args.iter().for_each(|i| var_names(i, out, seen)),
        IrKind::Record(entries) => entries.iter().for_each(|(_, v)| var_names(v, out, seen)),
        IrKind::Binary(_, a, b) | IrKind::Index(a, b) => {
            var_names(a, out, seen);
            var_names(b, out, seen);
        }
        IrKind::If(a, b, c) => {
            var_names(a, out, seen);
            var_names(b, out, seen);
            var_names(c, out, seen);
        }
        IrKind::Comprehension(c) => {
            var_names(&c.iter, out, seen);
            if let Some(cond) = &c.cond {
                var_names(cond, out, seen);
            }
            var_names(&c.value, out, seen);
        }
        _ => {}
    }
}

/// Fills in the template at `path` (relative to the file of `origin`) from `vars`.
pub fn fill(
    db: &dyn Db,
    env: &dyn iade_intent::Env,
    origin: &Origin,
    path: &str,
    vars: &Value,
    limits: iade_intent::Limits,
) -> Result<Value, TemplateError> {
    let file =
        db.file_by_id(origin.file).ok_or_else(|| TemplateError::Here("the calling file is gone".into()))?;
    let full = crate::scope::join_relative(file.path(db), path);
    let tf = db.load_file(&full).map_err(|e| {
        TemplateError::Here(format!("cannot read the template `{full}`: {}", e.to_lowercase()))
    })?;
    let t = template_ir(db, tf);
    if let Some(e) = &t.error {
        return Err(TemplateError::At(e.clone()));
    }
    let torigin = Origin { file: tf.id(db), item: Arc::from(TEMPLATE_ITEM) };
    let Value::Record(record) = vars else {
        return Err(TemplateError::Here("a template's variables are a record".into()));
    };
    if let Some((name, span)) = t.names.iter().find(|(n, _)| !record.contains_key(n)) {
        let have: Vec<&str> = record.keys().map(String::as_str).collect();
        return Err(TemplateError::At(EvalError {
            message: format!("the template uses `{name}`, which its variables lack"),
            origin: torigin,
            span: *span,
            help: Some(match crate::suggest::did_you_mean(name, have.iter().copied()) {
                Some(d) => d,
                None if have.is_empty() => format!("pass it: template(\"{path}\", {{ {name} = … }})"),
                None => format!(
                    "pass it: template(\"{path}\", {{ {name} = … }}); the record has {}",
                    have.join(", ")
                ),
            }),
            limit: None,
        }));
    }
    let _ = codes::E0217;
    let mut ev = Evaluator::new(env, torigin, t.slots.max(1)).with_limits(limits);
    ev.set_local(0, vars.clone());
    ev.eval(&t.body).map_err(TemplateError::At)
}
