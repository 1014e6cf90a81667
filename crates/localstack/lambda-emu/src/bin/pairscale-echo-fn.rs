//! A handler for the emulator's tests: echoes its payload, or misbehaves on request.
//!
//! - `{"fail": "Pairscale.X"}`: a function error with that `errorType`;
//! - `{"panic": true}`: a panic (the runtime reports it as a function error);
//! - `{"exit": true}`: the process exits with status 3 (a crash);
//! - `{"sleep_ms": N}`: sleeps N ms, then echoes.
//!
//! With `ECHO_INIT_ERROR` set it fails its init instead: it posts that value as the
//! `errorType` to `/runtime/init/error` and exits, as a runtime whose setup failed does.

use std::io::{Read, Write};
use std::time::Duration;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let payload = event.payload;
    if let Some(error_type) = payload.get("fail").and_then(Value::as_str) {
        return Err(Diagnostic {
            error_type: error_type.to_owned(),
            error_message: format!("asked to fail with {error_type}"),
        });
    }
    if payload.get("panic").and_then(Value::as_bool) == Some(true) {
        panic!("asked to panic");
    }
    if payload.get("exit").and_then(Value::as_bool) == Some(true) {
        eprintln!("asked to exit");
        std::process::exit(3);
    }
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    Ok(json!({
        "echo": payload,
        "request_id": event.context.request_id,
        "function_arn": event.context.invoked_function_arn,
        "has_deadline": event.context.deadline > 0,
    }))
}

/// `lambda_runtime` posts to `/init/error` only for SnapStart hooks, so write it by hand.
fn fail_init(error_type: &str) -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(std::io::Error::other)?;
    let body = json!({"errorType": error_type, "errorMessage": "asked to fail init"}).to_string();
    let mut conn = std::net::TcpStream::connect(&api)?;
    write!(
        conn,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Lambda-Runtime-Function-Error-Type: Runtime.InitError\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply)?;
    eprintln!(
        "init error posted: {}",
        String::from_utf8_lossy(&reply).lines().next().unwrap_or("")
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    eprintln!("echo function starting");
    if let Ok(error_type) = std::env::var("ECHO_INIT_ERROR") {
        fail_init(&error_type)?;
        std::process::exit(1);
    }
    lambda_runtime::run(service_fn(handler)).await
}
