//! Properties: policy verdicts follow the arithmetic on generated values. Nothing here knows
//! the examples; the values are random, and the expected outcome is computed in Rust.

use crate::support::memory_db;

/// xorshift64*: deterministic, so every failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn mode_bit_policies_deny_exactly_the_files_whose_bits_are_set() {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mask = 1 << rng.below(12);
        let modes: Vec<u64> = (0..30).map(|_| rng.below(0o10000)).collect();
        let mut src = String::from("use std.fs.{file}\n\n");
        for (i, m) in modes.iter().enumerate() {
            src.push_str(&format!("file f{i} {{\n  path = \"/tmp/f{i}\"\n  mode = 0o{m:o}\n}}\n\n"));
        }
        src.push_str(&format!(
            "rule clear(f: file) = f.mode & 0o{mask:o} == 0 else \"bit set\"\n\npolicy p {{\n  for f in intent(file) {{\n    require clear(f)\n  }}\n}}\n"
        ));
        let db = memory_db(&[("main.iade", &src)], false);
        let denied: Vec<String> = db
            .diagnostics()
            .iter()
            .map(|d| {
                assert_eq!(d.code.as_str(), "E0401", "seed {seed}: {}", d.message);
                d.message.split('`').nth(3).expect("subject in message").to_string()
            })
            .collect();
        let mut expected: Vec<String> = modes
            .iter()
            .enumerate()
            .filter(|(_, m)| *m & mask != 0)
            .map(|(i, _)| format!("file.f{i}"))
            .collect();
        let mut denied = denied;
        denied.sort();
        expected.sort();
        assert_eq!(denied, expected, "seed {seed}, mask 0o{mask:o}");
    }
}

#[test]
fn arithmetic_requirements_pass_or_fail_as_rust_computes_them() {
    type Op = fn(i64, i64) -> Option<i64>;
    let ops: [(&str, Op); 8] = [
        ("+", i64::checked_add),
        ("-", i64::checked_sub),
        ("*", i64::checked_mul),
        ("/", i64::checked_div),
        ("%", i64::checked_rem),
        ("&", |a, b| Some(a & b)),
        ("|", |a, b| Some(a | b)),
        ("^", |a, b| Some(a ^ b)),
    ];
    let mut rng = Rng(0xDEAD_BEEF);
    let mut src = String::new();
    let mut expect_fail = Vec::new();
    for i in 0..300 {
        let (op, f) = ops[rng.below(ops.len() as u64) as usize];
        let a = rng.below(2000) as i64 - 1000;
        let b = rng.below(200) as i64 - 100;
        let Some(r) = f(a, b) else { continue };
        // Claim either the true result or a wrong one, and check the verdict follows.
        let claim = if rng.below(2) == 0 { r } else { r + 1 + rng.below(5) as i64 };
        let (a_text, b_text) = (format!("({a})"), format!("({b})"));
        src.push_str(&format!("policy p{i} {{\n  require {a_text} {op} {b_text} == {claim}\n}}\n"));
        if claim != r {
            expect_fail.push(format!("p{i}"));
        }
    }
    let db = memory_db(&[("main.iade", &src)], false);
    let mut failed: Vec<String> = db
        .diagnostics()
        .iter()
        .map(|d| {
            assert_eq!(d.code.as_str(), "E0401", "{}", d.message);
            d.message.split('`').nth(1).expect("policy name").to_string()
        })
        .collect();
    failed.sort();
    expect_fail.sort();
    assert_eq!(failed, expect_fail);
}

#[test]
fn an_unmanaged_field_makes_a_verdict_unknown_never_a_pass() {
    let src = "use std.fs.{file}\n\nfile f {\n  path = \"/tmp/f\"\n}\n\npolicy owners {\n  for f in intent(file) {\n    require f.owner == \"root\"\n  }\n}\n";
    let db = memory_db(&[("main.iade", src)], false);
    let codes: Vec<&str> = db.diagnostics().iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["W0402"]);
}

/// Every corpus file of the repository, and mutations of them: compiling never panics (no
/// query cycle escapes, no evaluation overflows) and every label lies inside its file.
#[test]
fn compiling_any_corpus_file_or_mutation_never_panics_and_spans_stay_inside() {
    let root = crate::support::root();
    let mut corpus = Vec::new();
    let mut dirs = vec![root.join("tests"), root.join("examples"), root.join("stdlib")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "iade")
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                corpus.push(text);
            }
        }
    }
    corpus.sort();
    assert!(corpus.len() > 100, "corpus too small: {}", corpus.len());
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut inputs = corpus.clone();
    for _ in 0..400 {
        let base = &corpus[rng.below(corpus.len() as u64) as usize];
        let lines: Vec<&str> = base.lines().collect();
        if lines.is_empty() {
            continue;
        }
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(out.len() as u64) as usize;
            match rng.below(4) {
                0 => {
                    out.remove(i);
                }
                1 => {
                    let j = rng.below(lines.len() as u64) as usize;
                    out.insert(i, lines[j].to_string());
                }
                2 => {
                    let other = &corpus[rng.below(corpus.len() as u64) as usize];
                    if let Some(l) = other.lines().nth(rng.below(40) as usize) {
                        out.insert(i, l.to_string());
                    }
                }
                _ => {
                    // Swap a name for another one seen in the corpus.
                    let line = out[i].clone();
                    out[i] = line.replacen("file", "directory", 1).replacen("path", "mode", 1);
                }
            }
            if out.is_empty() {
                break;
            }
        }
        inputs.push(out.join("\n"));
    }
    for (n, text) in inputs.iter().enumerate() {
        let db = memory_db(&[("main.iade", text)], false);
        let diags = db.diagnostics();
        let _ = db.intent_graph();
        let sources = db.sources();
        for d in &diags {
            for l in &d.labels {
                let file = sources.get(l.file).expect("label file exists");
                assert!(
                    l.span.end as usize <= file.text.len() && l.span.start <= l.span.end,
                    "input {n}: {d:?}\n{text}"
                );
            }
        }
    }
}
