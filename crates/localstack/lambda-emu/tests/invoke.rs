//! The emulator against a real `lambda_runtime` binary: `pairscale-echo-fn`, built with this
//! package.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pairscale_lambda_emu::{EmuError, Function, FunctionError, FunctionSpec, Invocation};
use serde_json::{json, Value};

fn spec() -> FunctionSpec {
    FunctionSpec::new("echo", env!("CARGO_BIN_EXE_pairscale-echo-fn"))
        .timeout(Duration::from_secs(5))
}

async fn ok(function: &Function, payload: Value) -> Value {
    match function.invoke(payload).await {
        Ok(Invocation::Ok(v)) => v,
        other => panic!(
            "expected a response, got {other:?}\n{}",
            function.logs().render()
        ),
    }
}

/// The output is copied by a background task, which may trail the exit a little.
async fn eventually_logged(function: &Function, text: &str) -> bool {
    for _ in 0..200 {
        if function.logs().render().contains(text) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn an_event_round_trips_through_the_runtime() {
    let function = Function::spawn(spec()).await.unwrap();
    let out = ok(&function, json!({"hello": "world", "n": [1, 2, 3]})).await;
    assert_eq!(out["echo"], json!({"hello": "world", "n": [1, 2, 3]}));
    assert_eq!(out["function_arn"], json!(function.arn()));
    assert!(function.arn().ends_with(":function:echo"));
    assert_eq!(out["has_deadline"], json!(true));
    assert_eq!(out["request_id"].as_str().unwrap().len(), 36);

    let timings = function.cold_start().await.unwrap();
    assert!(timings.init.is_some());
    assert!(timings.first_response.is_some());
    assert!(timings.init <= timings.first_response);
    assert!(eventually_logged(&function, "echo function starting").await);
}

#[tokio::test]
async fn a_function_error_keeps_its_error_type_exactly() {
    let function = Function::spawn(spec()).await.unwrap();
    let got = function
        .invoke(json!({"fail": "Pairscale.LockHeld"}))
        .await
        .unwrap();
    assert_eq!(
        got,
        Invocation::Error(FunctionError {
            error_type: "Pairscale.LockHeld".into(),
            error_message: "asked to fail with Pairscale.LockHeld".into(),
        })
    );
    // The environment survives a function error.
    ok(&function, json!({"after": "error"})).await;
    assert_eq!(function.starts(), 1);
}

#[tokio::test]
async fn a_panic_is_a_function_error_and_the_process_lives_on() {
    let function = Function::spawn(spec()).await.unwrap();
    let got = function.invoke(json!({"panic": true})).await.unwrap();
    let Invocation::Error(error) = got else {
        panic!("expected a function error, got {got:?}")
    };
    assert!(error.error_message.contains("asked to panic"), "{error:?}");
    ok(&function, json!({"after": "panic"})).await;
    assert_eq!(function.starts(), 1);
}

#[tokio::test]
async fn a_crash_is_reported_and_the_next_invoke_starts_a_new_process() {
    let function = Function::spawn(spec()).await.unwrap();
    ok(&function, json!({"warm": 1})).await;

    let err = function.invoke(json!({"exit": true})).await.unwrap_err();
    match err {
        EmuError::Crashed { status } => assert_eq!(status.code(), Some(3)),
        other => panic!("expected a crash, got {other:?}"),
    }
    assert!(
        eventually_logged(&function, "asked to exit").await,
        "{}",
        function.logs().render()
    );
    assert!(function.cold_start().await.is_none());

    let out = ok(&function, json!({"after": "crash"})).await;
    assert_eq!(out["echo"], json!({"after": "crash"}));
    assert_eq!(function.starts(), 2);
    assert!(function.cold_start().await.unwrap().init.is_some());
}

#[tokio::test]
async fn a_slow_invocation_times_out_and_the_next_one_starts_fresh() {
    let function = Function::spawn(spec().timeout(Duration::from_millis(300)))
        .await
        .unwrap();
    let err = function
        .invoke(json!({"sleep_ms": 5_000}))
        .await
        .unwrap_err();
    assert!(matches!(err, EmuError::Timeout { .. }), "{err:?}");

    let out = ok(&function, json!({"sleep_ms": 1})).await;
    assert_eq!(out["echo"], json!({"sleep_ms": 1}));
    assert_eq!(function.starts(), 2);
}

#[tokio::test]
async fn twenty_sequential_invocations_share_one_process() {
    let function = Function::spawn(spec()).await.unwrap();
    let mut ids = std::collections::HashSet::new();
    for i in 0..20 {
        let out = ok(&function, json!({"i": i})).await;
        assert_eq!(out["echo"]["i"], json!(i));
        ids.insert(out["request_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 20, "every invocation has its own request id");
    assert_eq!(function.starts(), 1);
}

#[tokio::test]
async fn concurrent_callers_are_served_one_at_a_time() {
    let function = std::sync::Arc::new(Function::spawn(spec()).await.unwrap());
    let calls = (0..8).map(|i| {
        let f = function.clone();
        tokio::spawn(async move { f.invoke(json!({"i": i, "sleep_ms": 5})).await })
    });
    for (i, call) in calls.enumerate() {
        let got = call.await.unwrap().unwrap().into_result().unwrap();
        assert_eq!(got["echo"]["i"], json!(i));
    }
    assert_eq!(function.starts(), 1);
}

#[tokio::test]
async fn stop_makes_the_next_invoke_a_cold_start() {
    let function = Function::spawn(spec()).await.unwrap();
    ok(&function, json!({})).await;
    function.stop().await;
    assert!(function.cold_start().await.is_none());
    ok(&function, json!({})).await;
    assert_eq!(function.starts(), 2);
}

#[tokio::test]
async fn a_missing_binary_is_a_spawn_error() {
    let err = Function::spawn(FunctionSpec::new("nope", "/nonexistent/pairscale-nope"))
        .await
        .unwrap_err();
    assert!(matches!(err, EmuError::Spawn { .. }), "{err:?}");
}

#[tokio::test]
async fn an_init_error_is_reported_with_its_type() {
    let function = Function::spawn(spec().env("ECHO_INIT_ERROR", "Pairscale.InvalidConfig"))
        .await
        .unwrap();
    match function.invoke(json!({})).await.unwrap_err() {
        EmuError::InitFailed {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "Pairscale.InvalidConfig");
            assert_eq!(error_message, "asked to fail init");
        }
        other => panic!(
            "expected an init failure, got {other:?}\n{}",
            function.logs().render()
        ),
    }
}

#[tokio::test]
async fn a_runtime_that_dies_during_init_is_a_crash() {
    // The runtime cannot start without a numeric memory size; it panics before polling.
    let function = Function::spawn(spec().env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "not-a-number"))
        .await
        .unwrap();
    let err = function.invoke(json!({})).await.unwrap_err();
    assert!(matches!(err, EmuError::Crashed { .. }), "{err:?}");
}
