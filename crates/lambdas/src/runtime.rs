//! The Lambda loop with pairscale's error contract: every failure leaves with a fixed
//! `errorType` from the core catalogue. A panic is caught here and reported as
//! `Pairscale.Internal`; left alone, it would surface under a Rust type name that no Step
//! Functions `Catch` can match.

use futures::FutureExt;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pairscale_core::{Error, ErrorName};
use serde_json::Value;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// The error a Lambda reports, in the runtime's terms.
pub fn diagnostic(e: &Error) -> Diagnostic {
    Diagnostic {
        error_type: e.name().as_str().to_string(),
        error_message: e.to_string(),
    }
}

/// Run a handler future, turning errors and panics into fixed diagnostics.
pub async fn guarded<F>(fut: F) -> Result<Value, Diagnostic>
where
    F: Future<Output = Result<Value, Error>>,
{
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error_type = e.name().as_str(), error = %e, "handler failed");
            Err(diagnostic(&e))
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(panic = %what, "handler panicked");
            Err(Diagnostic {
                error_type: ErrorName::Internal.as_str().to_string(),
                error_message: format!("handler panicked: {what}"),
            })
        }
    }
}

/// Install JSON logging (Lambda) and serve `handler` until the runtime stops.
pub async fn run<H, Fut>(handler: H) -> Result<(), lambda_runtime::Error>
where
    H: Fn(Value) -> Fut,
    Fut: Future<Output = Result<Value, Error>>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        guarded(handler(event.payload))
    }))
    .await
}

/// Logging set up once per process: JSON lines, level from `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// A startup failure: logged with its name and returned so the process exits non-zero.
pub fn startup_error(e: Error) -> lambda_runtime::Error {
    tracing::error!(error_type = e.name().as_str(), error = %e, "startup failed");
    Box::new(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_keep_their_catalogue_name() {
        let d = guarded(async { Err(Error::invalid("fleet", "X", "bad")) })
            .await
            .expect_err("error");
        assert_eq!(d.error_type, "Pairscale.InvalidRequest");
        assert!(d.error_message.contains("fleet"));
    }

    #[tokio::test]
    async fn a_panic_becomes_pairscale_internal() {
        let d = guarded(async {
            let v: Vec<u8> = Vec::new();
            if v.is_empty() {
                panic!("index out of range");
            }
            Ok(Value::Null)
        })
        .await
        .expect_err("panic");
        assert_eq!(d.error_type, "Pairscale.Internal");
        assert!(
            d.error_message.contains("index out of range"),
            "{}",
            d.error_message
        );
    }
}
