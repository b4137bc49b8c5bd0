//! `dpkg`: Debian packages (`std.pkg`). Observed from dpkg's status database in one read for
//! every package; changed with `apt-get`, one batched call per wave at the flush (installs,
//! then removals, then purges), without prompts. A removal that would take other packages
//! with it is refused. An interrupted dpkg is repaired (`dpkg --configure -a`) before the next
//! change, and apt's lists are updated at most once per run, only when a wanted package or
//! version is missing from them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use iade_intent::Value;
use iade_provider::{
    Applied, Change, Context, Discovered, Fields, Observed, Provider, ProviderError, Target, Verb,
};

use crate::command::{Ran, run, run_ok};

/// Where dpkg keeps its state.
#[derive(Debug)]
pub struct PackageProvider {
    admin: PathBuf,
    pending: Mutex<Pending>,
    /// Whether this process already ran `apt-get update` (once per run is enough).
    updated: Mutex<bool>,
}

impl Default for PackageProvider {
    fn default() -> Self {
        PackageProvider {
            admin: PathBuf::from("/var/lib/dpkg"),
            pending: Mutex::default(),
            updated: Mutex::new(false),
        }
    }
}

/// The changes of one wave, made at the flush: `(resource id, apt argument)`.
#[derive(Debug, Default)]
struct Pending {
    install: Vec<(String, String)>,
    remove: Vec<(String, String)>,
    purge: Vec<(String, String)>,
}

/// A package as dpkg's status database records it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    name: String,
    architecture: String,
    version: String,
    /// `installed`, `config-files`, `half-installed`, … (the status's third word).
    state: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Every package of a status file, by name and by `name:arch`.
fn parse_status(text: &str) -> BTreeMap<String, Record> {
    let mut out = BTreeMap::new();
    for para in text.split("\n\n") {
        let mut r = Record {
            name: String::new(),
            architecture: String::new(),
            version: String::new(),
            state: String::new(),
        };
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                r.name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("Architecture: ") {
                r.architecture = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("Version: ") {
                r.version = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("Status: ") {
                r.state = v.split_whitespace().nth(2).unwrap_or_default().to_string();
            }
        }
        if r.name.is_empty() || r.state == "not-installed" {
            continue;
        }
        out.insert(format!("{}:{}", r.name, r.architecture), r.clone());
        // The bare name means the installed one of any architecture, the native one first.
        let native =
            r.architecture == "all" || r.architecture == std::env::consts::ARCH.replace("x86_64", "amd64");
        if native || !out.contains_key(&r.name) {
            out.insert(r.name.clone(), r);
        }
    }
    out
}

/// Candidates by package from `apt-cache policy A B …`.
fn parse_policy(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            current = Some(line.trim_end_matches(':').to_string());
        } else if let (Some(name), Some(v)) = (&current, line.trim().strip_prefix("Candidate: "))
            && v != "(none)"
        {
            out.insert(name.clone(), v.to_string());
        }
    }
    out
}

fn ensure(target: &Target) -> &str {
    match target.intended.get("ensure") {
        Some(Value::Enum(e)) => e,
        _ => "present",
    }
}

fn text(target: &Target, field: &str) -> Option<String> {
    match target.intended.get(field) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// apt and dpkg hold their locks while another tool runs: trying again later may succeed.
fn locked(ran: &Ran) -> bool {
    let t = format!("{}{}", ran.stderr, ran.stdout);
    t.contains("Could not get lock")
        || t.contains("Unable to acquire the dpkg")
        || t.contains("is locked by another")
        || t.contains("locked by another process")
}

/// What apt says when a package or version is not in its lists.
fn missing_from_lists(e: &ProviderError) -> bool {
    let t = match &e.output {
        Some(o) => format!("{}{}{}", e.message, o.stderr, o.stdout),
        None => e.message.clone(),
    };
    t.contains("Unable to locate package")
        || t.contains("was not found")
        || t.contains("has no installation candidate")
}

const APT_ENV: &[(&str, &str)] =
    &[("DEBIAN_FRONTEND", "noninteractive"), ("APT_LISTCHANGES_FRONTEND", "none")];

fn apt_args(verb: &str, packages: &[String]) -> Vec<String> {
    let mut args: Vec<String> =
        ["-y", "-q", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    if verb == "install" {
        args.push("--allow-downgrades".into());
    }
    args.push(verb.into());
    args.push("--".into());
    args.extend(packages.iter().cloned());
    args
}

impl PackageProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider that reads dpkg's state under another directory (`DIR/status`).
    pub fn reading(admin: &Path) -> Self {
        PackageProvider { admin: admin.to_path_buf(), ..Self::default() }
    }

    fn status(&self) -> Result<BTreeMap<String, Record>, ProviderError> {
        let path = self.admin.join("status");
        std::fs::read_to_string(&path)
            .map(|t| parse_status(&t))
            .map_err(|e| ProviderError::io(format!("cannot read {}", path.display()), &e))
    }

    fn fields(r: &Record, candidate: Option<&String>) -> Fields {
        let mut f = Fields::new();
        f.insert("name".into(), Value::str(r.name.as_str()));
        let state = if r.state == "installed" { "present" } else { "absent" };
        f.insert("ensure".into(), Value::Enum(Arc::from(state)));
        f.insert("version".into(), Value::str(r.version.as_str()));
        f.insert("architecture".into(), Value::str(r.architecture.as_str()));
        if let Some(c) = candidate {
            f.insert("candidate".into(), Value::str(c.as_str()));
        }
        f
    }

    /// dpkg left a change half done (a killed install): finish it before anything else. Seen
    /// as pending entries of dpkg's update journal, or a package left between states.
    fn repair(&self) -> Result<(), ProviderError> {
        let journal = std::fs::read_dir(self.admin.join("updates"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
            })
            .unwrap_or(false);
        let between = self.status()?.values().any(|r| {
            matches!(
                r.state.as_str(),
                "half-installed" | "half-configured" | "unpacked" | "triggers-awaited" | "triggers-pending"
            )
        });
        let interrupted = journal || between;
        if interrupted {
            run_ok("dpkg", &["--configure".into(), "-a".into()], None, APT_ENV, locked)?;
        }
        Ok(())
    }

    fn update_lists(&self) -> Result<bool, ProviderError> {
        let mut updated = lock(&self.updated);
        if *updated {
            return Ok(false);
        }
        run_ok("apt-get", &["-q".into(), "update".into()], None, APT_ENV, locked)?;
        *updated = true;
        Ok(true)
    }

    /// Installs in one call; when apt's lists lack a package, updates them (once per run) and
    /// tries again; when the batch fails, each package alone, so each failure is its own.
    fn install(&self, items: Vec<(String, String)>) -> Vec<(String, ProviderError)> {
        if items.is_empty() {
            return Vec::new();
        }
        let all: Vec<String> = items.iter().map(|(_, a)| a.clone()).collect();
        let attempt = || run_ok("apt-get", &apt_args("install", &all), None, APT_ENV, locked);
        let mut result = attempt();
        if let Err(e) = &result
            && missing_from_lists(e)
        {
            match self.update_lists() {
                Ok(true) => result = attempt(),
                Ok(false) => {}
                Err(e) => return items.into_iter().map(|(id, _)| (id, e.clone())).collect(),
            }
        }
        match result {
            Ok(_) => Vec::new(),
            Err(e) if items.len() == 1 => items.into_iter().map(|(id, _)| (id, e.clone())).collect(),
            Err(_) => items.into_iter().flat_map(|item| self.install(vec![item])).collect(),
        }
    }

    /// Removes (or purges) in one call, after a simulation: a package the simulation would
    /// also remove and that was not asked for makes the whole batch a refusal naming it.
    fn remove(&self, verb: &str, items: Vec<(String, String)>) -> Vec<(String, ProviderError)> {
        if items.is_empty() {
            return Vec::new();
        }
        let wanted: BTreeSet<String> = items.iter().map(|(_, a)| a.clone()).collect();
        let all: Vec<String> = wanted.iter().cloned().collect();
        let fail = |e: ProviderError| items.iter().map(|(id, _)| (id.clone(), e.clone())).collect::<Vec<_>>();
        let mut sim = apt_args(verb, &all);
        sim.insert(0, "-s".into());
        let simulated = match run_ok("apt-get", &sim, None, APT_ENV, locked) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        let taken: BTreeSet<String> = simulated
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("Remv ").or_else(|| l.strip_prefix("Purg ")))
            .filter_map(|l| l.split_whitespace().next())
            .map(|n| n.split(':').next().unwrap_or(n).to_string())
            .collect();
        let extra: Vec<&String> = taken
            .iter()
            .filter(|n| {
                !wanted.contains(*n) && !wanted.iter().any(|w| w.split(':').next() == Some(n.as_str()))
            })
            .collect();
        if !extra.is_empty() {
            let names = extra.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            return fail(ProviderError::permanent(format!(
                "refused: removing {} would also remove {names}; declare them absent too, or keep the package",
                all.join(", ")
            )));
        }
        match run_ok("apt-get", &apt_args(verb, &all), None, APT_ENV, locked) {
            Ok(_) => Vec::new(),
            Err(e) => fail(e),
        }
    }
}

impl Provider for PackageProvider {
    fn name(&self) -> &str {
        "dpkg"
    }

    fn observe(
        &self,
        _kind: &str,
        targets: &[&Target],
        _cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        let status = match self.status() {
            Ok(s) => s,
            Err(e) => return targets.iter().map(|_| Err(e.clone())).collect(),
        };
        // One `apt-cache policy` for every package that should be the latest.
        let latest: Vec<String> = targets
            .iter()
            .filter(|t| ensure(t) == "latest")
            .filter_map(|t| t.identity_str("name").map(str::to_string))
            .collect();
        let candidates = if latest.is_empty() {
            BTreeMap::new()
        } else {
            let mut args = vec!["policy".to_string(), "--".to_string()];
            args.extend(latest);
            match run("apt-cache", &args, None, &[]) {
                Ok(r) => parse_policy(&r.stdout),
                Err(e) => return targets.iter().map(|_| Err(e.clone())).collect(),
            }
        };
        targets
            .iter()
            .map(|t| {
                let name = t.identity_str("name").unwrap_or_default();
                Ok(match status.get(name) {
                    Some(r) => Observed::Present(Self::fields(r, candidates.get(name))),
                    None => Observed::Absent,
                })
            })
            .collect()
    }

    fn diff(&self, _kind: &str, target: &Target, observed: &Observed, _cx: &Context<'_>) -> Vec<Change> {
        let word = |w: &str| Value::Enum(Arc::from(w));
        let seen = match observed {
            Observed::Present(f) => match f.get("ensure") {
                Some(Value::Enum(e)) => e.to_string(),
                _ => "absent".into(),
            },
            Observed::Absent => "purged".into(),
        };
        let installed = observed.field("version").cloned();
        let shown_state = |s: &str| if s == "purged" { "not installed".to_string() } else { s.to_string() };
        let change = |want: &str| {
            Change::new("ensure", Some(word(&seen)), word(want)).shown(Some(shown_state(&seen)), want)
        };
        match ensure(target) {
            "absent" if seen == "present" => vec![change("absent")],
            "purged" if seen != "purged" => vec![change("purged")],
            "absent" | "purged" => Vec::new(),
            want => {
                let mut out = Vec::new();
                if seen != "present" {
                    out.push(change(if want == "latest" { "latest" } else { "present" }));
                }
                let wanted_version = if want == "latest" {
                    observed.field("candidate").cloned()
                } else {
                    target.intended.get("version").cloned()
                };
                if let Some(v) = wanted_version
                    && installed.as_ref() != Some(&v)
                {
                    out.push(Change::new("version", installed.clone(), v));
                }
                out
            }
        }
    }

    fn verb(&self, _kind: &str, target: &Target, observed: &Observed) -> Verb {
        match (ensure(target), observed.field("ensure")) {
            ("absent" | "purged", _) => Verb::Delete,
            (_, Some(Value::Enum(e))) if e.as_ref() == "present" => Verb::Update,
            _ => Verb::Create,
        }
    }

    fn apply(
        &self,
        kind: &str,
        target: &Target,
        _observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<Applied, ProviderError> {
        if matches!(ensure(target), "absent" | "purged") {
            return self.delete(kind, target, cx);
        }
        let name =
            target.identity_str("name").ok_or_else(|| ProviderError::permanent("a package needs a name"))?;
        let version = text(target, "version");
        if ensure(target) == "latest" && version.is_some() {
            return Err(ProviderError::permanent(
                "`ensure = latest` and a `version` pin contradict each other",
            ));
        }
        let arg = match version {
            Some(v) => format!("{name}={v}"),
            None => name.to_string(),
        };
        lock(&self.pending).install.push((target.id.clone(), arg));
        Ok(Applied::default())
    }

    fn delete(&self, _kind: &str, target: &Target, _cx: &Context<'_>) -> Result<Applied, ProviderError> {
        let name =
            target.identity_str("name").ok_or_else(|| ProviderError::permanent("a package needs a name"))?;
        let mut pending = lock(&self.pending);
        let list = if ensure(target) == "purged" { &mut pending.purge } else { &mut pending.remove };
        list.push((target.id.clone(), name.to_string()));
        Ok(Applied::default())
    }

    fn flush(&self, _cx: &Context<'_>) -> Result<Vec<(String, ProviderError)>, ProviderError> {
        let pending = std::mem::take(&mut *lock(&self.pending));
        if pending.install.is_empty() && pending.remove.is_empty() && pending.purge.is_empty() {
            return Ok(Vec::new());
        }
        if let Err(e) = self.repair() {
            let ids = pending.install.iter().chain(&pending.remove).chain(&pending.purge);
            return Ok(ids.map(|(id, _)| (id.clone(), e.clone())).collect());
        }
        let mut failures = self.install(pending.install);
        failures.extend(self.remove("remove", pending.remove));
        failures.extend(self.remove("purge", pending.purge));
        Ok(failures)
    }

    fn discover(
        &self,
        _kind: &str,
        _under: &str,
        _cx: &Context<'_>,
    ) -> Result<Vec<Discovered>, ProviderError> {
        Ok(self
            .status()?
            .into_iter()
            .filter(|(key, r)| *key == r.name && r.state == "installed")
            .map(|(_, r)| Discovered {
                name: r.name.clone(),
                identity: Fields::from([("name".to_string(), Value::str(r.name.as_str()))]),
                fields: Self::fields(&r, None),
            })
            .collect())
    }

    fn watch_paths(&self, _kind: &str, _target: &Target, _cx: &Context<'_>) -> Vec<PathBuf> {
        vec![self.admin.join("status")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_and_apt_policy_parse() {
        let status = "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n\
                      Package: b\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 2\n\n\
                      Package: c\nStatus: purge ok not-installed\nArchitecture: all\n";
        let s = parse_status(status);
        assert_eq!(s["a"].version, "1.0");
        assert_eq!(s["a:amd64"].state, "installed");
        assert_eq!(s["b"].state, "config-files");
        assert!(!s.contains_key("c"));
        let p = parse_policy(
            "a:\n  Installed: 1.0\n  Candidate: 1.1\n  Version table:\nb:\n  Installed: (none)\n  Candidate: (none)\n",
        );
        assert_eq!(p.get("a").map(String::as_str), Some("1.1"));
        assert_eq!(p.get("b"), None);
    }
}
