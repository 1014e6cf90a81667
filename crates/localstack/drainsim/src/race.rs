//! One drain, round by round as the state machine runs it: quiesce the candidates, wait a
//! check interval, count their channels, and let pairscale's own `verdict`, `decide` and
//! `force_targets` say what happens next.

use crate::choice::{node_of, pair_id, Pick};
use crate::fleet::Fleet;
use pairscale_core::drain::{self, Count, Decision};
use pairscale_core::{DrainConfig, PairId, Timestamp};

/// Hang-up rounds before a forced drain gives up (the state machine's
/// `In: too many forced hangups?`).
const FORCE_ROUNDS: u32 = pairscale_core::history::FORCE_ROUNDS as u32;

/// What one drain cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// From quiesce to the check that ended the drain (won, aborted or given up).
    pub wait_secs: f64,
    /// Candidates beyond the ones removed.
    pub spares: usize,
    /// Calls hung up under policy `force`.
    pub cut_calls: u64,
    /// The drain ended without removing anything (`abort`, or `force` gave up).
    pub aborted: bool,
    /// The nodes removed.
    pub removed: Vec<usize>,
}

impl Outcome {
    /// Pair-seconds the removed nodes (or, aborted, the ones meant for removal) spent draining.
    pub fn draining_pair_secs(&self, remove: usize) -> f64 {
        self.wait_secs * remove as f64
    }

    /// Pair-seconds of capacity quiesced and then kept: the spares, out of rotation for the
    /// whole drain.
    pub fn held_out_pair_secs(&self) -> f64 {
        self.wait_secs * self.spares as f64
    }
}

/// Runs the drain of `pick` on `fleet` under `cfg`, from the fleet's present moment.
pub fn run(fleet: &mut Fleet, pick: &Pick, cfg: &DrainConfig) -> Outcome {
    let t0 = fleet.now();
    let started = Timestamp((t0 * 1_000.0).round() as i64);
    let interval = cfg.check_interval_seconds.max(1);
    for &i in &pick.candidates {
        fleet.quiesce(i);
    }
    let spares = pick.candidates.len().saturating_sub(pick.remove);
    let mut chosen: Vec<PairId> = Vec::new();
    let mut forces = 0u32;
    let mut cut_calls = 0u64;
    let mut round = 0u64;
    loop {
        round += 1;
        let elapsed = round * interval;
        fleet.advance_to(t0 + elapsed as f64);
        let counts: Vec<Count> = pick
            .candidates
            .iter()
            .map(|&i| Count {
                pair_id: pair_id(i),
                channels: Ok(fleet.nodes[i].calls.len() as u64),
                repaused: false,
            })
            .collect();
        let verdict = drain::verdict(&counts, pick.remove, &chosen);
        let decision = drain::decide(cfg, started, started.plus_secs(elapsed), verdict.race_won);
        let end = |fleet: &mut Fleet, removed: Vec<usize>, aborted: bool, cut_calls: u64| {
            for &i in &pick.candidates {
                if removed.contains(&i) {
                    fleet.remove(i);
                } else {
                    fleet.resume(i);
                }
            }
            Outcome {
                wait_secs: elapsed as f64,
                spares,
                cut_calls,
                aborted,
                removed,
            }
        };
        match decision {
            Decision::Done => {
                let removed = verdict.winners.iter().map(|id| node_of(*id)).collect();
                return end(fleet, removed, false, cut_calls);
            }
            Decision::Wait => {}
            Decision::Abort => return end(fleet, Vec::new(), true, cut_calls),
            Decision::Force => {
                forces += 1;
                if forces > FORCE_ROUNDS {
                    return end(fleet, Vec::new(), true, cut_calls);
                }
                let plan = drain::force_targets(&counts, pick.remove, &chosen);
                chosen = plan.chosen;
                for id in plan.cut {
                    cut_calls += fleet.hang_up(node_of(id));
                }
            }
        }
    }
}
