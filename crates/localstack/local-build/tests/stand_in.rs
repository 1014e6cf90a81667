//! The stand-in Terraform build against the emulator, where a build stopped half-way left
//! less than a whole pair: it must still converge, as Terraform would from its state.
#![allow(clippy::unwrap_used)]

use pairscale_core::build::env as build_env;
use pairscale_local_build::{vars, LocalBuildEnv};
use std::collections::BTreeMap;

fn build_env(fleet: &str, state_dir: &std::path::Path, cluster: &str) -> LocalBuildEnv {
    let vars: BTreeMap<&str, String> = [
        (vars::KIND, "terraform".to_string()),
        (build_env::FLEET, fleet.to_string()),
        (build_env::TFVARS_JSON, r#"{"pairs": {}}"#.to_string()),
        (vars::SUBNET, "subnet-local".to_string()),
        (vars::CLUSTER, cluster.to_string()),
        (vars::STATE_DIR, state_dir.display().to_string()),
        (vars::FSSIM_BIN, "/nonexistent/pairscale-fssim".to_string()),
    ]
    .into_iter()
    .collect();
    LocalBuildEnv::from_lookup(|k| vars.get(k).cloned()).unwrap()
}

/// A scale-out build stopped between RunInstances and CreateService leaves an instance and no
/// service. The undo that follows must destroy the instance; a destroy that insisted on the
/// service failed, and every later undo with it, leaving the instance with no record.
#[tokio::test]
async fn an_instance_whose_service_was_never_made_is_destroyed() {
    let sdk = pairscale_testkit::sdk().await;
    let fleet = pairscale_testkit::unique_fleet();
    let cluster = pairscale_testkit::unique("cluster");
    let half_made = pairscale_testkit::run_instance(&sdk, &fleet, Some("pair-0028")).await;
    let state_dir = std::env::temp_dir().join(pairscale_testkit::unique("stand-in"));
    let env = build_env(&fleet, &state_dir, &cluster);

    let outcome = pairscale_local_build::run(env).await;
    let _ = std::fs::remove_dir_all(&state_dir);
    outcome.unwrap();
    let left: Vec<String> =
        pairscale_local_build::nodes::instances(&aws_sdk_ec2::Client::new(&sdk), &fleet)
            .await
            .unwrap()
            .into_values()
            .map(|(id, _)| id)
            .collect();
    assert!(
        !left.contains(&half_made),
        "the half-made pair's instance {half_made} is still running: {left:?}"
    );
}
