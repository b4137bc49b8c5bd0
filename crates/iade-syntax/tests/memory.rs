//! The parser is built for every file parsed; building it must not leak (a recursive parser
//! that holds itself strongly is a reference cycle, never freed). A language server parses
//! on every keystroke, so a leak per parse is memory that grows while someone types.

fn resident_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn parsing_a_file_thousands_of_times_does_not_grow_memory() {
    let text = "use std.fs.{file}\n\nlet port = 8080\n\nfile config {\n  path = \"/etc/app/${port}.conf\"\n  content = [x for x in [1, 2] if x > 1]\n}\n\nif port > 1 {\n  file other { path = \"/x\" }\n} else {\n  file third { path = \"/y\" }\n}\n";
    // A broken item too, so the detailed parser runs as well.
    let broken = format!("{text}\nfile {{ path = }}\n");
    for _ in 0..200 {
        let _ = iade_syntax::parse(iade_span::FileId(0), text);
        let _ = iade_syntax::parse(iade_span::FileId(0), &broken);
    }
    let before = resident_kb();
    for _ in 0..3000 {
        let _ = iade_syntax::parse(iade_span::FileId(0), text);
        let _ = iade_syntax::parse(iade_span::FileId(0), &broken);
    }
    let grown = resident_kb().saturating_sub(before);
    // A leaked parser is kilobytes per parse: 6,000 parses would grow by tens of megabytes.
    assert!(grown < 4 * 1024, "memory grew by {grown} kB over 6,000 parses");
}
