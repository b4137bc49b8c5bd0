//! The `iade` command: a thin shell over `iade-driver`. It parses arguments (the only crate
//! that knows clap), renders what the driver returns, and chooses the exit code.

mod cli;
mod commands;
mod logs;
mod output;
mod progress;
mod render;

use std::process::ExitCode;

/// See the workspace manifest for why the binary chooses its allocator.
#[cfg(feature = "mimalloc")]
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
