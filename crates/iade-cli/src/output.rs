//! Exit codes, colour, JSON on standard output, error lines and the panic hook.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::ValueEnum;

/// Exit codes, as DESIGN.md's table defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    Errors,
    Pending,
    LeaseHeld,
    ControlsFail,
    Usage,
}

impl Exit {
    /// The code of a run in DESIGN.md's order of precedence: 1, then 2, then 4 (3 is decided
    /// before a run starts).
    pub fn of(errors: bool, pending: bool, controls_fail: bool) -> Exit {
        if errors {
            Exit::Errors
        } else if pending {
            Exit::Pending
        } else if controls_fail {
            Exit::ControlsFail
        } else {
            Exit::Success
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(match e {
            Exit::Success => 0,
            Exit::Errors => 1,
            Exit::Pending => 2,
            Exit::LeaseHeld => 3,
            Exit::ControlsFail => 4,
            Exit::Usage => 64,
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal(),
        }
    }
}

pub fn error(msg: &str) {
    eprintln!("error: {msg}");
}

/// An error and what to do about it.
pub fn error_help(msg: &str, help: &str) {
    eprintln!("error: {msg}\n  help: {help}");
}

/// Writes a value as pretty JSON straight to standard output (no copy of it in memory).
pub fn print_json<T: serde::Serialize>(v: &T) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, v)
        .and_then(|()| writeln!(out).and_then(|()| out.flush()).map_err(serde_json::Error::io));
    // A closed pipe is not an error worth a message; a value that cannot be written is.
    if let Err(e) = written
        && !e.is_io()
    {
        error(&format!("cannot serialize: {e}"));
    }
}

pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // A reader that went away (`iade history | head`) is not a bug: stop quietly, as a
        // process killed by SIGPIPE would (128 + 13).
        let message = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or_default();
        if message.contains("Broken pipe") {
            std::process::exit(141);
        }
        let version = env!("CARGO_PKG_VERSION");
        eprintln!(
            "error: this is a bug in iade {version} ({}/{}); please report it with the input that triggered it",
            std::env::consts::OS,
            std::env::consts::ARCH
        );
        eprintln!("  {info}");
    }));
}
