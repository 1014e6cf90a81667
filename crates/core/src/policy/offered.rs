//! The offered load: the channels the fleet's calls will hold at the rate they arrive now.
//! By Little's law a fleet carries, once a rate has lasted a call's length, that rate times
//! the mean call length. The channels up lag a change of rate by that length: on a surge of
//! 3-minute calls they show it 2 to 3 minutes in. The arrivals show it in its first minute.
//!
//! The method:
//! 1. The mean call length, from the fleet itself: the median, over the earlier samples the
//!    policy kept (its stabilisation window, or the trend's when longer) that carry both
//!    figures, of channels ÷ arrivals a minute (Little's law at each sample). A median, so a
//!    surge's first minutes (where the channels lag the new rate, and the ratio drops) move it
//!    little; the current sample does not enter, so more arrivals now never read as shorter
//!    calls. With fewer than [`MIN_SAMPLES`] such samples there is no offered load, and the
//!    trend reads the channels.
//! 2. The offered load at each sample: its arrivals a minute times that length; now: this
//!    evaluation's arrivals times it.
//! 3. The trend rule reads these in place of the channels. Its noise guard scales with the
//!    arrivals' noise: a count of arrivals in a minute is Poisson, so the offered load's
//!    standard deviation is `sqrt(level × minutes)` channels where a call count's is
//!    `sqrt(level)`.
//!
//! Pure; the runtime brings the arrivals (the sum over the fleet's active pairs of their
//! `sessions since startup` counters' rise between two samples, per minute).

use super::Recommendation;
use crate::ids::Timestamp;
use serde::Serialize;

/// The fewest earlier samples a mean call length is read from.
pub const MIN_SAMPLES: usize = 3;
/// The longest time between two samples of a pair that its arrivals are read across (10
/// minutes): a rate over a longer gap says little of the minute before the sample.
pub const MAX_ARRIVALS_INTERVAL_MS: i64 = 600_000;
/// The shortest (30 s): a sample retried or doubled right after the last one would read a
/// rate from a few calls, or none, and the trend would see a fall and a rise that never were.
pub const MIN_ARRIVALS_INTERVAL_MS: i64 = 30_000;

/// The calls a minute that arrived on a node between its sample `before` (its `sessions since
/// startup` counter and when it was read) and this one. `None` without a sample before, with
/// one less than [`MIN_ARRIVALS_INTERVAL_MS`] or more than [`MAX_ARRIVALS_INTERVAL_MS`] back,
/// or when the counter went back (the node restarted: its count since is not the calls between
/// the samples).
pub fn arrivals_per_minute(
    before: Option<(u64, Timestamp)>,
    sessions: u64,
    at: Timestamp,
) -> Option<u32> {
    let (was, then) = before?;
    let elapsed = at.0.checked_sub(then.0)?;
    if !(MIN_ARRIVALS_INTERVAL_MS..=MAX_ARRIVALS_INTERVAL_MS).contains(&elapsed) || sessions < was {
        return None;
    }
    let per_minute = ((sessions - was) as f64 * 60_000.0 / elapsed as f64).round();
    Some(per_minute.min(f64::from(u32::MAX)) as u32)
}

/// What the offered-load reading saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Offered {
    /// The mean call length read from the samples, seconds (rounded).
    pub mean_call_seconds: u64,
    /// The earlier samples it was read from.
    pub samples: u32,
    /// The channels the current arrival rate leads to.
    pub channels: u64,
    /// The arrivals a minute it is read from.
    pub arrivals_per_minute: u64,
    /// The offered load at each earlier sample, for the trend.
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) earlier: Vec<(Timestamp, u64)>,
}

impl Offered {
    /// The offered load's variance over its level, for the trend's noise guard: the mean call
    /// length in minutes.
    pub(crate) fn dispersion(&self) -> f64 {
        self.mean_call_seconds as f64 / 60.0
    }
}

/// The offered load at `now` from the current `arrivals` and the kept recommendations of less
/// than `window_ms` back (the current channels are tracking's, and do not enter); `None`
/// without arrivals in enough earlier samples.
pub fn estimate(
    now: Timestamp,
    arrivals: u64,
    kept: &[Recommendation],
    window_ms: i64,
) -> Option<Offered> {
    let mut earlier: Vec<(Timestamp, u64, u64)> = kept
        .iter()
        .filter(|r| r.at.0 < now.0 && now.0 - r.at.0 < window_ms)
        .filter_map(|r| Some((r.at, r.load_channels?, r.arrivals_per_minute?)))
        .collect();
    earlier.sort_unstable_by_key(|s| s.0);
    earlier.dedup_by_key(|s| s.0);
    // The earlier samples alone: the length does not move with this minute's figures, so
    // more arrivals now always mean more offered load (and the channels now, none).
    let mut ratios: Vec<f64> = earlier
        .iter()
        .filter(|(_, _, a)| *a > 0)
        .map(|(_, c, a)| *c as f64 / *a as f64)
        .collect();
    if ratios.len() < MIN_SAMPLES {
        return None;
    }
    let samples = u32::try_from(ratios.len()).unwrap_or(u32::MAX);
    // Zero when most samples had no call up: then nothing is offered, and the trend sees
    // nothing rise (tracking still reads the channels).
    let minutes = super::forecast::median(&mut ratios)
        .filter(|m| m.is_finite())
        .unwrap_or(0.0)
        .max(0.0);
    let at_rate = |a: u64| (a as f64 * minutes).round().min(u64::MAX as f64) as u64;
    Some(Offered {
        mean_call_seconds: (minutes * 60.0).round() as u64,
        samples,
        channels: at_rate(arrivals),
        arrivals_per_minute: arrivals,
        earlier: earlier
            .iter()
            .map(|(at, _, a)| (*at, at_rate(*a)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn at(ms: i64) -> Timestamp {
        Timestamp(T0 + ms)
    }

    #[test]
    fn arrivals_are_the_counters_rise_a_minute_and_unknown_across_a_restart_or_a_gap() {
        // 90 calls in 90 s: 60 a minute; 7 in 40 s: 10.5, rounded.
        assert_eq!(
            arrivals_per_minute(Some((10, at(0))), 100, at(90_000)),
            Some(60)
        );
        assert_eq!(
            arrivals_per_minute(Some((0, at(0))), 7, at(40_000)),
            Some(11)
        );
        assert_eq!(
            arrivals_per_minute(Some((5, at(0))), 5, at(60_000)),
            Some(0)
        );
        // A sample retried right after the last one reads no rate: 1 call in 100 ms is not
        // 600 a minute, nor 0 calls none.
        let least = MIN_ARRIVALS_INTERVAL_MS;
        assert_eq!(arrivals_per_minute(Some((0, at(0))), 1, at(100)), None);
        assert_eq!(
            arrivals_per_minute(Some((0, at(0))), 0, at(least - 1)),
            None
        );
        assert_eq!(
            arrivals_per_minute(Some((0, at(0))), 15, at(least)),
            Some(30)
        );
        // No sample before; the counter went back (the node restarted); the same instant or
        // an earlier one; a sample before the longest interval.
        assert_eq!(arrivals_per_minute(None, 100, at(60_000)), None);
        assert_eq!(arrivals_per_minute(Some((100, at(0))), 3, at(60_000)), None);
        assert_eq!(
            arrivals_per_minute(Some((1, at(60_000))), 3, at(60_000)),
            None
        );
        assert_eq!(
            arrivals_per_minute(Some((1, at(90_000))), 3, at(60_000)),
            None
        );
        let edge = MAX_ARRIVALS_INTERVAL_MS;
        assert_eq!(arrivals_per_minute(Some((0, at(0))), 20, at(edge)), Some(2));
        assert_eq!(
            arrivals_per_minute(Some((0, at(0))), 20, at(edge + 1)),
            None
        );
        // A counter far beyond a u32 a minute saturates rather than wraps.
        assert_eq!(
            arrivals_per_minute(Some((0, at(0))), u64::MAX / 2, at(least)),
            Some(u32::MAX)
        );
    }

    fn kept(minute: i64, channels: u64, arrivals: Option<u64>) -> Recommendation {
        Recommendation {
            at: at(minute * 60_000),
            pairs: 1,
            load_channels: Some(channels),
            arrivals_per_minute: arrivals,
        }
    }

    #[test]
    fn the_mean_call_length_is_the_median_of_littles_law_over_the_samples() {
        // 600 channels on 200 calls a minute: 3 minutes a call, at every sample but one
        // (an odd one, 600 on 50, which the median ignores). Now 400 calls a minute arrive on
        // 620 channels: the calls already up will come to 1,200.
        let samples = [
            kept(6, 600, Some(200)),
            kept(7, 600, Some(50)),
            kept(8, 600, Some(200)),
            kept(9, 600, Some(200)),
        ];
        let o = estimate(at(600_000), 400, &samples, 600_000).unwrap();
        assert_eq!(
            (
                o.mean_call_seconds,
                o.samples,
                o.channels,
                o.arrivals_per_minute
            ),
            (180, 4, 1_200, 400),
            "{o:?}"
        );
        assert_eq!(
            o.earlier,
            vec![
                (at(360_000), 600),
                (at(420_000), 150),
                (at(480_000), 600),
                (at(540_000), 600)
            ]
        );
        assert!((o.dispersion() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn too_few_samples_with_arrivals_give_no_offered_load() {
        // Samples kept without arrivals, outside the window, at or after now, or with no
        // call arriving do not count.
        let samples = [
            kept(1, 600, Some(200)),
            kept(8, 600, None),
            kept(9, 600, Some(0)),
            kept(10, 600, Some(200)),
            kept(11, 600, Some(200)),
        ];
        assert_eq!(estimate(at(600_000), 200, &samples, 300_000), None);
        let two = [kept(8, 600, Some(200)), kept(9, 600, Some(200))];
        assert_eq!(estimate(at(600_000), 200, &two, 300_000), None);
        let three = [
            kept(7, 600, Some(200)),
            kept(8, 600, Some(200)),
            kept(9, 600, Some(200)),
        ];
        assert!(estimate(at(600_000), 200, &three, 300_000).is_some());
        // No call up at most samples: nothing offered, whatever arrives.
        let idle = [
            kept(7, 0, Some(5)),
            kept(8, 0, Some(5)),
            kept(9, 0, Some(5)),
        ];
        let o = estimate(at(600_000), 500, &idle, 300_000).unwrap();
        assert_eq!((o.channels, o.mean_call_seconds), (0, 0), "{o:?}");
    }
}
