//! The policy function through its JSON contract, against the local emulator: the fleet's
//! records in DynamoDB and SSM, its state machine in Step Functions, its alarms in
//! CloudWatch.
#![allow(clippy::unwrap_used)]

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use aws_sdk_dynamodb::types::AttributeValue;
use pairscale_aws::cloudwatch::CloudWatchSignals;
use pairscale_aws::dynamodb::{DynamoLockStore, DynamoPolicyStore};
use pairscale_aws::fleet_state::AwsFleetState;
use pairscale_aws::sfn::MachineRuns;
use pairscale_core::ports::{AcquireLock, Clock, LockStore, SystemClock};
use pairscale_core::{ErrorName, FleetName, Owner, Timestamp};
use pairscale_lambdas::handlers::policy::PolicyHandler;
use pairscale_lambdas::metrics::Metrics;
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const PREFIX: &str = "/pairscale-policy";

struct Env {
    handler: PolicyHandler,
    fleet: String,
    table: String,
    machine: String,
    sdk: aws_config::SdkConfig,
    metrics: Arc<Mutex<Vec<Value>>>,
    high: String,
}

/// A fleet of `count` pairs with `config`, its alarm `high` (step +2) in the configuration,
/// and a state machine whose runs wait `run_seconds`.
async fn env(count: u32, mut config: Value, run_seconds: u32) -> Env {
    let sdk = kit::sdk().await;
    let table = kit::unique("policy");
    kit::create_table(&sdk, &table).await;
    let fleet = kit::unique_fleet();
    let high = kit::unique("high");
    config["alarm_steps"] = json!({ high.clone(): 2 });
    kit::put_fleet_params(&sdk, PREFIX, &fleet, &count.to_string(), &config).await;
    let machine = aws_sdk_sfn::Client::new(&sdk)
        .create_state_machine()
        .name(kit::unique("policy"))
        .definition(
            json!({"StartAt": "Run", "States": {"Run": {"Type": "Wait", "Seconds": run_seconds, "End": true}}})
                .to_string(),
        )
        .role_arn("arn:aws:iam::123456789012:role/pairscale-tests")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    cw.put_metric_alarm()
        .alarm_name(&high)
        .namespace("PairscaleTest")
        .metric_name("ChannelsPerPair")
        .statistic(Statistic::Average)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .threshold(100.0)
        .period(60)
        .evaluation_periods(1)
        .send()
        .await
        .unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let (metrics, lines) = Metrics::memory("PairscaleTest");
    Env {
        handler: PolicyHandler {
            state: Arc::new(AwsFleetState::new(&sdk, &table, PREFIX)),
            locks: Arc::new(DynamoLockStore::new(ddb.clone(), &table)),
            policies: Arc::new(DynamoPolicyStore::new(ddb, &table)),
            runs: Arc::new(MachineRuns::new(aws_sdk_sfn::Client::new(&sdk), &machine)),
            signals: Arc::new(CloudWatchSignals::new(&sdk, "PairscaleTest")),
            clock: Arc::new(SystemClock),
            metrics,
        },
        fleet,
        table,
        machine,
        sdk,
        metrics: lines,
        high,
    }
}

fn with_policy(policy: Value) -> Value {
    let mut c = kit::sample_config();
    c["policy"] = policy;
    c
}

fn now() -> Timestamp {
    SystemClock.now()
}

/// An active pair record with a sample of `channels` taken `age_ms` ago.
async fn pair(e: &Env, seq: u32, channels: u32, age_ms: i64) {
    pair_with_arrivals(e, seq, channels, age_ms, None).await;
}

/// The same, with the calls a minute that arrived before the sample when given.
async fn pair_with_arrivals(e: &Env, seq: u32, channels: u32, age_ms: i64, arrivals: Option<u32>) {
    let at = now().millis();
    let n = |v: i64| AttributeValue::N(v.to_string());
    let mut item = aws_sdk_dynamodb::Client::new(&e.sdk).put_item();
    if let Some(a) = arrivals {
        item = item
            .item("arrivals_per_minute", n(i64::from(a)))
            .item("sessions_since_startup", n(1_000));
    }
    item.table_name(&e.table)
        .item("pk", AttributeValue::S(format!("FLEET#{}", e.fleet)))
        .item("sk", AttributeValue::S(format!("PAIR#pair-{seq:04}")))
        .item("id", AttributeValue::S(format!("pair-{seq:04}")))
        .item("status", AttributeValue::S("active".into()))
        .item("created_at", n(at))
        .item("updated_at", n(at))
        .item("protected", AttributeValue::Bool(false))
        .item("last_channels", n(i64::from(channels)))
        .item("last_seen_at", n(at - age_ms))
        .send()
        .await
        .unwrap();
}

async fn executions(e: &Env) -> Vec<(String, String)> {
    let sfn = aws_sdk_sfn::Client::new(&e.sdk);
    let list = sfn
        .list_executions()
        .state_machine_arn(&e.machine)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for x in list.executions() {
        let d = sfn
            .describe_execution()
            .execution_arn(x.execution_arn())
            .send()
            .await
            .unwrap();
        out.push((
            x.name().to_string(),
            d.input().unwrap_or_default().to_string(),
        ));
    }
    out
}

async fn set_alarm(e: &Env, state: StateValue) {
    aws_sdk_cloudwatch::Client::new(&e.sdk)
        .set_alarm_state()
        .alarm_name(&e.high)
        .state_value(state)
        .state_reason("test")
        .send()
        .await
        .unwrap();
}

async fn evaluate(e: &Env, time: Option<&str>) -> Value {
    let mut input = json!({"action": "evaluate", "fleet": e.fleet});
    if let Some(t) = time {
        input["time"] = json!(t);
    }
    e.handler.handle(input).await.unwrap()
}

#[tokio::test]
async fn tracking_raises_the_fleet_with_one_run_whatever_the_number_of_evaluations() {
    let e = env(2, with_policy(json!({"target_channels_per_pair": 100})), 60).await;
    pair(&e, 1, 250, 10_000).await;
    pair(&e, 2, 150, 10_000).await;
    // A stale sample counts for nothing.
    pair(&e, 3, 900, 10 * 60_000).await;
    let time = now().rfc3339();
    // The same minute twice at once, as a doubled delivery would.
    let (a, b) = tokio::join!(evaluate(&e, Some(&time)), evaluate(&e, Some(&time)));
    for v in [&a, &b] {
        assert_eq!(v["load_channels"], 400, "{v}");
        assert_eq!(v["decision"]["tracking"], 4, "{v}");
        assert_eq!(v["decision"]["desired"], 4, "{v}");
        assert_eq!(v["fresh_samples"], 2, "{v}");
    }
    let runs = executions(&e).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let input: Value = serde_json::from_str(&runs[0].1).unwrap();
    assert_eq!(input["target_pair_count"], 4);
    assert_eq!(input["fleet"], e.fleet.as_str());
    assert_eq!(input["requested_by"], "policy");
    assert!(
        runs[0].0.starts_with(&format!("{}-policy-", e.fleet)),
        "{runs:?}"
    );
    // Step Functions answers a second start of the same name and input, while the first
    // runs, with that same execution; with another input, ExecutionAlreadyExists. Either
    // way, both name the one run.
    for v in [&a, &b] {
        match v["started"]["outcome"].as_str() {
            Some("started") => assert!(
                v["started"]["execution_arn"]
                    .as_str()
                    .unwrap()
                    .ends_with(&runs[0].0),
                "{v}"
            ),
            Some("already_started") => {}
            // The other evaluation's run was already in flight when this one looked.
            None if v["held_back"].is_string()
                && (v["in_flight"]["running"] == true || v["in_flight"]["lock_held"] == true) => {}
            _ => panic!("neither started, already started nor held back by the run: {v}"),
        }
    }
    // One recommendation kept for the minute, not two.
    let shown = e
        .handler
        .handle(json!({"action": "show", "fleet": e.fleet}))
        .await
        .unwrap();
    assert_eq!(
        shown["state"]["recent"].as_array().unwrap().len(),
        1,
        "{shown}"
    );
    // The decision's inputs are published.
    let names: Vec<String> = e
        .metrics
        .lock()
        .unwrap()
        .iter()
        .flat_map(|l| {
            l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    for m in [
        "PolicyCurrentPairs",
        "PolicyDesiredPairs",
        "PolicyTrackingPairs",
        "PolicyActed",
    ] {
        assert!(names.iter().any(|n| n == m), "{m} not in {names:?}");
    }
}

#[tokio::test]
async fn the_fleets_arrivals_are_read_with_its_load_and_kept_with_the_recommendation() {
    let e = env(2, with_policy(json!({"target_channels_per_pair": 100})), 60).await;
    pair_with_arrivals(&e, 1, 250, 10_000, Some(90)).await;
    pair_with_arrivals(&e, 2, 150, 10_000, Some(40)).await;
    // A stale sample's arrivals count for nothing, as its channels.
    pair_with_arrivals(&e, 3, 900, 10 * 60_000, Some(500)).await;
    let v = evaluate(&e, None).await;
    assert_eq!(v["load_channels"], 400, "{v}");
    assert_eq!(v["arrivals_per_minute"], 130, "{v}");
    let shown = e
        .handler
        .handle(json!({"action": "show", "fleet": e.fleet}))
        .await
        .unwrap();
    let kept = &shown["state"]["recent"][0];
    assert_eq!(
        (&kept["load_channels"], &kept["arrivals_per_minute"]),
        (&json!(400), &json!(130)),
        "{shown}"
    );
    // A fresh pair without arrivals of its own (its first sample) leaves the fleet's unknown:
    // arrivals and channels must cover the same pairs.
    pair(&e, 4, 100, 10_000).await;
    let v = e
        .handler
        .handle(json!({"action": "explain", "fleet": e.fleet}))
        .await
        .unwrap();
    assert_eq!(v["load_channels"], 500, "{v}");
    assert_eq!(v["arrivals_per_minute"], Value::Null, "{v}");
}

#[tokio::test]
async fn an_alarm_that_stays_in_alarm_gets_its_step_once_the_lock_is_free() {
    // No policy: the alarm alone moves the fleet.
    let e = env(3, kit::sample_config(), 1).await;
    set_alarm(&e, StateValue::Alarm).await;
    let fleet = FleetName::parse(&e.fleet).unwrap();
    let owner = Owner::parse("arn:aws:states:us-east-1:123456789012:execution:m:scale-in").unwrap();
    let locks = DynamoLockStore::new(aws_sdk_dynamodb::Client::new(&e.sdk), &e.table);
    locks
        .acquire(&AcquireLock {
            fleet: fleet.clone(),
            owner: owner.clone(),
            ttl_secs: 300,
            request: String::new(),
            now: now(),
        })
        .await
        .unwrap();
    let held = evaluate(&e, None).await;
    assert_eq!(held["decision"]["desired"], 5, "{held}");
    assert_eq!(held["in_flight"]["lock_held"], true, "{held}");
    assert!(held["started"].is_null(), "{held}");
    assert!(
        held["held_back"].as_str().unwrap().contains("lock"),
        "{held}"
    );
    assert!(executions(&e).await.is_empty());
    locks.release(&fleet, &owner, now()).await.unwrap();
    let freed = evaluate(&e, None).await;
    assert_eq!(freed["started"]["outcome"], "started", "{freed}");
    let runs = executions(&e).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let input: Value = serde_json::from_str(&runs[0].1).unwrap();
    assert_eq!(input["target_pair_count"], 5);
    // Back to OK: nothing more to do.
    set_alarm(&e, StateValue::Ok).await;
    let calm = evaluate(&e, None).await;
    assert_eq!(
        (
            calm["decision"]["desired"].clone(),
            calm["decision"]["act"].clone()
        ),
        (json!(3), json!(false))
    );
}

#[tokio::test]
async fn a_suspended_policy_decides_and_does_not_act_until_resumed() {
    let e = env(2, with_policy(json!({"target_channels_per_pair": 100})), 1).await;
    pair(&e, 1, 500, 1_000).await;
    let s = e
        .handler
        .handle(json!({"action": "suspend", "fleet": e.fleet, "by": "alice", "reason": "carrier maintenance"}))
        .await
        .unwrap();
    assert_eq!(s["state"]["suspended"]["by"], "alice", "{s}");
    let v = evaluate(&e, None).await;
    assert_eq!(v["decision"]["desired"], 5, "{v}");
    assert_eq!(v["decision"]["act"], false, "{v}");
    assert!(
        v["decision"]["reasons"]
            .to_string()
            .contains("carrier maintenance"),
        "{v}"
    );
    assert!(executions(&e).await.is_empty());
    e.handler
        .handle(json!({"action": "resume", "fleet": e.fleet, "by": "alice"}))
        .await
        .unwrap();
    let v = evaluate(&e, None).await;
    assert_eq!(v["started"]["outcome"], "started", "{v}");
    assert_eq!(executions(&e).await.len(), 1);
}

#[tokio::test]
async fn a_schedule_raises_the_fleet_from_the_start_of_its_window() {
    // A window from the next minute on, by the event's time.
    let start = jiff::Timestamp::from_millisecond(now().millis() + 60_000).unwrap();
    let from = start.strftime("%H:%M").to_string();
    let to = jiff::Timestamp::from_millisecond(now().millis() + 3 * 60_000)
        .unwrap()
        .strftime("%H:%M")
        .to_string();
    let days = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    let e = env(
        1,
        with_policy(json!({"target_channels_per_pair": 100, "schedules": [
            {"name": "morning", "days": days, "from": from, "to": to, "time_zone": "UTC", "min_pairs": 6}
        ]})),
        1,
    )
    .await;
    let before = jiff::Timestamp::from_millisecond(start.as_millisecond() - 60_000).unwrap();
    let v = e
        .handler
        .handle(json!({"action": "explain", "fleet": e.fleet, "time": before.strftime("%Y-%m-%dT%H:%M:00Z").to_string()}))
        .await
        .unwrap();
    assert_eq!(v["decision"]["desired"], 1, "{v}");
    let v = evaluate(&e, Some(&start.strftime("%Y-%m-%dT%H:%M:00Z").to_string())).await;
    assert_eq!(v["decision"]["schedule"], json!(["morning", 6]), "{v}");
    // Out by at most max_step (3) a run.
    assert_eq!(v["decision"]["desired"], 4, "{v}");
    assert_eq!(v["started"]["outcome"], "started", "{v}");
}

#[tokio::test]
async fn explain_never_acts_and_never_writes() {
    let e = env(1, with_policy(json!({"target_channels_per_pair": 100})), 1).await;
    pair(&e, 1, 300, 1_000).await;
    let v = e
        .handler
        .handle(json!({"action": "explain", "fleet": e.fleet}))
        .await
        .unwrap();
    assert_eq!(v["decision"]["desired"], 3, "{v}");
    assert_eq!(v["decision"]["act"], true, "{v}");
    assert!(v["started"].is_null(), "{v}");
    assert!(executions(&e).await.is_empty());
    let shown = e
        .handler
        .handle(json!({"action": "show", "fleet": e.fleet}))
        .await
        .unwrap();
    assert_eq!(shown["state"]["version"], 0, "{shown}");
}

#[tokio::test]
async fn a_bad_time_or_fleet_is_refused_by_name() {
    let e = env(1, with_policy(json!({"target_channels_per_pair": 100})), 1).await;
    let far = Timestamp(now().millis() + 3_600_000).rfc3339();
    for (input, field) in [
        (
            json!({"action": "evaluate", "fleet": e.fleet, "time": "yesterday"}),
            "time",
        ),
        (
            json!({"action": "evaluate", "fleet": e.fleet, "time": far}),
            "time",
        ),
        (json!({"action": "evaluate", "fleet": "Bad Fleet"}), "fleet"),
        (
            json!({"action": "suspend", "fleet": e.fleet, "by": "alice", "reason": " "}),
            "reason",
        ),
    ] {
        let err = e.handler.handle(input.clone()).await.unwrap_err();
        assert_eq!(err.name(), ErrorName::InvalidRequest, "{input}: {err}");
        assert!(err.to_string().contains(field), "{input}: {err}");
    }
    let err = e
        .handler
        .handle(json!({"action": "evaluate", "fleet": kit::unique_fleet()}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), ErrorName::UnknownFleet, "{err}");
    assert!(executions(&e).await.is_empty());
}

#[tokio::test]
async fn a_decision_inside_the_cooldown_waits_for_its_end_and_starts_no_run() {
    // The fleet scaled out 10 s ago; its scale-out cooldown is 60 s (the sample config's).
    let e = env(3, kit::sample_config(), 1).await;
    let at = now().millis();
    put_meta(&e, at - 10_000).await;
    set_alarm(&e, StateValue::Alarm).await;
    let held = evaluate(&e, None).await;
    assert_eq!(held["decision"]["desired"], 5, "{held}");
    assert_eq!(held["decision"]["act"], true, "{held}");
    assert!(held["started"].is_null(), "{held}");
    let why = held["held_back"].as_str().unwrap();
    assert!(why.contains("scale-out cooldown"), "{held}");
    assert!(
        why.contains(&Timestamp(at - 10_000 + 60_000).rfc3339()),
        "the cooldown's end: {held}"
    );
    assert!(executions(&e).await.is_empty());
    // explain says the same wait, and acts no more than before.
    let explained = e
        .handler
        .handle(json!({"action": "explain", "fleet": e.fleet}))
        .await
        .unwrap();
    assert!(
        explained["held_back"]
            .as_str()
            .unwrap()
            .contains("scale-out cooldown"),
        "{explained}"
    );
    // Once the last scale-out lies further back than the cooldown, the same alarm acts.
    put_meta(&e, at - 70_000).await;
    let after = evaluate(&e, None).await;
    assert!(after["held_back"].is_null(), "{after}");
    assert_eq!(after["started"]["outcome"], "started", "{after}");
    assert_eq!(executions(&e).await.len(), 1);
}

/// The fleet's bookkeeping item with its last scale-out at `last_out` (ms).
async fn put_meta(e: &Env, last_out: i64) {
    aws_sdk_dynamodb::Client::new(&e.sdk)
        .put_item()
        .table_name(&e.table)
        .item("pk", AttributeValue::S(format!("FLEET#{}", e.fleet)))
        .item("sk", AttributeValue::S("META".into()))
        .item("last_pair_seq", AttributeValue::N("3".into()))
        .item("last_scale_out_at", AttributeValue::N(last_out.to_string()))
        .send()
        .await
        .unwrap();
}
