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
    cli::run()
}
