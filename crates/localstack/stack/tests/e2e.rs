//! The scaling state machine, end to end: `statemachines/scale.asl.json` executed by the
//! emulator's Step Functions interpreter, calling the real handler binaries through the local
//! router, whose CodeBuild projects run the local build stand-in. Simulated FreeSWITCH nodes
//! listen on the instances' loopback addresses; the dispatcher is the real Kamailio and
//! PostgreSQL.
//!
//! Each test builds its own stack ([`pairscale_stack`]): its own fleet, table, VPC,
//! ECS cluster, functions, projects, state machine, ESL port and dispatcher set, so tests run
//! in parallel without seeing each other.
#![allow(clippy::unwrap_used)]

use aws_sdk_sfn::types::ExecutionStatus;
use pairscale_stack::*;
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A stack of its own whose fleet was scaled out to `pairs` by a run that succeeded.
async fn scaled_out(opts: Options, pairs: usize) -> Stack {
    let s = stack(opts).await;
    assert_succeeded(
        &s.run("out", json!({"fleet": s.fleet, "target_pair_count": pairs}))
            .await,
    );
    s
}

/// The pairs whose record has `status`.
fn with_status(records: &BTreeMap<String, Value>, status: &str) -> Vec<String> {
    records
        .iter()
        .filter(|(_, r)| r["status"] == status)
        .map(|(p, _)| p.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_and_a_scale_in_change_the_fleet_and_nothing_else() {
    let s = stack(Options::default()).await;

    // Out: 0 → 2.
    let out = s
        .run(
            "out",
            json!({"fleet": s.fleet, "target_pair_count": 2, "reason": "e2e", "requested_by": "test"}),
        )
        .await;
    assert_succeeded(&out);
    assert_eq!(out.output["outcome"], "scaled", "{}", out.output);
    assert_eq!(out.output["direction"], "out");
    let added: Vec<String> = serde_json::from_value(out.output["pairs_added"].clone()).unwrap();
    assert_eq!(added.len(), 2, "{}", out.output);
    assert_eq!(s.pair_count().await, "2");
    let records = s.records().await;
    let instances = s.instances().await;
    let rows = s.dispatcher_rows().await;
    for pair in &added {
        let r = &records[pair];
        assert_eq!(r["status"], "active", "{r}");
        let ip = &instances[pair];
        assert_eq!(r["private_ip"], *ip, "{r}");
        assert_eq!(r["esl_endpoint"], format!("{ip}:{}", s.esl_port));
        // In rotation, at its own address, and taking calls.
        assert_eq!(rows[pair], (format!("sip:{ip}:5060"), 0), "{rows:?}");
        assert!(s.node_answers(ip).await);
        assert!(!s.node_view(ip).await.1, "{pair} must not refuse calls");
    }
    assert_eq!(instances.len(), 2, "{instances:?}");
    assert!(!s.lock_held().await, "the lock is released");

    // In: 2 → 1. Both pairs race (one spare); the first to reach zero channels goes.
    let inn = s
        .run(
            "in",
            json!({"fleet": s.fleet, "delta": -1, "reason": "e2e"}),
        )
        .await;
    assert_succeeded(&inn);
    assert_eq!(inn.output["direction"], "in", "{}", inn.output);
    let removed: Vec<String> = serde_json::from_value(inn.output["pairs_removed"].clone()).unwrap();
    assert_eq!(removed.len(), 1, "{}", inn.output);
    let gone = &removed[0];
    let kept: Vec<&String> = added.iter().filter(|p| *p != gone).collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(s.pair_count().await, "1");
    let records = s.records().await;
    assert!(!records.contains_key(gone), "{records:?}");
    assert_eq!(records[kept[0]]["status"], "active");
    let after = s.instances().await;
    assert_eq!(after.keys().collect::<Vec<_>>(), kept, "{after:?}");
    let rows = s.dispatcher_rows().await;
    assert!(!rows.contains_key(gone), "{rows:?}");
    // The spare that lost the race is back in rotation and takes calls again.
    let ip = &after[kept[0]];
    assert_eq!(rows[kept[0]].1, 0, "{rows:?}");
    assert!(!s.node_view(ip).await.1, "the spare takes calls again");
    assert!(
        !s.node_answers(&instances[gone]).await,
        "the removed node is gone"
    );
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_deadline_policy_abort_puts_every_candidate_back_and_removes_nothing() {
    let s = stack(Options {
        policy: "abort",
        deadline_seconds: 2,
        initial_calls: 1,
        ..Options::default()
    })
    .await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_succeeded(&out);
    let before = s.instances().await;

    let inn = s.run("in", json!({"fleet": s.fleet, "delta": -1})).await;
    assert_eq!(inn.status, ExecutionStatus::Failed, "{inn:?}");
    assert_eq!(inn.error, "Pairscale.DrainDeadline", "{inn:?}");
    assert!(inn.cause.contains("undone"), "{}", inn.cause);
    assert_eq!(s.pair_count().await, "2");
    assert_eq!(s.instances().await, before, "nothing was destroyed");
    let records = s.records().await;
    let rows = s.dispatcher_rows().await;
    for (pair, ip) in &before {
        assert_eq!(records[pair]["status"], "active", "{records:?}");
        assert_eq!(rows[pair].1, 0, "{pair} back in rotation: {rows:?}");
        let (channels, paused) = s.node_view(ip).await;
        assert_eq!(channels, 1, "{pair}: its call was never cut");
        assert!(!paused, "{pair} takes calls again");
    }
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_deadline_policy_force_hangs_up_only_the_pair_it_removes() {
    let s = stack(force_options()).await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 3}))
        .await;
    assert_succeeded(&out);
    // 3 → 2: one to remove and one spare race; neither call ever ends.
    let inn = s.run("in", json!({"fleet": s.fleet, "delta": -1})).await;
    assert_succeeded(&inn);
    let states = s.states_entered(&inn.arn).await;
    assert!(
        states.iter().any(|n| n == "In: force hangups"),
        "{states:?}"
    );
    let removed: Vec<String> = serde_json::from_value(inn.output["pairs_removed"].clone()).unwrap();
    assert_eq!(removed.len(), 1);
    let spares = inn.output["spares_resumed"].as_array().unwrap();
    assert_eq!(spares.len(), 1, "{}", inn.output);
    assert_eq!(s.pair_count().await, "2");
    let left = s.instances().await;
    assert_eq!(left.len(), 2);
    assert!(!left.contains_key(&removed[0]));
    // Only the removed pair's call was cut: the spare kept its call and is back in rotation.
    let rows = s.dispatcher_rows().await;
    for (pair, ip) in &left {
        assert_eq!(rows[pair].1, 0, "{pair} in rotation");
        assert_eq!(s.node_view(ip).await, (1, false), "{pair} kept its call");
    }
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ansible_build_undoes_the_scale_out() {
    let s = stack(Options::default()).await;
    fail_ansible(&s, 1).await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(out.error, "Pairscale.BuildFailed", "{out:?}");
    assert!(out.cause.contains("undone"), "{}", out.cause);
    assert_eq!(s.pair_count().await, "0");
    assert!(s.records().await.is_empty(), "records rolled back");
    assert!(s.instances().await.is_empty(), "half-made pairs destroyed");
    assert!(s.dispatcher_rows().await.is_empty());
    // Terraform ran twice: the scale-out, then the compensation with the old pair set.
    assert_eq!(s.builds(&s.tf_project).await.len(), 2);
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_stops_the_run_before_it_changes_anything() {
    let s = stack(Options::default()).await;
    let (failed, g) = s
        .invoke(
            "lock",
            json!({"action": "acquire", "fleet": s.fleet, "owner": "cli:maintenance"}),
        )
        .await;
    assert!(!failed, "{g}");
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(out.error, "Pairscale.LockHeld", "{out:?}");
    assert!(out.cause.contains("cli:maintenance"), "{}", out.cause);
    assert_eq!(s.pair_count().await, "0");
    assert!(s.instances().await.is_empty());
    assert!(s.builds(&s.tf_project).await.is_empty());
    // Still the maintenance holder's lock.
    let (_, shown) = s
        .invoke("lock", json!({"action": "show", "fleet": s.fleet}))
        .await;
    assert_eq!(shown["lock"]["holder"], "cli:maintenance", "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_stops_the_run_and_names_the_stray_pair() {
    let s = stack(Options::default()).await;
    kit::run_instance(&s.sdk, &s.fleet, Some("pair-0042")).await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(out.error, "Pairscale.Drift", "{out:?}");
    assert!(out.cause.contains("pair-0042"), "{}", out.cause);
    assert_eq!(s.pair_count().await, "0");
    assert!(s.builds(&s.tf_project).await.is_empty());
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_to_put_new_nodes_into_rotation_destroys_nothing() {
    let s = stack(Options::default()).await;
    kit::router(
        reqwest::Method::POST,
        "faults",
        Some(
            json!({"lambda": {"function": format!("{}-drain", s.id), "when_action": "resume",
                               "mode": "error", "times": 1, "error_type": "Pairscale.Internal",
                               "error_message": "injected"}}),
        ),
    )
    .await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(out.error, "Pairscale.Internal", "{out:?}");
    assert!(
        out.cause.contains("(committed)")
            && out
                .cause
                .contains("the next run of this fleet puts them into rotation"),
        "{}",
        out.cause
    );
    // The count is committed and the nodes stand; they are only still out of rotation.
    assert_eq!(s.pair_count().await, "2");
    let instances = s.instances().await;
    assert_eq!(instances.len(), 2, "{instances:?}");
    let rows = s.dispatcher_rows().await;
    for (pair, ip) in &instances {
        assert_eq!(s.records().await[pair]["status"], "active");
        assert_eq!(rows[pair].1, 4, "{pair} still out of rotation: {rows:?}");
        assert!(s.node_answers(ip).await);
    }
    assert!(!s.lock_held().await);
    // Left unfinished: the next run (a dry run does only the recovery) puts them into rotation.
    let next = s
        .run(
            "next",
            json!({"fleet": s.fleet, "target_pair_count": 2, "dry_run": true}),
        )
        .await;
    assert_succeeded(&next);
    let states = s.states_entered(&next.arn).await;
    assert!(
        states.iter().any(|n| n == "Resume the stale run's nodes"),
        "{states:?}"
    );
    let rows = s.dispatcher_rows().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.values().all(|(_, flags)| *flags == 0), "{rows:?}");
    for ip in instances.values() {
        assert!(!s.node_view(ip).await.1, "{ip} takes calls again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_to_four_and_back_to_two_with_calls_that_end_before_the_deadline() {
    let s = stack(Options {
        calls_per_sec: 2.0,
        median_call_secs: 0.5,
        ..Options::default()
    })
    .await;
    assert_succeeded(
        &s.run("boot", json!({"fleet": s.fleet, "target_pair_count": 2}))
            .await,
    );
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 4}))
        .await;
    assert_succeeded(&out);
    assert_eq!(out.output["from"], 2, "{}", out.output);
    assert_eq!(out.output["to"], 4);
    assert_eq!(s.pair_count().await, "4");
    let (records, instances, rows) = (
        s.records().await,
        s.instances().await,
        s.dispatcher_rows().await,
    );
    assert_eq!(records.len(), 4);
    assert_eq!(instances.len(), 4);
    for (pair, ip) in &instances {
        assert_eq!(records[pair]["status"], "active");
        assert_eq!(rows[pair], (format!("sip:{ip}:5060"), 0));
    }

    // In: 4 → 2. Two to remove and one spare: three candidates race; the calls end by
    // themselves once the candidates refuse new ones.
    let inn = s.run("in", json!({"fleet": s.fleet, "delta": -2})).await;
    assert_succeeded(&inn);
    let states = s.states_entered(&inn.arn).await;
    assert!(
        !states.iter().any(|n| n == "In: force hangups"),
        "no call was cut: {states:?}"
    );
    let removed: Vec<String> = serde_json::from_value(inn.output["pairs_removed"].clone()).unwrap();
    assert_eq!(removed.len(), 2, "{}", inn.output);
    let spares = inn.output["spares_resumed"].as_array().unwrap();
    assert_eq!(spares.len(), 1, "{}", inn.output);
    let spare = spares[0]["pair_id"].as_str().unwrap();
    assert!(!removed.iter().any(|r| r == spare));
    assert_eq!(s.pair_count().await, "2");
    let (records, after, rows) = (
        s.records().await,
        s.instances().await,
        s.dispatcher_rows().await,
    );
    assert_eq!(after.len(), 2, "{after:?}");
    for gone in &removed {
        assert!(
            !records.contains_key(gone) && !after.contains_key(gone) && !rows.contains_key(gone)
        );
        assert!(!s.node_answers(&instances[gone]).await);
    }
    // The spare is back in rotation and takes calls again.
    assert_eq!(records[spare]["status"], "active");
    assert_eq!(rows[spare].1, 0, "{rows:?}");
    assert!(!s.node_view(&after[spare]).await.1);
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_policy_wait_the_drain_waits_to_the_hard_maximum_then_puts_everything_back() {
    // Deadline 5 s, hard maximum 10 s, calls that never end. The first check comes a second
    // after the quiesce: on a loaded machine it may come seconds late, and must still come
    // before the hard maximum for the run to be seen waiting past the deadline.
    let s = scaled_out(
        Options {
            policy: "wait",
            deadline_seconds: 5,
            initial_calls: 1,
            ..Options::default()
        },
        2,
    )
    .await;
    let before = s.instances().await;
    let inn = s.run("in", json!({"fleet": s.fleet, "delta": -1})).await;
    assert_eq!(inn.status, ExecutionStatus::Failed, "{inn:?}");
    assert_eq!(inn.error, "Pairscale.DrainDeadline", "{inn:?}");
    let states = s.states_entered(&inn.arn).await;
    let waits = states.iter().filter(|n| *n == "In: drain wait").count();
    assert!(waits >= 2, "it waited past the deadline: {states:?}");
    assert!(!states.iter().any(|n| n == "In: force hangups"));
    assert_eq!(s.pair_count().await, "2");
    assert_eq!(s.instances().await, before);
    let rows = s.dispatcher_rows().await;
    for (pair, ip) in &before {
        assert_eq!(rows[pair].1, 0);
        assert_eq!(
            s.node_view(ip).await,
            (1, false),
            "{pair}: call kept, takes calls"
        );
    }
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_one_scales_and_the_other_fails_cleanly() {
    let s = stack(Options::default()).await;
    let a = s
        .start("a", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    let b = s
        .start("b", json!({"fleet": s.fleet, "target_pair_count": 3}))
        .await;
    let (a, b) = tokio::join!(s.wait(&a), s.wait(&b));
    let (won, lost) = match (&a.status, &b.status) {
        (ExecutionStatus::Succeeded, ExecutionStatus::Failed) => (&a, &b),
        (ExecutionStatus::Failed, ExecutionStatus::Succeeded) => (&b, &a),
        _ => panic!("exactly one must succeed: {a:?} {b:?}"),
    };
    assert_eq!(lost.error, "Pairscale.LockHeld", "{lost:?}");
    assert!(
        lost.cause.contains(&won.arn),
        "names the holder: {}",
        lost.cause
    );
    let to = won.output["to"].as_u64().unwrap();
    assert_eq!(s.pair_count().await, to.to_string());
    assert_eq!(s.instances().await.len() as u64, to);
    assert_eq!(s.records().await.len() as u64, to);
    assert!(!s.lock_held().await);
}

/// Arms the next `n` Ansible builds of the stack's fleet to fail without running.
async fn fail_ansible(s: &Stack, n: u32) {
    kit::router(
        reqwest::Method::POST,
        "faults",
        Some(json!({"codebuild": {"project": s.an_project, "fail_next": n}})),
    )
    .await;
}

/// Arms the next `n` Terraform builds of the stack's fleet to fail without running, their
/// log `log` (by default a line naming the injected fault: a permanent failure).
async fn fail_terraform(s: &Stack, n: u32, log: Option<&str>) {
    kit::router(
        reqwest::Method::POST,
        "faults",
        Some(json!({"codebuild": {"project": s.tf_project, "fail_next": n, "fail_log": log}})),
    )
    .await;
}

/// A dry run named `name` of the fleet at `pairs` (a run that does only the recovery), which
/// succeeds: the states it entered.
async fn dry_run(s: &Stack, name: &str, pairs: usize) -> Vec<String> {
    let run = s
        .run(
            name,
            json!({"fleet": s.fleet, "target_pair_count": pairs, "dry_run": true}),
        )
        .await;
    assert_succeeded(&run);
    s.states_entered(&run.arn).await
}

/// A dry run of the fleet at `pairs` succeeds without recovering anything: the runs before it
/// left nothing unfinished in the journal.
async fn assert_nothing_to_recover(s: &Stack, pairs: usize) {
    let states = dry_run(s, "later", pairs).await;
    assert!(
        !states.iter().any(|n| n.starts_with("Recover: ")),
        "{states:?}"
    );
}

/// An undone scale-out of an empty fleet: nothing of it is left, and the lock is free.
async fn assert_nothing_left(s: &Stack) {
    assert_eq!(s.pair_count().await, "0");
    assert!(s.records().await.is_empty());
    assert!(s.instances().await.is_empty());
    assert!(s.dispatcher_rows().await.is_empty());
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_terraform_build_undoes_the_scale_out() {
    let s = stack(Options::default()).await;
    fail_terraform(&s, 1, None).await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(out.error, "Pairscale.BuildFailed", "{out:?}");
    assert!(
        out.cause.contains("terraform") && out.cause.contains("undone"),
        "{}",
        out.cause
    );
    assert_nothing_left(&s).await;
}

/// The Terraform builds the router ran for the fleet, by status, in start order.
async fn terraform_statuses(s: &Stack) -> Vec<String> {
    s.builds(&s.tf_project)
        .await
        .iter()
        .map(|b| b["status"].as_str().unwrap().to_string())
        .collect()
}

const CAPACITY_ERROR: &str =
    "Error: creating EC2 Instance: InsufficientInstanceCapacity: We currently do not have \
    sufficient c6i.large capacity in the Availability Zone you requested (us-east-1a).";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terraform_build_that_failed_for_want_of_capacity_is_started_again_and_the_scale_out_completes(
) {
    let s = stack(Options::default()).await;
    fail_terraform(&s, 1, Some(CAPACITY_ERROR)).await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_succeeded(&out);
    // One failed attempt, then the retry that built the pairs; nothing undone.
    assert_eq!(terraform_statuses(&s).await, ["FAILED", "SUCCEEDED"]);
    let states = s.states_entered(&out.arn).await;
    for entered in ["Out: terraform Back off wait", "Out: terraform Start again"] {
        assert!(states.iter().any(|n| n == entered), "{entered}: {states:?}");
    }
    assert!(
        !states.iter().any(|n| n.starts_with("Out: undo")),
        "{states:?}"
    );
    assert_eq!(s.pair_count().await, "2");
    assert_eq!(s.instances().await.len(), 2);
    assert_eq!(with_status(&s.records().await, "active").len(), 2);
    assert_eq!(s.dispatcher_rows().await.len(), 2);
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_stopped_while_it_backs_off_is_undone_by_the_next_run() {
    let s = stack(Options::default()).await;
    // A back-off long enough to be stopped in: a minute, inside the two-minute build bound.
    s.configure(|c| c["build_retry_seconds"] = json!(60)).await;
    fail_terraform(&s, 1, Some(CAPACITY_ERROR)).await;
    let out = s
        .start("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    s.wait_for_state(&out, "Out: terraform Back off wait").await;
    s.stop(&out).await;
    assert_eq!(s.wait(&out).await.status, ExecutionStatus::Aborted);
    assert_eq!(terraform_statuses(&s).await, ["FAILED"]);

    // The next run finds the scale-out in the journal, stopped between two attempts: it undoes
    // it (the failed attempt built nothing; the undo's Terraform makes sure) and goes on.
    let next = s
        .run(
            "next",
            json!({"fleet": s.fleet, "target_pair_count": 2, "dry_run": true}),
        )
        .await;
    assert_succeeded(&next);
    let states = s.states_entered(&next.arn).await;
    for st in [
        "Recover: stop builds",
        "Recover: terraform Start",
        "Finish recovered runs",
    ] {
        assert!(states.iter().any(|n| n == st), "{st}: {states:?}");
    }
    // No second attempt was ever started: the failed one, then the undo's.
    assert_eq!(terraform_statuses(&s).await, ["FAILED", "SUCCEEDED"]);
    assert_nothing_left(&s).await;

    assert_nothing_to_recover(&s, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terraform_build_that_failed_for_good_is_undone_at_once() {
    let s = stack(Options::default()).await;
    let denied = "Error: creating EC2 Instance: operation error EC2: RunInstances, api error \
        UnauthorizedOperation: You are not authorized to perform this operation.";
    fail_terraform(&s, 1, Some(denied)).await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(out.error, "Pairscale.BuildFailed", "{out:?}");
    assert!(
        out.cause.contains("UnauthorizedOperation") && out.cause.contains("after 0 retries"),
        "the cause quotes the log line that decided: {}",
        out.cause
    );
    // The failed build, then the undo's: no second attempt.
    assert_eq!(terraform_statuses(&s).await, ["FAILED", "SUCCEEDED"]);
    let states = s.states_entered(&out.arn).await;
    assert!(!states.iter().any(|n| n.contains("Back off")), "{states:?}");
    assert!(
        states.iter().any(|n| n == "Out: undo terraform Start"),
        "{states:?}"
    );
    assert_nothing_left(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_that_outlasts_its_retries_is_undone() {
    let s = stack(Options::default()).await;
    let throttled = "Error: reading EC2 Instance: operation error EC2: DescribeInstances, \
        api error RequestLimitExceeded: Request limit exceeded.";
    // The stack's fleet retries twice: three attempts fail, the undo's build runs.
    fail_terraform(&s, 3, Some(throttled)).await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert!(
        out.cause.contains("RequestLimitExceeded") && out.cause.contains("after 2 retries"),
        "{}",
        out.cause
    );
    assert_eq!(
        terraform_statuses(&s).await,
        ["FAILED", "FAILED", "FAILED", "SUCCEEDED"]
    );
    let states = s.states_entered(&out.arn).await;
    let agains = states
        .iter()
        .filter(|n| *n == "Out: terraform Start again")
        .count();
    assert_eq!(agains, 2, "{states:?}");
    assert_nothing_left(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_crashes_mid_run_is_compensated() {
    let s = stack(Options::default()).await;
    // The state function crashes right after discover has written the new pairs' records.
    kit::router(
        reqwest::Method::POST,
        "faults",
        Some(
            json!({"lambda": {"function": s.function("state"), "when_action": "discover",
                               "mode": "crash", "times": 1}}),
        ),
    )
    .await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert!(out.cause.contains("undone"), "{out:?}");
    assert_eq!(s.pair_count().await, "0");
    assert!(s.records().await.is_empty());
    assert!(s.instances().await.is_empty());
    assert!(s.dispatcher_rows().await.is_empty());
    assert!(!s.lock_held().await);
}

/// A fleet of two carrying a call each, with a scale-in stopped at its drain wait: its lock
/// still held, its candidates draining, out of rotation and paused. Returns the stopped run and
/// every pair's address.
async fn stopped_mid_drain(s: &Stack) -> (String, BTreeMap<String, String>) {
    assert_succeeded(
        &s.run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
            .await,
    );
    let instances = s.instances().await;
    let draining = s.start("in", json!({"fleet": s.fleet, "delta": -1})).await;
    s.wait_for_state(&draining, "In: drain wait").await;
    s.stop(&draining).await;
    let stopped = s.wait(&draining).await;
    assert_eq!(stopped.status, ExecutionStatus::Aborted, "{stopped:?}");
    assert!(s.lock_held().await);
    let records = s.records().await;
    let quiesced = with_status(&records, "draining");
    assert!(!quiesced.is_empty(), "{records:?}");
    let rows = s.dispatcher_rows().await;
    for pair in &quiesced {
        assert_eq!(rows[pair].1, 4, "{pair} out of rotation: {rows:?}");
        assert_eq!(s.node_view(&instances[pair]).await, (1, true));
    }
    (draining, instances)
}

/// `next` repaired what the stopped run left and went on: every record active, every node in
/// rotation and taking calls with its call kept, the lock free.
async fn assert_repaired(s: &Stack, next: &Ended, instances: &BTreeMap<String, String>) {
    assert_succeeded(next);
    assert_eq!(next.output["outcome"], "no_op", "{}", next.output);
    let states = s.states_entered(&next.arn).await;
    for st in ["Recover unfinished runs", "Resume the stale run's nodes"] {
        assert!(states.iter().any(|n| n == st), "{st}: {states:?}");
    }
    let records = s.records().await;
    assert!(
        records.values().all(|r| r["status"] == "active"),
        "{records:?}"
    );
    let rows = s.dispatcher_rows().await;
    for (pair, ip) in instances {
        assert_eq!(rows[pair].1, 0, "{pair} back in rotation");
        assert_eq!(s.node_view(ip).await, (1, false), "{pair}: call kept");
    }
    assert!(!s.lock_held().await);
}

/// Policy `force` at a 2 s deadline, each node carrying one call that never ends.
fn force_options() -> Options {
    Options {
        policy: "force",
        deadline_seconds: 2,
        initial_calls: 1,
        ..Options::default()
    }
}

fn drain_options() -> Options {
    Options {
        policy: "wait",
        deadline_seconds: 300,
        initial_calls: 1,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_mid_drain_is_repaired_by_the_next_run() {
    let s = stack(drain_options()).await;
    let (draining, instances) = stopped_mid_drain(&s).await;

    // The next run breaks the lock (its holder is no longer running), repairs, and goes on.
    let next = s
        .run("next", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_repaired(&s, &next, &instances).await;
    let states = s.states_entered(&next.arn).await;
    assert!(
        states.iter().any(|n| n == "Break the lock if stale"),
        "{states:?}"
    );
    let (_, shown) = s
        .invoke("lock", json!({"action": "show", "fleet": s.fleet}))
        .await;
    assert_eq!(
        shown["lock"]["broken"]["previous_holder"], draining,
        "the break is recorded: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_mid_drain_whose_lock_expired_is_repaired_by_the_next_run() {
    let s = stack(drain_options()).await;
    let (_, instances) = stopped_mid_drain(&s).await;
    // Its lock runs out before anyone looks: the next run takes the expired lock as if it
    // were free, and only the fleet's journal says what was left.
    s.expire_lock().await;
    let next = s
        .run("next", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_repaired(&s, &next, &instances).await;
    let states = s.states_entered(&next.arn).await;
    assert!(
        !states.iter().any(|n| n == "Break the lock if stale"),
        "an expired lock is taken, not broken: {states:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_mid_drain_whose_lock_someone_else_broke_is_repaired_by_the_next_run() {
    let s = stack(drain_options()).await;
    let (draining, instances) = stopped_mid_drain(&s).await;
    // An operator breaks the lock (as `pairscale lock break` does) and does nothing else; the
    // next run finds the lock free.
    let (failed, broken) = s
        .invoke(
            "lock",
            json!({"action": "break_stale", "fleet": s.fleet, "breaker": "cli:ops",
                   "reason": "run stopped by hand"}),
        )
        .await;
    assert!(!failed, "{broken}");
    assert_eq!(broken["broken"]["previous_holder"], draining, "{broken}");
    assert!(!s.lock_held().await);
    let next = s
        .run("next", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_repaired(&s, &next, &instances).await;
    // Recovered once: a later run has nothing left to repair.
    let later = s
        .run("later", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_succeeded(&later);
    let states = s.states_entered(&later.arn).await;
    assert!(
        !states.iter().any(|n| n == "Resume the stale run's nodes"),
        "{states:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lock_mid_drain_puts_back_no_node() {
    let s = scaled_out(drain_options(), 2).await;
    let instances = s.instances().await;
    let draining = s.start("in", json!({"fleet": s.fleet, "delta": -1})).await;
    s.wait_for_state(&draining, "In: drain wait").await;
    // The run's lock expires and an operator takes it (as `pairscale drain` would, to drain the
    // same nodes): the run that lost it must not change them any more.
    s.expire_lock().await;
    let (failed, taken) = s
        .invoke(
            "lock",
            json!({"action": "acquire", "fleet": s.fleet, "owner": "cli:ops", "request": "maintenance"}),
        )
        .await;
    assert!(!failed, "{taken}");
    let lost = s.wait(&draining).await;
    assert_eq!(lost.status, ExecutionStatus::Failed, "{lost:?}");
    let records = s.records().await;
    let candidates = with_status(&records, "draining");
    assert!(!candidates.is_empty(), "{records:?}");
    let rows = s.dispatcher_rows().await;
    for pair in &candidates {
        assert_eq!(rows[pair].1, 4, "{pair} stays out of rotation: {rows:?}");
        assert_eq!(
            s.node_view(&instances[pair]).await,
            (1, true),
            "{pair}: still paused, its call kept"
        );
    }
    // Its undo tried to put the candidates back and was refused, naming who holds the lock.
    let refused = s.task_failures(&draining).await;
    assert!(
        refused
            .iter()
            .any(|e| e.contains("Pairscale.LockLost") && e.contains("held by cli:ops")),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_fails_before_anything_changes() {
    let s = stack(Options::default()).await;
    for (name, input, needle) in [
        ("zero", json!({"fleet": s.fleet, "delta": 0}), "delta"),
        (
            "both",
            json!({"fleet": s.fleet, "delta": 1, "target_pair_count": 3}),
            "target_pair_count",
        ),
        ("nofleet", json!({"target_pair_count": 2}), "fleet"),
        // Step Functions would end a run whose data passed 256 KB with States.DataLimitExceeded,
        // which no Catch sees: an oversized request is refused by name before anything.
        (
            "huge",
            json!({"fleet": s.fleet, "delta": 1, "reason": "x".repeat(200_000)}),
            "at most 16384 bytes",
        ),
    ] {
        let e = s.run(name, input).await;
        assert_eq!(e.status, ExecutionStatus::Failed, "{e:?}");
        assert_eq!(e.error, "Pairscale.InvalidRequest", "{e:?}");
        assert!(e.cause.contains(needle), "{name}: {}", e.cause);
    }
    assert_eq!(s.pair_count().await, "0");
    assert!(s.builds(&s.tf_project).await.is_empty());
    assert!(!s.lock_held().await);
}

/// Every build of `project` takes at least `secs` from now on (a running build keeps the
/// pace it started with).
async fn builds_take(project: &str, secs: f64) {
    kit::router(
        reqwest::Method::POST,
        "faults",
        Some(json!({"codebuild": {"project": project, "delay_secs": secs}})),
    )
    .await;
}

/// Wait until `what` holds (bounded: 60 s).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "not within 60 s: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

fn epoch(build: &Value, field: &str) -> f64 {
    build[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} of {build}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_stopped_while_its_terraform_runs_is_undone_by_the_next_run() {
    let s = stack(Options::default()).await;
    // The Terraform build creates the pairs in a moment, then runs on for two minutes.
    builds_take(&s.tf_project, 120.0).await;
    let out = s
        .start("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    s.wait_for_state(&out, "Out: terraform Wait").await;
    eventually("the build created both instances", || async {
        s.instances().await.len() == 2
    })
    .await;
    s.stop(&out).await;
    assert_eq!(s.wait(&out).await.status, ExecutionStatus::Aborted);
    let first = s.builds(&s.tf_project).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["status"], "IN_PROGRESS", "{first:?}");
    builds_take(&s.tf_project, 0.01).await;

    // The next run finds the unfinished scale-out in the fleet's journal: it stops the build,
    // then deregisters and destroys what it built, and only then goes on.
    let next = s
        .run(
            "next",
            json!({"fleet": s.fleet, "target_pair_count": 2, "dry_run": true}),
        )
        .await;
    assert_succeeded(&next);
    assert_eq!(next.output["outcome"], "dry_run", "{}", next.output);
    let states = s.states_entered(&next.arn).await;
    for st in [
        "Recover: stop builds",
        "Recover: ansible Start",
        "Recover: terraform Start",
        "Finish recovered runs",
    ] {
        assert!(states.iter().any(|n| n == st), "{st}: {states:?}");
    }
    let builds = s.builds(&s.tf_project).await;
    let stopped = builds.iter().find(|b| b["id"] == first[0]["id"]).unwrap();
    assert_eq!(stopped["status"], "STOPPED", "{stopped}");
    let undo = s.builds(&s.an_project).await;
    assert_eq!(undo.len(), 1, "one compensating ansible build: {undo:?}");
    assert!(
        epoch(stopped, "end_time") <= epoch(&undo[0], "start_time"),
        "the build ended before the compensation began: {stopped} {undo:?}"
    );
    assert_eq!(s.pair_count().await, "0");
    assert!(s.records().await.is_empty());
    assert!(s.instances().await.is_empty(), "{:?}", s.instances().await);
    assert!(s.dispatcher_rows().await.is_empty());
    assert!(!s.lock_held().await);

    // Finished once: the run after that has nothing to recover.
    assert_nothing_to_recover(&s, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_heartbeat_stops_the_running_build_before_the_scale_out_is_undone() {
    let s = stack(Options::default()).await;
    builds_take(&s.tf_project, 20.0).await;
    kit::router(
        reqwest::Method::POST,
        "faults",
        Some(
            json!({"lambda": {"function": s.function("lock"), "when_action": "heartbeat",
                               "mode": "error", "error_type": "Pairscale.LockNotOwned",
                               "error_message": "the lock was taken", "times": 1}}),
        ),
    )
    .await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert!(out.cause.contains("undone"), "{out:?}");
    let states = s.states_entered(&out.arn).await;
    assert!(
        states.iter().any(|n| n == "Out: terraform Stop"),
        "{states:?}"
    );
    let tf = s.builds(&s.tf_project).await;
    let an = s.builds(&s.an_project).await;
    assert_eq!(tf.len(), 2, "the build and the compensating one: {tf:?}");
    let first = tf
        .iter()
        .min_by(|a, b| epoch(a, "start_time").total_cmp(&epoch(b, "start_time")))
        .unwrap();
    assert_eq!(first["status"], "STOPPED", "{first}");
    assert_eq!(an.len(), 1, "{an:?}");
    assert!(
        epoch(first, "end_time") <= epoch(&an[0], "start_time"),
        "stopped before the compensation began: {first} {an:?}"
    );
    assert!(s.instances().await.is_empty());
    assert!(s.records().await.is_empty());
    assert!(!s.lock_held().await);
}

/// The process of the simulated node of `pair`.
fn node_pid(s: &Stack, pair: &str) -> u32 {
    let path = pairscale_local_build::nodes::pid_file_in(&s.state_dir, &s.fleet, pair);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// The next run of `s`'s fleet finished the removal `failed` left: the removed pairs are gone
/// (records, instances, dispatcher rows), the count says so, every pair left is active and in
/// rotation, and a run after that finds nothing to recover.
async fn assert_removal_finished(s: &Stack, removed: &str, left: usize) {
    let next = s
        .run(
            "next",
            json!({"fleet": s.fleet, "target_pair_count": left, "dry_run": true}),
        )
        .await;
    assert_succeeded(&next);
    let states = s.states_entered(&next.arn).await;
    for st in [
        "Recover unfinished runs",
        "Recover: ansible Start",
        "Recover: terraform Start",
        "Finish recovered runs",
    ] {
        assert!(states.iter().any(|n| n == st), "{st}: {states:?}");
    }
    assert_eq!(s.pair_count().await, left.to_string());
    let records = s.records().await;
    assert_eq!(records.len(), left, "{records:?}");
    assert!(!records.contains_key(removed), "{records:?}");
    assert!(
        records.values().all(|r| r["status"] == "active"),
        "{records:?}"
    );
    let instances = s.instances().await;
    assert_eq!(instances.len(), left, "{instances:?}");
    assert!(!instances.contains_key(removed), "{instances:?}");
    let rows = s.dispatcher_rows().await;
    assert_eq!(rows.len(), left, "{rows:?}");
    assert!(rows.values().all(|(_, flags)| *flags == 0), "{rows:?}");
    assert!(!s.lock_held().await);
    assert_nothing_to_recover(s, left).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_whose_calls_were_cut_is_removed_even_when_the_run_then_fails_on_a_spare() {
    let s = scaled_out(force_options(), 3).await;
    let instances = s.instances().await;
    // 3 → 2 with one spare racing; no call ever ends, so the deadline forces the hangup.
    let inn = s.start("in", json!({"fleet": s.fleet, "delta": -1})).await;
    s.wait_for_state(&inn, "In: force hangups").await;
    // The chosen pair is committed to removal before its call is cut; the spare is still
    // draining. The spare stops answering before the run can put it back.
    let records = s.records().await;
    let chosen = with_status(&records, "drained");
    let spares = with_status(&records, "draining");
    assert_eq!((chosen.len(), spares.len()), (1, 1), "{records:?}");
    let (chosen, spare) = (chosen[0].clone(), spares[0].clone());
    let pid = node_pid(&s, &spare);
    signal(pid, "-STOP");
    let failed = s.wait(&inn).await;
    signal(pid, "-CONT");

    assert_eq!(failed.status, ExecutionStatus::Failed, "{failed:?}");
    let states = s.states_entered(&inn).await;
    for st in [
        "In: force hangups",
        "In: undo, resume spares",
        "In: failed after hangups",
    ] {
        assert!(states.iter().any(|n| n == st), "{st}: {states:?}");
    }
    assert!(
        !states.iter().any(|n| n == "In: undo, resume candidates"),
        "the pair whose call was cut is never put back: {states:?}"
    );
    assert!(failed.cause.contains(&chosen), "{}", failed.cause);
    // The chosen pair lost its call and stays out of rotation; the spare's record is back.
    assert_eq!(s.node_view(&instances[&chosen]).await, (0, true));
    assert_eq!(s.dispatcher_rows().await[&chosen].1, 4);
    let records = s.records().await;
    assert_eq!(records[&chosen]["status"], "drained", "{records:?}");
    assert_eq!(records[&spare]["status"], "active", "{records:?}");
    assert!(!s.lock_held().await, "released, its journal left open");

    // The next run removes the chosen pair and puts the spare back, its call kept.
    assert_removal_finished(&s, &chosen, 2).await;
    assert_eq!(s.node_view(&instances[&spare]).await, (1, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_in_whose_deregistration_fails_is_finished_by_the_next_run() {
    let s = scaled_out(Options::default(), 3).await;
    fail_ansible(&s, 1).await;
    let inn = s.run("in", json!({"fleet": s.fleet, "delta": -1})).await;
    assert_eq!(inn.status, ExecutionStatus::Failed, "{inn:?}");
    assert_eq!(inn.error, "Pairscale.BuildFailed", "{inn:?}");
    assert!(inn.cause.contains("the next run"), "{}", inn.cause);
    let records = s.records().await;
    let drained = with_status(&records, "drained");
    assert_eq!(drained.len(), 1, "{records:?}");
    let removed = drained[0].clone();
    assert_eq!(s.pair_count().await, "3", "not committed yet");
    assert!(!s.lock_held().await);

    assert_removal_finished(&s, &removed, 2).await;
}

/// How the calls of `pair`'s simulated node ended, from the last line its process wrote when
/// it was stopped (bounded: 60 s for a node still going away).
async fn final_tally(s: &Stack, pair: &str) -> Value {
    let log = pairscale_local_build::nodes::pid_file_in(&s.state_dir, &s.fleet, pair)
        .with_extension("log");
    let mut tally = Value::Null;
    eventually(
        &format!("{pair}'s last call tally in {}", log.display()),
        || {
            let found = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| v.get("call_tally").cloned())
                .next_back();
            if let Some(t) = found {
                tally = t;
            }
            let done = !tally.is_null();
            async move { done }
        },
    )
    .await;
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_pair_that_takes_calls_after_its_drain_is_destroyed_only_once_they_end() {
    let s = scaled_out(
        Options {
            policy: "wait",
            deadline_seconds: 300,
            calls_per_sec: 2.0,
            median_call_secs: 2.0,
            ..Options::default()
        },
        2,
    )
    .await;
    let instances = s.instances().await;
    // The deregistration takes 30 s: time for the winner to restart and take calls before
    // the run's last look at it.
    builds_take(&s.an_project, 30.0).await;
    let inn = s.start("in", json!({"fleet": s.fleet, "delta": -1})).await;
    s.wait_for_state(&inn, "In: ansible Start").await;
    let records = s.records().await;
    let drained = with_status(&records, "drained");
    assert_eq!(drained.len(), 1, "{records:?}");
    let winner = drained[0].clone();
    let ip = instances[&winner].clone();
    assert_eq!(s.node_view(&ip).await, (0, true), "{winner} drained");

    // Its FreeSWITCH restarts: the pause is forgotten (it lives in memory), and calls come up
    // on it, as its own ESL client's would (the simulator gives calls to any node that takes
    // them; Kamailio no longer routes to it).
    let mut c = pairscale_esl::Client::connect(
        &format!("{ip}:{}", s.esl_port),
        &pairscale_esl::Password::new(&s.esl_password),
        pairscale_esl::ClientOptions::default(),
    )
    .await
    .unwrap();
    let before: Value =
        serde_json::from_str(c.api("fssim_call_tally").await.unwrap().trim()).unwrap();
    let said = c.api("fsctl shutdown restart").await.unwrap();
    assert!(said.starts_with("+OK"), "{said}");
    eventually(&format!("calls on the restarted {winner}"), || {
        let (s, ip) = (&s, &ip);
        async move { s.node_view(ip).await.0 > 0 }
    })
    .await;
    let states = s.states_entered(&inn).await;
    assert!(
        !states.iter().any(|n| n == "In: confirm empty"),
        "the calls must come before the last look for this test to mean anything: {states:?}"
    );

    let ended = s.wait(&inn).await;
    assert_succeeded(&ended);
    assert_eq!(
        ended.output["pairs_removed"],
        json!([winner]),
        "{}",
        ended.output
    );
    assert!(!s.node_answers(&ip).await, "{winner} is destroyed");
    // Every call it took after the restart ended by itself (the pause put back at the last
    // look let no new one in): none was up when its node was stopped, none was cut.
    let tally = final_tally(&s, &winner).await;
    let since = |k: &str| tally[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    assert!(since("admitted") > 0, "{winner}: {before} then {tally}");
    assert_eq!(
        since("natural"),
        since("admitted"),
        "{winner}: {before} then {tally}"
    );
    assert_eq!(tally["shutdown"], 0, "{winner}: {tally}");
    assert_eq!(tally["hupall"], 0, "{winner}: {tally}");
    let states = s.states_entered(&inn).await;
    assert!(
        states.iter().any(|n| n == "In: confirm wait"),
        "the run waited for the calls on {winner}: {states:?}"
    );
    assert_eq!(s.pair_count().await, "1");
    assert!(!s.lock_held().await);
}

/// The fleet's baked image and a warm pool of `pool` stopped nodes.
async fn with_warm_pool(s: &Stack, pool: u32) {
    s.configure(|c| {
        c["image_id"] = json!("ami-0123456789abcdef0");
        c["warm_pool"] = json!(pool);
    })
    .await;
}

/// A fleet with a pool of one scaled from 0 to 1: the run, its one new pair and the one warm
/// pair it refilled the pool with.
async fn one_serving_one_warm() -> (Stack, Ended, Vec<String>, Vec<String>) {
    let s = stack(Options::default()).await;
    with_warm_pool(&s, 1).await;
    let first = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 1}))
        .await;
    assert_succeeded(&first);
    let serving = ids(&first.output["pairs_added"]);
    let warm = ids(&first.output["warm_pairs_added"]);
    assert_eq!((serving.len(), warm.len()), (1, 1), "{}", first.output);
    (s, first, serving, warm)
}

fn ids(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v} is not a list of ids: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_takes_the_warm_pool_first_and_refills_it_once_its_pairs_take_calls() {
    // 0 → 1: nothing warm yet, so a new pair; once it is in rotation, one warm pair.
    let (s, first, serving, warm) = one_serving_one_warm().await;
    let records = s.records().await;
    assert_eq!(with_status(&records, "active"), serving);
    assert_eq!(with_status(&records, "warm"), warm);
    assert_eq!(s.pair_count().await, "1", "a warm pair is not capacity");
    let nodes = s.instance_states().await;
    assert_eq!(nodes[&serving[0]].1, "running", "{nodes:?}");
    assert_eq!(nodes[&warm[0]].1, "stopped", "{nodes:?}");
    let client = |pair: &str| format!("{}-{pair}-esl", s.fleet);
    assert_eq!(
        s.services().await,
        [client(&serving[0])],
        "no ESL client for a warm pair"
    );
    assert!(!s.dispatcher_rows().await.contains_key(&warm[0]));
    // The refill's build came after the scale-out's own, once the new pair was in rotation,
    // and the run's time to capacity ends before it.
    let at_capacity = first.output["in_rotation_at"].as_str().unwrap_or_default();
    assert!(
        at_capacity.parse::<jiff::Timestamp>().is_ok(),
        "{}",
        first.output
    );
    let states = s.states_entered(&first.arn).await;
    let at = |name: &str| states.iter().position(|n| n == name).unwrap_or(usize::MAX);
    assert!(
        at("Out: resume new nodes") < at("Out: refill terraform Start")
            && at("Out: refill terraform Start") < usize::MAX,
        "{states:?}"
    );

    // 1 → 2: the warm pair is taken, its own node started in place, and the pool refilled.
    let second = s
        .run("out2", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_succeeded(&second);
    assert_eq!(
        ids(&second.output["pairs_added"]),
        warm,
        "{}",
        second.output
    );
    let refilled = ids(&second.output["warm_pairs_added"]);
    assert_eq!(refilled.len(), 1);
    assert!(!refilled.contains(&warm[0]) && !refilled.contains(&serving[0]));
    let after = s.instance_states().await;
    assert_eq!(
        after[&warm[0]],
        (nodes[&warm[0]].0.clone(), "running".to_string()),
        "the warm node itself, started"
    );
    assert_eq!(after[&refilled[0]].1, "stopped", "{after:?}");
    let records = s.records().await;
    assert_eq!(with_status(&records, "active").len(), 2);
    assert_eq!(with_status(&records, "warm"), refilled);
    let rows = s.dispatcher_rows().await;
    assert_eq!(
        rows[&warm[0]].1, 0,
        "the taken pair is in rotation: {rows:?}"
    );
    let ip = records[&warm[0]]["private_ip"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(s.node_answers(&ip).await, "its node answers at {ip}");
    let mut clients = vec![client(&serving[0]), client(&warm[0])];
    clients.sort();
    assert_eq!(s.services().await, clients);
    assert_eq!(s.pair_count().await, "2");
    assert!(!s.lock_held().await);
    // Validation sees a consistent fleet: warm pairs and all.
    assert_nothing_to_recover(&s, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_that_took_a_warm_pair_and_failed_puts_it_back_in_the_pool_stopped() {
    let (s, _, serving, warm) = one_serving_one_warm().await;
    let before = s.instance_states().await;

    // The next scale-out takes the warm pair, then its Ansible build fails: undone.
    fail_ansible(&s, 1).await;
    let out = s
        .run("out2", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert!(out.cause.contains("undone"), "{}", out.cause);
    let states = s.states_entered(&out.arn).await;
    assert!(
        states.iter().any(|n| n == "Out: undo terraform Start"),
        "{states:?}"
    );
    assert!(
        !states.iter().any(|n| n.starts_with("Out: refill")),
        "an undone scale-out refills nothing: {states:?}"
    );

    // The pair is warm again on its own stopped node; nothing else was made or kept.
    let records = s.records().await;
    assert_eq!(with_status(&records, "warm"), warm);
    assert_eq!(with_status(&records, "active"), serving);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        s.instance_states().await,
        before,
        "the same nodes, the warm one stopped"
    );
    assert_eq!(
        s.services().await,
        [format!("{}-{}-esl", s.fleet, serving[0])]
    );
    assert!(!s.dispatcher_rows().await.contains_key(&warm[0]));
    assert_eq!(s.pair_count().await, "1");
    assert!(!s.lock_held().await);
    assert_nothing_to_recover(&s, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_stopped_during_its_pool_refill_stands_and_the_next_one_takes_the_pool() {
    let s = stack(Options::default()).await;
    with_warm_pool(&s, 1).await;
    let out = s
        .start("out", json!({"fleet": s.fleet, "target_pair_count": 1}))
        .await;
    // The scale-out's own Terraform build runs at full speed; the refill's makes the warm
    // node in a moment, then runs on for two minutes.
    s.wait_for_state(&out, "Out: ansible Start").await;
    builds_take(&s.tf_project, 120.0).await;
    s.wait_for_state(&out, "Out: refill terraform Wait").await;
    eventually("the refill made a stopped node", || async {
        s.instance_states()
            .await
            .values()
            .any(|(_, st)| st == "stopped")
    })
    .await;
    s.stop(&out).await;
    assert_eq!(s.wait(&out).await.status, ExecutionStatus::Aborted);
    builds_take(&s.tf_project, 0.01).await;
    let records = s.records().await;
    let serving = with_status(&records, "active");
    let warm = with_status(&records, "warm");
    assert_eq!((serving.len(), warm.len()), (1, 1), "{records:?}");
    assert_eq!(s.pair_count().await, "1", "the scale-out was committed");

    // The next run stops the refill's build and undoes nothing: the scale-out stands, the
    // warm record stays, and nothing is built or destroyed.
    let states = dry_run(&s, "next", 1).await;
    assert!(
        states.iter().any(|n| n == "Recover: stop builds"),
        "{states:?}"
    );
    assert!(
        !states.iter().any(|n| n == "Recover: terraform Start"),
        "{states:?}"
    );
    let mut statuses: Vec<String> = s
        .builds(&s.tf_project)
        .await
        .iter()
        .map(|b| b["status"].as_str().unwrap_or_default().to_string())
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        ["STOPPED", "SUCCEEDED"],
        "the refill's stopped, no other"
    );
    let after = s.records().await;
    assert_eq!(with_status(&after, "active"), serving);
    assert_eq!(with_status(&after, "warm"), warm);
    let rows = s.dispatcher_rows().await;
    assert_eq!(rows[&serving[0]].1, 0, "still in rotation: {rows:?}");

    // The next scale-out takes the warm pair whatever its build left of it.
    let grow = s
        .run("grow", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_succeeded(&grow);
    assert_eq!(ids(&grow.output["pairs_added"]), warm, "{}", grow.output);
    assert_eq!(s.instance_states().await[&warm[0]].1, "running");
    assert_nothing_to_recover(&s, 2).await;
}
