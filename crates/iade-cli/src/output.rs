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
