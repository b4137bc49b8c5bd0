use chumsky::error::{EmptyErr, Rich, RichPattern, RichReason};
use chumsky::prelude::*;
use iade_diagnostics::{Diagnostic, codes};
use iade_span::{FileId, Span};

use crate::ast::{Item, SourceFile, Stmt, StmtKind};
use crate::grammar::{self, CHAINED, MISSING_VALUE, RichErr};
use crate::structure::{ItemToks, may_start_item, structure, structure_before, structure_part};
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
    parse_with(file, text, 1)
}

/// [`parse`] on at most `threads` threads (the caller knows how many the machine has): a file
/// of many items is split into runs parsed at once. The result is the same for any number.
pub fn parse_with(file: FileId, text: &str, threads: usize) -> Parse {
    parse_by(file, text, threads, Engine::Descent)
}

/// [`parse`] with the chumsky grammar alone, for the tests that compare it with the
/// recursive-descent parser: both must give the same `Parse` for every input.
#[doc(hidden)]
pub fn parse_by_grammar(file: FileId, text: &str) -> Parse {
    parse_by(file, text, 1, Engine::Grammar)
}

/// For each item of a file without lexical or structural errors, whether the recursive-descent
/// parser took it (`false`: it left the item to the grammar). For the tests.
#[doc(hidden)]
pub fn descent_coverage(file: FileId, text: &str) -> Vec<bool> {
    let lexed = lex(file, text);
    let (item_toks, _) = structure(file, &lexed.tokens);
    let mut toks = Vec::new();
    item_toks
        .iter()
        .map(|it| {
            relative_tokens(it, &mut toks);
            crate::descent::item(&toks).is_some()
        })
        .collect()
}

/// Which parser takes a well-formed item: the recursive-descent one (falling back to the
/// grammar for what it does not take), or the grammar alone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Engine {
    Descent,
    Grammar,
}

fn parse_by(file: FileId, text: &str, threads: usize, engine: Engine) -> Parse {
    if let Some(nul) = text.find('\0') {
        let d = Diagnostic::new(codes::E0002, "file contains a NUL byte")
            .primary(file, Span::from(nul..nul + 1), "NUL byte here")
            .help("remove the NUL byte; if this is a binary file, only `.iade` text files belong in a stack");
        return Parse { tree: SourceFile::default(), comments: Vec::new(), diagnostics: vec![d] };
    }
    if u32::try_from(text.len()).is_err() {
        let d = Diagnostic::new(codes::E0012, "file is too large (over 4 GiB)")
            .primary(file, Span::empty(0), "in this file")
            .help("split the stack into smaller files");
        return Parse { tree: SourceFile::default(), comments: Vec::new(), diagnostics: vec![d] };
    }
    if threads == 2
        && let Some(parse) = parse_in_halves(file, text, engine)
    {
        return parse;
    }
    let lexed = crate::token::lex_parallel(file, text, threads);
    let mut diagnostics = lexed.diagnostics;
    let in_parts = threads >= 2 && lexed.tokens.len() >= PARALLEL_TOKENS;
    let items = if in_parts {
        // Each part's items are validated on its thread too.
        structure_and_parse_in_parts(file, text, &lexed.tokens, threads, engine, &mut diagnostics)
    } else {
        let (item_toks, structure_diags) = structure(file, &lexed.tokens);
        diagnostics.extend(structure_diags);
        parse_items(file, text, &item_toks, threads, engine, &mut diagnostics)
    };
    if !in_parts {
        diagnostics.extend(crate::validate::validate_items(file, &items));
    }
    finish_parse(file, text, items, lexed.comments, diagnostics)
}

/// The parse of a file from its items, comments and diagnostics: doc comments attached, the
/// diagnostics in order.
fn finish_parse(
    file: FileId,
    text: &str,
    items: Vec<Item>,
    comments: Vec<Comment>,
    mut diagnostics: Vec<Diagnostic>,
) -> Parse {
    let mut tree = SourceFile { items };
    diagnostics.extend(crate::docs::attach(file, text, &mut tree, &comments));
    iade_diagnostics::sort(&mut diagnostics);
    Parse { tree, comments, diagnostics }
}

/// Files with at least this many items are parsed on several threads.
const PARALLEL_ITEMS: usize = 256;

/// Files with at least this many tokens are split into items and parsed in parts at once
/// ([`structure_and_parse_in_parts`]): some 256 items.
const PARALLEL_TOKENS: usize = 8192;

/// Texts at least this long parse their first half on the calling thread
/// ([`parse_in_halves`]): some million tokens, as for [`CALLING_THREAD_TOKENS`].
const CALLING_THREAD_BYTES: usize = 4 << 20;

/// What one half of a file parsed apart gives: its comments, its diagnostics (lexing first)
/// and its items.
type ParsedHalf = (Vec<Comment>, Vec<Diagnostic>, Vec<Item>);

/// Parses a large file in two halves at once on two threads (the machine's parallelism being
/// two), each half lexed, passed over, parsed and validated on one thread, with nothing shared
/// between them: the tokens of the halves are never joined. More threads parse in more parts
/// ([`structure_and_parse_in_parts`]). The second half starts on a line that begins with a word (see
/// [`crate::token::lex_parallel`]). `None` when the text is small, or when the halves are not
/// independent: the first does not end in code at the top level, a delimiter is still open
/// there or no item begins at the second (then it is parsed as one, in parts). The result is
/// the same as for one thread (the tests compare them).
fn parse_in_halves(file: FileId, text: &str, engine: Engine) -> Option<Parse> {
    let (split, next) = crate::token::halves(file, text)?;
    let second = move || -> (ParsedHalf, Option<(Token<'_>, Span)>) {
        let lexed = crate::token::lex_from(file, text, split);
        let begins = lexed.tokens.first().map(|t| (t.token, t.span));
        let mut diags = lexed.diagnostics;
        let part = structure_part(file, &lexed.tokens, 0, &[]);
        diags.extend(part.diags);
        let items = parse_run(file, text, &part.items, None, engine, &mut diags);
        diags.extend(crate::validate::validate_items(file, &items));
        ((lexed.comments, diags, items), begins)
    };
    let first = move || -> Option<ParsedHalf> {
        let lexed = crate::token::lex_first_half(file, text, split)?;
        let mut diags = lexed.diagnostics;
        let (item_toks, structure_diags) = structure_before(file, &lexed.tokens, next)?;
        diags.extend(structure_diags);
        let items = parse_run(file, text, &item_toks, Some(Some(next.token)), engine, &mut diags);
        diags.extend(crate::validate::validate_items(file, &items));
        Some((lexed.comments, diags, items))
    };
    // On threads of their own, unless the text is very large (see `structure_and_parse_in_parts`).
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(second);
        let first = if text.len() >= CALLING_THREAD_BYTES {
            first()
        } else {
            scope.spawn(first).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        };
        (first, second.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let (mut comments, mut diagnostics, mut items) = first?;
    let ((second_comments, second_diags, second_items), begins) = second;
    // The second half must begin with the token the first half was checked against (a word
    // lexes alone as it does in its line).
    if begins != Some((next.token, next.span)) {
        return None;
    }
    comments.extend(second_comments);
    diagnostics.extend(second_diags);
    items.extend(second_items);
    Some(finish_parse(file, text, items, comments, diagnostics))
}

/// A part's items, their diagnostics, and where it stopped (see [`structure_part`]).
type ParsedPart = (Vec<Item>, Vec<Diagnostic>, Option<usize>);

/// Files with at least this many tokens (some 30,000 items) parse their first part on the
/// calling thread (see [`structure_and_parse_in_parts`]).
const CALLING_THREAD_TOKENS: usize = 1 << 20;

/// Splits a large file's tokens into items and parses them in up to `threads` parts at once,
/// each part's structure pass and parse on one thread, with no wait between them. A part
/// starts at a line that begins with a word at column 0 near its share of the tokens (an
/// item, most likely) and runs until the next part's start where no delimiter is open and an
/// item begins ([`structure_part`]). A part whose start is not such a point (inside a string,
/// a block left open, an expression continued) is not used: the part before it runs on
/// through it. The items and diagnostics are the same as for one pass over the whole (the
/// tests compare them).
fn structure_and_parse_in_parts(
    file: FileId,
    text: &str,
    toks: &[crate::token::Tok<'_>],
    threads: usize,
    engine: Engine,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Item> {
    let mut starts = vec![0];
    for j in 1..threads {
        let from = (toks.len() * j / threads).max(starts.last().map_or(0, |s| s + 1));
        let at_line_start = |k: &usize| toks[*k].line_start && toks[*k].col == 0;
        if let Some(k) = (from..toks.len()).find(|k| at_line_start(k) && may_start_item(toks[*k].token)) {
            starts.push(k);
        }
    }
    let stops = &starts[1..];
    let part = |start: usize| {
        let mut part = structure_part(file, toks, start, stops);
        // The first token of the item after the part, for its last item's "expected …".
        let after = part.stop.map(|s| stops.get(s).and_then(|&k| toks.get(k)).map(|t| t.token));
        let items = parse_run(file, text, &part.items, after, engine, &mut part.diags);
        part.diags.extend(crate::validate::validate_items(file, &items));
        (items, part.diags, part.stop)
    };
    // Each part on a thread of its own, the first too, unless the file is very large. The
    // trees' memory is then in the threads' heaps, which the threads that lower the items take
    // over and reuse once the trees are released (the first part parsed on the calling thread,
    // a 10,000-item file's check made 8 MB more memory fresh). A very large file is lowered
    // with the calling thread as one of the threads (a compile of one stack does so from
    // 16,384 resource items), and its first part is parsed there for the same reason (100,000
    // items: 13 MB less memory so).
    let here = toks.len() >= CALLING_THREAD_TOKENS;
    let mut parts: Vec<Option<ParsedPart>> = std::thread::scope(|scope| {
        let spawned = if here { &starts[1..] } else { &starts[..] };
        let handles: Vec<_> = spawned.iter().map(|&start| scope.spawn(move || part(start))).collect();
        let first = here.then(|| part(0));
        first
            .into_iter()
            .chain(
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
            )
            .map(Some)
            .collect()
    });
    // The parts in a chain: each one after the point where the one before stopped.
    let mut items = Vec::new();
    let mut at = Some(0);
    while let Some((part_items, part_diags, stop)) = at.and_then(|i| parts.get_mut(i)).and_then(Option::take)
    {
        items.extend(part_items);
        diagnostics.extend(part_diags);
        at = stop.map(|s| s + 1);
    }
    items
}

/// Parses every item, in order. A large file's items are split into contiguous runs, one per
/// thread, each with its own parser; the result does not depend on how they were split.
fn parse_items(
    file: FileId,
    text: &str,
    item_toks: &[ItemToks<'_, '_>],
    threads: usize,
    engine: Engine,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Item> {
    if threads < 2 || item_toks.len() < PARALLEL_ITEMS {
        return parse_run(file, text, item_toks, None, engine, diagnostics);
    }
    let per = item_toks.len().div_ceil(threads);
    let runs: Vec<(Vec<Item>, Vec<Diagnostic>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = item_toks
            .chunks(per)
            .enumerate()
            .map(|(i, run)| {
                // The token after a run's last item, for its "expected …" messages.
                let after = item_toks.get((i + 1) * per).and_then(|n| n.toks.first()).map(|t| t.token);
                scope.spawn(move || {
                    let mut diags = Vec::new();
                    let items = parse_run(file, text, run, Some(after), engine, &mut diags);
                    (items, diags)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut items = Vec::with_capacity(item_toks.len());
    for (run, diags) in runs {
        items.extend(run);
        diagnostics.extend(diags);
    }
    items
}

/// Parses a run of consecutive items. `after` is the first token after the run when it is not
/// the file's last.
fn parse_run(
    file: FileId,
    text: &str,
    item_toks: &[ItemToks<'_, '_>],
    after: Option<Option<Token<'_>>>,
    engine: Engine,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Item> {
    // Item tokens with spans relative to their item. Most items are well-formed: the
    // recursive-descent parser takes them, one at a time through one buffer.
    let mut toks: Vec<Pair<'_>> = Vec::new();
    let descended: Vec<Option<Stmt>> = item_toks
        .iter()
        .map(|it| match engine {
            Engine::Descent if !it.poisoned => {
                relative_tokens(it, &mut toks);
                crate::descent::item(&toks)
            }
            _ => None,
        })
        .collect();
    // The grammar takes the rest, first with errors that track nothing, and only an item that
    // fails is parsed again with detailed errors to report. Its parsers are built once per run,
    // and only if some item needs them (building chumsky's combinator tree is far from free);
    // their input must outlive them, so the tokens of those items are kept.
    let rest: Vec<(usize, Vec<Pair<'_>>, SimpleSpan)> = item_toks
        .iter()
        .zip(&descended)
        .enumerate()
        .filter(|(_, (it, stmt))| stmt.is_none() && !it.poisoned)
        .map(|(idx, (it, _))| {
            let mut toks = Vec::new();
            let eoi = relative_tokens(it, &mut toks);
            (idx, toks, eoi)
        })
        .collect();
    let mut by_grammar: Vec<Option<ParseResult<'_, '_>>> = Vec::new();
    if !rest.is_empty() {
        let fast = grammar::item::<_, EmptyErr>();
        let detailed = grammar::item::<_, RichErr<'_, '_>>();
        by_grammar = rest
            .iter()
            .map(|(_, toks, eoi)| match fast.parse(toks.as_slice().map(*eoi, split)).into_result() {
                Ok(stmt) => Some((Some(stmt), Vec::new())),
                Err(_) => Some(detailed.parse(toks.as_slice().map(*eoi, split)).into_output_errors()),
            })
            .collect();
    }
    let mut by_grammar = rest.iter().map(|(idx, ..)| *idx).zip(by_grammar).peekable();
    let mut items = Vec::with_capacity(item_toks.len());
    for (idx, (it, stmt)) in item_toks.iter().zip(descended).enumerate() {
        let next = match item_toks.get(idx + 1) {
            Some(n) => n.toks.first().map(|t| t.token),
            None => after.flatten(),
        };
        let result = match stmt {
            Some(stmt) => Some((Some(stmt), Vec::new())),
            None => by_grammar.next_if(|(i, _)| *i == idx).and_then(|(_, result)| result),
        };
        items.push(finish_item(file, text, it, next, result, diagnostics));
    }
    items
}

type Pair<'s> = (Token<'s>, SimpleSpan);

fn split<'a, 's>(p: &'a Pair<'s>) -> (&'a Token<'s>, &'a SimpleSpan) {
    (&p.0, &p.1)
}

/// The item's tokens with spans relative to its first token, into `out` (a buffer reused from
/// item to item); returns the end-of-input span.
fn relative_tokens<'s>(it: &ItemToks<'_, 's>, out: &mut Vec<Pair<'s>>) -> SimpleSpan {
    let offset = it.toks.first().map_or(0, |t| t.span.start);
    out.clear();
    out.extend(it.toks.iter().map(|t| {
        let r = t.span.relative_to(offset);
        (t.token, SimpleSpan::from(r.start as usize..r.end as usize))
    }));
    let end = out.iter().map(|(_, s)| s.end).max().unwrap_or(0);
    SimpleSpan::from(end..end)
}

type ParseResult<'t, 's> = (Option<Stmt>, Vec<Rich<'t, Token<'s>>>);

fn finish_item(
    file: FileId,
    text: &str,
    it: &ItemToks<'_, '_>,
    next: Option<Token<'_>>,
    result: Option<ParseResult<'_, '_>>,
    diags: &mut Vec<Diagnostic>,
) -> Item {
    let offset = it.toks.first().map_or(0, |t| t.span.start);
    let last_end = it.toks.iter().map(|t| t.span.end).max().unwrap_or(offset);
    let whole = Span::new(0, last_end - offset);
    let error_item =
        Item { offset, stmt: std::sync::Arc::new(Stmt { kind: StmtKind::Error, span: whole, doc: None }) };
    // A poisoned item (too deep to parse safely) was reported by the structure pass.
    let Some((output, errors)) = result else { return error_item };
    let lexical_errors = it.toks.iter().any(|t| t.token == Token::Error);
    if !lexical_errors {
        // One slip, one error: the first error of the item is the one the user made. Errors
        // where a missing delimiter was already reported are its consequences.
        let repaired = it.repaired_at.map(|r| (r - offset) as usize);
        if let Some(first) = errors.iter().min_by_key(|e| (e.span().start, e.span().end))
            && repaired.is_none_or(|r| first.span().start < r)
        {
            diags.push(convert(&Site { file, text, offset, toks: &it.toks }, first, next));
        }
    }
    match output {
        Some(stmt) if errors.is_empty() || lexical_errors || !matches!(stmt.kind, StmtKind::Error) => {
            Item { offset, stmt: std::sync::Arc::new(stmt) }
        }
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

/// Whether chumsky expected something matching `f` at the error.
fn expects(e: &Rich<'_, Token<'_>>, f: impl Fn(&RichPattern<'_, Token<'_>>) -> bool) -> bool {
    e.expected().any(f)
}

fn expects_label(e: &Rich<'_, Token<'_>>, label: &str) -> bool {
    expects(e, |p| matches!(p, RichPattern::Label(l) if l == label))
}

fn expects_token(e: &Rich<'_, Token<'_>>, token: Token<'_>) -> bool {
    expects(e, |p| matches!(p, RichPattern::Token(t) if **t == token))
}

/// "a, b or c", with binary operators folded into one "an operator".
fn expected_list(e: &Rich<'_, Token<'_>>) -> String {
    let mut items: Vec<String> = Vec::new();
    let mut saw_operator = false;
    for p in e.expected() {
        if matches!(p, RichPattern::Token(t) if t.continues_expression()) {
            saw_operator = true;
            continue;
        }
        let t = pattern_text(p);
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
        "`control`" => {
            "control \"CIS-6.1.10\" { title = \"…\"  severity = high  for f in observe(file) { … } }"
        }
        "`for`" => "for name in [\"a\", \"b\"] { … }",
        "`if`" => "if tier == \"prod\" { … } else { … }",
        "`require`" => "require f.mode & 0o002 == 0 else \"world-writable\"",
        "`provider`" => "provider postgres main { url = \"postgres://localhost/app\" }",
        "a field declaration" => "desired mode: mode = 0o644 where mode <= 0o7777",
        "a resource declaration" => "file config { path = \"/etc/app.toml\" }",
        _ => return None,
    })
}

/// Where an item sits, for converting its parse errors.
struct Site<'a, 's> {
    file: FileId,
    text: &'a str,
    offset: u32,
    toks: &'a [crate::token::Tok<'s>],
}

/// Whether `later` is on a line after `earlier`'s. Reads only the text between them: counting
/// lines from the file's start made every error cost the length of the file before it.
fn on_a_later_line(text: &str, earlier: u32, later: u32) -> bool {
    earlier < later && text.get(earlier as usize..later as usize).is_some_and(|t| t.contains('\n'))
}

fn convert(site: &Site<'_, '_>, e: &Rich<'_, Token<'_>>, next: Option<Token<'_>>) -> Diagnostic {
    let file = site.file;
    let span = Span::from(e.span().start..e.span().end).absolute_from(site.offset);
    if let RichReason::Custom(msg) = e.reason() {
        if msg == CHAINED {
            return Diagnostic::new(codes::E0013, "comparison operators cannot be chained")
                .primary(file, span, "second comparison here")
                .help("join the comparisons with `and` (`a < b and b < c`), or add parentheses to compare a result");
        }
        if msg == MISSING_VALUE {
            return Diagnostic::new(codes::E0015, "missing value")
                .primary(file, span, "expected a value after `=`")
                .help("write the value after `=`, or remove the entry to leave the field unmanaged");
        }
        return Diagnostic::new(codes::E0012, msg.clone())
            .primary(file, span, "here")
            .help("see docs/language.md");
    }
    let found_token = e.found().copied();
    let expected = expected_list(e);
    // The token found, and whether it starts a line (then the slip is at the end of the line
    // before it, not at it).
    let found_tok = site
        .toks
        .iter()
        .find(|t| t.span.start == span.start && t.token == found_token.unwrap_or(Token::Error));
    let at_line_start = found_token.is_none() || found_tok.is_some_and(|t| t.line_start);
    let prev_end =
        site.toks.iter().filter(|t| t.span.end <= span.start && !t.span.is_empty()).map(|t| t.span.end).max();
    let context = e.contexts().last().map(|(label, _)| match label {
        RichPattern::Label(l) => l.to_string(),
        other => pattern_text(other),
    });
    let primary_pos = match (at_line_start, prev_end) {
        (true, Some(end)) => end,
        _ => span.start,
    };
    if at_line_start && found_token.is_some() && expects(e, |p| matches!(p, RichPattern::EndOfInput)) {
        let found = found_token.map(|t| t.describe()).unwrap_or_default();
        let help = match found_token {
            Some(Token::LParenLine | Token::LBracketLine) => {
                "a `(` or `[` at the start of a line does not continue the expression above; join the lines"
            }
            _ => "remove it, or start a new item (`let`, `param`, a resource declaration, …)",
        };
        return Diagnostic::new(codes::E0012, format!("unexpected {found} at the start of a line"))
            .primary(file, span, "not expected here")
            .help(help);
    }
    if found_token == Some(Token::LBrace) && expects_label(e, "a resource name") {
        // `stack { … }` parses as a resource of kind `stack` without a name.
        if site.toks.first().map(|t| t.token) == Some(Token::Ident("stack")) {
            return Diagnostic::new(codes::E0012, "missing stack name")
                .primary(file, Span::empty(span.start), "expected a name before `{`")
                .help("name the stack: `stack web { prune = true }`; the name identifies it on the host and in its journal");
        }
        return Diagnostic::new(codes::E0012, "missing resource name")
            .primary(file, Span::empty(span.start), "expected a name before `{`")
            .help("name the resource: `directory app { … }` (a name or a string)");
    }
    let mut d = match (at_line_start, prev_end) {
        (true, Some(end)) => {
            let prev_text = site
                .toks
                .iter()
                .rfind(|t| t.span.end == end)
                .map(|t| site.text.get(t.span.range()).unwrap_or_default().to_owned())
                .unwrap_or_default();
            let what = match (found_token, next) {
                (Some(t), _) => format!("the next line starts with {}", t.describe()),
                (None, Some(n)) => format!("the next item starts with {}", n.describe()),
                (None, None) => "the file ends here".to_owned(),
            };
            Diagnostic::new(codes::E0012, format!("expected {expected} after `{prev_text}`"))
                .primary(file, Span::empty(end), format!("expected {expected} here"))
                .note(what)
        }
        _ => {
            let found = match found_token {
                Some(t) => t.describe(),
                None => "the end of the file".to_owned(),
            };
            Diagnostic::new(codes::E0012, format!("expected {expected}, found {found}")).primary(
                file,
                span,
                "not expected here",
            )
        }
    };
    if let (Some((_, ctx_span)), Some(ctx)) = (e.contexts().last(), &context) {
        let start = ctx_span.start as u32 + site.offset;
        if on_a_later_line(site.text, start, primary_pos) {
            d = d.secondary(file, Span::new(start, start + 1), format!("{ctx} starts here"));
        }
    }
    let defines_name = found_tok.is_some_and(|t| !t.line_start);
    let help = match found_token {
        Some(t) if t.is_keyword() && expects_label(e, "a name") && defines_name => Some(format!(
            "{} is a keyword and cannot be used as a name; choose another name, or quote it where a string is allowed",
            t.describe().trim_start_matches("keyword ")
        )),
        Some(Token::Eq) if context.as_deref() == Some("`if`") && !expects_token(e, Token::Eq) => {
            Some("`=` assigns; compare with `==`".to_owned())
        }
        Some(Token::EqEq) if expects_token(e, Token::Eq) => {
            Some("`==` compares; an entry is written `name = value`".to_owned())
        }
        _ => context
            .as_deref()
            .and_then(example_of)
            .map(|ex| format!("{} looks like: {ex}", context.as_deref().unwrap_or("it"))),
    };
    match help {
        Some(h) => d.help(h),
        None => d.help("see docs/language.md for the syntax of each construct"),
    }
}
