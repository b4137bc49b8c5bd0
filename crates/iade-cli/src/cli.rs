use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::{ColorChoice, Exit};
use crate::{files, output};

const AFTER_HELP: &str = "\
Examples:
  iade check examples/quickstart        check every .iade file of a stack
  iade check main.iade --format json    machine-readable diagnostics
  iade fmt                              format the stack in the current directory
  iade fmt --check .                    fail if any file is not formatted (for CI)
  iade explain E0009                    what a diagnostic code means

Exit codes: 0 success, 1 errors, 2 changes pending, 3 lease held by another engine,
4 compliance controls fail, 64 usage error.";

/// iade: one language for configuration, policy and compliance.
///
/// iade keeps real environments equal to the intent declared in `.iade` files. This version
/// checks and formats sources.
#[derive(Debug, Parser)]
#[command(name = "iade", version, about, long_about = None, after_help = AFTER_HELP)]
#[command(disable_help_subcommand = true, propagate_version = true)]
struct Cli {
    /// When to use colour in human output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check sources and report diagnostics.
    ///
    /// PATH is a `.iade` file or a stack directory (every `.iade` file below it, skipping
    /// hidden directories such as `.iade/`). Exit code 1 when any error is found.
    #[command(after_help = "Examples:\n  iade check\n  iade check examples/webapp --format json")]
    Check(CheckArgs),
    /// Format sources in the canonical layout.
    ///
    /// Rewrites files in place (atomically) unless --check is given. Comments are kept;
    /// formatting twice changes nothing. Files with syntax errors are reported and left alone.
    #[command(after_help = "Examples:\n  iade fmt\n  iade fmt --check .\n  cat main.iade | iade fmt -")]
    Fmt(FmtArgs),
    /// Explain a diagnostic code.
    #[command(after_help = "Examples:\n  iade explain E0004\n  iade explain --list")]
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// A `.iade` file or a stack directory.
    #[arg(default_value = ".")]
    path: std::path::PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Args)]
struct FmtArgs {
    /// Files or directories to format; `-` formats standard input to standard output.
    #[arg(default_value = ".")]
    paths: Vec<std::path::PathBuf>,
    /// Do not write; exit 1 if any file would change, listing them.
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// The code, such as E0004.
    #[arg(required_unless_present = "list")]
    code: Option<String>,
    /// List every code with its title.
    #[arg(long)]
    list: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 64,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let color = cli.color.enabled();
    let exit = match cli.command {
        Command::Check(a) => files::check(&a.path, a.format, color),
        Command::Fmt(a) => files::fmt(&a.paths, a.check, color),
        Command::Explain(a) => explain(a),
    };
    exit.into()
}

fn explain(a: ExplainArgs) -> Exit {
    if a.list {
        for info in iade_diagnostics::registry() {
            println!("{}  {}", info.code, info.title);
        }
        return Exit::Success;
    }
    let code = a.code.unwrap_or_default();
    match iade_diagnostics::lookup(&code) {
        Some(info) => {
            println!("{}: {}\n\n{}", info.code, info.title, info.explanation);
            Exit::Success
        }
        None => {
            output::error(&format!("unknown diagnostic code `{code}`"));
            eprintln!("  help: `iade explain --list` lists every code");
            Exit::Usage
        }
    }
}
