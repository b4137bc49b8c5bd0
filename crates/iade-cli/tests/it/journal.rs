//! The journal under abuse: a damaged page after an unclean stop, recovery that keeps the
//! obligations, retention that never drops one, and leases whose holder is gone or was never
//! recorded.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iade_journal::{LeaseClaim, LeaseOutcome, PendingRefresh, RunMode, RunStart, Store, WaveOutcome};

use super::engine::{code, iade_bin, journal, run, stack, text};

fn many_files(n: usize) -> String {
    let mut s = String::from("use std.fs.{file}\n\n");
    for i in 0..n {
        s.push_str(&format!("file f{i} {{\n  path    = \"./f{i}\"\n  content = \"{i}\\n\"\n}}\n\n"));
    }
    s
}

/// Leaves the journal as a killed engine would: the lease held, and a pending refresh.
fn kill_mid_run(dir: &Path) {
    let mut j = journal(dir);
    let claim =
        LeaseClaim { pid: 999_999, host: iade_driver_host(), ttl: Duration::from_secs(3600), watch: false };
    let LeaseOutcome::Acquired { epoch } = j.acquire_lease(&claim, &|_| true).expect("lease") else {
        panic!("the lease is free")
    };
    let start =
        RunStart { mode: RunMode::Converge, pid: 999_999, host: "h".into(), drift: vec![], errors: vec![] };
    let run = j.begin_run(epoch, &start).expect("run");
    let refresh = PendingRefresh { resource: "exec.reload".into(), notified_by: "file.f1".into(), run };
    j.record_outcomes(epoch, run, &WaveOutcome { notified: vec![refresh], ..WaveOutcome::default() })
        .expect("refresh");
}

fn iade_driver_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// Overwrites the first page of the `steps` table's b-tree with garbage.
fn damage_steps(dir: &Path) {
    let db = dir.join(".iade/journal.db");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").expect("checkpoint");
    let page: i64 = conn
        .query_row("SELECT rootpage FROM sqlite_master WHERE name = 'steps'", [], |r| r.get(0))
        .expect("root");
    drop(conn);
    let mut bytes = std::fs::read(&db).expect("read");
    let at = usize::try_from(page - 1).expect("page") * 4096;
    bytes[at..at + 64].fill(0xFF);
    std::fs::write(&db, bytes).expect("write");
}

#[test]
fn a_damaged_journal_is_never_written_after_an_unclean_stop_and_recovery_keeps_its_obligations() {
    let dir = stack("damaged", &many_files(50));
    for _ in 0..3 {
        let _ = std::fs::remove_file(dir.join("f1"));
        assert_eq!(code(&run(&dir, &["converge"], &[])), Some(0));
    }
    kill_mid_run(&dir);
    damage_steps(&dir);
    let before = std::fs::read(dir.join(".iade/journal.db")).expect("read");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is damaged") && text(&o).contains("iade journal recover"), "{}", text(&o));
    assert!(
        std::fs::read(dir.join(".iade/journal.db")).expect("read") == before,
        "something was written into it"
    );
    let o = run(&dir, &["journal", "check"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));

    let o = run(&dir, &["journal", "recover"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains("keeps 1 pending refresh(es)"), "{}", text(&o));
    assert!(text(&o).contains("lost:"), "it says what may be lost: {}", text(&o));
    let aside: Vec<_> = std::fs::read_dir(dir.join(".iade"))
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("journal.db.damaged-"))
        .collect();
    assert!(!aside.is_empty(), "the damaged journal is kept aside");
    assert_eq!(journal(&dir).pending_refreshes().expect("refreshes").len(), 1);
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(code(&run(&dir, &["journal", "check"], &[])), Some(0));
}

#[test]
fn pruning_keeps_recent_detail_old_summaries_and_every_obligation() {
    let dir = stack("prune", &many_files(5));
    for _ in 0..6 {
        let _ = std::fs::remove_file(dir.join("f1"));
        assert_eq!(code(&run(&dir, &["converge"], &[])), Some(0));
    }
    kill_mid_run(&dir);
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "the dead holder's lease is taken over: {}", text(&o));
    let o = run(&dir, &["journal", "prune", "--keep-runs", "2"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains("removed the detail of 6 run(s)"), "{}", text(&o));
    let o = run(&dir, &["history", "--run", "1"], &[]);
    assert!(text(&o).contains("run 1  converge  done"), "the summary stays: {}", text(&o));
    assert!(!text(&o).contains("step"), "the detail went: {}", text(&o));
    assert_eq!(
        journal(&dir).pending_refreshes().expect("refreshes").len(),
        1,
        "an obligation is never pruned"
    );
}

#[test]
fn a_lease_whose_holder_is_gone_or_whose_pid_lives_again_is_taken_over_at_once() {
    let dir = stack("stale-lease", &many_files(2));
    assert_eq!(code(&run(&dir, &["converge"], &[])), Some(0));
    // The journal names a live process of this host (pid 1, reused) that holds no lock.
    let mut j = journal(&dir);
    let claim = LeaseClaim { pid: 1, host: iade_driver_host(), ttl: Duration::from_secs(3600), watch: false };
    assert!(matches!(j.acquire_lease(&claim, &|_| true).expect("lease"), LeaseOutcome::Acquired { .. }));
    drop(j);
    let started = Instant::now();
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_held_lock_without_a_recorded_holder_names_no_one_and_wait_waits_for_it() {
    let dir = stack("unnamed-lock", &many_files(2));
    std::fs::create_dir_all(dir.join(".iade")).expect("dir");
    // A killed engine's record stays in the stack name's lock file: a dead process is not named.
    let mut gone = Command::new("true").spawn().expect("spawns");
    gone.wait().expect("exits");
    let locks = dir.parent().expect("a parent").join(".iade-locks");
    std::fs::create_dir_all(&locks).expect("lock dir");
    let name = dir.file_name().expect("a name").to_string_lossy().into_owned();
    std::fs::write(locks.join(format!("{name}.lock")), format!("{} /elsewhere", gone.id())).expect("record");
    // Another process holds the lock before any journal exists.
    let holder = Command::new("flock")
        .arg(dir.join(".iade/lock"))
        .args(["sleep", "2"])
        .stdout(Stdio::null())
        .spawn()
        .expect("flock");
    std::thread::sleep(Duration::from_millis(300));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(3), "{}", text(&o));
    assert!(text(&o).contains("another engine holds this stack's lease\n"), "{}", text(&o));
    assert!(!text(&o).contains("pid 0") && !text(&o).contains("(unknown)"), "{}", text(&o));
    let started = Instant::now();
    let o = run(&dir, &["converge", "--wait", "30s"], &[]);
    assert_eq!(code(&o), Some(0), "--wait waits for the lock: {}", text(&o));
    assert!(started.elapsed() >= Duration::from_millis(500), "it did wait");
    let mut holder = holder;
    let _ = holder.wait();
    let o = run(&dir, &["converge", "--wait", "1s"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let _ = iade_bin();
}
