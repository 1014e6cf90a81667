//! The `dispatcher` table in PostgreSQL: the persistent half of every change.
//!
//! One short connection per operation: changes are rare (a few per scaling event), and a
//! connection that is not kept cannot go stale between them.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{debug, instrument};

use crate::destination::{Destination, DUID_ATTR};
use crate::error::{DispatcherError, Result};
use crate::tls::DbTls;

const SERVICE: &str = "postgresql";

/// Kamailio's destination flags (the `flags` column).
const FLAG_INACTIVE: i32 = 1;
const FLAG_TRYING: i32 = 2;
const FLAG_DISABLED: i32 = 4;
/// The state bits; the probing bit (8) and anything above are left as they are.
const STATE_BITS: i32 = FLAG_INACTIVE | FLAG_TRYING | FLAG_DISABLED;

/// Marks rows this crate wrote, for people reading the table.
const DESCRIPTION: &str = "pairscale";

#[derive(Clone)]
pub(crate) struct DispatcherTable {
    config: tokio_postgres::Config,
    /// verify-full's connector, made once (it shares the rustls configuration); `None`: plain.
    tls: Option<MakeRustlsConnect>,
    timeout: Duration,
}

impl std::fmt::Debug for DispatcherTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatcherTable")
            .field("config", &self.config)
            .field(
                "tls",
                &if self.tls.is_some() {
                    "verify-full"
                } else {
                    "disable"
                },
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What happened to an insert-if-absent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    Inserted,
    /// A row with this set id and URI exists; its `duid`, if it has one.
    Existing(Option<String>),
}

/// What happened to an update or delete keyed on (set id, URI, duid).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Keyed {
    Done,
    Absent,
    /// A row with this set id and URI exists, for another pair.
    OtherPair(String),
}

/// Connects with `tls` and spawns the connection's driver. A refused login is the database's
/// answer; anything else (no route, a certificate that does not verify, no TLS on the server)
/// is the database being unreachable as configured, with every cause in the chain named.
async fn open<T>(config: &tokio_postgres::Config, tls: T) -> Result<Client>
where
    T: MakeTlsConnect<Socket> + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, connection) = config.connect(tls).await.map_err(|e| {
        if e.as_db_error().is_some() {
            DispatcherError::Database(e)
        } else {
            DispatcherError::Unreachable {
                service: SERVICE,
                detail: chain(&e),
            }
        }
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!(error = %e, "dispatcher table connection closed with an error");
        }
    });
    Ok(client)
}

/// An error and its sources, "outer: inner: ...": tokio-postgres says "error performing TLS
/// handshake" and leaves the reason (an unknown issuer, a name mismatch) to its source.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let s = cause.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        next = cause.source();
    }
    out
}

impl DispatcherTable {
    pub(crate) fn new(mut config: tokio_postgres::Config, tls: DbTls, timeout: Duration) -> Self {
        config.connect_timeout(timeout);
        // Whatever the URL said: verify-full never falls back to plain text, and disable
        // never starts a handshake it would not check.
        let tls = match tls {
            DbTls::Disable => None,
            DbTls::VerifyFull(client) => Some(MakeRustlsConnect::new((*client).clone())),
        };
        config.ssl_mode(if tls.is_some() {
            SslMode::Require
        } else {
            SslMode::Disable
        });
        Self {
            config,
            tls,
            timeout,
        }
    }

    /// A connection, its driver spawned: plain or verified TLS as configured.
    async fn connect(&self) -> Result<Client> {
        match &self.tls {
            None => open(&self.config, NoTls).await,
            Some(tls) => open(&self.config, tls.clone()).await,
        }
    }

    /// Connects, runs `op` and drops the connection, all within the timeout.
    async fn with_client<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let work = async {
            let client = self.connect().await?;
            // The client is moved into `op` and dropped there, so the driver ends by itself.
            op(client).await
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| DispatcherError::timeout(SERVICE, self.timeout))?
    }

    #[instrument(level = "debug", skip_all, fields(set_id = d.set_id, uri = %d.uri))]
    pub(crate) async fn insert_if_absent(&self, d: &Destination) -> Result<Insert> {
        let attrs = d.attrs_string();
        self.with_client(|client| async move {
            let inserted = client
                .query_opt(
                    "INSERT INTO dispatcher (setid, destination, flags, priority, attrs, description) \
                     VALUES ($1, $2, 0, $3, $4, $5) \
                     ON CONFLICT (setid, destination) DO NOTHING RETURNING id",
                    &[&d.set_id, &d.uri, &d.priority, &attrs, &DESCRIPTION],
                )
                .await
                .map_err(DispatcherError::Database)?;
            if inserted.is_some() {
                return Ok(Insert::Inserted);
            }
            let existing = client
                .query_opt(
                    "SELECT attrs FROM dispatcher WHERE setid = $1 AND destination = $2",
                    &[&d.set_id, &d.uri],
                )
                .await
                .map_err(DispatcherError::Database)?;
            match existing {
                Some(row) => Ok(Insert::Existing(duid_of(row.get(0)))),
                // Deleted between the two statements: the caller may simply try again.
                None => Err(DispatcherError::NotVerified {
                    set_id: d.set_id,
                    uri: d.uri.clone(),
                    expected: "a row in the dispatcher table",
                    seen: None,
                }),
            }
        })
        .await
    }

    /// Sets or clears the disabled state in `flags` of the row owned by `d.pair_id`.
    #[instrument(level = "debug", skip_all, fields(set_id = d.set_id, uri = %d.uri, disabled))]
    pub(crate) async fn set_disabled(&self, d: &Destination, disabled: bool) -> Result<Keyed> {
        let state = if disabled { FLAG_DISABLED } else { 0 };
        let duid = format!("{DUID_ATTR}={}", d.pair_id);
        self.with_client(|client| async move {
            let sql = "UPDATE dispatcher SET flags = (flags & ~$4::int4) | $5::int4 \
                       WHERE setid = $1 AND destination = $2 AND split_part(attrs, ';', 1) = $3";
            execute_keyed(
                &client,
                d,
                sql,
                &[&d.set_id, &d.uri, &duid, &STATE_BITS, &state],
            )
            .await
        })
        .await
    }

    /// Deletes the row owned by `d.pair_id`.
    #[instrument(level = "debug", skip_all, fields(set_id = d.set_id, uri = %d.uri))]
    pub(crate) async fn delete(&self, d: &Destination) -> Result<Keyed> {
        let duid = format!("{DUID_ATTR}={}", d.pair_id);
        self.with_client(|client| async move {
            let sql = "DELETE FROM dispatcher \
                       WHERE setid = $1 AND destination = $2 AND split_part(attrs, ';', 1) = $3";
            execute_keyed(&client, d, sql, &[&d.set_id, &d.uri, &duid]).await
        })
        .await
    }
}

/// Runs a statement keyed on (set id, URI, duid): done when it touched a row, or else whose
/// row (if any) sits at that set id and URI.
async fn execute_keyed(
    client: &Client,
    d: &Destination,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Keyed> {
    let n = client
        .execute(sql, params)
        .await
        .map_err(DispatcherError::Database)?;
    if n > 0 {
        return Ok(Keyed::Done);
    }
    owner_of_other(client, d).await
}

/// After a keyed statement touched nothing: is there no row, or a row of another pair?
async fn owner_of_other(client: &Client, d: &Destination) -> Result<Keyed> {
    let row = client
        .query_opt(
            "SELECT attrs FROM dispatcher WHERE setid = $1 AND destination = $2",
            &[&d.set_id, &d.uri],
        )
        .await
        .map_err(DispatcherError::Database)?;
    Ok(match row {
        None => Keyed::Absent,
        Some(row) => Keyed::OtherPair(duid_of(row.get(0)).unwrap_or_default()),
    })
}

/// The `duid` attribute of an attrs string (`k=v;k=v`), wherever it sits.
pub(crate) fn duid_of(attrs: &str) -> Option<String> {
    attrs.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == DUID_ATTR).then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duid_is_found_anywhere_in_the_attrs() {
        assert_eq!(duid_of("duid=p1;weight=5").as_deref(), Some("p1"));
        assert_eq!(duid_of("weight=5;duid=p2").as_deref(), Some("p2"));
        assert_eq!(duid_of("weight=5"), None);
        assert_eq!(duid_of(""), None);
    }
}
