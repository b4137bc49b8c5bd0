//! `file`, `directory`, `symlink` and `line` on the local filesystem, every operation through a
//! descriptor of the observed parent directory and checked against the observed inode (see
//! [`crate::safe`]).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use iade_intent::Value;
use iade_provider::{
    Applied, Change, Context, Discovered, Fields, MARK_XATTR, Mark, Observed, Provider, ProviderError,
    Target, default_diff, presence_diff, reveal,
};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::lines::{self, LineEdit};
use crate::safe::{self, Inode, Parent, file_type, inode, io_error};
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
    /// What each path named when it was last observed (`None`: nothing), so a correction acts
    /// on that object or not at all.
    seen: Mutex<HashMap<PathBuf, Seen>>,
    /// Directories opened for this wave's changes, each walked once; dropped at the flush, so
    /// the next wave walks again.
    wave_dirs: Mutex<HashMap<PathBuf, Arc<OwnedFd>>>,
    /// The edited texts of files whose lines this wave changes, written once per file at the
    /// flush.
    lines: Mutex<BTreeMap<PathBuf, LineWrite>>,
}

/// What a path named when it was last observed.
#[derive(Debug)]
struct Seen {
    /// The object (`None`: nothing).
    inode: Option<Inode>,
    /// Its mark, when the observation read it through the descriptor it opened to hash the
    /// file (no second walk of its path); `marks` takes it from here.
    mark: Option<Mark>,
}

impl Seen {
    fn at(inode: Option<Inode>) -> Self {
        Seen { inode, mark: None }
    }
}

/// A file some `line` resources edit in this wave: its text with their edits made, and the
/// file as observed (its mode and owner are kept).
#[derive(Debug)]
struct LineWrite {
    text: String,
    ids: Vec<String>,
    observed: Observed,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary object to rename over its final path at the flush.
#[derive(Debug)]
struct Rename {
    id: String,
    dir: Arc<OwnedFd>,
    tmp: OsString,
    path: PathBuf,
    name: OsString,
    /// What the final path must still name when it is replaced.
    expect: Option<Inode>,
    /// A file whose data is synced before the rename (a symlink has none).
    data: bool,
}

/// A file changed in place (its owner, mode or mark, not its content), synced at the flush
/// with the wave's temporary files.
#[derive(Debug)]
struct InPlace {
    id: String,
    /// The file, kept open only while the wave is small enough to sync file by file: a large
    /// wave syncs file systems through `dir`, and must not hold a descriptor per file.
    fd: Option<OwnedFd>,
    dir: Arc<OwnedFd>,
    path: PathBuf,
}

/// The changes of one wave, published and made durable together by `flush`: the temporary
/// files and the files changed in place synced, the temporary files renamed, then one sync per
/// changed directory.
#[derive(Debug, Default)]
struct Pending {
    renames: Vec<Rename>,
    in_place: Vec<InPlace>,
    dirs: BTreeMap<PathBuf, Arc<OwnedFd>>,
}

/// At most this many syncs (of temporary files, of directories) run at once.
const SYNC_THREADS: usize = 16;

/// From this many files on, a wave syncs the file systems that hold them (`syncfs`) instead of
/// each file: one journal commit instead of one per file. It also writes out other programs'
/// unsynced data on those file systems, which a small wave is spared.
const SYNCFS_FROM: usize = 64;

/// The file system (device) an open directory is on.
fn device(fd: &OwnedFd) -> Option<u64> {
    rustix::fs::fstat(fd).ok().map(|st| st.st_dev)
}

/// Runs `sync` on each item from up to [`SYNC_THREADS`] threads, the results in order: syncs
/// issued at once are committed by the file system in a few journal transactions, where
/// syncing one after the other waits for one commit each.
fn in_parallel<T: Sync, R: Send>(items: &[T], sync: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() < 2 {
        return items.iter().map(&sync).collect();
    }
    let per = items.len().div_ceil(SYNC_THREADS.min(items.len()));
    let sync = &sync;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|run| scope.spawn(move || run.iter().map(sync).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// What happened to one sync.
type Synced = Result<(), ProviderError>;

/// What `flush` syncs before its renames.
enum Job<'a> {
    Temporary(&'a Rename),
    InPlace(&'a InPlace),
}

/// Syncs a wave's temporary files (their data, before any rename makes one visible) and the
/// files it changed in place: for a `large` wave, each file system that holds them once;
/// otherwise each file, all at once. What happened to each, in the order given.
fn sync_wave(renames: &[Rename], in_place: &[InPlace], large: bool) -> (Vec<Synced>, Vec<Synced>) {
    if !large {
        let jobs: Vec<Job<'_>> =
            renames.iter().map(Job::Temporary).chain(in_place.iter().map(Job::InPlace)).collect();
        let mut synced = in_parallel(&jobs, |job| match job {
            Job::Temporary(r) => sync_temporary(r),
            Job::InPlace(p) => sync_in_place(p),
        });
        let in_place = synced.split_off(renames.len());
        return (synced, in_place);
    }
    // One `fstat` per directory, not per file: the files of a directory share its handle.
    let mut devices: HashMap<*const OwnedFd, Option<u64>> = HashMap::new();
    let mut device_of = |dir: &Arc<OwnedFd>| *devices.entry(Arc::as_ptr(dir)).or_insert_with(|| device(dir));
    let on: Vec<Option<u64>> = renames.iter().map(|r| device_of(&r.dir)).collect();
    let on_in_place: Vec<Option<u64>> = in_place.iter().map(|p| device_of(&p.dir)).collect();
    let synced = sync_file_systems(
        renames
            .iter()
            .zip(&on)
            .filter(|(r, _)| r.data)
            .filter_map(|(r, dev)| Some((*dev.as_ref()?, &*r.dir, &r.path)))
            .chain(
                in_place
                    .iter()
                    .zip(&on_in_place)
                    .filter_map(|(p, dev)| Some((*dev.as_ref()?, &*p.dir, &p.path))),
            ),
    );
    let outcome = |dev: Option<u64>, path: &Path| match dev {
        Some(dev) => synced.get(&dev).cloned().unwrap_or(Ok(())),
        None => {
            Err(ProviderError::permanent(format!("cannot inspect the file system of `{}`", path.display())))
        }
    };
    let renamed =
        renames.iter().zip(on).map(|(r, dev)| if r.data { outcome(dev, &r.path) } else { Ok(()) }).collect();
    let in_place = in_place.iter().zip(on_in_place).map(|(p, dev)| outcome(dev, &p.path)).collect();
    (renamed, in_place)
}

/// Syncs each file system (device) once, through the first object given on it: what
/// happened to each device's sync.
fn sync_file_systems<'a>(
    on: impl Iterator<Item = (u64, &'a OwnedFd, &'a PathBuf)>,
) -> HashMap<u64, Result<(), ProviderError>> {
    let mut out = HashMap::new();
    for (dev, fd, path) in on {
        out.entry(dev).or_insert_with(|| sync_file_system(fd, path));
    }
    out
}

/// Syncs the file system that holds `path`, through `fd` (an object on it).
fn sync_file_system(fd: &OwnedFd, path: &Path) -> Result<(), ProviderError> {
    rustix::fs::syncfs(fd)
        .map_err(|e| io_error(format!("cannot sync the file system that holds `{}`", path.display()), e))
}

fn sync_in_place(p: &InPlace) -> Result<(), ProviderError> {
    match &p.fd {
        Some(fd) => {
            rustix::fs::fsync(fd).map_err(|e| io_error(format!("cannot sync `{}`", p.path.display()), e))
        }
        // Not kept (the wave looked large when it was changed): its file system, then.
        None => sync_file_system(&p.dir, &p.path),
    }
}

fn sync_temporary(r: &Rename) -> Result<(), ProviderError> {
    if !r.data {
        return Ok(());
    }
    let shown = || r.path.with_file_name(&r.tmp).display().to_string();
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&*r.dir, r.tmp.as_os_str(), flags, Mode::empty())
        .map_err(|e| io_error(format!("cannot open `{}`", shown()), e))?;
    rustix::fs::fdatasync(&fd).map_err(|e| io_error(format!("cannot sync `{}`", shown()), e))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The kind an object of this file type would be.
fn kind_of(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        _ => "special file",
    }
}

fn want(kind: &str) -> FileType {
    match kind {
        "directory" => FileType::Directory,
        "symlink" => FileType::Symlink,
        _ => FileType::RegularFile,
    }
}

/// This process's id, asked of the kernel once.
fn own_pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

fn temp_name(name: &std::ffi::OsStr) -> OsString {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut out = OsString::from(".");
    out.push(name);
    out.push(format!("{TEMP_MARKER}{}.{n}", own_pid()));
    out
}

/// Fields that say how to make the object, not what to compare with its observation.
const NOT_OBSERVED: &[&str] = &["content", "source", "purge", "validate", "backup"];

/// How many backups of one file are kept, and the largest file backed up.
pub const BACKUPS_KEPT: usize = 5;
const BACKUP_LIMIT: u64 = 8 << 20;

/// Marks an open file or directory with the run's stack. A file system without extended
/// attributes cannot carry the mark: the journal proves ownership there.
fn write_mark(fd: &OwnedFd, path: &Path, cx: &Context<'_>) -> Result<(), ProviderError> {
    write_mark_as(fd, path, cx.stack)
}

/// Marks an open file or directory with a stack's name.
fn write_mark_as(fd: &OwnedFd, path: &Path, stack: &str) -> Result<(), ProviderError> {
    if stack.is_empty() {
        return Ok(());
    }
    match rustix::fs::fsetxattr(fd, MARK_XATTR, stack.as_bytes(), rustix::fs::XattrFlags::empty()) {
        Ok(()) | Err(Errno::NOTSUP | Errno::PERM) => Ok(()),
        Err(e) => Err(io_error(format!("cannot mark `{}` as this stack's", path.display()), e)),
    }
}

/// The mark on a path (never following a final link).
fn read_mark(path: &Path) -> Mark {
    let mut buf = [0u8; 256];
    mark_of(rustix::fs::lgetxattr(path, MARK_XATTR, &mut buf[..]), &buf)
}

/// The mark on an open file or directory.
fn read_mark_fd(fd: &OwnedFd) -> Mark {
    let mut buf = [0u8; 256];
    mark_of(rustix::fs::fgetxattr(fd, MARK_XATTR, &mut buf[..]), &buf)
}

fn mark_of(read: rustix::io::Result<usize>, buf: &[u8]) -> Mark {
    match read {
        Ok(n) => Mark::Stack(String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned()),
        Err(Errno::NODATA) => Mark::Unmarked,
        // Too long to be a stack name iade wrote: someone else's.
        Err(Errno::RANGE) => Mark::Stack("(unreadable)".into()),
        Err(_) => Mark::Unsupported,
    }
}

/// The bytes a file's intent says it holds: its `content`, or the bytes of its `source`.
fn intended_bytes(target: &Target, cx: &Context<'_>) -> Result<Option<Vec<u8>>, ProviderError> {
    if let Some(v) = target.intended.get("content") {
        return Ok(Some(reveal(v, cx.secrets)?.into_bytes()));
    }
    match target.intended.get("source") {
        Some(Value::Str(src)) => {
            let path = crate::resolve(cx.stack_dir, src);
            std::fs::read(&path)
                .map(Some)
                .map_err(|e| ProviderError::io(format!("cannot read the source `{}`", path.display()), &e))
        }
        _ => Ok(None),
    }
}

impl LocalProvider {
    pub fn new() -> Self {
        Self::default()
    }

    fn names(&self) -> &Names {
        self.names.get_or_init(Names::load)
    }

    /// The fields every object has, in a map with `room` for as many (a file has seven).
    fn metadata_fields(&self, st: &Stat, room: usize) -> Fields {
        let mut f = Fields::with_capacity(room);
        f.insert("ensure".into(), Value::Enum("present".into()));
        f.insert("mode".into(), Value::Mode(i64::from(st.st_mode & 0o7777)));
        f.insert("owner".into(), Value::str(self.names().user(st.st_uid)));
        f.insert("group".into(), Value::str(self.names().group(st.st_gid)));
        f
    }

    /// What the path named when it was observed.
    fn expected(&self, path: &Path) -> Option<Inode> {
        lock(&self.seen).get(path).and_then(|s| s.inode)
    }

    /// Observes one path through its (safely opened) parent; `parent` is `None` when a
    /// directory on the way does not exist, so neither does the object.
    fn observe_at(
        &self,
        kind: &str,
        path: &Path,
        parent: Option<&Parent>,
        hash: bool,
        cx: &Context<'_>,
    ) -> Result<Observed, ProviderError> {
        let st = match parent.map(Parent::stat).transpose() {
            Ok(Some(Some(st))) => st,
            Ok(_) => {
                lock(&self.seen).insert(path.to_path_buf(), Seen::at(None));
                return Ok(Observed::Absent);
            }
            Err(e) => return Err(io_error(format!("cannot observe `{}`", path.display()), e)),
        };
        let parent = parent.ok_or_else(|| safe::changed(path))?;
        lock(&self.seen).insert(path.to_path_buf(), Seen::at(Some(inode(&st))));
        let found = kind_of(file_type(&st));
        if found != kind {
            return Err(ProviderError::permanent(format!(
                "`{}` is a {found}, not a {kind}; iade will not replace it",
                path.display()
            )));
        }
        match kind {
            "symlink" => {
                let target = rustix::fs::readlinkat(&*parent.fd, parent.name.as_os_str(), Vec::new())
                    .map_err(|e| io_error(format!("cannot read link `{}`", path.display()), e))?;
                let mut f = Fields::new();
                f.insert("ensure".into(), Value::Enum("present".into()));
                f.insert("target".into(), Value::str(String::from_utf8_lossy(target.as_bytes()).as_ref()));
                Ok(Observed::Present(f))
            }
            "directory" => Ok(Observed::Present(self.metadata_fields(&st, 4))),
            _ => {
                let mut f = self.metadata_fields(&st, 7);
                f.insert("size".into(), Value::Int(st.st_size));
                f.insert("mtime".into(), Value::Int(st.st_mtime));
                if hash {
                    let fd = parent.open(path, FileType::RegularFile, Some(inode(&st)))?;
                    let mark = read_mark_fd(&fd);
                    if let Some(seen) = lock(&self.seen).get_mut(path) {
                        seen.mark = Some(mark);
                    }
                    let mut h = Sha256::new();
                    let size = u64::try_from(st.st_size).ok();
                    safe::read_cancellable(&fd, path, size, cx.cancelled, |chunk| h.update(chunk))?;
                    f.insert("sha256".into(), Value::str(hex(&h.finalize())));
                }
                Ok(Observed::Present(f))
            }
        }
    }

    /// Sets the managed owner and group of `fd`; an unmanaged one is left alone, or, for a
    /// replacement file, taken from the file it replaces (iade never changes an unmanaged
    /// field).
    fn chown(
        &self,
        fd: &OwnedFd,
        path: &Path,
        target: &Target,
        keep: Option<&Observed>,
    ) -> Result<(), ProviderError> {
        let id = |field: &str| -> Result<Option<u32>, ProviderError> {
            let name = match (target.intended.get(field), keep.and_then(|o| o.field(field))) {
                (Some(Value::Str(n)), _) | (None, Some(Value::Str(n))) => n.to_string(),
                _ => return Ok(None),
            };
            let found = if field == "owner" { self.names().uid(&name) } else { self.names().gid(&name) };
            let what = if field == "owner" { "user" } else { "group" };
            found
                .map(Some)
                .ok_or_else(|| ProviderError::permanent(format!("no {what} `{name}` on this host")))
        };
        let (uid, gid) = (id("owner")?, id("group")?);
        if uid.is_some() || gid.is_some() {
            rustix::fs::fchown(fd, uid.map(rustix::fs::Uid::from_raw), gid.map(rustix::fs::Gid::from_raw))
                .map_err(|e| io_error(format!("cannot change the owner of `{}`", path.display()), e))?;
        }
        Ok(())
    }

    fn chmod(fd: &OwnedFd, path: &Path, mode: u32) -> Result<(), ProviderError> {
        rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))
            .map_err(|e| io_error(format!("cannot change the mode of `{}`", path.display()), e))
    }

    /// Notes that a directory's entries changed; [`Provider::flush`] syncs it once.
    fn dirty(&self, path: &Path, dir: Arc<OwnedFd>) {
        let key = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        lock(&self.pending).dirs.entry(key).or_insert(dir);
    }

    /// The parent of a path to change, walked once per wave and directory.
    fn parent_for_change(&self, path: &Path) -> Result<Parent, ProviderError> {
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_os_string())
            .ok_or_else(|| ProviderError::permanent(format!("`{}` names no file", path.display())))?;
        let cached = lock(&self.wave_dirs).get(&dir).cloned();
        let fd = match cached {
            Some(fd) => fd,
            None => {
                let fd = safe::open_dir(&dir)?.map(Arc::new).ok_or_else(|| {
                    ProviderError::permanent(format!("directory `{}` does not exist", dir.display()))
                })?;
                lock(&self.wave_dirs).insert(dir, fd.clone());
                fd
            }
        };
        Ok(Parent { fd, name })
    }

    /// Keeps the content a write is about to replace in `STATE_DIR/backups/ID/MILLIS` (the
    /// newest [`BACKUPS_KEPT`] of each file), unless it is built from a secret, larger than
    /// 8 MiB, or there is no state directory (nothing is kept then).
    fn back_up(
        &self,
        path: &Path,
        parent: &Parent,
        expect: Option<Inode>,
        target: &Target,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        use std::os::unix::fs::DirBuilderExt;
        let Some(state) = cx.state_dir else { return Ok(()) };
        if target.intended.values().any(Value::contains_secret) {
            return Ok(());
        }
        let fd = parent.open(path, FileType::RegularFile, expect)?;
        let st = rustix::fs::fstat(&fd)
            .map_err(|e| io_error(format!("cannot inspect `{}`", path.display()), e))?;
        if st.st_size as u64 > BACKUP_LIMIT {
            return Ok(());
        }
        let mut bytes = Vec::new();
        safe::read_cancellable(&fd, path, None, cx.cancelled, |chunk| bytes.extend_from_slice(chunk))?;
        let dir = backup_dir(state, &target.id);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| ProviderError::io(format!("cannot create `{}`", dir.display()), &e))?;
        let ms = now_ms();
        let file = dir.join(ms.to_string());
        std::fs::write(&file, &bytes)
            .map_err(|e| ProviderError::io(format!("cannot write `{}`", file.display()), &e))?;
        let mut kept: Vec<(u128, PathBuf)> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
                    .collect()
            })
            .unwrap_or_default();
        kept.sort_by_key(|k| std::cmp::Reverse(k.0));
        for (_, old) in kept.into_iter().skip(BACKUPS_KEPT) {
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }

    /// The text of a regular file and its metadata, read through its observed parent; `None`
    /// when it does not exist. Observing records what the path names; otherwise the file must
    /// still be what was observed.
    fn read_text(
        &self,
        path: &Path,
        observing: bool,
        cx: &Context<'_>,
    ) -> Result<Option<(String, Fields)>, ProviderError> {
        let Some(parent) = safe::parent(path)? else {
            if observing {
                lock(&self.seen).insert(path.to_path_buf(), Seen::at(None));
            }
            return Ok(None);
        };
        let Some(st) =
            parent.stat().map_err(|e| io_error(format!("cannot inspect `{}`", path.display()), e))?
        else {
            if observing {
                lock(&self.seen).insert(path.to_path_buf(), Seen::at(None));
            }
            return Ok(None);
        };
        let expect = if observing {
            lock(&self.seen).insert(path.to_path_buf(), Seen::at(Some(inode(&st))));
            Some(inode(&st))
        } else {
            self.expected(path)
        };
        let found = kind_of(file_type(&st));
        if found != "file" {
            return Err(ProviderError::permanent(format!("`{}` is a {found}, not a file", path.display())));
        }
        let fd = parent.open(path, FileType::RegularFile, expect)?;
        let mut bytes = Vec::new();
        safe::read_cancellable(&fd, path, None, cx.cancelled, |chunk| bytes.extend_from_slice(chunk))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ProviderError::permanent(format!("`{}` is not UTF-8 text", path.display())))?;
        Ok(Some((text, self.metadata_fields(&st, 4))))
    }

    /// A `line` as observed: present with the first matching line, or absent (no matching
    /// line, or no file).
    fn observe_line(&self, target: &Target, cx: &Context<'_>) -> Result<Observed, ProviderError> {
        let path = path_of(target, cx)?;
        let matcher = match target.identity.get("match") {
            Some(Value::Str(m)) => regex::Regex::new(m).map_err(|e| {
                ProviderError::permanent(format!("`match` is not a valid regular expression: {e}"))
            })?,
            _ => return Err(ProviderError::permanent("a line needs a `match` pattern")),
        };
        let Some((text, _)) = self.read_text(&path, true, cx)? else { return Ok(Observed::Absent) };
        Ok(match lines::first_match(&text, &matcher) {
            Some(found) => {
                let mut f = Fields::new();
                f.insert("ensure".into(), Value::Enum("present".into()));
                f.insert("line".into(), Value::str(found));
                Observed::Present(f)
            }
            None => Observed::Absent,
        })
    }

    /// Makes a `line` resource's edit on the file's text of this wave (read on the first
    /// edit); the file is written once, at the flush.
    fn queue_line(&self, path: &Path, target: &Target, cx: &Context<'_>) -> Result<(), ProviderError> {
        let edit = LineEdit::of(target)?;
        let mut pending = lock(&self.lines);
        if !pending.contains_key(path) {
            let (text, meta) = self.read_text(path, false, cx)?.ok_or_else(|| {
                ProviderError::permanent(format!(
                    "`{}` does not exist; a `line` edits a file, declare the file with `file` to create it",
                    path.display()
                ))
            })?;
            pending.insert(
                path.to_path_buf(),
                LineWrite { text, ids: Vec::new(), observed: Observed::Present(meta) },
            );
        }
        let write = pending.get_mut(path).ok_or_else(|| safe::changed(path))?;
        write.text = lines::apply(&write.text, &edit);
        write.ids.push(target.id.clone());
        Ok(())
    }

    fn apply_file(
        &self,
        path: &Path,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let content = intended_bytes(target, cx)?;
        self.write_file(path, target, observed, content, Some(cx.stack), cx)
    }

    /// Writes a file: `content` (when given and different) atomically through a temporary
    /// file renamed at the flush, then the managed mode and owner. `mark`: the stack the file
    /// is marked as (the run's for a file it manages; for a file whose lines it edits, the
    /// mark the file already had, if any).
    fn write_file(
        &self,
        path: &Path,
        target: &Target,
        observed: &Observed,
        content: Option<Vec<u8>>,
        mark: Option<&str>,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let parent = self.parent_for_change(path)?;
        let expect = self.expected(path);
        let mode = intended_mode(target);
        let rewrite = match (&content, observed) {
            (Some(c), Observed::Present(f)) => {
                f.get("sha256").and_then(|v| v.as_text()) != Some(sha256_hex(c))
            }
            (_, Observed::Absent) => true,
            (None, Observed::Present(_)) => false,
        };
        if !rewrite {
            let fd = parent.open(path, FileType::RegularFile, expect)?;
            self.chown(&fd, path, target, None)?;
            if let Some(mode) = mode {
                Self::chmod(&fd, path, mode)?;
            }
            if let Some(stack) = mark {
                write_mark_as(&fd, path, stack)?;
            }
            let mut pending = lock(&self.pending);
            // Counted cheaply (a symlink counts too): a file whose descriptor is not kept, in a
            // wave that ends up small, is synced through its file system instead.
            let large = pending.renames.len() + pending.in_place.len() + 1 >= SYNCFS_FROM;
            pending.in_place.push(InPlace {
                id: target.id.clone(),
                fd: (!large).then_some(fd),
                dir: parent.fd.clone(),
                path: path.to_path_buf(),
            });
            return Ok(());
        }
        if matches!(target.intended.get("backup"), Some(Value::Bool(true)))
            && matches!(observed, Observed::Present(_))
        {
            self.back_up(path, &parent, expect, target, cx)?;
        }
        // A new file without a managed mode gets the usual 0o644; an existing one keeps its.
        let mode = mode.or_else(|| observed.field("mode").and_then(as_mode)).unwrap_or(0o644);
        let tmp = temp_name(&parent.name);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let shown = || path.with_file_name(&tmp).display().to_string();
        let fd = rustix::fs::openat(&*parent.fd, tmp.as_os_str(), flags, Mode::from_raw_mode(mode))
            .map_err(|e| io_error(format!("cannot create `{}`", shown()), e))?;
        let written = (|| {
            // Ownership first: changing the owner clears setuid and setgid bits, the mode puts
            // them back.
            self.chown(&fd, path, target, Some(observed))?;
            Self::chmod(&fd, path, mode)?;
            // Marked before the rename: the file is this stack's from the moment it is visible.
            if let Some(stack) = mark {
                write_mark_as(&fd, path, stack)?;
            }
            let bytes = content.as_deref().unwrap_or_default();
            let mut at = 0;
            while at < bytes.len() {
                match rustix::io::write(&fd, &bytes[at..]) {
                    Ok(n) => at += n,
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(io_error(format!("cannot write `{}`", shown()), e)),
                }
            }
            // The data is synced at the flush, before a rename can make it visible. The new
            // content is checked where it will live, before it replaces anything.
            validate(target, &path.with_file_name(&tmp), cx)
        })();
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(&*parent.fd, tmp.as_os_str(), AtFlags::empty());
            return Err(e);
        }
        let dir = parent.fd.clone();
        self.dirty(path, dir.clone());
        lock(&self.pending).renames.push(Rename {
            id: target.id.clone(),
            dir,
            tmp,
            path: path.to_path_buf(),
            name: parent.name,
            expect,
            data: true,
        });
        Ok(())
    }

    fn apply_directory(
        &self,
        path: &Path,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let parent = self.parent_for_change(path)?;
        let absent = matches!(observed, Observed::Absent);
        if absent {
            parent.check(path, None)?;
            let mode = intended_mode(target).unwrap_or(0o755);
            rustix::fs::mkdirat(&*parent.fd, parent.name.as_os_str(), Mode::from_raw_mode(mode)).map_err(
                |e| match e {
                    Errno::EXIST => safe::changed(path),
                    e => io_error(format!("cannot create `{}`", path.display()), e),
                },
            )?;
        }
        let expect = if absent { None } else { self.expected(path) };
        let fd = parent.open(path, FileType::Directory, expect)?;
        // Ownership first: changing the owner clears setgid, the mode puts it back.
        self.chown(&fd, path, target, None)?;
        if let Some(mode) = intended_mode(target).or(absent.then_some(0o755)) {
            Self::chmod(&fd, path, mode)?;
        }
        write_mark(&fd, path, cx)?;
        rustix::fs::fsync(&fd).map_err(|e| io_error(format!("cannot sync `{}`", path.display()), e))?;
        self.dirty(path, parent.fd.clone());
        Ok(())
    }

    fn apply_symlink(&self, path: &Path, target: &Target, cx: &Context<'_>) -> Result<(), ProviderError> {
        let to = match target.intended.get("target") {
            Some(v) => reveal(v, cx.secrets)?,
            None => return Err(ProviderError::permanent(format!("`{}` has no target", target.id))),
        };
        let parent = self.parent_for_change(path)?;
        let tmp = temp_name(&parent.name);
        rustix::fs::symlinkat(to.as_str(), &*parent.fd, tmp.as_os_str()).map_err(|e| {
            io_error(format!("cannot create link `{}`", path.with_file_name(&tmp).display()), e)
        })?;
        let dir = parent.fd.clone();
        self.dirty(path, dir.clone());
        let expect = self.expected(path);
        lock(&self.pending).renames.push(Rename {
            id: target.id.clone(),
            dir,
            tmp,
            path: path.to_path_buf(),
            name: parent.name,
            expect,
            data: false,
        });
        Ok(())
    }

    fn delete_kind(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<(), ProviderError> {
        let path = path_of(target, cx)?;
        if kind == "line" {
            let mut absent = target.clone();
            absent.intended.insert("ensure".into(), Value::Enum("absent".into()));
            return match self.read_text(&path, false, cx) {
                Ok(None) => Ok(()),
                Ok(Some(_)) => self.queue_line(&path, &absent, cx),
                Err(e) => Err(e),
            };
        }
        let Some(parent) = safe::parent(&path)? else { return Ok(()) };
        let Some(st) =
            parent.stat().map_err(|e| io_error(format!("cannot inspect `{}`", path.display()), e))?
        else {
            return Ok(());
        };
        if Some(inode(&st)) != self.expected(&path) {
            return Err(safe::changed(&path));
        }
        let flags = if kind == "directory" { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        match rustix::fs::unlinkat(&*parent.fd, parent.name.as_os_str(), flags) {
            Ok(()) => {
                self.dirty(&path, parent.fd.clone());
                Ok(())
            }
            Err(Errno::NOENT) => Ok(()),
            Err(Errno::NOTEMPTY | Errno::EXIST) => Err(ProviderError::permanent(format!(
                "directory `{}` is not empty; iade removes only empty directories",
                path.display()
            ))),
            Err(e) => Err(io_error(format!("cannot remove `{}`", path.display()), e)),
        }
    }

    /// Objects of a kind under a path, for compliance sweeps: in name order, never into
    /// kernel and device trees, skipping temporary files, never following a link.
    fn sweep(&self, kind: &str, under: &str, cx: &Context<'_>) -> Result<Vec<Discovered>, ProviderError> {
        let root = crate::resolve(cx.stack_dir, under);
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        let mut seen = 0usize;
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == root => return Ok(Vec::new()),
                Err(e) => return Err(ProviderError::io(format!("cannot list `{}`", dir.display()), &e)),
            };
            let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
            entries.sort_by_key(|e| e.file_name());
            let parent = safe::open_dir(&dir).ok().flatten().map(Arc::new);
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
                let Some(dirfd) = parent.as_ref() else { continue };
                if !matches || entry.file_name().to_string_lossy().contains(TEMP_MARKER) {
                    continue;
                }
                let at = Parent { fd: dirfd.clone(), name: entry.file_name() };
                let small = entry.metadata().map(|m| m.len() <= SWEEP_HASH_LIMIT).unwrap_or(false);
                if let Ok(Observed::Present(mut fields)) =
                    self.observe_at(kind, &path, Some(&at), kind == "file" && small, cx)
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
/// Runs a file's `validate` command on the written temporary file (`%` in the command is its
/// path, quoted for the shell); a non-zero exit fails the step and the old file stays.
fn validate(target: &Target, tmp: &Path, cx: &Context<'_>) -> Result<(), ProviderError> {
    let Some(Value::Str(command)) = target.intended.get("validate") else { return Ok(()) };
    let quoted = format!("'{}'", tmp.to_string_lossy().replace('\'', r"'\''"));
    let line = command.replace('%', &quoted);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&line)
        .current_dir(cx.stack_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| ProviderError::io("cannot run `validate`", &e))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
    let tail = |b: &[u8]| crate::command::tail(&String::from_utf8_lossy(b));
    Err(ProviderError::permanent(format!(
        "`validate` rejected the new content (`{command}` exited with {}){}; the file was left as it was",
        out.status.code().unwrap_or(-1),
        if first.is_empty() { String::new() } else { format!(": {first}") }
    ))
    .with_output(iade_provider::Output { stdout: tail(&out.stdout), stderr: tail(&out.stderr) }))
}

/// Milliseconds since the Unix epoch: a backup's name.
#[expect(
    clippy::disallowed_methods,
    reason = "a backup is named by when it was taken; evaluation never reads it"
)]
fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// Where the backups of a resource's file are kept: `STATE_DIR/backups/ID`, the id made safe
/// as one path component.
pub fn backup_dir(state_dir: &Path, id: &str) -> PathBuf {
    let safe: String = id.chars().map(|c| if c == '/' || c.is_control() { '_' } else { c }).collect();
    state_dir.join("backups").join(safe)
}

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

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The process id in a temporary file's name (`.NAME.iade-tmp.PID.N`), if it is one.
fn temp_owner(name: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(name).ok()?;
    let (_, rest) = text.split_once(TEMP_MARKER)?;
    rest.split('.').next()?.parse().ok()
}

/// Whether the temporary file of process `pid` may be removed: its writer is gone (or it is
/// this process, which has no write in flight when it cleans up).
fn abandoned(pid: u32) -> bool {
    pid == own_pid() || !Path::new(&format!("/proc/{pid}")).exists()
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
        if kind == "line" {
            return targets.iter().map(|t| self.observe_line(t, cx)).collect();
        }
        // One walk per directory in the batch: a batch is usually one directory's files.
        let mut dirs: HashMap<PathBuf, Result<Option<Arc<OwnedFd>>, ProviderError>> = HashMap::new();
        targets
            .iter()
            .map(|t| {
                let path = path_of(t, cx)?;
                let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
                let opened = dirs
                    .entry(dir.clone())
                    .or_insert_with(|| safe::open_dir(&dir).map(|fd| fd.map(Arc::new)))
                    .clone()?;
                let name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
                let parent = opened.map(|fd| Parent { fd, name });
                let hash = t.intended.contains_key("content") || t.intended.contains_key("source");
                self.observe_at(kind, &path, parent.as_ref(), hash, cx)
            })
            .collect()
    }

    fn diff(&self, kind: &str, target: &Target, observed: &Observed, cx: &Context<'_>) -> Vec<Change> {
        if kind == "line" {
            // Where a missing line goes is not observable: only the line itself is compared.
            return presence_diff(target, observed, || {
                let mut t = target.clone();
                t.intended.remove("insert_after");
                t.intended.remove("insert_before");
                default_diff(&t, observed)
            });
        }
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
            && let Some(Value::Str(src)) = target.intended.get("source")
        {
            let observed_hash = observed.field("sha256").and_then(Value::as_text);
            match intended_bytes(target, cx) {
                Ok(Some(bytes)) => {
                    let hash = sha256_hex(&bytes);
                    if observed_hash.as_deref() != Some(hash.as_str()) {
                        let before = match (&observed_hash, observed.field("size")) {
                            (Some(old), Some(size)) => {
                                Some(format!("{size} bytes, sha256 {}…", &old[..old.len().min(12)]))
                            }
                            _ => None,
                        };
                        changes.push(Change::new("source", None, Value::str(src.as_ref())).shown(
                            before,
                            format!("{} bytes, sha256 {}… (from {src})", bytes.len(), &hash[..12]),
                        ));
                    }
                }
                Ok(None) => {}
                Err(e) => changes.push(Change::unknown("source", Value::str(src.as_ref()), e.message)),
            }
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
        for f in NOT_OBSERVED {
            rest.intended.remove(*f);
        }
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
        let path = path_of(target, cx)?;
        match kind {
            "file" => self.apply_file(&path, target, observed, cx),
            "directory" => self.apply_directory(&path, target, observed, cx),
            "symlink" => self.apply_symlink(&path, target, cx),
            "line" => self.queue_line(&path, target, cx),
            other => Err(ProviderError::permanent(format!("the local provider has no kind `{other}`"))),
        }
        .map(|()| Applied::default())
    }

    fn delete(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<Applied, ProviderError> {
        self.delete_kind(kind, target, cx).map(|()| Applied::default())
    }

    fn discover(&self, kind: &str, under: &str, cx: &Context<'_>) -> Result<Vec<Discovered>, ProviderError> {
        self.sweep(kind, under, cx)
    }

    fn marks(&self, kind: &str, targets: &[&Target], cx: &Context<'_>) -> Vec<Mark> {
        targets
            .iter()
            .map(|t| match (kind, path_of(t, cx)) {
                // Links cannot carry user attributes: the journal proves their ownership. A line
                // is the stack's, not the file that holds it.
                ("symlink" | "line", _) | (_, Err(_)) => Mark::Unsupported,
                (_, Ok(path)) => {
                    let read = lock(&self.seen).get_mut(&path).and_then(|s| s.mark.take());
                    read.unwrap_or_else(|| read_mark(&path))
                }
            })
            .collect()
    }

    fn set_mark(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<Applied, ProviderError> {
        if kind == "symlink" || kind == "line" {
            return Ok(Applied::default());
        }
        let path = path_of(target, cx)?;
        let parent = safe::parent(&path)?.ok_or_else(|| safe::changed(&path))?;
        let fd = parent.open(&path, want(kind), self.expected(&path))?;
        write_mark(&fd, &path, cx)?;
        rustix::fs::fsync(&fd).map_err(|e| io_error(format!("cannot sync `{}`", path.display()), e))?;
        Ok(Applied::default())
    }

    /// Every entry under the directory, deepest first, never following a link nor crossing
    /// into another file system; temporary files of writes in progress are left alone.
    fn purge_candidates(
        &self,
        kind: &str,
        target: &Target,
        cx: &Context<'_>,
    ) -> Result<Vec<Target>, ProviderError> {
        if kind != "directory" {
            return Ok(Vec::new());
        }
        let root = path_of(target, cx)?;
        let Ok(root_meta) = std::fs::symlink_metadata(&root) else { return Ok(Vec::new()) };
        let dev = std::os::unix::fs::MetadataExt::dev(&root_meta);
        let mut out = Vec::new();
        // Depth-first, children before their directory.
        fn walk(dir: &Path, dev: u64, out: &mut Vec<Target>) -> Result<(), ProviderError> {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(ProviderError::io(format!("cannot list `{}`", dir.display()), &e)),
            };
            let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                if entry.file_name().to_string_lossy().contains(TEMP_MARKER) {
                    continue;
                }
                let path = entry.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
                let ft = meta.file_type();
                let kind = if ft.is_symlink() {
                    "symlink"
                } else if ft.is_dir() {
                    "directory"
                } else if ft.is_file() {
                    "file"
                } else {
                    continue;
                };
                if kind == "directory" && std::os::unix::fs::MetadataExt::dev(&meta) == dev {
                    walk(&path, dev, out)?;
                } else if kind == "directory" {
                    continue;
                }
                let shown = path.to_string_lossy().into_owned();
                let identity = Fields::from([("path".to_string(), Value::str(shown.as_str()))]);
                let mut intended = identity.clone();
                intended.insert("ensure".into(), Value::Enum("absent".into()));
                out.push(Target {
                    id: format!("{kind}[{shown}]"),
                    kind: kind.into(),
                    instance: None,
                    identity,
                    intended,
                });
            }
            Ok(())
        }
        walk(&root, dev, &mut out)?;
        Ok(out)
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

    /// Publishes the wave's changes durably: renames each synced temporary object over its
    /// path (still the object that was observed), then syncs every changed directory once.
    fn flush(&self, cx: &Context<'_>) -> Result<Vec<(String, ProviderError)>, ProviderError> {
        let mut failures = Vec::new();
        // Files whose lines changed: one write each, attributed to every line resource on it.
        let mut line_ids: HashMap<String, Vec<String>> = HashMap::new();
        for (path, w) in std::mem::take(&mut *lock(&self.lines)) {
            let Some(first) = w.ids.first().cloned() else { continue };
            let target = Target {
                id: first.clone(),
                instance: None,
                kind: "line".into(),
                identity: Fields::new(),
                intended: Fields::new(),
            };
            // The file keeps the mark it had (a file the stack also manages stays the stack's).
            let kept = match read_mark(&path) {
                Mark::Stack(name) => Some(name),
                _ => None,
            };
            match self.write_file(&path, &target, &w.observed, Some(w.text.into_bytes()), kept.as_deref(), cx)
            {
                Ok(()) => {
                    line_ids.insert(first, w.ids);
                }
                Err(e) => failures.extend(w.ids.into_iter().map(|id| (id, e.clone()))),
            }
        }
        let pending = std::mem::take(&mut *lock(&self.pending));
        lock(&self.wave_dirs).clear();
        let mut fail = |id: String, e: ProviderError| match line_ids.get(&id) {
            Some(ids) => failures.extend(ids.iter().map(|i| (i.clone(), e.clone()))),
            None => failures.push((id, e)),
        };
        // A large wave syncs file systems, not files, before its renames and after them.
        let large = pending.renames.iter().filter(|r| r.data).count() + pending.in_place.len() >= SYNCFS_FROM;
        let (synced, in_place) = sync_wave(&pending.renames, &pending.in_place, large);
        for (p, synced) in pending.in_place.into_iter().zip(in_place) {
            if let Err(e) = synced {
                fail(p.id, e);
            }
        }
        for (r, synced) in pending.renames.into_iter().zip(synced) {
            if let Err(e) = synced {
                let _ = rustix::fs::unlinkat(&*r.dir, r.tmp.as_os_str(), AtFlags::empty());
                fail(r.id, e);
                continue;
            }
            let now = match rustix::fs::statat(&*r.dir, r.name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Some(inode(&st)),
                Err(Errno::NOENT) => None,
                Err(e) => {
                    let _ = rustix::fs::unlinkat(&*r.dir, r.tmp.as_os_str(), AtFlags::empty());
                    fail(r.id, io_error(format!("cannot inspect `{}`", r.path.display()), e));
                    continue;
                }
            };
            if now != r.expect {
                let _ = rustix::fs::unlinkat(&*r.dir, r.tmp.as_os_str(), AtFlags::empty());
                fail(r.id, safe::changed(&r.path));
                continue;
            }
            if let Err(e) = rustix::fs::renameat(&*r.dir, r.tmp.as_os_str(), &*r.dir, r.name.as_os_str()) {
                let _ = rustix::fs::unlinkat(&*r.dir, r.tmp.as_os_str(), AtFlags::empty());
                fail(r.id, io_error(format!("cannot replace `{}`", r.path.display()), e));
                continue;
            }
            // The path now names the new file: a later wave (a line removed from the same
            // file) acts on it.
            let now = rustix::fs::statat(&*r.dir, r.name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).ok();
            lock(&self.seen).insert(r.path.clone(), Seen::at(now.as_ref().map(inode)));
        }
        let dirs: Vec<(PathBuf, Arc<OwnedFd>)> = pending.dirs.into_iter().collect();
        if large {
            let mut on = Vec::with_capacity(dirs.len());
            for (dir, fd) in &dirs {
                let dev = device(fd).ok_or_else(|| {
                    ProviderError::permanent(format!("cannot inspect directory `{}`", dir.display()))
                })?;
                on.push((dev, &**fd, dir));
            }
            for synced in sync_file_systems(on.into_iter()).into_values() {
                synced?;
            }
        } else {
            in_parallel(&dirs, |(dir, fd)| {
                rustix::fs::fsync(&**fd)
                    .map_err(|e| io_error(format!("cannot sync directory `{}`", dir.display()), e))
            })
            .into_iter()
            .collect::<Result<(), _>>()?;
        }
        Ok(failures)
    }

    fn make_durable(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<(), ProviderError> {
        let path = path_of(target, cx)?;
        let Some(parent) = safe::parent(&path)? else { return Ok(()) };
        if kind != "symlink" && parent.stat().ok().flatten().is_some() {
            let fd = parent.open(&path, want(kind), None)?;
            rustix::fs::fsync(&fd).map_err(|e| io_error(format!("cannot sync `{}`", path.display()), e))?;
        }
        rustix::fs::fsync(&*parent.fd)
            .map_err(|e| io_error(format!("cannot sync the directory of `{}`", path.display()), e))
    }

    /// Removes the temporary files an interrupted write left in the directories of `targets`,
    /// found in the environment (never only in the journal, which may have lost the run): any
    /// `.NAME.iade-tmp.PID.N` whose writer is gone. Each directory is listed once.
    fn cleanup(&self, _kind: &str, targets: &[&Target], cx: &Context<'_>) -> Result<usize, ProviderError> {
        let mut dirs: Vec<PathBuf> = targets
            .iter()
            .filter_map(|t| target_path(t, cx.stack_dir))
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        // By bytes: comparing paths component by component cost more than listing them.
        dirs.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        dirs.dedup();
        let mut removed = 0;
        for dir in dirs {
            let Ok(Some(fd)) = safe::open_dir(&dir) else { continue };
            let Ok(mut entries) = rustix::fs::Dir::read_from(&fd) else { continue };
            let mut leftovers = Vec::new();
            while let Some(Ok(entry)) = entries.read() {
                let name = entry.file_name().to_bytes();
                if temp_owner(name).is_some_and(abandoned) {
                    leftovers.push(OsString::from(std::ffi::OsStr::from_bytes(name)));
                }
            }
            for name in leftovers {
                match rustix::fs::unlinkat(&fd, name.as_os_str(), AtFlags::empty()) {
                    Ok(()) => removed += 1,
                    Err(Errno::NOENT) => {}
                    Err(e) => {
                        return Err(io_error(format!("cannot remove `{}`", dir.join(&name).display()), e));
                    }
                }
            }
        }
        Ok(removed)
    }
}
