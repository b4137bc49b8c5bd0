//! The shared journal: one PostgreSQL database holds the journals of a fleet's stacks (every
//! row carries its stack), implementing [`iade_journal::Store`] for one stack per handle, and
//! answering fleet-wide questions ([`fleet_status`]).
//!
//! **Invariant:** every write of a run runs in one transaction that first locks the stack's
//! lease row (`SELECT … FOR UPDATE`) and checks the epoch, so an engine that lost its lease,
//! however long it was paused, cannot write after another took over.
//!
//! **Invariant:** every value reaches SQL as a bound parameter; no statement is built from
//! data.
//!
//! Connection failures are retried (the server restarting) for up to [`RETRY_FOR`]; a write
//! whose commit was lost with its connection is found by its content before being written
//! again (steps by their idempotency key), so a retry never leaves a step started twice.

mod schema;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use iade_journal::{
    AppliedIdentity, Drift, DriftRow, Epoch, Finding, FindingOutcome, Holder, Interrupted, JournalError,
    LeaseClaim, LeaseOutcome, Output, PassRequest, PendingRefresh, PruneReport, RequestAnswer, RequestId,
    ResourceError, Result, Retention, RunFilter, RunId, RunMode, RunRow, RunStart, RunStatus, RunSummary,
    StackId, StepAction, StepChange, StepId, StepIntent, StepRow, StepStatus, Store, Subscription,
    WaveOutcome, now_ms,
};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Row, Transaction};

pub use schema::{MIGRATION_LOCK, VERSION as SCHEMA_VERSION};

/// How long a lost connection is retried before the error reaches the engine.
pub const RETRY_FOR: Duration = Duration::from_secs(60);

/// How long opening a journal waits for a server that is not there: long enough for a
/// restart, short enough that a mistyped URL is reported promptly.
pub const OPEN_RETRY_FOR: Duration = Duration::from_secs(10);

/// How long the server lets a journal connection sit inside a transaction doing nothing before
/// it ends the session. A journal's transactions are a few statements sent back to back; one
/// left open is an engine that was stopped, suspended or cut off mid-write, and the locks it
/// holds (a stack's lease row, the migration lock) would otherwise stop every other engine
/// until it woke. Its writes are rolled back; when it wakes, it finds its lease taken.
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

/// A journal connection's settings: `url`'s, named for `pg_stat_activity`, with the
/// [`IDLE_IN_TRANSACTION`] limit added to any server options the URL sets.
pub fn journal_config(url: &str) -> std::result::Result<postgres::Config, String> {
    let mut config = iade_pg::config(url)?;
    config.application_name("iade-journal");
    let limit = format!("-c idle_in_transaction_session_timeout={}", IDLE_IN_TRANSACTION.as_millis());
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} {limit}"),
        _ => limit,
    };
    config.options(&options);
    Ok(config)
}

/// The channel `LISTEN` waits on; the payload is the stack's id.
const CHANNEL: &str = "iade_journal";

/// Whether a URL names a PostgreSQL journal rather than a file.
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// A journal of one stack in a shared database.
pub struct PgJournal {
    client: Mutex<Client>,
    config: postgres::Config,
    /// The CA file that verifies the server's certificate over TCP, if one was given.
    ca: Option<std::path::PathBuf>,
    location: String,
    stack: StackId,
    /// The stack's row, once it exists (an engine taking the lease creates it; reading a
    /// stack that never ran writes nothing).
    id: Mutex<Option<i64>>,
}

impl std::fmt::Debug for PgJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgJournal").field("location", &self.location).field("stack", &self.stack).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing our own plain data types cannot fail (no maps with non-string keys).
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Whether an error is the connection's (the server restarting, a network cut): worth
/// retrying on a new connection.
fn is_connection_error(e: &postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c == "57P01"
                || c == "57P02"
                || c == "57P03"
                || c == "25P03"
                || c == "40001"
                || c == "40P01"
        }
        None => e.is_closed() || e.as_db_error().is_none(),
    }
}

/// A journal error from a client error.
fn backend(location: &str, e: &postgres::Error) -> JournalError {
    JournalError::Backend {
        location: location.to_string(),
        message: iade_pg::describe(e),
        transient: is_connection_error(e),
    }
}

/// What a row's column says, or a [`JournalError`] naming a value this build does not know.
fn parsed<T>(location: &str, what: &str, text: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| JournalError::Corrupt {
        location: location.to_string(),
        detail: format!("unknown {what} `{text}`"),
    })
}

fn json<T: serde::de::DeserializeOwned>(location: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| JournalError::Corrupt { location: location.to_string(), detail: format!("{e}: {text}") })
}

const RUN_COLUMNS: &str = "id, mode, status, started_ms, finished_ms, pid, host, summary";

fn run_row(location: &str, r: &Row) -> Result<RunRow> {
    Ok(RunRow {
        id: RunId(r.get(0)),
        mode: parsed(location, "run mode", r.get(1), RunMode::parse)?,
        status: parsed(location, "run status", r.get(2), RunStatus::parse)?,
        started_ms: r.get(3),
        finished_ms: r.get(4),
        pid: u32::try_from(r.get::<_, i64>(5)).unwrap_or(0),
        host: r.get(6),
        summary: json::<RunSummary>(location, r.get(7)).unwrap_or_default(),
    })
}

const STEP_COLUMNS: &str = "id, run, resource, action, digest, idempotency_key, status, started_ms, finished_ms, error, changes, stdout, stderr";

fn step_row(location: &str, r: &Row) -> Result<StepRow> {
    let stdout: Option<String> = r.get(11);
    let stderr: Option<String> = r.get(12);
    Ok(StepRow {
        id: StepId(r.get(0)),
        run: RunId(r.get(1)),
        resource: r.get(2),
        action: parsed(location, "step action", r.get(3), StepAction::parse)?,
        digest: r.get(4),
        idempotency_key: r.get(5),
        status: parsed(location, "step status", r.get(6), StepStatus::parse)?,
        started_ms: r.get(7),
        finished_ms: r.get(8),
        error: r.get(9),
        changes: json::<Vec<StepChange>>(location, r.get(10))?,
        output: match (stdout, stderr) {
            (None, None) => None,
            (o, e) => Some(Output { stdout: o.unwrap_or_default(), stderr: e.unwrap_or_default() }),
        },
    })
}

/// An error inside a write: the client's, or the lease lost.
enum WriteError {
    Postgres(postgres::Error),
    LeaseLost,
}

impl From<postgres::Error> for WriteError {
    fn from(e: postgres::Error) -> Self {
        WriteError::Postgres(e)
    }
}

type Tx<'a> = Transaction<'a>;

impl PgJournal {
    /// Opens the journal of `stack` in the database `url` names (a libpq URI), migrating the
    /// schema; `ca` verifies the server's certificate over TCP.
    pub fn open(url: &str, ca: Option<&std::path::Path>, stack: &StackId) -> Result<PgJournal> {
        let location = iade_pg::without_password(url);
        let config = journal_config(url).map_err(|e| JournalError::Backend {
            location: location.clone(),
            message: format!("the journal URL is {e}"),
            transient: false,
        })?;
        let ca = ca.map(std::path::Path::to_path_buf);
        let tls_ca = ca.clone();
        // The server may go away between connecting and migrating: both are retried together.
        let deadline = Instant::now() + OPEN_RETRY_FOR;
        let client = loop {
            let mut client =
                connect_retrying(&config, &location, OPEN_RETRY_FOR, || iade_pg::tls(tls_ca.as_deref()))?;
            match schema::migrate(&mut client) {
                Ok(()) => break client,
                Err(schema::MigrateError::Postgres(e))
                    if is_connection_error(&e) && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(schema::MigrateError::Postgres(e)) => return Err(backend(&location, &e)),
                Err(schema::MigrateError::TooNew(found)) => {
                    return Err(JournalError::TooNew {
                        location: location.clone(),
                        found,
                        known: schema::VERSION,
                    });
                }
            }
        };
        let journal = PgJournal {
            client: Mutex::new(client),
            config,
            ca,
            location,
            stack: stack.clone(),
            id: Mutex::new(None),
        };
        journal.resolve()?;
        Ok(journal)
    }

    /// The stack's row id, if the stack has one yet.
    fn resolve(&self) -> Result<Option<i64>> {
        if let Some(id) = *lock(&self.id) {
            return Ok(Some(id));
        }
        let (name, host) = (self.stack.name.clone(), self.stack.host.clone());
        let found = self.with(|c| {
            c.query_opt("SELECT id FROM iade.stacks WHERE name = $1 AND host = $2", &[&name, &host])
        })?;
        let id = found.map(|r| r.get::<_, i64>(0));
        *lock(&self.id) = id;
        Ok(id)
    }

    /// Runs `f` on the connection, connecting again and retrying while the server is away.
    fn with<T>(
        &self,
        mut f: impl FnMut(&mut Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let deadline = Instant::now() + RETRY_FOR;
        let mut pause = Duration::from_millis(50);
        loop {
            let mut client = lock(&self.client);
            let result = if client.is_closed() {
                match iade_pg::connect(&self.config, || iade_pg::tls(self.ca.as_deref())) {
                    Ok(fresh) => {
                        *client = fresh;
                        f(&mut client)
                    }
                    Err(iade_pg::ConnectError::Postgres(e)) => Err(e),
                    Err(iade_pg::ConnectError::Tls(m)) => {
                        return Err(JournalError::Backend {
                            location: self.location.clone(),
                            message: m,
                            transient: false,
                        });
                    }
                }
            } else {
                f(&mut client)
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if is_connection_error(&e) && Instant::now() < deadline => {
                    drop(client);
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(backend(&self.location, &e)),
            }
        }
    }

    /// Runs `f` in one transaction that commits only while `epoch` holds the stack's lease:
    /// every write of a run goes through here. The lease row is locked first, so a takeover
    /// waits for the commit or finds it done.
    fn write<T>(
        &self,
        epoch: Epoch,
        mut f: impl FnMut(&mut Tx<'_>, i64) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let Some(stack) = self.resolve()? else { return Err(JournalError::LeaseLost(epoch)) };
        let outcome = self.with(|c| {
            let mut tx = c.transaction()?;
            let current: Option<i64> = tx
                .query_opt("SELECT epoch FROM iade.leases WHERE stack = $1 FOR UPDATE", &[&stack])?
                .map(|r| r.get(0));
            if current != Some(epoch.0) {
                return Ok(Err(WriteError::LeaseLost));
            }
            let out = match f(&mut tx, stack) {
                Ok(v) => v,
                // The connection's trouble is retried on a new one; anything else is final.
                Err(e) if is_connection_error(&e) => return Err(e),
                Err(e) => return Ok(Err(WriteError::Postgres(e))),
            };
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &stack.to_string()])?;
            tx.commit()?;
            Ok(Ok(out))
        })?;
        match outcome {
            Ok(v) => Ok(v),
            Err(WriteError::LeaseLost) => Err(JournalError::LeaseLost(epoch)),
            Err(WriteError::Postgres(e)) => Err(backend(&self.location, &e)),
        }
    }

    fn insert_drift(
        tx: &mut Tx<'_>,
        stack: i64,
        run: RunId,
        drift: &[Drift],
        now: i64,
    ) -> std::result::Result<(), postgres::Error> {
        if drift.is_empty() {
            return Ok(());
        }
        // One statement for the batch: the rows travel as arrays.
        let resources: Vec<&str> = drift.iter().map(|d| d.resource.as_str()).collect();
        let fields: Vec<&str> = drift.iter().map(|d| d.field.as_str()).collect();
        let observed: Vec<Option<&str>> = drift.iter().map(|d| d.observed.as_deref()).collect();
        let intended: Vec<&str> = drift.iter().map(|d| d.intended.as_str()).collect();
        tx.execute(
            "INSERT INTO iade.drift (run, stack, resource, field, observed, intended, detected_ms)
             SELECT $1, $2, r, f, o, i, $3 FROM unnest($4::text[], $5::text[], $6::text[], $7::text[]) AS u(r, f, o, i)",
            &[&run.0, &stack, &now, &resources, &fields, &observed, &intended],
        )?;
        Ok(())
    }

    fn insert_errors(
        tx: &mut Tx<'_>,
        stack: i64,
        run: RunId,
        errors: &[ResourceError],
    ) -> std::result::Result<(), postgres::Error> {
        if errors.is_empty() {
            return Ok(());
        }
        let stmt = tx.prepare(
            "INSERT INTO iade.errors (run, stack, resource, field, message) VALUES ($1, $2, $3, $4, $5)",
        )?;
        for e in errors {
            tx.execute(&stmt, &[&run.0, &stack, &e.resource, &e.field, &e.message])?;
        }
        Ok(())
    }

    /// Rows of a read that concerns this stack; none when the stack has never run.
    fn read(&self, sql: &str, args: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<Vec<Row>> {
        let Some(stack) = self.resolve()? else { return Ok(Vec::new()) };
        let mut all: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&stack];
        all.extend_from_slice(args);
        self.with(|c| c.query(sql, &all))
    }
}

/// The id of a stack's row, made if it is not there yet.
fn upsert_stack(tx: &mut Tx<'_>, name: &str, host: &str) -> std::result::Result<i64, postgres::Error> {
    Ok(tx
        .query_one(
            "INSERT INTO iade.stacks (name, host) VALUES ($1, $2)
             ON CONFLICT (name, host) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            &[&name, &host],
        )?
        .get(0))
}

/// Connects, retrying while the server is starting or away, for up to `window`.
fn connect_retrying(
    config: &postgres::Config,
    location: &str,
    window: Duration,
    tls: impl Fn() -> std::result::Result<iade_pg::MakeTlsConnector, String>,
) -> Result<Client> {
    let deadline = Instant::now() + window;
    let mut pause = Duration::from_millis(50);
    loop {
        match iade_pg::connect(config, &tls) {
            Ok(c) => return Ok(c),
            Err(iade_pg::ConnectError::Postgres(e))
                if is_connection_error(&e) && Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(iade_pg::ConnectError::Postgres(e)) => return Err(backend(location, &e)),
            Err(iade_pg::ConnectError::Tls(m)) => {
                return Err(JournalError::Backend {
                    location: location.to_string(),
                    message: m,
                    transient: false,
                });
            }
        }
    }
}

impl Store for PgJournal {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn stack(&self) -> &StackId {
        &self.stack
    }

    fn acquire_lease(&mut self, claim: &LeaseClaim, gone: &dyn Fn(&Holder) -> bool) -> Result<LeaseOutcome> {
        let (name, host) = (self.stack.name.clone(), self.stack.host.clone());
        let ttl = ms(claim.ttl);
        let outcome = self.with(|c| {
            let mut tx = c.transaction()?;
            let stack = upsert_stack(&mut tx, &name, &host)?;
            tx.execute("INSERT INTO iade.leases (stack) VALUES ($1) ON CONFLICT (stack) DO NOTHING", &[&stack])?;
            let row = tx.query_one(
                "SELECT holder_pid, holder_host, since_ms, expires_ms, epoch, watch FROM iade.leases WHERE stack = $1 FOR UPDATE",
                &[&stack],
            )?;
            let now = now_ms();
            let (pid, holder_host, since, expires): (Option<i64>, Option<String>, Option<i64>, Option<i64>) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let epoch: i64 = row.get(4);
            if let (Some(pid), Some(holder_host), Some(since_ms), Some(expires_ms)) = (pid, holder_host, since, expires) {
                let holder = Holder {
                    pid: u32::try_from(pid).unwrap_or(0),
                    host: holder_host,
                    since_ms,
                    expires_ms,
                    watch: row.get(5),
                };
                if expires_ms > now && !gone(&holder) {
                    tx.rollback()?;
                    return Ok((stack, LeaseOutcome::Held(holder)));
                }
            }
            let epoch = epoch + 1;
            tx.execute(
                "UPDATE iade.leases SET holder_pid = $2, holder_host = $3, since_ms = $4, expires_ms = $5, epoch = $6, watch = $7 WHERE stack = $1",
                &[&stack, &i64::from(claim.pid), &claim.host, &now, &(now + ttl), &epoch, &claim.watch],
            )?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &stack.to_string()])?;
            tx.commit()?;
            Ok((stack, LeaseOutcome::Acquired { epoch: Epoch(epoch) }))
        })?;
        *lock(&self.id) = Some(outcome.0);
        Ok(outcome.1)
    }

    fn renew_lease(&mut self, epoch: Epoch, ttl: Duration) -> Result<()> {
        let Some(stack) = self.resolve()? else { return Err(JournalError::LeaseLost(epoch)) };
        let n = self.with(|c| {
            c.execute(
                "UPDATE iade.leases SET expires_ms = $3 WHERE stack = $1 AND epoch = $2 AND holder_pid IS NOT NULL",
                &[&stack, &epoch.0, &(now_ms() + ms(ttl))],
            )
        })?;
        if n == 0 { Err(JournalError::LeaseLost(epoch)) } else { Ok(()) }
    }

    fn release_lease(&mut self, epoch: Epoch) -> Result<()> {
        let Some(stack) = self.resolve()? else { return Ok(()) };
        self.with(|c| {
            c.execute(
                "UPDATE iade.leases SET holder_pid = NULL, holder_host = NULL, expires_ms = 0 WHERE stack = $1 AND epoch = $2",
                &[&stack, &epoch.0],
            )
        })?;
        Ok(())
    }

    fn holder(&self) -> Result<Option<Holder>> {
        let rows = self.read(
            "SELECT holder_pid, holder_host, since_ms, expires_ms, watch FROM iade.leases WHERE stack = $1 AND holder_pid IS NOT NULL",
            &[],
        )?;
        Ok(rows.first().map(|r| Holder {
            pid: u32::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            host: r.get(1),
            since_ms: r.get(2),
            expires_ms: r.get(3),
            watch: r.get(4),
        }))
    }

    fn interrupted(&self) -> Result<Interrupted> {
        let runs = self
            .read("SELECT id FROM iade.runs WHERE stack = $1 AND status = 'running' ORDER BY id", &[])?
            .iter()
            .map(|r| RunId(r.get(0)))
            .collect();
        let steps = self
            .read(&format!("SELECT {STEP_COLUMNS} FROM iade.steps WHERE stack = $1 AND status = 'started' ORDER BY id"), &[])?
            .iter()
            .map(|r| step_row(&self.location, r))
            .collect::<Result<_>>()?;
        Ok(Interrupted { runs, steps })
    }

    fn settle_interrupted(
        &mut self,
        epoch: Epoch,
        runs: &[RunId],
        steps: &[(StepId, StepStatus)],
        notified: &[PendingRefresh],
    ) -> Result<()> {
        self.write(epoch, |tx, stack| {
            let now = now_ms();
            for p in notified {
                tx.execute(
                    "INSERT INTO iade.pending_refreshes (stack, resource, notified_by, run, since_ms) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (stack, resource, notified_by) DO NOTHING",
                    &[&stack, &p.resource, &p.notified_by, &p.run.0, &now],
                )?;
            }
            for (id, status) in steps {
                tx.execute(
                    "UPDATE iade.steps SET status = $1, finished_ms = $2 WHERE id = $3 AND stack = $4",
                    &[&status.as_str(), &now, &id.0, &stack],
                )?;
            }
            for r in runs {
                tx.execute(
                    "UPDATE iade.runs SET status = 'interrupted', finished_ms = $1 WHERE id = $2 AND stack = $3",
                    &[&now, &r.0, &stack],
                )?;
            }
            Ok(())
        })
    }

    fn begin_run(&mut self, epoch: Epoch, start: &RunStart) -> Result<RunId> {
        self.write(epoch, |tx, stack| {
            let now = now_ms();
            let run = RunId(
                tx.query_one(
                    "INSERT INTO iade.runs (stack, mode, status, started_ms, pid, host, epoch, summary)
                     VALUES ($1, $2, 'running', $3, $4, $5, $6, '{}') RETURNING id",
                    &[&stack, &start.mode.as_str(), &now, &i64::from(start.pid), &start.host, &epoch.0],
                )?
                .get(0),
            );
            Self::insert_drift(tx, stack, run, &start.drift, now)?;
            Self::insert_errors(tx, stack, run, &start.errors)?;
            Ok(run)
        })
    }

    fn record_intents(
        &mut self,
        epoch: Epoch,
        run: RunId,
        steps: &[StepIntent],
        drift: &[Drift],
        errors: &[ResourceError],
    ) -> Result<Vec<StepId>> {
        self.write(epoch, |tx, stack| {
            let now = now_ms();
            // A retry after a commit lost with its connection finds the steps already there.
            let keys: Vec<&str> = steps.iter().map(|s| s.idempotency_key.as_str()).collect();
            let existing = tx.query(
                "SELECT idempotency_key, id FROM iade.steps WHERE run = $1 AND idempotency_key = ANY($2) AND status = 'started'",
                &[&run.0, &keys],
            )?;
            if !steps.is_empty() && existing.len() == steps.len() {
                let by_key: std::collections::HashMap<String, i64> =
                    existing.iter().map(|r| (r.get(0), r.get(1))).collect();
                return Ok(steps.iter().map(|s| StepId(by_key.get(&s.idempotency_key).copied().unwrap_or(0))).collect());
            }
            Self::insert_drift(tx, stack, run, drift, now)?;
            Self::insert_errors(tx, stack, run, errors)?;
            if steps.is_empty() {
                return Ok(Vec::new());
            }
            // One statement for the wave: the rows travel as arrays, in order.
            let resources: Vec<&str> = steps.iter().map(|s| s.resource.as_str()).collect();
            let actions: Vec<&str> = steps.iter().map(|s| s.action.as_str()).collect();
            let digests: Vec<&str> = steps.iter().map(|s| s.digest.as_str()).collect();
            let keys: Vec<&str> = steps.iter().map(|s| s.idempotency_key.as_str()).collect();
            let changes: Vec<String> = steps.iter().map(|s| to_json(&s.changes)).collect();
            let rows = tx.query(
                "INSERT INTO iade.steps (run, stack, resource, action, digest, idempotency_key, status, started_ms, changes)
                 SELECT $1, $2, r, a, d, k, 'started', $3, c
                 FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY AS u(r, a, d, k, c, n)
                 ORDER BY n RETURNING id",
                &[&run.0, &stack, &now, &resources, &actions, &digests, &keys, &changes],
            )?;
            // Ids are handed out in the order rows are inserted, which is the array's.
            let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            ids.sort_unstable();
            Ok(ids.into_iter().map(StepId).collect())
        })
    }

    fn record_outcomes(&mut self, epoch: Epoch, run: RunId, wave: &WaveOutcome) -> Result<()> {
        self.write(epoch, |tx, stack| {
            let now = now_ms();
            if !wave.steps.is_empty() {
                let ids: Vec<i64> = wave.steps.iter().map(|o| o.step.0).collect();
                let statuses: Vec<&str> = wave.steps.iter().map(|o| o.status.as_str()).collect();
                let errors: Vec<Option<&str>> = wave.steps.iter().map(|o| o.error.as_deref()).collect();
                let outs: Vec<Option<&str>> =
                    wave.steps.iter().map(|o| o.output.as_ref().map(|x| x.stdout.as_str())).collect();
                let errs: Vec<Option<&str>> =
                    wave.steps.iter().map(|o| o.output.as_ref().map(|x| x.stderr.as_str())).collect();
                tx.execute(
                    "UPDATE iade.steps s SET status = u.st, finished_ms = $1, error = u.e, stdout = u.o, stderr = u.x
                     FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(id, st, e, o, x)
                     WHERE s.id = u.id AND s.stack = $7",
                    &[&now, &ids, &statuses, &errors, &outs, &errs, &stack],
                )?;
            }
            if !wave.corrected.is_empty() {
                tx.execute(
                    "UPDATE iade.drift SET corrected_ms = $1 WHERE run = $2 AND resource = ANY($3) AND corrected_ms IS NULL",
                    &[&now, &run.0, &wave.corrected],
                )?;
            }
            for p in &wave.notified {
                tx.execute(
                    "INSERT INTO iade.pending_refreshes (stack, resource, notified_by, run, since_ms) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (stack, resource, notified_by) DO NOTHING",
                    &[&stack, &p.resource, &p.notified_by, &p.run.0, &now],
                )?;
            }
            if !wave.refreshed.is_empty() {
                tx.execute(
                    "DELETE FROM iade.pending_refreshes WHERE stack = $1 AND resource = ANY($2)",
                    &[&stack, &wave.refreshed],
                )?;
            }
            if !wave.applied.is_empty() {
                let resources: Vec<&str> = wave.applied.iter().map(|a| a.resource.as_str()).collect();
                let kinds: Vec<&str> = wave.applied.iter().map(|a| a.kind.as_str()).collect();
                let providers: Vec<&str> = wave.applied.iter().map(|a| a.provider.as_str()).collect();
                let instances: Vec<Option<&str>> = wave.applied.iter().map(|a| a.instance.as_deref()).collect();
                let identities: Vec<String> = wave.applied.iter().map(|a| to_json(&a.identity)).collect();
                let protected: Vec<bool> = wave.applied.iter().map(|a| a.protected).collect();
                tx.execute(
                    "INSERT INTO iade.applied (stack, resource, kind, provider, instance, identity, applied_ms, protected)
                     SELECT DISTINCT ON (r) $1, r, k, p, i, d, $2, pr
                     FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[]) WITH ORDINALITY AS u(r, k, p, i, d, pr, n)
                     ORDER BY r, n DESC
                     ON CONFLICT (stack, resource) DO UPDATE SET kind = EXCLUDED.kind, provider = EXCLUDED.provider,
                        instance = EXCLUDED.instance, identity = EXCLUDED.identity, applied_ms = EXCLUDED.applied_ms,
                        protected = EXCLUDED.protected",
                    &[&stack, &now, &resources, &kinds, &providers, &instances, &identities, &protected],
                )?;
            }
            if !wave.deleted.is_empty() {
                tx.execute("DELETE FROM iade.applied WHERE stack = $1 AND resource = ANY($2)", &[&stack, &wave.deleted])?;
            }
            Ok(())
        })
    }

    fn finish_run(
        &mut self,
        epoch: Epoch,
        run: RunId,
        status: RunStatus,
        summary: &RunSummary,
        findings: &[Finding],
    ) -> Result<()> {
        self.write(epoch, |tx, stack| {
            // A retry after a commit lost with its connection finds the run finished.
            let done: bool = tx
                .query_opt("SELECT 1 FROM iade.runs WHERE id = $1 AND status <> 'running'", &[&run.0])?
                .is_some();
            if done {
                return Ok(());
            }
            if !findings.is_empty() {
                let stmt = tx.prepare(
                    "INSERT INTO iade.findings (run, stack, control, severity, subject, outcome, message, evidence, intent_compliant, location)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )?;
                for f in findings {
                    let location = f.location.as_ref().map(to_json);
                    tx.execute(
                        &stmt,
                        &[
                            &run.0,
                            &stack,
                            &f.control,
                            &f.severity.as_str(),
                            &f.subject,
                            &f.outcome.as_str(),
                            &f.message,
                            &to_json(&f.evidence),
                            &f.intent_compliant,
                            &location,
                        ],
                    )?;
                }
            }
            tx.execute(
                "UPDATE iade.runs SET status = $1, finished_ms = $2, summary = $3 WHERE id = $4 AND stack = $5",
                &[&status.as_str(), &now_ms(), &to_json(summary), &run.0, &stack],
            )?;
            Ok(())
        })
    }

    fn pending_refreshes(&self) -> Result<Vec<PendingRefresh>> {
        Ok(self
            .read(
                "SELECT resource, notified_by, run FROM iade.pending_refreshes WHERE stack = $1 ORDER BY resource, notified_by",
                &[],
            )?
            .iter()
            .map(|r| PendingRefresh { resource: r.get(0), notified_by: r.get(1), run: RunId(r.get(2)) })
            .collect())
    }

    fn applied(&self) -> Result<Vec<AppliedIdentity>> {
        self.read(
            "SELECT resource, kind, provider, instance, identity, protected FROM iade.applied WHERE stack = $1 ORDER BY resource",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(AppliedIdentity {
                resource: r.get(0),
                kind: r.get(1),
                provider: r.get(2),
                instance: r.get(3),
                identity: {
                    let text: &str = r.get(4);
                    iade_journal::identity_from_json(text).map_err(|e| JournalError::Corrupt {
                        location: self.location.clone(),
                        detail: format!("{e}: {text}"),
                    })?
                },
                protected: r.get(5),
            })
        })
        .collect()
    }

    fn request_pass(&mut self, request: &PassRequest) -> Result<RequestId> {
        let (name, host) = (self.stack.name.clone(), self.stack.host.clone());
        let (stack, id) = self.with(|c| {
            let mut tx = c.transaction()?;
            let stack = upsert_stack(&mut tx, &name, &host)?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO iade.requests (stack, requested_ms, digest) VALUES ($1, $2, $3) RETURNING id",
                    &[&stack, &now_ms(), &request.digest],
                )?
                .get(0);
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &stack.to_string()])?;
            tx.commit()?;
            Ok((stack, id))
        })?;
        *lock(&self.id) = Some(stack);
        Ok(RequestId(id))
    }

    fn pending_requests(&self) -> Result<Vec<(RequestId, PassRequest)>> {
        Ok(self
            .read(
                "SELECT id, digest FROM iade.requests WHERE stack = $1 AND served_run IS NULL AND refused IS NULL ORDER BY id",
                &[],
            )?
            .iter()
            .map(|r| (RequestId(r.get(0)), PassRequest { digest: r.get(1) }))
            .collect())
    }

    fn answer_requests(&mut self, answers: &[(RequestId, RequestAnswer)]) -> Result<()> {
        let Some(stack) = self.resolve()? else { return Ok(()) };
        self.with(|c| {
            let mut tx = c.transaction()?;
            for (id, answer) in answers {
                let (run, refused) = match answer {
                    RequestAnswer::Served(run) => (Some(run.0), None),
                    RequestAnswer::Refused(why) => (None, Some(why.as_str())),
                };
                tx.execute(
                    "UPDATE iade.requests SET served_run = $1, refused = $2 WHERE id = $3 AND stack = $4",
                    &[&run, &refused, &id.0, &stack],
                )?;
            }
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &stack.to_string()])?;
            tx.commit()
        })
    }

    fn request_answer(&self, request: RequestId) -> Result<Option<RequestAnswer>> {
        let rows = self.read(
            "SELECT served_run, refused FROM iade.requests WHERE stack = $1 AND id = $2",
            &[&request.0],
        )?;
        Ok(rows.first().and_then(|r| match (r.get::<_, Option<i64>>(0), r.get::<_, Option<String>>(1)) {
            (Some(run), _) => Some(RequestAnswer::Served(RunId(run))),
            (None, Some(why)) => Some(RequestAnswer::Refused(why)),
            _ => None,
        }))
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        let before = filter.before.map_or(i64::MAX, |r| r.0);
        let limit = to_i64(filter.limit);
        let rows = match &filter.resource {
            None => self.read(
                &format!("SELECT {RUN_COLUMNS} FROM iade.runs WHERE stack = $1 AND id < $2 ORDER BY id DESC LIMIT $3"),
                &[&before, &limit],
            )?,
            Some(resource) => self.read(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM iade.runs WHERE stack = $1 AND id < $2 AND id IN (
                        SELECT run FROM iade.steps WHERE stack = $1 AND resource = $4
                        UNION SELECT run FROM iade.drift WHERE stack = $1 AND resource = $4
                        UNION SELECT run FROM iade.errors WHERE stack = $1 AND resource = $4
                        UNION SELECT run FROM iade.findings WHERE stack = $1 AND subject = $4)
                     ORDER BY id DESC LIMIT $3"
                ),
                &[&before, &limit, resource],
            )?,
        };
        rows.iter().map(|r| run_row(&self.location, r)).collect()
    }

    fn run(&self, id: RunId) -> Result<Option<RunRow>> {
        let rows = self
            .read(&format!("SELECT {RUN_COLUMNS} FROM iade.runs WHERE stack = $1 AND id = $2"), &[&id.0])?;
        rows.first().map(|r| run_row(&self.location, r)).transpose()
    }

    fn steps(&self, run: RunId) -> Result<Vec<StepRow>> {
        self.read(
            &format!("SELECT {STEP_COLUMNS} FROM iade.steps WHERE stack = $1 AND run = $2 ORDER BY id"),
            &[&run.0],
        )?
        .iter()
        .map(|r| step_row(&self.location, r))
        .collect()
    }

    fn drift(&self, run: RunId) -> Result<Vec<DriftRow>> {
        Ok(self
            .read(
                "SELECT run, resource, field, observed, intended, detected_ms, corrected_ms FROM iade.drift
                 WHERE stack = $1 AND run = $2 ORDER BY id",
                &[&run.0],
            )?
            .iter()
            .map(|r| DriftRow {
                run: RunId(r.get(0)),
                resource: r.get(1),
                field: r.get(2),
                observed: r.get(3),
                intended: r.get(4),
                detected_ms: r.get(5),
                corrected_ms: r.get(6),
            })
            .collect())
    }

    fn errors(&self, run: RunId) -> Result<Vec<ResourceError>> {
        Ok(self
            .read(
                "SELECT resource, field, message FROM iade.errors WHERE stack = $1 AND run = $2 ORDER BY id",
                &[&run.0],
            )?
            .iter()
            .map(|r| ResourceError { resource: r.get(0), field: r.get(1), message: r.get(2) })
            .collect())
    }

    fn findings(&self, run: RunId) -> Result<Vec<Finding>> {
        self.read(
            "SELECT control, severity, subject, outcome, message, evidence, intent_compliant, location FROM iade.findings
             WHERE stack = $1 AND run = $2 ORDER BY id",
            &[&run.0],
        )?
        .iter()
        .map(|r| {
            let location: Option<String> = r.get(7);
            Ok(Finding {
                control: r.get(0),
                severity: parsed(&self.location, "severity", r.get(1), iade_intent::Severity::parse)?,
                subject: r.get(2),
                outcome: parsed(&self.location, "finding outcome", r.get(3), FindingOutcome::parse)?,
                message: r.get(4),
                evidence: json(&self.location, r.get(5))?,
                intent_compliant: r.get(6),
                location: location.map(|l| json(&self.location, &l)).transpose()?,
            })
        })
        .collect()
    }

    fn prune(&mut self, retention: &Retention) -> Result<PruneReport> {
        let Some(stack) = self.resolve()? else { return Ok(PruneReport { detail_runs: 0, runs: 0 }) };
        let now = now_ms();
        let detail_before = now - ms(retention.detail_age);
        let summary_before = now - ms(retention.summary_age);
        let keep = to_i64(retention.detail_runs);
        self.with(|c| {
            let mut tx = c.transaction()?;
            // The newest `detail_runs` runs of this stack keep their detail; runs still
            // `running` are someone's to resume and are never pruned.
            let detail: Vec<i64> = tx
                .query(
                    "SELECT id FROM iade.runs r WHERE stack = $1 AND status <> 'running' AND NOT detail_pruned
                     AND (started_ms < $2 OR started_ms < $3
                          OR id < COALESCE((SELECT min(id) FROM (SELECT id FROM iade.runs WHERE stack = $1 ORDER BY id DESC LIMIT $4) k), 0))",
                    &[&stack, &detail_before, &summary_before, &keep],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for table in ["steps", "drift", "errors", "findings"] {
                tx.execute(&format!("DELETE FROM iade.{table} WHERE run = ANY($1)"), &[&detail])?;
            }
            tx.execute("UPDATE iade.runs SET detail_pruned = TRUE WHERE id = ANY($1)", &[&detail])?;
            let runs = tx.execute(
                "DELETE FROM iade.runs WHERE stack = $1 AND status <> 'running' AND detail_pruned AND started_ms < $2",
                &[&stack, &summary_before],
            )?;
            tx.execute(
                "DELETE FROM iade.requests WHERE stack = $1 AND (served_run IS NOT NULL OR refused IS NOT NULL) AND requested_ms < $2",
                &[&stack, &detail_before],
            )?;
            tx.commit()?;
            Ok(PruneReport { detail_runs: detail.len(), runs: usize::try_from(runs).unwrap_or(0) })
        })
    }

    fn check_integrity(&self) -> Result<Vec<String>> {
        // PostgreSQL keeps its own pages consistent; what the journal can check is its own
        // shape: no step of a finished run is left started.
        Ok(self
            .read(
                "SELECT s.id, s.resource, r.id FROM iade.steps s JOIN iade.runs r ON r.id = s.run
                 WHERE s.stack = $1 AND s.status = 'started' AND r.status NOT IN ('running', 'interrupted')",
                &[],
            )?
            .iter()
            .map(|r| {
                format!(
                    "step {} ({}) of finished run {} is still recorded as started",
                    r.get::<_, i64>(0),
                    r.get::<_, String>(1),
                    r.get::<_, i64>(2)
                )
            })
            .collect())
    }

    fn subscribe(&self) -> Result<Subscription> {
        let listen = |config: &postgres::Config,
                      ca: Option<&std::path::Path>|
         -> std::result::Result<Client, String> {
            let mut client = match iade_pg::connect(config, || iade_pg::tls(ca)) {
                Ok(c) => c,
                Err(iade_pg::ConnectError::Postgres(e)) => return Err(iade_pg::describe(&e)),
                Err(iade_pg::ConnectError::Tls(m)) => return Err(m),
            };
            client.batch_execute(&format!("LISTEN {CHANNEL}")).map_err(|e| iade_pg::describe(&e))?;
            Ok(client)
        };
        let client = listen(&self.config, self.ca.as_deref()).map_err(|message| JournalError::Backend {
            location: self.location.clone(),
            message: format!("cannot listen for changes: {message}"),
            transient: true,
        })?;
        let (tx, rx) = std::sync::mpsc::channel();
        let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let keep = Listening(std::sync::Arc::clone(&alive));
        let (config, ca) = (self.config.clone(), self.ca.clone());
        let (name, host) = (self.stack.name.clone(), self.stack.host.clone());
        let mut id = *lock(&self.id);
        std::thread::spawn(move || {
            let mut client = Some(client);
            while alive.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(c) = client.as_mut() else {
                    // The server went away: listen again once it is back.
                    std::thread::sleep(Duration::from_millis(500));
                    client = listen(&config, ca.as_deref()).ok();
                    if client.is_some() {
                        // Whatever happened meanwhile is unknown: say something may have.
                        let _ = tx.send(());
                    }
                    continue;
                };
                let next = {
                    let mut notices = c.notifications();
                    let mut iter = notices.timeout_iter(Duration::from_secs(1));
                    iter.next().map(|n| n.map(|n| n.payload().to_string()))
                };
                match next {
                    Ok(Some(payload)) => {
                        if id.is_none()
                            && let Ok(Some(row)) = c.query_opt(
                                "SELECT id FROM iade.stacks WHERE name = $1 AND host = $2",
                                &[&name, &host],
                            )
                        {
                            id = Some(row.get(0));
                        }
                        // Notices of every stack arrive: only this one's are passed on.
                        if id.is_some_and(|id| payload == id.to_string()) && tx.send(()).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(_) => client = None,
                }
            }
        });
        Ok(Subscription { changes: rx, keep: Box::new(keep) })
    }
}

/// Keeps a subscription's listening thread going; dropping it stops the thread within a
/// second.
struct Listening(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One line of `iade status`: a stack of the fleet and how it stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StackStatus {
    pub stack: StackId,
    /// The last finished run, if any.
    pub last_run: Option<RunRow>,
    /// Drift found by the last finished run and not corrected by it.
    pub drift_open: i64,
    /// Controls that failed in the last finished run.
    pub failing_controls: Vec<String>,
    /// Who holds the lease now, if anyone.
    pub holder: Option<Holder>,
}

/// The fleet's stacks, one line each, by name then host.
pub fn fleet_status(url: &str, ca: Option<&std::path::Path>) -> Result<Vec<StackStatus>> {
    let location = iade_pg::without_password(url);
    let config = journal_config(url).map_err(|e| JournalError::Backend {
        location: location.clone(),
        message: format!("the journal URL is {e}"),
        transient: false,
    })?;
    let ca = ca.map(std::path::Path::to_path_buf);
    let mut client = connect_retrying(&config, &location, OPEN_RETRY_FOR, || iade_pg::tls(ca.as_deref()))?;
    let exists: bool = client
        .query_one("SELECT to_regclass('iade.stacks') IS NOT NULL", &[])
        .map_err(|e| backend(&location, &e))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT s.name, s.host, r.{}, l.holder_pid, l.holder_host, l.since_ms, l.expires_ms, l.watch,
                    (SELECT count(*) FROM iade.drift d WHERE d.run = r.id AND d.corrected_ms IS NULL),
                    ARRAY(SELECT DISTINCT f.control FROM iade.findings f WHERE f.run = r.id AND f.outcome = 'fail' ORDER BY 1)
                 FROM iade.stacks s
                 LEFT JOIN LATERAL (SELECT * FROM iade.runs WHERE stack = s.id AND status <> 'running' ORDER BY id DESC LIMIT 1) r ON TRUE
                 LEFT JOIN iade.leases l ON l.stack = s.id
                 ORDER BY s.name, s.host",
                RUN_COLUMNS.replace(", ", ", r.")
            ),
            &[],
        )
        .map_err(|e| backend(&location, &e))?;
    rows.iter()
        .map(|r| {
            let last_run = match r.get::<_, Option<i64>>(2) {
                Some(_) => Some(RunRow {
                    id: RunId(r.get(2)),
                    mode: parsed(&location, "run mode", r.get(3), RunMode::parse)?,
                    status: parsed(&location, "run status", r.get(4), RunStatus::parse)?,
                    started_ms: r.get(5),
                    finished_ms: r.get(6),
                    pid: u32::try_from(r.get::<_, i64>(7)).unwrap_or(0),
                    host: r.get(8),
                    summary: json::<RunSummary>(&location, r.get(9)).unwrap_or_default(),
                }),
                None => None,
            };
            let holder = match (r.get::<_, Option<i64>>(10), r.get::<_, Option<String>>(11)) {
                (Some(pid), Some(host)) if r.get::<_, Option<i64>>(13).unwrap_or(0) > now_ms() => {
                    Some(Holder {
                        pid: u32::try_from(pid).unwrap_or(0),
                        host,
                        since_ms: r.get::<_, Option<i64>>(12).unwrap_or(0),
                        expires_ms: r.get::<_, Option<i64>>(13).unwrap_or(0),
                        watch: r.get::<_, Option<bool>>(14).unwrap_or(false),
                    })
                }
                _ => None,
            };
            Ok(StackStatus {
                stack: StackId { name: r.get(0), host: r.get(1) },
                last_run,
                drift_open: r.get(15),
                failing_controls: r.get(16),
                holder,
            })
        })
        .collect()
}
