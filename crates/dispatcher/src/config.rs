//! Where the dispatcher table and Kamailio's JSON-RPC live, and how long to wait for them.

use std::time::Duration;

use crate::error::{DispatcherError, Result};
use crate::tls::DbTls;

/// Environment variable holding the PostgreSQL URL of the database with the `dispatcher` table.
pub const DB_URL_ENV: &str = "PAIRSCALE_DISPATCHER_DB_URL";
/// Environment variable holding one Kamailio's JSON-RPC URL (`http://host:port/RPC`).
pub const RPC_URL_ENV: &str = "PAIRSCALE_KAMAILIO_RPC_URL";

/// Connection settings for [`crate::KamailioDispatcher`].
///
/// The database settings are `tokio_postgres`'s own parsed [`tokio_postgres::Config`]: one
/// parser of PostgreSQL connection strings for the whole project, and a `Debug` that never
/// shows the password.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// The database with the `dispatcher` table.
    pub db: tokio_postgres::Config,
    /// TLS to the database: [`DbTls::Disable`] unless set ([`Self::with_tls`]). A deployment
    /// sets it from its configuration (the drain function: verify-full unless told otherwise).
    pub db_tls: DbTls,
    /// The jsonrpcs endpoint over xhttp (e.g. `http://127.0.0.1:5080/RPC`) of every Kamailio
    /// that reads the table: an HA pair shares one table but routes from two lists in memory,
    /// so each instance takes, and confirms, every change. At least one, none twice.
    pub rpc_urls: Vec<String>,
    /// Bound on connecting to PostgreSQL and on each statement.
    pub db_timeout: Duration,
    /// Bound on each JSON-RPC request, connect included.
    pub rpc_timeout: Duration,
    /// How many times a state change is checked with `dispatcher.list` before giving up.
    pub verify_attempts: u32,
    /// Pause between two checks.
    pub verify_interval: Duration,
}

impl DispatcherConfig {
    /// Settings for one Kamailio with the default timeouts (5 s each, 5 checks 200 ms apart).
    pub fn with_db(db: tokio_postgres::Config, rpc_url: impl Into<String>) -> Self {
        Self {
            db,
            db_tls: DbTls::Disable,
            rpc_urls: vec![rpc_url.into()],
            db_timeout: Duration::from_secs(5),
            rpc_timeout: Duration::from_secs(5),
            verify_attempts: 5,
            verify_interval: Duration::from_millis(200),
        }
    }

    /// `db_url`: `postgres://user:password@host:port/db` or the `key=value` form. A string
    /// that does not parse is refused without being echoed (it may hold a password).
    pub fn new(db_url: &str, rpc_url: impl Into<String>) -> Result<Self> {
        Ok(Self::with_db(parse_db_url(db_url)?, rpc_url))
    }

    /// The same settings with the database reached over `tls`.
    pub fn with_tls(self, tls: DbTls) -> Self {
        Self {
            db_tls: tls,
            ..self
        }
    }

    /// The same settings for every Kamailio in `rpc_urls` (checked by
    /// [`crate::KamailioDispatcher::new`]).
    pub fn with_rpc_urls<S: Into<String>>(self, rpc_urls: impl IntoIterator<Item = S>) -> Self {
        Self {
            rpc_urls: rpc_urls.into_iter().map(Into::into).collect(),
            ..self
        }
    }

    /// Reads [`DB_URL_ENV`] and [`RPC_URL_ENV`], naming the one that is missing.
    pub fn from_env() -> Result<Self> {
        let get = |name: &'static str| {
            std::env::var(name).map_err(|_| DispatcherError::InvalidInput {
                field: name,
                value: String::new(),
                reason: "environment variable is not set",
            })
        };
        Self::new(&get(DB_URL_ENV)?, get(RPC_URL_ENV)?)
    }
}

/// A PostgreSQL connection string, parsed by `tokio_postgres`.
pub fn parse_db_url(db_url: &str) -> Result<tokio_postgres::Config> {
    db_url.parse().map_err(|_| DispatcherError::InvalidInput {
        field: "db_url",
        value: "<not shown>".into(),
        reason: "not a PostgreSQL connection string",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        for url in [
            "postgres://kam:hunter2@127.0.0.1/kamailio",
            "postgres://kam@db/kamailio?password=hunter2&sslmode=disable",
            "host=db user=kam password='hun\\'ter2' dbname=kamailio",
        ] {
            let config = DispatcherConfig::new(url, "http://127.0.0.1:5080/RPC").expect(url);
            assert!(
                config.db.get_password().is_some(),
                "{url}: no password parsed"
            );
            let shown = format!("{config:?}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("ter2"),
                "{shown}"
            );
            assert!(shown.contains("kam"), "{shown}");
        }
    }

    #[test]
    fn a_connection_string_that_does_not_parse_is_not_echoed() {
        let e = DispatcherConfig::new("postgres://kam:hunter2@db:notaport/k", "http://x/RPC")
            .expect_err("bad port");
        match e {
            DispatcherError::InvalidInput { field, value, .. } => {
                assert_eq!(field, "db_url");
                assert!(!value.contains("hunter2"), "{value}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
}
