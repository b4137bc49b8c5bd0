//! The journal's schema and its migrations. Version `n` is reached by applying migration
//! `n - 1 → n`; a journal newer than this build is refused rather than misread.

use rusqlite::{Connection, Transaction, params};

pub const VERSION: i64 = 3;

/// One migration: SQL, then (optionally) a conversion of rows that SQL alone cannot express.
struct Migration {
    sql: &'static str,
    convert: Option<fn(&Transaction<'_>) -> rusqlite::Result<()>>,
}

/// The first release's schema, kept as it was so that its journals open and migrate.
pub const V1: &str = "CREATE TABLE lease (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        holder_pid INTEGER,
        holder_host TEXT,
        since_ms INTEGER,
        expires_ms INTEGER,
        epoch INTEGER NOT NULL DEFAULT 0,
        watch INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        status TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        pid INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE TABLE steps (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        resource TEXT NOT NULL,
        action TEXT NOT NULL,
        digest TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        status TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        error TEXT,
        changes TEXT NOT NULL
    );
    CREATE INDEX steps_by_resource ON steps(resource);
    CREATE INDEX steps_by_status ON steps(status);
    CREATE TABLE drift (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        resource TEXT NOT NULL,
        field TEXT NOT NULL,
        observed TEXT NOT NULL,
        intended TEXT NOT NULL,
        detected_ms INTEGER NOT NULL,
        corrected_ms INTEGER
    );
    CREATE INDEX drift_by_resource ON drift(resource);
    CREATE TABLE findings (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        control TEXT NOT NULL,
        severity TEXT NOT NULL,
        subject TEXT,
        outcome TEXT NOT NULL,
        message TEXT,
        evidence TEXT NOT NULL,
        intent_compliant INTEGER,
        location TEXT
    );
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        requested_ms INTEGER NOT NULL,
        served_run INTEGER
    );";

const MIGRATIONS: &[Migration] = &[
    // 0 → 1
    Migration { sql: V1, convert: None },
    // 1 → 2: stack identity, the host of a run, command output, errors, obligations, answers to
    // pass requests, typed locations, and indexes for history.
    Migration {
        sql: "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN detail_pruned INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE steps ADD COLUMN stdout TEXT;
        ALTER TABLE steps ADD COLUMN stderr TEXT;
        CREATE TABLE drift_v2 (
            id INTEGER PRIMARY KEY,
            run INTEGER NOT NULL REFERENCES runs(id),
            resource TEXT NOT NULL,
            field TEXT NOT NULL,
            observed TEXT,
            intended TEXT NOT NULL,
            detected_ms INTEGER NOT NULL,
            corrected_ms INTEGER
        );
        INSERT INTO drift_v2 SELECT id, run, resource, field,
            CASE WHEN observed = '(absent)' THEN NULL ELSE observed END,
            intended, detected_ms, corrected_ms FROM drift;
        DROP TABLE drift;
        ALTER TABLE drift_v2 RENAME TO drift;
        CREATE INDEX drift_by_resource ON drift(resource);
        CREATE INDEX drift_by_run ON drift(run, resource);
        CREATE TABLE errors (
            id INTEGER PRIMARY KEY,
            run INTEGER NOT NULL REFERENCES runs(id),
            resource TEXT NOT NULL,
            field TEXT,
            message TEXT NOT NULL
        );
        CREATE INDEX errors_by_run ON errors(run, resource);
        CREATE INDEX errors_by_resource ON errors(resource);
        CREATE INDEX steps_by_run ON steps(run, resource);
        CREATE INDEX findings_by_run ON findings(run, subject);
        CREATE INDEX findings_by_subject ON findings(subject);
        ALTER TABLE requests ADD COLUMN digest TEXT NOT NULL DEFAULT '';
        ALTER TABLE requests ADD COLUMN refused TEXT;
        CREATE TABLE pending_refreshes (
            resource TEXT NOT NULL,
            notified_by TEXT NOT NULL,
            run INTEGER NOT NULL,
            since_ms INTEGER NOT NULL,
            PRIMARY KEY (resource, notified_by)
        );
        CREATE TABLE applied (
            resource TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            provider TEXT NOT NULL,
            instance TEXT,
            identity TEXT NOT NULL,
            applied_ms INTEGER NOT NULL
        );",
        convert: Some(locations_to_json),
    },
    // 2 → 3: whether an applied object was protected (`protect = true`).
    Migration { sql: "ALTER TABLE applied ADD COLUMN protected INTEGER NOT NULL DEFAULT 0;", convert: None },
];

/// Version 1 kept a finding's location as `path:line:column`; version 2 keeps the typed
/// location as JSON (byte offsets unknown for old rows).
fn locations_to_json(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let rows: Vec<(i64, String)> = {
        let mut stmt = tx.prepare("SELECT id, location FROM findings WHERE location IS NOT NULL")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, text) in rows {
        let mut parts = text.rsplitn(3, ':');
        let column = parts.next().and_then(|c| c.parse::<u32>().ok());
        let line = parts.next().and_then(|l| l.parse::<u32>().ok());
        let json = match (parts.next(), line, column) {
            (Some(file), Some(line), Some(column)) => Some(
                serde_json::json!({ "file": file, "line": line, "column": column, "start": 0, "end": 0 })
                    .to_string(),
            ),
            _ => None,
        };
        tx.execute("UPDATE findings SET location = ?1 WHERE id = ?2", params![json, id])?;
    }
    Ok(())
}

pub enum MigrateError {
    Sqlite(rusqlite::Error),
    TooNew(i64),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

/// Brings the schema to [`VERSION`]. The version is read inside each migration's immediate
/// transaction, so two engines opening a new journal at once migrate it once.
pub fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > VERSION {
            return Err(MigrateError::TooNew(version));
        }
        let Some(m) = usize::try_from(version).ok().and_then(|v| MIGRATIONS.get(v)) else { return Ok(()) };
        tx.execute_batch(m.sql)?;
        if let Some(convert) = m.convert {
            convert(&tx)?;
        }
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}
