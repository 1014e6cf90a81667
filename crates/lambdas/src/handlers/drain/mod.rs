//! `pairscale-drain`: select, quiesce, check, resume, force, health.
//!
//! Every action is idempotent: Step Functions retries. Nodes are visited concurrently, one
//! task each; the [`MediaNodes`] adapter bounds how many sockets are open at once and times
//! each visit out on its own, so one dead node costs its own timeout and no more.

mod types;

pub use types::*;

use crate::contract::{contract, Fenced};
use crate::metrics::{
    Metrics, CALL_ARRIVALS, CALL_QUALITY_MOS, CAPACITY_UTILIZATION, CHANNELS, CHANNELS_PER_PAIR,
};
use pairscale_core::canary::{
    self, CanaryCall, CanaryConfig, MeasuredBy, NodeQuality, OperatorReading, QualityReading,
};
use pairscale_core::drain::{self, Count, DrainNode, Reading};
use pairscale_core::fleet::PairStatus;
use pairscale_core::lock;
use pairscale_core::policy::offered;
use pairscale_core::ports::{
    Clock, Dispatcher, FleetStateStore, LoadSample, LockStore, MediaNodes, QualitySignals,
};
use pairscale_core::state::Fence;
use pairscale_core::{Error, FleetName, PairId, Result, Timestamp};
use std::future::Future;
use std::sync::Arc;

#[derive(Clone)]
pub struct DrainHandler {
    pub nodes: Arc<dyn MediaNodes>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub clock: Arc<dyn Clock>,
    /// Where the fleet's call-quality figure is published.
    pub metrics: Metrics,
    /// The fleet's configuration and pair records, and where a scheduled quality reading is
    /// recorded (`measure`).
    pub state: Arc<dyn FleetStateStore>,
    /// The operator's own call-quality metric.
    pub signals: Arc<dyn QualitySignals>,
    /// The fleet's scaling lock, read (never written) to fence the actions that change nodes.
    pub locks: Arc<dyn LockStore>,
}

impl std::fmt::Debug for DrainHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrainHandler").finish_non_exhaustive()
    }
}

contract! {
    /// The input of `pairscale-drain`. Every action takes `nodes`: the pairs to act on, at
    /// most one per pair.
    pub enum DrainAction for DrainHandler {
        /// Rank the unprotected nodes by expected time to drain; keep the best.
        "select" => Select(SelectInput) -> Selected = select,
        /// Out of rotation at the SIP proxy, then paused both ways on the node.
        "quiesce" => Quiesce(Fenced<FleetNodesInput>) -> Quiesced = quiesce,
        /// Every node's channel count, the race's verdict and, with a policy, its decision.
        "check" => Check(CheckInput) -> Checked = check,
        /// Undo `quiesce`: accepting calls again, then back into rotation.
        "resume" => Resume(Fenced<FleetNodesInput>) -> Resumed = resume,
        /// Hang up every call left on the nodes.
        "force" => Force(Fenced<ForceInput>) -> Forced = force,
        /// New nodes answer and FreeSWITCH says it is ready.
        "health" => Health(NodesInput) -> Healthy = health,
        /// A real call to each new node before it takes traffic; its quality must pass.
        "canary" => Canary(CanaryInput) -> Canaried = canary,
        /// The fleet's call quality from canary calls on a sample of its active nodes.
        "quality" => Quality(QualityInput) -> Quality = quality,
        /// On the fleet's schedule: its quality figure from its active nodes, recorded.
        "measure" => Measure(MeasureInput) -> Measured = measure,
        /// Every minute: each active pair's channels, recorded on its record and published.
        "sample" => Sample(SampleInput) -> Sampled = sample,
    }
}

fn nodes_ok(nodes: &[DrainNode]) -> Result<()> {
    drain::validate_nodes("nodes", nodes)
}

/// Runs `f` for every node on its own task and returns the results in node order. A task that
/// panicked is reported as `Pairscale.Internal` for its node.
async fn fan_out<N, T, F, Fut>(nodes: &[N], f: F) -> Vec<Result<T>>
where
    N: Clone,
    F: Fn(N) -> Fut,
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

/// The nodes among `nodes` whose pair is in `ids`, in node order.
fn nodes_of(nodes: &[DrainNode], ids: &[PairId]) -> Vec<DrainNode> {
    nodes
        .iter()
        .filter(|n| ids.contains(&n.pair_id))
        .cloned()
        .collect()
}

impl DrainHandler {
    /// The fence of every action that changes nodes: the run must still hold the fleet's
    /// lock with its token, checked just before it acts (`Pairscale.LockLost` otherwise, and
    /// nothing is done). A lock is taken over only after it expired or was broken, so the
    /// window between this read and the action is the action's own few seconds.
    async fn still_held(&self, fleet: &FleetName, fence: &Fence) -> Result<()> {
        let record = self.locks.get(fleet).await?;
        let checked = lock::check_fence(fleet, record.as_ref(), fence, self.clock.now());
        if let Err(e) = &checked {
            tracing::warn!(fleet = %fleet, error = %e, "node action refused: the lock is lost");
        }
        checked
    }

    async fn select(&self, s: SelectInput) -> Result<Selected> {
        nodes_ok(&s.nodes)?;
        if s.remove == 0 {
            return Err(Error::invalid("remove", 0, "must be at least 1"));
        }
        let now = self.clock.now();
        let media = self.nodes.clone();
        // Every node, protected ones too: never candidates, their calls are load the pairs
        // left serving must carry, and their ages say something of the holding times.
        let seen = fan_out(&s.nodes, move |n| {
            let media = media.clone();
            async move { media.snapshot(&n.esl_endpoint, now).await }
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
                    channel_ages_secs: snap.channel_ages_secs,
                }),
                Err(e) if n.protected => {
                    tracing::warn!(pair_id = %n.pair_id, error = %e, "protected node not read; its load is not counted");
                }
                Err(e) => {
                    tracing::warn!(pair_id = %n.pair_id, error = %e, "node not read; not a candidate");
                    unreachable.push(Failed::of(n.pair_id, &e));
                }
            }
        }
        // A node not read counts for neither load nor capacity.
        let live_channels: u64 = readings
            .iter()
            .map(|r| r.channel_ages_secs.len() as u64)
            .sum();
        let spares_allowed = match s.pair_capacity_channels {
            Some(cap) => drain::spares_within_capacity(
                u32::try_from(readings.len()).unwrap_or(u32::MAX),
                s.remove,
                s.race_spares,
                cap,
                live_channels,
            ),
            None => s.race_spares,
        };
        let selection = drain::choose(&readings, s.remove, spares_allowed);
        let nodes: Vec<DrainNode> = selection
            .candidates
            .iter()
            .filter_map(|c| s.nodes.iter().find(|n| n.pair_id == c.pair_id))
            .cloned()
            .collect();
        tracing::info!(
            remove = s.remove,
            race_spares = s.race_spares,
            spares_allowed,
            live_channels,
            chosen = ?selection.candidates.iter().map(|c| c.pair_id.to_string()).collect::<Vec<_>>(),
            "selected"
        );
        Ok(Selected {
            remove: s.remove,
            race_spares: s.race_spares,
            spares_allowed,
            live_channels,
            enough: selection.candidates.len() >= s.remove as usize,
            nodes,
            selection,
            unreachable,
        })
    }

    /// Out of rotation at the SIP proxy first (so no new call is sent to a node about to
    /// refuse it), then paused both ways on the node.
    async fn quiesce(
        &self,
        Fenced { fence, input: q }: Fenced<FleetNodesInput>,
    ) -> Result<Quiesced> {
        nodes_ok(&q.nodes)?;
        refuse_protected(&q.nodes)?;
        self.still_held(&q.fleet, &fence).await?;
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
                Ok(PerNode {
                    pair_id: n.pair_id,
                    result: Quiesce {
                        disabled: true,
                        paused: true,
                        already_paused,
                    },
                })
            }
        })
        .await;
        Ok(Quiesced {
            nodes: first_error(done)?,
            started_at,
        })
    }

    async fn check(&self, c: CheckInput) -> Result<Checked> {
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
                Ok(Channels {
                    channels: state.channels,
                    repaused: !state.paused,
                })
            }
        })
        .await;
        let mut nodes = Vec::with_capacity(seen.len());
        let mut counts = Vec::with_capacity(seen.len());
        let mut repaused: Vec<PairId> = Vec::new();
        for (n, r) in c.nodes.iter().zip(seen) {
            let result = match r {
                Ok(ch) => {
                    if ch.repaused {
                        repaused.push(n.pair_id);
                    }
                    counts.push(Count {
                        pair_id: n.pair_id,
                        channels: Ok(ch.channels),
                        repaused: ch.repaused,
                    });
                    Visit::Done(ch)
                }
                Err(e) => {
                    let failed = Visit::failed(&e);
                    counts.push(Count {
                        pair_id: n.pair_id,
                        channels: Err(e),
                        repaused: false,
                    });
                    failed
                }
            };
            nodes.push(PerNode {
                pair_id: n.pair_id,
                result,
            });
        }
        let chosen_ok = c.chosen.len() <= remove
            && c.chosen
                .iter()
                .all(|id| c.nodes.iter().any(|n| n.pair_id == *id));
        if !chosen_ok {
            return Err(Error::invalid(
                "chosen",
                format!("{} pair(s)", c.chosen.len()),
                format!("must name at most {remove} of the nodes given"),
            ));
        }
        let verdict = drain::verdict(&counts, remove, &c.chosen);
        let decision =
            policy.map(|(d, t)| drain::decide(&d, t, self.clock.now(), verdict.race_won));
        tracing::info!(
            calls = verdict.total_channels,
            all_drained = verdict.all_drained,
            unreachable = verdict.unreachable.len(),
            repaused = repaused.len(),
            "checked"
        );
        let (winner_nodes, loser_nodes): (Vec<DrainNode>, Vec<DrainNode>) = c
            .nodes
            .iter()
            .cloned()
            .partition(|n| verdict.winners.contains(&n.pair_id));
        let (force_nodes, force_chosen, spare_nodes) = if decision == Some(drain::Decision::Force) {
            let plan = drain::force_targets(&counts, remove, &c.chosen);
            let spares = c
                .nodes
                .iter()
                .filter(|n| !plan.chosen.contains(&n.pair_id))
                .cloned()
                .collect();
            (nodes_of(&c.nodes, &plan.cut), plan.chosen, spares)
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        Ok(Checked {
            verdict,
            nodes,
            repaused,
            winner_nodes,
            loser_nodes,
            force_nodes,
            force_chosen,
            spare_nodes,
            decision,
        })
    }

    /// Undoes `quiesce`: the node accepts calls again before the SIP proxy sends it any.
    async fn resume(&self, Fenced { fence, input: r }: Fenced<FleetNodesInput>) -> Result<Resumed> {
        nodes_ok(&r.nodes)?;
        self.still_held(&r.fleet, &fence).await?;
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
                Ok(PerNode {
                    pair_id: n.pair_id,
                    result: Resume {
                        enabled: true,
                        was_paused,
                    },
                })
            }
        })
        .await;
        Ok(Resumed {
            nodes: first_error(done)?,
        })
    }

    async fn force(&self, Fenced { fence, input: f }: Fenced<ForceInput>) -> Result<Forced> {
        nodes_ok(&f.nodes)?;
        refuse_protected(&f.nodes)?;
        self.still_held(&f.fleet, &fence).await?;
        let cause = f.hupall_cause;
        let media = self.nodes.clone();
        let done = fan_out(&f.nodes, move |n| {
            let media = media.clone();
            async move { media.hupall(&n.esl_endpoint, cause).await }
        })
        .await;
        let mut cut = 0u64;
        let mut nodes = Vec::with_capacity(done.len());
        let mut unreachable = Vec::new();
        for (n, r) in f.nodes.iter().zip(done) {
            let result = match r {
                Ok(h) => {
                    cut = cut.saturating_add(h.cut);
                    tracing::warn!(pair_id = %n.pair_id, calls = h.cut, cause = %h.cause, "channels cut");
                    Visit::Done(h)
                }
                Err(e) => {
                    unreachable.push(n.pair_id);
                    Visit::failed(&e)
                }
            };
            nodes.push(PerNode {
                pair_id: n.pair_id,
                result,
            });
        }
        Ok(Forced {
            cause,
            cut,
            complete: unreachable.is_empty(),
            unreachable,
            nodes,
        })
    }

    /// A new node is healthy when it answers and FreeSWITCH says it is ready. Not ready is
    /// `Pairscale.NotReady` (and unreachable `Pairscale.NodeUnreachable`): the state machine
    /// retries both with a bounded backoff, which is the health-check wait.
    async fn health(&self, h: NodesInput) -> Result<Healthy> {
        nodes_ok(&h.nodes)?;
        let media = self.nodes.clone();
        let seen = fan_out(&h.nodes, move |n| {
            let media = media.clone();
            async move { media.health(&n.esl_endpoint).await }
        })
        .await;
        let mut nodes = Vec::with_capacity(seen.len());
        let mut first_problem: Option<Error> = None;
        for (n, r) in h.nodes.iter().zip(seen) {
            match r {
                Ok(st) if st.ready => nodes.push(PerNode {
                    pair_id: n.pair_id,
                    result: st,
                }),
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
            None => Ok(Healthy { ready: true, nodes }),
        }
    }

    /// Each new node calls itself through its SIP profile; it passes when the call is
    /// answered, carries media and its MOS is at least the fleet's threshold. The first node
    /// that fails is `Pairscale.CanaryFailed`, naming it and why; a node not reached is
    /// `Pairscale.NodeUnreachable` (the state machine retries that).
    async fn canary(&self, c: CanaryInput) -> Result<Canaried> {
        nodes_ok(&c.nodes)?;
        if !c.canary.enabled {
            return Ok(Canaried {
                skipped: true,
                nodes: Vec::new(),
            });
        }
        let calls = self.calls(&c.nodes, &c.canary).await?;
        let mut nodes = Vec::with_capacity(calls.len());
        let mut first_problem: Option<Error> = None;
        for (n, r) in c.nodes.iter().zip(calls) {
            match r {
                Ok(call) => {
                    if let Err(why) = c.canary.judge(&call) {
                        tracing::warn!(pair_id = %n.pair_id, %why, "canary call failed");
                        first_problem.get_or_insert(Error::CanaryFailed {
                            node: format!("{} ({})", n.pair_id, n.sip_uri),
                            why,
                        });
                    }
                    nodes.push(PerNode {
                        pair_id: n.pair_id,
                        result: call,
                    });
                }
                Err(e) => {
                    tracing::warn!(pair_id = %n.pair_id, error = %e, "canary call not placed");
                    first_problem.get_or_insert(e);
                }
            }
        }
        match first_problem {
            Some(e) => Err(e),
            None => Ok(Canaried {
                skipped: false,
                nodes,
            }),
        }
    }

    /// Canary calls on up to `quality_sample` of the nodes, spread over the list, and the
    /// operator's metric: the worse of the calls' median and the metric is the fleet's figure,
    /// published as its `CallQualityMos` metric.
    async fn quality(&self, q: QualityInput) -> Result<Quality> {
        nodes_ok(&q.nodes)?;
        let reading = self
            .reading(&q.fleet, &q.nodes, &q.canary, MeasuredBy::ScaleIn)
            .await?;
        Ok(Quality {
            hold_scale_in: reading.as_ref().is_some_and(|r| r.hold_scale_in),
            reading,
        })
    }

    /// The scheduled reading: the same measure on the fleet's active nodes, as its records
    /// list them now, recorded on the fleet's bookkeeping unless a newer reading is there.
    /// Takes no lock and changes nothing a run owns.
    async fn measure(&self, m: MeasureInput) -> Result<Measured> {
        let config = self.state.config(&m.fleet).await?;
        let pairs = self.state.pairs(&m.fleet).await?;
        let nodes: Vec<DrainNode> = pairs
            .iter()
            .filter(|p| p.status == PairStatus::Active)
            .map(|p| drain::node_of(p, &config))
            .collect::<Result<_>>()?;
        let reading = self
            .reading(&m.fleet, &nodes, &config.canary, MeasuredBy::Schedule)
            .await?;
        if let Some(r) = &reading {
            self.state.note_quality(&m.fleet, r).await?;
        }
        Ok(Measured {
            recorded: reading.is_some(),
            active_nodes: nodes.len(),
            reading,
        })
    }

    /// The fleet's load signal: every active pair's channels, read concurrently, recorded on
    /// its record (`last_channels`, `last_seen_at`: attributes no run's change depends on, so
    /// it takes no lock) and published as metrics (`ChannelsPerPair` once per pair read,
    /// `Channels`, and `CapacityUtilization` with a capacity). A pair that cannot be read keeps
    /// its older sample and is named; the others are recorded all the same.
    async fn sample(&self, input: SampleInput) -> Result<Sampled> {
        let fleet = input.fleet;
        let (config, pairs) =
            futures::try_join!(self.state.config(&fleet), self.state.pairs(&fleet))?;
        let nodes: Vec<DrainNode> = pairs
            .iter()
            .filter(|p| p.status == PairStatus::Active)
            .map(|p| drain::node_of(p, &config))
            .collect::<Result<_>>()?;
        let now = self.clock.now();
        // Each pair's sample before this one: its session counter and when it was read.
        let before: std::collections::HashMap<PairId, (u64, Timestamp)> = pairs
            .iter()
            .filter_map(|p| Some((p.id, (p.sessions_since_startup?, p.last_seen_at?))))
            .collect();
        let media = self.nodes.clone();
        let read = fan_out(&nodes, move |n| {
            let media = media.clone();
            async move { media.snapshot(&n.esl_endpoint, now).await }
        })
        .await;
        let fleet_ref = &fleet;
        let before = &before;
        let seen = futures::future::join_all(nodes.iter().zip(read).map(|(n, r)| async move {
            let snap = r?;
            let sample = LoadSample {
                channels: u32::try_from(snap.channel_ages_secs.len()).unwrap_or(u32::MAX),
                sessions_since_startup: snap.sessions_since_startup,
                arrivals_per_minute: snap.sessions_since_startup.and_then(|s| {
                    offered::arrivals_per_minute(before.get(&n.pair_id).copied(), s, now)
                }),
            };
            let recorded = self
                .state
                .note_sample(fleet_ref, n.pair_id, sample, now)
                .await?;
            Ok::<_, Error>(Sample {
                channels: sample.channels,
                arrivals_per_minute: sample.arrivals_per_minute,
                recorded,
            })
        }))
        .await;
        let mut out = Vec::with_capacity(seen.len());
        let (mut channels, mut read) = (0u64, 0u32);
        // The fleet's arrivals: known only when every pair read has its own.
        let mut arrivals = Some(0u64);
        for (n, r) in nodes.iter().zip(seen) {
            let result = match r {
                Ok(s) => {
                    channels += u64::from(s.channels);
                    read += 1;
                    arrivals = arrivals
                        .zip(s.arrivals_per_minute)
                        .map(|(a, b)| a + u64::from(b));
                    self.metrics.put(
                        &fleet,
                        CHANNELS_PER_PAIR,
                        f64::from(s.channels),
                        "Count",
                        now,
                    );
                    Visit::Done(s)
                }
                Err(e) => {
                    tracing::warn!(pair_id = %n.pair_id, error = %e, "not sampled");
                    Visit::failed(&e)
                }
            };
            out.push(PerNode {
                pair_id: n.pair_id,
                result,
            });
        }
        let per_pair = (read > 0).then(|| channels as f64 / f64::from(read));
        let utilization = match (config.pair_capacity_channels, read) {
            (Some(cap), r) if r > 0 => {
                Some(100.0 * channels as f64 / (f64::from(cap) * f64::from(r)))
            }
            _ => None,
        };
        let arrivals = arrivals.filter(|_| read > 0);
        self.metrics
            .put(&fleet, CHANNELS, channels as f64, "Count", now);
        if let Some(a) = arrivals {
            self.metrics
                .put(&fleet, CALL_ARRIVALS, a as f64, "Count", now);
        }
        if let Some(u) = utilization {
            self.metrics
                .put(&fleet, CAPACITY_UTILIZATION, u, "Percent", now);
        }
        tracing::info!(fleet = %fleet, nodes = nodes.len(), read, channels, arrivals_per_minute = ?arrivals, "sampled");
        Ok(Sampled {
            sampled_at: now,
            active_nodes: nodes.len(),
            channels,
            arrivals_per_minute: arrivals,
            channels_per_pair: per_pair,
            utilization_percent: utilization,
            nodes: out,
        })
    }

    /// The fleet's quality reading from canary calls on a sample of `nodes` and from the
    /// operator's metric; None when the canary is off or neither gave a figure.
    async fn reading(
        &self,
        fleet: &FleetName,
        nodes: &[DrainNode],
        config: &CanaryConfig,
        by: MeasuredBy,
    ) -> Result<Option<QualityReading>> {
        if !config.enabled {
            return Ok(None);
        }
        let now = self.clock.now();
        let sample = canary::quality_sample(nodes, config.quality_sample);
        let (calls, operator) = tokio::join!(self.calls(&sample, config), async {
            match &config.operator_metric {
                Some(m) => self.signals.operator_mos(m, now).await.map(|mos| {
                    mos.map(|mos| OperatorReading {
                        metric: m.label(),
                        mos,
                    })
                }),
                None => Ok(None),
            }
        });
        let measured: Vec<NodeQuality> = sample
            .iter()
            .zip(calls?)
            .map(|(n, r)| match r {
                Ok(call) => NodeQuality {
                    pair_id: n.pair_id,
                    mos: if call.answered { call.mos } else { None },
                    error: config.judge(&call).err(),
                },
                Err(e) => NodeQuality {
                    pair_id: n.pair_id,
                    mos: None,
                    error: Some(e.to_string()),
                },
            })
            .collect();
        let reading =
            QualityReading::combined(measured, operator?, config.min_mos, now).map(|r| r.by(by));
        if let Some(r) = &reading {
            self.metrics
                .put(fleet, CALL_QUALITY_MOS, r.mos.as_f64(), "None", now);
            tracing::info!(
                fleet = %fleet,
                mos = %r.mos,
                canary_mos = ?r.canary_mos.map(|m| m.to_string()),
                operator_mos = ?r.operator.as_ref().map(|o| o.mos.to_string()),
                threshold = %r.threshold,
                hold_scale_in = r.hold_scale_in,
                nodes = r.nodes.len(),
                measured_by = ?r.measured_by,
                "call quality measured"
            );
        }
        Ok(reading)
    }

    /// One canary call per node, all at once.
    async fn calls(
        &self,
        nodes: &[DrainNode],
        config: &CanaryConfig,
    ) -> Result<Vec<Result<CanaryCall>>> {
        let dials: Vec<String> = nodes
            .iter()
            .map(|n| config.dial_string(&n.sip_uri))
            .collect::<Result<_>>()?;
        let media = self.nodes.clone();
        let seconds = config.seconds;
        let targets: Vec<(String, String)> = nodes
            .iter()
            .map(|n| n.esl_endpoint.clone())
            .zip(dials)
            .collect();
        Ok(fan_out(&targets, move |(endpoint, dial)| {
            let media = media.clone();
            async move { media.canary(&endpoint, &dial, seconds).await }
        })
        .await)
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
fn first_error<T>(results: Vec<Result<T>>) -> Result<Vec<T>> {
    results.into_iter().collect()
}
