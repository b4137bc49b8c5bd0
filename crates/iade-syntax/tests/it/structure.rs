//! Table tests of the properties the structure pass promises.

use iade_span::FileId;
use iade_syntax::ast::StmtKind;

fn check(text: &str) -> iade_syntax::Parse {
    iade_syntax::parse(FileId(0), text)
}

fn line_of(text: &str, offset: u32) -> usize {
    text[..offset as usize].matches('\n').count() + 1
}

#[test]
fn a_missing_brace_is_reported_at_the_block_that_is_not_closed() {
    let cases = [
        // (source, line of the unclosed brace)
        ("directory app {\n  path = \"/a\"\n\nfile b {\n  path = \"/b\"\n}\n", 1),
        ("for n in xs {\n  file a {\n    path = n\n  }\nfile b {\n  path = \"/b\"\n}\n", 1),
        ("policy p {\n  for f in xs {\n    require f\n}\n", 2),
        ("file a {\n  path = \"/a\"\n", 1),
    ];
    for (text, line) in cases {
        let parse = check(text);
        assert_eq!(parse.diagnostics.len(), 1, "{text:?}: {:?}", parse.diagnostics);
        let d = &parse.diagnostics[0];
        assert_eq!(d.code.as_str(), "E0009", "{text:?}");
        let primary = d.primary_label().expect("a primary label");
        assert_eq!(line_of(text, primary.span.start), line, "{text:?}");
    }
}

#[test]
fn items_after_a_slip_still_parse() {
    let parse = check("param x: = 1\n\ndirectory app {\n  path = \"/a\"\n}\n");
    assert_eq!(parse.diagnostics.len(), 1);
    assert!(matches!(parse.tree.items[1].stmt.kind, StmtKind::Resource(_)));
}

#[test]
fn moving_an_item_leaves_its_tree_equal() {
    let a = check("directory app {\n  path = \"/a\"\n}\n");
    let b = check("# a new comment\nlet x = 1\n\ndirectory app {\n  path = \"/a\"\n}\n");
    assert_eq!(a.tree.items[0].stmt, b.tree.items[1].stmt);
    assert_ne!(a.tree.items[0].offset, b.tree.items[1].offset);
}

#[test]
fn precedence_follows_the_design() {
    let cases = [
        ("f.mode & 0o002 == 0", "(== (& (. f mode) 2) 0)"),
        ("not a == b", "(not (== a b))"),
        ("a or b and c", "(or a (and b c))"),
        ("a | b ^ c & d", "(| a (^ b (& c d)))"),
        ("a + b * c", "(+ a (* b c))"),
        ("-a.b[0](1)", "(- (call (index (. a b) 0) 1))"),
        ("1 - 2 - 3", "(- (- 1 2) 3)"),
        ("x in [1, 2] and y", "(and (in x [1 2]) y)"),
        ("if a then b else c or d", "(if a b (or c d))"),
    ];
    for (src, want) in cases {
        let parse = check(&format!("let v = {src}\n"));
        assert!(parse.diagnostics.is_empty(), "{src}: {:?}", parse.diagnostics);
        let dump = iade_syntax::dump::dump(&parse.tree);
        assert!(dump.contains(want), "{src}: got {dump}");
    }
}

#[test]
fn a_bracket_at_the_start_of_a_line_does_not_continue_an_expression() {
    let parse = check("file a {\n  path = base\n  [1]\n}\n");
    assert!(!parse.diagnostics.is_empty(), "a list where an entry belongs is an error");
    let parse = check("let xs = [\n  1,\n]\nlet y = xs[0]\n");
    assert!(parse.diagnostics.is_empty(), "{:?}", parse.diagnostics);
}

#[test]
fn doc_comments_attach_to_what_follows() {
    let parse = check(
        "## The app directory.\n## Second line.\ndirectory app {\n  ## Its path.\n  path = \"/a\"\n}\n",
    );
    assert!(parse.diagnostics.is_empty());
    let item = &parse.tree.items[0].stmt;
    assert_eq!(item.doc.as_deref(), Some("The app directory.\nSecond line."));
    let StmtKind::Resource(r) = &item.kind else { panic!("a resource") };
    assert_eq!(r.body.stmts[0].doc.as_deref(), Some("Its path."));
}

#[test]
fn string_escapes_and_interpolation_cook_as_documented() {
    let cases = [
        (r#""a\tb\n""#, "a\tb\n"),
        (r#""\u{1F600}""#, "😀"),
        (r#""$${HOME}""#, "${HOME}"),
        (r#""cost $5""#, "cost $5"),
        (r#""\"q\" \\ \$""#, "\"q\" \\ $"),
    ];
    for (src, want) in cases {
        let parse = check(&format!("let v = {src}\n"));
        assert!(parse.diagnostics.is_empty(), "{src}: {:?}", parse.diagnostics);
        let StmtKind::Let(l) = &parse.tree.items[0].stmt.kind else { panic!("a let") };
        let iade_syntax::ast::ExprKind::Str(s) = &l.value.kind else { panic!("a string") };
        assert_eq!(s.as_plain().as_deref(), Some(want), "{src}");
    }
}

/// Parses `text` on one thread and on several, and checks that they agree.
fn parses_the_same_on_several_threads(text: &str) -> iade_syntax::Parse {
    let one = iade_syntax::parse_with(FileId(0), text, 1);
    for threads in [2, 3, 8] {
        let many = iade_syntax::parse_with(FileId(0), text, threads);
        assert_eq!(many.tree.items.len(), one.tree.items.len(), "{threads} threads");
        assert_eq!(many.diagnostics, one.diagnostics, "{threads} threads");
        assert!(many == one, "{threads} threads give another parse");
    }
    one
}

#[test]
fn a_large_file_whose_parts_would_start_inside_strings_and_open_blocks_parses_as_on_one_thread() {
    // Lines at column 0 inside multi-line strings, and blocks never closed: the places a part
    // may start at are often not item starts, and the part before runs on through them.
    let mut text = String::from("use std.fs.{file}\n\n");
    for i in 0..3000 {
        match i % 7 {
            0 => text.push_str(&format!(
                "file m{i} {{\n  content = \"\"\"\nline one\nfile inside {i} {{\n}}\n  \"\"\"\n}}\n\n"
            )),
            1 => text.push_str(&format!("file open{i} {{\n  path = \"/srv/{i}\"\n\n")),
            2 => text.push_str(&format!("let x{i} = [1, 2,\n3]\n\n")),
            // Placement errors, found by validation after the parse.
            3 => text.push_str(&format!("file p{i} {{\n  use std.fs\n}}\n\n")),
            _ => text.push_str(&format!("file f{i} {{\n  path = \"/srv/{i}\"\n  mode = 0o644\n}}\n\n")),
        }
    }
    let parse = parses_the_same_on_several_threads(&text);
    for code in ["E0009", "E0014"] {
        assert!(parse.diagnostics.iter().any(|d| d.code.as_str() == code), "no {code}");
    }

    // Every block left open: no part but the first is used.
    let mut open = String::from("use std.fs.{file}\n\n");
    for i in 0..3000 {
        open.push_str(&format!("file f{i} {{\n  path = \"/srv/{i}\"\n\n"));
    }
    parses_the_same_on_several_threads(&open);

    // Expressions continued on lines at column 0, outside any bracket: such a line is where a
    // part may start, and no item begins there.
    let mut continued = String::from("use std.fs.{file}\n\n");
    for i in 0..3000 {
        match i % 2 {
            0 => continued.push_str(&format!("let y{i} = a +\nb +\nc\n\n")),
            _ => continued.push_str(&format!("let y{i} = a +\nb\n\n")),
        }
    }
    parses_the_same_on_several_threads(&continued);
}

#[test]
fn a_large_file_parses_the_same_on_one_thread_and_on_several() {
    // Enough items to be split into runs, with broken items where runs begin and end (the
    // "expected …" of an item's last error names the token after it, in the next run).
    let mut text = String::from("use std.fs.{file}\n\n");
    for i in 0..700 {
        match i % 97 {
            0 => text.push_str(&format!("file f{i} {{\n  path = \n}}\n\n")),
            1 => text.push_str(&format!("file f{i} {{\n  mode = 0o644 +\n")),
            2 => text.push_str(&format!("let x{i} = [1, 2\n\n")),
            _ => text.push_str(&format!("file f{i} {{\n  path = \"/srv/{i}\"\n  mode = 0o644\n}}\n\n")),
        }
    }
    text.push_str("file last {\n  path = ");
    let one = iade_syntax::parse_with(FileId(0), &text, 1);
    assert!(one.diagnostics.len() >= 8, "{:?}", one.diagnostics);
    for threads in [2, 3, 8] {
        let many = iade_syntax::parse_with(FileId(0), &text, threads);
        assert_eq!(many.tree.items.len(), one.tree.items.len(), "{threads} threads");
        assert!(many == one, "{threads} threads give another parse");
    }
}
