use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::{ColorChoice, Exit};
use crate::stack::LoadOptions;
use crate::{files, output};

const AFTER_HELP: &str = "\
Examples:
  iade check examples/quickstart        names, types, evaluation, graph and policies
  iade plan examples/quickstart         observe and show what would change (changes nothing)
  iade converge examples/quickstart     make it so, durably; then check the controls
  iade converge --watch                 keep it so: correct drift as it happens
  iade history --resource file.readme   what drifted, when, and what was done about it
  iade graph examples/webapp | dot -Tsvg > graph.svg
                                        draw the dependency graph
  iade fmt --check .                    fail if any file is not formatted (for CI)
  iade explain E0401                    what a diagnostic code means

Exit codes: 0 success, 1 errors, 2 changes pending, 3 lease held by another engine,
4 compliance controls fail, 64 usage error.";

/// iade: one language for configuration, policy and compliance.
///
/// iade keeps real environments equal to the intent declared in `.iade` files. This version
/// checks stacks (syntax, names, types, evaluation, dependencies and policies), plans and
/// converges them durably, keeps them converged (--watch), and keeps their history.
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
    /// Observe the environment and show what converge would change.
    ///
    /// Compiles the stack (a denied policy stops here), observes every resource afresh and
    /// diffs its managed attributes. Changes nothing and takes no lease: safe to run any time.
    /// Exit code 2 when something differs, 0 when nothing does, 1 on errors.
    #[command(
        after_help = "Examples:\n  iade plan examples/quickstart\n  iade plan --format json | jq '.plan.resources[] | select(.action != \"none\")'"
    )]
    Plan(PlanArgs),
    /// Make the environment equal to the intent, as a durable, journaled run.
    ///
    /// Observes, plans, and corrects in dependency order; each step's intent is journaled
    /// (in .iade/journal.db) before its effect and its outcome after, so a crash at any instant
    /// is resumed by the next run. Then evaluates the compliance controls on what it observed.
    /// One engine per stack at a time (a lease); `--watch` keeps reconciling.
    #[command(
        after_help = "Examples:\n  iade converge examples/quickstart\n  iade converge --detect-only        report drift and findings, change nothing (exit 2 on drift)\n  iade converge --watch --interval 30s\n  iade converge --format sarif > findings.sarif\n\nSecrets: secret(\"NAME\") reads the environment variable IADE_SECRET_NAME, only inside the provider call.\nExit codes: 0 done, 1 errors or failed steps, 2 drift found (--detect-only), 3 another engine holds the lease, 4 controls fail."
    )]
    Converge(ConvergeArgs),
    /// Show past runs: drift corrected, steps, failures and findings.
    #[command(
        after_help = "Examples:\n  iade history examples/quickstart\n  iade history --resource file.readme\n  iade history --run 3 --format json"
    )]
    History(HistoryArgs),
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

#[derive(Debug, Args)]
struct EngineArgs {
    /// The journal; `.iade/journal.db` in the stack directory by default.
    #[arg(long, value_name = "FILE")]
    journal: Option<std::path::PathBuf>,
    /// At most this many provider calls at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    parallelism: u16,
}

#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// At most this many provider calls at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    parallelism: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Args)]
struct ConvergeArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Report drift and findings; change nothing, take no lease (exit 2 on drift).
    #[arg(long, conflicts_with = "watch")]
    detect_only: bool,
    /// Keep reconciling: a full pass every --interval, at once on a change to a managed path
    /// or a source file. Stops cleanly on SIGINT or SIGTERM.
    #[arg(long)]
    watch: bool,
    /// Time between full passes with --watch: `30s`, `5m`, `1h`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    interval: std::time::Duration,
    /// Wait for another engine's lease instead of exiting 3.
    #[arg(long)]
    wait: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::run::RunFormat::Human)]
    format: crate::run::RunFormat,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("expected a duration such as 30s or 5m, got `{s}`"))?;
    let secs = match unit {
        "ms" => n / 1000,
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("unknown unit `{unit}` in `{s}`: use ms, s, m or h")),
    };
    const YEAR: u64 = 365 * 24 * 3600;
    if secs > YEAR {
        return Err(format!("`{s}` is longer than a year"));
    }
    Ok(if unit == "ms" {
        std::time::Duration::from_millis(n.max(1))
    } else {
        std::time::Duration::from_secs(secs.max(1))
    })
}

#[derive(Debug, Args)]
struct HistoryArgs {
    /// A stack directory or a `.iade` file.
    #[arg(default_value = ".")]
    path: std::path::PathBuf,
    /// The journal; `.iade/journal.db` in the stack directory by default.
    #[arg(long, value_name = "FILE")]
    journal: Option<std::path::PathBuf>,
    /// Only this run.
    #[arg(long)]
    run: Option<i64>,
    /// Only what concerns this resource, such as `file.readme`.
    #[arg(long)]
    resource: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
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
        Command::Plan(a) => {
            let options = crate::run::RunOptions {
                load: a.stack.load_options(),
                format: if a.format == Format::Json {
                    crate::run::RunFormat::Json
                } else {
                    crate::run::RunFormat::Human
                },
                color,
                journal: None,
                parallelism: usize::from(a.parallelism),
                detect_only: true,
                wait: false,
            };
            crate::run::plan(&a.stack.path, &options)
        }
        Command::Converge(a) => {
            let options = crate::run::RunOptions {
                load: a.stack.load_options(),
                format: a.format,
                color,
                journal: a.engine.journal,
                parallelism: usize::from(a.engine.parallelism),
                detect_only: a.detect_only,
                wait: a.wait,
            };
            if a.watch {
                crate::watch::watch(&a.stack.path, &options, a.interval)
            } else {
                crate::run::converge(&a.stack.path, &options)
            }
        }
        Command::History(a) => {
            crate::run::history(&a.path, &a.journal, a.run, a.resource.as_deref(), a.format == Format::Json)
        }
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
