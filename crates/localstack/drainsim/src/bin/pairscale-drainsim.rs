//! Prints the drain table: each scenario's scale-ins under every choice, waits as multiples
//! of the oracle's. `pairscale-drainsim --help` lists the knobs.

use clap::{Parser, ValueEnum};
use pairscale_core::policy::TrendConfig;
use pairscale_core::DrainPolicy;
use pairscale_drainsim::dist::{self, Arrivals, Holding};
use pairscale_drainsim::fleet::Dispatch;
use pairscale_drainsim::{report, run, Choice, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Preset {
    /// Heavy-tailed calls (lognormal, mean 180 s, sigma 1.2), policy wait.
    Lognormal,
    /// Memoryless calls (exponential, mean 180 s), policy wait.
    Exponential,
    /// The lognormal fleet under policy force at a 600 s deadline.
    LognormalForce,
    /// The lognormal fleet under policy abort at a 600 s deadline.
    LognormalAbort,
    /// The lognormal fleet behind a round-robin load balancer.
    LognormalRoundRobin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum HoldingKind {
    Lognormal,
    Exponential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DispatchArg {
    RoundRobin,
    LeastLoaded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    Wait,
    Abort,
    Force,
}

/// The drain wait of pairscale's scale-in choices against an oracle, on simulated fleets.
#[derive(Debug, Parser)]
#[command(name = "pairscale-drainsim")]
struct Args {
    /// Scenarios to run (repeat the flag); all of them when none is named.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Preset>,
    /// Scale-ins per scenario.
    #[arg(long, default_value_t = 1_000)]
    drains: usize,
    #[arg(long, default_value_t = 16)]
    seed: u64,
    /// Every scenario's fleet size.
    #[arg(long)]
    nodes: Option<usize>,
    /// Every scenario's offered load, in Erlangs (calls up on average).
    #[arg(long)]
    load: Option<f64>,
    /// Holding times of every scenario: a family...
    #[arg(long, value_enum)]
    holding: Option<HoldingKind>,
    /// ...its mean...
    #[arg(long, requires = "holding")]
    mean_secs: Option<f64>,
    /// ...and, lognormal, the sigma of its logarithm.
    #[arg(long, requires = "holding")]
    sigma: Option<f64>,
    /// Holding times drawn from this CSV file (seconds in the first column).
    #[arg(long, conflicts_with = "holding")]
    holding_csv: Option<PathBuf>,
    /// Calls from this CSV trace (`arrival_seconds[,holding_seconds]`) instead of Poisson.
    #[arg(long)]
    trace: Option<PathBuf>,
    #[arg(long, value_enum)]
    dispatch: Option<DispatchArg>,
    #[arg(long)]
    remove: Option<u32>,
    /// The fleet's race_spares.
    #[arg(long)]
    race_spares: Option<u32>,
    /// The fleet's pair_capacity_channels.
    #[arg(long)]
    pair_capacity: Option<u32>,
    #[arg(long, value_enum)]
    policy: Option<PolicyArg>,
    #[arg(long)]
    deadline_secs: Option<u64>,
    #[arg(long)]
    hard_max_secs: Option<u64>,
    #[arg(long)]
    check_interval_secs: Option<u64>,
    /// Instead of drains: the scaling policies on a week of traffic (static alarms, target
    /// tracking, tracking with the forecast, an oracle), from --seed; with --trace, the
    /// trace's last whole week, the weeks before it as history.
    #[arg(long)]
    week: bool,
    /// --week: weeks of history before the measured one.
    #[arg(long, requires = "week")]
    history_weeks: Option<usize>,
    /// --week: tracking's target with the forecast, channels a pair.
    #[arg(long, requires = "week")]
    predictive_target: Option<u32>,
    /// --week: the forecast's channels a pair.
    #[arg(long, requires = "week")]
    forecast_target: Option<u32>,
    /// --week: the fleet's max_step (the most pairs one run adds or removes).
    #[arg(long, requires = "week")]
    max_step: Option<u32>,
    /// --week: the trend rule's window, seconds (0: no trend rule).
    #[arg(long, requires = "week")]
    trend_window: Option<u64>,
    /// --week: the trend rule's noise guard, standard deviations.
    #[arg(long, requires = "week")]
    trend_sigmas: Option<u32>,
    /// --week: the policies read the channels alone, not the fleet's arrivals.
    #[arg(long, requires = "week")]
    no_arrivals: bool,
    /// --week: the trend's headroom, standard deviations of a call count at its projection.
    #[arg(long, requires = "week")]
    trend_headroom: Option<u32>,
    /// --week: the policy's max_step_in (the most pairs one scale-in removes).
    #[arg(long, requires = "week")]
    max_step_in: Option<u32>,
    /// --week: the forecast's headroom, standard deviations of a call count at its peak.
    #[arg(long, requires = "week")]
    forecast_headroom: Option<u32>,
}

fn preset(p: Preset) -> Scenario {
    match p {
        Preset::Lognormal => Scenario::lognormal(),
        Preset::Exponential => Scenario::exponential(),
        Preset::LognormalForce => Scenario {
            name: "lognormal, force".into(),
            policy: DrainPolicy::Force,
            hard_max_secs: None,
            ..Scenario::lognormal()
        },
        Preset::LognormalAbort => Scenario {
            name: "lognormal, abort".into(),
            policy: DrainPolicy::Abort,
            hard_max_secs: None,
            ..Scenario::lognormal()
        },
        Preset::LognormalRoundRobin => Scenario {
            name: "lognormal, round-robin".into(),
            dispatch: Dispatch::RoundRobin,
            ..Scenario::lognormal()
        },
    }
}

fn scenarios(a: &Args) -> pairscale_drainsim::Result<Vec<Scenario>> {
    let presets = if a.scenarios.is_empty() {
        Preset::value_variants().to_vec()
    } else {
        a.scenarios.clone()
    };
    let holding_csv = match &a.holding_csv {
        Some(p) => Some(Arc::new(dist::parse_holding_times(
            &p.display().to_string(),
            &dist::read(p)?,
        )?)),
        None => None,
    };
    let trace = match &a.trace {
        Some(p) => Some(Arc::new(dist::parse_trace(
            &p.display().to_string(),
            &dist::read(p)?,
        )?)),
        None => None,
    };
    let mut out = Vec::new();
    for p in presets {
        let mut s = preset(p);
        s.drains = a.drains;
        s.seed = a.seed;
        s.nodes = a.nodes.unwrap_or(s.nodes);
        s.load_erlangs = a.load.unwrap_or(s.load_erlangs);
        if let Some(kind) = a.holding {
            let mean_secs = a.mean_secs.unwrap_or(s.holding.mean_secs());
            s.holding = match kind {
                HoldingKind::Lognormal => Holding::Lognormal {
                    mean_secs,
                    sigma: a.sigma.unwrap_or(1.2),
                },
                HoldingKind::Exponential => Holding::Exponential { mean_secs },
            };
        }
        if let Some(secs) = &holding_csv {
            s.holding = Holding::Empirical { secs: secs.clone() };
        }
        if let Some(t) = &trace {
            s.arrivals = Arrivals::Trace(t.clone());
        }
        if let Some(d) = a.dispatch {
            s.dispatch = match d {
                DispatchArg::RoundRobin => Dispatch::RoundRobin,
                DispatchArg::LeastLoaded => Dispatch::LeastLoaded,
            };
        }
        s.remove = a.remove.unwrap_or(s.remove);
        s.race_spares = a.race_spares.unwrap_or(s.race_spares);
        s.pair_capacity_channels = a.pair_capacity.or(s.pair_capacity_channels);
        if let Some(p) = a.policy {
            s.policy = match p {
                PolicyArg::Wait => DrainPolicy::Wait,
                PolicyArg::Abort => DrainPolicy::Abort,
                PolicyArg::Force => DrainPolicy::Force,
            };
        }
        s.deadline_secs = a.deadline_secs.unwrap_or(s.deadline_secs);
        s.hard_max_secs = a.hard_max_secs.or(s.hard_max_secs);
        s.check_interval_secs = a.check_interval_secs.unwrap_or(s.check_interval_secs);
        out.push(s);
    }
    Ok(out)
}

/// The yardsticks, the choice as it was (the sum of ages, one spare: the old default), the
/// sum of ages racing as many spares as the scenario allows, and the expected-drain choice
/// with the scenario's spares, estimated and told the truth.
fn choices(s: &Scenario) -> Vec<Choice> {
    let mut c = vec![
        Choice::HighestIndex,
        Choice::FewestChannels,
        Choice::AgeSum { race_spares: 0 },
        Choice::AgeSum { race_spares: 1 },
        Choice::AgeSum {
            race_spares: s.race_spares,
        },
        Choice::Expected { race_spares: 1 },
        Choice::Expected {
            race_spares: s.race_spares,
        },
        Choice::ExpectedKnown {
            race_spares: s.race_spares,
        },
    ];
    c.dedup();
    c
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.week {
        let mut week = pairscale_drainsim::week::Week::typical(args.seed);
        week.history_weeks = args.history_weeks.unwrap_or(week.history_weeks);
        week.predictive_target_per_pair = args
            .predictive_target
            .unwrap_or(week.predictive_target_per_pair);
        week.forecast_target_per_pair = args
            .forecast_target
            .unwrap_or(week.forecast_target_per_pair);
        week.max_step = args.max_step.unwrap_or(week.max_step);
        week.arrivals = !args.no_arrivals;
        if let (Some(n), Some(t)) = (args.trend_headroom, week.trend.as_mut()) {
            t.headroom_sigmas = n;
        }
        week.max_step_in = args.max_step_in.unwrap_or(week.max_step_in);
        week.forecast_headroom_sigmas = args
            .forecast_headroom
            .unwrap_or(week.forecast_headroom_sigmas);
        match args.trend_window {
            Some(0) => week.trend = None,
            Some(w) => {
                week.trend = Some(TrendConfig {
                    window_seconds: w,
                    ..week.trend.unwrap_or_default()
                })
            }
            None => {}
        }
        if let (Some(n), Some(t)) = (args.trend_sigmas, week.trend.as_mut()) {
            t.noise_sigmas = n;
        }
        let traced = args.trace.as_ref().map(|p| {
            dist::read(p).and_then(|text| dist::parse_trace(&p.display().to_string(), &text))
        });
        match traced {
            Some(Ok(t)) => week.trace = Some(Arc::new(t)),
            Some(Err(e)) => {
                eprintln!("pairscale-drainsim: {e}");
                return ExitCode::FAILURE;
            }
            None => {}
        }
        return match pairscale_drainsim::week::replay(&week) {
            Ok(outcomes) => {
                print!("{}", pairscale_drainsim::week::table(&week, &outcomes));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pairscale-drainsim: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = scenarios(&args).and_then(|all| {
        all.iter()
            .map(|s| run(s, &choices(s)))
            .collect::<pairscale_drainsim::Result<Vec<_>>>()
    });
    match result {
        Ok(reports) => {
            print!("{}", report::table(&reports));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pairscale-drainsim: {e}");
            ExitCode::FAILURE
        }
    }
}
