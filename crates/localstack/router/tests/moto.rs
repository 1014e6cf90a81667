//! The router in front of the real moto server: requests it does not serve reach moto
//! unchanged, and a Step Functions execution inside moto invokes a handler through the
//! router (moto is started with `MOTO_PORT` naming the router, as tests/setup does).
//! Needs `PAIRSCALE_MOTO_SERVER`; without it the tests say so loudly and pass.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{eventually, free_port, moto_server, Moto, Router};
use serde_json::{json, Value};

const REGION: &str = "us-east-1";

async fn start(server: &Path) -> (Router, Moto) {
    let moto_port = free_port();
    let router = Router::start(&format!("http://127.0.0.1:{moto_port}"));
    let moto = Moto::start(server, moto_port, router.port).await;
    (router, moto)
}

/// A JSON-protocol AWS call through the router, signed only as far as moto looks (it reads
/// the service and region from the credential scope; signatures are not checked).
async fn aws(
    router: &Router,
    service: &str,
    target: &str,
    json_version: &str,
    body: Value,
) -> (u16, Value) {
    let resp = router
        .client
        .post(format!("{}/", router.url))
        .header("X-Amz-Target", target)
        .header(
            "Content-Type",
            format!("application/x-amz-json-{json_version}"),
        )
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/{service}/aws4_request, \
                 SignedHeaders=host;x-amz-date;x-amz-target, Signature=0"
            ),
        )
        .header("X-Amz-Date", "20250101T000000Z")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn requests_the_router_does_not_serve_reach_moto_unchanged() {
    let Some(server) = moto_server() else { return };
    let (router, _moto) = start(&server).await;
    let (status, out) = aws(
        &router,
        "ssm",
        "AmazonSSM.PutParameter",
        "1.1",
        json!({"Name": "/pairscale/router-test", "Value": "through the router", "Type": "String"}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["Version"], 1);
    let (status, out) = aws(
        &router,
        "ssm",
        "AmazonSSM.GetParameter",
        "1.1",
        json!({"Name": "/pairscale/router-test"}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["Parameter"]["Value"], "through the router");

    // moto's own errors come back as moto sent them.
    let (status, out) = aws(
        &router,
        "ssm",
        "AmazonSSM.GetParameter",
        "1.1",
        json!({"Name": "/missing"}),
    )
    .await;
    assert_eq!(status, 400, "{out}");
    assert_eq!(out["__type"], "ParameterNotFound");

    // A query string and a non-POST method pass through too.
    let resp = router
        .client
        .get(format!("{}/moto-api/data.json?x=1", router.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_step_functions_execution_in_moto_invokes_the_handler_through_the_router() {
    let Some(server) = moto_server() else { return };
    let (router, moto) = start(&server).await;
    let resp = router
        .client
        .post(format!("{}/moto-api/config", moto.url))
        .json(&json!({"stepfunctions": {"execute_state_machine": true}}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    router.register_echo("echo", json!({})).await;

    let function_arn = format!("arn:aws:lambda:{REGION}:123456789012:function:echo");
    let definition = json!({
        "StartAt": "Echo",
        "States": {
            "Echo": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "End": true
            }
        }
    });
    let (status, out) = aws(
        &router,
        "states",
        "AWSStepFunctions.CreateStateMachine",
        "1.0",
        json!({"name": "router-echo", "definition": definition.to_string(),
               "roleArn": "arn:aws:iam::123456789012:role/sfn"}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let machine = out["stateMachineArn"].as_str().unwrap().to_owned();
    let input = json!({"action": "echo", "fleet": "f-1", "n": 3});
    let (status, out) = aws(
        &router,
        "states",
        "AWSStepFunctions.StartExecution",
        "1.0",
        json!({"stateMachineArn": machine, "input": input.to_string()}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let execution = out["executionArn"].as_str().unwrap().to_owned();

    let described = eventually(60, "the execution to end", || async {
        let (_, out) = aws(
            &router,
            "states",
            "AWSStepFunctions.DescribeExecution",
            "1.0",
            json!({"executionArn": execution}),
        )
        .await;
        (out["status"] != "RUNNING").then_some(out)
    })
    .await;
    assert_eq!(
        described["status"],
        "SUCCEEDED",
        "{described}\nrouter log:\n{}",
        router.log()
    );
    let output = lenient_json(described["output"].as_str().unwrap());
    assert_eq!(output["echo"], input, "{output}");
    assert_eq!(output["function_arn"], function_arn);
    // The invocation reached the handler through the router, not moto's own Lambda.
    assert_eq!(
        router.get("/_router/functions/echo").await["cold_starts"],
        1
    );
}

/// moto may print an execution's output as a Python literal (`{'a': True, 'b': None}`)
/// rather than JSON; read either.
fn lenient_json(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            quote @ ('\'' | '"') => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(other) => s.push(other),
                            None => break,
                        },
                        c if c == quote => break,
                        c => s.push(c),
                    }
                }
                out.push_str(&Value::String(s).to_string());
            }
            c if c.is_ascii_alphabetic() => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if !n.is_ascii_alphanumeric() {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                out.push_str(match word.as_str() {
                    "True" => "true",
                    "False" => "false",
                    "None" => "null",
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("cannot read {text:?} as JSON or Python: {e}"))
}

#[test]
fn python_literals_read_as_json() {
    assert_eq!(
        lenient_json(r#"{'a': True, 'b': None, 'c': [1, 'it\'s', "q'"], 'd': False}"#),
        json!({"a": true, "b": null, "c": [1, "it's", "q'"], "d": false})
    );
    assert_eq!(
        lenient_json(r#"{"plain": "json"}"#),
        json!({"plain": "json"})
    );
}
