//! The small traits through which the domain sees the world. Adapters (DynamoDB, SSM, EC2,
//! ECS, Step Functions, Event Socket, Kamailio) implement them; tests and the domain services
//! take them as `Arc<dyn ...>`.

use crate::canary::{CanaryCall, Mos, OperatorMetric, QualityReading};
use crate::error::Result;
use crate::fleet::{FleetConfig, FleetMeta, Pair};
use crate::hangup::HangupCause;
use crate::ids::{FleetName, Owner, PairId, Timestamp};
use crate::lock::{BreakRecord, ExecutionStatus, LockGrant, LockRecord, ReleaseOutcome};
use crate::state::{Fence, Journal, WriteBatch};
use crate::validate::InventorySnapshot;
use async_trait::async_trait;
use serde::Serialize;

/// What the clock says. Injected, so tests decide what time it is.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }
}

/// A request to take the lock.
#[derive(Debug, Clone)]
pub struct AcquireLock {
    pub fleet: FleetName,
    pub owner: Owner,
    pub ttl_secs: u64,
    /// What the run is for, shown to whoever finds the lock held.
    pub request: String,
    pub now: Timestamp,
}

/// The scaling lock store. Every method is a single conditional write or read; the rules are
/// in [`crate::lock`].
#[async_trait]
pub trait LockStore: Send + Sync {
    /// Take the lock when free, expired, or already ours (a retried acquire keeps the token).
    async fn acquire(&self, req: &AcquireLock) -> Result<LockGrant>;
    /// Release the lock if `owner` holds it; already released by this owner is success.
    async fn release(
        &self,
        fleet: &FleetName,
        owner: &Owner,
        now: Timestamp,
    ) -> Result<ReleaseOutcome>;
    /// Push the expiry forward; only the holder may.
    async fn heartbeat(
        &self,
        fleet: &FleetName,
        owner: &Owner,
        ttl_secs: u64,
        now: Timestamp,
    ) -> Result<LockGrant>;
    async fn get(&self, fleet: &FleetName) -> Result<Option<LockRecord>>;
    /// Mark `owner`'s run journal finished (nothing left for a later run to recover), only
    /// while `owner` holds the lock. False when there is nothing to finish: no journal, already
    /// finished, or the lock is not `owner`'s.
    async fn finish_journal(
        &self,
        fleet: &FleetName,
        owner: &Owner,
        now: Timestamp,
    ) -> Result<bool>;
    /// Clear the holder, conditional on the lock still being exactly `expected` (same holder
    /// and token), recording who broke it and why.
    async fn force_release(&self, expected: &LockRecord, record: &BreakRecord) -> Result<()>;
}

/// Step Functions, as far as lock liveness needs it.
#[async_trait]
pub trait ExecutionRegistry: Send + Sync {
    async fn status(&self, execution_arn: &str) -> Result<ExecutionStatus>;
}

/// Where fleet state lives: the committed count and configuration (SSM), pair records,
/// fleet bookkeeping and run journals (DynamoDB).
#[async_trait]
pub trait FleetStateStore: Send + Sync {
    /// The committed pair count; `UnknownFleet` when the parameter does not exist.
    async fn pair_count(&self, fleet: &FleetName) -> Result<u32>;
    /// Overwrite the committed pair count. Callers have just passed a fenced write.
    async fn set_pair_count(&self, fleet: &FleetName, count: u32) -> Result<()>;
    async fn config(&self, fleet: &FleetName) -> Result<FleetConfig>;
    /// Every pair record of the fleet, sorted by id.
    async fn pairs(&self, fleet: &FleetName) -> Result<Vec<Pair>>;
    async fn meta(&self, fleet: &FleetName) -> Result<FleetMeta>;
    async fn journal(&self, fleet: &FleetName, run: &str) -> Result<Option<Journal>>;
    /// The journals of runs that never finished (no `finished_at`), oldest first: what a run
    /// that stopped, lost its lock or failed its compensation left for the next one.
    async fn open_journals(&self, fleet: &FleetName) -> Result<Vec<Journal>>;
    /// Mark another run's journal finished once this run has recovered it, only while `fence`
    /// still holds the lock.
    async fn finish_journal(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        run: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// Keep a build `run` started under `step` in its journal (created if the run wrote
    /// nothing yet), only while `fence` still holds the lock. The same build again is a
    /// no-op; another build at the same step is `InvalidRequest`.
    async fn note_build(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        run: &str,
        step: &str,
        build: &crate::state::JournalBuild,
        now: Timestamp,
    ) -> Result<()>;
    /// Reserve `n` new pair ids. Ids are never reused; a gap is harmless.
    async fn allocate_pair_ids(&self, fleet: &FleetName, n: u32) -> Result<Vec<PairId>>;
    /// Write a batch only while `fence` still holds the lock (`Pairscale.Fenced` otherwise).
    async fn write(&self, fleet: &FleetName, fence: &Fence, batch: &WriteBatch) -> Result<()>;
    /// Record a run's quality reading on the fleet's bookkeeping, only while `fence` still
    /// holds the lock. An observation, not a change: no journal, nothing to roll back.
    async fn record_quality(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        reading: &QualityReading,
    ) -> Result<()>;
    /// Record a scheduled quality reading, taken under no lock: written only over an older
    /// reading, never over a newer one (a late measurement never hides a fresher figure).
    async fn note_quality(&self, fleet: &FleetName, reading: &QualityReading) -> Result<()>;
    /// Record a load sample on one pair (`last_channels`, `last_seen_at`,
    /// `sessions_since_startup`, `arrivals_per_minute`), taken under no lock: only on a record
    /// that exists and over an older sample. Whether it was written.
    async fn note_sample(
        &self,
        fleet: &FleetName,
        pair: PairId,
        sample: LoadSample,
        at: Timestamp,
    ) -> Result<bool>;
}

/// The operator's own call-quality metric, as CloudWatch holds it.
#[async_trait]
pub trait QualitySignals: Send + Sync {
    /// `metric`'s statistic over its window ending at `now`; None when it has no data
    /// there. A value that is not a MOS (1 to 5) is an error naming the metric.
    async fn operator_mos(&self, metric: &OperatorMetric, now: Timestamp) -> Result<Option<Mos>>;
}

/// What runs: EC2 instances and ECS services tagged for the fleet.
#[async_trait]
pub trait Inventory: Send + Sync {
    async fn snapshot(&self, fleet: &FleetName) -> Result<InventorySnapshot>;
}

/// What a media node showed when asked for its live channels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeSnapshot {
    /// Age of each live channel (leg), in whole seconds.
    pub channel_ages_secs: Vec<u64>,
    /// The node's `sessions since startup` counter (`status`); None where not read.
    pub sessions_since_startup: Option<u64>,
}

/// One pair's load sample, as the `sample` action records it on the pair's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSample {
    pub channels: u32,
    /// The node's `sessions since startup` counter; None where not read.
    pub sessions_since_startup: Option<u64>,
    /// Calls a minute since the pair's sample before ([`crate::policy::offered::arrivals_per_minute`]).
    pub arrivals_per_minute: Option<u32>,
}

/// What a draining node showed: its channel count and whether both pause flags are still set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainState {
    pub channels: u64,
    /// Paused inbound and outbound. False on a node being drained means it restarted (the
    /// flags live only in FreeSWITCH's memory).
    pub paused: bool,
}

/// What `hupall` did on one node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Hangup {
    /// Channels up when the hangup was sent: the calls cut.
    pub cut: u64,
    /// Channels still counted right after (hangups finish asynchronously).
    pub remaining: u64,
    /// The cause FreeSWITCH reports having used.
    pub cause: String,
}

/// FreeSWITCH media nodes, each named by its Event Socket endpoint (`host:port`). Every
/// failure to reach or understand a node is `Pairscale.NodeUnreachable` naming it.
#[async_trait]
pub trait MediaNodes: Send + Sync {
    /// The node's live channels with their ages at `now`.
    async fn snapshot(&self, endpoint: &str, now: Timestamp) -> Result<NodeSnapshot>;
    /// Channel count and pause flags, in one visit.
    async fn drain_state(&self, endpoint: &str) -> Result<DrainState>;
    /// Refuse new sessions inbound and outbound, confirmed by `pause_check` both ways.
    /// Returns whether both flags were already set (a retried call).
    async fn pause(&self, endpoint: &str) -> Result<bool>;
    /// Accept new sessions both ways again, confirmed. Returns whether either flag was set.
    async fn resume(&self, endpoint: &str) -> Result<bool>;
    /// Hang up every channel with `cause`.
    async fn hupall(&self, endpoint: &str, cause: HangupCause) -> Result<Hangup>;
    /// The node's own word on whether it takes calls (`status`).
    async fn health(&self, endpoint: &str) -> Result<NodeHealth>;
    /// A canary call: the node calls `dial_string` (its own SIP address, through its SIP
    /// profile), keeps the call up for `seconds` and hangs up; what FreeSWITCH measured of the
    /// media it received. A call that was not answered is a [`CanaryCall`] saying so, not an
    /// error; failing to reach the node is `Pairscale.NodeUnreachable`.
    async fn canary(&self, endpoint: &str, dial_string: &str, seconds: u32) -> Result<CanaryCall>;
}

/// What a node's `status` said.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct NodeHealth {
    /// FreeSWITCH's `is ready`: up and accepting new sessions.
    pub ready: bool,
    pub sessions: u64,
    pub max_sessions: u64,
    pub idle_cpu: f64,
}

/// A media node as the SIP load balancer knows it, and which of the balancer's instances a
/// change to it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipDestination {
    pub set_id: u32,
    /// `sip:IP:PORT`, exactly as stored.
    pub uri: String,
    pub pair_id: PairId,
    /// Every instance sharing the list (the fleet's `kamailio_rpc_urls`); None: the adapter's
    /// own.
    pub proxies: Option<crate::proxies::KamailioRpcUrls>,
}

/// The SIP load balancer's list of media nodes. Every change is confirmed, on every instance of
/// the balancer, before it returns (`Pairscale.Dispatcher` when refused or unconfirmed,
/// `Pairscale.Retryable` when it may succeed later, both naming the instance) and is
/// idempotent: an instance that missed a change takes it on the retry.
#[async_trait]
pub trait Dispatcher: Send + Sync {
    async fn register(&self, node: &SipDestination) -> Result<()>;
    /// Out of rotation; established calls are untouched.
    async fn disable(&self, node: &SipDestination) -> Result<()>;
    /// Back into rotation.
    async fn enable(&self, node: &SipDestination) -> Result<()>;
    /// Removed; already absent is success.
    async fn deregister(&self, node: &SipDestination) -> Result<()>;
}

/// A started build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedBuild {
    pub build_id: String,
    pub project: String,
}

/// The build service (CodeBuild). `start` with the same idempotency token returns the same
/// build, so a retried start never runs a second Terraform.
#[async_trait]
pub trait Builds: Send + Sync {
    async fn start(
        &self,
        project: &str,
        environment: &[(String, String)],
        idempotency_token: &str,
    ) -> Result<StartedBuild>;
    async fn status(&self, build_id: &str) -> Result<crate::build::BuildStatus>;
    /// Stop a running build; one already finished is success.
    async fn stop(&self, build_id: &str) -> Result<()>;
    /// The last lines of an ended build's log (at most [`LOG_TAIL_LINES`]), to tell a passing
    /// failure from one no retry mends; None when the build kept no log.
    async fn log_tail(&self, build_id: &str) -> Result<Option<String>>;
}

/// The most log lines [`Builds::log_tail`] reads: Terraform prints its errors last.
pub const LOG_TAIL_LINES: usize = 200;

/// The policy's record of each fleet ([`crate::policy::PolicyState`]). Every write is
/// conditional on the version read, so two evaluations that overlap never lose each other's
/// recommendation: the later one is told, reads again and merges.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// The fleet's record; the default (version 0, nothing kept, not suspended) when it has
    /// none yet.
    async fn load(&self, fleet: &FleetName) -> Result<crate::policy::PolicyState>;
    /// Keep `recent` as the fleet's recommendations, only while the record is still at
    /// `version`. False when another write came first.
    async fn save_recent(
        &self,
        fleet: &FleetName,
        version: u64,
        recent: &[crate::policy::Recommendation],
        now: Timestamp,
    ) -> Result<bool>;
    /// Set (Some) or clear (None) the operator's suspension, whatever the version: an
    /// evaluation that raced it reads the new version and tries again.
    async fn set_suspended(
        &self,
        fleet: &FleetName,
        suspension: Option<&crate::policy::Suspension>,
    ) -> Result<()>;
}

/// What starting a run came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum StartOutcome {
    Started {
        execution_arn: String,
    },
    /// A run of that name exists: an earlier evaluation of the same minute started it.
    AlreadyStarted,
}

/// The fleet's scaling runs (its state machine), as the policy starts and reads them.
#[async_trait]
pub trait ScalingRuns: Send + Sync {
    /// Whether a run of the fleet is executing now.
    async fn any_running(&self) -> Result<bool>;
    /// Start a run named `name` with `input`, once: a name already used is
    /// [`StartOutcome::AlreadyStarted`], not an error.
    async fn start_once(&self, name: &str, input: &serde_json::Value) -> Result<StartOutcome>;
    /// How long the newest succeeded scale-out runs took, newest first, in milliseconds: at
    /// most `count` of them.
    async fn scale_out_durations(&self, count: usize) -> Result<Vec<i64>>;
}

/// CloudWatch, as the policy reads it: the alarms that still ask for a step, and the fleet's
/// load history.
#[async_trait]
pub trait FleetSignals: Send + Sync {
    /// Of `alarm_names`, those in state ALARM now.
    async fn alarms_in_alarm(&self, alarm_names: &[String]) -> Result<Vec<String>>;
    /// The fleet's `Channels` metric from `since` to `until`: the Maximum of each 300 s
    /// period, as (period start in ms, channels), oldest first.
    async fn channels_history(
        &self,
        fleet: &FleetName,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<(i64, f64)>>;
}
