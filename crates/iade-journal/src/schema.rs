//! The journal's schema and its migrations. Version `n` is reached by applying migration
//! `n - 1 → n`; a journal newer than this build is refused rather than misread.

use rusqlite::Connection;

pub const VERSION: i64 = 1;

const MIGRATIONS: &[&str] = &[
    // 0 → 1
    "CREATE TABLE lease (
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
    );",
];

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
        let Some(sql) = MIGRATIONS.get(version as usize) else { return Ok(()) };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}
