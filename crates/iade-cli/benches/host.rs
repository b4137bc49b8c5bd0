//! The host kinds on this machine. Discovery: every installed package, user and group read
//! by the providers (what `observe(package)`, `observe(user)` and `observe(group)` cost in a
//! compliance sweep). No-op converge through the real binary: 50 installed packages, 20 users,
//! 20 groups and 50 lines already right (the packages, users and groups are the host's own;
//! the lines are in files the benchmark writes).
//!
//! Run with `cargo bench -p iade-cli --bench host`. Targets: discovery ≤ 20 ms, no-op converge
//! ≤ 60 ms (including starting the process and compiling the stack).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use iade_provider::{Context, Provider, Secrets};

struct NoSecrets;

impl Secrets for NoSecrets {
    fn resolve(&self, name: &str) -> Result<String, iade_provider::ProviderError> {
        Err(iade_provider::ProviderError::permanent(format!("no secret {name}")))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn names(path: &str, field: usize, n: usize, keep: impl Fn(&[&str]) -> bool) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("readable")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| keep(f))
        .filter_map(|f| f.get(field).map(|s| s.to_string()))
        .take(n)
        .collect()
}

fn main() {
    let cancelled = AtomicBool::new(false);
    let dir = std::env::temp_dir().join(format!("iade-bench-host-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let cx = Context {
        stack: "bench",
        secrets: &NoSecrets,
        stack_dir: &dir,
        cancelled: &cancelled,
        diffs: false,
        state_dir: None,
    };

    // Discovery, in process.
    let packages = iade_provider_local::PackageProvider::new();
    let accounts = iade_provider_local::AccountsProvider::new();
    let mut times = Vec::new();
    let mut counts = (0, 0, 0);
    for _ in 0..30 {
        let t = Instant::now();
        let p = packages.discover("package", "", &cx).expect("packages");
        let u = accounts.discover("user", "", &cx).expect("users");
        let g = accounts.discover("group", "", &cx).expect("groups");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        counts = (p.len(), u.len(), g.len());
    }
    println!(
        "discovery of {} packages, {} users and {} groups: median {:.2} ms",
        counts.0,
        counts.1,
        counts.2,
        median(times)
    );

    // A stack already right: the host's own packages, users and groups, and 50 lines.
    let installed: Vec<String> = packages
        .discover("package", "", &cx)
        .expect("packages")
        .into_iter()
        .map(|d| d.name)
        .take(50)
        .collect();
    let users = names("/etc/passwd", 0, 20, |_| true);
    let groups = names("/etc/group", 0, 20, |_| true);
    let mut s = String::from("use std.pkg.{package}\nuse std.users.{user, group}\nuse std.fs.{line}\n\n");
    for (i, p) in installed.iter().enumerate() {
        s.push_str(&format!("package p{i} {{\n  name = \"{p}\"\n}}\n\n"));
    }
    for (i, u) in users.iter().enumerate() {
        s.push_str(&format!("user u{i} {{\n  name = \"{u}\"\n}}\n\n"));
    }
    for (i, g) in groups.iter().enumerate() {
        s.push_str(&format!("group g{i} {{\n  name = \"{g}\"\n}}\n\n"));
    }
    for i in 0..50 {
        let file = dir.join(format!("conf{}.txt", i % 10));
        std::fs::write(&file, (0..5).map(|k| format!("key{k} = value\n")).collect::<String>())
            .expect("write");
        s.push_str(&format!(
            "line l{i} {{\n  path  = \"conf{}.txt\"\n  match = \"^key{} = \"\n  line  = \"key{} = value\"\n}}\n\n",
            i % 10,
            i / 10,
            i / 10
        ));
    }
    std::fs::write(dir.join("main.iade"), s).expect("stack");
    let converge = |dir: &Path| {
        let t = Instant::now();
        let o = Command::new(env!("CARGO_BIN_EXE_iade"))
            .arg("converge")
            .env("IADE_LOCK_DIR", dir.join(".locks"))
            .current_dir(dir)
            .output()
            .expect("iade runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        t.elapsed().as_secs_f64() * 1000.0
    };
    converge(&dir);
    let runs: Vec<f64> = (0..15).map(|_| converge(&dir)).collect();
    println!(
        "no-op converge of {} packages, {} users, {} groups and 50 lines: median {:.1} ms",
        installed.len(),
        users.len(),
        groups.len(),
        median(runs)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
