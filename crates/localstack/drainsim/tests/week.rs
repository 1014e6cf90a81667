//! The policy replay: a week of traffic under each scaling policy.
#![allow(clippy::unwrap_used)]

use pairscale_drainsim::week::{replay, Outcome, Policy, Week};

/// The typical week scaled down twentyfold (pairs of 25 channels), to run in a debug build.
fn small(seed: u64) -> Week {
    let w = Week::typical(seed);
    Week {
        peak_channels: w.peak_channels / 20.0,
        pair_capacity: w.pair_capacity / 20,
        target_per_pair: w.target_per_pair / 20,
        predictive_target_per_pair: w.predictive_target_per_pair / 20,
        forecast_target_per_pair: w.forecast_target_per_pair / 20,
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
        assert!(o.refused_beyond_spike_secs <= o.refused_outside_spike_secs);
        assert!(o.refused_beyond_response_secs <= o.refused_channel_secs);
        assert!(o.refused_beyond_spike_secs <= o.refused_beyond_response_secs + 1e-6);
        // The spike's first answer lands a build after the decision, at the earliest.
        assert!(
            o.first_response_minutes
                .is_some_and(|m| m >= week.scale_out_minutes),
            "{o:?}"
        );
        assert!(o.runs > 0, "{o:?}");
    }
    assert_eq!(
        tracking.lost_triggers, 0,
        "level-triggered: nothing is lost"
    );
}

#[test]
fn the_arrivals_and_the_channels_keep_littles_law() {
    // Over a weekday afternoon, the calls up are the arrivals a minute times the mean call
    // length (3 minutes), within a few percent: the offered load the policy reads is right.
    let w = small(5);
    let t = w.traffic().unwrap();
    assert_eq!(t.arrivals.len() * 60, t.channels.len());
    let afternoon = (24 * 60 + 13 * 60)..(24 * 60 + 17 * 60);
    let arrivals: f64 = afternoon.clone().map(|m| f64::from(t.arrivals[m])).sum();
    let channels: f64 = afternoon
        .clone()
        .map(|m| f64::from(t.channels[m * 60]))
        .sum();
    let minutes = channels / arrivals;
    assert!((2.8..3.2).contains(&minutes), "{minutes} minutes a call");
    // And the spike's arrivals jump in its first minutes, before its channels.
    let s = w.spike.clone().unwrap();
    let before = f64::from(t.arrivals[s.at_minute - 1]);
    let third = f64::from(t.arrivals[s.at_minute + 3]);
    assert!(third > before * 1.3, "{before} -> {third}");
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

fn of(out: &[Outcome], p: Policy) -> Outcome {
    out.iter().find(|o| o.policy == p).unwrap().clone()
}

/// The figures of a row, its label aside.
fn figures(o: &Outcome) -> (f64, f64, f64, u32, u32) {
    (
        o.refused_channel_secs,
        o.refused_outside_spike_secs,
        o.pair_hours,
        o.runs,
        o.lost_triggers,
    )
}

#[test]
fn forecast_only_decides_as_tracking_at_its_target_and_the_forecast_always_had_history() {
    let week = small(16);
    let out = replay(&week).unwrap();
    let only = of(&out, Policy::ForecastOnly);
    let plain = replay(&Week {
        target_per_pair: week.predictive_target_per_pair,
        ..week.clone()
    })
    .unwrap();
    assert_eq!(
        figures(&only),
        figures(&of(&plain, Policy::TargetTracking)),
        "forecast_only acted"
    );
    // Three weeks of history: every minute's forecast was backed by all three.
    for p in [Policy::ForecastOnly, Policy::TrackingWithForecast] {
        let o = of(&out, p);
        assert_eq!(o.forecast_min_weeks, Some(3), "{o:?}");
        assert!(o.forecast_led_minutes.unwrap() > 0, "{o:?}");
    }
    // Tracking's word depends on the load alone: the forecast led it in the same minutes.
    assert_eq!(
        only.forecast_led_minutes,
        of(&out, Policy::TrackingWithForecast).forecast_led_minutes
    );
}

#[test]
fn the_forecast_refuses_fewer_calls_than_tracking_at_its_target_and_never_beats_the_oracle() {
    let week = small(16);
    let out = replay(&week).unwrap();
    let (only, with, oracle) = (
        of(&out, Policy::ForecastOnly),
        of(&out, Policy::TrackingWithForecast),
        of(&out, Policy::Oracle),
    );
    assert!(
        with.refused_outside_spike_secs < only.refused_outside_spike_secs,
        "{with:?} vs {only:?}"
    );
    assert!(
        with.pair_hours >= oracle.pair_hours,
        "{with:?} vs {oracle:?}"
    );
    assert!(with.pair_hours >= only.pair_hours, "{with:?} vs {only:?}");
}

#[test]
fn without_history_there_is_no_forecast_and_the_forecast_rows_are_tracking() {
    let week = Week {
        history_weeks: 0,
        ..small(16)
    };
    let out = replay(&week).unwrap();
    let (only, with) = (
        of(&out, Policy::ForecastOnly),
        of(&out, Policy::TrackingWithForecast),
    );
    assert_eq!(figures(&only), figures(&with));
    assert_eq!(only.forecast_min_weeks, None, "{only:?}");
}

#[test]
fn a_trace_shorter_than_a_week_is_refused_naming_it() {
    use pairscale_drainsim::dist::TraceCall;
    let week = Week {
        trace: Some(std::sync::Arc::new(vec![TraceCall {
            at_secs: 3_600.0,
            holding_secs: Some(60.0),
        }])),
        ..small(1)
    };
    let e = replay(&week).unwrap_err().to_string();
    assert!(e.contains("trace") && e.contains("whole week"), "{e}");
}
