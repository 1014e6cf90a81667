//! The fault-injection soak: many randomized scale cycles against one fleet in the local
//! stack, each with one fault injected at random, each followed by checks of what must hold
//! whatever the fault:
//!
//! - (a) no call is lost, except by a hangup under the `force` policy on a pair the run
//!   removed. The simulated nodes count how every call ended (`api fssim_call_tally`, and
//!   their last line when stopped); see [`judge_call_ends`] for how each reason is judged.
//! - (b) after at most one further run (a dry run, which only recovers), pair_count = active
//!   records = instances = ECS services = dispatcher rows in rotation, every record is
//!   active, and no active node is paused or out of rotation. No outcome is left to an
//!   operator: a scale-in stopped or failed while removing is finished by the next run.
//! - (c) no lock is held by a run that is not RUNNING once a later run has started.
//!
//! The fleet drains under `force` with a 4 s deadline, its nodes take random calls (one a
//! second, log-normal lengths around 1.5 s), so that some drains end by themselves and some
//! are forced. The fleet stays between 1 and 5 pairs to keep a cycle to seconds. The fleet's
//! functions and builds drive a Kamailio of the soak's own, which it can restart without
//! touching the one the other tests share.
//!
//! Environment:
//! - `PAIRSCALE_SOAK_CYCLES`: cycles in all (30).
//! - `PAIRSCALE_SOAK_SEED`: run this seed only. Unset: the fixed seed 14, then a fresh seed
//!   from the clock, half the cycles each, each on a fleet of its own.
//! - `PAIRSCALE_SOAK_REPORT`: a file to append one JSON line per cycle to (tests/soak/run.sh).
//! - `PAIRSCALE_SOAK_KEEP_GOING=1`: go on after a violation and fail at the end, to count
//!   violations over a long soak.
//!
//! A failure prints the seed, the cycle, the fault and the histories of the cycle's runs;
//! `PAIRSCALE_SOAK_SEED=<seed> PAIRSCALE_SOAK_CYCLES=<cycle>` replays the same choices (the
//! timing of a run against a fault is the machine's, so a replay is close, not exact).
#![allow(clippy::unwrap_used)]

use aws_sdk_sfn::types::ExecutionStatus;
use pairscale_stack::*;
use pairscale_testkit as kit;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FIXED_SEED: u64 = 14;
const DEFAULT_CYCLES: usize = 30;
/// The fleet's own bounds are 1..=10; the soak keeps below 6 so that a cycle stays short.
const MIN_PAIRS: u64 = 1;
const MAX_PAIRS: u64 = 5;
/// Cycles on one fleet before the soak goes on with a new one, in a new subnet.
const CYCLES_PER_FLEET: usize = 200;
/// A bound on every wait of the soak's own (runs are bounded by `Stack::wait`).
const WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    /// No fault: the baseline.
    None,
    /// `StopExecution` once the run has entered a random state.
    Stop,
    /// A handler's process dies on one action, before or after its handler ran.
    Crash,
    TerraformFails,
    AnsibleFails,
    /// One heartbeat answers `Pairscale.LockNotOwned`.
    HeartbeatFails,
    /// `fsctl shutdown restart` on a node: mid-drain on a candidate for a scale-in.
    NodeRestart,
    /// A node's process is stopped (SIGSTOP) from a random state to the run's end: it
    /// accepts connections and answers nothing.
    NodeUnreachable,
    /// The fleet's Kamailio is stopped at a random state and started again 0-3 s later.
    KamailioRestart,
    /// The run is stopped at a random state and its lock expires before the next run.
    LockExpiry,
    /// Two runs started at once.
    TwoRuns,
}

impl Fault {
    const ALL: [Fault; 11] = [
        Fault::None,
        Fault::Stop,
        Fault::Crash,
        Fault::TerraformFails,
        Fault::AnsibleFails,
        Fault::HeartbeatFails,
        Fault::NodeRestart,
        Fault::NodeUnreachable,
        Fault::KamailioRestart,
        Fault::LockExpiry,
        Fault::TwoRuns,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Stop => "stop_execution",
            Fault::Crash => "handler_crash",
            Fault::TerraformFails => "terraform_fails",
            Fault::AnsibleFails => "ansible_fails",
            Fault::HeartbeatFails => "heartbeat_fails",
            Fault::NodeRestart => "node_restart",
            Fault::NodeUnreachable => "node_unreachable",
            Fault::KamailioRestart => "kamailio_restart",
            Fault::LockExpiry => "lock_expiry",
            Fault::TwoRuns => "two_runs",
        }
    }
}

/// States a run passes on its way, by direction: where a fault lands.
const OUT_STATES: &[&str] = &[
    "Acquire lock",
    "Recover unfinished runs",
    "Validate",
    "Plan",
    "Out: commit new pairs",
    "Out: terraform Start",
    "Out: terraform Wait",
    "Out: discover",
    "Out: ansible Start",
    "Out: ansible Wait",
    "Out: wait until healthy",
    "Out: canary calls",
    "Out: commit count",
    "Out: resume new nodes",
    "Out: release",
];
const IN_STATES: &[&str] = &[
    "Acquire lock",
    "Recover unfinished runs",
    "Validate",
    "Plan",
    "In: call quality",
    "In: select candidates",
    "In: commit draining",
    "In: quiesce",
    "In: drain wait",
    "In: drain check",
    "In: resume spares",
    "In: commit settled",
    "In: terraform Start",
    "In: terraform Wait",
    "In: ansible Start",
    "In: ansible Wait",
    "In: commit count",
    "In: release",
];
/// (function, action) a run of each direction invokes whatever happens.
const OUT_ACTIONS: &[(&str, &str)] = &[
    ("lock", "acquire"),
    ("state", "recover_open"),
    ("state", "validate"),
    ("state", "plan"),
    ("state", "commit"),
    ("build", "start"),
    ("build", "status"),
    ("state", "discover"),
    ("drain", "health"),
    ("drain", "canary"),
    ("drain", "resume"),
    ("lock", "release"),
];
const IN_ACTIONS: &[(&str, &str)] = &[
    ("lock", "acquire"),
    ("state", "recover_open"),
    ("state", "validate"),
    ("state", "plan"),
    ("drain", "quality"),
    ("state", "record_quality"),
    ("drain", "select"),
    ("state", "commit"),
    ("drain", "quiesce"),
    ("drain", "check"),
    ("drain", "resume"),
    ("build", "start"),
    ("build", "status"),
    ("lock", "release"),
];

/// How a node's calls ended, as `fssim_call_tally` reports it (`admitted`, `natural`,
/// `hupall`, `killed`, `restart`, `shutdown`, `up`).
type Tally = BTreeMap<String, u64>;

fn parse_tally(v: &Value) -> Option<Tally> {
    v.as_object()?
        .iter()
        .map(|(k, n)| n.as_u64().map(|n| (k.clone(), n)))
        .collect()
}

/// A run as the cycle saw it end.
struct Run {
    label: String,
    input: Value,
    ended: Ended,
    states: Vec<String>,
    failures: Vec<String>,
}

impl Run {
    fn entered(&self, state: &str) -> bool {
        self.states.iter().any(|s| s == state)
    }

    fn outcome(&self) -> &'static str {
        match self.ended.status {
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Aborted => "aborted",
            ExecutionStatus::TimedOut => "timed_out",
            _ => "other",
        }
    }

    fn render(&self) -> String {
        format!(
            "  run {} {}\n    input: {}\n    {} {} {}\n    states: {}\n    task failures: {:?}\n",
            self.label,
            self.ended.arn,
            self.input,
            self.outcome(),
            self.ended.error,
            self.ended.cause,
            self.states.join(" > "),
            self.failures
        )
    }
}

/// What the call ends of one cycle came to (invariant (a)).
#[derive(Debug, Default)]
struct CallEnds {
    natural: u64,
    /// Cut by `hupall` under `force` on a pair the run removed: allowed.
    forced: u64,
    /// Dropped by an injected node restart: lost by the fault.
    lost_by_fault: u64,
    /// Ended by `uuid_kill`: the canary calls pairscale places itself.
    canary: u64,
    /// Up when a node that never was in rotation was destroyed: calls the simulator gave a
    /// node Kamailio never routed to.
    never_routed: u64,
}

/// Kamailio of the soak's own, started with tests/kamailio/run.sh on free ports, reading the
/// shared test table; stopped (TERM, which takes its children down) when dropped.
struct OwnKamailio {
    sip_port: u16,
    http_port: u16,
    run_dir: PathBuf,
    child: Option<std::process::Child>,
}

impl OwnKamailio {
    async fn start() -> Self {
        let base = std::env::var_os("PS_WORK")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let http_port = free_port().unwrap();
        let mut k = OwnKamailio {
            sip_port: free_port().unwrap(),
            http_port,
            run_dir: base.join(format!("kamailio-soak-{http_port}")),
            child: None,
        };
        k.start_again().await;
        k
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/RPC", self.http_port)
    }

    async fn answers(&self) -> bool {
        let asked = reqwest::Client::new()
            .post(self.url())
            .timeout(Duration::from_secs(2))
            .json(&json!({"jsonrpc": "2.0", "method": "core.version", "id": 1}))
            .send()
            .await;
        match asked {
            Ok(r) => r
                .json::<Value>()
                .await
                .is_ok_and(|v| v.get("result").is_some()),
            Err(_) => false,
        }
    }

    async fn start_again(&mut self) {
        assert!(self.child.is_none(), "kamailio already running");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../tests/kamailio/run.sh"
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.run_dir.with_extension("log"))
            .expect("kamailio log file");
        let child = std::process::Command::new(script)
            .args([
                self.sip_port.to_string(),
                self.http_port.to_string(),
                self.run_dir.display().to_string(),
            ])
            .stdout(log.try_clone().expect("kamailio log file"))
            .stderr(log)
            .spawn()
            .expect("run tests/kamailio/run.sh");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.answers().await {
            assert!(
                Instant::now() < deadline,
                "the soak's kamailio did not answer at {} within 30 s (log {})",
                self.url(),
                self.run_dir.with_extension("log").display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        terminate(&mut child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.answers().await {
            assert!(Instant::now() < deadline, "kamailio still answers");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn terminate(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

impl Drop for OwnKamailio {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

/// One seed's soak: a fleet of its own, and what the soak has seen of it.
struct Soak {
    s: Stack,
    kamailio: OwnKamailio,
    seed: u64,
    rng: StdRng,
    /// Every run started, in order: (ARN, when it was started, when it was seen ended).
    started: Vec<(String, Instant, Option<Instant>)>,
    /// Each pair's tally at the end of the last cycle.
    tallies: BTreeMap<String, Tally>,
    /// Pairs seen in rotation (or possibly put there) at some point.
    served: BTreeSet<String>,
    /// The rendered histories of the cycles so far.
    history: Vec<String>,
    keep_going: bool,
    report: Option<PathBuf>,
    violations: usize,
}

struct Outcome {
    fault: Fault,
    detail: String,
    from: u64,
    to: u64,
    runs: Vec<Run>,
    repairs: u32,
    violations: Vec<String>,
    ends: CallEnds,
}

impl Soak {
    async fn new(seed: u64) -> Soak {
        let kamailio = OwnKamailio::start().await;
        let s = Self::fleet(&kamailio).await;
        Soak {
            s,
            kamailio,
            seed,
            rng: StdRng::seed_from_u64(seed),
            started: Vec::new(),
            tallies: BTreeMap::new(),
            served: BTreeSet::new(),
            history: Vec::new(),
            keep_going: std::env::var("PAIRSCALE_SOAK_KEEP_GOING").is_ok_and(|v| v == "1"),
            report: std::env::var_os("PAIRSCALE_SOAK_REPORT").map(PathBuf::from),
            violations: 0,
        }
    }

    async fn fleet(kamailio: &OwnKamailio) -> Stack {
        stack(Options {
            policy: "force",
            deadline_seconds: 4,
            initial_calls: 0,
            calls_per_sec: 1.0,
            median_call_secs: 1.5,
            kamailio_rpc_url: Some(kamailio.url()),
            ..Options::default()
        })
        .await
    }

    /// Go on with a new fleet, brought to two pairs, when runs can no longer repair this one
    /// or this one's subnet is running out of addresses ([`CYCLES_PER_FLEET`]).
    async fn replace_fleet(&mut self) {
        self.s = Self::fleet(&self.kamailio).await;
        self.started.clear();
        self.tallies.clear();
        self.served.clear();
        eprintln!(
            "soak seed {}: going on with a new fleet {}",
            self.seed, self.s.fleet
        );
        self.boot().await;
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.rng.random_range(0..from.len())]
    }

    async fn pair_count(&self) -> u64 {
        self.s
            .pair_count()
            .await
            .parse()
            .expect("pair_count is a number")
    }

    /// A target 1-2 pairs away within the soak's bounds; a scale-in if `inward` and possible.
    fn pick_target(&mut self, n: u64, inward: bool) -> u64 {
        let (can_out, can_in) = (n < MAX_PAIRS, n > MIN_PAIRS);
        let out = if inward && can_in {
            false
        } else if !can_in {
            true
        } else if !can_out {
            false
        } else {
            self.rng.random_bool(0.5)
        };
        let d = self.rng.random_range(1..=2);
        if out {
            (n + d).min(MAX_PAIRS)
        } else {
            n.saturating_sub(d).max(MIN_PAIRS)
        }
    }

    fn request(&self, to: u64) -> Value {
        json!({"fleet": self.s.fleet, "target_pair_count": to, "reason": "soak",
               "requested_by": "soak"})
    }

    async fn start(&mut self, label: &str, input: &Value) -> String {
        let arn = self.s.start(label, input.clone()).await;
        self.started.push((arn.clone(), Instant::now(), None));
        arn
    }

    async fn finish(&mut self, label: &str, arn: &str, input: Value) -> Run {
        let ended = self.s.wait(arn).await;
        let seen = Instant::now();
        if let Some(r) = self.started.iter_mut().find(|r| r.0 == arn) {
            r.2 = Some(seen);
        }
        Run {
            label: label.to_string(),
            input,
            states: self.s.states_entered(arn).await,
            failures: self.s.task_failures(arn).await,
            ended,
        }
    }

    async fn running(&self, arn: &str) -> bool {
        aws_sdk_sfn::Client::new(&self.s.sdk)
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("describe the execution")
            .status()
            == &ExecutionStatus::Running
    }

    /// Wait until the run has entered `state` (true) or has ended without it (false).
    async fn reach(&self, arn: &str, state: &str) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.s.states_entered(arn).await.iter().any(|s| s == state) {
                return true;
            }
            if !self.running(arn).await {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "seed {}: {arn} neither reached {state:?} nor ended within {WAIT:?}",
                self.seed
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    fn pid_of(&self, pair: &str) -> Option<u32> {
        let path =
            pairscale_local_build::nodes::pid_file_in(&self.s.state_dir, &self.s.fleet, pair);
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    fn signal(pid: u32, sig: &str) {
        let _ = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status();
    }

    async fn esl(&self, addr: &str) -> Result<pairscale_esl::Client, String> {
        pairscale_esl::Client::connect(
            addr,
            &pairscale_esl::Password::new(&self.s.esl_password),
            pairscale_esl::ClientOptions {
                connect_timeout: Duration::from_secs(5),
                command_timeout: Duration::from_secs(5),
                ..pairscale_esl::ClientOptions::default()
            },
        )
        .await
        .map_err(|e| format!("{addr}: {e}"))
    }

    /// Lambda faults of this fleet's functions the run never reached, and the build faults
    /// of its projects, disarmed.
    async fn disarm(&self) -> Vec<String> {
        let left = kit::router(reqwest::Method::GET, "faults", None).await;
        let mine: Vec<String> = left["lambda"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| {
                f["function"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("{}-", self.s.id)))
            })
            .map(Value::to_string)
            .collect();
        for f in ["lock", "state", "drain", "build"] {
            kit::router(
                reqwest::Method::DELETE,
                &format!("faults/lambda/{}", self.s.function(f)),
                None,
            )
            .await;
        }
        for project in [&self.s.tf_project, &self.s.an_project] {
            kit::router(
                reqwest::Method::POST,
                "faults",
                Some(json!({"codebuild": {"project": project, "fail_next": 0, "delay_secs": 0}})),
            )
            .await;
        }
        mine
    }

    /// Every node ever started for the fleet: pair → (its event socket address, whether its
    /// process runs), from the nodes' pid files and logs.
    fn nodes(&self) -> BTreeMap<String, (Option<String>, bool, PathBuf)> {
        let dir = self.s.state_dir.join("nodes");
        let prefix = format!("{}-", self.s.fleet);
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pair) = name
                .strip_prefix(&prefix)
                .and_then(|n| n.strip_suffix(".log"))
            else {
                continue;
            };
            let log = entry.path();
            let addr = std::fs::read_to_string(&log).ok().and_then(|text| {
                text.lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find_map(|v| v["addr"].as_str().map(str::to_string))
            });
            let alive = self.pid_of(pair).is_some_and(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
            });
            out.insert(pair.to_string(), (addr, alive, log));
        }
        out
    }

    /// The last tally a stopped node wrote to its log.
    fn final_tally(log: &Path) -> Option<Tally> {
        std::fs::read_to_string(log)
            .ok()?
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| parse_tally(&v["call_tally"]))
            .next_back()
    }

    /// Every node's tally now: over the event socket if it runs, else the last line it
    /// wrote (waiting for a node that is still going away).
    async fn read_tallies(&self) -> (BTreeMap<String, Tally>, Vec<String>) {
        let mut tallies = BTreeMap::new();
        let mut problems = Vec::new();
        for (pair, (addr, alive, log)) in self.nodes() {
            let mut got = None;
            if alive {
                if let Some(addr) = &addr {
                    if let Ok(mut c) = self.esl(addr).await {
                        if let Ok(body) = c.api("fssim_call_tally").await {
                            got = serde_json::from_str::<Value>(body.trim())
                                .ok()
                                .and_then(|v| parse_tally(&v));
                        }
                    }
                }
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while got.is_none() {
                got = Self::final_tally(&log);
                if got.is_some() || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            match got {
                Some(t) => {
                    tallies.insert(pair, t);
                }
                None => problems.push(format!(
                    "{pair}: no call tally (alive: {alive}, {addr:?}); its calls are unaccounted for"
                )),
            }
        }
        (tallies, problems)
    }

    /// Invariant (b): what the fleet says it is, is what stands, all of it in rotation.
    async fn converged(&self) -> Result<(), String> {
        let n = self.pair_count().await;
        let records = self.s.records().await;
        let active: BTreeSet<String> = records
            .iter()
            .filter(|(_, r)| r["status"] == "active")
            .map(|(p, _)| p.clone())
            .collect();
        let mut wrong = Vec::new();
        let others: Vec<String> = records
            .iter()
            .filter(|(_, r)| r["status"] != "active")
            .map(|(p, r)| format!("{p}: {}", r["status"]))
            .collect();
        if !others.is_empty() {
            wrong.push(format!("records not active: {others:?}"));
        }
        if active.len() as u64 != n {
            wrong.push(format!("pair_count {n} but active records {active:?}"));
        }
        let instances = self.s.instances().await;
        let standing: BTreeSet<String> = instances.keys().cloned().collect();
        if standing != active {
            wrong.push(format!(
                "instances {standing:?} but active records {active:?}"
            ));
        }
        let services = self.services().await?;
        if services != active {
            wrong.push(format!(
                "ECS services {services:?} but active records {active:?}"
            ));
        }
        let rows = self
            .s
            .try_dispatcher_rows()
            .await
            .map_err(|e| format!("dispatcher rows: {e}"))?;
        let rotation: BTreeSet<String> = rows
            .iter()
            .filter(|(_, (_, flags))| *flags == 0)
            .map(|(p, _)| p.clone())
            .collect();
        if rows.len() != rotation.len() || rotation != active {
            wrong.push(format!(
                "dispatcher rows {rows:?} but active records {active:?}"
            ));
        }
        for pair in &active {
            let Some(ip) = instances.get(pair) else {
                continue;
            };
            let addr = format!("{ip}:{}", self.s.esl_port);
            match self.esl(&addr).await {
                Ok(mut c) => match c.pause_check(Some(pairscale_esl::Direction::Inbound)).await {
                    Ok(false) => {}
                    Ok(true) => wrong.push(format!("{pair} is active but paused")),
                    Err(e) => wrong.push(format!("{pair}: pause check: {e}")),
                },
                Err(e) => wrong.push(format!("{pair} is active but its node: {e}")),
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    }

    /// The pairs whose ECS service is ACTIVE in the fleet's cluster.
    async fn services(&self) -> Result<BTreeSet<String>, String> {
        let ecs = aws_sdk_ecs::Client::new(&self.s.sdk);
        let listed = ecs
            .list_services()
            .cluster(&self.s.cluster)
            .max_results(100)
            .send()
            .await
            .map_err(|e| format!("ecs:ListServices: {e:?}"))?;
        let mut pairs = BTreeSet::new();
        for chunk in listed.service_arns().chunks(10) {
            let described = ecs
                .describe_services()
                .cluster(&self.s.cluster)
                .set_services(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| format!("ecs:DescribeServices: {e:?}"))?;
            for svc in described.services() {
                if svc.status() != Some("ACTIVE") {
                    continue;
                }
                let name = svc.service_name().unwrap_or_default();
                if let Some(pair) = name
                    .strip_prefix(&format!("{}-", self.s.fleet))
                    .and_then(|n| n.strip_suffix("-esl"))
                {
                    pairs.insert(pair.to_string());
                }
            }
        }
        Ok(pairs)
    }

    /// Invariant (c): the lock is free, held by a run that runs, or by the last run started
    /// (no later run has had to deal with it yet).
    async fn lock_checked(&self) -> Result<bool, String> {
        let (failed, shown) = self
            .s
            .invoke("lock", json!({"action": "show", "fleet": self.s.fleet}))
            .await;
        if failed {
            return Err(format!("lock show failed: {shown}"));
        }
        if shown["held"] != json!(true) {
            return Ok(false);
        }
        let holder = shown["lock"]["holder"].as_str().unwrap_or_default();
        let Some(at) = self.started.iter().position(|r| r.0 == holder) else {
            return Err(format!(
                "the lock is held by {holder:?}, no run of the soak: {shown}"
            ));
        };
        if self.running(holder).await {
            return Ok(true);
        }
        let ended = self.started[at].2;
        let later = self.started[at + 1..]
            .iter()
            .find(|r| ended.is_some_and(|e| e < r.1));
        match later {
            Some(r) => Err(format!(
                "the lock is held by {holder}, which has ended, though {} started after it",
                r.0
            )),
            None => Ok(true),
        }
    }

    /// One cycle: a request and a fault, the run(s), a repair run if needed, the checks.
    async fn cycle(&mut self, k: usize) -> Outcome {
        let started_at = Instant::now();
        let from = self.pair_count().await;
        let fault = self.pick(&Fault::ALL);
        let to = self.pick_target(from, fault == Fault::NodeRestart);
        let out = to > from;
        let input = self.request(to);
        let states = if out { OUT_STATES } else { IN_STATES };
        let before: BTreeSet<String> = self.nodes().into_keys().collect();
        let pairs: Vec<String> = self.s.instances().await.into_keys().collect();
        let label = format!("c{k}");
        let mut runs = Vec::new();
        let mut detail = String::new();
        let mut restarted = None;
        match fault {
            Fault::None => {
                let arn = self.start(&label, &input).await;
                runs.push(self.finish(&label, &arn, input).await);
            }
            Fault::Stop | Fault::LockExpiry => {
                let state = self.pick(states);
                let arn = self.start(&label, &input).await;
                let reached = self.reach(&arn, state).await;
                if reached {
                    self.s.stop(&arn).await;
                }
                runs.push(self.finish(&label, &arn, input).await);
                detail = format!("stop at {state:?} (reached: {reached})");
                if fault == Fault::LockExpiry && self.s.lock_held().await {
                    self.s.expire_lock().await;
                    detail.push_str(", lock expired");
                }
            }
            Fault::Crash => {
                let (f, action) = self.pick(if out { OUT_ACTIONS } else { IN_ACTIONS });
                let at = self.pick(&["after_handler", "before_handler"]);
                kit::router(
                    reqwest::Method::POST,
                    "faults",
                    Some(
                        json!({"lambda": {"function": self.s.function(f), "when_action": action,
                                           "mode": "crash", "at": at, "times": 1}}),
                    ),
                )
                .await;
                detail = format!("{f} crashes on {action} ({at})");
                let arn = self.start(&label, &input).await;
                runs.push(self.finish(&label, &arn, input).await);
            }
            Fault::TerraformFails | Fault::AnsibleFails => {
                let project = if fault == Fault::TerraformFails {
                    self.s.tf_project.clone()
                } else {
                    self.s.an_project.clone()
                };
                kit::router(
                    reqwest::Method::POST,
                    "faults",
                    Some(json!({"codebuild": {"project": project, "fail_next": 1}})),
                )
                .await;
                let arn = self.start(&label, &input).await;
                runs.push(self.finish(&label, &arn, input).await);
            }
            Fault::HeartbeatFails => {
                kit::router(
                    reqwest::Method::POST,
                    "faults",
                    Some(json!({"lambda": {"function": self.s.function("lock"),
                                           "when_action": "heartbeat", "mode": "error",
                                           "error_type": "Pairscale.LockNotOwned",
                                           "error_message": "injected by the soak", "times": 1}})),
                )
                .await;
                let arn = self.start(&label, &input).await;
                runs.push(self.finish(&label, &arn, input).await);
            }
            Fault::NodeRestart => {
                let state = if out {
                    self.pick(states)
                } else {
                    "In: drain wait"
                };
                let arn = self.start(&label, &input).await;
                if self.reach(&arn, state).await {
                    let records = self.s.records().await;
                    let draining: Vec<String> = records
                        .iter()
                        .filter(|(_, r)| r["status"] == "draining")
                        .map(|(p, _)| p.clone())
                        .collect();
                    let among = if draining.is_empty() {
                        &pairs
                    } else {
                        &draining
                    };
                    if !among.is_empty() {
                        let pair = among[self.rng.random_range(0..among.len())].clone();
                        let ip = self.s.instances().await.get(&pair).cloned();
                        if let Some(ip) = ip {
                            let addr = format!("{ip}:{}", self.s.esl_port);
                            let said = match self.esl(&addr).await {
                                Ok(mut c) => c
                                    .api("fsctl shutdown restart")
                                    .await
                                    .map_err(|e| e.to_string()),
                                Err(e) => Err(e),
                            };
                            detail = format!("restart {pair} at {state:?}: {said:?}");
                            restarted = Some(pair);
                        }
                    }
                } else {
                    detail = format!("the run ended before {state:?}");
                }
                runs.push(self.finish(&label, &arn, input).await);
            }
            Fault::NodeUnreachable => {
                let state = self.pick(states);
                let pair = self.pick_string(&pairs);
                let pid = pair.as_ref().and_then(|p| self.pid_of(p));
                let arn = self.start(&label, &input).await;
                let reached = self.reach(&arn, state).await;
                if let (true, Some(pid)) = (reached, pid) {
                    Self::signal(pid, "-STOP");
                }
                runs.push(self.finish(&label, &arn, input).await);
                if let Some(pid) = pid {
                    Self::signal(pid, "-CONT");
                }
                detail = format!("{pair:?} unreachable from {state:?} (reached: {reached})");
            }
            Fault::KamailioRestart => {
                let state = self.pick(states);
                let down = Duration::from_millis(self.rng.random_range(0..3000));
                let arn = self.start(&label, &input).await;
                let reached = self.reach(&arn, state).await;
                if reached {
                    self.kamailio.stop().await;
                    tokio::time::sleep(down).await;
                    self.kamailio.start_again().await;
                }
                runs.push(self.finish(&label, &arn, input).await);
                detail = format!("kamailio down {down:?} at {state:?} (reached: {reached})");
            }
            Fault::TwoRuns => {
                let to2 = self.pick_target(from, false);
                let input2 = self.request(to2);
                let a = self.start(&label, &input).await;
                let label2 = format!("c{k}-b");
                let b = self.start(&label2, &input2).await;
                runs.push(self.finish(&label, &a, input).await);
                runs.push(self.finish(&label2, &b, input2).await);
                detail = format!("second run to {to2}");
            }
        }
        let left = self.disarm().await;
        if !left.is_empty() {
            detail.push_str(&format!(" (never fired: {left:?})"));
        }

        let mut violations = Vec::new();
        if let Err(e) = self.lock_checked().await {
            violations.push(format!("(c) {e}"));
        }
        let mut repairs = 0;
        let needs_repair = self.converged().await.is_err() || self.s.lock_held().await;
        if needs_repair {
            repairs = 1;
            let input = json!({"fleet": self.s.fleet, "target_pair_count": self.pair_count().await,
                               "dry_run": true, "reason": "soak repair"});
            let label = format!("c{k}-repair");
            let arn = self.start(&label, &input).await;
            runs.push(self.finish(&label, &arn, input).await);
            if let Err(e) = self.lock_checked().await {
                violations.push(format!("(c) after the repair run: {e}"));
            }
            if let Err(e) = self.converged().await {
                violations.push(format!("(b) after one further run: {e}"));
            }
            if self.s.lock_held().await {
                violations.push("(b) the lock is still held after the repair run".into());
            }
        }

        // (a): how every call that ended this cycle ended.
        let (now, problems) = self.read_tallies().await;
        violations.extend(problems.into_iter().map(|p| format!("(a) {p}")));
        let nodes = self.nodes();
        let created: BTreeSet<String> = nodes
            .keys()
            .filter(|p| !before.contains(*p))
            .cloned()
            .collect();
        let put_in_rotation = runs.iter().any(|r| {
            r.entered("Out: resume new nodes") || r.entered("Resume the stale run's nodes")
        });
        if put_in_rotation {
            // Only the pairs that still stand: a pair created this cycle and gone by its end
            // belonged to a scale-out that was undone, which never commits a pair active, and
            // neither resume puts back a pair that is not active. (A cycle whose recovery
            // resumed an earlier run's pairs and whose own scale-out was then undone: seed
            // 2026120514, cycle 209.)
            let standing = self.s.records().await;
            self.served.extend(
                created
                    .iter()
                    .filter(|p| standing.contains_key(*p))
                    .cloned(),
            );
        }
        // Under force a run hangs up the pairs it chose (and, past the deadline, calls that
        // came up on them after their drain); if it stops before the hangup, the next run's
        // recovery does it for it.
        let forced = runs.iter().any(|r| {
            r.entered("In: force hangups")
                || r.entered("In: confirm hangups")
                || r.entered("Recover: hang up removed pairs")
        });
        let mut ends = CallEnds::default();
        let drained: BTreeSet<String> = self
            .s
            .records()
            .await
            .into_iter()
            .filter(|(_, r)| r["status"] == "drained")
            .map(|(p, _)| p)
            .collect();
        for (pair, tally) in &now {
            let alive = nodes.get(pair).is_some_and(|n| n.1);
            let old = self.tallies.get(pair).cloned().unwrap_or_default();
            let judged = judge_call_ends(
                pair,
                &old,
                tally,
                JudgeContext {
                    removed: !alive || drained.contains(pair),
                    forced,
                    restarted: restarted.as_deref() == Some(pair.as_str()),
                    served: self.served.contains(pair),
                },
                &mut ends,
            );
            violations.extend(judged.into_iter().map(|v| format!("(a) {v}")));
        }
        self.tallies = now;
        if let Ok(rows) = self.s.try_dispatcher_rows().await {
            self.served.extend(
                rows.into_iter()
                    .filter(|(_, (_, flags))| *flags == 0)
                    .map(|(p, _)| p),
            );
        }
        let outcome = Outcome {
            fault,
            detail,
            from,
            to,
            runs,
            repairs,
            violations,
            ends,
        };
        self.record(k, &outcome, started_at.elapsed());
        outcome
    }

    fn pick_string(&mut self, from: &[String]) -> Option<String> {
        (!from.is_empty()).then(|| from[self.rng.random_range(0..from.len())].clone())
    }

    /// Print the cycle's line, keep its history, append it to the report.
    fn record(&mut self, k: usize, o: &Outcome, took: Duration) {
        let main = o.runs.first().map_or("none", Run::outcome);
        eprintln!(
            "soak seed {} cycle {k}: {} {}→{} {} [{}] repairs {} violations {} ({:.1} s)",
            self.seed,
            o.fault.name(),
            o.from,
            o.to,
            main,
            o.detail,
            o.repairs,
            o.violations.len(),
            took.as_secs_f64()
        );
        let mut h = format!(
            "cycle {k} (seed {}): fault {} {}, {} → {}\n",
            self.seed,
            o.fault.name(),
            o.detail,
            o.from,
            o.to
        );
        for r in &o.runs {
            h.push_str(&r.render());
        }
        for v in &o.violations {
            h.push_str(&format!("  VIOLATION {v}\n"));
        }
        self.history.push(h);
        if let Some(path) = &self.report {
            let line = json!({
                "seed": self.seed, "cycle": k, "fault": o.fault.name(), "detail": o.detail,
                "from": o.from, "to": o.to, "outcome": main,
                "outcomes": o.runs.iter().map(|r| format!("{}:{}", r.label, r.outcome())).collect::<Vec<_>>(),
                "repairs": o.repairs, "violations": o.violations,
                "calls": {"natural": o.ends.natural, "forced": o.ends.forced,
                          "lost_by_fault": o.ends.lost_by_fault, "canary": o.ends.canary,
                          "never_routed": o.ends.never_routed},
                "secs": took.as_secs_f64(),
            });
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("the soak report file");
            writeln!(f, "{line}").expect("write the soak report");
        }
    }

    /// The soak's first run: two pairs to start from.
    async fn boot(&mut self) {
        let input = self.request(2);
        let arn = self.start("boot", &input).await;
        let run = self.finish("boot", &arn, input).await;
        assert_succeeded(&run.ended);
        let (tallies, problems) = self.read_tallies().await;
        assert!(problems.is_empty(), "{problems:?}");
        self.tallies = tallies;
        self.served.extend(self.s.instances().await.into_keys());
    }

    async fn run(mut self, cycles: usize) -> usize {
        eprintln!(
            "soak: seed {} for {cycles} cycles (replay: PAIRSCALE_SOAK_SEED={} PAIRSCALE_SOAK_CYCLES={cycles})",
            self.seed, self.seed
        );
        self.boot().await;
        for k in 1..=cycles {
            let o = self.cycle(k).await;
            if o.violations.is_empty() {
                // The emulator never gives a terminated instance's address back, and the
                // stack's subnet is a /24: a fleet makes about one instance a cycle, so after
                // some 350 cycles every RunInstances would fail for want of an address.
                if k % CYCLES_PER_FLEET == 0 && k < cycles {
                    self.replace_fleet().await;
                }
                continue;
            }
            self.violations += o.violations.len();
            let recent = self.history[self.history.len().saturating_sub(3)..].join("");
            let message = format!(
                "soak seed {} failed at cycle {k} (fault {}): {:?}\n\
                 replay: PAIRSCALE_SOAK_SEED={} PAIRSCALE_SOAK_CYCLES={k}\n\
                 the last cycles:\n{recent}",
                self.seed,
                o.fault.name(),
                o.violations,
                self.seed
            );
            assert!(self.keep_going, "{message}");
            eprintln!("{message}");
            self.replace_fleet().await;
        }
        self.violations
    }
}

struct JudgeContext {
    /// The node is gone (the cycle's runs removed its pair), or its pair is `drained`:
    /// committed to removal and out of rotation (a fleet that did not converge is a violation
    /// of (b) anyway).
    removed: bool,
    /// A run of the cycle forced hangups.
    forced: bool,
    /// The soak restarted this node this cycle.
    restarted: bool,
    /// The pair was, or may have been, in rotation.
    served: bool,
}

/// Invariant (a) for one node over one cycle: how the calls that ended since `old` ended.
///
/// - `natural` (the call's time was up): fine.
/// - `killed` (`uuid_kill`): the canary calls pairscale places and ends itself: fine.
/// - `hupall`: allowed only on a pair that is gone at the end of the cycle (or `drained`, its
///   committed to removal), in a cycle whose run entered `In: force hangups` or `In: confirm
///   hangups` (the `force` policy at the deadline) or whose recovery hung up a pair a stopped
///   run had chosen; a call cut on a pair that stays is a loss pairscale caused.
/// - `restart`: lost by the fault when the soak restarted that node this cycle (a FreeSWITCH
///   restart drops its calls whatever pairscale does); any other restart is a violation.
/// - `shutdown` (the node was stopped with calls up): a violation on a pair that was, or may
///   have been, in rotation; on a pair that never was (a scale-out undone before its nodes
///   were resumed) the calls are the simulator's, which gives every node calls whether or
///   not Kamailio routes to it, and are counted as `never_routed`.
fn judge_call_ends(
    pair: &str,
    old: &Tally,
    new: &Tally,
    cx: JudgeContext,
    ends: &mut CallEnds,
) -> Vec<String> {
    let get = |t: &Tally, k: &str| t.get(k).copied().unwrap_or(0);
    let mut violations = Vec::new();
    // A node process that started again for the same pair begins a new tally.
    let base = if get(new, "admitted") < get(old, "admitted") {
        violations.push(format!("{pair}: its node started again (tally went back)"));
        Tally::new()
    } else {
        old.clone()
    };
    let d = |k: &str| get(new, k) - get(&base, k).min(get(new, k));
    ends.natural += d("natural");
    ends.canary += d("killed");
    let hupall = d("hupall");
    if hupall > 0 {
        if cx.removed && cx.forced {
            ends.forced += hupall;
        } else {
            violations.push(format!(
                "{pair}: {hupall} calls cut by hupall, on a pair {}",
                if cx.removed {
                    "removed without a forced drain"
                } else {
                    "that was not removed"
                }
            ));
        }
    }
    let restart = d("restart");
    if restart > 0 {
        if cx.restarted {
            ends.lost_by_fault += restart;
        } else {
            violations.push(format!(
                "{pair}: {restart} calls dropped by a restart the soak did not cause"
            ));
        }
    }
    let shutdown = d("shutdown");
    if shutdown > 0 {
        if cx.served {
            violations.push(format!(
                "{pair}: its node was stopped with {shutdown} calls up"
            ));
        } else {
            ends.never_routed += shutdown;
        }
    }
    let ended = ["natural", "hupall", "killed", "restart", "shutdown"]
        .iter()
        .map(|k| get(new, k))
        .sum::<u64>();
    if get(new, "admitted") != ended + get(new, "up") {
        violations.push(format!("{pair}: the tally does not add up: {new:?}"));
    }
    violations
}

fn seeds() -> Vec<u64> {
    match std::env::var("PAIRSCALE_SOAK_SEED") {
        Ok(s) if !s.is_empty() => vec![s.parse().expect("PAIRSCALE_SOAK_SEED is a number")],
        _ => {
            let fresh = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("the clock is past 1970")
                .as_nanos() as u64;
            vec![FIXED_SEED, fresh]
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_keeps_every_invariant_through_random_faults() {
    let cycles: usize = std::env::var("PAIRSCALE_SOAK_CYCLES")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().expect("PAIRSCALE_SOAK_CYCLES is a number"))
        .unwrap_or(DEFAULT_CYCLES);
    let seeds = seeds();
    eprintln!("soak: {cycles} cycles over seeds {seeds:?}");
    let mut violations = 0;
    for (i, seed) in seeds.iter().enumerate() {
        // Split the cycles between the seeds, the first taking any odd one.
        let share = cycles / seeds.len() + usize::from(i < cycles % seeds.len());
        violations += Soak::new(*seed).await.run(share).await;
    }
    assert_eq!(violations, 0, "violations over seeds {seeds:?}: see above");
}

#[test]
fn a_hangup_counts_as_forced_only_on_a_removed_pair_of_a_forced_drain() {
    let tally = |pairs: &[(&str, u64)]| -> Tally {
        pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    let old = tally(&[("admitted", 5), ("natural", 5)]);
    let new = tally(&[("admitted", 8), ("natural", 6), ("hupall", 2), ("up", 0)]);
    let cx = |removed, forced| JudgeContext {
        removed,
        forced,
        restarted: false,
        served: true,
    };
    let mut ends = CallEnds::default();
    assert!(judge_call_ends("p", &old, &new, cx(true, true), &mut ends).is_empty());
    assert_eq!((ends.natural, ends.forced), (1, 2));
    assert_eq!(
        judge_call_ends("p", &old, &new, cx(false, true), &mut ends).len(),
        1
    );
    assert_eq!(
        judge_call_ends("p", &old, &new, cx(true, false), &mut ends).len(),
        1
    );
}

#[test]
fn calls_up_when_a_node_stops_are_lost_unless_it_never_took_routed_calls() {
    let tally = |pairs: &[(&str, u64)]| -> Tally {
        pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    let new = tally(&[("admitted", 3), ("natural", 1), ("shutdown", 2)]);
    let cx = |served| JudgeContext {
        removed: true,
        forced: false,
        restarted: false,
        served,
    };
    let mut ends = CallEnds::default();
    assert!(judge_call_ends("p", &Tally::new(), &new, cx(false), &mut ends).is_empty());
    assert_eq!(ends.never_routed, 2);
    let v = judge_call_ends("p", &Tally::new(), &new, cx(true), &mut ends);
    assert_eq!(v.len(), 1, "{v:?}");
    let restarted = tally(&[("admitted", 2), ("restart", 2)]);
    let mut cx = cx(true);
    cx.removed = false;
    assert_eq!(
        judge_call_ends("p", &Tally::new(), &restarted, cx, &mut ends).len(),
        1
    );
}
