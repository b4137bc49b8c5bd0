//! The embedded journal: SQLite in WAL mode, one file per stack (`.iade/journal.db` by
//! default), implementing [`iade_journal::Store`].
//!
//! **Invariant:** a wave's intents, the end of a run and a recovered journal's obligations are
//! on disk when their commit returns (`synchronous = FULL`, which syncs the log, and with it
//! every commit before). Other commits (the lease, the start of a run, outcomes, settled steps,
//! pass requests) are made with `NORMAL` and reach the disk with the next of those or when the
//! journal closes; a power cut loses them as a crash just before them would. Every write of a
//! run runs in one immediate transaction that first checks the lease epoch, so batching a
//! wave's intents (and then its outcomes) shares the fsyncs without weakening the order.
//!
//! This crate is the only one that knows SQL for the embedded journal; nothing above it sees
//! rusqlite.

mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use iade_journal::{
    AppliedIdentity, Drift, DriftRow, Epoch, Finding, FindingOutcome, Holder, Interrupted, JournalError,
    LeaseClaim, LeaseOutcome, Output, PassRequest, PendingRefresh, PruneReport, RequestAnswer, RequestId,
    ResourceError, Result, Retention, RunFilter, RunId, RunMode, RunRow, RunStart, RunStatus, RunSummary,
    StackId, StepAction, StepChange, StepId, StepIntent, StepRow, StepStatus, Store, Subscription,
    WaveOutcome, now_ms,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub use schema::{V1 as SCHEMA_V1, VERSION as SCHEMA_VERSION};

/// What [`SqliteJournal::recover`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Where the damaged journal went.
    pub moved_to: PathBuf,
    /// Pending refreshes carried over.
    pub refreshes: usize,
    /// Applied identities carried over.
    pub applied: usize,
    /// What could not be read and is lost.
    pub lost: Vec<String>,
}

/// When a commit reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    /// Before the commit returns: what the caller does next relies on it (`synchronous = FULL`
    /// syncs the log, which holds every commit before this one too).
    Now,
    /// With the next `Now` commit, or when the journal closes (a checkpoint syncs the log
    /// first): `synchronous = NORMAL`, consistent but not yet durable when it returns.
    Later,
}

/// Sets how `conn`'s next commits reach the disk, through a cached statement: a run switches
/// twice per wave, and parsing the pragma each time showed in its profile.
fn set_durability(conn: &Connection, sync: Durability) -> rusqlite::Result<()> {
    let sql = match sync {
        Durability::Now => "PRAGMA synchronous = FULL",
        Durability::Later => "PRAGMA synchronous = NORMAL",
    };
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[derive(Debug)]
pub struct SqliteJournal {
    conn: Connection,
    path: PathBuf,
    stack: StackId,
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A column that holds one of our enums as text; a value this build does not know is an
/// error, never a guess.
fn parsed<T>(idx: usize, text: &str, parse: impl Fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unknown value `{text}`").into(),
        )
    })
}

fn json<T: serde::de::DeserializeOwned>(idx: usize, text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing our own plain data types cannot fail (no maps with non-string keys).
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

const RUN_COLUMNS: &str = "id, mode, status, started_ms, finished_ms, pid, host, summary";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: RunId(r.get(0)?),
        mode: parsed(1, &r.get::<_, String>(1)?, RunMode::parse)?,
        status: parsed(2, &r.get::<_, String>(2)?, RunStatus::parse)?,
        started_ms: r.get(3)?,
        finished_ms: r.get(4)?,
        pid: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
        host: r.get(6)?,
        summary: json::<RunSummary>(7, &r.get::<_, String>(7)?).unwrap_or_default(),
    })
}

const STEP_COLUMNS: &str = "id, run, resource, action, digest, idempotency_key, status, started_ms, finished_ms, error, changes, stdout, stderr";

fn step_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StepRow> {
    let stdout: Option<String> = r.get(11)?;
    let stderr: Option<String> = r.get(12)?;
    Ok(StepRow {
        id: StepId(r.get(0)?),
        run: RunId(r.get(1)?),
        resource: r.get(2)?,
        action: parsed(3, &r.get::<_, String>(3)?, StepAction::parse)?,
        digest: r.get(4)?,
        idempotency_key: r.get(5)?,
        status: parsed(6, &r.get::<_, String>(6)?, StepStatus::parse)?,
        started_ms: r.get(7)?,
        finished_ms: r.get(8)?,
        error: r.get(9)?,
        changes: json::<Vec<StepChange>>(10, &r.get::<_, String>(10)?)?,
        output: match (stdout, stderr) {
            (None, None) => None,
            (o, e) => Some(Output { stdout: o.unwrap_or_default(), stderr: e.unwrap_or_default() }),
        },
    })
}

type Tx<'a> = rusqlite::Transaction<'a>;

impl SqliteJournal {
    /// Opens (or creates) the journal at `path` for `stack`, migrating its schema.
    pub fn open(path: &Path, stack: &StackId) -> Result<SqliteJournal> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| JournalError::Backend {
                location: path.display().to_string(),
                message: format!("cannot create its directory: {e}"),
                transient: false,
            })?;
        }
        let location = path.display().to_string();
        let err = |e: rusqlite::Error| backend(&location, e);
        let mut conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        set_durability(&conn, Durability::Now).map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        // A run reads a few rows and writes a wave at a time: 512 KiB of pages (SQLite's
        // default is 2 MiB) is enough, and the kernel's cache holds the rest of the file.
        conn.pragma_update(None, "cache_size", -512).map_err(err)?;
        schema::migrate(&mut conn).map_err(|e| match e {
            schema::MigrateError::Sqlite(e) => backend(&location, e),
            schema::MigrateError::TooNew(found) => {
                JournalError::TooNew { location: location.clone(), found, known: schema::VERSION }
            }
        })?;
        // A migration is on disk before anything else; from here on, each commit says.
        set_durability(&conn, Durability::Later).map_err(err)?;
        Ok(SqliteJournal { conn, path: path.to_path_buf(), stack: stack.clone() })
    }

    /// Moves a damaged journal aside (`journal.db.damaged-MILLIS`, with its `-wal` and `-shm`)
    /// and starts a fresh one at `path` that carries over the obligations the damaged one still
    /// yields: pending refreshes and applied identities. History is not carried over.
    pub fn recover(path: &Path, stack: &StackId) -> Result<Recovery> {
        let location = path.display().to_string();
        let mut lost = Vec::new();
        let (refreshes, applied) = match SqliteJournal::open_damaged(path, stack) {
            Ok(old) => {
                let refreshes = old.pending_refreshes().unwrap_or_else(|e| {
                    lost.push(format!("pending refreshes: {e}"));
                    Vec::new()
                });
                let applied = old.applied().unwrap_or_else(|e| {
                    lost.push(format!("applied identities: {e}"));
                    Vec::new()
                });
                (refreshes, applied)
            }
            Err(e) => {
                lost.push(format!("every obligation: the journal cannot be read ({e})"));
                (Vec::new(), Vec::new())
            }
        };
        let aside = path.with_file_name(format!(
            "{}.damaged-{}",
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            now_ms()
        ));
        let io = |what: &str, e: std::io::Error| JournalError::Backend {
            location: location.clone(),
            message: format!("cannot {what}: {e}"),
            transient: false,
        };
        std::fs::rename(path, &aside).map_err(|e| io("move the damaged journal aside", e))?;
        for suffix in ["-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", path.display()));
            if from.exists() {
                let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                std::fs::rename(&from, &to).map_err(|e| io("move the damaged journal aside", e))?;
            }
        }
        let mut fresh = SqliteJournal::open(path, stack)?;
        // The obligations carried over must not depend on the damaged file moved aside.
        set_durability(&fresh.conn, Durability::Now).map_err(|e| backend(&location, e))?;
        let tx = fresh.conn.transaction().map_err(|e| backend(&location, e))?;
        for p in &refreshes {
            tx.execute(
                "INSERT OR IGNORE INTO pending_refreshes (resource, notified_by, run, since_ms) VALUES (?1, ?2, ?3, ?4)",
                params![p.resource, p.notified_by, p.run.0, now_ms()],
            )
            .map_err(|e| backend(&location, e))?;
        }
        for a in &applied {
            tx.execute(
                "INSERT OR IGNORE INTO applied (resource, kind, provider, instance, identity, applied_ms, protected) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![a.resource, a.kind, a.provider, a.instance, to_json(&a.identity), now_ms(), a.protected],
            )
            .map_err(|e| backend(&location, e))?;
        }
        tx.commit().map_err(|e| backend(&location, e))?;
        lost.push(
            "whatever stood on the damaged pages: the counts above are what could still be read".into(),
        );
        Ok(Recovery { moved_to: aside, refreshes: refreshes.len(), applied: applied.len(), lost })
    }

    /// Opens a journal to read what it can, without migrating or writing anything.
    fn open_damaged(path: &Path, stack: &StackId) -> Result<SqliteJournal> {
        let location = path.display().to_string();
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| backend(&location, e))?;
        Ok(SqliteJournal { conn, path: path.to_path_buf(), stack: stack.clone() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> JournalError {
        backend(&self.path.display().to_string(), e)
    }

    /// Runs `f` in one immediate transaction that commits only while `epoch` holds the lease,
    /// on disk as `sync` says: every write of a run goes through here.
    fn write<T>(
        &mut self,
        epoch: Epoch,
        sync: Durability,
        f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        if sync == Durability::Later {
            return self.commit(epoch, f);
        }
        set_durability(&self.conn, Durability::Now).map_err(|e| self.err(e))?;
        let out = self.commit(epoch, f);
        // Should going back fail, later commits stay synced at once: slower, never less safe.
        let _ = set_durability(&self.conn, Durability::Later);
        out
    }

    fn commit<T>(&mut self, epoch: Epoch, f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T>) -> Result<T> {
        let location = self.path.display().to_string();
        let e = |source| backend(&location, source);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        let current: Option<i64> =
            tx.query_row("SELECT epoch FROM lease WHERE id = 1", [], |r| r.get(0)).optional().map_err(e)?;
        if current != Some(epoch.0) {
            return Err(JournalError::LeaseLost(epoch));
        }
        let out = f(&tx).map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(out)
    }

    fn insert_drift(tx: &Tx<'_>, run: RunId, drift: &[Drift], now: i64) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO drift (run, resource, field, observed, intended, detected_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for d in drift {
            stmt.execute(params![run.0, d.resource, d.field, d.observed, d.intended, now])?;
        }
        Ok(())
    }

    fn insert_errors(tx: &Tx<'_>, run: RunId, errors: &[ResourceError]) -> rusqlite::Result<()> {
        let mut stmt =
            tx.prepare_cached("INSERT INTO errors (run, resource, field, message) VALUES (?1, ?2, ?3, ?4)")?;
        for e in errors {
            stmt.execute(params![run.0, e.resource, e.field, e.message])?;
        }
        Ok(())
    }

    fn query<T>(
        &self,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map(args, row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<T>>>().map_err(|e| self.err(e))
    }
}

fn backend(location: &str, e: rusqlite::Error) -> JournalError {
    use rusqlite::ErrorCode;
    let code = e.sqlite_error_code();
    match code {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            JournalError::Corrupt { location: location.to_string(), detail: e.to_string() }
        }
        _ => JournalError::Backend {
            location: location.to_string(),
            message: e.to_string(),
            transient: matches!(code, Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)),
        },
    }
}

impl Store for SqliteJournal {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn stack(&self) -> &StackId {
        &self.stack
    }

    fn acquire_lease(&mut self, claim: &LeaseClaim, gone: &dyn Fn(&Holder) -> bool) -> Result<LeaseOutcome> {
        let now = now_ms();
        let location = self.path.display().to_string();
        let e = |source| backend(&location, source);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        type Row = (Option<i64>, Option<String>, Option<i64>, Option<i64>, i64, i64);
        let row: Option<Row> = tx
            .query_row(
                "SELECT holder_pid, holder_host, since_ms, expires_ms, epoch, watch FROM lease WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()
            .map_err(e)?;
        let (pid, host, since, expires, epoch, watch) = row.unwrap_or((None, None, None, None, 0, 0));
        if let (Some(pid), Some(host), Some(since_ms), Some(expires_ms)) = (pid, host, since, expires) {
            let holder = Holder {
                pid: u32::try_from(pid).unwrap_or(0),
                host,
                since_ms,
                expires_ms,
                watch: watch != 0,
            };
            if expires_ms > now && !gone(&holder) {
                return Ok(LeaseOutcome::Held(holder));
            }
        }
        let epoch = epoch + 1;
        // The stack is recorded by the engine that takes its lease: opening a journal to read
        // or check it writes nothing.
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('stack', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
            params![to_json(&self.stack)],
        )
        .map_err(e)?;
        tx.execute(
            "INSERT INTO lease (id, holder_pid, holder_host, since_ms, expires_ms, epoch, watch) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(id) DO UPDATE SET holder_pid = ?1, holder_host = ?2, since_ms = ?3, expires_ms = ?4, epoch = ?5, watch = ?6",
            params![i64::from(claim.pid), claim.host, now, now + ms(claim.ttl), epoch, i64::from(claim.watch)],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(LeaseOutcome::Acquired { epoch: Epoch(epoch) })
    }

    fn renew_lease(&mut self, epoch: Epoch, ttl: Duration) -> Result<()> {
        let n = self
            .conn
            .execute(
                "UPDATE lease SET expires_ms = ?1 WHERE id = 1 AND epoch = ?2 AND holder_pid IS NOT NULL",
                params![now_ms() + ms(ttl), epoch.0],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 { Err(JournalError::LeaseLost(epoch)) } else { Ok(()) }
    }

    fn release_lease(&mut self, epoch: Epoch) -> Result<()> {
        self.conn
            .execute(
                "UPDATE lease SET holder_pid = NULL, holder_host = NULL, expires_ms = 0 WHERE id = 1 AND epoch = ?1",
                params![epoch.0],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn holder(&self) -> Result<Option<Holder>> {
        self.conn
            .query_row(
                "SELECT holder_pid, holder_host, since_ms, expires_ms, watch FROM lease WHERE id = 1 AND holder_pid IS NOT NULL",
                [],
                |r| {
                    Ok(Holder {
                        pid: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        host: r.get(1)?,
                        since_ms: r.get(2)?,
                        expires_ms: r.get(3)?,
                        watch: r.get::<_, i64>(4)? != 0,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn interrupted(&self) -> Result<Interrupted> {
        let runs = self.query("SELECT id FROM runs WHERE status = 'running' ORDER BY id", &[], |r| {
            Ok(RunId(r.get(0)?))
        })?;
        let steps = self.query(
            &format!("SELECT {STEP_COLUMNS} FROM steps WHERE status = 'started' ORDER BY id"),
            &[],
            step_row,
        )?;
        Ok(Interrupted { runs, steps })
    }

    fn settle_interrupted(
        &mut self,
        epoch: Epoch,
        runs: &[RunId],
        steps: &[(StepId, StepStatus)],
        notified: &[PendingRefresh],
    ) -> Result<()> {
        self.write(epoch, Durability::Later, |tx| {
            let now = now_ms();
            for p in notified {
                tx.execute(
                    "INSERT INTO pending_refreshes (resource, notified_by, run, since_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(resource, notified_by) DO NOTHING",
                    params![p.resource, p.notified_by, p.run.0, now],
                )?;
            }
            for (id, status) in steps {
                tx.execute(
                    "UPDATE steps SET status = ?1, finished_ms = ?2 WHERE id = ?3",
                    params![status.as_str(), now, id.0],
                )?;
            }
            for r in runs {
                tx.execute(
                    "UPDATE runs SET status = 'interrupted', finished_ms = ?1 WHERE id = ?2",
                    params![now, r.0],
                )?;
            }
            Ok(())
        })
    }

    fn begin_run(&mut self, epoch: Epoch, start: &RunStart) -> Result<RunId> {
        self.write(epoch, Durability::Later, |tx| {
            let now = now_ms();
            tx.execute(
                "INSERT INTO runs (mode, status, started_ms, pid, host, epoch, summary) VALUES (?1, 'running', ?2, ?3, ?4, ?5, '{}')",
                params![start.mode.as_str(), now, i64::from(start.pid), start.host, epoch.0],
            )?;
            let run = RunId(tx.last_insert_rowid());
            Self::insert_drift(tx, run, &start.drift, now)?;
            Self::insert_errors(tx, run, &start.errors)?;
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
        self.write(epoch, Durability::Now, |tx| {
            let now = now_ms();
            Self::insert_drift(tx, run, drift, now)?;
            Self::insert_errors(tx, run, errors)?;
            let mut ids = Vec::with_capacity(steps.len());
            let mut stmt = tx.prepare_cached(
                "INSERT INTO steps (run, resource, action, digest, idempotency_key, status, started_ms, changes)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'started', ?6, ?7)",
            )?;
            for s in steps {
                stmt.execute(params![
                    run.0,
                    s.resource,
                    s.action.as_str(),
                    s.digest,
                    s.idempotency_key,
                    now,
                    to_json(&s.changes)
                ])?;
                ids.push(StepId(tx.last_insert_rowid()));
            }
            Ok(ids)
        })
    }

    fn record_outcomes(&mut self, epoch: Epoch, run: RunId, wave: &WaveOutcome) -> Result<()> {
        self.write(epoch, Durability::Later, |tx| {
            let now = now_ms();
            {
                let mut stmt = tx.prepare_cached(
                    "UPDATE steps SET status = ?1, finished_ms = ?2, error = ?3, stdout = ?4, stderr = ?5 WHERE id = ?6",
                )?;
                for o in &wave.steps {
                    let (out, err) = match &o.output {
                        Some(output) => (Some(output.stdout.as_str()), Some(output.stderr.as_str())),
                        None => (None, None),
                    };
                    stmt.execute(params![o.status.as_str(), now, o.error, out, err, o.step.0])?;
                }
            }
            {
                let mut stmt = tx.prepare_cached(
                    "UPDATE drift SET corrected_ms = ?1 WHERE run = ?2 AND resource = ?3 AND corrected_ms IS NULL",
                )?;
                for r in &wave.corrected {
                    stmt.execute(params![now, run.0, r])?;
                }
            }
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO pending_refreshes (resource, notified_by, run, since_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(resource, notified_by) DO NOTHING",
                )?;
                for p in &wave.notified {
                    stmt.execute(params![p.resource, p.notified_by, p.run.0, now])?;
                }
            }
            for r in &wave.refreshed {
                tx.execute("DELETE FROM pending_refreshes WHERE resource = ?1", params![r])?;
            }
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO applied (resource, kind, provider, instance, identity, applied_ms, protected) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(resource) DO UPDATE SET kind = ?2, provider = ?3, instance = ?4, identity = ?5, applied_ms = ?6, protected = ?7",
                )?;
                for a in &wave.applied {
                    stmt.execute(params![
                        a.resource,
                        a.kind,
                        a.provider,
                        a.instance,
                        to_json(&a.identity),
                        now,
                        a.protected
                    ])?;
                }
            }
            for r in &wave.deleted {
                tx.execute("DELETE FROM applied WHERE resource = ?1", params![r])?;
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
        self.write(epoch, Durability::Now, |tx| {
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO findings (run, control, severity, subject, outcome, message, evidence, intent_compliant, location)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for f in findings {
                    stmt.execute(params![
                        run.0,
                        f.control,
                        f.severity.as_str(),
                        f.subject,
                        f.outcome.as_str(),
                        f.message,
                        to_json(&f.evidence),
                        f.intent_compliant,
                        f.location.as_ref().map(to_json)
                    ])?;
                }
            }
            tx.execute(
                "UPDATE runs SET status = ?1, finished_ms = ?2, summary = ?3 WHERE id = ?4",
                params![status.as_str(), now_ms(), to_json(summary), run.0],
            )?;
            Ok(())
        })
    }

    fn pending_refreshes(&self) -> Result<Vec<PendingRefresh>> {
        self.query(
            "SELECT resource, notified_by, run FROM pending_refreshes ORDER BY resource, notified_by",
            &[],
            |r| Ok(PendingRefresh { resource: r.get(0)?, notified_by: r.get(1)?, run: RunId(r.get(2)?) }),
        )
    }

    fn applied(&self) -> Result<Vec<AppliedIdentity>> {
        self.query(
            "SELECT resource, kind, provider, instance, identity, protected FROM applied ORDER BY resource",
            &[],
            |r| {
                Ok(AppliedIdentity {
                    resource: r.get(0)?,
                    kind: r.get(1)?,
                    provider: r.get(2)?,
                    instance: r.get(3)?,
                    identity: iade_journal::identity_from_json(&r.get::<_, String>(4)?).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
                    })?,
                    protected: r.get(5)?,
                })
            },
        )
    }

    fn request_pass(&mut self, request: &PassRequest) -> Result<RequestId> {
        self.conn
            .execute(
                "INSERT INTO requests (requested_ms, digest) VALUES (?1, ?2)",
                params![now_ms(), request.digest],
            )
            .map_err(|e| self.err(e))?;
        Ok(RequestId(self.conn.last_insert_rowid()))
    }

    fn pending_requests(&self) -> Result<Vec<(RequestId, PassRequest)>> {
        self.query(
            "SELECT id, digest FROM requests WHERE served_run IS NULL AND refused IS NULL ORDER BY id",
            &[],
            |r| Ok((RequestId(r.get(0)?), PassRequest { digest: r.get(1)? })),
        )
    }

    fn answer_requests(&mut self, answers: &[(RequestId, RequestAnswer)]) -> Result<()> {
        let location = self.path.display().to_string();
        let tx = self.conn.transaction().map_err(|e| backend(&location, e))?;
        for (id, answer) in answers {
            let (run, refused) = match answer {
                RequestAnswer::Served(run) => (Some(run.0), None),
                RequestAnswer::Refused(why) => (None, Some(why.as_str())),
            };
            tx.execute(
                "UPDATE requests SET served_run = ?1, refused = ?2 WHERE id = ?3",
                params![run, refused, id.0],
            )
            .map_err(|e| backend(&location, e))?;
        }
        tx.commit().map_err(|e| backend(&location, e))
    }

    fn request_answer(&self, request: RequestId) -> Result<Option<RequestAnswer>> {
        let row: Option<(Option<i64>, Option<String>)> = self
            .conn
            .query_row("SELECT served_run, refused FROM requests WHERE id = ?1", params![request.0], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(match row {
            Some((Some(run), _)) => Some(RequestAnswer::Served(RunId(run))),
            Some((None, Some(why))) => Some(RequestAnswer::Refused(why)),
            _ => None,
        })
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        let before = filter.before.map_or(i64::MAX, |r| r.0);
        let limit = to_i64(filter.limit);
        match &filter.resource {
            None => self.query(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id < ?1 ORDER BY id DESC LIMIT ?2"),
                &[&before, &limit],
                run_row,
            ),
            Some(resource) => self.query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE id < ?1 AND id IN (
                        SELECT run FROM steps WHERE resource = ?3
                        UNION SELECT run FROM drift WHERE resource = ?3
                        UNION SELECT run FROM errors WHERE resource = ?3
                        UNION SELECT run FROM findings WHERE subject = ?3)
                     ORDER BY id DESC LIMIT ?2"
                ),
                &[&before, &limit, resource],
                run_row,
            ),
        }
    }

    fn run(&self, id: RunId) -> Result<Option<RunRow>> {
        self.conn
            .query_row(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"), params![id.0], run_row)
            .optional()
            .map_err(|e| self.err(e))
    }

    fn steps(&self, run: RunId) -> Result<Vec<StepRow>> {
        self.query(
            &format!("SELECT {STEP_COLUMNS} FROM steps WHERE run = ?1 ORDER BY id"),
            &[&run.0],
            step_row,
        )
    }

    fn drift(&self, run: RunId) -> Result<Vec<DriftRow>> {
        self.query(
            "SELECT run, resource, field, observed, intended, detected_ms, corrected_ms FROM drift WHERE run = ?1 ORDER BY id",
            &[&run.0],
            |r| {
                Ok(DriftRow {
                    run: RunId(r.get(0)?),
                    resource: r.get(1)?,
                    field: r.get(2)?,
                    observed: r.get(3)?,
                    intended: r.get(4)?,
                    detected_ms: r.get(5)?,
                    corrected_ms: r.get(6)?,
                })
            },
        )
    }

    fn errors(&self, run: RunId) -> Result<Vec<ResourceError>> {
        self.query("SELECT resource, field, message FROM errors WHERE run = ?1 ORDER BY id", &[&run.0], |r| {
            Ok(ResourceError { resource: r.get(0)?, field: r.get(1)?, message: r.get(2)? })
        })
    }

    fn findings(&self, run: RunId) -> Result<Vec<Finding>> {
        self.query(
            "SELECT control, severity, subject, outcome, message, evidence, intent_compliant, location FROM findings WHERE run = ?1 ORDER BY id",
            &[&run.0],
            |r| {
                let location: Option<String> = r.get(7)?;
                Ok(Finding {
                    control: r.get(0)?,
                    severity: parsed(1, &r.get::<_, String>(1)?, iade_intent::Severity::parse)?,
                    subject: r.get(2)?,
                    outcome: parsed(3, &r.get::<_, String>(3)?, FindingOutcome::parse)?,
                    message: r.get(4)?,
                    evidence: json(5, &r.get::<_, String>(5)?)?,
                    intent_compliant: r.get(6)?,
                    location: location.map(|l| json(7, &l)).transpose()?,
                })
            },
        )
    }

    fn prune(&mut self, retention: &Retention) -> Result<PruneReport> {
        let location = self.path.display().to_string();
        let e = |source| backend(&location, source);
        let now = now_ms();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        let newest: i64 =
            tx.query_row("SELECT COALESCE(MAX(id), 0) FROM runs", [], |r| r.get(0)).map_err(e)?;
        let keep_from = newest - to_i64(retention.detail_runs) + 1;
        let detail_before = now - ms(retention.detail_age);
        let summary_before = now - ms(retention.summary_age);
        // Runs still `running` are someone's to resume: never pruned.
        let detail: Vec<i64> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id FROM runs WHERE status != 'running' AND detail_pruned = 0
                     AND (id < ?1 OR started_ms < ?2 OR started_ms < ?3)",
                )
                .map_err(e)?;
            let rows =
                stmt.query_map(params![keep_from, detail_before, summary_before], |r| r.get(0)).map_err(e)?;
            rows.collect::<rusqlite::Result<_>>().map_err(e)?
        };
        for run in &detail {
            for table in ["steps", "drift", "errors", "findings"] {
                tx.execute(&format!("DELETE FROM {table} WHERE run = ?1"), params![run]).map_err(e)?;
            }
            tx.execute("UPDATE runs SET detail_pruned = 1 WHERE id = ?1", params![run]).map_err(e)?;
        }
        let runs = tx
            .execute(
                "DELETE FROM runs WHERE status != 'running' AND detail_pruned = 1 AND started_ms < ?1",
                params![summary_before],
            )
            .map_err(e)?;
        tx.execute(
            "DELETE FROM requests WHERE (served_run IS NOT NULL OR refused IS NOT NULL) AND requested_ms < ?1",
            params![detail_before],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        // Give the space back when most of the file is free: a pruned journal should shrink.
        let free: i64 = self.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).map_err(e)?;
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0)).map_err(e)?;
        if free > 256 && free * 4 > pages {
            self.conn.execute_batch("VACUUM").map_err(e)?;
        }
        Ok(PruneReport { detail_runs: detail.len(), runs })
    }

    fn check_integrity(&self) -> Result<Vec<String>> {
        let problems = self.query("PRAGMA quick_check", &[], |r| r.get::<_, String>(0))?;
        Ok(problems
            .into_iter()
            .filter(|p| p != "ok")
            .map(|p| p.replace("*** in database main ***", "").trim().replace('\n', " "))
            .collect())
    }

    fn subscribe(&self) -> Result<Subscription> {
        use notify::Watcher;
        let (tx, rx) = std::sync::mpsc::channel();
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // The directory, not the file: a commit in WAL mode writes `journal.db-wal`, and the
        // database file itself changes only at a checkpoint.
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res
                && matches!(event.kind, notify::EventKind::Modify(_) | notify::EventKind::Create(_))
                && event
                    .paths
                    .iter()
                    .any(|p| p.file_name().is_some_and(|f| f.to_string_lossy().starts_with(&name)))
            {
                let _ = tx.send(());
            }
        })
        .map_err(|e| JournalError::Backend {
            location: self.location(),
            message: format!("cannot watch for changes: {e}"),
            transient: false,
        })?;
        watcher.watch(dir, notify::RecursiveMode::NonRecursive).map_err(|e| JournalError::Backend {
            location: self.location(),
            message: format!("cannot watch `{}` for changes: {e}", dir.display()),
            transient: false,
        })?;
        Ok(Subscription { changes: rx, keep: Box::new(watcher) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(tx: &Tx<'_>) -> rusqlite::Result<i64> {
        tx.query_row("PRAGMA synchronous", [], |r| r.get(0))
    }

    #[test]
    fn a_commit_that_must_be_on_disk_is_synced_and_the_next_is_left_to_the_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stack = StackId { name: "durability".into(), host: "host".into() };
        let mut j = SqliteJournal::open(&dir.path().join("journal.db"), &stack).expect("a new journal opens");
        let claim = LeaseClaim {
            pid: std::process::id(),
            host: "host".into(),
            ttl: Duration::from_secs(60),
            watch: false,
        };
        let LeaseOutcome::Acquired { epoch } = j.acquire_lease(&claim, &|_| false).expect("the lease") else {
            panic!("a new journal's lease is free");
        };
        // 2 is FULL (the log is synced at the commit), 1 is NORMAL.
        assert_eq!(j.write(epoch, Durability::Now, synchronous).expect("a synced commit"), 2);
        assert_eq!(j.write(epoch, Durability::Later, synchronous).expect("a later commit"), 1);
        let start =
            RunStart { mode: RunMode::Converge, pid: 1, host: "host".into(), drift: vec![], errors: vec![] };
        let run = j.begin_run(epoch, &start).expect("a run begins");
        j.record_intents(epoch, run, &[], &[], &[]).expect("intents");
        let after: i64 = j.conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("the pragma");
        assert_eq!(after, 1, "a synced commit leaves the journal as it found it");
    }
}
