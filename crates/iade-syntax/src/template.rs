//! Templates: text with `${…}` expressions, as `template(path, vars)` reads them.
//!
//! The text is taken as it is (no escapes, line endings kept); `$${` is a literal `${`. Each
//! expression parses with the language's grammar, and its spans are absolute in the template.

use chumsky::prelude::*;
use iade_diagnostics::{Diagnostic, codes};
use iade_span::{FileId, Span};

use crate::ast::{Expr, StmtKind};
use crate::grammar::{self, RichErr};
use crate::token::{Token, lex_from};

/// A piece of a template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TemplatePart {
    Text(String),
    Expr(Expr),
}

/// Splits a template into text and expressions; problems are diagnostics with spans.
pub fn parse_template(file: FileId, text: &str) -> (Vec<TemplatePart>, Vec<Diagnostic>) {
    let mut parts = Vec::new();
    let mut diags = Vec::new();
    let mut lit = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if text[i..].starts_with("$${") {
            lit.push_str("${");
            i += 3;
        } else if text[i..].starts_with("${") {
            let open = i;
            let Some(close) = scan_code(bytes, i + 2) else {
                diags.push(
                    Diagnostic::new(codes::E0217, "unterminated `${` in a template")
                        .primary(file, Span::from(open..open + 2), "this `${` is never closed")
                        .help("close it with `}`, or write `$${` for a literal `${`"),
                );
                lit.push_str(&text[open..]);
                break;
            };
            if !lit.is_empty() {
                parts.push(TemplatePart::Text(std::mem::take(&mut lit)));
            }
            match parse_expr(file, &text[..close], open + 2) {
                Ok(e) => parts.push(TemplatePart::Expr(e)),
                Err(d) => diags.push(*d),
            }
            i = close + 1;
        } else {
            let c = text[i..].chars().next().unwrap_or_default();
            lit.push(c);
            i += c.len_utf8().max(1);
        }
    }
    if !lit.is_empty() {
        parts.push(TemplatePart::Text(lit));
    }
    (parts, diags)
}

/// From inside a `${`, the offset of the `}` that closes it: braces counted, strings (with
/// their own interpolations) and comments skipped.
fn scan_code(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0u32;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i = scan_string(b, i + 1)?;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// From inside a string, the offset just after its closing quote.
fn scan_string(b: &[u8], mut i: usize) -> Option<usize> {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'$' if b.get(i + 1) == Some(&b'$') && b.get(i + 2) == Some(&b'{') => i += 3,
            b'$' if b.get(i + 1) == Some(&b'{') => i = scan_code(b, i + 2)? + 1,
            b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Parses the expression `src[start..]`; its spans are absolute in `src`.
fn parse_expr(file: FileId, src: &str, start: usize) -> Result<Expr, Box<Diagnostic>> {
    let whole = Span::from(start..src.len());
    let lexed = lex_from(file, src, start);
    if let Some(d) = lexed.diagnostics.into_iter().next() {
        return Err(Box::new(d));
    }
    if lexed.tokens.is_empty() {
        return Err(Box::new(
            Diagnostic::new(codes::E0217, "empty `${}` in a template")
                .primary(file, whole, "nothing to interpolate")
                .help("write an expression, such as `${port}`, or `$${` for a literal `${`"),
        ));
    }
    // Parsed as the value of an entry `_ = EXPR`, with spans absolute in the template.
    let at = SimpleSpan::from(start..start);
    let mut toks: Vec<(Token<'_>, SimpleSpan)> = vec![(Token::Ident("_"), at), (Token::Eq, at)];
    toks.extend(
        lexed.tokens.iter().map(|t| (t.token, SimpleSpan::from(t.span.start as usize..t.span.end as usize))),
    );
    let eoi = SimpleSpan::from(src.len()..src.len());
    let parser = grammar::item::<_, RichErr<'_, '_>>();
    let (out, errors) = parser.parse(toks.as_slice().map(eoi, |(t, s)| (t, s))).into_output_errors();
    match (out, errors.first()) {
        (Some(stmt), None) => match stmt.kind {
            StmtKind::Attr(a) => Ok(a.value),
            _ => Err(Box::new(not_an_expression(file, whole))),
        },
        (_, Some(e)) => {
            let span = Span::from(e.span().start.max(start)..e.span().end.max(start));
            Err(Box::new(
                Diagnostic::new(codes::E0217, "this template expression does not parse")
                    .primary(file, span, format!("{}", e.reason()))
                    .help("a template holds expressions over its variables and the builtins: `${port}`, `${join(hosts, \" \")}`"),
            ))
        }
        (None, None) => Err(Box::new(not_an_expression(file, whole))),
    }
}

fn not_an_expression(file: FileId, span: Span) -> Diagnostic {
    Diagnostic::new(codes::E0217, "not an expression")
        .primary(file, span, "expected an expression")
        .help("a template holds expressions over its variables and the builtins: `${port}`")
}
