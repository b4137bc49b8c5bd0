//! Arbitrary bytes through the syntax layer and the formatter.
//!
//! Holds the promises of ARCHITECTURE.md: `parse` is total and every diagnostic points inside
//! the text; on input without errors, formatting is idempotent and keeps the tree and every
//! comment.

#![no_main]

use iade_span::FileId;
use libfuzzer_sys::fuzz_target;

/// Comment texts in a defined order; the formatter may move a comment but not change or drop it.
fn comment_texts(parse: &iade_syntax::Parse) -> Vec<String> {
    let mut v: Vec<String> = parse.comments.iter().map(|c| c.text.trim_end().to_owned()).collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let (text, parse) = iade_syntax::parse_bytes(FileId(0), data);
    for d in &parse.diagnostics {
        for l in &d.labels {
            assert!(l.span.end as usize <= text.len());
        }
    }
    if !parse.has_errors() {
        if let Ok(out) = iade_fmt::format(&text) {
            assert_eq!(iade_fmt::format(&out).ok().as_deref(), Some(out.as_str()));
            let reparsed = iade_syntax::parse(FileId(0), &out);
            assert_eq!(iade_syntax::dump::dump(&parse.tree), iade_syntax::dump::dump(&reparsed.tree));
            assert_eq!(comment_texts(&parse), comment_texts(&reparsed));
        }
    }
});
