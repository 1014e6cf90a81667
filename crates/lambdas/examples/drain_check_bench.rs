//! Benchmark (not a test): the drain handler's `check` over a thousand simulated FreeSWITCH
//! nodes in one invocation, each node carrying calls, then the same nodes checked one after
//! another; then both again with every reply delayed by 1 ms, as a network would. Prints the
//! wall time of each and the per-node visit time (p50, p99, max).
//!
//! `./tests/bench/drain.sh [nodes] [concurrency]` builds and runs it.
//!
//! The per-node time is measured from the moment a visit holds its permit (the semaphore that
//! keeps a Lambda within its 1,024 descriptors) to its answer: time spent queueing for a
//! permit is the wall time's business, not the node's.
#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use pairscale_aws::fleet_state::AwsFleetState;
use pairscale_core::canary::CanaryCall;
use pairscale_core::ports::{
    Clock, Dispatcher, DrainState, Hangup, MediaNodes, NodeHealth, NodeSnapshot, SipDestination,
    SystemClock,
};
use pairscale_core::{HangupCause, Result, Timestamp};
use pairscale_fssim::{CallSpec, Fault, Fleet, NodeConfig};
use pairscale_lambdas::handlers::drain::DrainHandler;
use pairscale_lambdas::metrics::Metrics;
use pairscale_media::{EslNodes, Password};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The real ESL adapter, with the bound applied here so that each visit can be timed from
/// the moment it may start.
struct Timed {
    inner: EslNodes,
    permits: Semaphore,
    visits: Mutex<Vec<Duration>>,
}

impl Timed {
    async fn timed<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let _p = self.permits.acquire().await.unwrap();
        let t = Instant::now();
        let r = f.await;
        self.visits.lock().unwrap().push(t.elapsed());
        r
    }
}

#[async_trait]
impl MediaNodes for Timed {
    async fn snapshot(&self, e: &str, now: Timestamp) -> Result<NodeSnapshot> {
        self.timed(self.inner.snapshot(e, now)).await
    }
    async fn drain_state(&self, e: &str) -> Result<DrainState> {
        self.timed(self.inner.drain_state(e)).await
    }
    async fn pause(&self, e: &str) -> Result<bool> {
        self.timed(self.inner.pause(e)).await
    }
    async fn resume(&self, e: &str) -> Result<bool> {
        self.timed(self.inner.resume(e)).await
    }
    async fn hupall(&self, e: &str, cause: HangupCause) -> Result<Hangup> {
        self.timed(self.inner.hupall(e, cause)).await
    }
    async fn health(&self, e: &str) -> Result<NodeHealth> {
        self.timed(self.inner.health(e)).await
    }
    async fn canary(&self, e: &str, dial: &str, seconds: u32) -> Result<CanaryCall> {
        self.timed(self.inner.canary(e, dial, seconds)).await
    }
}

/// `check` never touches the dispatcher.
struct NoDispatcher;

#[async_trait]
impl Dispatcher for NoDispatcher {
    async fn register(&self, _: &SipDestination) -> Result<()> {
        Ok(())
    }
    async fn disable(&self, _: &SipDestination) -> Result<()> {
        Ok(())
    }
    async fn enable(&self, _: &SipDestination) -> Result<()> {
        Ok(())
    }
    async fn deregister(&self, _: &SipDestination) -> Result<()> {
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// An SDK configuration that is never used to call anything.
fn offline() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

async fn run(label: &str, nodes: &Value, concurrency: usize, expect_total: u64) -> Duration {
    let timed = Arc::new(Timed {
        // The adapter's own bound is lifted: the bench's semaphore is the one that counts.
        inner: EslNodes::new(
            Password::new("ClueCon"),
            usize::MAX >> 4,
            Duration::from_secs(5),
        ),
        permits: Semaphore::new(concurrency),
        visits: Mutex::new(Vec::new()),
    });
    let handler = DrainHandler {
        nodes: timed.clone(),
        dispatcher: Arc::new(NoDispatcher),
        clock: Arc::new(SystemClock),
        metrics: Metrics::memory("Bench").0,
        // Read only by `measure`; `check` never calls AWS.
        state: Arc::new(AwsFleetState::new(&offline(), "unused", "/unused")),
        signals: Arc::new(pairscale_aws::cloudwatch::CloudWatchQuality::new(&offline())),
        locks: Arc::new(pairscale_aws::dynamodb::DynamoLockStore::new(
            aws_sdk_dynamodb::Client::new(&offline()),
            "unused",
        )),
    };
    let t = Instant::now();
    let out = handler
        .handle(json!({"action": "check", "nodes": nodes}))
        .await
        .expect("check");
    let wall = t.elapsed();
    let total = out["total_channels"].as_u64().unwrap();
    let unreachable = out["unreachable"].as_array().unwrap().len();
    let repaused = out["repaused"].as_array().unwrap().len();
    assert_eq!(total, expect_total, "check must count every channel");
    assert_eq!((unreachable, repaused), (0, 0), "{out}");
    let mut visits = timed.visits.lock().unwrap().clone();
    visits.sort();
    println!(
        "{label:<28} nodes {:>5}  at once {:>4}  wall {:>9.1} ms  per node p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms  channels {total}",
        visits.len(),
        concurrency,
        wall.as_secs_f64() * 1e3,
        percentile(&visits, 0.50).as_secs_f64() * 1e3,
        percentile(&visits, 0.99).as_secs_f64() * 1e3,
        visits.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    wall
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(1_000);
    let concurrency: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(64);

    // Both ends of every loopback connection live in this process.
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    let raised = rlimit::increase_nofile_limit(hard.max(soft)).unwrap();
    println!("open-file limit: {soft} -> {raised} (hard {hard})");
    let needed = (n + 2 * concurrency + 64) as u64;
    assert!(
        raised >= needed,
        "need {needed} descriptors for {n} nodes, have {raised}"
    );

    let fleet = Fleet::spawn(n, |i| NodeConfig {
        heartbeat: None,
        seed: i as u64 + 1,
        ..NodeConfig::default()
    })
    .await
    .unwrap();
    let mut expect_total = 0;
    let mut nodes = Vec::with_capacity(n);
    let now = SystemClock.now();
    for (i, node) in fleet.nodes().iter().enumerate() {
        // 1..=12 calls, every third one bridged (two channels).
        let calls = 1 + (i * 7) % 12;
        node.add_calls(calls, CallSpec::inbound());
        node.add_calls(calls / 3, CallSpec::inbound().bridged());
        // Draining nodes are paused; `check` would re-pause any that were not.
        node.set_paused(pairscale_fssim::Direction::Inbound, true);
        node.set_paused(pairscale_fssim::Direction::Outbound, true);
        expect_total += node.channel_count();
        nodes.push(json!({
            "pair_id": format!("pair-{:04}", i + 1),
            "esl_endpoint": node.addr().to_string(),
            "sip_uri": format!("sip:10.0.{}.{}:5060", i / 250, i % 250 + 1),
            "set_id": 1,
            "created_at": now.millis(),
        }));
    }
    let nodes = Value::Array(nodes);
    println!("{n} simulated nodes, {expect_total} channels\n");

    run("warm-up (concurrent)", &nodes, concurrency, expect_total).await;
    let mut walls = Vec::new();
    for r in 1..=3 {
        walls.push(
            run(
                &format!("check, concurrent #{r}"),
                &nodes,
                concurrency,
                expect_total,
            )
            .await,
        );
    }
    let seq = run("check, one after another", &nodes, 1, expect_total).await;
    walls.sort();
    let median = walls[walls.len() / 2];
    println!(
        "\nloopback: concurrent median wall {:.1} ms (target < 1000 ms: {}); one after another {:.1} ms ({:.1}x)\n",
        median.as_secs_f64() * 1e3,
        if median < Duration::from_secs(1) { "met" } else { "MISSED" },
        seq.as_secs_f64() * 1e3,
        seq.as_secs_f64() / median.as_secs_f64(),
    );

    // Loopback has no network between the handler and the nodes; in a VPC every reply costs a
    // round trip. The simulator's slow-reply fault delays each reply by `latency` to stand in.
    let latency = Duration::from_millis(1);
    for node in fleet.nodes() {
        node.set_fault(Fault::SlowReplies(latency));
    }
    let conc = run(
        "check +1 ms/reply, concurrent",
        &nodes,
        concurrency,
        expect_total,
    )
    .await;
    let seq = run("check +1 ms/reply, one by one", &nodes, 1, expect_total).await;
    println!(
        "\n+1 ms per reply: concurrent {:.1} ms (target < 1000 ms: {}); one after another {:.1} ms ({:.1}x)",
        conc.as_secs_f64() * 1e3,
        if conc < Duration::from_secs(1) { "met" } else { "MISSED" },
        seq.as_secs_f64() * 1e3,
        seq.as_secs_f64() / conc.as_secs_f64(),
    );
    fleet.shutdown().await;
}
