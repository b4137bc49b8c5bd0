//! Lex + parse throughput on generated stacks of 1k, 10k and 100k resources.
//! Run with `cargo bench -p iade-syntax`; prints MB/s and the 100k/10k growth ratio. Files
//! are parsed as the compiler parses them, on as many threads as the machine has.

use std::fmt::Write;
use std::time::{Duration, Instant};

use iade_span::FileId;

/// The allocator the `iade` binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn generate(resources: usize) -> String {
    let mut s = String::from("use std.fs.{file, directory}\n\nparam root: path = \"/srv/app\"\n\n");
    for i in 0..resources {
        match i % 4 {
            0 => {
                let _ = write!(
                    s,
                    "## Directory number {i}.\ndirectory d{i} {{\n  path = \"${{root}}/d{i}\"\n  mode = 0o755\n}}\n\n"
                );
            }
            1 => {
                let _ = write!(
                    s,
                    "file f{i} {{\n  path = \"${{directory.d{}.path}}/config.toml\"  # the config\n  content = \"port = {}\\ntier = \\\"${{tier}}\\\"\\n\"\n  mode = 0o640\n  after = [directory.d{}]\n}}\n\n",
                    i - 1,
                    8000 + i,
                    i - 1
                );
            }
            2 => {
                let _ = write!(
                    s,
                    "for name in [\"access\", \"error\"] {{\n  file \"log{i}_${{name}}\" {{ path = \"/var/log/{i}/${{name}}.log\"  mode = 0o644 }}\n}}\n\n"
                );
            }
            _ => {
                let _ = write!(
                    s,
                    "rule r{i}(f: file) =\n  f.mode & 0o002 == 0 and len(f.path) > {i} else \"${{f.path}} is world-writable\"\n\n"
                );
            }
        }
    }
    s
}

fn measure(text: &str) -> Duration {
    // As the compiler parses: on the machine's parallelism, at most eight threads.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8);
    // Best of several runs: the figure that says what the code can do on an idle machine.
    let runs = if text.len() > 5_000_000 { 3 } else { 7 };
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let parse = iade_syntax::parse_with(FileId(0), text, threads);
            let d = t.elapsed();
            assert!(parse.diagnostics.is_empty(), "generated stacks are valid");
            std::hint::black_box(parse);
            d
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    println!("{:>10} {:>10} {:>12} {:>10}", "resources", "bytes", "lex+parse", "MB/s");
    let mut times = Vec::new();
    for n in [1_000, 10_000, 100_000] {
        let text = generate(n);
        let d = measure(&text);
        let mbs = text.len() as f64 / 1e6 / d.as_secs_f64();
        println!("{n:>10} {:>10} {:>10.1}ms {mbs:>10.1}", text.len(), d.as_secs_f64() * 1e3);
        times.push(d);
    }
    let growth = times[2].as_secs_f64() / times[1].as_secs_f64();
    println!("growth 100k / 10k: {growth:.2}x (linear is 10x; target <= 11x)");
}
