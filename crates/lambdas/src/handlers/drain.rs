//! `pairscale-drain`: select, quiesce, check, resume, force.
//!
//! Every action is idempotent: Step Functions retries. Nodes are visited concurrently, one
//! task each; the [`MediaNodes`] adapter bounds how many sockets are open at once and times
//! each visit out on its own, so one dead node costs its own timeout and no more.

use crate::input::{action, parse};
use pairscale_core::drain::{self, Count, DrainNode, Reading};
use pairscale_core::ports::{Clock, Dispatcher, MediaNodes};
use pairscale_core::{DrainConfig, Error, HangupCause, KamailioRpcUrls, PairId, Result, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;

pub const ACTIONS: &[&str] = &["select", "quiesce", "check", "resume", "force", "health"];

#[derive(Clone)]
pub struct DrainHandler {
    pub nodes: Arc<dyn MediaNodes>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DrainHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrainHandler").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Select {
    nodes: Vec<DrainNode>,
    /// k: how many pairs the run removes.
    remove: u32,
    /// s: extra candidates drained alongside, the first k to empty win.
    #[serde(default)]
    race_spares: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nodes {
    nodes: Vec<DrainNode>,
    /// quiesce and resume: every Kamailio to disable or enable the nodes on (the fleet's
    /// `kamailio_rpc_urls`); absent or null: the function's own `PAIRSCALE_KAMAILIO_RPC_URL`.
    #[serde(default)]
    kamailio_rpc_urls: Option<KamailioRpcUrls>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Check {
    nodes: Vec<DrainNode>,
    /// k; every node when absent.
    #[serde(default)]
    remove: Option<usize>,
    /// The fleet's drain configuration and when the drain started: with both, the output
    /// carries the policy's `decision`.
    #[serde(default)]
    drain: Option<DrainConfig>,
    #[serde(default)]
    started_at: Option<Timestamp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Force {
    nodes: Vec<DrainNode>,
    #[serde(default)]
    hupall_cause: HangupCause,
}

fn nodes_ok(nodes: &[DrainNode]) -> Result<()> {
    drain::validate_nodes("nodes", nodes)
}

fn error_json(e: &Error) -> Value {
    json!({"errorType": e.name().as_str(), "errorMessage": e.to_string()})
}

/// Runs `f` for every node on its own task and returns the results in node order. A task that
/// panicked is reported as `Pairscale.Internal` for its node.
async fn fan_out<T, F, Fut>(nodes: &[DrainNode], f: F) -> Vec<Result<T>>
where
    F: Fn(DrainNode) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = nodes.iter().cloned().map(|n| tokio::spawn(f(n))).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(
            t.await
                .unwrap_or_else(|e| Err(Error::internal(format!("node task failed: {e}")))),
        );
    }
    out
}

impl DrainHandler {
    pub async fn handle(&self, input: Value) -> Result<Value> {
        match action(&input, ACTIONS)? {
            "select" => self.select(parse(&input)?).await,
            "quiesce" => self.quiesce(parse(&input)?).await,
            "check" => self.check(parse(&input)?).await,
            "resume" => self.resume(parse(&input)?).await,
            "force" => self.force(parse(&input)?).await,
            "health" => self.health(parse(&input)?).await,
            other => Err(Error::internal(format!(
                "action {other} listed but not handled"
            ))),
        }
    }

    async fn select(&self, s: Select) -> Result<Value> {
        nodes_ok(&s.nodes)?;
        if s.remove == 0 {
            return Err(Error::invalid("remove", 0, "must be at least 1"));
        }
        let now = self.clock.now();
        let media = self.nodes.clone();
        let seen = fan_out(&s.nodes, move |n| {
            let media = media.clone();
            async move {
                if n.protected {
                    // Never a candidate: no need to knock.
                    return Ok(None);
                }
                media.snapshot(&n.esl_endpoint, now).await.map(Some)
            }
        })
        .await;
        let mut readings = Vec::new();
        let mut unreachable = Vec::new();
        for (n, r) in s.nodes.iter().zip(seen) {
            match r {
                Ok(snap) => readings.push(Reading {
                    pair_id: n.pair_id,
                    protected: n.protected,
                    created_at: n.created_at,
                    channel_ages_secs: snap.map(|s| s.channel_ages_secs).unwrap_or_default(),
                }),
                Err(e) => {
                    tracing::warn!(pair_id = %n.pair_id, error = %e, "node not read; not a candidate");
                    unreachable.push(json!({"pair_id": n.pair_id, "error": error_json(&e)}));
                }
            }
        }
        let sel = drain::rank(&readings, s.remove, s.race_spares);
        let chosen: Vec<&DrainNode> = sel
            .candidates
            .iter()
            .filter_map(|c| s.nodes.iter().find(|n| n.pair_id == c.pair_id))
            .collect();
        tracing::info!(
            remove = s.remove,
            race_spares = s.race_spares,
            chosen = ?sel.candidates.iter().map(|c| c.pair_id.to_string()).collect::<Vec<_>>(),
            "selected"
        );
        Ok(json!({
            "remove": s.remove,
            "race_spares": s.race_spares,
            "enough": sel.candidates.len() >= s.remove as usize,
            "nodes": chosen,
            "candidates": sel.candidates,
            "passed_over": sel.passed_over,
            "protected": sel.protected,
            "unreachable": unreachable,
        }))
    }

    /// Out of rotation at the SIP proxy first (so no new call is sent to a node about to
    /// refuse it), then paused both ways on the node.
    async fn quiesce(&self, q: Nodes) -> Result<Value> {
        nodes_ok(&q.nodes)?;
        refuse_protected(&q.nodes)?;
        let started_at = self.clock.now();
        let media = self.nodes.clone();
        let dispatcher = self.dispatcher.clone();
        let proxies = q.kamailio_rpc_urls;
        let done = fan_out(&q.nodes, move |n| {
            let (media, dispatcher) = (media.clone(), dispatcher.clone());
            let destination = n.destination_via(proxies.as_ref());
            async move {
                dispatcher.disable(&destination).await?;
                let already_paused = media.pause(&n.esl_endpoint).await?;
                tracing::info!(pair_id = %n.pair_id, already_paused, "quiesced");
                Ok(json!({"pair_id": n.pair_id, "disabled": true, "paused": true, "already_paused": already_paused}))
            }
        })
        .await;
        // `started_at` is when this quiesce ran: `check` measures the deadline from it.
        Ok(json!({"nodes": first_error(done)?, "started_at": started_at}))
    }

    async fn check(&self, c: Check) -> Result<Value> {
        nodes_ok(&c.nodes)?;
        let policy = match (c.drain, c.started_at) {
            (Some(d), Some(t)) => Some((d, t)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::invalid(
                    "started_at",
                    "missing",
                    "required with drain",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "drain",
                    "missing",
                    "required with started_at",
                ))
            }
        };
        let remove = c.remove.unwrap_or(c.nodes.len());
        if remove == 0 || remove > c.nodes.len() {
            return Err(Error::invalid(
                "remove",
                remove,
                format!("must be 1..={} (the nodes given)", c.nodes.len()),
            ));
        }
        let media = self.nodes.clone();
        let seen = fan_out(&c.nodes, move |n| {
            let media = media.clone();
            async move {
                let state = media.drain_state(&n.esl_endpoint).await?;
                if !state.paused {
                    // A restart forgets the flags (they live in memory): put them back before
                    // the node takes a call.
                    media.pause(&n.esl_endpoint).await?;
                    tracing::warn!(pair_id = %n.pair_id, "pause flags were gone (restarted?); re-applied");
                }
                Ok((state.channels, !state.paused))
            }
        })
        .await;
        let mut per_node = Vec::with_capacity(seen.len());
        let mut counts = Vec::with_capacity(seen.len());
        let mut repaused: Vec<PairId> = Vec::new();
        for (n, r) in c.nodes.iter().zip(seen) {
            match r {
                Ok((channels, re)) => {
                    if re {
                        repaused.push(n.pair_id);
                    }
                    per_node
                        .push(json!({"pair_id": n.pair_id, "channels": channels, "repaused": re}));
                    counts.push(Count {
                        pair_id: n.pair_id,
                        channels: Ok(channels),
                    });
                }
                Err(e) => {
                    per_node.push(json!({"pair_id": n.pair_id, "error": error_json(&e)}));
                    counts.push(Count {
                        pair_id: n.pair_id,
                        channels: Err(e),
                    });
                }
            }
        }
        let v = drain::verdict(&counts, remove);
        let decision = policy.map(|(d, t)| drain::decide(&d, t, self.clock.now(), v.race_won));
        tracing::info!(
            calls = v.total_channels,
            all_drained = v.all_drained,
            unreachable = v.unreachable.len(),
            repaused = repaused.len(),
            "checked"
        );
        let mut out = serde_json::to_value(&v)
            .map_err(|e| Error::internal(format!("verdict does not serialise: {e}")))?;
        out["nodes"] = json!(per_node);
        out["repaused"] = json!(repaused);
        // The winners and the rest, as nodes, so the state machine can hand each list on.
        let (winner_nodes, loser_nodes): (Vec<&DrainNode>, Vec<&DrainNode>) =
            c.nodes.iter().partition(|n| v.winners.contains(&n.pair_id));
        out["winner_nodes"] = json!(winner_nodes);
        out["loser_nodes"] = json!(loser_nodes);
        // Under force: only the nodes to cut, never the spares.
        let force: Vec<&DrainNode> = if decision == Some(drain::Decision::Force) {
            let targets = drain::force_targets(&counts, remove);
            c.nodes
                .iter()
                .filter(|n| targets.contains(&n.pair_id))
                .collect()
        } else {
            Vec::new()
        };
        out["force_nodes"] = json!(force);
        if let Some(d) = decision {
            out["decision"] = json!(d);
        }
        Ok(out)
    }

    /// Undoes `quiesce`: the node accepts calls again before the SIP proxy sends it any.
    async fn resume(&self, r: Nodes) -> Result<Value> {
        nodes_ok(&r.nodes)?;
        let media = self.nodes.clone();
        let dispatcher = self.dispatcher.clone();
        let proxies = r.kamailio_rpc_urls;
        let done = fan_out(&r.nodes, move |n| {
            let (media, dispatcher) = (media.clone(), dispatcher.clone());
            let destination = n.destination_via(proxies.as_ref());
            async move {
                let was_paused = media.resume(&n.esl_endpoint).await?;
                dispatcher.enable(&destination).await?;
                tracing::info!(pair_id = %n.pair_id, was_paused, "resumed");
                Ok(json!({"pair_id": n.pair_id, "enabled": true, "was_paused": was_paused}))
            }
        })
        .await;
        Ok(json!({"nodes": first_error(done)?}))
    }

    async fn force(&self, f: Force) -> Result<Value> {
        nodes_ok(&f.nodes)?;
        refuse_protected(&f.nodes)?;
        let cause = f.hupall_cause;
        let media = self.nodes.clone();
        let done = fan_out(&f.nodes, move |n| {
            let media = media.clone();
            async move { media.hupall(&n.esl_endpoint, cause).await }
        })
        .await;
        let mut cut = 0u64;
        let mut per_node = Vec::with_capacity(done.len());
        let mut unreachable = Vec::new();
        for (n, r) in f.nodes.iter().zip(done) {
            match r {
                Ok(h) => {
                    cut = cut.saturating_add(h.cut);
                    tracing::warn!(pair_id = %n.pair_id, calls = h.cut, cause = %h.cause, "channels cut");
                    per_node.push(json!({"pair_id": n.pair_id, "cut": h.cut, "remaining": h.remaining, "cause": h.cause}));
                }
                Err(e) => {
                    unreachable.push(n.pair_id);
                    per_node.push(json!({"pair_id": n.pair_id, "error": error_json(&e)}));
                }
            }
        }
        Ok(json!({
            "cause": cause,
            "cut": cut,
            "complete": unreachable.is_empty(),
            "unreachable": unreachable,
            "nodes": per_node,
        }))
    }
}

impl DrainHandler {
    /// A new node is healthy when it answers and FreeSWITCH says it is ready. Not ready is
    /// `Pairscale.NotReady` (and unreachable `Pairscale.NodeUnreachable`): the state machine
    /// retries both with a bounded backoff, which is the health-check wait.
    async fn health(&self, h: Nodes) -> Result<Value> {
        nodes_ok(&h.nodes)?;
        let media = self.nodes.clone();
        let seen = fan_out(&h.nodes, move |n| {
            let media = media.clone();
            async move { media.health(&n.esl_endpoint).await }
        })
        .await;
        let mut per_node = Vec::with_capacity(seen.len());
        let mut first_problem: Option<Error> = None;
        for (n, r) in h.nodes.iter().zip(seen) {
            match r {
                Ok(st) if st.ready => per_node.push(json!({"pair_id": n.pair_id, "ready": true, "sessions": st.sessions, "max_sessions": st.max_sessions, "idle_cpu": st.idle_cpu})),
                Ok(_) => {
                    tracing::warn!(pair_id = %n.pair_id, "node answers but is not ready");
                    first_problem.get_or_insert(Error::NotReady {
                        node: format!("{} ({})", n.pair_id, n.esl_endpoint),
                        why: "FreeSWITCH status says it is not ready".into(),
                    });
                }
                Err(e) => {
                    tracing::warn!(pair_id = %n.pair_id, error = %e, "node not reached");
                    first_problem.get_or_insert(e);
                }
            }
        }
        match first_problem {
            Some(e) => Err(e),
            None => Ok(json!({"ready": true, "nodes": per_node})),
        }
    }
}

/// `quiesce` and `force` act on victims; a protected pair is never one.
fn refuse_protected(nodes: &[DrainNode]) -> Result<()> {
    match nodes.iter().position(|n| n.protected) {
        Some(i) => Err(Error::invalid(
            format!("nodes[{i}].protected"),
            true,
            format!("{} is protected and is never drained", nodes[i].pair_id),
        )),
        None => Ok(()),
    }
}

/// Every node's result, or the first node's error (in node order). The others' changes stand:
/// each is idempotent, so the retry finishes the job.
fn first_error(results: Vec<Result<Value>>) -> Result<Vec<Value>> {
    results.into_iter().collect()
}
