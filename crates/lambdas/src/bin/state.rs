//! `pairscale-state`: fleet state (SSM + DynamoDB), inventory validation and planning.

use pairscale_aws::fleet_state::{AwsFleetState, AwsInventory};
use pairscale_aws::{ec2::Instances, ecs::Services};
use pairscale_core::ports::SystemClock;
use pairscale_lambdas::metrics::Metrics;
use pairscale_lambdas::{config::Config, handlers::state::StateHandler, runtime};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = Config::from_env().map_err(runtime::startup_error)?;
    let sdk = pairscale_aws::load_config().await;
    let handler = StateHandler {
        state: Arc::new(AwsFleetState::new(&sdk, &config.table, &config.ssm_prefix)),
        inventory: Arc::new(AwsInventory {
            instances: Instances::new(aws_sdk_ec2::Client::new(&sdk)),
            services: Services::new(
                aws_sdk_ecs::Client::new(&sdk),
                config
                    .ecs_cluster
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            ),
        }),
        clock: Arc::new(SystemClock),
        metrics: Metrics::stdout(&config.metrics_namespace),
        lock_ttl_secs: config.lock_ttl_secs,
    };
    runtime::run(|input| handler.handle(input)).await
}
