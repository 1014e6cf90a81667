//! Start-up from a config file, and a graceful stop that leaves no process behind.

#![allow(clippy::unwrap_used)]

mod common;

use common::{echo_fn, eventually, free_port, Router};
use serde_json::{json, Value};

fn alive(pid: u32) -> bool {
    // A zombie keeps its /proc entry but has an empty cmdline.
    !std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .is_empty()
}

#[tokio::test]
async fn a_config_file_registers_functions_and_projects_at_start_and_sigterm_stops_them() {
    let dir = std::env::temp_dir().join(format!(
        "pairscale-router-config-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("grandchild.pid");
    let config = json!({
        "functions": {"echo": {"binary": echo_fn(), "timeout_secs": 10, "max_concurrency": 1}},
        "codebuild": {"projects": {"long": {
            "command": ["/bin/sh", "-c", format!("sleep 300 & echo $! > {}; wait", pid_file.display())]
        }}}
    });
    let config_path = dir.join("router.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let mut router = Router::start_with(
        &format!("http://127.0.0.1:{}", free_port()),
        &["--config", config_path.to_str().unwrap()],
    );

    let resp = router.invoke("echo", &json!({"from": "config"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["echo"]["from"],
        "config"
    );
    let logs = router
        .client
        .get(format!("{}/_router/functions/echo/logs", router.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let function_pid: u32 = logs
        .split("pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in the function's log:\n{logs}"));
    assert!(alive(function_pid));

    let resp = router
        .client
        .post(format!("{}/", router.url))
        .header("X-Amz-Target", "CodeBuild_20161006.StartBuild")
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(json!({"projectName": "long"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let build_pid: u32 = eventually(10, "the build's child", || async {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .await;
    assert!(alive(build_pid));

    router.stop();
    assert!(router.log().contains("stopped"), "{}", router.log());
    eventually(5, "the function and the build to go", || async {
        (!alive(function_pid) && !alive(build_pid)).then_some(())
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_config_file_stops_the_router_with_the_reason() {
    let path = std::env::temp_dir().join(format!(
        "pairscale-router-bad-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(
        &path,
        r#"{"functions": {"f": {"binary": "/no/such/binary"}}}"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pairscale-router"))
        .args(["--moto", "http://127.0.0.1:1", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/binary"), "{stderr}");
}
