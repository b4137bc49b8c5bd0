//! Reaching a managed path without being redirected. iade runs as root, so a symlink that an
//! unprivileged user plants anywhere on the way to a managed path must not turn a `chmod` of a
//! managed file into a `chmod` of `/etc/shadow`.
//!
//! **Invariant:** every operation on a managed path acts on what was observed. The parent
//! directory is reached with `openat` from `/`, one component at a time, following only
//! symlinks owned by root or by iade's own user (as the kernel's `protected_symlinks` does),
//! so `/bin` and `/var/run` still work; the last component is never followed (`O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`); a file is opened without blocking (a FIFO swapped in cannot hang the
//! run) and checked to be the very inode that was observed before it is changed.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use iade_provider::ProviderError;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// How many symlinks a walk follows before it gives up (as the kernel's `ELOOP` does).
const MAX_LINKS: usize = 40;

/// Which object a path named when it was observed: its device, inode and type, and for
/// anything but a directory the time its inode last changed. An inode number alone is not
/// enough: a file removed and a link created in its place often get the same number. A
/// directory's change time moves with its entries (this run's own deletes among them), so it
/// is left out; a directory is only ever removed when empty.
pub type Inode = (u64, u64, u32, i64, u64);

pub fn inode(st: &Stat) -> Inode {
    let kind = st.st_mode & 0o170000;
    if file_type(st) == FileType::Directory {
        return (st.st_dev, st.st_ino, kind, 0, 0);
    }
    (st.st_dev, st.st_ino, kind, st.st_ctime, st.st_ctime_nsec)
}

pub fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// What kind of object a file type is, in a message.
pub fn describe(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "a file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        FileType::Unknown => "an object of an unknown type",
    }
}

pub fn io_error(what: impl std::fmt::Display, e: Errno) -> ProviderError {
    ProviderError::io(what, &std::io::Error::from(e))
}

/// The directory that holds a managed path, reached safely, and the path's last component.
#[derive(Debug)]
pub struct Parent {
    /// Shared: the files of one directory are reached through one descriptor.
    pub fd: std::sync::Arc<OwnedFd>,
    pub name: OsString,
}

impl Parent {
    /// The object at the path, not followed; `None` when nothing is there.
    pub fn stat(&self) -> Result<Option<Stat>, Errno> {
        match rustix::fs::statat(&*self.fd, self.name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the object at the path without following it and without blocking, and checks it
    /// is of type `want` and, when `expect` is given, the inode that was observed.
    pub fn open(&self, path: &Path, want: FileType, expect: Option<Inode>) -> Result<OwnedFd, ProviderError> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let flags = if want == FileType::Directory { flags | OFlags::DIRECTORY } else { flags };
        let fd =
            rustix::fs::openat(&*self.fd, self.name.as_os_str(), flags, Mode::empty()).map_err(
                |e| match e {
                    Errno::LOOP | Errno::NOTDIR => changed(path),
                    e => io_error(format!("cannot open `{}`", path.display()), e),
                },
            )?;
        let st = rustix::fs::fstat(&fd)
            .map_err(|e| io_error(format!("cannot inspect `{}`", path.display()), e))?;
        if file_type(&st) != want {
            return Err(ProviderError::permanent(format!(
                "`{}` is {}, not {}; iade will not change it",
                path.display(),
                describe(file_type(&st)),
                describe(want)
            )));
        }
        if expect.is_some_and(|e| e != inode(&st)) {
            return Err(changed(path));
        }
        Ok(fd)
    }

    /// Checks that what the path names now is what was observed: the same inode, or still
    /// nothing.
    pub fn check(&self, path: &Path, expect: Option<Inode>) -> Result<(), ProviderError> {
        let now = self.stat().map_err(|e| io_error(format!("cannot inspect `{}`", path.display()), e))?;
        if now.map(|st| inode(&st)) == expect { Ok(()) } else { Err(changed(path)) }
    }
}

/// The error of a path that no longer names what was observed: something replaced it while
/// the run went on. Trying again observes it again.
pub fn changed(path: &Path) -> ProviderError {
    ProviderError::transient(format!(
        "`{}` changed since it was observed (replaced or swapped for a link); nothing was changed, and it will be observed again",
        path.display()
    ))
}

/// Opens the directory that holds `path` (absolute, lexically normalized), walking from `/`
/// and following only symlinks owned by root or by this process's user; `None` when a
/// directory on the way does not exist.
pub fn parent(path: &Path) -> Result<Option<Parent>, ProviderError> {
    let name = path.file_name().map(OsStr::to_os_string).ok_or_else(|| {
        ProviderError::permanent(format!("`{}` names no file (it is a root or ends in `..`)", path.display()))
    })?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    Ok(open_dir(dir)?.map(|fd| Parent { fd: std::sync::Arc::new(fd), name }))
}

/// Opens a directory by absolute path, walking from `/` one component at a time; `None` when
/// a component does not exist.
pub fn open_dir(dir: &Path) -> Result<Option<OwnedFd>, ProviderError> {
    let err = |e: Errno, at: &Path| io_error(format!("cannot open directory `{}`", at.display()), e);
    let root = || {
        rustix::fs::openat(
            rustix::fs::CWD,
            "/",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let mut fd = root().map_err(|e| err(e, Path::new("/")))?;
    // Components still to walk, last first, so a link's target can be pushed in front.
    let mut todo: Vec<OsString> = dir
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    let mut walked = PathBuf::from("/");
    let mut links = 0;
    let me = rustix::process::geteuid();
    while let Some(c) = todo.pop() {
        if c == ".." {
            fd = rustix::fs::openat(
                &fd,
                "..",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| err(e, &walked))?;
            walked.pop();
            continue;
        }
        let here = walked.join(&c);
        let st = match rustix::fs::statat(&fd, c.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(err(e, &here)),
        };
        match file_type(&st) {
            FileType::Directory => {
                fd = rustix::fs::openat(
                    &fd,
                    c.as_os_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| match e {
                    // Swapped for a link between the look and the open.
                    Errno::LOOP | Errno::NOTDIR => changed(&here),
                    e => err(e, &here),
                })?;
                walked = here;
            }
            FileType::Symlink => {
                if st.st_uid != 0 && st.st_uid != me.as_raw() {
                    return Err(ProviderError::permanent(format!(
                        "`{}` is a symlink owned by uid {}; on the way to a managed path iade follows only symlinks owned by root or by itself",
                        here.display(),
                        st.st_uid
                    )));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(ProviderError::permanent(format!(
                        "too many symlinks on the way to `{}`",
                        dir.display()
                    )));
                }
                let target =
                    rustix::fs::readlinkat(&fd, c.as_os_str(), Vec::new()).map_err(|e| err(e, &here))?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    fd = root().map_err(|e| err(e, Path::new("/")))?;
                    walked = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push(OsString::from("..")),
                        _ => {}
                    }
                }
            }
            other => {
                return Err(ProviderError::permanent(format!(
                    "`{}` is {}, not a directory",
                    here.display(),
                    describe(other)
                )));
            }
        }
    }
    Ok(Some(fd))
}

/// Reads a file in chunks, checking `cancelled` between them. With `size` (the size its
/// `fstat` gave), a short read that completes that size ends the read without the read that
/// would return nothing: one system call fewer for every small file observed.
pub fn read_cancellable(
    fd: impl AsFd,
    path: &Path,
    size: Option<u64>,
    cancelled: &std::sync::atomic::AtomicBool,
    mut chunk: impl FnMut(&[u8]),
) -> Result<(), ProviderError> {
    // On the stack: hashing a thousand small files must not allocate a thousand buffers.
    let mut buf = [0u8; 16 * 1024];
    let mut total: u64 = 0;
    loop {
        if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(ProviderError::transient(format!("reading `{}` was cancelled", path.display())));
        }
        match rustix::io::read(fd.as_fd(), &mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                chunk(&buf[..n]);
                total += n as u64;
                if n < buf.len() && size == Some(total) {
                    return Ok(());
                }
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(io_error(format!("cannot read `{}`", path.display()), e)),
        }
    }
}
