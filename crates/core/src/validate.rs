//! Inventory validation: the fleet state held against what really runs.
//!
//! Counting is not enough: three counts can match while the wrong pairs exist. Each pair is
//! checked by id against the EC2 instances and ECS services tagged with it.

use crate::fleet::{Pair, PairStatus};
use crate::ids::PairId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An EC2 instance tagged `pairscale:fleet` and `pairscale:role=freeswitch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub instance_id: String,
    /// The raw `pairscale:pair-id` tag, if any.
    pub pair_tag: Option<String>,
    pub state: String,
    pub private_ip: Option<String>,
}

/// An ECS service tagged `pairscale:fleet` and `pairscale:pair-id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub service_arn: String,
    pub service_name: String,
    pub pair_tag: Option<String>,
    pub status: String,
    /// The tasks the service asks for and those running now (DescribeServices'
    /// `desiredCount` and `runningCount`).
    #[serde(default)]
    pub desired_count: i32,
    #[serde(default)]
    pub running_count: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventorySnapshot {
    pub instances: Vec<InstanceInfo>,
    pub services: Vec<ServiceInfo>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    Ok,
    FreeswitchMissing,
    EslServiceMissing,
    /// An instance or service that carries a pair id with no record, or none at all.
    OrphanInstance,
    OrphanService,
    /// More than one instance or service for one pair.
    Duplicate,
    /// A record still provisioning (an earlier run did not finish).
    InFlight,
    /// Infrastructure is still running for a pair recorded as failed.
    FailedButRunning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PairReport {
    /// The pair id, or the raw tag value for an orphan whose tag is not a pair id.
    pub pair_id: String,
    pub status: Option<PairStatus>,
    pub findings: Vec<Finding>,
    pub instance_ids: Vec<String>,
    pub service_arns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ValidationReport {
    /// True only when every pair is `ok`, there are no orphans, and the counts agree.
    pub valid: bool,
    pub desired_count: u32,
    /// Records that should be serving (active) plus those leaving (draining, drained).
    pub live_records: u32,
    pub active_records: u32,
    pub instances: u32,
    pub services: u32,
    pub pairs: Vec<PairReport>,
    /// A one-line summary for an operator.
    pub summary: String,
}

pub fn validate(desired: u32, pairs: &[Pair], inv: &InventorySnapshot) -> ValidationReport {
    let mut instances: BTreeMap<String, Vec<&InstanceInfo>> = BTreeMap::new();
    for i in &inv.instances {
        instances
            .entry(tag_key(&i.pair_tag, &i.instance_id))
            .or_default()
            .push(i);
    }
    let mut services: BTreeMap<String, Vec<&ServiceInfo>> = BTreeMap::new();
    for s in &inv.services {
        services
            .entry(tag_key(&s.pair_tag, &s.service_arn))
            .or_default()
            .push(s);
    }

    let mut reports = Vec::new();
    for p in pairs {
        let key = p.id.to_string();
        let inst = instances.remove(&key).unwrap_or_default();
        let svcs = services.remove(&key).unwrap_or_default();
        let mut findings = Vec::new();
        if p.status.expects_infrastructure() {
            if inst.is_empty() {
                findings.push(Finding::FreeswitchMissing);
            }
            if svcs.is_empty() {
                findings.push(Finding::EslServiceMissing);
            }
        } else if p.status == PairStatus::Provisioning {
            findings.push(Finding::InFlight);
        } else if p.status == PairStatus::Failed && (!inst.is_empty() || !svcs.is_empty()) {
            findings.push(Finding::FailedButRunning);
        }
        if inst.len() > 1 || svcs.len() > 1 {
            findings.push(Finding::Duplicate);
        }
        if findings.is_empty() {
            findings.push(Finding::Ok);
        }
        reports.push(PairReport {
            pair_id: key,
            status: Some(p.status),
            findings,
            instance_ids: inst.iter().map(|i| i.instance_id.clone()).collect(),
            service_arns: svcs.iter().map(|s| s.service_arn.clone()).collect(),
        });
    }
    // Whatever is left has no record.
    let orphan_keys: std::collections::BTreeSet<String> =
        instances.keys().chain(services.keys()).cloned().collect();
    for key in orphan_keys {
        let inst = instances.remove(&key).unwrap_or_default();
        let svcs = services.remove(&key).unwrap_or_default();
        let mut findings = Vec::new();
        if !inst.is_empty() {
            findings.push(Finding::OrphanInstance);
        }
        if !svcs.is_empty() {
            findings.push(Finding::OrphanService);
        }
        if inst.len() > 1 || svcs.len() > 1 {
            findings.push(Finding::Duplicate);
        }
        reports.push(PairReport {
            pair_id: key,
            status: None,
            findings,
            instance_ids: inst.iter().map(|i| i.instance_id.clone()).collect(),
            service_arns: svcs.iter().map(|s| s.service_arn.clone()).collect(),
        });
    }

    let active = pairs
        .iter()
        .filter(|p| p.status == PairStatus::Active)
        .count() as u32;
    let live = pairs
        .iter()
        .filter(|p| p.status.expects_infrastructure())
        .count() as u32;
    let bad: Vec<&PairReport> = reports
        .iter()
        .filter(|r| r.findings != [Finding::Ok])
        .collect();
    let count_ok = desired == active;
    let valid = bad.is_empty() && count_ok;
    let summary = if valid {
        format!("{desired} pair(s), all present")
    } else {
        let mut parts = Vec::new();
        if !count_ok {
            parts.push(format!(
                "desired count {desired} but {active} active record(s)"
            ));
        }
        for r in bad.iter().take(10) {
            let names: Vec<String> = r
                .findings
                .iter()
                .map(|f| {
                    serde_json::to_value(f)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default()
                })
                .collect();
            parts.push(format!("{}: {}", r.pair_id, names.join("+")));
        }
        if bad.len() > 10 {
            parts.push(format!("and {} more", bad.len() - 10));
        }
        parts.join("; ")
    };
    ValidationReport {
        valid,
        desired_count: desired,
        live_records: live,
        active_records: active,
        instances: inv.instances.len() as u32,
        services: inv.services.len() as u32,
        pairs: reports,
        summary,
    }
}

/// Group by the canonical pair id when the tag is one; otherwise by the raw tag (or, with no
/// tag, by the resource itself, so two untagged resources are two orphans, not a duplicate).
fn tag_key(tag: &Option<String>, resource: &str) -> String {
    match tag {
        Some(t) => PairId::parse(t)
            .map(|p| p.to_string())
            .unwrap_or_else(|_| t.clone()),
        None => format!("untagged:{resource}"),
    }
}

/// `host:port`, with an IPv6 host in brackets.
pub fn host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// After a Terraform build: fill each new pair's record from what now runs. Every pair in
/// `wanted` must have exactly one pending or running FreeSWITCH instance with a private IP,
/// and an active ESL-client service whose task runs (as many running as desired, and at
/// least one: the build waited for the service's steady state, so a task that is not
/// running did not start); anything else is `Pairscale.Drift` naming every pair that is not
/// right, so the run is compensated instead of enabling half a pair.
pub fn discover(
    fleet: &crate::ids::FleetName,
    wanted: &[PairId],
    inv: &InventorySnapshot,
    esl_port: u16,
) -> crate::error::Result<Vec<crate::state::PairUpdate>> {
    let mut updates = Vec::with_capacity(wanted.len());
    let mut problems = Vec::new();
    for id in wanted {
        let tag = id.to_string();
        let live: Vec<&InstanceInfo> = inv
            .instances
            .iter()
            .filter(|i| i.pair_tag.as_deref() == Some(tag.as_str()))
            .filter(|i| i.state == "pending" || i.state == "running")
            .collect();
        let services: Vec<&ServiceInfo> = inv
            .services
            .iter()
            .filter(|s| s.pair_tag.as_deref() == Some(tag.as_str()) && s.status == "ACTIVE")
            .collect();
        let instance = match live.as_slice() {
            [one] => *one,
            [] => {
                problems.push(format!("{id}: no FreeSWITCH instance"));
                continue;
            }
            many => {
                problems.push(format!("{id}: {} FreeSWITCH instances", many.len()));
                continue;
            }
        };
        let Some(ip) = instance.private_ip.clone() else {
            problems.push(format!(
                "{id}: instance {} has no private IP yet",
                instance.instance_id
            ));
            continue;
        };
        let service = match services.as_slice() {
            [one] => *one,
            [] => {
                problems.push(format!("{id}: no ESL client service"));
                continue;
            }
            many => {
                problems.push(format!("{id}: {} ESL client services", many.len()));
                continue;
            }
        };
        if service.running_count < service.desired_count.max(1) {
            problems.push(format!(
                "{id}: ESL client service {} has no running task ({} running of {} desired)",
                service.service_name, service.running_count, service.desired_count
            ));
            continue;
        }
        let mut u = crate::state::PairUpdate::new(*id);
        u.instance_id = Some(instance.instance_id.clone());
        u.esl_endpoint = Some(host_port(&ip, esl_port));
        u.private_ip = Some(ip);
        u.ecs_service = Some(service.service_name.clone());
        updates.push(u);
    }
    if problems.is_empty() {
        Ok(updates)
    } else {
        Err(crate::error::Error::Drift {
            fleet: fleet.to_string(),
            summary: format!(
                "new pairs are not all there after provisioning: {}",
                problems.join("; ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Timestamp;

    fn pair(n: u32, s: PairStatus) -> Pair {
        Pair::new(PairId::new(n).expect("id"), s, Timestamp(0))
    }
    fn inst(id: &str, tag: Option<&str>) -> InstanceInfo {
        InstanceInfo {
            instance_id: id.into(),
            pair_tag: tag.map(Into::into),
            state: "running".into(),
            private_ip: None,
        }
    }
    fn svc(name: &str, tag: Option<&str>) -> ServiceInfo {
        ServiceInfo {
            service_arn: format!("arn:svc/{name}"),
            service_name: name.into(),
            pair_tag: tag.map(Into::into),
            status: "ACTIVE".into(),
            desired_count: 1,
            running_count: 1,
        }
    }

    fn findings(r: &ValidationReport, id: &str) -> Vec<Finding> {
        r.pairs
            .iter()
            .find(|p| p.pair_id == id)
            .map(|p| p.findings.clone())
            .unwrap_or_default()
    }

    #[test]
    fn a_matching_fleet_is_valid() {
        let pairs = [pair(1, PairStatus::Active), pair(2, PairStatus::Active)];
        let inv = InventorySnapshot {
            instances: vec![
                inst("i-1", Some("pair-0001")),
                inst("i-2", Some("pair-0002")),
            ],
            services: vec![svc("a", Some("pair-0001")), svc("b", Some("pair-0002"))],
        };
        let r = validate(2, &pairs, &inv);
        assert!(r.valid, "{}", r.summary);
        assert_eq!((r.instances, r.services, r.active_records), (2, 2, 2));
    }

    #[test]
    fn matching_counts_with_the_wrong_pairs_is_drift() {
        // Two records, two instances, two services, but pair-0002's instance is gone and an
        // untracked pair-0009 runs instead: the published count-only check would pass this.
        let pairs = [pair(1, PairStatus::Active), pair(2, PairStatus::Active)];
        let inv = InventorySnapshot {
            instances: vec![
                inst("i-1", Some("pair-0001")),
                inst("i-9", Some("pair-0009")),
            ],
            services: vec![svc("a", Some("pair-0001")), svc("b", Some("pair-0002"))],
        };
        let r = validate(2, &pairs, &inv);
        assert!(!r.valid);
        assert_eq!(findings(&r, "pair-0002"), vec![Finding::FreeswitchMissing]);
        assert_eq!(findings(&r, "pair-0009"), vec![Finding::OrphanInstance]);
        assert!(r.summary.contains("pair-0009"), "{}", r.summary);
    }

    #[test]
    fn duplicates_missing_services_and_untagged_resources_are_reported() {
        let pairs = [
            pair(1, PairStatus::Active),
            pair(2, PairStatus::Draining),
            pair(3, PairStatus::Provisioning),
        ];
        let inv = InventorySnapshot {
            instances: vec![
                inst("i-1", Some("pair-0001")),
                inst("i-1b", Some("pair-0001")),
                inst("i-2", Some("pair-0002")),
                inst("i-x", None),
            ],
            services: vec![svc("a", Some("pair-0001")), svc("z", Some("garbage"))],
        };
        let r = validate(1, &pairs, &inv);
        assert!(!r.valid);
        assert_eq!(findings(&r, "pair-0001"), vec![Finding::Duplicate]);
        assert_eq!(findings(&r, "pair-0002"), vec![Finding::EslServiceMissing]);
        assert_eq!(findings(&r, "pair-0003"), vec![Finding::InFlight]);
        assert_eq!(findings(&r, "untagged:i-x"), vec![Finding::OrphanInstance]);
        assert_eq!(findings(&r, "garbage"), vec![Finding::OrphanService]);
    }

    #[test]
    fn a_count_mismatch_alone_makes_the_fleet_invalid() {
        let pairs = [pair(1, PairStatus::Active)];
        let inv = InventorySnapshot {
            instances: vec![inst("i-1", Some("pair-0001"))],
            services: vec![svc("a", Some("pair-0001"))],
        };
        let r = validate(3, &pairs, &inv);
        assert!(!r.valid);
        assert!(r.summary.contains("desired count 3"), "{}", r.summary);
    }
}

#[cfg(test)]
mod discover_tests {
    use super::*;
    use crate::ids::FleetName;

    fn inst(id: &str, pair: &str, state: &str, ip: Option<&str>) -> InstanceInfo {
        InstanceInfo {
            instance_id: id.into(),
            pair_tag: Some(pair.into()),
            state: state.into(),
            private_ip: ip.map(str::to_string),
        }
    }

    fn svc(name: &str, pair: &str, status: &str) -> ServiceInfo {
        ServiceInfo {
            service_arn: format!("arn:aws:ecs:us-east-1:1:service/c/{name}"),
            service_name: name.into(),
            pair_tag: Some(pair.into()),
            status: status.into(),
            desired_count: 1,
            running_count: 1,
        }
    }

    fn pid(n: u32) -> PairId {
        PairId::parse(&format!("pair-{n:04}")).expect("valid")
    }

    #[test]
    fn fills_every_field_from_the_inventory() {
        let fleet = FleetName::parse("voice").expect("valid");
        let inv = InventorySnapshot {
            instances: vec![
                inst("i-1", "pair-0003", "running", Some("10.0.1.3")),
                inst("i-old", "pair-0003", "terminated", Some("10.0.1.99")),
                inst("i-2", "pair-0004", "pending", Some("fd00::4")),
            ],
            services: vec![
                svc("voice-pair-0003-esl", "pair-0003", "ACTIVE"),
                svc("voice-pair-0004-esl", "pair-0004", "ACTIVE"),
            ],
        };
        let ups = discover(&fleet, &[pid(3), pid(4)], &inv, 8021).expect("all there");
        assert_eq!(ups.len(), 2);
        assert_eq!(ups[0].instance_id.as_deref(), Some("i-1"));
        assert_eq!(ups[0].esl_endpoint.as_deref(), Some("10.0.1.3:8021"));
        assert_eq!(ups[0].ecs_service.as_deref(), Some("voice-pair-0003-esl"));
        assert_eq!(ups[1].esl_endpoint.as_deref(), Some("[fd00::4]:8021"));
        assert_eq!(ups[1].private_ip.as_deref(), Some("fd00::4"));
    }

    #[test]
    fn names_every_pair_that_is_not_right() {
        let fleet = FleetName::parse("voice").expect("valid");
        let inv = InventorySnapshot {
            instances: vec![
                inst("i-1", "pair-0003", "running", Some("10.0.1.3")),
                inst("i-2", "pair-0005", "running", None),
                inst("i-3", "pair-0006", "running", Some("10.0.1.6")),
                inst("i-4", "pair-0006", "running", Some("10.0.1.7")),
            ],
            services: vec![
                svc("a", "pair-0005", "ACTIVE"),
                svc("b", "pair-0003", "DRAINING"),
            ],
        };
        let e = discover(&fleet, &[pid(3), pid(4), pid(5), pid(6)], &inv, 8021).expect_err("drift");
        assert_eq!(e.name(), crate::ErrorName::Drift);
        let m = e.to_string();
        for want in [
            "pair-0003: no ESL client service",
            "pair-0004: no FreeSWITCH instance",
            "pair-0005: instance i-2 has no private IP",
            "pair-0006: 2 FreeSWITCH instances",
        ] {
            assert!(m.contains(want), "{want} not in {m}");
        }
    }

    #[test]
    fn a_service_whose_task_does_not_run_is_named_and_fills_nothing() {
        let fleet = FleetName::parse("voice").expect("valid");
        let mut stopped = svc("voice-pair-0004-esl", "pair-0004", "ACTIVE");
        stopped.running_count = 0;
        // Asked for none at all: still no ESL client for the node.
        let mut none_asked = svc("voice-pair-0005-esl", "pair-0005", "ACTIVE");
        none_asked.desired_count = 0;
        none_asked.running_count = 0;
        let inv = InventorySnapshot {
            instances: vec![
                inst("i-3", "pair-0003", "running", Some("10.0.1.3")),
                inst("i-4", "pair-0004", "running", Some("10.0.1.4")),
                inst("i-5", "pair-0005", "running", Some("10.0.1.5")),
            ],
            services: vec![
                svc("voice-pair-0003-esl", "pair-0003", "ACTIVE"),
                stopped,
                none_asked,
            ],
        };
        let e = discover(&fleet, &[pid(3), pid(4), pid(5)], &inv, 8021).expect_err("drift");
        assert_eq!(e.name(), crate::ErrorName::Drift);
        let m = e.to_string();
        for want in [
            "pair-0004: ESL client service voice-pair-0004-esl has no running task (0 running of 1 desired)",
            "pair-0005: ESL client service voice-pair-0005-esl has no running task (0 running of 0 desired)",
        ] {
            assert!(m.contains(want), "{want} not in {m}");
        }
        assert!(
            !m.contains("pair-0003"),
            "the pair that runs is not named: {m}"
        );
    }
}
