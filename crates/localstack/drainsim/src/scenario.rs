//! A scenario: a fleet, its traffic, its drain configuration and how many scale-ins to judge.
//! Running one takes the fleet to a steady state, then, every `spacing_secs`, forks it once per
//! choice and drains each fork: every choice faces the same calls, and the oracle's wait on the
//! same fork is the yardstick.

use crate::choice::Choice;
use crate::dist::{Arrivals, Holding};
use crate::error::{Error, Result};
use crate::fleet::{ArrivalSource, Dispatch, Fleet, Tally};
use crate::race::{self, Outcome};
use pairscale_core::{DrainPolicy, FleetConfig, FleetName};

/// The fleet configuration's default `race_spares` (a test holds the two together).
pub const DEFAULT_RACE_SPARES: u32 = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub nodes: usize,
    /// Calls up on average (Erlangs): the Poisson rate is this over the mean holding time.
    pub load_erlangs: f64,
    pub holding: Holding,
    pub arrivals: Arrivals,
    pub dispatch: Dispatch,
    /// Pairs each scale-in removes.
    pub remove: u32,
    /// The fleet's `race_spares`.
    pub race_spares: u32,
    /// The fleet's `pair_capacity_channels`.
    pub pair_capacity_channels: Option<u32>,
    pub policy: DrainPolicy,
    pub deadline_secs: u64,
    pub hard_max_secs: Option<u64>,
    pub check_interval_secs: u64,
    /// Scale-ins judged (fewer if a trace ends first).
    pub drains: usize,
    /// Time before the first scale-in, for the fleet to fill.
    pub warmup_secs: f64,
    /// Time between two scale-ins (each drains a fork; the fleet itself goes on untouched).
    pub spacing_secs: f64,
    pub seed: u64,
}

impl Scenario {
    /// 8 nodes carrying 60 calls on average, heavy-tailed calls (lognormal, mean 180 s,
    /// sigma 1.2), least-loaded dispatch, a scale-in of one, the fleet defaults (`race_spares`
    /// 3, a check every 15 s) and policy `wait` with a hard maximum long enough that the tail,
    /// not the limit, decides.
    pub fn lognormal() -> Scenario {
        Scenario {
            name: "lognormal".into(),
            nodes: 8,
            load_erlangs: 60.0,
            holding: Holding::Lognormal {
                mean_secs: 180.0,
                sigma: 1.2,
            },
            arrivals: Arrivals::Poisson,
            dispatch: Dispatch::LeastLoaded,
            remove: 1,
            race_spares: DEFAULT_RACE_SPARES,
            pair_capacity_channels: None,
            policy: DrainPolicy::Wait,
            deadline_secs: 600,
            hard_max_secs: Some(10_800),
            check_interval_secs: 15,
            drains: 1_000,
            warmup_secs: 3_600.0,
            spacing_secs: 300.0,
            seed: 16,
        }
    }

    /// The same fleet with memoryless calls (exponential, mean 180 s).
    pub fn exponential() -> Scenario {
        Scenario {
            name: "exponential".into(),
            holding: Holding::Exponential { mean_secs: 180.0 },
            ..Scenario::lognormal()
        }
    }

    /// A one-line account of the scenario for the table.
    pub fn describe(&self) -> String {
        let arrivals = match &self.arrivals {
            Arrivals::Poisson => format!("Poisson, {} Erlangs", self.load_erlangs),
            Arrivals::Trace(t) => format!("trace of {} calls", t.len()),
        };
        format!(
            "{}: {} nodes, {arrivals}, {}, {}; remove {}, race_spares {}{}; policy {} \
             (deadline {} s{}), check every {} s",
            self.name,
            self.nodes,
            self.holding.describe(),
            self.dispatch.as_str(),
            self.remove,
            self.race_spares,
            self.pair_capacity_channels
                .map(|c| format!(", pair_capacity_channels {c}"))
                .unwrap_or_default(),
            self.policy.as_str(),
            self.deadline_secs,
            self.hard_max_secs
                .map(|h| format!(", hard max {h} s"))
                .unwrap_or_default(),
            self.check_interval_secs,
        )
    }

    /// The fleet configuration this scenario stands for, validated by pairscale itself.
    pub fn fleet_config(&self) -> Result<FleetConfig> {
        let nodes = u32::try_from(self.nodes)
            .map_err(|_| Error::scenario("nodes", self.nodes, "too many"))?;
        let raw = serde_json::json!({
            "min_pairs": 1,
            "max_pairs": nodes.max(1),
            "max_step": self.remove.max(1),
            "cooldown_out_seconds": 60,
            "cooldown_in_seconds": 600,
            "drain": {
                "deadline_seconds": self.deadline_secs,
                "policy": self.policy,
                "hard_max_seconds": self.hard_max_secs,
                "check_interval_seconds": self.check_interval_secs,
            },
            "race_spares": self.race_spares,
            "pair_capacity_channels": self.pair_capacity_channels,
            // Builds play no part in a drain; polling them once a minute leaves the history
            // budget to the drain's rounds (a three-hour hard maximum checked every 15 s).
            "build_poll_seconds": 60,
        });
        let fleet = FleetName::parse("drainsim").map_err(Error::Config)?;
        Ok(FleetConfig::from_json(&fleet, &raw.to_string())?)
    }

    /// The scenario's fleet at time zero, empty.
    pub fn fleet(&self) -> Result<Fleet> {
        self.check()?;
        let sampler = self.holding.sampler()?;
        let source = match &self.arrivals {
            Arrivals::Poisson => ArrivalSource::Poisson {
                rate_per_sec: self.load_erlangs / self.holding.mean_secs(),
            },
            Arrivals::Trace(t) => ArrivalSource::Trace(t.clone()),
        };
        Ok(Fleet::new(
            self.nodes,
            self.dispatch,
            source,
            sampler,
            self.seed,
        ))
    }

    fn check(&self) -> Result<()> {
        if self.nodes < 2 {
            return Err(Error::scenario(
                "nodes",
                self.nodes,
                "a scale-in needs at least 2",
            ));
        }
        if self.remove == 0 || self.remove as usize >= self.nodes {
            return Err(Error::scenario(
                "remove",
                self.remove,
                format!("must be 1..{}", self.nodes),
            ));
        }
        if !(self.load_erlangs.is_finite() && self.load_erlangs > 0.0) {
            return Err(Error::scenario(
                "load_erlangs",
                self.load_erlangs,
                "must be positive",
            ));
        }
        if !(self.spacing_secs > 0.0 && self.warmup_secs >= 0.0) {
            return Err(Error::scenario(
                "spacing_secs",
                self.spacing_secs,
                "must be positive (and warmup_secs not negative)",
            ));
        }
        Ok(())
    }
}

/// Every scale-in of one choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub choice: Choice,
    pub outcomes: Vec<Outcome>,
}

/// What a scenario showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub scenario: Scenario,
    /// The oracle first, then the choices in the order asked.
    pub judged: Vec<Judged>,
    /// The main fleet's calls at the end of the run (forks are judged apart).
    pub tally: Tally,
    pub calls_up: u64,
}

/// Runs `scenario` for every choice in `choices` (the oracle is always run, first).
pub fn run(scenario: &Scenario, choices: &[Choice]) -> Result<Report> {
    let cfg = scenario.fleet_config()?;
    let mut fleet = scenario.fleet()?;
    let known = scenario.holding.model();
    let mut all = vec![Choice::Oracle];
    all.extend(choices.iter().copied().filter(|c| *c != Choice::Oracle));
    let mut judged: Vec<Judged> = all
        .iter()
        .map(|c| Judged {
            choice: *c,
            outcomes: Vec::with_capacity(scenario.drains),
        })
        .collect();
    for d in 0..scenario.drains {
        let at = scenario.warmup_secs + d as f64 * scenario.spacing_secs;
        if fleet.trace_end().is_some_and(|end| at > end) {
            break;
        }
        fleet.advance_to(at);
        for j in &mut judged {
            let mut fork = fleet.clone();
            let pick = j.choice.pick(&fork, &cfg, scenario.remove, known);
            j.outcomes.push(race::run(&mut fork, &pick, &cfg.drain));
        }
    }
    Ok(Report {
        scenario: scenario.clone(),
        judged,
        tally: fleet.tally(),
        calls_up: fleet.up(),
    })
}
