//! The simulator's own correctness: the oracle is the yardstick it claims to be, and no call
//! is lost.
#![allow(clippy::unwrap_used)]

use pairscale_core::DrainPolicy;
use pairscale_drainsim::dist::{parse_trace, Arrivals, Holding};
use pairscale_drainsim::fleet::Dispatch;
use pairscale_drainsim::{race, run, Choice, Scenario};
use std::sync::Arc;

const DRAINS: usize = 120;

fn small(s: Scenario) -> Scenario {
    Scenario {
        drains: DRAINS,
        ..s
    }
}

fn every_choice() -> Vec<Choice> {
    vec![
        Choice::HighestIndex,
        Choice::FewestChannels,
        Choice::AgeSum { race_spares: 0 },
        Choice::AgeSum { race_spares: 1 },
        Choice::AgeSum { race_spares: 2 },
    ]
}

#[test]
fn the_oracle_scores_exactly_one_and_no_choice_beats_it_in_any_drain() {
    for s in [Scenario::lognormal(), Scenario::exponential()] {
        let report = run(&small(s), &every_choice()).unwrap();
        let oracle = &report.judged[0];
        assert_eq!(oracle.choice, Choice::Oracle);
        let f = report.of("oracle").unwrap();
        assert_eq!((f.mean_x, f.p50_x, f.p90_x), (1.0, 1.0, 1.0));
        assert_eq!(f.drains, DRAINS);
        for j in &report.judged[1..] {
            for (o, c) in oracle.outcomes.iter().zip(&j.outcomes) {
                assert!(
                    c.wait_secs >= o.wait_secs,
                    "{}: {} s beat the oracle's {} s",
                    j.choice.name(),
                    c.wait_secs,
                    o.wait_secs
                );
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let s = Scenario {
        drains: 30,
        ..Scenario::lognormal()
    };
    assert_eq!(
        run(&s, &every_choice()).unwrap(),
        run(&s, &every_choice()).unwrap()
    );
}

#[test]
fn every_call_that_arrived_ended_was_cut_or_is_still_up_through_forced_drains() {
    let s = Scenario {
        policy: DrainPolicy::Force,
        hard_max_secs: None,
        deadline_secs: 120,
        ..Scenario::lognormal()
    };
    let cfg = s.fleet_config().unwrap();
    let mut fleet = s.fleet().unwrap();
    let mut cut = 0;
    for d in 0..20 {
        fleet.advance_to(s.warmup_secs + f64::from(d) * s.spacing_secs);
        let mut fork = fleet.clone();
        let pick = Choice::AgeSum { race_spares: 1 }.pick(&fork, &cfg, s.remove, None);
        let out = race::run(&mut fork, &pick, &cfg.drain);
        assert_eq!(out.removed.len(), 1, "force always removes");
        fork.advance_to(fork.now() + 600.0);
        let t = fork.tally();
        assert_eq!(t.arrived, t.ended + t.cut + t.refused + fork.up(), "{t:?}");
        assert_eq!(t.cut, out.cut_calls);
        assert_eq!(t.refused, 0);
        cut += out.cut_calls;
    }
    assert!(cut > 0, "a 120 s deadline cuts some heavy-tailed calls");
    let t = fleet.tally();
    assert_eq!(t.arrived, t.ended + t.cut + t.refused + fleet.up());
}

#[test]
fn abort_ends_every_drain_still_waiting_at_the_deadline_and_removes_nothing() {
    let s = Scenario {
        policy: DrainPolicy::Abort,
        hard_max_secs: None,
        deadline_secs: 60,
        drains: 40,
        ..Scenario::lognormal()
    };
    let report = run(&s, &[Choice::HighestIndex]).unwrap();
    for j in &report.judged {
        for o in &j.outcomes {
            assert!(o.wait_secs <= 60.0 + s.check_interval_secs as f64);
            assert_eq!(o.aborted, o.removed.is_empty());
        }
    }
    assert!(report.of("highest index").unwrap().aborted > 0);
}

#[test]
fn a_trace_with_holding_times_replays_exactly() {
    // Two calls a second for an hour, each lasting 100 s, round-robin over 4 nodes.
    let text: String = (0..7_200)
        .map(|i| format!("{},100\n", f64::from(i) * 0.5))
        .collect();
    let trace = parse_trace("trace.csv", &text).unwrap();
    let s = Scenario {
        nodes: 4,
        arrivals: Arrivals::Trace(Arc::new(trace)),
        holding: Holding::Exponential { mean_secs: 1.0 },
        dispatch: Dispatch::RoundRobin,
        warmup_secs: 600.0,
        spacing_secs: 600.0,
        drains: 100,
        ..Scenario::lognormal()
    };
    let report = run(&s, &[Choice::HighestIndex]).unwrap();
    // Drains at 600, 1200, ... 3000 s: the last call arrives at 3599.5 s.
    assert_eq!(report.judged[0].outcomes.len(), 5);
    for j in &report.judged {
        for o in &j.outcomes {
            // Every node holds calls up to 100 s old: empty within 100 s, seen at 105 s.
            assert_eq!(o.wait_secs, 105.0, "{}", j.choice.name());
        }
    }
}

#[test]
fn the_scenarios_race_the_fleet_default_number_of_spares() {
    let fleet = pairscale_core::FleetName::parse("f").unwrap();
    let cfg = pairscale_core::FleetConfig::from_json(
        &fleet,
        r#"{"min_pairs": 1, "max_pairs": 8, "max_step": 1, "cooldown_out_seconds": 60,
            "cooldown_in_seconds": 600,
            "drain": {"deadline_seconds": 600, "policy": "abort"}}"#,
    )
    .unwrap();
    assert_eq!(cfg.race_spares, Scenario::lognormal().race_spares);
}
