//! `pairscale-state`: read, validate, plan, commit, rollback.

use super::lock::to_json;
use crate::input::{action, parse};
use crate::metrics::{Metrics, DRAINS_IN_PROGRESS};
use pairscale_core::drain::{node_of, DrainNode};
use pairscale_core::plan::{plan, PlanContext};
use pairscale_core::ports::{Clock, FleetStateStore, Inventory};
use pairscale_core::request::ScaleRequest;
use pairscale_core::service::{assess_stale_run, commit, rollback, StaleRun};
use pairscale_core::state::{ChangeSet, Fence};
use pairscale_core::validate::{discover, validate};
use pairscale_core::{Error, FleetConfig, FleetName, Owner, Pair, PairId, PairStatus, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub const ACTIONS: &[&str] = &[
    "read", "validate", "plan", "commit", "rollback", "discover", "recover",
];

#[derive(Clone)]
pub struct StateHandler {
    pub state: Arc<dyn FleetStateStore>,
    pub inventory: Arc<dyn Inventory>,
    pub clock: Arc<dyn Clock>,
    /// `DrainsInProgress` whenever pair statuses change, for the dashboard.
    pub metrics: Metrics,
}

impl std::fmt::Debug for StateHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateHandler").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetOnly {
    fleet: FleetName,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanInput {
    /// The execution's start input (manual request or alarm event).
    request: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitInput {
    fleet: FleetName,
    owner: Owner,
    token: u64,
    /// The run whose journal this change joins; defaults to the owner (the execution ARN).
    #[serde(default)]
    run: Option<String>,
    changes: ChangeSet,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackInput {
    fleet: FleetName,
    owner: Owner,
    token: u64,
    #[serde(default)]
    run: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoverInput {
    fleet: FleetName,
    owner: Owner,
    token: u64,
    #[serde(default)]
    run: Option<String>,
    pair_ids: Vec<PairId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoverInput {
    fleet: FleetName,
    owner: Owner,
    token: u64,
    /// The execution whose lock was broken as stale.
    stale_run: String,
}

/// The active pairs as drain nodes, for `select`.
fn active_nodes(pairs: &[Pair], config: &FleetConfig) -> Result<Vec<DrainNode>> {
    pairs
        .iter()
        .filter(|p| p.status == PairStatus::Active)
        .map(|p| node_of(p, config))
        .collect()
}

fn run_id(run: Option<String>, owner: &Owner) -> Result<String> {
    let run = run.unwrap_or_else(|| owner.to_string());
    if run.is_empty() || run.len() > 512 || !run.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid(
            "run",
            &run,
            "must be 1-512 printable characters",
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

    pub async fn handle(&self, input: Value) -> Result<Value> {
        let now = self.clock.now();
        match action(&input, ACTIONS)? {
            "read" => {
                let FleetOnly { fleet } = parse(&input)?;
                let (count, config, pairs, meta) = tokio::try_join!(
                    self.state.pair_count(&fleet),
                    self.state.config(&fleet),
                    self.state.pairs(&fleet),
                    self.state.meta(&fleet),
                )?;
                Ok(
                    json!({"fleet": fleet, "pair_count": count, "config": config, "pairs": pairs, "meta": meta}),
                )
            }
            "validate" => {
                let FleetOnly { fleet } = parse(&input)?;
                let (count, pairs, inv) = tokio::try_join!(
                    self.state.pair_count(&fleet),
                    self.state.pairs(&fleet),
                    self.inventory.snapshot(&fleet),
                )?;
                let report = validate(count, &pairs, &inv);
                tracing::info!(fleet = %fleet, valid = report.valid, summary = %report.summary, "validated");
                let mut out = to_json(&report)?;
                out["fleet"] = json!(fleet);
                Ok(out)
            }
            "plan" => {
                let PlanInput { request } = parse(&input)?;
                let req = ScaleRequest::from_json(&request)?;
                let fleet = &req.fleet;
                let (count, config, pairs, meta) = tokio::try_join!(
                    self.state.pair_count(fleet),
                    self.state.config(fleet),
                    self.state.pairs(fleet),
                    self.state.meta(fleet),
                )?;
                let outcome = plan(
                    &req,
                    PlanContext {
                        config: &config,
                        desired: count,
                        pairs: &pairs,
                        meta: &meta,
                        now,
                    },
                )?;
                tracing::info!(fleet = %fleet, plan = ?outcome.plan, "planned");
                // A scale-in hands the active pairs on to the drain's `select`, as nodes.
                let nodes = match outcome.plan {
                    pairscale_core::plan::Plan::ScaleIn { .. } => active_nodes(&pairs, &config)?,
                    _ => Vec::new(),
                };
                Ok(
                    json!({"fleet": fleet, "request": req, "outcome": outcome, "config": config, "nodes": nodes}),
                )
            }
            "commit" => {
                let c: CommitInput = parse(&input)?;
                let run = run_id(c.run, &c.owner)?;
                if c.changes.is_empty() {
                    return Err(Error::invalid(
                        "changes",
                        "{}",
                        "a commit must change something",
                    ));
                }
                let fence = Fence {
                    owner: c.owner,
                    token: c.token,
                };
                let receipt =
                    commit(self.state.as_ref(), &c.fleet, &fence, &run, &c.changes, now).await?;
                tracing::info!(fleet = %c.fleet, run = %run, new_pairs = receipt.new_pairs.len(), "committed");
                if !c.changes.updates.is_empty() || !c.changes.removes.is_empty() {
                    self.drains_in_progress(&c.fleet).await;
                }
                to_json(&receipt)
            }
            "rollback" => {
                let r: RollbackInput = parse(&input)?;
                let run = run_id(r.run, &r.owner)?;
                let fence = Fence {
                    owner: r.owner,
                    token: r.token,
                };
                let receipt = rollback(self.state.as_ref(), &r.fleet, &fence, &run, now).await?;
                tracing::warn!(fleet = %r.fleet, run = %run, rolled_back = receipt.rolled_back, "rolled back");
                self.drains_in_progress(&r.fleet).await;
                to_json(&receipt)
            }
            "discover" => {
                let d: DiscoverInput = parse(&input)?;
                let run = run_id(d.run, &d.owner)?;
                if d.pair_ids.is_empty()
                    || d.pair_ids.len() > pairscale_core::fleet::MAX_FLEET_PAIRS as usize
                {
                    return Err(Error::invalid(
                        "pair_ids",
                        d.pair_ids.len(),
                        "must name 1..=1000 pairs",
                    ));
                }
                let (config, inv) = tokio::try_join!(
                    self.state.config(&d.fleet),
                    self.inventory.snapshot(&d.fleet)
                )?;
                let updates = discover(&d.fleet, &d.pair_ids, &inv, config.esl_port)?;
                let fence = Fence {
                    owner: d.owner,
                    token: d.token,
                };
                let changes = ChangeSet {
                    updates,
                    ..ChangeSet::default()
                };
                commit(self.state.as_ref(), &d.fleet, &fence, &run, &changes, now).await?;
                let pairs: Vec<Pair> = self
                    .state
                    .pairs(&d.fleet)
                    .await?
                    .into_iter()
                    .filter(|p| d.pair_ids.contains(&p.id))
                    .collect();
                let nodes = pairs
                    .iter()
                    .map(|p| node_of(p, &config))
                    .collect::<Result<Vec<_>>>()?;
                tracing::info!(fleet = %d.fleet, pairs = nodes.len(), "discovered");
                Ok(json!({"fleet": d.fleet, "nodes": nodes, "pairs": pairs}))
            }
            "recover" => {
                let r: RecoverInput = parse(&input)?;
                let stale = run_id(Some(r.stale_run), &r.owner)?;
                if stale == r.owner.as_str() {
                    return Err(Error::invalid(
                        "stale_run",
                        &stale,
                        "is this run itself, not the run whose lock was broken",
                    ));
                }
                let fence = Fence {
                    owner: r.owner,
                    token: r.token,
                };
                let (journal, pairs) = tokio::try_join!(
                    self.state.journal(&r.fleet, &stale),
                    self.state.pairs(&r.fleet)
                )?;
                let verdict = assess_stale_run(journal.as_ref(), &pairs);
                let touched: Vec<PairId> = journal
                    .as_ref()
                    .map(|j| j.pairs_before.keys().copied().collect())
                    .unwrap_or_default();
                let (action, receipt) = match &verdict {
                    StaleRun::NothingWritten => ("nothing", None),
                    StaleRun::Committed => ("committed", None),
                    StaleRun::RollBack => (
                        "rolled_back",
                        Some(rollback(self.state.as_ref(), &r.fleet, &fence, &stale, now).await?),
                    ),
                    StaleRun::Removing(ids) => {
                        let ids: Vec<String> = ids.iter().map(|p| p.to_string()).collect();
                        return Err(Error::Drift {
                            fleet: r.fleet.to_string(),
                            summary: format!(
                                "the stopped run {stale} was removing pairs {}: finish it (ansible scale_in and the terraform build for them, then commit their removal) before scaling this fleet again",
                                ids.join(", ")
                            ),
                        });
                    }
                };
                // Every pair the stale run touched that is active now goes back into rotation
                // (resume is idempotent): a drain it quiesced, or new nodes it committed but
                // never resumed.
                let (config, pairs) =
                    tokio::try_join!(self.state.config(&r.fleet), self.state.pairs(&r.fleet))?;
                let resume: Vec<DrainNode> = pairs
                    .iter()
                    .filter(|p| {
                        touched.contains(&p.id)
                            && p.status == PairStatus::Active
                            && p.esl_endpoint.is_some()
                    })
                    .map(|p| node_of(p, &config))
                    .collect::<Result<_>>()?;
                tracing::warn!(fleet = %r.fleet, stale_run = %stale, action, resume = resume.len(), "recovered a stale run");
                self.put_drains(&r.fleet, &pairs);
                Ok(json!({
                    "fleet": r.fleet,
                    "stale_run": stale,
                    "action": action,
                    "pairs_restored": receipt.as_ref().map(|x| x.pairs_restored.clone()).unwrap_or_default(),
                    "pairs_deleted": receipt.as_ref().map(|x| x.pairs_deleted.clone()).unwrap_or_default(),
                    "pair_count_restored": receipt.as_ref().and_then(|x| x.pair_count_restored),
                    "resume_nodes": resume,
                    // The Kamailio instances to put them back on (the resume's input).
                    "kamailio_rpc_urls": config.kamailio_rpc_urls,
                }))
            }
            other => Err(Error::internal(format!(
                "action {other} listed but not handled"
            ))),
        }
    }
}
