//! The shared journal's schema, in its own PostgreSQL schema `iade`, versioned in
//! `iade.meta`. Migrations run under a transaction-scoped advisory lock, so engines that start
//! at once migrate one after the other and each finds the version the previous one left.

/// The version this build writes.
pub const VERSION: i64 = 1;

/// The advisory lock that serializes migrations (any constant the journal alone uses).
pub const MIGRATION_LOCK: i64 = 0x1ade_0001;

/// Every table has the stack it belongs to: one database serves a fleet.
const MIGRATIONS: &[&str] = &[
    // 0 → 1
    "CREATE TABLE iade.stacks (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL,
        host TEXT NOT NULL,
        UNIQUE (name, host)
    );
    CREATE TABLE iade.leases (
        stack BIGINT PRIMARY KEY REFERENCES iade.stacks(id),
        holder_pid BIGINT,
        holder_host TEXT,
        since_ms BIGINT,
        expires_ms BIGINT,
        epoch BIGINT NOT NULL DEFAULT 0,
        watch BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE iade.runs (
        id BIGSERIAL PRIMARY KEY,
        stack BIGINT NOT NULL REFERENCES iade.stacks(id),
        mode TEXT NOT NULL,
        status TEXT NOT NULL,
        started_ms BIGINT NOT NULL,
        finished_ms BIGINT,
        pid BIGINT NOT NULL,
        host TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        summary TEXT NOT NULL,
        detail_pruned BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX runs_by_stack ON iade.runs (stack, id DESC);
    CREATE INDEX runs_running ON iade.runs (stack) WHERE status = 'running';
    CREATE INDEX runs_finished ON iade.runs (stack, id DESC) WHERE status <> 'running';
    CREATE TABLE iade.steps (
        id BIGSERIAL PRIMARY KEY,
        run BIGINT NOT NULL REFERENCES iade.runs(id) ON DELETE CASCADE,
        stack BIGINT NOT NULL,
        resource TEXT NOT NULL,
        action TEXT NOT NULL,
        digest TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        status TEXT NOT NULL,
        started_ms BIGINT NOT NULL,
        finished_ms BIGINT,
        error TEXT,
        changes TEXT NOT NULL,
        stdout TEXT,
        stderr TEXT
    );
    CREATE INDEX steps_by_run ON iade.steps (run, resource);
    CREATE INDEX steps_by_resource ON iade.steps (stack, resource);
    CREATE INDEX steps_started ON iade.steps (stack) WHERE status = 'started';
    CREATE TABLE iade.drift (
        id BIGSERIAL PRIMARY KEY,
        run BIGINT NOT NULL REFERENCES iade.runs(id) ON DELETE CASCADE,
        stack BIGINT NOT NULL,
        resource TEXT NOT NULL,
        field TEXT NOT NULL,
        observed TEXT,
        intended TEXT NOT NULL,
        detected_ms BIGINT NOT NULL,
        corrected_ms BIGINT
    );
    CREATE INDEX drift_by_run ON iade.drift (run, resource);
    CREATE INDEX drift_by_resource ON iade.drift (stack, resource);
    CREATE TABLE iade.errors (
        id BIGSERIAL PRIMARY KEY,
        run BIGINT NOT NULL REFERENCES iade.runs(id) ON DELETE CASCADE,
        stack BIGINT NOT NULL,
        resource TEXT NOT NULL,
        field TEXT,
        message TEXT NOT NULL
    );
    CREATE INDEX errors_by_run ON iade.errors (run, resource);
    CREATE INDEX errors_by_resource ON iade.errors (stack, resource);
    CREATE TABLE iade.findings (
        id BIGSERIAL PRIMARY KEY,
        run BIGINT NOT NULL REFERENCES iade.runs(id) ON DELETE CASCADE,
        stack BIGINT NOT NULL,
        control TEXT NOT NULL,
        severity TEXT NOT NULL,
        subject TEXT,
        outcome TEXT NOT NULL,
        message TEXT,
        evidence TEXT NOT NULL,
        intent_compliant BOOLEAN,
        location TEXT
    );
    CREATE INDEX findings_by_run ON iade.findings (run, subject);
    CREATE INDEX findings_by_subject ON iade.findings (stack, subject);
    CREATE TABLE iade.requests (
        id BIGSERIAL PRIMARY KEY,
        stack BIGINT NOT NULL REFERENCES iade.stacks(id),
        requested_ms BIGINT NOT NULL,
        digest TEXT NOT NULL,
        served_run BIGINT,
        refused TEXT
    );
    CREATE INDEX requests_open ON iade.requests (stack) WHERE served_run IS NULL AND refused IS NULL;
    CREATE TABLE iade.pending_refreshes (
        stack BIGINT NOT NULL REFERENCES iade.stacks(id),
        resource TEXT NOT NULL,
        notified_by TEXT NOT NULL,
        run BIGINT NOT NULL,
        since_ms BIGINT NOT NULL,
        PRIMARY KEY (stack, resource, notified_by)
    );
    CREATE TABLE iade.applied (
        stack BIGINT NOT NULL REFERENCES iade.stacks(id),
        resource TEXT NOT NULL,
        kind TEXT NOT NULL,
        provider TEXT NOT NULL,
        instance TEXT,
        identity TEXT NOT NULL,
        applied_ms BIGINT NOT NULL,
        protected BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (stack, resource)
    );",
];

/// Why a migration did not happen.
#[derive(Debug)]
pub enum MigrateError {
    Postgres(postgres::Error),
    /// The database holds a newer schema than this build knows.
    TooNew(i64),
}

impl From<postgres::Error> for MigrateError {
    fn from(e: postgres::Error) -> Self {
        MigrateError::Postgres(e)
    }
}

/// Brings the schema to [`VERSION`], each step in one transaction that holds the advisory
/// lock and reads the version under it. A schema already current is read without the lock:
/// opening a journal never waits for another engine's transaction.
pub fn migrate(client: &mut postgres::Client) -> Result<(), MigrateError> {
    // A database without the schema fails this read; the locked path below creates it.
    let current: Option<i64> = client
        .query_opt("SELECT value::bigint FROM iade.meta WHERE key = 'schema_version'", &[])
        .ok()
        .flatten()
        .map(|r| r.get(0));
    match current {
        Some(v) if v == VERSION => return Ok(()),
        Some(v) if v > VERSION => return Err(MigrateError::TooNew(v)),
        _ => {}
    }
    loop {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS iade;
             CREATE TABLE IF NOT EXISTS iade.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        let version: i64 = tx
            .query_opt("SELECT value::bigint FROM iade.meta WHERE key = 'schema_version'", &[])?
            .map_or(0, |r| r.get(0));
        if version > VERSION {
            return Err(MigrateError::TooNew(version));
        }
        let Some(sql) = usize::try_from(version).ok().and_then(|v| MIGRATIONS.get(v)) else {
            tx.commit()?;
            return Ok(());
        };
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO iade.meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = $1",
            &[&(version + 1).to_string()],
        )?;
        tx.commit()?;
    }
}
