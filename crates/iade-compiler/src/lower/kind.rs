//! Lowering of `kind` declarations and of types.

use std::sync::Arc;

use iade_diagnostics::codes;
use iade_intent::{KindSchema, Ty};
use iade_syntax::ast::{self, ExprKind};

use super::*;

impl Cx<'_> {
    // ----- kinds -----

    pub(super) fn kind(&mut self, k: &ast::KindDecl, doc: Option<String>) -> LoweredKind {
        self.mode = Mode::Kind;
        let module = self.module.name(self.db).clone();
        let mut schema = KindSchema {
            name: Arc::from(k.name.text.as_str()),
            module: Arc::from(module.as_str()),
            provider: None,
            fields: Vec::new(),
            doc,
            refreshable: false,
            exclusive: Vec::new(),
            checks: Vec::new(),
        };
        let mut requires = Vec::new();
        for stmt in &k.body.stmts {
            match &stmt.kind {
                StmtKind::Require(r) => requires.push(r),
                StmtKind::Attr(a) if key_text(&a.key) == "provider" => match &a.value.kind {
                    ExprKind::Str(s) if s.as_plain().is_some() => {
                        schema.provider = s.as_plain().map(Arc::from)
                    }
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
                StmtKind::Attr(a) if key_text(&a.key) == "exclusive" => match &a.value.kind {
                    ExprKind::List(items) => {
                        let names: Vec<String> = items
                            .iter()
                            .filter_map(|i| if let ExprKind::Str(s) = &i.kind { s.as_plain() } else { None })
                            .collect();
                        if names.len() == items.len() && names.len() >= 2 {
                            schema.exclusive.push(names);
                        } else {
                            let d = self
                                .at(
                                    codes::E0209,
                                    a.value.span,
                                    "a kind's `exclusive` lists two or more field names",
                                    "not a list of names",
                                )
                                .help("write `exclusive = [\"content\", \"source\"]`");
                            self.error(d);
                        }
                    }
                    _ => {
                        let d = self
                            .at(
                                codes::E0209,
                                a.value.span,
                                "a kind's `exclusive` lists field names",
                                "not a list",
                            )
                            .help("write `exclusive = [\"content\", \"source\"]`");
                        self.error(d);
                    }
                },
                StmtKind::Attr(a) if key_text(&a.key) == "refreshable" => match &a.value.kind {
                    ExprKind::Bool(b) => schema.refreshable = *b,
                    _ => {
                        let d = self
                            .at(codes::E0209, a.value.span, "a kind's `refreshable` is `true` or `false`", "not a bool")
                            .help("write `refreshable = true` when the kind's provider can refresh its resources");
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
                    if let Some(e) = &f.default {
                        self.decimal_mode(&ty, e);
                    }
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
                    let refers = f.refers.as_ref().and_then(|path| self.refers(path)).map(Arc::new);
                    schema.fields.push(FieldSchema {
                        name: Arc::from(f.name.text.as_str()),
                        role,
                        ty,
                        default,
                        constraint,
                        constraint_text,
                        doc: stmt.doc.as_deref().map(str::to_string),
                        refers,
                    });
                }
                _ => {}
            }
        }
        // Checks over several fields: each field is bound, in order, to its slot.
        for r in requires {
            let fields: Vec<(String, Ty)> =
                schema.fields.iter().map(|f| (f.name.to_string(), f.ty.clone())).collect();
            let check = self.scoped(|cx| {
                for (name, ty) in &fields {
                    cx.bind(name, Some(ty.clone()));
                }
                let cond = cx.expr(&r.cond, Some(&Ty::Bool)).0;
                let message = r.message.as_ref().map(|m| cx.expr(m, Some(&Ty::String)).0);
                iade_intent::KindCheck { cond, message, text: cx.slice(r.cond.span).to_string() }
            });
            schema.checks.push(check);
        }
        LoweredKind::Kind(Arc::new(schema))
    }

    /// `refers user.name`: a kind in scope and one of its identity fields. Read from the
    /// referred kind's declaration, never its lowering, so kinds that refer to each other do
    /// not make lowering recursive.
    fn refers(&mut self, path: &[ast::Name]) -> Option<iade_intent::Refers> {
        let (field, kind_path) = path.split_last()?;
        let span = kind_path.first().map_or(field.span, |n| n.span.cover(field.span));
        let written: Vec<&str> = path.iter().map(|n| n.text.as_str()).collect();
        let Some(crate::lower::component::Declares::Kind(kind)) =
            crate::lower::component::resolve_declared(self.db, self.scope, kind_path)
        else {
            let d = self
                .at(codes::E0102, span, format!("`refers {}` names no kind in scope", written.join(".")), "not a kind")
                .help("write `refers KIND.FIELD`, with the kind imported (`use std.users.{user}`) or declared here");
            self.error(d);
            return None;
        };
        let decl = crate::items::item_tree(self.db, kind)?;
        let StmtKind::Kind(k) = &decl.kind else { return None };
        let identities: Vec<&str> = k
            .body
            .stmts
            .iter()
            .filter_map(|s| match &s.kind {
                StmtKind::Field(fd) if fd.role.text == "identity" => Some(fd.name.text.as_str()),
                _ => None,
            })
            .collect();
        if !identities.contains(&field.text.as_str()) {
            let d = self
                .at(
                    codes::E0103,
                    field.span,
                    format!("kind `{}` has no identity field `{}`", k.name.text, field.text),
                    "not an identity field",
                )
                .help(format!(
                    "a field refers to a resource by an identity field; `{}` has {}",
                    k.name.text,
                    identities.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
                ));
            self.error(d);
            return None;
        }
        let module = crate::scope::module_of(self.db, kind.file(self.db)).name(self.db).clone();
        Some(iade_intent::Refers { module, kind: k.name.text.clone(), field: field.text.clone() })
    }

    // ----- types -----

    pub(super) fn ty(&mut self, t: &Type) -> Ty {
        match &t.kind {
            TypeKind::Named(path) => {
                if let [n] = path.as_slice() {
                    let prim = match n.text.as_str() {
                        "bool" => Some(Ty::Bool),
                        "int" => Some(Ty::Int),
                        "mode" => Some(Ty::Mode),
                        "string" => Some(Ty::String),
                        "path" => Some(Ty::Path),
                        "source" => Some(Ty::Source),
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
                            vec!["bool", "int", "mode", "string", "path", "source", "secret", "any"];
                        names.extend(self.scope.names_of(|d| matches!(d, Def::Kind(_))));
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
                Ty::Record(fields.iter().map(|(k, t)| (key_text(k).into_owned(), self.ty(t))).collect())
            }
            TypeKind::Optional(t) => Ty::Optional(Box::new(self.ty(t))),
            TypeKind::Union(ts) => Ty::Union(ts.iter().map(|t| self.ty(t)).collect()),
            TypeKind::Str(s) => Ty::StrLit(s.as_plain().unwrap_or_default()),
            TypeKind::Int(i) => Ty::IntLit(i.value),
            TypeKind::Error => Ty::Any,
        }
    }
}
