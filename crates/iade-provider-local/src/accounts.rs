//! `users`: local users and groups (`std.users`). Observed from `/etc/passwd`, `/etc/group`
//! and `/etc/shadow`, one read of each per observation; changed with the shadow suite's tools
//! (`useradd`, `usermod`, `userdel`, `groupadd`, `groupmod`, `groupdel`), which take the
//! databases' locks themselves. A password hash reaches `chpasswd -e` on its standard input,
//! never an argument another process could read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iade_intent::Value;
use iade_provider::{
    Applied, Change, Context, Discovered, Fields, Observed, Provider, ProviderError, Target, default_diff,
    name_set, presence_diff, reveal,
};

use crate::command::{Ran, run_ok};

/// The first id of ordinary (not system) users and groups on Debian (`login.defs`).
const FIRST_ORDINARY_ID: i64 = 1000;

/// Where the account databases are read from (tests point it elsewhere only for parsing).
pub struct AccountsProvider {
    etc: PathBuf,
    /// Password hashes from the last observation of users: compared with a secret in `diff`,
    /// never part of what is observed.
    hashes: std::sync::Mutex<BTreeMap<String, String>>,
}

impl std::fmt::Debug for AccountsProvider {
    // Never the hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountsProvider").field("etc", &self.etc).finish_non_exhaustive()
    }
}

impl Default for AccountsProvider {
    fn default() -> Self {
        AccountsProvider { etc: PathBuf::from("/etc"), hashes: Default::default() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct UserRecord {
    name: String,
    uid: i64,
    gid: i64,
    comment: String,
    home: String,
    shell: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct GroupRecord {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// The three databases as read once.
#[derive(Debug, Default)]
struct Databases {
    users: BTreeMap<String, UserRecord>,
    groups: BTreeMap<String, GroupRecord>,
    /// Password hashes by user name (the second field of `/etc/shadow`).
    hashes: BTreeMap<String, String>,
}

fn parse_passwd(text: &str) -> BTreeMap<String, UserRecord> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        let [name, _, uid, gid, comment, home, shell] = f.as_slice() else { continue };
        let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) else { continue };
        out.entry(name.to_string()).or_insert(UserRecord {
            name: name.to_string(),
            uid,
            gid,
            comment: comment.to_string(),
            home: home.to_string(),
            shell: shell.to_string(),
        });
    }
    out
}

fn parse_group(text: &str) -> BTreeMap<String, GroupRecord> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        let [name, _, gid, members] = f.as_slice() else { continue };
        let Ok(gid) = gid.parse() else { continue };
        let members = members.split(',').filter(|m| !m.is_empty()).map(str::to_string).collect();
        out.entry(name.to_string()).or_insert(GroupRecord { name: name.to_string(), gid, members });
    }
    out
}

fn parse_shadow(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

/// `none` for an empty hash, `locked` for one that starts with `!` or `*`, else `set`.
fn password_state(hash: Option<&str>) -> &'static str {
    match hash {
        None | Some("") => "none",
        Some(h) if h.starts_with('!') || h.starts_with('*') => "locked",
        Some(_) => "set",
    }
}

fn str_value(s: &str) -> Value {
    Value::Str(Arc::from(s))
}

fn name_list(names: impl IntoIterator<Item = String>) -> Value {
    let set: BTreeSet<String> = names.into_iter().collect();
    Value::List(Arc::new(set.into_iter().map(|n| str_value(&n)).collect()))
}

/// Lock and busy messages of the shadow suite: another tool holds the databases.
fn busy(ran: &Ran) -> bool {
    let text = format!("{}{}", ran.stderr, ran.stdout);
    text.contains("cannot lock") || text.contains("try again later") || text.contains("unable to lock")
}

impl AccountsProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider that reads the databases under another directory (`DIR/passwd`, …).
    pub fn reading(etc: &Path) -> Self {
        AccountsProvider { etc: etc.to_path_buf(), hashes: Default::default() }
    }

    fn read(&self, name: &str) -> Result<String, ProviderError> {
        let path = self.etc.join(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(ProviderError::io(format!("cannot read {}", path.display()), &e)),
        }
    }

    fn databases(&self, shadow: bool) -> Result<Databases, ProviderError> {
        Ok(Databases {
            users: parse_passwd(&self.read("passwd")?),
            groups: parse_group(&self.read("group")?),
            hashes: if shadow { parse_shadow(&self.read("shadow")?) } else { BTreeMap::new() },
        })
    }

    fn user_fields(db: &Databases, u: &UserRecord) -> Fields {
        let mut f = Fields::new();
        f.insert("name".into(), str_value(&u.name));
        f.insert("ensure".into(), Value::Enum(Arc::from("present")));
        f.insert("uid".into(), Value::Int(u.uid));
        f.insert("gid".into(), Value::Int(u.gid));
        if let Some(g) = db.groups.values().find(|g| g.gid == u.gid) {
            f.insert("group".into(), str_value(&g.name));
        }
        let groups = db.groups.values().filter(|g| g.members.contains(&u.name)).map(|g| g.name.clone());
        f.insert("groups".into(), name_list(groups));
        f.insert("home".into(), str_value(&u.home));
        f.insert("shell".into(), str_value(&u.shell));
        f.insert("comment".into(), str_value(&u.comment));
        f.insert("system".into(), Value::Bool(u.uid < FIRST_ORDINARY_ID));
        let state = password_state(db.hashes.get(&u.name).map(String::as_str));
        f.insert("password_state".into(), Value::Enum(Arc::from(state)));
        f
    }

    fn group_fields(g: &GroupRecord) -> Fields {
        let mut f = Fields::new();
        f.insert("name".into(), str_value(&g.name));
        f.insert("ensure".into(), Value::Enum(Arc::from("present")));
        f.insert("gid".into(), Value::Int(g.gid));
        f.insert("system".into(), Value::Bool(g.gid < FIRST_ORDINARY_ID));
        f.insert("members".into(), name_list(g.members.iter().cloned()));
        f
    }

    /// The changes a user needs: the default comparison, with `groups` compared as a set,
    /// `system` left alone once the user exists, and the password hash compared with the
    /// shadow file's, never shown.
    fn user_changes(&self, target: &Target, observed: &Observed, cx: &Context<'_>) -> Vec<Change> {
        let mut plain = target.clone();
        plain.intended.remove("password");
        plain.intended.remove("system");
        let mut out: Vec<Change> = default_diff(&plain, observed)
            .into_iter()
            .filter(|c| {
                c.field != "groups"
                    || match (c.observed.as_ref().and_then(name_set), name_set(&c.intended)) {
                        (Some(a), Some(b)) => a != b,
                        _ => true,
                    }
            })
            .collect();
        if let (Some(intended), Observed::Present(_), Some(name)) =
            (target.intended.get("password"), observed, target.identity_str("name"))
        {
            let current =
                self.hashes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned();
            match reveal(intended, cx.secrets) {
                Ok(hash) if Some(&hash) == current.as_ref() => {}
                Ok(_) => out.push(
                    Change::new("password", None, intended.clone())
                        .shown(Some("another hash".into()), "the intended hash"),
                ),
                Err(e) => out.push(Change::unknown("password", intended.clone(), e.message)),
            }
        }
        out
    }

    fn apply_user(
        &self,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<Applied, ProviderError> {
        let name =
            target.identity_str("name").ok_or_else(|| ProviderError::permanent("a user needs a name"))?;
        let i = &target.intended;
        let mut args: Vec<String> = Vec::new();
        let int = |f: &str| match i.get(f) {
            Some(Value::Int(n)) => Some(n.to_string()),
            _ => None,
        };
        let text = |f: &str| match i.get(f) {
            Some(Value::Str(s)) => Some(s.to_string()),
            _ => None,
        };
        let changed: BTreeSet<String> = match observed {
            Observed::Absent => i.keys().cloned().collect(),
            Observed::Present(_) => {
                self.user_changes(target, observed, cx).into_iter().map(|c| c.field).collect()
            }
        };
        let mut push = |flag: &str, v: Option<String>, field: &str| {
            if let Some(v) = v
                && changed.contains(field)
            {
                args.push(flag.into());
                args.push(v);
            }
        };
        push("-u", int("uid"), "uid");
        push("-g", int("gid"), "gid");
        push("-g", text("group"), "group");
        push("-d", text("home"), "home");
        push("-s", text("shell"), "shell");
        push("-c", text("comment"), "comment");
        if changed.contains("groups")
            && let Some(groups) = i.get("groups").and_then(name_set)
        {
            args.push("-G".into());
            args.push(groups.into_iter().collect::<Vec<_>>().join(","));
        }
        let mut output = None;
        match observed {
            Observed::Absent => {
                // No home directory is created: a `directory` resource owned by the user does it.
                args.push("-M".into());
                if matches!(i.get("system"), Some(Value::Bool(true))) {
                    args.push("-r".into());
                }
                // No gid: the group of the user's own name, created unless it exists (Debian's
                // default for new users).
                if !i.contains_key("gid") && !i.contains_key("group") {
                    let exists = self.databases(false)?.groups.contains_key(name);
                    args.extend(if exists { vec!["-g".into(), name.to_string()] } else { vec!["-U".into()] });
                }
                args.push("--".into());
                args.push(name.into());
                output = Some(run_ok("useradd", &args, None, &[], busy)?.output());
            }
            Observed::Present(_) if !args.is_empty() => {
                args.push("--".into());
                args.push(name.into());
                output = Some(run_ok("usermod", &args, None, &[], busy)?.output());
            }
            Observed::Present(_) => {}
        }
        if changed.contains("password")
            && let Some(hash) = i.get("password")
        {
            let hash = reveal(hash, cx.secrets)?;
            if hash.contains(['\n', ':']) {
                return Err(ProviderError::permanent("a password hash may not contain `:` or a line break"));
            }
            run_ok("chpasswd", &["-e".into()], Some(&format!("{name}:{hash}\n")), &[], busy)?;
        }
        Ok(Applied { output })
    }

    fn apply_group(&self, target: &Target, observed: &Observed) -> Result<Applied, ProviderError> {
        let name =
            target.identity_str("name").ok_or_else(|| ProviderError::permanent("a group needs a name"))?;
        let gid = match target.intended.get("gid") {
            Some(Value::Int(n)) => Some(n.to_string()),
            _ => None,
        };
        let mut args = Vec::new();
        let ran = match observed {
            Observed::Absent => {
                if let Some(g) = gid {
                    args.extend(["-g".to_string(), g]);
                }
                if matches!(target.intended.get("system"), Some(Value::Bool(true))) {
                    args.push("-r".into());
                }
                args.extend(["--".to_string(), name.to_string()]);
                run_ok("groupadd", &args, None, &[], busy)?
            }
            Observed::Present(_) => {
                let Some(g) = gid else { return Ok(Applied::default()) };
                args.extend(["-g".to_string(), g, "--".to_string(), name.to_string()]);
                run_ok("groupmod", &args, None, &[], busy)?
            }
        };
        Ok(Applied { output: Some(ran.output()) })
    }
}

impl Provider for AccountsProvider {
    fn name(&self) -> &str {
        "users"
    }

    fn observe(
        &self,
        kind: &str,
        targets: &[&Target],
        _cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        let db = match self.databases(kind == "user") {
            Ok(db) => db,
            Err(e) => return targets.iter().map(|_| Err(e.clone())).collect(),
        };
        if kind == "user" {
            *self.hashes.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = db.hashes.clone();
        }
        targets
            .iter()
            .map(|t| {
                let name = t.identity_str("name").unwrap_or_default();
                Ok(match kind {
                    "user" => db.users.get(name).map(|u| Observed::Present(Self::user_fields(&db, u))),
                    "group" => db.groups.get(name).map(|g| Observed::Present(Self::group_fields(g))),
                    other => {
                        return Err(ProviderError::permanent(format!(
                            "the users provider has no kind `{other}`"
                        )));
                    }
                }
                .unwrap_or(Observed::Absent))
            })
            .collect()
    }

    fn diff(&self, kind: &str, target: &Target, observed: &Observed, cx: &Context<'_>) -> Vec<Change> {
        presence_diff(target, observed, || match kind {
            "user" => self.user_changes(target, observed, cx),
            _ => {
                let mut plain = target.clone();
                plain.intended.remove("system");
                default_diff(&plain, observed)
            }
        })
    }

    fn apply(
        &self,
        kind: &str,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<Applied, ProviderError> {
        match kind {
            "user" => self.apply_user(target, observed, cx),
            "group" => self.apply_group(target, observed),
            other => Err(ProviderError::permanent(format!("the users provider has no kind `{other}`"))),
        }
    }

    fn delete(&self, kind: &str, target: &Target, _cx: &Context<'_>) -> Result<Applied, ProviderError> {
        let name = target.identity_str("name").ok_or_else(|| ProviderError::permanent("no name"))?;
        let db = self.databases(false)?;
        let (tool, present) = match kind {
            "user" => ("userdel", db.users.contains_key(name)),
            _ => ("groupdel", db.groups.contains_key(name)),
        };
        if !present {
            return Ok(Applied::default());
        }
        let ran = run_ok(tool, &["--".into(), name.into()], None, &[], busy)?;
        Ok(Applied { output: Some(ran.output()) })
    }

    fn discover(
        &self,
        kind: &str,
        _under: &str,
        _cx: &Context<'_>,
    ) -> Result<Vec<Discovered>, ProviderError> {
        let db = self.databases(kind == "user")?;
        let one = |name: &str, fields: Fields| Discovered {
            name: name.to_string(),
            identity: Fields::from([("name".to_string(), str_value(name))]),
            fields,
        };
        Ok(match kind {
            "user" => db.users.values().map(|u| one(&u.name, Self::user_fields(&db, u))).collect(),
            _ => db.groups.values().map(|g| one(&g.name, Self::group_fields(g))).collect(),
        })
    }

    fn watch_paths(&self, _kind: &str, _target: &Target, _cx: &Context<'_>) -> Vec<PathBuf> {
        ["passwd", "group", "shadow"].iter().map(|f| self.etc.join(f)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_databases_parse_as_debian_writes_them() {
        let users = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\nbad line\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/sh\n",
        );
        assert_eq!(users["alice"].uid, 1000);
        assert_eq!(users["alice"].comment, "Alice,,,");
        assert_eq!(users.len(), 2);
        let groups = parse_group("sudo:x:27:alice,bob\nempty:x:5:\n");
        assert_eq!(groups["sudo"].members, ["alice", "bob"]);
        assert!(groups["empty"].members.is_empty());
        let hashes = parse_shadow("root:*:19000:0:99999:7:::\nalice:$y$j9T$abc:19000::::::\nbob::1::::::\n");
        assert_eq!(password_state(hashes.get("root").map(String::as_str)), "locked");
        assert_eq!(password_state(hashes.get("alice").map(String::as_str)), "set");
        assert_eq!(password_state(hashes.get("bob").map(String::as_str)), "none");
        assert_eq!(password_state(None), "none");
    }
}
