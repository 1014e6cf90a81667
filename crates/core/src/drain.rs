//! Draining pairs without dropping a call: which pairs to take, when they are empty, and what
//! to do when the deadline comes first. Pure: the handler reads the nodes through
//! [`crate::ports::MediaNodes`] and [`crate::ports::Dispatcher`] and brings the readings here.
//!
//! Why rank by the ages of the calls rather than their number: call durations are often
//! heavy-tailed, so a node's drain ends with its *oldest* calls, and a node carrying only young
//! calls is (in expectation) the quickest to empty. How much an age weighs depends on the tail,
//! so [`choose`] ranks by the expected time to empty under the holding times the fleet's live
//! call ages show ([`HoldingTimes`]): on memoryless calls that is mostly the number of calls,
//! on heavy-tailed ones mostly their ages. Ties go to fewer channels, then to the newest pair
//! (it has had the least time to gather long calls), then to the highest id so the order is
//! total.
//!
//! Why race spares, and how many: no ranking from ages alone comes near the oracle that knows
//! when every call ends (one spare leaves the wait near 1.5 times the oracle's whatever the
//! ranking, `pairscale-drainsim` shows); a race of several candidates, of which the first to
//! empty win, does. Each spare holds a pair out of rotation for the drain, so [`choose`] races
//! one only while it shortens the expected wait by [`SPARE_MIN_GAIN`].

use crate::error::{Error, Result};
use crate::fleet::{DrainConfig, DrainPolicy};
use crate::ids::{PairId, Timestamp};
use crate::ports::SipDestination;
use crate::proxies::KamailioRpcUrls;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::HashSet;
use std::net::SocketAddr;

mod holding;
pub use holding::{HoldingTimes, MIN_CALLS_TO_FIT};

/// One pair as the drain sees it: where its FreeSWITCH listens for the Event Socket, and how
/// the SIP load balancer knows it. Every field is in (or derived from) the pair record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainNode {
    pub pair_id: PairId,
    /// `host:port` of the node's Event Socket.
    pub esl_endpoint: String,
    /// The dispatcher destination, exactly as stored: `sip:IP:PORT`.
    pub sip_uri: String,
    /// The dispatcher set the node belongs to.
    pub set_id: u32,
    #[serde(default)]
    pub protected: bool,
    pub created_at: Timestamp,
}

impl DrainNode {
    /// The node's dispatcher destination, changed through the adapter's own Kamailio.
    pub fn destination(&self) -> SipDestination {
        self.destination_via(None)
    }

    /// The node's dispatcher destination, changed through every Kamailio in `proxies`. The
    /// list is the fleet's, not the node's: it travels once per call beside the nodes, never
    /// in each (a run's document holds up to 1,000 nodes).
    pub fn destination_via(&self, proxies: Option<&KamailioRpcUrls>) -> SipDestination {
        SipDestination {
            set_id: self.set_id,
            uri: self.sip_uri.clone(),
            pair_id: self.pair_id,
            proxies: proxies.cloned(),
        }
    }
}

/// Checks a node list taken from input: not empty, no pair twice, endpoints and URIs in the
/// shape the adapters need. `field` is the input's name for the list (`nodes`).
pub fn validate_nodes(field: &str, nodes: &[DrainNode]) -> Result<()> {
    if nodes.is_empty() {
        return Err(Error::invalid(field, "[]", "must name at least one node"));
    }
    let max = crate::fleet::MAX_FLEET_PAIRS as usize;
    if nodes.len() > max {
        return Err(Error::invalid(
            field,
            format!("{} nodes", nodes.len()),
            format!("at most {max} nodes"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        if !seen.insert(n.pair_id) {
            return Err(Error::invalid(
                format!("{field}[{i}].pair_id"),
                n.pair_id,
                "appears twice",
            ));
        }
        if !is_host_port(&n.esl_endpoint) {
            return Err(Error::invalid(
                format!("{field}[{i}].esl_endpoint"),
                &n.esl_endpoint,
                "must be host:port with a port 1-65535",
            ));
        }
        let canonical = n
            .sip_uri
            .strip_prefix("sip:")
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .is_some_and(|a| a.port() != 0 && format!("sip:{a}") == n.sip_uri);
        if !canonical {
            return Err(Error::invalid(
                format!("{field}[{i}].sip_uri"),
                &n.sip_uri,
                "must be sip:IP:PORT, spelled as the dispatcher table stores it",
            ));
        }
    }
    Ok(())
}

fn is_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    host_ok && port.parse::<u16>().is_ok_and(|p| p != 0)
}

/// What a node showed when asked for its live channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub pair_id: PairId,
    pub protected: bool,
    pub created_at: Timestamp,
    /// Age of each live channel, in seconds.
    pub channel_ages_secs: Vec<u64>,
}

/// A candidate for removal, with what was seen of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Candidate {
    pub pair_id: PairId,
    /// 1 is the best candidate.
    pub rank: usize,
    pub channels: u64,
    /// The sum of the ages of its channels.
    pub age_sum_seconds: u64,
    pub oldest_call_seconds: u64,
}

/// The outcome of ranking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Selection {
    /// The candidates, best first: `remove` and up to `race_spares` spares (fewer if fewer are eligible).
    pub candidates: Vec<Candidate>,
    /// Pairs ranked but not chosen, best first.
    pub passed_over: Vec<PairId>,
    /// Protected pairs, never candidates.
    pub protected: Vec<PairId>,
}

/// Ranks `readings` by the sum of their calls' ages (then fewer channels, the newest pair, the
/// highest id) and keeps the `remove + race_spares` best. A protected pair is never a
/// candidate. [`choose`] falls back to it when the fleet has too few calls to estimate from.
pub fn rank(readings: &[Reading], remove: u32, race_spares: u32) -> Selection {
    let want = remove.saturating_add(race_spares) as usize;
    let mut eligible: Vec<Candidate> = readings
        .iter()
        .filter(|r| !r.protected)
        .map(candidate_of)
        .collect();
    let created = |id: PairId| {
        readings
            .iter()
            .find(|r| r.pair_id == id)
            .map(|r| r.created_at)
            .unwrap_or(Timestamp(0))
    };
    eligible.sort_by_key(|c| {
        (
            c.age_sum_seconds,
            c.channels,
            Reverse(created(c.pair_id)),
            Reverse(c.pair_id),
        )
    });
    let passed_over = eligible.iter().skip(want).map(|c| c.pair_id).collect();
    eligible.truncate(want);
    for (i, c) in eligible.iter_mut().enumerate() {
        c.rank = i + 1;
    }
    Selection {
        candidates: eligible,
        passed_over,
        protected: readings
            .iter()
            .filter(|r| r.protected)
            .map(|r| r.pair_id)
            .collect(),
    }
}

/// The smallest cut in the expected drain wait, as a share of it, that another race spare must
/// bring to be quiesced: a spare holds a pair's capacity out of rotation for the whole drain,
/// so one that would barely shorten it is not worth it.
pub const SPARE_MIN_GAIN: f64 = 0.1;

/// The spares a race may quiesce beside the `remove` pairs it takes out, out of `spares`,
/// so that the pairs left serving (`active` less all of them) can still carry
/// `load_channels` at `capacity_channels` each: lowered one at a time until they can, down
/// to none. The pairs removed are the plan's call, whatever the load.
pub fn spares_within_capacity(
    active: u32,
    remove: u32,
    spares: u32,
    capacity_channels: u32,
    load_channels: u64,
) -> u32 {
    (0..=spares)
        .rev()
        .find(|s| {
            let serving = active.saturating_sub(remove.saturating_add(*s));
            u64::from(serving) * u64::from(capacity_channels) >= load_channels
        })
        .unwrap_or(0)
}

/// Chooses the candidates by the expected time for each node to empty, given its calls' ages
/// and the fleet's holding times as the pooled ages of all live calls show them
/// ([`HoldingTimes::estimate`]). Races up to `max_spares` spares, each only while it shortens
/// the race's expected wait by [`SPARE_MIN_GAIN`] or more; `max_spares` is the plan's
/// `race_spares`, already lowered to what the load leaves free ([`crate::plan::race_spares`]).
///
/// With fewer than [`MIN_CALLS_TO_FIT`] calls up in the fleet there is nothing to estimate
/// from: the choice is [`rank`]'s, by the sum of ages, with every spare allowed (a fleet that
/// quiet drains in moments anyway).
pub fn choose(readings: &[Reading], remove: u32, max_spares: u32) -> Selection {
    // Every call seen says something of the fleet's holding times, a protected pair's too.
    let ages: Vec<u64> = readings
        .iter()
        .flat_map(|r| r.channel_ages_secs.iter().copied())
        .collect();
    match HoldingTimes::estimate(&ages) {
        Some(model) => choose_with(readings, remove, max_spares, &model, SPARE_MIN_GAIN),
        None => rank(readings, remove, max_spares),
    }
}

/// [`choose`] with the holding times and the spares' minimum gain given.
///
/// The first `remove` are the nodes expected to empty soonest (ties: fewer channels, then the
/// newest pair, then the highest id). Each spare is then the node that most shortens the
/// expected wait of the race (the time until `remove` of the candidates are empty), which is
/// not always the next in that order: a node whose calls could all end soon, or all last,
/// races better than a steady one of the same mean.
pub fn choose_with(
    readings: &[Reading],
    remove: u32,
    max_spares: u32,
    model: &HoldingTimes,
    spare_min_gain: f64,
) -> Selection {
    let grid = holding::grid(model);
    let mut eligible: Vec<(Candidate, Vec<f64>, f64, Timestamp)> = readings
        .iter()
        .filter(|r| !r.protected)
        .map(|r| {
            let busy = holding::busy_curve(model, &r.channel_ages_secs, &grid);
            let expected = holding::integral(&grid, &busy);
            (candidate_of(r), busy, expected, r.created_at)
        })
        .collect();
    eligible.sort_by(|a, b| {
        a.2.total_cmp(&b.2)
            .then(a.0.channels.cmp(&b.0.channels))
            .then(b.3.cmp(&a.3))
            .then(b.0.pair_id.cmp(&a.0.pair_id))
    });
    let remove = (remove as usize).min(eligible.len());
    let mut chosen: Vec<usize> = (0..remove).collect();
    let race = |set: &[usize]| {
        let curves: Vec<&[f64]> = set.iter().map(|i| eligible[*i].1.as_slice()).collect();
        holding::integral(&grid, &holding::race_curve(&curves, remove, grid.len()))
    };
    // Only a race with room for a spare needs its wait (`status` selects every node at once).
    let mut wait = if max_spares > 0 { race(&chosen) } else { 0.0 };
    while chosen.len() < remove + max_spares as usize && wait > 0.0 {
        let best = (remove..eligible.len())
            .filter(|i| !chosen.contains(i))
            .map(|i| {
                let mut with = chosen.clone();
                with.push(i);
                (i, race(&with))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((i, w)) if wait - w >= spare_min_gain * wait => {
                chosen.push(i);
                wait = w;
            }
            _ => break,
        }
    }
    let passed_over = (0..eligible.len())
        .filter(|i| !chosen.contains(i))
        .map(|i| eligible[i].0.pair_id)
        .collect();
    let candidates = chosen
        .iter()
        .enumerate()
        .map(|(rank, i)| Candidate {
            rank: rank + 1,
            ..eligible[*i].0.clone()
        })
        .collect();
    Selection {
        candidates,
        passed_over,
        protected: readings
            .iter()
            .filter(|r| r.protected)
            .map(|r| r.pair_id)
            .collect(),
    }
}

fn candidate_of(r: &Reading) -> Candidate {
    Candidate {
        pair_id: r.pair_id,
        rank: 0,
        channels: r.channel_ages_secs.len() as u64,
        age_sum_seconds: r
            .channel_ages_secs
            .iter()
            .fold(0u64, |a, b| a.saturating_add(*b)),
        oldest_call_seconds: r.channel_ages_secs.iter().copied().max().unwrap_or(0),
    }
}

/// The channel count of one node, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub pair_id: PairId,
    pub channels: std::result::Result<u64, Error>,
    /// The node's pause flags were gone (it restarted) and were put back this round: its
    /// count was read before the pause held, so it says drained only in a later round.
    pub repaused: bool,
}

impl Count {
    fn is_drained(&self) -> bool {
        self.channels == Ok(0) && !self.repaused
    }
}

/// The state of a drain after one `check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Verdict {
    /// Channels on the nodes that answered.
    pub total_channels: u64,
    /// Every node answered and every node is at zero. A node that did not answer is never
    /// counted as drained.
    pub all_drained: bool,
    /// Nodes at zero, in the order given (the ranking order).
    pub drained: Vec<PairId>,
    /// Nodes that could not be read.
    pub unreachable: Vec<PairId>,
    /// How many pairs the run removes (`k`).
    pub remove: usize,
    /// The `k` best-ranked nodes are all at zero.
    pub first_k_drained: bool,
    /// At least `k` nodes are at zero: the race is won.
    pub race_won: bool,
    /// When the race is won: the first `k` drained nodes in ranking order, the ones to remove.
    pub winners: Vec<PairId>,
}

/// Sums up a round of counts. `counts` is in ranking order; `remove` is `k` (at most the
/// number of nodes).
///
/// `chosen` are the nodes a `force` designated for removal (empty before any force): once a
/// node's calls were cut, it must win the race, never be resumed as a spare that lost it. So
/// the race is won only when every chosen node is drained, and they come first among the
/// winners (a spare fills the place of a chosen node only when fewer than `remove` could be
/// chosen).
pub fn verdict(counts: &[Count], remove: usize, chosen: &[PairId]) -> Verdict {
    let remove = remove.min(counts.len());
    let drained: Vec<PairId> = counts
        .iter()
        .filter(|c| c.is_drained())
        .map(|c| c.pair_id)
        .collect();
    let unreachable: Vec<PairId> = counts
        .iter()
        .filter(|c| c.channels.is_err())
        .map(|c| c.pair_id)
        .collect();
    let race_won = drained.len() >= remove && chosen.iter().all(|id| drained.contains(id));
    let mut by_preference = drained.clone();
    // Stable: within each group the ranking order stands.
    by_preference.sort_by_key(|id| !chosen.contains(id));
    Verdict {
        total_channels: counts
            .iter()
            .filter_map(|c| c.channels.as_ref().ok())
            .fold(0u64, |a, b| a.saturating_add(*b)),
        all_drained: unreachable.is_empty() && drained.len() == counts.len(),
        first_k_drained: counts[..remove].iter().all(Count::is_drained),
        race_won,
        winners: if race_won {
            by_preference[..remove].to_vec()
        } else {
            Vec::new()
        },
        drained,
        unreachable,
        remove,
    }
}

/// Under policy `force`: which nodes the run removes, and which of them still have calls to
/// hang up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForcePlan {
    /// The `remove` nodes designated for removal. The first force designates the reachable
    /// nodes with the fewest channels (the ranking order breaks ties); later rounds keep that
    /// designation, so no further node loses calls and a node that lost them is never a spare.
    pub chosen: Vec<PairId>,
    /// The chosen nodes that answered with calls still up: the ones to hang up now. Empty
    /// when none can be reached: the state machine waits and checks again, within its bound.
    pub cut: Vec<PairId>,
}

/// Only as many nodes as the run removes lose their calls; the spares racing beside them keep
/// theirs and go back into rotation. A node that cannot be read is never cut: it cannot be hung
/// up or counted. `chosen` is the designation of an earlier round, if any.
pub fn force_targets(counts: &[Count], remove: usize, chosen: &[PairId]) -> ForcePlan {
    let chosen: Vec<PairId> = if chosen.is_empty() {
        let mut reachable: Vec<(usize, PairId, u64)> = counts
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.channels.as_ref().ok().map(|ch| (i, c.pair_id, *ch)))
            .collect();
        reachable.sort_by_key(|(i, _, ch)| (*ch, *i));
        reachable
            .into_iter()
            .take(remove)
            .map(|(_, id, _)| id)
            .collect()
    } else {
        chosen.to_vec()
    };
    let cut = counts
        .iter()
        .filter(|c| chosen.contains(&c.pair_id))
        .filter(|c| c.channels.as_ref().is_ok_and(|ch| *ch > 0))
        .map(|c| c.pair_id)
        .collect();
    ForcePlan { chosen, cut }
}

/// What the state machine should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Enough nodes are empty: go on and remove the winners.
    Done,
    /// Check again after `check_interval_seconds`.
    Wait,
    /// The deadline passed under policy `force`: hang up what is left.
    Force,
    /// The deadline passed under policy `abort` (or `wait` passed its hard maximum): put
    /// the candidates back into rotation and fail the run with `Pairscale.DrainDeadline`.
    Abort,
}

/// The policy at work: drained wins; before the deadline, wait; after it, the fleet's
/// policy decides. Under `wait`, the hard maximum (when set) turns waiting into aborting.
pub fn decide(
    config: &DrainConfig,
    started_at: Timestamp,
    now: Timestamp,
    race_won: bool,
) -> Decision {
    if race_won {
        return Decision::Done;
    }
    if now < started_at.plus_secs(config.deadline_seconds) {
        return Decision::Wait;
    }
    match config.policy {
        DrainPolicy::Force => Decision::Force,
        DrainPolicy::Abort => Decision::Abort,
        DrainPolicy::Wait => match config.hard_max_seconds {
            Some(max) if now >= started_at.plus_secs(max) => Decision::Abort,
            _ => Decision::Wait,
        },
    }
}

/// A pair record as a drain node: the Event Socket from the record, the dispatcher
/// destination from its private IP and the fleet's SIP settings. A record without them is
/// `Pairscale.CorruptState`: an active pair always has both.
pub fn node_of(pair: &crate::fleet::Pair, cfg: &crate::fleet::FleetConfig) -> Result<DrainNode> {
    let missing = |what: &str| {
        Error::corrupt(
            format!("pair {} {what}", pair.id),
            "missing",
            "an active pair must have it",
        )
    };
    let esl_endpoint = pair
        .esl_endpoint
        .clone()
        .ok_or_else(|| missing("esl_endpoint"))?;
    let ip = pair
        .private_ip
        .as_deref()
        .ok_or_else(|| missing("private_ip"))?;
    Ok(DrainNode {
        pair_id: pair.id,
        esl_endpoint,
        sip_uri: format!("sip:{}", crate::validate::host_port(ip, cfg.sip_port)),
        set_id: cfg.dispatcher_set_id,
        protected: pair.protected,
        created_at: pair.created_at,
    })
}

#[cfg(test)]
mod tests;
