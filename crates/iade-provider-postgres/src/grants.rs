//! Privileges: on databases (`grant`), on schemas (`schema_grant`), and on every table of a
//! schema, now and, with default privileges, in the future (`table_grant`). Observed from the
//! ACLs with one query per server or database for a batch. The grantee `PUBLIC` stands for
//! every role.

use std::collections::{BTreeMap, HashMap, HashSet};

use iade_intent::Value;
use iade_provider::{Context, Observed, ProviderError, Target};

use crate::{PostgresProvider, classify, flag, flag_observed, id, ident, in_database, text, word};

/// Privileges held on databases or schemas: `(object, grantee) → {privilege: grantable}`.
type Granted = HashMap<(String, String), BTreeMap<String, bool>>;

const DATABASE_ACL: &str = "SELECT d.datname::text, COALESCE(r.rolname::text, 'PUBLIC'), \
        lower(a.privilege_type), a.is_grantable \
     FROM pg_database d, aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a \
     LEFT JOIN pg_roles r ON r.oid = a.grantee WHERE d.datname = ANY($1)";

const SCHEMA_ACL: &str = "SELECT n.nspname::text, COALESCE(r.rolname::text, 'PUBLIC'), \
        lower(a.privilege_type), a.is_grantable \
     FROM pg_namespace n, aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a \
     LEFT JOIN pg_roles r ON r.oid = a.grantee WHERE n.nspname = ANY($1)";

/// For the schemas of a batch: how many tables each has (`tables`), on how many of them each
/// grantee holds each privilege (`table`), and the default privileges of future tables
/// (`default`, with the role whose tables they apply to).
const TABLE_ACL: &str = "WITH t AS ( \
        SELECT n.nspname::text AS schema, c.relacl, c.relowner FROM pg_class c \
        JOIN pg_namespace n ON n.oid = c.relnamespace \
        WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) \
     SELECT 'tables', schema, '', '', '', count(*)::int8 FROM t GROUP BY schema \
     UNION ALL \
     SELECT 'table', t.schema, '', COALESCE(r.rolname::text, 'PUBLIC'), lower(a.privilege_type), count(*)::int8 \
     FROM t, aclexplode(COALESCE(t.relacl, acldefault('r', t.relowner))) a \
     LEFT JOIN pg_roles r ON r.oid = a.grantee GROUP BY 2, 4, 5 \
     UNION ALL \
     SELECT 'default', n.nspname::text, pg_get_userbyid(d.defaclrole)::text, \
            COALESCE(r.rolname::text, 'PUBLIC'), lower(a.privilege_type), 0 \
     FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a \
     LEFT JOIN pg_roles r ON r.oid = a.grantee \
     WHERE d.defaclobjtype = 'r' AND n.nspname = ANY($1)";

/// What a database's tables grant, by schema.
#[derive(Default)]
struct TableAcl {
    tables: HashMap<String, i64>,
    /// `(schema, grantee, privilege)` → on how many tables.
    held: HashMap<(String, String, String), i64>,
    /// `(owner of future tables, schema, grantee, privilege)`.
    defaults: HashSet<(String, String, String, String)>,
}

/// A grantee as SQL: `PUBLIC` is a keyword, any other name an identifier.
fn grantee(role: &str) -> String {
    if role.eq_ignore_ascii_case("public") { "PUBLIC".to_string() } else { ident(role) }
}

/// A grantee as the catalogs name it.
fn grantee_key(role: &str) -> String {
    if role.eq_ignore_ascii_case("public") { "PUBLIC".to_string() } else { role.to_string() }
}

/// The privileges a grant's `privilege` stands for on `kind`'s objects.
fn privileges(kind: &str, target: &Target) -> Vec<&'static str> {
    let all: &[&'static str] = match kind {
        "grant" => &["connect", "create", "temporary"],
        "schema_grant" => &["usage", "create"],
        _ => &["select", "insert", "update", "delete", "truncate", "references", "trigger"],
    };
    match target.identity.get("privilege").and_then(Value::as_text).as_deref() {
        Some("all") => all.to_vec(),
        Some(p) => all.iter().copied().filter(|a| *a == p).collect(),
        None => Vec::new(),
    }
}

fn sql_privileges(kind: &str, target: &Target) -> String {
    privileges(kind, target).join(", ").to_uppercase()
}

/// Whether a grant is present on an ACL: every privilege it stands for is held.
fn acl_observed(kind: &str, granted: &Granted, object: &str, t: &Target) -> Observed {
    let have = granted.get(&(object.to_string(), grantee_key(id(t, "role"))));
    let wanted = privileges(kind, t);
    if !have.is_some_and(|h| wanted.iter().all(|p| h.contains_key(*p))) {
        return Observed::Absent;
    }
    let grantable = have.is_some_and(|h| wanted.iter().all(|p| h.get(*p) == Some(&true)));
    let mut f = t.identity.clone();
    f.insert("ensure".into(), word("present"));
    f.insert("with_grant_option".into(), Value::Bool(grantable));
    Observed::Present(f)
}

fn read_acl(
    c: &mut postgres::Client,
    query: &str,
    objects: &[String],
    what: &str,
) -> Result<Granted, ProviderError> {
    let rows = c.query(query, &[&objects]).map_err(|e| classify(what, &e))?;
    let mut out = Granted::new();
    for row in rows {
        out.entry((row.get(0), row.get(1))).or_default().insert(row.get(2), row.get(3));
    }
    Ok(out)
}

impl PostgresProvider {
    /// Grants on databases (`grant`, read from the server's catalog) or on schemas
    /// (`schema_grant`, read in their database), from the objects' ACLs.
    pub(crate) fn observe_acl_grants(
        &self,
        kind: &str,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        let (object, query, what): (&str, &str, &str) = match kind {
            "grant" => ("database", DATABASE_ACL, "cannot read the database privileges"),
            _ => ("schema", SCHEMA_ACL, "cannot read the schema privileges"),
        };
        let scope = |t: &Target| if kind == "grant" { None } else { in_database(t) };
        self.observe_grouped(
            targets,
            scope,
            |instance, settings, db, batch| {
                let objects: Vec<String> = batch.iter().map(|t| id(t, object).to_string()).collect();
                self.with_client(instance, settings, db, cx, |c| read_acl(c, query, &objects, what))
            },
            |granted, _, t| acl_observed(kind, granted, id(t, object), t),
        )
    }

    pub(crate) fn observe_table_grants(
        &self,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        self.observe_grouped(
            targets,
            in_database,
            |instance, settings, db, batch| {
                let schemas: Vec<String> = batch.iter().map(|t| id(t, "schema").to_string()).collect();
                let rows = self.with_client(instance, settings, db, cx, |c| {
                    c.query(TABLE_ACL, &[&schemas])
                        .map_err(|e| classify("cannot read the table privileges", &e))
                })?;
                let mut acl = TableAcl::default();
                for r in rows {
                    let (tag, schema): (String, String) = (r.get(0), r.get(1));
                    match tag.as_str() {
                        "tables" => {
                            acl.tables.insert(schema, r.get(5));
                        }
                        "table" => {
                            acl.held.insert((schema, r.get(3), r.get(4)), r.get(5));
                        }
                        _ => {
                            acl.defaults.insert((r.get(2), schema, r.get(3), r.get(4)));
                        }
                    }
                }
                Ok(acl)
            },
            |acl, _, t| table_grant_observed(acl, t),
        )
    }

    pub(crate) fn apply_database_grant(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let on = format!("DATABASE {}", ident(id(target, "database")));
        self.apply_acl_grant("grant", &on, None, target, observed, cx)
    }

    pub(crate) fn apply_schema_grant(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let on = format!("SCHEMA {}", ident(id(target, "schema")));
        self.apply_acl_grant("schema_grant", &on, target.identity_str("database"), target, observed, cx)
    }

    fn apply_acl_grant(
        &self,
        kind: &str,
        on: &str,
        db: Option<&str>,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let (privileges, to) = (sql_privileges(kind, target), grantee(id(target, "role")));
        let option = flag(&target.intended, "with_grant_option").unwrap_or(false);
        let mut statements = Vec::new();
        if matches!(observed, Observed::Absent) || option {
            let with = if option { " WITH GRANT OPTION" } else { "" };
            statements.push(format!("GRANT {privileges} ON {on} TO {to}{with}"));
        }
        if !option && flag_observed(observed, "with_grant_option") {
            statements.push(format!("REVOKE GRANT OPTION FOR {privileges} ON {on} FROM {to}"));
        }
        self.execute(target, db, &statements, true, &format!("cannot grant on {on} to {to}"), cx)
    }

    pub(crate) fn apply_table_grant(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let (privileges, to) = (sql_privileges("table_grant", target), grantee(id(target, "role")));
        let schema = ident(id(target, "schema"));
        let mut statements = Vec::new();
        if matches!(observed, Observed::Absent) {
            statements.push(format!("GRANT {privileges} ON ALL TABLES IN SCHEMA {schema} TO {to}"));
        }
        let future = text(&target.intended, "future_for");
        if let Some(owner) = &future
            && observed.field("future_for") != Some(&Value::str(owner.as_str()))
        {
            statements.push(format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {schema} GRANT {privileges} ON TABLES TO {to}",
                ident(owner)
            ));
        }
        let db = target.identity_str("database");
        self.execute(
            target,
            db,
            &statements,
            true,
            &format!("cannot grant on the tables of {schema} to {to}"),
            cx,
        )
    }

    /// Revokes a grant; a `table_grant` also its default privileges for future tables.
    pub(crate) fn revoke(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<(), ProviderError> {
        let (privileges, from) = (sql_privileges(kind, target), grantee(id(target, "role")));
        let (db, statements) = match kind {
            "grant" => {
                let on = ident(id(target, "database"));
                (None, vec![format!("REVOKE {privileges} ON DATABASE {on} FROM {from}")])
            }
            "schema_grant" => {
                let on = ident(id(target, "schema"));
                (
                    target.identity_str("database"),
                    vec![format!("REVOKE {privileges} ON SCHEMA {on} FROM {from}")],
                )
            }
            _ => {
                let schema = ident(id(target, "schema"));
                let mut s = vec![format!("REVOKE {privileges} ON ALL TABLES IN SCHEMA {schema} FROM {from}")];
                if let Some(owner) = text(&target.intended, "future_for") {
                    s.push(format!(
                        "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {schema} REVOKE {privileges} ON TABLES FROM {from}",
                        ident(&owner)
                    ));
                }
                (target.identity_str("database"), s)
            }
        };
        self.execute(target, db, &statements, true, &format!("cannot revoke from {from}"), cx)
    }
}

/// A table grant that should exist is present when every table of the schema holds its
/// privileges (a table created since lacks them: the grant is made again); one that should
/// not exist is present while any table, or the default privileges, still grant them.
fn table_grant_observed(acl: &TableAcl, t: &Target) -> Observed {
    let (schema, role) = (id(t, "schema").to_string(), grantee_key(id(t, "role")));
    let tables = acl.tables.get(&schema).copied().unwrap_or(0);
    let wanted = privileges("table_grant", t);
    let on = |p: &str| acl.held.get(&(schema.clone(), role.clone(), p.to_string())).copied().unwrap_or(0);
    let future_owner = text(&t.intended, "future_for");
    let future_of = |owner: &str| {
        wanted
            .iter()
            .all(|p| acl.defaults.contains(&(owner.to_string(), schema.clone(), role.clone(), p.to_string())))
    };
    let any_future =
        acl.defaults.iter().any(|(_, s, r, p)| *s == schema && *r == role && wanted.contains(&p.as_str()));
    let present = if t.wants_present() {
        wanted.iter().all(|p| on(p) == tables)
    } else {
        wanted.iter().any(|p| on(p) > 0) || any_future
    };
    if !present {
        return Observed::Absent;
    }
    let mut f = t.identity.clone();
    f.insert("ensure".into(), word("present"));
    if let Some(owner) = future_owner.filter(|o| future_of(o)) {
        f.insert("future_for".into(), Value::str(owner.as_str()));
    }
    Observed::Present(f)
}
