#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

const MINUTE: i64 = 60_000;
/// A Monday 00:00 UTC (2027-01-04).
const MONDAY: i64 = 1_799_020_800_000;

fn config(weeks: u32, min_weeks: u32) -> PredictiveConfig {
    PredictiveConfig {
        mode: Mode::ForecastOnly,
        weeks,
        min_weeks,
        target_channels_per_pair: None,
        headroom_sigmas: 0,
    }
}

/// 5-minute samples over `weeks` weeks before `MONDAY + weeks`, from a load `f(week_index,
/// minute_of_week)` (week 0 the oldest).
fn history(weeks: i64, f: impl Fn(i64, i64) -> u64) -> Vec<Sample> {
    let mut out = Vec::new();
    for w in 0..weeks {
        for m in (0..7 * 24 * 60).step_by(5) {
            out.push(Sample {
                at: Timestamp(MONDAY + w * WEEK_MS + m * MINUTE),
                channels: f(w, m),
            });
        }
    }
    out
}

/// Minute `m` of the week after the history.
fn now(weeks: i64, m: i64) -> Timestamp {
    Timestamp(MONDAY + weeks * WEEK_MS + m * MINUTE)
}

#[test]
fn no_history_is_no_forecast_and_too_few_weeks_are_none() {
    assert_eq!(forecast(&[], now(0, 600), 480, &config(4, 1)), None);
    let one = history(1, |_, _| 1_000);
    assert_eq!(forecast(&one, now(1, 600), 480, &config(4, 2)), None);
    let f = forecast(&one, now(1, 600), 480, &config(4, 1)).unwrap();
    assert_eq!((f.peak_channels, f.weeks, f.trend_per_week), (1_000, 1, 0));
    // Four weeks back there is nothing: three weeks back it.
    let three = history(3, |_, _| 1_000);
    let f = forecast(&three, now(3, 600), 480, &config(4, 2)).unwrap();
    assert_eq!(f.weeks, 3, "{f:?}");
    assert_eq!(
        f.week_peaks.iter().map(|w| w.weeks_ago).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[test]
fn the_same_window_of_the_last_weeks_with_their_trend() {
    // Growing by 100 channels a week; a rise at 14:00 each weekday.
    let h = history(3, |w, m| {
        let hour = (m % (24 * 60)) / 60;
        1_000 + 100 * w as u64 + if hour >= 14 { 500 } else { 0 }
    });
    // Wednesday 13:50, looking 8 minutes ahead: the rise is not in the window...
    let f = forecast(&h, now(3, 2 * 24 * 60 + 13 * 60 + 50), 480, &config(4, 2)).unwrap();
    assert_eq!((f.peak_channels, f.trend_per_week), (1_300, 100), "{f:?}");
    // ...looking 10 minutes ahead it is.
    let f = forecast(&h, now(3, 2 * 24 * 60 + 13 * 60 + 50), 600, &config(4, 2)).unwrap();
    assert_eq!(f.peak_channels, 1_800, "{f:?}");
    assert_eq!(
        f.week_peaks
            .iter()
            .map(|w| (w.weeks_ago, w.channels))
            .collect::<Vec<_>>(),
        vec![(1, 1_700), (2, 1_600), (3, 1_500)]
    );
}

#[test]
fn a_saturday_is_forecast_from_saturdays() {
    let h = history(2, |_, m| if m / (24 * 60) >= 5 { 400 } else { 2_000 });
    let saturday = forecast(&h, now(2, 5 * 24 * 60 + 12 * 60), 480, &config(4, 2)).unwrap();
    let friday = forecast(&h, now(2, 4 * 24 * 60 + 12 * 60), 480, &config(4, 2)).unwrap();
    assert_eq!((saturday.peak_channels, friday.peak_channels), (400, 2_000));
}

#[test]
fn a_sample_stands_for_the_interval_up_to_the_next_one() {
    // One high 5-minute maximum at Tuesday 14:00 of each week.
    let at = 24 * 60 + 14 * 60;
    let h = history(2, |_, m| if m == at { 900 } else { 100 });
    // A window from 14:03 overlaps [14:00, 14:05)...
    let f = forecast(&h, now(2, at + 3), 60, &config(4, 2)).unwrap();
    assert_eq!(f.peak_channels, 900, "{f:?}");
    // ...one from 14:05 does not, nor one that ends at 13:59.
    let f = forecast(&h, now(2, at + 5), 60, &config(4, 2)).unwrap();
    assert_eq!(f.peak_channels, 100, "{f:?}");
    let f = forecast(&h, now(2, at - 2), 60, &config(4, 2)).unwrap();
    assert_eq!(f.peak_channels, 100, "{f:?}");
}

#[test]
fn one_odd_week_moves_the_forecast_little() {
    // Four weeks at 1,000 at this hour, two weeks ago a spike to 5,000.
    let h = history(4, |w, _| if w == 2 { 5_000 } else { 1_000 });
    let f = forecast(&h, now(4, 600), 480, &config(4, 2)).unwrap();
    assert_eq!((f.peak_channels, f.trend_per_week), (1_000, 0), "{f:?}");
}

#[test]
fn a_falling_trend_never_forecasts_below_nothing() {
    let h = history(3, |w, _| [3_000, 1_000, 10][w as usize]);
    let f = forecast(&h, now(3, 600), 480, &config(4, 2)).unwrap();
    assert_eq!(f.peak_channels, 0, "{f:?}");
    assert!(f.trend_per_week < 0, "{f:?}");
}

#[test]
fn bad_predictive_configs_are_refused_naming_the_field() {
    let cases = [
        (config(0, 1), "policy.predictive.weeks"),
        (config(9, 2), "policy.predictive.weeks"),
        (config(4, 0), "policy.predictive.min_weeks"),
        (config(3, 4), "policy.predictive.min_weeks"),
        (
            PredictiveConfig {
                target_channels_per_pair: Some(0),
                ..config(4, 2)
            },
            "policy.predictive.target_channels_per_pair",
        ),
    ];
    for (c, field) in cases {
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    config(8, 1).validate().unwrap();
    let parsed: PredictiveConfig = serde_json::from_str(r#"{"mode": "forecast_only"}"#).unwrap();
    assert_eq!(parsed, config(4, 2));
    assert!(serde_json::from_str::<PredictiveConfig>(r#"{"mode": "forecast"}"#).is_err());
    assert!(
        serde_json::from_str::<PredictiveConfig>(r#"{"mode": "forecast_only", "wekes": 2}"#)
            .is_err()
    );
}

proptest! {
    #[test]
    fn the_order_of_the_samples_does_not_matter_and_a_steady_load_is_forecast_as_it_is(
        level in 0u64..100_000, weeks in 1i64..=5, minute in 0i64..(7 * 24 * 60 - 120),
        lookahead in 0u64..7_200, seed in any::<u64>(),
    ) {
        let h = history(weeks, |_, _| level);
        let t = now(weeks, minute);
        let sorted = forecast(&h, t, lookahead, &config(8, 1)).unwrap();
        prop_assert_eq!(sorted.peak_channels, level);
        prop_assert_eq!(i64::from(sorted.weeks), weeks);
        let mut shuffled = h.clone();
        // A deterministic shuffle from the seed.
        let n = shuffled.len();
        let mut s = seed | 1;
        for i in (1..n).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(forecast(&shuffled, t, lookahead, &config(8, 1)), Some(sorted));
    }
}
