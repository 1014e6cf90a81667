//! Faults the emulator cannot produce (throttling, a 5xx, access denied), injected with
//! aws-smithy-mocks, to hold the error classification: transient → `Pairscale.Retryable`,
//! everything else → a non-retryable name. The lock's own rules are tested on the emulator.
#![allow(clippy::unwrap_used)]

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::get_item::{GetItemError, GetItemOutput};
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::{InternalServerError, ProvisionedThroughputExceededException};
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use pairscale_aws::dynamodb::{DynamoLockStore, FleetTable};
use pairscale_core::ports::{AcquireLock, LockStore};
use pairscale_core::{ErrorName, FleetName, Owner, Timestamp};

fn fleet() -> FleetName {
    FleetName::parse("voice").unwrap()
}

fn acquire() -> AcquireLock {
    AcquireLock {
        fleet: fleet(),
        owner: Owner::parse("arn:aws:states:us-east-1:123456789012:execution:m:r").unwrap(),
        ttl_secs: 60,
        request: String::new(),
        now: Timestamp(1_800_000_000_000),
    }
}

#[tokio::test]
async fn throttling_is_retryable() {
    let rule = mock!(Client::update_item).then_error(|| {
        UpdateItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                // A real response always carries its code; the SDK's parser puts it here.
                .meta(
                    ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .message("slow down")
                        .build(),
                )
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule], |c| c
        .retry_config(RetryConfig::disabled()));
    let e = DynamoLockStore::new(client, "t")
        .acquire(&acquire())
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::Retryable, "{e}");
    assert!(
        e.to_string().contains("ProvisionedThroughputExceeded"),
        "{e}"
    );
}

#[tokio::test]
async fn a_5xx_on_the_second_call_is_retryable() {
    // The first read of the lock works, the second gets a 503.
    let ok = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
    let unavailable = mock!(Client::get_item).then_http_response(|| {
        Response::new(StatusCode::try_from(503).unwrap(), SdkBody::from("{}"))
    });
    let client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::Sequential,
        [&ok, &unavailable],
        |c| c.retry_config(RetryConfig::disabled())
    );
    let locks = DynamoLockStore::new(client, "t");
    assert!(locks.get(&fleet()).await.unwrap().is_none());
    let e = locks.get(&fleet()).await.unwrap_err();
    assert_eq!(e.name(), ErrorName::Retryable, "{e}");
}

#[tokio::test]
async fn an_internal_server_error_is_retryable_but_access_denied_is_not() {
    let internal = mock!(Client::query).then_error(|| {
        QueryError::InternalServerError(
            InternalServerError::builder()
                .message("boom")
                .meta(
                    ErrorMetadata::builder()
                        .code("InternalServerError")
                        .message("boom")
                        .build(),
                )
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&internal], |c| c
        .retry_config(RetryConfig::disabled()));
    let e = FleetTable::new(client, "t")
        .pairs(&fleet())
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::Retryable, "{e}");

    let denied = mock!(Client::get_item).then_error(|| {
        GetItemError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("not allowed")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&denied], |c| c
        .retry_config(RetryConfig::disabled()));
    let e = DynamoLockStore::new(client, "t")
        .get(&fleet())
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::Aws, "{e}");
    assert!(e.to_string().contains("AccessDenied"), "{e}");
}
