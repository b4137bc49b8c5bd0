//! A large text lexed in two halves at once gives what lexing it whole gives.

use iade_span::FileId;
use iade_syntax::token::{lex, lex_parallel, parallel_split};

const FILE: FileId = FileId(0);

/// `count` resources, with `middle` written halfway through.
fn stack(count: usize, middle: &str, newline: &str) -> String {
    let mut out = String::new();
    for i in 0..count {
        if i == count / 2 {
            out.push_str(middle);
        }
        out.push_str(&format!(
            "file f{i} {{{newline}  path = \"/srv/${{root}}/f{i}\" # where{newline}  mode = 0o644{newline}}}{newline}{newline}"
        ));
    }
    out
}

fn same(text: &str) {
    let whole = lex(FILE, text);
    let halves = lex_parallel(FILE, text, 2);
    assert_eq!(format!("{:?}", halves.tokens), format!("{:?}", whole.tokens));
    assert_eq!(halves.comments, whole.comments);
    assert_eq!(format!("{:?}", halves.diagnostics), format!("{:?}", whole.diagnostics));
}

#[test]
fn a_large_stack_lexed_in_two_halves_gives_the_tokens_of_the_whole() {
    let text = stack(4000, "", "\n");
    assert!(parallel_split(FILE, &text).is_some(), "lexed in halves");
    same(&text);
}

#[test]
fn a_split_inside_a_string_or_an_interpolation_falls_back_to_lexing_the_whole() {
    // A multi-line string across the middle, whose lines look like items; one left open; an
    // interpolation inside one.
    let long: String = (0..3000).map(|i| format!("file x{i} {{\n")).collect();
    for middle in [
        format!("let doc = \"\"\"\n{long}\"\"\"\n"),
        format!("let open = \"\"\"\n{long}"),
        format!("let s = \"\"\"\n${{ [\n{long}] }}\n\"\"\"\n"),
    ] {
        let text = stack(2000, &middle, "\n");
        assert_eq!(parallel_split(FILE, &text), None, "not split inside a string");
        same(&text);
    }
    // In a one-line string, the line's end ends an interpolation: the rest is code again.
    let text = stack(2000, &format!("let s = \"${{ [\n{long}] }}\"\n"), "\n");
    assert!(parallel_split(FILE, &text).is_some());
    same(&text);
}

#[test]
fn errors_and_line_ends_around_the_split_are_lexed_as_in_the_whole() {
    for (middle, newline) in [
        ("x = ; ' ~\n", "\n"),
        ("file bad {\n  path = \"unterminated\n}\n", "\n"),
        ("let n = 0x12z\n", "\n"),
        ("", "\r\n"),
    ] {
        same(&stack(4000, middle, newline));
    }
}
