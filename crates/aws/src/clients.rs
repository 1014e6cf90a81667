//! One SDK configuration for a process that talks to many services (the operator's CLI):
//! loaded once from the standard environment, with a command line's overrides on top, and
//! every adapter built from it. Callers never hold an SDK type.

use crate::dynamodb::{DynamoLockStore, FleetTable};
use crate::ec2::Instances;
use crate::ecs::Services;
use crate::fleet_state::AwsInventory;
use crate::lambda::Functions;
use crate::sfn::{Executions, Runs};
use crate::ssm::FleetParams;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// What a command line may set over the environment (`--region`, `--profile`,
/// `--endpoint-url`); `None` leaves the standard chain's answer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Clients {
    sdk: SdkConfig,
}

impl Clients {
    /// The configuration as the AWS CLI finds it (region, profile, credentials,
    /// `AWS_ENDPOINT_URL`), with `overrides` on top.
    pub async fn load(overrides: &Overrides) -> Clients {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = &overrides.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &overrides.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &overrides.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        Clients {
            sdk: loader.load().await,
        }
    }

    /// Adapters over a configuration loaded elsewhere (a test's, for the emulator).
    pub fn from_config(sdk: SdkConfig) -> Clients {
        Clients { sdk }
    }

    /// The region every call goes to; `None` when nothing named one.
    pub fn region(&self) -> Option<&str> {
        self.sdk.region().map(Region::as_ref)
    }

    pub fn fleet_params(&self, prefix: &str) -> FleetParams {
        FleetParams::new(aws_sdk_ssm::Client::new(&self.sdk), prefix)
    }

    pub fn fleet_table(&self, table: &str) -> FleetTable {
        FleetTable::new(aws_sdk_dynamodb::Client::new(&self.sdk), table)
    }

    pub fn locks(&self, table: &str) -> DynamoLockStore {
        DynamoLockStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), table)
    }

    /// The EC2 instances and the ECS services of `cluster` tagged for a fleet.
    pub fn inventory(&self, cluster: &str) -> AwsInventory {
        AwsInventory {
            instances: Instances::new(aws_sdk_ec2::Client::new(&self.sdk)),
            services: Services::new(aws_sdk_ecs::Client::new(&self.sdk), cluster),
        }
    }

    pub fn executions(&self) -> Executions {
        Executions::new(aws_sdk_sfn::Client::new(&self.sdk))
    }

    pub fn runs(&self) -> Runs {
        Runs::new(aws_sdk_sfn::Client::new(&self.sdk))
    }

    pub fn functions(&self) -> Functions {
        Functions::new(aws_sdk_lambda::Client::new(&self.sdk))
    }
}
