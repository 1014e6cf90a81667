//! `policy explain|suspend|resume`: the policy function's decision shown, and its switch.

use crate::common::{assert_code, pairscale, USER};
use pairscale_stack::{stack, Options, Stack};
use serde_json::{json, Value};

/// The runs the policy started (executions named `<fleet>-policy-...`).
async fn policy_runs(s: &Stack) -> usize {
    aws_sdk_sfn::Client::new(&s.sdk)
        .list_executions()
        .state_machine_arn(&s.state_machine)
        .send()
        .await
        .unwrap()
        .executions()
        .iter()
        .filter(|e| e.name().starts_with(&format!("{}-policy-", s.fleet)))
        .count()
}

async fn explain_json(s: &Stack) -> Value {
    let r = pairscale(
        Some(s),
        &["policy", "explain", "--fleet", &s.fleet, "--output", "json"],
    )
    .await;
    assert_code(&r, 0);
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_decision_and_suspend_and_resume_switch_the_acting() {
    // A fleet of no pairs under a policy with min_pairs 1: every decision is to scale out.
    let s = stack(Options::default()).await;
    s.configure(|c| c["policy"] = json!({"target_channels_per_pair": 100}))
        .await;

    let r = pairscale(Some(&s), &["policy", "explain", "--fleet", &s.fleet]).await;
    assert_code(&r, 0);
    for want in [
        &format!("Policy of fleet {}", s.fleet),
        "min_pairs: at least 1",
        "Decision 0 -> 1",
        "explain never does",
    ] {
        assert!(r.stdout.contains(want), "{want:?} in\n{}", r.stdout);
    }
    let v = explain_json(&s).await;
    assert_eq!(v["decision"]["desired"], 1, "{v}");
    assert_eq!(v["decision"]["act"], true, "{v}");
    assert!(
        v["held_back"].as_str().unwrap().starts_with("explain"),
        "{v}"
    );
    // explain never acts and never writes: no run, no recommendation kept.
    assert_eq!(policy_runs(&s).await, 0);
    let (failed, shown) = s
        .invoke("policy", json!({"action": "show", "fleet": s.fleet}))
        .await;
    assert!(!failed, "{shown}");
    assert!(
        shown["state"]["recent"]
            .as_array()
            .is_none_or(|r| r.is_empty()),
        "{shown}"
    );

    // Suspended: the decision stands, nothing acts, and explain says who and why.
    let r = pairscale(
        Some(&s),
        &[
            "policy",
            "suspend",
            "--fleet",
            &s.fleet,
            "--reason",
            "carrier maintenance",
        ],
    )
    .await;
    assert_code(&r, 0);
    assert!(
        r.stdout
            .starts_with(&format!("Suspended the policy of fleet {}", s.fleet)),
        "{}",
        r.stdout
    );
    let v = explain_json(&s).await;
    assert_eq!(v["suspended"]["by"], format!("cli:{USER}"), "{v}");
    assert_eq!(v["suspended"]["reason"], "carrier maintenance", "{v}");
    assert_eq!(
        (
            v["decision"]["desired"].clone(),
            v["decision"]["act"].clone()
        ),
        (json!(1), json!(false)),
        "{v}"
    );
    let (failed, evaluated) = s
        .invoke("policy", json!({"action": "evaluate", "fleet": s.fleet}))
        .await;
    assert!(!failed, "{evaluated}");
    assert!(evaluated["started"].is_null(), "{evaluated}");
    assert_eq!(policy_runs(&s).await, 0);

    // Resumed: the next decision acts again.
    let r = pairscale(Some(&s), &["policy", "resume", "--fleet", &s.fleet]).await;
    assert_code(&r, 0);
    assert!(r.stdout.starts_with("Resumed the policy"), "{}", r.stdout);
    let v = explain_json(&s).await;
    assert!(v["suspended"].is_null(), "{v}");
    assert_eq!(v["decision"]["act"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_policy_input_is_refused_by_name_and_changes_nothing() {
    let s = stack(Options::default()).await;
    s.configure(|c| c["policy"] = json!({"target_channels_per_pair": 100}))
        .await;
    // An instant that is not one, or one far from the clock.
    for at in ["08:00", "2020-01-01T00:00:00Z"] {
        let r = pairscale(
            Some(&s),
            &["policy", "explain", "--fleet", &s.fleet, "--at", at],
        )
        .await;
        assert_code(&r, 2);
        assert!(r.stderr.contains("time"), "{at}: {}", r.stderr);
    }
    // A suspension needs its reason.
    let r = pairscale(Some(&s), &["policy", "suspend", "--fleet", &s.fleet]).await;
    assert_code(&r, 2);
    assert!(r.stderr.contains("--reason"), "{}", r.stderr);
    let v = explain_json(&s).await;
    assert!(v["suspended"].is_null(), "{v}");
    // Without the function's name, the command says where to find it.
    let r = pairscale(None, &["policy", "resume", "--fleet", &s.fleet]).await;
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("PAIRSCALE_POLICY_FUNCTION"),
        "{}",
        r.stderr
    );
    assert_eq!(policy_runs(&s).await, 0);
}
