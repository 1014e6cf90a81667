//! `pairscale-lock`: the fleet scaling lock in DynamoDB.

use pairscale_aws::{dynamodb::DynamoLockStore, sfn::Executions};
use pairscale_core::ports::SystemClock;
use pairscale_lambdas::metrics::Metrics;
use pairscale_lambdas::{config::Config, handlers::lock::LockHandler, runtime};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = Config::from_env().map_err(runtime::startup_error)?;
    let sdk = pairscale_aws::load_config().await;
    let handler = LockHandler {
        locks: Arc::new(DynamoLockStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.table,
        )),
        executions: Arc::new(Executions::new(aws_sdk_sfn::Client::new(&sdk))),
        clock: Arc::new(SystemClock),
        metrics: Metrics::stdout(&config.metrics_namespace),
        default_ttl_secs: config.lock_ttl_secs,
    };
    runtime::run(|input| handler.handle(input)).await
}
