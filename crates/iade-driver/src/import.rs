//! `iade import`: observes objects that exist and writes the source that declares them exactly
//! as they are, so the next `plan` of a stack holding it has nothing to do. Objects are
//! observed through the same providers a run uses; the source is formatted as `iade fmt`
//! would. Secrets are never imported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use iade_intent::Value;
use iade_provider::{Context, Fields, Observed, Provider, Target};

use crate::Error;
use crate::runtime::Runtime;

/// Text content larger than this is copied to a file of the stack instead of written inline.
const INLINE_LIMIT: usize = 16 * 1024;

/// What to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `file`, `directory` or `symlink` (paths: the object's own type decides its kind),
    /// `user`, `group` or `package` (names).
    pub kind: String,
    pub names: Vec<String>,
    /// Everything under a directory, too.
    pub recursive: bool,
    /// Only objects under this path.
    pub under: Option<PathBuf>,
    /// Where content that cannot be written inline (binary, large) is copied, as
    /// `DIR/files/…`, and named by `source = "files/…"`; `None` refuses such content.
    pub files_dir: Option<PathBuf>,
    /// The PostgreSQL server roles and databases are imported from (a libpq URI).
    pub url: Option<String>,
}

/// The source, and what else the import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub source: String,
    /// Files written under `files_dir`.
    pub copied: Vec<PathBuf>,
    /// Objects not imported, and why.
    pub skipped: Vec<String>,
    pub resources: usize,
}

fn fail(message: impl Into<String>, help: impl Into<String>) -> Error {
    Error::Load { message: message.into(), help: help.into() }
}

/// An iade string literal with the value `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("$$"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A resource name from an identity: `/etc/nginx/nginx.conf` → `etc_nginx_nginx_conf`.
fn name_of(identity: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base: String = identity
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    while base.contains("__") {
        base = base.replace("__", "_");
    }
    let mut base = base.trim_matches('_').to_string();
    if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
        base = format!("_{base}");
    }
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

struct Entry {
    kind: &'static str,
    path: PathBuf,
}

fn walk(root: &Path, out: &mut Vec<Entry>, skipped: &mut Vec<String>) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(root).map_err(|e| {
        fail(format!("cannot import `{}`: {e}", root.display()), "give the path of a file, directory or link")
    })?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        out.push(Entry { kind: "symlink", path: root.to_path_buf() });
    } else if ft.is_file() {
        out.push(Entry { kind: "file", path: root.to_path_buf() });
    } else if ft.is_dir() {
        out.push(Entry { kind: "directory", path: root.to_path_buf() });
    } else {
        skipped.push(format!("{}: not a file, directory or link", root.display()));
    }
    Ok(())
}

fn walk_tree(root: &Path, out: &mut Vec<Entry>, skipped: &mut Vec<String>) -> Result<(), Error> {
    walk(root, out, skipped)?;
    if !std::fs::symlink_metadata(root).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| fail(format!("cannot list `{}`: {e}", root.display()), "check its permissions"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name().is_some_and(|n| n.to_string_lossy().contains(iade_provider_local::TEMP_MARKER))
        })
        .collect();
    children.sort();
    for c in children {
        walk_tree(&c, out, skipped)?;
    }
    Ok(())
}

fn observe(
    provider: &dyn Provider,
    kind: &str,
    identity: Fields,
    cx: &Context<'_>,
) -> Result<Option<Fields>, Error> {
    let target =
        Target { id: String::new(), kind: kind.into(), instance: None, intended: identity.clone(), identity };
    match provider.observe(kind, &[&target], cx).pop() {
        Some(Ok(Observed::Present(f))) => Ok(Some(f)),
        Some(Ok(Observed::Absent)) | None => Ok(None),
        Some(Err(e)) => Err(fail(format!("cannot observe: {}", e.message), "check that iade may read it")),
    }
}

fn text(f: &Fields, k: &str) -> Option<String> {
    match f.get(k) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// Observes the named objects and writes the source that declares them.
pub fn import(rt: &Runtime, options: &ImportOptions, stack_dir: &Path) -> Result<Imported, Error> {
    let cancelled = std::sync::atomic::AtomicBool::new(false);
    let cx = Context {
        stack: "",
        secrets: rt.secrets.as_ref(),
        stack_dir,
        cancelled: &cancelled,
        diffs: false,
        state_dir: None,
    };
    let mut out = Imported::default();
    let mut taken = BTreeSet::new();
    let mut body = String::new();
    let mut kinds: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    match options.kind.as_str() {
        "file" | "directory" | "symlink" => {
            let local = rt.providers.get("local").ok_or_else(|| fail("no local provider", ""))?;
            let mut entries = Vec::new();
            for name in &options.names {
                let path = crate::files::absolute(Path::new(name));
                if options.recursive {
                    walk_tree(&path, &mut entries, &mut out.skipped)?;
                } else {
                    walk(&path, &mut entries, &mut out.skipped)?;
                }
            }
            if let Some(under) = &options.under {
                let under = crate::files::absolute(under);
                entries.retain(|e| e.path.starts_with(&under));
            }
            // Directories by path, to refer to an imported parent.
            let mut dirs: BTreeMap<PathBuf, String> = BTreeMap::new();
            for e in entries {
                let shown = e.path.to_string_lossy().into_owned();
                let identity = Fields::from([("path".to_string(), Value::str(shown.as_str()))]);
                let Some(fields) = observe(local.as_ref(), e.kind, identity, &cx)? else { continue };
                let name = name_of(&shown, &mut taken);
                let parent = e.path.parent().and_then(|p| dirs.get(p));
                let path_expr = match (parent, e.path.file_name()) {
                    (Some(dir), Some(file)) => {
                        let q = quote(&file.to_string_lossy());
                        format!("\"${{directory.{dir}.path}}/{}", &q[1..])
                    }
                    _ => quote(&shown),
                };
                let mut entry = format!("{} {name} {{\n  path = {path_expr}\n", e.kind);
                match e.kind {
                    "symlink" => {
                        if let Some(t) = text(&fields, "target") {
                            entry.push_str(&format!("  target = {}\n", quote(&t)));
                        }
                    }
                    kind => {
                        if kind == "file" {
                            let bytes = std::fs::read(&e.path).map_err(|err| {
                                fail(format!("cannot read `{shown}`: {err}"), "check its permissions")
                            })?;
                            match String::from_utf8(bytes) {
                                Ok(t) if t.len() <= INLINE_LIMIT && !t.contains('\0') => {
                                    entry.push_str(&format!("  content = {}\n", quote(&t)));
                                }
                                other => {
                                    let bytes = match other {
                                        Ok(t) => t.into_bytes(),
                                        Err(e) => e.into_bytes(),
                                    };
                                    let Some(dir) = &options.files_dir else {
                                        return Err(fail(
                                            format!("`{shown}` is binary or larger than 16 KiB"),
                                            "give --out DIR: its content is copied to DIR/files/ and named by `source`",
                                        ));
                                    };
                                    let rel = format!("files/{name}");
                                    let dest = dir.join(&rel);
                                    std::fs::create_dir_all(dir.join("files"))
                                        .and_then(|()| std::fs::write(&dest, &bytes))
                                        .map_err(|err| {
                                            fail(
                                                format!("cannot write `{}`: {err}", dest.display()),
                                                "check the directory",
                                            )
                                        })?;
                                    out.copied.push(dest);
                                    entry.push_str(&format!("  source = {}\n", quote(&rel)));
                                }
                            }
                        }
                        if let Some(Value::Mode(m) | Value::Int(m)) = fields.get("mode") {
                            entry.push_str(&format!("  mode = 0o{m:o}\n"));
                        }
                        for f in ["owner", "group"] {
                            if let Some(v) = text(&fields, f) {
                                entry.push_str(&format!("  {f} = {}\n", quote(&v)));
                            }
                        }
                        if kind == "directory" {
                            dirs.insert(e.path.clone(), name.clone());
                        }
                    }
                }
                entry.push_str("}\n\n");
                body.push_str(&entry);
                kinds.entry("std.fs").or_default().insert(e.kind);
                out.resources += 1;
            }
        }
        "user" | "group" => {
            let users = rt.providers.get("users").ok_or_else(|| fail("no users provider", ""))?;
            let kind: &'static str = if options.kind == "user" { "user" } else { "group" };
            for name in &options.names {
                let identity = Fields::from([("name".to_string(), Value::str(name.as_str()))]);
                let Some(f) = observe(users.as_ref(), kind, identity, &cx)? else {
                    return Err(fail(format!("no {kind} `{name}` on this host"), "check the name"));
                };
                let id = name_of(name, &mut taken);
                let mut entry = format!("{kind} {id} {{\n  name = {}\n", quote(name));
                if let Some(Value::Int(g)) = f.get("gid") {
                    entry.push_str(&format!("  gid = {g}\n"));
                }
                if kind == "user" {
                    if let Some(Value::Int(u)) = f.get("uid") {
                        entry.push_str(&format!("  uid = {u}\n"));
                    }
                    if let Some(Value::List(groups)) = f.get("groups") {
                        let names: Vec<String> = groups
                            .iter()
                            .filter_map(|g| match g {
                                Value::Str(s) => Some(quote(s)),
                                _ => None,
                            })
                            .collect();
                        entry.push_str(&format!("  groups = [{}]\n", names.join(", ")));
                    }
                    for field in ["home", "shell", "comment"] {
                        if let Some(v) = text(&f, field) {
                            entry.push_str(&format!("  {field} = {}\n", quote(&v)));
                        }
                    }
                    // The password hash is a secret: never imported.
                    entry.push_str("  # password: not imported (a secret); set `password = secret(\"NAME\")` to manage it\n");
                }
                entry.push_str("}\n\n");
                body.push_str(&entry);
                kinds.entry("std.users").or_default().insert(kind);
                out.resources += 1;
            }
        }
        "package" => {
            let dpkg = rt.providers.get("dpkg").ok_or_else(|| fail("no dpkg provider", ""))?;
            for name in &options.names {
                let identity = Fields::from([("name".to_string(), Value::str(name.as_str()))]);
                let installed = observe(dpkg.as_ref(), "package", identity, &cx)?.is_some_and(
                    |f| matches!(f.get("ensure"), Some(Value::Enum(e)) if e.as_ref() == "present"),
                );
                if !installed {
                    return Err(fail(
                        format!("package `{name}` is not installed"),
                        "check the name: `dpkg -l`",
                    ));
                }
                let id = name_of(name, &mut taken);
                body.push_str(&format!("package {id} {{\n  name = {}\n}}\n\n", quote(name)));
                kinds.entry("std.pkg").or_default().insert("package");
                out.resources += 1;
            }
        }
        "role" | "database" => {
            let preamble = import_postgres(rt, options, &cx, &mut taken, &mut body, &mut out)?;
            kinds.entry("std.postgres").or_default();
            body.insert_str(0, &preamble);
        }
        other => {
            return Err(fail(
                format!("iade cannot import a `{other}`"),
                "import file, directory, symlink, user, group, package, role or database",
            ));
        }
    }
    let mut source = String::from("# Imported by `iade import`: the objects as they are now.\n\n");
    for (module, names) in &kinds {
        if *module == "std.postgres" {
            source.push_str("use std.postgres as pg\n");
            continue;
        }
        source.push_str(&format!(
            "use {module}.{{{}}}\n",
            names.iter().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    source.push('\n');
    source.push_str(&body);
    out.source = iade_fmt::format(&source)
        .map_err(|_| fail("the imported source does not parse", "this is a bug in iade; please report it"))?;
    Ok(out)
}

/// Roles or databases of the server `--url` names, and the `provider` item that reaches it.
fn import_postgres(
    rt: &Runtime,
    options: &ImportOptions,
    cx: &Context<'_>,
    taken: &mut BTreeSet<String>,
    body: &mut String,
    out: &mut Imported,
) -> Result<String, Error> {
    let Some(url) = &options.url else {
        return Err(fail(
            format!("importing a {} needs the server", options.kind),
            "name it with --url postgres://USER@HOST/postgres (a socket directory as ?host=/path)",
        ));
    };
    let pg = rt.providers.get("postgres").ok_or_else(|| fail("no postgres provider", ""))?;
    pg.configure(&BTreeMap::from([(
        "main".to_string(),
        Fields::from([("url".to_string(), Value::str(url.as_str()))]),
    )]));
    let kind = if options.kind == "role" { "role" } else { "database" };
    for name in &options.names {
        let identity = Fields::from([("name".to_string(), Value::str(name.as_str()))]);
        let Some(f) = observe(pg.as_ref(), kind, identity, cx)? else {
            let list = if kind == "role" { "\\du" } else { "\\l" };
            return Err(fail(
                format!("no {kind} `{name}` on the server"),
                format!("check the name: `{list}` in psql"),
            ));
        };
        let id = name_of(name, taken);
        let mut entry = format!("pg.{kind} {id} {{\n  name = {}\n", quote(name));
        let fields: &[&str] = if kind == "role" {
            &[
                "login",
                "superuser",
                "createdb",
                "createrole",
                "inherit",
                "replication",
                "connection_limit",
                "valid_until",
            ]
        } else {
            &["owner", "encoding", "connection_limit", "allow_connections"]
        };
        for field in fields {
            match f.get(*field) {
                Some(Value::Bool(b)) => entry.push_str(&format!("  {field} = {b}\n")),
                Some(Value::Int(n)) => entry.push_str(&format!("  {field} = {n}\n")),
                Some(Value::Str(s)) => entry.push_str(&format!("  {field} = {}\n", quote(s))),
                _ => {}
            }
        }
        if let Some(Value::List(groups)) = f.get("member_of") {
            let names: Vec<String> = groups.iter().filter_map(|g| g.as_text()).map(|g| quote(&g)).collect();
            entry.push_str(&format!("  member_of = [{}]\n", names.join(", ")));
        }
        if kind == "role" && matches!(f.get("password_state"), Some(Value::Enum(s)) if s.as_ref() == "set") {
            // The stored verifier is a secret: never imported.
            entry.push_str("  # password: set on the server, not imported (a secret); `password = secret(\"NAME\")` manages it\n");
        }
        entry.push_str("}\n\n");
        body.push_str(&entry);
        out.resources += 1;
    }
    Ok(format!(
        "## The server the objects were imported from.\nprovider postgres main {{\n  url = {}\n}}\n\n",
        quote(&iade_pg::without_password(url))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_names_survive_any_text() {
        assert_eq!(quote("a\"b\\c\n${x}\u{1}"), "\"a\\\"b\\\\c\\n$${x}\\u{1}\"");
        let mut taken = BTreeSet::new();
        assert_eq!(name_of("/etc/nginx/nginx.conf", &mut taken), "etc_nginx_nginx_conf");
        assert_eq!(name_of("/etc/nginx/nginx-conf", &mut taken), "etc_nginx_nginx_conf_2");
        assert_eq!(name_of("/9lives", &mut taken), "_9lives");
        assert_eq!(name_of("///", &mut taken), "_");
    }
}
