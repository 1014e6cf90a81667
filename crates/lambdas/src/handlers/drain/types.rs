//! What the drain's actions take and return.

use crate::contract::Fields;
use pairscale_core::canary::{CanaryCall, CanaryConfig, QualityReading};
use pairscale_core::drain::{Decision, DrainNode, Selection, Verdict};
use pairscale_core::ports::{Hangup, NodeHealth};
use pairscale_core::{
    DrainConfig, Error, FleetName, HangupCause, KamailioRpcUrls, PairId, Timestamp,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectInput {
    pub nodes: Vec<DrainNode>,
    /// k: how many pairs the run removes.
    pub remove: u32,
    /// s: extra candidates drained alongside, the first k to empty win.
    #[serde(default)]
    pub race_spares: u32,
    /// Channels one pair can carry (the fleet's `pair_capacity_channels`): given, the spares
    /// are lowered until the pairs left serving can carry the live load read here.
    #[serde(default)]
    pub pair_capacity_channels: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodesInput {
    pub nodes: Vec<DrainNode>,
}

/// `quiesce` and `resume`, beside the run's `owner` and `token`: the fleet whose lock they
/// must still hold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetNodesInput {
    pub fleet: FleetName,
    pub nodes: Vec<DrainNode>,
    /// Every Kamailio to disable or enable the nodes on (the fleet's `kamailio_rpc_urls`);
    /// absent or null: the function's own `PAIRSCALE_KAMAILIO_RPC_URL`.
    #[serde(default)]
    pub kamailio_rpc_urls: Option<KamailioRpcUrls>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInput {
    pub nodes: Vec<DrainNode>,
    /// k; every node when absent.
    #[serde(default)]
    pub remove: Option<usize>,
    /// The fleet's drain configuration and when the drain started: with both, the output
    /// carries the policy's `decision`.
    #[serde(default)]
    pub drain: Option<DrainConfig>,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    /// The nodes an earlier `force` designated for removal (its `force_chosen`): they keep
    /// that designation and win the race before any spare.
    #[serde(default)]
    pub chosen: Vec<PairId>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForceInput {
    /// The fleet whose lock the run (`owner`, `token` beside) must still hold.
    pub fleet: FleetName,
    pub nodes: Vec<DrainNode>,
    /// A hangup cause FreeSWITCH knows; `MANAGER_REQUEST` when absent.
    #[serde(default)]
    pub hupall_cause: HangupCause,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryInput {
    /// New nodes, each called at its own SIP address.
    pub nodes: Vec<DrainNode>,
    /// The fleet's `canary` configuration; its defaults when absent.
    #[serde(default)]
    pub canary: CanaryConfig,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityInput {
    /// The fleet the figure is published for.
    pub fleet: FleetName,
    /// The fleet's active nodes; `canary.quality_sample` of them are called.
    pub nodes: Vec<DrainNode>,
    #[serde(default)]
    pub canary: CanaryConfig,
}

/// `measure`: the fleet whose quality the schedule measures.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureInput {
    pub fleet: FleetName,
}

/// `sample`: the fleet whose active pairs to read.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleInput {
    pub fleet: FleetName,
}

impl Fields for SampleInput {}

impl Fields for MeasureInput {}
impl Fields for CanaryInput {}
impl Fields for QualityInput {}
impl Fields for SelectInput {}
impl Fields for NodesInput {}
impl Fields for FleetNodesInput {}
impl Fields for CheckInput {}
impl Fields for ForceInput {}

/// An error as the Lambda runtime reports one, for a node that failed on its own.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NodeError {
    #[serde(rename = "errorType")]
    pub error_type: String,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

impl From<&Error> for NodeError {
    fn from(e: &Error) -> NodeError {
        NodeError {
            error_type: e.name().as_str().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// Why a node could not be visited.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Failed {
    pub error: NodeError,
}

/// One node's line in an output: its pair id beside what was seen or done there.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "PerNode_{T}")]
pub struct PerNode<T> {
    pub pair_id: PairId,
    #[serde(flatten)]
    pub result: T,
}

/// A visit that may fail for one node without failing the action.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Visit_{T}")]
pub enum Visit<T> {
    Done(T),
    Failed(Failed),
}

impl Failed {
    pub fn of(pair_id: PairId, e: &Error) -> PerNode<Failed> {
        PerNode {
            pair_id,
            result: Failed { error: e.into() },
        }
    }
}

impl<T> Visit<T> {
    pub fn failed(e: &Error) -> Visit<T> {
        Visit::Failed(Failed { error: e.into() })
    }
}

/// The candidates chosen, best first, and why the others were not.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Selected {
    pub remove: u32,
    pub race_spares: u32,
    /// The spares the live load left room for (`race_spares` without a capacity): the most
    /// the choice raced.
    pub spares_allowed: u32,
    /// The channels up on every node read, protected ones included: the live load.
    pub live_channels: u64,
    /// At least `remove` candidates were found.
    pub enough: bool,
    /// The candidates as nodes, best first: the input of `quiesce` and `check`.
    pub nodes: Vec<DrainNode>,
    #[serde(flatten)]
    pub selection: Selection,
    pub unreachable: Vec<PerNode<Failed>>,
}

/// A node out of rotation and paused.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Quiesce {
    pub disabled: bool,
    pub paused: bool,
    /// Both pause flags were already set (a retried call).
    pub already_paused: bool,
}

/// Every node quiesced (an error for one node fails the action; the retry finishes).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Quiesced {
    pub nodes: Vec<PerNode<Quiesce>>,
    /// When this quiesce ran: `check` measures the deadline from it.
    pub started_at: Timestamp,
}

/// A node's channel count.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Channels {
    pub channels: u64,
    /// The pause flags were gone (the node restarted) and were set again.
    pub repaused: bool,
}

/// The drain after one look: each node's count, the race's verdict, the nodes each next
/// step takes, and the policy's decision.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Checked {
    #[serde(flatten)]
    pub verdict: Verdict,
    pub nodes: Vec<PerNode<Visit<Channels>>>,
    pub repaused: Vec<PairId>,
    /// The winners and the rest, as nodes, so the state machine can hand each list on.
    pub winner_nodes: Vec<DrainNode>,
    pub loser_nodes: Vec<DrainNode>,
    /// Under `force`: only the nodes to cut, never the spares. Empty when none of the nodes
    /// to remove can be reached (or all are empty already): nothing to hang up this round.
    pub force_nodes: Vec<DrainNode>,
    /// Under `force`: the nodes the run removes (`chosen` as given, or the emptiest `remove`
    /// on the first force). Handed back as `chosen` to every later check.
    pub force_chosen: Vec<PairId>,
    /// Under `force`: every other candidate, the spares that keep their calls. The run's
    /// undo puts back only these once it has hung up calls.
    pub spare_nodes: Vec<DrainNode>,
    /// The policy's word, when `drain` and `started_at` were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// A node accepting calls and back in rotation.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Resume {
    pub enabled: bool,
    /// Either pause flag was set.
    pub was_paused: bool,
}

/// Every node resumed (an error for one node fails the action; the retry finishes).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Resumed {
    pub nodes: Vec<PerNode<Resume>>,
}

/// Every node answers and is ready (otherwise `Pairscale.NotReady` or
/// `Pairscale.NodeUnreachable`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Healthy {
    pub ready: bool,
    pub nodes: Vec<PerNode<NodeHealth>>,
}

/// The calls cut on each node reached.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Forced {
    pub cause: HangupCause,
    /// Calls cut on every node reached.
    pub cut: u64,
    /// Every node was reached.
    pub complete: bool,
    pub unreachable: Vec<PairId>,
    pub nodes: Vec<PerNode<Visit<Hangup>>>,
}

/// Every new node passed its canary call (any failure is `Pairscale.CanaryFailed`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Canaried {
    /// The fleet's canary is switched off: no call was placed.
    pub skipped: bool,
    pub nodes: Vec<PerNode<CanaryCall>>,
}

/// The fleet's call quality, measured now.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Quality {
    /// Below the threshold: the scale-in waits.
    pub hold_scale_in: bool,
    /// None when the canary is off, or no node was there to call and the operator's metric
    /// (if any) had no data.
    pub reading: Option<QualityReading>,
}

/// One pair's load, as `sample` read it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Sample {
    pub channels: u32,
    /// Calls a minute since the pair's sample before; absent without one (a new pair, a
    /// restarted node, a sample less than 30 s or more than 10 minutes old).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrivals_per_minute: Option<u32>,
    /// Written to the pair's record (`last_channels`, `last_seen_at`); false when the record
    /// went meanwhile or holds a newer sample.
    pub recorded: bool,
}

/// What `sample` read and recorded: the fleet's load signal.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Sampled {
    pub sampled_at: Timestamp,
    /// Active pairs, of which `nodes` lists each (read, or why not).
    pub active_nodes: usize,
    /// Channels up on the pairs read.
    pub channels: u64,
    /// Calls that arrived on them a minute; null unless every pair read had a sample before
    /// this one (30 s to 10 minutes back, on a node not restarted since).
    pub arrivals_per_minute: Option<u64>,
    /// Mean channels per pair read; null when none was.
    pub channels_per_pair: Option<f64>,
    /// `channels` as a percentage of what the pairs read carry at `pair_capacity_channels`;
    /// null without a capacity.
    pub utilization_percent: Option<f64>,
    pub nodes: Vec<PerNode<Visit<Sample>>>,
}

/// What `measure` found and recorded.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Measured {
    /// A reading was taken and recorded (unless a newer one was there already).
    pub recorded: bool,
    /// The fleet's active nodes, of which `canary.quality_sample` were called.
    pub active_nodes: usize,
    pub reading: Option<QualityReading>,
}
