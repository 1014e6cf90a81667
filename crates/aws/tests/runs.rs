//! The operator's adapters against the local stack: runs of a state machine in the emulator
//! ([`Runs`]), and a real handler binary invoked through the router ([`Functions`]).
#![allow(clippy::unwrap_used)]

use pairscale_aws::clients::Clients;
use pairscale_aws::lambda::Functions;
use pairscale_aws::sfn::{Run, Runs};
use pairscale_core::lock::ExecutionStatus;
use pairscale_core::ErrorName;
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// A state machine in the emulator; returns its ARN.
async fn machine(sdk: &aws_config::SdkConfig, definition: Value) -> String {
    aws_sdk_sfn::Client::new(sdk)
        .create_state_machine()
        .name(kit::unique("runs"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/pairscale-tests")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string()
}

/// Read a run until it has ended.
async fn ended(runs: &Runs, arn: &str) -> Run {
    let begun = Instant::now();
    loop {
        let run = runs.describe(arn).await.unwrap();
        if run.summary.status != ExecutionStatus::Running {
            return run;
        }
        assert!(begun.elapsed() < Duration::from_secs(30), "{run:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_run_is_started_read_to_its_end_listed_and_followed_through_its_history() {
    let sdk = kit::sdk().await;
    let runs = Clients::from_config(sdk.clone()).runs();
    let arn = machine(
        &sdk,
        json!({"StartAt": "First", "States": {
            "First": {"Type": "Pass", "Result": {"step": 1}, "ResultPath": "$.first", "Next": "Second"},
            "Second": {"Type": "Pass", "End": true}}}),
    )
    .await;
    let first = runs
        .start(&arn, "run-1", &json!({"fleet": "voice"}))
        .await
        .unwrap();
    let run = ended(&runs, &first).await;
    assert_eq!(run.summary.status, ExecutionStatus::Succeeded);
    assert_eq!(run.summary.name, "run-1");
    assert_eq!(run.summary.execution_arn, first);
    let output: Value = serde_json::from_str(run.output.as_deref().unwrap()).unwrap();
    assert_eq!(output, json!({"fleet": "voice", "first": {"step": 1}}));
    assert!(
        run.summary.stopped_at >= Some(run.summary.started_at),
        "{run:?}"
    );
    assert_eq!((run.error, run.cause), (None, None));

    // The history, oldest first, says which states the run went through and what they put out.
    let events = runs.recent_events(&first, 200).await.unwrap();
    assert!(events.windows(2).all(|w| w[0].id < w[1].id), "{events:?}");
    let entered: Vec<&str> = events
        .iter()
        .filter(|e| e.kind.ends_with("StateEntered"))
        .filter_map(|e| e.state.as_deref())
        .collect();
    assert_eq!(entered, ["First", "Second"]);
    let exited = events
        .iter()
        .find(|e| e.kind == "PassStateExited" && e.state.as_deref() == Some("First"))
        .unwrap();
    assert!(
        exited.output.as_deref().unwrap().contains("\"step\""),
        "{exited:?}"
    );

    // Listed newest first, only as many as asked for.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = runs.start(&arn, "run-2", &json!({})).await.unwrap();
    ended(&runs, &second).await;
    let listed = runs.newest(&arn, 1).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, "run-2");
    let listed = runs.newest(&arn, 5).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["run-2", "run-1"]);
}

#[tokio::test]
async fn a_failed_run_carries_its_error_and_cause_and_a_missing_one_is_an_aws_error() {
    let sdk = kit::sdk().await;
    let runs = Clients::from_config(sdk.clone()).runs();
    let arn = machine(
        &sdk,
        json!({"StartAt": "Fail", "States": {
            "Fail": {"Type": "Fail", "Error": ErrorName::LockHeld.as_str(), "Cause": "held by cli:bob"}}}),
    )
    .await;
    let run = runs.start(&arn, "fails", &json!({})).await.unwrap();
    let run = ended(&runs, &run).await;
    assert_eq!(run.summary.status, ExecutionStatus::Failed);
    assert_eq!(run.error.as_deref(), Some(ErrorName::LockHeld.as_str()));
    assert_eq!(run.cause.as_deref(), Some("held by cli:bob"));

    let gone = format!("{}-nothing", arn.replace(":stateMachine:", ":execution:"));
    let e = runs.describe(&gone).await.unwrap_err();
    assert_eq!(e.name(), ErrorName::Aws, "{e}");
    assert!(e.to_string().contains("ExecutionDoesNotExist"), "{e}");
    let e = runs
        .start(&format!("{arn}-nothing"), "x", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::Aws, "{e}");
}

/// The emulator's echo handler (`pairscale-echo-fn`), built with the workspace beside this
/// test's own binary.
fn echo_fn() -> String {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("pairscale-echo-fn"))
        .unwrap();
    assert!(
        path.exists(),
        "{} is not built: build the whole workspace (cargo build --workspace --all-targets)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

async fn echo(name: &str) -> Functions {
    kit::router(
        reqwest::Method::PUT,
        &format!("functions/{name}"),
        Some(json!({"binary": echo_fn()})),
    )
    .await;
    Clients::from_config(kit::sdk().await).functions()
}

#[tokio::test]
async fn a_function_answers_or_names_its_error_from_the_catalogue() {
    let name = kit::unique("echo");
    let functions = echo(&name).await;
    let payload = json!({"action": "check", "nodes": [{"pair_id": "pair-0001"}]});
    let answer = functions.invoke(&name, &payload).await.unwrap().unwrap();
    assert_eq!(answer["echo"], payload);

    let failed = functions
        .invoke(&name, &json!({"fail": ErrorName::NodeUnreachable.as_str()}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(failed.name(), Some(ErrorName::NodeUnreachable));
    assert_eq!(
        failed.message,
        "asked to fail with Pairscale.NodeUnreachable"
    );

    // A crash is the platform's error, outside the catalogue.
    let crashed = functions
        .invoke(&name, &json!({"exit": true}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(crashed.name(), None, "{crashed}");
    assert_eq!(crashed.error_type, "Runtime.ExitError");
}

#[tokio::test]
async fn an_unknown_function_is_a_failed_call_not_a_function_error() {
    let functions = Clients::from_config(kit::sdk().await).functions();
    let e = functions
        .invoke(&kit::unique("nothing"), &json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::Aws, "{e}");
    assert!(e.to_string().contains("lambda:Invoke"), "{e}");
}
