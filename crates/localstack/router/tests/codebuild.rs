//! CodeBuild's StartBuild, BatchGetBuilds and StopBuild through the router, as the SDK sends
//! them (JSON 1.1 with `X-Amz-Target`), over real local commands.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{eventually, free_port, Router};
use serde_json::{json, Value};

fn router() -> Router {
    Router::start(&format!("http://127.0.0.1:{}", free_port()))
}

async fn call(router: &Router, operation: &str, body: Value) -> (u16, Value) {
    let resp = router
        .client
        .post(format!("{}/", router.url))
        .header("X-Amz-Target", format!("CodeBuild_20161006.{operation}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/codebuild/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-target, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn project(router: &Router, name: &str, script: &str) {
    router
        .put(
            &format!("/_router/codebuild/projects/{name}"),
            json!({"command": ["/bin/sh", "-c", script], "env": {"GREETING": "hello"}, "workdir": "/tmp"}),
        )
        .await;
}

async fn start(router: &Router, body: Value) -> Value {
    let (status, out) = call(router, "StartBuild", body).await;
    assert_eq!(status, 200, "{out}");
    out["build"].clone()
}

/// The build once it has left IN_PROGRESS.
async fn finished(router: &Router, id: &str) -> Value {
    eventually(20, "the build to end", || async {
        let (_, out) = call(router, "BatchGetBuilds", json!({"ids": [id]})).await;
        let build = out["builds"][0].clone();
        (build["buildStatus"] != "IN_PROGRESS").then_some(build)
    })
    .await
}

async fn record(router: &Router, id: &str) -> Value {
    let builds = router.get("/_router/builds").await;
    builds["builds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn a_build_runs_its_command_with_the_overrides_and_succeeds() {
    let router = router();
    project(
        &router,
        "apply",
        "echo \"$GREETING $WHO from $(pwd) as $CODEBUILD_BUILD_NUMBER\"; echo oops >&2",
    )
    .await;
    let build = start(
        &router,
        json!({"projectName": "apply",
               "environmentVariablesOverride": [{"name": "WHO", "value": "world", "type": "PLAINTEXT"}]}),
    )
    .await;
    let id = build["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("apply:"), "{build}");
    assert_eq!(
        build["arn"],
        format!("arn:aws:codebuild:us-east-1:123456789012:build/{id}")
    );
    assert_eq!(build["buildNumber"], 1);
    assert_eq!(build["projectName"], "apply");
    assert_eq!(build["buildStatus"], "IN_PROGRESS");
    assert!(build["startTime"].is_number());
    let vars = build["environment"]["environmentVariables"]
        .as_array()
        .unwrap();
    assert!(vars.contains(&json!({"name": "WHO", "value": "world", "type": "PLAINTEXT"})));
    assert!(vars.contains(&json!({"name": "GREETING", "value": "hello", "type": "PLAINTEXT"})));

    let done = finished(&router, &id).await;
    assert_eq!(done["buildStatus"], "SUCCEEDED");
    assert_eq!(done["currentPhase"], "COMPLETED");
    assert_eq!(done["buildComplete"], true);
    assert!(done["endTime"].as_f64().unwrap() >= done["startTime"].as_f64().unwrap());

    let rec = record(&router, &id).await;
    assert_eq!(rec["status"], "SUCCEEDED");
    assert_eq!(rec["exit_code"], 0);
    assert_eq!(
        rec["env_overrides"],
        json!([{"name": "WHO", "value": "world", "type": "PLAINTEXT"}])
    );
    let log = std::fs::read_to_string(rec["log_path"].as_str().unwrap()).unwrap();
    assert!(log.contains("hello world from /tmp as 1"), "{log}");
    assert!(log.contains("oops"), "{log}");
}

#[tokio::test]
async fn a_failing_command_ends_the_build_failed_with_its_exit_code() {
    let router = router();
    project(&router, "apply", "exit 3").await;
    let id = start(&router, json!({"projectName": "apply"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(finished(&router, &id).await["buildStatus"], "FAILED");
    assert_eq!(record(&router, &id).await["exit_code"], 3);
}

#[tokio::test]
async fn stop_build_kills_the_whole_process_group() {
    let router = router();
    let marker = router.state_dir.join("child.pid");
    let script = format!("sleep 300 & echo $! > {}; wait", marker.display());
    project(&router, "apply", &script).await;
    let id = start(&router, json!({"projectName": "apply"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let child: u32 = eventually(10, "the command's child", || async {
        std::fs::read_to_string(&marker).ok()?.trim().parse().ok()
    })
    .await;
    assert!(std::path::Path::new(&format!("/proc/{child}")).exists());

    let (status, out) = call(&router, "StopBuild", json!({"id": id})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["build"]["buildStatus"], "STOPPED");
    assert!(out["build"]["endTime"].is_number());
    // The grandchild went with the group (a zombie has no cmdline, a live process has one).
    eventually(5, "the grandchild to go", || async {
        let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
        cmdline.is_empty().then_some(())
    })
    .await;
    assert_eq!(finished(&router, &id).await["buildStatus"], "STOPPED");
}

#[tokio::test]
async fn the_same_idempotency_token_gives_the_same_build() {
    let router = router();
    project(&router, "apply", "sleep 1").await;
    let token = json!({"projectName": "apply", "idempotencyToken": "t-1"});
    let first = start(&router, token.clone()).await;
    let second = start(&router, token).await;
    assert_eq!(first["id"], second["id"]);
    let third = start(
        &router,
        json!({"projectName": "apply", "idempotencyToken": "t-2"}),
    )
    .await;
    assert_ne!(first["id"], third["id"]);
    assert_eq!(third["buildNumber"], 2);
    assert_eq!(
        router.get("/_router/builds").await["builds"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn unknown_projects_and_builds_are_reported_as_codebuild_does() {
    let router = router();
    let (status, out) = call(&router, "StartBuild", json!({"projectName": "nope"})).await;
    assert_eq!(status, 400);
    assert_eq!(out["__type"], "ResourceNotFoundException");
    assert!(out["message"].as_str().unwrap().contains("project/nope"));

    let (status, out) = call(&router, "BatchGetBuilds", json!({"ids": ["nope:1234"]})).await;
    assert_eq!(status, 200);
    assert_eq!(out, json!({"builds": [], "buildsNotFound": ["nope:1234"]}));

    let (status, out) = call(&router, "StopBuild", json!({"id": "nope:1234"})).await;
    assert_eq!(status, 400);
    assert_eq!(out["__type"], "ResourceNotFoundException");

    let (status, out) = call(&router, "StartBuild", json!({"project": "typo"})).await;
    assert_eq!(status, 400);
    assert_eq!(out["__type"], "InvalidInputException");
}

#[tokio::test]
async fn fail_next_fails_builds_without_running_them_and_a_delay_holds_them() {
    let router = router();
    let marker = router.state_dir.join("ran");
    project(&router, "apply", &format!("touch {}", marker.display())).await;
    let resp = router
        .client
        .post(format!("{}/_router/faults", router.url))
        .json(&json!({"codebuild": {"project": "apply", "fail_next": 1, "delay_secs": 1.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let started = Instant::now();
    let id = start(&router, json!({"projectName": "apply"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(finished(&router, &id).await["buildStatus"], "FAILED");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(!marker.exists(), "the failed build ran its command");
    assert_eq!(record(&router, &id).await["exit_code"], Value::Null);

    // The delay stays until the faults are cleared; the failure was used up.
    let started = Instant::now();
    let id = start(&router, json!({"projectName": "apply"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(finished(&router, &id).await["buildStatus"], "SUCCEEDED");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(marker.exists());
    assert_eq!(
        router.get("/_router/faults").await["codebuild"],
        json!([{"project": "apply", "fail_next": 0, "delay_secs": 1.0}])
    );
}
