//! Running a system tool (useradd, apt-get, dpkg) with its arguments as an argv, never through
//! a shell, in the C locale, with what it printed kept for the journal.

use std::io::Write;
use std::process::{Command, Stdio};

use iade_provider::{Output, ProviderError};

/// How much of a tool's output is kept (the end of it).
const OUTPUT_TAIL: usize = 4096;

/// What a finished tool run produced.
#[derive(Debug)]
pub(crate) struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn output(&self) -> Output {
        Output { stdout: tail(&self.stdout), stderr: tail(&self.stderr) }
    }
}

/// The end of a tool's output, cut at a character boundary.
pub(crate) fn tail(text: &str) -> String {
    let mut start = text.len().saturating_sub(OUTPUT_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// Runs `program args…` with `stdin` fed to it (when given) and the environment `env` added.
/// An error only when the tool cannot be started.
pub(crate) fn run(
    program: &str,
    args: &[String],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Result<Ran, ProviderError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| ProviderError::io(format!("cannot run `{program}`"), &e))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A tool that exits early closes its end; what it printed says why.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| ProviderError::io(format!("`{program}` failed"), &e))?;
    Ok(Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs a tool that must succeed: a non-zero exit is an error carrying its output, transient
/// when `transient` says what it printed means trying again may help (a lock held by another
/// tool).
pub(crate) fn run_ok(
    program: &str,
    args: &[String],
    stdin: Option<&str>,
    env: &[(&str, &str)],
    transient: impl Fn(&Ran) -> bool,
) -> Result<Ran, ProviderError> {
    let ran = run(program, args, stdin, env)?;
    if ran.code == 0 {
        return Ok(ran);
    }
    let first = ran.stderr.lines().chain(ran.stdout.lines()).find(|l| !l.trim().is_empty()).unwrap_or("");
    let message = format!("`{program}` exited with {}: {}", ran.code, first.trim());
    let err =
        if transient(&ran) { ProviderError::transient(message) } else { ProviderError::permanent(message) };
    Err(err.with_output(ran.output()))
}
