//! The planner: from a request, the fleet's configuration and its records, decide what one
//! run will do. Pure: the same inputs always give the same plan.
//!
//! Counting rule: capacity is the pairs that are `active`. Pairs `provisioning` are in flight
//! towards the fleet and count towards reaching a target, never as capacity; pairs `draining`
//! are already leaving and count as neither. Pairs `warm` (the fleet's warm pool: stopped,
//! without an ESL client) count as nothing until a scale-out takes them.

use crate::error::{Error, Result};
use crate::fleet::{FleetConfig, FleetMeta, Pair, PairStatus, MAX_FLEET_PAIRS};
use crate::ids::{PairId, Timestamp};
use crate::request::{Intent, ScaleRequest};
use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct PlanContext<'a> {
    pub config: &'a FleetConfig,
    /// The committed pair count (SSM), reported beside what the records say.
    pub desired: u32,
    pub pairs: &'a [Pair],
    pub meta: &'a FleetMeta,
    pub now: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(schemars::JsonSchema)]
pub enum Direction {
    Out,
    In,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoOpReason {
    /// The fleet is already at the (clamped) target.
    AtTarget,
    /// The direction's cooldown has not passed.
    Cooldown,
    /// An alarm went back to OK or INSUFFICIENT_DATA.
    AlarmNotFiring,
    /// Every pair that could be removed is protected.
    AllProtected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Plan {
    ScaleOut {
        from: u32,
        to: u32,
        add: u32,
        /// Of `add`, the pairs taken from the warm pool (the lowest warm ids; the commit takes
        /// them, then allocates the rest).
        from_pool: u32,
        /// Warm pairs the run adds once its new pairs are in rotation, to bring the pool back
        /// to `warm_pool`.
        refill: u32,
    },
    ScaleIn {
        from: u32,
        to: u32,
        remove: u32,
        /// Extra candidates to quiesce and race; the first `remove` to empty are removed.
        race_spares: u32,
        /// Active, unprotected pairs the drain may choose from.
        eligible: Vec<PairId>,
    },
    NoOp {
        reason: NoOpReason,
        detail: String,
    },
}

impl Plan {
    pub fn direction(&self) -> Option<Direction> {
        match self {
            Plan::ScaleOut { .. } => Some(Direction::Out),
            Plan::ScaleIn { .. } => Some(Direction::In),
            Plan::NoOp { .. } => None,
        }
    }
}

/// The plan with the reasoning an operator needs to trust it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlanOutcome {
    pub plan: Plan,
    pub dry_run: bool,
    pub desired: u32,
    pub active: u32,
    pub provisioning: u32,
    pub draining: u32,
    /// Pairs of the warm pool.
    #[serde(default)]
    pub warm: u32,
    /// What the request asked for, before clamping (may be negative or above the maximum).
    pub requested_target: i64,
    /// The target after clamping to [min, max] and the maximum step.
    pub target: u32,
    /// Each limit that changed the request, in words.
    pub clamps: Vec<String>,
}

pub fn plan(request: &ScaleRequest, ctx: PlanContext<'_>) -> Result<PlanOutcome> {
    let cfg = ctx.config;
    let count = |s: PairStatus| ctx.pairs.iter().filter(|p| p.status == s).count() as u32;
    let active = count(PairStatus::Active);
    let provisioning = count(PairStatus::Provisioning);
    let draining = count(PairStatus::Draining) + count(PairStatus::Drained);
    let warm = count(PairStatus::Warm);
    let projected = active + provisioning;

    let mut out = PlanOutcome {
        plan: Plan::NoOp {
            reason: NoOpReason::AtTarget,
            detail: String::new(),
        },
        dry_run: request.dry_run,
        desired: ctx.desired,
        active,
        provisioning,
        draining,
        warm,
        requested_target: i64::from(active),
        target: active,
        clamps: Vec::new(),
    };

    out.requested_target = match &request.intent {
        Intent::Target { pair_count } => i64::from(*pair_count),
        Intent::Delta { delta } => i64::from(active) + i64::from(*delta),
        Intent::Alarm { alarm_name, state } => {
            let step = *cfg.alarm_steps.get(alarm_name).ok_or_else(|| {
                Error::invalid(
                    "detail.alarmName",
                    alarm_name,
                    format!(
                        "no step is configured for this alarm in fleet '{}' (alarm_steps)",
                        request.fleet
                    ),
                )
            })?;
            if state != "ALARM" {
                out.plan = Plan::NoOp {
                    reason: NoOpReason::AlarmNotFiring,
                    detail: format!("alarm {alarm_name} is {state}"),
                };
                return Ok(out);
            }
            i64::from(active) + i64::from(step)
        }
    };

    let mut target = out.requested_target;
    if target < i64::from(cfg.min_pairs) {
        out.clamps
            .push(format!("raised to min_pairs {}", cfg.min_pairs));
        target = i64::from(cfg.min_pairs);
    }
    if target > i64::from(cfg.max_pairs) {
        out.clamps
            .push(format!("lowered to max_pairs {}", cfg.max_pairs));
        target = i64::from(cfg.max_pairs);
    }
    let mut target = target as u32;

    if target > projected {
        let mut add = target - projected;
        if add > cfg.max_step {
            out.clamps
                .push(format!("step limited to max_step {}", cfg.max_step));
            add = cfg.max_step;
        }
        target = projected + add;
        out.target = target;
        if let Some(until) = cooldown_until(Direction::Out, cfg, ctx.meta) {
            if ctx.now < until && !request.ignore_cooldown {
                out.plan = cooldown_noop(Direction::Out, until);
                return Ok(out);
            }
        }
        let from_pool = add.min(warm);
        // Never past the fleet's record limit: what serves, leaves or waits, plus the pool.
        let records = ctx.pairs.len() as u32 - warm + (add - from_pool);
        let refill = cfg
            .warm_pool
            .saturating_sub(warm - from_pool)
            .min(MAX_FLEET_PAIRS.saturating_sub(records + (warm - from_pool)));
        out.plan = Plan::ScaleOut {
            from: active,
            to: target,
            add,
            from_pool,
            refill,
        };
    } else if target < active {
        let eligible: Vec<PairId> = ctx
            .pairs
            .iter()
            .filter(|p| p.status == PairStatus::Active && !p.protected)
            .map(|p| p.id)
            .collect();
        let mut remove = active - target;
        if remove > cfg.max_step {
            out.clamps
                .push(format!("step limited to max_step {}", cfg.max_step));
            remove = cfg.max_step;
        }
        if remove > eligible.len() as u32 {
            out.clamps.push(format!(
                "only {} unprotected active pair(s) can be removed",
                eligible.len()
            ));
            remove = eligible.len() as u32;
        }
        out.target = active - remove;
        if remove == 0 {
            out.plan = Plan::NoOp {
                reason: NoOpReason::AllProtected,
                detail: "every active pair is protected".into(),
            };
            return Ok(out);
        }
        if let Some(until) = cooldown_until(Direction::In, cfg, ctx.meta) {
            if ctx.now < until && !request.ignore_cooldown {
                out.plan = cooldown_noop(Direction::In, until);
                return Ok(out);
            }
        }
        let load = load_channels(ctx.pairs, ctx.now);
        out.plan = Plan::ScaleIn {
            from: active,
            to: active - remove,
            remove,
            race_spares: race_spares(cfg, active, eligible.len() as u32, remove, load),
            eligible,
        };
    } else {
        out.target = target;
        out.plan = Plan::NoOp {
            reason: NoOpReason::AtTarget,
            detail: if provisioning > 0 {
                format!("{active} active and {provisioning} provisioning already reach {target}")
            } else {
                format!("already at {target} pair(s)")
            },
        };
    }
    Ok(out)
}

/// When the cooldown of a direction ends, if there is one. A scale-out waits out the short
/// scale-out cooldown since the last scale-out; a scale-in waits out the long scale-in
/// cooldown since the last scaling of either direction, so that capacity just added is not
/// taken away again at once.
pub fn cooldown_until(dir: Direction, cfg: &FleetConfig, meta: &FleetMeta) -> Option<Timestamp> {
    match dir {
        Direction::Out => meta
            .last_scale_out_at
            .map(|t| t.plus_secs(cfg.cooldown_out_seconds)),
        Direction::In => meta
            .last_scale_out_at
            .max(meta.last_scale_in_at)
            .map(|t| t.plus_secs(cfg.cooldown_in_seconds)),
    }
}

fn cooldown_noop(dir: Direction, until: Timestamp) -> Plan {
    Plan::NoOp {
        reason: NoOpReason::Cooldown,
        detail: format!("scale-{} cooldown until {}", dir.as_str(), until.rfc3339()),
    }
}

/// How old a load sample may be for the plan to count it: the `sample` action runs every
/// minute, so five minutes leaves room for a few missed.
pub const SAMPLE_MAX_AGE_MS: i64 = 5 * 60 * 1_000;

/// The channels last seen on active pairs, when every one of them was seen in the last
/// [`SAMPLE_MAX_AGE_MS`] (a count set by hand, with no time, counts too).
fn load_channels(pairs: &[Pair], now: Timestamp) -> Option<u64> {
    pairs
        .iter()
        .filter(|p| p.status == PairStatus::Active)
        .map(|p| {
            let fresh = p
                .last_seen_at
                .is_none_or(|at| now.0.saturating_sub(at.0) <= SAMPLE_MAX_AGE_MS);
            p.last_channels.filter(|_| fresh).map(u64::from)
        })
        .sum()
}

/// How many spare candidates to race: the configured number, reduced while the pairs left
/// in rotation during the drain (all but the `remove + spares` quiesced) would fall below the
/// minimum, below one, or below the capacity the current load needs.
pub fn race_spares(
    cfg: &FleetConfig,
    active: u32,
    eligible: u32,
    remove: u32,
    load_channels: Option<u64>,
) -> u32 {
    let mut spares = cfg.race_spares.min(eligible.saturating_sub(remove));
    while spares > 0 && active.saturating_sub(remove + spares) < cfg.min_pairs.max(1) {
        spares -= 1;
    }
    match (cfg.pair_capacity_channels, load_channels) {
        (Some(cap), Some(load)) => {
            crate::drain::spares_within_capacity(active, remove, spares, cap, load)
        }
        _ => spares,
    }
}

#[cfg(test)]
mod tests;
