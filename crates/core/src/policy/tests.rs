#![allow(clippy::unwrap_used)]

use super::*;
use crate::fleet::FleetConfig;
use crate::ids::FleetName;
use proptest::prelude::*;

fn fleet() -> FleetConfig {
    FleetConfig::from_json(
        &FleetName::parse("voice").unwrap(),
        r#"{"min_pairs": 2, "max_pairs": 40, "max_step": 4, "cooldown_out_seconds": 0,
            "cooldown_in_seconds": 0,
            "drain": {"deadline_seconds": 600, "policy": "wait", "hard_max_seconds": 3600}}"#,
    )
    .unwrap()
}

fn policy() -> PolicyConfig {
    PolicyConfig {
        target_channels_per_pair: 100,
        scale_in_stabilization_seconds: 600,
        max_step_out: None,
        max_step_in: 1,
        schedules: Vec::new(),
        predictive: None,
        trend: None,
        suspended: false,
    }
}

const MINUTE: i64 = 60_000;

fn at(minute: i64) -> Timestamp {
    Timestamp(1_800_000_000_000 + minute * MINUTE)
}

fn inputs(minute: i64, pairs: u32, load: Option<u64>, recent: &[(i64, u32)]) -> Inputs {
    Inputs {
        now: at(minute),
        pair_count: pairs,
        load_channels: load,
        arrivals_per_minute: None,
        recent: recent
            .iter()
            .map(|(m, p)| Recommendation {
                at: at(*m),
                pairs: *p,
                load_channels: None,
                arrivals_per_minute: None,
            })
            .collect(),
        time_to_capacity_seconds: Some(480),
        forecast: None,
        scale_in_forecast: None,
    }
}

fn decide(p: &PolicyConfig, i: &Inputs) -> Decision {
    evaluate(&fleet(), p, i).unwrap()
}

#[test]
fn out_at_once_within_the_step_and_in_only_after_the_window() {
    // 950 channels at 100 a pair: 10 pairs; from 4, at most 4 a step.
    let d = decide(&policy(), &inputs(0, 4, Some(950), &[]));
    assert_eq!((d.tracking, d.desired, d.act), (Some(10), 8, true), "{d:?}");
    // The load fell to 250 (3 pairs), but 9 minutes ago 10 were needed: hold.
    let d = decide(&policy(), &inputs(9, 10, Some(250), &[(0, 10)]));
    assert_eq!((d.desired, d.act), (10, false), "{d:?}");
    assert_eq!(d.stabilized, Some(10));
    // Ten minutes on, the window holds only low recommendations: in by one.
    let d = decide(&policy(), &inputs(10, 10, Some(250), &[(0, 10), (5, 4)]));
    assert_eq!(
        (d.stabilized, d.desired, d.act),
        (Some(4), 9, true),
        "{d:?}"
    );
    assert_eq!(
        d.keep.len(),
        2,
        "the one outside the window is dropped: {d:?}"
    );
}

#[test]
fn without_a_sample_nothing_is_recommended_and_the_limits_still_hold() {
    let d = decide(&policy(), &inputs(0, 6, None, &[(0, 2)]));
    assert_eq!((d.tracking, d.desired, d.act), (None, 6, false), "{d:?}");
    let d = decide(&policy(), &inputs(0, 1, None, &[]));
    assert_eq!((d.desired, d.act), (2, true), "min_pairs raises: {d:?}");
    let d = decide(&policy(), &inputs(0, 40, Some(9_000), &[]));
    assert_eq!(
        (d.tracking, d.desired, d.act),
        (Some(90), 40, false),
        "{d:?}"
    );
}

#[test]
fn a_suspended_policy_says_what_it_would_do_and_does_not() {
    let p = PolicyConfig {
        suspended: true,
        ..policy()
    };
    let d = decide(&p, &inputs(0, 4, Some(950), &[]));
    assert_eq!((d.desired, d.act), (8, false));
    assert!(d.reasons.iter().any(|r| r.contains("suspended")), "{d:?}");
}

fn business_hours(tz: &str, min_pairs: u32) -> Schedule {
    Schedule {
        name: "business".into(),
        days: vec![
            Day::Mon,
            Day::Tue,
            Day::Wed,
            Day::Thu,
            Day::Fri,
            Day::Sat,
            Day::Sun,
        ],
        from: LocalTime::parse("08:00").unwrap(),
        to: LocalTime::parse("18:00").unwrap(),
        time_zone: tz.into(),
        min_pairs,
    }
}

/// The instant of a wall-clock time in a zone.
fn local(tz: &str, civil: &str) -> Timestamp {
    let z: jiff::Zoned = format!("{civil}[{tz}]").parse().unwrap();
    Timestamp(z.timestamp().as_millisecond())
}

#[test]
fn a_schedule_starts_and_ends_by_the_wall_clock_on_the_days_the_clocks_change() {
    let s = business_hours("Europe/Berlin", 6);
    // 2027-03-28: clocks go forward at 02:00; 2027-10-31: back at 03:00.
    for day in ["2027-03-28", "2027-10-31", "2027-06-15"] {
        assert!(!s
            .in_force(local("Europe/Berlin", &format!("{day}T07:59")))
            .unwrap());
        assert!(s
            .in_force(local("Europe/Berlin", &format!("{day}T08:00")))
            .unwrap());
        assert!(s
            .in_force(local("Europe/Berlin", &format!("{day}T17:59")))
            .unwrap());
        assert!(!s
            .in_force(local("Europe/Berlin", &format!("{day}T18:00")))
            .unwrap());
    }
    // The same time of day in UTC is inside in summer and outside in winter.
    assert!(
        s.in_force(local("UTC", "2027-06-23T06:30")).unwrap(),
        "08:30 CEST"
    );
    assert!(
        !s.in_force(local("UTC", "2027-12-22T06:30")).unwrap(),
        "07:30 CET"
    );
}

#[test]
fn a_window_edge_inside_a_clock_change_follows_the_wall_clock() {
    let s = Schedule {
        from: LocalTime::parse("02:30").unwrap(),
        to: LocalTime::parse("04:00").unwrap(),
        ..business_hours("Europe/Berlin", 6)
    };
    let utc = |civil: &str| s.in_force(local("UTC", civil)).unwrap();
    // 2027-03-28, 01:00 UTC: the wall clock jumps from 01:59 CET to 03:00 CEST, past 02:30.
    assert!(!utc("2027-03-28T00:59"), "01:59 CET");
    assert!(utc("2027-03-28T01:00"), "03:00 CEST");
    assert!(!utc("2027-03-28T02:00"), "04:00 CEST");
    // 2027-10-31, 01:00 UTC: from 02:59 CEST back to 02:00 CET; 02:30 comes twice.
    assert!(!utc("2027-10-31T00:29"), "02:29 CEST");
    assert!(utc("2027-10-31T00:30"), "02:30 CEST");
    assert!(!utc("2027-10-31T01:00"), "02:00 CET, the hour again");
    assert!(utc("2027-10-31T01:30"), "02:30 CET");
    assert!(!utc("2027-10-31T03:00"), "04:00 CET");
}

#[test]
fn an_overnight_window_belongs_to_the_day_it_starts_on() {
    let s = Schedule {
        name: "friday-night".into(),
        days: vec![Day::Fri],
        from: LocalTime::parse("22:00").unwrap(),
        to: LocalTime::parse("06:00").unwrap(),
        time_zone: "UTC".into(),
        min_pairs: 5,
    };
    // 2027-01-01 is a Friday.
    assert!(!s.in_force(local("UTC", "2027-01-01T21:59")).unwrap());
    assert!(s.in_force(local("UTC", "2027-01-01T22:00")).unwrap());
    assert!(s.in_force(local("UTC", "2027-01-02T05:59")).unwrap());
    assert!(!s.in_force(local("UTC", "2027-01-02T06:00")).unwrap());
    assert!(
        !s.in_force(local("UTC", "2027-01-02T22:00")).unwrap(),
        "Saturday"
    );
}

#[test]
fn a_schedule_raises_the_fleet_within_the_step_and_the_highest_floor_wins() {
    let p = PolicyConfig {
        schedules: vec![business_hours("UTC", 7), business_hours("UTC", 12)],
        ..policy()
    };
    let noon = local("UTC", "2027-02-03T12:00");
    let i = Inputs {
        now: noon,
        pair_count: 3,
        load_channels: Some(100),
        arrivals_per_minute: None,
        recent: Vec::new(),
        time_to_capacity_seconds: None,
        forecast: None,
        scale_in_forecast: None,
    };
    let d = decide(&p, &i);
    assert_eq!(d.schedule, Some(("business".into(), 12)));
    assert_eq!((d.desired, d.act), (7, true), "3 + 4 a step: {d:?}");
}

#[test]
fn bad_policies_are_refused_naming_the_field() {
    let f = fleet();
    let cases: Vec<(PolicyConfig, &str)> = vec![
        (
            PolicyConfig {
                target_channels_per_pair: 0,
                ..policy()
            },
            "policy.target_channels_per_pair",
        ),
        (
            PolicyConfig {
                max_step_in: 5,
                ..policy()
            },
            "policy.max_step_in",
        ),
        (
            PolicyConfig {
                max_step_out: Some(0),
                ..policy()
            },
            "policy.max_step_out",
        ),
        (
            PolicyConfig {
                scale_in_stabilization_seconds: 86_401,
                ..policy()
            },
            "policy.scale_in_stabilization_seconds",
        ),
        (
            PolicyConfig {
                schedules: vec![business_hours("Mars/Olympus", 6)],
                ..policy()
            },
            "policy.schedules[0].time_zone",
        ),
        (
            PolicyConfig {
                schedules: vec![business_hours("UTC", 41)],
                ..policy()
            },
            "policy.schedules[0].min_pairs",
        ),
        (
            PolicyConfig {
                schedules: vec![Schedule {
                    days: vec![],
                    ..business_hours("UTC", 6)
                }],
                ..policy()
            },
            "policy.schedules[0].days",
        ),
    ];
    for (p, field) in cases {
        let e = p.validate(&f).unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    policy().validate(&f).unwrap();
    assert!(LocalTime::parse("24:00").is_none() && LocalTime::parse("8:00").is_none());
}

proptest! {
    #[test]
    fn never_outside_the_limits_never_beyond_a_step_and_never_in_inside_the_window(
        current in 2u32..=40, load in proptest::option::of(0u64..6_000),
        recent in proptest::collection::vec((-20i64..=0, 0u32..60), 0..12),
        step_in in 1u32..=4, suspended in any::<bool>(),
    ) {
        let p = PolicyConfig { max_step_in: step_in, suspended, ..policy() };
        let i = inputs(0, current, load, &recent);
        let d = decide(&p, &i);
        prop_assert!((2..=40).contains(&d.desired), "{:?}", d);
        prop_assert!(d.desired <= current + 4 && d.desired + step_in >= current, "{:?}", d);
        let in_window = recent.iter().any(|(m, r)| *m > -10 && *r >= current);
        if in_window || load.is_none() {
            prop_assert!(d.desired >= current, "scaled in inside the window: {:?}", d);
        }
        prop_assert_eq!(d.act, d.desired != current && !suspended);
    }

    #[test]
    fn more_load_never_means_fewer_pairs(
        current in 2u32..=40, a in 0u64..6_000, b in 0u64..6_000,
        recent in proptest::collection::vec((-20i64..=0, 0u32..60), 0..12),
    ) {
        let (lo, hi) = (a.min(b), a.max(b));
        let low = decide(&policy(), &inputs(0, current, Some(lo), &recent));
        let high = decide(&policy(), &inputs(0, current, Some(hi), &recent));
        prop_assert!(low.desired <= high.desired, "{:?} vs {:?}", low, high);
    }

    #[test]
    fn around_every_clock_change_a_schedule_follows_the_wall_clock(
        change in prop::sample::select(vec![
            ("Europe/Berlin", "2027-03-28T01:00"), ("Europe/Berlin", "2027-10-31T01:00"),
            ("America/New_York", "2027-03-14T07:00"), ("America/New_York", "2027-11-07T06:00"),
            ("Australia/Sydney", "2027-04-03T16:00"), ("Australia/Sydney", "2027-10-02T16:00"),
        ]),
        offset in -180i64..180, from in 0u16..(24 * 60), len in 1u16..(24 * 60),
    ) {
        let (zone, utc) = change;
        let to = (from + len) % (24 * 60);
        prop_assume!(to != from);
        let hm = |m: u16| LocalTime::parse(&format!("{:02}:{:02}", m / 60, m % 60)).unwrap();
        let s = Schedule { from: hm(from), to: hm(to), ..business_hours(zone, 6) };
        let t = Timestamp(local("UTC", utc).0 + offset * MINUTE);
        let wall = jiff::Timestamp::from_millisecond(t.0).unwrap()
            .to_zoned(jiff::tz::TimeZone::get(zone).unwrap());
        let m = wall.hour() as u16 * 60 + wall.minute() as u16;
        let expected = if from < to { (from..to).contains(&m) } else { m >= from || m < to };
        prop_assert_eq!(s.in_force(t).unwrap(), expected, "{} in {}-{}", wall, hm(from), hm(to));
    }

    #[test]
    fn a_schedule_is_in_force_exactly_when_the_wall_clock_is_inside_it(
        minutes in 0i64..(2 * 366 * 24 * 60),
        zone in prop::sample::select(vec!["Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC"]),
    ) {
        // Every minute of 2027 and 2028, DST changes included, in zones with and without them.
        let s = business_hours(zone, 6);
        let t = Timestamp(1_798_761_600_000 + minutes * MINUTE);
        let wall = jiff::Timestamp::from_millisecond(t.0).unwrap()
            .to_zoned(jiff::tz::TimeZone::get(zone).unwrap());
        let expected = (8..18).contains(&wall.hour());
        prop_assert_eq!(s.in_force(t).unwrap(), expected, "{}", wall);
    }
}

fn predictive(mode: Mode) -> PolicyConfig {
    PolicyConfig {
        predictive: Some(PredictiveConfig {
            mode,
            weeks: 4,
            min_weeks: 2,
            target_channels_per_pair: Some(125),
            headroom_sigmas: 0,
        }),
        ..policy()
    }
}

fn with_forecast(mut i: Inputs, peak: Option<u64>) -> Inputs {
    i.forecast = peak.map(|peak_channels| Forecast {
        peak_channels,
        lookahead_seconds: 480,
        weeks: 3,
        week_peaks: Vec::new(),
        trend_per_week: 0,
    });
    i
}

#[test]
fn the_forecast_raises_the_fleet_before_the_rise_within_the_step() {
    // 250 channels now (3 pairs by tracking), 1,000 forecast (8 pairs at 125): out by 4.
    let i = with_forecast(inputs(0, 3, Some(250), &[]), Some(1_000));
    let d = decide(&predictive(Mode::ForecastAndScale), &i);
    assert_eq!((d.tracking, d.desired, d.act), (Some(3), 7, true), "{d:?}");
    let p = d.predictive.clone().unwrap();
    assert_eq!((p.pairs, p.counted), (Some(8), true), "{d:?}");
    assert_eq!(d.keep.last().map(|r| r.pairs), Some(8), "{d:?}");
    // forecast_only reports the same and leaves tracking's decision.
    let d = decide(&predictive(Mode::ForecastOnly), &i);
    assert_eq!((d.desired, d.act), (3, false), "{d:?}");
    let p = d.predictive.clone().unwrap();
    assert_eq!((p.pairs, p.counted), (Some(8), false), "{d:?}");
    assert!(
        d.reasons.iter().any(|r| r.contains("not acted on")),
        "{d:?}"
    );
    // No history, no forecast: tracking alone, said so.
    let d = decide(
        &predictive(Mode::ForecastAndScale),
        &inputs(0, 3, Some(250), &[]),
    );
    assert_eq!((d.desired, d.act), (3, false), "{d:?}");
    assert!(d.reasons.iter().any(|r| r.contains("no forecast")), "{d:?}");
}

#[test]
fn no_scale_in_right_before_a_predicted_rise_and_the_forecast_alone_never_scales_in() {
    // 10 pairs, the load fell to 250 for the whole window: tracking alone takes one out...
    let low: Vec<(i64, u32)> = (-11..0).map(|m| (m, 3)).collect();
    let d = decide(&policy(), &inputs(0, 10, Some(250), &low));
    assert_eq!((d.desired, d.act), (9, true), "{d:?}");
    // ...but 1,250 channels are forecast within the time to capacity: hold.
    let p = predictive(Mode::ForecastAndScale);
    let d = decide(
        &p,
        &with_forecast(inputs(0, 10, Some(250), &low), Some(1_250)),
    );
    assert_eq!(
        (d.stabilized, d.desired, d.act),
        (Some(10), 10, false),
        "{d:?}"
    );
    // A forecast made within the window still holds it after the forecast fell.
    let mut recent = low.clone();
    recent.push((-3, 10));
    let d = decide(
        &p,
        &with_forecast(inputs(0, 10, Some(250), &recent), Some(100)),
    );
    assert_eq!((d.desired, d.act), (10, false), "{d:?}");
    // Without a load sample the forecast raises the fleet and never lowers it.
    let d = decide(&p, &with_forecast(inputs(0, 4, None, &[]), Some(1_000)));
    assert_eq!((d.desired, d.act), (8, true), "{d:?}");
    let d = decide(&p, &with_forecast(inputs(0, 10, None, &[]), Some(100)));
    assert_eq!((d.desired, d.act), (10, false), "{d:?}");
}

#[test]
fn a_bad_predictive_policy_is_refused_naming_the_field() {
    let mut p = predictive(Mode::ForecastOnly);
    if let Some(c) = p.predictive.as_mut() {
        c.min_weeks = 5;
    }
    let e = p.validate(&fleet()).unwrap_err().to_string();
    assert!(e.contains("policy.predictive.min_weeks"), "{e}");
    predictive(Mode::ForecastAndScale)
        .validate(&fleet())
        .unwrap();
}

proptest! {
    #[test]
    fn forecast_only_never_changes_the_decision(
        current in 2u32..=40, load in proptest::option::of(0u64..6_000),
        recent in proptest::collection::vec((-20i64..=0, 0u32..60), 0..12),
        peak in proptest::option::of(0u64..8_000), suspended in any::<bool>(),
    ) {
        let plain = decide(&PolicyConfig { suspended, ..policy() }, &inputs(0, current, load, &recent));
        let only = decide(
            &PolicyConfig { suspended, ..predictive(Mode::ForecastOnly) },
            &with_forecast(inputs(0, current, load, &recent), peak),
        );
        prop_assert_eq!(
            (only.desired, only.act, only.tracking, only.stabilized, &only.keep),
            (plain.desired, plain.act, plain.tracking, plain.stabilized, &plain.keep)
        );
        prop_assert_eq!(only.predictive.map(|p| p.counted), Some(false));
    }

    #[test]
    fn forecast_and_scale_stays_within_the_limits_and_reaches_the_forecast_by_steps(
        current in 2u32..=40, load in proptest::option::of(0u64..6_000),
        recent in proptest::collection::vec((-20i64..=0, 0u32..60), 0..12),
        peak in proptest::option::of(0u64..8_000),
    ) {
        let p = predictive(Mode::ForecastAndScale);
        let d = decide(&p, &with_forecast(inputs(0, current, load, &recent), peak));
        prop_assert!((2..=40).contains(&d.desired), "{:?}", d);
        prop_assert!(d.desired <= current + 4 && d.desired + 1 >= current, "{:?}", d);
        if let Some(peak) = peak {
            let wanted = u32::try_from(peak.div_ceil(125)).unwrap();
            prop_assert!(d.desired >= wanted.min(current + 4).min(40), "{:?}", d);
        }
        let in_window = recent.iter().any(|(m, r)| *m > -10 && *r >= current);
        if in_window || load.is_none() {
            prop_assert!(d.desired >= current, "scaled in inside the window: {:?}", d);
        }
    }

    #[test]
    fn more_load_or_a_higher_forecast_never_means_fewer_pairs(
        current in 2u32..=40, a in 0u64..6_000, b in 0u64..6_000,
        fa in 0u64..8_000, fb in 0u64..8_000, forecast_known in any::<bool>(),
        recent in proptest::collection::vec((-20i64..=0, 0u32..60), 0..12),
    ) {
        let p = predictive(Mode::ForecastAndScale);
        let (lo, hi) = (a.min(b), a.max(b));
        let (flo, fhi) = (fa.min(fb), fa.max(fb));
        let d = |load: u64, f: Option<u64>| {
            decide(&p, &with_forecast(inputs(0, current, Some(load), &recent), f)).desired
        };
        let f = forecast_known.then_some(flo);
        prop_assert!(d(lo, f) <= d(hi, f), "load {} -> {}", lo, hi);
        prop_assert!(d(lo, Some(flo)) <= d(lo, Some(fhi)), "forecast {} -> {}", flo, fhi);
        prop_assert!(d(lo, None) <= d(lo, Some(flo)), "no forecast against {}", flo);
    }
}

#[test]
fn a_scale_out_alarm_in_alarm_raises_by_its_step_within_max_pairs() {
    let f = fleet();
    let d = evaluate(&f, &policy(), &inputs(0, 5, Some(500), &[])).unwrap();
    assert_eq!((d.desired, d.act), (5, false));
    let d = with_alarms(&f, false, d, &[("high".into(), 3), ("higher".into(), 2)]);
    assert_eq!((d.desired, d.act), (8, true));
    assert!(
        d.reasons.iter().any(|r| r.contains("alarm high")),
        "{:?}",
        d.reasons
    );
    let d = with_alarms(&f, false, without_policy(39), &[("high".into(), 3)]);
    assert_eq!(d.desired, 40, "max_pairs");
    // Suspended: decided, not acted on.
    let d = with_alarms(&f, true, without_policy(5), &[("high".into(), 3)]);
    assert_eq!((d.desired, d.act), (8, false));
    assert!(d.reasons.iter().any(|r| r.starts_with("suspended")));
}

#[test]
fn a_scale_in_alarm_moves_only_a_fleet_tracking_has_no_word_on() {
    let f = fleet();
    let d = with_alarms(&f, false, without_policy(5), &[("low".into(), -2)]);
    assert_eq!((d.desired, d.act), (3, true));
    let d = with_alarms(&f, false, without_policy(3), &[("low".into(), -2)]);
    assert_eq!(d.desired, 2, "min_pairs");
    // With a fresh sample, tracking's stabilised scale-in stands.
    let d = evaluate(&f, &policy(), &inputs(0, 5, Some(500), &[])).unwrap();
    let d = with_alarms(&f, false, d, &[("low".into(), -2)]);
    assert_eq!((d.desired, d.act), (5, false));
    // A scale-out alarm wins over a scale-in one.
    let d = with_alarms(
        &f,
        false,
        without_policy(5),
        &[("low".into(), -2), ("high".into(), 1)],
    );
    assert_eq!(d.desired, 6);
    // Nothing firing: nothing changes.
    let d = with_alarms(&f, false, without_policy(5), &[]);
    assert_eq!((d.desired, d.act), (5, false));
}

#[test]
fn a_cooldown_holds_a_decision_back_in_its_own_direction_only() {
    let mut f = fleet();
    f.cooldown_out_seconds = 120;
    f.cooldown_in_seconds = 900;
    let meta = crate::fleet::FleetMeta {
        last_scale_out_at: Some(at(0)),
        ..Default::default()
    };
    let out = with_alarms(&f, false, without_policy(5), &[("high".into(), 2)]);
    let inward = with_alarms(&f, false, without_policy(5), &[("low".into(), -1)]);
    // Inside the scale-out cooldown (2 minutes): held, and the reason names its end.
    let why = cooldown_hold(&out, &f, &meta, at(1)).unwrap();
    assert!(
        why.contains("scale-out") && why.contains(&at(2).rfc3339()),
        "{why}"
    );
    // At its end and after: acts.
    assert_eq!(cooldown_hold(&out, &f, &meta, at(2)), None);
    // A scale-in waits out its own, longer cooldown from the last scaling of either way.
    assert!(cooldown_hold(&inward, &f, &meta, at(14)).is_some());
    assert_eq!(cooldown_hold(&inward, &f, &meta, at(15)), None);
    // A decision that does not act, or a fleet never scaled, is never held.
    assert_eq!(cooldown_hold(&without_policy(5), &f, &meta, at(1)), None);
    assert_eq!(
        cooldown_hold(&out, &f, &crate::fleet::FleetMeta::default(), at(0)),
        None
    );
    let suspended = with_alarms(&f, true, without_policy(5), &[("high".into(), 2)]);
    assert_eq!(cooldown_hold(&suspended, &f, &meta, at(1)), None);
}

fn trending() -> PolicyConfig {
    PolicyConfig {
        trend: Some(TrendConfig::default()),
        ..policy()
    }
}

/// Inputs whose earlier recommendations carry the loads `loads`, one a minute up to the
/// minute before `minute` (the last of them, `loads[len - 1]`, a minute before).
fn with_loads(minute: i64, pairs: u32, load: u64, loads: &[u64]) -> Inputs {
    let n = loads.len() as i64;
    let mut i = inputs(minute, pairs, Some(load), &[]);
    i.recent = loads
        .iter()
        .enumerate()
        .map(|(k, c)| Recommendation {
            at: at(minute - n + k as i64),
            pairs: u32::try_from(c.div_ceil(100)).unwrap(),
            load_channels: Some(*c),
            arrivals_per_minute: None,
        })
        .collect();
    i
}

#[test]
fn a_rise_beyond_noise_asks_for_the_load_the_pairs_will_meet() {
    // 1,000 -> 1,200 -> 1,400 channels a minute apart: +200 a minute, far beyond the noise of
    // a count near 1,200 (4 x sqrt(1,100) = 133 across two minutes). In 8 minutes: 3,000
    // channels, 30 pairs at 100; out by the step.
    let d = decide(&trending(), &with_loads(10, 14, 1_400, &[1_000, 1_200]));
    let t = d.trend.clone().unwrap();
    assert_eq!(
        (t.samples, t.slope_per_minute, t.projected_channels),
        (3, 200, Some(3_000)),
        "{d:?}"
    );
    assert_eq!(
        (d.tracking, d.desired, d.act),
        (Some(14), 18, true),
        "{d:?}"
    );
    assert!(d.reasons.iter().any(|r| r.starts_with("trend:")), "{d:?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("trend: the projected load")),
        "the scale-out says it is the trend's: {d:?}"
    );
    // The recommendation kept is the trend's, with the load it came from.
    let last = d.keep.last().unwrap();
    assert_eq!((last.pairs, last.load_channels), (30, Some(1_400)));
}

#[test]
fn noise_a_fall_or_too_few_samples_project_nothing() {
    let p = trending();
    // +/- 20 around 1,000: within 4 standard deviations of a count of 1,000.
    let d = decide(&p, &with_loads(10, 10, 1_020, &[990, 1_010, 980]));
    assert_eq!(d.trend.as_ref().unwrap().projected_channels, None, "{d:?}");
    assert_eq!((d.desired, d.act), (11, true), "tracking alone: {d:?}");
    // A fall is not projected: a scale-in stays the window's.
    let d = decide(&p, &with_loads(10, 14, 1_000, &[1_400, 1_200]));
    assert_eq!(d.trend.as_ref().unwrap().projected_channels, None, "{d:?}");
    assert_eq!(d.desired, 14, "no scale-in inside the window: {d:?}");
    // One earlier sample is too few; samples outside the window do not count.
    let d = decide(&p, &with_loads(10, 14, 1_400, &[1_200]));
    assert_eq!(d.trend, None, "{d:?}");
    let d = decide(
        &p,
        &with_loads(10, 14, 1_400, &[1_000, 1_200, 1_300, 1_350]),
    );
    assert_eq!(d.trend.as_ref().map(|t| t.samples), Some(3), "{d:?}");
    // Records kept before the trend carry no load; without a time to capacity there is
    // nothing to project over; without the rule, no word.
    let d = decide(&p, &inputs(10, 14, Some(1_400), &[(8, 10), (9, 12)]));
    assert_eq!(d.trend, None, "{d:?}");
    let mut i = with_loads(10, 14, 1_400, &[1_000, 1_200]);
    i.time_to_capacity_seconds = None;
    assert_eq!(decide(&p, &i).trend, None);
    let d = decide(&policy(), &with_loads(10, 14, 1_400, &[1_000, 1_200]));
    assert_eq!((d.trend.clone(), d.desired), (None, 14), "{d:?}");
}

#[test]
fn the_trend_keeps_its_samples_even_with_a_short_stabilisation_window() {
    let p = PolicyConfig {
        scale_in_stabilization_seconds: 60,
        trend: Some(TrendConfig {
            window_seconds: 300,
            noise_sigmas: 4,
            headroom_sigmas: 0,
        }),
        ..policy()
    };
    let d = decide(
        &p,
        &with_loads(10, 14, 1_400, &[1_000, 1_100, 1_200, 1_300]),
    );
    assert_eq!(d.keep.len(), 5, "{d:?}");
    // Only the last minute counts for a scale-in.
    let d = decide(&p, &with_loads(10, 14, 300, &[1_000, 1_000, 1_000, 1_000]));
    assert_eq!((d.stabilized, d.desired), (Some(3), 13), "{d:?}");
}

#[test]
fn a_scale_in_leaves_what_the_forecast_over_its_hold_needs() {
    let p = predictive(Mode::ForecastAndScale);
    // The window holds 4 pairs at most; the forecast over the scale-in's hold sees 750
    // channels, 6 pairs at 125: no scale-in from 6, and none below 6 from 8.
    let mut i = with_forecast(inputs(20, 6, Some(350), &[(12, 4)]), Some(400));
    i.scale_in_forecast = i.forecast.clone().map(|f| Forecast {
        peak_channels: 750,
        lookahead_seconds: 1_080,
        ..f
    });
    let d = decide(&p, &i);
    assert_eq!(
        (d.stabilized, d.desired, d.act),
        (Some(4), 6, false),
        "{d:?}"
    );
    assert!(d.reasons.iter().any(|r| r.contains("hold")), "{d:?}");
    i.pair_count = 8;
    let d = decide(&p, &i);
    assert_eq!((d.desired, d.act), (7, true), "{d:?}");
    // In forecast_only it is reported, not acted on.
    let d = decide(&predictive(Mode::ForecastOnly), &i);
    assert_eq!(d.desired, 7, "{d:?}");
    i.pair_count = 6;
    let d = decide(&predictive(Mode::ForecastOnly), &i);
    assert_eq!(d.desired, 5, "{d:?}");
}

#[test]
fn a_bad_trend_is_refused_naming_the_field() {
    for (t, field) in [
        (
            TrendConfig {
                window_seconds: 59,
                ..TrendConfig::default()
            },
            "policy.trend.window_seconds",
        ),
        (
            TrendConfig {
                window_seconds: 3_601,
                ..TrendConfig::default()
            },
            "policy.trend.window_seconds",
        ),
        (
            TrendConfig {
                noise_sigmas: 101,
                ..TrendConfig::default()
            },
            "policy.trend.noise_sigmas",
        ),
        (
            TrendConfig {
                headroom_sigmas: 11,
                ..TrendConfig::default()
            },
            "policy.trend.headroom_sigmas",
        ),
    ] {
        let p = PolicyConfig {
            trend: Some(t),
            ..policy()
        };
        let e = p.validate(&fleet()).unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    assert!(trending().validate(&fleet()).is_ok());
    let p: PolicyConfig =
        serde_json::from_str(r#"{"target_channels_per_pair": 100, "trend": {}}"#).unwrap();
    assert_eq!(p.trend, Some(TrendConfig::default()));
    let r: Recommendation = serde_json::from_str(r#"{"at": 5, "pairs": 3}"#).unwrap();
    assert_eq!(
        r.load_channels, None,
        "a record kept before the trend still reads"
    );
}

proptest! {
    #[test]
    fn with_a_trend_more_load_never_means_fewer_pairs_and_the_limits_hold(
        earlier in proptest::collection::vec(0u64..5_000, 0..8),
        lo in 0u64..5_000,
        extra in 0u64..5_000,
        current in 2u32..=40,
        sigmas in 0u32..8,
        window in 60u64..600,
        ttc in 0u64..3_600,
    ) {
        let p = PolicyConfig {
            trend: Some(TrendConfig { window_seconds: window, noise_sigmas: sigmas, headroom_sigmas: 0 }),
            ..policy()
        };
        let d = |load: u64| {
            let mut i = with_loads(30, current, load, &earlier);
            i.time_to_capacity_seconds = Some(ttc);
            decide(&p, &i)
        };
        let (low, high) = (d(lo), d(lo + extra));
        prop_assert!(low.desired <= high.desired, "{:?} vs {:?}", low, high);
        for x in [&low, &high] {
            prop_assert!((2..=40).contains(&x.desired), "{:?}", x);
            prop_assert!(x.desired <= current + 4 && x.desired + 1 >= current, "{:?}", x);
            if x.desired < current {
                // A scale-in only when every recommendation in the window is below.
                prop_assert!(x.stabilized.unwrap() < current, "{:?}", x);
            }
            if let Some(t) = &x.trend {
                if let Some(pr) = t.projected_channels {
                    prop_assert!(pr >= lo && t.slope_per_minute >= 0, "{:?}", t);
                }
            }
        }
    }
}

/// `with_loads`, each earlier sample with `arrivals` a minute, and the current one with
/// `now_arrivals`.
fn with_arrivals(
    minute: i64,
    pairs: u32,
    load: u64,
    now_arrivals: u64,
    earlier: &[(u64, u64)],
) -> Inputs {
    let loads: Vec<u64> = earlier.iter().map(|(c, _)| *c).collect();
    let mut i = with_loads(minute, pairs, load, &loads);
    for (r, (_, a)) in i.recent.iter_mut().zip(earlier) {
        r.arrivals_per_minute = Some(*a);
    }
    i.arrivals_per_minute = Some(now_arrivals);
    i
}

#[test]
fn a_surge_in_arrivals_is_acted_on_before_the_channels_show_it() {
    // 1,000 channels on 333 calls a minute (3-minute calls) for three minutes; now 600 calls
    // arrive and the channels have barely moved (1,050). The channels alone are within noise:
    // tracking keeps 11 pairs. The offered load (600 x 180 s = 1,802 channels) rises 401 a
    // minute, beyond the arrivals' noise: the trend asks for ~5,000 channels in 8 minutes.
    let p = trending();
    let earlier = [(1_000, 333), (1_000, 333), (1_000, 333)];
    let d = decide(&p, &with_arrivals(10, 11, 1_050, 600, &earlier));
    let o = d.offered.clone().unwrap();
    assert_eq!(
        (o.mean_call_seconds, o.channels, o.samples),
        (180, 1_802, 3),
        "{o:?}"
    );
    let t = d.trend.clone().unwrap();
    assert_eq!(t.slope_per_minute, 401, "{t:?}");
    assert!(t.projected_channels.unwrap() >= 5_000, "{t:?}");
    assert_eq!(
        (d.tracking, d.desired, d.act),
        (Some(11), 15, true),
        "{d:?}"
    );
    assert!(
        d.reasons
            .iter()
            .any(|r| r.starts_with("offered load: 600 calls a minute x 180 s")),
        "{d:?}"
    );
    // The recommendation kept carries the arrivals it was made from.
    assert_eq!(d.keep.last().unwrap().arrivals_per_minute, Some(600));
    // With room for the calls' noise above the projection (5 sigmas of ~5,010: +354), the
    // trend asks for 54 pairs where it asked for 51; the step still bounds the run.
    let roomy = PolicyConfig {
        trend: Some(TrendConfig {
            headroom_sigmas: 5,
            ..TrendConfig::default()
        }),
        ..policy()
    };
    let plain = decide(&p, &with_arrivals(10, 11, 1_050, 600, &earlier));
    let d = decide(&roomy, &with_arrivals(10, 11, 1_050, 600, &earlier));
    let asked = |d: &Decision| d.keep.last().unwrap().pairs;
    assert_eq!(asked(&plain), 51, "{plain:?}");
    assert_eq!(asked(&d), 54, "{d:?}");
    assert_eq!(d.desired, 15, "{d:?}");

    // The same minute without the arrivals: the channels' trend is within noise.
    let mut plain = with_arrivals(10, 11, 1_050, 600, &earlier);
    plain.arrivals_per_minute = None;
    let d = decide(&p, &plain);
    assert_eq!(d.offered, None, "{d:?}");
    assert_eq!(d.trend.unwrap().projected_channels, None);
    assert_eq!((d.desired, d.act), (11, false));

    // Steady arrivals (333 a minute, as before) on the same channels: nothing to project.
    let d = decide(&p, &with_arrivals(10, 11, 1_050, 340, &earlier));
    assert_eq!(d.trend.unwrap().projected_channels, None);
    assert_eq!((d.desired, d.act), (11, false));
}

#[test]
fn the_forecasts_headroom_grows_with_the_square_root_of_its_peak() {
    let mut c = PredictiveConfig {
        mode: Mode::ForecastAndScale,
        weeks: 4,
        min_weeks: 2,
        target_channels_per_pair: Some(500),
        headroom_sigmas: 0,
    };
    assert_eq!(c.pairs_for(100, 900), 2);
    c.headroom_sigmas = 5;
    // 900 + 5 x 30 = 1,050: three pairs of 500; 6,000 + 5 x 77.5 = 6,388: 13.
    assert_eq!(c.pairs_for(100, 900), 3);
    assert_eq!(c.pairs_for(100, 6_000), 13);
    assert_eq!(c.pairs_for(100, 0), 0);
    // Without its own target, the policy's.
    c.target_channels_per_pair = None;
    assert_eq!(c.pairs_for(100, 900), 11);
    assert!(c.validate().is_ok());
    c.headroom_sigmas = forecast::MAX_HEADROOM_SIGMAS + 1;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("policy.predictive.headroom_sigmas"), "{e}");
}

proptest! {
    #[test]
    fn with_arrivals_more_load_or_more_arrivals_never_means_fewer_pairs(
        earlier in proptest::collection::vec((0u64..5_000, 1u64..2_000), 0..8),
        lo in 0u64..5_000,
        extra in 0u64..5_000,
        arrivals in 1u64..2_000,
        more in 0u64..2_000,
        current in 2u32..=40,
        sigmas in 0u32..8,
    ) {
        let p = PolicyConfig {
            trend: Some(TrendConfig { window_seconds: 300, noise_sigmas: sigmas, headroom_sigmas: 0 }),
            ..policy()
        };
        let d = |load: u64, a: u64| decide(&p, &with_arrivals(30, current, load, a, &earlier));
        let base = d(lo, arrivals);
        for x in [d(lo + extra, arrivals), d(lo, arrivals + more)] {
            prop_assert!(base.desired <= x.desired, "{:?} vs {:?}", base, x);
            prop_assert!((2..=40).contains(&x.desired), "{:?}", x);
            prop_assert!(x.desired <= current + 4 && x.desired + 1 >= current, "{:?}", x);
        }
    }
}
