//! `pairscale-state`: read, validate, plan, commit, rollback, discover, recover, recover_open,
//! finish_runs, record_quality.
//!
//! The writes go through the domain's use cases ([`pairscale_core::service`]); this handler
//! parses their input, calls them, logs what they did and publishes `DrainsInProgress`.

use crate::contract::{contract, Fenced, Fields, FleetInput};
use crate::metrics::{Metrics, DRAINS_IN_PROGRESS};
use pairscale_core::drain::{node_of, DrainNode};
use pairscale_core::plan::{plan, Plan, PlanContext, PlanOutcome};
use pairscale_core::ports::{Clock, FleetStateStore, Inventory};
use pairscale_core::request::ScaleRequest;
use pairscale_core::service::{
    self, CommitReceipt, Discovery, OpenRecovery, PartialRollback, Recovery, RollbackReceipt,
};
use pairscale_core::state::ChangeSet;
use pairscale_core::validate::{validate, ValidationReport};
use pairscale_core::{
    Error, FleetConfig, FleetMeta, FleetName, Owner, Pair, PairId, PairStatus, QualityReading,
    Result,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// The longest run id (an execution ARN, like an [`Owner`]).
pub const MAX_RUN_LEN: usize = Owner::MAX_LEN;

#[derive(Clone)]
pub struct StateHandler {
    pub state: Arc<dyn FleetStateStore>,
    pub inventory: Arc<dyn Inventory>,
    pub clock: Arc<dyn Clock>,
    /// `DrainsInProgress` whenever pair statuses change, for the dashboard.
    pub metrics: Metrics,
    /// The scaling lock's TTL (the lock function's `PAIRSCALE_LOCK_TTL_SECONDS`), which the
    /// fleet's wait and poll intervals must fit ([`FleetConfig::check_lock_ttl`]).
    pub lock_ttl_secs: u64,
}

impl std::fmt::Debug for StateHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateHandler").finish_non_exhaustive()
    }
}

contract! {
    /// The input of `pairscale-state`. The writes carry the lock's fence (`owner`, `token`).
    pub enum StateAction for StateHandler {
        /// The committed count, the configuration, the pair records and the bookkeeping.
        "read" => Read(FleetInput) -> FleetState = read,
        /// The records held against the EC2 instances and ECS services that run.
        "validate" => Validate(FleetInput) -> Validated = validate,
        /// What one run will do for a request.
        "plan" => Plan(PlanInput) -> Planned = plan,
        /// A fenced, journaled change.
        "commit" => Commit(Fenced<CommitInput>) -> CommitReceipt = commit,
        /// Put back every record and the count a run changed.
        "rollback" => Rollback(Fenced<RollbackInput>) -> RollbackReceipt = rollback,
        /// A scale-in's undo once it hung up calls: put back every record but the pairs it
        /// committed to removal, which the next run removes.
        "rollback_keeping_removal" => RollbackKeepingRemoval(Fenced<RollbackInput>) -> PartialRollback = rollback_keeping_removal,
        /// Record where a scale-out's new pairs run.
        "discover" => Discover(Fenced<DiscoverInput>) -> Discovered = discover,
        /// Repair what a run whose lock was broken as stale left behind.
        "recover" => Recover(Fenced<RecoverInput>) -> Recovered = recover,
        /// Finish or undo every earlier run the fleet's journals show unfinished, oldest first.
        "recover_open" => RecoverOpen(Fenced<FleetInput>) -> RecoveredOpen = recover_open,
        /// Mark finished the runs a recovery finished once their builds were stopped and undone.
        "finish_runs" => FinishRuns(Fenced<FinishRunsInput>) -> RunsFinished = finish_runs,
        /// Keep the fleet's latest call-quality reading on its bookkeeping (`pairscale status`).
        "record_quality" => RecordQuality(Fenced<RecordQualityInput>) -> QualityRecorded = record_quality,
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// The execution's start input (a manual request or an alarm event).
    pub request: Value,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitInput {
    pub fleet: FleetName,
    /// The run whose journal this change joins; defaults to the owner (the execution ARN).
    #[serde(default)]
    pub run: Option<String>,
    pub changes: ChangeSet,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackInput {
    pub fleet: FleetName,
    #[serde(default)]
    pub run: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverInput {
    pub fleet: FleetName,
    #[serde(default)]
    pub run: Option<String>,
    pub pair_ids: Vec<PairId>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverInput {
    pub fleet: FleetName,
    /// The execution whose lock was broken as stale.
    pub stale_run: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishRunsInput {
    pub fleet: FleetName,
    /// `recover_open`'s `finish_after`: runs other than this one.
    pub runs: Vec<String>,
}

/// The runs marked finished.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunsFinished {
    pub fleet: FleetName,
    pub runs: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordQualityInput {
    pub fleet: FleetName,
    /// The drain function's `quality` reading; null (canary off, no node measured) records
    /// nothing.
    pub reading: Option<QualityReading>,
}

/// Whether a reading was recorded.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QualityRecorded {
    pub recorded: bool,
}

impl Fields for RecordQualityInput {}
impl Fields for PlanInput {}
impl Fields for CommitInput {}
impl Fields for RollbackInput {}
impl Fields for DiscoverInput {}
impl Fields for RecoverInput {}
impl Fields for FinishRunsInput {}

/// A fleet's state as stored.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FleetState {
    pub fleet: FleetName,
    pub pair_count: u32,
    pub config: FleetConfig,
    pub pairs: Vec<Pair>,
    pub meta: FleetMeta,
}

/// The fleet's records held against what runs.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Validated {
    #[serde(flatten)]
    pub report: ValidationReport,
    pub fleet: FleetName,
}

/// The plan for a request, with the request as parsed and the configuration it was made with.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Planned {
    pub fleet: FleetName,
    pub request: ScaleRequest,
    pub outcome: PlanOutcome,
    pub config: FleetConfig,
    /// A scale-in's active pairs as drain nodes, for the drain's `select`; empty otherwise.
    pub nodes: Vec<DrainNode>,
}

/// The new pairs as recorded, and as drain nodes.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Discovered {
    pub fleet: FleetName,
    #[serde(flatten)]
    pub discovery: Discovery,
}

/// What was done about the stale run, and the nodes to put back into rotation.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Recovered {
    pub fleet: FleetName,
    #[serde(flatten)]
    pub recovery: Recovery,
}

/// Every unfinished run recovered, and the nodes to put back into rotation.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RecoveredOpen {
    pub fleet: FleetName,
    #[serde(flatten)]
    pub recovery: OpenRecovery,
}

/// The run a write joins: `run`, or the owner (the execution ARN) when absent.
fn run_id(field: &str, run: Option<String>, owner: &Owner) -> Result<String> {
    let run = run.unwrap_or_else(|| owner.to_string());
    if run.is_empty() || run.len() > MAX_RUN_LEN || !run.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            &run,
            format!("must be 1-{MAX_RUN_LEN} printable characters"),
        ));
    }
    Ok(run)
}

impl StateHandler {
    /// `DrainsInProgress` after a change of pair statuses. A failure to read it back is
    /// logged, never the caller's failure: the change itself is done.
    async fn drains_in_progress(&self, fleet: &FleetName) {
        match self.state.pairs(fleet).await {
            Ok(pairs) => self.put_drains(fleet, &pairs),
            Err(e) => tracing::warn!(fleet = %fleet, error = %e, "DrainsInProgress not published"),
        }
    }

    fn put_drains(&self, fleet: &FleetName, pairs: &[Pair]) {
        let draining = pairs
            .iter()
            .filter(|p| p.status == PairStatus::Draining)
            .count();
        self.metrics.put(
            fleet,
            DRAINS_IN_PROGRESS,
            draining as f64,
            "Count",
            self.clock.now(),
        );
    }

    async fn read(&self, FleetInput { fleet }: FleetInput) -> Result<FleetState> {
        let (pair_count, config, pairs, meta) = tokio::try_join!(
            self.state.pair_count(&fleet),
            self.state.config(&fleet),
            self.state.pairs(&fleet),
            self.state.meta(&fleet),
        )?;
        config.check_lock_ttl(&fleet, self.lock_ttl_secs)?;
        Ok(FleetState {
            fleet,
            pair_count,
            config,
            pairs,
            meta,
        })
    }

    async fn validate(&self, FleetInput { fleet }: FleetInput) -> Result<Validated> {
        let (count, pairs, inv) = tokio::try_join!(
            self.state.pair_count(&fleet),
            self.state.pairs(&fleet),
            self.inventory.snapshot(&fleet),
        )?;
        let report = validate(count, &pairs, &inv);
        tracing::info!(fleet = %fleet, valid = report.valid, summary = %report.summary, "validated");
        Ok(Validated { fleet, report })
    }

    async fn plan(&self, PlanInput { request }: PlanInput) -> Result<Planned> {
        let request = ScaleRequest::from_json(&request)?;
        let fleet = request.fleet.clone();
        let (count, config, pairs, meta) = tokio::try_join!(
            self.state.pair_count(&fleet),
            self.state.config(&fleet),
            self.state.pairs(&fleet),
            self.state.meta(&fleet),
        )?;
        config.check_lock_ttl(&fleet, self.lock_ttl_secs)?;
        let outcome = plan(
            &request,
            PlanContext {
                config: &config,
                desired: count,
                pairs: &pairs,
                meta: &meta,
                now: self.clock.now(),
            },
        )?;
        tracing::info!(fleet = %fleet, plan = ?outcome.plan, "planned");
        let nodes = match outcome.plan {
            Plan::ScaleIn { .. } => pairs
                .iter()
                .filter(|p| p.status == PairStatus::Active)
                .map(|p| node_of(p, &config))
                .collect::<Result<_>>()?,
            _ => Vec::new(),
        };
        Ok(Planned {
            fleet,
            request,
            outcome,
            config,
            nodes,
        })
    }

    async fn commit(
        &self,
        Fenced { fence, input: c }: Fenced<CommitInput>,
    ) -> Result<CommitReceipt> {
        let run = run_id("run", c.run, &fence.owner)?;
        if c.changes.is_empty() {
            return Err(Error::invalid(
                "changes",
                "{}",
                "a commit must change something",
            ));
        }
        let now = self.clock.now();
        let receipt =
            service::commit(self.state.as_ref(), &c.fleet, &fence, &run, &c.changes, now).await?;
        tracing::info!(fleet = %c.fleet, run = %run, new_pairs = receipt.new_pairs.len(), "committed");
        if !c.changes.updates.is_empty() || !c.changes.removes.is_empty() {
            self.drains_in_progress(&c.fleet).await;
        }
        Ok(receipt)
    }

    async fn record_quality(
        &self,
        Fenced { fence, input: q }: Fenced<RecordQualityInput>,
    ) -> Result<QualityRecorded> {
        let Some(reading) = q.reading else {
            return Ok(QualityRecorded { recorded: false });
        };
        self.state
            .record_quality(&q.fleet, &fence, &reading)
            .await?;
        tracing::info!(fleet = %q.fleet, mos = %reading.mos, hold_scale_in = reading.hold_scale_in, "quality recorded");
        Ok(QualityRecorded { recorded: true })
    }

    async fn rollback(
        &self,
        Fenced { fence, input: r }: Fenced<RollbackInput>,
    ) -> Result<RollbackReceipt> {
        let run = run_id("run", r.run, &fence.owner)?;
        let now = self.clock.now();
        let receipt = service::rollback(self.state.as_ref(), &r.fleet, &fence, &run, now).await?;
        tracing::warn!(fleet = %r.fleet, run = %run, rolled_back = receipt.rolled_back, "rolled back");
        self.drains_in_progress(&r.fleet).await;
        Ok(receipt)
    }

    async fn rollback_keeping_removal(
        &self,
        Fenced { fence, input: r }: Fenced<RollbackInput>,
    ) -> Result<PartialRollback> {
        let run = run_id("run", r.run, &fence.owner)?;
        let now = self.clock.now();
        let undone =
            service::rollback_keeping_removal(self.state.as_ref(), &r.fleet, &fence, &run, now)
                .await?;
        tracing::warn!(
            fleet = %r.fleet,
            run = %run,
            removing = undone.removing.len(),
            restored = undone.receipt.pairs_restored.len(),
            "rolled back all but the pairs committed to removal"
        );
        self.drains_in_progress(&r.fleet).await;
        Ok(undone)
    }

    async fn discover(
        &self,
        Fenced { fence, input: d }: Fenced<DiscoverInput>,
    ) -> Result<Discovered> {
        let run = run_id("run", d.run, &fence.owner)?;
        let discovery = service::discover(
            self.state.as_ref(),
            self.inventory.as_ref(),
            &d.fleet,
            &fence,
            &run,
            &d.pair_ids,
            self.clock.now(),
        )
        .await?;
        tracing::info!(fleet = %d.fleet, pairs = discovery.nodes.len(), "discovered");
        Ok(Discovered {
            fleet: d.fleet,
            discovery,
        })
    }

    async fn recover(&self, Fenced { fence, input: r }: Fenced<RecoverInput>) -> Result<Recovered> {
        let stale = run_id("stale_run", Some(r.stale_run), &fence.owner)?;
        let recovery = service::recover(
            self.state.as_ref(),
            &r.fleet,
            &fence,
            &stale,
            self.clock.now(),
        )
        .await?;
        tracing::warn!(fleet = %r.fleet, stale_run = %stale, action = recovery.action.as_str(), resume = recovery.resume_nodes.len(), "recovered a stale run");
        self.put_drains(&r.fleet, &recovery.pairs);
        Ok(Recovered {
            fleet: r.fleet,
            recovery,
        })
    }

    async fn recover_open(
        &self,
        Fenced { fence, input: f }: Fenced<FleetInput>,
    ) -> Result<RecoveredOpen> {
        let recovery =
            service::recover_open(self.state.as_ref(), &f.fleet, &fence, self.clock.now()).await?;
        for r in &recovery.runs {
            tracing::warn!(fleet = %f.fleet, run = %r.stale_run, action = r.action.as_str(), resume = r.resume_nodes.len(), "recovered an unfinished run");
        }
        if let Some(last) = recovery.runs.last() {
            self.put_drains(&f.fleet, &last.pairs);
        }
        Ok(RecoveredOpen {
            fleet: f.fleet,
            recovery,
        })
    }

    async fn finish_runs(
        &self,
        Fenced { fence, input: f }: Fenced<FinishRunsInput>,
    ) -> Result<RunsFinished> {
        let runs = f
            .runs
            .into_iter()
            .map(|r| run_id("runs", Some(r), &fence.owner))
            .collect::<Result<Vec<_>>>()?;
        service::finish_runs(
            self.state.as_ref(),
            &f.fleet,
            &fence,
            &runs,
            self.clock.now(),
        )
        .await?;
        tracing::warn!(fleet = %f.fleet, runs = ?runs, "recovered runs finished");
        Ok(RunsFinished {
            fleet: f.fleet,
            runs,
        })
    }
}
