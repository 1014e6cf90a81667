//! `pairscale-build`: start and poll the Terraform and Ansible CodeBuild builds.

use pairscale_aws::codebuild::CodeBuilds;
use pairscale_aws::dynamodb::FleetTable;
use pairscale_aws::fleet_state::AwsFleetState;
use pairscale_aws::ssm::FleetParams;
use pairscale_core::ports::SystemClock;
use pairscale_lambdas::{config::BuildConfig, handlers::build::BuildHandler, runtime};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = BuildConfig::from_env().map_err(runtime::startup_error)?;
    let sdk = pairscale_aws::load_config().await;
    let handler = BuildHandler {
        builds: Arc::new(CodeBuilds::from_sdk(&sdk)),
        // Only the pair records are read (dynamodb:Query); the SSM side is never called.
        state: Arc::new(AwsFleetState {
            params: FleetParams::new(
                aws_sdk_ssm::Client::new(&sdk),
                pairscale_aws::ssm::DEFAULT_PREFIX,
            ),
            table: FleetTable::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table),
        }),
        clock: Arc::new(SystemClock),
        terraform_project: config.terraform_project,
        ansible_project: config.ansible_project,
    };
    runtime::run(|input| handler.handle(input)).await
}
