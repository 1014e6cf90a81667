//! The scaling state machine, end to end: `statemachines/scale.asl.json` executed by the
//! emulator's Step Functions interpreter, calling the real handler binaries through the local
//! router, whose CodeBuild projects run the local build stand-in. Simulated FreeSWITCH nodes
//! listen on the instances' loopback addresses; the dispatcher is the real Kamailio and
//! PostgreSQL.
//!
//! Each test has its own fleet, table, VPC, ECS cluster, functions, projects, state machine,
//! ESL port and dispatcher set, so tests run in parallel without seeing each other.
#![allow(clippy::unwrap_used)]

use aws_sdk_sfn::types::ExecutionStatus;
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const PREFIX: &str = "/pairscale-e2e";
const FUNCTIONS: [&str; 4] = ["lock", "state", "drain", "build"];

/// The folder the workspace's binaries are built into (this test runs from `deps/` below it).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn binary(name: &str) -> String {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run the whole workspace's tests (./tests/run builds every binary)",
        p.display()
    );
    p.to_str().unwrap().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `postgres://user:pass@host:port/db` → (`postgres://user@host:port/db`, `pass`).
fn split_password(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let (user, pass) = userinfo.split_once(':').unwrap();
    (format!("{scheme}://{user}@{host}"), pass.to_string())
}

struct Options {
    policy: &'static str,
    deadline_seconds: u64,
    initial_calls: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy: "wait",
            deadline_seconds: 60,
            initial_calls: 0,
        }
    }
}

struct Stack {
    sdk: aws_config::SdkConfig,
    fleet: String,
    id: String,
    state_machine: String,
    tf_project: String,
    an_project: String,
    state_dir: PathBuf,
    set_id: i32,
    esl_port: u16,
    pg_url: String,
}

impl Drop for Stack {
    /// Stop the simulated nodes this fleet's builds started, whatever the test's outcome.
    fn drop(&mut self) {
        if let Ok(dir) = std::fs::read_dir(self.state_dir.join("nodes")) {
            for entry in dir.flatten() {
                if entry.path().extension().is_some_and(|e| e == "pid") {
                    if let Ok(pid) = std::fs::read_to_string(entry.path()) {
                        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
                    }
                }
            }
        }
    }
}

async fn stack(opts: Options) -> Stack {
    let sdk = kit::sdk().await;
    let router = kit::router_url();
    let id = kit::unique("e2e");
    let fleet = kit::unique_fleet();
    let table = format!("{id}-table");
    kit::create_table(&sdk, &table).await;
    let esl_port = free_port();
    let set_id = 100 + (rand_u16() % 30_000) as i32;
    let config = json!({
        "min_pairs": 1, "max_pairs": 10, "max_step": 4,
        "cooldown_out_seconds": 0, "cooldown_in_seconds": 0,
        "drain": {"deadline_seconds": opts.deadline_seconds, "policy": opts.policy,
                  "hard_max_seconds": if opts.policy == "wait" { json!(opts.deadline_seconds * 2) } else { Value::Null },
                  "check_interval_seconds": 1},
        "race_spares": 1,
        "build_poll_seconds": 1,
        "build_timeout_seconds": 120,
        "esl_port": esl_port,
        "dispatcher_set_id": set_id,
    });
    kit::put_fleet_params(&sdk, PREFIX, &fleet, "0", &config).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let pg_url = std::env::var("PAIRSCALE_TEST_PG_URL").expect(
        "PAIRSCALE_TEST_PG_URL: run through ./tests/run, which starts PostgreSQL and Kamailio",
    );
    let rpc_url = std::env::var("KAMAILIO_RPC_URL").expect("KAMAILIO_RPC_URL");
    let (db_base, db_password) = split_password(&pg_url);
    let esl_param = format!("{PREFIX}/{fleet}/esl_password");
    let db_param = format!("{PREFIX}/{fleet}/dispatcher_db_password");
    for (name, value) in [(&esl_param, "ClueCon"), (&db_param, db_password.as_str())] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    // A VPC whose addresses are loopback addresses, so each instance's simulated FreeSWITCH
    // can listen on the instance's own private IP.
    let ec2 = aws_sdk_ec2_client(&sdk);
    let octet = 16 + rand_u16() % 230;
    let vpc = ec2
        .create_vpc()
        .cidr_block(format!("127.{octet}.0.0/16"))
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block(format!("127.{octet}.{}.0/24", rand_u16() % 250))
        .send()
        .await
        .unwrap();
    let subnet_id = subnet.subnet().unwrap().subnet_id().unwrap().to_string();

    // The orchestrator's Terraform makes the fleet's ECS cluster; the pairs' services go in it.
    let cluster = format!("{id}-cluster");
    aws_sdk_ecs::Client::new(&sdk)
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let state_dir = std::env::temp_dir().join(&id);
    std::fs::create_dir_all(&state_dir).unwrap();
    let aws_env = json!({
        "AWS_ENDPOINT_URL": router,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "RUST_LOG": "info",
    });
    let with_aws = |extra: Value| {
        let mut m = aws_env.as_object().unwrap().clone();
        m.extend(extra.as_object().unwrap().clone());
        Value::Object(m)
    };
    let tf_project = format!("{id}-terraform");
    let an_project = format!("{id}-ansible");
    let fn_env = BTreeMap::from([
        (
            "lock",
            with_aws(json!({"PAIRSCALE_TABLE": table, "PAIRSCALE_LOCK_TTL_SECONDS": "120"})),
        ),
        (
            "state",
            with_aws(
                json!({"PAIRSCALE_TABLE": table, "PAIRSCALE_SSM_PREFIX": PREFIX, "PAIRSCALE_ECS_CLUSTER": cluster}),
            ),
        ),
        (
            "drain",
            with_aws(json!({
                "PAIRSCALE_ESL_PASSWORD_PARAM": esl_param,
                "PAIRSCALE_DISPATCHER_DB_PASSWORD_PARAM": db_param,
                "PAIRSCALE_DISPATCHER_DB_URL_BASE": db_base,
                "PAIRSCALE_KAMAILIO_RPC_URL": rpc_url,
                "PAIRSCALE_ESL_TIMEOUT_MS": "2000",
            })),
        ),
        (
            "build",
            with_aws(json!({
                "PAIRSCALE_TABLE": table,
                "PAIRSCALE_TERRAFORM_PROJECT": tf_project,
                "PAIRSCALE_ANSIBLE_PROJECT": an_project,
            })),
        ),
    ]);
    let mut arns = BTreeMap::new();
    for f in FUNCTIONS {
        let name = format!("{id}-{f}");
        kit::router(
            reqwest::Method::PUT,
            &format!("functions/{name}"),
            Some(
                json!({"binary": binary(&format!("pairscale-{f}")), "env": fn_env[f],
                        "timeout_secs": 60, "max_concurrency": 2}),
            ),
        )
        .await;
        arns.insert(
            format!("{f}_function_arn"),
            format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"),
        );
    }
    let local_build = binary("pairscale-local-build");
    for (project, kind) in [(&tf_project, "terraform"), (&an_project, "ansible")] {
        kit::put_codebuild_project(
            project,
            &[&local_build],
            with_aws(json!({
                "PAIRSCALE_LOCAL_KIND": kind,
                "PAIRSCALE_LOCAL_SUBNET_ID": subnet_id,
                "PAIRSCALE_ECS_CLUSTER": cluster,
                "PAIRSCALE_LOCAL_STATE_DIR": state_dir.to_str().unwrap(),
                "PAIRSCALE_FSSIM_BIN": binary("pairscale-fssim"),
                "PAIRSCALE_ESL_PORT": esl_port.to_string(),
                "PAIRSCALE_DISPATCHER_SET_ID": set_id.to_string(),
                "PAIRSCALE_LOCAL_INITIAL_CALLS": opts.initial_calls.to_string(),
                "PAIRSCALE_DISPATCHER_DB_URL": pg_url,
                "PAIRSCALE_KAMAILIO_RPC_URL": rpc_url,
            })),
            state_dir.to_str().unwrap(),
        )
        .await;
    }

    // The one definition, rendered as Terraform's templatefile would.
    let mut definition = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../statemachines/scale.asl.json"),
    )
    .unwrap();
    for (k, v) in &arns {
        definition = definition.replace(&format!("${{{k}}}"), v);
    }
    assert!(
        !definition.contains("${"),
        "an unbound placeholder is left in the definition"
    );
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let created = sfn
        .create_state_machine()
        .name(format!("{id}-scale"))
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/pairscale-e2e"))
        .send()
        .await
        .unwrap();
    Stack {
        sdk,
        fleet,
        id,
        state_machine: created.state_machine_arn().to_string(),
        tf_project,
        an_project,
        state_dir,
        set_id,
        esl_port,
        pg_url,
    }
}

fn aws_sdk_ec2_client(sdk: &aws_config::SdkConfig) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(sdk)
}

fn rand_u16() -> u16 {
    let id = kit::unique("r");
    u16::from_str_radix(&id[id.len() - 4..], 16).unwrap()
}

/// How an execution ended.
#[derive(Debug)]
struct Ended {
    status: ExecutionStatus,
    output: Value,
    error: String,
    cause: String,
    arn: String,
}

impl Stack {
    /// Start an execution and wait for it to end (bounded: 150 s).
    async fn run(&self, name: &str, input: Value) -> Ended {
        let sfn = aws_sdk_sfn::Client::new(&self.sdk);
        let started = sfn
            .start_execution()
            .state_machine_arn(&self.state_machine)
            .name(format!("{}-{name}", self.id))
            .input(input.to_string())
            .send()
            .await
            .unwrap();
        let arn = started.execution_arn().to_string();
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            let d = sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .unwrap();
            if d.status() != &ExecutionStatus::Running {
                return Ended {
                    status: d.status().clone(),
                    output: d
                        .output()
                        .map(|o| serde_json::from_str(o).unwrap())
                        .unwrap_or(Value::Null),
                    error: d.error().unwrap_or_default().to_string(),
                    cause: d.cause().unwrap_or_default().to_string(),
                    arn,
                };
            }
            assert!(
                Instant::now() < deadline,
                "execution {arn} still running after 150 s"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Invoke one of this stack's functions directly, as the CLI would.
    async fn invoke(&self, function: &str, payload: Value) -> (bool, Value) {
        let url = format!(
            "{}/2015-03-31/functions/{}-{function}/invocations",
            kit::router_url(),
            self.id
        );
        let resp = reqwest::Client::new()
            .post(url)
            .json(&payload)
            .send()
            .await
            .unwrap();
        let failed = resp.headers().contains_key("x-amz-function-error");
        (failed, resp.json().await.unwrap())
    }

    async fn pair_count(&self) -> String {
        aws_sdk_ssm::Client::new(&self.sdk)
            .get_parameter()
            .name(format!("{PREFIX}/{}/pair_count", self.fleet))
            .send()
            .await
            .unwrap()
            .parameter()
            .unwrap()
            .value()
            .unwrap()
            .to_string()
    }

    /// The pair records, by id → status.
    async fn records(&self) -> BTreeMap<String, Value> {
        let (failed, read) = self
            .invoke("state", json!({"action": "read", "fleet": self.fleet}))
            .await;
        assert!(!failed, "{read}");
        read["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap().to_string(), p.clone()))
            .collect()
    }

    /// Running instances, by pair id → private IP.
    async fn instances(&self) -> BTreeMap<String, String> {
        let out = aws_sdk_ec2_client(&self.sdk)
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:pairscale:fleet")
                    .values(&self.fleet)
                    .build(),
            )
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("running")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                let pair = i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("pairscale:pair-id"))
                    .and_then(|t| t.value())
                    .unwrap()
                    .to_string();
                (pair, i.private_ip_address().unwrap().to_string())
            })
            .collect()
    }

    /// The dispatcher rows of this test's set: pair id → (destination, flags).
    async fn dispatcher_rows(&self) -> BTreeMap<String, (String, i32)> {
        let (client, conn) = tokio_postgres::connect(&self.pg_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let rows = client
            .query(
                "SELECT destination, flags, attrs FROM dispatcher WHERE setid = $1",
                &[&self.set_id],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                let attrs: String = r.get(2);
                let pair = attrs
                    .split(';')
                    .find_map(|kv| kv.strip_prefix("duid="))
                    .unwrap()
                    .to_string();
                (pair, (r.get::<_, String>(0), r.get::<_, i32>(1)))
            })
            .collect()
    }

    async fn lock_held(&self) -> bool {
        let (failed, shown) = self
            .invoke("lock", json!({"action": "show", "fleet": self.fleet}))
            .await;
        assert!(!failed, "{shown}");
        shown["held"].as_bool().unwrap()
    }

    /// Whether a simulated FreeSWITCH answers on `ip`'s ESL port.
    async fn node_answers(&self, ip: &str) -> bool {
        tokio::net::TcpStream::connect((ip, self.esl_port))
            .await
            .is_ok()
    }

    /// A node's channel count and whether it refuses inbound calls, over its event socket.
    async fn node_view(&self, ip: &str) -> (u64, bool) {
        let mut c = pairscale_esl::Client::connect(
            &format!("{ip}:{}", self.esl_port),
            &pairscale_esl::Password::new("ClueCon"),
            pairscale_esl::ClientOptions::default(),
        )
        .await
        .unwrap();
        let channels = c.channel_count().await.unwrap();
        let paused = c
            .pause_check(Some(pairscale_esl::Direction::Inbound))
            .await
            .unwrap();
        (channels, paused)
    }

    async fn builds(&self, project: &str) -> Vec<Value> {
        let all = kit::router(reqwest::Method::GET, "builds", None).await;
        all.as_array()
            .or_else(|| all["builds"].as_array())
            .unwrap()
            .iter()
            .filter(|b| b["project"] == project || b["projectName"] == project)
            .cloned()
            .collect()
    }
}

fn assert_succeeded(e: &Ended) {
    assert_eq!(
        e.status,
        ExecutionStatus::Succeeded,
        "{}: {} {}",
        e.arn,
        e.error,
        e.cause
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_and_a_scale_in_change_the_fleet_and_nothing_else() {
    let s = stack(Options::default()).await;

    // Out: 0 → 2.
    let out = s
        .run(
            "out",
            json!({"fleet": s.fleet, "target_pair_count": 2, "reason": "e2e", "requested_by": "test"}),
        )
        .await;
    assert_succeeded(&out);
    assert_eq!(out.output["outcome"], "scaled", "{}", out.output);
    assert_eq!(out.output["direction"], "out");
    let added: Vec<String> = serde_json::from_value(out.output["pairs_added"].clone()).unwrap();
    assert_eq!(added.len(), 2, "{}", out.output);
    assert_eq!(s.pair_count().await, "2");
    let records = s.records().await;
    let instances = s.instances().await;
    let rows = s.dispatcher_rows().await;
    for pair in &added {
        let r = &records[pair];
        assert_eq!(r["status"], "active", "{r}");
        let ip = &instances[pair];
        assert_eq!(r["private_ip"], *ip, "{r}");
        assert_eq!(r["esl_endpoint"], format!("{ip}:{}", s.esl_port));
        // In rotation, at its own address, and taking calls.
        assert_eq!(rows[pair], (format!("sip:{ip}:5060"), 0), "{rows:?}");
        assert!(s.node_answers(ip).await);
        assert!(!s.node_view(ip).await.1, "{pair} must not refuse calls");
    }
    assert_eq!(instances.len(), 2, "{instances:?}");
    assert!(!s.lock_held().await, "the lock is released");

    // In: 2 → 1. Both pairs race (one spare); the first to reach zero channels goes.
    let inn = s
        .run(
            "in",
            json!({"fleet": s.fleet, "delta": -1, "reason": "e2e"}),
        )
        .await;
    assert_succeeded(&inn);
    assert_eq!(inn.output["direction"], "in", "{}", inn.output);
    let removed: Vec<String> = serde_json::from_value(inn.output["pairs_removed"].clone()).unwrap();
    assert_eq!(removed.len(), 1, "{}", inn.output);
    let gone = &removed[0];
    let kept: Vec<&String> = added.iter().filter(|p| *p != gone).collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(s.pair_count().await, "1");
    let records = s.records().await;
    assert!(!records.contains_key(gone), "{records:?}");
    assert_eq!(records[kept[0]]["status"], "active");
    let after = s.instances().await;
    assert_eq!(after.keys().collect::<Vec<_>>(), kept, "{after:?}");
    let rows = s.dispatcher_rows().await;
    assert!(!rows.contains_key(gone), "{rows:?}");
    // The spare that lost the race is back in rotation and takes calls again.
    let ip = &after[kept[0]];
    assert_eq!(rows[kept[0]].1, 0, "{rows:?}");
    assert!(!s.node_view(ip).await.1, "the spare takes calls again");
    assert!(
        !s.node_answers(&instances[gone]).await,
        "the removed node is gone"
    );
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_deadline_policy_abort_puts_every_candidate_back_and_removes_nothing() {
    let s = stack(Options {
        policy: "abort",
        deadline_seconds: 2,
        initial_calls: 1,
    })
    .await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_succeeded(&out);
    let before = s.instances().await;

    let inn = s.run("in", json!({"fleet": s.fleet, "delta": -1})).await;
    assert_eq!(inn.status, ExecutionStatus::Failed, "{inn:?}");
    assert_eq!(inn.error, "Pairscale.DrainDeadline", "{inn:?}");
    assert!(inn.cause.contains("undone"), "{}", inn.cause);
    assert_eq!(s.pair_count().await, "2");
    assert_eq!(s.instances().await, before, "nothing was destroyed");
    let records = s.records().await;
    let rows = s.dispatcher_rows().await;
    for (pair, ip) in &before {
        assert_eq!(records[pair]["status"], "active", "{records:?}");
        assert_eq!(rows[pair].1, 0, "{pair} back in rotation: {rows:?}");
        let (channels, paused) = s.node_view(ip).await;
        assert_eq!(channels, 1, "{pair}: its call was never cut");
        assert!(!paused, "{pair} takes calls again");
    }
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_deadline_policy_force_hangs_up_and_removes_the_pair() {
    let s = stack(Options {
        policy: "force",
        deadline_seconds: 2,
        initial_calls: 1,
    })
    .await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_succeeded(&out);
    let inn = s.run("in", json!({"fleet": s.fleet, "delta": -1})).await;
    assert_succeeded(&inn);
    let removed: Vec<String> = serde_json::from_value(inn.output["pairs_removed"].clone()).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(s.pair_count().await, "1");
    let left = s.instances().await;
    assert_eq!(left.len(), 1);
    assert!(!left.contains_key(&removed[0]));
    // The survivor was a candidate too (the spare): hung up under force, back in rotation.
    let (pair, ip) = left.iter().next().unwrap();
    assert_eq!(s.dispatcher_rows().await[pair].1, 0);
    assert!(!s.node_view(ip).await.1);
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ansible_build_undoes_the_scale_out() {
    let s = stack(Options::default()).await;
    kit::router(
        reqwest::Method::POST,
        "faults",
        Some(json!({"codebuild": {"project": s.an_project, "fail_next": 1}})),
    )
    .await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(out.error, "Pairscale.BuildFailed", "{out:?}");
    assert!(out.cause.contains("undone"), "{}", out.cause);
    assert_eq!(s.pair_count().await, "0");
    assert!(s.records().await.is_empty(), "records rolled back");
    assert!(s.instances().await.is_empty(), "half-made pairs destroyed");
    assert!(s.dispatcher_rows().await.is_empty());
    // Terraform ran twice: the scale-out, then the compensation with the old pair set.
    assert_eq!(s.builds(&s.tf_project).await.len(), 2);
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_stops_the_run_before_it_changes_anything() {
    let s = stack(Options::default()).await;
    let (failed, g) = s
        .invoke(
            "lock",
            json!({"action": "acquire", "fleet": s.fleet, "owner": "cli:maintenance"}),
        )
        .await;
    assert!(!failed, "{g}");
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(out.error, "Pairscale.LockHeld", "{out:?}");
    assert!(out.cause.contains("cli:maintenance"), "{}", out.cause);
    assert_eq!(s.pair_count().await, "0");
    assert!(s.instances().await.is_empty());
    assert!(s.builds(&s.tf_project).await.is_empty());
    // Still the maintenance holder's lock.
    let (_, shown) = s
        .invoke("lock", json!({"action": "show", "fleet": s.fleet}))
        .await;
    assert_eq!(shown["lock"]["holder"], "cli:maintenance", "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_stops_the_run_and_names_the_stray_pair() {
    let s = stack(Options::default()).await;
    kit::run_instance(&s.sdk, &s.fleet, Some("pair-0042")).await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(out.error, "Pairscale.Drift", "{out:?}");
    assert!(out.cause.contains("pair-0042"), "{}", out.cause);
    assert_eq!(s.pair_count().await, "0");
    assert!(s.builds(&s.tf_project).await.is_empty());
    assert!(!s.lock_held().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_to_put_new_nodes_into_rotation_destroys_nothing() {
    let s = stack(Options::default()).await;
    kit::router(
        reqwest::Method::POST,
        "faults",
        Some(
            json!({"lambda": {"function": format!("{}-drain", s.id), "when_action": "resume",
                               "mode": "error", "times": 1, "error_type": "Pairscale.Internal",
                               "error_message": "injected"}}),
        ),
    )
    .await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(out.error, "Pairscale.Internal", "{out:?}");
    assert!(
        out.cause.contains("(committed)") && out.cause.contains("resume"),
        "{}",
        out.cause
    );
    // The count is committed and the nodes stand; they are only still out of rotation.
    assert_eq!(s.pair_count().await, "2");
    let instances = s.instances().await;
    assert_eq!(instances.len(), 2, "{instances:?}");
    let rows = s.dispatcher_rows().await;
    for (pair, ip) in &instances {
        assert_eq!(s.records().await[pair]["status"], "active");
        assert_eq!(rows[pair].1, 4, "{pair} still out of rotation: {rows:?}");
        assert!(s.node_answers(ip).await);
    }
    assert!(!s.lock_held().await);
    // What the cause says to do works: resume them by hand.
    let nodes: Vec<Value> = {
        let (_, plan) = s
            .invoke(
                "state",
                json!({"action": "plan", "request": {"fleet": s.fleet, "delta": -1}}),
            )
            .await;
        serde_json::from_value(plan["nodes"].clone()).unwrap()
    };
    assert_eq!(nodes.len(), 2);
    let (failed, resumed) = s
        .invoke("drain", json!({"action": "resume", "nodes": nodes}))
        .await;
    assert!(!failed, "{resumed}");
    let rows = s.dispatcher_rows().await;
    assert!(rows.values().all(|(_, flags)| *flags == 0), "{rows:?}");
}
