use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::{ColorChoice, Exit};
use crate::stack::LoadOptions;
use crate::{files, output};

const AFTER_HELP: &str = "\
Examples:
  iade check examples/quickstart        check every .iade file of a stack
  iade check main.iade --format json    machine-readable diagnostics
  iade check --param tier=prod          check with a param set
  iade graph examples/webapp | dot -Tsvg > graph.svg
                                        draw the dependency graph
  iade fmt                              format the stack in the current directory
  iade fmt --check .                    fail if any file is not formatted (for CI)
  iade explain E0009                    what a diagnostic code means

Exit codes: 0 success, 1 errors, 2 changes pending, 3 lease held by another engine,
4 compliance controls fail, 64 usage error.";

/// iade: one language for configuration, policy and compliance.
///
/// iade keeps real environments equal to the intent declared in `.iade` files. This version
/// checks stacks (syntax, names, types, evaluation, dependencies and policies), shows their
/// intent graph, and formats sources.
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
    /// Check a stack: syntax, names, types, evaluation, dependencies and policies.
    ///
    /// PATH is a stack directory (its top-level `.iade` files share one namespace; module
    /// files are loaded through `use`) or a single `.iade` file. Everything up to policies runs:
    /// a `deny` policy that fails is an error. Nothing is observed or changed. Exit code 1 when
    /// any error is found.
    #[command(
        after_help = "Examples:\n  iade check\n  iade check examples/webapp --format json\n  iade check examples/webapp --param tier=prod\n  IADE_PARAM_TIER=prod iade check examples/webapp"
    )]
    Check(CheckArgs),
    /// Print the intent graph: resources, their evaluated attributes and dependencies.
    ///
    /// `--format dot` (the default) prints Graphviz; `--format json` prints every resource with
    /// its attributes and where each was declared (the shape is in docs/intent-graph.md).
    /// The graph is printed only when the stack checks without errors.
    #[command(
        after_help = "Examples:\n  iade graph examples/quickstart | dot -Tsvg > graph.svg\n  iade graph examples/webapp --format json | jq '.nodes[].id'"
    )]
    Graph(GraphArgs),
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
struct StackArgs {
    /// A stack directory or a `.iade` file.
    #[arg(default_value = ".")]
    path: std::path::PathBuf,
    /// Set a param: `--param tier=prod` (repeatable). Overrides `IADE_PARAM_TIER=prod` from
    /// the environment, which overrides the param's default.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Use the standard library in DIR (DIR/std/*.iade) instead of the embedded one.
    #[arg(long, value_name = "DIR")]
    stdlib: Option<std::path::PathBuf>,
}

impl StackArgs {
    fn load_options(&self) -> LoadOptions {
        LoadOptions { params: self.params.clone(), stdlib: self.stdlib.clone() }
    }
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Args)]
struct GraphArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Json,
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
        Command::Check(a) => files::check(&a.stack.path, &a.stack.load_options(), a.format, color),
        Command::Graph(a) => files::graph(&a.stack.path, &a.stack.load_options(), a.format, color),
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
