//! Lowering of expressions: names, members, calls and operators, with their static types.

use std::sync::Arc;

use iade_diagnostics::codes;
use iade_intent::ir::{BinOp, Builtin, ComprehensionIr, IrKind, ObjectSource, UnOp};
use iade_intent::{KindSchema, Ty, Value};
use iade_span::Span;
use iade_syntax::ast::{self, Expr, ExprKind, StrLit, StrPart};

use super::component;
use super::*;

impl Cx<'_> {
    // ----- expressions -----

    pub(super) fn slice(&self, span: Span) -> &str {
        let (source, offset) = match &self.source {
            Source::Text(text, offset) => (*text, *offset),
            Source::Item(read) => *read.get_or_init(|| {
                let file = self.item.file(self.db);
                let offset = crate::items::item_offset(self.db, file, self.item.name(self.db)).unwrap_or(0);
                (file.text(self.db).as_str(), offset)
            }),
        };
        source.get(span.absolute_from(offset).range()).unwrap_or("")
    }

    pub(super) fn node(&self, kind: IrKind, span: Span) -> Ir {
        if matches!(kind, IrKind::Resource(_) | IrKind::ResourceByName { .. } | IrKind::Sibling(_)) {
            self.db.note_reference_by_id();
        }
        let text = self.keep_text.then(|| Arc::from(self.slice(span)));
        Ir { kind, span, text }
    }

    /// Lowers an expression; also returns its static type where it is known.
    pub(super) fn expr(&mut self, e: &Expr, hint: Option<&Ty>) -> (Ir, Option<Ty>) {
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
                    out.push((k.into_owned(), self.expr(&entry.value, h.as_ref()).0));
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
                let target = match self.path(inner) {
                    Some(Path::Kind(k)) => Some((kind_name(self.db, k), Ty::Kind(kind_name(self.db, k)))),
                    Some(Path::Component(c)) => {
                        Some((component::component_name(self.db, c), self.instance_ty(c)))
                    }
                    _ => None,
                };
                if let Some((kind, ty)) = target {
                    let (name, _) = self.expr(index, Some(&Ty::String));
                    // Inside a component, `file["x"]` is a member of the instance.
                    let relative = self.component.is_some();
                    return (
                        self.node(
                            IrKind::ResourceByName {
                                kind: Arc::from(kind.as_str()),
                                name: Box::new(name),
                                relative,
                            },
                            span,
                        ),
                        Some(ty),
                    );
                }
                let (base, ty) = self.expr(inner, None);
                let (index, _) = self.expr(index, None);
                let elem = ty.and_then(|t| t.element().cloned());
                (self.node(IrKind::Index(Box::new(base), Box::new(index)), span), elem)
            }
            ExprKind::Call(f, args) => self.call(f, args, span),
            ExprKind::Comprehension(c) => self.comprehension(c, hint, span),
            ExprKind::Error => (Ir::new(IrKind::Error, span), None),
        }
    }

    fn comprehension(&mut self, c: &ast::Comprehension, hint: Option<&Ty>, span: Span) -> (Ir, Option<Ty>) {
        let (iter, iter_ty) = self.expr(&c.iter, None);
        let elem_hint = hint.and_then(Ty::element).cloned();
        self.scoped(|cx| {
            let (key, slot) = match c.bindings.as_slice() {
                [k, v] => {
                    let vt = match &iter_ty {
                        Some(Ty::Map(t)) => Some((**t).clone()),
                        _ => None,
                    };
                    (Some(cx.bind_var(k, Some(Ty::String))), cx.bind_var(v, vt))
                }
                [v, ..] => {
                    let vt = match &iter_ty {
                        Some(Ty::List(t)) => Some((**t).clone()),
                        Some(Ty::Map(_)) => Some(Ty::String),
                        _ => None,
                    };
                    (None, cx.bind_var(v, vt))
                }
                [] => (None, cx.bind("_", None)),
            };
            let cond = c.cond.as_ref().map(|e| cx.expr(e, Some(&Ty::Bool)).0);
            let (value, vt) = cx.expr(&c.value, elem_hint.as_ref());
            let ir = IrKind::Comprehension(Box::new(ComprehensionIr { key, slot, iter, cond, value }));
            (cx.node(ir, span), vt.map(|t| Ty::List(Box::new(t))))
        })
    }

    pub(super) fn binary(&mut self, op: ast::BinOp, a: &Expr, b: &Expr, span: Span) -> (Ir, Option<Ty>) {
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

    pub(super) fn string(&mut self, s: &StrLit, keep: bool) -> Ir {
        // Most strings are one plain part: made straight into a literal, with no list of parts.
        if let (false, [StrPart::Text { raw, .. }]) = (s.multiline, s.parts.as_slice()) {
            return Ir::lit(Value::str(&*iade_syntax::token::cook(raw)), s.span);
        }
        let parts = if s.multiline { dedent(&s.parts) } else { s.parts.iter().map(Seg::from).collect() };
        let mut irs = Vec::with_capacity(parts.len());
        for part in parts {
            match part {
                Seg::Text(raw, span) => irs.push(Ir::lit(Value::str(&*iade_syntax::token::cook(&raw)), span)),
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

    pub(super) fn lookup_local(&self, name: &str) -> Option<&Local> {
        self.locals.iter().rev().find(|l| l.name == name)
    }

    /// A name or member chain that denotes a module or a kind (not a value).
    pub(super) fn path(&mut self, e: &Expr) -> Option<Path> {
        match &e.kind {
            ExprKind::Name(n) => {
                if self.lookup_local(&n.text).is_some() {
                    return None;
                }
                let defs = self.scope.get(&n.text)?;
                if defs.iter().any(|d| matches!(d, Def::Value(_) | Def::Resource(_) | Def::Nested(..))) {
                    return None;
                }
                defs.iter().find_map(|d| match d {
                    Def::Module(m) => Some(Path::Module(*m)),
                    Def::Kind(k) => Some(Path::Kind(*k)),
                    Def::Component(c) => Some(Path::Component(*c)),
                    _ => None,
                })
            }
            ExprKind::Member(inner, seg) => match self.path(inner)? {
                Path::Module(m) => own_scope(self.db, m).defs.get(&seg.text)?.iter().find_map(|d| match d {
                    Def::Kind(k) => Some(Path::Kind(*k)),
                    Def::Component(c) => Some(Path::Component(*c)),
                    Def::Module(m) => Some(Path::Module(*m)),
                    _ => None,
                }),
                Path::Kind(_) | Path::Component(_) => None,
            },
            _ => None,
        }
    }

    pub(super) fn resource_ref(&mut self, item: Item, span: Span) -> (Ir, Option<Ty>) {
        if let Some(c) = component::instance_component(self.db, item) {
            let name = match split_name(item.name(self.db)) {
                ItemName::Resource { name, .. } => name.to_string(),
                _ => String::new(),
            };
            let id = format!("{}.{name}", component::component_name(self.db, c));
            return (self.node(IrKind::Resource(Arc::from(id.as_str())), span), Some(self.instance_ty(c)));
        }
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

    pub(super) fn nested_kind(&self, nested: crate::scope::NestedRes) -> Option<Item> {
        let path: Vec<ast::Name> = nested
            .kind(self.db)
            .iter()
            .map(|t| ast::Name { text: t.clone(), span: Span::default() })
            .collect();
        resolve_kind_path(self.db, self.scope, &path).ok()
    }

    pub(super) fn nested_ref(&mut self, nested: crate::scope::NestedRes, span: Span) -> (Ir, Option<Ty>) {
        let path: Vec<ast::Name> = nested
            .kind(self.db)
            .iter()
            .map(|t| ast::Name { text: t.clone(), span: Span::default() })
            .collect();
        if let Some(component::Declares::Component(c)) =
            component::resolve_declared(self.db, self.scope, &path)
        {
            let id = format!("{}.{}", component::component_name(self.db, c), nested.name(self.db));
            return (self.node(IrKind::Resource(Arc::from(id.as_str())), span), Some(self.instance_ty(c)));
        }
        let Some(kind) = self.nested_kind(nested) else { return (Ir::new(IrKind::Error, span), None) };
        let kind = kind_name(self.db, kind);
        let id = format!("{kind}.{}", nested.name(self.db));
        (self.node(IrKind::Resource(Arc::from(id.as_str())), span), Some(Ty::Kind(kind)))
    }

    pub(super) fn name(&mut self, n: &ast::Name, hint: Option<&Ty>) -> (Ir, Option<Ty>) {
        let span = n.span;
        if let Some(l) = self.lookup_local(&n.text) {
            let (slot, ty) = (l.slot, l.ty.clone());
            return (self.node(IrKind::Local(slot), span), ty);
        }
        if self.mode == Mode::Template {
            // A template's names are the variables it is given (checked when it is filled in).
            let vars = self.node(IrKind::Local(0), span);
            return (self.node(IrKind::Member(Box::new(vars), Arc::from(n.text.as_str())), span), None);
        }
        // Inside a component, its members come before the names of the module.
        if let Some(d) = self.component.as_ref().and_then(|c| c.members.get(&n.text)).copied() {
            let (id, ty) = match d {
                component::Declares::Kind(k) => {
                    let kind = kind_name(self.db, k);
                    (format!("{kind}.{}", n.text), Ty::Kind(kind))
                }
                component::Declares::Component(c) => {
                    (format!("{}.{}", component::component_name(self.db, c), n.text), self.instance_ty(c))
                }
            };
            return (self.node(IrKind::Sibling(Arc::from(id.as_str())), span), Some(ty));
        }
        if let Some(members) = hint.and_then(Ty::enum_members)
            && members.contains(&n.text)
        {
            return (Ir::lit(Value::Enum(Arc::from(n.text.as_str())), span), hint.cloned());
        }
        // Borrowed from the scope, which outlives `self`: most names are looked up once per
        // resource, and copying their definitions cost an allocation each time.
        let scope: &Scope = self.scope;
        let defs: &[Def] = scope.get(&n.text).map_or(&[], |d| d.as_slice());
        let is_value = |d: &&Def| matches!(d, Def::Value(_) | Def::Resource(_) | Def::Nested(..));
        let mut values = defs.iter().filter(is_value);
        let only = match (values.next(), values.next()) {
            (Some(first), None) => Some(first),
            _ => None,
        };
        match only {
            Some(Def::Nested(_, nested)) => self.nested_ref(*nested, span),
            Some(Def::Value(item)) => {
                let ty = self.global_ty(*item);
                let key = item_key(self.db, *item);
                (self.node(IrKind::Global(key), span), ty)
            }
            Some(Def::Resource(item)) => self.resource_ref(*item, span),
            _ if !defs.iter().any(|d| is_value(&d)) => {
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
                        let locals = self.locals.iter().map(|l| l.name.as_str());
                        self.scope.did_you_mean(&n.text, locals).unwrap_or_else(|| {
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
            _ => {
                let many: Vec<&Def> = defs.iter().filter(is_value).collect();
                let kinds: Vec<String> = many
                    .iter()
                    .filter_map(|d| match d {
                        Def::Resource(i) => written_kind(self.db, *i)
                            .or_else(|| resource_kind(self.db, *i).map(|k| kind_name(self.db, k)))
                            .map(|k| format!("`{k}.{}`", n.text)),
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
    pub(super) fn global_ty(&self, item: Item) -> Option<Ty> {
        declared_type(self.db, item).clone()
    }

    pub(super) fn member(&mut self, inner: &Expr, name: &ast::Name, span: Span) -> (Ir, Option<Ty>) {
        if let Some((base, comp)) = self.static_instance(inner) {
            return self.instance_member(base, comp, name, span);
        }
        match self.path(inner) {
            Some(Path::Kind(k))
                if self.component.as_ref().and_then(|c| c.members.get(&name.text))
                    == Some(&component::Declares::Kind(k)) =>
            {
                // `file.conf` inside a component: its member.
                let kind = kind_name(self.db, k);
                let id = format!("{kind}.{}", name.text);
                return (self.node(IrKind::Sibling(Arc::from(id.as_str())), span), Some(Ty::Kind(kind)));
            }
            Some(Path::Component(c)) => {
                // `vhost.api`: the instance of this component named `api`.
                let cname = component::component_name(self.db, c);
                if let Some((base, comp)) = self.static_instance(&Expr {
                    kind: ExprKind::Member(Box::new(inner.clone()), name.clone()),
                    span,
                }) {
                    let ty = self.instance_ty(comp);
                    return (base.ir(self.db, span), Some(ty));
                }
                let e = self
                    .at(
                        codes::E0101,
                        name.span,
                        format!("no `{cname}` instance named `{}`", name.text),
                        "not declared",
                    )
                    .help(format!("an instance generated by `for` is reached as {cname}[\"NAME\"]"));
                self.error(e);
                return (Ir::new(IrKind::Error, span), None);
            }
            Some(Path::Kind(k)) => {
                // `directory.app`: the resource of this kind named `app`.
                let kind = kind_name(self.db, k);
                let found = self.scope.get(&name.text).and_then(|defs| {
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
                            .help_opt(own.defs.did_you_mean(&name.text));
                        self.error(e);
                        (Ir::new(IrKind::Error, span), None)
                    }
                };
            }
            None => {}
        }
        let (base, ty) = self.expr(inner, None);
        let mut field_ty = None;
        // A kind's field is named by the schema's own string, which resource values share:
        // reading it compares pointers, not text.
        let mut shared = None;
        match &ty {
            Some(Ty::Kind(k)) => {
                if let Some(schema) = self.schema_by_name(k) {
                    match schema.field(&name.text) {
                        Some(f) => {
                            field_ty = Some(f.ty.clone());
                            shared = Some(f.name.clone());
                        }
                        None => {
                            let names = schema.fields.iter().map(|f| &*f.name);
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
        let name = shared.unwrap_or_else(|| Arc::from(name.text.as_str()));
        (self.node(IrKind::Member(Box::new(base), name), span), field_ty)
    }

    pub(super) fn schema_by_name(&self, kind: &str) -> Option<Arc<KindSchema>> {
        let item =
            self.scope.get(kind)?.iter().find_map(|d| if let Def::Kind(k) = d { Some(*k) } else { None });
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

    pub(super) fn call(&mut self, f: &Expr, args: &[ast::Arg], span: Span) -> (Ir, Option<Ty>) {
        // The callee: a rule (possibly in a module) or a builtin.
        let (callee_name, rule) = match &f.kind {
            ExprKind::Name(n) => {
                let rule = self
                    .scope
                    .get(&n.text)
                    .and_then(|d| d.iter().find_map(|d| if let Def::Rule(r) = d { Some(*r) } else { None }));
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
            return (
                self.node(
                    IrKind::RuleCall(Box::new(iade_intent::ir::RuleCallIr {
                        name: item_key(self.db, rule),
                        args: irs,
                    })),
                    span,
                ),
                Some(Ty::Bool),
            );
        }
        let Some(builtin) = (if callee_name.contains('.') { None } else { Builtin::from_name(&callee_name) })
        else {
            let mut names: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
            let shown =
                if callee_name.is_empty() { self.slice(f.span).to_string() } else { callee_name.clone() };
            names.extend(self.scope.names_of(|d| matches!(d, Def::Rule(_))));
            let e = self
                .at(codes::E0110, f.span, format!("unknown function `{shown}`"), "not a builtin or a rule")
                .help(did_you_mean(&shown, names).unwrap_or_else(|| {
                    "builtins are listed in docs/language.md §12; rules are declared with `rule`".into()
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
            Builtin::Contains | Builtin::StartsWith | Builtin::EndsWith | Builtin::Matches => Some(Ty::Bool),
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

    pub(super) fn objects(&mut self, b: Builtin, args: &[ast::Arg], span: Span) -> (Ir, Option<Ty>) {
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
