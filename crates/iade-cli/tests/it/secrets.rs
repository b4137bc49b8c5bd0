//! Every value derived from a secret is a secret, everywhere: secret params, short secrets,
//! output cut at its limit, command lines other users can read, compliance findings, and
//! files that would leak the engine's environment.

use std::path::Path;
use std::time::{Duration, Instant};

use super::engine::{code, run, stack, text};

/// Everything a user can read back: every command's output and the journal's files.
fn everything(dir: &Path, env: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for args in [&["history"][..], &["history", "--format", "json"], &["plan", "--format", "json"]] {
        out.push_str(&text(&run(dir, args, env)));
    }
    for name in ["journal.db", "journal.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(".iade").join(name)) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

#[test]
fn a_secret_param_reaches_no_command_and_is_scrubbed_from_output_however_short() {
    let src = r#"use std.exec.{exec}

param pw: secret

exec leak {
  name  = "leak"
  check = "test -f done"
  apply = "echo pw=${pw}; env | grep -c '^IADE_SECRET_\\|^IADE_PARAM_' || true; touch done"
}
"#;
    let dir = stack("secret-param", src);
    let env = [("IADE_PARAM_PW", "zq"), ("IADE_SECRET_OTHER", "not-for-commands")];
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let o = run(&dir, &["history", "--format", "json"], &env);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("history JSON");
    let stdout = json["runs"][0]["steps"][0]["output"]["stdout"].as_str().expect("stdout kept").to_string();
    assert_eq!(
        stdout, "pw=<redacted>\n0\n",
        "a two-letter secret is scrubbed; no IADE_ variable reaches the command"
    );
    let all = everything(&dir, &env);
    assert!(!all.contains("pw=zq") && !all.contains("not-for-commands"), "{all}");
}

#[test]
fn a_secret_cut_in_two_by_the_output_limit_leaves_no_half_behind() {
    let secret = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    // The secret sits so that the last 4,096 bytes start in its middle.
    let src = r#"use std.exec.{exec}

exec long {
  name  = "long"
  check = "test -f done"
  apply = "printf '%s' \"$T\"; head -c 4080 /dev/zero | tr '\\0' x; touch done"
  env   = { T = secret("T") }
}
"#;
    let dir = stack("secret-cut", src);
    let env = [("IADE_SECRET_T", secret)];
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let all = everything(&dir, &env);
    assert!(
        !all.contains(&secret[20..]),
        "the second half of the secret leaked: {}",
        &all[..all.len().min(500)]
    );
}

#[test]
fn a_command_built_from_a_secret_never_shows_it_in_the_process_list() {
    let secret = "pr0cess-list-s3cret";
    let src = r#"use std.exec.{exec}

exec slow {
  name  = "slow"
  check = "test -f done"
  apply = "touch started; sleep 2; echo ${secret("S")} > /dev/null; touch done"
}
"#;
    let dir = stack("secret-argv", src);
    let mut child = std::process::Command::new(super::engine::iade_bin())
        .arg("converge")
        .current_dir(&dir)
        .env("IADE_SECRET_S", secret)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawns");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("started").exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut seen = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(secret) {
                seen.push(cmdline);
            }
        }
    }
    let status = child.wait().expect("finishes");
    assert!(status.success());
    assert!(seen.is_empty(), "the secret is readable in the process list: {seen:?}");
}

#[test]
fn a_finding_never_shows_a_value_built_from_a_secret() {
    let src = r#"use std.fs.{file, symlink}

symlink link {
  path   = "./link"
  target = secret("LINK")
}

file token {
  path    = "./token"
  content = secret("TOKEN")
}

rule points_nowhere(l: symlink) = l.target == "/nowhere" else "the link points somewhere"
rule empty(f: file) = f.sha256 == "" else "the file has content"

control links {
  severity = low
  for l in intent(symlink) { require points_nowhere(l) }
  for f in intent(file) { require empty(f) }
}
"#;
    let dir = stack("secret-finding", src);
    let env = [("IADE_SECRET_LINK", "/srv/secret-target-path"), ("IADE_SECRET_TOKEN", "token-value-xyz")];
    let o = run(&dir, &["converge"], &env);
    let sarif = run(&dir, &["converge", "--format", "sarif"], &env);
    let all = format!("{}{}{}", text(&o), text(&sarif), everything(&dir, &env));
    assert!(!all.contains("/srv/secret-target-path"), "the symlink's target leaked: {all}");
    let real = {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sha256sum");
        child.stdin.take().expect("stdin").write_all(b"token-value-xyz").expect("write");
        let out = child.wait_with_output().expect("digest");
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
    };
    assert!(!all.contains(&real[..16]), "the digest of a secret content leaked: {all}");
    // A value derived from a secret is compared with nothing: the verdict is unknown, never a
    // pass and never a failure that would have to show it.
    assert!(text(&o).contains("control links [low] cannot decide on symlink.link"), "{}", text(&o));
    assert!(text(&o).contains("control links [low] cannot decide on file.token"), "{}", text(&o));
}

#[test]
fn a_file_under_proc_sys_or_dev_is_never_included() {
    let src = "use std.fs.{file}\n\nfile f {\n  path    = \"./f\"\n  content = include(\"/proc/self/environ\")\n}\n";
    let dir = stack("secret-environ", src);
    let o = run(&dir, &["check"], &[("IADE_SECRET_X", "environ-s3cret")]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("whose files are not sources"), "{}", text(&o));
    assert!(!text(&o).contains("environ-s3cret"), "{}", text(&o));
}
