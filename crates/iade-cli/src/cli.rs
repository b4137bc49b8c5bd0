use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use iade_driver::{HistoryQuery, JournalLocation, LoadOptions, RunOptions, Wait};
use iade_journal::RunId;

use crate::commands::{self, Engine};
use crate::output::{ColorChoice, Exit};
use crate::render::Style;

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
    /// diffs its managed attributes: each change with the object's identity, the line that
    /// declared it and, for text content, a diff. Changes nothing and takes no lease: safe to
    /// run any time. Exit code 2 when something differs, 0 when nothing does, 1 on errors.
    #[command(
        after_help = "Examples:\n  iade plan examples/quickstart\n  iade plan --target file.readme      that resource and what it depends on\n  iade plan --format json | jq '.plan.resources[] | select(.action != \"none\")'"
    )]
    Plan(PlanArgs),
    /// Make the environment equal to the intent, as a durable, journaled run.
    ///
    /// Observes, plans, and corrects in dependency order; each step's intent is journaled
    /// (in .iade/journal.db) before its effect and its outcome after, so a crash at any instant
    /// is resumed by the next run. Then evaluates the compliance controls on what it observed.
    /// One engine per stack at a time (a lease); `--watch` keeps reconciling.
    #[command(
        after_help = "Examples:\n  iade converge examples/quickstart\n  iade converge --detect-only        report drift and findings, change nothing (exit 2 on drift)\n  iade converge --target exec.migrate  fix one thing now (and what it depends on)\n  iade converge --watch --interval 30s\n  iade converge --format sarif > findings.sarif\n\nSecrets: secret(\"NAME\") reads the environment variable IADE_SECRET_NAME, only inside the provider call.\nExit codes: 0 done, 1 errors or failed steps, 2 drift found (--detect-only), 3 another engine holds the lease, 4 controls fail."
    )]
    Converge(ConvergeArgs),
    /// Show past runs: drift corrected, steps (with command output), errors and findings.
    #[command(
        after_help = "Examples:\n  iade history examples/quickstart\n  iade history --resource file.readme\n  iade history --run 3 --format json\n  iade history --journal postgres://iade@db/iade --stack web@host-17"
    )]
    History(HistoryArgs),
    /// One line per stack of a shared journal: its host, last run and result, drift left
    /// open, failing controls, and who holds its lease.
    #[command(
        after_help = "Examples:\n  iade status --journal postgres://iade@db.internal/iade\n  IADE_JOURNAL=postgres://iade@db.internal/iade iade status --format json\n\nExit codes: 0 every stack's last run succeeded, 1 some failed or could not be read, 4 some stack's controls fail."
    )]
    Status(StatusArgs),
    /// Look after a stack's journal: check it, prune old history, recover from damage.
    ///
    /// `check` runs the journal's own consistency check. `prune` removes the detail of old runs
    /// (their summaries are kept longer; pending refreshes and applied identities never go).
    /// `recover` moves a damaged journal aside and starts a fresh one that keeps what it can
    /// still read of those obligations, and says what was lost.
    #[command(
        after_help = "Examples:\n  iade journal check\n  iade journal prune --keep-runs 200 --keep-days 14\n  iade journal recover examples/quickstart"
    )]
    Journal(JournalArgs),
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
    /// Run the stack's tests: `test` blocks in `*_test.iade` files and `tests/*.iade`.
    ///
    /// Each test may set params (`with param`), declare objects its controls observe
    /// (`observed file { … }`), and expect a control or policy to pass, fail or be unknown, an
    /// expression over the intent to hold, or the rendered intent to equal a snapshot file. Test
    /// files are never part of the stack otherwise, and nothing is observed or changed. Exit
    /// code 1 when a test fails.
    #[command(
        after_help = "Examples:\n  iade test examples/quickstart\n  iade test --filter world-writable\n  iade test --bless              rewrite snapshot files (also IADE_BLESS=1)\n  iade test --format junit > tests.xml"
    )]
    Test(TestArgs),
    /// Write the source that declares objects as they exist now, to adopt them.
    ///
    /// Observes the named files, directories and links (with --recursive, everything under a
    /// directory), users, groups, packages, or PostgreSQL roles and databases (of the server
    /// --url names), and prints formatted source that declares them
    /// exactly as they are: put it in a stack and `plan` has nothing to change (the first
    /// converge marks the objects as the stack's). Resources are named after their identity; a
    /// file inside an imported directory refers to it. Binary or large file content is copied
    /// under --out DIR/files and named by `source`. Secrets (password hashes and verifiers,
    /// a URL's password) are never imported.
    #[command(
        after_help = "Examples:\n  iade import file /etc/nginx --recursive > nginx.iade\n  iade import file /etc/nginx --recursive --out stacks/nginx\n  iade import user deploy\n  iade import package nginx openssl\n  iade import role app reporting --url 'postgres://postgres@localhost/postgres?host=/var/run/postgresql'"
    )]
    Import(ImportArgs),
    /// Print a shell completion script for iade.
    #[command(
        after_help = "Examples:\n  iade completions bash > /etc/bash_completion.d/iade\n  iade completions zsh > \"${fpath[1]}/_iade\"\n  iade completions fish > ~/.config/fish/completions/iade.fish"
    )]
    Completions(CompletionsArgs),
    /// Explain a diagnostic code.
    #[command(after_help = "Examples:\n  iade explain E0004\n  iade explain --list")]
    Explain(ExplainArgs),
    /// Run the language server on standard input and output (LSP), for editors: diagnostics as
    /// you type, hover, go to definition, references, completion, symbols and formatting.
    Lsp,
}

#[derive(Debug, Args)]
struct StackArgs {
    /// A stack directory or a `.iade` file.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Set a param: `--param tier=prod` (repeatable). Overrides `IADE_PARAM_TIER=prod` from
    /// the environment, which overrides the param's default.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Use the standard library in DIR (DIR/std/*.iade) instead of the embedded one.
    #[arg(long, value_name = "DIR")]
    stdlib: Option<PathBuf>,
}

impl StackArgs {
    fn load_options(&self) -> LoadOptions {
        LoadOptions {
            params: self.params.clone(),
            env_params: iade_driver::params_from_env(),
            stdlib: self.stdlib.clone(),
            params_optional: false,
            tests: false,
        }
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
struct RunArgs {
    /// At most this many provider calls at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    parallelism: u16,
    /// Only this resource (`file.config`) or component instance, and what it depends on
    /// (repeatable).
    #[arg(long = "target", value_name = "ID")]
    targets: Vec<String>,
    /// Do not show diffs of text content.
    #[arg(long)]
    no_diff: bool,
    /// Delete objects this stack applied and no longer declares (its ownership mark, or the
    /// journal where no mark is possible, proves them its own). `stack NAME { prune = true }`
    /// does the same for every run.
    #[arg(long)]
    prune: bool,
}

#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    run: RunArgs,
    /// The journal whose obligations the plan reads (what the stack applied, refreshes owed):
    /// a file or postgres://…; `.iade/journal.db` in the stack directory by default.
    #[arg(long, value_name = "FILE|URL", env = "IADE_JOURNAL", hide_env_values = true)]
    journal: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Args)]
struct ConvergeArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    run: RunArgs,
    /// The journal: a file, or a PostgreSQL database a fleet shares (postgres://…);
    /// `.iade/journal.db` in the stack directory by default.
    #[arg(long, value_name = "FILE|URL", env = "IADE_JOURNAL", hide_env_values = true)]
    journal: Option<String>,
    /// Report drift and findings; change nothing, take no lease (exit 2 on drift).
    #[arg(long, conflicts_with = "watch")]
    detect_only: bool,
    /// Keep reconciling: a full pass every --interval, at once on a change to a managed path
    /// or a source file. Stops cleanly on SIGINT or SIGTERM.
    #[arg(long)]
    watch: bool,
    /// Time between full passes with --watch: `30s`, `5m`, `1h`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    interval: Duration,
    /// Wait for another engine's lease instead of exiting 3: at most DURATION (`30s`, `5m`),
    /// ten minutes when none is given.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "10m", value_parser = parse_duration)]
    wait: Option<Duration>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunFormat::Human)]
    format: RunFormat,
    /// How progress and events are logged on stderr: lines for people, or one JSON object per
    /// event (run, drift, step, finding, lease, pass) for log shippers.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// With --watch, serve Prometheus metrics at http://ADDR/metrics and health at /healthz
    /// (`127.0.0.1:9464`; port 0 picks a free one, and the address is logged).
    #[arg(long, value_name = "ADDR", requires = "watch")]
    metrics: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("expected a duration such as 30s or 5m, got `{s}`"))?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        _ => return Err(format!("unknown unit `{unit}` in `{s}`: use ms, s, m or h")),
    };
    if ms > 365 * 24 * 3_600_000 {
        return Err(format!("`{s}` is longer than a year"));
    }
    Ok(Duration::from_millis(ms.max(1)))
}

#[derive(Debug, Args)]
struct HistoryArgs {
    /// A stack directory or a `.iade` file.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// The journal: a file, or a PostgreSQL database a fleet shares (postgres://…);
    /// `.iade/journal.db` in the stack directory by default.
    #[arg(long, value_name = "FILE|URL", env = "IADE_JOURNAL", hide_env_values = true)]
    journal: Option<String>,
    /// Another stack of a shared journal (NAME, or NAME@HOST for one host's); the stack
    /// directory is then not read.
    #[arg(long, value_name = "NAME[@HOST]")]
    stack: Option<String>,
    /// Only this run.
    #[arg(long)]
    run: Option<i64>,
    /// Only what concerns this resource, such as `file.readme`.
    #[arg(long)]
    resource: Option<String>,
    /// At most this many runs, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The fleet's journal: a PostgreSQL database (postgres://…).
    #[arg(long, value_name = "URL", env = "IADE_JOURNAL", hide_env_values = true)]
    journal: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Args)]
struct JournalArgs {
    #[arg(value_enum)]
    action: JournalAction,
    /// A stack directory or a `.iade` file.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// The journal: a file, or a PostgreSQL database a fleet shares (postgres://…);
    /// `.iade/journal.db` in the stack directory by default.
    #[arg(long, value_name = "FILE|URL", env = "IADE_JOURNAL", hide_env_values = true)]
    journal: Option<String>,
    /// With `prune`: keep the step detail of the newest N runs.
    #[arg(long, default_value_t = 1000)]
    keep_runs: usize,
    /// With `prune`: keep the step detail of runs younger than D days.
    #[arg(long, default_value_t = 30)]
    keep_days: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum JournalAction {
    Check,
    Prune,
    Recover,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    Human,
    Json,
    /// SARIF 2.1.0: the compliance findings, for code-scanning tools.
    Sarif,
    /// JUnit XML: each control a test case, each failing subject a failure, for CI reports.
    Junit,
}

#[derive(Debug, Args)]
struct FmtArgs {
    /// Files or directories to format; `-` formats standard input to standard output.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// Do not write; exit 1 if any file would change, listing them.
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Args)]
struct TestArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Only tests whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Rewrite snapshot files with the intent as it is (review the diff before committing).
    #[arg(long)]
    bless: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TestFormat::Human)]
    format: TestFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    Human,
    Json,
    /// JUnit XML, for CI test reports.
    Junit,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// What to import: file (also directories and links), directory, symlink, user, group,
    /// package, role or database.
    kind: String,
    /// Paths (for files) or names.
    #[arg(required = true)]
    names: Vec<String>,
    /// Everything under each directory too.
    #[arg(long, short)]
    recursive: bool,
    /// Only objects under this path.
    #[arg(long, value_name = "PATH")]
    under: Option<PathBuf>,
    /// Write DIR/imported.iade (and copied content under DIR/files) instead of printing.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The PostgreSQL server to import roles or databases from (a libpq URI).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
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

/// A `--journal` (or `IADE_JOURNAL`) value, with the CA file of a shared journal's server
/// (`IADE_JOURNAL_CA`).
fn journal_location(text: &str) -> JournalLocation {
    let ca = std::env::var_os("IADE_JOURNAL_CA").map(PathBuf::from);
    JournalLocation::parse(text).with_ca(ca)
}

fn run_options(a: &RunArgs, journal: Option<&str>, wait: Option<Duration>) -> RunOptions {
    RunOptions {
        parallelism: usize::from(a.parallelism),
        diffs: !a.no_diff,
        targets: a.targets.clone(),
        journal: journal.map(journal_location),
        wait: wait.map_or(Wait::No, Wait::For),
        failpoint: std::env::vars_os()
            .find(|(k, _)| k == "IADE_FAILPOINT")
            .and_then(|(_, v)| v.into_string().ok()),
        retries: 3,
        prune: a.prune,
    }
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
    let style = Style { color: cli.color.enabled() };
    let exit = match cli.command {
        Command::Check(a) => commands::check(&a.stack.path, &a.stack.load_options(), a.format, style),
        Command::Graph(a) => {
            commands::graph(&a.stack.path, &a.stack.load_options(), a.format == GraphFormat::Json, style)
        }
        Command::Plan(a) => Engine {
            path: &a.stack.path,
            load: a.stack.load_options(),
            run: run_options(&a.run, a.journal.as_deref(), None),
            format: if a.format == Format::Json { RunFormat::Json } else { RunFormat::Human },
            style,
            log_json: false,
            metrics: None,
        }
        .plan(false),
        Command::Converge(a) => {
            let log_json = a.log_format == LogFormat::Json;
            if log_json {
                crate::logs::init_json();
            }
            let engine = Engine {
                path: &a.stack.path,
                load: a.stack.load_options(),
                run: run_options(&a.run, a.journal.as_deref(), a.wait),
                format: a.format,
                style,
                log_json,
                metrics: a.metrics.clone(),
            };
            match (a.detect_only, a.watch) {
                (true, _) => engine.plan(true),
                (_, true) => engine.watch(a.interval),
                _ => engine.converge(),
            }
        }
        Command::History(a) => {
            let query = HistoryQuery { run: a.run.map(RunId), resource: a.resource, limit: a.limit };
            let journal = a.journal.as_deref().map(journal_location);
            match &a.stack {
                Some(stack) => match journal {
                    Some(journal @ JournalLocation::Postgres { .. }) => {
                        commands::fleet_history(&journal, stack, &query, a.format == Format::Json, style)
                    }
                    _ => commands::usage_error(
                        "--stack reads another stack's history from a shared journal",
                        "give the fleet's journal: --journal postgres://… (or IADE_JOURNAL)",
                    ),
                },
                None => commands::history(&a.path, journal, &query, a.format == Format::Json, style),
            }
        }
        Command::Status(a) => match journal_location(&a.journal) {
            journal @ JournalLocation::Postgres { .. } => {
                commands::status(&journal, a.format == Format::Json, style)
            }
            JournalLocation::Sqlite(_) => commands::usage_error(
                "`iade status` reads the journal a fleet shares",
                "give its URL: --journal postgres://USER@HOST/DB (or IADE_JOURNAL); `iade history` reads one stack's file",
            ),
        },
        Command::Journal(a) => {
            let journal = a.journal.as_deref().map(journal_location);
            let day = Duration::from_secs(24 * 3600);
            let retention = iade_journal::Retention {
                detail_runs: a.keep_runs,
                detail_age: day * u32::try_from(a.keep_days).unwrap_or(u32::MAX),
                ..iade_journal::Retention::default()
            };
            commands::journal(a.action, &a.path, journal, &retention, style)
        }
        Command::Fmt(a) => commands::fmt(&a.paths, a.check, style),
        Command::Completions(a) => {
            use clap::CommandFactory;
            let shell = match a.shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut Cli::command(), "iade", &mut std::io::stdout());
            Exit::Success
        }
        Command::Test(a) => commands::test(
            &a.stack.path,
            &a.stack.load_options(),
            &iade_driver::TestOptions {
                filter: a.filter,
                bless: a.bless || std::env::var_os("IADE_BLESS").is_some_and(|v| v == "1"),
            },
            a.format,
            style,
        ),
        Command::Import(a) => commands::import(
            &iade_driver::ImportOptions {
                kind: a.kind,
                names: a.names,
                recursive: a.recursive,
                under: a.under,
                files_dir: a.out.clone(),
                url: a.url,
            },
            a.out.as_deref(),
            style,
        ),
        Command::Explain(a) => commands::explain(a.code, a.list),
        Command::Lsp => match iade_lsp::run() {
            Ok(()) => Exit::Success,
            Err(e) => {
                crate::output::error(&format!("the language server stopped: {e}"));
                Exit::Errors
            }
        },
    };
    Exit::into(exit)
}
