//! `pairscale-build` through its JSON contract: real CodeBuild requests over HTTP to the local
//! router (which runs each build as a real process) and pair records in the emulator.
#![allow(clippy::unwrap_used)]

use pairscale_aws::codebuild::CodeBuilds;
use pairscale_aws::dynamodb::{DynamoLockStore, FleetTable};
use pairscale_aws::ec2::Instances;
use pairscale_aws::ecs::Services;
use pairscale_aws::fleet_state::{AwsFleetState, AwsInventory};
use pairscale_aws::sfn::Executions;
use pairscale_aws::ssm::FleetParams;
use pairscale_core::ports::{Clock, SystemClock};
use pairscale_core::ErrorName;
use pairscale_lambdas::handlers::{build::BuildHandler, lock::LockHandler, state::StateHandler};
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &str = "/pairscale-b";
const EXEC: &str = "arn:aws:states:us-east-1:123456789012:execution:pairscale-scale:b-1";

struct Env {
    build: BuildHandler,
    lock: LockHandler,
    state: StateHandler,
    fleet: String,
    dir: std::path::PathBuf,
    /// The lock's token: builds are started under the lock.
    token: Value,
}

/// A fleet, a table, and two local CodeBuild projects whose commands write what they were
/// given to `dir`, print `dir/log` and exit with the code in `dir/exit` (0 when absent).
async fn env() -> Env {
    let sdk = kit::sdk().await;
    let table = kit::unique("build");
    kit::create_table(&sdk, &table).await;
    let fleet = kit::unique_fleet();
    kit::put_fleet_params(&sdk, PREFIX, &fleet, "0", &kit::sample_config()).await;
    let dir = std::env::temp_dir().join(kit::unique("pairscale-build-test"));
    std::fs::create_dir_all(&dir).unwrap();
    let tf = kit::unique("tf");
    let an = kit::unique("an");
    let script = r#"env | grep '^PAIRSCALE_' | sort > "$OUT/$KIND.env"
sleep "$(cat "$OUT/sleep" 2>/dev/null || echo 0)"
cat "$OUT/log" 2>/dev/null
exit "$(cat "$OUT/exit" 2>/dev/null || echo 0)""#;
    for (name, kind) in [(&tf, "terraform"), (&an, "ansible")] {
        kit::put_codebuild_project(
            name,
            &["/bin/sh", "-c", script],
            json!({"OUT": dir.to_str().unwrap(), "KIND": kind}),
            dir.to_str().unwrap(),
        )
        .await;
    }
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let state = Arc::new(AwsFleetState {
        params: FleetParams::new(aws_sdk_ssm::Client::new(&sdk), PREFIX),
        table: FleetTable::new(ddb.clone(), &table),
    });
    Env {
        build: BuildHandler {
            builds: Arc::new(CodeBuilds::from_sdk(&sdk)),
            state: state.clone(),
            clock: Arc::new(SystemClock),
            terraform_project: tf,
            ansible_project: an,
        },
        lock: LockHandler {
            locks: Arc::new(DynamoLockStore::new(ddb, &table)),
            executions: Arc::new(Executions::new(aws_sdk_sfn::Client::new(&sdk))),
            clock: Arc::new(SystemClock),
            default_ttl_secs: 120,
            metrics: pairscale_lambdas::metrics::Metrics::memory("Pairscale").0,
        },
        state: StateHandler {
            state,
            inventory: Arc::new(AwsInventory {
                instances: Instances::new(aws_sdk_ec2::Client::new(&sdk)),
                services: Services::new(aws_sdk_ecs::Client::new(&sdk), "default"),
            }),
            clock: Arc::new(SystemClock),
            metrics: pairscale_lambdas::metrics::Metrics::memory("Pairscale").0,
            // The lock function's, above.
            lock_ttl_secs: 120,
        },
        fleet,
        dir,
        token: Value::Null,
    }
    .locked()
    .await
}

impl Env {
    async fn locked(mut self) -> Env {
        let g = self
            .lock
            .handle(json!({"action": "acquire", "fleet": self.fleet, "owner": EXEC}))
            .await
            .unwrap();
        self.token = g["token"].clone();
        self
    }

    /// `input` as this run sends it: its owner, token and step.
    fn fenced(&self, mut input: Value, step: &str) -> Value {
        input["owner"] = json!(EXEC);
        input["token"] = self.token.clone();
        input["step"] = json!(step);
        input
    }

    async fn journal(&self) -> Option<pairscale_core::state::Journal> {
        let fleet = pairscale_core::FleetName::parse(&self.fleet).unwrap();
        self.state.state.journal(&fleet, EXEC).await.unwrap()
    }
}

/// Poll `status` until the build is done (bounded: 30 s).
async fn wait_done(e: &Env, started: &Value, timeout_seconds: u64) -> Value {
    for _ in 0..300 {
        let s = e
            .build
            .handle(json!({"action": "status", "build_id": started["build_id"],
                           "started_at": started["started_at"], "timeout_seconds": timeout_seconds}))
            .await
            .unwrap();
        if s["done"] == true || s["overdue"] == true {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("build {} did not finish in 30 s", started["build_id"]);
}

fn read_env(e: &Env, kind: &str) -> String {
    std::fs::read_to_string(e.dir.join(format!("{kind}.env"))).unwrap()
}

#[tokio::test]
async fn a_terraform_build_gets_the_pairs_to_keep_and_a_retry_is_the_same_build() {
    let e = env().await;
    let g = json!({"token": e.token});
    let mark = e
        .state
        .handle(
            json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": g["token"],
                       "changes": {"new_pairs": 3}}),
        )
        .await
        .unwrap();
    let ids: Vec<String> = serde_json::from_value(mark["new_pairs"].clone()).unwrap();
    // One of the three is given up on: Terraform must not keep it.
    e.state
        .handle(
            json!({"action": "commit", "fleet": e.fleet, "owner": EXEC, "token": g["token"],
                       "changes": {"updates": [{"pair_id": ids[1], "status": "failed"}]}}),
        )
        .await
        .unwrap();
    let start = e.fenced(
        json!({"action": "start", "fleet": e.fleet, "kind": "terraform", "idempotency_key": "run-1-tf"}),
        "out_terraform",
    );
    let before = SystemClock.now().millis();
    let started = e.build.handle(start.clone()).await.unwrap();
    assert_eq!(started["kind"], "terraform");
    assert_eq!(started["project"], e.build.terraform_project);
    let at = started["started_at"].as_i64().unwrap();
    assert!(
        at >= before && at <= SystemClock.now().millis(),
        "{started}"
    );
    let again = e.build.handle(start).await.unwrap();
    assert_eq!(
        again["build_id"], started["build_id"],
        "same key, same build"
    );

    let done = wait_done(&e, &started, 600).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["succeeded"], true);
    assert_eq!(done["overdue"], false);
    let env = read_env(&e, "terraform");
    let tfvars = env
        .lines()
        .find_map(|l| l.strip_prefix("PAIRSCALE_TFVARS_JSON="))
        .unwrap();
    let tfvars: Value = serde_json::from_str(tfvars).unwrap();
    assert_eq!(
        tfvars,
        json!({"pairs": {ids[0].clone(): {}, ids[2].clone(): {}}}),
        "{env}"
    );
    assert!(
        env.contains(&format!("PAIRSCALE_FLEET={}", e.fleet)),
        "{env}"
    );
    assert!(env.contains("PAIRSCALE_RUN_KEY=run-1-tf"), "{env}");
}

#[tokio::test]
async fn an_ansible_build_that_fails_reads_as_done_and_not_succeeded() {
    let e = env().await;
    std::fs::write(e.dir.join("exit"), "3").unwrap();
    let started = e
        .build
        .handle(e.fenced(
            json!({"action": "start", "fleet": e.fleet, "kind": "ansible", "playbook": "scale_in",
                       "pair_ids": ["pair-0002", "pair-0007"], "idempotency_key": "run-2-an"}),
            "in_ansible",
        ))
        .await
        .unwrap();
    let done = wait_done(&e, &started, 600).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["done"], true);
    assert_eq!(done["succeeded"], false);
    let env = read_env(&e, "ansible");
    assert!(env.contains("PAIRSCALE_PLAYBOOK=scale_in"), "{env}");
    assert!(
        env.contains(r#"PAIRSCALE_PAIR_IDS=["pair-0002","pair-0007"]"#),
        "{env}"
    );
    assert!(!env.contains("PAIRSCALE_TFVARS_JSON"), "{env}");
}

/// Poll `status` with a retry policy until the build is done (bounded: 30 s).
async fn wait_retry(e: &Env, started: &Value, timeout_seconds: u64, retry: Value) -> Value {
    for _ in 0..300 {
        let s = e
            .build
            .handle(json!({"action": "status", "build_id": started["build_id"],
                           "started_at": started["since"], "timeout_seconds": timeout_seconds,
                           "retry": retry}))
            .await
            .unwrap();
        if s["done"] == true {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("build {} did not finish in 30 s", started["build_id"]);
}

#[tokio::test]
async fn a_failed_builds_log_decides_its_retry_and_each_attempt_is_journaled_apart() {
    let e = env().await;
    std::fs::write(e.dir.join("exit"), "1").unwrap();
    std::fs::write(
        e.dir.join("log"),
        "aws_instance.node[\"pair-0001\"]: Creating...\n\
         Error: creating EC2 Instance: InsufficientInstanceCapacity: no c6i.large capacity in us-east-1a\n",
    )
    .unwrap();
    let start = |attempt: u32, since: &Value, key: &str| {
        let mut input = e.fenced(
            json!({"action": "start", "fleet": e.fleet, "kind": "terraform", "idempotency_key": key,
                   "attempt": attempt}),
            "out_terraform",
        );
        if !since.is_null() {
            input["since"] = since.clone();
        }
        input
    };
    let first = e
        .build
        .handle(start(0, &Value::Null, "run-5-a"))
        .await
        .unwrap();
    assert_eq!(first["attempt"], 0);
    assert_eq!(first["since"], first["started_at"], "{first}");
    let policy = |attempt: u32| json!({"attempt": attempt, "retries": 2, "retry_seconds": 30, "poll_seconds": 20});
    let failed = wait_retry(&e, &first, 600, policy(0)).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["transient"], "capacity", "{failed}");
    assert!(
        failed["cause"]
            .as_str()
            .unwrap()
            .contains("InsufficientInstanceCapacity"),
        "{failed}"
    );
    assert_eq!(failed["retry_in_seconds"], 30, "{failed}");
    assert_eq!(
        failed["backoff"],
        json!({"rounds": 2, "seconds": 15}),
        "{failed}"
    );
    // The same failure with a deadline the wait would pass: undo now.
    let late = wait_retry(&e, &first, 20, policy(0)).await;
    assert_eq!(late["retry_in_seconds"], Value::Null, "{late}");
    assert_eq!(late["backoff"], Value::Null, "{late}");

    // The retry: its own journal entry, the first attempt's deadline.
    let second = e
        .build
        .handle(start(1, &first["since"], "run-5-b"))
        .await
        .unwrap();
    assert_ne!(second["build_id"], first["build_id"]);
    assert_eq!(
        (second["attempt"].clone(), second["since"].clone()),
        (json!(1), first["since"].clone())
    );
    let journal = e.journal().await.expect("journal");
    assert_eq!(
        journal.builds["out_terraform"].build_id,
        first["build_id"].as_str().unwrap()
    );
    assert_eq!(
        journal.builds["out_terraform_retry1"].build_id,
        second["build_id"].as_str().unwrap()
    );
    // Doubled before the second retry.
    let failed = wait_retry(&e, &second, 600, policy(1)).await;
    assert_eq!(failed["retry_in_seconds"], 60, "{failed}");
    // The last attempt: retries spent, still transient.
    let third = e
        .build
        .handle(start(2, &first["since"], "run-5-c"))
        .await
        .unwrap();
    let spent = wait_retry(&e, &third, 600, policy(2)).await;
    assert_eq!(
        (
            spent["transient"].as_str(),
            spent["retry_in_seconds"].clone()
        ),
        (Some("capacity"), Value::Null),
        "{spent}"
    );

    // A permanent failure: no retry, whatever is left.
    std::fs::write(
        e.dir.join("log"),
        "RequestLimitExceeded, retrying\nError: UnauthorizedOperation: You are not authorized to perform this operation.\n",
    )
    .unwrap();
    let fourth = e
        .build
        .handle(e.fenced(
            json!({"action": "start", "fleet": e.fleet, "kind": "terraform", "idempotency_key": "run-5-d"}),
            "in_terraform",
        ))
        .await
        .unwrap();
    let denied = wait_retry(&e, &fourth, 600, policy(0)).await;
    assert_eq!(
        (
            denied["transient"].clone(),
            denied["retry_in_seconds"].clone()
        ),
        (Value::Null, Value::Null),
        "{denied}"
    );
    assert!(
        denied["cause"]
            .as_str()
            .unwrap()
            .contains("UnauthorizedOperation"),
        "{denied}"
    );

    // Stopping the step reaches every attempt of it, and only its own.
    let stopped = e
        .build
        .handle(json!({"action": "stop", "fleet": e.fleet, "run": EXEC, "step": "out_terraform"}))
        .await
        .unwrap();
    let mut ids: Vec<&str> = stopped["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["build_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = vec![
        first["build_id"].as_str().unwrap(),
        second["build_id"].as_str().unwrap(),
        third["build_id"].as_str().unwrap(),
    ];
    want.sort_unstable();
    assert_eq!(ids, want, "{stopped}");

    // A retry must say when its step began, and only a retry does.
    for (input, field) in [
        (start(1, &Value::Null, "run-5-e"), "since"),
        (start(0, &first["since"], "run-5-f"), "since"),
        (start(6, &first["since"], "run-5-g"), "attempt"),
    ] {
        let err = e.build.handle(input.clone()).await.unwrap_err();
        assert_eq!(err.name(), ErrorName::InvalidRequest, "{input}: {err}");
        assert!(err.to_string().contains(field), "{input}: {err}");
    }
}

#[tokio::test]
async fn a_build_past_its_deadline_is_stopped() {
    let e = env().await;
    std::fs::write(e.dir.join("sleep"), "60").unwrap();
    let started = e
        .build
        .handle(e.fenced(
            json!({"action": "start", "fleet": e.fleet, "kind": "terraform", "idempotency_key": "run-3"}),
            "out_terraform",
        ))
        .await
        .unwrap();
    // Started, as far as the deadline goes, two seconds ago with a one-second budget.
    let past = json!({"build_id": started["build_id"],
                      "started_at": started["started_at"].as_i64().unwrap() - 2_000});
    let s = wait_done(&e, &past, 1).await;
    assert_eq!(s["overdue"], true, "{s}");
    assert_eq!(s["stopped"], true, "{s}");
    // CodeBuild now reports it stopped, and it is no longer overdue: it is done.
    let mut last = Value::Null;
    for _ in 0..100 {
        last = e
            .build
            .handle(json!({"action": "status", "build_id": started["build_id"],
                           "started_at": past["started_at"], "timeout_seconds": 1}))
            .await
            .unwrap();
        if last["done"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "STOPPED", "{last}");
    assert_eq!(last["succeeded"], false);
}

#[tokio::test]
async fn bad_input_names_the_field_and_starts_nothing() {
    let e = env().await;
    for (input, field) in [
        (
            e.fenced(json!({"action": "start", "fleet": e.fleet, "kind": "ansible", "pair_ids": ["pair-0001"], "idempotency_key": "k"}), "out_terraform"),
            "playbook",
        ),
        (
            e.fenced(json!({"action": "start", "fleet": e.fleet, "kind": "terraform", "pair_ids": ["pair-0001"], "idempotency_key": "k"}), "out_terraform"),
            "pair_ids",
        ),
        (
            e.fenced(json!({"action": "start", "fleet": e.fleet, "kind": "docker", "idempotency_key": "k"}), "out_terraform"),
            "kind",
        ),
        (
            e.fenced(json!({"action": "start", "fleet": e.fleet, "kind": "terraform", "idempotency_key": "a b"}), "out_terraform"),
            "idempotency_key",
        ),
        (
            e.fenced(json!({"action": "start", "fleet": e.fleet, "kind": "terraform", "idempotency_key": "k"}), "Out: terraform"),
            "step",
        ),
        (
            json!({"action": "status", "build_id": "nocolon", "started_at": 1, "timeout_seconds": 5}),
            "build_id",
        ),
        (json!({"action": "stop", "build_ids": []}), "build_ids"),
        (
            json!({"action": "stop", "build_ids": ["p:1"], "fleet": e.fleet, "run": EXEC, "step": "out_terraform"}),
            "build_ids",
        ),
        (json!({"action": "stop", "build_ids": ["nocolon"]}), "build_id"),
        (
            json!({"action": "status", "build_id": "p:1", "started_at": 1, "timeout_seconds": 0}),
            "timeout_seconds",
        ),
    ] {
        let err = e.build.handle(input.clone()).await.unwrap_err();
        assert_eq!(err.name(), ErrorName::InvalidRequest, "{input}: {err}");
        assert!(err.to_string().contains(field), "{input}: {err}");
    }
    assert!(
        !e.dir.join("terraform.env").exists() && !e.dir.join("ansible.env").exists(),
        "no build ran"
    );
}

#[tokio::test]
async fn a_build_is_kept_in_the_run_journal_and_stopping_its_step_waits_until_it_has_ended() {
    let e = env().await;
    std::fs::write(e.dir.join("sleep"), "120").unwrap();
    let started = e
        .build
        .handle(e.fenced(
            json!({"action": "start", "fleet": e.fleet, "kind": "terraform", "idempotency_key": "run-4"}),
            "out_terraform",
        ))
        .await
        .unwrap();
    let journal = e.journal().await.expect("the run has a journal");
    assert_eq!(
        journal.builds["out_terraform"].build_id,
        started["build_id"].as_str().unwrap(),
        "{journal:?}"
    );
    // A step that started nothing has nothing to stop.
    let none = e
        .build
        .handle(json!({"action": "stop", "fleet": e.fleet, "run": EXEC, "step": "out_ansible"}))
        .await
        .unwrap();
    assert_eq!(none["builds"], json!([]), "{none}");
    let stopped = e
        .build
        .handle(json!({"action": "stop", "fleet": e.fleet, "run": EXEC, "step": "out_terraform"}))
        .await
        .unwrap();
    assert_eq!(
        stopped["builds"][0]["build_id"], started["build_id"],
        "{stopped}"
    );
    assert_eq!(stopped["builds"][0]["stopped"], true, "{stopped}");
    assert_eq!(stopped["builds"][0]["status"], "STOPPED", "{stopped}");
    // Asked again, by id: it has ended, so nothing is asked of it.
    let again = e
        .build
        .handle(json!({"action": "stop", "build_ids": [started["build_id"]]}))
        .await
        .unwrap();
    assert_eq!(again["builds"][0]["stopped"], false, "{again}");
    assert_eq!(again["builds"][0]["status"], "STOPPED", "{again}");
}

#[tokio::test]
async fn a_build_started_without_the_lock_is_stopped_and_not_kept() {
    let e = env().await;
    std::fs::write(e.dir.join("sleep"), "120").unwrap();
    let mut input = e.fenced(
        json!({"action": "start", "fleet": e.fleet, "kind": "terraform", "idempotency_key": "run-5"}),
        "out_terraform",
    );
    input["token"] = json!(e.token.as_u64().unwrap() + 1);
    let err = e.build.handle(input.clone()).await.unwrap_err();
    assert_eq!(err.name(), ErrorName::Fenced, "{err}");
    assert!(e.journal().await.is_none(), "nothing journaled");
    // The same key returns the build that was started: it was stopped.
    input["token"] = e.token.clone();
    let same = e.build.handle(input).await.unwrap();
    let s = e
        .build
        .handle(json!({"action": "status", "build_id": same["build_id"],
                       "started_at": same["started_at"], "timeout_seconds": 600}))
        .await
        .unwrap();
    assert_eq!(s["status"], "STOPPED", "{s}");
}
