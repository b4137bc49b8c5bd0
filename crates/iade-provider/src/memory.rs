//! An in-memory provider: objects in a map, failures injectable. For engine tests that need
//! no filesystem.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{Context, Fields, Observed, Provider, ProviderError, Target};

/// Objects keyed by `(kind, identity text)`.
#[derive(Debug, Default)]
pub struct MemoryProvider {
    pub objects: Mutex<BTreeMap<(String, String), Fields>>,
    /// Calls to `apply` and `delete`, in order, as `apply file.a`.
    pub calls: Mutex<Vec<String>>,
    /// Resource ids whose next `apply` fails with this error.
    pub fail: Mutex<BTreeMap<String, ProviderError>>,
}

fn key(target: &Target) -> (String, String) {
    let identity: Vec<String> = target.identity.values().map(|v| v.to_string()).collect();
    (target.kind.clone(), identity.join("\u{0}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        targets
            .iter()
            .map(|t| Ok(objects.get(&key(t)).map_or(Observed::Absent, |f| Observed::Present(f.clone()))))
            .collect()
    }

    fn apply(
        &self,
        _kind: &str,
        target: &Target,
        _observed: &Observed,
        _cx: &Context<'_>,
    ) -> Result<(), ProviderError> {
        lock(&self.calls).push(format!("apply {}", target.id));
        if let Some(e) = lock(&self.fail).remove(&target.id) {
            return Err(e);
        }
        let mut objects = lock(&self.objects);
        let entry = objects.entry(key(target)).or_default();
        for (k, v) in &target.intended {
            entry.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    fn delete(&self, _kind: &str, target: &Target, _cx: &Context<'_>) -> Result<(), ProviderError> {
        lock(&self.calls).push(format!("delete {}", target.id));
        lock(&self.objects).remove(&key(target));
        Ok(())
    }

    fn discover(&self, kind: &str, _under: &str, _cx: &Context<'_>) -> Result<Vec<Fields>, ProviderError> {
        Ok(lock(&self.objects).iter().filter(|((k, _), _)| k == kind).map(|(_, f)| f.clone()).collect())
    }
}
