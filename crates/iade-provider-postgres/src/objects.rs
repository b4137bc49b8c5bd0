//! Databases, schemas and extensions.

use std::collections::HashMap;

use iade_intent::Value;
use iade_provider::{Context, Discovered, Fields, Observed, ProviderError, Target, default_diff};
use postgres_protocol::escape::escape_literal;

use crate::{
    PostgresProvider, classify, discovered, flag, id, ident, in_database, int, lock, mark_key, str_list,
    text, word,
};

/// Every database a batch names on one server (`NULL`: every database).
const DATABASES: &str = "SELECT d.datname::text, pg_get_userbyid(d.datdba)::text, \
        pg_encoding_to_char(d.encoding)::text, d.datconnlimit, d.datallowconn, d.oid::int8, \
        CASE WHEN has_database_privilege(d.oid, 'CONNECT') THEN pg_database_size(d.oid) END, \
        c.description \
     FROM pg_database d LEFT JOIN pg_shdescription c \
          ON c.objoid = d.oid AND c.classoid = 'pg_database'::regclass \
     WHERE $1::text[] IS NULL OR d.datname = ANY($1) ORDER BY 1";

/// The schemas a batch names in one database (`NULL`: every schema but the system's), with
/// the privileges PUBLIC holds on each.
const SCHEMAS: &str = "SELECT n.nspname::text, pg_get_userbyid(n.nspowner)::text, \
        ARRAY(SELECT DISTINCT lower(a.privilege_type) \
              FROM aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a \
              WHERE a.grantee = 0 ORDER BY 1), \
        c.description \
     FROM pg_namespace n LEFT JOIN pg_description c \
          ON c.objoid = n.oid AND c.classoid = 'pg_namespace'::regclass AND c.objsubid = 0 \
     WHERE ($1::text[] IS NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema') \
        OR n.nspname = ANY($1) ORDER BY 1";

/// The extensions a batch names in one database.
const EXTENSIONS: &str = "SELECT e.extname::text, e.extversion, n.nspname::text \
     FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = ANY($1)";

impl PostgresProvider {
    fn read_databases(
        &self,
        instance: &str,
        settings: &Fields,
        wanted: Option<Vec<String>>,
        cx: &Context<'_>,
    ) -> Result<Vec<(String, Fields)>, ProviderError> {
        let rows = self.with_client(instance, settings, None, cx, |c| {
            c.query(DATABASES, &[&wanted]).map_err(|e| classify("cannot read the databases", &e))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let name: String = row.get(0);
            let mut f = Fields::new();
            f.insert("name".into(), Value::str(name.as_str()));
            f.insert("ensure".into(), word("present"));
            f.insert("owner".into(), Value::str(row.get::<_, String>(1).as_str()));
            f.insert("encoding".into(), Value::str(row.get::<_, String>(2).as_str()));
            f.insert("connection_limit".into(), Value::Int(i64::from(row.get::<_, i32>(3))));
            f.insert("allow_connections".into(), Value::Bool(row.get(4)));
            f.insert("oid".into(), Value::Int(row.get(5)));
            if let Some(size) = row.get::<_, Option<i64>>(6) {
                f.insert("size".into(), Value::Int(size));
            }
            let comment: Option<String> = row.get(7);
            self.remember_mark(instance, "database", mark_key(None, &name), comment.as_deref());
            out.push((name, f));
        }
        Ok(out)
    }

    pub(crate) fn observe_databases(
        &self,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        self.observe_named(
            "database",
            targets,
            |_| None,
            |instance, settings, _, wanted| self.read_databases(instance, settings, Some(wanted), cx),
        )
    }

    pub(crate) fn discover_databases(
        &self,
        instance: &str,
        settings: &Fields,
        cx: &Context<'_>,
    ) -> Result<Vec<Discovered>, ProviderError> {
        Ok(discovered(self.read_databases(instance, settings, None, cx)?))
    }

    pub(crate) fn apply_database(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let name = id(target, "name");
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
        statements.extend(Self::comment("database", target, cx));
        // CREATE DATABASE cannot run inside a transaction: one statement at a time.
        self.execute(target, None, &statements, false, &format!("cannot change database `{name}`"), cx)
    }

    fn read_schemas(
        &self,
        instance: &str,
        settings: &Fields,
        db: &str,
        wanted: Option<Vec<String>>,
        cx: &Context<'_>,
    ) -> Result<Vec<(String, Fields)>, ProviderError> {
        let rows = self.with_client(instance, settings, Some(db), cx, |c| {
            c.query(SCHEMAS, &[&wanted])
                .map_err(|e| classify(&format!("cannot read the schemas of `{db}`"), &e))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let name: String = row.get(0);
            let public: Vec<String> = row.get(2);
            let comment: Option<String> = row.get(3);
            let mut f = Fields::new();
            f.insert("database".into(), Value::str(db));
            f.insert("name".into(), Value::str(name.as_str()));
            f.insert("ensure".into(), word("present"));
            f.insert("owner".into(), Value::str(row.get::<_, String>(1).as_str()));
            f.insert("public_privileges".into(), str_list(&public));
            self.remember_mark(instance, "schema", mark_key(Some(db), &name), comment.as_deref());
            out.push((name, f));
        }
        Ok(out)
    }

    pub(crate) fn observe_schemas(
        &self,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        self.observe_named("schema", targets, in_database, |instance, settings, db, wanted| {
            self.read_schemas(instance, settings, db.unwrap_or_default(), Some(wanted), cx)
        })
    }

    /// Every schema of every database that accepts connections, but the system's.
    pub(crate) fn discover_schemas(
        &self,
        instance: &str,
        settings: &Fields,
        cx: &Context<'_>,
    ) -> Result<Vec<Discovered>, ProviderError> {
        let mut out = Vec::new();
        for (db, fields) in self.read_databases(instance, settings, None, cx)? {
            if !matches!(fields.get("allow_connections"), Some(Value::Bool(true))) {
                continue;
            }
            for (name, fields) in self.read_schemas(instance, settings, &db, None, cx)? {
                out.push(Discovered {
                    name: format!("{db}.{name}"),
                    identity: Fields::from([
                        ("database".to_string(), Value::str(db.as_str())),
                        ("name".to_string(), Value::str(name.as_str())),
                    ]),
                    fields,
                });
            }
        }
        Ok(out)
    }

    pub(crate) fn apply_schema(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let (db, name) = (id(target, "database"), id(target, "name"));
        let owner = text(&target.intended, "owner");
        let mut statements = vec![match (observed, &owner) {
            (Observed::Absent, Some(o)) => {
                format!("CREATE SCHEMA {} AUTHORIZATION {}", ident(name), ident(o))
            }
            (Observed::Absent, None) => format!("CREATE SCHEMA {}", ident(name)),
            (Observed::Present(_), Some(o)) => format!("ALTER SCHEMA {} OWNER TO {}", ident(name), ident(o)),
            (Observed::Present(_), None) => return Ok(()),
        }];
        statements.extend(Self::comment("schema", target, cx));
        self.execute(
            target,
            Some(db),
            &statements,
            true,
            &format!("cannot change schema `{name}` of `{db}`"),
            cx,
        )
    }

    pub(crate) fn observe_extensions(
        &self,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        self.observe_grouped(
            targets,
            in_database,
            |instance, settings, db, batch| {
                let db = db.unwrap_or_default();
                let wanted: Vec<String> = batch.iter().map(|t| id(t, "name").to_string()).collect();
                let rows = self.with_client(instance, settings, Some(db), cx, |c| {
                    c.query(EXTENSIONS, &[&wanted])
                        .map_err(|e| classify(&format!("cannot read the extensions of `{db}`"), &e))
                })?;
                Ok(rows
                    .iter()
                    .map(|r| (r.get::<_, String>(0), (r.get::<_, String>(1), r.get::<_, String>(2))))
                    .collect::<HashMap<_, _>>())
            },
            |found, _, t| match found.get(id(t, "name")) {
                Some((version, schema)) => {
                    let mut f = t.identity.clone();
                    f.insert("ensure".into(), word("present"));
                    f.insert("version".into(), Value::str(version.as_str()));
                    f.insert("schema".into(), Value::str(schema.as_str()));
                    Observed::Present(f)
                }
                None => Observed::Absent,
            },
        )
    }

    pub(crate) fn apply_extension(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let (db, name) = (id(target, "database"), id(target, "name"));
        let i = &target.intended;
        let mut statements = Vec::new();
        match observed {
            Observed::Absent => {
                let mut s = format!("CREATE EXTENSION {}", ident(name));
                if let Some(schema) = text(i, "schema") {
                    s.push_str(&format!(" SCHEMA {}", ident(&schema)));
                }
                if let Some(v) = text(i, "version") {
                    s.push_str(&format!(" VERSION {}", escape_literal(&v)));
                }
                statements.push(s);
            }
            Observed::Present(_) => {
                for c in default_diff(target, observed) {
                    match (c.field.as_str(), &c.intended) {
                        ("version", Value::Str(v)) => statements.push(format!(
                            "ALTER EXTENSION {} UPDATE TO {}",
                            ident(name),
                            escape_literal(v)
                        )),
                        ("schema", Value::Str(s)) => statements.push(format!(
                            "ALTER EXTENSION {} SET SCHEMA {}",
                            ident(name),
                            ident(s)
                        )),
                        _ => {}
                    }
                }
            }
        }
        self.execute(
            target,
            Some(db),
            &statements,
            true,
            &format!("cannot change extension `{name}` of `{db}`"),
            cx,
        )
    }

    /// Drops a database, a schema (only when empty) or an extension (only when nothing
    /// depends on it).
    pub(crate) fn drop_object(
        &self,
        kind: &str,
        target: &Target,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let name = id(target, "name");
        if kind == "database"
            && let Ok((instance, _)) = self.instance_of(target)
        {
            // A database with a connection open is not dropped: close this provider's own.
            lock(&self.clients).remove(&(instance, Some(name.to_string())));
        }
        let (db, statement) = match kind {
            "database" => (None, format!("DROP DATABASE IF EXISTS {}", ident(name))),
            "schema" => {
                (target.identity_str("database"), format!("DROP SCHEMA IF EXISTS {} RESTRICT", ident(name)))
            }
            _ => (
                target.identity_str("database"),
                format!("DROP EXTENSION IF EXISTS {} RESTRICT", ident(name)),
            ),
        };
        self.execute(target, db, &[statement], false, &format!("cannot drop {kind} `{name}`"), cx)
    }
}
