//! Draining pairs without dropping a call: which pairs to take, when they are empty, and what
//! to do when the deadline comes first. Pure: the handler reads the nodes through
//! [`crate::ports::MediaNodes`] and [`crate::ports::Dispatcher`] and brings the readings here.
//!
//! Why rank by the ages of the calls rather than their number: call durations are
//! heavy-tailed, so a node's drain ends with its *oldest* calls, and a node carrying only young
//! calls is (in expectation) the quickest to empty. Ties go to fewer channels, then to the
//! newest pair (it has had the least time to gather long calls), then to the highest id so the
//! order is total.

use crate::error::{Error, Result};
use crate::fleet::{DrainConfig, DrainPolicy};
use crate::ids::{PairId, Timestamp};
use crate::ports::SipDestination;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::HashSet;
use std::net::SocketAddr;

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
    /// The node's dispatcher destination.
    pub fn destination(&self) -> SipDestination {
        SipDestination {
            set_id: self.set_id,
            uri: self.sip_uri.clone(),
            pair_id: self.pair_id,
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
    /// The sum of the ages of its channels: the ranking key.
    pub age_sum_seconds: u64,
    pub oldest_call_seconds: u64,
}

/// The outcome of ranking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Selection {
    /// The `remove + race_spares` best candidates, best first (fewer if fewer are eligible).
    pub candidates: Vec<Candidate>,
    /// Pairs ranked but not chosen, best first.
    pub passed_over: Vec<PairId>,
    /// Protected pairs, never candidates.
    pub protected: Vec<PairId>,
}

/// Ranks `readings` by expected time to drain and keeps the `remove + race_spares` best.
/// A protected pair is never a candidate.
pub fn rank(readings: &[Reading], remove: u32, race_spares: u32) -> Selection {
    let want = remove.saturating_add(race_spares) as usize;
    let mut eligible: Vec<Candidate> = readings
        .iter()
        .filter(|r| !r.protected)
        .map(|r| Candidate {
            pair_id: r.pair_id,
            rank: 0,
            channels: r.channel_ages_secs.len() as u64,
            age_sum_seconds: r
                .channel_ages_secs
                .iter()
                .fold(0u64, |a, b| a.saturating_add(*b)),
            oldest_call_seconds: r.channel_ages_secs.iter().copied().max().unwrap_or(0),
        })
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

/// The channel count of one node, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub pair_id: PairId,
    pub channels: std::result::Result<u64, Error>,
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
pub fn verdict(counts: &[Count], remove: usize) -> Verdict {
    let remove = remove.min(counts.len());
    let drained: Vec<PairId> = counts
        .iter()
        .filter(|c| c.channels == Ok(0))
        .map(|c| c.pair_id)
        .collect();
    let unreachable: Vec<PairId> = counts
        .iter()
        .filter(|c| c.channels.is_err())
        .map(|c| c.pair_id)
        .collect();
    let race_won = drained.len() >= remove;
    Verdict {
        total_channels: counts
            .iter()
            .filter_map(|c| c.channels.as_ref().ok())
            .fold(0u64, |a, b| a.saturating_add(*b)),
        all_drained: unreachable.is_empty() && drained.len() == counts.len(),
        first_k_drained: counts[..remove].iter().all(|c| c.channels == Ok(0)),
        race_won,
        winners: if race_won {
            drained[..remove].to_vec()
        } else {
            Vec::new()
        },
        drained,
        unreachable,
        remove,
    }
}

/// Under policy `force`, the nodes to hang up: the `remove` reachable nodes with the fewest
/// channels (the ranking order breaks ties), less those already at zero. Only as many nodes as
/// the run removes lose their calls; the spares racing beside them keep theirs and go back into
/// rotation. A node that cannot be read is never chosen: it cannot be hung up or counted.
pub fn force_targets(counts: &[Count], remove: usize) -> Vec<PairId> {
    let mut reachable: Vec<(usize, PairId, u64)> = counts
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.channels.as_ref().ok().map(|ch| (i, c.pair_id, *ch)))
        .collect();
    reachable.sort_by_key(|(i, _, ch)| (*ch, *i));
    reachable
        .into_iter()
        .take(remove)
        .filter(|(_, _, ch)| *ch > 0)
        .map(|(_, id, _)| id)
        .collect()
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u32) -> PairId {
        PairId::new(n).expect("valid id")
    }

    fn reading(n: u32, ages: &[u64]) -> Reading {
        Reading {
            pair_id: id(n),
            protected: false,
            created_at: Timestamp(1_000 * i64::from(n)),
            channel_ages_secs: ages.to_vec(),
        }
    }

    fn ids(c: &[Candidate]) -> Vec<u32> {
        c.iter().map(|c| c.pair_id.seq()).collect()
    }

    #[test]
    fn ranking_follows_age_sum_then_channels_then_newest_pair() {
        // (name, readings, k, s, chosen in order)
        type Case = (&'static str, Vec<Reading>, u32, u32, Vec<u32>);
        let cases: &[Case] = &[
            (
                "young calls beat few calls",
                vec![reading(1, &[3_000]), reading(2, &[10, 20, 30])],
                1,
                0,
                vec![2],
            ),
            (
                "equal ages: fewer channels first",
                vec![reading(1, &[0, 0, 0]), reading(2, &[0])],
                2,
                0,
                vec![2, 1],
            ),
            (
                "equal everything: the newest pair first",
                vec![reading(1, &[5]), reading(2, &[5]), reading(3, &[5])],
                2,
                1,
                vec![3, 2, 1],
            ),
            (
                "an idle node is the best candidate",
                vec![reading(1, &[1]), reading(2, &[])],
                1,
                1,
                vec![2, 1],
            ),
            (
                "k + s larger than the fleet: every eligible pair",
                vec![reading(1, &[1]), reading(2, &[2])],
                3,
                2,
                vec![1, 2],
            ),
            (
                "k = 0 and s = 0: nothing",
                vec![reading(1, &[])],
                0,
                0,
                vec![],
            ),
        ];
        for (name, readings, k, s, want) in cases {
            let sel = rank(readings, *k, *s);
            assert_eq!(ids(&sel.candidates), *want, "{name}");
            let ranks: Vec<usize> = sel.candidates.iter().map(|c| c.rank).collect();
            assert_eq!(ranks, (1..=want.len()).collect::<Vec<_>>(), "{name}");
        }
    }

    #[test]
    fn protected_pairs_are_listed_and_never_chosen() {
        let mut p = reading(1, &[]);
        p.protected = true;
        let sel = rank(&[p, reading(2, &[9_999])], 2, 0);
        assert_eq!(ids(&sel.candidates), vec![2]);
        assert_eq!(sel.protected, vec![id(1)]);
    }

    #[test]
    fn candidates_report_what_was_seen() {
        let sel = rank(&[reading(4, &[10, 50, 40]), reading(5, &[1])], 1, 0);
        assert_eq!(
            sel.candidates,
            vec![Candidate {
                pair_id: id(5),
                rank: 1,
                channels: 1,
                age_sum_seconds: 1,
                oldest_call_seconds: 1
            }]
        );
        assert_eq!(sel.passed_over, vec![id(4)]);
    }

    fn count(n: u32, c: std::result::Result<u64, ()>) -> Count {
        Count {
            pair_id: id(n),
            channels: c.map_err(|()| Error::NodeUnreachable {
                node: format!("node-{n}"),
                message: "refused".into(),
            }),
        }
    }

    #[test]
    fn verdicts_count_only_what_answered() {
        // (name, counts, k, total, all_drained, first_k, race_won, winners, unreachable)
        type Case = (
            &'static str,
            Vec<Count>,
            usize,
            u64,
            bool,
            bool,
            bool,
            Vec<u32>,
            Vec<u32>,
        );
        let cases: Vec<Case> = vec![
            (
                "all at zero",
                vec![count(1, Ok(0)), count(2, Ok(0))],
                2,
                0,
                true,
                true,
                true,
                vec![1, 2],
                vec![],
            ),
            (
                "a spare wins the race",
                vec![count(1, Ok(3)), count(2, Ok(0))],
                1,
                3,
                false,
                false,
                true,
                vec![2],
                vec![],
            ),
            (
                "an unreachable node is never drained",
                vec![count(1, Err(())), count(2, Ok(0))],
                2,
                0,
                false,
                false,
                false,
                vec![],
                vec![1],
            ),
            (
                "unreachable spare: the race is still won, not all drained",
                vec![count(1, Ok(0)), count(2, Err(()))],
                1,
                0,
                false,
                true,
                true,
                vec![1],
                vec![2],
            ),
            (
                "k larger than the nodes is clamped",
                vec![count(1, Ok(0))],
                5,
                0,
                true,
                true,
                true,
                vec![1],
                vec![],
            ),
            (
                "channels add up",
                vec![count(1, Ok(7)), count(2, Ok(5)), count(3, Ok(0))],
                2,
                12,
                false,
                false,
                false,
                vec![],
                vec![],
            ),
        ];
        for (name, counts, k, total, all, first_k, won, winners, unreachable) in cases {
            let v = verdict(&counts, k);
            assert_eq!(v.total_channels, total, "{name}");
            assert_eq!(v.all_drained, all, "{name}");
            assert_eq!(v.first_k_drained, first_k, "{name}");
            assert_eq!(v.race_won, won, "{name}");
            let w: Vec<u32> = v.winners.iter().map(|p| p.seq()).collect();
            assert_eq!(w, winners, "{name}");
            let u: Vec<u32> = v.unreachable.iter().map(|p| p.seq()).collect();
            assert_eq!(u, unreachable, "{name}");
        }
    }

    fn drain(policy: DrainPolicy, hard_max: Option<u64>) -> DrainConfig {
        DrainConfig {
            deadline_seconds: 600,
            policy,
            hard_max_seconds: hard_max,
            hupall_cause: "MANAGER_REQUEST".into(),
            check_interval_seconds: 15,
        }
    }

    #[test]
    fn the_policy_applies_only_after_the_deadline() {
        let start = Timestamp(1_000_000);
        let at = |secs: u64| start.plus_secs(secs);
        use Decision::*;
        use DrainPolicy as P;
        let cases = [
            (P::Force, None, 599, false, Wait),
            (P::Force, None, 600, false, Force),
            (P::Force, None, 600, true, Done),
            (P::Abort, None, 601, false, Abort),
            (P::Abort, None, 10, true, Done),
            (P::Wait, Some(3_600), 601, false, Wait),
            (P::Wait, Some(3_600), 3_599, false, Wait),
            (P::Wait, Some(3_600), 3_600, false, Abort),
            (P::Wait, Some(3_600), 9_000, true, Done),
            (P::Wait, None, 1_000_000, false, Wait),
        ];
        for (policy, hard_max, elapsed, won, want) in cases {
            assert_eq!(
                decide(&drain(policy, hard_max), start, at(elapsed), won),
                want,
                "{policy:?} {hard_max:?} after {elapsed}s, won {won}"
            );
        }
    }

    fn node(n: u32) -> DrainNode {
        DrainNode {
            pair_id: id(n),
            esl_endpoint: format!("10.0.0.{n}:8021"),
            sip_uri: format!("sip:10.0.0.{n}:5060"),
            set_id: 1,
            protected: false,
            created_at: Timestamp(0),
        }
    }

    #[test]
    fn node_lists_are_checked_field_by_field() {
        assert!(validate_nodes("nodes", &[node(1), node(2)]).is_ok());
        let field = |nodes: &[DrainNode]| match validate_nodes("nodes", nodes) {
            Err(Error::InvalidRequest { field, .. }) => field,
            other => panic!("expected InvalidRequest, got {other:?}"),
        };
        assert_eq!(field(&[]), "nodes");
        assert_eq!(field(&[node(1), node(1)]), "nodes[1].pair_id");
        for bad in ["10.0.0.1", "10.0.0.1:0", ":8021", "10.0.0.1:http", "a b:1"] {
            let mut n = node(1);
            n.esl_endpoint = bad.into();
            assert_eq!(field(&[n]), "nodes[0].esl_endpoint", "{bad}");
        }
        for bad in [
            "10.0.0.1:5060",
            "sip:10.0.0.1",
            "sip:010.0.0.1:5060",
            "sip:h:5060",
        ] {
            let mut n = node(1);
            n.sip_uri = bad.into();
            assert_eq!(field(&[n]), "nodes[0].sip_uri", "{bad}");
        }
        let mut ok = node(1);
        ok.esl_endpoint = "fs-1.internal:8021".into();
        ok.sip_uri = "sip:[2001:db8::1]:5080".into();
        assert!(validate_nodes("nodes", &[ok]).is_ok());
    }

    fn arb_reading() -> impl Strategy<Value = Reading> {
        (
            1u32..500,
            any::<bool>(),
            0i64..1_000_000,
            prop::collection::vec(0u64..100_000, 0..20),
        )
            .prop_map(|(n, protected, created, ages)| Reading {
                pair_id: id(n),
                protected,
                created_at: Timestamp(created),
                channel_ages_secs: ages,
            })
    }

    proptest! {
        #[test]
        fn ranking_never_offers_a_protected_pair_and_offers_as_many_as_it_can(
            readings in prop::collection::vec(arb_reading(), 0..40),
            k in 0u32..10,
            s in 0u32..5,
        ) {
            // Pair ids are unique in a fleet.
            let mut seen = HashSet::new();
            let readings: Vec<Reading> =
                readings.into_iter().filter(|r| seen.insert(r.pair_id)).collect();
            let eligible = readings.iter().filter(|r| !r.protected).count();
            let sel = rank(&readings, k, s);
            prop_assert_eq!(sel.candidates.len(), ((k + s) as usize).min(eligible));
            prop_assert_eq!(sel.candidates.len() + sel.passed_over.len(), eligible);
            for c in &sel.candidates {
                let r = readings.iter().find(|r| r.pair_id == c.pair_id);
                prop_assert!(r.is_some_and(|r| !r.protected));
            }
            // Best first: the ranking key never decreases.
            for w in sel.candidates.windows(2) {
                prop_assert!(
                    (w[0].age_sum_seconds, w[0].channels) <= (w[1].age_sum_seconds, w[1].channels)
                );
            }
        }

        #[test]
        fn a_node_that_did_not_answer_is_never_drained(
            counts in prop::collection::vec(prop::option::of(0u64..5), 1..30),
            k in 0usize..30,
        ) {
            let counts: Vec<Count> = counts
                .iter()
                .enumerate()
                .map(|(i, c)| count(i as u32 + 1, c.ok_or(())))
                .collect();
            let v = verdict(&counts, k);
            for u in &v.unreachable {
                prop_assert!(!v.drained.contains(u) && !v.winners.contains(u));
            }
            if !v.unreachable.is_empty() {
                prop_assert!(!v.all_drained);
            }
            prop_assert_eq!(v.race_won, v.winners.len() == v.remove);
        }
    }
}

#[cfg(test)]
mod force_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn count(seq: u32, ch: Option<u64>) -> Count {
        Count {
            pair_id: PairId::new(seq).unwrap(),
            channels: ch.ok_or_else(|| Error::internal("unreachable")),
        }
    }

    #[test]
    fn force_cuts_only_as_many_nodes_as_the_run_removes_the_emptiest_first() {
        // k = 1 of three candidates: only the node with the fewest calls is hung up.
        let counts = [count(1, Some(5)), count(2, Some(2)), count(3, Some(9))];
        assert_eq!(force_targets(&counts, 1), vec![PairId::new(2).unwrap()]);
        // k = 2, one already empty: it counts, and only one more is cut.
        let counts = [count(1, Some(5)), count(2, Some(0)), count(3, Some(3))];
        assert_eq!(force_targets(&counts, 2), vec![PairId::new(3).unwrap()]);
        // An unreachable node is never chosen; ties go to the better-ranked node.
        let counts = [count(1, None), count(2, Some(4)), count(3, Some(4))];
        assert_eq!(force_targets(&counts, 1), vec![PairId::new(2).unwrap()]);
    }
}
