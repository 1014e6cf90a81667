//! Predictive scaling's forecast: the peak of a fleet's channels over the next minutes, from
//! its own history. Pure: the caller brings the samples (the runtime reads CloudWatch's
//! 5-minute maxima of the last weeks; any resolution does) and the fleet's time to capacity.
//!
//! The method, for a load that repeats by the week (a diurnal curve, quieter weekends):
//! 1. For each of the last `weeks` weeks, the peak of the samples over the same window a whole
//!    number of weeks back: `[now - k weeks, now - k weeks + lookahead]`. The same weekday, so
//!    a Saturday is forecast from Saturdays. A sample stands for the interval up to the next
//!    one (the history's resolution, the smallest gap between two samples), so a 5-minute
//!    maximum stamped 14:00 counts for a window from 14:03.
//! 2. A week without a sample in its window does not count; fewer than `min_weeks` weeks
//!    left is no forecast (a new fleet, or one whose metrics were lost).
//! 3. A trend through the weeks' peaks, extrapolated to this week: the Theil-Sen line (the
//!    median of the slopes between every two weeks, then the median intercept), so one odd
//!    week (a spike, an outage) moves it little. One week: that week's peak as it is.
//!
//! The lookahead is the fleet's time to capacity: what the fleet will need by the time pairs
//! started now carry calls, and until then.

use crate::error::{Error, Result};
use crate::ids::Timestamp;
use serde::{Deserialize, Serialize};

/// A week in milliseconds.
pub const WEEK_MS: i64 = 7 * 24 * 3_600_000;
/// The most weeks a forecast reads.
pub const MAX_WEEKS: u32 = 8;
/// The longest lookahead a forecast honours; a longer one is cut to this (6 hours).
pub const MAX_LOOKAHEAD_SECONDS: u64 = 6 * 3_600;
/// A gap between samples longer than this is missing data, not the history's resolution.
const MAX_RESOLUTION_MS: i64 = 3_600_000;

/// One point of a fleet's channel history: the most channels up in the interval it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sample {
    pub at: Timestamp,
    pub channels: u64,
}

/// What the predictive rule does with its forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Forecast and report what it would recommend; the decision is tracking's alone. How a
    /// fleet starts: compare the forecasts with the load before letting them act.
    ForecastOnly,
    /// The desired count is at least the forecast's pairs.
    ForecastAndScale,
}

/// Predictive scaling (`fleet_config.policy.predictive`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictiveConfig {
    pub mode: Mode,
    /// Weeks of history the forecast reads (1-8).
    #[serde(default = "default_weeks")]
    pub weeks: u32,
    /// The fewest weeks with samples in the window for a forecast (1-`weeks`).
    #[serde(default = "default_min_weeks")]
    pub min_weeks: u32,
    /// The channels per pair the forecast's peak is sized to (1-100000; absent: the
    /// policy's `target_channels_per_pair`). The forecast is already a peak, so this can sit
    /// closer to a pair's capacity than tracking's target, which must leave room for the rise
    /// during the time to capacity.
    #[serde(default)]
    pub target_channels_per_pair: Option<u32>,
    /// Room for the calls' own noise above the forecast peak, in standard deviations of a
    /// call count at that peak (its square root; 0-10, default 0): the peak is sized at
    /// `peak + headroom_sigmas × sqrt(peak)`. A fleet's calls are a Poisson count, so the room
    /// a given refusal risk needs grows with the square root of the load, not in proportion:
    /// with it the target can sit at a pair's capacity, and a small fleet keeps enough room.
    #[serde(default)]
    pub headroom_sigmas: u32,
}

/// The most standard deviations of headroom a forecast may ask for.
pub const MAX_HEADROOM_SIGMAS: u32 = 10;

fn default_weeks() -> u32 {
    4
}

fn default_min_weeks() -> u32 {
    2
}

impl PredictiveConfig {
    /// Checks the bounds; names the field that is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.weeks == 0 || self.weeks > MAX_WEEKS {
            return Err(Error::invalid(
                "policy.predictive.weeks",
                self.weeks,
                format!("must be 1-{MAX_WEEKS}"),
            ));
        }
        if self.min_weeks == 0 || self.min_weeks > self.weeks {
            return Err(Error::invalid(
                "policy.predictive.min_weeks",
                self.min_weeks,
                format!("must be 1-{} (policy.predictive.weeks)", self.weeks),
            ));
        }
        if let Some(t) = self.target_channels_per_pair {
            if t == 0 || t > 100_000 {
                return Err(Error::invalid(
                    "policy.predictive.target_channels_per_pair",
                    t,
                    "must be 1-100000",
                ));
            }
        }
        if self.headroom_sigmas > MAX_HEADROOM_SIGMAS {
            return Err(Error::invalid(
                "policy.predictive.headroom_sigmas",
                self.headroom_sigmas,
                format!("must be 0-{MAX_HEADROOM_SIGMAS}"),
            ));
        }
        Ok(())
    }

    /// The pairs a forecast `peak` needs: the peak and its headroom at the forecast's
    /// channels per pair (`policy_target` when it names none).
    pub fn pairs_for(&self, policy_target: u32, peak: u64) -> u32 {
        let per_pair = u64::from(
            self.target_channels_per_pair
                .unwrap_or(policy_target)
                .max(1),
        );
        u32::try_from(with_headroom(peak, self.headroom_sigmas).div_ceil(per_pair))
            .unwrap_or(u32::MAX)
    }
}

/// `channels` and room for a call count's noise above them: `sigmas` standard deviations of a
/// Poisson count at that level (its square root). Shared with the trend's projection.
pub(super) fn with_headroom(channels: u64, sigmas: u32) -> u64 {
    let room = (f64::from(sigmas) * (channels as f64).sqrt()).ceil() as u64;
    channels.saturating_add(room)
}

/// One week's peak over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WeekPeak {
    /// 1: the window 7 days ago.
    pub weeks_ago: u32,
    pub channels: u64,
}

/// The channels expected over `[now, now + lookahead]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Forecast {
    /// The expected peak.
    pub peak_channels: u64,
    pub lookahead_seconds: u64,
    /// How many weeks backed it.
    pub weeks: u32,
    /// Their peaks, the most recent first.
    pub week_peaks: Vec<WeekPeak>,
    /// The trend, channels a week (0 from a single week).
    pub trend_per_week: i64,
}

/// The forecast at `now` from `history` (any order, any resolution), or `None` when fewer
/// than `config.min_weeks` weeks have samples in the window.
pub fn forecast(
    history: &[Sample],
    now: Timestamp,
    lookahead_seconds: u64,
    config: &PredictiveConfig,
) -> Option<Forecast> {
    let lookahead_seconds = lookahead_seconds.min(MAX_LOOKAHEAD_SECONDS);
    let lookahead_ms = i64::try_from(lookahead_seconds).unwrap_or(0) * 1_000;
    let sorted_copy;
    let history = if history.windows(2).all(|w| w[0].at <= w[1].at) {
        history
    } else {
        let mut h = history.to_vec();
        h.sort_by_key(|s| s.at);
        sorted_copy = h;
        &sorted_copy
    };
    let resolution = history
        .windows(2)
        .map(|w| w[1].at.0.saturating_sub(w[0].at.0))
        .filter(|gap| *gap > 0)
        .min()
        .unwrap_or(0)
        .min(MAX_RESOLUTION_MS);
    let mut week_peaks = Vec::new();
    for k in 1..=config.weeks.min(MAX_WEEKS) {
        let start = now.0.saturating_sub(i64::from(k) * WEEK_MS);
        let end = start.saturating_add(lookahead_ms);
        // A sample at t stands for [t, t + resolution): it overlaps the window from
        // start - resolution + 1.
        let from = start.saturating_sub((resolution - 1).max(0));
        let lo = history.partition_point(|s| s.at.0 < from);
        let hi = history.partition_point(|s| s.at.0 <= end);
        if let Some(channels) = history[lo..hi.max(lo)].iter().map(|s| s.channels).max() {
            week_peaks.push(WeekPeak {
                weeks_ago: k,
                channels,
            });
        }
    }
    let weeks = u32::try_from(week_peaks.len()).unwrap_or(u32::MAX);
    if weeks == 0 || weeks < config.min_weeks {
        return None;
    }
    let (peak, trend) = theil_sen(&week_peaks);
    Some(Forecast {
        peak_channels: peak,
        lookahead_seconds,
        weeks,
        week_peaks,
        trend_per_week: trend,
    })
}

/// The Theil-Sen line through the weeks' peaks (x: minus the weeks ago), at this week:
/// (its value, rounded up and never negative; its slope, channels a week).
fn theil_sen(peaks: &[WeekPeak]) -> (u64, i64) {
    let points: Vec<(f64, f64)> = peaks
        .iter()
        .map(|p| (-f64::from(p.weeks_ago), p.channels as f64))
        .collect();
    let mut slopes = Vec::new();
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            if a.0 != b.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    let slope = median(&mut slopes).unwrap_or(0.0);
    let mut intercepts: Vec<f64> = points.iter().map(|(x, y)| y - slope * x).collect();
    let at_now = median(&mut intercepts).unwrap_or(0.0).max(0.0).ceil();
    (at_now as u64, slope.round() as i64)
}

/// The median of `v` (sorted in place); `None` when empty. Shared with the trend rule.
pub(super) fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests;
