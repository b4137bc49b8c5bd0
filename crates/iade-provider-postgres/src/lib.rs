//! `postgres`: roles and databases of PostgreSQL servers (`std.postgres`), one connection per
//! `provider postgres NAME { url = … }` instance. Observed from the catalogs, one query per kind
//! and instance for a whole batch; changed with `CREATE`, `ALTER`, `GRANT`, `REVOKE` and `DROP`,
//! every identifier and literal quoted by the protocol crate's functions. A password is sent
//! only as a SCRAM-SHA-256 verifier computed here, and compared by verifying the stored
//! verifier against the secret: the plaintext never reaches the server, the journal or a log.

mod scram;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use iade_intent::Value;
use iade_provider::{
    Applied, Change, Context, Discovered, Fields, Observed, Provider, ProviderError, Target, default_diff,
    presence_diff, reveal,
};
use postgres_protocol::escape::{escape_identifier, escape_literal};

/// The provider: the stack's instances and a connection to each.
#[derive(Default)]
pub struct PostgresProvider {
    instances: Mutex<BTreeMap<String, Fields>>,
    clients: Mutex<HashMap<String, postgres::Client>>,
    /// Stored password verifiers, by instance and role, from the last observation: compared
    /// with a secret in `diff`, never part of what is observed.
    verifiers: Mutex<HashMap<(String, String), Option<String>>>,
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
                || code == "57P03"
                || code == "53300"
            {
                ProviderError::transient(message)
            } else {
                ProviderError::permanent(message)
            }
        }
        None => ProviderError::transient(format!("{what}: {e}")),
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

/// Privileges held on databases: `(database, role) → {privilege: grantable}`.
type Granted = HashMap<(String, String), BTreeMap<String, bool>>;

fn flag_observed(observed: &Observed, k: &str) -> bool {
    matches!(observed.field(k), Some(Value::Bool(true)))
}

fn names(v: Option<&Value>) -> Option<BTreeSet<String>> {
    match v {
        Some(Value::List(items)) => items
            .iter()
            .map(|i| match i {
                Value::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

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

    /// Runs `f` with the instance's connection, connecting (again) when needed.
    fn with_client<T>(
        &self,
        instance: &str,
        settings: &Fields,
        cx: &Context<'_>,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        self.with_db_client(instance, settings, None, cx, f)
    }

    /// Runs `f` with a connection of the instance to database `db` (its URL's when `None`).
    fn with_db_client<T>(
        &self,
        instance: &str,
        settings: &Fields,
        db: Option<&str>,
        cx: &Context<'_>,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let key = match db {
            Some(db) => format!("{instance}\u{0}{db}"),
            None => instance.to_string(),
        };
        let mut clients = lock(&self.clients);
        if clients.get(&key).is_none_or(postgres::Client::is_closed) {
            let url = match settings.get("url") {
                Some(v) => reveal(v, cx.secrets)?,
                None => {
                    return Err(ProviderError::permanent(format!(
                        "`provider postgres {instance}` has no `url`"
                    )));
                }
            };
            let mut config: postgres::Config = url.parse().map_err(|e| {
                ProviderError::permanent(format!("`provider postgres {instance}`: the url is not valid: {e}"))
            })?;
            if let Some(p) = settings.get("password") {
                config.password(reveal(p, cx.secrets)?);
            }
            config.application_name("iade");
            if let Some(db) = db {
                config.dbname(db);
            }
            config.connect_timeout(std::time::Duration::from_secs(10));
            let client = config
                .connect(postgres::NoTls)
                .map_err(|e| classify(&format!("cannot connect to `{instance}`"), &e))?;
            clients.insert(instance.to_string(), client);
        }
        let client =
            clients.get_mut(instance).ok_or_else(|| ProviderError::transient("lost the connection"))?;
        f(client)
    }

    fn observe_roles(
        &self,
        instance: &str,
        settings: &Fields,
        wanted: &[String],
        cx: &Context<'_>,
    ) -> Result<HashMap<String, Fields>, ProviderError> {
        let rows = self.with_client(instance, settings, cx, |c| {
            c.query(
                "SELECT a.rolname, a.rolsuper, a.rolcreatedb, a.rolcreaterole, a.rolinherit, a.rolreplication, \
                        a.rolcanlogin, a.rolconnlimit, a.rolpassword, a.oid::int8, \
                        ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
                              WHERE m.member = a.oid ORDER BY 1) \
                 FROM pg_authid a WHERE a.rolname = ANY($1)",
                &[&wanted],
            )
            .map_err(|e| classify("cannot read the roles", &e))
        })?;
        let mut out = HashMap::new();
        let mut verifiers = lock(&self.verifiers);
        for row in rows {
            let name: String = row.get(0);
            let password: Option<String> = row.get(8);
            let member_of: Vec<String> = row.get(10);
            let mut f = Fields::new();
            f.insert("name".into(), Value::str(name.as_str()));
            f.insert("ensure".into(), Value::Enum(Arc::from("present")));
            f.insert("superuser".into(), Value::Bool(row.get(1)));
            f.insert("createdb".into(), Value::Bool(row.get(2)));
            f.insert("createrole".into(), Value::Bool(row.get(3)));
            f.insert("inherit".into(), Value::Bool(row.get(4)));
            f.insert("replication".into(), Value::Bool(row.get(5)));
            f.insert("login".into(), Value::Bool(row.get(6)));
            f.insert("connection_limit".into(), Value::Int(i64::from(row.get::<_, i32>(7))));
            f.insert("oid".into(), Value::Int(row.get(9)));
            let state = if password.is_some() { "set" } else { "none" };
            f.insert("password_state".into(), Value::Enum(Arc::from(state)));
            f.insert(
                "member_of".into(),
                Value::List(Arc::new(member_of.iter().map(|m| Value::str(m.as_str())).collect())),
            );
            verifiers.insert((instance.to_string(), name.clone()), password);
            out.insert(name, f);
        }
        Ok(out)
    }

    fn observe_databases(
        &self,
        instance: &str,
        settings: &Fields,
        wanted: &[String],
        cx: &Context<'_>,
    ) -> Result<HashMap<String, Fields>, ProviderError> {
        let rows = self.with_client(instance, settings, cx, |c| {
            c.query(
                "SELECT d.datname, pg_get_userbyid(d.datdba)::text, pg_encoding_to_char(d.encoding)::text, \
                        d.datconnlimit, d.datallowconn, d.oid::int8, \
                        CASE WHEN has_database_privilege(d.oid, 'CONNECT') THEN pg_database_size(d.oid) END \
                 FROM pg_database d WHERE d.datname = ANY($1)",
                &[&wanted],
            )
            .map_err(|e| classify("cannot read the databases", &e))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let name: String = row.get(0);
            let mut f = Fields::new();
            f.insert("name".into(), Value::str(name.as_str()));
            f.insert("ensure".into(), Value::Enum(Arc::from("present")));
            f.insert("owner".into(), Value::str(row.get::<_, String>(1).as_str()));
            f.insert("encoding".into(), Value::str(row.get::<_, String>(2).as_str()));
            f.insert("connection_limit".into(), Value::Int(i64::from(row.get::<_, i32>(3))));
            f.insert("allow_connections".into(), Value::Bool(row.get(4)));
            f.insert("oid".into(), Value::Int(row.get(5)));
            if let Some(size) = row.get::<_, Option<i64>>(6) {
                f.insert("size".into(), Value::Int(size));
            }
            out.insert(name, f);
        }
        Ok(out)
    }

    /// Database privileges of a batch's grants: `(database, role) → {privilege: grantable}`.
    fn observe_grants(
        &self,
        instance: &str,
        settings: &Fields,
        databases: &[String],
        cx: &Context<'_>,
    ) -> Result<Granted, ProviderError> {
        let rows = self.with_client(instance, settings, cx, |c| {
            c.query(
                "SELECT d.datname::text, r.rolname::text, lower(a.privilege_type), a.is_grantable \
                 FROM pg_database d, aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a \
                 JOIN pg_roles r ON r.oid = a.grantee WHERE d.datname = ANY($1)",
                &[&databases],
            )
            .map_err(|e| classify("cannot read the database privileges", &e))
        })?;
        let mut out = Granted::new();
        for row in rows {
            out.entry((row.get(0), row.get(1))).or_default().insert(row.get(2), row.get(3));
        }
        Ok(out)
    }

    /// The schemas a batch names in one database: name → owner.
    fn observe_schemas(
        &self,
        instance: &str,
        settings: &Fields,
        db: &str,
        wanted: &[String],
        cx: &Context<'_>,
    ) -> Result<HashMap<String, String>, ProviderError> {
        let rows = self.with_db_client(instance, settings, Some(db), cx, |c| {
            c.query(
                "SELECT nspname::text, pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = ANY($1)",
                &[&wanted],
            )
            .map_err(|e| classify(&format!("cannot read the schemas of `{db}`"), &e))
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn apply_schema(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let (instance, settings) = self.instance_of(target)?;
        let (Some(db), Some(name)) = (target.identity_str("database"), target.identity_str("name")) else {
            return Err(ProviderError::permanent("a schema needs a database and a name"));
        };
        let owner = text(&target.intended, "owner");
        let statement = match (observed, &owner) {
            (Observed::Absent, Some(o)) => {
                format!("CREATE SCHEMA {} AUTHORIZATION {}", ident(name), ident(o))
            }
            (Observed::Absent, None) => format!("CREATE SCHEMA {}", ident(name)),
            (Observed::Present(_), Some(o)) => format!("ALTER SCHEMA {} OWNER TO {}", ident(name), ident(o)),
            (Observed::Present(_), None) => return Ok(()),
        };
        self.with_db_client(&instance, &settings, Some(db), cx, |c| {
            c.batch_execute(&statement)
                .map_err(|e| classify(&format!("cannot change schema `{name}` of `{db}`"), &e))
        })
    }

    /// The privileges a grant's `privilege` stands for.
    fn privileges(target: &Target) -> Vec<&'static str> {
        match target.identity.get("privilege") {
            Some(Value::Enum(p)) => match p.as_ref() {
                "connect" => vec!["connect"],
                "create" => vec!["create"],
                "temporary" => vec!["temporary"],
                _ => vec!["connect", "create", "temporary"],
            },
            _ => Vec::new(),
        }
    }

    fn apply_grant(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let (instance, settings) = self.instance_of(target)?;
        let (Some(role), Some(db)) = (target.identity_str("role"), target.identity_str("database")) else {
            return Err(ProviderError::permanent("a grant needs a role and a database"));
        };
        let privileges = Self::privileges(target).join(", ").to_uppercase();
        let option = flag(&target.intended, "with_grant_option").unwrap_or(false);
        let mut statements = Vec::new();
        if matches!(observed, Observed::Absent) || option {
            statements.push(format!(
                "GRANT {privileges} ON DATABASE {} TO {}{}",
                ident(db),
                ident(role),
                if option { " WITH GRANT OPTION" } else { "" }
            ));
        }
        if !option && flag_observed(observed, "with_grant_option") {
            statements.push(format!(
                "REVOKE GRANT OPTION FOR {privileges} ON DATABASE {} FROM {}",
                ident(db),
                ident(role)
            ));
        }
        self.with_client(&instance, &settings, cx, |c| {
            for s in &statements {
                c.batch_execute(s)
                    .map_err(|e| classify(&format!("cannot grant on `{db}` to `{role}`"), &e))?;
            }
            Ok(())
        })
    }

    /// The role's changes: attributes by the default comparison, `member_of` as a set, and
    /// the password by verifying the stored verifier against the secret.
    fn role_changes(&self, target: &Target, observed: &Observed, cx: &Context<'_>) -> Vec<Change> {
        let mut plain = target.clone();
        plain.intended.remove("password");
        let mut out: Vec<Change> = default_diff(&plain, observed)
            .into_iter()
            .filter(|c| c.field != "member_of" || names(c.observed.as_ref()) != names(Some(&c.intended)))
            .collect();
        if let (Some(secret), Observed::Present(_), Some(name)) =
            (target.intended.get("password"), observed, target.identity_str("name"))
        {
            let stored = self
                .instance_of(target)
                .ok()
                .and_then(|(i, _)| lock(&self.verifiers).get(&(i, name.to_string())).cloned())
                .flatten();
            match reveal(secret, cx.secrets) {
                Ok(password) if stored.as_deref().is_some_and(|v| scram::verify(v, &password)) => {}
                Ok(_) => out.push(Change::new("password", None, secret.clone()).shown(
                    Some(if stored.is_some() { "another password" } else { "none" }.into()),
                    "the intended password",
                )),
                Err(e) => out.push(Change::unknown("password", secret.clone(), e.message)),
            }
        }
        out
    }

    fn apply_role(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let name =
            target.identity_str("name").ok_or_else(|| ProviderError::permanent("a role needs a name"))?;
        let (instance, settings) = self.instance_of(target)?;
        let i = &target.intended;
        let changed: BTreeSet<String> = match observed {
            Observed::Absent => i.keys().cloned().collect(),
            Observed::Present(_) => {
                self.role_changes(target, observed, cx).into_iter().map(|c| c.field).collect()
            }
        };
        let mut options = Vec::new();
        for (field, yes, no) in [
            ("login", "LOGIN", "NOLOGIN"),
            ("superuser", "SUPERUSER", "NOSUPERUSER"),
            ("createdb", "CREATEDB", "NOCREATEDB"),
            ("createrole", "CREATEROLE", "NOCREATEROLE"),
            ("inherit", "INHERIT", "NOINHERIT"),
            ("replication", "REPLICATION", "NOREPLICATION"),
        ] {
            if let (true, Some(b)) = (changed.contains(field), flag(i, field)) {
                options.push(if b { yes } else { no }.to_string());
            }
        }
        if let (true, Some(n)) = (changed.contains("connection_limit"), int(i, "connection_limit")) {
            options.push(format!("CONNECTION LIMIT {n}"));
        }
        if let (true, Some(secret)) = (changed.contains("password"), i.get("password")) {
            let password = reveal(secret, cx.secrets)?;
            let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
            options.push(format!("PASSWORD {}", escape_literal(&verifier)));
        }
        let mut statements = Vec::new();
        match observed {
            Observed::Absent => {
                statements.push(format!("CREATE ROLE {} WITH {}", ident(name), options.join(" ")))
            }
            Observed::Present(_) if !options.is_empty() => {
                statements.push(format!("ALTER ROLE {} WITH {}", ident(name), options.join(" ")));
            }
            Observed::Present(_) => {}
        }
        if changed.contains("member_of")
            && let Some(wanted) = names(i.get("member_of"))
        {
            let have = names(observed.field("member_of")).unwrap_or_default();
            for g in wanted.difference(&have) {
                statements.push(format!("GRANT {} TO {}", ident(g), ident(name)));
            }
            for g in have.difference(&wanted) {
                statements.push(format!("REVOKE {} FROM {}", ident(g), ident(name)));
            }
        }
        if statements.is_empty() {
            return Ok(());
        }
        self.with_client(&instance, &settings, cx, |c| {
            let mut tx = c.transaction().map_err(|e| classify("cannot begin", &e))?;
            for s in &statements {
                tx.batch_execute(s).map_err(|e| classify(&format!("cannot change role `{name}`"), &e))?;
            }
            tx.commit().map_err(|e| classify(&format!("cannot change role `{name}`"), &e))
        })
    }

    fn apply_database(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let name =
            target.identity_str("name").ok_or_else(|| ProviderError::permanent("a database needs a name"))?;
        let (instance, settings) = self.instance_of(target)?;
        let i = &target.intended;
        let mut statements = Vec::new();
        match observed {
            Observed::Absent => {
                let mut s = format!("CREATE DATABASE {} TEMPLATE template0", ident(name));
                if let Some(owner) = text(i, "owner") {
                    s.push_str(&format!(" OWNER {}", ident(&owner)));
                }
                if let Some(enc) = text(i, "encoding") {
                    s.push_str(&format!(" ENCODING {}", escape_literal(&enc)));
                }
                if let Some(n) = int(i, "connection_limit") {
                    s.push_str(&format!(" CONNECTION LIMIT {n}"));
                }
                if let Some(b) = flag(i, "allow_connections") {
                    s.push_str(&format!(" ALLOW_CONNECTIONS {b}"));
                }
                statements.push(s);
            }
            Observed::Present(_) => {
                for c in default_diff(target, observed) {
                    match c.field.as_str() {
                        "owner" => {
                            if let Some(o) = text(i, "owner") {
                                statements.push(format!(
                                    "ALTER DATABASE {} OWNER TO {}",
                                    ident(name),
                                    ident(&o)
                                ));
                            }
                        }
                        "connection_limit" => {
                            if let Some(n) = int(i, "connection_limit") {
                                statements
                                    .push(format!("ALTER DATABASE {} CONNECTION LIMIT {n}", ident(name)));
                            }
                        }
                        "allow_connections" => {
                            if let Some(b) = flag(i, "allow_connections") {
                                statements
                                    .push(format!("ALTER DATABASE {} ALLOW_CONNECTIONS {b}", ident(name)));
                            }
                        }
                        "encoding" => {
                            return Err(ProviderError::permanent(format!(
                                "database `{name}` has another encoding; PostgreSQL fixes it when a database is created, so iade reports it and changes nothing"
                            )));
                        }
                        _ => {}
                    }
                }
            }
        }
        // CREATE DATABASE cannot run inside a transaction: one statement at a time.
        self.with_client(&instance, &settings, cx, |c| {
            for s in &statements {
                c.batch_execute(s).map_err(|e| classify(&format!("cannot change database `{name}`"), &e))?;
            }
            Ok(())
        })
    }
}

impl PostgresProvider {
    fn observe_grant_batch(
        &self,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        let mut by_instance: BTreeMap<String, (Fields, BTreeSet<String>)> = BTreeMap::new();
        for t in targets {
            if let Ok((name, settings)) = self.instance_of(t) {
                let entry = by_instance.entry(name).or_insert((settings, BTreeSet::new()));
                entry.1.insert(t.identity_str("database").unwrap_or_default().to_string());
            }
        }
        let mut found = BTreeMap::new();
        for (instance, (settings, dbs)) in &by_instance {
            let dbs: Vec<String> = dbs.iter().cloned().collect();
            found.insert(instance.clone(), self.observe_grants(instance, settings, &dbs, cx));
        }
        targets
            .iter()
            .map(|t| {
                let (instance, _) = self.instance_of(t)?;
                let granted = match found.get(&instance) {
                    Some(Ok(g)) => g,
                    Some(Err(e)) => return Err(e.clone()),
                    None => return Err(ProviderError::transient("not observed")),
                };
                let key = (
                    t.identity_str("database").unwrap_or_default().to_string(),
                    t.identity_str("role").unwrap_or_default().to_string(),
                );
                let have = granted.get(&key);
                let wanted = Self::privileges(t);
                let all = have.is_some_and(|h| wanted.iter().all(|p| h.contains_key(*p)));
                if !all {
                    return Ok(Observed::Absent);
                }
                let grantable = have.is_some_and(|h| wanted.iter().all(|p| h.get(*p) == Some(&true)));
                let mut f = t.identity.clone();
                f.insert("ensure".into(), Value::Enum(Arc::from("present")));
                f.insert("with_grant_option".into(), Value::Bool(grantable));
                Ok(Observed::Present(f))
            })
            .collect()
    }
}

impl Provider for PostgresProvider {
    fn name(&self) -> &str {
        "postgres"
    }

    fn configure(&self, instances: &BTreeMap<String, Fields>) {
        let mut current = lock(&self.instances);
        if *current != *instances {
            lock(&self.clients).clear();
            *current = instances.clone();
        }
    }

    fn observe(
        &self,
        kind: &str,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        if kind == "grant" {
            return self.observe_grant_batch(targets, cx);
        }
        if kind == "schema" {
            // One query per instance and database for the whole batch.
            let mut wanted: BTreeMap<(String, String), (Fields, Vec<String>)> = BTreeMap::new();
            for t in targets {
                if let Ok((instance, settings)) = self.instance_of(t) {
                    let db = t.identity_str("database").unwrap_or_default().to_string();
                    let entry = wanted.entry((instance, db)).or_insert((settings, Vec::new()));
                    entry.1.push(t.identity_str("name").unwrap_or_default().to_string());
                }
            }
            let mut found = BTreeMap::new();
            for ((instance, db), (settings, names)) in &wanted {
                found.insert(
                    (instance.clone(), db.clone()),
                    self.observe_schemas(instance, settings, db, names, cx),
                );
            }
            return targets
                .iter()
                .map(|t| {
                    let (instance, _) = self.instance_of(t)?;
                    let (db, name) = (
                        t.identity_str("database").unwrap_or_default(),
                        t.identity_str("name").unwrap_or_default(),
                    );
                    let owners = match found.get(&(instance, db.to_string())) {
                        Some(Ok(o)) => o,
                        Some(Err(e)) => return Err(e.clone()),
                        None => return Err(ProviderError::transient("not observed")),
                    };
                    Ok(match owners.get(name) {
                        Some(owner) => {
                            let mut f = t.identity.clone();
                            f.insert("ensure".into(), Value::Enum(Arc::from("present")));
                            f.insert("owner".into(), Value::str(owner.as_str()));
                            Observed::Present(f)
                        }
                        None => Observed::Absent,
                    })
                })
                .collect();
        }
        // One query per instance for the whole batch.
        let mut by_instance: BTreeMap<String, (Fields, Vec<String>)> = BTreeMap::new();
        let mut chosen = Vec::new();
        for t in targets {
            match self.instance_of(t) {
                Ok((name, settings)) => {
                    let entry = by_instance.entry(name.clone()).or_insert((settings, Vec::new()));
                    entry.1.push(t.identity_str("name").unwrap_or_default().to_string());
                    chosen.push(Ok(name));
                }
                Err(e) => chosen.push(Err(e)),
            }
        }
        let mut found: BTreeMap<String, Result<HashMap<String, Fields>, ProviderError>> = BTreeMap::new();
        for (instance, (settings, wanted)) in &by_instance {
            let result = match kind {
                "role" => self.observe_roles(instance, settings, wanted, cx),
                "database" => self.observe_databases(instance, settings, wanted, cx),
                other => Err(ProviderError::permanent(format!(
                    "the postgres provider does not manage `{other}` yet"
                ))),
            };
            found.insert(instance.clone(), result);
        }
        targets
            .iter()
            .zip(chosen)
            .map(|(t, instance)| {
                let instance = instance?;
                let name = t.identity_str("name").unwrap_or_default();
                match found.get(&instance) {
                    Some(Ok(objects)) => {
                        Ok(objects.get(name).cloned().map_or(Observed::Absent, Observed::Present))
                    }
                    Some(Err(e)) => Err(e.clone()),
                    None => Err(ProviderError::transient("not observed")),
                }
            })
            .collect()
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
            "grant" => self.apply_grant(target, observed, cx),
            "schema" => self.apply_schema(target, observed, cx),
            other => {
                Err(ProviderError::permanent(format!("the postgres provider does not manage `{other}` yet")))
            }
        }
        .map(|()| Applied::default())
    }

    fn delete(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<Applied, ProviderError> {
        let (instance, settings) = self.instance_of(target)?;
        if kind == "grant" {
            let (Some(role), Some(db)) = (target.identity_str("role"), target.identity_str("database"))
            else {
                return Err(ProviderError::permanent("a grant needs a role and a database"));
            };
            let statement = format!(
                "REVOKE {} ON DATABASE {} FROM {}",
                Self::privileges(target).join(", ").to_uppercase(),
                ident(db),
                ident(role)
            );
            self.with_client(&instance, &settings, cx, |c| {
                c.batch_execute(&statement)
                    .map_err(|e| classify(&format!("cannot revoke on `{db}` from `{role}`"), &e))
            })?;
            return Ok(Applied::default());
        }
        if kind == "schema" {
            let (Some(db), Some(name)) = (target.identity_str("database"), target.identity_str("name"))
            else {
                return Err(ProviderError::permanent("a schema needs a database and a name"));
            };
            // RESTRICT: a schema is dropped only when it is empty.
            let statement = format!("DROP SCHEMA IF EXISTS {} RESTRICT", ident(name));
            self.with_db_client(&instance, &settings, Some(db), cx, |c| {
                c.batch_execute(&statement)
                    .map_err(|e| classify(&format!("cannot drop schema `{name}` of `{db}`"), &e))
            })?;
            return Ok(Applied::default());
        }
        let name = target.identity_str("name").ok_or_else(|| ProviderError::permanent("no name"))?;
        let statement = match kind {
            "role" => format!("DROP ROLE IF EXISTS {}", ident(name)),
            "database" => format!("DROP DATABASE IF EXISTS {}", ident(name)),
            other => {
                return Err(ProviderError::permanent(format!(
                    "the postgres provider does not manage `{other}` yet"
                )));
            }
        };
        self.with_client(&instance, &settings, cx, |c| {
            c.batch_execute(&statement).map_err(|e| classify(&format!("cannot drop `{name}`"), &e))
        })?;
        Ok(Applied::default())
    }

    fn discover(&self, kind: &str, _under: &str, cx: &Context<'_>) -> Result<Vec<Discovered>, ProviderError> {
        let instances = lock(&self.instances).clone();
        let mut out = Vec::new();
        for (instance, settings) in &instances {
            let all: Vec<String> = self.with_client(instance, settings, cx, |c| {
                let q = match kind {
                    "role" => "SELECT rolname::text FROM pg_roles ORDER BY 1",
                    _ => "SELECT datname::text FROM pg_database ORDER BY 1",
                };
                let rows = c.query(q, &[]).map_err(|e| classify("cannot list", &e))?;
                Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
            })?;
            let found = match kind {
                "role" => self.observe_roles(instance, settings, &all, cx)?,
                _ => self.observe_databases(instance, settings, &all, cx)?,
            };
            for name in all {
                let Some(fields) = found.get(&name) else { continue };
                out.push(Discovered {
                    name: name.clone(),
                    identity: Fields::from([("name".to_string(), Value::str(name.as_str()))]),
                    fields: fields.clone(),
                });
            }
        }
        Ok(out)
    }
}
