//! `exec`: a `check` command that says whether the system is right (exit 0) and an `apply`
//! command that makes it right. Each runs through `sh -c` in a process group of its own, which
//! is killed on timeout or when the run is cancelled.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use iade_intent::Value;
use iade_provider::{
    Applied, Change, Context, Discovered, Fields, Observed, Output, Provider, ProviderError, Target, Verb,
    reveal,
};

/// How much of a command's output is kept (the end of it).
const OUTPUT_TAIL: usize = 4096;

#[derive(Debug, Default)]
pub struct ExecProvider;

impl ExecProvider {
    pub fn new() -> Self {
        ExecProvider
    }
}

/// Every secret text a target's attributes hold or reveal, longest first, to scrub from output.
fn secret_values(target: &Target, cx: &Context<'_>) -> Vec<String> {
    let values: Vec<&Value> = target.intended.values().collect();
    iade_provider::secret_texts(&values, cx.secrets)
}

/// What one command run produced.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

/// The end of what a command printed, with its secrets scrubbed first, so a secret cut in
/// two by the limit cannot leave half of itself behind.
fn tail(bytes: &[u8], secrets: &[String]) -> String {
    let text = iade_provider::scrub(&String::from_utf8_lossy(bytes), secrets);
    let mut start = text.len().saturating_sub(OUTPUT_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// Runs `sh -c command` in its own process group with `target`'s env, cwd and timeout.
/// `shown` is how the command appears in messages (secrets redacted).
pub fn run(command: &str, shown: &str, target: &Target, cx: &Context<'_>) -> Result<Outcome, ProviderError> {
    let timeout = match target.intended.get("timeout") {
        Some(Value::Int(s)) if *s > 0 => Duration::from_secs(*s as u64),
        _ => Duration::from_secs(300),
    };
    // The command records its own process group before it runs, so there is no instant at
    // which a killed engine leaves a group that the next run cannot find; the marker's path
    // in the group's environment identifies it (a reused pid never matches).
    let marker = match running_dir(cx) {
        Some(dir) => {
            let _ = std::fs::create_dir_all(&dir);
            dir.join(format!("{}-{}", std::process::id(), MARKER_COUNTER.fetch_add(1, Ordering::Relaxed)))
        }
        None => std::path::PathBuf::from("/dev/null"),
    };
    // The command travels in the environment, which only this user can read, and runs through
    // `eval`: never in an argument list, which every local user can read in /proc.
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"echo "$$" > "$IADE_MARKER"; iade_command="$IADE_COMMAND"; unset IADE_COMMAND; eval "$iade_command""#)
        .env("IADE_MARKER", &marker)
        .env("IADE_COMMAND", command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let cwd = match target.intended.get("cwd") {
        Some(v) => crate::resolve(cx.stack_dir, &reveal(v, cx.secrets)?),
        None => cx.stack_dir.to_path_buf(),
    };
    if !cwd.is_dir() {
        let shown = match target.intended.get("cwd") {
            Some(v) if v.contains_secret() => "<redacted>".to_string(),
            _ => cwd.display().to_string(),
        };
        return Err(ProviderError::permanent(format!("working directory `{shown}` does not exist")));
    }
    cmd.current_dir(&cwd);
    // The engine's secrets and params stay with the engine: a command gets what `env` gives it.
    for (k, _) in std::env::vars_os() {
        let k_text = k.to_string_lossy();
        if k_text.starts_with("IADE_SECRET_") || k_text.starts_with("IADE_PARAM_") {
            cmd.env_remove(&k);
        }
    }
    if let Some(Value::Record(env)) = target.intended.get("env") {
        for (k, v) in env.iter() {
            cmd.env(k, reveal(v, cx.secrets)?);
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| ProviderError::io("cannot start /bin/sh", &e))?;
    let pgid = rustix::process::Pid::from_child(&child);
    let forget = || {
        if marker != std::path::Path::new("/dev/null") {
            let _ = std::fs::remove_file(&marker);
        }
    };
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let kill_group = || {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                kill_group();
                forget();
                return Err(ProviderError::io("cannot wait for the command", &e));
            }
        }
        if started.elapsed() > timeout {
            kill_group();
            let _ = child.wait();
            forget();
            return Err(ProviderError::transient(format!(
                "`{}` timed out after {} s and was killed with its process group",
                first_line(shown),
                timeout.as_secs()
            )));
        }
        if cx.cancelled.load(Ordering::Relaxed) {
            kill_group();
            let _ = child.wait();
            forget();
            return Err(ProviderError::transient("cancelled: the command was killed with its process group"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // The command is done; anything it left running in its group goes with it.
    kill_group();
    forget();
    // A command may echo what it was given: secrets never leave as output.
    let secrets = secret_values(target, cx);
    let stdout = out_reader.join().map(|b| tail(&b, &secrets)).unwrap_or_default();
    let stderr = err_reader.join().map(|b| tail(&b, &secrets)).unwrap_or_default();
    Ok(Outcome { code: status.code().unwrap_or(-1), stdout, stderr, duration: started.elapsed() })
}

/// Where running commands' process groups are recorded: `.iade/running/` in the stack.
fn running_dir(cx: &Context<'_>) -> Option<std::path::PathBuf> {
    let dir = cx.stack_dir.join(".iade");
    dir.is_dir().then(|| dir.join("running"))
}

static MARKER_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Kills process groups that commands of a killed engine left running. A marker is named
/// `ENGINEPID-N` and holds the group's id; the group is killed only if that engine is gone and
/// the group's leader still carries the marker's path in its environment.
fn reap(cx: &Context<'_>) -> usize {
    let Some(dir) = running_dir(cx) else { return 0 };
    let mut left = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let engine = name.split('-').next().and_then(|p| p.parse::<i32>().ok());
        // The engine that started it still runs (a concurrent `plan`'s check): not ours to reap.
        if !engine.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            left.push(entry.path());
        }
    }
    if left.is_empty() {
        return 0;
    }
    // Every process that carries the marker of a command a dead engine left running: its
    // group, and whatever left the group (`setsid`, a daemonizing helper) but inherited the
    // marker in its environment.
    let tags: Vec<String> = left.iter().map(|p| format!("IADE_MARKER={}", p.display())).collect();
    let carriers = || -> Vec<i32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                    env.split(|b| *b == 0).any(|var| tags.iter().any(|t| var == t.as_bytes()))
                })
            })
            .collect()
    };
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = carriers();
        if found.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in found {
            if let Some(p) = rustix::process::Pid::from_raw(pid)
                && rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok()
            {
                killed += 1;
            }
        }
        // Killed processes disappear once their parent (or init) reaps them.
        std::thread::sleep(Duration::from_millis(20));
    }
    for path in left {
        let _ = std::fs::remove_file(&path);
    }
    killed
}

fn first_line(command: &str) -> &str {
    command.lines().next().unwrap_or(command)
}

fn refresh_only(target: &Target) -> bool {
    matches!(target.intended.get("refresh_only"), Some(Value::Bool(true)))
}

/// A command, revealed for running and as shown in messages (secrets redacted).
fn command(target: &Target, name: &str, cx: &Context<'_>) -> Result<(String, String), ProviderError> {
    match target.intended.get(name) {
        Some(v) => Ok((reveal(v, cx.secrets)?, v.as_text().unwrap_or_else(|| v.to_string()))),
        None => Err(ProviderError::permanent(format!("`{}` has no `{name}` command", target.id))),
    }
}

impl Provider for ExecProvider {
    fn name(&self) -> &str {
        "exec"
    }

    /// Runs each `check` (read-only by contract).
    fn observe(
        &self,
        _kind: &str,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        targets
            .iter()
            .map(|t| {
                // A refresh-only exec is not judged by its check: it runs only when notified.
                if refresh_only(t) {
                    return Ok(Observed::Present(Fields::new()));
                }
                let (check, shown) = command(t, "check", cx)?;
                let o = run(&check, &shown, t, cx)?;
                let mut f = Fields::new();
                f.insert("exit_code".into(), Value::Int(i64::from(o.code)));
                f.insert("stdout".into(), Value::str(o.stdout));
                f.insert("stderr".into(), Value::str(o.stderr));
                f.insert("duration_ms".into(), Value::Int(o.duration.as_millis() as i64));
                Ok(Observed::Present(f))
            })
            .collect()
    }

    fn diff(&self, _kind: &str, target: &Target, observed: &Observed, _cx: &Context<'_>) -> Vec<Change> {
        if refresh_only(target) {
            return Vec::new();
        }
        match observed.field("exit_code") {
            Some(Value::Int(0)) => Vec::new(),
            code => vec![
                Change::new("check", code.cloned(), Value::Int(0))
                    .shown(code.map(|c| format!("check exits {c}")), "check exits 0 (apply runs)"),
            ],
        }
    }

    /// Correcting a command pair means running its `apply`.
    fn verb(&self, _kind: &str, _target: &Target, _observed: &Observed) -> Verb {
        Verb::Run
    }

    fn apply(
        &self,
        _kind: &str,
        target: &Target,
        _observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<Applied, ProviderError> {
        let (apply, shown) = command(target, "apply", cx)?;
        let o = run(&apply, &shown, target, cx)?;
        let output = Output { stdout: o.stdout.clone(), stderr: o.stderr.clone() };
        if o.code != 0 {
            return Err(ProviderError::permanent(format!(
                "apply exited {}{}",
                o.code,
                match o.stderr.trim().lines().last() {
                    Some(line) => format!(": {line}"),
                    None => String::new(),
                }
            ))
            .with_output(output));
        }
        let (check, shown) = command(target, "check", cx)?;
        let c = run(&check, &shown, target, cx)?;
        if c.code != 0 {
            return Err(ProviderError::permanent(format!(
                "check still exits {} after apply succeeded",
                c.code
            ))
            .with_output(output));
        }
        Ok(Applied { output: Some(output) })
    }

    fn delete(&self, _kind: &str, target: &Target, _cx: &Context<'_>) -> Result<Applied, ProviderError> {
        Err(ProviderError::permanent(format!("`{}`: an exec cannot be deleted", target.id)))
    }

    fn owns_objects(&self, _kind: &str) -> bool {
        false
    }

    /// Runs `refresh`, or `apply` when it is unset; its check is not consulted.
    fn refresh(&self, _kind: &str, target: &Target, cx: &Context<'_>) -> Result<Applied, ProviderError> {
        let which = if target.intended.contains_key("refresh") { "refresh" } else { "apply" };
        let (cmd, shown) = command(target, which, cx)?;
        let o = run(&cmd, &shown, target, cx)?;
        let output = Output { stdout: o.stdout.clone(), stderr: o.stderr.clone() };
        if o.code != 0 {
            return Err(ProviderError::permanent(format!(
                "{which} exited {}{}",
                o.code,
                match o.stderr.trim().lines().last() {
                    Some(line) => format!(": {line}"),
                    None => String::new(),
                }
            ))
            .with_output(output));
        }
        Ok(Applied { output: Some(output) })
    }

    fn discover(
        &self,
        _kind: &str,
        _under: &str,
        _cx: &Context<'_>,
    ) -> Result<Vec<Discovered>, ProviderError> {
        Ok(Vec::new())
    }

    fn cleanup(&self, _kind: &str, _targets: &[&Target], cx: &Context<'_>) -> Result<usize, ProviderError> {
        Ok(reap(cx))
    }
}
