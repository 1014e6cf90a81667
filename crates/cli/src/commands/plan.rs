//! `pairscale plan`: the core planner on the fleet's real state, as the state function's
//! `plan` action runs it. Reads only.

use super::{Ctx, Outcome};
use crate::args::PlanArgs;
use crate::commands::scale::request_json;
use crate::error::Result;
use crate::render::{Style, Table, View};
use crate::settings::now;
use pairscale_core::plan::{plan, Plan, PlanContext, PlanOutcome};
use pairscale_core::request::ScaleRequest;
use pairscale_core::{Pair, PairStatus};
use serde::Serialize;
use serde_json::{json, Value};

/// Whether a pair could be drained by this plan, and why (not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eligibility {
    pub pair_id: String,
    pub status: PairStatus,
    pub eligible: bool,
    pub why: String,
}

#[derive(Debug, Clone)]
pub struct PlanView {
    pub request: ScaleRequest,
    pub outcome: PlanOutcome,
    pub pairs: Vec<Eligibility>,
}

pub async fn run(ctx: &Ctx, a: &PlanArgs) -> Result<Outcome> {
    let s = &ctx.settings;
    let mut input = request_json(&a.fleet.fleet, &a.target, None, &s.user, false);
    if a.ignore_cooldown {
        input["ignore_cooldown"] = json!(true);
    }
    let request = ScaleRequest::from_json(&input).map_err(s.core_error(None))?;
    let fleet = request.fleet.clone();
    let err = s.core_error(Some(&fleet));
    let params = ctx.aws.params(s);
    let table = ctx.aws.fleet_table(s)?;
    let (desired, config, pairs, meta) = tokio::try_join!(
        params.pair_count(&fleet),
        params.config(&fleet),
        table.pairs(&fleet),
        table.meta(&fleet),
    )
    .map_err(&err)?;
    let outcome = plan(
        &request,
        PlanContext {
            config: &config,
            desired,
            pairs: &pairs,
            meta: &meta,
            now: now(),
        },
    )
    .map_err(&err)?;
    let pairs = eligibility(&pairs, &outcome.plan);
    Ok(Outcome::ok(PlanView {
        request,
        outcome,
        pairs,
    }))
}

/// Every pair with whether a scale-in may drain it. Only `active`, unprotected pairs are
/// eligible (the planner's `eligible`); the others say why not.
pub fn eligibility(pairs: &[Pair], plan: &Plan) -> Vec<Eligibility> {
    let eligible: &[pairscale_core::PairId] = match plan {
        Plan::ScaleIn { eligible, .. } => eligible,
        _ => &[],
    };
    pairs
        .iter()
        .map(|p| {
            let is = eligible.contains(&p.id);
            let why = match (p.status, p.protected) {
                (PairStatus::Active, false) if is => "active and unprotected".to_string(),
                (PairStatus::Active, false) => "active and unprotected (not scaling in)".into(),
                (PairStatus::Active, true) => "protected: never removed".into(),
                (PairStatus::Provisioning, _) => "provisioning: still being added".into(),
                (PairStatus::Draining | PairStatus::Drained, _) => {
                    format!("{}: already leaving", p.status.as_str())
                }
                (PairStatus::Failed, _) => "failed: not serving".into(),
                (PairStatus::Warm, _) => "warm: stopped in the pool, taken by a scale-out".into(),
            };
            Eligibility {
                pair_id: p.id.to_string(),
                status: p.status,
                eligible: is,
                why,
            }
        })
        .collect()
}

impl View for PlanView {
    fn json(&self) -> Value {
        json!({"fleet": self.request.fleet, "request": self.request, "outcome": self.outcome,
               "pairs": self.pairs, "changed": false})
    }

    fn table(&self, style: &Style) -> String {
        let o = &self.outcome;
        let mut out = format!(
            "Fleet {}: {} desired, {} active, {} provisioning, {} leaving, {} warm\n",
            style.bold(self.request.fleet.as_str()),
            o.desired,
            o.active,
            o.provisioning,
            o.draining,
            o.warm
        );
        out.push_str(&format!(
            "Request: {} → target {}",
            intent_words(&self.request),
            o.target
        ));
        if o.requested_target != i64::from(o.target) {
            out.push_str(&format!(" (asked for {})", o.requested_target));
        }
        out.push('\n');
        for c in &o.clamps {
            out.push_str(&format!("  limited: {c}\n"));
        }
        match &o.plan {
            Plan::ScaleOut {
                from,
                to,
                add,
                from_pool,
                refill,
            } => {
                out.push_str(&format!(
                    "Plan: {} {from} → {to}: add {add} pair(s) (new ids are given at the run's commit)\n",
                    style.bold("scale out")
                ));
                if *from_pool > 0 {
                    out.push_str(&format!(
                        "  {from_pool} of them from the warm pool: their stopped nodes are started\n"
                    ));
                }
                if *refill > 0 {
                    out.push_str(&format!(
                        "  Then {refill} warm pair(s) refill the pool, once the new pairs take calls\n"
                    ));
                }
            }
            Plan::ScaleIn {
                from,
                to,
                remove,
                race_spares,
                eligible,
            } => {
                out.push_str(&format!(
                    "Plan: {} {from} → {to}: remove {remove} pair(s), racing {race_spares} spare(s)\n",
                    style.bold("scale in")
                ));
                out.push_str(&format!(
                    "  The drain quiesces the {} eligible pair(s) expected to empty first (youngest and fewest calls, read live when the run starts) and removes the first {remove} to reach zero calls{}.\n",
                    (remove + race_spares).min(eligible.len() as u32),
                    if *race_spares == 0 { "" } else { "; a spare that loses goes back into rotation" }
                ));
            }
            Plan::NoOp { reason, detail } => {
                let reason = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "Plan: {} ({reason}): {detail}\n",
                    style.bold("no change")
                ));
            }
        }
        if matches!(o.plan, Plan::ScaleIn { .. }) && !self.pairs.is_empty() {
            let mut t = Table::new(&["PAIR", "STATUS", "ELIGIBLE", "WHY"]);
            for p in &self.pairs {
                t.row(vec![
                    p.pair_id.clone(),
                    style.status(p.status.as_str()),
                    if p.eligible {
                        style.good("yes")
                    } else {
                        "no".into()
                    },
                    p.why.clone(),
                ]);
            }
            out.push('\n');
            out.push_str(&t.render(style));
        }
        out.push_str(&style.dim("Nothing was changed.\n"));
        out
    }
}

fn intent_words(r: &ScaleRequest) -> String {
    match &r.intent {
        pairscale_core::request::Intent::Target { pair_count } => format!("to {pair_count}"),
        pairscale_core::request::Intent::Delta { delta } => format!("by {delta:+}"),
        pairscale_core::request::Intent::Alarm { alarm_name, state } => {
            format!("alarm {alarm_name} {state}")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pairscale_core::fleet::{FleetConfig, FleetMeta};
    use pairscale_core::{PairId, Timestamp};

    fn pair(seq: u32, status: PairStatus, protected: bool) -> Pair {
        let mut p = Pair::new(PairId::new(seq).unwrap(), status, Timestamp(0));
        p.protected = protected;
        p
    }

    fn config() -> FleetConfig {
        serde_json::from_value(json!({
            "min_pairs": 1, "max_pairs": 10, "max_step": 3,
            "cooldown_out_seconds": 0, "cooldown_in_seconds": 0,
            "drain": {"deadline_seconds": 600, "policy": "wait", "hard_max_seconds": 1200},
            "race_spares": 1
        }))
        .unwrap()
    }

    fn planned(request: Value, pairs: &[Pair]) -> PlanView {
        planned_with(&config(), request, pairs)
    }

    fn planned_with(cfg: &FleetConfig, request: Value, pairs: &[Pair]) -> PlanView {
        let request = ScaleRequest::from_json(&request).unwrap();
        let outcome = plan(
            &request,
            PlanContext {
                config: cfg,
                desired: 3,
                pairs,
                meta: &FleetMeta::default(),
                now: Timestamp(1),
            },
        )
        .unwrap();
        PlanView {
            pairs: eligibility(pairs, &outcome.plan),
            request,
            outcome,
        }
    }

    #[test]
    fn a_scale_in_plan_says_which_pairs_may_go_and_why_not_the_others() {
        let pairs = [
            pair(1, PairStatus::Active, false),
            pair(2, PairStatus::Active, true),
            pair(3, PairStatus::Active, false),
            pair(4, PairStatus::Draining, false),
        ];
        let v = planned(json!({"fleet": "voice", "delta": -1}), &pairs);
        let t = v.table(&Style::default());
        assert!(
            t.starts_with("Fleet voice: 3 desired, 3 active, 0 provisioning, 1 leaving, 0 warm\n"),
            "{t}"
        );
        assert!(t.contains("Request: by -1 → target 2\n"), "{t}");
        assert!(
            t.contains("Plan: scale in 3 → 2: remove 1 pair(s), racing 1 spare(s)\n"),
            "{t}"
        );
        assert!(
            t.contains("pair-0001  active    yes       active and unprotected\n"),
            "{t}"
        );
        assert!(
            t.contains("pair-0002  active    no        protected: never removed\n"),
            "{t}"
        );
        assert!(
            t.contains("pair-0004  draining  no        draining: already leaving\n"),
            "{t}"
        );
        assert!(t.ends_with("Nothing was changed.\n"), "{t}");
        let j = v.json();
        assert_eq!(j["outcome"]["plan"]["action"], "scale_in");
        assert_eq!(
            j["outcome"]["plan"]["eligible"],
            json!(["pair-0001", "pair-0003"])
        );
        assert_eq!(j["pairs"][1]["eligible"], false);
        assert_eq!(j["changed"], false);
    }

    #[test]
    fn a_scale_out_plan_says_what_the_warm_pool_gives_and_what_refills_it() {
        let pairs = [
            pair(1, PairStatus::Active, false),
            pair(2, PairStatus::Active, false),
            pair(3, PairStatus::Active, false),
            pair(4, PairStatus::Warm, false),
        ];
        let mut cfg = config();
        cfg.image_id = Some("ami-0123abcd".into());
        cfg.warm_pool = 1;
        let v = planned_with(&cfg, json!({"fleet": "voice", "delta": 2}), &pairs);
        let t = v.table(&Style::default());
        assert!(t.contains("0 leaving, 1 warm\n"), "{t}");
        assert!(t.contains("Plan: scale out 3 → 5: add 2 pair(s)"), "{t}");
        assert!(
            t.contains("  1 of them from the warm pool: their stopped nodes are started\n"),
            "{t}"
        );
        assert!(
            t.contains("  Then 1 warm pair(s) refill the pool, once the new pairs take calls\n"),
            "{t}"
        );
        let j = v.json();
        assert_eq!(j["outcome"]["plan"]["from_pool"], 1);
        assert_eq!(j["outcome"]["plan"]["refill"], 1);
        assert_eq!(
            j["pairs"][3]["why"],
            "warm: stopped in the pool, taken by a scale-out"
        );
    }

    #[test]
    fn clamps_and_no_ops_are_explained() {
        let pairs = [pair(1, PairStatus::Active, false)];
        let v = planned(json!({"fleet": "voice", "target_pair_count": 50}), &pairs);
        let t = v.table(&Style::default());
        assert!(
            t.contains("Request: to 50 → target 4 (asked for 50)\n"),
            "{t}"
        );
        assert!(t.contains("  limited: lowered to max_pairs 10\n"), "{t}");
        assert!(t.contains("Plan: scale out 1 → 4: add 3 pair(s)"), "{t}");
        assert!(!t.contains("ELIGIBLE"), "{t}");
        let v = planned(json!({"fleet": "voice", "target_pair_count": 1}), &pairs);
        let t = v.table(&Style::default());
        assert!(
            t.contains("Plan: no change (at_target): already at 1 pair(s)\n"),
            "{t}"
        );
    }
}
