//! The router's control API (`/_router/...`, started by `tests/setup/15-router.sh`): the
//! functions and CodeBuild projects it runs, the builds it ran, the faults it injects.

use crate::error::KitError;
use serde_json::{json, Value};

/// The router's base URL; an error unless `PAIRSCALE_ROUTER_URL` points at this machine.
pub fn url() -> Result<String, KitError> {
    let url = std::env::var("PAIRSCALE_ROUTER_URL").unwrap_or_default();
    if url.starts_with("http://127.0.0.1") {
        Ok(url)
    } else {
        Err(KitError::NotStarted {
            var: "PAIRSCALE_ROUTER_URL",
            value: url,
            service: "the router",
        })
    }
}

/// `method /_router/{path}` with a JSON body; the router's JSON answer (null when it is not
/// JSON), or an error unless it answers 2xx.
pub async fn request(
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, KitError> {
    let url = format!("{}/_router/{path}", url()?);
    let what = format!("{method} {url}");
    let mut req = reqwest::Client::new().request(method, &url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .map_err(|source| KitError::RouterUnreachable {
            request: what.clone(),
            source,
        })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(KitError::RouterRefused {
            request: what,
            status,
            body: text,
        });
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Register a local CodeBuild project whose build runs `command` (argv) in `workdir`.
pub async fn put_codebuild_project(
    name: &str,
    command: &[&str],
    env: Value,
    workdir: &str,
) -> Result<(), KitError> {
    request(
        reqwest::Method::PUT,
        &format!("codebuild/projects/{name}"),
        Some(json!({"command": command, "env": env, "workdir": workdir})),
    )
    .await
    .map(drop)
}
