use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the router could not start, or why a control request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The router runs test handlers with the caller's environment; it must not be reachable
    /// from another machine.
    #[error("refusing to listen on {0}: the router serves loopback only (127.0.0.1 or ::1)")]
    NotLoopback(SocketAddr),

    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("the moto URL {url:?} is not usable: {reason}")]
    MotoUrl { url: String, reason: &'static str },

    #[error("cannot read {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not a valid router config: {source}")]
    ConfigParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot create the state dir {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A function, project or fault spec that cannot work; the message says which field.
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },

    #[error("the request body is not the expected JSON: {0}")]
    BadRequest(#[source] serde_json::Error),
}

impl RouterError {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
