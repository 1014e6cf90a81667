//! Lambda: invoke a function synchronously, as the operator's CLI invokes the drain function.
//!
//! Two ways to fail are kept apart, as Lambda keeps them: the call itself (an SDK error,
//! classified like every other into the core catalogue) and the function's own error, which
//! comes back as a successful call with `X-Amz-Function-Error` and a body of `errorType` and
//! `errorMessage`. Only those two strings cross the wire, so the function's error is returned
//! as a [`FunctionError`] whose `errorType` reads back through [`ErrorName`]; rebuilding a
//! core `Error` variant from it would mean inventing the fields the message was made from.

use crate::error::classify;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::Client;
use pairscale_core::{Error, ErrorName, Result};
use serde_json::Value;
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct Functions {
    client: Client,
}

/// A function's own error, as it reported it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct FunctionError {
    /// The function's `errorType`: a catalogue name from pairscale's functions, or the
    /// platform's own (`Runtime.ExitError` for a crash, `Sandbox.Timedout`).
    pub error_type: String,
    pub message: String,
}

impl FunctionError {
    /// The catalogue name, when the function reported one of pairscale's.
    pub fn name(&self) -> Option<ErrorName> {
        ErrorName::parse(&self.error_type)
    }

    /// The error of a failed invocation from its body; `header` is the function error header
    /// (`Unhandled`), the type when the body does not name one.
    fn from_body(header: &str, body: &[u8]) -> FunctionError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        FunctionError {
            error_type: v["errorType"].as_str().unwrap_or(header).to_string(),
            message: v["errorMessage"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
        }
    }
}

impl Functions {
    pub fn new(client: Client) -> Self {
        Functions { client }
    }

    /// Invoke `function` (a name or ARN) with `payload` and wait for its answer: `Ok(Ok(v))`
    /// is what it returned, `Ok(Err(_))` the error it reported, `Err(_)` a failed call.
    // The payload is not logged: it may name every node of a fleet.
    #[instrument(skip(self, payload))]
    pub async fn invoke(
        &self,
        function: &str,
        payload: &Value,
    ) -> Result<std::result::Result<Value, FunctionError>> {
        let out = self
            .client
            .invoke()
            .function_name(function)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(|e| classify("lambda:Invoke", e))?;
        let body = out.payload().map(Blob::as_ref).unwrap_or_default();
        if let Some(header) = out.function_error() {
            return Ok(Err(FunctionError::from_body(header, body)));
        }
        if body.is_empty() {
            return Ok(Ok(Value::Null));
        }
        serde_json::from_slice(body).map(Ok).map_err(|e| {
            Error::internal(format!(
                "function {function} answered with something that is not JSON: {e}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_error_reads_back_its_catalogue_name() {
        let body = br#"{"errorType": "Pairscale.NodeUnreachable", "errorMessage": "no answer"}"#;
        let e = FunctionError::from_body("Unhandled", body);
        assert_eq!(e.name(), Some(ErrorName::NodeUnreachable));
        assert_eq!(e.to_string(), "Pairscale.NodeUnreachable: no answer");
    }

    #[test]
    fn an_error_outside_the_catalogue_keeps_what_it_said() {
        let e = FunctionError::from_body("Unhandled", b"Task timed out");
        assert_eq!(e.name(), None);
        assert_eq!(e.error_type, "Unhandled");
        assert_eq!(e.message, "Task timed out");
        let e = FunctionError::from_body(
            "Unhandled",
            br#"{"errorType": "Runtime.ExitError", "errorMessage": "exit status 101"}"#,
        );
        assert_eq!(e.name(), None);
        assert_eq!(e.error_type, "Runtime.ExitError");
    }
}
