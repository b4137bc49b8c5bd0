//! `postgres`: roles, databases, schemas, extensions and privileges of PostgreSQL servers
//! (`std.postgres`), one connection per `provider postgres NAME { url = … }` instance and
//! database. Observed from the catalogs, one query per kind, instance and database for a whole
//! batch; changed with `CREATE`, `ALTER`, `GRANT`, `REVOKE` and `DROP`, every identifier and
//! literal quoted by the protocol crate's functions. A password is sent only as a
//! SCRAM-SHA-256 verifier computed here, and compared by verifying the stored verifier against
//! the secret: the plaintext never reaches the server, the journal or a log. Roles, databases
//! and schemas carry their stack's ownership mark as their `COMMENT`.

mod connect;
mod grants;
mod objects;
mod roles;
mod scram;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use iade_intent::Value;
use iade_provider::{
    Applied, Change, Context, Discovered, Fields, Mark, Observed, Provider, ProviderError, Target,
    default_diff, presence_diff,
};
use postgres_protocol::escape::{escape_identifier, escape_literal};

/// One connection, made when first needed, with its own lock.
type Slot = Arc<Mutex<Option<postgres::Client>>>;

/// The provider: the stack's instances and a connection to each.
#[derive(Default)]
pub struct PostgresProvider {
    instances: Mutex<BTreeMap<String, Fields>>,
    /// Connections by instance and database (`None`: the database of the instance's URL).
    clients: Mutex<HashMap<(String, Option<String>), Slot>>,
    /// Stored password verifiers, by instance and role, from the last observation: compared
    /// with a secret in `diff`, never part of what is observed.
    verifiers: Mutex<HashMap<(String, String), Option<String>>>,
    /// TLS connectors by instance, made on the first TCP connection.
    tls: Mutex<HashMap<String, iade_pg::MakeTlsConnector>>,
    /// Ownership marks read with the last observation, by instance, kind and object key.
    marks: Mutex<HashMap<(String, &'static str, String), Mark>>,
}

impl std::fmt::Debug for PostgresProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresProvider").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A server error as a provider error: connection trouble, serialization failures and a server
/// that is starting are transient; the rest (privileges, invalid names) permanent, with the
/// SQLSTATE.
fn classify(what: &str, e: &postgres::Error) -> ProviderError {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let message = format!("{what}: {} (SQLSTATE {code})", db.message());
            if code.starts_with("08")
                || code == "40001"
                || code == "40P01"
                || code == "57P01"
                || code == "57P03"
                || code == "53300"
            {
                ProviderError::transient(message)
            } else {
                ProviderError::permanent(message)
            }
        }
        None => {
            let message = format!("{what}: {}", iade_pg::describe(e));
            if message.contains("TLS") {
                // A certificate the CA does not vouch for stays so: no retry helps.
                ProviderError::permanent(message)
            } else {
                ProviderError::transient(message)
            }
        }
    }
}

fn ident(name: &str) -> String {
    escape_identifier(name)
}

fn text(f: &Fields, k: &str) -> Option<String> {
    match f.get(k) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    }
}

fn flag(f: &Fields, k: &str) -> Option<bool> {
    match f.get(k) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn int(f: &Fields, k: &str) -> Option<i64> {
    match f.get(k) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    }
}

fn word(w: &str) -> Value {
    Value::Enum(Arc::from(w))
}

fn str_list<S: AsRef<str>>(items: &[S]) -> Value {
    Value::List(Arc::new(items.iter().map(|m| Value::str(m.as_ref())).collect()))
}

fn flag_observed(observed: &Observed, k: &str) -> bool {
    matches!(observed.field(k), Some(Value::Bool(true)))
}

/// The identity field `k` of a target as text (empty when missing: the kind requires it).
fn id<'t>(t: &'t Target, k: &str) -> &'t str {
    t.identity_str(k).unwrap_or_default()
}

/// Where an object's mark is remembered: its name, or its database and name.
fn mark_key(db: Option<&str>, name: &str) -> String {
    match db {
        Some(db) => format!("{db}\u{0}{name}"),
        None => name.to_string(),
    }
}

/// Objects read by name as discovered objects identified by their name.
fn discovered(objects: Vec<(String, Fields)>) -> Vec<Discovered> {
    objects
        .into_iter()
        .map(|(name, fields)| Discovered {
            identity: Fields::from([("name".to_string(), Value::str(name.as_str()))]),
            name,
            fields,
        })
        .collect()
}

/// What a `COMMENT` says to mark an object as the stack's.
const MARK_PREFIX: &str = "managed by iade stack ";

/// The comment that marks an object as `stack`'s.
fn mark_comment(stack: &str) -> String {
    format!("{MARK_PREFIX}{stack}")
}

/// The mark a comment carries: another comment, or none, is no mark.
fn parse_mark(comment: Option<&str>) -> Mark {
    match comment.and_then(|c| c.strip_prefix(MARK_PREFIX)) {
        Some(stack) => Mark::Stack(stack.to_string()),
        None => Mark::Unmarked,
    }
}

/// The targets of a batch grouped by instance and database (`None`: the server's catalogs),
/// with the error of each target whose instance is unknown.
type Groups = BTreeMap<(String, Option<String>), (Fields, Vec<usize>)>;

impl PostgresProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// The instance a target uses: the one it names, or the only one the stack declares.
    fn instance_of(&self, target: &Target) -> Result<(String, Fields), ProviderError> {
        let instances = lock(&self.instances);
        match &target.instance {
            Some(name) => instances.get(name).map(|f| (name.clone(), f.clone())).ok_or_else(|| {
                ProviderError::permanent(format!("the stack declares no `provider postgres {name}`"))
            }),
            None => {
                let mut all = instances.iter();
                match (all.next(), all.next()) {
                    (Some((n, f)), None) => Ok((n.clone(), f.clone())),
                    (None, _) => Err(ProviderError::permanent(
                        "the stack declares no PostgreSQL server: add `provider postgres NAME { url = \"postgres://…\" }`",
                    )),
                    (Some(_), Some(_)) => Err(ProviderError::permanent(
                        "the stack declares several PostgreSQL servers: choose one with `provider = NAME`",
                    )),
                }
            }
        }
    }

    /// Observes a batch group by group: `query` reads one instance's (and database's) objects
    /// once for all the group's targets, `pick` says what it found of one target.
    fn observe_grouped<R>(
        &self,
        targets: &[&Target],
        database: impl Fn(&Target) -> Option<String>,
        query: impl Fn(&str, &Fields, Option<&str>, &[&Target]) -> Result<R, ProviderError>,
        pick: impl Fn(&R, &str, &Target) -> Observed,
    ) -> Vec<Result<Observed, ProviderError>> {
        let mut groups = Groups::new();
        let mut out: Vec<Result<Observed, ProviderError>> =
            targets.iter().map(|_| Err(ProviderError::transient("not observed"))).collect();
        for (i, t) in targets.iter().enumerate() {
            match self.instance_of(t) {
                Ok((instance, settings)) => {
                    groups.entry((instance, database(t))).or_insert((settings, Vec::new())).1.push(i)
                }
                Err(e) => out[i] = Err(e),
            }
        }
        for ((instance, db), (settings, idx)) in &groups {
            let batch: Vec<&Target> = idx.iter().map(|&i| targets[i]).collect();
            match query(instance, settings, db.as_deref(), &batch) {
                Ok(found) => {
                    for &i in idx {
                        out[i] = Ok(pick(&found, instance, targets[i]));
                    }
                }
                Err(e) => {
                    for &i in idx {
                        out[i] = Err(e.clone());
                    }
                }
            }
        }
        out
    }

    /// Observes objects that carry a mark, identified by name (in a database for
    /// per-database kinds): `read` reads a group's objects by name and remembers their marks;
    /// the marks of those it does not find are forgotten.
    fn observe_named(
        &self,
        kind: &'static str,
        targets: &[&Target],
        database: impl Fn(&Target) -> Option<String>,
        read: impl Fn(&str, &Fields, Option<&str>, Vec<String>) -> Result<Vec<(String, Fields)>, ProviderError>,
    ) -> Vec<Result<Observed, ProviderError>> {
        self.observe_grouped(
            targets,
            database,
            |instance, settings, db, batch| {
                let wanted: Vec<String> = batch.iter().map(|t| id(t, "name").to_string()).collect();
                {
                    let mut marks = lock(&self.marks);
                    for name in &wanted {
                        marks.remove(&(instance.to_string(), kind, mark_key(db, name)));
                    }
                }
                Ok(read(instance, settings, db, wanted)?.into_iter().collect::<HashMap<_, _>>())
            },
            |found, _, t| found.get(id(t, "name")).cloned().map_or(Observed::Absent, Observed::Present),
        )
    }

    /// Records the marks of objects just read (`None`: absent).
    fn remember_mark(&self, instance: &str, kind: &'static str, key: String, comment: Option<&str>) {
        lock(&self.marks).insert((instance.to_string(), kind, key), parse_mark(comment));
    }

    /// Runs statements on the instance's connection to `db`, in one transaction when
    /// `atomic`.
    fn execute(
        &self,
        target: &Target,
        db: Option<&str>,
        statements: &[String],
        atomic: bool,
        what: &str,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        if statements.is_empty() {
            return Ok(());
        }
        let (instance, settings) = self.instance_of(target)?;
        self.with_client(&instance, &settings, db, cx, |c| {
            if atomic {
                let mut tx = c.transaction().map_err(|e| classify(what, &e))?;
                for s in statements {
                    tx.batch_execute(s).map_err(|e| classify(what, &e))?;
                }
                tx.commit().map_err(|e| classify(what, &e))
            } else {
                for s in statements {
                    c.batch_execute(s).map_err(|e| classify(what, &e))?;
                }
                Ok(())
            }
        })
    }

    /// The statement that marks an object as the run's stack's.
    fn comment(kind: &str, target: &Target, cx: &Context<'_>) -> Option<String> {
        let on = match kind {
            "role" => format!("ROLE {}", ident(id(target, "name"))),
            "database" => format!("DATABASE {}", ident(id(target, "name"))),
            "schema" => format!("SCHEMA {}", ident(id(target, "name"))),
            _ => return None,
        };
        Some(format!("COMMENT ON {on} IS {}", escape_literal(&mark_comment(cx.stack))))
    }
}

/// The database a per-database kind lives in.
fn in_database(t: &Target) -> Option<String> {
    t.identity_str("database").map(str::to_string)
}

impl Provider for PostgresProvider {
    fn name(&self) -> &str {
        "postgres"
    }

    fn configure(&self, instances: &BTreeMap<String, Fields>) {
        let mut current = lock(&self.instances);
        if *current != *instances {
            lock(&self.clients).clear();
            lock(&self.tls).clear();
            *current = instances.clone();
        }
    }

    /// One connection per server and database serves every call in turn, so a batch as large
    /// as the stack's objects of a kind costs one query.
    fn batch_size(&self, _kind: &str) -> usize {
        4096
    }

    fn observe(
        &self,
        kind: &str,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        match kind {
            "role" => self.observe_roles(targets, cx),
            "database" => self.observe_databases(targets, cx),
            "schema" => self.observe_schemas(targets, cx),
            "extension" => self.observe_extensions(targets, cx),
            "grant" | "schema_grant" => self.observe_acl_grants(kind, targets, cx),
            "table_grant" => self.observe_table_grants(targets, cx),
            other => targets
                .iter()
                .map(|_| {
                    Err(ProviderError::permanent(format!("the postgres provider does not manage `{other}`")))
                })
                .collect(),
        }
    }

    fn diff(&self, kind: &str, target: &Target, observed: &Observed, cx: &Context<'_>) -> Vec<Change> {
        presence_diff(target, observed, || match kind {
            "role" => self.role_changes(target, observed, cx),
            _ => default_diff(target, observed),
        })
    }

    fn apply(
        &self,
        kind: &str,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<Applied, ProviderError> {
        if !target.wants_present() {
            return self.delete(kind, target, cx);
        }
        match kind {
            "role" => self.apply_role(target, observed, cx),
            "database" => self.apply_database(target, observed, cx),
            "schema" => self.apply_schema(target, observed, cx),
            "extension" => self.apply_extension(target, observed, cx),
            "grant" => self.apply_database_grant(target, observed, cx),
            "schema_grant" => self.apply_schema_grant(target, observed, cx),
            "table_grant" => self.apply_table_grant(target, observed, cx),
            other => {
                Err(ProviderError::permanent(format!("the postgres provider does not manage `{other}`")))
            }
        }
        .map(|()| Applied::default())
    }

    fn delete(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<Applied, ProviderError> {
        match kind {
            "role" => self.drop_role(target, cx),
            "database" | "schema" | "extension" => self.drop_object(kind, target, cx),
            "grant" | "schema_grant" | "table_grant" => self.revoke(kind, target, cx),
            other => {
                Err(ProviderError::permanent(format!("the postgres provider does not manage `{other}`")))
            }
        }
        .map(|()| Applied::default())
    }

    fn marks(&self, kind: &str, targets: &[&Target], _cx: &Context<'_>) -> Vec<Mark> {
        let (kind, key): (&'static str, fn(&Target) -> String) = match kind {
            "role" => ("role", |t| mark_key(None, id(t, "name"))),
            "database" => ("database", |t| mark_key(None, id(t, "name"))),
            "schema" => ("schema", |t| mark_key(t.identity_str("database"), id(t, "name"))),
            // Privileges and extensions carry no comment of their own: the journal's record
            // of what the stack applied proves their ownership.
            _ => return vec![Mark::Unsupported; targets.len()],
        };
        let marks = lock(&self.marks);
        targets
            .iter()
            .map(|t| match self.instance_of(t) {
                Ok((instance, _)) => {
                    marks.get(&(instance, kind, key(t))).cloned().unwrap_or(Mark::Unsupported)
                }
                Err(_) => Mark::Unsupported,
            })
            .collect()
    }

    fn unmark_hint(&self, kind: &str, target: &Target) -> String {
        let on = match kind {
            "schema" => {
                format!("SCHEMA {} (in database {})", ident(id(target, "name")), id(target, "database"))
            }
            _ => format!("{} {}", kind.to_uppercase(), ident(id(target, "name"))),
        };
        format!("remove the mark (COMMENT ON {on} IS NULL)")
    }

    fn set_mark(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<Applied, ProviderError> {
        let Some(statement) = Self::comment(kind, target, cx) else {
            return Ok(Applied::default());
        };
        let db = if kind == "schema" { target.identity_str("database") } else { None };
        self.execute(target, db, &[statement], false, &format!("cannot mark the {kind}"), cx)?;
        Ok(Applied::default())
    }

    fn discover(&self, kind: &str, _under: &str, cx: &Context<'_>) -> Result<Vec<Discovered>, ProviderError> {
        let instances = lock(&self.instances).clone();
        let mut out = Vec::new();
        for (instance, settings) in &instances {
            match kind {
                "role" => out.extend(self.discover_roles(instance, settings, cx)?),
                "database" => out.extend(self.discover_databases(instance, settings, cx)?),
                "schema" => out.extend(self.discover_schemas(instance, settings, cx)?),
                other => {
                    return Err(ProviderError::permanent(format!(
                        "the postgres provider cannot list every `{other}`: observe roles, databases or schemas"
                    )));
                }
            }
        }
        Ok(out)
    }
}
