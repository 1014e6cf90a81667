//! The direction, pinned on fixed seeds: the expected-drain choice at the fleet's defaults
//! waits less than the sum-of-ages choice with the old default of one spare, and stays within
//! 1.25 times the oracle on heavy-tailed calls.
#![allow(clippy::unwrap_used)]

use pairscale_drainsim::{run, Choice, Scenario};

const DRAINS: usize = 150;

fn old() -> Choice {
    Choice::AgeSum { race_spares: 1 }
}

fn new(s: &Scenario) -> Choice {
    Choice::Expected {
        race_spares: s.race_spares,
    }
}

#[test]
fn the_new_choice_is_never_worse_than_the_old_on_the_fixed_scenarios() {
    for base in [Scenario::lognormal(), Scenario::exponential()] {
        for seed in [16, 17] {
            let s = Scenario {
                drains: DRAINS,
                seed,
                ..base.clone()
            };
            let report = run(&s, &[old(), new(&s)]).unwrap();
            let (o, n) = (
                report.of(&old().name()).unwrap(),
                report.of(&new(&s).name()).unwrap(),
            );
            let at = format!("{} seed {seed}", s.name);
            assert!(
                n.mean_x <= o.mean_x,
                "{at}: mean {} > {}",
                n.mean_x,
                o.mean_x
            );
            assert!(n.p50_x <= o.p50_x, "{at}: p50 {} > {}", n.p50_x, o.p50_x);
            assert!(n.p90_x <= o.p90_x, "{at}: p90 {} > {}", n.p90_x, o.p90_x);
            assert!(n.spares_mean <= f64::from(s.race_spares), "{at}");
        }
    }
}

#[test]
fn on_heavy_tailed_calls_the_new_choice_waits_at_most_a_quarter_more_than_the_oracle() {
    // More scale-ins than elsewhere: a 150-drain mean still moves by some 0.04x from seed to
    // seed, and this bound is near the figure (1.21x over 1,000 drains).
    let s = Scenario {
        drains: 400,
        ..Scenario::lognormal()
    };
    let report = run(&s, &[new(&s)]).unwrap();
    let n = report.of(&new(&s).name()).unwrap();
    assert!(n.mean_x <= 1.25, "{}x the oracle", n.mean_x);
}

#[test]
fn the_spares_never_quiesce_capacity_the_load_needs() {
    // 60 calls on average, 12 channels a pair: the 8 - 1 - spares pairs left serving must
    // carry the load, so at most 2 spares, and fewer when the load is up.
    let s = Scenario {
        drains: 60,
        pair_capacity_channels: Some(12),
        ..Scenario::lognormal()
    };
    let cfg = s.fleet_config().unwrap();
    let mut fleet = s.fleet().unwrap();
    for d in 0..s.drains {
        fleet.advance_to(s.warmup_secs + d as f64 * s.spacing_secs);
        let load = fleet.up();
        for c in [new(&s), Choice::AgeSum { race_spares: 3 }] {
            let pick = c.pick(&fleet, &cfg, s.remove, None);
            let serving = (s.nodes - pick.candidates.len()) as u64;
            assert!(
                serving * 12 >= load,
                "{}: {serving} pairs for {load} calls",
                c.name()
            );
        }
    }
}
