//! Adapters that implement `pairscale-core`'s traits with the AWS SDK for Rust. No SDK type
//! appears in a core signature; every SDK error is classified into the core catalogue.
//!
//! Every client is built from the standard environment (`AWS_REGION`, credentials, profile and
//! `AWS_ENDPOINT_URL`), so a local emulator needs no special code path.
//!
//! Layout:
//! - [`dynamodb`]: the scaling lock and the fleet table (pair records, bookkeeping, journals).
//! - [`ssm`]: the committed pair count and the fleet configuration.
//! - [`ec2`], [`ecs`]: the inventory of instances and services tagged for a fleet.
//! - [`codebuild`]: start, poll and stop the Terraform and Ansible builds.
//! - [`sfn`]: execution status, for breaking stale locks; the runs an operator starts, reads
//!   and follows.
//! - [`cloudwatch`]: the operator's own call-quality metric.
//! - [`lambda`]: invoke a function and tell its own error (by catalogue name) from a failed call.
//! - [`fleet_state`]: SSM and DynamoDB together as one `FleetStateStore`.
//! - [`clients`]: one configuration with a command line's overrides, every adapter built from it.
//! - [`error`]: SDK errors → `Pairscale.Retryable` / `Pairscale.Aws` and friends.

pub mod clients;
pub mod cloudwatch;
pub mod codebuild;
pub mod dynamodb;
pub mod ec2;
pub mod ecs;
pub mod error;
pub mod fleet_state;
pub mod lambda;
pub mod sfn;
pub mod ssm;

/// Tag keys every pairscale resource carries.
pub mod tags {
    pub const FLEET: &str = "pairscale:fleet";
    pub const PAIR_ID: &str = "pairscale:pair-id";
    pub const ROLE: &str = "pairscale:role";
    pub const ROLE_FREESWITCH: &str = "freeswitch";
}

/// Load the shared SDK configuration from the environment, once per process.
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
