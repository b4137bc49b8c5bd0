//! An in-memory provider: objects in a map, failures injectable, and every hook of the contract
//! configurable, for engine tests that need no filesystem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use iade_intent::Value;

use crate::{
    Applied, Change, Context, Discovered, Fields, Observed, Output, Provider, ProviderError, Target, Verb,
    default_diff,
};

/// Objects keyed by `(kind, identity text)`.
#[derive(Debug, Default)]
pub struct MemoryProvider {
    pub objects: Mutex<BTreeMap<(String, String), Fields>>,
    /// Calls to `apply` and `delete`, in order, as `apply file.a`.
    pub calls: Mutex<Vec<String>>,
    /// Resource ids whose next `apply` fails with this error.
    pub fail: Mutex<BTreeMap<String, ProviderError>>,
    /// Kinds whose corrections are commands that run (`Verb::Run`).
    pub run_kinds: Mutex<BTreeSet<String>>,
    /// `(resource id, field)` pairs whose comparison is unknown, with the reason.
    pub unknown: Mutex<BTreeMap<(String, String), String>>,
    /// A resource id that cannot be observed until the object of another resource exists (an
    /// `exec` whose working directory another resource creates).
    pub requires: Mutex<BTreeMap<String, (String, String)>>,
    /// What `apply` reports as printed output, by resource id.
    pub output: Mutex<BTreeMap<String, Output>>,
    /// Whether identities compare without regard to case (a canonical form).
    pub fold_case: AtomicBool,
}

fn identity_text(identity: &Fields) -> String {
    identity.values().map(|v| v.as_text().unwrap_or_else(|| v.to_string())).collect::<Vec<_>>().join("\u{0}")
}

fn key(target: &Target) -> (String, String) {
    (target.kind.clone(), identity_text(&target.identity))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryProvider {
    /// The object of `(kind, identity text)`, if it exists.
    pub fn object(&self, kind: &str, identity: &str) -> Option<Fields> {
        lock(&self.objects).get(&(kind.to_string(), identity.to_string())).cloned()
    }

    pub fn insert(&self, kind: &str, identity: &str, fields: Fields) {
        lock(&self.objects).insert((kind.to_string(), identity.to_string()), fields);
    }
}

impl Provider for MemoryProvider {
    fn name(&self) -> &str {
        "memory"
    }

    fn observe(
        &self,
        _kind: &str,
        targets: &[&Target],
        _cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>> {
        let objects = lock(&self.objects);
        let requires = lock(&self.requires);
        targets
            .iter()
            .map(|t| {
                if let Some((kind, identity)) = requires.get(&t.id)
                    && !objects.contains_key(&(kind.clone(), identity.clone()))
                {
                    return Err(ProviderError::permanent(format!("{kind} `{identity}` does not exist")));
                }
                Ok(objects.get(&key(t)).map_or(Observed::Absent, |f| Observed::Present(f.clone())))
            })
            .collect()
    }

    fn diff(&self, _kind: &str, target: &Target, observed: &Observed, _cx: &Context<'_>) -> Vec<Change> {
        let unknown = lock(&self.unknown);
        let mut known = target.clone();
        let mut out = Vec::new();
        for ((id, field), why) in unknown.iter() {
            if id == &target.id
                && let Some(v) = known.intended.remove(field)
            {
                out.push(Change::unknown(field.clone(), v, why.clone()));
            }
        }
        if matches!(observed, Observed::Absent) && target.wants_present() {
            out.push(Change::new("ensure", None, Value::Enum("present".into())));
        }
        if matches!(observed, Observed::Present(_)) && !target.wants_present() {
            out.push(Change::new(
                "ensure",
                Some(Value::Enum("present".into())),
                Value::Enum("absent".into()),
            ));
            return out;
        }
        out.extend(default_diff(&known, observed));
        out
    }

    fn verb(&self, kind: &str, target: &Target, observed: &Observed) -> Verb {
        if lock(&self.run_kinds).contains(kind) {
            return Verb::Run;
        }
        match (target.wants_present(), observed) {
            (false, _) => Verb::Delete,
            (true, Observed::Absent) => Verb::Create,
            (true, Observed::Present(_)) => Verb::Update,
        }
    }

    fn apply(
        &self,
        _kind: &str,
        target: &Target,
        _observed: &Observed,
        _cx: &Context<'_>,
    ) -> Result<Applied, ProviderError> {
        lock(&self.calls).push(format!("apply {}", target.id));
        let output = lock(&self.output).get(&target.id).cloned();
        if let Some(mut e) = lock(&self.fail).remove(&target.id) {
            e.output = e.output.or(output);
            return Err(e);
        }
        if !target.wants_present() {
            lock(&self.objects).remove(&key(target));
            return Ok(Applied { output });
        }
        let mut objects = lock(&self.objects);
        let entry = objects.entry(key(target)).or_default();
        for (k, v) in &target.intended {
            entry.insert(k.clone(), v.clone());
        }
        Ok(Applied { output })
    }

    fn delete(&self, _kind: &str, target: &Target, _cx: &Context<'_>) -> Result<Applied, ProviderError> {
        lock(&self.calls).push(format!("delete {}", target.id));
        lock(&self.objects).remove(&key(target));
        Ok(Applied::default())
    }

    fn discover(
        &self,
        kind: &str,
        _under: &str,
        _cx: &Context<'_>,
    ) -> Result<Vec<Discovered>, ProviderError> {
        Ok(lock(&self.objects)
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((_, name), fields)| Discovered {
                name: name.clone(),
                identity: Fields::new(),
                fields: fields.clone(),
            })
            .map(|mut d| {
                d.identity.insert("name".into(), Value::str(d.name.as_str()));
                d
            })
            .collect())
    }

    fn canonical_identity(&self, _kind: &str, identity: &Fields, _cx: &Context<'_>) -> Fields {
        if !self.fold_case.load(Ordering::Relaxed) {
            return identity.clone();
        }
        identity
            .iter()
            .map(|(k, v)| match v {
                Value::Str(s) => (k.clone(), Value::str(s.to_lowercase().as_str())),
                other => (k.clone(), other.clone()),
            })
            .collect()
    }

    fn contains(&self, _kind: &str, identity: &Fields, under: &str, _cx: &Context<'_>) -> bool {
        identity_text(identity).starts_with(under)
    }

    fn watch_paths(&self, kind: &str, target: &Target, _cx: &Context<'_>) -> Vec<PathBuf> {
        vec![PathBuf::from(format!("/memory/{kind}/{}", identity_text(&target.identity)))]
    }

    fn is_artifact(&self, path: &Path) -> bool {
        path.to_string_lossy().ends_with(".partial")
    }
}
