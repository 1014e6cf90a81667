//! `pairscale-policy`: evaluate (every minute from EventBridge Scheduler, and from the alarm
//! rules), explain, suspend, resume.
//!
//! An evaluation reads the fleet's configuration, committed count, fresh load samples, kept
//! recommendations and alarms, decides with [`pairscale_core::policy::evaluate`] and
//! [`pairscale_core::policy::with_alarms`], and starts a run to the desired count only when
//! the decision says act and no run is in flight (the lock held, or an execution running).
//! The run's name is the fleet and the evaluation's minute, so a retried or doubled
//! evaluation starts one run at most: the second start finds the name taken. The kept
//! recommendations are written back with a conditional write (merged and retried when
//! another evaluation wrote first). One structured line and a set of metrics per decision.

use crate::contract::{contract, Fields, FleetInput};
use crate::metrics::Metrics;
use pairscale_core::plan::SAMPLE_MAX_AGE_MS;
use pairscale_core::policy::forecast::{forecast, Sample};
use pairscale_core::policy::{
    cooldown_hold, evaluate, merge, run_name, with_alarms, without_policy, Decision, Inputs,
    PolicyConfig, PolicyState, Recommendation, Suspension,
};
use pairscale_core::ports::{
    Clock, FleetSignals, FleetStateStore, LockStore, PolicyStore, ScalingRuns, StartOutcome,
};
use pairscale_core::request::ScaleRequest;
use pairscale_core::{Error, FleetConfig, FleetName, PairStatus, Result, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// The evaluation metrics, each with dimension `Fleet`.
pub const POLICY_CURRENT: &str = "PolicyCurrentPairs";
pub const POLICY_DESIRED: &str = "PolicyDesiredPairs";
pub const POLICY_TRACKING: &str = "PolicyTrackingPairs";
pub const POLICY_STABILIZED: &str = "PolicyStabilizedPairs";
pub const POLICY_SCHEDULE_FLOOR: &str = "PolicyScheduleFloor";
pub const POLICY_ACTED: &str = "PolicyActed";

/// How far an event's `time` may lie from the clock: a scheduled invocation arrives within
/// seconds, a retried one within minutes; anything further is a mistake, not a clock.
pub const MAX_EVENT_SKEW_MS: i64 = 15 * 60 * 1_000;
/// The history the forecast reads: four weeks.
pub const HISTORY_MS: i64 = 28 * 86_400 * 1_000;
/// The scale-outs whose median is the time to capacity.
pub const TIME_TO_CAPACITY_RUNS: usize = 5;
/// How far the forecast looks ahead while the fleet has no scale-out to measure: 15 minutes,
/// a build, a configuration and a canary call with room to spare.
pub const DEFAULT_TIME_TO_CAPACITY_SECONDS: u64 = 900;
/// How often a save that lost to another evaluation's is merged and tried again.
const SAVE_ATTEMPTS: usize = 5;
/// Who the runs the policy starts are requested by.
pub const REQUESTED_BY: &str = "policy";

#[derive(Clone)]
pub struct PolicyHandler {
    pub state: Arc<dyn FleetStateStore>,
    pub locks: Arc<dyn LockStore>,
    pub policies: Arc<dyn PolicyStore>,
    pub runs: Arc<dyn ScalingRuns>,
    pub signals: Arc<dyn FleetSignals>,
    pub clock: Arc<dyn Clock>,
    /// One value per input of each decision, for the dashboard and alarms on the policy.
    pub metrics: Metrics,
}

impl std::fmt::Debug for PolicyHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyHandler").finish_non_exhaustive()
    }
}

contract! {
    /// The input of `pairscale-policy`.
    pub enum PolicyAction for PolicyHandler {
        /// Decide, and start a run when the decision says so and none is in flight.
        "evaluate" => Evaluate(EvaluateInput) -> Evaluation = evaluate,
        /// Decide and say why; never acts, never writes.
        "explain" => Explain(EvaluateInput) -> Evaluation = explain,
        /// Stop the policy acting (it goes on deciding); who, when and why are kept.
        "suspend" => Suspend(SuspendInput) -> PolicyShown = suspend,
        /// Let the policy act again.
        "resume" => Resume(ResumeInput) -> PolicyShown = resume,
        /// The policy's record of the fleet.
        "show" => Show(FleetInput) -> PolicyShown = show,
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateInput {
    pub fleet: FleetName,
    /// The evaluation's instant, RFC 3339 (EventBridge Scheduler's scheduled time, an alarm
    /// event's `time`, `explain --at`): it names the run and judges the schedules. The clock
    /// when absent.
    #[serde(default)]
    pub time: Option<String>,
    /// The alarm event that invoked the evaluation, when one did: recorded, not read (the
    /// alarms' current states are).
    #[serde(default)]
    pub alarm: Option<Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendInput {
    pub fleet: FleetName,
    pub by: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeInput {
    pub fleet: FleetName,
    pub by: String,
}

impl Fields for EvaluateInput {}
impl Fields for SuspendInput {}
impl Fields for ResumeInput {}

/// Whether a run is in flight, and why.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InFlight {
    /// The scaling lock is held and unexpired.
    pub lock_held: bool,
    pub lock_holder: Option<String>,
    /// An execution of the fleet's machine is running.
    pub running: bool,
}

/// One evaluation: its inputs, each rule's word, the decision and what was done.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Evaluation {
    pub fleet: FleetName,
    /// The evaluation's minute.
    pub at: Timestamp,
    /// Whether the fleet has a policy (without one, only its alarms move it).
    pub has_policy: bool,
    /// The channels on the active pairs with a fresh sample; None when none has one.
    pub load_channels: Option<u64>,
    /// The calls a minute that arrived on those pairs; None unless each has its own.
    pub arrivals_per_minute: Option<u64>,
    /// Active pairs, and those of them with a fresh sample.
    pub active_pairs: u32,
    pub fresh_samples: u32,
    /// The fleet's alarms in ALARM now, with their steps.
    pub alarms_in_alarm: Vec<(String, i32)>,
    pub suspended: Option<Suspension>,
    /// The policy itself says `suspended: true` in the fleet configuration.
    pub suspended_by_config: bool,
    pub in_flight: InFlight,
    pub decision: Decision,
    /// The run's name, when the decision says act.
    pub execution_name: Option<String>,
    /// What starting it came to; None when nothing was started.
    pub started: Option<StartOutcome>,
    /// Why a decision to act started nothing.
    pub held_back: Option<String>,
    /// For the forecast: the `Channels` points of the last four weeks and the median time
    /// of the recent scale-outs (None when there is none, it could not be read, or the
    /// policy has no `predictive`; the time is also read for `trend`).
    pub history_points: Option<usize>,
    pub time_to_capacity_ms: Option<i64>,
}

/// The policy's record of a fleet.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PolicyShown {
    pub fleet: FleetName,
    pub state: PolicyState,
}

/// `time` as an instant: RFC 3339, within [`MAX_EVENT_SKEW_MS`] of the clock.
pub fn event_time(time: Option<&str>, now: Timestamp) -> Result<Timestamp> {
    let Some(t) = time else { return Ok(now) };
    let at = Timestamp::parse_rfc3339(t).ok_or_else(|| {
        Error::invalid(
            "time",
            t,
            "must be an RFC 3339 instant such as 2026-12-05T08:00:00Z",
        )
    })?;
    if (at.millis() - now.millis()).abs() > MAX_EVENT_SKEW_MS {
        return Err(Error::invalid(
            "time",
            t,
            format!(
                "must be within {} minutes of the clock ({})",
                MAX_EVENT_SKEW_MS / 60_000,
                now.rfc3339()
            ),
        ));
    }
    Ok(at)
}

/// The instant's minute: what names the run and dates the recommendation.
pub fn minute_of(at: Timestamp) -> Timestamp {
    Timestamp(at.millis().div_euclid(60_000) * 60_000)
}

/// The channels on the fleet's active pairs whose sample is fresh at `at`, with the count of
/// active pairs and of fresh samples. None when no active pair has a fresh sample.
pub fn fresh_load(pairs: &[pairscale_core::Pair], at: Timestamp) -> (Option<u64>, u32, u32) {
    let active: Vec<_> = pairs
        .iter()
        .filter(|p| p.status == PairStatus::Active)
        .collect();
    let fresh: Vec<u64> = active
        .iter()
        .filter_map(|p| match (p.last_channels, p.last_seen_at) {
            (Some(c), Some(seen)) if (at.millis() - seen.millis()).abs() <= SAMPLE_MAX_AGE_MS => {
                Some(u64::from(c))
            }
            _ => None,
        })
        .collect();
    let load = (!fresh.is_empty()).then(|| fresh.iter().sum());
    (load, active.len() as u32, fresh.len() as u32)
}

/// The calls a minute that arrived on the active pairs whose sample is fresh at `at`: known
/// only when every one of them has its own (a new pair's first sample has none), so that
/// arrivals and channels cover the same pairs. None otherwise, or without a fresh sample.
pub fn fresh_arrivals(pairs: &[pairscale_core::Pair], at: Timestamp) -> Option<u64> {
    let fresh: Vec<Option<u32>> = pairs
        .iter()
        .filter(|p| p.status == PairStatus::Active)
        .filter(|p| match (p.last_channels, p.last_seen_at) {
            (Some(_), Some(seen)) => (at.millis() - seen.millis()).abs() <= SAMPLE_MAX_AGE_MS,
            _ => false,
        })
        .map(|p| p.arrivals_per_minute)
        .collect();
    if fresh.is_empty() {
        return None;
    }
    fresh
        .into_iter()
        .try_fold(0u64, |sum, a| a.map(|a| sum + u64::from(a)))
}

/// A value for the decision line: the value, or `none`.
fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// The median of `durations` (the lower middle of an even count).
pub fn median(mut durations: Vec<i64>) -> Option<i64> {
    durations.sort_unstable();
    durations
        .get(durations.len().saturating_sub(1) / 2)
        .copied()
}

impl PolicyHandler {
    async fn evaluate(&self, input: EvaluateInput) -> Result<Evaluation> {
        self.decide(input, true).await
    }

    async fn explain(&self, input: EvaluateInput) -> Result<Evaluation> {
        self.decide(input, false).await
    }

    /// Decide; with `act`, also start the run and keep the recommendations.
    async fn decide(&self, input: EvaluateInput, act: bool) -> Result<Evaluation> {
        let now = self.clock.now();
        let at = minute_of(event_time(input.time.as_deref(), now)?);
        let fleet = input.fleet;
        let config = self.state.config(&fleet).await?;
        let current = self.state.pair_count(&fleet).await?;
        let pairs = self.state.pairs(&fleet).await?;
        let (load, active_pairs, fresh_samples) = fresh_load(&pairs, at);
        let arrivals = fresh_arrivals(&pairs, at);
        let mut kept = self.policies.load(&fleet).await?;
        let alarms_in_alarm = self.firing(&config).await?;
        let by_config = config.policy.as_ref().is_some_and(|p| p.suspended);
        let suspended = by_config || kept.suspended.is_some();
        // The forecast's inputs: a failure to read them is logged and leaves the policy
        // without a forecast; it never fails the evaluation.
        let (history, time_to_capacity_ms) = self
            .forecast_inputs(&fleet, at, config.policy.as_ref())
            .await;
        let history_points = history.as_ref().map(Vec::len);
        // The trend's and the forecast's lookahead: the fleet's time to capacity; a
        // scale-in's hold adds its drain (the lock holds every scale-out meanwhile).
        let lookahead = time_to_capacity_ms.map_or(DEFAULT_TIME_TO_CAPACITY_SECONDS, |ms| {
            u64::try_from(ms.div_euclid(1_000)).unwrap_or(0)
        });
        let hold = config.drain.deadline_seconds;
        let (forecast, scale_in_forecast) = match (
            config.policy.as_ref().and_then(|p| p.predictive.as_ref()),
            &history,
        ) {
            (Some(predictive), Some(points)) => {
                let samples: Vec<Sample> = points
                    .iter()
                    .map(|(t, c)| Sample {
                        at: Timestamp(*t),
                        channels: c.max(0.0).round() as u64,
                    })
                    .collect();
                (
                    forecast(&samples, at, lookahead, predictive),
                    forecast(&samples, at, lookahead.saturating_add(hold), predictive),
                )
            }
            _ => (None, None),
        };
        let base = match &config.policy {
            Some(policy) => evaluate(
                &config,
                policy,
                &Inputs {
                    now: at,
                    pair_count: current,
                    load_channels: load,
                    arrivals_per_minute: arrivals,
                    recent: kept.recent.clone(),
                    time_to_capacity_seconds: Some(lookahead),
                    forecast,
                    scale_in_forecast,
                },
            )?,
            None => without_policy(current),
        };
        let mut decision = with_alarms(&config, suspended, base, &alarms_in_alarm);
        if let (Some(s), true) = (&kept.suspended, decision.desired != current) {
            decision.reasons.push(format!(
                "suspended by {} at {}: {}",
                s.by,
                s.at.rfc3339(),
                s.reason
            ));
        }
        let lock = self.locks.get(&fleet).await?;
        let lock_held = lock.as_ref().is_some_and(|l| l.is_held(now));
        let running = self.runs.any_running().await?;
        let in_flight = InFlight {
            lock_held,
            lock_holder: lock.filter(|l| l.is_held(now)).and_then(|l| l.holder),
            running,
        };
        let execution_name = decision.act.then(|| run_name(&fleet, at));
        let mut started = None;
        let mut held_back = None;
        if decision.act {
            let cooling = cooldown_hold(&decision, &config, &self.state.meta(&fleet).await?, now);
            if !act {
                held_back = Some(match cooling {
                    Some(why) => {
                        format!("explain: decides, never acts; evaluate would wait: {why}")
                    }
                    None => "explain: decides, never acts".into(),
                });
            } else if let Some(why) = cooling {
                held_back = Some(why);
            } else if lock_held || running {
                held_back = Some(format!(
                    "a run is in flight ({}): the next evaluation tries again",
                    if lock_held {
                        "the scaling lock is held"
                    } else {
                        "an execution is running"
                    }
                ));
            } else if let Some(name) = &execution_name {
                let request = run_request(&fleet, &decision)?;
                started = Some(self.runs.start_once(name, &request).await?);
            }
        }
        if act && config.policy.is_some() {
            self.keep(&fleet, &mut kept, &decision.keep, at, &config)
                .await?;
        }
        let evaluation = Evaluation {
            fleet,
            at,
            has_policy: config.policy.is_some(),
            load_channels: load,
            arrivals_per_minute: arrivals,
            active_pairs,
            fresh_samples,
            alarms_in_alarm,
            suspended: kept.suspended,
            suspended_by_config: by_config,
            in_flight,
            decision,
            execution_name,
            started,
            held_back,
            history_points,
            time_to_capacity_ms,
        };
        self.report(&evaluation, act, now);
        Ok(evaluation)
    }

    /// The fleet's alarms (`alarm_steps`) in ALARM now, with their steps.
    async fn firing(&self, config: &FleetConfig) -> Result<Vec<(String, i32)>> {
        if config.alarm_steps.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = config.alarm_steps.keys().cloned().collect();
        let firing = self.signals.alarms_in_alarm(&names).await?;
        Ok(firing
            .into_iter()
            .filter_map(|n| config.alarm_steps.get(&n).map(|s| (n, *s)))
            .collect())
    }

    /// Write the recommendations to keep, merged with any another evaluation wrote meanwhile.
    async fn keep(
        &self,
        fleet: &FleetName,
        kept: &mut PolicyState,
        ours: &[Recommendation],
        at: Timestamp,
        config: &FleetConfig,
    ) -> Result<()> {
        let window_ms = config.policy.as_ref().map_or(0, PolicyConfig::keep_ms);
        let in_window = |r: &Recommendation| {
            r.at.millis() <= at.millis() && at.millis() - r.at.millis() < window_ms
        };
        let mut recent: Vec<Recommendation> = ours.to_vec();
        for _ in 0..SAVE_ATTEMPTS {
            if self
                .policies
                .save_recent(fleet, kept.version, &recent, self.clock.now())
                .await?
            {
                return Ok(());
            }
            *kept = self.policies.load(fleet).await?;
            let theirs: Vec<Recommendation> = kept
                .recent
                .iter()
                .filter(|r| in_window(r))
                .copied()
                .collect();
            recent = merge(&theirs, ours);
        }
        Err(Error::Retryable {
            operation: "policy: keep the recommendations".into(),
            message: format!("{SAVE_ATTEMPTS} writes in a row lost to other evaluations"),
        })
    }

    /// The history the forecast reads, only for a policy with `predictive` (four weeks of
    /// points each minute are not read for nothing), and the time to capacity, only for one
    /// with `predictive` or `trend`.
    async fn forecast_inputs(
        &self,
        fleet: &FleetName,
        at: Timestamp,
        policy: Option<&PolicyConfig>,
    ) -> (Option<Vec<(i64, f64)>>, Option<i64>) {
        let predictive = policy.is_some_and(|p| p.predictive.is_some());
        let trend = policy.is_some_and(|p| p.trend.is_some());
        let since = Timestamp(at.millis() - HISTORY_MS);
        let history = if !predictive {
            None
        } else {
            match self.signals.channels_history(fleet, since, at).await {
                Ok(points) => Some(points),
                Err(e) => {
                    tracing::warn!(fleet = %fleet, error = %e, "channels history not read");
                    None
                }
            }
        };
        let ttc = if !(predictive || trend) {
            None
        } else {
            match self.runs.scale_out_durations(TIME_TO_CAPACITY_RUNS).await {
                Ok(d) => median(d),
                Err(e) => {
                    tracing::warn!(fleet = %fleet, error = %e, "time to capacity not read");
                    None
                }
            }
        };
        (history, ttc)
    }

    /// The decision line and its metrics.
    fn report(&self, e: &Evaluation, act: bool, now: Timestamp) {
        let d = &e.decision;
        let acted = matches!(e.started, Some(StartOutcome::Started { .. }));
        tracing::info!(
            fleet = %e.fleet,
            at = %e.at.rfc3339(),
            mode = if act { "evaluate" } else { "explain" },
            current = d.current,
            desired = d.desired,
            tracking = %opt(d.tracking),
            stabilized = %opt(d.stabilized),
            schedule_floor = %opt(d.schedule.as_ref().map(|(_, f)| *f)),
            schedule = %opt(d.schedule.as_ref().map(|(n, _)| n.as_str())),
            load_channels = %opt(e.load_channels),
            arrivals_per_minute = %opt(e.arrivals_per_minute),
            offered_channels = %opt(d.offered.as_ref().map(|o| o.channels)),
            mean_call_seconds = %opt(d.offered.as_ref().map(|o| o.mean_call_seconds)),
            fresh_samples = e.fresh_samples,
            active_pairs = e.active_pairs,
            alarms = %e
                .alarms_in_alarm
                .iter()
                .map(|(n, s)| format!("{n} ({s:+})"))
                .collect::<Vec<_>>()
                .join(", "),
            suspended = e.suspended.is_some() || e.suspended_by_config,
            lock_held = e.in_flight.lock_held,
            running = e.in_flight.running,
            act = d.act,
            acted,
            already_started = matches!(e.started, Some(StartOutcome::AlreadyStarted)),
            execution = %opt(e.execution_name.as_deref()),
            held_back = %opt(e.held_back.as_deref()),
            history_points = %opt(e.history_points),
            time_to_capacity_ms = %opt(e.time_to_capacity_ms),
            reasons = %d.reasons.join("; "),
            "policy decision"
        );
        if !act {
            return;
        }
        let put = |name: &str, v: f64| self.metrics.put(&e.fleet, name, v, "Count", now);
        put(POLICY_CURRENT, f64::from(d.current));
        put(POLICY_DESIRED, f64::from(d.desired));
        if let Some(t) = d.tracking {
            put(POLICY_TRACKING, f64::from(t));
        }
        if let Some(s) = d.stabilized {
            put(POLICY_STABILIZED, f64::from(s));
        }
        if let Some((_, f)) = &d.schedule {
            put(POLICY_SCHEDULE_FLOOR, f64::from(*f));
        }
        put(POLICY_ACTED, if acted { 1.0 } else { 0.0 });
    }

    async fn suspend(&self, s: SuspendInput) -> Result<PolicyShown> {
        // The fleet must exist: a typo must not leave a record for a fleet nobody has.
        self.state.pair_count(&s.fleet).await?;
        let suspension = Suspension::new(&s.by, self.clock.now(), &s.reason)?;
        self.policies
            .set_suspended(&s.fleet, Some(&suspension))
            .await?;
        tracing::info!(fleet = %s.fleet, by = %s.by, reason = %s.reason, "policy suspended");
        self.show(FleetInput { fleet: s.fleet }).await
    }

    async fn resume(&self, r: ResumeInput) -> Result<PolicyShown> {
        self.state.pair_count(&r.fleet).await?;
        if r.by.trim().is_empty() || r.by.len() > 200 {
            return Err(Error::invalid(
                "by",
                &r.by,
                "say who, in at most 200 characters",
            ));
        }
        self.policies.set_suspended(&r.fleet, None).await?;
        tracing::info!(fleet = %r.fleet, by = %r.by, "policy resumed");
        self.show(FleetInput { fleet: r.fleet }).await
    }

    async fn show(&self, s: FleetInput) -> Result<PolicyShown> {
        let state = self.policies.load(&s.fleet).await?;
        Ok(PolicyShown {
            fleet: s.fleet,
            state,
        })
    }
}

/// The run's input: the same request the CLI's `scale --to` starts, checked by the state
/// machine's own parser before it is sent.
pub fn run_request(fleet: &FleetName, d: &Decision) -> Result<Value> {
    let mut reason = format!(
        "policy: {} -> {}: {}",
        d.current,
        d.desired,
        d.reasons.join("; ")
    );
    if reason.len() > 500 {
        let mut end = 497;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push_str("...");
    }
    let request = json!({
        "fleet": fleet.as_str(),
        "target_pair_count": d.desired,
        "reason": reason,
        "requested_by": REQUESTED_BY,
    });
    ScaleRequest::from_json(&request)?;
    Ok(request)
}

#[cfg(test)]
mod tests;
