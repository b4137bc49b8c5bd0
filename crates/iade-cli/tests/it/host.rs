//! The kinds of a real host on this machine: users and groups created, drifted by hand,
//! corrected and deleted with the system's own tools. Names are unique per run and removed
//! even when a test fails; one lock serializes the tests that change the account databases
//! or dpkg's.

use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use super::engine::{code, run, stack, text};

/// Serializes the tests that change the host's account and package databases.
pub fn host_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes users and groups when dropped, whatever the test did.
struct Accounts {
    users: Vec<String>,
    groups: Vec<String>,
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).output();
        }
        for g in &self.groups {
            let _ = Command::new("groupdel").arg(g).output();
        }
    }
}

fn line_of(file: &str, name: &str) -> Option<String> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .map(str::to_string)
}

fn shadow_hash(name: &str) -> Option<String> {
    line_of("/etc/shadow", name).and_then(|l| l.split(':').nth(1).map(str::to_string))
}

#[test]
fn a_user_and_a_group_are_created_drift_by_hand_is_corrected_and_absent_deletes_them() {
    let _lock = host_lock();
    let id = std::process::id() % 100_000;
    let (user, group) = (format!("iu{id}"), format!("ig{id}"));
    let _cleanup = Accounts { users: vec![user.clone()], groups: vec![group.clone()] };
    let gid = 40_000 + id % 20_000;
    let source = |ensure: &str| {
        format!(
            r#"use std.users.{{user, group}}

group g {{
  name = "{group}"
  gid = {gid}
  ensure = {ensure}
}}

user u {{
  name = "{user}"
  ensure = {ensure}
  gid = {gid}
  groups = ["{group}"]
  shell = "/usr/sbin/nologin"
  home = "/nonexistent"
  comment = "iade test user"
  password = secret("PW")
  after = [group.g]
}}
"#
        )
    };
    let dir = stack("accounts", &source("present"));
    let hash = "$y$j9T$abcdefghijklmnop$0123456789012345678901234567890123456789012";
    let env = [("IADE_SECRET_PW", hash)];

    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let passwd = line_of("/etc/passwd", &user).expect("the user exists");
    assert!(passwd.ends_with(&format!(":{gid}:iade test user:/nonexistent:/usr/sbin/nologin")), "{passwd}");
    let members = line_of("/etc/group", &group).expect("the group exists");
    assert_eq!(members, format!("{group}:x:{gid}:{user}"));
    assert_eq!(shadow_hash(&user).as_deref(), Some(hash), "the hash went through chpasswd");
    assert!(!text(&o).contains(hash), "the hash is never shown: {}", text(&o));

    let o = run(&dir, &["plan"], &env);
    assert_eq!(code(&o), Some(0), "nothing differs after converge: {}", text(&o));

    // Drift by hand: another shell, out of the group, another password.
    let ok = |c: &mut Command| assert!(c.output().expect("runs").status.success());
    ok(Command::new("usermod").args(["-s", "/bin/sh", "-G", "", &user]));
    ok(Command::new("usermod").args(["-p", "$y$other", &user]));
    let o = run(&dir, &["plan"], &env);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    let plan = text(&o);
    assert!(plan.contains("shell: \"/bin/sh\" → \"/usr/sbin/nologin\""), "{plan}");
    assert!(plan.contains(&format!("groups: [] → [\"{group}\"]")), "{plan}");
    assert!(plan.contains("password: another hash → the intended hash"), "{plan}");
    assert!(!plan.contains("$y$other") && !plan.contains(hash), "hashes are never shown: {plan}");
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(line_of("/etc/passwd", &user).expect("user").ends_with(":/usr/sbin/nologin"));
    assert_eq!(line_of("/etc/group", &group).expect("group"), format!("{group}:x:{gid}:{user}"));
    assert_eq!(shadow_hash(&user).as_deref(), Some(hash));

    // Absent: the user goes first, then its group.
    std::fs::write(dir.join("main.iade"), source("absent")).expect("write");
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let out = text(&o);
    let (u_at, g_at) =
        (out.find("- user.u").expect("user deleted"), out.find("- group.g").expect("group deleted"));
    assert!(u_at < g_at, "the user is deleted before its group: {out}");
    assert_eq!(line_of("/etc/passwd", &user), None);
    assert_eq!(line_of("/etc/group", &group), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn users_are_discoverable_with_their_password_state() {
    let _lock = host_lock();
    let name = format!("iv{}", std::process::id() % 100_000);
    let _cleanup = Accounts { users: vec![name.clone()], groups: vec![name.clone()] };
    // Made by hand, not by iade: useradd locks a new account's password (`!`).
    let made = Command::new("useradd").args(["-M", "-U", &name]).output().expect("useradd runs");
    assert!(made.status.success(), "{made:?}");
    let dir = stack(
        "accounts-observe",
        &format!(
            r#"use std.users.{{user, group}}

control only_root_has_uid_0 {{
  severity = high
  for u in observe(user) {{
    require u.uid != 0 or u.name == "root"
  }}
}}

control no_locked_test_account {{
  severity = low
  for u in observe(user) {{
    require u.name != "{name}" or u.password_state != locked else "${{u.name}} is ${{u.password_state}}"
  }}
}}

control its_group_is_seen {{
  severity = low
  for g in observe(group) {{
    require g.name != "{name}" or g.gid >= 1000
  }}
}}
"#
        ),
    );
    let o = run(&dir, &["converge", "--detect-only"], &[]);
    let out = text(&o);
    assert_eq!(code(&o), Some(4), "one control fails: {out}");
    assert!(out.contains(&format!("fails on user[{name}]: {name} is locked")), "{out}");
    assert!(!out.contains("only_root_has_uid_0 fail"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lines_are_edited_in_place_keeping_mode_owner_and_line_endings() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = stack(
        "lines",
        r#"use std.fs.{line}

line root_login {
  path  = "sshd.conf"
  match = "^PermitRootLogin\\s"
  line  = "PermitRootLogin no"
}

line banner {
  path  = "sshd.conf"
  match = "^Banner\\s"
  line  = "Banner /etc/issue"
}

line job {
  path         = "crontab"
  match        = "^c="
  line         = "c=3"
  insert_after = "^a="
}

line old_job {
  path   = "crontab"
  match  = "^b="
  ensure = absent
}
"#,
    );
    let sshd = dir.join("sshd.conf");
    let crontab = dir.join("crontab");
    // CRLF, and no line break at the end.
    std::fs::write(&sshd, "# sshd\r\nPermitRootLogin yes\r\nPort 22").expect("write");
    std::fs::set_permissions(&sshd, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::os::unix::fs::chown(&sshd, Some(1), Some(1)).expect("chown");
    std::fs::write(&crontab, "a=1\nb=2\n").expect("write");
    let inode = std::fs::metadata(&sshd).expect("meta").ino();

    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&sshd).expect("read"),
        "# sshd\r\nPermitRootLogin no\r\nPort 22\r\nBanner /etc/issue\r\n"
    );
    assert_eq!(std::fs::read_to_string(&crontab).expect("read"), "a=1\nc=3\n");
    let meta = std::fs::metadata(&sshd).expect("meta");
    assert_eq!((meta.mode() & 0o7777, meta.uid(), meta.gid()), (0o600, 1, 1), "mode and owner kept");
    assert_ne!(meta.ino(), inode, "written atomically: a new file renamed over the old one");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    // Edited behind iade's back: the line is put back, the rest left as it is now.
    std::fs::write(&crontab, "a=1\nc=9\nd=4\nb=7\n").expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&crontab).expect("read"), "a=1\nc=3\nd=4\n");

    // A line that does not match its own `match` would be added again on every run.
    std::fs::write(
        dir.join("main.iade"),
        "use std.fs.{line}\n\nline bad {\n  path  = \"crontab\"\n  match = \"^x=\"\n  line  = \"y=1\"\n}\n",
    )
    .expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("does not match its own `match`"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&crontab).expect("read"), "a=1\nc=3\nd=4\n", "untouched");
    let _ = std::fs::remove_dir_all(&dir);
}
