//! What the end-to-end tests and the CLI's tests do with a deployment: start executions and
//! wait for them, read what the run changed (the pair count, the records, the instances, the
//! dispatcher rows, the lock, the nodes), and invoke a function as the CLI would.
//!
//! For tests only: these panic, naming what failed, since a panic is the test's failure.

use crate::deployment::Stack;
use crate::fleet::Options;
use aws_sdk_sfn::types::ExecutionStatus;
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One instance of the fleet, as EC2 describes it.
struct Described {
    pair: String,
    id: String,
    ip: String,
    state: String,
}

/// A deployment made through the SDK ([`crate::sdk::deploy`]); panics if it cannot be made.
pub async fn stack(opts: Options) -> Stack {
    crate::sdk::deploy(opts)
        .await
        .unwrap_or_else(|e| panic!("deploying into the local stack: {e}"))
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

impl Stack {
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

    /// Every task failure in an execution's history, as `error: cause`, in order.
    pub async fn task_failures(&self, arn: &str) -> Vec<String> {
        let sfn = aws_sdk_sfn::Client::new(&self.sdk);
        let mut out = Vec::new();
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
            for e in page.events() {
                if let Some(d) = e.task_failed_event_details() {
                    out.push(format!(
                        "{}: {}",
                        d.error().unwrap_or(""),
                        d.cause().unwrap_or("")
                    ));
                }
                if let Some(d) = e.lambda_function_failed_event_details() {
                    out.push(format!(
                        "{}: {}",
                        d.error().unwrap_or(""),
                        d.cause().unwrap_or("")
                    ));
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return out;
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

    /// Change the fleet's configuration with `change` and write it back where the functions
    /// read it.
    pub async fn configure(&self, change: impl FnOnce(&mut Value)) {
        let ssm = aws_sdk_ssm::Client::new(&self.sdk);
        let name = format!("{}/{}/config", self.prefix, self.fleet);
        let raw = ssm
            .get_parameter()
            .name(&name)
            .send()
            .await
            .expect("read the fleet's config")
            .parameter()
            .and_then(|p| p.value())
            .expect("the config has a value")
            .to_string();
        let mut config: Value = serde_json::from_str(&raw).expect("the config is JSON");
        change(&mut config);
        ssm.put_parameter()
            .name(&name)
            .value(config.to_string())
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("write the fleet's config");
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
        self.described(&["running"])
            .await
            .into_iter()
            .map(|i| (i.pair, i.ip))
            .collect()
    }

    /// Every instance of the fleet not terminated, by pair id → (instance id, state): the
    /// warm pool's stopped ones too.
    pub async fn instance_states(&self) -> BTreeMap<String, (String, String)> {
        self.described(&["pending", "running", "stopping", "stopped"])
            .await
            .into_iter()
            .map(|i| (i.pair, (i.id, i.state)))
            .collect()
    }

    /// The fleet's instances in one of `states`.
    async fn described(&self, states: &[&str]) -> Vec<Described> {
        let out = aws_sdk_ec2::Client::new(&self.sdk)
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
                    .set_values(Some(states.iter().map(|s| s.to_string()).collect()))
                    .build(),
            )
            .send()
            .await
            .expect("describe instances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| Described {
                pair: i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("pairscale:pair-id"))
                    .and_then(|t| t.value())
                    .expect("every instance of the fleet carries its pair id")
                    .to_string(),
                id: i.instance_id().expect("an instance id").to_string(),
                ip: i.private_ip_address().expect("a private IP").to_string(),
                state: i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .expect("a state"),
            })
            .collect()
    }

    /// The names of the ECS services (the ESL clients) in the stack's cluster that are not
    /// deleted.
    pub async fn services(&self) -> Vec<String> {
        let ecs = aws_sdk_ecs::Client::new(&self.sdk);
        let arns: Vec<String> = ecs
            .list_services()
            .cluster(&self.cluster)
            .send()
            .await
            .expect("list services")
            .service_arns()
            .to_vec();
        if arns.is_empty() {
            return Vec::new();
        }
        let mut names: Vec<String> = ecs
            .describe_services()
            .cluster(&self.cluster)
            .set_services(Some(arns))
            .send()
            .await
            .expect("describe services")
            .services()
            .iter()
            .filter(|s| s.status() == Some("ACTIVE"))
            .filter_map(|s| s.service_name().map(String::from))
            .collect();
        names.sort();
        names
    }

    /// The dispatcher rows of this stack's set: pair id → (destination, flags).
    pub async fn dispatcher_rows(&self) -> BTreeMap<String, (String, i32)> {
        self.try_dispatcher_rows()
            .await
            .unwrap_or_else(|e| panic!("reading the dispatcher table: {e}"))
    }

    /// Moves the lock's expiry into the past, as its TTL running out would, without waiting for
    /// it (the lock function's shortest TTL is 30 s).
    pub async fn expire_lock(&self) {
        use aws_sdk_dynamodb::types::AttributeValue::{N, S};
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .update_item()
            .table_name(&self.table)
            .key("pk", S(format!("FLEET#{}", self.fleet)))
            .key("sk", S("LOCK".into()))
            .update_expression("SET expires_at = :past")
            .condition_expression("attribute_exists(holder)")
            .expression_attribute_values(":past", N("1".into()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("expiring the lock: {e:?}"));
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

    /// The builds the router ran for `project`.
    pub async fn builds(&self, project: &str) -> Vec<Value> {
        self.try_builds(project)
            .await
            .unwrap_or_else(|e| panic!("listing the builds: {e}"))
    }
}
