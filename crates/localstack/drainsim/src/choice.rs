//! Which nodes a scale-in takes out of rotation. The project's own choices call its real code
//! (`drain::rank`, `plan::race_spares`); the others are yardsticks: the oracle, which knows
//! when every call ends, and two blind rules a simpler tool might use.

use crate::fleet::Fleet;
use pairscale_core::drain::{self, HoldingTimes, Reading};
use pairscale_core::{plan, FleetConfig, PairId, Timestamp};
use std::cmp::Reverse;

/// A way to pick the candidates of a scale-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The `remove` nodes whose calls truly end first; no spare. The yardstick: every wait
    /// is reported as a multiple of its.
    Oracle,
    /// The newest pairs, blind to their calls.
    HighestIndex,
    /// The nodes with the fewest calls.
    FewestChannels,
    /// pairscale's ranking by the sum of call ages (`drain::rank`), racing `race_spares`
    /// spares as `plan::race_spares` allows them.
    AgeSum { race_spares: u32 },
    /// pairscale's ranking by expected time to empty (`drain::choose`), with the holding
    /// times estimated from the live calls' ages and up to `race_spares` spares as
    /// `plan::race_spares` allows them, each raced only while it pays.
    Expected { race_spares: u32 },
    /// The same ranking told the true holding-time distribution: how much the estimate costs.
    ExpectedKnown { race_spares: u32 },
}

impl Choice {
    pub fn name(&self) -> String {
        match self {
            Choice::Oracle => "oracle".into(),
            Choice::HighestIndex => "highest index".into(),
            Choice::FewestChannels => "fewest channels".into(),
            Choice::AgeSum { race_spares } => format!("sum of ages, {race_spares} spare(s)"),
            Choice::Expected { race_spares } => {
                format!("expected drain, up to {race_spares} spare(s)")
            }
            Choice::ExpectedKnown { race_spares } => {
                format!("expected drain (true holding), up to {race_spares}")
            }
        }
    }
}

/// The candidates, best first, and how many of them the run removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub candidates: Vec<usize>,
    pub remove: usize,
}

pub(crate) fn pair_id(node: usize) -> PairId {
    let seq = u32::try_from(node + 1).expect("a simulated fleet has fewer than 2^32 nodes");
    PairId::new(seq).expect("a simulated fleet has fewer pairs than pair ids")
}

pub(crate) fn node_of(id: PairId) -> usize {
    id.seq() as usize - 1
}

/// The fleet as `select` reads it: every pair in the fleet, its calls' ages. Higher indexes
/// are newer pairs.
pub(crate) fn readings(fleet: &Fleet) -> Vec<Reading> {
    fleet
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.removed)
        .map(|(i, _)| Reading {
            pair_id: pair_id(i),
            protected: false,
            created_at: Timestamp(i as i64 * 1_000),
            channel_ages_secs: fleet.ages(i),
        })
        .collect()
}

impl Choice {
    /// The candidates for removing `remove` pairs from `fleet` under `cfg`.
    /// `known`: the true holding times, for [`Choice::ExpectedKnown`] (without, it estimates).
    pub fn pick(
        &self,
        fleet: &Fleet,
        cfg: &FleetConfig,
        remove: u32,
        known: Option<HoldingTimes>,
    ) -> Pick {
        let live: Vec<usize> = (0..fleet.nodes.len())
            .filter(|i| !fleet.nodes[*i].removed)
            .collect();
        let k = (remove as usize).min(live.len());
        let mut order = live.clone();
        let candidates = match self {
            Choice::Oracle => {
                order.sort_by(|a, b| fleet.empty_at(*a).total_cmp(&fleet.empty_at(*b)));
                order.truncate(k);
                order
            }
            Choice::HighestIndex => {
                order.sort_by_key(|i| Reverse(*i));
                order.truncate(k);
                order
            }
            Choice::FewestChannels => {
                order.sort_by_key(|i| (fleet.nodes[*i].calls.len(), Reverse(*i)));
                order.truncate(k);
                order
            }
            Choice::AgeSum { race_spares } => {
                let readings = readings(fleet);
                let spares = spares_allowed(cfg, *race_spares, fleet, remove);
                drain::rank(&readings, remove, spares)
                    .candidates
                    .iter()
                    .map(|c| node_of(c.pair_id))
                    .collect()
            }
            Choice::Expected { race_spares } => {
                let readings = readings(fleet);
                let spares = spares_allowed(cfg, *race_spares, fleet, remove);
                drain::choose(&readings, remove, spares)
                    .candidates
                    .iter()
                    .map(|c| node_of(c.pair_id))
                    .collect()
            }
            Choice::ExpectedKnown { race_spares } => {
                let readings = readings(fleet);
                let spares = spares_allowed(cfg, *race_spares, fleet, remove);
                match known {
                    Some(model) => {
                        drain::choose_with(&readings, remove, spares, &model, drain::SPARE_MIN_GAIN)
                    }
                    None => drain::choose(&readings, remove, spares),
                }
                .candidates
                .iter()
                .map(|c| node_of(c.pair_id))
                .collect()
            }
        };
        Pick {
            candidates,
            remove: k,
        }
    }
}

/// The spares the plan allows with `race_spares` configured, given the load now on the fleet.
pub(crate) fn spares_allowed(
    cfg: &FleetConfig,
    race_spares: u32,
    fleet: &Fleet,
    remove: u32,
) -> u32 {
    let mut cfg = cfg.clone();
    cfg.race_spares = race_spares;
    let active = fleet.nodes.iter().filter(|n| !n.removed).count() as u32;
    plan::race_spares(&cfg, active, active, remove, Some(fleet.up()))
}
