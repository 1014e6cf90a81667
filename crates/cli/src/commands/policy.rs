//! `pairscale policy explain|suspend|resume`: the policy function's own `explain` (the same
//! code as every evaluation, which never acts or writes in that mode), and its switch.

use super::{Ctx, Outcome};
use crate::args::{ExplainArgs, FleetArg, SuspendArgs};
use crate::error::Result;
use crate::render::{Style, View};
use crate::settings::fleet;
use serde_json::{json, Value};

/// What the policy function answered, shown as it is for `--output json`.
#[derive(Debug, Clone)]
pub struct ExplainView(pub Value);

fn count(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

impl View for ExplainView {
    fn json(&self) -> Value {
        self.0.clone()
    }

    fn table(&self, style: &Style) -> String {
        let v = &self.0;
        let d = &v["decision"];
        let mut out = String::new();
        let at = v["at"]
            .as_i64()
            .map(|t| pairscale_core::Timestamp(t).rfc3339())
            .unwrap_or_default();
        out.push_str(&format!(
            "{} {} at {at}\n\n",
            style.bold("Policy of fleet"),
            v["fleet"].as_str().unwrap_or("?")
        ));
        out.push_str(&style.bold("Inputs\n"));
        out.push_str(&format!("  current pairs     {}\n", count(&d["current"])));
        out.push_str(&format!(
            "  load (channels)   {} from {} fresh sample(s) of {} active pair(s)\n",
            count(&v["load_channels"]),
            count(&v["fresh_samples"]),
            count(&v["active_pairs"])
        ));
        let alarms = v["alarms_in_alarm"].as_array().cloned().unwrap_or_default();
        out.push_str(&format!(
            "  alarms in ALARM   {}\n",
            if alarms.is_empty() {
                "none".to_string()
            } else {
                alarms
                    .iter()
                    .map(|a| {
                        format!(
                            "{} ({:+})",
                            a[0].as_str().unwrap_or("?"),
                            a[1].as_i64().unwrap_or(0)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
        let flight = &v["in_flight"];
        out.push_str(&format!(
            "  run in flight     {}\n",
            match (flight["lock_held"].as_bool(), flight["running"].as_bool()) {
                (Some(true), _) => format!(
                    "yes: the lock is held by {}",
                    flight["lock_holder"].as_str().unwrap_or("?")
                ),
                (_, Some(true)) => "yes: an execution is running".into(),
                _ => "no".into(),
            }
        ));
        if let Some(s) = v["suspended"].as_object() {
            out.push_str(&format!(
                "  suspended         {} by {}: {}\n",
                style.warn("yes"),
                s.get("by").and_then(Value::as_str).unwrap_or("?"),
                s.get("reason").and_then(Value::as_str).unwrap_or("?")
            ));
        } else if v["suspended_by_config"] == json!(true) {
            out.push_str(&format!(
                "  suspended         {} (fleet_config.policy.suspended)\n",
                style.warn("yes")
            ));
        }
        out.push_str(&format!(
            "  time to capacity  {}\n",
            v["time_to_capacity_ms"]
                .as_i64()
                .map(crate::render::duration)
                .unwrap_or_else(|| "-".into())
        ));
        out.push_str(&style.bold("\nRules\n"));
        out.push_str(&format!("  tracking          {}\n", count(&d["tracking"])));
        out.push_str(&format!(
            "  stabilised        {}\n",
            count(&d["stabilized"])
        ));
        out.push_str(&format!(
            "  schedule floor    {}\n",
            d["schedule"]
                .as_array()
                .map(|s| format!("{} ({})", count(&s[1]), s[0].as_str().unwrap_or("?")))
                .unwrap_or_else(|| "-".into())
        ));
        for r in d["reasons"].as_array().into_iter().flatten() {
            out.push_str(&format!("  - {}\n", r.as_str().unwrap_or("?")));
        }
        let act = d["act"] == json!(true);
        out.push_str(&format!(
            "\n{} {} -> {}: {}\n",
            style.bold("Decision"),
            count(&d["current"]),
            count(&d["desired"]),
            if act {
                style.warn("an evaluation now would start a run (explain never does)")
            } else {
                style.good("no run")
            }
        ));
        out
    }
}

/// The policy's record after a suspend or resume.
#[derive(Debug, Clone)]
pub struct SwitchView(pub Value);

impl View for SwitchView {
    fn json(&self) -> Value {
        self.0.clone()
    }

    fn table(&self, style: &Style) -> String {
        let fleet = self.0["fleet"].as_str().unwrap_or("?");
        match self.0["state"]["suspended"].as_object() {
            Some(s) => format!(
                "{} the policy of fleet {fleet}: it decides and starts no run until `pairscale policy resume --fleet {fleet}` ({}: {}).\n",
                style.warn("Suspended"),
                s.get("by").and_then(Value::as_str).unwrap_or("?"),
                s.get("reason").and_then(Value::as_str).unwrap_or("?")
            ),
            None => format!(
                "{} the policy of fleet {fleet}: it starts runs again from its next evaluation.\n",
                style.good("Resumed")
            ),
        }
    }
}

pub async fn explain(ctx: &Ctx, a: &ExplainArgs) -> Result<Outcome> {
    let s = &ctx.settings;
    let fleet = fleet(s, &a.fleet.fleet)?;
    let mut input = json!({"action": "explain", "fleet": fleet.as_str()});
    if let Some(at) = &a.at {
        input["time"] = json!(at);
    }
    let out = ctx.invoke(s.policy_function()?, &input, &fleet).await?;
    Ok(Outcome::ok(ExplainView(out)))
}

pub async fn suspend(ctx: &Ctx, a: &SuspendArgs) -> Result<Outcome> {
    let s = &ctx.settings;
    let fleet = fleet(s, &a.fleet.fleet)?;
    let input =
        json!({"action": "suspend", "fleet": fleet.as_str(), "by": s.owner(), "reason": a.reason});
    let out = ctx.invoke(s.policy_function()?, &input, &fleet).await?;
    Ok(Outcome::ok(SwitchView(out)))
}

pub async fn resume(ctx: &Ctx, a: &FleetArg) -> Result<Outcome> {
    let s = &ctx.settings;
    let fleet = fleet(s, &a.fleet)?;
    let input = json!({"action": "resume", "fleet": fleet.as_str(), "by": s.owner()});
    let out = ctx.invoke(s.policy_function()?, &input, &fleet).await?;
    Ok(Outcome::ok(SwitchView(out)))
}
