//! Engine benchmark through the real binary: 1,000 files (~100 bytes each) in 10
//! directories. Cold converge, no-op converge, drift repair (5 contents changed, 5 modes
//! changed, 2 files deleted), watch-mode drift-to-correction latency, peak memory, and the
//! journal's time per step.
//!
//! Run with `cargo bench -p iade-cli --bench converge`. Targets: cold ≤ 150 ms, no-op ≤ 50 ms,
//! drift repair ≤ 50 ms, watch p50 ≤ 100 ms, peak memory ≤ 30 MB. Each figure includes
//! starting the process and compiling the stack.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn stack(dir: &Path) {
    let mut s = String::from(
        "use std.fs.{file, directory}\n\ndirectory root {\n  path = \"./tree\"\n  mode = 0o755\n}\n\n",
    );
    for d in 0..10 {
        s.push_str(&format!("directory d{d} {{\n  path = \"${{root.path}}/d{d}\"\n  mode = 0o755\n}}\n\n"));
    }
    for i in 0..1000 {
        s.push_str(&format!(
            "file f{i} {{\n  path = \"${{d{}.path}}/f{i}.txt\"\n  content = \"file number {i:04}, managed by iade; this line pads it to about a hundred bytes.\\n\"\n  mode = 0o644\n}}\n\n",
            i % 10
        ));
    }
    std::fs::write(dir.join("main.iade"), s).expect("write stack");
}

struct Run {
    ms: f64,
    peak_kb: u64,
    json: serde_json::Value,
}

fn converge(dir: &Path) -> Run {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_iade"))
        .args(["converge", "--format", "json"])
        .current_dir(dir)
        .env("IADE_REPORT_PEAK_MEMORY", "1")
        .output()
        .expect("iade runs");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let peak_kb = stderr
        .lines()
        .find_map(|l| l.strip_prefix("iade: peak memory "))
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Run { ms, peak_kb, json: serde_json::from_slice(&out.stdout).expect("json report") }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn file(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("tree/d{}/f{i}.txt", i % 10))
}

fn main() {
    let dir = std::env::temp_dir().join(format!("iade-bench-converge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    stack(&dir);

    let cold = converge(&dir);
    let steps = cold.json["run"]["steps"].as_array().map_or(0, Vec::len);
    let journal_ms = cold.json["run"]["timings"]["journal_ms"].as_f64().unwrap_or(0.0);
    println!(
        "cold converge, 1000 files in 10 directories: {:.1} ms, peak memory {:.1} MB ({steps} steps; journal {:.1} ms in all, {:.3} ms per step)",
        cold.ms,
        cold.peak_kb as f64 / 1024.0,
        journal_ms,
        journal_ms / steps.max(1) as f64
    );
    println!("  engine timings of that run: {}", cold.json["run"]["timings"]);

    let noops: Vec<Run> = (0..7).map(|_| converge(&dir)).collect();
    for r in &noops {
        assert_eq!(r.json["run"]["steps"].as_array().map_or(0, Vec::len), 0, "a no-op converge ran steps");
    }
    println!(
        "no-op converge: median {:.1} ms, peak memory {:.1} MB",
        median(noops.iter().map(|r| r.ms).collect()),
        noops.iter().map(|r| r.peak_kb).max().unwrap_or(0) as f64 / 1024.0
    );

    let mut repairs = Vec::new();
    for round in 0..7 {
        for k in 0..5 {
            std::fs::write(file(&dir, round * 100 + k), "changed behind iade's back\n").expect("edit");
            std::fs::set_permissions(
                file(&dir, round * 100 + 50 + k),
                std::fs::Permissions::from_mode(0o666),
            )
            .expect("chmod");
        }
        for k in 0..2 {
            std::fs::remove_file(file(&dir, round * 100 + 90 + k)).expect("rm");
        }
        let r = converge(&dir);
        assert_eq!(
            r.json["run"]["steps"].as_array().map_or(0, Vec::len),
            12,
            "drift repair ran other than 12 steps"
        );
        repairs.push(r.ms);
    }
    println!("drift repair (5 contents, 5 modes, 2 deleted): median {:.1} ms", median(repairs));

    // Watch mode: time from an outside edit to the file being put back.
    let mut child = Command::new(env!("CARGO_BIN_EXE_iade"))
        .args(["converge", "--watch", "--interval", "1h"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch starts");
    let probe = file(&dir, 7);
    let managed = std::fs::read_to_string(&probe).expect("managed content");
    std::thread::sleep(Duration::from_millis(1500));
    let mut latencies = Vec::new();
    for round in 0..30 {
        std::fs::write(&probe, format!("outside edit {round}\n")).expect("edit");
        let t = Instant::now();
        loop {
            if std::fs::read_to_string(&probe).is_ok_and(|c| c == managed) {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "watch did not correct the file");
            std::thread::sleep(Duration::from_micros(500));
        }
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort_by(f64::total_cmp);
    println!(
        "watch: drift-to-correction latency p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms (30 edits)",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 9 / 10],
        latencies[latencies.len() - 1]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
