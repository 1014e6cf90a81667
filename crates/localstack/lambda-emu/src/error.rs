use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Why an invocation did not produce a function result.
///
/// A handler's own error (`Diagnostic`) is not here: it is a normal outcome,
/// [`Invocation::Error`](crate::Invocation::Error), as Lambda reports it with `FunctionError`.
#[derive(Debug, thiserror::Error)]
pub enum EmuError {
    #[error("cannot bind the Runtime API listener: {0}")]
    Bind(#[source] std::io::Error),

    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot watch the function process: {0}")]
    Wait(#[source] std::io::Error),

    /// The process exited while an invocation was pending (or before it asked for one).
    /// The next invoke starts a new process.
    #[error("the function process exited ({status})")]
    Crashed { status: ExitStatus },

    /// The invocation outran its timeout (or init outran the init limit); the process was
    /// killed and the next invoke starts a new one.
    #[error("the invocation timed out after {after:?}")]
    Timeout { after: Duration },

    /// The runtime reported an init error on `/runtime/init/error`.
    #[error("init failed: {error_type}: {error_message}")]
    InitFailed {
        error_type: String,
        error_message: String,
    },

    #[error("the payload is not serialisable JSON: {0}")]
    Payload(#[source] serde_json::Error),

    /// The function's response body is not JSON (the runtime always writes JSON).
    #[error("the function's response is not JSON: {0}")]
    ResponseNotJson(#[source] serde_json::Error),

    /// A broken invariant inside the emulator, not the function's fault.
    #[error("emulator: {0}")]
    Internal(&'static str),
}
