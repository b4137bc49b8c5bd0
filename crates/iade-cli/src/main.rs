//! The `iade` command: a thin shell over the library crates. The only crate that knows clap.

mod cli;
mod files;
mod output;
mod run;
mod sarif;
mod stack;
mod watch;

use std::process::ExitCode;

/// See the workspace manifest for why the binary chooses its allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    output::install_panic_hook();
    let code = cli::run();
    // For benchmarks: the process's peak memory, on standard error.
    if std::env::vars_os().any(|(k, _)| k == "IADE_REPORT_PEAK_MEMORY") {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
            eprintln!("iade: peak memory {}", line.trim_start_matches("VmHWM:").trim());
        }
    }
    code
}
