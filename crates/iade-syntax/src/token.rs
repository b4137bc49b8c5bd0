//! Tokens and the modal lexer.
//!
//! Two logos automata share the work: `MainTok` for code and `StrTok` for string contents.
//! A small driver keeps an explicit mode stack (never recursion), so interpolations nest as
//! deep as the input does without touching the call stack. Lexical errors become diagnostics
//! plus, where a token is needed, a `Token::Error` the parser knows is already reported.

use iade_diagnostics::{Diagnostic, codes};
use iade_span::{FileId, Span};
use logos::Logos;

/// A token as the parser sees it. Payloads borrow from the source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Token<'s> {
    Ident(&'s str),
    /// An integer literal, already validated; the payload is its source text.
    Int(&'s str),
    Use,
    As,
    Param,
    Let,
    Kind,
    Rule,
    Policy,
    Control,
    Require,
    For,
    In,
    If,
    Then,
    Else,
    Where,
    And,
    Or,
    Not,
    True,
    False,
    Null,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// `(` as the first token of a line: never continues the previous expression as a call.
    LParenLine,
    /// `[` as the first token of a line: never continues the previous expression as an index.
    LBracketLine,
    Comma,
    Dot,
    Colon,
    Eq,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Amp,
    Pipe,
    Caret,
    Question,
    /// `"`
    StrOpen,
    /// `"""`
    MStrOpen,
    /// Raw string text, escapes still written as in the source (validated by the lexer).
    StrText(&'s str),
    /// `${`
    InterpOpen,
    /// The `}` closing an interpolation.
    InterpClose,
    /// `"` or `"""` closing a string.
    StrClose,
    /// Stands in for input the lexer already reported.
    Error,
}

impl Token<'_> {
    /// How the token is named in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("`{s}`"),
            Token::Int(s) => format!("`{s}`"),
            Token::StrOpen | Token::MStrOpen => "a string".into(),
            Token::StrText(_) => "string text".into(),
            Token::InterpOpen => "`${`".into(),
            Token::InterpClose => "`}`".into(),
            Token::StrClose => "the end of the string".into(),
            Token::Error => "an invalid token".into(),
            t => match t.keyword_or_punct() {
                Some(s) if s.chars().all(|c| c.is_ascii_alphabetic()) => format!("keyword `{s}`"),
                Some(s) => format!("`{s}`"),
                None => "a token".into(),
            },
        }
    }

    /// The fixed text of keywords and punctuation.
    pub fn keyword_or_punct(&self) -> Option<&'static str> {
        Some(match self {
            Token::Use => "use",
            Token::As => "as",
            Token::Param => "param",
            Token::Let => "let",
            Token::Kind => "kind",
            Token::Rule => "rule",
            Token::Policy => "policy",
            Token::Control => "control",
            Token::Require => "require",
            Token::For => "for",
            Token::In => "in",
            Token::If => "if",
            Token::Then => "then",
            Token::Else => "else",
            Token::Where => "where",
            Token::And => "and",
            Token::Or => "or",
            Token::Not => "not",
            Token::True => "true",
            Token::False => "false",
            Token::Null => "null",
            Token::LBrace => "{",
            Token::RBrace | Token::InterpClose => "}",
            Token::LParen | Token::LParenLine => "(",
            Token::RParen => ")",
            Token::LBracket | Token::LBracketLine => "[",
            Token::RBracket => "]",
            Token::Comma => ",",
            Token::Dot => ".",
            Token::Colon => ":",
            Token::Eq => "=",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Percent => "%",
            Token::Amp => "&",
            Token::Pipe => "|",
            Token::Caret => "^",
            Token::Question => "?",
            _ => return None,
        })
    }

    /// The token ends an operand: what follows it cannot start a new operand of the same
    /// expression (a quote there closes a string; a line starting after it starts something new).
    pub fn ends_operand(&self) -> bool {
        matches!(
            self,
            Token::Ident(_)
                | Token::Int(_)
                | Token::True
                | Token::False
                | Token::Null
                | Token::RParen
                | Token::RBracket
                | Token::RBrace
                | Token::StrClose
                | Token::Question
                | Token::Error
        )
    }

    /// Binary operators and postfix openers: tokens that extend an expression to their left.
    pub fn continues_expression(&self) -> bool {
        matches!(
            self,
            Token::Or
                | Token::And
                | Token::EqEq
                | Token::NotEq
                | Token::Lt
                | Token::Le
                | Token::Gt
                | Token::Ge
                | Token::In
                | Token::Pipe
                | Token::Caret
                | Token::Amp
                | Token::Plus
                | Token::Minus
                | Token::Star
                | Token::Slash
                | Token::Percent
                | Token::Dot
                | Token::LParen
                | Token::LBracket
                | Token::Question
        )
    }

    pub fn is_keyword(&self) -> bool {
        self.keyword_or_punct().is_some_and(|s| s.chars().all(|c| c.is_ascii_alphabetic()))
    }
}

impl std::fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn keyword(s: &str) -> Option<Token<'static>> {
    Some(match s {
        "use" => Token::Use,
        "as" => Token::As,
        "param" => Token::Param,
        "let" => Token::Let,
        "kind" => Token::Kind,
        "rule" => Token::Rule,
        "policy" => Token::Policy,
        "control" => Token::Control,
        "require" => Token::Require,
        "for" => Token::For,
        "in" => Token::In,
        "if" => Token::If,
        "then" => Token::Then,
        "else" => Token::Else,
        "where" => Token::Where,
        "and" => Token::And,
        "or" => Token::Or,
        "not" => Token::Not,
        "true" => Token::True,
        "false" => Token::False,
        "null" => Token::Null,
        _ => return None,
    })
}

/// Words reserved by the language, for "did you mean" and keyword-as-name help.
pub const KEYWORDS: &[&str] = &[
    "use", "as", "param", "let", "kind", "rule", "policy", "control", "require", "for", "in", "if", "then",
    "else", "where", "and", "or", "not", "true", "false", "null",
];

#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
#[logos(skip r"[ \t\r\f]+")]
enum MainTok {
    #[token("\n")]
    Newline,
    #[regex(r"#[^\n]*", allow_greedy = true)]
    Comment,
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident,
    #[regex(r"[0-9][0-9A-Za-z_]*")]
    Number,
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9A-Za-z_]*")]
    Float,
    #[token("\"")]
    Quote,
    #[token("\"\"\"")]
    Quote3,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(".")]
    Dot,
    #[token(":")]
    Colon,
    #[token("=")]
    Eq,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("&")]
    Amp,
    #[token("|")]
    Pipe,
    #[token("^")]
    Caret,
    #[token("?")]
    Question,
}

#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
enum StrTok {
    #[regex(r#"[^"\\$\n]+"#)]
    Text,
    #[token("$")]
    Dollar,
    #[token("$${")]
    DollarEscape,
    #[token("${")]
    InterpOpen,
    #[regex(r"\\[^\n]")]
    Escape,
    #[token("\\")]
    LoneBackslash,
    #[token("\"")]
    Quote,
    #[token("\"\"\"")]
    Quote3,
    #[token("\n")]
    Newline,
}

/// One token with its absolute span and layout facts the parser needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tok<'s> {
    pub token: Token<'s>,
    pub span: Span,
    /// Only whitespace or comments precede this token on its line.
    pub line_start: bool,
    /// Byte column of the token on its line.
    pub col: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommentKind {
    /// `# …`
    Line,
    /// `## …`, documentation of what follows.
    Doc,
}

/// A comment in the side table. Spans are absolute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Comment {
    pub kind: CommentKind,
    pub span: Span,
    /// The whole comment text, including the leading `#` or `##`.
    pub text: String,
    /// Code precedes the comment on its line.
    pub trailing: bool,
}

#[derive(Debug)]
pub struct Lexed<'s> {
    pub tokens: Vec<Tok<'s>>,
    pub comments: Vec<Comment>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Why an integer literal is invalid.
#[derive(Debug, PartialEq, Eq)]
pub enum IntError {
    BadDigit { offset: usize, digit: char, radix_name: &'static str },
    NoDigits { radix_name: &'static str },
    Suffix { offset: usize },
    Separator { offset: usize },
    Overflow,
}

/// Parses an integer literal as the lexer accepts it (radix prefixes, `_` separators).
pub fn parse_int(raw: &str) -> Result<i64, IntError> {
    let (radix, radix_name, digits, prefix_len) = match raw.get(..2) {
        Some("0x" | "0X") => (16, "hexadecimal", &raw[2..], 2),
        Some("0o" | "0O") => (8, "octal", &raw[2..], 2),
        Some("0b" | "0B") => (2, "binary", &raw[2..], 2),
        _ => (10, "decimal", raw, 0),
    };
    if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        let at = if digits.starts_with('_') {
            0
        } else if digits.ends_with('_') {
            digits.len() - 1
        } else {
            digits.find("__").unwrap_or(0)
        };
        return Err(IntError::Separator { offset: prefix_len + at });
    }
    let mut value: i64 = 0;
    let mut seen_digit = false;
    let mut overflow = false;
    for (i, c) in digits.char_indices() {
        if c == '_' {
            continue;
        }
        match c.to_digit(radix) {
            Some(d) => {
                seen_digit = true;
                match value.checked_mul(i64::from(radix)).and_then(|v| v.checked_add(i64::from(d))) {
                    Some(v) => value = v,
                    None => overflow = true,
                }
            }
            None if radix != 16 && c.is_ascii_hexdigit() && c.is_ascii_digit() => {
                return Err(IntError::BadDigit { offset: prefix_len + i, digit: c, radix_name });
            }
            None if radix == 2 && c.is_ascii_digit() => {
                return Err(IntError::BadDigit { offset: prefix_len + i, digit: c, radix_name });
            }
            None => return Err(IntError::Suffix { offset: prefix_len + i }),
        }
    }
    if !seen_digit {
        return Err(IntError::NoDigits { radix_name });
    }
    if overflow {
        return Err(IntError::Overflow);
    }
    Ok(value)
}

enum Mode {
    Code {
        /// Braces opened inside this mode and not yet closed.
        braces: u32,
        /// Parens and brackets opened inside this mode and not yet closed.
        groups: u32,
        /// For an interpolation: the span of its `${`.
        interp: Option<Span>,
    },
    Str {
        multiline: bool,
        open: Span,
    },
}

struct Lexer<'s> {
    src: &'s str,
    file: FileId,
    pos: usize,
    out: Lexed<'s>,
    modes: Vec<Mode>,
    /// Start of the current line.
    line_begin: usize,
    /// No token yet on the current line.
    at_line_start: bool,
    /// Absolute span of a pending run of unexpected characters.
    bad_run: Option<Span>,
    /// The input ended inside a string or an interpolation.
    ended_nested: bool,
}

fn sp(start: usize, end: usize) -> Span {
    Span::from(start..end)
}

/// Lexes a whole source text. Never fails: problems become diagnostics.
pub fn lex(file: FileId, src: &str) -> Lexed<'_> {
    lex_from(file, src, 0)
}

/// Lexes `src` from byte `start` to its end; spans stay absolute in `src`.
pub fn lex_from(file: FileId, src: &str, start: usize) -> Lexed<'_> {
    // About one token per four bytes of code: room made once, not grown by copying.
    let mut lx = Lexer::new(file, src, start, src.len().saturating_sub(start) / 4);
    lx.run();
    lx.out
}

/// Source texts at least this long are lexed in two halves at once ([`lex_parallel`]).
const PARALLEL_BYTES: usize = 64 * 1024;

/// Lexes a whole source text as [`lex`] does, in two halves on two threads when it is large
/// and `threads` allows. The second half starts on a line that begins with a letter (an item,
/// most likely) and is lexed as if the text began there, which is right when the first half
/// ends in code at the top level, on a new line: that is checked, and the text is lexed whole
/// when it does not hold. The tokens, comments and diagnostics are the same either way.
pub fn lex_parallel(file: FileId, src: &str, threads: usize) -> Lexed<'_> {
    if threads < 2 || src.len() < PARALLEL_BYTES {
        return lex(file, src);
    }
    let Some(split) = split_point(src) else { return lex(file, src) };
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| lex_from(file, src, split));
        (lex_prefix(file, src, split, src.len() / 4), second.join())
    });
    match (first, second) {
        (Some(mut first), Ok(second)) => {
            first.tokens.extend(second.tokens);
            first.comments.extend(second.comments);
            first.diagnostics.extend(second.diagnostics);
            first
        }
        (None, Ok(_)) => lex(file, src),
        (_, Err(payload)) => std::panic::resume_unwind(payload),
    }
}

/// Where a large `src` may be lexed in two halves ([`lex_parallel`]), with the first token of
/// the second half as lexed from there: `None` for a small text or one without such a line.
/// The halves are lexed by [`lex_first_half`] and [`lex_from`].
pub(crate) fn halves(file: FileId, src: &str) -> Option<(usize, Tok<'_>)> {
    if src.len() < PARALLEL_BYTES {
        return None;
    }
    let split = split_point(src)?;
    // The half's first token is a word: the rest of its line is enough to lex it.
    let line_end = src[split..].find('\n').map_or(src.len(), |n| split + n);
    let first = *lex_from(file, src.get(..line_end)?, split).tokens.first()?;
    Some((split, first))
}

/// Lexes `src[..end]`, the first of two halves ([`halves`]): `None` unless it ends in code at
/// the top level, right after a newline (the second half is then lexed right from `end`).
pub(crate) fn lex_first_half(file: FileId, src: &str, end: usize) -> Option<Lexed<'_>> {
    lex_prefix(file, src, end, end / 4)
}

/// Where [`lex_parallel`] lexes `src` in two halves, or `None` where it lexes it whole. For the
/// tests.
#[doc(hidden)]
pub fn parallel_split(file: FileId, src: &str) -> Option<usize> {
    let split = split_point(src).filter(|_| src.len() >= PARALLEL_BYTES)?;
    lex_prefix(file, src, split, split / 4).map(|_| split)
}

/// Where [`lex_parallel`] splits `src`: after the first newline past the middle that is
/// followed by a letter.
fn split_point(src: &str) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut at = src.len() / 2;
    loop {
        let newline = at + bytes.get(at..)?.iter().position(|&b| b == b'\n')?;
        at = newline + 1;
        if bytes.get(at).is_some_and(u8::is_ascii_alphabetic) {
            return Some(at);
        }
    }
}

/// Lexes `src[..end]` with room for `room` tokens: `None` unless it ends in code at the top
/// level, right after a newline. [`lex_parallel`] gives room for the tokens of all of `src`,
/// which the second half's are added to.
fn lex_prefix(file: FileId, src: &str, end: usize, room: usize) -> Option<Lexed<'_>> {
    let mut lx = Lexer::new(file, src.get(..end)?, 0, room);
    lx.run();
    (lx.line_begin == end && !lx.ended_nested).then_some(lx.out)
}

impl<'s> Lexer<'s> {
    fn new(file: FileId, src: &'s str, start: usize, room: usize) -> Self {
        Lexer {
            src,
            file,
            pos: start,
            out: Lexed { tokens: Vec::with_capacity(room), comments: Vec::new(), diagnostics: Vec::new() },
            modes: vec![Mode::Code { braces: 0, groups: 0, interp: None }],
            line_begin: start,
            at_line_start: true,
            bad_run: None,
            ended_nested: false,
        }
    }

    fn push(&mut self, token: Token<'s>, span: Span) {
        self.flush_bad_run();
        let col = (span.start as usize).saturating_sub(self.line_begin) as u32;
        self.out.tokens.push(Tok { token, span, line_start: self.at_line_start, col });
        self.at_line_start = false;
    }

    fn error(&mut self, d: Diagnostic) {
        self.out.diagnostics.push(d);
    }

    /// Reports the run of unexpected characters before the next token, if there is one: a
    /// check on every token, the report itself kept out of line.
    #[inline]
    fn flush_bad_run(&mut self) {
        if self.bad_run.is_some() {
            self.report_bad_run();
        }
    }

    #[cold]
    fn report_bad_run(&mut self) {
        if let Some(span) = self.bad_run.take() {
            let text = &self.src[span.range()];
            let shown: String = text.chars().take(16).flat_map(char::escape_debug).collect();
            let first = text.chars().next().unwrap_or(' ');
            let help = match first {
                ';' => "entries are separated by newlines or spaces; remove the `;`".to_owned(),
                '\'' => "strings are written with double quotes: \"…\"".to_owned(),
                '`' => "strings are written with double quotes: \"…\"".to_owned(),
                '!' => "negation is written `not`, inequality `!=`".to_owned(),
                '~' => "bitwise complement is not supported; use `^` with a mask".to_owned(),
                '$' => "`${…}` only works inside a string: write `\"${name}\"`, or just `name`".to_owned(),
                _ => "remove it; iade source is made of names, numbers, strings and operators".to_owned(),
            };
            let msg = if text.chars().count() == 1 {
                format!("unexpected character `{shown}`")
            } else {
                format!("unexpected characters `{shown}`")
            };
            let d = Diagnostic::new(codes::E0003, msg)
                .primary(self.file, span, "not part of the language")
                .help(help);
            self.out.diagnostics.push(d);
            let col = (span.start as usize).saturating_sub(self.line_begin) as u32;
            self.out.tokens.push(Tok { token: Token::Error, span, line_start: self.at_line_start, col });
            self.at_line_start = false;
        }
    }

    fn newline(&mut self, at: usize) {
        self.line_begin = at + 1;
        self.at_line_start = true;
    }

    fn run(&mut self) {
        while let Some(mode) = self.modes.last() {
            match mode {
                Mode::Code { .. } => {
                    if !self.code_step() {
                        break;
                    }
                }
                Mode::Str { multiline, open } => {
                    let (multiline, open) = (*multiline, *open);
                    self.str_step(multiline, open);
                }
            }
        }
        self.flush_bad_run();
    }

    /// The innermost string mode is single-line.
    fn in_single_line_string(&self) -> bool {
        for m in self.modes.iter().rev() {
            if let Mode::Str { multiline, .. } = m {
                return !multiline;
            }
        }
        false
    }

    /// Ends an interpolation and the string around it after a slip; `at` is where both end.
    fn abandon_interp(&mut self, interp_open: Span, at: usize, reason: &str) {
        let d = Diagnostic::new(codes::E0005, "unterminated interpolation")
            .primary(self.file, interp_open, "this `${` is never closed")
            .secondary(self.file, sp(at, at), reason.to_owned())
            .help("close the interpolation with `}`; write `$${` for a literal `${`");
        self.error(d);
        self.modes.pop();
        self.push(Token::InterpClose, sp(at, at));
        // The enclosing string ends here too: the rest of the line is not trustworthy.
        if let Some(Mode::Str { .. }) = self.modes.last() {
            self.modes.pop();
            self.push(Token::StrClose, sp(at, at));
        }
    }

    /// At the end of the input, closes every mode still open with empty tokens at `end`.
    fn close_enclosing_modes(&mut self, end: usize) {
        while self.modes.len() > 1 {
            let closer = if matches!(self.modes.last(), Some(Mode::Code { .. })) {
                Token::InterpClose
            } else {
                Token::StrClose
            };
            self.push(closer, sp(end, end));
            self.modes.pop();
        }
    }

    /// Lexes one token in code mode; returns false at the end of the input in the outermost mode.
    fn code_step(&mut self) -> bool {
        let rest = &self.src[self.pos..];
        let mut lexer = MainTok::lexer(rest);
        let Some(result) = lexer.next() else {
            // End of input.
            self.ended_nested |= self.modes.len() > 1;
            self.pos = self.src.len();
            let end = self.src.len();
            if let Some(Mode::Code { interp: Some(open), .. }) = self.modes.last() {
                let open = *open;
                self.abandon_interp(open, end, "the file ends here");
                // Enclosing modes end silently: the slip was reported once.
                self.close_enclosing_modes(end);
            }
            return self.modes.len() > 1;
        };
        let r = lexer.span();
        let (start, end) = (self.pos + r.start, self.pos + r.end);
        self.pos = end;
        let span = sp(start, end);
        let text = &self.src[start..end];
        let Ok(tok) = result else {
            self.bad_run = Some(match self.bad_run {
                Some(run) if run.end as usize == start => Span::new(run.start, end as u32),
                Some(_) => {
                    self.flush_bad_run();
                    span
                }
                None => span,
            });
            return true;
        };
        let (braces, groups, interp) = match self.modes.last_mut() {
            Some(Mode::Code { braces, groups, interp }) => (braces, groups, *interp),
            _ => return true,
        };
        match tok {
            MainTok::Newline => {
                if let Some(open) = interp
                    && self.in_single_line_string()
                {
                    self.abandon_interp(open, start, "the line ends here");
                }
                self.flush_bad_run();
                self.newline(start);
            }
            MainTok::Comment => {
                self.flush_bad_run();
                let kind = if text.starts_with("##") { CommentKind::Doc } else { CommentKind::Line };
                let trailing = !self.at_line_start;
                self.out.comments.push(Comment { kind, span, text: text.to_owned(), trailing });
            }
            MainTok::Ident => match keyword(text) {
                Some(k) => self.push(k, span),
                None => self.push(Token::Ident(text), span),
            },
            MainTok::Number => match parse_int(text) {
                Ok(_) => self.push(Token::Int(text), span),
                Err(e) => {
                    self.int_error(text, start, e);
                    self.push(Token::Error, span);
                }
            },
            MainTok::Float => {
                let d = Diagnostic::new(codes::E0007, format!("invalid number literal `{text}`"))
                    .primary(self.file, span, "floating-point numbers are not supported")
                    .help("iade numbers are 64-bit integers; write a string if you need a decimal value");
                self.error(d);
                self.push(Token::Error, span);
            }
            MainTok::Quote | MainTok::Quote3 => {
                let closes_outer =
                    interp.is_some() && *groups == 0 && *braces == 0 && self.last_ends_operand();
                if let (true, Some(open)) = (closes_outer, interp) {
                    // `"${x"`: a quote right after an operand cannot start a string; it closes
                    // the enclosing one and the interpolation lost its `}`.
                    self.abandon_interp_at_quote(open, start);
                    return true;
                }
                let multiline = tok == MainTok::Quote3;
                self.push(if multiline { Token::MStrOpen } else { Token::StrOpen }, span);
                self.modes.push(Mode::Str { multiline, open: span });
            }
            MainTok::LBrace => {
                *braces += 1;
                self.push(Token::LBrace, span);
            }
            MainTok::RBrace => {
                if interp.is_some() && *braces == 0 {
                    self.modes.pop();
                    self.push(Token::InterpClose, span);
                } else {
                    *braces = braces.saturating_sub(1);
                    self.push(Token::RBrace, span);
                }
            }
            MainTok::LParen | MainTok::LBracket => {
                *groups += 1;
                let line_start = self.at_line_start;
                let t = match (tok, line_start) {
                    (MainTok::LParen, false) => Token::LParen,
                    (MainTok::LParen, true) => Token::LParenLine,
                    (_, false) => Token::LBracket,
                    (_, true) => Token::LBracketLine,
                };
                self.push(t, span);
            }
            MainTok::RParen | MainTok::RBracket => {
                *groups = groups.saturating_sub(1);
                self.push(if tok == MainTok::RParen { Token::RParen } else { Token::RBracket }, span);
            }
            other => {
                let t = match other {
                    MainTok::Comma => Token::Comma,
                    MainTok::Dot => Token::Dot,
                    MainTok::Colon => Token::Colon,
                    MainTok::Eq => Token::Eq,
                    MainTok::EqEq => Token::EqEq,
                    MainTok::NotEq => Token::NotEq,
                    MainTok::Lt => Token::Lt,
                    MainTok::Le => Token::Le,
                    MainTok::Gt => Token::Gt,
                    MainTok::Ge => Token::Ge,
                    MainTok::Plus => Token::Plus,
                    MainTok::Minus => Token::Minus,
                    MainTok::Star => Token::Star,
                    MainTok::Slash => Token::Slash,
                    MainTok::Percent => Token::Percent,
                    MainTok::Amp => Token::Amp,
                    MainTok::Pipe => Token::Pipe,
                    MainTok::Caret => Token::Caret,
                    _ => Token::Question,
                };
                self.push(t, span);
            }
        }
        true
    }

    fn abandon_interp_at_quote(&mut self, open: Span, quote: usize) {
        let d = Diagnostic::new(codes::E0005, "unterminated interpolation")
            .primary(self.file, open, "this `${` is never closed")
            .secondary(self.file, sp(quote, quote + 1), "the string ends here")
            .help("close the interpolation with `}` before the closing quote");
        self.error(d);
        self.modes.pop();
        self.push(Token::InterpClose, sp(quote, quote));
        if let Some(Mode::Str { multiline, .. }) = self.modes.last() {
            let len = if *multiline && self.src[quote..].starts_with("\"\"\"") { 3 } else { 1 };
            self.modes.pop();
            self.pos = quote + len;
            self.push(Token::StrClose, sp(quote, quote + len));
        }
    }

    /// The last token emitted ends an operand (so a following quote cannot start a string).
    fn last_ends_operand(&self) -> bool {
        self.out.tokens.last().is_some_and(|t| t.token.ends_operand())
    }

    fn int_error(&mut self, text: &str, start: usize, e: IntError) {
        let span = sp(start, start + text.len());
        let d = match e {
            IntError::BadDigit { offset, digit, radix_name } => {
                let at = sp(start + offset, start + offset + digit.len_utf8());
                Diagnostic::new(
                    codes::E0007,
                    format!(
                        "invalid digit `{digit}` in {} {radix_name} literal",
                        if radix_name == "octal" { "an" } else { "a" }
                    ),
                )
                .primary(
                    self.file,
                    at,
                    format!(
                        "`{digit}` is not {} {radix_name} digit",
                        if radix_name == "octal" { "an" } else { "a" }
                    ),
                )
                .secondary(self.file, span, "in this number")
                .help(match radix_name {
                    "octal" => "octal digits are 0-7 (file modes look like `0o755`)",
                    "binary" => "binary digits are 0 and 1",
                    _ => "check the digits of the literal",
                })
            }
            IntError::NoDigits { radix_name } => {
                Diagnostic::new(codes::E0007, format!("{radix_name} literal has no digits"))
                    .primary(self.file, span, "expected digits after the prefix")
                    .help("write at least one digit, for example `0x1f`, `0o644`, `0b101`")
            }
            IntError::Suffix { offset } => {
                let at = sp(start + offset, start + text.len());
                Diagnostic::new(codes::E0007, format!("invalid number literal `{text}`"))
                    .primary(self.file, at, "a number cannot run into letters")
                    .help(format!(
                        "a name cannot start with a digit; if this is text, quote it: `\"{text}\"`"
                    ))
            }
            IntError::Separator { offset } => {
                let at = sp(start + offset, start + offset + 1);
                Diagnostic::new(codes::E0007, format!("misplaced `_` in number literal `{text}`"))
                    .primary(self.file, at, "`_` must stand between two digits")
                    .help("write separators only between digits, as in `1_000_000` or `0o7_5_5`")
            }
            IntError::Overflow => Diagnostic::new(codes::E0008, "integer literal out of range")
                .primary(self.file, span, "larger than 9223372036854775807")
                .help("iade integers are 64-bit signed; use a string if this is an identifier"),
        };
        self.error(d);
    }

    fn str_step(&mut self, multiline: bool, open: Span) {
        let rest = &self.src[self.pos..];
        let mut lexer = StrTok::lexer(rest);
        let Some(result) = lexer.next() else {
            self.ended_nested = true;
            let end = self.src.len();
            let what = if multiline { "unterminated multi-line string" } else { "unterminated string" };
            let d = Diagnostic::new(codes::E0004, what)
                .primary(self.file, open, "this string is never closed")
                .secondary(self.file, sp(end, end), "the file ends here")
                .help(if multiline {
                    "close the string with `\"\"\"` on a line of its own"
                } else {
                    "close the string with `\"`"
                });
            self.error(d);
            self.modes.pop();
            self.push(Token::StrClose, sp(end, end));
            // Any enclosing interpolations end silently: the slip was reported once.
            self.close_enclosing_modes(end);
            return;
        };
        let r = lexer.span();
        let (start, end) = (self.pos + r.start, self.pos + r.end);
        self.pos = end;
        let span = sp(start, end);
        let Ok(tok) = result else {
            // The string automaton accepts every character; only a lone invalid sequence lands here.
            self.push_text(start, end);
            return;
        };
        match tok {
            StrTok::Text | StrTok::Dollar | StrTok::DollarEscape => self.push_text(start, end),
            StrTok::Escape => {
                self.escape(start, end);
            }
            StrTok::LoneBackslash => {
                let d = Diagnostic::new(codes::E0006, "invalid escape sequence `\\` at end of line")
                    .primary(self.file, span, "a backslash must be followed by an escape character")
                    .help("write `\\\\` for a literal backslash");
                self.error(d);
                self.push_text(start, end);
            }
            StrTok::InterpOpen => {
                if self.src[end..].starts_with('}') {
                    let d = Diagnostic::new(codes::E0016, "empty interpolation")
                        .primary(self.file, sp(start, end + 1), "nothing to interpolate")
                        .help("put an expression between the braces, or write `$${}` for a literal `${}`");
                    self.error(d);
                    self.pos = end + 1;
                    return;
                }
                self.push(Token::InterpOpen, span);
                self.modes.push(Mode::Code { braces: 0, groups: 0, interp: Some(span) });
            }
            StrTok::Quote if !multiline => {
                self.modes.pop();
                self.push(Token::StrClose, span);
            }
            StrTok::Quote3 if !multiline => {
                // `"""` inside a one-line string: the first quote closes it.
                self.pos = start + 1;
                self.modes.pop();
                self.push(Token::StrClose, sp(start, start + 1));
            }
            StrTok::Quote3 => {
                self.check_multiline(open, start);
                self.modes.pop();
                self.push(Token::StrClose, span);
            }
            StrTok::Quote => self.push_text(start, end),
            StrTok::Newline if multiline => {
                self.push_text(start, end);
                self.line_begin = end;
            }
            StrTok::Newline => {
                let d = Diagnostic::new(codes::E0004, "unterminated string")
                    .primary(self.file, sp(open.start as usize, start), "this string is never closed")
                    .help("close the string with `\"` on the same line, or use `\"\"\"` for multi-line text");
                self.error(d);
                self.modes.pop();
                self.push(Token::StrClose, sp(start, start));
                // Unwind interpolations the string was nested in: they cannot span lines either.
                while let Some(Mode::Code { interp: Some(_), .. }) = self.modes.last() {
                    if !self.in_single_line_string() {
                        break;
                    }
                    self.modes.pop();
                    self.push(Token::InterpClose, sp(start, start));
                    if let Some(Mode::Str { .. }) = self.modes.last() {
                        self.modes.pop();
                        self.push(Token::StrClose, sp(start, start));
                    }
                }
                self.newline(start);
            }
        }
    }

    /// Checks the layout rules of a multi-line string whose closing `"""` starts at `close`.
    fn check_multiline(&mut self, open: Span, close: usize) {
        let src = self.src;
        let open_end = open.end as usize;
        let first_nl = src[open_end..close].find('\n').map(|i| open_end + i);
        let bad = |at: Span, label: &str, help: &str| {
            Diagnostic::new(codes::E0018, "malformed multi-line string")
                .primary(self.file, at, label.to_owned())
                .secondary(self.file, open, "the string starts here")
                .help(help.to_owned())
        };
        let Some(first_nl) = first_nl else {
            let d = bad(
                sp(open_end, close),
                "text after the opening `\"\"\"`",
                "start the content on the next line; put the closing `\"\"\"` on a line of its own",
            );
            self.error(d);
            return;
        };
        let after_open = &src[open_end..first_nl];
        if !after_open.trim().is_empty() {
            let d = bad(
                sp(open_end, first_nl),
                "text after the opening `\"\"\"`",
                "start the content on the next line",
            );
            self.error(d);
            return;
        }
        let close_line = src[..close].rfind('\n').map_or(0, |i| i + 1);
        let indent = &src[close_line..close];
        if !indent.chars().all(|c| c == ' ' || c == '\t') {
            let d = bad(
                sp(close, close + 3),
                "the closing `\"\"\"` must be on a line of its own",
                "move the closing `\"\"\"` to its own line",
            );
            self.error(d);
            return;
        }
        let mut line_start = first_nl + 1;
        while line_start < close_line {
            let line_end = src[line_start..].find('\n').map_or(src.len(), |i| line_start + i);
            let line = &src[line_start..line_end];
            if !line.trim().is_empty() && !line.starts_with(indent) {
                let d = bad(
                    sp(line_start, line_end),
                    "indented less than the closing `\"\"\"`",
                    "indent every content line at least as far as the closing `\"\"\"`",
                );
                self.error(d);
                return;
            }
            line_start = line_end + 1;
        }
    }

    /// Appends string text, merging with a directly preceding text token.
    fn push_text(&mut self, start: usize, end: usize) {
        if let Some(last) = self.out.tokens.last_mut()
            && matches!(last.token, Token::StrText(_))
            && last.span.end as usize == start
        {
            last.span.end = end as u32;
            last.token = Token::StrText(&self.src[last.span.start as usize..end]);
            return;
        }
        self.push(Token::StrText(&self.src[start..end]), sp(start, end));
    }

    fn escape(&mut self, start: usize, end: usize) {
        let c = self.src[start + 1..end].chars().next().unwrap_or(' ');
        match c {
            'n' | 'r' | 't' | '0' | '\\' | '"' | '$' => self.push_text(start, end),
            'u' => {
                let rest = &self.src[end..];
                let close = rest.find(['}', '"', '\n']);
                let valid = rest.starts_with('{')
                    && close.is_some_and(|i| {
                        rest.as_bytes()[i] == b'}'
                            && (2..=7).contains(&i)
                            && u32::from_str_radix(&rest[1..i], 16).ok().and_then(char::from_u32).is_some()
                    });
                match (valid, close) {
                    (true, Some(i)) => {
                        self.pos = end + i + 1;
                        self.push_text(start, end + i + 1);
                    }
                    _ => {
                        let stop = match close {
                            Some(i) if rest.as_bytes()[i] == b'}' => end + i + 1,
                            _ => end,
                        };
                        self.pos = stop;
                        let d = Diagnostic::new(codes::E0006, "invalid unicode escape")
                            .primary(self.file, sp(start, stop), "not a valid `\\u{…}` escape")
                            .help("write 1 to 6 hex digits naming a Unicode scalar value, like `\\u{1F600}`");
                        self.error(d);
                        self.push_text(start, stop);
                    }
                }
            }
            other => {
                let shown: String = other.escape_debug().collect();
                let d = Diagnostic::new(codes::E0006, format!("invalid escape sequence `\\{shown}`"))
                    .primary(self.file, sp(start, end), "unknown escape")
                    .help("valid escapes are \\\\ \\\" \\n \\r \\t \\0 \\$ \\u{…}; write `\\\\` for a backslash");
                self.error(d);
                self.push_text(start, end);
            }
        }
    }
}

/// The value of a validated string text token: escapes resolved, `$${` turned into `${`.
/// Most texts have nothing to resolve and are returned as they are.
pub fn cook(raw: &str) -> std::borrow::Cow<'_, str> {
    if !raw.bytes().any(|b| matches!(b, b'\\' | b'$' | b'\r')) {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                Some((_, '0')) => out.push('\0'),
                Some((_, 'u')) => {
                    let rest = &raw[i + 2..];
                    let decoded = rest
                        .strip_prefix('{')
                        .and_then(|r| r.find('}').map(|j| &r[..j]))
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok().map(|v| (v, hex.len())))
                        .and_then(|(v, len)| char::from_u32(v).map(|c| (c, len)));
                    match decoded {
                        Some((c, len)) => {
                            out.push(c);
                            for _ in 0..len + 2 {
                                chars.next();
                            }
                        }
                        None => out.push('u'),
                    }
                }
                Some((_, other)) => out.push(other),
                None => out.push('\\'),
            },
            '$' if raw[i..].starts_with("$${") => {
                out.push_str("${");
                chars.next();
                chars.next();
            }
            // Sources are read as LF: a CRLF file gives the same strings as its LF twin.
            '\r' if raw[i + 1..].starts_with('\n') => {}
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}
