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
    #[error("dispatcher table: {0}")]
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

    /// PostgreSQL or Kamailio could not be reached, or did not answer within the timeout.
    #[error("{service} unreachable: {detail}")]
    Unreachable {
        service: &'static str,
        detail: String,
    },
}

impl DispatcherError {
    /// Whether the same call may succeed if simply tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Database(_) | Self::Unreachable { .. } | Self::NotVerified { .. }
        )
    }

    pub(crate) fn timeout(service: &'static str, after: Duration) -> Self {
        Self::Unreachable {
            service,
            detail: format!("no answer within {} ms", after.as_millis()),
        }
    }
}

pub type Result<T, E = DispatcherError> = std::result::Result<T, E>;
