//! Connections: one per instance and database, made from the instance's `url` (a libpq URI),
//! its `password` secret and its TLS settings, and made again when the server closed it.

use std::time::Duration;

use std::sync::Arc;

use iade_provider::{Context, Fields, ProviderError, reveal};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;

use crate::{PostgresProvider, classify, lock};

/// How long a connection attempt may take before it counts as a (transient) failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS connector of an instance. With `tls_ca`, the server's certificate must chain to
/// that CA and name the host (libpq's `verify-full`); without it, as libpq's `sslmode=prefer`
/// and `require` do, the connection is encrypted when the URL asks for it but the certificate
/// is not verified.
fn tls(instance: &str, settings: &Fields, cx: &Context<'_>) -> Result<MakeTlsConnector, ProviderError> {
    let fail = |e: openssl::error::ErrorStack| {
        ProviderError::permanent(format!("`provider postgres {instance}`: cannot set up TLS: {e}"))
    };
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(fail)?;
    match settings.get("tls_ca") {
        Some(ca) => {
            let ca = reveal(ca, cx.secrets)?;
            let path = iade_provider::resolve_path(cx.stack_dir, std::path::Path::new(&ca));
            builder.set_ca_file(&path).map_err(|e| {
                ProviderError::permanent(format!(
                    "`provider postgres {instance}`: cannot read the CA certificates `{}`: {e}",
                    path.display()
                ))
            })?;
            builder.set_verify(SslVerifyMode::PEER);
        }
        None => builder.set_verify(SslVerifyMode::NONE),
    }
    Ok(MakeTlsConnector::new(builder.build()))
}

impl PostgresProvider {
    /// Runs `f` with a connection of the instance to database `db` (its URL's when `None`),
    /// connecting (again) when needed.
    pub(crate) fn with_client<T>(
        &self,
        instance: &str,
        settings: &Fields,
        db: Option<&str>,
        cx: &Context<'_>,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let key = (instance.to_string(), db.map(str::to_string));
        // Each connection has its own lock: calls on two databases run at once.
        let slot = Arc::clone(lock(&self.clients).entry(key).or_default());
        let mut slot = lock(&slot);
        if slot.as_ref().is_none_or(postgres::Client::is_closed) {
            *slot = Some(self.connect(instance, settings, db, cx)?);
        }
        let client = slot.as_mut().ok_or_else(|| ProviderError::transient("lost the connection"))?;
        let result = f(client);
        if client.is_closed() {
            *slot = None;
        }
        result
    }
}

impl PostgresProvider {
    fn connect(
        &self,
        instance: &str,
        settings: &Fields,
        db: Option<&str>,
        cx: &Context<'_>,
    ) -> Result<postgres::Client, ProviderError> {
        let url = match settings.get("url") {
            Some(v) => reveal(v, cx.secrets)?,
            None => {
                return Err(ProviderError::permanent(format!("`provider postgres {instance}` has no `url`")));
            }
        };
        let mut config: postgres::Config = libpq_hosts(&url).parse().map_err(|e| {
            ProviderError::permanent(format!(
                "`provider postgres {instance}`: the url is not a libpq URI or key=value string: {e}"
            ))
        })?;
        if let Some(p) = settings.get("password") {
            config.password(reveal(p, cx.secrets)?);
        }
        config.application_name("iade");
        if let Some(db) = db {
            config.dbname(db);
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        let what = match db {
            Some(db) => format!("cannot connect to database `{db}` of `{instance}`"),
            None => format!("cannot connect to `{instance}`"),
        };
        // A Unix socket is never encrypted, and loading the system's certificates costs more than
        // the whole observation of a stack: TLS is set up only when a TCP host may use it.
        let tcp = config.get_hosts().iter().any(|h| matches!(h, postgres::config::Host::Tcp(_)));
        if !tcp || config.get_ssl_mode() == postgres::config::SslMode::Disable {
            return config.connect(postgres::NoTls).map_err(|e| classify(&what, &e));
        }
        // One connector per instance: the CA file is read once.
        let cached = lock(&self.tls).get(instance).cloned();
        let connector = match cached {
            Some(c) => c,
            None => {
                let c = tls(instance, settings, cx)?;
                lock(&self.tls).insert(instance.to_string(), c.clone());
                c
            }
        };
        config.connect(connector).map_err(|e| classify(&what, &e))
    }
}

/// A libpq URI whose `host` query parameter replaces the host of its authority, as libpq
/// reads it (`postgres://user@localhost/db?host=/run/postgresql` is the socket only); the
/// client crate would try both, and could reach another server on the TCP host first.
fn libpq_hosts(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((_, query)) = rest.split_once('?') else { return url.to_string() };
    if !query.split('&').any(|p| p.starts_with("host=")) {
        return url.to_string();
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, hosts) = match authority.rsplit_once('@') {
        Some((user, hosts)) => (format!("{user}@"), hosts),
        None => (String::new(), authority),
    };
    // Keep the port: it names the socket (`.s.PGSQL.PORT`).
    let port = hosts.rsplit_once(':').map(|(_, p)| p).filter(|p| p.chars().all(|c| c.is_ascii_digit()));
    let query_port = query.split('&').any(|p| p.starts_with("port="));
    let tail = match port {
        Some(p) if !query_port && !p.is_empty() => format!("{tail}&port={p}"),
        _ => tail.to_string(),
    };
    format!("{scheme}://{user}{tail}")
}

#[cfg(test)]
mod tests {
    use super::libpq_hosts;

    #[test]
    fn a_host_parameter_replaces_the_authoritys_host_and_keeps_its_port() {
        assert_eq!(
            libpq_hosts("postgres://postgres@localhost/postgres?host=/tmp/s"),
            "postgres://postgres@/postgres?host=/tmp/s"
        );
        assert_eq!(
            libpq_hosts("postgres://postgres@localhost:5433/postgres?host=/tmp/s"),
            "postgres://postgres@/postgres?host=/tmp/s&port=5433"
        );
        assert_eq!(libpq_hosts("postgres://u@db.internal:5432/app"), "postgres://u@db.internal:5432/app");
        let config: postgres::Config =
            libpq_hosts("postgres://postgres@localhost:5433/postgres?host=/tmp/s").parse().expect("parses");
        assert_eq!(config.get_hosts().len(), 1);
        assert_eq!(config.get_ports(), &[5433]);
    }
}
