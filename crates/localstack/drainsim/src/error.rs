//! The simulator's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario parameter outside what the simulator can run.
    #[error("scenario {field} = {value}: {reason}")]
    Scenario {
        field: String,
        value: String,
        reason: String,
    },
    /// The fleet configuration the scenario builds was refused by pairscale itself.
    #[error("the scenario's fleet configuration: {0}")]
    Config(#[from] pairscale_core::Error),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A CSV line that is not what the format says.
    #[error("{path} line {line}: {reason}")]
    Csv {
        path: String,
        line: usize,
        reason: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn scenario(
        field: &str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Error {
        Error::Scenario {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
