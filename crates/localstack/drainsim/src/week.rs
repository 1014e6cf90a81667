//! Scaling policies on a week of traffic: how many calls each refuses and how many pair-hours
//! it spends, against an oracle that knows the future.
//!
//! The traffic is an M/G/∞ load with a time-varying arrival rate (deterministic from a seed):
//! a diurnal curve, weekends lower than weekdays, and one unannounced spike. The fleet scales
//! as pairscale does: one run at a time (the lock), new pairs carry calls only
//! `scale_out_minutes` after the decision, a pair taken out stops carrying new calls at once
//! and costs pair-hours for `scale_in_minutes` more (its drain and destroy), and each
//! direction has its cooldown. The policies:
//! - *static alarms*, the original design: +step when channels per pair stay above a high
//!   threshold for 3 minutes, -step below a low one for 15, each fired on its edge into ALARM
//!   (a run refused by the lock is lost until the alarm goes back to OK and fires again);
//! - *target tracking*: `pairscale_core::policy::evaluate` every minute, level-triggered;
//! - *tracking with the forecast*: the same, at a target closer to a pair's capacity, with
//!   `policy.predictive` reading the fleet's history (the weeks before the measured one, as
//!   5-minute maxima of the per-minute samples, as CloudWatch keeps them) and looking ahead
//!   by the time to capacity (`scale_out_minutes`); once in `forecast_only` mode (which must
//!   decide exactly as tracking at that target does) and once in `forecast_and_scale`;
//! - *oracle*: each minute exactly the pairs that minute's peak needs, no lag, no drain.
//!
//! The history weeks are their own draws (seeds derived from the week's), each smaller than
//! the next by `growth_per_week`, without the spike: it is unannounced.
//!
//! A recorded trace (calls, `arrival_seconds[,holding_seconds]`, from second 0 of a Monday)
//! replaces the synthetic traffic: its last whole week is the measured one, the weeks before
//! it (up to `history_weeks`) its history. A trace has no known spike: every refusal counts.
//!
//! Refused calls are counted as channel-seconds above capacity (the offered channels beyond
//! what the pairs in rotation carry), so the figure does not depend on how a refused caller
//! retries.

use crate::dist::{Holding, TraceCall};
use crate::error::{Error, Result};
use pairscale_core::fleet::FleetConfig;
use pairscale_core::policy::forecast::{self, Forecast, Mode, PredictiveConfig, Sample};
use pairscale_core::policy::{self, Inputs, PolicyConfig, Recommendation, TrendConfig};
use pairscale_core::{FleetName, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson};
use std::sync::Arc;

const MINUTES: usize = 7 * 24 * 60;

/// One unannounced surge.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    /// Minute of the week it starts (0: Monday 00:00).
    pub at_minute: usize,
    pub minutes: usize,
    /// The offered load is multiplied by this at its height...
    pub factor: f64,
    /// ...reached over this many minutes.
    pub ramp_minutes: usize,
}

/// The week and the fleet it runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Week {
    pub seed: u64,
    /// Offered channels at a weekday's busiest hour.
    pub peak_channels: f64,
    /// The night's load as a share of the day's peak.
    pub trough_share: f64,
    /// A weekend day's peak as a share of a weekday's.
    pub weekend_share: f64,
    pub spike: Option<Spike>,
    pub holding: Holding,
    /// Channels one pair carries.
    pub pair_capacity: u32,
    /// Target tracking's channels per pair.
    pub target_per_pair: u32,
    /// Tracking's target with the forecast: the forecast brings the headroom for the rises
    /// it foresees, so the target can sit closer to capacity.
    pub predictive_target_per_pair: u32,
    /// The forecast's channels per pair (`policy.predictive.target_channels_per_pair`).
    pub forecast_target_per_pair: u32,
    /// The forecast's headroom, standard deviations of a call count at its peak
    /// (`policy.predictive.headroom_sigmas`).
    pub forecast_headroom_sigmas: u32,
    /// The short-term trend rule of every tracking row (`policy.trend`); `None`: tracking
    /// and the forecast alone.
    pub trend: Option<TrendConfig>,
    /// Weeks of history before the measured one.
    pub history_weeks: usize,
    /// Each week's load over the one before, as a share (0.02: 2% more a week).
    pub growth_per_week: f64,
    /// Static alarms' thresholds, channels per pair.
    pub alarm_high: u32,
    pub alarm_low: u32,
    pub scale_out_minutes: usize,
    pub scale_in_minutes: usize,
    pub cooldown_out_minutes: usize,
    pub cooldown_in_minutes: usize,
    pub min_pairs: u32,
    pub max_pairs: u32,
    pub max_step: u32,
    /// The policy's `max_step_in`: the most pairs one scale-in removes.
    pub max_step_in: u32,
    /// Whether the policies read the fleet's arrivals (the offered load) beside its channels.
    pub arrivals: bool,
    /// Recorded calls instead of the synthetic traffic (at least one whole week).
    pub trace: Option<Arc<Vec<TraceCall>>>,
}

impl Week {
    /// A weekday peak of 6,000 channels on pairs of 500, lognormal calls (mean 180 s, sigma
    /// 1.2), a Wednesday 14:00 spike to 1.8 times the load for 45 minutes, builds of 8 minutes
    /// and drains of 10, the project's default alarms (400 and 100 channels per pair) and
    /// cooldowns (5 and 30 minutes). The policies read the arrivals, with the settings that
    /// met the refusal goal (docs/benchmarks.md): the trend at 6 sigmas with 5 of headroom, the
    /// forecast sized at a pair's capacity with 5 sigmas of headroom, scale-ins of up to 2
    /// pairs.
    pub fn typical(seed: u64) -> Week {
        Week {
            seed,
            peak_channels: 6_000.0,
            trough_share: 0.08,
            weekend_share: 0.55,
            spike: Some(Spike {
                at_minute: 2 * 24 * 60 + 14 * 60,
                minutes: 45,
                factor: 1.8,
                ramp_minutes: 5,
            }),
            holding: Holding::Lognormal {
                mean_secs: 180.0,
                sigma: 1.2,
            },
            pair_capacity: 500,
            target_per_pair: 350,
            predictive_target_per_pair: 480,
            forecast_target_per_pair: 500,
            forecast_headroom_sigmas: 5,
            trend: Some(TrendConfig {
                noise_sigmas: 6,
                headroom_sigmas: 5,
                ..TrendConfig::default()
            }),
            history_weeks: 3,
            growth_per_week: 0.02,
            alarm_high: 400,
            alarm_low: 100,
            scale_out_minutes: 8,
            scale_in_minutes: 10,
            cooldown_out_minutes: 5,
            cooldown_in_minutes: 30,
            min_pairs: 2,
            max_pairs: 60,
            max_step: 4,
            max_step_in: 2,
            arrivals: true,
            trace: None,
        }
    }

    /// The offered load (channels, Erlangs) at `minute` of the week.
    pub fn offered(&self, minute: usize) -> f64 {
        let day = minute / (24 * 60);
        let hour = (minute % (24 * 60)) as f64 / 60.0;
        // Quiet at 04:00, busiest mid-afternoon: a raised cosine over the day.
        let shape = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * (hour - 4.0) / 24.0).cos();
        let peak = if day >= 5 {
            self.peak_channels * self.weekend_share
        } else {
            self.peak_channels
        };
        let mut load = peak * (self.trough_share + (1.0 - self.trough_share) * shape);
        if let Some(s) = &self.spike {
            if (s.at_minute..s.at_minute + s.minutes).contains(&minute) {
                let into = (minute - s.at_minute) as f64;
                let ramp = (into / s.ramp_minutes.max(1) as f64).min(1.0);
                load *= 1.0 + (s.factor - 1.0) * ramp;
            }
        }
        load
    }

    /// Channels up at every second of the week: calls arrive as a Poisson process whose rate
    /// follows [`Week::offered`], each lasting a draw of `holding`; or the trace's last whole
    /// week.
    pub fn channels(&self) -> Result<Vec<u32>> {
        Ok(self.traffic()?.channels)
    }

    /// The measured week's channels a second and arrivals a minute.
    pub fn traffic(&self) -> Result<Traffic> {
        if let Some(trace) = &self.trace {
            let weeks = self.trace_weeks(trace)?;
            return Ok(weeks.last().cloned().unwrap_or_default());
        }
        self.synthetic_traffic()
    }

    /// The trace's channels a second and arrivals a minute, cut into whole weeks (a partial
    /// last week dropped).
    fn trace_weeks(&self, trace: &[TraceCall]) -> Result<Vec<Traffic>> {
        let week_secs = MINUTES * 60;
        let end = trace.last().map_or(0.0, |c| c.at_secs);
        let weeks = (end / week_secs as f64) as usize;
        if weeks == 0 {
            return Err(Error::scenario(
                "trace",
                format!("{end:.0} s of calls"),
                format!("a week replay needs at least one whole week ({week_secs} s)"),
            ));
        }
        let secs = weeks * week_secs;
        let mut rng = StdRng::seed_from_u64(self.seed);
        let sampler = self.holding.sampler()?;
        let mut delta = vec![0i64; secs + 1];
        let mut arrivals = vec![0u32; secs / 60];
        for c in trace {
            let hold = c.holding_secs.unwrap_or_else(|| sampler.draw(&mut rng));
            let (start, stop) = (c.at_secs, c.at_secs + hold);
            if start >= secs as f64 || stop <= 0.0 {
                continue;
            }
            if start >= 0.0 {
                arrivals[start as usize / 60] += 1;
            }
            delta[start.max(0.0) as usize] += 1;
            delta[stop.min(secs as f64) as usize] -= 1;
        }
        let mut up = 0i64;
        let all: Vec<u32> = delta[..secs]
            .iter()
            .map(|d| {
                up += d;
                u32::try_from(up.max(0)).unwrap_or(u32::MAX)
            })
            .collect();
        Ok(all
            .chunks(week_secs)
            .zip(arrivals.chunks(MINUTES))
            .map(|(c, a)| Traffic {
                channels: c.to_vec(),
                arrivals: a.to_vec(),
            })
            .collect())
    }

    fn synthetic_traffic(&self) -> Result<Traffic> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let sampler = self.holding.sampler()?;
        let mean = self.holding.mean_secs();
        let secs = MINUTES * 60;
        let mut delta = vec![0i64; secs + 1];
        let mut arrivals = vec![0u32; MINUTES];
        // A warm day before Monday, so Monday 00:00 starts loaded, not empty.
        let warm = 24 * 60;
        for m in 0..(warm + MINUTES) {
            let minute_of_week = (m + MINUTES - warm) % MINUTES;
            let rate = self.offered(minute_of_week) / mean * 60.0;
            let n = if rate > 0.0 {
                Poisson::new(rate)
                    .map_err(|e| Error::scenario("offered load", rate, e.to_string()))?
                    .sample(&mut rng) as u64
            } else {
                0
            };
            for _ in 0..n {
                let start = (m as f64 - warm as f64) * 60.0 + rng.random::<f64>() * 60.0;
                let end = start + sampler.draw(&mut rng);
                if end <= 0.0 || start >= secs as f64 {
                    continue;
                }
                if start >= 0.0 {
                    arrivals[start as usize / 60] += 1;
                }
                delta[start.max(0.0) as usize] += 1;
                delta[(end.min(secs as f64)) as usize] -= 1;
            }
        }
        let mut up = 0i64;
        Ok(Traffic {
            channels: delta[..secs]
                .iter()
                .map(|d| {
                    up += d;
                    u32::try_from(up.max(0)).unwrap_or(u32::MAX)
                })
                .collect(),
            arrivals,
        })
    }

    /// The fleet's channel history before the measured week, as the runtime reads it: the
    /// 5-minute maxima of the per-minute samples, stamped at each interval's start (the
    /// measured week starts at 0 ms; week `k` before it at `-k` weeks). Each week is its own
    /// draw, `growth_per_week` smaller than the next, without the spike.
    pub fn history(&self) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        if let Some(trace) = &self.trace {
            let weeks = self.trace_weeks(trace)?;
            let measured = weeks.len() - 1;
            for k in (1..=self.history_weeks.min(measured)).rev() {
                let start = -(k as i64) * MINUTES as i64;
                out.extend(five_minute_maxima(&weeks[measured - k].channels, start));
            }
            return Ok(out);
        }
        for k in (1..=self.history_weeks).rev() {
            let week = Week {
                seed: self
                    .seed
                    .wrapping_add((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                peak_channels: self.peak_channels
                    / (1.0 + self.growth_per_week).powi(i32::try_from(k).unwrap_or(i32::MAX)),
                spike: None,
                ..self.clone()
            };
            let start = -(k as i64) * MINUTES as i64;
            out.extend(five_minute_maxima(
                &week.synthetic_traffic()?.channels,
                start,
            ));
        }
        Ok(out)
    }

    fn fleet_config(&self) -> Result<FleetConfig> {
        let name = FleetName::parse("week").map_err(Error::Config)?;
        let json = serde_json::json!({
            "min_pairs": self.min_pairs, "max_pairs": self.max_pairs, "max_step": self.max_step,
            "cooldown_out_seconds": self.cooldown_out_minutes * 60,
            "cooldown_in_seconds": self.cooldown_in_minutes * 60,
            "drain": {"deadline_seconds": 600, "policy": "wait", "hard_max_seconds": 3600},
        });
        Ok(FleetConfig::from_json(&name, &json.to_string())?)
    }
}

/// The 5-minute maxima of a week's per-minute samples (the channels up at each minute's
/// first second), stamped `start_minute` on.
fn five_minute_maxima(channels: &[u32], start_minute: i64) -> Vec<Sample> {
    (0..channels.len() / 300)
        .map(|b| Sample {
            at: Timestamp((start_minute + b as i64 * 5) * 60_000),
            channels: (0..5)
                .map(|m| u64::from(channels[(b * 5 + m) * 60]))
                .max()
                .unwrap_or(0),
        })
        .collect()
}

/// A week's traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// The channels up at each second.
    pub channels: Vec<u32>,
    /// The calls that arrived in each minute.
    pub arrivals: Vec<u32>,
}

/// The policies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    StaticAlarms,
    TargetTracking,
    /// Tracking at `predictive_target_per_pair`, the forecast reported and not acted on.
    ForecastOnly,
    /// Tracking at `predictive_target_per_pair`, at least the forecast's pairs.
    TrackingWithForecast,
    Oracle,
}

impl Policy {
    pub const ALL: [Policy; 5] = [
        Policy::StaticAlarms,
        Policy::TargetTracking,
        Policy::ForecastOnly,
        Policy::TrackingWithForecast,
        Policy::Oracle,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Policy::StaticAlarms => "static alarms (+/-step on edges)",
            Policy::TargetTracking => "target tracking (core::policy)",
            Policy::ForecastOnly => "tracking, forecast_only",
            Policy::TrackingWithForecast => "tracking, forecast_and_scale",
            Policy::Oracle => "oracle (knows the future)",
        }
    }
}

/// What one policy did over the week.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub policy: Policy,
    /// Offered channel-seconds beyond the capacity in rotation.
    pub refused_channel_secs: f64,
    /// ...as a share of all offered channel-seconds.
    pub refused_share: f64,
    /// ...of which outside the spike's first `scale_out_minutes` (its first time to
    /// capacity)...
    pub refused_outside_spike_secs: f64,
    /// ...and outside the whole spike.
    pub refused_beyond_spike_secs: f64,
    /// ...outside the spike's first time to capacity as the fleet lived it: from its start
    /// until the pairs of the first run started in it were in rotation.
    pub refused_beyond_response_secs: f64,
    /// That time, minutes (the whole spike when no run started in it); `None` without a spike.
    pub first_response_minutes: Option<usize>,
    pub pair_hours: f64,
    pub runs: u32,
    /// Runs an alarm fired while another held the lock (lost: edges do not fire again).
    pub lost_triggers: u32,
    /// The minutes the forecast recommended more pairs than tracking did (whether or not
    /// it acted), and the fewest weeks that backed a forecast; `None` without a forecast.
    pub forecast_led_minutes: Option<u32>,
    pub forecast_min_weeks: Option<u32>,
}

/// Every policy over the same week.
pub fn replay(week: &Week) -> Result<Vec<Outcome>> {
    let traffic = week.traffic()?;
    let config = week.fleet_config()?;
    let forecasts = forecasts(week, &week.history()?, &traffic.channels)?;
    Policy::ALL
        .into_iter()
        .map(|p| simulate(week, &config, &traffic, &forecasts, p))
        .collect()
}

/// The predictive policy of the forecast rows.
pub fn predictive_config(week: &Week, mode: Mode) -> PredictiveConfig {
    PredictiveConfig {
        mode,
        weeks: 4,
        min_weeks: 2,
        target_channels_per_pair: Some(week.forecast_target_per_pair),
        headroom_sigmas: week.forecast_headroom_sigmas,
    }
}

/// The forecasts at each minute of the measured week, from the history and the measured
/// week's own samples as they come (complete 5-minute intervals only): over the time to
/// capacity, and over a scale-in's hold (its drain, then a time to capacity).
type Forecasts = Vec<(Option<Forecast>, Option<Forecast>)>;

fn forecasts(week: &Week, history: &[Sample], channels: &[u32]) -> Result<Forecasts> {
    let mut samples = history.to_vec();
    let measured = five_minute_maxima(channels, 0);
    let config = predictive_config(week, Mode::ForecastOnly);
    config.validate()?;
    let lookahead = week.scale_out_minutes as u64 * 60;
    let hold = (week.scale_in_minutes + week.scale_out_minutes) as u64 * 60;
    let mut next = 0;
    Ok((0..MINUTES)
        .map(|m| {
            let now = m as i64 * 60_000;
            while next < measured.len() && measured[next].at.0 + 300_000 <= now {
                samples.push(measured[next]);
                next += 1;
            }
            (
                forecast::forecast(&samples, Timestamp(now), lookahead, &config),
                forecast::forecast(&samples, Timestamp(now), hold, &config),
            )
        })
        .collect())
}

fn simulate(
    week: &Week,
    config: &FleetConfig,
    traffic: &Traffic,
    forecasts: &[(Option<Forecast>, Option<Forecast>)],
    p: Policy,
) -> Result<Outcome> {
    let channels = &traffic.channels;
    let cap = u64::from(week.pair_capacity);
    let minute_peak = |m: usize| -> u32 {
        channels[m * 60..(m + 1) * 60]
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
    };
    let spike = week.spike.as_ref().filter(|_| week.trace.is_none());
    let spike_grace = spike.map(|s| s.at_minute..s.at_minute + week.scale_out_minutes);
    let spike_whole = spike.map(|s| s.at_minute..s.at_minute + s.minutes);
    let (mut refused, mut refused_outside, mut offered, mut pair_minutes) =
        (0f64, 0f64, 0f64, 0f64);
    let mut refused_beyond = 0f64;
    // Each minute's refusals, and when the first run started in the spike put its pairs into
    // rotation: the spike's first time to capacity as the fleet lived it.
    let mut refused_in = vec![0f64; MINUTES];
    let mut first_response: Option<usize> = None;
    let (mut runs, mut lost) = (0u32, 0u32);
    if p == Policy::Oracle {
        for m in 0..MINUTES {
            let need = u64::from(minute_peak(m))
                .div_ceil(cap)
                .max(u64::from(week.min_pairs));
            pair_minutes += need as f64;
        }
        return Ok(Outcome {
            policy: p,
            refused_channel_secs: 0.0,
            refused_share: 0.0,
            refused_outside_spike_secs: 0.0,
            refused_beyond_spike_secs: 0.0,
            refused_beyond_response_secs: 0.0,
            first_response_minutes: None,
            pair_hours: pair_minutes / 60.0,
            runs: 0,
            lost_triggers: 0,
            forecast_led_minutes: None,
            forecast_min_weeks: None,
        });
    }
    let (target, predictive, trend) = match p {
        Policy::ForecastOnly => (
            week.predictive_target_per_pair,
            Some(predictive_config(week, Mode::ForecastOnly)),
            week.trend.clone(),
        ),
        Policy::TrackingWithForecast => (
            week.predictive_target_per_pair,
            Some(predictive_config(week, Mode::ForecastAndScale)),
            week.trend.clone(),
        ),
        _ => (week.target_per_pair, None, week.trend.clone()),
    };
    let policy_cfg = PolicyConfig {
        target_channels_per_pair: target,
        scale_in_stabilization_seconds: 600,
        max_step_out: None,
        max_step_in: week.max_step_in,
        schedules: Vec::new(),
        predictive,
        trend,
        suspended: false,
    };
    policy_cfg.validate(config)?;
    let (mut led, mut min_weeks): (Option<u32>, Option<u32>) = (None, None);
    // Start the week as a fleet that kept up before it: what the first time to capacity's
    // peak needs at the target.
    let first = (0..week.scale_out_minutes.min(MINUTES))
        .map(minute_peak)
        .max()
        .unwrap_or(0);
    let mut serving =
        (u64::from(first).div_ceil(u64::from(target)) as u32).clamp(week.min_pairs, week.max_pairs);
    let mut building: Vec<(usize, u32)> = Vec::new();
    let mut draining: Vec<(usize, u32)> = Vec::new();
    // The minute the run in flight (the lock's holder) ends.
    let mut run_until: Option<usize> = None;
    let (mut last_out, mut last_in): (Option<usize>, Option<usize>) = (None, None);
    let mut recent: Vec<Recommendation> = Vec::new();
    let (mut high_for, mut low_for, mut high_alarm, mut low_alarm) = (0usize, 0usize, false, false);
    for m in 0..MINUTES {
        // What finished by now.
        building.retain(|(ready, n)| {
            if *ready <= m {
                serving += n;
                false
            } else {
                true
            }
        });
        draining.retain(|(gone, _)| *gone > m);
        if run_until.is_some_and(|until| until <= m) {
            run_until = None;
        }
        // This minute's calls against the pairs in rotation.
        let room = u64::from(serving) * cap;
        for s in &channels[m * 60..(m + 1) * 60] {
            offered += f64::from(*s);
            let over = u64::from(*s).saturating_sub(room) as f64;
            refused += over;
            refused_in[m] += over;
            if !spike_grace.as_ref().is_some_and(|g| g.contains(&m)) {
                refused_outside += over;
            }
            if !spike_whole.as_ref().is_some_and(|g| g.contains(&m)) {
                refused_beyond += over;
            }
        }
        let in_flight: u32 = building.iter().map(|(_, n)| n).sum();
        let out_draining: u32 = draining.iter().map(|(_, n)| n).sum();
        pair_minutes += f64::from(serving + in_flight + out_draining);

        // The decision, on the sample taken at the start of the minute.
        let sample = channels[m * 60];
        let count = serving + in_flight;
        let desired = match p {
            Policy::StaticAlarms => {
                let per_pair = f64::from(sample) / f64::from(serving.max(1));
                high_for = if per_pair > f64::from(week.alarm_high) {
                    high_for + 1
                } else {
                    0
                };
                low_for = if per_pair < f64::from(week.alarm_low) {
                    low_for + 1
                } else {
                    0
                };
                let (was_high, was_low) = (high_alarm, low_alarm);
                high_alarm = high_for >= 3;
                low_alarm = low_for >= 15;
                if high_alarm && !was_high {
                    Some(count.saturating_add(1))
                } else if low_alarm && !was_low {
                    Some(count.saturating_sub(1))
                } else {
                    None
                }
            }
            Policy::TargetTracking | Policy::ForecastOnly | Policy::TrackingWithForecast => {
                let (forecast, scale_in_forecast) = match policy_cfg.predictive {
                    Some(_) => forecasts[m].clone(),
                    None => (None, None),
                };
                let d = policy::evaluate(
                    config,
                    &policy_cfg,
                    &Inputs {
                        now: Timestamp(m as i64 * 60_000),
                        pair_count: count,
                        load_channels: Some(u64::from(sample)),
                        arrivals_per_minute: week
                            .arrivals
                            .then(|| m.checked_sub(1).map(|p| u64::from(traffic.arrivals[p])))
                            .flatten(),
                        recent: std::mem::take(&mut recent),
                        time_to_capacity_seconds: Some(week.scale_out_minutes as u64 * 60),
                        forecast,
                        scale_in_forecast,
                    },
                )?;
                if let Some(pr) = &d.predictive {
                    if let Some(f) = &pr.forecast {
                        min_weeks = Some(min_weeks.map_or(f.weeks, |w| w.min(f.weeks)));
                    }
                    let over = pr.pairs.zip(d.tracking).is_some_and(|(f, t)| f > t);
                    led = Some(led.unwrap_or(0) + u32::from(over));
                }
                recent = d.keep;
                d.act.then_some(d.desired)
            }
            Policy::Oracle => None,
        };
        let Some(to) = desired.map(|d| d.clamp(week.min_pairs, week.max_pairs)) else {
            continue;
        };
        if to == count {
            continue;
        }
        if run_until.is_some() {
            if p == Policy::StaticAlarms {
                lost += 1;
            }
            continue;
        }
        if to > count {
            if last_out.is_some_and(|t| m < t + week.cooldown_out_minutes) {
                continue;
            }
            let add = (to - count).min(week.max_step);
            building.push((m + week.scale_out_minutes, add));
            if first_response.is_none() && spike_whole.as_ref().is_some_and(|g| g.contains(&m)) {
                first_response = Some(m + week.scale_out_minutes);
            }
            run_until = Some(m + week.scale_out_minutes);
            last_out = Some(m);
        } else {
            if last_in.is_some_and(|t| m < t + week.cooldown_in_minutes)
                || last_out.is_some_and(|t| m < t + week.cooldown_out_minutes)
            {
                continue;
            }
            let remove = (count - to)
                .min(week.max_step)
                .min(serving.saturating_sub(week.min_pairs));
            if remove == 0 {
                continue;
            }
            serving -= remove;
            draining.push((m + week.scale_in_minutes, remove));
            run_until = Some(m + week.scale_in_minutes);
            last_in = Some(m);
        }
        runs += 1;
    }
    let first_ttc = spike.map(|s| s.at_minute..first_response.unwrap_or(s.at_minute + s.minutes));
    let within_first: f64 = first_ttc
        .clone()
        .map_or(0.0, |r| r.filter_map(|m| refused_in.get(m)).sum());
    Ok(Outcome {
        policy: p,
        refused_beyond_response_secs: refused - within_first,
        first_response_minutes: first_ttc.map(|r| r.len()),
        refused_channel_secs: refused,
        refused_share: if offered > 0.0 {
            refused / offered
        } else {
            0.0
        },
        refused_outside_spike_secs: refused_outside,
        refused_beyond_spike_secs: refused_beyond,
        pair_hours: pair_minutes / 60.0,
        runs,
        lost_triggers: lost,
        forecast_led_minutes: led,
        forecast_min_weeks: min_weeks,
    })
}

/// The table: one row a policy, pair-hours also as a multiple of the oracle's.
pub fn table(week: &Week, outcomes: &[Outcome]) -> String {
    let oracle = outcomes
        .iter()
        .find(|o| o.policy == Policy::Oracle)
        .map(|o| o.pair_hours)
        .unwrap_or(f64::NAN);
    let mut out = format!(
        "week (seed {}) after {} weeks of history growing {:.0}% a week: weekday peak {:.0} channels, weekend {:.0}%, night {:.0}%, spike {}; {}; pairs of {} channels, target {} a pair ({} with the forecast, which sizes its peak at {}), alarms {}/{}; builds {} min (the forecast's lookahead), drains {} min, cooldowns {}/{} min\n",
        week.seed,
        week.history_weeks,
        week.growth_per_week * 100.0,
        week.peak_channels,
        week.weekend_share * 100.0,
        week.trough_share * 100.0,
        match (&week.trace, &week.spike) {
            (Some(t), _) => format!("none known (a recorded trace of {} calls)", t.len()),
            (None, Some(s)) => format!("x{} for {} min", s.factor, s.minutes),
            (None, None) => "none".into(),
        },
        week.holding.describe(),
        week.pair_capacity,
        week.target_per_pair,
        week.predictive_target_per_pair,
        week.forecast_target_per_pair,
        week.alarm_high,
        week.alarm_low,
        week.scale_out_minutes,
        week.scale_in_minutes,
        week.cooldown_out_minutes,
        week.cooldown_in_minutes,
    );
    out.push_str(&format!(
        "{:<32} {:>12} {:>8} {:>17} {:>17} {:>17} {:>10} {:>9} {:>5} {:>5} {:>13}\n",
        "policy",
        "refused ch-s",
        "refused",
        "beyond spike's TTC",
        "beyond 1st answer",
        "outside the spike",
        "pair-hours",
        "x oracle",
        "runs",
        "lost",
        "forecast led"
    ));
    out.push_str(&format!("{}\n", "-".repeat(152)));
    for o in outcomes {
        out.push_str(&format!(
            "{:<32} {:>12.0} {:>7.3}% {:>17.0} {:>17} {:>17.0} {:>10.1} {:>8.2}x {:>5} {:>5} {:>13}\n",
            o.policy.label(),
            o.refused_channel_secs,
            o.refused_share * 100.0,
            o.refused_outside_spike_secs,
            match o.first_response_minutes {
                Some(m) if o.policy != Policy::Oracle => {
                    format!("{:.0} ({m} min)", o.refused_beyond_response_secs)
                }
                _ => format!("{:.0}", o.refused_beyond_response_secs),
            },
            o.refused_beyond_spike_secs,
            o.pair_hours,
            o.pair_hours / oracle,
            o.runs,
            o.lost_triggers,
            o.forecast_led_minutes
                .map(|m| format!("{m} min"))
                .unwrap_or_else(|| "-".into())
        ));
    }
    out
}
