//! The built-in local providers: `local` (file, directory, symlink), `exec` (a check/apply
//! command pair), `users` (local users and groups) and `dpkg` (Debian packages).
//!
//! **Invariant:** file content is written atomically — a temporary file in the same directory,
//! created with the intended mode before any byte is written, synced, then renamed over the
//! target, and the directory synced — so a crash at any instant leaves either the old file or
//! the new one, and at worst a temporary file that [`Provider::cleanup`] removes.

mod accounts;
mod command;
mod diff;
mod exec;
mod fs;
mod lines;
mod pkg;
mod safe;
mod users;

pub use accounts::AccountsProvider;
pub use exec::ExecProvider;
pub use fs::{BACKUPS_KEPT, LocalProvider, TEMP_MARKER, backup_dir};
pub use pkg::PackageProvider;

use std::path::{Path, PathBuf};

use iade_provider::Target;

/// A target's path, made absolute against the stack directory.
pub(crate) fn resolve(stack_dir: &Path, path: &str) -> PathBuf {
    iade_provider::resolve_path(stack_dir, Path::new(path))
}

pub(crate) fn target_path(target: &Target, stack_dir: &Path) -> Option<PathBuf> {
    target.identity_str("path").map(|p| resolve(stack_dir, p))
}
