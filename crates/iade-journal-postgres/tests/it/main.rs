//! The shared journal on a throwaway PostgreSQL cluster: the whole conformance suite, and what
//! only a shared journal is asked (several stacks in one database, migrations by engines
//! that start at once, fleet status, a server restarted under a writer).

use std::cell::RefCell;

use iade_journal::conformance::{self, Harness};
use iade_journal::{LeaseClaim, LeaseOutcome, RunMode, RunStart, RunStatus, RunSummary, StackId, Store};
use iade_journal_postgres::PgJournal;
use iade_test_postgres::Cluster;

/// Every `create` is a new stack in the same database: journals of a fleet share it.
struct Shared {
    url: String,
    count: RefCell<usize>,
}

impl Shared {
    fn stack(&self) -> StackId {
        StackId { name: format!("conformance-{}", self.count.borrow()), host: "conformance-host".into() }
    }
}

impl Harness for Shared {
    fn create(&self) -> Box<dyn Store> {
        *self.count.borrow_mut() += 1;
        Box::new(PgJournal::open(&self.url, None, &self.stack()).expect("a new journal opens"))
    }

    fn reopen(&self) -> Box<dyn Store> {
        Box::new(PgJournal::open(&self.url, None, &self.stack()).expect("the journal opens again"))
    }
}

#[test]
fn the_postgres_journal_passes_the_conformance_suite() {
    let cluster = Cluster::start("journal-conformance");
    conformance::run_all(&Shared { url: cluster.url(), count: RefCell::new(0) });
}

fn claim(pid: u32) -> LeaseClaim {
    LeaseClaim { pid, host: "h".into(), ttl: std::time::Duration::from_secs(60), watch: false }
}

fn start() -> RunStart {
    RunStart { mode: RunMode::Converge, pid: 1, host: "h".into(), drift: Vec::new(), errors: Vec::new() }
}

#[test]
fn engines_that_start_at_once_migrate_once_and_two_stacks_never_see_each_others_runs() {
    let cluster = Cluster::start("journal-fleet");
    let url = cluster.url();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let stack = StackId { name: format!("web-{}", i % 2), host: format!("host-{i}") };
                let mut j = PgJournal::open(&url, None, &stack).expect("opens while others migrate");
                let LeaseOutcome::Acquired { epoch } = j.acquire_lease(&claim(1), &|_| false).expect("lease")
                else {
                    panic!("a fresh stack's lease is free");
                };
                let run = j.begin_run(epoch, &start()).expect("begin");
                j.finish_run(epoch, run, RunStatus::Done, &RunSummary::default(), &[]).expect("finish");
            })
        })
        .collect();
    for h in handles {
        h.join().expect("no engine failed");
    }
    assert_eq!(cluster.sql("SELECT value FROM iade.meta WHERE key = 'schema_version'"), "1");
    let status = iade_journal_postgres::fleet_status(&url, None).expect("status");
    assert_eq!(status.len(), 8, "{status:?}");
    assert!(status.iter().all(|s| s.last_run.as_ref().is_some_and(|r| r.status == RunStatus::Done)));
    let one =
        PgJournal::open(&url, None, &StackId { name: "web-0".into(), host: "host-0".into() }).expect("opens");
    let runs = one.runs(&iade_journal::RunFilter { before: None, limit: 100, resource: None }).expect("runs");
    assert_eq!(runs.len(), 1, "a stack sees its own runs only: {runs:?}");
}

#[test]
fn a_writer_rides_out_a_server_restart() {
    let cluster = Cluster::start("journal-restart");
    let stack = StackId { name: "restart".into(), host: "h".into() };
    let mut j = PgJournal::open(&cluster.url(), None, &stack).expect("opens");
    let LeaseOutcome::Acquired { epoch } = j.acquire_lease(&claim(1), &|_| false).expect("lease") else {
        panic!("free lease");
    };
    let run = j.begin_run(epoch, &start()).expect("begin");
    // The server stops under the writer and comes back 1.5 s later; the write waits for it.
    cluster.stop();
    let resumed = std::thread::scope(|s| {
        let h = s.spawn(|| j.finish_run(epoch, run, RunStatus::Done, &RunSummary::default(), &[]));
        std::thread::sleep(std::time::Duration::from_millis(1500));
        cluster.resume();
        h.join().expect("joins")
    });
    resumed.expect("the write waits for the server and then lands");
    assert_eq!(j.run(run).expect("run").map(|r| r.status), Some(RunStatus::Done));
}

#[test]
fn an_engine_frozen_inside_a_transaction_holds_no_other_engine_back() {
    let cluster = Cluster::start("journal-frozen");
    let url = cluster.url();
    let stack = StackId { name: "frozen".into(), host: "h".into() };
    let mut first = PgJournal::open(&url, None, &stack).expect("opens");
    let short = LeaseClaim { ttl: std::time::Duration::from_secs(1), ..claim(1) };
    let LeaseOutcome::Acquired { .. } = first.acquire_lease(&short, &|_| false).expect("lease") else {
        panic!("free lease");
    };
    // A journal connection stops in the middle of a transaction holding the stack's lease row
    // and the migration lock, as an engine does when it is stopped or cut off mid-write.
    let mut frozen = iade_journal_postgres::journal_config(&url)
        .expect("config")
        .connect(postgres::NoTls)
        .expect("connects");
    let mut tx = frozen.transaction().expect("begins");
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&iade_journal_postgres::MIGRATION_LOCK]).expect("locks");
    tx.query(
        "SELECT epoch FROM iade.leases l JOIN iade.stacks s ON s.id = l.stack WHERE s.name = 'frozen' FOR UPDATE",
        &[],
    )
    .expect("locks the lease row");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Another engine opens the journal and takes the expired lease over, within the server's
    // limit on an idle transaction rather than never.
    let (tx_done, rx_done) = std::sync::mpsc::channel();
    let started = std::time::Instant::now();
    let url2 = url.clone();
    std::thread::spawn(move || {
        let outcome =
            PgJournal::open(&url2, None, &stack).and_then(|mut j| j.acquire_lease(&claim(2), &|_| false));
        let _ = tx_done.send(outcome);
    });
    let limit = iade_journal_postgres::IDLE_IN_TRANSACTION + std::time::Duration::from_secs(10);
    let outcome = rx_done.recv_timeout(limit).expect("the second engine is not held back for ever");
    assert!(matches!(outcome, Ok(LeaseOutcome::Acquired { .. })), "{outcome:?}");
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
    // The frozen transaction was ended by the server: it commits nothing.
    assert!(tx.commit().is_err(), "a transaction the server ended cannot commit");
}
