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

/// Purges packages when dropped, whatever the test did.
struct Packages(Vec<String>);

impl Drop for Packages {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").arg("--purge").args(&self.0).output();
    }
}

fn installed_version(name: &str) -> Option<String> {
    let o = Command::new("dpkg-query").args(["-W", "-f", "${Status}|${Version}", name]).output().ok()?;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (status, version) = out.split_once('|')?;
    status.ends_with(" installed").then(|| version.to_string())
}

/// A local apt repository of tiny packages built here with `dpkg-deb`, and an apt
/// configuration that sees only it (its own lists and cache), so the tests need no mirror and
/// leave the host's lists alone.
struct Repo {
    dir: std::path::PathBuf,
    apt_config: std::path::PathBuf,
}

impl Repo {
    /// Packages as `(name, version, depends, postinst)`.
    fn new(tag: &str, packages: &[(&str, &str, Option<&str>, Option<&str>)]) -> Repo {
        use sha2_free::{sha256_hex, size};
        let dir = std::env::temp_dir().join(format!("iade-repo-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pool = dir.join("pool");
        std::fs::create_dir_all(&pool).expect("pool");
        let mut index = String::new();
        for (name, version, depends, postinst) in packages {
            let root = dir.join(format!("build-{name}-{version}"));
            std::fs::create_dir_all(root.join("DEBIAN")).expect("DEBIAN");
            std::fs::create_dir_all(root.join(format!("usr/share/doc/{name}"))).expect("doc");
            std::fs::write(root.join(format!("usr/share/doc/{name}/version")), version).expect("payload");
            let mut control = format!(
                "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: iade tests <tests@iade.invalid>\nDescription: a package the iade tests build\n"
            );
            if let Some(d) = depends {
                control.push_str(&format!("Depends: {d}\n"));
            }
            std::fs::write(root.join("DEBIAN/control"), &control).expect("control");
            if let Some(script) = postinst {
                use std::os::unix::fs::PermissionsExt;
                let path = root.join("DEBIAN/postinst");
                std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("postinst");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            }
            let deb = pool.join(format!("{name}_{version}_all.deb"));
            let built = Command::new("dpkg-deb")
                .args(["--root-owner-group", "-Zgzip", "--build"])
                .arg(&root)
                .arg(&deb)
                .output()
                .expect("dpkg-deb runs");
            assert!(built.status.success(), "{built:?}");
            let bytes = std::fs::read(&deb).expect("deb");
            index.push_str(&control);
            index.push_str(&format!(
                "Filename: pool/{name}_{version}_all.deb\nSize: {}\nSHA256: {}\n\n",
                size(&bytes),
                sha256_hex(&bytes)
            ));
        }
        std::fs::write(dir.join("Packages"), index).expect("Packages");
        std::fs::write(dir.join("sources.list"), format!("deb [trusted=yes] file:{} ./\n", dir.display()))
            .expect("sources");
        for sub in ["parts", "lists/partial", "cache/archives/partial"] {
            std::fs::create_dir_all(dir.join(sub)).expect("apt dirs");
        }
        let apt_config = dir.join("apt.conf");
        std::fs::write(
            &apt_config,
            format!(
                "Dir::Etc::SourceList \"{d}/sources.list\";\nDir::Etc::SourceParts \"{d}/parts\";\nDir::State::Lists \"{d}/lists\";\nDir::Cache \"{d}/cache\";\n",
                d = dir.display()
            ),
        )
        .expect("apt.conf");
        Repo { dir, apt_config }
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SHA-256 without a dependency: `sha256sum` does it.
mod sha2_free {
    pub fn sha256_hex(bytes: &[u8]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sha256sum runs");
        child.stdin.take().expect("stdin").write_all(bytes).expect("write");
        let out = child.wait_with_output().expect("sha256sum");
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
    }

    pub fn size(bytes: &[u8]) -> usize {
        bytes.len()
    }
}

#[test]
fn packages_install_pin_upgrade_and_refuse_a_removal_that_takes_others() {
    let _lock = host_lock();
    let tag = format!("t{}", std::process::id() % 100_000);
    let (a, b) = (format!("iade-{tag}-a"), format!("iade-{tag}-b"));
    let _purge = Packages(vec![b.clone(), a.clone()]);
    let repo =
        Repo::new(&tag, &[(&a, "1.0", None, None), (&a, "2.0", None, None), (&b, "1.0", Some(&a), None)]);
    let apt = repo.apt_config.to_string_lossy().into_owned();
    let env = [("APT_CONFIG", apt.as_str())];
    let source = |a_ensure: &str, a_version: Option<&str>, b_ensure: &str| {
        let pin = a_version.map(|v| format!("\n  version = \"{v}\"")).unwrap_or_default();
        format!(
            "use std.pkg.{{package}}\n\npackage a {{\n  name = \"{a}\"\n  ensure = {a_ensure}{pin}\n}}\n\npackage b {{\n  name = \"{b}\"\n  ensure = {b_ensure}\n}}\n"
        )
    };
    let dir = stack("packages", &source("present", Some("1.0"), "absent"));

    // Not in the (empty) lists yet: plan does not update them; converge does, once.
    let o = run(&dir, &["plan"], &env);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(
        !repo
            .dir
            .join("lists")
            .read_dir()
            .expect("lists")
            .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().contains("Packages"))),
        "plan never updates the lists"
    );
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(installed_version(&a).as_deref(), Some("1.0"), "the pinned version");
    let o = run(&dir, &["plan"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    // latest: the candidate is 2.0.
    std::fs::write(dir.join("main.iade"), source("latest", None, "present")).expect("write");
    let o = run(&dir, &["plan"], &env);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(text(&o).contains("version: \"1.0\" → \"2.0\""), "{}", text(&o));
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(installed_version(&a).as_deref(), Some("2.0"));
    assert_eq!(installed_version(&b).as_deref(), Some("1.0"));

    // Removing a alone would take b with it: refused, naming b, and nothing is removed.
    std::fs::write(dir.join("main.iade"), source("absent", None, "present")).expect("write");
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains(&format!("would also remove `{b}`")), "{}", text(&o));
    assert_eq!(installed_version(&a).as_deref(), Some("2.0"));

    // Both absent: removed together.
    std::fs::write(dir.join("main.iade"), source("purged", None, "absent")).expect("write");
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!((installed_version(&a), installed_version(&b)), (None, None));
    let o = run(&dir, &["plan"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_package_from_debians_own_repository_is_installed_and_removed() {
    let _lock = host_lock();
    let name = "hello";
    if installed_version(name).is_some() {
        // Installed by someone else: this test must not remove it.
        return;
    }
    let _purge = Packages(vec![name.to_string()]);
    let dir = stack(
        "debian-package",
        "use std.pkg.{package}\n\npackage hello {\n  name = \"hello\"\n}\n\ncontrol no_telnetd {\n  severity = high\n  for p in observe(package) { require p.name != \"telnetd\" }\n}\n",
    );
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(installed_version(name).is_some(), "installed from Debian's repository");
    std::fs::write(
        dir.join("main.iade"),
        "use std.pkg.{package}\n\npackage hello {\n  name = \"hello\"\n  ensure = purged\n}\n",
    )
    .expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(installed_version(name), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn validate_rejects_a_broken_file_and_leaves_the_old_one() {
    let dir = stack(
        "validate",
        "use std.fs.{file}\n\nfile sudoers {\n  path     = \"app.conf\"\n  content  = \"valid = yes\\n\"\n  validate = \"grep -q '^valid = yes$' %\"\n}\n",
    );
    let conf = dir.join("app.conf");
    std::fs::write(&conf, "old\n").expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&conf).expect("read"), "valid = yes\n");

    let broken = "use std.fs.{file}\n\nfile sudoers {\n  path     = \"app.conf\"\n  content  = \"valid = no\\n\"\n  validate = \"grep -q '^valid = yes$' % || { echo 'syntax error near line 1' >&2; exit 1; }\"\n}\n";
    std::fs::write(dir.join("main.iade"), broken).expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("`validate` rejected the new content") && out.contains("syntax error near line 1"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&conf).expect("read"), "valid = yes\n", "the old file stays");
    assert!(super::engine::temp_files(&dir).is_empty(), "no temporary file is left");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_host_example_converges_and_its_absent_state_undoes_it() {
    let _lock = host_lock();
    if installed_version("hello").is_some() || line_of("/etc/passwd", "iade-demo").is_some() {
        panic!("the host example's package or user exists already on this machine; remove them first");
    }
    let _accounts = Accounts { users: vec!["iade-demo".into()], groups: vec!["iade-demo".into()] };
    let _purge = Packages(vec!["hello".into()]);
    // A copy of the example, so its journal is not written into the source tree.
    let example = stack(
        "host-example",
        &std::fs::read_to_string(super::root().join("examples/host/main.iade")).expect("example"),
    );
    let root = example.join("files");
    let param = format!("root={}", root.display());
    let o = run(&example, &["converge", "--param", &param], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(installed_version("hello").is_some());
    assert!(line_of("/etc/passwd", "iade-demo").is_some_and(|l| l.ends_with(":/usr/sbin/nologin")));
    assert_eq!(std::fs::read_to_string(root.join("environment")).expect("read"), "DEMO_MODE=on\n");
    let o = run(&example, &["plan", "--param", &param], &[]);
    assert_eq!(code(&o), Some(0), "converged: {}", text(&o));

    let o = run(&example, &["converge", "--param", &param, "--param", "state=absent"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(!root.exists(), "the files are gone");
    assert_eq!(installed_version("hello"), None);
    assert_eq!(line_of("/etc/passwd", "iade-demo"), None);
    assert_eq!(line_of("/etc/group", "iade-demo"), None);
    let _ = std::fs::remove_dir_all(&example);
}

fn dpkg_status(name: &str) -> String {
    let o = Command::new("dpkg-query").args(["-W", "-f", "${Status}", name]).output().expect("dpkg-query");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_package_install_killed_mid_way_is_finished_by_the_next_converge() {
    use std::os::unix::process::CommandExt;
    let _lock = host_lock();
    let tag = format!("k{}", std::process::id() % 100_000);
    let name = format!("iade-{tag}-slow");
    let _purge = Packages(vec![name.clone()]);
    // Its configuration takes a while: long enough to kill everything in the middle of it.
    let repo = Repo::new(&tag, &[(&name, "1.0", None, Some("sleep 4"))]);
    let apt = repo.apt_config.to_string_lossy().into_owned();
    let dir = stack(
        "killed-install",
        &format!("use std.pkg.{{package}}\n\npackage slow {{\n  name = \"{name}\"\n}}\n"),
    );
    let mut child = Command::new(super::engine::iade_bin())
        .arg("converge")
        .current_dir(&dir)
        .env("APT_CONFIG", &apt)
        .env("IADE_LOCK_DIR", dir.join(".locks"))
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("iade runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dpkg_status(&name).contains("half-configured") {
        assert!(std::time::Instant::now() < deadline, "the install never reached its configuration");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The engine, apt-get and dpkg, all at once.
    let pgid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("a pid");
    rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL).expect("killed");
    // apt-get runs dpkg in a session of its own: dpkg and this package's script die too, as
    // in a power cut.
    for entry in std::fs::read_dir("/proc").expect("/proc").filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline =
            String::from_utf8_lossy(&std::fs::read(entry.path().join("cmdline")).unwrap_or_default())
                .into_owned();
        let argv0 = cmdline.split('\0').next().unwrap_or_default().to_string();
        if (argv0.ends_with("/dpkg") || argv0 == "dpkg" || cmdline.contains(&name))
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    let _ = child.wait();
    assert!(dpkg_status(&name).contains("half-configured"), "left half done: {}", dpkg_status(&name));

    let o = run(&dir, &["converge"], &[("APT_CONFIG", apt.as_str())]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(installed_version(&name).as_deref(), Some("1.0"), "{}", dpkg_status(&name));
    let o = run(&dir, &["plan"], &[("APT_CONFIG", apt.as_str())]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_backed_up_file_keeps_what_each_change_replaced_and_history_lists_it() {
    let source = |content: &str| {
        format!(
            "use std.fs.{{file}}\n\nfile conf {{\n  path    = \"app.conf\"\n  content = \"{content}\\n\"\n  backup  = true\n}}\n"
        )
    };
    let dir = stack("backup", &source("v1"));
    std::fs::write(dir.join("app.conf"), "v0\n").expect("write");
    for v in ["v1", "v2", "v3", "v4", "v5", "v6", "v7"] {
        std::fs::write(dir.join("main.iade"), source(v)).expect("write");
        let o = run(&dir, &["converge"], &[]);
        assert_eq!(code(&o), Some(0), "{}", text(&o));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let kept = dir.join(".iade/backups/file.conf");
    let mut contents: Vec<(u128, String)> = std::fs::read_dir(&kept)
        .expect("backups")
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.file_name().to_string_lossy().parse().expect("millis"),
                std::fs::read_to_string(e.path()).expect("read"),
            )
        })
        .collect();
    contents.sort();
    let texts: Vec<&str> = contents.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["v2\n", "v3\n", "v4\n", "v5\n", "v6\n"], "the newest five replaced contents");
    let o = run(&dir, &["history", "--resource", "file.conf"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains("backups of file.conf, newest first"), "{}", text(&o));
    assert_eq!(text(&o).matches("bytes  ").count(), 5, "{}", text(&o));

    // A secret content is never kept.
    std::fs::write(
        dir.join("main.iade"),
        "use std.fs.{file}\n\nfile conf {\n  path    = \"app.conf\"\n  content = secret(\"S\")\n  backup  = true\n}\n",
    )
    .expect("write");
    let o = run(&dir, &["converge"], &[("IADE_SECRET_S", "hunter2")]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&kept).expect("backups").count(), 5, "nothing kept for a secret");
    let _ = std::fs::remove_dir_all(&dir);
}
