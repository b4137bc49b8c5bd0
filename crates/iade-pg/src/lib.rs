//! PostgreSQL connections made as libpq makes them, shared by the `postgres` provider and the
//! shared journal: a libpq URI read as libpq reads it, TLS set up only where it can apply, and
//! a URL shown without its password.

use std::path::Path;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
pub use postgres_openssl::MakeTlsConnector;

/// How long a connection attempt may take before it counts as a (transient) failure.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A libpq URI (or key=value string) as a client configuration. A `host` query parameter
/// replaces the authority's host, as libpq reads it (`postgres://user@localhost/db?host=/run/
/// postgresql` is the socket only): the client crate would try both, and could reach another
/// server on the TCP host first.
pub fn config(url: &str) -> Result<postgres::Config, String> {
    let mut config: postgres::Config =
        libpq_hosts(url).parse().map_err(|e| format!("not a libpq URI or key=value string: {e}"))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    Ok(config)
}

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

/// A TLS connector. With a CA file, the server's certificate must chain to it and name the
/// host (libpq's `verify-full`); without one, as libpq's `sslmode=prefer` and `require` do,
/// the connection is encrypted but the certificate is not verified.
pub fn tls(ca: Option<&Path>) -> Result<MakeTlsConnector, String> {
    let mut builder =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| format!("cannot set up TLS: {e}"))?;
    match ca {
        Some(path) => {
            builder
                .set_ca_file(path)
                .map_err(|e| format!("cannot read the CA certificates `{}`: {e}", path.display()))?;
            builder.set_verify(SslVerifyMode::PEER);
        }
        None => builder.set_verify(SslVerifyMode::NONE),
    }
    Ok(MakeTlsConnector::new(builder.build()))
}

/// Whether a connection with `config` may use TLS: a TCP host and an `sslmode` other than
/// `disable` (a Unix socket is never encrypted).
pub fn wants_tls(config: &postgres::Config) -> bool {
    config.get_hosts().iter().any(|h| matches!(h, postgres::config::Host::Tcp(_)))
        && config.get_ssl_mode() != postgres::config::SslMode::Disable
}

/// Connects, with TLS from `tls` only where it may apply: loading certificates costs more
/// than a whole observation, so a socket never pays for it.
pub fn connect(
    config: &postgres::Config,
    tls: impl FnOnce() -> Result<MakeTlsConnector, String>,
) -> Result<postgres::Client, ConnectError> {
    if wants_tls(config) {
        let connector = tls().map_err(ConnectError::Tls)?;
        config.connect(connector).map_err(ConnectError::Postgres)
    } else {
        config.connect(postgres::NoTls).map_err(ConnectError::Postgres)
    }
}

/// Why a connection failed.
#[derive(Debug)]
pub enum ConnectError {
    /// TLS could not be set up (a CA file that cannot be read).
    Tls(String),
    Postgres(postgres::Error),
}

/// An error and its sources, as one line: the client's errors say what failed, their sources
/// why (`error performing TLS handshake: … certificate verify failed`).
pub fn describe(e: &postgres::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        source = s.source();
    }
    message
}

/// A libpq URI without its password, if it has one: what messages and imported sources may
/// show.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{config, libpq_hosts, without_password};

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
        let c = config("postgres://postgres@localhost:5433/postgres?host=/tmp/s").expect("parses");
        assert_eq!(c.get_hosts().len(), 1);
        assert_eq!(c.get_ports(), &[5433]);
    }

    #[test]
    fn a_url_loses_its_password_and_keeps_the_rest() {
        assert_eq!(
            without_password("postgres://admin:s3cret@db:5432/postgres?sslmode=require"),
            "postgres://admin@db:5432/postgres?sslmode=require"
        );
        assert_eq!(
            without_password("postgres://postgres@localhost/postgres?host=/tmp/x@y"),
            "postgres://postgres@localhost/postgres?host=/tmp/x@y"
        );
        assert_eq!(without_password("host=/tmp dbname=postgres"), "host=/tmp dbname=postgres");
    }
}
