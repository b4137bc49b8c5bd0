//! Lowering of `test` blocks (in `*_test.iade` files): their param overrides, observed objects
//! and expectations. `iade test` runs them (`crate::tests`).

use std::sync::Arc;

use iade_diagnostics::codes;
use iade_intent::ir::{CheckIr, CheckKind, CheckStmt, Ir};
use iade_intent::{Severity, Ty};
use iade_span::Span;
use iade_syntax::ast::{self, Expect, StmtKind};

use super::component::{Declares, resolve_declared};
use super::*;

/// What an expectation of a check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expected {
    Passes,
    Fails,
    Unknown,
}

impl Expected {
    pub fn word(self) -> &'static str {
        match self {
            Expected::Passes => "passes",
            Expected::Fails => "fails",
            Expected::Unknown => "unknown",
        }
    }
}

/// An object a test's controls observe: its kind and fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedIr {
    pub kind: Item,
    pub kind_name: String,
    pub fields: Vec<(String, Ir, Span)>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectIr {
    Check {
        control: bool,
        name: String,
        outcome: Expected,
        span: Span,
    },
    Snapshot {
        path: String,
        span: Span,
    },
    /// `expect EXPR`, as a check with one `require`, so a failure shows its evidence.
    Expr {
        check: Arc<CheckIr>,
        text: String,
        span: Span,
    },
}

/// A lowered `test`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestIr {
    pub name: String,
    /// `with param NAME = VALUE`: constants.
    pub params: Vec<(String, Ir, Span)>,
    pub observed: Vec<ObservedIr>,
    pub expects: Vec<ExpectIr>,
    pub origin: Origin,
    pub name_span: Span,
}

impl Cx<'_> {
    pub(super) fn test(&mut self, t: &ast::TestDecl) -> LoweredKind {
        self.mode = Mode::Policy;
        self.keep_text = true;
        let mut out = TestIr {
            name: t.name.as_plain().unwrap_or_default(),
            params: Vec::new(),
            observed: Vec::new(),
            expects: Vec::new(),
            origin: self.origin.clone(),
            name_span: t.name.span,
        };
        for stmt in &t.body.stmts {
            match &stmt.kind {
                StmtKind::TestParam(name, value) => {
                    let ir = self.expr(value, None).0;
                    out.params.push((name.text.clone(), ir, stmt.span));
                }
                StmtKind::Observed(o) => {
                    if let Some(obs) = self.observed(o, stmt.span) {
                        out.observed.push(obs);
                    }
                }
                StmtKind::Expect(Expect::Check { control, name, outcome }) => {
                    let outcome = match outcome.text.as_str() {
                        "passes" => Expected::Passes,
                        "fails" => Expected::Fails,
                        "unknown" => Expected::Unknown,
                        other => {
                            let help = crate::suggest::did_you_mean(other, ["passes", "fails", "unknown"])
                                .unwrap_or_else(|| "expect `passes`, `fails` or `unknown`".into());
                            let d = self
                                .at(
                                    codes::E0209,
                                    outcome.span,
                                    format!("`{other}` is not an outcome"),
                                    "not an outcome",
                                )
                                .help(help);
                            self.error(d);
                            continue;
                        }
                    };
                    out.expects.push(ExpectIr::Check {
                        control: *control,
                        name: name.text.clone(),
                        outcome,
                        span: stmt.span,
                    });
                }
                StmtKind::Expect(Expect::Snapshot(path)) => {
                    out.expects.push(ExpectIr::Snapshot {
                        path: path.as_plain().unwrap_or_default(),
                        span: stmt.span,
                    });
                }
                StmtKind::Expect(Expect::Expr(e)) => {
                    let (cond, slots) = self.scoped(|cx| {
                        let cond = cx.expr(e, Some(&Ty::Bool)).0;
                        (cond, cx.max_slot)
                    });
                    let check = CheckIr {
                        kind: CheckKind::Policy,
                        name: out.name.clone(),
                        severity: Severity::Deny,
                        title: None,
                        body: vec![CheckStmt::Require { cond, message: None, span: e.span }],
                        slots,
                        origin: self.origin.clone(),
                        name_span: t.name.span,
                    };
                    out.expects.push(ExpectIr::Expr {
                        check: Arc::new(check),
                        text: self.slice(e.span).to_string(),
                        span: stmt.span,
                    });
                }
                _ => {}
            }
        }
        LoweredKind::Test(Arc::new(out))
    }

    /// `observed KIND { … }`: the kind in scope, each entry a field of it.
    fn observed(&mut self, o: &ast::ResourceDecl, span: Span) -> Option<ObservedIr> {
        let Some(Declares::Kind(kind)) = resolve_declared(self.db, self.scope, &o.kind) else {
            let written: Vec<&str> = o.kind.iter().map(|n| n.text.as_str()).collect();
            let at = o.kind.first().map_or(span, |n| n.span);
            let d = self
                .at(codes::E0102, at, format!("unknown kind `{}`", written.join(".")), "not a kind in scope")
                .help("import the kind with `use`, as the stack does: use std.fs.{file}");
            self.error(d);
            return None;
        };
        let schema = kind_schema(self.db, kind)?;
        let mut fields = Vec::new();
        for stmt in &o.body.stmts {
            let StmtKind::Attr(a) = &stmt.kind else { continue };
            let name = key_text(&a.key).into_owned();
            let Some(field) = schema.field(&name) else {
                let help = crate::suggest::did_you_mean(&name, schema.fields.iter().map(|f| &*f.name))
                    .unwrap_or_else(|| format!("`{}` has no such field", schema.name));
                let d = self
                    .at(
                        codes::E0103,
                        a.key.span(),
                        format!("unknown field `{name}` for kind `{}`", schema.name),
                        "no such field",
                    )
                    .help(help);
                self.error(d);
                continue;
            };
            let ir = self.expr(&a.value, Some(&field.ty)).0;
            fields.push((name, ir, a.value.span));
        }
        Some(ObservedIr { kind, kind_name: schema.name.to_string(), fields, span })
    }
}
