//! Helpers for tests that talk to the local AWS emulator and the router started by
//! `./tests/run`: SDK configuration from the standard environment, unique names so tests run
//! in parallel without resetting each other, and seeding of tables, parameters, instances,
//! services and the router's functions and projects.
//!
//! The functions at the crate's root are for tests: they panic, naming what failed, since a
//! panic is the test's failure. Under them, [`emulator`] and [`control`] return a
//! [`KitError`] instead, for callers that are not tests (the stack harness, the sandbox).
//!
//! Layout:
//! - [`emulator`]: the emulator's SDK configuration, the fleet table, a fleet's parameters.
//! - [`control`]: the router's control API.
//! - `error`: [`KitError`].
//! - this file: the panicking helpers for tests, unique names, fixtures.

#![allow(clippy::unwrap_used)]

pub mod control;
pub mod emulator;
mod error;

pub use error::KitError;

use aws_config::SdkConfig;
use serde_json::{json, Value};

/// The SDK configuration for the emulator. Fails loudly when the suite's environment is
/// missing: these tests need the services `./tests/run` starts.
pub async fn sdk() -> SdkConfig {
    emulator::sdk().await.unwrap_or_else(|e| panic!("{e}"))
}

/// A name no other test uses: `prefix-<8 hex>`.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

/// A fleet name no other test uses (fleet names allow a-z, 0-9 and '-').
pub fn unique_fleet() -> String {
    unique("f")
}

/// Create the pairscale table as Terraform does (see [`emulator::create_table`]).
pub async fn create_table(sdk: &SdkConfig, name: &str) {
    emulator::create_table(sdk, name)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A valid fleet configuration, as JSON.
pub fn sample_config() -> Value {
    json!({
        "min_pairs": 1, "max_pairs": 20, "max_step": 3,
        "cooldown_out_seconds": 60, "cooldown_in_seconds": 600,
        "drain": {"deadline_seconds": 600, "policy": "wait", "hard_max_seconds": 3600},
        "race_spares": 1,
        "alarm_steps": {"calls-high": 2, "calls-low": -1}
    })
}

/// Write a fleet's SSM parameters.
pub async fn put_fleet_params(
    sdk: &SdkConfig,
    prefix: &str,
    fleet: &str,
    count: &str,
    config: &Value,
) {
    emulator::put_fleet_params(sdk, prefix, fleet, count, config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Launch one tagged FreeSWITCH instance in the emulator; returns its id.
pub async fn run_instance(sdk: &SdkConfig, fleet: &str, pair_tag: Option<&str>) -> String {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let mut spec = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(Tag::builder().key("pairscale:fleet").value(fleet).build())
        .tags(
            Tag::builder()
                .key("pairscale:role")
                .value("freeswitch")
                .build(),
        );
    if let Some(p) = pair_tag {
        spec = spec.tags(Tag::builder().key("pairscale:pair-id").value(p).build());
    }
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("run instance");
    out.instances()[0].instance_id().unwrap().to_string()
}

/// Create a cluster (idempotent) and one tagged ESL-client service; returns its ARN.
pub async fn create_service(
    sdk: &SdkConfig,
    cluster: &str,
    fleet: &str,
    name: &str,
    pair_tag: Option<&str>,
) -> String {
    use aws_sdk_ecs::types::Tag;
    let ecs = aws_sdk_ecs::Client::new(sdk);
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .expect("cluster");
    let td = ecs
        .register_task_definition()
        .family(format!("{name}-td"))
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("esl-client")
                .image("example/esl-client:1")
                .memory(256)
                .build(),
        )
        .send()
        .await
        .expect("task definition");
    let td_arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap()
        .to_string();
    let mut req = ecs
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(td_arn)
        .desired_count(1)
        .tags(Tag::builder().key("pairscale:fleet").value(fleet).build())
        .tags(
            Tag::builder()
                .key("pairscale:role")
                .value("esl-client")
                .build(),
        );
    if let Some(p) = pair_tag {
        req = req.tags(Tag::builder().key("pairscale:pair-id").value(p).build());
    }
    let out = req.send().await.expect("create service");
    out.service()
        .and_then(|s| s.service_arn())
        .unwrap()
        .to_string()
}

/// The router's control API (`/_router/...`), started by `tests/setup/15-router.sh`.
pub fn router_url() -> String {
    control::url().unwrap_or_else(|e| panic!("{e}"))
}

/// `method /_router/{path}` with a JSON body; panics unless the router answers 2xx.
pub async fn router(method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    control::request(method, path, body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Register a local CodeBuild project whose build runs `command` (argv) in `workdir`.
pub async fn put_codebuild_project(name: &str, command: &[&str], env: Value, workdir: &str) {
    control::put_codebuild_project(name, command, env, workdir)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
