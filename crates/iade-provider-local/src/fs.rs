//! `file`, `directory` and `symlink` on the local filesystem.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use iade_intent::Value;
use iade_provider::{
    Applied, Change, Context, Discovered, Fields, Observed, Provider, ProviderError, Target, default_diff,
    reveal,
};
use sha2::{Digest, Sha256};

use crate::target_path;
use crate::users::Names;

/// Files larger than this are not hashed during a compliance sweep.
const SWEEP_HASH_LIMIT: u64 = 4 << 20;

/// The marker in the names of temporary files, so leftovers can be found and removed.
pub const TEMP_MARKER: &str = ".iade-tmp.";

#[derive(Debug, Default)]
pub struct LocalProvider {
    names: OnceLock<Names>,
    /// Changes not yet durable: see [`Provider::flush`].
    pending: Mutex<Pending>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The changes of one wave, published and made durable together by `flush`: the renames of
/// the (already synced) temporary files, then one sync per changed directory.
#[derive(Debug, Default)]
struct Pending {
    /// `(resource id, temporary file, final path)`
    renames: Vec<(String, PathBuf, PathBuf)>,
    dirs: std::collections::BTreeSet<PathBuf>,
}

impl LocalProvider {
    pub fn new() -> Self {
        Self::default()
    }

    fn names(&self) -> &Names {
        self.names.get_or_init(Names::load)
    }

    fn metadata_fields(&self, meta: &fs::Metadata) -> Fields {
        let mut f = Fields::new();
        f.insert("ensure".into(), Value::Enum("present".into()));
        f.insert("mode".into(), Value::Mode(i64::from(meta.permissions().mode() & 0o7777)));
        f.insert("owner".into(), Value::str(self.names().user(meta.uid())));
        f.insert("group".into(), Value::str(self.names().group(meta.gid())));
        f
    }

    fn observe_one(&self, kind: &str, path: &Path, hash: bool) -> Result<Observed, ProviderError> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Observed::Absent),
            Err(e) => return Err(ProviderError::io(format!("cannot observe `{}`", path.display()), &e)),
        };
        let ft = meta.file_type();
        let found = if ft.is_symlink() {
            "symlink"
        } else if ft.is_dir() {
            "directory"
        } else if ft.is_file() {
            "file"
        } else {
            "special file"
        };
        if found != kind {
            return Err(ProviderError::permanent(format!(
                "`{}` is a {found}, not a {kind}; iade will not replace it",
                path.display()
            )));
        }
        match kind {
            "symlink" => {
                let target = fs::read_link(path)
                    .map_err(|e| ProviderError::io(format!("cannot read link `{}`", path.display()), &e))?;
                let mut f = Fields::new();
                f.insert("ensure".into(), Value::Enum("present".into()));
                f.insert("target".into(), Value::str(target.to_string_lossy().as_ref()));
                Ok(Observed::Present(f))
            }
            "directory" => Ok(Observed::Present(self.metadata_fields(&meta))),
            _ => {
                let mut f = self.metadata_fields(&meta);
                f.insert("size".into(), Value::Int(meta.size() as i64));
                f.insert("mtime".into(), Value::Int(meta.mtime()));
                if hash {
                    f.insert("sha256".into(), Value::str(hash_file(path)?));
                }
                Ok(Observed::Present(f))
            }
        }
    }

    fn chown(&self, path: &Path, target: &Target) -> Result<(), ProviderError> {
        let uid = match target.intended.get("owner") {
            Some(Value::Str(name)) => Some(
                self.names()
                    .uid(name)
                    .ok_or_else(|| ProviderError::permanent(format!("no user `{name}` on this host")))?,
            ),
            _ => None,
        };
        let gid = match target.intended.get("group") {
            Some(Value::Str(name)) => Some(
                self.names()
                    .gid(name)
                    .ok_or_else(|| ProviderError::permanent(format!("no group `{name}` on this host")))?,
            ),
            _ => None,
        };
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(path, uid, gid).map_err(|e| {
                ProviderError::io(format!("cannot change the owner of `{}`", path.display()), &e)
            })?;
        }
        Ok(())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes that `path`'s directory entry changed; [`Provider::flush`] syncs the directory.
    /// Sets the managed owner and group of a replacement file; an unmanaged one keeps what
    /// the file it replaces had, since iade never changes an unmanaged field.
    fn chown_keeping(&self, path: &Path, target: &Target, observed: &Observed) -> Result<(), ProviderError> {
        let mut t = target.clone();
        for field in ["owner", "group"] {
            if !t.intended.contains_key(field)
                && let Some(v) = observed.field(field)
            {
                t.intended.insert(field.to_string(), v.clone());
            }
        }
        self.chown(path, &t)
    }

    fn sync_dir(&self, path: &Path) -> Result<(), ProviderError> {
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.pending().dirs.insert(dir);
        Ok(())
    }

    fn apply_file(
        &self,
        path: &Path,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let mode = intended_mode(target);
        let content = match target.intended.get("content") {
            Some(v) => Some(reveal(v, cx.secrets)?),
            None => None,
        };
        let rewrite = match (&content, observed) {
            (Some(c), Observed::Present(f)) => {
                f.get("sha256").and_then(|v| v.as_text()) != Some(sha256_hex(c.as_bytes()))
            }
            (_, Observed::Absent) => true,
            (None, Observed::Present(_)) => false,
        };
        if rewrite {
            // A new file without a managed mode gets the usual 0o644; an existing one keeps its.
            let mode = mode.or_else(|| observed.field("mode").and_then(as_mode)).unwrap_or(0o644);
            let tmp = write_temp(path, content.as_deref().unwrap_or("").as_bytes(), mode, |tmp| {
                self.chown_keeping(tmp, target, observed)
            })?;
            self.pending().renames.push((target.id.clone(), tmp, path.to_path_buf()));
            return self.sync_dir(path);
        }
        self.chown(path, target)?;
        if let Some(mode) = mode {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| {
                ProviderError::io(format!("cannot change the mode of `{}`", path.display()), &e)
            })?;
        }
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| ProviderError::io(format!("cannot sync `{}`", path.display()), &e))
    }

    fn apply_kind(
        &self,
        kind: &str,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let path = path_of(target, cx)?;
        match kind {
            "file" => self.apply_file(&path, target, observed, cx),
            "directory" => {
                if matches!(observed, Observed::Absent) {
                    let mode = intended_mode(target).unwrap_or(0o755);
                    fs::DirBuilder::new()
                        .mode(mode)
                        .create(&path)
                        .map_err(|e| ProviderError::io(format!("cannot create `{}`", path.display()), &e))?;
                }
                // Ownership first: changing the owner clears setgid, the mode puts it back.
                self.chown(&path, target)?;
                let mode = intended_mode(target).or(matches!(observed, Observed::Absent).then_some(0o755));
                if let Some(mode) = mode {
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|e| {
                        ProviderError::io(format!("cannot set the mode of `{}`", path.display()), &e)
                    })?;
                }
                self.sync_dir(&path)
            }
            "symlink" => {
                let to = match target.intended.get("target") {
                    Some(v) => reveal(v, cx.secrets)?,
                    None => return Err(ProviderError::permanent(format!("`{}` has no target", target.id))),
                };
                let dir = path.parent().unwrap_or(Path::new("/"));
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = dir.join(format!(
                    ".{name}{TEMP_MARKER}{}.{}",
                    std::process::id(),
                    TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
                ));
                std::os::unix::fs::symlink(&to, &tmp)
                    .map_err(|e| ProviderError::io(format!("cannot create link `{}`", tmp.display()), &e))?;
                self.pending().renames.push((target.id.clone(), tmp, path.clone()));
                self.sync_dir(&path)
            }
            other => Err(ProviderError::permanent(format!("the local provider has no kind `{other}`"))),
        }
    }

    fn delete_kind(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<(), ProviderError> {
        let path = path_of(target, cx)?;
        let result = match kind {
            "directory" => fs::remove_dir(&path),
            _ => fs::remove_file(&path),
        };
        match result {
            Ok(()) => self.sync_dir(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Err(ProviderError::permanent(
                format!("directory `{}` is not empty; iade removes only empty directories", path.display()),
            )),
            Err(e) => Err(ProviderError::io(format!("cannot remove `{}`", path.display()), &e)),
        }
    }

    /// Objects of a kind under a path, for compliance sweeps: in name order, never into
    /// kernel and device trees, skipping temporary files.
    fn sweep(&self, kind: &str, under: &str, cx: &Context<'_>) -> Result<Vec<Discovered>, ProviderError> {
        let root = crate::resolve(cx.stack_dir, under);
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        let mut seen = 0usize;
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == root => return Ok(Vec::new()),
                Err(e) => return Err(ProviderError::io(format!("cannot list `{}`", dir.display()), &e)),
            };
            let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                // Kernel and device trees are not files to sweep (some block on read).
                if ["/proc", "/sys", "/dev"].iter().any(|p| entry.path().starts_with(p)) {
                    continue;
                }
                seen += 1;
                if seen > 1_000_000 || cx.cancelled.load(Ordering::Relaxed) {
                    return Err(ProviderError::transient(format!(
                        "sweep of `{}` stopped early",
                        root.display()
                    )));
                }
                let path = entry.path();
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(path.clone());
                }
                let matches = match kind {
                    "file" => ft.is_file(),
                    "directory" => ft.is_dir(),
                    "symlink" => ft.is_symlink(),
                    _ => false,
                };
                if !matches || entry.file_name().to_string_lossy().contains(TEMP_MARKER) {
                    continue;
                }
                let small = entry.metadata().map(|m| m.len() <= SWEEP_HASH_LIMIT).unwrap_or(false);
                if let Ok(Observed::Present(mut fields)) =
                    self.observe_one(kind, &path, kind == "file" && small)
                {
                    let shown = path.to_string_lossy().into_owned();
                    fields.insert("path".into(), Value::str(shown.as_str()));
                    let identity = Fields::from([("path".to_string(), Value::str(shown.as_str()))]);
                    out.push(Discovered { name: shown, identity, fields });
                }
            }
        }
        Ok(out)
    }
}

/// A target's absolute path; every local kind is identified by one.
fn path_of(target: &Target, cx: &Context<'_>) -> Result<PathBuf, ProviderError> {
    target_path(target, cx.stack_dir)
        .ok_or_else(|| ProviderError::permanent(format!("`{}` has no path", target.id)))
}

fn as_mode(v: &Value) -> Option<u32> {
    match v {
        Value::Mode(m) | Value::Int(m) => u32::try_from(*m).ok(),
        _ => None,
    }
}

fn intended_mode(target: &Target) -> Option<u32> {
    target.intended.get("mode").and_then(as_mode)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn hash_file(path: &Path) -> Result<String, ProviderError> {
    let mut f =
        File::open(path).map_err(|e| ProviderError::io(format!("cannot read `{}`", path.display()), &e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| ProviderError::io(format!("cannot read `{}`", path.display()), &e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let mut out = String::with_capacity(64);
    for b in h.finalize() {
        out.push_str(&format!("{b:02x}"));
    }
    Ok(out)
}

/// Writes `bytes` to a temporary file beside `path`, created with `mode` before the first byte
/// (then set exactly, whatever the umask), prepared by `prepare` (ownership) and synced. The
/// caller renames it into place. On failure the temporary file is removed.
fn write_temp(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    prepare: impl FnOnce(&Path) -> Result<(), ProviderError>,
) -> Result<PathBuf, ProviderError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        return Err(ProviderError::permanent(format!("directory `{}` does not exist", dir.display())));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}{TEMP_MARKER}{}.{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| ProviderError::io(format!("cannot create `{}`", tmp.display()), &e))?;
        // Ownership first: changing the owner clears setuid and setgid bits, the mode puts
        // them back.
        prepare(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| ProviderError::io(format!("cannot set the mode of `{}`", tmp.display()), &e))?;
        f.write_all(bytes).map_err(|e| ProviderError::io(format!("cannot write `{}`", tmp.display()), &e))?;
        // The data is on disk before a rename can make it visible.
        f.sync_data().map_err(|e| ProviderError::io(format!("cannot sync `{}`", tmp.display()), &e))
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Temporary files an interrupted write left beside `path`.
pub fn leftovers(path: &Path) -> Vec<PathBuf> {
    let Some(dir) = path.parent() else { return Vec::new() };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}{TEMP_MARKER}");
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

impl Provider for LocalProvider {
    fn name(&self) -> &str {
        "local"
    }

    fn observe(
        &self,
        kind: &str,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        targets
            .iter()
            .map(|t| {
                let path = path_of(t, cx)?;
                self.observe_one(kind, &path, t.intended.contains_key("content"))
            })
            .collect()
    }

    fn diff(&self, kind: &str, target: &Target, observed: &Observed, cx: &Context<'_>) -> Vec<Change> {
        let present = |o: &Observed| matches!(o, Observed::Present(_));
        if !target.wants_present() {
            return if present(observed) {
                vec![Change::new("ensure", Some(Value::Enum("present".into())), Value::Enum("absent".into()))]
            } else {
                Vec::new()
            };
        }
        let mut changes = Vec::new();
        // An absent object that should exist differs even when nothing else is managed.
        if matches!(observed, Observed::Absent) {
            changes.push(Change::new(
                "ensure",
                Some(Value::Enum("absent".into())),
                Value::Enum("present".into()),
            ));
        }
        if kind == "file"
            && let Some(intended) = target.intended.get("content")
        {
            let observed_hash = observed.field("sha256").and_then(Value::as_text);
            match reveal(intended, cx.secrets) {
                Ok(text) => {
                    let hash = sha256_hex(text.as_bytes());
                    if observed_hash.as_deref() != Some(hash.as_str()) && intended.contains_secret() {
                        // Neither the size nor the digest of a secret is shown.
                        changes.push(
                            Change::new("content", None, intended.clone()).shown(
                                observed_hash.as_ref().map(|_| "<redacted>".to_string()),
                                "<redacted>",
                            ),
                        );
                    } else if observed_hash.as_deref() != Some(hash.as_str()) {
                        let before = match (&observed_hash, observed.field("size")) {
                            (Some(old), Some(size)) => {
                                Some(format!("{size} bytes, sha256 {}…", &old[..old.len().min(12)]))
                            }
                            _ => None,
                        };
                        let mut change = Change::new("content", None, intended.clone())
                            .shown(before, format!("{} bytes, sha256 {}…", text.len(), &hash[..12]));
                        if cx.diffs
                            && let Ok(path) = path_of(target, cx)
                        {
                            change.diff = crate::diff::content_diff(&path, observed, &text);
                        }
                        changes.push(change);
                    }
                }
                Err(e) => changes.push(Change::unknown("content", intended.clone(), e.message)),
            }
        }
        let mut rest = target.clone();
        rest.intended.remove("content");
        // Fields built from secrets are compared on their revealed value and never shown.
        let secret_fields: Vec<String> =
            rest.intended.iter().filter(|(_, v)| v.contains_secret()).map(|(k, _)| k.clone()).collect();
        for field in secret_fields {
            let Some(intended) = rest.intended.remove(&field) else { continue };
            let seen = observed.field(&field).and_then(Value::as_text);
            match reveal(&intended, cx.secrets) {
                Err(e) => changes.push(Change::unknown(field, intended, e.message)),
                Ok(text) if seen.as_ref() == Some(&text) => {}
                Ok(_) => changes.push(
                    Change::new(field, None, intended)
                        .shown(seen.map(|_| "<redacted>".to_string()), "<redacted>"),
                ),
            }
        }
        changes.extend(default_diff(&rest, observed));
        changes
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
        self.apply_kind(kind, target, observed, cx).map(|()| Applied::default())
    }

    fn delete(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<Applied, ProviderError> {
        self.delete_kind(kind, target, cx).map(|()| Applied::default())
    }

    fn discover(&self, kind: &str, under: &str, cx: &Context<'_>) -> Result<Vec<Discovered>, ProviderError> {
        self.sweep(kind, under, cx)
    }

    fn canonical_identity(&self, _kind: &str, identity: &Fields, cx: &Context<'_>) -> Fields {
        let mut out = identity.clone();
        if let Some(Value::Str(p)) = identity.get("path") {
            out.insert("path".into(), Value::str(crate::resolve(cx.stack_dir, p).to_string_lossy().as_ref()));
        }
        out
    }

    fn contains(&self, _kind: &str, identity: &Fields, under: &str, cx: &Context<'_>) -> bool {
        match identity.get("path") {
            Some(Value::Str(p)) => {
                crate::resolve(cx.stack_dir, p).starts_with(crate::resolve(cx.stack_dir, under))
            }
            _ => false,
        }
    }

    fn watch_paths(&self, _kind: &str, target: &Target, cx: &Context<'_>) -> Vec<PathBuf> {
        target_path(target, cx.stack_dir).into_iter().collect()
    }

    fn derived_fields(&self, kind: &str, field: &str) -> &'static [&'static str] {
        match (kind, field) {
            ("file", "content") => &["sha256", "size"],
            _ => &[],
        }
    }

    fn is_artifact(&self, path: &Path) -> bool {
        path.file_name().is_some_and(|n| n.to_string_lossy().contains(TEMP_MARKER))
    }

    /// Publishes the wave's changes durably: renames each synced temporary file into place,
    /// then syncs every changed directory once (not once per file).
    fn flush(&self, _cx: &Context<'_>) -> Result<Vec<(String, ProviderError)>, ProviderError> {
        let pending = std::mem::take(&mut *self.pending());
        let mut failures = Vec::new();
        for (id, tmp, path) in pending.renames {
            if let Err(e) = fs::rename(&tmp, &path) {
                let _ = fs::remove_file(&tmp);
                failures.push((id, ProviderError::io(format!("cannot replace `{}`", path.display()), &e)));
            }
        }
        for dir in pending.dirs {
            match File::open(&dir).and_then(|d| d.sync_all()) {
                Ok(()) => {}
                // A directory removed since (a delete in the same wave) has nothing to sync.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ProviderError::io(format!("cannot sync directory `{}`", dir.display()), &e));
                }
            }
        }
        Ok(failures)
    }

    fn make_durable(&self, _kind: &str, target: &Target, cx: &Context<'_>) -> Result<(), ProviderError> {
        let Some(path) = target_path(target, cx.stack_dir) else { return Ok(()) };
        if let Ok(f) = File::open(&path) {
            f.sync_all().map_err(|e| ProviderError::io(format!("cannot sync `{}`", path.display()), &e))?;
        }
        let dir = path.parent().unwrap_or(Path::new("/"));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| ProviderError::io(format!("cannot sync directory `{}`", dir.display()), &e))
    }

    fn cleanup(&self, _kind: &str, target: &Target, cx: &Context<'_>) -> Result<usize, ProviderError> {
        let Some(path) = target_path(target, cx.stack_dir) else { return Ok(0) };
        let mut removed = 0;
        for tmp in leftovers(&path) {
            fs::remove_file(&tmp)
                .map_err(|e| ProviderError::io(format!("cannot remove `{}`", tmp.display()), &e))?;
            removed += 1;
        }
        Ok(removed)
    }
}
