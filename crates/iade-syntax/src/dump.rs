//! A span-free, comment-free rendering of the tree as S-expressions. Two sources whose dumps
//! are equal have the same meaning: the formatter's meaning-preservation checks and the parser
//! golden tests compare dumps.

use std::fmt::Write;

use crate::ast::*;

pub fn dump(tree: &SourceFile) -> String {
    let mut d = Dumper { out: String::new(), indent: 0 };
    for item in &tree.items {
        d.stmt(&item.stmt);
    }
    d.out
}

struct Dumper {
    out: String,
    indent: usize,
}

impl Dumper {
    fn line(&mut self, s: &str) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn nested(&mut self, head: &str, f: impl FnOnce(&mut Self)) {
        self.line(&format!("({head}"));
        self.indent += 1;
        f(self);
        self.indent -= 1;
        self.line(")");
    }

    fn block(&mut self, b: &Block) {
        self.nested("block", |d| {
            for s in &b.stmts {
                d.stmt(s);
            }
        });
    }

    fn stmt(&mut self, s: &Stmt) {
        if let Some(doc) = &s.doc {
            self.line(&format!("(doc {doc:?})"));
        }
        match &s.kind {
            StmtKind::Use(u) => {
                let path = match &u.path {
                    UsePath::Module(p) => p.iter().map(|n| n.text.as_str()).collect::<Vec<_>>().join("."),
                    UsePath::File(s) => str_lit(s),
                };
                let names = u.names.as_ref().map(|ns| {
                    ns.iter()
                        .map(|n| match &n.alias {
                            Some(a) => format!("{} as {}", n.name.text, a.text),
                            None => n.name.text.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                let alias = u.alias.as_ref().map(|a| a.text.as_str());
                self.line(&format!("(use {path} names={names:?} alias={alias:?})"));
            }
            StmtKind::Param(p) => {
                let default = p.default.as_ref().map(expr);
                self.line(&format!("(param {} {} {default:?})", p.name.text, ty(&p.ty)));
            }
            StmtKind::Let(l) => {
                let t = l.ty.as_ref().map(ty);
                self.line(&format!("(let {} {t:?} {})", l.name.text, expr(&l.value)));
            }
            StmtKind::Resource(r) => {
                let kind = r.kind.iter().map(|n| n.text.as_str()).collect::<Vec<_>>().join(".");
                let name = match &r.name {
                    ResourceName::Ident(n) => n.text.clone(),
                    ResourceName::Str(s) => str_lit(s),
                };
                self.nested(&format!("resource {kind} {name}"), |d| d.block(&r.body));
            }
            StmtKind::Provider(p) => self
                .nested(&format!("provider {} {}", p.provider_type.text, p.name.text), |d| d.block(&p.body)),
            StmtKind::Stack(st) => self.nested(&format!("stack {}", st.name.text), |d| d.block(&st.body)),
            StmtKind::Waive(w) => {
                let subject: Vec<&str> = w.subject.iter().map(|n| n.text.as_str()).collect();
                let object = w.object.map(|s| format!("[{}..{}]", s.start, s.end)).unwrap_or_default();
                self.line(&format!(
                    "waive control {} for {}{object} until {} reason {}",
                    w.control.text,
                    subject.join("."),
                    str_lit(&w.until),
                    str_lit(&w.reason)
                ));
            }
            StmtKind::Kind(k) => self.nested(&format!("kind {}", k.name.text), |d| d.block(&k.body)),
            StmtKind::Component(c) => {
                let params = c
                    .params
                    .iter()
                    .map(|p| {
                        let default = p.default.as_ref().map(expr);
                        format!("{}: {} {default:?}", p.name.text, ty(&p.ty))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                self.nested(&format!("component {} ({params})", c.name.text), |d| d.block(&c.body));
            }
            StmtKind::Field(f) => {
                let default = f.default.as_ref().map(expr);
                let constraint = f.constraint.as_ref().map(expr);
                self.line(&format!(
                    "(field {} {} {} default={default:?} where={constraint:?})",
                    f.role.text,
                    f.name.text,
                    ty(&f.ty)
                ));
            }
            StmtKind::Rule(r) => {
                let params = r
                    .params
                    .iter()
                    .map(|p| format!("{}: {}", p.name.text, ty(&p.ty)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let msg = r.message.as_ref().map(expr);
                self.line(&format!("(rule {} ({params}) {} else={msg:?})", r.name.text, expr(&r.body)));
            }
            StmtKind::Policy(p) => self.nested(&format!("policy {}", p.name.text), |d| d.block(&p.body)),
            StmtKind::Control(c) => {
                let id = match &c.id {
                    ControlId::Ident(n) => n.text.clone(),
                    ControlId::Str(s) => str_lit(s),
                };
                self.nested(&format!("control {id}"), |d| d.block(&c.body));
            }
            StmtKind::For(f) => {
                let b = f.bindings.iter().map(|n| n.text.as_str()).collect::<Vec<_>>().join(", ");
                self.nested(&format!("for {b} in {}", expr(&f.iter)), |d| d.block(&f.body));
            }
            StmtKind::If(i) => self.nested(&format!("if {}", expr(&i.cond)), |d| {
                d.block(&i.then);
                match &i.otherwise {
                    Some(Else::Block(b)) => d.nested("else", |d| d.block(b)),
                    Some(Else::If(s)) => d.nested("else", |d| d.stmt(s)),
                    None => {}
                }
            }),
            StmtKind::Attr(a) => self.line(&format!("(= {} {})", key(&a.key), expr(&a.value))),
            StmtKind::Require(r) => {
                let msg = r.message.as_deref().map(expr);
                self.line(&format!("(require {} else={msg:?})", expr(&r.cond)));
            }
            StmtKind::Test(t) => self.nested(&format!("test {}", str_lit(&t.name)), |d| d.block(&t.body)),
            StmtKind::TestParam(n, v) => self.line(&format!("(with param {} {})", n.text, expr(v))),
            StmtKind::Observed(o) => {
                let kind: Vec<&str> = o.kind.iter().map(|n| n.text.as_str()).collect();
                self.nested(&format!("observed {}", kind.join(".")), |d| d.block(&o.body));
            }
            StmtKind::Expect(e) => match e {
                Expect::Check { control, name, outcome } => self.line(&format!(
                    "(expect {} {} {})",
                    if *control { "control" } else { "policy" },
                    name.text,
                    outcome.text
                )),
                Expect::Snapshot(s) => self.line(&format!("(expect snapshot {})", str_lit(s))),
                Expect::Expr(x) => self.line(&format!("(expect {})", expr(x))),
            },
            StmtKind::Error => self.line("(error)"),
        }
    }
}

fn key(k: &Key) -> String {
    match k {
        Key::Ident(n) => n.text.clone(),
        Key::Str(s) => str_lit(s),
    }
}

fn str_lit(s: &StrLit) -> String {
    let mut out = String::from(if s.multiline { "(mstr" } else { "(str" });
    for p in &s.parts {
        match p {
            StrPart::Text { raw, .. } => {
                let _ = write!(out, " {:?}", crate::token::cook(raw));
            }
            StrPart::Interp(e) => {
                let _ = write!(out, " ${{{}}}", expr(e));
            }
        }
    }
    out.push(')');
    out
}

pub fn ty(t: &Type) -> String {
    match &t.kind {
        TypeKind::Named(p) => p.iter().map(|n| n.text.as_str()).collect::<Vec<_>>().join("."),
        TypeKind::App(n, args) => {
            format!("{}({})", n.text, args.iter().map(ty).collect::<Vec<_>>().join(", "))
        }
        TypeKind::Record(fields) => format!(
            "{{{}}}",
            fields.iter().map(|(n, t)| format!("{}: {}", key(n), ty(t))).collect::<Vec<_>>().join(", ")
        ),
        TypeKind::Optional(t) => format!("(optional {})", ty(t)),
        TypeKind::Union(ts) => format!("(union {})", ts.iter().map(ty).collect::<Vec<_>>().join(" ")),
        TypeKind::Str(s) => str_lit(s),
        TypeKind::Int(i) => i.value.to_string(),
        TypeKind::Error => "(error)".to_owned(),
    }
}

pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(i) => i.value.to_string(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Null => "null".to_owned(),
        ExprKind::Str(s) => str_lit(s),
        ExprKind::Name(n) => n.text.clone(),
        ExprKind::List(xs) => format!("[{}]", xs.iter().map(expr).collect::<Vec<_>>().join(" ")),
        ExprKind::Record(es) => format!(
            "{{{}}}",
            es.iter()
                .map(|en| format!("{} = {}", key(&en.key), expr(&en.value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ExprKind::Unary(op, x) => format!("({} {})", op.as_str(), expr(x)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", op.as_str(), expr(a), expr(b)),
        ExprKind::Call(f, args) => {
            let args = args
                .iter()
                .map(|a| match &a.name {
                    Some(n) => format!("{}={}", n.text, expr(&a.value)),
                    None => expr(&a.value),
                })
                .collect::<Vec<_>>()
                .join(" ");
            format!("(call {} {args})", expr(f))
        }
        ExprKind::Member(x, n) => format!("(. {} {})", expr(x), n.text),
        ExprKind::Index(x, i) => format!("(index {} {})", expr(x), expr(i)),
        ExprKind::If(c, a, b) => format!("(if {} {} {})", expr(c), expr(a), expr(b)),
        ExprKind::Paren(x) => expr(x),
        ExprKind::Comprehension(c) => {
            let b = c.bindings.iter().map(|n| n.text.as_str()).collect::<Vec<_>>().join(", ");
            let cond = c.cond.as_ref().map(expr);
            format!("(for {} {b} in {} if={cond:?})", expr(&c.value), expr(&c.iter))
        }
        ExprKind::Error => "(error)".to_owned(),
    }
}
