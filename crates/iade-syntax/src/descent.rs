//! A hand-written recursive-descent parser for well-formed items: the common case, several
//! times faster than the chumsky grammar and without its intermediate values.
//!
//! It follows `grammar.rs` construct by construct and gives up (returns `None`) at the first
//! token it does not expect, at any choice it does not decide with certainty, and on the forms
//! it leaves to the grammar (`waive`, and a test file's `test`, `with param`, `observed` and
//! `expect`). The caller then parses the item with the grammar, which also reports the errors.
//!
//! Invariant: when this parser returns a tree, the grammar parses the same tokens without error
//! into the same tree (same spans). Each choice point below says why the grammar's ordered
//! choice lands on the same alternative; each repetition stops where the grammar's does, or
//! gives up. The `descent` tests compare both on every source of the repository, on mutated
//! sources and on random token soups.

use chumsky::span::SimpleSpan;
use iade_span::Span;

use crate::ast::*;
use crate::token::{Token, parse_int};

type Pair<'s> = (Token<'s>, SimpleSpan);

/// Nesting beyond this (statements, expressions and types, counted together) is left to the
/// grammar, which takes items up to the structure pass's `MAX_NESTING`: real sources nest far
/// less, and this parser then never needs more stack than the grammar.
pub(crate) const MAX_DEPTH: u32 = 64;

/// Parses one item's tokens (spans relative to the item) into its statement, or `None` when the
/// item is not one this parser takes on.
pub(crate) fn item(toks: &[Pair<'_>]) -> Option<Stmt> {
    let mut p = Descent { toks, pos: 0, depth: 0 };
    let stmt = p.stmt()?;
    (p.pos == toks.len()).then_some(stmt)
}

struct Descent<'a, 's> {
    toks: &'a [Pair<'s>],
    pos: usize,
    depth: u32,
}

fn boxed(e: Expr) -> Box<Expr> {
    Box::new(e)
}

/// A binary operator and its binding strength (`BinOp::precedence`: `or` 1 … `*` 9; the
/// comparisons share 4 and do not chain).
fn binary_op(t: Token<'_>) -> Option<BinOp> {
    Some(match t {
        Token::Or => BinOp::Or,
        Token::And => BinOp::And,
        Token::EqEq => BinOp::Eq,
        Token::NotEq => BinOp::Ne,
        Token::Le => BinOp::Le,
        Token::Lt => BinOp::Lt,
        Token::Ge => BinOp::Ge,
        Token::Gt => BinOp::Gt,
        Token::In => BinOp::In,
        Token::Pipe => BinOp::BitOr,
        Token::Caret => BinOp::BitXor,
        Token::Amp => BinOp::BitAnd,
        Token::Plus => BinOp::Add,
        Token::Minus => BinOp::Sub,
        Token::Star => BinOp::Mul,
        Token::Slash => BinOp::Div,
        Token::Percent => BinOp::Rem,
        _ => return None,
    })
}

/// The comparisons' level: `not` applies to a whole comparison, and binds looser.
const COMPARISON: u8 = 4;

impl<'s> Descent<'_, 's> {
    fn peek(&self) -> Option<Token<'s>> {
        self.toks.get(self.pos).map(|t| t.0)
    }

    fn peek_at(&self, ahead: usize) -> Option<Token<'s>> {
        self.toks.get(self.pos + ahead).map(|t| t.0)
    }

    fn at(&self, t: Token<'_>) -> bool {
        self.peek() == Some(t)
    }

    fn at_string(&self) -> bool {
        matches!(self.peek(), Some(Token::StrOpen | Token::MStrOpen))
    }

    fn eat(&mut self, t: Token<'_>) -> bool {
        let hit = self.at(t);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect(&mut self, t: Token<'_>) -> Option<()> {
        self.eat(t).then_some(())
    }

    /// `(` wherever the grammar takes either kind (`lparen` there).
    fn eat_lparen(&mut self) -> bool {
        self.eat(Token::LParen) || self.eat(Token::LParenLine)
    }

    /// The span from token `start` to the last token taken, as chumsky's `map_with` gives it.
    fn span_from(&self, start: usize) -> Span {
        let from = self.toks.get(start).map_or(0, |t| t.1.start);
        let to = self.pos.checked_sub(1).and_then(|i| self.toks.get(i)).map_or(from, |t| t.1.end);
        Span::from(from..to)
    }

    fn deeper(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn ident(&mut self) -> Option<Name> {
        let Some(Token::Ident(s)) = self.peek() else { return None };
        self.pos += 1;
        Some(Name { text: s.to_owned(), span: self.span_from(self.pos - 1) })
    }

    fn int(&mut self) -> Option<IntLit> {
        let Some(Token::Int(raw)) = self.peek() else { return None };
        self.pos += 1;
        Some(IntLit { value: parse_int(raw).unwrap_or_default(), raw: raw.to_owned() })
    }

    fn string(&mut self) -> Option<StrLit> {
        let start = self.pos;
        let multiline = match self.peek()? {
            Token::StrOpen => false,
            Token::MStrOpen => true,
            _ => return None,
        };
        self.pos += 1;
        let mut parts = Vec::new();
        loop {
            match self.peek()? {
                Token::StrText(raw) => {
                    self.pos += 1;
                    parts.push(StrPart::Text { raw: raw.to_owned(), span: self.span_from(self.pos - 1) });
                }
                Token::InterpOpen => {
                    self.pos += 1;
                    let e = self.expr()?;
                    self.expect(Token::InterpClose)?;
                    parts.push(StrPart::Interp(e));
                }
                Token::StrClose => {
                    self.pos += 1;
                    break;
                }
                _ => return None,
            }
        }
        // A string has a part or three; a first push makes room for four.
        parts.shrink_to_fit();
        Some(StrLit { parts, multiline, span: self.span_from(start) })
    }

    fn key(&mut self) -> Option<Key> {
        if self.at_string() { self.string().map(Key::Str) } else { self.ident().map(Key::Ident) }
    }

    /// `a.b.c`: a dot not followed by a name is not taken, as the grammar's `separated_by`
    /// rewinds it.
    fn name_path(&mut self) -> Option<Vec<Name>> {
        let mut path = vec![self.ident()?];
        while self.at(Token::Dot) && matches!(self.peek_at(1), Some(Token::Ident(_))) {
            self.pos += 1;
            path.push(self.ident()?);
        }
        Some(path)
    }

    /// Elements separated by commas, a trailing comma allowed, up to `close` (taken). No
    /// element starts with a closing delimiter, so the grammar's repetition stops exactly where
    /// `close` is found.
    fn comma_list<T>(
        &mut self,
        close: Token<'_>,
        at_least_one: bool,
        mut element: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut out = Vec::new();
        if !self.at(close) {
            out.push(element(self)?);
            while self.eat(Token::Comma) {
                if self.at(close) {
                    break;
                }
                out.push(element(self)?);
            }
        }
        if at_least_one && out.is_empty() {
            return None;
        }
        self.expect(close)?;
        Some(out)
    }

    // ---- expressions ----

    fn expr(&mut self) -> Option<Expr> {
        self.deeper()?;
        let e = self.binary(0)?;
        self.depth -= 1;
        Some(e)
    }

    /// Operators binding at least `min`, by precedence climbing: the tree and spans of the
    /// grammar's one-level-per-precedence chain (each left-associative, each node spanning from
    /// its level's first operand). After an operator the operand must parse: the grammar would
    /// rewind the operator, and nothing after an expression could take it.
    fn binary(&mut self, min: u8) -> Option<Expr> {
        let start = self.pos;
        let mut lhs = if min < COMPARISON && self.at(Token::Not) {
            // `not not a == b`: each `not` spans from itself to the end of the comparison.
            let first = self.pos;
            while self.eat(Token::Not) {}
            let ops = self.pos - first;
            let mut e = self.binary(COMPARISON)?;
            for at in (first..first + ops).rev() {
                e = Expr { kind: ExprKind::Unary(UnOp::Not, boxed(e)), span: self.span_from(at) };
            }
            e
        } else {
            self.negation()?
        };
        while let Some(op) = self.peek().and_then(binary_op) {
            let prec = op.precedence();
            if prec < min {
                break;
            }
            self.pos += 1;
            let rhs = self.binary(prec + 1)?;
            lhs = if prec == COMPARISON {
                // A second comparison is the grammar's chained-comparison error.
                if self.peek().and_then(binary_op).is_some_and(|o| o.precedence() == COMPARISON) {
                    return None;
                }
                let span = lhs.span.cover(rhs.span);
                Expr { kind: ExprKind::Binary(op, boxed(lhs), boxed(rhs)), span }
            } else {
                Expr { kind: ExprKind::Binary(op, boxed(lhs), boxed(rhs)), span: self.span_from(start) }
            };
        }
        Some(lhs)
    }

    /// `- -x`: each `-` spans from itself to the end of its operand.
    fn negation(&mut self) -> Option<Expr> {
        let first = self.pos;
        while self.eat(Token::Minus) {}
        let ops = self.pos - first;
        let mut e = self.postfix()?;
        for at in (first..first + ops).rev() {
            e = Expr { kind: ExprKind::Unary(UnOp::Neg, boxed(e)), span: self.span_from(at) };
        }
        Some(e)
    }

    /// Calls, members and indexes; `(` and `[` at the start of a line do not continue.
    fn postfix(&mut self) -> Option<Expr> {
        let start = self.pos;
        let mut e = self.atom()?;
        loop {
            let kind = match self.peek() {
                Some(Token::LParen) => {
                    self.pos += 1;
                    let args = self.comma_list(Token::RParen, false, Self::arg)?;
                    ExprKind::Call(boxed(e), args)
                }
                Some(Token::Dot) => {
                    self.pos += 1;
                    ExprKind::Member(boxed(e), self.ident()?)
                }
                Some(Token::LBracket) => {
                    self.pos += 1;
                    let index = self.expr()?;
                    self.expect(Token::RBracket)?;
                    ExprKind::Index(boxed(e), boxed(index))
                }
                _ => return Some(e),
            };
            e = Expr { kind, span: self.span_from(start) };
        }
    }

    fn arg(&mut self) -> Option<Arg> {
        let start = self.pos;
        let name = if matches!(self.peek(), Some(Token::Ident(_))) && self.peek_at(1) == Some(Token::Eq) {
            let name = self.ident();
            self.pos += 1;
            name
        } else {
            None
        };
        let value = self.expr()?;
        Some(Arg { name, value, span: self.span_from(start) })
    }

    /// The first token decides the atom: the grammar's alternatives start differently.
    fn atom(&mut self) -> Option<Expr> {
        let start = self.pos;
        let kind = match self.peek()? {
            Token::Int(_) => ExprKind::Int(self.int()?),
            Token::True | Token::False | Token::Null => {
                let t = self.peek()?;
                self.pos += 1;
                match t {
                    Token::True => ExprKind::Bool(true),
                    Token::False => ExprKind::Bool(false),
                    _ => ExprKind::Null,
                }
            }
            Token::StrOpen | Token::MStrOpen => ExprKind::Str(self.string()?),
            Token::Ident(_) => ExprKind::Name(self.ident()?),
            Token::LBracket | Token::LBracketLine => {
                self.pos += 1;
                self.list()?
            }
            Token::LBrace => {
                self.pos += 1;
                let mut entries = Vec::new();
                while !self.eat(Token::RBrace) {
                    let entry_start = self.pos;
                    let key = self.key()?;
                    self.expect(Token::Eq)?;
                    let value = self.expr()?;
                    entries.push(RecordEntry { key, value, span: self.span_from(entry_start) });
                    self.eat(Token::Comma);
                }
                ExprKind::Record(entries)
            }
            Token::LParen | Token::LParenLine => {
                self.pos += 1;
                let inner = self.expr()?;
                self.expect(Token::RParen)?;
                ExprKind::Paren(boxed(inner))
            }
            Token::If => {
                self.pos += 1;
                let cond = self.expr()?;
                self.expect(Token::Then)?;
                let then = self.expr()?;
                self.expect(Token::Else)?;
                let otherwise = self.expr()?;
                ExprKind::If(boxed(cond), boxed(then), boxed(otherwise))
            }
            _ => return None,
        };
        Some(Expr { kind, span: self.span_from(start) })
    }

    /// After `[`: a list or a comprehension, up to `]` (taken).
    fn list(&mut self) -> Option<ExprKind> {
        if self.eat(Token::RBracket) {
            return Some(ExprKind::List(Vec::new()));
        }
        let first = self.expr()?;
        let kind = if self.eat(Token::For) {
            let mut bindings = vec![self.ident()?];
            if self.eat(Token::Comma) {
                bindings.push(self.ident()?);
            }
            self.expect(Token::In)?;
            let iter = self.expr()?;
            let cond = if self.eat(Token::If) { Some(self.expr()?) } else { None };
            self.expect(Token::RBracket)?;
            ExprKind::Comprehension(Box::new(Comprehension { value: first, bindings, iter, cond }))
        } else if self.eat(Token::Comma) {
            let mut items = self.comma_list(Token::RBracket, false, Self::expr)?;
            items.insert(0, first);
            ExprKind::List(items)
        } else {
            self.expect(Token::RBracket)?;
            ExprKind::List(vec![first])
        };
        Some(kind)
    }

    // ---- types ----

    fn ty(&mut self) -> Option<Type> {
        self.deeper()?;
        let start = self.pos;
        let first = self.optional_type()?;
        let t = if self.at(Token::Pipe) {
            let mut alternatives = vec![first];
            while self.eat(Token::Pipe) {
                alternatives.push(self.optional_type()?);
            }
            Type { kind: TypeKind::Union(alternatives), span: self.span_from(start) }
        } else {
            first
        };
        self.depth -= 1;
        Some(t)
    }

    fn optional_type(&mut self) -> Option<Type> {
        let start = self.pos;
        let kind = match self.peek()? {
            Token::StrOpen | Token::MStrOpen => TypeKind::Str(self.string()?),
            Token::Int(_) => TypeKind::Int(self.int()?),
            // `list(…)` is tried before a plain name: with `(` after the name it is the one.
            Token::Ident(_) if matches!(self.peek_at(1), Some(Token::LParen | Token::LParenLine)) => {
                let name = self.ident()?;
                self.pos += 1;
                TypeKind::App(name, self.comma_list(Token::RParen, true, Self::ty)?)
            }
            Token::Ident(_) => TypeKind::Named(self.name_path()?),
            Token::LBrace => {
                self.pos += 1;
                let mut fields = Vec::new();
                while !self.eat(Token::RBrace) {
                    let key = self.key()?;
                    self.expect(Token::Colon)?;
                    fields.push((key, self.ty()?));
                    self.eat(Token::Comma);
                }
                TypeKind::Record(fields)
            }
            _ => return None,
        };
        let mut t = Type { kind, span: self.span_from(start) };
        while self.eat(Token::Question) {
            t = Type { kind: TypeKind::Optional(Box::new(t)), span: self.span_from(start) };
        }
        Some(t)
    }

    // ---- statements ----

    fn block(&mut self) -> Option<Block> {
        let start = self.pos;
        self.expect(Token::LBrace)?;
        let mut stmts = Vec::new();
        // No statement starts with `}`: the grammar's repetition stops exactly there.
        while !self.eat(Token::RBrace) {
            stmts.push(self.stmt()?);
            self.eat(Token::Comma);
        }
        Some(Block { stmts, span: self.span_from(start) })
    }

    /// The grammar tries the keyword forms first (each starts with its own keyword), then an
    /// entry (a name or string then `=`), then the forms led by a contextual word, then a field
    /// declaration (`role name :`), then a resource. The lookahead below picks the alternative
    /// the grammar's first success is.
    fn stmt(&mut self) -> Option<Stmt> {
        self.deeper()?;
        let start = self.pos;
        let kind = match self.peek()? {
            Token::Use => self.use_decl()?,
            Token::Param => {
                self.pos += 1;
                let name = self.ident()?;
                self.expect(Token::Colon)?;
                let ty = self.ty()?;
                let default = if self.eat(Token::Eq) { Some(self.expr()?) } else { None };
                StmtKind::Param(Box::new(ParamDecl { name, ty, default }))
            }
            Token::Let => {
                self.pos += 1;
                let name = self.ident()?;
                let ty = if self.eat(Token::Colon) { Some(self.ty()?) } else { None };
                self.expect(Token::Eq)?;
                let value = self.expr()?;
                StmtKind::Let(Box::new(LetDecl { name, ty, value }))
            }
            Token::Kind => {
                self.pos += 1;
                let name = self.ident()?;
                StmtKind::Kind(KindDecl { name, body: self.block()? })
            }
            Token::Rule => self.rule()?,
            Token::Policy => {
                self.pos += 1;
                let name = self.ident()?;
                StmtKind::Policy(PolicyDecl { name, body: self.block()? })
            }
            Token::Control => {
                self.pos += 1;
                let id = if self.at_string() {
                    ControlId::Str(self.string()?)
                } else {
                    ControlId::Ident(self.ident()?)
                };
                StmtKind::Control(ControlDecl { id, body: self.block()? })
            }
            Token::For => {
                self.pos += 1;
                let mut bindings = vec![self.ident()?];
                if self.eat(Token::Comma) {
                    bindings.push(self.ident()?);
                }
                self.expect(Token::In)?;
                let iter = self.expr()?;
                let body = self.block()?;
                StmtKind::For(Box::new(ForStmt { bindings, iter, body }))
            }
            Token::If => self.if_stmt()?,
            Token::Require => {
                self.pos += 1;
                let cond = self.expr()?;
                let message = if self.eat(Token::Else) { Some(Box::new(self.expr()?)) } else { None };
                StmtKind::Require(Require { cond, message })
            }
            Token::StrOpen | Token::MStrOpen => self.attr()?,
            Token::Ident(_) if self.peek_at(1) == Some(Token::Eq) => self.attr()?,
            // `role name :` is a field declaration. The forms led by a contextual word all fail
            // at a name followed by `:`, but for `expect`, whose expression stops before it.
            Token::Ident(w)
                if w != "expect"
                    && matches!(self.peek_at(1), Some(Token::Ident(_)))
                    && self.peek_at(2) == Some(Token::Colon) =>
            {
                self.field()?
            }
            Token::Ident("provider") => {
                self.pos += 1;
                let provider_type = self.ident()?;
                let name = self.ident()?;
                StmtKind::Provider(ProviderDecl { provider_type, name, body: self.block()? })
            }
            Token::Ident("stack") => {
                self.pos += 1;
                let name = self.ident()?;
                StmtKind::Stack(StackDecl { name, body: self.block()? })
            }
            Token::Ident("waive" | "test" | "with" | "observed" | "expect") => return None,
            Token::Ident("component") => self.component()?,
            Token::Ident(_) => {
                let kind = self.name_path()?;
                let name = if self.at_string() {
                    ResourceName::Str(self.string()?)
                } else {
                    ResourceName::Ident(self.ident()?)
                };
                StmtKind::Resource(ResourceDecl { kind, name, body: self.block()? })
            }
            _ => return None,
        };
        self.depth -= 1;
        Some(Stmt { kind, span: self.span_from(start), doc: None })
    }

    /// `key = value`. `key =` followed by `name =` is the grammar's missing-value error.
    fn attr(&mut self) -> Option<StmtKind> {
        let key = self.key()?;
        self.expect(Token::Eq)?;
        if matches!(self.peek(), Some(Token::Ident(_))) && self.peek_at(1) == Some(Token::Eq) {
            return None;
        }
        let value = self.expr()?;
        Some(StmtKind::Attr(Attr { key, value }))
    }

    fn use_decl(&mut self) -> Option<StmtKind> {
        self.pos += 1;
        let path =
            if self.at_string() { UsePath::File(self.string()?) } else { UsePath::Module(self.name_path()?) };
        let names = if self.eat(Token::Dot) {
            self.expect(Token::LBrace)?;
            Some(self.comma_list(Token::RBrace, true, |p| {
                let name = p.ident()?;
                let alias = if p.eat(Token::As) { Some(p.ident()?) } else { None };
                Some(UseName { name, alias })
            })?)
        } else {
            None
        };
        let alias = if self.eat(Token::As) { Some(self.ident()?) } else { None };
        Some(StmtKind::Use(UseDecl { path, alias, names }))
    }

    fn rule(&mut self) -> Option<StmtKind> {
        self.pos += 1;
        let name = self.ident()?;
        if !self.eat_lparen() {
            return None;
        }
        let params = self.comma_list(Token::RParen, false, |p| {
            let name = p.ident()?;
            p.expect(Token::Colon)?;
            Some(RuleParam { name, ty: p.ty()? })
        })?;
        self.expect(Token::Eq)?;
        let body = self.expr()?;
        let message = if self.eat(Token::Else) { Some(self.expr()?) } else { None };
        Some(StmtKind::Rule(Box::new(RuleDecl { name, params, body, message })))
    }

    fn if_stmt(&mut self) -> Option<StmtKind> {
        self.deeper()?;
        self.pos += 1;
        let cond = self.expr()?;
        let then = self.block()?;
        let otherwise = if self.eat(Token::Else) {
            if self.at(Token::If) {
                let start = self.pos;
                let kind = self.if_stmt()?;
                Some(Else::If(Box::new(Stmt { kind, span: self.span_from(start), doc: None })))
            } else {
                Some(Else::Block(self.block()?))
            }
        } else {
            None
        };
        self.depth -= 1;
        Some(StmtKind::If(Box::new(IfStmt { cond, then, otherwise })))
    }

    fn component(&mut self) -> Option<StmtKind> {
        self.pos += 1;
        let name = self.ident()?;
        let params = if self.eat_lparen() {
            self.comma_list(Token::RParen, false, |p| {
                let name = p.ident()?;
                p.expect(Token::Colon)?;
                let ty = p.ty()?;
                let default = if p.eat(Token::Eq) { Some(p.expr()?) } else { None };
                Some(ComponentParam { name, ty, default })
            })?
        } else {
            Vec::new()
        };
        let body = self.block()?;
        Some(StmtKind::Component(Box::new(ComponentDecl { name, params, body })))
    }

    fn field(&mut self) -> Option<StmtKind> {
        let role = self.ident()?;
        let name = self.ident()?;
        self.expect(Token::Colon)?;
        let ty = self.ty()?;
        let refers = if self.eat(Token::Ident("refers")) { Some(self.name_path()?) } else { None };
        let default = if self.eat(Token::Eq) { Some(self.expr()?) } else { None };
        let constraint = if self.eat(Token::Where) { Some(self.expr()?) } else { None };
        Some(StmtKind::Field(Box::new(FieldDecl { role, name, ty, refers, default, constraint })))
    }
}
