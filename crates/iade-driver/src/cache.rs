//! The compile cache of `plan` and `converge`: a compiled stack kept in `.iade/compile-cache`
//! beside it and used again while nothing it was compiled from has changed. It is a build
//! cache, never a source of truth about the environment: what it holds is exactly what
//! compiling would give, and any doubt means compiling.
//!
//! An entry names what the compile read: the binary (its version, size and modification time),
//! the working directory and the path as given (paths in the graph are shown relative to
//! them), the values of the stack's params, the stack's file list, the digest of every file
//! read (the stack's, modules, included and template files) and every path only checked to be
//! readable (a resource's `source`). Any of them different, and the stack is compiled again.
//!
//! **Invariant:** nothing secret is stored. A stack that declares a `secret` param, or whose
//! graph or program holds a value built from a secret, is never cached (a value built from a
//! secret refuses to be serialized), and the params' values are stored only as a digest.
//!
//! An entry is written only into an existing `.iade` directory (the one a converge makes for
//! its journal and lock), so `plan` on a stack that never ran writes nothing.
//!
//! **Invariant:** only a compile without any diagnostic is stored, so a cached compile prints
//! nothing a fresh one would have printed. `check`, `test`, `--stdlib` and the language server
//! never use the cache.

use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use iade_compiler::StackSettings;
use iade_intent::Program;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::files::{display_path, stack_dir_of};
use crate::load::{Compiled, LoadOptions, LoadedStack};

mod rows;

/// The first bytes of an entry; the number is the entry's format.
const MAGIC: &[u8] = b"iade compile cache 3\n";

/// The length of an entry's digest after the magic: SHA-256 in hex.
const DIGEST_LEN: usize = 64;

/// What an entry was compiled from, checked before its payload is read.
#[derive(Serialize, Deserialize)]
struct Header {
    binary: String,
    /// Digest of the working directory, the path as given and the params' values.
    context: String,
    /// The params the stack declares (their values are in `context`).
    params: Vec<String>,
    /// The stack's files, as listed.
    stack_files: Vec<String>,
    /// Every file read, with the digest of the text compiled.
    read: Vec<(String, String)>,
    /// Every path checked to be a readable file.
    probed: Vec<String>,
}

#[derive(Deserialize)]
struct Payload {
    graph: rows::GraphIn,
    program: Program,
    settings: StackSettings,
}

/// [`Payload`] as it is written, from the compiled stack.
#[derive(Serialize)]
struct PayloadRef<'a> {
    graph: rows::GraphOut<'a>,
    program: &'a Program,
    settings: &'a StackSettings,
}

/// Where a stack's entry lives.
fn entry_path(path: &Path) -> PathBuf {
    stack_dir_of(path).join(".iade").join("compile-cache")
}

/// Whether these options may use the cache: a plain run of the stack's own files.
fn cacheable(options: &LoadOptions) -> bool {
    options.stdlib.is_none() && !options.tests && !options.params_optional
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The running binary: its version, path, size and modification time.
fn binary() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(&exe).ok()?;
    Some(format!(
        "{} {} {} {}.{}",
        env!("CARGO_PKG_VERSION"),
        exe.display(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

/// Digest of the working directory, the path as given and the values of `params`.
fn context(path: &Path, options: &LoadOptions, params: &[String]) -> Option<String> {
    let cwd = std::env::current_dir().ok()?;
    let mut values = options.env_params.clone();
    values.extend(options.params.iter().cloned());
    let mut h = Sha256::new();
    h.update(cwd.as_os_str().as_bytes());
    h.update([0]);
    h.update(path.as_os_str().as_bytes());
    h.update([0]);
    for name in params {
        h.update(name.as_bytes());
        match values.get(name) {
            Some(v) => {
                h.update([1]);
                h.update(v.as_bytes());
            }
            None => h.update([2]),
        }
        h.update([0]);
    }
    Some(hex(&h.finalize()))
}

/// The stack's files as [`crate::files::stack_files`] lists them, shown.
fn listed(path: &Path) -> Option<Vec<String>> {
    crate::files::stack_files(path).ok().map(|fs| fs.iter().map(|f| display_path(f)).collect())
}

/// The compiled stack, when an entry was compiled from exactly what is there now.
pub fn load(path: &Path, options: &LoadOptions) -> Option<Compiled> {
    if !cacheable(options) {
        return None;
    }
    let entry = open_entry(&entry_path(path))?;
    let (header, rest): (Header, &[u8]) =
        postcard::take_from_bytes(&entry[MAGIC.len() + DIGEST_LEN..]).ok()?;
    if header.binary != binary()?
        || options.params.iter().any(|(name, _)| !header.params.contains(name))
        || header.context != context(path, options, &header.params)?
        || header.stack_files != listed(path)?
    {
        return None;
    }
    for (file, sum) in &header.read {
        let text = crate::files::read_bytes(Path::new(file)).ok()?;
        if digest(&text) != *sum {
            return None;
        }
    }
    if !header.probed.iter().all(|p| crate::load::probe(p).is_ok()) {
        return None;
    }
    let payload: Payload = postcard::from_bytes(rest).ok()?;
    drop(entry);
    Some(Compiled {
        graph: payload.graph.into_graph()?,
        program: payload.program,
        stack_dir: stack_dir_of(path),
        warnings: Vec::new(),
        settings: payload.settings,
    })
}

/// The entry, if it is a regular file (not a link) of this user that no one else may write and
/// the digest it starts with is that of the rest. Read whole: decoding from memory is several
/// times faster than from a reader, and an entry is a fraction of what it decodes to.
fn open_entry(file: &Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    // Never through a link: the entry is the file this user wrote there.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(file)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.uid() != rustix::process::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
    f.read_to_end(&mut bytes).ok()?;
    let sum = bytes.get(..MAGIC.len() + DIGEST_LEN)?.strip_prefix(MAGIC)?;
    (sum == digest(&bytes[MAGIC.len() + DIGEST_LEN..]).as_bytes()).then_some(bytes)
}

/// Keeps `compiled` for the next run, when it may be kept (see the module's invariants).
/// Failing to write is not an error: the next run compiles.
pub fn store(stack: &LoadedStack, options: &LoadOptions, compiled: &Compiled) {
    if !cacheable(options) || !compiled.warnings.is_empty() {
        return;
    }
    let declared = stack.db.stack_params();
    if declared.iter().any(|(_, ty, _)| ty.contains("secret")) {
        return;
    }
    let params: Vec<String> = declared.into_iter().map(|(name, _, _)| name).collect();
    let (Some(binary), Some(context), Some(stack_files)) =
        (binary(), context(stack.path(), options, &params), listed(stack.path()))
    else {
        return;
    };
    let mut read = Vec::new();
    stack.db.for_each_disk_file(|path, text| read.push((path.to_string(), digest(text.as_bytes()))));
    read.sort();
    let probed =
        stack.probed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect();
    let header = Header { binary, context, params, stack_files, read, probed };
    let payload = PayloadRef {
        graph: rows::GraphOut::new(&compiled.graph),
        program: &compiled.program,
        settings: &compiled.settings,
    };
    let _ = write_entry(&entry_path(stack.path()), &header, &payload);
}

/// Writes an entry beside the stack: a private temporary file renamed over the last one. The
/// stack's `.iade` directory must exist already (a converge makes it): `plan` never makes it.
///
/// The header and the payload are serialized straight into the file, through a digest of
/// them that is then written in the room left for it after the magic: an entry of 10,000
/// resources is about 3 MB, and building it in memory first, with the copies that made, held
/// 8.8 MB at the peak of a 10,000-file converge (54 MB of heap). A value built from a secret
/// refuses to be serialized: nothing is stored then.
fn write_entry(file: &Path, header: &Header, payload: &PayloadRef<'_>) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    let dir = file.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".compile-cache.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        let mut out = Digesting { out: std::io::BufWriter::new(&f), sum: Sha256::new() };
        out.out.write_all(MAGIC)?;
        out.out.write_all(&[b'0'; DIGEST_LEN])?;
        postcard::to_io(header, &mut out).map_err(std::io::Error::other)?;
        postcard::to_io(payload, &mut out).map_err(std::io::Error::other)?;
        out.out.flush()?;
        f.write_all_at(hex(&out.sum.finalize()).as_bytes(), MAGIC.len() as u64)?;
        std::fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A writer that passes what it writes on and adds it to a digest.
struct Digesting<W> {
    out: W,
    sum: Sha256,
}

impl<W: std::io::Write> std::io::Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.sum.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
