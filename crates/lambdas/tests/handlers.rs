//! The lock and state handlers through their JSON contract, against the local emulator.
#![allow(clippy::unwrap_used)]

use pairscale_aws::dynamodb::{DynamoLockStore, FleetTable};
use pairscale_aws::ec2::Instances;
use pairscale_aws::ecs::Services;
use pairscale_aws::fleet_state::{AwsFleetState, AwsInventory};
use pairscale_aws::sfn::Executions;
use pairscale_aws::ssm::FleetParams;
use pairscale_core::ports::SystemClock;
use pairscale_core::ErrorName;
use pairscale_lambdas::handlers::{lock::LockHandler, state::StateHandler};
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::sync::Arc;

const PREFIX: &str = "/pairscale-h";

struct Env {
    lock: LockHandler,
    state: StateHandler,
    fleet: String,
    sdk: aws_config::SdkConfig,
    cluster: String,
}

async fn env() -> Env {
    let sdk = kit::sdk().await;
    let table = kit::unique("handlers");
    kit::create_table(&sdk, &table).await;
    let fleet = kit::unique_fleet();
    kit::put_fleet_params(&sdk, PREFIX, &fleet, "0", &kit::sample_config()).await;
    let cluster = kit::unique("cluster");
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    Env {
        lock: LockHandler {
            locks: Arc::new(DynamoLockStore::new(ddb.clone(), &table)),
            executions: Arc::new(Executions::new(aws_sdk_sfn::Client::new(&sdk))),
            clock: Arc::new(SystemClock),
            default_ttl_secs: 120,
            metrics: pairscale_lambdas::metrics::Metrics::memory("Pairscale").0,
        },
        state: StateHandler {
            state: Arc::new(AwsFleetState {
                params: FleetParams::new(aws_sdk_ssm::Client::new(&sdk), PREFIX),
                table: FleetTable::new(ddb, &table),
            }),
            inventory: Arc::new(AwsInventory {
                instances: Instances::new(aws_sdk_ec2::Client::new(&sdk)),
                services: Services::new(aws_sdk_ecs::Client::new(&sdk), &cluster),
            }),
            clock: Arc::new(SystemClock),
            metrics: pairscale_lambdas::metrics::Metrics::memory("Pairscale").0,
            // The lock function's, above.
            lock_ttl_secs: 120,
        },
        fleet,
        sdk,
        cluster,
    }
}

const EXEC: &str = "arn:aws:states:us-east-1:123456789012:execution:pairscale-scale-out:h-1";

/// The lock for `EXEC`, as `acquire` answers.
async fn acquire(e: &Env) -> Value {
    e.lock
        .handle(json!({"action": "acquire", "fleet": e.fleet, "owner": EXEC}))
        .await
        .unwrap()
}

/// Each input is refused as `InvalidRequest` naming its field.
async fn assert_refused_naming<F, Fut>(handle: F, cases: &[(Value, &str)])
where
    F: Fn(Value) -> Fut,
    Fut: std::future::Future<Output = pairscale_core::Result<Value>>,
{
    for (input, field) in cases {
        let (name, msg) = err_name(handle(input.clone()).await);
        assert_eq!(name, ErrorName::InvalidRequest, "{input}: {msg}");
        assert!(
            msg.contains(field),
            "{input}: '{msg}' does not name {field}"
        );
    }
}

fn err_name(r: pairscale_core::Result<Value>) -> (ErrorName, String) {
    let e = r.unwrap_err();
    (e.name(), e.to_string())
}

#[tokio::test]
async fn a_scale_out_through_the_handlers_leaves_a_valid_fleet() {
    let e = env().await;
    let g = e.lock.handle(json!({"action": "acquire", "fleet": e.fleet, "owner": EXEC, "request": {"fleet": e.fleet, "target_pair_count": 2}})).await.unwrap();
    let token = g["token"].as_u64().unwrap();
    let read = e
        .state
        .handle(json!({"action": "read", "fleet": e.fleet}))
        .await
        .unwrap();
    assert_eq!(read["pair_count"], 0);
    let plan = e.state.handle(json!({"action": "plan", "request": {"fleet": e.fleet, "target_pair_count": 2, "reason": "test"}})).await.unwrap();
    assert_eq!(plan["outcome"]["plan"]["action"], "scale_out");
    assert_eq!(plan["outcome"]["plan"]["add"], 2);
    let mark = e
        .state
        .handle(json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": token, "changes": {"new_pairs": 2}}))
        .await
        .unwrap();
    let ids: Vec<String> = mark["new_pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    // "Provision" them in the emulator, as the Terraform build would.
    for id in &ids {
        kit::run_instance(&e.sdk, &e.fleet, Some(id)).await;
        kit::create_service(&e.sdk, &e.cluster, &e.fleet, &kit::unique("esl"), Some(id)).await;
    }
    // Discover fills the records from what now runs and hands back drain nodes.
    let found = e
        .state
        .handle(json!({"action": "discover", "fleet": e.fleet, "owner": EXEC, "token": token, "pair_ids": ids}))
        .await
        .unwrap();
    let nodes = found["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{found}");
    for (n, p) in nodes.iter().zip(found["pairs"].as_array().unwrap()) {
        let ip = p["private_ip"].as_str().unwrap();
        assert!(p["instance_id"].as_str().unwrap().starts_with("i-"), "{p}");
        assert_eq!(n["esl_endpoint"], format!("{ip}:8021"), "{n}");
        assert_eq!(n["sip_uri"], format!("sip:{ip}:5060"), "{n}");
        assert_eq!(n["set_id"], 1);
    }
    let updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"pair_id": id, "status": "active"}))
        .collect();
    e.state
        .handle(
            json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": token,
                       "changes": {"pair_count": 2, "updates": updates, "scaled": "out"}}),
        )
        .await
        .unwrap();
    let report = e
        .state
        .handle(json!({"action": "validate", "fleet": e.fleet}))
        .await
        .unwrap();
    assert_eq!(report["valid"], true, "{report}");
    let rel = e
        .lock
        .handle(json!({"action": "release", "fleet": e.fleet, "owner": EXEC}))
        .await
        .unwrap();
    assert_eq!(rel["outcome"], "released");
    let shown = e
        .lock
        .handle(json!({"action": "show", "fleet": e.fleet}))
        .await
        .unwrap();
    assert_eq!(shown["held"], false);
    // The cooldown now holds further scale-outs back.
    let plan = e
        .state
        .handle(json!({"action": "plan", "request": {"fleet": e.fleet, "delta": 1}}))
        .await
        .unwrap();
    assert_eq!(plan["outcome"]["plan"]["reason"], "cooldown", "{plan}");
    // A scale-in plan carries the active pairs as drain nodes, ready for `select`.
    let plan = e
        .state
        .handle(json!({"action": "plan", "request": {"fleet": e.fleet, "delta": -1, "ignore_cooldown": true}}))
        .await
        .unwrap();
    assert_eq!(plan["outcome"]["plan"]["action"], "scale_in", "{plan}");
    assert_eq!(plan["nodes"].as_array().unwrap().len(), 2, "{plan}");
}

/// The lock taken and two new pairs committed, as a scale-out's `Out: commit new pairs`
/// leaves them: the lock's token and the pairs' ids.
async fn two_new_pairs(e: &Env) -> (u64, Value) {
    let g = acquire(e).await;
    let token = g["token"].as_u64().unwrap();
    let mark = e
        .state
        .handle(json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": token, "changes": {"new_pairs": 2}}))
        .await
        .unwrap();
    (token, mark["new_pairs"].clone())
}

#[tokio::test]
async fn discover_reports_drift_when_a_new_pair_is_not_there() {
    let e = env().await;
    let (token, ids) = two_new_pairs(&e).await;
    let first = ids[0].as_str().unwrap().to_string();
    kit::run_instance(&e.sdk, &e.fleet, Some(&first)).await;
    kit::create_service(
        &e.sdk,
        &e.cluster,
        &e.fleet,
        &kit::unique("esl"),
        Some(&first),
    )
    .await;
    let (name, msg) = err_name(
        e.state
            .handle(json!({"action": "discover", "fleet": e.fleet, "owner": EXEC, "token": token, "pair_ids": ids}))
            .await,
    );
    assert_eq!(name, ErrorName::Drift, "{msg}");
    assert!(
        msg.contains(ids[1].as_str().unwrap()) && msg.contains("no FreeSWITCH instance"),
        "{msg}"
    );
    assert!(
        !msg.contains(&format!("{first}:")),
        "the pair that is there is not named: {msg}"
    );
    // Nothing was written: the records are still bare.
    let read = e
        .state
        .handle(json!({"action": "read", "fleet": e.fleet}))
        .await
        .unwrap();
    assert!(
        read["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("instance_id").is_none()),
        "{read}"
    );
}

/// Ask `service` for `tasks` tasks; the emulator reports that many running.
async fn set_tasks(e: &Env, service: &str, tasks: i32) {
    aws_sdk_ecs::Client::new(&e.sdk)
        .update_service()
        .cluster(&e.cluster)
        .service(service)
        .desired_count(tasks)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn discover_reports_drift_when_a_new_pairs_esl_client_task_does_not_run() {
    let e = env().await;
    let (token, ids) = two_new_pairs(&e).await;
    let mut services = Vec::new();
    for id in ids.as_array().unwrap() {
        let id = id.as_str().unwrap();
        kit::run_instance(&e.sdk, &e.fleet, Some(id)).await;
        let name = kit::unique("esl");
        kit::create_service(&e.sdk, &e.cluster, &e.fleet, &name, Some(id)).await;
        services.push(name);
    }
    // The second pair's client has no task running (as when Fargate could not start it).
    set_tasks(&e, &services[1], 0).await;
    let (name, msg) = err_name(
        e.state
            .handle(json!({"action": "discover", "fleet": e.fleet, "owner": EXEC, "token": token, "pair_ids": ids}))
            .await,
    );
    assert_eq!(name, ErrorName::Drift, "{msg}");
    let second = ids[1].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "{second}: ESL client service {} has no running task",
            services[1]
        )),
        "{msg}"
    );
    assert!(
        !msg.contains(&format!("{}:", ids[0].as_str().unwrap())),
        "the pair whose task runs is not named: {msg}"
    );
    // With its task running again, the same discover fills both records.
    set_tasks(&e, &services[1], 1).await;
    let found = e
        .state
        .handle(json!({"action": "discover", "fleet": e.fleet, "owner": EXEC, "token": token, "pair_ids": ids}))
        .await
        .unwrap();
    assert_eq!(found["nodes"].as_array().map(Vec::len), Some(2), "{found}");
}

#[tokio::test]
async fn bad_input_gets_a_named_error_and_writes_nothing() {
    let e = env().await;
    let cases = [
        (json!({"action": "steal", "fleet": e.fleet}), "action"),
        (json!({"fleet": e.fleet}), "action"),
        (json!("acquire"), "input"),
        (json!({"action": "acquire", "fleet": e.fleet}), "owner"),
        (
            json!({"action": "acquire", "fleet": e.fleet, "owner": "root"}),
            "owner",
        ),
        (
            json!({"action": "acquire", "fleet": "BAD FLEET", "owner": EXEC}),
            "fleet",
        ),
        (
            json!({"action": "acquire", "fleet": e.fleet, "owner": EXEC, "ttl_seconds": -5}),
            "ttl_seconds",
        ),
        (
            json!({"action": "acquire", "fleet": e.fleet, "owner": EXEC, "ttl_seconds": 99999999}),
            "ttl_seconds",
        ),
        (
            json!({"action": "acquire", "fleet": e.fleet, "owner": EXEC, "colour": "red"}),
            "colour",
        ),
        (
            json!({"action": "break_stale", "fleet": e.fleet, "breaker": "cli:x", "reason": " "}),
            "reason",
        ),
    ];
    assert_refused_naming(|v| e.lock.handle(v), &cases).await;
    let shown = e
        .lock
        .handle(json!({"action": "show", "fleet": e.fleet}))
        .await
        .unwrap();
    assert_eq!(shown["lock"], Value::Null, "nothing was written");

    let g = acquire(&e).await;
    let token = g["token"].as_u64().unwrap();
    let state_cases = [
        (
            json!({"action": "plan", "request": {"fleet": e.fleet, "target_pair_count": -1}}),
            "target_pair_count",
        ),
        (
            json!({"action": "plan", "request": {"fleet": e.fleet, "target_pair_count": 1e9}}),
            "target_pair_count",
        ),
        (
            json!({"action": "plan", "request": {"fleet": e.fleet}}),
            "target_pair_count",
        ),
        (
            json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": "abc", "changes": {"pair_count": 1}}),
            "token",
        ),
        (
            json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": token, "changes": {}}),
            "changes",
        ),
        (
            json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": token, "changes": {"pair_count": 5000}}),
            "pair_count",
        ),
        (
            json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": token, "changes": {"updates": [{"pair_id": "pair-1", "status": "active"}]}}),
            "pair_id",
        ),
        (
            json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": token, "changes": {"updates": [{"pair_id": "pair-0001", "status": "zombie"}]}}),
            "status",
        ),
        (json!({"action": "validate"}), "fleet"),
    ];
    assert_refused_naming(|v| e.state.handle(v), &state_cases).await;
    let read = e
        .state
        .handle(json!({"action": "read", "fleet": e.fleet}))
        .await
        .unwrap();
    assert_eq!(read["pair_count"], 0);
    assert_eq!(read["pairs"], json!([]));
}

#[tokio::test]
async fn an_unknown_fleet_is_named() {
    let e = env().await;
    let (name, msg) = err_name(
        e.state
            .handle(json!({"action": "read", "fleet": "no-such-fleet"}))
            .await,
    );
    assert_eq!(name, ErrorName::UnknownFleet);
    assert!(msg.contains("no-such-fleet"), "{msg}");
    let (name, _) = err_name(
        e.state
            .handle(json!({"action": "plan", "request": {"fleet": "no-such-fleet", "delta": 1}}))
            .await,
    );
    assert_eq!(name, ErrorName::UnknownFleet);
}

#[tokio::test]
async fn a_wait_longer_than_half_the_lock_ttl_is_refused_before_anything_changes() {
    // The lock's TTL is 120 s here: a drain checked every 61 s, or builds polled every 61 s,
    // would let it expire between two renewals (the 150 s against 120 s, at its edge).
    let e = env().await;
    for (field, config) in [
        ("drain.check_interval_seconds", {
            let mut c = kit::sample_config();
            c["drain"]["check_interval_seconds"] = json!(61);
            c
        }),
        ("build_poll_seconds", {
            let mut c = kit::sample_config();
            c["build_poll_seconds"] = json!(61);
            c
        }),
    ] {
        let fleet = kit::unique_fleet();
        kit::put_fleet_params(&e.sdk, PREFIX, &fleet, "2", &config).await;
        for input in [
            json!({"action": "read", "fleet": fleet}),
            json!({"action": "plan", "request": {"fleet": fleet, "delta": -1}}),
        ] {
            let (name, msg) = err_name(e.state.handle(input.clone()).await);
            assert_eq!(name, ErrorName::InvalidConfig, "{input}: {msg}");
            assert!(
                msg.contains(field) && msg.contains("61") && msg.contains("120 s"),
                "{input}: {msg}"
            );
        }
    }
    // At half the TTL it is accepted.
    let fleet = kit::unique_fleet();
    let mut config = kit::sample_config();
    config["drain"]["check_interval_seconds"] = json!(60);
    config["build_poll_seconds"] = json!(60);
    kit::put_fleet_params(&e.sdk, PREFIX, &fleet, "0", &config).await;
    e.state
        .handle(json!({"action": "read", "fleet": fleet}))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_held_lock_names_its_holder_through_the_handler() {
    let e = env().await;
    acquire(&e).await;
    let retry = acquire(&e).await;
    assert_eq!(retry["reacquired"], true);
    let other = "arn:aws:states:us-east-1:123456789012:execution:pairscale-scale-in:h-2";
    let (name, msg) = err_name(
        e.lock
            .handle(json!({"action": "acquire", "fleet": e.fleet, "owner": other}))
            .await,
    );
    assert_eq!(name, ErrorName::LockHeld);
    assert!(msg.contains(EXEC), "{msg}");
    // The holder's execution does not exist in Step Functions: it cannot be running, so the
    // lock is stale and may be broken.
    let broken = e.lock.handle(json!({"action": "break_stale", "fleet": e.fleet, "breaker": other, "reason": "holder gone"})).await.unwrap();
    assert_eq!(broken["broken"]["previous_holder"], EXEC);
    assert!(
        broken["stale_because"]
            .as_str()
            .unwrap()
            .contains("NOT_FOUND"),
        "{broken}"
    );
}

#[tokio::test]
async fn the_dashboard_metrics_follow_the_lock_and_the_drains() {
    use pairscale_lambdas::metrics::Metrics;
    let mut e = env().await;
    let (lock_metrics, lock_lines) = Metrics::memory("Pairscale");
    let (state_metrics, state_lines) = Metrics::memory("Pairscale");
    e.lock.metrics = lock_metrics;
    e.state.metrics = state_metrics;
    let metric = |lines: &std::sync::Mutex<Vec<Value>>, name: &str| -> Vec<f64> {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l["Fleet"] == e.fleet.as_str())
            .filter_map(|l| l[name].as_f64())
            .collect()
    };
    let g = acquire(&e).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    e.lock
        .handle(json!({"action": "heartbeat", "fleet": e.fleet, "owner": EXEC}))
        .await
        .unwrap();
    let ages = metric(&lock_lines, "LockAgeSeconds");
    assert_eq!(ages.len(), 2, "acquire and heartbeat: {ages:?}");
    assert!(ages[1] >= 0.05 && ages[1] < 60.0, "{ages:?}");

    let token = g["token"].as_u64().unwrap();
    let commit = |changes: Value| json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": token, "changes": changes});
    let mark = e
        .state
        .handle(commit(json!({"new_pairs": 2})))
        .await
        .unwrap();
    assert!(
        metric(&state_lines, "DrainsInProgress").is_empty(),
        "no status changed"
    );
    let ids = mark["new_pairs"].clone();
    let up = |status: &str| {
        json!({"updates": ids.as_array().unwrap().iter().take(1)
            .map(|id| json!({"pair_id": id, "status": status})).collect::<Vec<_>>()})
    };
    e.state.handle(commit(up("active"))).await.unwrap();
    e.state.handle(commit(up("draining"))).await.unwrap();
    assert_eq!(metric(&state_lines, "DrainsInProgress"), vec![0.0, 1.0]);
    e.state
        .handle(json!({"action": "rollback", "fleet": e.fleet, "owner": EXEC, "token": token}))
        .await
        .unwrap();
    assert_eq!(metric(&state_lines, "DrainsInProgress").last(), Some(&0.0));

    e.lock
        .handle(json!({"action": "release", "fleet": e.fleet, "owner": EXEC}))
        .await
        .unwrap();
    assert_eq!(metric(&lock_lines, "LockAgeSeconds").last(), Some(&0.0));
    let line = lock_lines.lock().unwrap()[0].clone();
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Fleet"]])
    );
}
