//! `exec`: a `check` command that says whether the system is right (exit 0) and an `apply`
//! command that makes it right. Each runs through `sh -c` in a process group of its own, which
//! is killed on timeout or when the run is cancelled.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use iade_intent::Value;
use iade_provider::{Change, Context, Fields, Observed, Provider, ProviderError, Target, reveal};

/// How much of a command's output is kept (the end of it).
const OUTPUT_TAIL: usize = 4096;

#[derive(Debug, Default)]
pub struct ExecProvider;

impl ExecProvider {
    pub fn new() -> Self {
        ExecProvider
    }
}

/// Every secret value a target's attributes reveal, longest first, to scrub from output.
fn secret_values(target: &Target, cx: &Context<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut visit = |v: &Value| {
        if let Value::Secret(s) = v {
            for p in &s.parts {
                if let iade_intent::SecretPart::Named(n) = p
                    && let Ok(text) = cx.secrets.resolve(n)
                    && text.len() >= 3
                {
                    out.push(text);
                }
            }
        }
    };
    for v in target.intended.values() {
        match v {
            Value::Record(r) => r.values().for_each(&mut visit),
            other => visit(other),
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(s.as_str(), "<redacted>");
    }
    out
}

/// What one command run produced.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(OUTPUT_TAIL);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// Runs `sh -c command` in its own process group with `target`'s env, cwd and timeout.
/// `shown` is how the command appears in messages (secrets redacted).
pub fn run(command: &str, shown: &str, target: &Target, cx: &Context<'_>) -> Result<Outcome, ProviderError> {
    let timeout = match target.intended.get("timeout") {
        Some(Value::Int(s)) if *s > 0 => Duration::from_secs(*s as u64),
        _ => Duration::from_secs(300),
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
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
    // The engine's own secrets stay with the engine: a command gets only what `env` gives it.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("IADE_SECRET_") {
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
    // Recorded while it runs, so a run that resumes after the engine was killed can kill a
    // group left behind.
    let marker = running_dir(cx).map(|d| d.join(pgid.as_raw_nonzero().to_string()));
    if let Some(m) = &marker {
        let _ = std::fs::create_dir_all(m.parent().unwrap_or(m));
        // The group's start time (so a reused pid is never hit) and the engine's pid (so only
        // the group of an engine that is gone is reaped).
        let _ = std::fs::write(
            m,
            format!("{} {}", start_time(pgid.as_raw_nonzero().get()).unwrap_or_default(), std::process::id()),
        );
    }
    let forget = || {
        if let Some(m) = &marker {
            let _ = std::fs::remove_file(m);
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
    let stdout = scrub(&out_reader.join().map(|b| tail(&b)).unwrap_or_default(), &secrets);
    let stderr = scrub(&err_reader.join().map(|b| tail(&b)).unwrap_or_default(), &secrets);
    Ok(Outcome { code: status.code().unwrap_or(-1), stdout, stderr, duration: started.elapsed() })
}

/// Where running commands' process groups are recorded: `.iade/running/` in the stack.
fn running_dir(cx: &Context<'_>) -> Option<std::path::PathBuf> {
    let dir = cx.stack_dir.join(".iade");
    dir.is_dir().then(|| dir.join("running"))
}

/// A process's start time (field 22 of `/proc/PID/stat`): with the pid, it names the process
/// even after the pid is reused.
fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(19).map(str::to_string)
}

/// Kills process groups that commands of a killed engine left running.
fn reap(cx: &Context<'_>) -> usize {
    let Some(dir) = running_dir(cx) else { return 0 };
    let mut killed = 0;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let recorded = std::fs::read_to_string(&path).unwrap_or_default();
        let (started, engine) = recorded.split_once(' ').unwrap_or((recorded.as_str(), ""));
        // The engine that started it still runs (a concurrent `plan`'s check): not ours to reap.
        if engine.parse::<i32>().is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            continue;
        }
        if let Ok(pgid) = entry.file_name().to_string_lossy().parse::<i32>()
            && start_time(pgid).is_some_and(|t| t == started)
            && let Some(pid) = rustix::process::Pid::from_raw(pgid)
            && rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_ok()
        {
            killed += 1;
        }
        let _ = std::fs::remove_file(&path);
    }
    killed
}

fn first_line(command: &str) -> &str {
    command.lines().next().unwrap_or(command)
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

    fn diff(&self, _kind: &str, _target: &Target, observed: &Observed, _cx: &Context<'_>) -> Vec<Change> {
        match observed.field("exit_code") {
            Some(Value::Int(0)) => Vec::new(),
            code => vec![Change {
                field: "check".into(),
                observed: code.cloned(),
                intended: Value::Int(0),
                shown: Some((
                    code.map(|c| format!("check exits {c}")),
                    "check exits 0 (apply runs)".to_string(),
                )),
            }],
        }
    }

    fn apply(
        &self,
        _kind: &str,
        target: &Target,
        _observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        let (apply, shown) = command(target, "apply", cx)?;
        let o = run(&apply, &shown, target, cx)?;
        if o.code != 0 {
            return Err(ProviderError::permanent(format!(
                "apply exited {}{}",
                o.code,
                if o.stderr.trim().is_empty() { String::new() } else { format!(": {}", o.stderr.trim()) }
            )));
        }
        let (check, shown) = command(target, "check", cx)?;
        let c = run(&check, &shown, target, cx)?;
        if c.code != 0 {
            return Err(ProviderError::permanent(format!(
                "check still exits {} after apply succeeded",
                c.code
            )));
        }
        Ok(())
    }

    fn delete(&self, _kind: &str, target: &Target, _cx: &Context<'_>) -> Result<(), ProviderError> {
        Err(ProviderError::permanent(format!("`{}`: an exec cannot be deleted", target.id)))
    }

    fn discover(&self, _kind: &str, _under: &str, _cx: &Context<'_>) -> Result<Vec<Fields>, ProviderError> {
        Ok(Vec::new())
    }

    fn cleanup(&self, _kind: &str, _target: &Target, cx: &Context<'_>) -> Result<usize, ProviderError> {
        Ok(reap(cx))
    }
}
