//! The crate's one error type. Every message says what to do about it: these errors end a test,
//! and the person reading the failure should not need the source to act.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A variable a setup step exports is missing.
    #[error("{name} is not set: {hint}")]
    NotSet {
        name: &'static str,
        hint: &'static str,
    },

    /// Something a setup step makes is not where its variable says.
    #[error("{} is missing: {hint}", path.display())]
    Missing { path: PathBuf, hint: &'static str },

    #[error("no free FreeSWITCH slot: all {slots} are held by other tests in this machine")]
    NoFreeSlot { slots: u16 },

    #[error("the FreeSWITCH role did not render the configuration ({status}); ansible-playbook said:\n{output}")]
    Render { status: String, output: String },

    #[error("FreeSWITCH {name} exited while starting ({status}); its log ends with:\n{log}")]
    Exited {
        name: String,
        status: String,
        log: String,
    },

    #[error(
        "FreeSWITCH {name} was not ready within {after:?} ({last}); its log ends with:\n{log}"
    )]
    NotReady {
        name: String,
        after: Duration,
        last: String,
        log: String,
    },

    #[error("FreeSWITCH {name} is not running")]
    NotRunning { name: String },

    #[error("sipp: {0}")]
    Sipp(String),

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
