//! Running iade as a service: metrics served by a watching engine move as it works, the JSON
//! log lines follow their documented schema, and the systemd unit verifies.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::engine::{code, iade_bin, run, stack, text};

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    let status = body.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body)
}

/// The value of a sample line (`name{labels} value`), 0 when absent.
fn sample(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_watchers_metrics_and_health_move_as_it_corrects_drift() {
    use std::os::unix::fs::PermissionsExt;
    let dir = stack(
        "metrics",
        "use std.fs.{file}\n\nfile a {\n  path = \"./a.txt\"\n  content = \"a\\n\"\n  mode = 0o640\n}\n",
    );
    let mut child = Command::new(iade_bin())
        .args(["converge", "--watch", "--interval", "1s", "--metrics", "127.0.0.1:0"])
        .current_dir(&dir)
        .env("IADE_LOCK_DIR", dir.join(".locks"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iade runs");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        let line = lines.next().expect("a line").expect("text");
        if let Some(rest) = line.strip_prefix("serving metrics at http://") {
            break rest.split('/').next().expect("addr").to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let wait_for = |what: &str, ok: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, body) = get(&addr, "/metrics");
            if ok(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{what}: {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let body =
        wait_for("a first pass", &|b| sample(b, "iade_passes_total{kind=\"full\",outcome=\"ok\"}") >= 1.0);
    assert_eq!(sample(&body, "iade_lease_held"), 1.0, "{body}");
    assert!(sample(&body, "iade_last_success_timestamp_seconds") > 1.0e9, "{body}");
    assert!(sample(&body, "iade_journal_bytes") > 0.0, "{body}");
    let corrected = sample(&body, "iade_drift_corrected_total{kind=\"file\"}");
    assert_eq!(corrected, 1.0, "the first pass created the file: {body}");

    std::fs::set_permissions(dir.join("a.txt"), std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let body =
        wait_for("the drift corrected", &|b| sample(b, "iade_drift_corrected_total{kind=\"file\"}") >= 2.0);
    assert!(sample(&body, "iade_drift_found_total{kind=\"file\"}") >= 2.0, "{body}");
    assert!(sample(&body, "iade_steps_total{outcome=\"done\"}") >= 2.0, "{body}");
    assert!(body.contains("# TYPE iade_pass_duration_seconds histogram"), "{body}");
    assert!(!body.contains("a.txt"), "labels never carry paths: {body}");
    let (status, health) = get(&addr, "/healthz");
    assert_eq!(status, 200, "{health}");
    let (status, _) = get(&addr, "/nothing");
    assert_eq!(status, 404);

    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("signal");
    assert!(child.wait().expect("exits").success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_log_lines_follow_their_schema() {
    let dir = stack(
        "json-log",
        "use std.fs.{file}\n\nfile a {\n  path = \"./a.txt\"\n  content = \"a\\n\"\n}\n\ncontrol readable {\n  severity = low\n  for f in observe(file, under = \".\") { require f.mode & 0o004 == 0 }\n}\n",
    );
    let o = run(&dir, &["converge", "--log-format", "json"], &[]);
    assert_eq!(code(&o), Some(4), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l}"))
        })
        .collect();
    for e in &events {
        for key in ["timestamp", "level", "event", "stack"] {
            assert!(e.get(key).is_some(), "no `{key}` in {e}");
        }
    }
    let of = |name: &str| events.iter().filter(|e| e["event"] == name).collect::<Vec<_>>();
    assert!(!of("observed").is_empty(), "{stderr}");
    let step = of("step");
    assert_eq!(step.len(), 1, "{stderr}");
    assert_eq!(step[0]["resource"], "file.a");
    let drift = of("drift");
    assert_eq!(drift[0]["kind"], "file", "{stderr}");
    assert!(drift[0]["run"].as_i64().is_some_and(|r| r > 0), "{stderr}");
    let finding = of("finding");
    assert_eq!(finding[0]["control"], "readable", "{stderr}");
    let end = of("run_end");
    assert_eq!(end.len(), 1, "{stderr}");
    assert_eq!(end[0]["changed"], 1, "{stderr}");
    assert_eq!(end[0]["pass"], "one-shot", "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_systemd_unit_verifies() {
    // Installed by .ci/run (Debian's `systemd`), so CI always checks the unit.
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "systemd-analyze is missing in CI");
        return;
    }
    let unit =
        std::fs::read_to_string(super::root().join("examples/systemd/iade-watch@.service")).expect("unit");
    let dir = std::env::temp_dir().join(format!("iade-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("iade-watch@web.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/iade", iade_bin())).expect("write");
    let o = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("runs");
    let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let relevant: Vec<&str> = said
        .lines()
        // A container without a running systemd may say so; the unit itself is what is checked.
        .filter(|l| l.contains("iade-watch@"))
        .collect();
    assert!(o.status.success() && relevant.is_empty(), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
