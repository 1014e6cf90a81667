//! A local AWS Lambda Runtime API. [`Function::spawn`] starts a real handler binary (built
//! with `lambda_runtime`) as a child process pointed at an HTTP server on `127.0.0.1:0` that
//! speaks the Runtime API as Lambda does: the `GET /invocation/next` long-poll with the
//! request id, deadline, function ARN and trace headers, then `POST .../response` or
//! `POST .../error` with the handler's `errorType` kept exactly, and `POST /init/error`.
//! [`Function::invoke`] hands it one event at a time and waits for the result; a crash or a
//! timeout is a typed error and the next invoke is a new cold start. Cold-start timings and
//! the process's recent output are kept for benchmarks and debugging.
//!
//! Layout:
//! - `function`: [`Function`], [`FunctionSpec`], [`Invocation`], [`ColdStart`]; the process
//!   and its lifecycle.
//! - `api`: the Runtime API server for one process.
//! - [`logs`]: the bounded buffer of the process's stdout and stderr.
//! - `error`: [`EmuError`].

mod api;
mod error;
mod function;
pub mod logs;

pub use error::EmuError;
pub use function::{
    ColdStart, Function, FunctionError, FunctionSpec, Invocation, DEFAULT_TIMEOUT, INIT_LIMIT,
    LOG_LINES,
};
