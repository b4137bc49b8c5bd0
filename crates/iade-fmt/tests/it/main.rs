//! Formatter properties over every example, stdlib file, golden input and generated programs,
//! plus layout goldens in `tests/fmt` (`*.iade` → `*.formatted`; `IADE_BLESS=1` rewrites).

mod generate;

use std::path::{Path, PathBuf};

use iade_span::FileId;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root exists")
}

fn iade_files(dirs: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| root().join(d)).collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("directory exists") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "iade") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn comment_texts(text: &str) -> Vec<String> {
    let mut v: Vec<String> =
        iade_syntax::parse(FileId(0), text).comments.iter().map(|c| c.text.trim_end().to_owned()).collect();
    v.sort();
    v
}

/// Idempotent, tree-preserving, comment-preserving; returns the formatted text.
fn check_properties(text: &str, what: &str) -> String {
    let once = iade_fmt::format(text).unwrap_or_else(|e| panic!("{what}: does not format: {e:?}"));
    let twice = iade_fmt::format(&once)
        .unwrap_or_else(|e| panic!("{what}: formatted text does not parse: {e:?}\n{once}"));
    assert_eq!(once, twice, "{what}: formatting is not idempotent");
    let before = iade_syntax::dump::dump(&iade_syntax::parse(FileId(0), text).tree);
    let after_parse = iade_syntax::parse(FileId(0), &once);
    assert!(
        after_parse.diagnostics.is_empty(),
        "{what}: formatted text has diagnostics: {:?}",
        after_parse.diagnostics
    );
    let after = iade_syntax::dump::dump(&after_parse.tree);
    assert_eq!(before, after, "{what}: formatting changed the meaning\n{once}");
    assert_eq!(
        comment_texts(text),
        comment_texts(&once),
        "{what}: formatting lost or changed a comment\n{once}"
    );
    once
}

#[test]
fn formatting_every_corpus_file_is_idempotent_and_preserves_meaning_and_comments() {
    let files = iade_files(&["examples", "stdlib", "tests/syntax/ok", "tests/fmt"]);
    assert!(files.len() > 20);
    for f in files {
        let text = std::fs::read_to_string(&f).expect("utf-8");
        check_properties(&text, &f.display().to_string());
    }
}

#[test]
fn formatting_generated_programs_is_idempotent_and_preserves_meaning_and_comments() {
    for seed in 0..400u64 {
        let text = generate::program(seed);
        let parse = iade_syntax::parse(FileId(0), &text);
        assert!(
            parse.diagnostics.is_empty(),
            "seed {seed}: generator made an invalid program: {:?}\n{text}",
            parse.diagnostics
        );
        check_properties(&text, &format!("generated seed {seed}:\n{text}"));
    }
}

#[test]
fn stdlib_and_examples_are_already_formatted() {
    for f in iade_files(&["examples", "stdlib"]) {
        let text = std::fs::read_to_string(&f).expect("utf-8");
        let out = iade_fmt::format(&text).expect("formats");
        assert_eq!(text, out, "{} is not in canonical layout; run `iade fmt`", f.display());
    }
}

#[test]
fn files_with_syntax_errors_are_not_formatted() {
    assert!(matches!(iade_fmt::format("file a {\n"), Err(iade_fmt::FormatError::Syntax(_))));
}

#[test]
fn layout_goldens_match() {
    let bless = std::env::var_os("IADE_BLESS").is_some_and(|v| v == "1");
    let dir = root().join("tests/fmt");
    let mut failures = Vec::new();
    for input in iade_files(&["tests/fmt"]) {
        let text = std::fs::read_to_string(&input).expect("utf-8");
        let actual = iade_fmt::format(&text).expect("golden inputs are valid");
        let expected_path = input.with_extension("formatted");
        if bless {
            std::fs::write(&expected_path, &actual).expect("writable");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(e) if e == actual => {}
            Ok(e) => failures.push(format!("{}:\n--- expected\n{e}\n--- actual\n{actual}", input.display())),
            Err(_) => failures.push(format!("{}: missing {}", input.display(), expected_path.display())),
        }
    }
    for entry in std::fs::read_dir(&dir).expect("directory") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "formatted") && !p.with_extension("iade").exists() {
            failures.push(format!("{}: orphaned expectation", p.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
