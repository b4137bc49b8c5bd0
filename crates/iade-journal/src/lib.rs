//! The journal: an embedded SQLite database (WAL) that records runs, steps, drift and
//! findings, and holds the stack's lease.
//!
//! It is a **history, never a source of truth**: nothing read from it decides what the
//! environment looks like; a resumed run re-observes. Two orderings are what it guarantees:
//! a step's intent is committed before its side effect starts, and it is marked done only after
//! the effect is durable (the engine calls [`Journal::record_outcomes`] after syncing).
//! **Invariant:** every write of a run is conditional on the lease epoch the run holds, so an
//! engine that lost its lease cannot write over the one that took it.

mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal `{path}`: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("the lease was taken over by another engine (epoch {0} is no longer current)")]
    LeaseLost(i64),
    #[error("journal `{path}` was written by a newer iade (schema {found}, this one knows {known})")]
    TooNew { path: String, found: i64, known: i64 },
}

pub type Result<T> = std::result::Result<T, JournalError>;

/// Milliseconds since the Unix epoch. The journal is the one place that reads the clock:
/// it records when things happened; nothing evaluates it.
#[expect(clippy::disallowed_methods, reason = "the journal timestamps events; evaluation never reads it")]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Who holds the lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: i64,
    pub host: String,
    pub since_ms: i64,
    pub expires_ms: i64,
    pub watch: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    Acquired { epoch: i64 },
    Held(Holder),
}

/// A step about to run: what it will do and how to recognize it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepIntent {
    pub resource: String,
    /// `create`, `update`, `delete` or `run` (exec).
    pub action: String,
    /// A digest of the intended attributes (secrets excluded), so a resumed run can tell
    /// whether the intent is still the same.
    pub digest: String,
    /// Resource, action and digest together: the same step in another run has the same key.
    pub idempotency_key: String,
    /// The changes as shown in a plan (values rendered, secrets redacted), as JSON.
    pub changes: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Started,
    Done,
    /// Found already done when a resumed run re-observed it: not repeated.
    DoneByObservation,
    Failed,
    Skipped,
    /// Left unfinished by a crash and not visible on re-observation: re-planned.
    Abandoned,
}

impl StepStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            StepStatus::Started => "started",
            StepStatus::Done => "done",
            StepStatus::DoneByObservation => "done_by_observation",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Abandoned => "abandoned",
        }
    }

    fn parse(s: &str) -> StepStatus {
        match s {
            "done" => StepStatus::Done,
            "done_by_observation" => StepStatus::DoneByObservation,
            "failed" => StepStatus::Failed,
            "skipped" => StepStatus::Skipped,
            "abandoned" => StepStatus::Abandoned,
            _ => StepStatus::Started,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepRow {
    pub id: i64,
    pub run: i64,
    pub resource: String,
    pub action: String,
    pub digest: String,
    pub idempotency_key: String,
    pub status: StepStatus,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub error: Option<String>,
    pub changes: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub mode: String,
    pub status: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub pid: i64,
    pub summary: serde_json::Value,
}

/// Drift one observation pass found on one attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub resource: String,
    pub field: String,
    pub observed: String,
    pub intended: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriftRow {
    pub run: i64,
    pub resource: String,
    pub field: String,
    pub observed: String,
    pub intended: String,
    pub detected_ms: i64,
    pub corrected_ms: Option<i64>,
}

/// The verdict of a control on one subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub control: String,
    pub severity: String,
    pub subject: Option<String>,
    /// `pass`, `fail` or `unknown`.
    pub outcome: String,
    pub message: Option<String>,
    pub evidence: Vec<String>,
    /// For a failure on a managed resource: whether its intent passes the same check (then
    /// reality drifted) or not (then the intent is wrong).
    pub intent_compliant: Option<bool>,
    pub location: Option<String>,
}

/// A `runs` row selected as `id, mode, status, started_ms, finished_ms, pid, summary`.
fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let summary: String = r.get(6)?;
    Ok(RunRow {
        id: r.get(0)?,
        mode: r.get(1)?,
        status: r.get(2)?,
        started_ms: r.get(3)?,
        finished_ms: r.get(4)?,
        pid: r.get(5)?,
        summary: serde_json::from_str(&summary).unwrap_or(serde_json::Value::Null),
    })
}

/// The lease row: holder pid, host, since, expires, epoch, watch.
type LeaseRow = (Option<i64>, Option<String>, Option<i64>, Option<i64>, i64, i64);

#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, migrating its schema.
    pub fn open(path: &Path) -> Result<Journal> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let shown = path.display().to_string();
        let err = |source| JournalError::Sqlite { path: shown.clone(), source };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        // FULL: a commit is on disk when it returns. Steps are committed in batches, so the
        // fsyncs are shared by every step of a wave.
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        let mut j = Journal { conn, path: path.to_path_buf() };
        schema::migrate(&mut j.conn).map_err(|e| match e {
            schema::MigrateError::Sqlite(source) => JournalError::Sqlite { path: shown.clone(), source },
            schema::MigrateError::TooNew(found) => {
                JournalError::TooNew { path: shown.clone(), found, known: schema::VERSION }
            }
        })?;
        Ok(j)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> JournalError {
        JournalError::Sqlite { path: self.path.display().to_string(), source }
    }

    /// Takes the lease when it is free, expired, or held by a process of this host that no
    /// longer exists (`alive` says whether a pid lives). The epoch grows with every take.
    pub fn acquire_lease(
        &mut self,
        pid: i64,
        host: &str,
        ttl: Duration,
        watch: bool,
        alive: &dyn Fn(i64) -> bool,
    ) -> Result<LeaseOutcome> {
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| JournalError::Sqlite { path: self.path.display().to_string(), source: e })?;
        let row: Option<LeaseRow> = tx
            .query_row(
                "SELECT holder_pid, holder_host, since_ms, expires_ms, epoch, watch FROM lease WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()
            .map_err(|e| JournalError::Sqlite { path: self.path.display().to_string(), source: e })?;
        let (holder_pid, holder_host, since, expires, epoch, held_watch) =
            row.unwrap_or((None, None, None, None, 0, 0));
        if let (Some(hp), Some(hh), Some(since), Some(expires)) = (holder_pid, holder_host, since, expires) {
            let same_host = hh == host;
            // The holder is gone if it was on this host and its process no longer exists; a
            // lease this very process holds (a crashed run of ours) is taken over too.
            let gone = same_host && (hp == pid || !alive(hp));
            let live = expires > now && !gone;
            if live {
                return Ok(LeaseOutcome::Held(Holder {
                    pid: hp,
                    host: hh,
                    since_ms: since,
                    expires_ms: expires,
                    watch: held_watch != 0,
                }));
            }
        }
        let epoch = epoch + 1;
        tx.execute(
            "INSERT INTO lease (id, holder_pid, holder_host, since_ms, expires_ms, epoch, watch) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(id) DO UPDATE SET holder_pid = ?1, holder_host = ?2, since_ms = ?3, expires_ms = ?4, epoch = ?5, watch = ?6",
            params![pid, host, now, now + ttl.as_millis() as i64, epoch, i64::from(watch)],
        )
        .map_err(|e| JournalError::Sqlite { path: self.path.display().to_string(), source: e })?;
        tx.commit().map_err(|e| JournalError::Sqlite { path: self.path.display().to_string(), source: e })?;
        Ok(LeaseOutcome::Acquired { epoch })
    }

    /// Extends the lease; fails with [`JournalError::LeaseLost`] if another engine took it.
    pub fn renew_lease(&mut self, epoch: i64, ttl: Duration) -> Result<()> {
        let n = self
            .conn
            .execute(
                "UPDATE lease SET expires_ms = ?1 WHERE id = 1 AND epoch = ?2",
                params![now_ms() + ttl.as_millis() as i64, epoch],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 { Err(JournalError::LeaseLost(epoch)) } else { Ok(()) }
    }

    pub fn release_lease(&mut self, epoch: i64) -> Result<()> {
        self.conn
            .execute("UPDATE lease SET holder_pid = NULL, holder_host = NULL, expires_ms = 0 WHERE id = 1 AND epoch = ?1", params![epoch])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn holder(&self) -> Result<Option<Holder>> {
        self.conn
            .query_row("SELECT holder_pid, holder_host, since_ms, expires_ms, watch FROM lease WHERE id = 1 AND holder_pid IS NOT NULL", [], |r| {
                Ok(Holder { pid: r.get(0)?, host: r.get(1)?, since_ms: r.get(2)?, expires_ms: r.get(3)?, watch: r.get::<_, i64>(4)? != 0 })
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Runs `f` in one immediate transaction that commits only while `epoch` holds the lease:
    /// every write of a run goes through here.
    fn write<T>(
        &mut self,
        epoch: i64,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.display().to_string();
        let e = |source| JournalError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        if !Self::check_epoch(&tx, epoch).map_err(e)? {
            return Err(JournalError::LeaseLost(epoch));
        }
        let out = f(&tx).map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(out)
    }

    fn check_epoch(tx: &rusqlite::Transaction<'_>, epoch: i64) -> std::result::Result<bool, rusqlite::Error> {
        let current: Option<i64> =
            tx.query_row("SELECT epoch FROM lease WHERE id = 1", [], |r| r.get(0)).optional()?;
        Ok(current == Some(epoch))
    }

    /// Begins a run, with the drift its observation pass found, in one transaction.
    pub fn begin_run(&mut self, epoch: i64, mode: &str, drift: &[Drift]) -> Result<i64> {
        self.write(epoch, |tx| {
            let now = now_ms();
            tx.execute(
                "INSERT INTO runs (mode, status, started_ms, pid, epoch, summary) VALUES (?1, 'running', ?2, ?3, ?4, '{}')",
                params![mode, now, i64::from(std::process::id()), epoch],
            )?;
            let id = tx.last_insert_rowid();
            {
                let mut stmt = tx
                    .prepare_cached("INSERT INTO drift (run, resource, field, observed, intended, detected_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
                for d in drift {
                    stmt.execute(params![id, d.resource, d.field, d.observed, d.intended, now])?;
                }
            }
            Ok(id)
        })
    }

    /// Commits the intents of a batch of steps, before any of their effects starts.
    pub fn record_intents(&mut self, epoch: i64, run: i64, steps: &[StepIntent]) -> Result<Vec<i64>> {
        self.write(epoch, |tx| {
            let now = now_ms();
            let mut ids = Vec::with_capacity(steps.len());
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO steps (run, resource, action, digest, idempotency_key, status, started_ms, changes)
                         VALUES (?1, ?2, ?3, ?4, ?5, 'started', ?6, ?7)",
                    )?;
                for s in steps {
                    stmt.execute(params![run, s.resource, s.action, s.digest, s.idempotency_key, now, s.changes])?;
                    ids.push(tx.last_insert_rowid());
                }
            }
            Ok(ids)
        })
    }

    /// Records how steps ended, after their effects are durable, and marks the drift of the
    /// resources they corrected (found by `run`) corrected, in one transaction.
    pub fn record_outcomes(
        &mut self,
        epoch: i64,
        run: i64,
        outcomes: &[(i64, StepStatus, Option<String>)],
        corrected: &[String],
    ) -> Result<()> {
        self.write(epoch, |tx| {
            let now = now_ms();
            {
                let mut stmt = tx
                    .prepare_cached("UPDATE steps SET status = ?1, finished_ms = ?2, error = ?3 WHERE id = ?4")?;
                for (id, status, error) in outcomes {
                    stmt.execute(params![status.as_str(), now, error, id])?;
                }
                let mut stmt = tx
                    .prepare_cached("UPDATE drift SET corrected_ms = ?1 WHERE run = ?2 AND resource = ?3 AND corrected_ms IS NULL")?;
                for r in corrected {
                    stmt.execute(params![now, run, r])?;
                }
            }
            Ok(())
        })
    }

    /// Finishes a run with its summary and the findings of its controls, in one transaction.
    pub fn finish_run(
        &mut self,
        epoch: i64,
        run: i64,
        status: &str,
        summary: &serde_json::Value,
        findings: &[Finding],
    ) -> Result<()> {
        self.write(epoch, |tx| {
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO findings (run, control, severity, subject, outcome, message, evidence, intent_compliant, location)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )?;
                for f in findings {
                    let evidence = serde_json::to_string(&f.evidence).unwrap_or_else(|_| "[]".into());
                    stmt.execute(params![
                        run,
                        f.control,
                        f.severity,
                        f.subject,
                        f.outcome,
                        f.message,
                        evidence,
                        f.intent_compliant,
                        f.location
                    ])?;
                }
            }
            tx.execute(
                "UPDATE runs SET status = ?1, finished_ms = ?2, summary = ?3 WHERE id = ?4",
                params![status, now_ms(), summary.to_string(), run],
            )?;
            Ok(())
        })
    }

    /// Runs left `running` by an engine that is gone, and their unfinished steps.
    pub fn interrupted(&self, current_run: Option<i64>) -> Result<(Vec<i64>, Vec<StepRow>)> {
        let runs: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM runs WHERE status = 'running' ORDER BY id")
                .map_err(|e| self.err(e))?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
            rows.collect::<std::result::Result<Vec<i64>, _>>().map_err(|e| self.err(e))?
        };
        let runs: Vec<i64> = runs.into_iter().filter(|r| Some(*r) != current_run).collect();
        let steps = self
            .steps_where("status = 'started'", &[])?
            .into_iter()
            .filter(|s| Some(s.run) != current_run)
            .collect();
        Ok((runs, steps))
    }

    /// Marks interrupted runs as such and settles their unfinished steps.
    pub fn settle_interrupted(
        &mut self,
        epoch: i64,
        runs: &[i64],
        steps: &[(i64, StepStatus)],
    ) -> Result<()> {
        self.write(epoch, |tx| {
            let now = now_ms();
            for (id, status) in steps {
                tx.execute(
                    "UPDATE steps SET status = ?1, finished_ms = ?2 WHERE id = ?3",
                    params![status.as_str(), now, id],
                )?;
            }
            for r in runs {
                tx.execute(
                    "UPDATE runs SET status = 'interrupted', finished_ms = ?1 WHERE id = ?2",
                    params![now, r],
                )?;
            }
            Ok(())
        })
    }

    fn steps_where(&self, cond: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<StepRow>> {
        let sql = format!(
            "SELECT id, run, resource, action, digest, idempotency_key, status, started_ms, finished_ms, error, changes FROM steps WHERE {cond} ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(args, |r| {
                let changes: String = r.get(10)?;
                Ok(StepRow {
                    id: r.get(0)?,
                    run: r.get(1)?,
                    resource: r.get(2)?,
                    action: r.get(3)?,
                    digest: r.get(4)?,
                    idempotency_key: r.get(5)?,
                    status: StepStatus::parse(&r.get::<_, String>(6)?),
                    started_ms: r.get(7)?,
                    finished_ms: r.get(8)?,
                    error: r.get(9)?,
                    changes: serde_json::from_str(&changes).unwrap_or(serde_json::Value::Null),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn steps_of_run(&self, run: i64) -> Result<Vec<StepRow>> {
        self.steps_where("run = ?1", &[&run])
    }

    pub fn steps_of_resource(&self, resource: &str) -> Result<Vec<StepRow>> {
        self.steps_where("resource = ?1", &[&resource])
    }

    pub fn all_steps(&self) -> Result<Vec<StepRow>> {
        self.steps_where("1 = 1", &[])
    }

    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, mode, status, started_ms, finished_ms, pid, summary FROM runs ORDER BY id DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params![limit as i64], run_row).map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn drift(&self, run: Option<i64>, resource: Option<&str>) -> Result<Vec<DriftRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT run, resource, field, observed, intended, detected_ms, corrected_ms FROM drift
                 WHERE (?1 IS NULL OR run = ?1) AND (?2 IS NULL OR resource = ?2) ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run, resource], |r| {
                Ok(DriftRow {
                    run: r.get(0)?,
                    resource: r.get(1)?,
                    field: r.get(2)?,
                    observed: r.get(3)?,
                    intended: r.get(4)?,
                    detected_ms: r.get(5)?,
                    corrected_ms: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn findings(&self, run: i64) -> Result<Vec<Finding>> {
        let mut stmt = self
            .conn
            .prepare("SELECT control, severity, subject, outcome, message, evidence, intent_compliant, location FROM findings WHERE run = ?1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run], |r| {
                let evidence: String = r.get(5)?;
                Ok(Finding {
                    control: r.get(0)?,
                    severity: r.get(1)?,
                    subject: r.get(2)?,
                    outcome: r.get(3)?,
                    message: r.get(4)?,
                    evidence: serde_json::from_str(&evidence).unwrap_or_default(),
                    intent_compliant: r.get(6)?,
                    location: r.get(7)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Asks the engine that holds the lease (a `--watch` engine) for an immediate pass;
    /// returns the request's id.
    pub fn request_pass(&mut self) -> Result<i64> {
        self.conn
            .execute("INSERT INTO requests (requested_ms) VALUES (?1)", params![now_ms()])
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Pending pass requests (for the lease holder).
    pub fn pending_requests(&self) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM requests WHERE served_run IS NULL ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<i64>, _>>().map_err(|e| self.err(e))
    }

    pub fn serve_requests(&mut self, ids: &[i64], run: i64) -> Result<()> {
        for id in ids {
            self.conn
                .execute("UPDATE requests SET served_run = ?1 WHERE id = ?2", params![run, id])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The run that served a request, once it has.
    pub fn served_by(&self, request: i64) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT served_run FROM requests WHERE id = ?1", params![request], |r| r.get(0))
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    pub fn run(&self, id: i64) -> Result<Option<RunRow>> {
        self.conn
            .query_row(
                "SELECT id, mode, status, started_ms, finished_ms, pid, summary FROM runs WHERE id = ?1",
                params![id],
                run_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// SQLite's own integrity check.
    pub fn integrity_check(&self) -> Result<bool> {
        let result: String =
            self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(result == "ok")
    }
}

/// What the engine needs from a journal. The engine depends on this, not on SQLite, so that a
/// shared journal (PostgreSQL, for many engines) can take the embedded one's place.
pub trait Store {
    /// Runs left `running` (but `current_run`) and their unfinished steps.
    fn interrupted(&self, current_run: Option<i64>) -> Result<(Vec<i64>, Vec<StepRow>)>;
    fn settle_interrupted(&mut self, epoch: i64, runs: &[i64], steps: &[(i64, StepStatus)]) -> Result<()>;
    fn renew_lease(&mut self, epoch: i64, ttl: Duration) -> Result<()>;
    fn begin_run(&mut self, epoch: i64, mode: &str, drift: &[Drift]) -> Result<i64>;
    fn record_intents(&mut self, epoch: i64, run: i64, steps: &[StepIntent]) -> Result<Vec<i64>>;
    fn record_outcomes(
        &mut self,
        epoch: i64,
        run: i64,
        outcomes: &[(i64, StepStatus, Option<String>)],
        corrected: &[String],
    ) -> Result<()>;
    fn finish_run(
        &mut self,
        epoch: i64,
        run: i64,
        status: &str,
        summary: &serde_json::Value,
        findings: &[Finding],
    ) -> Result<()>;
}

impl Store for Journal {
    fn interrupted(&self, current_run: Option<i64>) -> Result<(Vec<i64>, Vec<StepRow>)> {
        Journal::interrupted(self, current_run)
    }
    fn settle_interrupted(&mut self, epoch: i64, runs: &[i64], steps: &[(i64, StepStatus)]) -> Result<()> {
        Journal::settle_interrupted(self, epoch, runs, steps)
    }
    fn renew_lease(&mut self, epoch: i64, ttl: Duration) -> Result<()> {
        Journal::renew_lease(self, epoch, ttl)
    }
    fn begin_run(&mut self, epoch: i64, mode: &str, drift: &[Drift]) -> Result<i64> {
        Journal::begin_run(self, epoch, mode, drift)
    }
    fn record_intents(&mut self, epoch: i64, run: i64, steps: &[StepIntent]) -> Result<Vec<i64>> {
        Journal::record_intents(self, epoch, run, steps)
    }
    fn record_outcomes(
        &mut self,
        epoch: i64,
        run: i64,
        outcomes: &[(i64, StepStatus, Option<String>)],
        corrected: &[String],
    ) -> Result<()> {
        Journal::record_outcomes(self, epoch, run, outcomes, corrected)
    }
    fn finish_run(
        &mut self,
        epoch: i64,
        run: i64,
        status: &str,
        summary: &serde_json::Value,
        findings: &[Finding],
    ) -> Result<()> {
        Journal::finish_run(self, epoch, run, status, summary, findings)
    }
}
