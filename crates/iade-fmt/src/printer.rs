use iade_span::Span;
use iade_syntax::Parse;
use iade_syntax::ast::*;
use iade_syntax::token::Comment;

use crate::MAX_WIDTH;

pub(crate) fn print(src: &str, parse: &Parse) -> String {
    let mut p = Printer { src, comments: &parse.comments, next: 0, out: String::new(), offset: 0 };
    p.items(&parse.tree.items);
    let mut out = p.out;
    while out.ends_with("\n\n") {
        out.pop();
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

struct Printer<'a> {
    src: &'a str,
    comments: &'a [Comment],
    /// Comments before this index have been printed.
    next: usize,
    out: String,
    /// Absolute offset of the item being printed (tree spans are relative to it).
    offset: u32,
}

const INDENT: &str = "  ";

fn is_block_stmt(k: &StmtKind) -> bool {
    matches!(
        k,
        StmtKind::Resource(_)
            | StmtKind::Provider(_)
            | StmtKind::Test(_)
            | StmtKind::Observed(_)
            | StmtKind::Stack(_)
            | StmtKind::Component(_)
            | StmtKind::Kind(_)
            | StmtKind::Policy(_)
            | StmtKind::Control(_)
            | StmtKind::For(_)
            | StmtKind::If(_)
            | StmtKind::Rule(_)
    )
}

impl<'a> Printer<'a> {
    fn abs(&self, s: Span) -> Span {
        s.absolute_from(self.offset)
    }

    fn push_indent(&mut self, level: usize) {
        for _ in 0..level {
            self.out.push_str(INDENT);
        }
    }

    /// The source between two absolute offsets holds an empty line.
    fn blank_between(&self, a: u32, b: u32) -> bool {
        self.src.get(a as usize..b as usize).is_some_and(|s| s.matches('\n').count() >= 2)
    }

    /// Unprinted comments starting before `pos` (absolute).
    fn take_before(&mut self, pos: u32) -> Vec<&'a Comment> {
        let comments: &'a [Comment] = self.comments;
        let start = self.next;
        while self.next < self.comments.len() && self.comments[self.next].span.start < pos {
            self.next += 1;
        }
        comments[start..self.next].iter().collect()
    }

    /// The next comment, if it sits on the same line right after `end` (absolute).
    fn take_trailing(&mut self, end: u32) -> Option<String> {
        let c = self.comments.get(self.next)?;
        let between = self.src.get(end as usize..c.span.start as usize)?;
        // Only blanks (and a comma) may lie between: a comment after a `}` that closes an
        // enclosing block belongs to that block, not to its last entry.
        if c.span.start >= end && between.trim_matches([' ', '\t', ',']).is_empty() {
            self.next += 1;
            return Some(c.text.trim_end().to_owned());
        }
        None
    }

    /// Whether an unprinted comment lies inside `span` (absolute).
    fn comment_inside(&self, span: Span) -> bool {
        self.comments[self.next..]
            .iter()
            .take_while(|c| c.span.start < span.end)
            .any(|c| c.span.start >= span.start)
    }

    /// Prints comments as lines at `level`, keeping one empty line where the source had one.
    fn comment_lines(&mut self, comments: Vec<&'a Comment>, level: usize, before: u32) {
        for (i, c) in comments.iter().enumerate() {
            self.push_indent(level);
            self.out.push_str(c.text.trim_end());
            self.out.push('\n');
            let next_start = comments.get(i + 1).map_or(before, |n| n.span.start);
            if self.blank_between(c.span.end, next_start) && !self.out.ends_with("{\n") {
                self.out.push('\n');
            }
        }
    }

    fn items(&mut self, items: &[Item]) {
        let mut prev: Option<(u32, bool)> = None;
        for item in items {
            self.offset = item.offset;
            let start = item.span().start;
            let block = is_block_stmt(&item.stmt.kind);
            if let Some((prev_end, prev_block)) = prev {
                let first = self.comments.get(self.next).map_or(start, |c| c.span.start.min(start));
                if prev_block || block || self.blank_between(prev_end, first) {
                    self.out.push('\n');
                }
            }
            self.stmt(&item.stmt, 0);
            prev = Some((item.span().end, block));
        }
        let rest = self.take_before(u32::MAX);
        if !rest.is_empty() && !self.out.is_empty() {
            let first = rest[0].span.start;
            let last_end = items.last().map_or(0, |i| i.span().end);
            if self.blank_between(last_end, first) {
                self.out.push('\n');
            }
        }
        self.comment_lines(rest, 0, u32::MAX);
    }

    fn stmt(&mut self, s: &Stmt, level: usize) {
        let span = self.abs(s.span);
        let leading = self.take_before(span.start);
        self.comment_lines(leading, level, span.start);
        self.push_indent(level);
        self.stmt_body(s, level);
        let leftovers = self.take_before(span.end);
        if let Some(t) = self.take_trailing(span.end) {
            self.out.push_str("  ");
            self.out.push_str(&t);
        }
        self.out.push('\n');
        // Comments in positions the layout has no place for are kept, after the statement;
        // after a top-level block the empty line that always follows one comes first.
        if !leftovers.is_empty() && level == 0 && is_block_stmt(&s.kind) {
            self.out.push('\n');
        }
        self.comment_lines(leftovers, level, span.end);
    }

    fn stmt_body(&mut self, s: &Stmt, level: usize) {
        match &s.kind {
            StmtKind::Use(u) => {
                let mut line = String::from("use ");
                match &u.path {
                    UsePath::Module(p) => line.push_str(&path(p)),
                    UsePath::File(f) => line.push_str(&self.string(f)),
                }
                if let Some(names) = &u.names {
                    let ns: Vec<String> = names
                        .iter()
                        .map(|n| match &n.alias {
                            Some(a) => format!("{} as {}", n.name.text, a.text),
                            None => n.name.text.clone(),
                        })
                        .collect();
                    line.push_str(&format!(".{{{}}}", ns.join(", ")));
                }
                if let Some(a) = &u.alias {
                    line.push_str(&format!(" as {}", a.text));
                }
                self.out.push_str(&line);
            }
            StmtKind::Param(p) => {
                let head = format!("param {}: {}", p.name.text, self.ty(&p.ty));
                self.out.push_str(&head);
                if let Some(d) = &p.default {
                    self.assign_tail(d, level);
                }
            }
            StmtKind::Let(l) => {
                let mut head = format!("let {}", l.name.text);
                if let Some(t) = &l.ty {
                    head.push_str(&format!(": {}", self.ty(t)));
                }
                self.out.push_str(&head);
                self.assign_tail(&l.value, level);
            }
            StmtKind::Resource(r) => {
                let name = match &r.name {
                    ResourceName::Ident(n) => n.text.clone(),
                    ResourceName::Str(s) => self.string(s),
                };
                self.out.push_str(&format!("{} {name} ", path(&r.kind)));
                self.block(&r.body, level);
            }
            StmtKind::Provider(p) => {
                self.out.push_str(&format!("provider {} {} ", p.provider_type.text, p.name.text));
                self.block(&p.body, level);
            }
            StmtKind::Test(t) => {
                let name = self.string(&t.name);
                self.out.push_str(&format!("test {name} "));
                self.block(&t.body, level);
            }
            StmtKind::TestParam(n, v) => {
                let v = self.expr(v, level);
                self.out.push_str(&format!("with param {} = {v}", n.text));
            }
            StmtKind::Observed(o) => {
                self.out.push_str(&format!("observed {} ", path(&o.kind)));
                self.block(&o.body, level);
            }
            StmtKind::Expect(e) => match e {
                iade_syntax::ast::Expect::Check { control, name, outcome } => {
                    // An id that is not a name is written as the string it was.
                    let plain = name.text.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && name.text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    let shown = if plain { name.text.clone() } else { format!("{:?}", name.text) };
                    self.out.push_str(&format!(
                        "expect {} {shown} {}",
                        if *control { "control" } else { "policy" },
                        outcome.text
                    ));
                }
                iade_syntax::ast::Expect::Snapshot(s) => {
                    let s = self.string(s);
                    self.out.push_str(&format!("expect snapshot {s}"));
                }
                iade_syntax::ast::Expect::Expr(x) => {
                    let x = self.expr(x, level);
                    self.out.push_str(&format!("expect {x}"));
                }
            },
            StmtKind::Stack(st) => {
                self.out.push_str(&format!("stack {} ", st.name.text));
                self.block(&st.body, level);
            }
            StmtKind::Waive(w) => {
                let subject: Vec<&str> = w.subject.iter().map(|n| n.text.as_str()).collect();
                let object = match w.object {
                    Some(span) => {
                        let range = (self.offset + span.start) as usize..(self.offset + span.end) as usize;
                        format!("[{}]", self.src.get(range).unwrap_or_default().trim())
                    }
                    None => String::new(),
                };
                let (until, reason) = (self.string(&w.until), self.string(&w.reason));
                self.out.push_str(&format!(
                    "waive control {} for {}{object} until {until} reason {reason}",
                    w.control.text,
                    subject.join(".")
                ));
            }
            StmtKind::Component(c) => {
                let params: Vec<String> = c
                    .params
                    .iter()
                    .map(|p| {
                        let mut s = format!("{}: {}", p.name.text, self.ty(&p.ty));
                        if let Some(d) = &p.default {
                            s.push_str(" = ");
                            s.push_str(&self.flat(d));
                        }
                        s
                    })
                    .collect();
                if params.is_empty() {
                    self.out.push_str(&format!("component {} ", c.name.text));
                } else {
                    self.out.push_str(&format!("component {}({}) ", c.name.text, params.join(", ")));
                }
                self.block(&c.body, level);
            }
            StmtKind::Kind(k) => {
                self.out.push_str(&format!("kind {} ", k.name.text));
                self.block(&k.body, level);
            }
            StmtKind::Field(f) => {
                let mut head = format!("{} {}: {}", f.role.text, f.name.text, self.ty(&f.ty));
                if let Some(path) = &f.refers {
                    let path: Vec<&str> = path.iter().map(|n| n.text.as_str()).collect();
                    head.push_str(&format!(" refers {}", path.join(".")));
                }
                self.out.push_str(&head);
                if let Some(d) = &f.default {
                    self.assign_tail(d, level);
                }
                if let Some(c) = &f.constraint {
                    let c = self.expr(c, level);
                    self.out.push_str(&format!(" where {c}"));
                }
            }
            StmtKind::Rule(r) => {
                let params: Vec<String> =
                    r.params.iter().map(|p| format!("{}: {}", p.name.text, self.ty(&p.ty))).collect();
                let head = format!("rule {}({}) =", r.name.text, params.join(", "));
                let mut body = self.expr(&r.body, level + 1);
                if let Some(m) = &r.message {
                    body.push_str(" else ");
                    body.push_str(&self.expr(m, level + 1));
                }
                let one_line = level * 2 + head.len() + 1 + body.len() <= MAX_WIDTH && !body.contains('\n');
                self.out.push_str(&head);
                if one_line {
                    self.out.push(' ');
                } else {
                    self.out.push('\n');
                    self.push_indent(level + 1);
                }
                self.out.push_str(&body);
            }
            StmtKind::Policy(p) => {
                self.out.push_str(&format!("policy {} ", p.name.text));
                self.block(&p.body, level);
            }
            StmtKind::Control(c) => {
                let id = match &c.id {
                    ControlId::Ident(n) => n.text.clone(),
                    ControlId::Str(s) => self.string(s),
                };
                self.out.push_str(&format!("control {id} "));
                self.block(&c.body, level);
            }
            StmtKind::For(f) => {
                let b: Vec<&str> = f.bindings.iter().map(|n| n.text.as_str()).collect();
                let iter = self.expr(&f.iter, level);
                self.out.push_str(&format!("for {} in {iter} ", b.join(", ")));
                self.block(&f.body, level);
            }
            StmtKind::If(i) => self.if_stmt(i, level),
            StmtKind::Attr(a) => {
                let k = self.key(&a.key);
                self.out.push_str(&k);
                self.assign_tail(&a.value, level);
            }
            StmtKind::Require(r) => {
                let c = self.expr(&r.cond, level);
                self.out.push_str(&format!("require {c}"));
                if let Some(m) = &r.message {
                    let m = self.expr(m, level);
                    self.out.push_str(&format!(" else {m}"));
                }
            }
            StmtKind::Error => {
                // Unreachable for inputs without syntax errors; keep the text as it was.
                let span = self.abs(s.span);
                let text = self.src.get(span.range()).unwrap_or_default().to_owned();
                self.out.push_str(&text);
            }
        }
    }

    /// ` = value`, with the value laid out for the current line.
    fn assign_tail(&mut self, value: &Expr, level: usize) {
        self.out.push_str(" = ");
        let col = self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1);
        let v = self.expr_at(value, level, col);
        self.out.push_str(&v);
    }

    fn if_stmt(&mut self, i: &IfStmt, level: usize) {
        let c = self.expr(&i.cond, level);
        self.out.push_str(&format!("if {c} "));
        self.block(&i.then, level);
        match &i.otherwise {
            Some(Else::Block(b)) => {
                self.out.push_str(" else ");
                self.block(b, level);
            }
            Some(Else::If(s)) => {
                self.out.push_str(" else ");
                if let StmtKind::If(inner) = &s.kind {
                    self.if_stmt(inner, level);
                }
            }
            None => {}
        }
    }

    fn block(&mut self, b: &Block, level: usize) {
        let span = self.abs(b.span);
        let close = span.end.saturating_sub(1);
        if b.stmts.is_empty() && !self.comment_inside(span) {
            self.out.push_str("{}");
            return;
        }
        self.out.push_str("{\n");
        let mut prev_end: Option<u32> = None;
        for s in &b.stmts {
            let start = self.abs(s.span).start;
            if let Some(pe) = prev_end {
                let first = self.comments.get(self.next).map_or(start, |c| c.span.start.min(start));
                if self.blank_between(pe, first) {
                    self.out.push('\n');
                }
            }
            self.stmt(s, level + 1);
            prev_end = Some(self.abs(s.span).end);
        }
        let inner = self.take_before(close);
        if let (Some(pe), Some(first)) = (prev_end, inner.first())
            && self.blank_between(pe, first.span.start)
        {
            self.out.push('\n');
        }
        self.comment_lines(inner, level + 1, close);
        self.push_indent(level);
        self.out.push('}');
    }

    fn key(&mut self, k: &Key) -> String {
        match k {
            Key::Ident(n) => n.text.clone(),
            Key::Str(s) => self.string(s),
        }
    }

    fn string(&mut self, s: &StrLit) -> String {
        let q = if s.multiline { "\"\"\"" } else { "\"" };
        let mut out = String::from(q);
        for part in &s.parts {
            match part {
                StrPart::Text { raw, .. } => out.push_str(raw),
                StrPart::Interp(e) => {
                    out.push_str("${");
                    out.push_str(&self.flat(e));
                    out.push('}');
                }
            }
        }
        out.push_str(q);
        out
    }

    fn ty(&mut self, t: &Type) -> String {
        match &t.kind {
            TypeKind::Named(p) => path(p),
            TypeKind::App(n, args) => {
                let args: Vec<String> = args.iter().map(|a| self.ty(a)).collect();
                format!("{}({})", n.text, args.join(", "))
            }
            TypeKind::Record(fields) => {
                if fields.is_empty() {
                    return "{}".to_owned();
                }
                let fs: Vec<String> =
                    fields.iter().map(|(k, t)| format!("{}: {}", self.key(k), self.ty(t))).collect();
                format!("{{ {} }}", fs.join(", "))
            }
            TypeKind::Optional(t) => format!("{}?", self.ty(t)),
            TypeKind::Union(ts) => ts.iter().map(|t| self.ty(t)).collect::<Vec<_>>().join(" | "),
            TypeKind::Str(s) => self.string(s),
            TypeKind::Int(i) => i.raw.clone(),
            TypeKind::Error => "<error>".to_owned(),
        }
    }

    /// An expression laid out at `level`, assuming it starts near the indentation.
    fn expr(&mut self, e: &Expr, level: usize) -> String {
        self.expr_at(e, level, level * 2)
    }

    /// An expression starting at column `col`: flat when it fits and holds no comment,
    /// otherwise lists, records and calls are broken one element per line.
    fn expr_at(&mut self, e: &Expr, level: usize, col: usize) -> String {
        let span = self.abs(e.span);
        let has_comment = self.comment_inside(span);
        // A record or list whose author broke the line after its opening bracket stays broken
        // (as in prettier): the layout is still a function of the text, so it is idempotent.
        let author_broke = matches!(&e.kind, ExprKind::Record(es) if !es.is_empty())
            && self
                .src
                .get(span.start as usize + 1..)
                .is_some_and(|rest| rest.trim_start_matches([' ', '\t']).starts_with('\n'));
        if !has_comment && !author_broke {
            let flat = self.flat(e);
            let width = flat.lines().next().map_or(0, str::len);
            if col + width <= MAX_WIDTH || !breakable(e) {
                return flat;
            }
        }
        match &e.kind {
            ExprKind::List(items) => {
                let parts: Vec<(Span, Option<Expr>)> =
                    items.iter().map(|x| (x.span, Some(x.clone()))).collect();
                self.broken("[", "]", &parts, level, span, |p, x, l| p.expr(x, l), true)
            }
            ExprKind::Record(entries) => {
                let parts: Vec<(Span, Option<RecordEntry>)> =
                    entries.iter().map(|x| (x.span, Some(x.clone()))).collect();
                self.broken(
                    "{",
                    "}",
                    &parts,
                    level,
                    span,
                    |p, en, l| {
                        let k = p.key(&en.key);
                        let v = p.expr_at(&en.value, l, l * 2 + k.len() + 3);
                        format!("{k} = {v}")
                    },
                    false,
                )
            }
            ExprKind::Call(f, args) => {
                let head = self.flat(f);
                let parts: Vec<(Span, Option<Arg>)> =
                    args.iter().map(|x| (x.span, Some(x.clone()))).collect();
                let body = self.broken(
                    "(",
                    ")",
                    &parts,
                    level,
                    span,
                    |p, a, l| match &a.name {
                        Some(n) => format!("{} = {}", n.text, p.expr(&a.value, l)),
                        None => p.expr(&a.value, l),
                    },
                    true,
                );
                format!("{head}{body}")
            }
            _ => self.flat(e),
        }
    }

    /// `open` + one element per line (with their comments) + `close`.
    #[expect(clippy::too_many_arguments, reason = "a private layout helper; a struct would only rename them")]
    fn broken<T>(
        &mut self,
        open: &str,
        close: &str,
        parts: &[(Span, Option<T>)],
        level: usize,
        whole: Span,
        render: impl Fn(&mut Self, &T, usize) -> String,
        commas: bool,
    ) -> String {
        let saved = std::mem::take(&mut self.out);
        self.out.push_str(open);
        self.out.push('\n');
        for (span, item) in parts {
            let Some(item) = item else { continue };
            let abs = self.abs(*span);
            let leading = self.take_before(abs.start);
            self.comment_lines(leading, level + 1, abs.start);
            self.push_indent(level + 1);
            let text = render(self, item, level + 1);
            self.out.push_str(&text);
            if commas {
                self.out.push(',');
            }
            // A trailing comment may follow the element's comma.
            let after = self.src.get(abs.end as usize..).map_or(0, |rest| {
                let t = rest.trim_start_matches([' ', '\t']);
                if commas && t.starts_with(',') { rest.len() - t.len() + 1 } else { 0 }
            });
            if let Some(t) = self.take_trailing(abs.end + after as u32) {
                self.out.push_str("  ");
                self.out.push_str(&t);
            }
            self.out.push('\n');
        }
        let inner = self.take_before(whole.end.saturating_sub(1));
        self.comment_lines(inner, level + 1, whole.end);
        self.push_indent(level);
        self.out.push_str(close);
        std::mem::replace(&mut self.out, saved)
    }

    /// The one-line rendering of an expression (multi-line strings keep their lines).
    fn flat(&mut self, e: &Expr) -> String {
        match &e.kind {
            ExprKind::Int(i) => i.raw.clone(),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Null => "null".to_owned(),
            ExprKind::Str(s) => self.string(s),
            ExprKind::Name(n) => n.text.clone(),
            ExprKind::List(xs) => {
                let parts: Vec<String> = xs.iter().map(|x| self.flat(x)).collect();
                format!("[{}]", parts.join(", "))
            }
            ExprKind::Record(es) => {
                if es.is_empty() {
                    return "{}".to_owned();
                }
                let parts: Vec<String> =
                    es.iter().map(|en| format!("{} = {}", self.key(&en.key), self.flat(&en.value))).collect();
                format!("{{ {} }}", parts.join(", "))
            }
            ExprKind::Unary(UnOp::Neg, x) => format!("-{}", self.flat(x)),
            ExprKind::Unary(UnOp::Not, x) => format!("not {}", self.flat(x)),
            ExprKind::Binary(op, a, b) => format!("{} {} {}", self.flat(a), op.as_str(), self.flat(b)),
            ExprKind::Call(f, args) => {
                let parts: Vec<String> = args
                    .iter()
                    .map(|a| match &a.name {
                        Some(n) => format!("{} = {}", n.text, self.flat(&a.value)),
                        None => self.flat(&a.value),
                    })
                    .collect();
                format!("{}({})", self.flat(f), parts.join(", "))
            }
            ExprKind::Member(x, n) => format!("{}.{}", self.flat(x), n.text),
            ExprKind::Index(x, i) => format!("{}[{}]", self.flat(x), self.flat(i)),
            ExprKind::If(c, a, b) => {
                format!("if {} then {} else {}", self.flat(c), self.flat(a), self.flat(b))
            }
            ExprKind::Paren(x) => format!("({})", self.flat(x)),
            ExprKind::Comprehension(c) => {
                let b: Vec<&str> = c.bindings.iter().map(|n| n.text.as_str()).collect();
                let mut s =
                    format!("[{} for {} in {}", self.flat(&c.value), b.join(", "), self.flat(&c.iter));
                if let Some(cond) = &c.cond {
                    s.push_str(" if ");
                    s.push_str(&self.flat(cond));
                }
                s.push(']');
                s
            }
            ExprKind::Error => "<error>".to_owned(),
        }
    }
}

fn breakable(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::List(xs) => !xs.is_empty(),
        ExprKind::Record(es) => !es.is_empty(),
        ExprKind::Call(_, args) => !args.is_empty(),
        _ => false,
    }
}

fn path(p: &[Name]) -> String {
    p.iter().map(|n| n.text.as_str()).collect::<Vec<_>>().join(".")
}
