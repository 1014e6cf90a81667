//! A whole pairscale deployment inside the local stack, built in seconds: the scaling state
//! machine (`statemachines/scale.asl.json`, rendered as Terraform renders it) created in the
//! emulator, the four handler binaries registered as functions in the router, local CodeBuild
//! projects that run the build stand-in ([`crate::local_build`]), and the fleet's table,
//! parameters, VPC and ECS cluster. The dispatcher is the real Kamailio and PostgreSQL.
//!
//! Each [`stack`] has its own fleet, table, VPC, ECS cluster, functions, projects, state
//! machine, ESL port and dispatcher set, so callers (the end-to-end tests, the CLI's tests)
//! run in parallel without seeing each other.
//!
//! This is a test harness: it needs the services `./tests/run` starts (their addresses are in
//! the environment) and the workspace's binaries built beside the running executable, and it
//! panics, naming what failed, when either is missing.

use aws_sdk_sfn::types::ExecutionStatus;
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const PREFIX: &str = "/pairscale-e2e";
pub const FUNCTIONS: [&str; 4] = ["lock", "state", "drain", "build"];

/// The folder the workspace's binaries are built into: beside a binary, one up from a test
/// (tests run from `deps/` below it).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    let dir = exe.parent().expect("the executable is in a folder");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent()
            .expect("deps/ is in the target folder")
            .to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The path of one of the workspace's binaries, which must be built.
pub fn binary(name: &str) -> String {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run the whole workspace's tests (./tests/run builds every binary)",
        p.display()
    );
    p.to_string_lossy().into_owned()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `postgres://user:pass@host:port/db` → (`postgres://user@host:port/db`, `pass`).
pub fn split_password(url: &str) -> (String, String) {
    let bad = || format!("'{url}' is not postgres://user:pass@host:port/db");
    let (scheme, rest) = url.split_once("://").unwrap_or_else(|| panic!("{}", bad()));
    let (userinfo, host) = rest.split_once('@').unwrap_or_else(|| panic!("{}", bad()));
    let (user, pass) = userinfo
        .split_once(':')
        .unwrap_or_else(|| panic!("{}", bad()));
    (format!("{scheme}://{user}@{host}"), pass.to_string())
}

/// How the fleet drains, and how many calls each simulated node starts with.
#[derive(Debug)]
pub struct Options {
    pub policy: &'static str,
    pub deadline_seconds: u64,
    pub initial_calls: u32,
    /// Random call arrivals per second per node (log-normal lengths around `median_call_secs`).
    pub calls_per_sec: f64,
    pub median_call_secs: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy: "wait",
            deadline_seconds: 60,
            initial_calls: 0,
            calls_per_sec: 0.0,
            median_call_secs: 1.0,
        }
    }
}

#[derive(Debug)]
pub struct Stack {
    pub sdk: aws_config::SdkConfig,
    pub fleet: String,
    /// The prefix of every name this stack made (`<id>-table`, `<id>-lock`, ...).
    pub id: String,
    pub state_machine: String,
    pub table: String,
    pub cluster: String,
    pub tf_project: String,
    pub an_project: String,
    pub state_dir: PathBuf,
    pub set_id: i32,
    pub esl_port: u16,
    pub pg_url: String,
    /// The root of the fleet's SSM parameters (`PAIRSCALE_SSM_PREFIX`).
    pub prefix: String,
    /// The simulated nodes' event-socket password.
    pub esl_password: String,
    /// A folder removed with the stack (Terraform's working files, when it deployed).
    pub scratch: Option<PathBuf>,
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
        // And its folders: the nodes' pid files and logs, the builds' copies of the source.
        let _ = std::fs::remove_dir_all(&self.state_dir);
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What a function or a build needs to reach the emulator: the router's endpoint, the region
/// and the emulator's fake credentials.
pub fn emulator_env() -> serde_json::Map<String, Value> {
    let env = json!({
        "AWS_ENDPOINT_URL": kit::router_url(),
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    });
    env.as_object().cloned().unwrap_or_default()
}

/// A VPC and subnet whose addresses are loopback addresses, so that each instance's simulated
/// FreeSWITCH can listen on the instance's own private IP.
#[derive(Debug, Clone)]
pub struct Network {
    pub vpc_id: String,
    pub vpc_cidr: String,
    pub subnet_id: String,
    pub subnet_cidr: String,
}

pub async fn loopback_network(sdk: &aws_config::SdkConfig) -> Network {
    let ec2 = aws_sdk_ec2_client(sdk);
    let octet = 16 + rand_u16() % 230;
    let vpc_cidr = format!("127.{octet}.0.0/16");
    let subnet_cidr = format!("127.{octet}.{}.0/24", rand_u16() % 250);
    let vpc = ec2
        .create_vpc()
        .cidr_block(&vpc_cidr)
        .send()
        .await
        .expect("create the VPC");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("the new VPC's id")
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block(&subnet_cidr)
        .send()
        .await
        .expect("create the subnet");
    let subnet_id = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("the new subnet's id")
        .to_string();
    Network {
        vpc_id,
        vpc_cidr,
        subnet_id,
        subnet_cidr,
    }
}

/// The fleet configuration of every stack: min 1, max 10, max step 4, no cooldowns, one
/// race spare, drain checks and build polls every second, `opts`' drain policy and deadline
/// (`wait` gets twice the deadline as its hard maximum).
pub fn fleet_config(opts: &Options, esl_port: u16, set_id: i32) -> Value {
    json!({
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
    })
}

/// Build a stack through the SDK: the fleet starts with 0 pairs, min 1, max 10, no cooldowns, one race
/// spare, checks and build polls every second.
pub async fn stack(opts: Options) -> Stack {
    let sdk = kit::sdk().await;
    let id = kit::unique("e2e");
    let fleet = kit::unique_fleet();
    let table = format!("{id}-table");
    kit::create_table(&sdk, &table).await;
    let esl_port = free_port();
    let set_id = 100 + (rand_u16() % 30_000) as i32;
    let config = fleet_config(&opts, esl_port, set_id);
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
            .expect("put a SecureString parameter");
    }

    let net = loopback_network(&sdk).await;
    let subnet_id = net.subnet_id.clone();

    // The orchestrator's Terraform makes the fleet's ECS cluster; the pairs' services go in it.
    let cluster = format!("{id}-cluster");
    aws_sdk_ecs::Client::new(&sdk)
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("create the ECS cluster");
    let state_dir = std::env::temp_dir().join(&id);
    std::fs::create_dir_all(&state_dir).expect("create the stack's state folder");
    let with_aws = |extra: Value| {
        let mut m = emulator_env();
        m.insert("RUST_LOG".into(), json!("info"));
        m.extend(extra.as_object().cloned().unwrap_or_default());
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
    let state_dir_str = state_dir.to_string_lossy().into_owned();
    for (project, kind) in [(&tf_project, "terraform"), (&an_project, "ansible")] {
        kit::put_codebuild_project(
            project,
            &[&local_build],
            with_aws(json!({
                "PAIRSCALE_LOCAL_KIND": kind,
                "PAIRSCALE_LOCAL_SUBNET_ID": subnet_id,
                "PAIRSCALE_ECS_CLUSTER": cluster,
                "PAIRSCALE_LOCAL_STATE_DIR": state_dir_str,
                "PAIRSCALE_FSSIM_BIN": binary("pairscale-fssim"),
                "PAIRSCALE_ESL_PORT": esl_port.to_string(),
                "PAIRSCALE_DISPATCHER_SET_ID": set_id.to_string(),
                "PAIRSCALE_LOCAL_INITIAL_CALLS": opts.initial_calls.to_string(),
                "PAIRSCALE_LOCAL_CALLS_PER_SEC": opts.calls_per_sec.to_string(),
                "PAIRSCALE_LOCAL_MEDIAN_CALL_SECS": opts.median_call_secs.to_string(),
                "PAIRSCALE_DISPATCHER_DB_URL": pg_url,
                "PAIRSCALE_KAMAILIO_RPC_URL": rpc_url,
            })),
            &state_dir_str,
        )
        .await;
    }

    // The one definition, rendered as Terraform's templatefile would.
    let mut definition = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../statemachines/scale.asl.json"),
    )
    .expect("read statemachines/scale.asl.json");
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
        .expect("create the state machine");
    Stack {
        sdk,
        fleet,
        id,
        state_machine: created.state_machine_arn().to_string(),
        table,
        cluster,
        tf_project,
        an_project,
        state_dir,
        set_id,
        esl_port,
        pg_url,
        prefix: PREFIX.to_string(),
        esl_password: "ClueCon".to_string(),
        scratch: None,
    }
}

pub fn aws_sdk_ec2_client(sdk: &aws_config::SdkConfig) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(sdk)
}

pub fn rand_u16() -> u16 {
    let id = kit::unique("r");
    u16::from_str_radix(&id[id.len() - 4..], 16).expect("unique() ends in hex digits")
}

/// How an execution ended.
#[derive(Debug)]
pub struct Ended {
    pub status: ExecutionStatus,
    pub output: Value,
    pub error: String,
    pub cause: String,
    pub arn: String,
}

impl Stack {
    /// The name of one of this stack's functions (`lock`, `state`, `drain`, `build`).
    pub fn function(&self, f: &str) -> String {
        format!("{}-{f}", self.id)
    }

    /// Start an execution and wait for it to end (bounded: 150 s).
    pub async fn run(&self, name: &str, input: Value) -> Ended {
        let arn = self.start(name, input).await;
        self.wait(&arn).await
    }

    /// Start an execution; its ARN.
    pub async fn start(&self, name: &str, input: Value) -> String {
        aws_sdk_sfn::Client::new(&self.sdk)
            .start_execution()
            .state_machine_arn(&self.state_machine)
            .name(format!("{}-{name}", self.id))
            .input(input.to_string())
            .send()
            .await
            .expect("start an execution")
            .execution_arn()
            .to_string()
    }

    /// Wait for an execution to end (bounded: 150 s).
    pub async fn wait(&self, arn: &str) -> Ended {
        let sfn = aws_sdk_sfn::Client::new(&self.sdk);
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            let d = sfn
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .expect("describe the execution");
            if d.status() != &ExecutionStatus::Running {
                return Ended {
                    status: d.status().clone(),
                    output: d
                        .output()
                        .map(|o| serde_json::from_str(o).expect("the output is JSON"))
                        .unwrap_or(Value::Null),
                    error: d.error().unwrap_or_default().to_string(),
                    cause: d.cause().unwrap_or_default().to_string(),
                    arn: arn.to_string(),
                };
            }
            assert!(
                Instant::now() < deadline,
                "execution {arn} still running after 150 s"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The names of the states an execution entered, in order.
    pub async fn states_entered(&self, arn: &str) -> Vec<String> {
        let sfn = aws_sdk_sfn::Client::new(&self.sdk);
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = sfn
                .get_execution_history()
                .execution_arn(arn)
                .set_next_token(token)
                .max_results(1000)
                .send()
                .await
                .expect("execution history");
            names.extend(page.events().iter().filter_map(|e| {
                e.state_entered_event_details()
                    .map(|d| d.name().to_string())
            }));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return names;
            }
        }
    }

    /// Wait until an execution has entered `state` (bounded: 60 s).
    pub async fn wait_for_state(&self, arn: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.states_entered(arn).await.iter().any(|s| s == state) {
            assert!(
                Instant::now() < deadline,
                "execution {arn} did not reach {state:?} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// `StopExecution`, as an operator in the console would.
    pub async fn stop(&self, arn: &str) {
        aws_sdk_sfn::Client::new(&self.sdk)
            .stop_execution()
            .execution_arn(arn)
            .error("Operator.Stopped")
            .cause("stopped from the console")
            .send()
            .await
            .expect("stop the execution");
    }

    /// Invoke one of this stack's functions directly, as the CLI would.
    pub async fn invoke(&self, function: &str, payload: Value) -> (bool, Value) {
        let url = format!(
            "{}/2015-03-31/functions/{}/invocations",
            kit::router_url(),
            self.function(function)
        );
        let resp = reqwest::Client::new()
            .post(url)
            .json(&payload)
            .send()
            .await
            .expect("the router answers");
        let failed = resp.headers().contains_key("x-amz-function-error");
        (
            failed,
            resp.json().await.expect("the function answers JSON"),
        )
    }

    pub async fn pair_count(&self) -> String {
        aws_sdk_ssm::Client::new(&self.sdk)
            .get_parameter()
            .name(format!("{}/{}/pair_count", self.prefix, self.fleet))
            .send()
            .await
            .expect("read pair_count")
            .parameter()
            .and_then(|p| p.value())
            .expect("pair_count has a value")
            .to_string()
    }

    /// The pair records, by id → record.
    pub async fn records(&self) -> BTreeMap<String, Value> {
        let (failed, read) = self
            .invoke("state", json!({"action": "read", "fleet": self.fleet}))
            .await;
        assert!(!failed, "{read}");
        read["pairs"]
            .as_array()
            .expect("read returns pairs")
            .iter()
            .map(|p| (p["id"].as_str().unwrap_or_default().to_string(), p.clone()))
            .collect()
    }

    /// Running instances, by pair id → private IP.
    pub async fn instances(&self) -> BTreeMap<String, String> {
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
            .expect("describe instances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                let pair = i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("pairscale:pair-id"))
                    .and_then(|t| t.value())
                    .expect("every instance of the fleet carries its pair id")
                    .to_string();
                let ip = i.private_ip_address().expect("a private IP").to_string();
                (pair, ip)
            })
            .collect()
    }

    /// The dispatcher rows of this stack's set: pair id → (destination, flags).
    pub async fn dispatcher_rows(&self) -> BTreeMap<String, (String, i32)> {
        let (client, conn) = tokio_postgres::connect(&self.pg_url, tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(conn);
        let rows = client
            .query(
                "SELECT destination, flags, attrs FROM dispatcher WHERE setid = $1",
                &[&self.set_id],
            )
            .await
            .expect("read the dispatcher table");
        rows.iter()
            .map(|r| {
                let attrs: String = r.get(2);
                let pair = attrs
                    .split(';')
                    .find_map(|kv| kv.strip_prefix("duid="))
                    .expect("every row carries its pair id as duid")
                    .to_string();
                (pair, (r.get::<_, String>(0), r.get::<_, i32>(1)))
            })
            .collect()
    }

    pub async fn lock_held(&self) -> bool {
        let (failed, shown) = self
            .invoke("lock", json!({"action": "show", "fleet": self.fleet}))
            .await;
        assert!(!failed, "{shown}");
        shown["held"]
            .as_bool()
            .expect("show says whether it is held")
    }

    /// Whether a simulated FreeSWITCH answers on `ip`'s ESL port.
    pub async fn node_answers(&self, ip: &str) -> bool {
        tokio::net::TcpStream::connect((ip, self.esl_port))
            .await
            .is_ok()
    }

    /// A node's channel count and whether it refuses inbound calls, over its event socket.
    pub async fn node_view(&self, ip: &str) -> (u64, bool) {
        let mut c = pairscale_esl::Client::connect(
            &format!("{ip}:{}", self.esl_port),
            &pairscale_esl::Password::new(&self.esl_password),
            pairscale_esl::ClientOptions::default(),
        )
        .await
        .expect("connect to the node's event socket");
        let channels = c.channel_count().await.expect("channel count");
        let paused = c
            .pause_check(Some(pairscale_esl::Direction::Inbound))
            .await
            .expect("pause check");
        (channels, paused)
    }

    pub async fn builds(&self, project: &str) -> Vec<Value> {
        let all = kit::router(reqwest::Method::GET, "builds", None).await;
        all.as_array()
            .or_else(|| all["builds"].as_array())
            .expect("the router lists builds")
            .iter()
            .filter(|b| b["project"] == project || b["projectName"] == project)
            .cloned()
            .collect()
    }
}

pub fn assert_succeeded(e: &Ended) {
    assert_eq!(
        e.status,
        ExecutionStatus::Succeeded,
        "{}: {} {}",
        e.arn,
        e.error,
        e.cause
    );
}
