//! Golden files: `tests/syntax/ok/*.iade` must parse without diagnostics and match the tree
//! dump in `*.ast`; `tests/syntax/err/*.iade` must produce at least one diagnostic and match
//! the rendering in `*.stderr`. `IADE_BLESS=1` rewrites expectations.

use std::path::{Path, PathBuf};

use iade_diagnostics::{RenderOptions, Sources};
use iade_span::FileId;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root exists")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("golden directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "iade"))
        .collect();
    v.sort();
    v
}

pub fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).to_string_lossy().into_owned()
}

/// Renders the diagnostics of one file the way `iade check --color never` does.
pub fn render(path: &Path) -> (usize, String) {
    let bytes = std::fs::read(path).expect("readable input");
    let (text, parse) = iade_syntax::parse_bytes(FileId(0), &bytes);
    let mut sources = Sources::new();
    sources.add(rel(path), text);
    let mut out = String::new();
    for d in &parse.diagnostics {
        out.push_str(&iade_diagnostics::render_text(&sources, d, RenderOptions { color: false }));
        out.push_str("\n\n");
    }
    (parse.diagnostics.len(), out)
}

/// Compares (or blesses) every input of `dir` against `produce`, and rejects orphaned
/// expectations. Returns the failures.
fn run(dir: &Path, ext: &str, produce: impl Fn(&Path) -> Result<String, String>) -> Vec<String> {
    let bless = std::env::var_os("IADE_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for input in inputs(dir) {
        let expected_path = input.with_extension(ext);
        let actual = match produce(&input) {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{}: {e}", rel(&input)));
                continue;
            }
        };
        if bless {
            std::fs::write(&expected_path, &actual).expect("writable expectation");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{} differs from {}:\n--- expected\n{expected}\n--- actual\n{actual}",
                rel(&input),
                rel(&expected_path)
            )),
            Err(_) => failures.push(format!(
                "{}: missing expectation {} (run with IADE_BLESS=1)",
                rel(&input),
                rel(&expected_path)
            )),
        }
    }
    for entry in std::fs::read_dir(dir).expect("golden directory exists") {
        let p = entry.expect("readable entry").path();
        if p.extension().is_some_and(|e| e == ext) && !p.with_extension("iade").exists() {
            failures.push(format!("{}: orphaned expectation (its .iade input is gone)", rel(&p)));
        }
    }
    failures
}

fn assert_none(failures: Vec<String>) {
    assert!(failures.is_empty(), "{} golden failure(s):\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn valid_inputs_parse_without_diagnostics_and_match_their_tree_dumps() {
    let dir = root().join("tests/syntax/ok");
    assert_none(run(&dir, "ast", |input| {
        let (n, rendered) = render(input);
        if n > 0 {
            return Err(format!("expected no diagnostics, got:\n{rendered}"));
        }
        let text = std::fs::read_to_string(input).map_err(|e| e.to_string())?;
        Ok(iade_syntax::dump::dump(&iade_syntax::parse(FileId(0), &text).tree))
    }));
}

#[test]
fn malformed_inputs_report_diagnostics_matching_their_goldens() {
    let dir = root().join("tests/syntax/err");
    assert_none(run(&dir, "stderr", |input| {
        let (n, rendered) = render(input);
        if n == 0 {
            return Err("expected at least one diagnostic, got none".to_owned());
        }
        Ok(rendered)
    }));
}

#[test]
fn each_malformed_input_reports_exactly_one_diagnostic() {
    let dir = root().join("tests/syntax/err");
    let mut bad = Vec::new();
    for input in inputs(&dir) {
        let (n, rendered) = render(&input);
        if n != 1 {
            bad.push(format!("{}: {n} diagnostics\n{rendered}", rel(&input)));
        }
    }
    assert!(bad.is_empty(), "one slip must give one diagnostic:\n{}", bad.join("\n"));
}

#[test]
fn every_registered_syntax_code_is_triggered_by_a_golden() {
    let dir = root().join("tests/syntax/err");
    let mut seen = std::collections::BTreeSet::new();
    for input in inputs(&dir) {
        let bytes = std::fs::read(&input).expect("readable input");
        let (_, parse) = iade_syntax::parse_bytes(FileId(0), &bytes);
        seen.extend(parse.diagnostics.iter().map(|d| d.code.as_str()));
    }
    // Syntax codes are E00xx and W00xx; the compiler's goldens cover the others.
    let missing: Vec<&str> = iade_diagnostics::registry()
        .iter()
        .map(|c| c.code.as_str())
        .filter(|c| c[1..].starts_with("00") && !seen.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes without a golden test: {missing:?}");
}

#[test]
fn every_stdlib_and_example_file_parses_without_diagnostics() {
    let mut bad = Vec::new();
    let mut stack = vec![root().join("stdlib"), root().join("examples")];
    let mut count = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("directory exists") {
            let p = entry.expect("readable entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "iade") {
                count += 1;
                let (n, rendered) = render(&p);
                if n > 0 {
                    bad.push(rendered);
                }
            }
        }
    }
    assert!(count >= 6, "expected the stdlib and examples, found {count} files");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn diagnostics_serialize_to_the_documented_json_shape() {
    let input = root().join("tests/syntax/err/unterminated_string.iade");
    let bytes = std::fs::read(&input).expect("readable input");
    let (text, parse) = iade_syntax::parse_bytes(FileId(0), &bytes);
    let mut sources = Sources::new();
    sources.add("x.iade", text);
    let json =
        serde_json::to_value(iade_diagnostics::to_json(&sources, &parse.diagnostics)).expect("serializable");
    assert_eq!(json["version"], 1);
    let d = &json["diagnostics"][0];
    assert_eq!(d["code"], "E0004");
    assert_eq!(d["severity"], "error");
    assert!(d["message"].is_string());
    assert!(d["help"].is_string());
    let label = &d["labels"][0];
    assert_eq!(label["file"], "x.iade");
    assert_eq!(label["primary"], true);
    for key in ["line", "column", "offset"] {
        assert!(label["start"][key].is_u64(), "start.{key}");
        assert!(label["end"][key].is_u64(), "end.{key}");
    }
    assert_eq!(json["summary"]["errors"], 1);
}

#[test]
fn every_iade_code_block_of_the_language_reference_parses_cleanly() {
    let doc = std::fs::read_to_string(root().join("docs/language.md")).expect("the reference exists");
    let mut blocks = 0;
    for (i, chunk) in doc.split("```iade\n").skip(1).enumerate() {
        let block = chunk.split("```").next().unwrap_or_default();
        blocks += 1;
        let parse = iade_syntax::parse(FileId(0), block);
        assert!(
            parse.diagnostics.is_empty(),
            "block {i} of docs/language.md:\n{block}\n{:?}",
            parse.diagnostics
        );
    }
    assert!(blocks > 10, "expected the reference to show code, found {blocks} blocks");
}
