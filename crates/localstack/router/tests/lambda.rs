//! Lambda `Invoke` through the router, served by the real `pairscale-echo-fn` handler.
//! moto is not needed here: the router is pointed at a port nothing listens on.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{free_port, Router};
use serde_json::{json, Value};

fn router() -> Router {
    Router::start(&format!("http://127.0.0.1:{}", free_port()))
}

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn an_invocation_by_name_or_by_arn_returns_the_handlers_result() {
    let router = router();
    router.register_echo("echo", json!({})).await;
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:echo";
    let refs = [
        "echo".to_owned(),
        urlencoding::encode(arn).into_owned(),
        arn.to_owned(),
        format!("{}?Qualifier=%24LATEST", urlencoding::encode(arn)),
        "echo%3A%24LATEST".to_owned(),
        "123456789012%3Afunction%3Aecho".to_owned(),
    ];
    for (i, function) in refs.iter().enumerate() {
        let payload = json!({"n": i, "nested": {"list": [1, 2, 3]}});
        let resp = router.invoke(function, &payload).await;
        assert_eq!(resp.status(), 200, "{function}");
        assert_eq!(header(&resp, "x-amz-executed-version"), Some("$LATEST"));
        assert_eq!(header(&resp, "x-amz-function-error"), None);
        assert!(header(&resp, "x-amzn-requestid").is_some());
        let out = body(resp).await;
        assert_eq!(out["echo"], payload, "{function}");
        assert!(out["function_arn"]
            .as_str()
            .unwrap()
            .ends_with(":function:echo"));
    }
    // One environment served them all, one after the other.
    let status = router.get("/_router/functions/echo").await;
    assert_eq!(status["environments"], 1);
    assert_eq!(status["cold_starts"], 1);
}

#[tokio::test]
async fn a_handler_error_is_unhandled_with_the_handlers_own_error_type() {
    let router = router();
    router.register_echo("echo", json!({})).await;
    let resp = router
        .invoke("echo", &json!({"fail": "Pairscale.LockHeld"}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        body(resp).await,
        json!({"errorType": "Pairscale.LockHeld", "errorMessage": "asked to fail with Pairscale.LockHeld"})
    );
}

#[tokio::test]
async fn a_crash_is_a_runtime_exit_error_and_the_next_invocation_is_a_fresh_cold_start() {
    let router = router();
    router.register_echo("echo", json!({})).await;
    let resp = router.invoke("echo", &json!({"exit": true})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-amz-function-error"), Some("Unhandled"));
    let error = body(resp).await;
    assert_eq!(error["errorType"], "Runtime.ExitError");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("exit status: 3"),
        "{error}"
    );

    let resp = router.invoke("echo", &json!({"after": "crash"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-amz-function-error"), None);
    assert_eq!(body(resp).await["echo"], json!({"after": "crash"}));
    assert_eq!(
        router.get("/_router/functions/echo").await["cold_starts"],
        2
    );
}

#[tokio::test]
async fn a_handler_that_outruns_its_timeout_is_sandbox_timedout() {
    let router = router();
    router
        .register_echo("slow", json!({"timeout_secs": 1}))
        .await;
    let resp = router.invoke("slow", &json!({"sleep_ms": 5000})).await;
    assert_eq!(header(&resp, "x-amz-function-error"), Some("Unhandled"));
    let error = body(resp).await;
    assert_eq!(error["errorType"], "Sandbox.Timedout");
    assert!(error["errorMessage"]
        .as_str()
        .unwrap()
        .contains("Task timed out after 1.00 seconds"));
}

#[tokio::test]
async fn an_unknown_function_is_a_404_resource_not_found() {
    let router = router();
    let resp = router.invoke("missing", &json!({})).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        header(&resp, "x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    assert_eq!(
        body(resp).await,
        json!({"Type": "User", "message": "Function not found: arn:aws:lambda:us-east-1:123456789012:function:missing"})
    );
    // A deleted function is unknown again.
    router.register_echo("gone", json!({})).await;
    let resp = router
        .client
        .delete(format!("{}/_router/functions/gone", router.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(router.invoke("gone", &json!({})).await.status(), 404);
}

#[tokio::test]
async fn event_invocations_are_accepted_and_dry_runs_only_checked() {
    let router = router();
    router.register_echo("echo", json!({})).await;
    let resp = router
        .invoke_with("echo", &json!({"async": 1}), "Event")
        .await;
    assert_eq!(resp.status(), 202);
    let resp = router.invoke_with("echo", &json!({}), "DryRun").await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        router
            .invoke_with("nope", &json!({}), "DryRun")
            .await
            .status(),
        404
    );
    // The event ran in the background.
    common::eventually(10, "the event invocation", || async {
        let status = router.get("/_router/functions/echo").await;
        (status["cold_starts"] == 1 && status["busy"] == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn concurrent_invocations_scale_out_to_max_concurrency_and_then_queue() {
    let router = router();
    router
        .register_echo("echo", json!({"max_concurrency": 2}))
        .await;
    // Warm both environments so that cold starts do not blur the timing.
    let warm = futures_all(&router, 2, 0).await;
    assert_eq!(warm.len(), 2);
    let started = Instant::now();
    let results = futures_all(&router, 4, 600).await;
    let took = started.elapsed();
    assert!(
        results.iter().all(|v| v["echo"]["sleep_ms"] == 600),
        "{results:?}"
    );
    // Four invocations of 0.6 s on two processes: two rounds, not one and not four.
    assert!(took >= Duration::from_millis(1150), "{took:?}");
    assert!(took < Duration::from_millis(2300), "{took:?}");
    assert_eq!(
        router.get("/_router/functions/echo").await["environments"],
        2
    );
}

async fn futures_all(router: &Router, n: usize, sleep_ms: u64) -> Vec<Value> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let client = router.client.clone();
        let url = format!("{}/2015-03-31/functions/echo/invocations", router.url);
        set.spawn(async move {
            client
                .post(url)
                .body(json!({"i": i, "sleep_ms": sleep_ms}).to_string())
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        });
    }
    set.join_all().await
}

#[tokio::test]
async fn a_crash_fault_hits_only_its_action_and_the_function_recovers() {
    let router = router();
    router.register_echo("lock", json!({})).await;
    let resp = router
        .client
        .post(format!("{}/_router/faults", router.url))
        .json(
            &json!({"lambda": {"function": "arn:aws:lambda:us-east-1:123456789012:function:lock",
                                 "when_action": "commit", "mode": "crash", "times": 1}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(body(resp).await["lambda"][0]["function"], "lock");

    let other = router.invoke("lock", &json!({"action": "acquire"})).await;
    assert_eq!(header(&other, "x-amz-function-error"), None);

    let crashed = router.invoke("lock", &json!({"action": "commit"})).await;
    assert_eq!(crashed.status(), 200);
    assert_eq!(header(&crashed, "x-amz-function-error"), Some("Unhandled"));
    assert_eq!(body(crashed).await["errorType"], "Runtime.ExitError");
    assert_eq!(router.get("/_router/faults").await["lambda"], json!([]));

    let again = router.invoke("lock", &json!({"action": "commit"})).await;
    assert_eq!(header(&again, "x-amz-function-error"), None);
    assert_eq!(body(again).await["echo"]["action"], "commit");
    // The crash killed the process: the retry was a cold start.
    assert_eq!(
        router.get("/_router/functions/lock").await["cold_starts"],
        2
    );
}

#[tokio::test]
async fn an_error_fault_answers_with_its_error_type_without_running_the_handler() {
    let router = router();
    router.register_echo("lock", json!({})).await;
    let resp = router
        .client
        .post(format!("{}/_router/faults", router.url))
        .json(
            &json!({"lambda": {"function": "lock", "when_action": "commit", "mode": "error",
                                 "times": 2, "error_type": "Pairscale.Retryable"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for _ in 0..2 {
        let resp = router.invoke("lock", &json!({"action": "commit"})).await;
        assert_eq!(header(&resp, "x-amz-function-error"), Some("Unhandled"));
        assert_eq!(body(resp).await["errorType"], "Pairscale.Retryable");
    }
    let resp = router.invoke("lock", &json!({"action": "commit"})).await;
    assert_eq!(header(&resp, "x-amz-function-error"), None);
    // Only the last invocation reached a process.
    assert_eq!(
        router.get("/_router/functions/lock").await["environments"],
        1
    );

    // A bad fault is refused and a cleared list stays empty.
    let resp = router
        .client
        .post(format!("{}/_router/faults", router.url))
        .json(&json!({"lambda": {"function": "lock", "mode": "error"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = router
        .client
        .delete(format!("{}/_router/faults", router.url))
        .send()
        .await
        .unwrap();
    assert_eq!(body(resp).await, json!({"codebuild": [], "lambda": []}));
}

#[tokio::test]
async fn a_bad_registration_is_refused_with_the_reason() {
    let router = router();
    let resp = router
        .client
        .put(format!("{}/_router/functions/echo", router.url))
        .json(&json!({"binary": "/no/such/handler"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(body(resp).await["error"]
        .as_str()
        .unwrap()
        .contains("/no/such/handler"));
}

#[test]
fn the_router_refuses_to_listen_beyond_loopback() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pairscale-router"))
        .args(["--listen", "0.0.0.0:0", "--moto", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback only"), "{stderr}");
    assert!(out.stdout.is_empty());
}
