//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong talking to the dispatcher table or to Kamailio.
///
/// The variants are stable so that callers can map them to their own error names; use
/// [`DispatcherError::is_retryable`] rather than matching on messages.
#[derive(Debug, thiserror::Error)]
pub enum DispatcherError {
    /// A destination (or configuration value) was rejected before anything was written.
    #[error("invalid {field} '{value}': {reason}")]
    InvalidInput {
        field: &'static str,
        value: String,
        reason: &'static str,
    },

    /// PostgreSQL answered with an error, or the connection broke during a statement.
    #[error("dispatcher table: {}", database_detail(.0))]
    Database(#[source] tokio_postgres::Error),

    /// Kamailio's JSON-RPC answered with an `error` member.
    #[error("kamailio rpc {method} failed: {code} {message}")]
    Rpc {
        method: &'static str,
        code: i64,
        message: String,
    },

    /// Kamailio answered, but not with a JSON-RPC response this crate understands.
    #[error("kamailio rpc {method}: unexpected response: {detail}")]
    BadResponse {
        method: &'static str,
        detail: String,
    },

    /// After the change, `dispatcher.list` still did not show the expected state.
    /// `seen` is the state flags Kamailio reported (`None`: the destination was not listed).
    #[error("{uri} in set {set_id}: expected {expected}, kamailio shows {}", seen.as_deref().unwrap_or("nothing"))]
    NotVerified {
        set_id: i32,
        uri: String,
        expected: &'static str,
        seen: Option<String>,
    },

    /// The destination is not in the dispatcher table, so it cannot be disabled or enabled.
    #[error("{uri} is not registered in set {set_id}")]
    NotRegistered { set_id: i32, uri: String },

    /// The destination is registered, but for another pair.
    #[error("{uri} in set {set_id} is registered for pair '{existing_pair_id}'")]
    Conflict {
        set_id: i32,
        uri: String,
        existing_pair_id: String,
    },

    /// Kamailio refused every `dispatcher.reload` for as long as it was asked: it takes one
    /// reload per `reload_delta` seconds (5 by default) and answers the rest "Ongoing reload".
    /// The table holds the change; a later reload loads it.
    #[error("kamailio refused dispatcher.reload for {} ms: another reload came within its reload_delta (\"{message}\")", waited.as_millis())]
    ReloadRefused { waited: Duration, message: String },

    /// PostgreSQL or Kamailio could not be reached, or did not answer within the timeout.
    #[error("{service} unreachable: {detail}")]
    Unreachable {
        service: &'static str,
        detail: String,
    },

    /// The table holds the change, and so does every Kamailio not named here; these did not
    /// take or confirm it. Each was still tried: one instance down never leaves the change
    /// undone on the others. A retry applies it to every instance again.
    #[error("{}", describe(failed))]
    Kamailios { failed: Vec<KamailioFailure> },
}

/// Why one Kamailio of several did not take a change.
#[derive(Debug)]
pub struct KamailioFailure {
    /// The instance's JSON-RPC URL: the name an operator knows it by.
    pub url: String,
    pub error: DispatcherError,
}

/// tokio-postgres shows a server's error as "db error" alone: add what the server said (its
/// severity, message and SQLSTATE), which names the role, database or rule that refused.
fn database_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => e.to_string(),
    }
}

fn describe(failed: &[KamailioFailure]) -> String {
    let each: Vec<String> = failed
        .iter()
        .map(|f| format!("kamailio {}: {}", f.url, f.error))
        .collect();
    each.join("; ")
}

impl DispatcherError {
    /// Whether the same call may succeed if simply tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Database(_)
            | Self::Unreachable { .. }
            | Self::NotVerified { .. }
            | Self::ReloadRefused { .. } => true,
            Self::Kamailios { failed } => failed.iter().all(|f| f.error.is_retryable()),
            _ => false,
        }
    }

    pub(crate) fn timeout(service: &'static str, after: Duration) -> Self {
        Self::Unreachable {
            service,
            detail: format!("no answer within {} ms", after.as_millis()),
        }
    }
}

pub type Result<T, E = DispatcherError> = std::result::Result<T, E>;
