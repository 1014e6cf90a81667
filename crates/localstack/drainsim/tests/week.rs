//! The policy replay: a week of traffic under each scaling policy.
#![allow(clippy::unwrap_used)]

use pairscale_drainsim::week::{replay, Policy, Week};

/// The typical week scaled down twentyfold (pairs of 25 channels), to run in a debug build.
fn small(seed: u64) -> Week {
    let w = Week::typical(seed);
    Week {
        peak_channels: w.peak_channels / 20.0,
        pair_capacity: w.pair_capacity / 20,
        target_per_pair: w.target_per_pair / 20,
        alarm_high: w.alarm_high / 20,
        alarm_low: w.alarm_low / 20,
        ..w
    }
}

#[test]
fn target_tracking_refuses_fewer_calls_than_static_alarms_and_nobody_beats_the_oracle() {
    let week = small(16);
    let out = replay(&week).unwrap();
    let of = |p: Policy| out.iter().find(|o| o.policy == p).unwrap();
    let (alarms, tracking, oracle) = (
        of(Policy::StaticAlarms),
        of(Policy::TargetTracking),
        of(Policy::Oracle),
    );
    assert_eq!(oracle.refused_channel_secs, 0.0);
    assert!(
        tracking.refused_channel_secs < alarms.refused_channel_secs,
        "{tracking:?} vs {alarms:?}"
    );
    for o in [alarms, tracking] {
        assert!(o.pair_hours >= oracle.pair_hours, "{o:?} vs {oracle:?}");
        assert!((0.0..1.0).contains(&o.refused_share), "{o:?}");
        assert!(o.refused_outside_spike_secs <= o.refused_channel_secs);
        assert!(o.runs > 0, "{o:?}");
    }
    assert_eq!(
        tracking.lost_triggers, 0,
        "level-triggered: nothing is lost"
    );
}

#[test]
fn the_same_seed_replays_the_same_week_and_another_seed_another() {
    let a = replay(&small(7)).unwrap();
    assert_eq!(a, replay(&small(7)).unwrap());
    assert_ne!(small(7).channels().unwrap(), small(8).channels().unwrap());
}

#[test]
fn the_offered_load_follows_the_day_the_weekend_and_the_spike() {
    let w = Week::typical(1);
    let at = |day: usize, h: usize| w.offered(day * 24 * 60 + h * 60);
    assert!(at(0, 4) < at(0, 16) / 5.0, "night against afternoon");
    assert!(
        (at(5, 16) / at(0, 16) - w.weekend_share).abs() < 1e-9,
        "Saturday"
    );
    let spike = w.spike.clone().unwrap();
    let before = w.offered(spike.at_minute - 1);
    let top = w.offered(spike.at_minute + spike.ramp_minutes + 1);
    assert!(top > before * (spike.factor - 0.1), "{before} -> {top}");
    // The simulated channels follow the offered load (M/G/inf: the mean is the load).
    let ch = w.channels().unwrap();
    let mean_at = |minute: usize| {
        ch[minute * 60..(minute + 30) * 60]
            .iter()
            .map(|c| f64::from(*c))
            .sum::<f64>()
            / 1800.0
    };
    let afternoon = 2 * 24 * 60 + 10 * 60;
    let expected = (0..30).map(|m| w.offered(afternoon + m)).sum::<f64>() / 30.0;
    assert!(
        (mean_at(afternoon) / expected - 1.0).abs() < 0.1,
        "{} vs {expected}",
        mean_at(afternoon)
    );
}
