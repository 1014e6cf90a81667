use pairscale_testkit::KitError;
use std::path::PathBuf;

/// Why a deployment in the local stack could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A setting the local stack's setup exports is missing.
    #[error("{var} is not set: {why}")]
    NotSet {
        var: &'static str,
        why: &'static str,
    },

    #[error("{} is not built: build the whole workspace (./tests/run and ./sandbox build every binary)", .0.display())]
    NotBuilt(PathBuf),

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// The emulator or the router refused, or is not there.
    #[error(transparent)]
    Kit(#[from] KitError),

    #[error("the dispatcher database: {0}")]
    Postgres(#[from] tokio_postgres::Error),

    /// The dispatcher database's URL does not say what the stack needs from it.
    #[error("the dispatcher database's URL {0}")]
    DatabaseUrl(&'static str),

    /// A service answered without something it always gives.
    #[error("{0}")]
    Unexpected(String),
}

impl StackError {
    /// For `map_err`: an I/O step that failed, named.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
        let what = what.into();
        move |source| StackError::Io { what, source }
    }

    /// For `map_err`: an SDK call that failed, with its whole error chain.
    pub(crate) fn aws<E: std::error::Error>(
        call: impl Into<String>,
    ) -> impl FnOnce(E) -> StackError {
        let kit = KitError::aws(call);
        move |e| StackError::Kit(kit(e))
    }
}
