//! Fleets: engines of many stacks, and of one stack on several "hosts", sharing one journal
//! on a throwaway PostgreSQL cluster. Hosts are played by processes of this machine with their
//! own lock directory (`IADE_LOCK_DIR`) and host id (`IADE_HOST_ID`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iade_test_postgres::Cluster;

use super::engine::{COMMAND_LIMIT, TempDir, code, iade_bin, output_within, run, stack, text};

/// A stack of `files` files under `out/`, and a command that takes `slow` to apply (so runs
/// are still going when something happens to them).
fn source(name: &str, files: usize, slow: &str) -> String {
    let mut s = format!(
        "use std.fs.{{file, directory}}\nuse std.exec.{{exec}}\n\nstack {name} {{}}\n\ndirectory out {{\n  path = \"./out\"\n}}\n\n"
    );
    if !slow.is_empty() {
        s.push_str(&format!(
            "exec slow {{\n  name = \"slow\"\n  check = \"test -e out/slow.done\"\n  apply = \"sleep {slow} && touch out/slow.done\"\n  after = [directory.out]\n}}\n\n"
        ));
    }
    for i in 0..files {
        s.push_str(&format!(
            "file f{i} {{\n  path = \"${{out.path}}/f{i}.txt\"\n  content = \"{name} file {i}\\n\"\n}}\n\n"
        ));
    }
    s
}

/// An engine that is killed if the test ends before it does.
struct Engine(Option<Child>);

impl Engine {
    fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_child(self.0.as_ref().expect("running"))
    }

    fn finish(mut self) -> std::process::Output {
        output_within(self.0.take().expect("running"), COMMAND_LIMIT, "iade converge")
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(dir: &Path, env: &[(&str, String)]) -> Engine {
    let mut cmd = Command::new(iade_bin());
    cmd.arg("converge").current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped());
    for k in ["IADE_FAILPOINT", "IADE_JOURNAL", "IADE_HOST_ID", "IADE_LEASE_TTL"] {
        cmd.env_remove(k);
    }
    if let Some(parent) = dir.parent() {
        cmd.env("IADE_LOCK_DIR", parent.join(".iade-locks"));
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    Engine(Some(cmd.spawn().expect("iade starts")))
}

fn all_files_right(dir: &Path, name: &str, files: usize) -> bool {
    (0..files).all(|i| {
        std::fs::read_to_string(dir.join(format!("out/f{i}.txt")))
            .is_ok_and(|t| t == format!("{name} file {i}\n"))
    })
}

fn wait_for(what: &str, limit: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ten_engines_share_one_journal_through_kill_9_and_a_server_restart() {
    let cluster = Cluster::start("fleet");
    let url = cluster.url();
    let env = [("IADE_JOURNAL", url.clone())];
    // Stack names are unique to this test process: name locks are host-wide.
    let name = |i: usize| format!("fleet{i}_{}", std::process::id());
    let dirs: Vec<TempDir> =
        (0..10).map(|i| stack(&format!("fleet-{i}"), &source(&name(i), 200, "2"))).collect();
    let o = run(&dirs[0], &["check"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let engines: Vec<Engine> = dirs.iter().map(|d| spawn(d, &env)).collect();
    // Two engines are killed in the middle of their runs: once their intents are recorded.
    for victim in [2, 7] {
        wait_for("the victim's intents", Duration::from_secs(60), || {
            cluster
                .try_sql(&format!(
                    "SELECT count(*) FROM iade.steps s JOIN iade.stacks t ON t.id = s.stack WHERE t.name = '{}'",
                    name(victim)
                ))
                .is_some_and(|n| n != "0")
        });
        rustix::process::kill_process(engines[victim].pid(), rustix::process::Signal::KILL).expect("kill -9");
    }
    // The server goes away while the others are in their slow command, and comes back.
    cluster.stop();
    std::thread::sleep(Duration::from_millis(1500));
    cluster.resume();
    for (i, e) in engines.into_iter().enumerate() {
        let out = e.finish();
        if i != 2 && i != 7 {
            assert_eq!(
                out.status.code(),
                Some(0),
                "engine {i} did not finish after the restart: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // Every stack converges again: the killed ones resume, the others have nothing to do.
    for (i, d) in dirs.iter().enumerate() {
        let o = run(d, &["converge"], &[("IADE_JOURNAL", &url)]);
        assert_eq!(code(&o), Some(0), "stack {i}: {}", text(&o));
        assert!(all_files_right(d, &name(i), 200), "stack {i} is not equal to its intent");
    }
    assert_eq!(
        cluster.sql("SELECT count(*) FROM iade.steps WHERE status = 'started'"),
        "0",
        "a step is left started"
    );
    assert_eq!(cluster.sql("SELECT count(*) FROM iade.runs WHERE status = 'running'"), "0");
    let interrupted = cluster.sql("SELECT count(*) FROM iade.runs WHERE status = 'interrupted'");
    assert!(interrupted.parse::<i64>().expect("count") >= 2, "the killed runs are recorded as interrupted");

    // The fleet's status: ten stacks, each last run done, no lease held.
    let o = run(&dirs[0], &["status", "--format", "json"], &[("IADE_JOURNAL", &url)]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let stacks = status["stacks"].as_array().expect("stacks");
    assert_eq!(stacks.len(), 10, "{status}");
    assert!(stacks.iter().all(|s| s["last_run"]["status"] == "done" && s["holder"].is_null()), "{status}");
    // One stack's history, by name, from anywhere.
    let o = run(&dirs[0], &["history", "--stack", &name(7), "--format", "json"], &[("IADE_JOURNAL", &url)]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let history: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let statuses: Vec<&str> = history["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["run"]["status"].as_str())
        .collect();
    assert_eq!(statuses.first(), Some(&"done"), "{history}");
    assert!(statuses.contains(&"interrupted"), "{history}");
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_paused_engine_that_lost_its_lease_changes_nothing_when_it_wakes() {
    let cluster = Cluster::start("fence");
    let url = cluster.url();
    let shared = format!("shared_{}", std::process::id());
    let a = stack("fence-a", &source(&shared, 50, ""));
    let b = stack("fence-b", &source(&shared, 50, ""));
    let pause = a.parent().expect("parent").join(format!("iade-fence-pause-{}", std::process::id()));
    let _ = std::fs::remove_file(&pause);
    let common = |lock: &Path| {
        vec![
            ("IADE_JOURNAL", url.clone()),
            ("IADE_HOST_ID", "fleet-host".to_string()),
            ("IADE_LEASE_TTL", "3".to_string()),
            ("IADE_LOCK_DIR", lock.display().to_string()),
        ]
    };
    // Host A records its intents, then stops (SIGSTOP) before any effect.
    let mut env_a = common(&a.join(".locks"));
    env_a.push(("IADE_FAILPOINT", format!("after-intent:1:pause={}", pause.display())));
    let engine_a = spawn(&a, &env_a);
    wait_for("host A at its failpoint", Duration::from_secs(60), || pause.exists());
    let pid_a = engine_a.pid();
    rustix::process::kill_process(pid_a, rustix::process::Signal::STOP).expect("SIGSTOP");
    std::fs::remove_file(&pause).expect("release the failpoint");
    // Its lease runs out; host B takes the stack over and converges it.
    std::thread::sleep(Duration::from_millis(3500));
    let env_b = common(&b.join(".locks"));
    let env_b: Vec<(&str, &str)> = env_b.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let o = run(&b, &["converge"], &env_b);
    assert_eq!(code(&o), Some(0), "host B takes over the expired lease: {}", text(&o));
    assert!(all_files_right(&b, &shared, 50));
    // Host A wakes up: it changes nothing and writes nothing.
    rustix::process::kill_process(pid_a, rustix::process::Signal::CONT).expect("SIGCONT");
    let out = engine_a.finish();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_ne!(out.status.code(), Some(0), "host A cannot finish a run it lost: {said}");
    assert!(!a.join("out/f0.txt").exists(), "host A changed files after losing its lease: {said}");
    let pid = pid_a.as_raw_nonzero().get();
    assert_eq!(
        cluster.sql(&format!(
            "SELECT count(*) FROM iade.steps s JOIN iade.runs r ON r.id = s.run WHERE r.pid = {pid} AND s.status IN ('done', 'started')"
        )),
        "0",
        "host A recorded nothing done, and host B settled what it left started: {said}"
    );
    assert_eq!(
        cluster.sql(&format!("SELECT status FROM iade.runs WHERE pid = {pid}")),
        "interrupted",
        "host A's run is as host B settled it: {said}"
    );
    assert!(said.contains("lease"), "host A says why it stopped: {said}");
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}
