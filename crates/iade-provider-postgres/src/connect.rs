//! Connections: one per instance and database, made from the instance's `url` (a libpq URI),
//! its `password` secret and its `tls_ca` (`iade-pg` makes them as libpq would), and made
//! again when the server closed it.

use std::sync::Arc;

use iade_provider::{Context, Fields, ProviderError, reveal};

use crate::{PostgresProvider, classify, lock};

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
        let mut config = iade_pg::config(&url).map_err(|e| {
            ProviderError::permanent(format!("`provider postgres {instance}`: the url is {e}"))
        })?;
        if let Some(p) = settings.get("password") {
            config.password(reveal(p, cx.secrets)?);
        }
        config.application_name("iade");
        if let Some(db) = db {
            config.dbname(db);
        }
        let what = match db {
            Some(db) => format!("cannot connect to database `{db}` of `{instance}`"),
            None => format!("cannot connect to `{instance}`"),
        };
        // One connector per instance: the CA file is read once.
        let tls = || {
            if let Some(c) = lock(&self.tls).get(instance).cloned() {
                return Ok(c);
            }
            let ca = match settings.get("tls_ca") {
                Some(ca) => {
                    let ca = reveal(ca, cx.secrets).map_err(|e| e.message)?;
                    Some(iade_provider::resolve_path(cx.stack_dir, std::path::Path::new(&ca)))
                }
                None => None,
            };
            let c = iade_pg::tls(ca.as_deref())?;
            lock(&self.tls).insert(instance.to_string(), c.clone());
            Ok(c)
        };
        iade_pg::connect(&config, tls).map_err(|e| match e {
            iade_pg::ConnectError::Tls(m) => {
                ProviderError::permanent(format!("`provider postgres {instance}`: {m}"))
            }
            iade_pg::ConnectError::Postgres(e) => classify(&what, &e),
        })
    }
}
