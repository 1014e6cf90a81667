//! The scaling policy: the pair count a fleet should have now, evaluated every minute from
//! its live load and its configuration, level-triggered (a fleet left short is raised at the
//! next evaluation, whatever happened to the last run). Pure: the policy function brings the
//! inputs (the latest load sample, the recommendations of the last minutes, the clock) and
//! starts a run when the decision says so.
//!
//! The rules, as the anchors ship them and in this order:
//! - **Target tracking** on channels per pair: `ceil(load / target_channels_per_pair)` pairs.
//!   Out at once, by at most `max_step_out`; in only once every recommendation of the last
//!   `scale_in_stabilization_seconds` is below the current count (the highest of them wins,
//!   as in Kubernetes HPA's scale-down stabilisation), by at most `max_step_in`. Out fast, in
//!   slowly: a scale-in drains calls for minutes, an undersized fleet refuses them at once.
//! - **Scheduled minimums** ([`Schedule`]): local-time windows with a time zone, each with a
//!   floor, in force from `from` (inclusive) to `to` (exclusive) on its days, by the wall clock
//!   of its zone whatever its offset that day.
//! - **Trend** (`trend`, optional; [`trend`]): the load projected over the fleet's time to
//!   capacity from the Theil-Sen slope of the last minutes' samples, when the rise is beyond
//!   a call count's noise, sized at tracking's target. The recommendation is the higher of
//!   tracking's and the trend's, so the first decision in a rise asks for what the load will
//!   need when the pairs arrive, not for what it needs now: the next run waits for this one.
//!   With the fleet's arrivals known, the trend reads the **offered load** ([`offered`]:
//!   arrivals times the mean call length, Little's law) instead of the channels, which lag a
//!   surge by a call's length.
//! - **Limits**: never below `min_pairs` nor above `max_pairs`; a suspended policy decides and
//!   says what it would do, and does not act.
//!
//! - **Predictive** (`predictive`, optional; [`forecast`]): the peak of the fleet's channels
//!   over its time to capacity, forecast from the same window of the last weeks, sized to
//!   `ceil(peak / target)` pairs. In `forecast_only` mode it is reported and changes nothing;
//!   in `forecast_and_scale` the recommendation is the higher of tracking's and the
//!   forecast's, so the fleet grows before a predicted rise (out at once, within the step)
//!   and the forecast counts in the stabilisation window: no scale-in right before a rise.

use crate::error::{Error, Result};
use crate::fleet::FleetConfig;
use crate::ids::Timestamp;
use serde::{Deserialize, Serialize};

pub mod forecast;
pub mod offered;
pub use offered::Offered;
mod schedule;
pub use forecast::{Forecast, Mode, PredictiveConfig, Sample};
mod state;
pub use schedule::{Day, LocalTime, Schedule};
pub use state::{merge, PolicyState, Suspension, MAX_SUSPEND_REASON_LEN};
pub mod trend;
pub use trend::{Trend, TrendConfig};

/// A fleet's scaling policy (`fleet_config.policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Target tracking: the channels per pair the fleet aims to carry.
    pub target_channels_per_pair: u32,
    /// A scale-in follows the highest recommendation of this many seconds back.
    #[serde(default = "default_stabilization")]
    pub scale_in_stabilization_seconds: u64,
    /// At most this many pairs added by one decision (absent: the fleet's `max_step`).
    #[serde(default)]
    pub max_step_out: Option<u32>,
    /// At most this many pairs removed by one decision.
    #[serde(default = "default_step_in")]
    pub max_step_in: u32,
    /// Scheduled minimums.
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    /// Predictive scaling; absent: none.
    #[serde(default)]
    pub predictive: Option<PredictiveConfig>,
    /// The short-term trend rule; absent: none.
    #[serde(default)]
    pub trend: Option<TrendConfig>,
    /// Decide and report, never act.
    #[serde(default)]
    pub suspended: bool,
}

fn default_stabilization() -> u64 {
    600
}

fn default_step_in() -> u32 {
    1
}

/// The longest stabilisation window: a day.
pub const MAX_STABILIZATION_SECONDS: u64 = 86_400;
/// The most scheduled minimums one fleet carries.
pub const MAX_SCHEDULES: usize = 50;

impl PolicyConfig {
    /// Checks the policy against the fleet it belongs to; names the field that is wrong.
    pub fn validate(&self, fleet: &FleetConfig) -> Result<()> {
        if self.target_channels_per_pair == 0 || self.target_channels_per_pair > 100_000 {
            return Err(Error::invalid(
                "policy.target_channels_per_pair",
                self.target_channels_per_pair,
                "must be 1-100000",
            ));
        }
        if self.scale_in_stabilization_seconds > MAX_STABILIZATION_SECONDS {
            return Err(Error::invalid(
                "policy.scale_in_stabilization_seconds",
                self.scale_in_stabilization_seconds,
                format!("must be at most {MAX_STABILIZATION_SECONDS} (a day)"),
            ));
        }
        if let Some(s) = self.max_step_out {
            if s == 0 || s > fleet.max_step {
                return Err(Error::invalid(
                    "policy.max_step_out",
                    s,
                    format!("must be 1-{} (the fleet's max_step)", fleet.max_step),
                ));
            }
        }
        if self.max_step_in == 0 || self.max_step_in > fleet.max_step {
            return Err(Error::invalid(
                "policy.max_step_in",
                self.max_step_in,
                format!("must be 1-{} (the fleet's max_step)", fleet.max_step),
            ));
        }
        if self.schedules.len() > MAX_SCHEDULES {
            return Err(Error::invalid(
                "policy.schedules",
                format!("{} schedules", self.schedules.len()),
                format!("at most {MAX_SCHEDULES}"),
            ));
        }
        for (i, s) in self.schedules.iter().enumerate() {
            s.validate(&format!("policy.schedules[{i}]"), fleet)?;
        }
        if let Some(p) = &self.predictive {
            p.validate()?;
        }
        if let Some(t) = &self.trend {
            t.validate()?;
        }
        Ok(())
    }

    /// How long a recommendation is kept: the stabilisation window, or the trend's window
    /// when longer (the trend reads the loads kept with the recommendations).
    pub fn keep_ms(&self) -> i64 {
        let window = i64::try_from(self.scale_in_stabilization_seconds)
            .unwrap_or(i64::MAX / 1_000)
            .saturating_mul(1_000);
        window.max(self.trend.as_ref().map_or(0, TrendConfig::window_ms))
    }

    fn step_out(&self, fleet: &FleetConfig) -> u32 {
        self.max_step_out.unwrap_or(fleet.max_step).max(1)
    }
}

/// One evaluation's recommendation (tracking's, raised to the trend's and the forecast's
/// pairs when they act), kept for the stabilisation window (and the trend's, when longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Recommendation {
    pub at: Timestamp,
    pub pairs: u32,
    /// The load sample it was made from, for the trend (absent in records kept before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_channels: Option<u64>,
    /// The calls that arrived a minute at that sample, for the offered load (absent in
    /// records kept before it, and where the fleet's arrivals were not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrivals_per_minute: Option<u64>,
}

/// What an evaluation knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub now: Timestamp,
    /// The committed pair count.
    pub pair_count: u32,
    /// The channels up on the fleet's active pairs at the latest sample; `None` when there is
    /// no recent one (target tracking then recommends nothing).
    pub load_channels: Option<u64>,
    /// The calls that arrived on those pairs a minute, over the interval before the latest
    /// sample; `None` when not read (the trend then reads the channels alone).
    pub arrivals_per_minute: Option<u64>,
    /// Earlier evaluations' recommendations (any order; those outside the window are ignored).
    pub recent: Vec<Recommendation>,
    /// The fleet's time to capacity, the trend's lookahead; `None`: no trend projection.
    pub time_to_capacity_seconds: Option<u64>,
    /// The forecast over the fleet's time to capacity ([`forecast::forecast`] from the
    /// fleet's history and `policy.predictive`); `None` without history or without a
    /// predictive policy.
    pub forecast: Option<Forecast>,
    /// The forecast over a scale-in's hold: its drain (the lock holds every scale-out
    /// meanwhile) and a time to capacity after it. In `forecast_and_scale` a scale-in never
    /// leaves fewer pairs than its peak needs; `None`: the stabilisation window alone.
    pub scale_in_forecast: Option<Forecast>,
}

/// Why the decision is what it is: each rule's word, in the order they were applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Decision {
    pub current: u32,
    /// The count the fleet should have now.
    pub desired: u32,
    /// Start a run to `desired`: it differs from `current` and the policy is not suspended.
    pub act: bool,
    /// Target tracking's recommendation from this minute's load alone.
    pub tracking: Option<u32>,
    /// The highest recommendation in the stabilisation window, this one included (the
    /// forecast's among them when it acts): what a scale-in may go down to.
    pub stabilized: Option<u32>,
    /// The scheduled minimum in force, and its name.
    pub schedule: Option<(String, u32)>,
    /// The predictive rule's word, when the policy has one.
    pub predictive: Option<Predictive>,
    /// The trend rule's word, when the policy has one and there were samples enough.
    pub trend: Option<Trend>,
    /// The offered load the trend read, when the arrivals were known in samples enough.
    pub offered: Option<Offered>,
    pub reasons: Vec<String>,
    /// The recommendations to keep for the next evaluation: this one and those still in the
    /// window.
    pub keep: Vec<Recommendation>,
}

/// What the predictive rule saw and recommended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Predictive {
    pub mode: Mode,
    /// The forecast; `None` when the history did not back one.
    pub forecast: Option<Forecast>,
    /// The pairs the forecast's peak needs.
    pub pairs: Option<u32>,
    /// Whether those pairs counted in the decision (`forecast_and_scale` with a forecast).
    pub counted: bool,
}

/// The decision for `fleet` now.
pub fn evaluate(fleet: &FleetConfig, policy: &PolicyConfig, inputs: &Inputs) -> Result<Decision> {
    let now = inputs.now;
    let current = inputs.pair_count;
    let window_ms = i64::try_from(policy.scale_in_stabilization_seconds)
        .unwrap_or(i64::MAX / 1_000)
        .saturating_mul(1_000);
    let keep_ms = policy.keep_ms();
    let target = u64::from(policy.target_channels_per_pair.max(1));
    let pairs_for = |channels: u64| u32::try_from(channels.div_ceil(target)).unwrap_or(u32::MAX);
    let tracking = inputs.load_channels.map(pairs_for);
    let mut reasons = Vec::new();
    // The offered load, when the arrivals are known: what the trend reads, as it leads the
    // channels by a call's length.
    let offered = match (
        &policy.trend,
        inputs.load_channels,
        inputs.arrivals_per_minute,
    ) {
        (Some(_), Some(_), Some(arrivals)) => {
            offered::estimate(now, arrivals, &inputs.recent, keep_ms)
        }
        _ => None,
    };
    let trend = match (
        &policy.trend,
        inputs.load_channels,
        inputs.time_to_capacity_seconds,
    ) {
        (Some(config), Some(load), Some(ttc)) => match &offered {
            Some(o) => trend::project(config, now, o.channels, &o.earlier, ttc, o.dispersion()),
            None => {
                let samples: Vec<(Timestamp, u64)> = inputs
                    .recent
                    .iter()
                    .filter_map(|r| r.load_channels.map(|c| (r.at, c)))
                    .collect();
                trend::project(config, now, load, &samples, ttc, 1.0)
            }
        },
        _ => None,
    };
    if let Some(o) = &offered {
        reasons.push(format!(
            "offered load: {} calls a minute x {} s a call (Little's law over {} samples) = {} channels",
            o.arrivals_per_minute, o.mean_call_seconds, o.samples, o.channels
        ));
    }
    let trend_pairs = trend.as_ref().and_then(|t| t.projected_channels).map(|p| {
        let sigmas = policy.trend.as_ref().map_or(0, |c| c.headroom_sigmas);
        pairs_for(forecast::with_headroom(p, sigmas))
    });
    if let Some(t) = &trend {
        let of = if offered.is_some() { "offered " } else { "" };
        reasons.push(match (t.projected_channels, trend_pairs) {
            (Some(p), Some(n)) => format!(
                "trend: {:+} {of}channels a minute over {} samples; {p} channels in {} s need {n} pairs",
                t.slope_per_minute, t.samples, t.lookahead_seconds
            ),
            _ => format!(
                "trend: {:+} {of}channels a minute over {} samples, within the noise ({} channels); no projection",
                t.slope_per_minute, t.samples, t.noise_channels
            ),
        });
    }
    let predictive = policy.predictive.as_ref().map(|p| {
        let per_pair = u64::from(
            p.target_channels_per_pair
                .unwrap_or(policy.target_channels_per_pair)
                .max(1),
        );
        let forecast = inputs.forecast.clone();
        let pairs = forecast
            .as_ref()
            .map(|f| p.pairs_for(policy.target_channels_per_pair, f.peak_channels));
        let counted = p.mode == Mode::ForecastAndScale && pairs.is_some();
        reasons.push(match (&forecast, pairs) {
            (Some(f), Some(n)) => format!(
                "predictive ({}): {} channels forecast over the next {} s from {} week(s), trend {:+} a week; {n} pairs at {per_pair} per pair",
                if counted { "forecast_and_scale" } else { "forecast_only, not acted on" },
                f.peak_channels,
                f.lookahead_seconds,
                f.weeks,
                f.trend_per_week
            ),
            _ => "predictive: no forecast (not enough history); no recommendation".into(),
        });
        Predictive {
            mode: p.mode,
            forecast,
            pairs,
            counted,
        }
    });
    let forecast_pairs = predictive
        .as_ref()
        .filter(|p| p.counted)
        .and_then(|p| p.pairs);
    // What a scale-in must leave: the forecast over its hold (the drain, which holds every
    // scale-out, and a time to capacity after it), when the forecast acts.
    let hold_pairs = policy
        .predictive
        .as_ref()
        .filter(|p| p.mode == Mode::ForecastAndScale)
        .and_then(|p| {
            inputs
                .scale_in_forecast
                .as_ref()
                .map(|f| p.pairs_for(policy.target_channels_per_pair, f.peak_channels))
        });
    // This minute's recommendation: tracking's, raised to the trend's and the forecast's
    // when they act.
    let recommended = [tracking, trend_pairs, forecast_pairs]
        .into_iter()
        .flatten()
        .max();
    let mut keep: Vec<Recommendation> = inputs
        .recent
        .iter()
        .filter(|r| r.at.0 <= now.0 && now.0.saturating_sub(r.at.0) < keep_ms)
        .copied()
        .collect();
    if let Some(pairs) = recommended {
        keep.push(Recommendation {
            at: now,
            pairs,
            load_channels: inputs.load_channels,
            arrivals_per_minute: inputs.arrivals_per_minute,
        });
    }
    keep.sort_by_key(|r| r.at);
    let stabilized = keep
        .iter()
        .filter(|r| now.0.saturating_sub(r.at.0) < window_ms || r.at == now)
        .map(|r| r.pairs)
        .max();

    let mut desired = match (recommended, stabilized) {
        (Some(t), _) if t > current => {
            let to = t.min(current.saturating_add(policy.step_out(fleet)));
            let by = if tracking.is_some_and(|tr| tr >= t) {
                format!(
                    "tracking: {} channels need {t} pairs at {} per pair",
                    inputs.load_channels.unwrap_or(0),
                    policy.target_channels_per_pair
                )
            } else if trend_pairs.is_some_and(|tr| tr >= t) {
                format!(
                    "trend: the projected load needs {t} pairs at {} per pair",
                    policy.target_channels_per_pair
                )
            } else {
                format!("predictive: the forecast needs {t} pairs")
            };
            reasons.push(format!(
                "{by}; out to {to} (at most {} a step)",
                policy.step_out(fleet)
            ));
            to
        }
        // A scale-in needs a load sample: the forecast alone never takes pairs away.
        (Some(_), Some(s)) if s < current && tracking.is_some() => {
            match hold_pairs.filter(|h| *h > s) {
                Some(h) if h >= current => {
                    reasons.push(format!(
                        "at most {s} pairs recommended over the last {} s, but the forecast over a scale-in's hold needs {h}: no scale-in",
                        policy.scale_in_stabilization_seconds
                    ));
                    current
                }
                floor => {
                    let to = s
                        .max(floor.unwrap_or(0))
                        .max(current.saturating_sub(policy.max_step_in));
                    reasons.push(format!(
                        "at most {s} pairs recommended over the last {} s{}; in to {to} (at most {} a step)",
                        policy.scale_in_stabilization_seconds,
                        floor.map_or(String::new(), |h| format!(
                            ", the forecast over a scale-in's hold needs {h}"
                        )),
                        policy.max_step_in
                    ));
                    to
                }
            }
        }
        (Some(_), _) if tracking.is_some() => {
            reasons.push(format!(
                "tracking: {current} pairs are needed within the last {} s",
                policy.scale_in_stabilization_seconds
            ));
            current
        }
        (Some(_), _) => {
            reasons.push(
                "tracking: no recent load sample; the forecast alone does not scale in".into(),
            );
            current
        }
        (None, _) => {
            reasons.push("tracking: no recent load sample; no recommendation".into());
            current
        }
    };

    let schedule = schedule::in_force(&policy.schedules, now)?;
    if let Some((name, floor)) = &schedule {
        if desired < *floor {
            let to = (*floor).min(current.max(desired).saturating_add(policy.step_out(fleet)));
            reasons.push(format!(
                "schedule {name}: at least {floor} pairs now; up to {to}"
            ));
            desired = to.max(desired);
        }
    }
    let floor = fleet.min_pairs;
    if desired < floor {
        reasons.push(format!("min_pairs: at least {floor}"));
        desired = floor;
    }
    if desired > fleet.max_pairs {
        reasons.push(format!("max_pairs: at most {}", fleet.max_pairs));
        desired = fleet.max_pairs;
    }
    let act = desired != current && !policy.suspended;
    if policy.suspended && desired != current {
        reasons.push(format!(
            "suspended: would scale {current} -> {desired}, does not"
        ));
    }
    Ok(Decision {
        current,
        desired,
        act,
        tracking,
        stabilized,
        schedule,
        predictive,
        trend,
        offered,
        reasons,
        keep,
    })
}

/// Why a decision to act waits rather than starts a run: the fleet's cooldown in the
/// decision's direction ([`crate::plan::cooldown_until`]) runs past `now`, and the planner
/// would turn the run into a no-op. `None` when nothing holds it back. A fleet left short
/// is raised by the first evaluation after the cooldown, as the policy is level-triggered.
pub fn cooldown_hold(
    d: &Decision,
    fleet: &FleetConfig,
    meta: &crate::fleet::FleetMeta,
    now: Timestamp,
) -> Option<String> {
    use crate::plan::{cooldown_until, Direction};
    if !d.act || d.desired == d.current {
        return None;
    }
    let dir = if d.desired > d.current {
        Direction::Out
    } else {
        Direction::In
    };
    let until = cooldown_until(dir, fleet, meta)?;
    (now < until).then(|| {
        format!(
            "the scale-{} cooldown runs until {}: the first evaluation after it acts",
            dir.as_str(),
            until.rfc3339()
        )
    })
}

/// The name of the run an evaluation starts: `<fleet>-policy-<YYYYMMDDTHHMM>Z`, one per
/// fleet and minute whatever the count, so that two evaluations of the same minute (a retry,
/// the alarm rule beside the schedule) start one run even when they read different loads.
/// Within Step Functions' 80 characters: a fleet name is at most 40.
pub fn run_name(fleet: &crate::ids::FleetName, minute: Timestamp) -> String {
    let t = jiff::Timestamp::from_millisecond(minute.0)
        .map(|t| t.strftime("%Y%m%dT%H%MZ").to_string())
        .unwrap_or_else(|_| minute.0.to_string());
    format!("{fleet}-policy-{t}")
}

/// The decision of a fleet without a policy: its count as it stands, for the alarms alone to
/// move ([`with_alarms`]).
pub fn without_policy(current: u32) -> Decision {
    Decision {
        current,
        desired: current,
        act: false,
        tracking: None,
        stabilized: None,
        schedule: None,
        predictive: None,
        trend: None,
        offered: None,
        reasons: vec!["no policy: the fleet's alarms alone move it".into()],
        keep: Vec::new(),
    }
}

/// `decision` with the fleet's alarms that are in ALARM now, each with its signed step from
/// `alarm_steps`. Level-triggered: an alarm that stays in ALARM asks again at every
/// evaluation, so a fleet its run could not raise (the lock was held, a cooldown) is raised
/// by a later one. A scale-out alarm raises the count to the current one plus its largest
/// step (within `max_pairs`); a scale-in alarm lowers it by its step only where target
/// tracking has no word (no fresh sample) and no scale-out alarm fires, never under a
/// scheduled floor or `min_pairs`.
pub fn with_alarms(
    fleet: &FleetConfig,
    suspended: bool,
    mut d: Decision,
    firing: &[(String, i32)],
) -> Decision {
    let current = d.current;
    let out = firing
        .iter()
        .filter(|(_, s)| *s > 0)
        .max_by_key(|(_, s)| *s);
    let inward = firing
        .iter()
        .filter(|(_, s)| *s < 0)
        .min_by_key(|(_, s)| *s);
    if let Some((name, step)) = out {
        let to = current
            .saturating_add(step.unsigned_abs())
            .min(fleet.max_pairs);
        if to > d.desired {
            d.reasons
                .push(format!("alarm {name} in ALARM: out by {step}, to {to}"));
            d.desired = to;
        } else {
            d.reasons.push(format!(
                "alarm {name} in ALARM: {} pairs already cover its step",
                d.desired
            ));
        }
    } else if let Some((name, step)) = inward {
        if d.tracking.is_some() {
            d.reasons.push(format!(
                "alarm {name} in ALARM: target tracking decides scale-in"
            ));
        } else {
            let floor = d
                .schedule
                .as_ref()
                .map_or(fleet.min_pairs, |(_, f)| (*f).max(fleet.min_pairs));
            let to = current.saturating_sub(step.unsigned_abs()).max(floor);
            if to < d.desired {
                d.reasons.push(format!(
                    "alarm {name} in ALARM: in by {}, to {to}",
                    step.abs()
                ));
                d.desired = to;
            }
        }
    }
    d.act = d.desired != current && !suspended;
    if suspended && d.desired != current && !d.reasons.iter().any(|r| r.starts_with("suspended")) {
        d.reasons.push(format!(
            "suspended: would scale {current} -> {}, does not",
            d.desired
        ));
    }
    d
}

#[cfg(test)]
mod tests;
