//! `lock show` and `lock break`: an operator's lock, a running execution's, a stopped one's;
//! and `--timeout` on a run that outlasts it.

use crate::common::{assert_code, pairscale, Ran, USER};
use pairscale_stack::{stack, Options, Stack, ACCOUNT, PREFIX};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_lock_is_broken_only_with_force_and_a_reason() {
    let s = stack(Options::default()).await;
    hold(&s, "cli:maintenance").await;

    let r = pairscale(
        Some(&s),
        &["lock", "show", "--fleet", &s.fleet, "--output", "json"],
    )
    .await;
    assert_code(&r, 0);
    assert_eq!(r.json()["held"], true);
    assert_eq!(r.json()["lock"]["holder"], "cli:maintenance");

    // A run started now fails cleanly, and the CLI says so with exit 1.
    let r = pairscale(
        Some(&s),
        &["scale", "--fleet", &s.fleet, "--to", "1", "--wait"],
    )
    .await;
    assert_code(&r, 1);
    assert!(r.stdout.contains("FAILED"), "{}", r.stdout);
    assert!(
        r.stdout.contains("error: Pairscale.LockHeld") && r.stdout.contains("cli:maintenance"),
        "{}",
        r.stdout
    );

    let r = pairscale(Some(&s), &["lock", "break", "--fleet", &s.fleet]).await;
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("not broken") && r.stderr.contains("--force --reason"),
        "{}",
        r.stderr
    );
    let r = pairscale(Some(&s), &["lock", "break", "--fleet", &s.fleet, "--force"]).await;
    assert_code(&r, 2);
    assert!(s.lock_held().await);

    let r = force_break(&s, "maintenance host died").await;
    assert_code(&r, 0);
    assert!(r.stdout.starts_with("Forced the lock"), "{}", r.stdout);
    let r = pairscale(
        Some(&s),
        &["lock", "show", "--fleet", &s.fleet, "--output", "json"],
    )
    .await;
    let shown = r.json();
    assert_eq!(shown["held"], false, "{shown}");
    let broken = &shown["lock"]["broken"];
    assert_eq!(broken["broken_by"], format!("cli:{USER}"), "{shown}");
    assert_eq!(broken["previous_holder"], "cli:maintenance", "{shown}");
    assert!(
        broken["reason"]
            .as_str()
            .unwrap()
            .contains("maintenance host died"),
        "{shown}"
    );
    // A fleet that does not exist: what to check, and where.
    let r = pairscale(Some(&s), &["status", "--fleet", "no-such-fleet"]).await;
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("unknown fleet 'no-such-fleet'")
            && r.stderr
                .contains(&format!("{PREFIX}/no-such-fleet/pair_count"))
            && r.stderr.contains("--ssm-prefix"),
        "{}",
        r.stderr
    );
    // Nor is a run started for it, nor a lock item taken.
    let r = pairscale(
        Some(&s),
        &["scale", "--fleet", "no-such-fleet", "--to", "2"],
    )
    .await;
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("unknown fleet 'no-such-fleet'"),
        "{}",
        r.stderr
    );
    let r = pairscale(
        Some(&s),
        &[
            "lock",
            "show",
            "--fleet",
            "no-such-fleet",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(r.json()["lock"], serde_json::Value::Null, "{}", r.stdout);
    // Nothing left to break is not an error.
    let r = pairscale(Some(&s), &["lock", "break", "--fleet", &s.fleet]).await;
    assert_code(&r, 0);
    assert!(r.stdout.contains("nothing to break"), "{}", r.stdout);
}

/// The stack's fleet locked by `owner`, through the lock function as a run would take it.
async fn hold(s: &Stack, owner: &str) {
    let acquire = json!({"action": "acquire", "fleet": s.fleet, "owner": owner});
    let (failed, got) = s.invoke("lock", acquire).await;
    assert!(!failed, "{got}");
}

/// `lock break --force --reason <why>` on the stack's fleet.
async fn force_break(s: &Stack, why: &str) -> Ran {
    let args = [
        "lock", "break", "--fleet", &s.fleet, "--force", "--reason", why,
    ];
    pairscale(Some(s), &args).await
}

/// A state machine that only waits: its executions stay RUNNING as long as a test needs.
async fn waiting_machine(s: &Stack) -> String {
    let sfn = aws_sdk_sfn::Client::new(&s.sdk);
    sfn.create_state_machine()
        .name(format!("{}-waits", s.id))
        .definition(
            json!({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 120, "End": true}}})
                .to_string(),
        )
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/pairscale-e2e"))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_executions_lock_is_never_broken_and_a_stopped_ones_is() {
    let s = stack(Options::default()).await;
    let machine = waiting_machine(&s).await;

    // Waiting is bounded: past --timeout the CLI says so with exit 3; the run goes on.
    let mut args = vec![
        "scale",
        "--fleet",
        &s.fleet,
        "--to",
        "1",
        "--wait",
        "--timeout",
        "2s",
    ];
    args.extend(["--state-machine-arn", &machine, "--output", "json"]);
    let r = pairscale(Some(&s), &args).await;
    assert_code(&r, 3);
    assert!(r.stderr.contains("still RUNNING"), "{}", r.stderr);
    assert!(r.stderr.contains("stop-execution"), "{}", r.stderr);

    let sfn = aws_sdk_sfn::Client::new(&s.sdk);
    let run = sfn
        .start_execution()
        .state_machine_arn(&machine)
        .name(format!("{}-holder", s.id))
        .input("{}")
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_string();
    hold(&s, &run).await;

    let r = pairscale(
        Some(&s),
        &["lock", "show", "--fleet", &s.fleet, "--output", "json"],
    )
    .await;
    assert_eq!(r.json()["summary"]["holder_status"], "RUNNING", "{r:?}");
    let r = pairscale(Some(&s), &["lock", "break", "--fleet", &s.fleet]).await;
    assert_code(&r, 1);
    assert!(r.stderr.contains("RUNNING"), "{}", r.stderr);
    let r = force_break(&s, "impatient").await;
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("even with --force") && r.stderr.contains("stop-execution"),
        "{}",
        r.stderr
    );
    assert!(s.lock_held().await);

    // Stopped, its lock is stale: a plain break takes it, saying why.
    sfn.stop_execution()
        .execution_arn(&run)
        .send()
        .await
        .unwrap();
    let r = pairscale(
        Some(&s),
        &["lock", "break", "--fleet", &s.fleet, "--output", "json"],
    )
    .await;
    assert_code(&r, 0);
    let v = r.json();
    assert_eq!(v["outcome"], "broken", "{v}");
    assert_eq!(v["stale_because"], "holder execution is ABORTED", "{v}");
    assert!(!s.lock_held().await);
}
