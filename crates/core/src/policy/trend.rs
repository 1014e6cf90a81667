//! The short-term trend: the load the fleet will carry once pairs started now are in
//! rotation, projected from the samples of the last minutes. Target tracking sizes the fleet
//! to the load it sees; on a rise it sees the rise's start and asks for too little, and the
//! next run waits for the one in flight (the lock): the fleet is short for a time to capacity
//! per run. The trend asks, at the first decision, for what the load will need when the pairs
//! arrive.
//!
//! The method:
//! 1. The load samples of the last `window_seconds` (the current one and those the policy
//!    kept with its recommendations), at least [`MIN_SAMPLES`].
//! 2. Their Theil-Sen slope (the median of the slopes between every two samples), so one odd
//!    sample moves it little.
//! 3. Only a rise beyond noise counts: the fitted rise across the window must exceed
//!    `noise_sigmas` standard deviations of a call count at the window's level (the median of
//!    the earlier samples): its square root, as the calls up on a fleet are a Poisson count
//!    (M/G/∞). A steady load, or a slow diurnal rise the target's headroom already covers, is
//!    left to tracking.
//! 4. The projection: the current load plus the slope over the fleet's time to capacity,
//!    sized at tracking's target. Never below the current load; a fall is not projected (a
//!    scale-in stays the stabilisation window's).
//!
//! The projection grows with the current load (every slope to the current sample does, and
//! the noise level is read from the earlier samples alone), so more load never asks for fewer
//! pairs.

use super::forecast::median;
use crate::error::{Error, Result};
use crate::ids::Timestamp;
use serde::{Deserialize, Serialize};

/// The fewest samples a slope is read from, the current one included.
pub const MIN_SAMPLES: usize = 3;
/// The shortest and longest windows.
pub const MIN_WINDOW_SECONDS: u64 = 60;
pub const MAX_WINDOW_SECONDS: u64 = 3_600;
/// The most standard deviations the guard may ask for.
pub const MAX_NOISE_SIGMAS: u32 = 100;
/// The longest time to capacity projected over (6 hours, as the forecast's lookahead).
pub const MAX_LOOKAHEAD_SECONDS: u64 = 6 * 3_600;

/// The short-term trend rule (`fleet_config.policy.trend`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrendConfig {
    /// The samples of less than this many seconds back count (60-3600): at one evaluation a
    /// minute, 180 reads the current sample and the two before it.
    #[serde(default = "default_window")]
    pub window_seconds: u64,
    /// A rise counts only beyond this many standard deviations of a call count at the
    /// window's level (0-100; 0: any rise).
    #[serde(default = "default_noise_sigmas")]
    pub noise_sigmas: u32,
    /// Room above the projection for the calls' own noise, in standard deviations of a call
    /// count at the projected level (0-10, default 0), as the forecast's `headroom_sigmas`.
    #[serde(default)]
    pub headroom_sigmas: u32,
}

fn default_window() -> u64 {
    180
}

fn default_noise_sigmas() -> u32 {
    4
}

impl Default for TrendConfig {
    fn default() -> Self {
        TrendConfig {
            window_seconds: default_window(),
            noise_sigmas: default_noise_sigmas(),
            headroom_sigmas: 0,
        }
    }
}

impl TrendConfig {
    /// Checks the bounds; names the field that is wrong.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_WINDOW_SECONDS..=MAX_WINDOW_SECONDS).contains(&self.window_seconds) {
            return Err(Error::invalid(
                "policy.trend.window_seconds",
                self.window_seconds,
                format!("must be {MIN_WINDOW_SECONDS}-{MAX_WINDOW_SECONDS}"),
            ));
        }
        if self.headroom_sigmas > super::forecast::MAX_HEADROOM_SIGMAS {
            return Err(Error::invalid(
                "policy.trend.headroom_sigmas",
                self.headroom_sigmas,
                format!("must be 0-{}", super::forecast::MAX_HEADROOM_SIGMAS),
            ));
        }
        if self.noise_sigmas > MAX_NOISE_SIGMAS {
            return Err(Error::invalid(
                "policy.trend.noise_sigmas",
                self.noise_sigmas,
                format!("must be 0-{MAX_NOISE_SIGMAS}"),
            ));
        }
        Ok(())
    }

    pub(crate) fn window_ms(&self) -> i64 {
        i64::try_from(self.window_seconds).unwrap_or(0) * 1_000
    }
}

/// What the trend rule saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Trend {
    /// The samples the slope was read from, the current one included.
    pub samples: u32,
    /// The Theil-Sen slope, channels a minute (rounded).
    pub slope_per_minute: i64,
    /// The fitted rise across the window must exceed this to count (channels).
    pub noise_channels: u64,
    /// The load projected over the time to capacity; `None` when the rise was within noise
    /// (or a fall).
    pub projected_channels: Option<u64>,
    pub lookahead_seconds: u64,
}

/// The trend at `now` from the current `load` and the earlier `samples` (`(at, channels)`,
/// any order; those outside the window or not before `now` are ignored), projected over
/// `lookahead_seconds`. `dispersion` is the signal's variance over its level, for the noise
/// guard: 1 for a call count, the mean call length in minutes for the offered load. `None`
/// with fewer than [`MIN_SAMPLES`] samples.
pub fn project(
    config: &TrendConfig,
    now: Timestamp,
    load: u64,
    samples: &[(Timestamp, u64)],
    lookahead_seconds: u64,
    dispersion: f64,
) -> Option<Trend> {
    let window_ms = config.window_ms();
    let mut earlier: Vec<(i64, u64)> = samples
        .iter()
        .filter(|(at, _)| at.0 < now.0 && now.0 - at.0 < window_ms)
        .map(|(at, c)| (at.0, *c))
        .collect();
    earlier.sort_unstable();
    earlier.dedup_by_key(|s| s.0);
    if earlier.len() + 1 < MIN_SAMPLES {
        return None;
    }
    let points: Vec<(f64, f64)> = earlier
        .iter()
        .map(|(at, c)| ((at - now.0) as f64, *c as f64))
        .chain(std::iter::once((0.0, load as f64)))
        .collect();
    let mut slopes = Vec::with_capacity(points.len() * points.len() / 2);
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            slopes.push((b.1 - a.1) / (b.0 - a.0));
        }
    }
    let slope = median(&mut slopes).unwrap_or(0.0);
    let span_ms = -points[0].0;
    let mut levels: Vec<f64> = earlier.iter().map(|(_, c)| *c as f64).collect();
    let level = median(&mut levels).unwrap_or(0.0).max(0.0);
    let noise = f64::from(config.noise_sigmas) * (level * dispersion.max(0.0)).sqrt();
    let lookahead_seconds = lookahead_seconds.min(MAX_LOOKAHEAD_SECONDS);
    let projected = (slope > 0.0 && slope * span_ms > noise).then(|| {
        let rise = (slope * lookahead_seconds as f64 * 1_000.0).ceil();
        load.saturating_add(rise.min(u64::MAX as f64) as u64)
    });
    Some(Trend {
        samples: u32::try_from(points.len()).unwrap_or(u32::MAX),
        slope_per_minute: (slope * 60_000.0).round() as i64,
        noise_channels: noise.ceil() as u64,
        projected_channels: projected,
        lookahead_seconds,
    })
}
