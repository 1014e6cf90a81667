//! SSM and DynamoDB together as the core's `FleetStateStore`, and EC2 with ECS as its
//! `Inventory`.

use crate::dynamodb::FleetTable;
use crate::ec2::Instances;
use crate::ecs::Services;
use crate::ssm::FleetParams;
use async_trait::async_trait;
use pairscale_core::ports::{FleetStateStore, Inventory};
use pairscale_core::state::{Fence, Journal, JournalBuild, WriteBatch};
use pairscale_core::validate::InventorySnapshot;
use pairscale_core::{FleetConfig, FleetMeta, FleetName, Pair, PairId, Result, Timestamp};

#[derive(Debug, Clone)]
pub struct AwsFleetState {
    pub params: FleetParams,
    pub table: FleetTable,
}

impl AwsFleetState {
    /// The fleet state in `table` and under `ssm_prefix`, with clients from `sdk`.
    pub fn new(sdk: &aws_config::SdkConfig, table: &str, ssm_prefix: &str) -> Self {
        AwsFleetState {
            params: FleetParams::new(aws_sdk_ssm::Client::new(sdk), ssm_prefix),
            table: FleetTable::new(aws_sdk_dynamodb::Client::new(sdk), table),
        }
    }
}

#[async_trait]
impl FleetStateStore for AwsFleetState {
    async fn pair_count(&self, fleet: &FleetName) -> Result<u32> {
        self.params.pair_count(fleet).await
    }
    async fn set_pair_count(&self, fleet: &FleetName, count: u32) -> Result<()> {
        self.params.set_pair_count(fleet, count).await
    }
    async fn config(&self, fleet: &FleetName) -> Result<FleetConfig> {
        self.params.config(fleet).await
    }
    async fn pairs(&self, fleet: &FleetName) -> Result<Vec<Pair>> {
        self.table.pairs(fleet).await
    }
    async fn meta(&self, fleet: &FleetName) -> Result<FleetMeta> {
        self.table.meta(fleet).await
    }
    async fn journal(&self, fleet: &FleetName, run: &str) -> Result<Option<Journal>> {
        self.table.journal(fleet, run).await
    }
    async fn open_journals(&self, fleet: &FleetName) -> Result<Vec<Journal>> {
        self.table.open_journals(fleet).await
    }
    async fn finish_journal(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        run: &str,
        now: pairscale_core::Timestamp,
    ) -> Result<()> {
        self.table.finish_journal(fleet, fence, run, now).await
    }
    async fn note_build(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        run: &str,
        step: &str,
        build: &JournalBuild,
        now: Timestamp,
    ) -> Result<()> {
        self.table
            .note_build(fleet, fence, run, step, build, now)
            .await
    }
    async fn allocate_pair_ids(&self, fleet: &FleetName, n: u32) -> Result<Vec<PairId>> {
        self.table.allocate_pair_ids(fleet, n).await
    }
    async fn write(&self, fleet: &FleetName, fence: &Fence, batch: &WriteBatch) -> Result<()> {
        self.table.write(fleet, fence, batch).await
    }
    async fn record_quality(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        reading: &pairscale_core::QualityReading,
    ) -> Result<()> {
        self.table.record_quality(fleet, fence, reading).await
    }
    async fn note_quality(
        &self,
        fleet: &FleetName,
        reading: &pairscale_core::QualityReading,
    ) -> Result<()> {
        self.table.note_quality(fleet, reading).await
    }

    async fn note_sample(
        &self,
        fleet: &FleetName,
        pair: pairscale_core::PairId,
        sample: pairscale_core::ports::LoadSample,
        at: pairscale_core::Timestamp,
    ) -> Result<bool> {
        self.table.note_sample(fleet, pair, sample, at).await
    }
}

#[derive(Debug, Clone)]
pub struct AwsInventory {
    pub instances: Instances,
    pub services: Services,
}

#[async_trait]
impl Inventory for AwsInventory {
    async fn snapshot(&self, fleet: &FleetName) -> Result<InventorySnapshot> {
        let (instances, services) =
            tokio::try_join!(self.instances.list(fleet), self.services.list(fleet))?;
        Ok(InventorySnapshot {
            instances,
            services,
        })
    }
}
