//! Arbitrary bytes through the syntax layer and the formatter.
//!
//! Holds the promises of ARCHITECTURE.md: `parse` is total and every diagnostic points inside
//! the text; on input without errors, formatting is idempotent and preserves the tree.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, parse) = iade_syntax::parse_bytes(iade_span::FileId(0), data);
    for d in &parse.diagnostics {
        for l in &d.labels {
            assert!(l.span.end as usize <= text.len());
        }
    }
    if !parse.has_errors() {
        if let Ok(out) = iade_fmt::format(&text) {
            assert_eq!(iade_fmt::format(&out).ok().as_deref(), Some(out.as_str()));
            // Meaning is preserved: the tree of the output equals the tree of the input.
            let before = iade_syntax::dump::dump(&parse.tree);
            let after = iade_syntax::dump::dump(&iade_syntax::parse(iade_span::FileId(0), &out).tree);
            assert_eq!(before, after);
        }
    }
});
