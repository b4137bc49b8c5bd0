//! The recursive-descent parser against the chumsky grammar: for every input the `Parse` (tree,
//! spans, comments, diagnostics) must be the same, and the descent parser must take every
//! well-formed item but the forms it leaves to the grammar.

use std::path::{Path, PathBuf};

use iade_span::FileId;

use crate::golden::root;
use crate::props::{corpus, word};
use crate::rng::Rng;

/// Every `.iade` file of the repository: examples, the standard library, the goldens' inputs
/// (well-formed and not) and the test fixtures.
fn every_source() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).expect("directory exists").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if p.is_dir() && !name.starts_with('.') && name != "target" && name != "node_modules" {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "iade")
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                out.push((p, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &mut out);
    out
}

#[test]
fn the_descent_parser_gives_the_grammars_parse_for_every_source_in_the_repository() {
    let sources = every_source();
    assert!(sources.len() > 100, "found only {} sources", sources.len());
    for (path, text) in &sources {
        let ours = iade_syntax::parse(FileId(0), text);
        let grammar = iade_syntax::parse_by_grammar(FileId(0), text);
        assert_eq!(ours, grammar, "{}: the two parsers disagree", path.display());
    }
}

/// The forms the descent parser leaves to the grammar, by their first word.
const LEFT_TO_THE_GRAMMAR: &[&str] = &["waive", "test", "with", "observed", "expect"];

/// How deep brackets nest in a text; the descent parser leaves items nested over 64 deep to
/// the grammar.
fn nesting(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0);
    for c in text.chars() {
        match c {
            '[' | '(' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ']' | ')' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[test]
fn the_descent_parser_takes_every_well_formed_item_but_the_forms_it_leaves_to_the_grammar() {
    let mut taken = 0;
    for (path, text) in every_source() {
        if !iade_syntax::parse_by_grammar(FileId(0), &text).diagnostics.is_empty() {
            continue;
        }
        let coverage = iade_syntax::descent_coverage(FileId(0), &text);
        let tree = iade_syntax::parse(FileId(0), &text).tree;
        assert_eq!(coverage.len(), tree.items.len(), "{}", path.display());
        for (item, took) in tree.items.iter().zip(coverage) {
            let first_word: String =
                text[item.offset as usize..].chars().take_while(|c| c.is_alphanumeric()).collect();
            if took {
                taken += 1;
            } else {
                assert!(
                    LEFT_TO_THE_GRAMMAR.contains(&first_word.as_str())
                        || nesting(&text[item.span().range()]) > 60,
                    "{}: the descent parser left a well-formed item to the grammar: {}",
                    path.display(),
                    &text[item.span().range()]
                );
            }
        }
    }
    assert!(taken > 500, "the descent parser took only {taken} items");
}

/// A source cut at word boundaries, each separator kept with the word before it.
fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if in_space && !space {
            out.push(&text[start..i]);
            start = i;
        }
        in_space = space;
    }
    out.push(&text[start..]);
    out
}

#[test]
fn the_two_parsers_agree_on_sources_with_a_word_dropped_doubled_swapped_or_replaced() {
    let corpus = corpus();
    for seed in 0..3000u64 {
        let mut rng = Rng::new(seed ^ 0xD5C3);
        let source = rng.pick(&corpus);
        let mut ws: Vec<String> = words(source).into_iter().map(str::to_owned).collect();
        let at = rng.below(ws.len());
        match rng.below(4) {
            0 => {
                ws.remove(at);
            }
            1 => {
                let w = ws[at].clone();
                ws.insert(at, w);
            }
            2 if at + 1 < ws.len() => ws.swap(at, at + 1),
            _ => ws[at] = format!("{} ", word(&mut rng)),
        }
        let text = ws.concat();
        let ours = iade_syntax::parse(FileId(0), &text);
        let grammar = iade_syntax::parse_by_grammar(FileId(0), &text);
        assert_eq!(ours, grammar, "seed {seed}: the two parsers disagree on:\n{text}");
    }
}
