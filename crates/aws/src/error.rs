//! Turning SDK errors into the core catalogue. Throttling, 5xx, timeouts and dispatch failures
//! are `Pairscale.Retryable`; every other service error is `Pairscale.Aws`. Classification is
//! by type and status, never by message text.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use pairscale_core::Error;

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "LimitExceededException",
    "TransactionInProgressException",
    "TransactionConflictException",
    "PriorRequestNotComplete",
    "SlowDown",
    "EC2ThrottledException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// Classify any SDK error for `operation` (e.g. "dynamodb:UpdateItem").
pub fn classify<E, R>(operation: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let retryable = |message: String| Error::Retryable {
        operation: operation.to_string(),
        message,
    };
    match &err {
        SdkError::TimeoutError(_) => retryable("timed out".into()),
        SdkError::DispatchFailure(e) => retryable(format!("could not reach the service: {e:?}")),
        SdkError::ResponseError(_) => retryable("unreadable response".into()),
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_string();
            let message = se.err().message().unwrap_or("").to_string();
            let status = se.raw().status_code();
            let text = format!("{code}: {message}");
            if status >= 500 || status == 429 || THROTTLING.contains(&code.as_str()) {
                retryable(text)
            } else {
                Error::Aws {
                    operation: operation.to_string(),
                    message: text,
                }
            }
        }
        _ => Error::Aws {
            operation: operation.to_string(),
            message: format!("{err:?}"),
        },
    }
}

/// The HTTP status of a raw response, whatever its type.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}
