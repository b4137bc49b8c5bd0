//! Placement rules the grammar leaves open: which statements may appear in which block.

use iade_diagnostics::{Diagnostic, codes};
use iade_span::FileId;

use crate::ast::{ControlId, Else, Key, Stmt, StmtKind, StrLit, StrPart, UsePath};

fn interpolates(s: &StrLit) -> bool {
    s.parts.iter().any(|p| matches!(p, StrPart::Interp(_)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    /// Inside a top-level `for`/`if`: generates resources.
    Gen,
    Resource,
    Kind,
    Rules,
    Provider,
    Stack,
    /// A component's body: what a top-level `for`/`if` may hold.
    Component,
    Test,
    /// An `observed` object of a test: entries.
    Observed,
}

impl Ctx {
    fn name(self) -> &'static str {
        match self {
            Ctx::Top => "at the top level",
            Ctx::Gen => "inside a top-level `for` or `if`",
            Ctx::Resource => "inside a resource body",
            Ctx::Kind => "inside a `kind`",
            Ctx::Rules => "inside a `policy` or `control`",
            Ctx::Provider => "inside a `provider` block",
            Ctx::Stack => "inside the `stack` block",
            Ctx::Component => "inside a `component`",
            Ctx::Test => "inside a `test`",
            Ctx::Observed => "inside an `observed` object",
        }
    }
}

fn allowed(ctx: Ctx, kind: &StmtKind) -> Result<(), &'static str> {
    use StmtKind as S;
    match (ctx, kind) {
        (_, S::Error) => Ok(()),
        (
            Ctx::Top,
            S::Use(_)
            | S::Param(_)
            | S::Let(_)
            | S::Resource(_)
            | S::Provider(_)
            | S::Stack(_)
            | S::Waive(_)
            | S::Test(_)
            | S::Component(_)
            | S::Kind(_),
        )
        | (Ctx::Top, S::Rule(_) | S::Policy(_) | S::Control(_) | S::For(_) | S::If(_)) => Ok(()),
        (Ctx::Gen | Ctx::Component, S::Resource(_) | S::Let(_) | S::For(_) | S::If(_)) => Ok(()),
        (Ctx::Resource, S::Attr(_) | S::Let(_) | S::For(_) | S::If(_)) => Ok(()),
        (Ctx::Kind, S::Field(_) | S::Attr(_) | S::Require(_)) => Ok(()),
        (Ctx::Rules, S::Attr(_) | S::Let(_) | S::For(_) | S::If(_) | S::Require(_)) => Ok(()),
        (Ctx::Provider, S::Attr(_) | S::Let(_)) => Ok(()),
        (Ctx::Stack, S::Attr(_)) => Ok(()),
        (Ctx::Test, S::TestParam(..) | S::Observed(_) | S::Expect(_) | S::Let(_)) => Ok(()),
        (_, S::TestParam(..) | S::Observed(_) | S::Expect(_)) => {
            Err("`with param`, `observed` and `expect` belong in a `test`")
        }
        (Ctx::Observed, S::Attr(_)) => Ok(()),
        (
            _,
            S::Use(_)
            | S::Param(_)
            | S::Kind(_)
            | S::Rule(_)
            | S::Policy(_)
            | S::Control(_)
            | S::Provider(_)
            | S::Stack(_)
            | S::Waive(_)
            | S::Test(_)
            | S::Component(_),
        ) => Err("move it to the top level of the file"),
        (_, S::Require(_)) => {
            Err("`require` states a condition of a `policy`, a `control` or a `kind`; move it into one")
        }
        (_, S::Field(_)) => Err("field declarations (`identity`, `desired`, `observed`) belong in a `kind`"),
        (Ctx::Resource, S::Resource(_)) => {
            Err("declare the resource at the top level; use `after = [...]` or a reference to order it")
        }
        (Ctx::Component, S::Attr(_)) => {
            Err("a component holds resources; its inputs are params: `component NAME(port: int) { … }`")
        }
        (Ctx::Top | Ctx::Gen, S::Attr(_)) => {
            Err("entries `name = value` belong in a block; use `let name = value` for a named value")
        }
        _ => Err("see docs/language.md for what each block may contain"),
    }
}

struct Validator {
    file: FileId,
    diags: Vec<Diagnostic>,
}

impl Validator {
    fn stmt(&mut self, offset: u32, ctx: Ctx, s: &Stmt) {
        if let Err(help) = allowed(ctx, &s.kind) {
            let what = s.kind.describe();
            self.diags.push(
                Diagnostic::new(codes::E0014, format!("{what} is not allowed {}", ctx.name()))
                    .primary(self.file, s.span.absolute_from(offset), format!("{what} here"))
                    .help(help),
            );
            return;
        }
        let fixed = match &s.kind {
            StmtKind::Attr(a) => match &a.key {
                Key::Str(k) if interpolates(k) => Some((k.span, "an entry key")),
                _ => None,
            },
            StmtKind::Control(c) => match &c.id {
                ControlId::Str(k) if interpolates(k) => Some((k.span, "a control id")),
                _ => None,
            },
            StmtKind::Use(u) => match &u.path {
                UsePath::File(k) if interpolates(k) => Some((k.span, "a module path")),
                _ => None,
            },
            _ => None,
        };
        if let Some((span, what)) = fixed {
            self.diags.push(
                Diagnostic::new(codes::E0017, format!("interpolation not allowed in {what}"))
                    .primary(self.file, span.absolute_from(offset), format!("{what} must be a plain string"))
                    .help("write the string out without `${…}`"),
            );
        }
        let inner = match (&s.kind, ctx) {
            (StmtKind::Resource(_), _) => Ctx::Resource,
            (StmtKind::Kind(_), _) => Ctx::Kind,
            (StmtKind::Policy(_) | StmtKind::Control(_), _) => Ctx::Rules,
            (StmtKind::Provider(_), _) => Ctx::Provider,
            (StmtKind::Stack(_), _) => Ctx::Stack,
            (StmtKind::Component(_), _) => Ctx::Component,
            (StmtKind::Test(_), _) => Ctx::Test,
            (StmtKind::Observed(_), _) => Ctx::Observed,
            (StmtKind::For(_) | StmtKind::If(_), Ctx::Top) => Ctx::Gen,
            _ => ctx,
        };
        match &s.kind {
            StmtKind::If(i) => {
                self.block(offset, inner, &i.then.stmts);
                match &i.otherwise {
                    Some(Else::Block(b)) => self.block(offset, inner, &b.stmts),
                    Some(Else::If(s)) => self.stmt(offset, ctx, s),
                    None => {}
                }
            }
            StmtKind::Resource(r) => self.block(offset, inner, &r.body.stmts),
            StmtKind::Kind(k) => self.block(offset, inner, &k.body.stmts),
            StmtKind::Policy(p) => self.block(offset, inner, &p.body.stmts),
            StmtKind::Control(c) => self.block(offset, inner, &c.body.stmts),
            StmtKind::Provider(p) => self.block(offset, inner, &p.body.stmts),
            StmtKind::Stack(st) => self.block(offset, inner, &st.body.stmts),
            StmtKind::Component(c) => self.block(offset, inner, &c.body.stmts),
            StmtKind::Test(t) => self.block(offset, inner, &t.body.stmts),
            StmtKind::Observed(o) => self.block(offset, inner, &o.body.stmts),
            StmtKind::For(f) => self.block(offset, inner, &f.body.stmts),
            _ => {}
        }
    }

    fn block(&mut self, offset: u32, ctx: Ctx, stmts: &[Stmt]) {
        for s in stmts {
            self.stmt(offset, ctx, s);
        }
    }
}

/// Checks where each of `items` (a file's, or a run of them) places its statements; each item
/// is checked on its own.
pub(crate) fn validate_items(file: FileId, items: &[crate::ast::Item]) -> Vec<Diagnostic> {
    let mut v = Validator { file, diags: Vec::new() };
    for item in items {
        v.stmt(item.offset, Ctx::Top, &item.stmt);
    }
    v.diags
}
