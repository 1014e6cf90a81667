//! `pairscale validate`: the core's drift report over the SSM count, the pair records and the
//! EC2/ECS inventory, as the state function's `validate` action builds it.

use super::{Ctx, Outcome};
use crate::args::FleetArg;
use crate::error::{exit, Result};
use crate::render::{Style, Table, View};
use crate::settings::fleet;
use pairscale_core::ports::Inventory;
use pairscale_core::validate::{validate, Finding, ValidationReport};
use pairscale_core::FleetName;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct ValidateView {
    pub fleet: FleetName,
    pub report: ValidationReport,
}

pub async fn run(ctx: &Ctx, a: &FleetArg) -> Result<Outcome> {
    let s = &ctx.settings;
    let fleet = fleet(s, &a.fleet)?;
    let err = s.core_error(Some(&fleet));
    let params = ctx.aws.params(s);
    let table = ctx.aws.fleet_table(s)?;
    let inventory = ctx.aws.inventory(s)?;
    let (count, pairs, inv) = tokio::try_join!(
        params.pair_count(&fleet),
        table.pairs(&fleet),
        inventory.snapshot(&fleet),
    )
    .map_err(&err)?;
    let report = validate(count, &pairs, &inv);
    let code = if report.valid { exit::OK } else { exit::DRIFT };
    Ok(Outcome {
        view: Box::new(ValidateView { fleet, report }),
        code,
    })
}

fn finding_name(f: &Finding) -> String {
    serde_json::to_value(f)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{f:?}"))
}

impl View for ValidateView {
    fn json(&self) -> Value {
        let mut v = json!(self.report);
        v["fleet"] = json!(self.fleet);
        v
    }

    fn table(&self, style: &Style) -> String {
        let r = &self.report;
        let mut out = format!(
            "Fleet {}: {}\n  desired {}, active records {}, live records {}, instances {}, services {}\n\n",
            style.bold(self.fleet.as_str()),
            if r.valid {
                style.good("valid")
            } else {
                style.bad("drift found")
            },
            r.desired_count,
            r.active_records,
            r.live_records,
            r.instances,
            r.services
        );
        let mut t = Table::new(&["PAIR", "STATUS", "FINDINGS", "INSTANCES", "SERVICES"]);
        for p in &r.pairs {
            let findings: Vec<String> = p
                .findings
                .iter()
                .map(|f| {
                    let n = finding_name(f);
                    if *f == Finding::Ok {
                        style.good(&n)
                    } else {
                        style.bad(&n)
                    }
                })
                .collect();
            let list = |v: &[String]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.iter()
                        .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                }
            };
            t.row(vec![
                p.pair_id.clone(),
                p.status
                    .map(|s| style.status(s.as_str()))
                    .unwrap_or_else(|| "(no record)".into()),
                findings.join(","),
                list(&p.instance_ids),
                list(&p.service_arns),
            ]);
        }
        if t.is_empty() {
            out.push_str("No pairs, no instances, no services.\n");
        } else {
            out.push_str(&t.render(style));
        }
        if !r.valid {
            out.push_str(&format!("\n{}\n", r.summary));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pairscale_core::validate::{InstanceInfo, InventorySnapshot};
    use pairscale_core::{Pair, PairId, PairStatus, Timestamp};

    #[test]
    fn the_drift_report_names_each_pair_and_what_is_wrong() {
        let p1 = Pair::new(PairId::new(1).unwrap(), PairStatus::Active, Timestamp(0));
        let inv = InventorySnapshot {
            instances: vec![InstanceInfo {
                instance_id: "i-0fff".into(),
                pair_tag: Some("pair-0009".into()),
                state: "running".into(),
                private_ip: None,
            }],
            services: vec![],
        };
        let v = ValidateView {
            fleet: FleetName::parse("voice").unwrap(),
            report: validate(1, &[p1], &inv),
        };
        let t = v.table(&Style::default());
        assert!(t.starts_with("Fleet voice: drift found\n"), "{t}");
        assert!(
            t.contains(
                "pair-0001  active       freeswitch_missing,esl_service_missing  -          -\n"
            ),
            "{t}"
        );
        assert!(t.contains("pair-0009  (no record)  orphan_instance"), "{t}");
        let j = v.json();
        assert_eq!(j["valid"], false);
        assert_eq!(j["fleet"], "voice");
        assert_eq!(j["pairs"][1]["findings"], json!(["orphan_instance"]));
    }
}
