use chumsky::error::{Rich, RichPattern, RichReason};
use chumsky::prelude::*;
use iade_diagnostics::{Diagnostic, codes};
use iade_span::{FileId, Span};

use crate::ast::{Item, SourceFile, Stmt, StmtKind};
use crate::grammar::{self, CHAINED, MISSING_VALUE};
use crate::structure::{ItemToks, structure};
use crate::token::{Comment, Token, lex};

/// The result of parsing one file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Parse {
    pub tree: SourceFile,
    /// Every comment, in source order, with absolute spans.
    pub comments: Vec<Comment>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parse {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses raw bytes: invalid UTF-8 and binary content are diagnosed here, before lexing.
/// Returns the text that spans refer to (lossily decoded if the input was not UTF-8).
pub fn parse_bytes(file: FileId, bytes: &[u8]) -> (String, Parse) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), parse(file, text)),
        Err(e) => {
            let at = e.valid_up_to();
            let len = e.error_len().unwrap_or(bytes.len() - at).max(1);
            // Spans before `at` are the same in the lossy text; the bad sequence becomes one
            // replacement character there.
            let text = String::from_utf8_lossy(bytes).into_owned();
            let shown: Vec<String> = bytes[at..at + len].iter().map(|b| format!("0x{b:02x}")).collect();
            let d = Diagnostic::new(codes::E0001, "file is not valid UTF-8")
                .primary(file, Span::from(at..at + '\u{FFFD}'.len_utf8()), format!("invalid byte sequence {}", shown.join(" ")))
                .help("iade sources must be UTF-8; re-save the file as UTF-8 (for example with `iconv -t utf-8`)");
            let parse = Parse { tree: SourceFile::default(), comments: Vec::new(), diagnostics: vec![d] };
            (text, parse)
        }
    }
}

/// Parses a source text. Total: never panics, always returns a tree.
pub fn parse(file: FileId, text: &str) -> Parse {
    if let Some(nul) = text.find('\0') {
        let d = Diagnostic::new(codes::E0002, "file contains a NUL byte")
            .primary(file, Span::from(nul..nul + 1), "NUL byte here")
            .help("this looks like a binary file; only `.iade` text files belong in a stack");
        return Parse { tree: SourceFile::default(), comments: Vec::new(), diagnostics: vec![d] };
    }
    if u32::try_from(text.len()).is_err() {
        let d = Diagnostic::new(codes::E0012, "file is too large (over 4 GiB)")
            .primary(file, Span::empty(0), "in this file")
            .help("split the stack into smaller files");
        return Parse { tree: SourceFile::default(), comments: Vec::new(), diagnostics: vec![d] };
    }
    let lexed = lex(file, text);
    let mut diagnostics = lexed.diagnostics;
    let (item_toks, structure_diags) = structure(file, &lexed.tokens);
    diagnostics.extend(structure_diags);
    let mut items = Vec::with_capacity(item_toks.len());
    for (idx, it) in item_toks.iter().enumerate() {
        let next = item_toks.get(idx + 1).and_then(|n| n.toks.first()).map(|t| t.token);
        items.push(parse_item(file, it, next, &mut diagnostics));
    }
    let mut tree = SourceFile { items };
    diagnostics.extend(crate::docs::attach(file, text, &mut tree, &lexed.comments));
    diagnostics.extend(crate::validate::validate(file, &tree));
    iade_diagnostics::sort(&mut diagnostics);
    Parse { tree, comments: lexed.comments, diagnostics }
}

fn parse_item(file: FileId, it: &ItemToks<'_>, next: Option<Token<'_>>, diags: &mut Vec<Diagnostic>) -> Item {
    let offset = it.toks.first().map_or(0, |t| t.span.start);
    let last_end = it.toks.iter().map(|t| t.span.end).max().unwrap_or(offset);
    let whole = Span::new(0, last_end - offset);
    let error_item = Item { offset, stmt: Stmt { kind: StmtKind::Error, span: whole, doc: None } };
    if it.poisoned {
        return error_item;
    }
    let lexical_errors = it.toks.iter().any(|t| t.token == Token::Error);
    let toks: Vec<(Token<'_>, SimpleSpan)> = it
        .toks
        .iter()
        .map(|t| {
            let r = t.span.relative_to(offset);
            (t.token, SimpleSpan::from(r.start as usize..r.end as usize))
        })
        .collect();
    let eoi = SimpleSpan::from(whole.end as usize..whole.end as usize);
    let input = toks.as_slice().map(eoi, |(t, s)| (t, s));
    let (output, errors) = grammar::item().parse(input).into_output_errors();
    if !lexical_errors {
        // One slip, one error: the first error of the item is the one the user made. Errors
        // where a missing delimiter was already reported are its consequences.
        let repaired = it.repaired_at.map(|r| (r - offset) as usize);
        if let Some(first) = errors.iter().min_by_key(|e| (e.span().start, e.span().end)) {
            if repaired.is_none_or(|r| first.span().start < r) {
                diags.push(convert(file, offset, first, next));
            }
        }
    }
    match output {
        Some(stmt) if errors.is_empty() || lexical_errors || !matches!(stmt.kind, StmtKind::Error) => Item { offset, stmt },
        _ => error_item,
    }
}

fn pattern_text(p: &RichPattern<'_, Token<'_>>) -> String {
    match p {
        RichPattern::Token(t) => t.describe(),
        RichPattern::Label(l) => l.to_string(),
        RichPattern::EndOfInput => "the end of the item".to_owned(),
        RichPattern::Identifier(s) => format!("`{s}`"),
        RichPattern::Any => "any token".to_owned(),
        _ => "something else".to_owned(),
    }
}

const OPERATORS: &[&str] = &[
    "`or`", "`and`", "`==`", "`!=`", "`<`", "`<=`", "`>`", "`>=`", "keyword `in`", "keyword `or`", "keyword `and`",
    "`|`", "`^`", "`&`", "`+`", "`-`", "`*`", "`/`", "`%`", "`.`", "`(`", "`[`", "`?`",
];

/// "a, b or c", with binary operators folded into one "an operator".
fn expected_list(e: &Rich<'_, Token<'_>>) -> String {
    let mut items: Vec<String> = Vec::new();
    let mut saw_operator = false;
    for p in e.expected() {
        let t = pattern_text(p);
        if OPERATORS.contains(&t.as_str()) {
            saw_operator = true;
            continue;
        }
        if !items.contains(&t) {
            items.push(t);
        }
    }
    items.sort();
    if saw_operator {
        items.push("an operator".to_owned());
    }
    match items.len() {
        0 => "something else".to_owned(),
        1 => items.remove(0),
        _ => {
            let last = items.pop().unwrap_or_default();
            format!("{} or {}", items.join(", "), last)
        }
    }
}

fn example_of(context: &str) -> Option<&'static str> {
    Some(match context {
        "`use`" => "use std.fs.{file, directory}",
        "`param`" => "param port: int = 8080",
        "`let`" => "let port = 8080",
        "`kind`" => "kind file { identity path: path }",
        "`rule`" => "rule positive(n: int) = n > 0 else \"${n} is not positive\"",
        "`policy`" => "policy safe_files { for f in intent(file) { require f.mode & 0o002 == 0 } }",
        "`control`" => "control \"CIS-6.1.10\" { title = \"…\"  severity = high  for f in observe(file) { … } }",
        "`for`" => "for name in [\"a\", \"b\"] { … }",
        "`if`" => "if tier == \"prod\" { … } else { … }",
        "`require`" => "require f.mode & 0o002 == 0 else \"world-writable\"",
        "`provider`" => "provider postgres main { url = \"postgres://localhost/app\" }",
        "a field declaration" => "desired mode: mode = 0o644 where mode <= 0o7777",
        "a resource declaration" => "file config { path = \"/etc/app.toml\" }",
        _ => return None,
    })
}

fn convert(file: FileId, offset: u32, e: &Rich<'_, Token<'_>>, next: Option<Token<'_>>) -> Diagnostic {
    let span = Span::from(e.span().start..e.span().end).absolute_from(offset);
    if let RichReason::Custom(msg) = e.reason() {
        if msg == CHAINED {
            return Diagnostic::new(codes::E0013, "comparison operators cannot be chained")
                .primary(file, span, "second comparison here")
                .help("combine comparisons with `and`: `a < b and b < c`");
        }
        if msg == MISSING_VALUE {
            return Diagnostic::new(codes::E0015, "missing value")
                .primary(file, span, "expected a value after `=`")
                .help("write the value after `=`, or remove the entry to leave the field unmanaged");
        }
        return Diagnostic::new(codes::E0012, msg.clone()).primary(file, span, "here");
    }
    let found_token = e.found().copied();
    let found = match (found_token, next) {
        (Some(t), _) => t.describe(),
        (None, Some(n)) => format!("{} (the start of the next item)", n.describe()),
        (None, None) => "the end of the file".to_owned(),
    };
    let expected = expected_list(e);
    let context = e.contexts().last().map(|(label, _)| pattern_text(&RichPattern::Label(match label {
        RichPattern::Label(l) => l.clone(),
        other => std::borrow::Cow::Owned(pattern_text(other)),
    })));
    let mut message = format!("expected {expected}, found {found}");
    if let Some(ctx) = &context {
        message = format!("{message} in {ctx}");
    }
    let label = match found_token {
        Some(_) => "not expected here".to_owned(),
        None => format!("expected {expected} here"),
    };
    let mut d = Diagnostic::new(codes::E0012, message).primary(file, span, label);
    if let Some((_, ctx_span)) = e.contexts().last() {
        let ctx_span = Span::from(ctx_span.start..ctx_span.start).absolute_from(offset);
        if ctx_span.start < span.start {
            let what = context.clone().unwrap_or_default();
            d = d.secondary(file, Span::new(ctx_span.start, ctx_span.start + 1), format!("{what} starts here"));
        }
    }
    let help = match found_token {
        Some(t) if t.is_keyword() && expected.contains("a name") => Some(format!(
            "{} is a reserved word and cannot be used as a name; choose another name",
            t.describe().trim_start_matches("keyword ")
        )),
        _ => context.as_deref().and_then(example_of).map(|ex| {
            format!("{} looks like: {ex}", context.as_deref().unwrap_or("it"))
        }),
    };
    match help {
        Some(h) => d.help(h),
        None => d.help("see docs/language.md for the syntax of each construct"),
    }
}
