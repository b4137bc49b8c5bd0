//! The lock and lease that make one engine the only one correcting a stack: an `flock` on
//! `STACK/.iade/lock` (the kernel releases it when the process dies, so it is the truth about
//! whether an engine of this host lives) and the journal's lease with its epoch (which fences
//! every write of a run), renewed by a heartbeat while a run lasts.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use iade_journal::{Epoch, Holder, JournalError, LeaseClaim, LeaseClock, LeaseOutcome, StackId, Store};

use crate::Error;

/// How long a lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(120);

/// Where a stack's journal is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalLocation {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database a fleet shares (a libpq URI), and the CA file that verifies
    /// its certificate over TCP.
    Postgres { url: String, ca: Option<PathBuf> },
}

impl JournalLocation {
    /// `.iade/journal.db` in the stack directory.
    pub fn default_for(stack_dir: &Path) -> JournalLocation {
        JournalLocation::Sqlite(stack_dir.join(".iade").join("journal.db"))
    }

    /// A `--journal` argument: a `postgres://` URL, or a file path.
    pub fn parse(text: &str) -> JournalLocation {
        if iade_journal_postgres::is_url(text) {
            JournalLocation::Postgres { url: text.to_string(), ca: None }
        } else {
            JournalLocation::Sqlite(PathBuf::from(text))
        }
    }

    /// With the CA file that verifies a shared journal's server (`IADE_JOURNAL_CA`).
    pub fn with_ca(self, ca: Option<PathBuf>) -> JournalLocation {
        match self {
            JournalLocation::Postgres { url, .. } => JournalLocation::Postgres { url, ca },
            other => other,
        }
    }

    /// Whether a journal exists there (reading history needs one). A shared journal is
    /// asked, and answers with no runs for a stack that never ran.
    pub fn exists(&self) -> bool {
        match self {
            JournalLocation::Sqlite(p) => p.exists(),
            JournalLocation::Postgres { .. } => true,
        }
    }

    /// Whether engines of several hosts share it: the local lock then excludes only the
    /// engines of this host, and a lease is taken over only when it expired or its holder,
    /// on this host, is gone.
    pub fn is_shared(&self) -> bool {
        matches!(self, JournalLocation::Postgres { .. })
    }

    pub fn open(&self, stack: &StackId) -> Result<Box<dyn Store>, JournalError> {
        match self {
            JournalLocation::Sqlite(p) => Ok(Box::new(iade_journal_sqlite::SqliteJournal::open(p, stack)?)),
            JournalLocation::Postgres { url, ca } => {
                Ok(Box::new(iade_journal_postgres::PgJournal::open(url, ca.as_deref(), stack)?))
            }
        }
    }

    /// Moves a damaged journal aside and starts a fresh one that keeps the obligations it can
    /// still read. The caller holds the stack's lock.
    pub fn recover(&self, stack: &StackId) -> Result<iade_journal_sqlite::Recovery, JournalError> {
        match self {
            JournalLocation::Sqlite(p) => iade_journal_sqlite::SqliteJournal::recover(p, stack),
            JournalLocation::Postgres { url, .. } => Err(JournalError::Backend {
                location: iade_pg::without_password(url),
                message: "a shared journal is recovered by PostgreSQL itself (its WAL and backups); `iade journal recover` is for the embedded one".into(),
                transient: false,
            }),
        }
    }

    /// The directory of what a run keeps beside its journal (backups of replaced files): the
    /// journal's own directory, or `.iade` of the stack for a shared journal.
    pub fn state_dir(&self, stack_dir: &Path) -> PathBuf {
        match self {
            JournalLocation::Sqlite(p) => {
                p.parent().map_or_else(|| stack_dir.join(".iade"), Path::to_path_buf)
            }
            JournalLocation::Postgres { .. } => stack_dir.join(".iade"),
        }
    }
}

impl std::fmt::Display for JournalLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalLocation::Sqlite(p) => write!(f, "{}", crate::files::display_path(p)),
            JournalLocation::Postgres { url, .. } => write!(f, "{}", iade_pg::without_password(url)),
        }
    }
}

/// The stack id of a stack directory: its name and this host.
pub fn stack_id(stack_dir: &Path, host: &str) -> StackId {
    let name =
        stack_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "stack".into());
    StackId { name, host: host.to_string() }
}

/// How long to wait for another engine's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Do not wait: report the holder.
    No,
    For(Duration),
}

/// Why no session could be opened.
#[derive(Debug)]
pub enum SessionError {
    /// Another engine holds the lease (its holder, when the journal names one).
    Held(Option<Holder>),
    Failed(Error),
}

impl From<JournalError> for SessionError {
    fn from(e: JournalError) -> Self {
        SessionError::Failed(Error::Journal(e))
    }
}

/// Renews a run's lease every third of its lifetime from a journal handle of its own, however
/// long a step takes.
struct Heartbeat {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(location: JournalLocation, stack: StackId, epoch: Epoch, clock: Arc<LeaseClock>) -> Heartbeat {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut store = location.open(&stack).ok();
            let ttl = clock.ttl();
            // Waits a third of the lease's life, or until told to stop (or its sender is gone).
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(ttl / 3) {
                if store.is_none() {
                    store = location.open(&stack).ok();
                }
                if let Some(s) = store.as_mut() {
                    let asked = Instant::now();
                    if s.renew_lease(epoch, ttl).is_ok() {
                        clock.renewed(asked);
                    }
                }
            }
        });
        Heartbeat { stop, thread: Some(thread) }
    }

    fn stop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One engine's hold on a stack: the lock, the journal and the lease's epoch. Dropping it
/// stops the heartbeat and releases the lease.
pub struct Session {
    _lock: StackLock,
    store: Box<dyn Store>,
    epoch: Epoch,
    clock: Arc<LeaseClock>,
    location: JournalLocation,
    heartbeat: Option<Heartbeat>,
    released: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("epoch", &self.epoch).field("location", &self.location).finish()
    }
}

/// Where this host's stack-name locks live: `$IADE_LOCK_DIR`, else `/run/iade` when it can be
/// created, else `$XDG_RUNTIME_DIR/iade`, else a directory of the user's under the temporary
/// directory.
pub fn host_lock_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("IADE_LOCK_DIR") {
        return PathBuf::from(d);
    }
    let run = PathBuf::from("/run/iade");
    if std::fs::create_dir_all(&run).is_ok()
        && File::options().append(true).create(true).open(run.join(".probe")).is_ok()
    {
        return run;
    }
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(x).join("iade");
    }
    std::env::temp_dir().join(format!("iade-{}", rustix::process::getuid().as_raw()))
}

/// A lock file, opened (created if needed) for `flock`.
fn lock_file(path: &Path) -> Result<File, Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("cannot create `{}`: {e}", dir.display())))?;
    }
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .open(path)
        .map_err(|e| Error::Io(format!("cannot open `{}`: {e}", path.display())))
}

/// The locks an engine holds on a stack: its directory's and its name's on this host.
#[derive(Debug)]
pub struct StackLock {
    _dir: File,
    _name: Option<File>,
}

/// Takes `STACK/.iade/lock` and this host's lock of the stack's name (so two directories with
/// one stack name are one stack), waiting as `wait` says; `Ok(None)` when another process
/// holds either.
pub fn lock_stack(
    stack_dir: &Path,
    name: Option<&str>,
    wait: Wait,
    waiting: &dyn Fn(),
) -> Result<Option<StackLock>, Error> {
    let path = stack_dir.join(".iade").join("lock");
    let dir_lock = lock_file(&path)?;
    let name_path = name.map(|n| {
        let safe: String = n
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        host_lock_dir().join(format!("{safe}.lock"))
    });
    let name_lock = match &name_path {
        Some(p) => Some(lock_file(p)?),
        None => None,
    };
    let deadline = match wait {
        Wait::No => None,
        Wait::For(d) => {
            Some(Instant::now().checked_add(d).unwrap_or_else(|| Instant::now() + LEASE_TTL * 1000))
        }
    };
    let try_one = |f: &File, p: &Path| -> Result<bool, Error> {
        match f.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::Io(format!("cannot lock `{}`: {e}", p.display())))
            }
        }
    };
    let mut told = false;
    loop {
        if try_one(&dir_lock, &path)? {
            let named = match (&name_lock, &name_path) {
                (Some(f), Some(p)) => try_one(f, p)?,
                _ => true,
            };
            if named {
                if let Some(mut f) = name_lock.as_ref() {
                    // Who holds the name, for an engine refused it from another directory.
                    use std::io::{Seek, Write};
                    let _ = f.set_len(0);
                    let _ = f.seek(std::io::SeekFrom::Start(0));
                    let _ = writeln!(f, "{} {}", std::process::id(), stack_dir.display());
                }
                return Ok(Some(StackLock { _dir: dir_lock, _name: name_lock }));
            }
            let _ = dir_lock.unlock();
        }
        match deadline {
            Some(d) if Instant::now() < d => {
                if !told {
                    waiting();
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            _ => return Ok(None),
        }
    }
}

/// Whether a process of this host lives (a pid that is not ours to signal still lives).
fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

/// Who holds a stack's name on this host, as its lock file says (`pid directory`).
pub fn name_holder(name: &str) -> Option<(u32, String)> {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    let text = std::fs::read_to_string(host_lock_dir().join(format!("{safe}.lock"))).ok()?;
    let (pid, dir) = text.trim().split_once(' ')?;
    Some((pid.parse().ok()?, dir.to_string()))
}

/// Options of [`Session::open`].
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub watch: bool,
    pub wait: Wait,
    pub pid: u32,
    pub host: String,
    /// How long the lease lasts without renewal ([`LEASE_TTL`] unless tuned).
    pub lease_ttl: Duration,
}

impl Session {
    /// Takes the stack's lock, then the journal's lease. The lock comes first: the journal is
    /// opened (and migrated) only by its holder, or read to name the holder.
    ///
    /// Holding the lock proves no engine of this host works on the stack, so a lease the
    /// journal says this host holds is stale (a killed engine, or a pid reused since) and is
    /// taken over at once.
    pub fn open(
        stack: &StackId,
        stack_dir: &Path,
        location: &JournalLocation,
        options: &SessionOptions,
        waiting: &dyn Fn(Option<&Holder>),
    ) -> Result<Session, SessionError> {
        let holder_now = || location.open(stack).ok().and_then(|j| j.holder().ok().flatten());
        // A watching holder is asked for a pass rather than waited for.
        let wait = match options.wait {
            Wait::For(_) if holder_now().is_some_and(|h| h.watch) => Wait::No,
            w => w,
        };
        let lock = lock_stack(stack_dir, Some(&stack.name), wait, &|| waiting(holder_now().as_ref()))
            .map_err(SessionError::Failed)?;
        let Some(lock) = lock else {
            // Only what the journal knows is named: a holder it does not record stays unnamed;
            // an engine of this host on the same stack name from another directory is named by
            // its lock, if it still lives (a killed engine's record stays in the lock file).
            return Err(SessionError::Held(holder_now().or_else(|| {
                name_holder(&stack.name).filter(|(pid, _)| process_alive(*pid)).map(|(pid, dir)| Holder {
                    pid,
                    host: format!("{} (from {dir})", options.host),
                    since_ms: 0,
                    expires_ms: 0,
                    watch: false,
                })
            })));
        };
        let mut store = location.open(stack)?;
        // A lease left held means the last engine did not stop cleanly (killed, or the host
        // lost power): check the journal before writing into it.
        if store.holder()?.is_some() {
            let problems = store.check_integrity()?;
            if !problems.is_empty() {
                let location = store.location();
                let detail = problems.join("; ");
                return Err(SessionError::Failed(Error::Journal(JournalError::Corrupt { location, detail })));
            }
        }
        let claim = LeaseClaim {
            pid: options.pid,
            host: options.host.clone(),
            ttl: options.lease_ttl,
            watch: options.watch,
        };
        let host = options.host.clone();
        let shared = location.is_shared();
        // The local lock proves no engine of this host works on the stack. With a shared
        // journal, engines elsewhere may: only a holder of this host whose process is gone is
        // taken over before its lease expires.
        let gone = move |h: &Holder| h.host == host && (!shared || !process_alive(h.pid));
        let asked = Instant::now();
        match store.acquire_lease(&claim, &gone)? {
            LeaseOutcome::Acquired { epoch } => Ok(Session {
                _lock: lock,
                store,
                epoch,
                clock: Arc::new(LeaseClock::new(asked, options.lease_ttl)),
                location: location.clone(),
                heartbeat: None,
                released: false,
            }),
            LeaseOutcome::Held(h) => Err(SessionError::Held(Some(h))),
        }
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn store(&mut self) -> &mut dyn Store {
        self.store.as_mut()
    }

    pub fn location(&self) -> &JournalLocation {
        &self.location
    }

    /// The lease as this engine counts it, checked before every effect.
    pub fn clock(&self) -> Arc<LeaseClock> {
        Arc::clone(&self.clock)
    }

    /// Renews the lease from a thread of its own until the session ends (for one long run).
    pub fn start_heartbeat(&mut self) {
        if self.heartbeat.is_none() {
            self.heartbeat = Some(Heartbeat::start(
                self.location.clone(),
                self.store.stack().clone(),
                self.epoch,
                Arc::clone(&self.clock),
            ));
        }
    }

    pub fn renew(&mut self) -> Result<(), JournalError> {
        let asked = Instant::now();
        self.store.renew_lease(self.epoch, self.clock.ttl())?;
        self.clock.renewed(asked);
        Ok(())
    }

    /// Stops the heartbeat and releases the lease.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), JournalError> {
        if let Some(mut h) = self.heartbeat.take() {
            h.stop();
        }
        if self.released {
            return Ok(());
        }
        self.released = true;
        self.store.release_lease(self.epoch)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.release();
    }
}
