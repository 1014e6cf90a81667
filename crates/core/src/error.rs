//! The error catalogue: every failure a handler can report has one fixed name here.
//!
//! Step Functions `Retry` and `Catch` blocks match on these names (`errorType`), so they are
//! part of pairscale's public contract: add names, never rename one.

use serde::Serialize;

/// The fixed, documented names of every failure pairscale reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ErrorName {
    /// Another execution holds the fleet's scaling lock.
    LockHeld,
    /// A release or heartbeat named an owner that does not hold the lock.
    LockNotOwned,
    /// `break_stale` was asked to break a lock whose holder is alive and unexpired.
    LockNotStale,
    /// A write presented a fencing token that is no longer the lock's.
    Fenced,
    /// A node action (quiesce, force, resume) came from a run that no longer holds the lock:
    /// nothing was done to the nodes.
    LockLost,
    /// The request is malformed: a field is missing, of the wrong type or out of range.
    InvalidRequest,
    /// A fleet's configuration is missing or invalid.
    InvalidConfig,
    /// The fleet named by a request has no state.
    UnknownFleet,
    /// Stored state cannot be read back (a corrupt SSM value or DynamoDB item).
    CorruptState,
    /// Reality does not match the fleet state (validation found drift).
    Drift,
    /// A transient failure (throttling, a 5xx, a timeout): retrying may succeed.
    Retryable,
    /// An AWS call failed in a way retrying will not fix (access denied, a missing table).
    Aws,
    /// A media node could not be reached over its Event Socket.
    NodeUnreachable,
    /// The SIP load balancer refused or did not confirm a dispatcher change.
    Dispatcher,
    /// A drain reached its deadline and the fleet's policy says to abort.
    DrainDeadline,
    /// A media node answers but is not ready to take calls yet (a health check to retry).
    NotReady,
    /// A Terraform or Ansible build ended in failure or ran past its time.
    BuildFailed,
    /// A build asked to stop is still running: retry until it has ended (nothing that
    /// undoes its work may start before).
    BuildStopping,
    /// A new node's canary call failed: not answered, no media, or quality below the fleet's
    /// threshold. The node does not go into rotation.
    CanaryFailed,
    /// A bug: the handler panicked or hit an impossible state.
    Internal,
}

impl ErrorName {
    /// Every name, for documentation and for checking state machine definitions.
    pub const ALL: &'static [ErrorName] = &[
        ErrorName::LockHeld,
        ErrorName::LockNotOwned,
        ErrorName::LockNotStale,
        ErrorName::Fenced,
        ErrorName::LockLost,
        ErrorName::InvalidRequest,
        ErrorName::InvalidConfig,
        ErrorName::UnknownFleet,
        ErrorName::CorruptState,
        ErrorName::Drift,
        ErrorName::Retryable,
        ErrorName::Aws,
        ErrorName::NodeUnreachable,
        ErrorName::Dispatcher,
        ErrorName::DrainDeadline,
        ErrorName::NotReady,
        ErrorName::BuildFailed,
        ErrorName::BuildStopping,
        ErrorName::CanaryFailed,
        ErrorName::Internal,
    ];

    /// The `errorType` string Step Functions sees.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorName::LockHeld => "Pairscale.LockHeld",
            ErrorName::LockNotOwned => "Pairscale.LockNotOwned",
            ErrorName::LockNotStale => "Pairscale.LockNotStale",
            ErrorName::Fenced => "Pairscale.Fenced",
            ErrorName::LockLost => "Pairscale.LockLost",
            ErrorName::InvalidRequest => "Pairscale.InvalidRequest",
            ErrorName::InvalidConfig => "Pairscale.InvalidConfig",
            ErrorName::UnknownFleet => "Pairscale.UnknownFleet",
            ErrorName::CorruptState => "Pairscale.CorruptState",
            ErrorName::Drift => "Pairscale.Drift",
            ErrorName::Retryable => "Pairscale.Retryable",
            ErrorName::Aws => "Pairscale.Aws",
            ErrorName::NodeUnreachable => "Pairscale.NodeUnreachable",
            ErrorName::Dispatcher => "Pairscale.Dispatcher",
            ErrorName::DrainDeadline => "Pairscale.DrainDeadline",
            ErrorName::NotReady => "Pairscale.NotReady",
            ErrorName::BuildFailed => "Pairscale.BuildFailed",
            ErrorName::BuildStopping => "Pairscale.BuildStopping",
            ErrorName::CanaryFailed => "Pairscale.CanaryFailed",
            ErrorName::Internal => "Pairscale.Internal",
        }
    }

    /// The name for a string, if it is one of ours.
    pub fn parse(s: &str) -> Option<ErrorName> {
        ErrorName::ALL.iter().copied().find(|n| n.as_str() == s)
    }
}

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every failure in pairscale's domain. Each variant maps to exactly one [`ErrorName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the scaling lock of fleet '{fleet}' is held by {holder} (token {token}) until {expires_at}")]
    LockHeld {
        fleet: String,
        holder: String,
        token: u64,
        expires_at: String,
    },
    #[error("the scaling lock of fleet '{fleet}' is not held by {owner} (holder: {holder})")]
    LockNotOwned {
        fleet: String,
        owner: String,
        holder: String,
    },
    #[error("the scaling lock of fleet '{fleet}' is not stale: {why}")]
    LockNotStale { fleet: String, why: String },
    #[error(
        "write to fleet '{fleet}' refused: token {presented} is no longer the lock's ({current})"
    )]
    Fenced {
        fleet: String,
        presented: u64,
        current: String,
    },
    #[error("fleet '{fleet}': {owner} (token {token}) no longer holds the scaling lock ({now}): nothing was done to the nodes")]
    LockLost {
        fleet: String,
        owner: String,
        token: u64,
        now: String,
    },
    #[error("invalid request: {field} = {value}: {reason}")]
    InvalidRequest {
        field: String,
        value: String,
        reason: String,
    },
    #[error("invalid configuration of fleet '{fleet}': {field} = {value}: {reason}")]
    InvalidConfig {
        fleet: String,
        field: String,
        value: String,
        reason: String,
    },
    #[error("unknown fleet '{fleet}': {what} does not exist")]
    UnknownFleet { fleet: String, what: String },
    #[error("corrupt state: {what} = {value}: {reason}")]
    CorruptState {
        what: String,
        value: String,
        reason: String,
    },
    #[error("fleet '{fleet}' has drifted from its state: {summary}")]
    Drift { fleet: String, summary: String },
    #[error("{operation} failed, retry may succeed: {message}")]
    Retryable { operation: String, message: String },
    #[error("{operation} failed: {message}")]
    Aws { operation: String, message: String },
    #[error("media node {node} unreachable: {message}")]
    NodeUnreachable { node: String, message: String },
    #[error("dispatcher change not confirmed for {destination}: {message}")]
    Dispatcher {
        destination: String,
        message: String,
    },
    #[error("drain of fleet '{fleet}' passed its deadline with {channels} channel(s) left; policy: abort")]
    DrainDeadline { fleet: String, channels: u64 },
    #[error("media node {node} is not ready: {why}")]
    NotReady { node: String, why: String },
    #[error("{kind} build {build_id} did not succeed: {status}")]
    BuildFailed {
        kind: String,
        build_id: String,
        status: String,
    },
    #[error("build {build_id} was asked to stop and is still {status}")]
    BuildStopping { build_id: String, status: String },
    #[error("media node {node} failed its canary call: {why}")]
    CanaryFailed { node: String, why: String },
    #[error("internal error: {message}")]
    Internal { message: String },
}

impl Error {
    /// The catalogue name of this error.
    pub fn name(&self) -> ErrorName {
        match self {
            Error::LockHeld { .. } => ErrorName::LockHeld,
            Error::LockNotOwned { .. } => ErrorName::LockNotOwned,
            Error::LockNotStale { .. } => ErrorName::LockNotStale,
            Error::Fenced { .. } => ErrorName::Fenced,
            Error::LockLost { .. } => ErrorName::LockLost,
            Error::InvalidRequest { .. } => ErrorName::InvalidRequest,
            Error::InvalidConfig { .. } => ErrorName::InvalidConfig,
            Error::UnknownFleet { .. } => ErrorName::UnknownFleet,
            Error::CorruptState { .. } => ErrorName::CorruptState,
            Error::Drift { .. } => ErrorName::Drift,
            Error::Retryable { .. } => ErrorName::Retryable,
            Error::Aws { .. } => ErrorName::Aws,
            Error::NodeUnreachable { .. } => ErrorName::NodeUnreachable,
            Error::Dispatcher { .. } => ErrorName::Dispatcher,
            Error::DrainDeadline { .. } => ErrorName::DrainDeadline,
            Error::NotReady { .. } => ErrorName::NotReady,
            Error::BuildFailed { .. } => ErrorName::BuildFailed,
            Error::BuildStopping { .. } => ErrorName::BuildStopping,
            Error::CanaryFailed { .. } => ErrorName::CanaryFailed,
            Error::Internal { .. } => ErrorName::Internal,
        }
    }

    /// Shorthand for the most common error: a request field that is wrong.
    pub fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Error {
        Error::InvalidRequest {
            field: field.into(),
            value: shorten(&value.to_string()),
            reason: reason.into(),
        }
    }

    /// Shorthand for stored state that cannot be read back.
    pub fn corrupt(
        what: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Error {
        Error::CorruptState {
            what: what.into(),
            value: shorten(&value.to_string()),
            reason: reason.into(),
        }
    }

    /// Shorthand for a bug.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::Internal {
            message: message.into(),
        }
    }
}

/// Values echoed in error messages are cut short: a 1 MB garbage field must not become a
/// 1 MB error message in the console.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for n in ErrorName::ALL {
            assert!(n.as_str().starts_with("Pairscale."), "{n}");
            assert!(seen.insert(n.as_str()), "duplicate {n}");
            assert_eq!(ErrorName::parse(n.as_str()), Some(*n));
        }
        assert_eq!(ErrorName::parse("States.ALL"), None);
    }

    #[test]
    fn invalid_names_the_field_and_value() {
        let e = Error::invalid("target_pair_count", -3, "must be >= 0");
        assert_eq!(e.name(), ErrorName::InvalidRequest);
        let msg = e.to_string();
        assert!(
            msg.contains("target_pair_count") && msg.contains("-3"),
            "{msg}"
        );
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let e = Error::invalid("fleet", "x".repeat(10_000), "too long");
        assert!(e.to_string().len() < 300);
    }
}
