//! Roles: attributes, exclusive memberships and the password, verified against the stored
//! SCRAM-SHA-256 verifier and sent only as a new verifier.

use std::collections::BTreeSet;

use iade_intent::Value;
use iade_provider::{
    Change, Context, Discovered, Fields, Observed, ProviderError, Target, default_diff, name_set, reveal,
};
use postgres_protocol::escape::escape_literal;

use crate::{
    PostgresProvider, classify, discovered, flag, id, ident, int, lock, mark_key, scram, str_list, word,
};

/// One query for every role a batch names on one server (`None`: every role).
const ROLES: &str = "SELECT a.rolname::text, a.rolsuper, a.rolcreatedb, a.rolcreaterole, a.rolinherit, \
        a.rolreplication, a.rolcanlogin, a.rolconnlimit, a.rolpassword, a.oid::int8, \
        COALESCE(ms.groups, '{}'), \
        c.description, \
        CASE WHEN a.rolvaliduntil = 'infinity' THEN 'infinity' \
             ELSE to_char(a.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END \
     FROM pg_authid a LEFT JOIN pg_shdescription c \
          ON c.objoid = a.oid AND c.classoid = 'pg_authid'::regclass \
     LEFT JOIN (SELECT m.member, array_agg(g.rolname::text ORDER BY 1) AS groups \
                FROM pg_auth_members m JOIN pg_authid g ON g.oid = m.roleid GROUP BY m.member) ms \
          ON ms.member = a.oid \
     WHERE $1::text[] IS NULL OR a.rolname = ANY($1) ORDER BY 1";

impl PostgresProvider {
    /// Reads roles of one server: their fields by name, remembering verifiers and marks.
    fn read_roles(
        &self,
        instance: &str,
        settings: &Fields,
        wanted: Option<Vec<String>>,
        cx: &Context<'_>,
    ) -> Result<Vec<(String, Fields)>, ProviderError> {
        let rows = self.with_client(instance, settings, None, cx, |c| {
            c.query(ROLES, &[&wanted]).map_err(|e| classify("cannot read the roles", &e))
        })?;
        let mut out = Vec::new();
        let mut verifiers = lock(&self.verifiers);
        for row in rows {
            let name: String = row.get(0);
            let password: Option<String> = row.get(8);
            let member_of: Vec<String> = row.get(10);
            let comment: Option<String> = row.get(11);
            let valid_until: Option<String> = row.get(12);
            let mut f = Fields::new();
            f.insert("name".into(), Value::str(name.as_str()));
            f.insert("ensure".into(), word("present"));
            f.insert("superuser".into(), Value::Bool(row.get(1)));
            f.insert("createdb".into(), Value::Bool(row.get(2)));
            f.insert("createrole".into(), Value::Bool(row.get(3)));
            f.insert("inherit".into(), Value::Bool(row.get(4)));
            f.insert("replication".into(), Value::Bool(row.get(5)));
            f.insert("login".into(), Value::Bool(row.get(6)));
            f.insert("connection_limit".into(), Value::Int(i64::from(row.get::<_, i32>(7))));
            f.insert("oid".into(), Value::Int(row.get(9)));
            f.insert("password_state".into(), word(if password.is_some() { "set" } else { "none" }));
            f.insert("member_of".into(), str_list(&member_of));
            if let Some(v) = valid_until {
                f.insert("valid_until".into(), Value::str(v.as_str()));
            }
            verifiers.insert((instance.to_string(), name.clone()), password);
            self.remember_mark(instance, "role", mark_key(None, &name), comment.as_deref());
            out.push((name, f));
        }
        Ok(out)
    }

    pub(crate) fn observe_roles(
        &self,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        self.observe_named(
            "role",
            targets,
            |_| None,
            |instance, settings, _, wanted| self.read_roles(instance, settings, Some(wanted), cx),
        )
    }

    pub(crate) fn discover_roles(
        &self,
        instance: &str,
        settings: &Fields,
        cx: &Context<'_>,
    ) -> Result<Vec<Discovered>, ProviderError> {
        Ok(discovered(self.read_roles(instance, settings, None, cx)?))
    }

    /// The role's changes: attributes by the default comparison, `member_of` as a set, and
    /// the password by verifying the stored verifier against the secret.
    pub(crate) fn role_changes(&self, target: &Target, observed: &Observed, cx: &Context<'_>) -> Vec<Change> {
        let mut plain = target.clone();
        plain.intended.remove("password");
        let mut out: Vec<Change> = default_diff(&plain, observed)
            .into_iter()
            .filter(|c| {
                c.field != "member_of" || c.observed.as_ref().and_then(name_set) != name_set(&c.intended)
            })
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

    pub(crate) fn apply_role(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let name = id(target, "name");
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
        if changed.contains("valid_until") {
            match i.get("valid_until") {
                Some(Value::Str(t)) => options.push(format!("VALID UNTIL {}", escape_literal(t))),
                _ => options.push("VALID UNTIL 'infinity'".to_string()),
            }
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
            && let Some(wanted) = i.get("member_of").and_then(name_set)
        {
            let have = observed.field("member_of").and_then(name_set).unwrap_or_default();
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
        statements.extend(Self::comment("role", target, cx));
        self.execute(target, None, &statements, true, &format!("cannot change role `{name}`"), cx)
    }

    pub(crate) fn drop_role(&self, target: &Target, cx: &Context<'_>) -> Result<(), ProviderError> {
        let name = id(target, "name");
        let statement = format!("DROP ROLE IF EXISTS {}", ident(name));
        self.execute(target, None, &[statement], false, &format!("cannot drop role `{name}`"), cx)
    }
}
