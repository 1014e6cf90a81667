//! Faults of the operator's adapters that the emulator cannot produce (throttling, a 5xx, a
//! function that answers with something that is not JSON), injected with aws-smithy-mocks.
#![allow(clippy::unwrap_used)]

use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::error::TooManyRequestsException;
use aws_sdk_sfn::operation::describe_execution::{DescribeExecutionError, DescribeExecutionOutput};
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::primitives::DateTime;
use aws_sdk_sfn::types::ExecutionStatus as SfnStatus;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use pairscale_aws::lambda::Functions;
use pairscale_aws::sfn::Runs;
use pairscale_core::lock::ExecutionStatus;
use pairscale_core::ErrorName;
use serde_json::json;

/// A client of `$sdk` whose calls are answered by `$rules` in order, without retries. Built
/// by hand rather than with `mock_client!`, which needs the SDK crate's `test-util` feature.
macro_rules! mocked {
    ($sdk:ident, $rules:expr) => {{
        let mut answers = MockResponseInterceptor::new().rule_mode(RuleMode::Sequential);
        for rule in $rules {
            answers = answers.with_rule(rule);
        }
        $sdk::Client::from_conf(
            $sdk::Config::builder()
                .behavior_version($sdk::config::BehaviorVersion::latest())
                .region($sdk::config::Region::new("us-east-1"))
                .credentials_provider($sdk::config::Credentials::new(
                    "AKID", "secret", None, None, "tests",
                ))
                .retry_config($sdk::config::retry::RetryConfig::disabled())
                .http_client(create_mock_http_client())
                .interceptor(answers)
                .build(),
        )
    }};
}

fn code(code: &str) -> ErrorMetadata {
    // A real response always carries its code; the SDK's parser puts it here.
    ErrorMetadata::builder().code(code).message("no").build()
}

const ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:m:run";

#[tokio::test]
async fn a_throttled_start_and_a_5xx_while_following_a_run_are_retryable() {
    let throttled = mock!(aws_sdk_sfn::Client::start_execution)
        .then_error(|| StartExecutionError::generic(code("ThrottlingException")));
    let runs = Runs::new(mocked!(aws_sdk_sfn, [&throttled]));
    let e = runs.start("arn:m", "run", &json!({})).await.unwrap_err();
    assert_eq!(e.name(), ErrorName::Retryable, "{e}");

    // The first look works, the second gets a 500.
    let running = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
        DescribeExecutionOutput::builder()
            .execution_arn(ARN)
            .state_machine_arn("arn:m")
            .status(SfnStatus::Running)
            .start_date(DateTime::from_millis(1_000))
            .build()
            .unwrap()
    });
    let unavailable = mock!(aws_sdk_sfn::Client::describe_execution).then_http_response(|| {
        Response::new(StatusCode::try_from(500).unwrap(), SdkBody::from("{}"))
    });
    let rules: [&Rule; 2] = [&running, &unavailable];
    let runs = Runs::new(mocked!(aws_sdk_sfn, rules));
    let run = runs.describe(ARN).await.unwrap();
    assert_eq!(run.summary.status, ExecutionStatus::Running);
    assert_eq!(run.summary.started_at.millis(), 1_000);
    let e = runs.describe(ARN).await.unwrap_err();
    assert_eq!(e.name(), ErrorName::Retryable, "{e}");
}

#[tokio::test]
async fn a_status_the_adapter_does_not_know_is_an_error_not_a_guess() {
    let odd = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
        DescribeExecutionOutput::builder()
            .execution_arn(ARN)
            .state_machine_arn("arn:m")
            .status(SfnStatus::from("PAUSED_FOREVER"))
            .start_date(DateTime::from_millis(0))
            .build()
            .unwrap()
    });
    let runs = Runs::new(mocked!(aws_sdk_sfn, [&odd]));
    let e = runs.describe(ARN).await.unwrap_err();
    assert_eq!(e.name(), ErrorName::Aws, "{e}");
    assert!(e.to_string().contains("PAUSED_FOREVER"), "{e}");
}

#[tokio::test]
async fn a_missing_execution_is_not_retried() {
    let gone = mock!(aws_sdk_sfn::Client::describe_execution).then_error(|| {
        DescribeExecutionError::ExecutionDoesNotExist(
            aws_sdk_sfn::types::error::ExecutionDoesNotExist::builder()
                .message("no")
                .meta(code("ExecutionDoesNotExist"))
                .build(),
        )
    });
    let runs = Runs::new(mocked!(aws_sdk_sfn, [&gone]));
    let e = runs.describe(ARN).await.unwrap_err();
    assert_eq!(e.name(), ErrorName::Aws, "{e}");
}

#[tokio::test]
async fn a_throttled_invoke_is_retryable() {
    let throttled = mock!(aws_sdk_lambda::Client::invoke).then_error(|| {
        InvokeError::TooManyRequestsException(
            TooManyRequestsException::builder()
                .message("Rate exceeded")
                .meta(code("TooManyRequestsException"))
                .build(),
        )
    });
    let functions = Functions::new(mocked!(aws_sdk_lambda, [&throttled]));
    let e = functions.invoke("drain", &json!({})).await.unwrap_err();
    assert_eq!(e.name(), ErrorName::Retryable, "{e}");
}

#[tokio::test]
async fn an_answer_that_is_not_json_is_a_bug_and_an_empty_one_is_null() {
    let garbled = mock!(aws_sdk_lambda::Client::invoke).then_output(|| {
        InvokeOutput::builder()
            .status_code(200)
            .payload(Blob::new("<html>"))
            .build()
    });
    let empty = mock!(aws_sdk_lambda::Client::invoke)
        .then_output(|| InvokeOutput::builder().status_code(200).build());
    let rules: [&Rule; 2] = [&garbled, &empty];
    let functions = Functions::new(mocked!(aws_sdk_lambda, rules));
    let e = functions.invoke("drain", &json!({})).await.unwrap_err();
    assert_eq!(e.name(), ErrorName::Internal, "{e}");
    assert!(e.to_string().contains("drain"), "{e}");
    let answer = functions.invoke("drain", &json!({})).await.unwrap();
    assert_eq!(answer, Ok(serde_json::Value::Null));
}
