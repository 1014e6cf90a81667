//! The scaling policy end to end: the real `pairscale-policy` binary invoked through the local
//! router as EventBridge Scheduler and the alarm rules invoke it, starting the real state
//! machine (`statemachines/scale.asl.json`) in the emulator, which scales the fleet through
//! the other handler binaries and the local builds.
#![allow(clippy::unwrap_used)]

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use aws_sdk_sfn::types::ExecutionStatus;
use pairscale_stack::*;
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A stack whose fleet a run scaled out to `pairs`.
async fn scaled_out(opts: Options, pairs: usize) -> Stack {
    let s = stack(opts).await;
    assert_succeeded(
        &s.run("out", json!({"fleet": s.fleet, "target_pair_count": pairs}))
            .await,
    );
    s
}

/// An alarm of the fleet's, in `state`, named in its alarm_steps with `step`.
async fn alarm(s: &Stack, step: i32, state: StateValue) -> String {
    let name = kit::unique("channels-high");
    let cw = aws_sdk_cloudwatch::Client::new(&s.sdk);
    cw.put_metric_alarm()
        .alarm_name(&name)
        .namespace("Pairscale")
        .metric_name("ChannelsPerPair")
        .statistic(Statistic::Average)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .threshold(400.0)
        .period(60)
        .evaluation_periods(1)
        .send()
        .await
        .unwrap();
    cw.set_alarm_state()
        .alarm_name(&name)
        .state_value(state)
        .state_reason("e2e")
        .send()
        .await
        .unwrap();
    let n = name.clone();
    s.configure(move |c| c["alarm_steps"] = json!({ n: step }))
        .await;
    name
}

/// One evaluation, as the schedule (with `time`) or an alarm rule invokes it.
async fn evaluate(s: &Stack, time: Option<&str>) -> Value {
    let mut input = json!({"action": "evaluate", "fleet": s.fleet});
    if let Some(t) = time {
        input["time"] = json!(t);
    }
    let (failed, out) = s.invoke("policy", input).await;
    assert!(!failed, "{out}");
    out
}

/// The runs the policy started: executions named `<fleet>-policy-...`, with their ARNs.
async fn policy_runs(s: &Stack) -> Vec<(String, String)> {
    let out = aws_sdk_sfn::Client::new(&s.sdk)
        .list_executions()
        .state_machine_arn(&s.state_machine)
        .max_results(100)
        .send()
        .await
        .unwrap();
    out.executions()
        .iter()
        .filter(|e| e.name().starts_with(&format!("{}-policy-", s.fleet)))
        .map(|e| (e.name().to_string(), e.execution_arn().to_string()))
        .collect()
}

fn minute(offset_minutes: i64) -> jiff::Timestamp {
    let now = jiff::Timestamp::now().as_second();
    jiff::Timestamp::from_second((now / 60 + offset_minutes) * 60).unwrap()
}

fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A policy with a schedule of `min_pairs` in UTC from `from` to `to` (minutes from now),
/// every day; target tracking has no sample to go on.
fn scheduled(from: i64, to: i64, min_pairs: u32) -> Value {
    json!({"target_channels_per_pair": 100, "schedules": [{
        "name": "e2e", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "from": minute(from).strftime("%H:%M").to_string(),
        "to": minute(to).strftime("%H:%M").to_string(),
        "time_zone": "UTC", "min_pairs": min_pairs}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_that_stays_in_alarm_during_a_scale_in_gets_its_scale_out_once_the_lock_is_free() {
    // Force at 2 s, one endless call a node: the scale-in drains for a while, holding the lock.
    let s = scaled_out(
        Options {
            policy: "force",
            deadline_seconds: 2,
            initial_calls: 1,
            ..Options::default()
        },
        2,
    )
    .await;
    let name = alarm(&s, 1, StateValue::Ok).await;
    let inn = s
        .start(
            "in",
            json!({"fleet": s.fleet, "delta": -1, "reason": "e2e"}),
        )
        .await;
    let begun = Instant::now();
    while !s.lock_held().await {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "the scale-in never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The alarm goes into ALARM while the scale-in holds the lock: the rule's evaluation
    // decides to scale out and holds back.
    aws_sdk_cloudwatch::Client::new(&s.sdk)
        .set_alarm_state()
        .alarm_name(&name)
        .state_value(StateValue::Alarm)
        .state_reason("e2e")
        .send()
        .await
        .unwrap();
    let held = evaluate(&s, None).await;
    assert_eq!(held["in_flight"]["lock_held"], true, "{held}");
    assert_eq!(held["decision"]["act"], true, "{held}");
    assert!(held["started"].is_null(), "{held}");
    assert!(policy_runs(&s).await.is_empty());
    assert_succeeded(&s.wait(&inn).await);
    assert_eq!(s.pair_count().await, "1");
    // The alarm is still in ALARM; no new state change, only the next scheduled evaluation.
    let freed = evaluate(&s, None).await;
    assert_eq!(freed["decision"]["desired"], 2, "{freed}");
    assert_eq!(freed["started"]["outcome"], "started", "{freed}");
    let runs = policy_runs(&s).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let out = s.wait(&runs[0].1).await;
    assert_succeeded(&out);
    assert_eq!(out.output["direction"], "out", "{}", out.output);
    assert_eq!(s.pair_count().await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_window_raises_the_fleet_at_its_start() {
    let s = scaled_out(Options::default(), 1).await;
    s.configure(|c| c["policy"] = scheduled(1, 10, 3)).await;
    // The minute before the window: nothing to do.
    let before = evaluate(&s, Some(&rfc3339(minute(0)))).await;
    assert_eq!(before["decision"]["desired"], 1, "{before}");
    assert!(before["started"].is_null(), "{before}");
    // Its first minute, as the scheduler's time says.
    let start = evaluate(&s, Some(&rfc3339(minute(1)))).await;
    assert_eq!(start["decision"]["schedule"], json!(["e2e", 3]), "{start}");
    assert_eq!(start["decision"]["desired"], 3, "{start}");
    assert_eq!(start["started"]["outcome"], "started", "{start}");
    let runs = policy_runs(&s).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_succeeded(&s.wait(&runs[0].1).await);
    assert_eq!(s.pair_count().await, "3");
    // A time that is not an instant, or far from the clock, is refused by name.
    for bad in ["08:00", &rfc3339(minute(60))] {
        let (failed, out) = s
            .invoke(
                "policy",
                json!({"action": "evaluate", "fleet": s.fleet, "time": bad}),
            )
            .await;
        assert!(failed, "{bad}: {out}");
        assert_eq!(out["errorType"], "Pairscale.InvalidRequest", "{out}");
        assert!(
            out["errorMessage"].as_str().unwrap().contains("time"),
            "{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doubled_evaluation_starts_exactly_one_run() {
    let s = scaled_out(Options::default(), 1).await;
    s.configure(|c| c["policy"] = scheduled(-1, 10, 2)).await;
    let time = rfc3339(minute(0));
    let (a, b) = tokio::join!(evaluate(&s, Some(&time)), evaluate(&s, Some(&time)));
    for v in [&a, &b] {
        assert_eq!(v["decision"]["desired"], 2, "{v}");
    }
    let runs = policy_runs(&s).await;
    assert_eq!(runs.len(), 1, "{runs:?}\n{a}\n{b}");
    // A second start of the same name and input while the first runs is answered with that
    // same execution; with another input, ExecutionAlreadyExists: both name the one run.
    for v in [&a, &b] {
        match v["started"]["outcome"].as_str() {
            Some("started") => assert_eq!(v["started"]["execution_arn"], runs[0].1, "{v}"),
            Some("already_started") => {}
            // The other evaluation's run was already in flight when this one looked.
            None if v["held_back"].is_string()
                && (v["in_flight"]["running"] == true || v["in_flight"]["lock_held"] == true) => {}
            _ => panic!("neither started, already started nor held back by the run: {v}"),
        }
    }
    // A retried delivery of the same minute, after the run: still that one run.
    assert_succeeded(&s.wait(&runs[0].1).await);
    evaluate(&s, Some(&time)).await;
    assert_eq!(policy_runs(&s).await.len(), 1);
    assert_eq!(s.pair_count().await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_policy_decides_and_does_not_act() {
    let s = scaled_out(Options::default(), 1).await;
    s.configure(|c| c["policy"] = scheduled(-1, 10, 2)).await;
    let (failed, out) = s
        .invoke(
            "policy",
            json!({"action": "suspend", "fleet": s.fleet, "by": "cli:e2e", "reason": "carrier maintenance"}),
        )
        .await;
    assert!(!failed, "{out}");
    let v = evaluate(&s, None).await;
    assert_eq!(v["decision"]["desired"], 2, "{v}");
    assert_eq!(v["decision"]["act"], false, "{v}");
    assert_eq!(v["suspended"]["reason"], "carrier maintenance", "{v}");
    assert!(v["started"].is_null(), "{v}");
    assert!(policy_runs(&s).await.is_empty());
    let after = aws_sdk_sfn::Client::new(&s.sdk)
        .list_executions()
        .state_machine_arn(&s.state_machine)
        .status_filter(ExecutionStatus::Running)
        .send()
        .await
        .unwrap();
    assert!(after.executions().is_empty(), "{after:?}");
    assert_eq!(s.pair_count().await, "1");
}
