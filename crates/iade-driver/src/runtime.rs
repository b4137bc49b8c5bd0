//! What every run on this host shares: the provider registry, the secrets, the host's name, and
//! the flag that cancels a run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use iade_engine::Providers;
use iade_provider::{ProviderError, Secrets};

/// Secrets from the environment: `secret("DB_PASSWORD")` reads `IADE_SECRET_DB_PASSWORD`.
#[derive(Default)]
pub struct EnvSecrets {
    values: HashMap<String, String>,
}

impl std::fmt::Debug for EnvSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.values.keys().collect();
        names.sort();
        f.debug_struct("EnvSecrets").field("names", &names).finish()
    }
}

impl EnvSecrets {
    pub fn from_env() -> Self {
        let mut values = HashMap::new();
        for (k, v) in std::env::vars_os() {
            if let (Some(k), Some(v)) = (k.to_str(), v.to_str())
                && let Some(name) = k.strip_prefix("IADE_SECRET_")
            {
                values.insert(name.to_string(), v.to_string());
            }
        }
        EnvSecrets { values }
    }

    /// The names of the secrets given, sorted (never their values).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.values.keys().cloned().collect();
        names.sort();
        names
    }
}

impl Secrets for EnvSecrets {
    fn resolve(&self, name: &str) -> Result<String, ProviderError> {
        self.values.get(name).cloned().ok_or_else(|| {
            ProviderError::permanent(format!(
                "secret `{name}` is not set (give it as the environment variable IADE_SECRET_{name})"
            ))
        })
    }
}

/// The providers built into this iade.
pub fn builtin_providers() -> Providers {
    Providers::new()
        .with(Arc::new(iade_provider_local::LocalProvider::new()))
        .with(Arc::new(iade_provider_local::ExecProvider::new()))
        .with(Arc::new(iade_provider_local::AccountsProvider::new()))
        .with(Arc::new(iade_provider_local::PackageProvider::new()))
        .with(Arc::new(iade_provider_postgres::PostgresProvider::new()))
}

/// This host's name, as leases and runs record it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// This host's id in stack ids and leases: `IADE_HOST_ID` when set (hosts a fleet names
/// its own way, or tests that play several hosts), else the host name.
pub fn host_id() -> String {
    std::env::var_os("IADE_HOST_ID")
        .and_then(|h| h.into_string().ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(host_name)
}

/// What runs share: providers, secrets, the host, and cancellation.
pub struct Runtime {
    pub providers: Providers,
    pub secrets: Arc<dyn Secrets>,
    /// Set to cancel: running commands are killed with their process groups, nothing is
    /// retried, and the run is recorded before it returns.
    pub cancelled: Arc<AtomicBool>,
    /// This host's id in stack ids and leases: `IADE_HOST_ID`, else the host name.
    pub host: String,
    /// How long a lease lasts without renewal: `IADE_LEASE_TTL` (seconds), else
    /// [`LEASE_TTL`](crate::LEASE_TTL). Engines renew every third of it, and stop changing
    /// the environment once four fifths of it passed without a renewal.
    pub lease_ttl: std::time::Duration,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("providers", &self.providers)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// The built-in providers, secrets from the environment, this host (`IADE_HOST_ID`
    /// overrides its name), and the lease's lifetime (`IADE_LEASE_TTL`, in seconds).
    pub fn from_env() -> Runtime {
        let secrets = EnvSecrets::from_env();
        let host = host_id();
        let lease_ttl = std::env::var_os("IADE_LEASE_TTL")
            .and_then(|t| t.into_string().ok())
            .and_then(|t| t.trim().parse::<u64>().ok())
            .filter(|s| *s >= 1)
            .map_or(crate::LEASE_TTL, std::time::Duration::from_secs);
        Runtime {
            providers: builtin_providers(),
            secrets: Arc::new(secrets),
            cancelled: Arc::new(AtomicBool::new(false)),
            host,
            lease_ttl,
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// On SIGINT or SIGTERM, sets `cancelled` and calls `then` (once), from a thread of its own so
/// no signal is lost between two turns of a loop.
pub fn cancel_on_signal(cancelled: Arc<AtomicBool>, then: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
        });
        cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
        then();
    });
}
