//! The structure pass: runs between the lexer and the parser.
//!
//! It matches delimiters (so a missing `}` is reported at the block that is not closed, using
//! indentation to tell which one), enforces the nesting limit before any recursive code runs,
//! and splits the token stream into top-level items that are parsed independently: one slip
//! yields one error and never swallows the items after it.

use iade_diagnostics::{Diagnostic, codes};
use iade_span::{FileId, Span};

use crate::token::{Tok, Token};

/// How deep brackets, interpolations, unary operators and operator chains may nest.
pub const MAX_NESTING: usize = 256;

/// The tokens of one top-level item, closers inserted where the input lacked them: a slice of
/// the lexer's tokens, or a repaired copy.
#[derive(Debug)]
pub struct ItemToks<'a, 's> {
    pub toks: std::borrow::Cow<'a, [Tok<'s>]>,
    /// The item exceeded the nesting limit: it is reported and must not be parsed.
    pub poisoned: bool,
    /// Absolute offset of the first closer the pass had to insert: parse errors from there on
    /// are consequences of the reported missing delimiter.
    pub repaired_at: Option<u32>,
}

#[derive(Clone, Copy)]
struct Open {
    token: Token<'static>,
    span: Span,
    /// Indentation of the line the delimiter opened on.
    line_indent: u32,
    /// Operator-chain length of the enclosing level when this one opened.
    saved_chain: usize,
}

fn closer_for(open: Token<'_>) -> Token<'static> {
    match open {
        Token::LBrace => Token::RBrace,
        Token::LParen | Token::LParenLine => Token::RParen,
        Token::LBracket | Token::LBracketLine => Token::RBracket,
        Token::StrOpen | Token::MStrOpen => Token::StrClose,
        _ => Token::InterpClose,
    }
}

fn is_opener(t: Token<'_>) -> bool {
    matches!(
        t,
        Token::LBrace
            | Token::LParen
            | Token::LParenLine
            | Token::LBracket
            | Token::LBracketLine
            | Token::StrOpen
            | Token::MStrOpen
            | Token::InterpOpen
    )
}

fn is_closer(t: Token<'_>) -> bool {
    matches!(t, Token::RBrace | Token::RParen | Token::RBracket | Token::StrClose | Token::InterpClose)
}

fn is_string_level(t: Token<'_>) -> bool {
    matches!(t, Token::StrOpen | Token::MStrOpen | Token::InterpOpen)
}

/// Tokens that lengthen an operator chain (postfix `(`/`[` are counted where they open).
fn is_binary_op(t: Token<'_>) -> bool {
    t.continues_expression() && !matches!(t, Token::LParen | Token::LBracket | Token::Question | Token::Minus)
}

fn always_item_start(t: Token<'_>) -> bool {
    matches!(t, Token::Use | Token::Param | Token::Kind | Token::Rule | Token::Policy | Token::Control)
}

/// Whether a token at the start of a line may begin a top-level item (it does when nothing
/// is open and the token before ends an operand; see `starts_item_at_top`).
pub(crate) fn may_start_item(t: Token<'_>) -> bool {
    always_item_start(t) || matches!(t, Token::Let | Token::For | Token::If | Token::Ident(_))
}

/// The text of a delimiter for messages.
fn delim_text(t: Token<'_>) -> &'static str {
    t.keyword_or_punct().unwrap_or("\"")
}

struct Pass<'a, 's> {
    file: FileId,
    toks: &'a [Tok<'s>],
    diags: Vec<Diagnostic>,
    items: Vec<ItemToks<'a, 's>>,
    /// The current item is `toks[cur_start..cur_end]` until a token is inserted, replaced or
    /// dropped; from then on (`owned`) it is `cur`.
    cur_start: usize,
    cur_end: usize,
    owned: bool,
    cur: Vec<Tok<'s>>,
    poisoned: bool,
    repaired_at: Option<u32>,
    depth_reported: bool,
    stack: Vec<Open>,
    chain: usize,
    chain_total: usize,
    prefix_run: usize,
    line_indent: u32,
}

/// Splits `toks` into items and repairs delimiters.
pub fn structure<'a, 's>(file: FileId, toks: &'a [Tok<'s>]) -> (Vec<ItemToks<'a, 's>>, Vec<Diagnostic>) {
    let part = structure_part(file, toks, 0, &[]);
    (part.items, part.diags)
}

/// What [`structure_part`] found: the items and diagnostics of its tokens, and where it
/// stopped.
pub(crate) struct Part<'a, 's> {
    pub items: Vec<ItemToks<'a, 's>>,
    pub diags: Vec<Diagnostic>,
    /// The index in `stops` of the token it stopped before; `None`: it ran to the end.
    pub stop: Option<usize>,
}

/// [`structure`] of `toks` from `start` on, as the pass over the whole would find it there if
/// no delimiter were open before `start` and an item began at it (the caller checks that by
/// where the part before it stopped). It stops before the first of `stops` (token indexes,
/// ascending) past `start` where that holds: no delimiter is open and an item begins. The
/// parts a file is cut into at such points are then exactly the whole pass's, and can be
/// found at once.
pub(crate) fn structure_part<'a, 's>(
    file: FileId,
    toks: &'a [Tok<'s>],
    start: usize,
    stops: &[usize],
) -> Part<'a, 's> {
    let mut p = Pass::new(file, toks, start);
    let mut next = stops.partition_point(|&s| s <= start);
    for i in start..toks.len() {
        if stops.get(next) == Some(&i) {
            if p.stack.is_empty() && p.starts_item_at_top(i) {
                p.finish_item(i);
                return Part { items: p.items, diags: p.diags, stop: Some(next) };
            }
            next += 1;
        }
        p.step(i);
    }
    let end = toks.last().map_or(0, |t| t.span.end);
    p.close_all(end, None);
    p.finish_item(toks.len());
    Part { items: p.items, diags: p.diags, stop: None }
}

/// [`structure`] of the first of two runs of a file's tokens, lexed apart, when `next` (the
/// first token of the second run) begins an item with no delimiter open: the items and
/// diagnostics the pass over the whole finds in the first run. `None` otherwise: the runs
/// must then be passed over together.
pub(crate) fn structure_before<'a, 's>(
    file: FileId,
    toks: &'a [Tok<'s>],
    next: Tok<'s>,
) -> Option<(Vec<ItemToks<'a, 's>>, Vec<Diagnostic>)> {
    let mut p = Pass::new(file, toks, 0);
    for i in 0..toks.len() {
        p.step(i);
    }
    if !(p.stack.is_empty() && p.starts_item_at(toks.len(), next)) {
        return None;
    }
    p.finish_item(toks.len());
    Some((p.items, p.diags))
}

impl<'a, 's> Pass<'a, 's> {
    /// A pass over `toks` from `start` on, with nothing open.
    fn new(file: FileId, toks: &'a [Tok<'s>], start: usize) -> Self {
        Pass {
            file,
            toks,
            diags: Vec::new(),
            items: Vec::new(),
            cur_start: start,
            cur_end: start,
            owned: false,
            cur: Vec::new(),
            poisoned: false,
            repaired_at: None,
            depth_reported: false,
            stack: Vec::new(),
            chain: 0,
            chain_total: 0,
            prefix_run: 0,
            line_indent: 0,
        }
    }

    /// Token `i` goes into the current item as it is.
    fn keep(&mut self, i: usize) {
        if self.owned {
            self.cur.push(self.toks[i]);
        } else {
            debug_assert_eq!(self.cur_end, i, "invariant: an unowned item is a run of kept tokens");
            self.cur_end = i + 1;
        }
    }

    /// From now on the current item is a copy: a token is inserted, replaced or dropped.
    fn own(&mut self) {
        if !self.owned {
            self.cur.clear();
            self.cur.extend_from_slice(&self.toks[self.cur_start..self.cur_end]);
            self.owned = true;
        }
    }

    /// The last token of the current item.
    fn last(&self) -> Option<&Tok<'s>> {
        if self.owned { self.cur.last() } else { self.toks[self.cur_start..self.cur_end].last() }
    }

    fn prev(&self, i: usize) -> Option<Token<'s>> {
        i.checked_sub(1).map(|j| self.toks[j].token)
    }

    /// Ends the current item; the next one starts at token `next`.
    fn finish_item(&mut self, next: usize) {
        let toks: std::borrow::Cow<'a, [Tok<'s>]> = if self.owned {
            // An exact copy; the buffer is reused for the next item.
            std::borrow::Cow::Owned(self.cur.clone())
        } else {
            std::borrow::Cow::Borrowed(&self.toks[self.cur_start..self.cur_end])
        };
        if !toks.is_empty() {
            self.items.push(ItemToks { toks, poisoned: self.poisoned, repaired_at: self.repaired_at });
        }
        self.cur.clear();
        self.owned = false;
        self.cur_start = next;
        self.cur_end = next;
        self.poisoned = false;
        self.repaired_at = None;
        self.depth_reported = false;
        self.chain = 0;
        self.chain_total = 0;
        self.prefix_run = 0;
    }

    /// Whether token `i` begins a new top-level item while no delimiter is open.
    fn starts_item_at_top(&self, i: usize) -> bool {
        self.starts_item_at(i, self.toks[i])
    }

    /// Whether `t`, as token `i` (after the tokens before `i`), begins a new top-level item
    /// while no delimiter is open.
    fn starts_item_at(&self, i: usize, t: Tok<'s>) -> bool {
        let Some(prev) = self.prev(i) else { return true };
        // `waive control NAME for …` is one item: its `control` and `for` start none.
        let back = |n: usize| i.checked_sub(n).map(|j| self.toks[j].token);
        if (t.token == Token::Control && back(1) == Some(Token::Ident("waive")))
            || (t.token == Token::For
                && back(2) == Some(Token::Control)
                && back(3) == Some(Token::Ident("waive")))
        {
            return false;
        }
        if (always_item_start(t.token) || matches!(t.token, Token::Let | Token::For))
            && (prev.ends_operand() || t.line_start)
            && !matches!(
                prev,
                Token::Param
                    | Token::Let
                    | Token::Rule
                    | Token::Kind
                    | Token::Policy
                    | Token::Control
                    | Token::Use
                    | Token::As
                    | Token::Dot
                    | Token::Comma
                    | Token::For
            )
        {
            return true;
        }
        t.line_start && prev.ends_operand() && matches!(t.token, Token::Ident(_) | Token::If)
    }

    /// Whether token `i`, at column 0 while delimiters are open, is so clearly a new item
    /// that the open delimiters must have lost their closers.
    fn starts_item_in_block(&self, i: usize) -> bool {
        let t = self.toks[i];
        if !t.line_start || t.col != 0 || self.stack.iter().any(|o| is_string_level(o.token)) {
            return false;
        }
        let prev_ok = self.prev(i).is_some_and(|p| p.ends_operand() || p == Token::LBrace);
        if !prev_ok {
            return false;
        }
        if always_item_start(t.token) || matches!(t.token, Token::Let | Token::For) {
            return true;
        }
        let next = self.toks.get(i + 1).map(|t| t.token);
        matches!(t.token, Token::Ident(_))
            && matches!(next, Some(Token::Ident(_) | Token::StrOpen | Token::Dot))
    }

    fn depth(&self) -> usize {
        self.stack.len() + self.chain_total + self.chain + self.prefix_run
    }

    fn check_depth(&mut self, span: Span) {
        if self.depth() > MAX_NESTING && !self.depth_reported {
            self.depth_reported = true;
            self.poisoned = true;
            self.diags.push(
                Diagnostic::new(codes::E0011, format!("nesting too deep (more than {MAX_NESTING} levels)"))
                    .primary(self.file, span, format!("level {} starts here", MAX_NESTING + 1))
                    .help("split the expression into smaller parts with `let` bindings"),
            );
        }
    }

    /// Reports the open delimiter `open` as never closed and appends a virtual closer at `at`.
    fn report_unclosed(&mut self, open: Open, at: u32, before: Option<Span>) {
        let text = delim_text(open.token);
        let close = delim_text(closer_for(open.token));
        let mut d = Diagnostic::new(codes::E0009, format!("unclosed `{text}`")).primary(
            self.file,
            open.span,
            format!("this `{text}` is never closed"),
        );
        d = match before {
            Some(span) => d.secondary(self.file, span, format!("`{close}` expected before this")),
            None => d.secondary(self.file, Span::empty(at), "the file ends here"),
        };
        self.diags.push(d.help(format!("add `{close}` to close it")));
        self.push_virtual(closer_for(open.token), at);
    }

    fn push_virtual(&mut self, token: Token<'static>, at: u32) {
        self.repaired_at.get_or_insert(at);
        self.own();
        self.cur.push(Tok { token, span: Span::empty(at), line_start: false, col: 0 });
    }

    fn pop_frame(&mut self) -> Option<Open> {
        let open = self.stack.pop()?;
        self.chain_total = self.chain_total.saturating_sub(open.saved_chain);
        self.chain = open.saved_chain;
        Some(open)
    }

    /// Closes every open delimiter (innermost first) at `at`.
    /// Only the innermost is reported: it is where the text stopped; the enclosing ones close
    /// with it (one slip, one error).
    fn close_all(&mut self, at: u32, before: Option<Span>) {
        let mut reported = false;
        while let Some(open) = self.pop_frame() {
            if is_string_level(open.token) || reported {
                self.push_virtual(closer_for(open.token), at);
            } else {
                let enclosing = self.stack.iter().filter(|o| !is_string_level(o.token)).count();
                self.report_unclosed(open, at, before);
                if enclosing > 0
                    && let Some(d) = self.diags.last_mut()
                {
                    let what = if enclosing == 1 { "delimiter is" } else { "delimiters are" };
                    d.notes.push(format!("{enclosing} enclosing {what} not closed either"));
                }
                reported = true;
            }
        }
    }

    fn step(&mut self, i: usize) {
        let t = self.toks[i];
        if t.line_start {
            self.line_indent = t.col;
        }
        let prev_end = self.last().map_or(t.span.start, |p| p.span.end);
        if self.stack.is_empty() {
            if self.starts_item_at_top(i) {
                self.finish_item(i);
            }
        } else if self.starts_item_in_block(i) {
            self.close_all(prev_end, Some(t.span));
            self.finish_item(i);
        }

        // Operator chains and prefix runs count towards nesting.
        match t.token {
            Token::Minus | Token::Not if !self.prev(i).is_some_and(|p| p.ends_operand()) => {
                self.prefix_run += 1;
                self.check_depth(t.span);
            }
            tok if is_binary_op(tok) || tok == Token::Minus => {
                self.prefix_run = 0;
                self.chain += 1;
                self.check_depth(t.span);
            }
            Token::Eq | Token::Comma | Token::Colon | Token::Then | Token::Else | Token::Require => {
                self.prefix_run = 0;
                self.chain = 0;
            }
            _ => self.prefix_run = 0,
        }

        if is_opener(t.token) {
            let postfix = matches!(t.token, Token::LParen | Token::LBracket)
                && self.prev(i).is_some_and(|p| p.ends_operand());
            if postfix {
                self.chain += 1;
            }
            self.stack.push(Open {
                token: match t.token {
                    Token::LBrace => Token::LBrace,
                    Token::LParen | Token::LParenLine => Token::LParen,
                    Token::LBracket | Token::LBracketLine => Token::LBracket,
                    Token::StrOpen => Token::StrOpen,
                    Token::MStrOpen => Token::MStrOpen,
                    _ => Token::InterpOpen,
                },
                span: t.span,
                line_indent: self.line_indent,
                saved_chain: self.chain,
            });
            self.chain_total += self.chain;
            self.chain = 0;
            self.check_depth(t.span);
            self.keep(i);
            return;
        }
        if is_closer(t.token) {
            self.close(i);
            return;
        }
        self.keep(i);
    }

    fn close(&mut self, i: usize) {
        let t = self.toks[i];
        let wanted = |o: &Open| closer_for(o.token) == t.token;
        // Search the open delimiters for the one this closes, without crossing a string.
        let mut found = None;
        for (k, o) in self.stack.iter().enumerate().rev() {
            if wanted(o) {
                found = Some(k);
                break;
            }
            if is_string_level(o.token) {
                break;
            }
        }
        // Indentation: a `}` that starts a line, indented less than the innermost open `{`,
        // closes an outer block whose line has exactly that indentation.
        if t.token == Token::RBrace
            && t.line_start
            && let Some(top) = self.stack.last()
            && top.token == Token::LBrace
            && t.col < top.line_indent
        {
            for (k, o) in self.stack.iter().enumerate().rev().skip(1) {
                if is_string_level(o.token) {
                    break;
                }
                if o.token == Token::LBrace && o.line_indent == t.col {
                    found = Some(k);
                    break;
                }
            }
        }
        let at = self.last().map_or(t.span.start, |p| p.span.end);
        match found {
            Some(k) => {
                while self.stack.len() > k + 1 {
                    if let Some(open) = self.pop_frame() {
                        if is_string_level(open.token) {
                            self.push_virtual(closer_for(open.token), at);
                        } else {
                            self.report_unclosed(open, at, Some(t.span));
                        }
                    }
                }
                self.pop_frame();
                self.keep(i);
            }
            None => {
                match self.stack.last().copied() {
                    Some(top)
                        if !is_string_level(top.token)
                            && !matches!(t.token, Token::StrClose | Token::InterpClose) =>
                    {
                        // A closer of the wrong kind: report once and let it close what is open.
                        let expected = delim_text(closer_for(top.token));
                        let found_text = delim_text(t.token);
                        self.diags.push(
                        Diagnostic::new(
                            codes::E0010,
                            format!("mismatched closing delimiter: expected `{expected}`, found `{found_text}`"),
                        )
                        .primary(self.file, t.span, format!("expected `{expected}` here"))
                        .secondary(self.file, top.span, format!("this `{}` is closed by it", delim_text(top.token)))
                        .help(format!("close `{}` with `{expected}`", delim_text(top.token))),
                    );
                        self.pop_frame();
                        self.own();
                        self.cur.push(Tok { token: closer_for(top.token), ..t });
                    }
                    _ => {
                        // The stray closer is dropped from the item.
                        self.own();
                        let text = delim_text(t.token);
                        self.diags.push(
                            Diagnostic::new(codes::E0010, format!("unexpected closing `{text}`"))
                                .primary(self.file, t.span, "nothing is open here")
                                .help(format!(
                                    "remove this `{text}`, or add the opening delimiter it was meant to close"
                                )),
                        );
                    }
                }
            }
        }
    }
}
