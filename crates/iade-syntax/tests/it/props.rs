//! Robustness properties, bounded so they run in the normal suite: random token soups and
//! mutated valid sources never panic, and every diagnostic points inside the file.

use iade_span::FileId;

use crate::golden::root;
use crate::rng::Rng;

const VOCAB: &[&str] = &[
    "use",
    "param",
    "let",
    "kind",
    "rule",
    "policy",
    "control",
    "require",
    "for",
    "in",
    "if",
    "then",
    "else",
    "where",
    "and",
    "or",
    "not",
    "true",
    "false",
    "null",
    "as",
    "provider",
    "identity",
    "file",
    "app",
    "x",
    "path",
    "mode",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    ":",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "&",
    "|",
    "^",
    "?",
    "\"",
    "\"\"\"",
    "${",
    "$${",
    "\\n",
    "\\q",
    "\\u{41}",
    "0o755",
    "0o8",
    "0x",
    "12abc",
    "1.5",
    "99999999999999999999",
    "1_000",
    "# comment",
    "## doc",
    "\n",
    "\n",
    " ",
    "  ",
    "\t",
    "@",
    ";",
    "é",
    "😀",
    "\r\n",
    "\\",
];

pub(crate) fn word(rng: &mut Rng) -> &'static str {
    VOCAB[rng.below(VOCAB.len())]
}

/// Every label of every diagnostic lies within the text, on character boundaries.
fn assert_spans_inside(text: &str, what: &str) {
    let parse = iade_syntax::parse(FileId(0), text);
    for d in &parse.diagnostics {
        assert!(!d.labels.is_empty(), "{what}: diagnostic without a label: {d:?}");
        for l in &d.labels {
            let (s, e) = (l.span.start as usize, l.span.end as usize);
            assert!(s <= e && e <= text.len(), "{what}: span {s}..{e} outside 0..{}: {d:?}", text.len());
            assert!(
                text.is_char_boundary(s) && text.is_char_boundary(e),
                "{what}: span {s}..{e} splits a character"
            );
        }
        assert!(d.help.is_some(), "{what}: diagnostic without help: {d:?}");
    }
    // Parsing is deterministic, and the recursive-descent parser agrees with the grammar.
    assert_eq!(parse, iade_syntax::parse(FileId(0), text), "{what}: parse is not deterministic");
    assert_eq!(parse, iade_syntax::parse_by_grammar(FileId(0), text), "{what}: the two parsers disagree");
}

#[test]
fn random_token_soups_never_panic_and_report_spans_inside_the_file() {
    for seed in 0..1500u64 {
        let mut rng = Rng::new(seed);
        let len = rng.below(60);
        let mut text = String::new();
        for _ in 0..len {
            text.push_str(word(&mut rng));
            if rng.chance(60) {
                text.push(' ');
            }
        }
        assert_spans_inside(&text, &format!("soup seed {seed}: {text:?}"));
    }
}

pub(crate) fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root().join("examples"), root().join("stdlib"), root().join("tests/syntax/ok")];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> =
            std::fs::read_dir(&dir).expect("directory exists").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "iade") {
                out.push(std::fs::read_to_string(&p).expect("utf-8 corpus file"));
            }
        }
    }
    out
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[test]
fn mutated_valid_sources_never_panic_and_report_spans_inside_the_file() {
    let corpus = corpus();
    assert!(corpus.len() > 10);
    for seed in 0..1500u64 {
        let mut rng = Rng::new(seed ^ 0xA5A5);
        let mut text = rng.pick(&corpus).clone();
        for _ in 0..1 + rng.below(3) {
            let a = floor_boundary(&text, rng.below(text.len() + 1));
            let b = floor_boundary(&text, a + rng.below(12));
            match rng.below(4) {
                0 => text.replace_range(a..b, ""),
                1 => text.insert_str(a, word(&mut rng)),
                2 => {
                    let chunk = text[a..b].to_owned();
                    text.insert_str(b, &chunk);
                }
                _ => text.replace_range(a..b, word(&mut rng)),
            }
        }
        assert_spans_inside(&text, &format!("mutation seed {seed}"));
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    for seed in 0..300u64 {
        let mut rng = Rng::new(seed ^ 0x5151);
        let bytes: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        let (text, parse) = iade_syntax::parse_bytes(FileId(0), &bytes);
        for d in &parse.diagnostics {
            for l in &d.labels {
                assert!(l.span.end as usize <= text.len(), "seed {seed}: span outside the text");
            }
        }
    }
}

#[test]
fn deep_nesting_of_every_kind_is_a_diagnostic_not_a_stack_overflow() {
    let cases = [
        format!("let x = {}1{}", "[".repeat(20_000), "]".repeat(20_000)),
        format!("let x = {}1{}", "(".repeat(20_000), ")".repeat(20_000)),
        format!("let x = {}1", "-".repeat(20_000)),
        format!("let x = {}true", "not ".repeat(20_000)),
        format!("let x = 1{}", " + 1".repeat(20_000)),
        format!("let x = a{}", ".b".repeat(20_000)),
        format!("let x = {}1{}", "{ a = ".repeat(20_000), " }".repeat(20_000)),
        format!("let x = {}x{}", "\"${".repeat(5_000), "}\"".repeat(5_000)),
        format!("file a {}", "{".repeat(20_000)),
    ];
    for (i, text) in cases.iter().enumerate() {
        let parse = iade_syntax::parse(FileId(0), text);
        assert!(
            parse.diagnostics.iter().any(|d| d.code.as_str() == "E0011"),
            "case {i}: expected E0011, got {:?}",
            parse.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>()
        );
    }
}

#[test]
fn nesting_just_under_the_limit_parses() {
    let depth = iade_syntax::MAX_NESTING - 2;
    let text = format!("let x = {}1{}\n", "[".repeat(depth), "]".repeat(depth));
    let parse = iade_syntax::parse(FileId(0), &text);
    assert!(parse.diagnostics.is_empty(), "{:?}", parse.diagnostics);
}
