//! Connections: one per instance and database, made from the instance's `url` (a libpq URI),
//! its `password` secret and its TLS settings, and made again when the server closed it.

use std::time::Duration;

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
        let mut clients = lock(&self.clients);
        if clients.get(&key).is_none_or(postgres::Client::is_closed) {
            let client = connect(instance, settings, db, cx)?;
            clients.insert(key.clone(), client);
        }
        let client = clients.get_mut(&key).ok_or_else(|| ProviderError::transient("lost the connection"))?;
        let result = f(client);
        if client.is_closed() {
            clients.remove(&key);
        }
        result
    }
}

fn connect(
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
    let mut config: postgres::Config = url.parse().map_err(|e| {
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
    config.connect(tls(instance, settings, cx)?).map_err(|e| classify(&what, &e))
}
