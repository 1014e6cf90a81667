//! What Terraform writes as the fleet configuration (rendered from the example root by
//! tests/checks/62-terraform-contract.sh, which fails when this fixture is stale) is a valid
//! FleetConfig as the handlers read it.
#![allow(clippy::unwrap_used)]

use pairscale_core::{DrainPolicy, FleetConfig, FleetName};

#[test]
fn the_configuration_terraform_writes_is_read_by_the_handlers() {
    let raw = include_str!("../../../tests/fixtures/fleet_config.terraform.json");
    let fleet = FleetName::parse("example").unwrap();
    let cfg = FleetConfig::from_json(&fleet, raw).unwrap_or_else(|e| panic!("{e}\n{raw}"));
    let v: serde_json::Value = serde_json::from_str(raw).unwrap();
    assert_eq!(u64::from(cfg.min_pairs), v["min_pairs"].as_u64().unwrap());
    assert_eq!(cfg.drain.policy, DrainPolicy::Wait);
    assert!(
        !cfg.alarm_steps.is_empty(),
        "the module's alarms are mapped"
    );
}
