//! A fleet's shared journal on a throwaway local PostgreSQL (a Unix socket), through the real
//! binary where engines are measured:
//! - the journal's time per step of a 1,000-file cold converge, on PostgreSQL and on the
//!   embedded SQLite journal (the engine's own `journal_ms`, divided by its steps);
//! - 50 engines converging 50 stacks of 200 files at once against one journal (steps/s);
//! - `iade status` and one stack's history with 1,000 stacks and 1,000,000 steps in the
//!   journal (the rows are made in SQL, so the figure is the queries', not the engines').
//!
//! Run with `cargo bench -p iade-cli --bench fleet`. Targets: ≤ 1 ms per step, status and
//! history ≤ 50 ms.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use iade_test_postgres::Cluster;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn stack(dir: &Path, name: &str, files: usize) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("dir");
    let mut s = format!(
        "use std.fs.{{file, directory}}\n\nstack {name} {{}}\n\ndirectory out {{\n  path = \"./out\"\n}}\n\n"
    );
    for i in 0..files {
        s.push_str(&format!(
            "file f{i} {{\n  path = \"${{out.path}}/f{i}.txt\"\n  content = \"{name} {i}\\n\"\n}}\n\n"
        ));
    }
    std::fs::write(dir.join("main.iade"), s).expect("write");
}

fn converge(dir: &Path, journal: Option<&str>) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iade"));
    cmd.args(["converge", "--format", "json"]).current_dir(dir).env_remove("IADE_JOURNAL");
    if let Some(j) = journal {
        cmd.env("IADE_JOURNAL", j);
    }
    let o = cmd.output().expect("iade runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("json")
}

fn per_step_ms(report: &serde_json::Value) -> f64 {
    let journal = report["run"]["timings"]["journal_ms"].as_f64().unwrap_or(0.0);
    let steps = report["run"]["steps"].as_array().map_or(1, Vec::len).max(1);
    journal / steps as f64
}

fn main() {
    let cluster = Cluster::start("bench-fleet");
    let url = cluster.url();
    let base = std::env::temp_dir().join(format!("iade-bench-fleet-{}", std::process::id()));

    // The journal's time per step, cold converges of 1,000 files.
    let (mut pg, mut lite) = (Vec::new(), Vec::new());
    for round in 0..5 {
        let dir = base.join(format!("steps-{round}"));
        stack(&dir, &format!("steps{round}"), 1000);
        pg.push(per_step_ms(&converge(&dir, Some(&url))));
        stack(&dir, &format!("steps{round}"), 1000);
        lite.push(per_step_ms(&converge(&dir, None)));
    }
    println!("journal time per step (1,000-file cold converge, batched per wave):");
    println!("  PostgreSQL over a socket: median {:.3} ms", median(pg));
    println!("  SQLite (embedded):        median {:.3} ms", median(lite));

    // 50 engines at once.
    let dirs: Vec<PathBuf> = (0..50)
        .map(|i| {
            let d = base.join(format!("engine-{i}"));
            stack(&d, &format!("engine{i}"), 200);
            d
        })
        .collect();
    let t = Instant::now();
    let children: Vec<_> = dirs
        .iter()
        .map(|d| {
            Command::new(env!("CARGO_BIN_EXE_iade"))
                .arg("converge")
                .current_dir(d)
                .env("IADE_JOURNAL", &url)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawns")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("ends").success());
    }
    let took = t.elapsed().as_secs_f64();
    let steps: i64 = cluster.sql("SELECT count(*) FROM iade.steps s JOIN iade.stacks t ON t.id = s.stack WHERE t.name LIKE 'engine%'").parse().expect("count");
    println!(
        "50 engines, 50 stacks of 200 files, one journal: {:.2} s, {:.0} steps/s",
        took,
        steps as f64 / took
    );

    // 1,000 stacks and 1,000,000 steps: 1,000 runs of 1,000 steps, the rest of the runs small.
    cluster.sql(
        "INSERT INTO iade.stacks (name, host) SELECT 'fleet' || g, 'host-' || (g % 100) FROM generate_series(1, 1000) g;
         INSERT INTO iade.leases (stack, epoch) SELECT id, 1 FROM iade.stacks WHERE name LIKE 'fleet%';
         INSERT INTO iade.runs (stack, mode, status, started_ms, finished_ms, pid, host, epoch, summary)
           SELECT s.id, 'converge', 'done', r * 1000, r * 1000 + 10, 1, s.host, 1, '{\"resources\":1000}'
           FROM iade.stacks s, generate_series(1, 20) r WHERE s.name LIKE 'fleet%';",
    );
    cluster.sql(
        "INSERT INTO iade.steps (run, stack, resource, action, digest, idempotency_key, status, started_ms, finished_ms, changes)
           SELECT r.id, r.stack, 'file.f' || g, 'update', 'd', 'k' || g, 'done', 1, 2, '[]'
           FROM (SELECT id, stack FROM iade.runs WHERE host LIKE 'host-%' AND id % 20 = 0) r, generate_series(1, 1000) g;
         INSERT INTO iade.drift (run, stack, resource, field, observed, intended, detected_ms)
           SELECT r.id, r.stack, 'file.f1', 'mode', '0o600', '0o644', 1
           FROM iade.runs r WHERE r.host LIKE 'host-%' AND r.id % 7 = 0;
         VACUUM ANALYZE;",
    );
    let total: i64 = cluster.sql("SELECT count(*) FROM iade.steps").parse().expect("count");
    let mut status = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let s = iade_journal_postgres::fleet_status(&url, None).expect("status");
        status.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(s.len() >= 1000);
    }
    let mut history = Vec::new();
    for i in 0..15 {
        let t = Instant::now();
        let o = Command::new(env!("CARGO_BIN_EXE_iade"))
            .args([
                "history",
                "--stack",
                &format!("fleet{}@host-{}", 100 + i, (100 + i) % 100),
                "--limit",
                "5",
                "--format",
                "json",
            ])
            .env("IADE_JOURNAL", &url)
            .output()
            .expect("runs");
        history.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut status_cli = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let o = Command::new(env!("CARGO_BIN_EXE_iade"))
            .args(["status", "--format", "json"])
            .env("IADE_JOURNAL", &url)
            .stdout(std::process::Stdio::null())
            .output()
            .expect("runs");
        status_cli.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(o.status.code().is_some());
    }
    println!("with 1,000+ stacks and {total} steps:");
    println!("  fleet status query: median {:.1} ms (target ≤ 50 ms)", median(status));
    println!("  `iade status --format json`, whole process: median {:.1} ms", median(status_cli));
    println!(
        "  `iade history --stack NAME@HOST --limit 5`, whole process: median {:.1} ms (target ≤ 50 ms)",
        median(history)
    );
    let _ = std::fs::remove_dir_all(&base);
}
