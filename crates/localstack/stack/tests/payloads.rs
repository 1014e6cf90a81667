//! Step Functions ends a run whose state data passes 256 KB (`States.DataLimitExceeded`,
//! which no Catch sees: no undo, no release). A scale-in of a fleet at its 1,000-pair maximum,
//! through the real state machine: validate, plan, the quality reading, select, quiesce, check,
//! resume, every commit and the builds. Every state's input and output and every task's result
//! in the execution's history is measured, and each must stay under 200 KB; the test prints
//! the largest.
//!
//! The fleet's 1,000 nodes are one simulator process (an Event Socket each, on its own loopback
//! port), its records are written through the state function under a lock of the test's own,
//! its dispatcher rows go straight into Kamailio's table, and its builds do nothing: a scale-in
//! by one changes one node, and the payloads are what is measured here.
#![allow(clippy::unwrap_used)]

use aws_sdk_sfn::types::HistoryEvent;
use pairscale_stack::*;
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

const PAIRS: usize = 1_000;
/// Under Step Functions' 256 KB, with room for what a run adds (errors, retries' causes).
const BUDGET: usize = 200 * 1024;

/// The simulator process; killed with the test.
struct Nodes(Child);

impl Drop for Nodes {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `PAIRS` simulated FreeSWITCH event sockets on random loopback ports, and their addresses.
fn start_nodes(password: &str) -> (Nodes, Vec<String>) {
    let mut child = Command::new(binary("pairscale-fssim").unwrap())
        .args(["--nodes", &PAIRS.to_string(), "--heartbeat-secs", "0"])
        .env("FSSIM_PASSWORD", password)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut addrs = Vec::with_capacity(PAIRS);
    for line in out.lines().take(PAIRS) {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        addrs.push(v["addr"].as_str().unwrap().to_string());
    }
    assert_eq!(addrs.len(), PAIRS, "the simulator printed every node");
    (Nodes(child), addrs)
}

async fn invoke_ok(s: &Stack, function: &str, payload: Value) -> Value {
    let (failed, out) = s.invoke(function, payload).await;
    assert!(!failed, "{function}: {out}");
    out
}

/// A fleet of `PAIRS` active pairs: the configuration's maximum raised to 1,000, the records
/// written through the state function under the test's own lock, the count committed, and
/// every node's dispatcher row in rotation.
async fn seed_fleet(s: &Stack, esl: &[String]) {
    let ssm = aws_sdk_ssm::Client::new(&s.sdk);
    let name = format!("{}/{}/config", s.prefix, s.fleet);
    let current = ssm.get_parameter().name(&name).send().await.unwrap();
    let mut config: Value =
        serde_json::from_str(current.parameter().unwrap().value().unwrap()).unwrap();
    config["max_pairs"] = json!(PAIRS);
    ssm.put_parameter()
        .name(&name)
        .value(config.to_string())
        .overwrite(true)
        .send()
        .await
        .unwrap();

    let owner = "cli:payload-test";
    let lock = invoke_ok(
        s,
        "lock",
        json!({"action": "acquire", "fleet": s.fleet, "owner": owner}),
    )
    .await;
    let fenced = |changes: Value| {
        json!({"action": "commit", "fleet": s.fleet, "owner": owner, "token": lock["token"],
               "changes": changes})
    };
    let created = invoke_ok(s, "state", fenced(json!({"new_pairs": PAIRS}))).await;
    let ids: Vec<String> = serde_json::from_value(created["new_pairs"].clone()).unwrap();
    assert_eq!(ids.len(), PAIRS);
    let sip_ip = |i: usize| format!("127.31.{}.{}", i / 250, 1 + i % 250);
    let updates: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"pair_id": id, "status": "active", "instance_id": format!("i-{i:017x}"),
                   "private_ip": sip_ip(i), "esl_endpoint": esl[i],
                   "ecs_service": format!("esl-{id}")})
        })
        .collect();
    invoke_ok(
        s,
        "state",
        fenced(json!({"updates": updates, "pair_count": PAIRS})),
    )
    .await;
    invoke_ok(
        s,
        "lock",
        json!({"action": "release", "fleet": s.fleet, "owner": owner}),
    )
    .await;

    let (db, conn) = tokio_postgres::connect(&s.pg_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows: Vec<String> = (0..PAIRS)
        .map(|i| {
            format!(
                "({}, 'sip:{}:5060', 0, 0, 'duid={}', 'pairscale')",
                s.set_id,
                sip_ip(i),
                ids[i]
            )
        })
        .collect();
    db.batch_execute(&format!(
        "INSERT INTO dispatcher (setid, destination, flags, priority, attrs, description) VALUES {}",
        rows.join(",")
    ))
    .await
    .unwrap();
    let urls = std::env::var("KAMAILIO_RPC_URLS").unwrap();
    for url in urls.split_whitespace() {
        let answer: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({"jsonrpc": "2.0", "method": "dispatcher.reload", "id": 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(answer.get("error").is_none(), "{url}: {answer}");
    }
}

/// Every payload in the history: (bytes, what).
fn payloads(events: &[HistoryEvent]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut state = String::from("(start)");
    for e in events {
        if let Some(d) = e.state_entered_event_details() {
            state = d.name().to_string();
            out.push((d.input().map_or(0, str::len), format!("{state}: input")));
        }
        if let Some(d) = e.state_exited_event_details() {
            out.push((
                d.output().map_or(0, str::len),
                format!("{}: output", d.name()),
            ));
        }
        if let Some(d) = e.task_succeeded_event_details() {
            out.push((
                d.output().map_or(0, str::len),
                format!("{state}: task result"),
            ));
        }
        if let Some(d) = e.lambda_function_succeeded_event_details() {
            out.push((
                d.output().map_or(0, str::len),
                format!("{state}: function result"),
            ));
        }
        if let Some(d) = e.task_scheduled_event_details() {
            out.push((d.parameters().len(), format!("{state}: task parameters")));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_of_a_scale_in_of_a_1000_pair_fleet_stays_under_200_kb() {
    let s = stack(Options {
        function_timeout_secs: 600,
        ..Options::default()
    })
    .await;
    for project in [&s.tf_project, &s.an_project] {
        kit::put_codebuild_project(project, &["/bin/sh", "-c", "exit 0"], json!({}), "/tmp").await;
    }
    let (_nodes, esl) = start_nodes(&s.esl_password);
    seed_fleet(&s, &esl).await;
    assert_eq!(s.pair_count().await, PAIRS.to_string());

    // No EC2 instances or ECS services stand behind these records: validation reports all
    // 1,000 pairs as drift, its largest answer, and the request goes on with reconcile.
    let run = s
        .run(
            "in",
            json!({"fleet": s.fleet, "delta": -1, "reconcile": true, "reason": "payload test"}),
        )
        .await;
    assert_succeeded(&run);
    assert_eq!(s.pair_count().await, (PAIRS - 1).to_string());

    let sfn = aws_sdk_sfn::Client::new(&s.sdk);
    let mut events = Vec::new();
    let mut token = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(&run.arn)
            .set_next_token(token)
            .max_results(1000)
            .send()
            .await
            .unwrap();
        events.extend(page.events().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut sizes = payloads(&events);
    sizes.sort_by_key(|s| std::cmp::Reverse(s.0));
    println!("largest payloads of a scale-in of {PAIRS} pairs (budget {BUDGET} bytes):");
    for (bytes, what) in sizes.iter().take(12) {
        println!("  {bytes:>8}  {what}");
    }
    let visited: Vec<&str> = sizes.iter().map(|(_, w)| w.as_str()).collect();
    for state in [
        "Validate",
        "Plan",
        "In: select candidates",
        "In: drain check",
        "In: commit draining",
        "In: commit settled",
        "In: commit count",
    ] {
        assert!(
            visited.iter().any(|w| w.starts_with(&format!("{state}: "))),
            "{state} was not measured"
        );
    }
    let (largest, what) = &sizes[0];
    assert!(
        *largest <= BUDGET,
        "{what} is {largest} bytes, over {BUDGET}: {:?}",
        &sizes[..5]
    );
}
