//! The simulated fleet: nodes carrying calls, a SIP load balancer that sends each new call to
//! a node in rotation, and time that moves forward in jumps from one arrival to the next.
//!
//! A fleet is a plain value: cloning it forks the future, arrivals and holding times included
//! (the random generator is cloned too), so every choice of candidates is judged against the
//! very same calls.

use crate::dist::{Sampler, TraceCall};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use std::sync::Arc;

/// How the SIP load balancer (Kamailio's dispatcher) picks a node for a new call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Each node in rotation in turn (dispatcher algorithm 4).
    RoundRobin,
    /// The node in rotation with the fewest calls, the first one on a tie (algorithm 10,
    /// call load distribution).
    LeastLoaded,
}

impl Dispatch {
    pub fn as_str(self) -> &'static str {
        match self {
            Dispatch::RoundRobin => "round-robin",
            Dispatch::LeastLoaded => "least-loaded",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Call {
    pub started_secs: f64,
    pub ends_secs: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub calls: Vec<Call>,
    /// The load balancer may send it new calls.
    pub in_rotation: bool,
    /// Scaled in: gone from the fleet.
    pub removed: bool,
}

/// What became of every call that arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub arrived: u64,
    /// Ended by themselves.
    pub ended: u64,
    /// Hung up by a forced drain.
    pub cut: u64,
    /// Arrived when no node was in rotation.
    pub refused: u64,
}

#[derive(Debug, Clone)]
enum Source {
    Poisson {
        gap: Exp<f64>,
        next_at: f64,
    },
    Trace {
        calls: Arc<Vec<TraceCall>>,
        next: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Fleet {
    pub nodes: Vec<Node>,
    now: f64,
    dispatch: Dispatch,
    round_robin_next: usize,
    source: Source,
    holding: Sampler,
    rng: StdRng,
    tally: Tally,
}

/// Where a fleet's calls come from, resolved.
#[derive(Debug, Clone)]
pub(crate) enum ArrivalSource {
    Poisson { rate_per_sec: f64 },
    Trace(Arc<Vec<TraceCall>>),
}

impl Fleet {
    pub(crate) fn new(
        nodes: usize,
        dispatch: Dispatch,
        arrivals: ArrivalSource,
        holding: Sampler,
        seed: u64,
    ) -> Fleet {
        let mut rng = StdRng::seed_from_u64(seed);
        let source = match arrivals {
            ArrivalSource::Poisson { rate_per_sec } => {
                // The rate was checked positive by the scenario.
                let gap = Exp::new(rate_per_sec).unwrap_or_else(|_| {
                    Exp::new(1.0).expect("a rate of one call a second is valid")
                });
                let next_at = gap.sample(&mut rng);
                Source::Poisson { gap, next_at }
            }
            ArrivalSource::Trace(calls) => Source::Trace { calls, next: 0 },
        };
        Fleet {
            nodes: vec![
                Node {
                    calls: Vec::new(),
                    in_rotation: true,
                    removed: false,
                };
                nodes
            ],
            now: 0.0,
            dispatch,
            round_robin_next: 0,
            source,
            holding,
            rng,
            tally: Tally::default(),
        }
    }

    pub fn now(&self) -> f64 {
        self.now
    }

    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// Calls up now, on every node.
    pub fn up(&self) -> u64 {
        self.nodes.iter().map(|n| n.calls.len() as u64).sum()
    }

    /// When the next call arrives, if one ever does.
    fn next_arrival(&self) -> Option<f64> {
        match &self.source {
            Source::Poisson { next_at, .. } => Some(*next_at),
            Source::Trace { calls, next } => calls.get(*next).map(|c| c.at_secs),
        }
    }

    /// The last arrival of a trace; none for a Poisson process.
    pub fn trace_end(&self) -> Option<f64> {
        match &self.source {
            Source::Poisson { .. } => None,
            Source::Trace { calls, .. } => calls.last().map(|c| c.at_secs),
        }
    }

    /// Moves time to `t`: every call that arrives until then is dispatched, every call that
    /// ends until then is gone.
    pub fn advance_to(&mut self, t: f64) {
        while let Some(at) = self.next_arrival().filter(|at| *at <= t) {
            self.end_calls(at);
            self.now = at;
            let holding = match &mut self.source {
                Source::Poisson { gap, next_at } => {
                    *next_at += gap.sample(&mut self.rng);
                    None
                }
                Source::Trace { calls, next } => {
                    let h = calls[*next].holding_secs;
                    *next += 1;
                    h
                }
            };
            let holding = holding.unwrap_or_else(|| self.holding.draw(&mut self.rng));
            self.tally.arrived += 1;
            match self.pick() {
                Some(i) => self.nodes[i].calls.push(Call {
                    started_secs: at,
                    ends_secs: at + holding,
                }),
                None => self.tally.refused += 1,
            }
        }
        self.end_calls(t);
        self.now = self.now.max(t);
    }

    fn end_calls(&mut self, t: f64) {
        for n in &mut self.nodes {
            let before = n.calls.len();
            n.calls.retain(|c| c.ends_secs > t);
            self.tally.ended += (before - n.calls.len()) as u64;
        }
    }

    fn pick(&mut self) -> Option<usize> {
        let open = |n: &Node| n.in_rotation && !n.removed;
        match self.dispatch {
            Dispatch::LeastLoaded => self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| open(n))
                .min_by_key(|(i, n)| (n.calls.len(), *i))
                .map(|(i, _)| i),
            Dispatch::RoundRobin => {
                let len = self.nodes.len();
                let i = (0..len)
                    .map(|d| (self.round_robin_next + d) % len)
                    .find(|i| open(&self.nodes[*i]))?;
                self.round_robin_next = (i + 1) % len;
                Some(i)
            }
        }
    }

    /// The ages of node `i`'s calls in whole seconds, as FreeSWITCH reports them.
    pub fn ages(&self, i: usize) -> Vec<u64> {
        self.nodes[i]
            .calls
            .iter()
            .map(|c| (self.now - c.started_secs).max(0.0) as u64)
            .collect()
    }

    /// When node `i` will have no call left if it takes no new one: what only an oracle knows.
    pub fn empty_at(&self, i: usize) -> f64 {
        self.nodes[i]
            .calls
            .iter()
            .map(|c| c.ends_secs)
            .fold(self.now, f64::max)
    }

    /// Out of rotation: the load balancer sends it nothing new.
    pub fn quiesce(&mut self, i: usize) {
        self.nodes[i].in_rotation = false;
    }

    pub fn resume(&mut self, i: usize) {
        self.nodes[i].in_rotation = true;
    }

    pub fn remove(&mut self, i: usize) {
        self.nodes[i].in_rotation = false;
        self.nodes[i].removed = true;
    }

    /// Hangs up every call on node `i`; returns how many.
    pub fn hang_up(&mut self, i: usize) -> u64 {
        let n = self.nodes[i].calls.len() as u64;
        self.nodes[i].calls.clear();
        self.tally.cut += n;
        n
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::dist::Holding;

    fn fleet(dispatch: Dispatch) -> Fleet {
        let holding = Holding::Exponential { mean_secs: 100.0 }.sampler().unwrap();
        Fleet::new(
            4,
            dispatch,
            ArrivalSource::Poisson { rate_per_sec: 0.4 },
            holding,
            7,
        )
    }

    #[test]
    fn every_call_that_arrived_ended_was_cut_or_is_still_up() {
        let mut f = fleet(Dispatch::LeastLoaded);
        f.advance_to(2_000.0);
        f.quiesce(0);
        f.advance_to(2_005.0);
        f.hang_up(0);
        f.advance_to(4_000.0);
        let t = f.tally();
        assert!(t.arrived > 1_000 && t.cut > 0, "{t:?}");
        assert_eq!(t.arrived, t.ended + t.cut + t.refused + f.up());
    }

    #[test]
    fn a_quiesced_node_takes_no_new_call() {
        for d in [Dispatch::LeastLoaded, Dispatch::RoundRobin] {
            let mut f = fleet(d);
            f.advance_to(1_000.0);
            f.quiesce(2);
            let t0 = f.now();
            f.advance_to(3_000.0);
            assert!(f.nodes[2].calls.iter().all(|c| c.started_secs <= t0));
            assert!(f.nodes[2].calls.is_empty(), "{:?}", f.nodes[2]);
        }
    }

    #[test]
    fn least_loaded_keeps_the_nodes_within_one_call_of_each_other_as_calls_arrive() {
        let holding = Holding::Exponential { mean_secs: 1e9 }.sampler().unwrap();
        let mut f = Fleet::new(
            3,
            Dispatch::LeastLoaded,
            ArrivalSource::Poisson { rate_per_sec: 1.0 },
            holding,
            1,
        );
        f.advance_to(100.0);
        let counts: Vec<usize> = f.nodes.iter().map(|n| n.calls.len()).collect();
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(hi - lo <= 1, "{counts:?}");
    }

    #[test]
    fn a_fork_sees_the_same_future() {
        let mut a = fleet(Dispatch::RoundRobin);
        a.advance_to(500.0);
        let mut b = a.clone();
        a.advance_to(900.0);
        b.advance_to(900.0);
        assert_eq!(a.nodes, b.nodes);
    }
}
