//! The `pairscale` binary against the local stack: each test builds a deployment with
//! [`pairscale_stack`] (state machine, functions, table, parameters, cluster, real
//! Kamailio and PostgreSQL) and runs the real binary as an operator would, with its settings
//! in the environment (`AWS_ENDPOINT_URL` from the suite, `PAIRSCALE_*` from the stack).
#![allow(clippy::unwrap_used)]

use pairscale_stack::{assert_succeeded, stack, Options, Stack, ACCOUNT, PREFIX};
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::time::Duration;

const USER: &str = "tester";

/// What one run of the binary did.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Run `pairscale args...` with the stack's settings in the environment.
async fn pairscale(s: Option<&Stack>, args: &[&str]) -> Ran {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pairscale"));
    cmd.args(args)
        .env("PAIRSCALE_USER", USER)
        .env("NO_COLOR", "1")
        .env_remove("PAIRSCALE_STATE_MACHINE_ARN")
        .env_remove("PAIRSCALE_TABLE")
        .env_remove("PAIRSCALE_ECS_CLUSTER")
        .env_remove("PAIRSCALE_DRAIN_FUNCTION")
        .env("PAIRSCALE_SSM_PREFIX", PREFIX);
    if let Some(s) = s {
        cmd.env("PAIRSCALE_STATE_MACHINE_ARN", &s.state_machine)
            .env("PAIRSCALE_TABLE", &s.table)
            .env("PAIRSCALE_ECS_CLUSTER", &s.cluster)
            .env("PAIRSCALE_DRAIN_FUNCTION", s.function("drain"));
    }
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("pairscale ended within 180 s")
        .unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_code(r: &Ran, code: i32) {
    assert_eq!(r.code, code, "{r:#?}");
}

/// A stack whose fleet already runs two pairs.
async fn two_pairs(opts: Options) -> Stack {
    let s = stack(opts).await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_succeeded(&out);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_and_names_the_field() {
    for (args, names) in [
        (
            vec!["scale", "--fleet", "Voice_EU", "--to", "2"],
            vec!["fleet", "--fleet"],
        ),
        (
            vec!["scale", "--fleet", "voice", "--to", "5000"],
            vec!["target_pair_count", "--to"],
        ),
        (
            vec!["scale", "--fleet", "voice", "--by", "0"],
            vec!["delta", "--by"],
        ),
        (vec!["scale", "--fleet", "voice"], vec!["--to", "--by"]),
        (
            vec!["scale", "--fleet", "voice", "--to", "two"],
            vec!["--to"],
        ),
        (
            vec!["plan", "--fleet", "voice", "--to", "-3"],
            vec!["target_pair_count"],
        ),
        (
            vec!["lock", "break", "--fleet", "voice", "--force"],
            vec!["--reason"],
        ),
        (
            vec!["drain", "--fleet", "voice", "--pair", "p1"],
            vec!["pair_id", "--pair"],
        ),
    ] {
        let r = pairscale(None, &args).await;
        assert_code(&r, 2);
        for n in names {
            assert!(r.stderr.contains(n), "{args:?}: no '{n}' in {}", r.stderr);
        }
    }
    // A valid request with nowhere to go: the message says where the setting comes from.
    let r = pairscale(None, &["scale", "--fleet", "voice", "--to", "2"]).await;
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("PAIRSCALE_STATE_MACHINE_ARN")
            && r.stderr.contains("terraform output state_machine_arn"),
        "{}",
        r.stderr
    );
    let r = pairscale(None, &["status", "--fleet", "voice", "--output", "json"]).await;
    assert_code(&r, 2);
    assert!(r.stderr.contains("PAIRSCALE_TABLE"), "{}", r.stderr);
    assert_eq!(r.json()["error"]["exit_code"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_goes_through_the_state_machine_and_changes_nothing() {
    let s = stack(Options::default()).await;
    let r = pairscale(
        Some(&s),
        &[
            "scale",
            "--fleet",
            &s.fleet,
            "--to",
            "2",
            "--dry-run",
            "--wait",
            "--reason",
            "test",
            "--output",
            "json",
        ],
    )
    .await;
    assert_code(&r, 0);
    let v = r.json();
    assert_eq!(v["status"], "SUCCEEDED", "{v}");
    assert_eq!(v["output"]["outcome"], "dry_run", "{v}");
    assert_eq!(v["output"]["plan"]["action"], "scale_out", "{v}");
    assert_eq!(v["request"]["requested_by"], USER);
    let name = v["name"].as_str().unwrap();
    assert!(
        name.starts_with(&format!("{}-to-2-dry-{USER}-", s.fleet)),
        "{name}"
    );
    assert!(
        v["console_url"]
            .as_str()
            .unwrap()
            .ends_with(v["execution_arn"].as_str().unwrap()),
        "{v}"
    );
    // Progress goes to stderr, never into the JSON.
    assert!(r.stderr.starts_with("[0s] "), "{}", r.stderr);
    assert_eq!(s.pair_count().await, "0");
    assert!(s.records().await.is_empty());
    assert!(s.instances().await.is_empty());
    assert!(!s.lock_held().await);

    // For a person: what started, where to see it, how it ended.
    let r = pairscale(
        Some(&s),
        &[
            "scale",
            "--fleet",
            &s.fleet,
            "--by",
            "+1",
            "--dry-run",
            "--wait",
        ],
    )
    .await;
    assert_code(&r, 0);
    assert!(r.stdout.starts_with("Started "), "{}", r.stdout);
    assert!(r.stdout.contains("console:   https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/arn:aws:states:"), "{}", r.stdout);
    assert!(r.stdout.contains("SUCCEEDED"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("dry run, nothing changed; the plan: scale out 0 → 1"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_then_status_plan_and_validate_read_the_real_fleet() {
    let s = stack(Options::default()).await;
    let r = pairscale(
        Some(&s),
        &[
            "scale", "--fleet", &s.fleet, "--to", "2", "--wait", "--output", "json",
        ],
    )
    .await;
    assert_code(&r, 0);
    let v = r.json();
    assert_eq!(v["output"]["outcome"], "scaled", "{v}");
    let added: Vec<String> = serde_json::from_value(v["output"]["pairs_added"].clone()).unwrap();
    assert_eq!(added.len(), 2);
    // Progress: the states the run went through, one line each time it moved on.
    assert!(r.stderr.contains("] Out: "), "{}", r.stderr);
    assert_eq!(s.pair_count().await, "2");

    // status
    let r = pairscale(
        Some(&s),
        &["status", "--fleet", &s.fleet, "--output", "json"],
    )
    .await;
    assert_code(&r, 0);
    let st = r.json();
    assert_eq!(st["desired_count"], 2, "{st}");
    assert_eq!(st["active_count"], 2, "{st}");
    let instances = s.instances().await;
    for (i, pair) in added.iter().enumerate() {
        assert_eq!(st["pairs"][i]["pair_id"], *pair);
        assert_eq!(st["pairs"][i]["status"], "active");
        assert_eq!(st["pairs"][i]["address"], instances[pair].as_str());
    }
    assert_eq!(st["lock"]["held"], false, "{st}");
    assert_eq!(st["executions"][0]["name"], v["name"], "{st}");
    assert_eq!(st["executions"][0]["status"], "SUCCEEDED", "{st}");
    let r = pairscale(Some(&s), &["status", "--fleet", &s.fleet]).await;
    assert_code(&r, 0);
    assert!(
        r.stdout
            .contains(&format!("Fleet {}: 2 desired, 2 active", s.fleet)),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Lock: free (last released"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains('\x1b'), "no colour when not a terminal");
    // Live counts, through the drain function.
    let r = pairscale(
        Some(&s),
        &["status", "--fleet", &s.fleet, "--live", "--output", "json"],
    )
    .await;
    assert_code(&r, 0);
    let st = r.json();
    for i in 0..2 {
        assert_eq!(st["pairs"][i]["channels_source"], "live", "{st}");
        assert_eq!(st["pairs"][i]["channels"], 0, "{st}");
    }

    // plan: a scale-in names the eligible pairs; nothing changes.
    let r = pairscale(
        Some(&s),
        &[
            "plan", "--fleet", &s.fleet, "--by", "-1", "--output", "json",
        ],
    )
    .await;
    assert_code(&r, 0);
    let p = r.json();
    assert_eq!(p["outcome"]["plan"]["action"], "scale_in", "{p}");
    assert_eq!(p["outcome"]["plan"]["remove"], 1, "{p}");
    assert_eq!(p["outcome"]["plan"]["eligible"], json!(added), "{p}");
    assert_eq!(p["pairs"][0]["eligible"], true, "{p}");
    let r = pairscale(Some(&s), &["plan", "--fleet", &s.fleet, "--to", "5"]).await;
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("Plan: scale out 2 → 5: add 3 pair(s)"),
        "{}",
        r.stdout
    );
    assert_eq!(s.pair_count().await, "2");
    assert_eq!(s.records().await.len(), 2);

    // validate: valid now; an instance nobody recorded is drift, exit 4.
    let r = pairscale(Some(&s), &["validate", "--fleet", &s.fleet]).await;
    assert_code(&r, 0);
    assert!(r.stdout.contains(": valid"), "{}", r.stdout);
    kit::run_instance(&s.sdk, &s.fleet, Some("pair-0042")).await;
    let r = pairscale(
        Some(&s),
        &["validate", "--fleet", &s.fleet, "--output", "json"],
    )
    .await;
    assert_code(&r, 4);
    let d = r.json();
    assert_eq!(d["valid"], false);
    let stray = d["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pair_id"] == "pair-0042")
        .unwrap();
    assert_eq!(stray["findings"], json!(["orphan_instance"]), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_lock_is_broken_only_with_force_and_a_reason() {
    let s = stack(Options::default()).await;
    let (failed, got) = s
        .invoke(
            "lock",
            json!({"action": "acquire", "fleet": s.fleet, "owner": "cli:maintenance"}),
        )
        .await;
    assert!(!failed, "{got}");

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

    let r = pairscale(
        Some(&s),
        &[
            "lock",
            "break",
            "--fleet",
            &s.fleet,
            "--force",
            "--reason",
            "maintenance host died",
        ],
    )
    .await;
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
    // Nothing left to break is not an error.
    let r = pairscale(Some(&s), &["lock", "break", "--fleet", &s.fleet]).await;
    assert_code(&r, 0);
    assert!(r.stdout.contains("nothing to break"), "{}", r.stdout);
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
    let r = pairscale(
        Some(&s),
        &[
            "scale",
            "--fleet",
            &s.fleet,
            "--to",
            "1",
            "--wait",
            "--timeout",
            "2s",
            "--state-machine-arn",
            &machine,
            "--output",
            "json",
        ],
    )
    .await;
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
    let (failed, got) = s
        .invoke(
            "lock",
            json!({"action": "acquire", "fleet": s.fleet, "owner": run}),
        )
        .await;
    assert!(!failed, "{got}");

    let r = pairscale(
        Some(&s),
        &["lock", "show", "--fleet", &s.fleet, "--output", "json"],
    )
    .await;
    assert_eq!(r.json()["summary"]["holder_status"], "RUNNING", "{r:?}");
    let r = pairscale(Some(&s), &["lock", "break", "--fleet", &s.fleet]).await;
    assert_code(&r, 1);
    assert!(r.stderr.contains("RUNNING"), "{}", r.stderr);
    let r = pairscale(
        Some(&s),
        &[
            "lock",
            "break",
            "--fleet",
            &s.fleet,
            "--force",
            "--reason",
            "impatient",
        ],
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_and_undrain_take_one_node_out_of_rotation_and_back() {
    let s = two_pairs(Options::default()).await;
    let instances = s.instances().await;
    let (pair, ip) = instances.iter().next().unwrap();
    let other = instances.keys().find(|p| *p != pair).unwrap();

    let r = pairscale(
        Some(&s),
        &[
            "drain",
            "--fleet",
            &s.fleet,
            "--pair",
            pair,
            "--deadline",
            "30s",
        ],
    )
    .await;
    assert_code(&r, 0);
    assert!(
        r.stdout.starts_with(&format!("Drained {pair}")),
        "{}",
        r.stdout
    );
    let rows = s.dispatcher_rows().await;
    assert_eq!(rows[pair].1, 4, "out of rotation: {rows:?}");
    assert_eq!(rows[other].1, 0, "the other pair is untouched: {rows:?}");
    assert!(s.node_view(ip).await.1, "{pair} refuses new calls");
    // Node level only: the records are as they were, and the lock is free again.
    let records = s.records().await;
    assert_eq!(records[pair]["status"], "active");
    assert!(!s.lock_held().await);
    let r = pairscale(Some(&s), &["validate", "--fleet", &s.fleet]).await;
    assert_code(&r, 0);

    let r = pairscale(
        Some(&s),
        &[
            "undrain", "--fleet", &s.fleet, "--pair", pair, "--output", "json",
        ],
    )
    .await;
    assert_code(&r, 0);
    assert_eq!(r.json()["outcome"], "resumed");
    assert_eq!(s.dispatcher_rows().await[pair].1, 0);
    assert!(!s.node_view(ip).await.1, "{pair} takes calls again");
    assert!(!s.lock_held().await);

    // An unknown pair is bad input, named.
    let r = pairscale(
        Some(&s),
        &["drain", "--fleet", &s.fleet, "--pair", "pair-0099"],
    )
    .await;
    assert_code(&r, 2);
    assert!(r.stderr.contains("no pair pair-0099"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_a_scale_in_shows_the_channels_left_per_pair_and_the_deadline() {
    let s = two_pairs(Options {
        policy: "abort",
        deadline_seconds: 4,
        initial_calls: 1,
        ..Options::default()
    })
    .await;
    let r = pairscale(
        Some(&s),
        &[
            "scale", "--fleet", &s.fleet, "--by", "-1", "--wait", "--reason", "night",
        ],
    )
    .await;
    // Under policy abort the calls outlast the deadline: the run fails and says why.
    assert_code(&r, 1);
    assert!(r.stdout.contains("FAILED"), "{}", r.stdout);
    assert!(
        r.stdout.contains("error: Pairscale.DrainDeadline"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("cause: "), "{}", r.stdout);
    // One candidate (a spare would leave no pair serving), its call still up.
    let pairs: Vec<String> = s.instances().await.into_keys().collect();
    assert!(
        r.stderr.contains("] In: drain")
            && pairs
                .iter()
                .any(|p| r.stderr.contains(&format!("channels left: {p} 1 ch"))),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("deadline in ") || r.stderr.contains("deadline passed"),
        "{}",
        r.stderr
    );
    assert_eq!(s.pair_count().await, "2");
}
