//! `pairscale-policy`: the scaling policy, evaluated every minute per fleet.

use pairscale_aws::cloudwatch::CloudWatchSignals;
use pairscale_aws::dynamodb::{DynamoLockStore, DynamoPolicyStore};
use pairscale_aws::fleet_state::AwsFleetState;
use pairscale_aws::sfn::MachineRuns;
use pairscale_core::ports::SystemClock;
use pairscale_lambdas::metrics::Metrics;
use pairscale_lambdas::{config::PolicyEnv, handlers::policy::PolicyHandler, runtime};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = PolicyEnv::from_env().map_err(runtime::startup_error)?;
    let sdk = pairscale_aws::load_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let handler = PolicyHandler {
        state: Arc::new(AwsFleetState::new(&sdk, &config.table, &config.ssm_prefix)),
        locks: Arc::new(DynamoLockStore::new(ddb.clone(), &config.table)),
        policies: Arc::new(DynamoPolicyStore::new(ddb, &config.table)),
        runs: Arc::new(MachineRuns::new(
            aws_sdk_sfn::Client::new(&sdk),
            &config.state_machine_arn,
        )),
        signals: Arc::new(CloudWatchSignals::new(&sdk, &config.metrics_namespace)),
        clock: Arc::new(SystemClock),
        metrics: Metrics::stdout(&config.metrics_namespace),
    };
    runtime::run(|input| handler.handle(input)).await
}
