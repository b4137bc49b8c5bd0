//! Files the driver reads and writes for the compiler and `fmt`: never blocking on a FIFO or a
//! device, never reading kernel trees, never more than a bounded size, and written atomically.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use iade_diagnostics::{Diagnostic, Sources};

use crate::Error;

/// A path as shown in messages: relative paths without a leading `./`.
pub fn display_path(p: &Path) -> String {
    let s = p.to_string_lossy();
    s.strip_prefix("./").unwrap_or(&s).to_string()
}

/// `p` made absolute against the current directory and normalized lexically: the key of an
/// overlay, whether or not the file exists on disk.
pub fn absolute(p: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    iade_provider::resolve_path(&cwd, p)
}

/// The directory of a stack given as a directory or as one of its files, absolute.
pub fn stack_dir_of(path: &Path) -> PathBuf {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    std::fs::canonicalize(&dir).unwrap_or_else(|_| absolute(&dir))
}

/// The largest source, module, included or template file read.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Trees whose files are not files to read: they block, never end, or leak the environment.
const KERNEL_TREES: &[&str] = &["/proc", "/sys", "/dev"];

/// Reads a file the sources refer to: a regular file, opened without blocking (a FIFO swapped
/// in cannot hang the run), at most [`MAX_FILE_BYTES`].
pub fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let absolute = absolute(path);
    let resolved = std::fs::canonicalize(&absolute).unwrap_or(absolute);
    if KERNEL_TREES.iter().any(|t| resolved.starts_with(t)) {
        return Err(std::io::Error::other(format!(
            "`{}` is in {}, whose files are not sources",
            resolved.display(),
            KERNEL_TREES.iter().find(|t| resolved.starts_with(t)).copied().unwrap_or("/proc")
        )));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        return Err(std::io::Error::other(format!("it is {what}, not a regular file")));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "it is {} MiB, more than the limit of {} MiB",
            meta.len() >> 20,
            MAX_FILE_BYTES >> 20
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!("it grew past the limit of {} MiB", MAX_FILE_BYTES >> 20)));
    }
    Ok(bytes)
}

/// [`read_bytes`] as UTF-8 text, with the reason as a message.
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = read_bytes(path).map_err(|e| format!("cannot read `{}`: {e}", display_path(path)))?;
    String::from_utf8(bytes).map_err(|_| "the file is not valid UTF-8".to_string())
}

/// The top-level `.iade` files of a stack directory, sorted; or the one file given.
pub fn stack_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !std::fs::metadata(path)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Test files are loaded only by `iade test` (`test_files`).
        if name.ends_with(".iade") && !is_test_file(&name) && entry.file_type()?.is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a file name is a test file's: `*_test.iade`.
pub fn is_test_file(name: &str) -> bool {
    name.ends_with("_test.iade")
}

/// The test files of a stack directory: its `*_test.iade` files and every `.iade` file in its
/// `tests/` directory, sorted.
pub fn test_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if is_test_file(&entry.file_name().to_string_lossy()) && entry.file_type()?.is_file() {
            out.push(entry.path());
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("tests")) {
        for entry in entries {
            let entry = entry?;
            if entry.file_name().to_string_lossy().ends_with(".iade") && entry.file_type()?.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Why a directory is not a stack, with the stacks it holds (if any) as help.
pub fn no_stack_here(path: &Path) -> Error {
    let mut stacks: Vec<String> = std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir() && stack_files(&e.path()).is_ok_and(|f| !f.is_empty()))
                .map(|e| display_path(&e.path()))
                .collect()
        })
        .unwrap_or_default();
    stacks.sort();
    let help = if stacks.is_empty() {
        "a stack is a directory of .iade files; try `iade check examples/quickstart`".to_string()
    } else {
        format!("it holds stacks of its own: {}", stacks.join(", "))
    };
    Error::Load { message: format!("no .iade files in `{}`", display_path(path)), help }
}

/// The `.iade` files of a path: itself if a file, else every `.iade` file below it in sorted
/// order, skipping hidden directories (the journal lives in `.iade/`), `target` and
/// `node_modules`.
pub fn collect(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ft = entry.file_type()?;
            if ft.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    stack.push(entry.path());
                }
            } else if name.ends_with(".iade") {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `text` to `path` atomically: a synced temporary file beside it, keeping its mode,
/// then a rename.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.iade-fmt-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Why one file was not formatted.
#[derive(Debug)]
pub enum FmtFailure {
    /// It could not be read or written.
    Io(String),
    /// It has syntax errors (or is not UTF-8): never formatted, since guessing could lose text.
    Syntax(Vec<Diagnostic>),
}

/// What `fmt` did to a set of files.
#[derive(Debug, Default)]
pub struct FmtReport {
    pub files: usize,
    pub reformatted: usize,
    /// Files that would change (with `check`).
    pub unformatted: Vec<String>,
    /// Files left alone, and why; `sources` holds their texts for rendering.
    pub failed: Vec<(String, FmtFailure)>,
    pub sources: Sources,
}

/// Formats every `.iade` file under `paths` in place (atomically), or with `check` only lists
/// those that would change.
pub fn format_paths(paths: &[PathBuf], check: bool) -> Result<FmtReport, Error> {
    let mut files = Vec::new();
    for p in paths {
        files.extend(collect(p).map_err(|e| Error::Io(format!("cannot read `{}`: {e}", display_path(p))))?);
    }
    let mut report = FmtReport { files: files.len(), ..FmtReport::default() };
    for f in &files {
        let shown = display_path(f);
        let bytes = match read_bytes(f) {
            Ok(b) => b,
            Err(e) => {
                report.failed.push((shown.clone(), FmtFailure::Io(format!("cannot read `{shown}`: {e}"))));
                continue;
            }
        };
        let (text, diags) = match String::from_utf8(bytes) {
            Ok(text) => match iade_fmt::format(&text) {
                Ok(out) if out == text => continue,
                Ok(_) if check => {
                    report.unformatted.push(shown);
                    continue;
                }
                Ok(out) => {
                    match write_atomic(f, &out) {
                        Ok(()) => report.reformatted += 1,
                        Err(e) => report
                            .failed
                            .push((shown.clone(), FmtFailure::Io(format!("cannot write `{shown}`: {e}")))),
                    }
                    continue;
                }
                Err(iade_fmt::FormatError::Syntax(diags)) => (text, diags),
            },
            Err(e) => {
                let (text, parse) = iade_syntax::parse_bytes(report.sources.next_id(), e.as_bytes());
                (text, parse.diagnostics)
            }
        };
        let id = report.sources.add(shown.clone(), text);
        let diags = diags
            .into_iter()
            .filter(Diagnostic::is_error)
            .map(|mut d| {
                d.labels.iter_mut().for_each(|l| l.file = id);
                d
            })
            .collect();
        report.failed.push((shown, FmtFailure::Syntax(diags)));
    }
    Ok(report)
}
