//! The drain handler end to end: simulated FreeSWITCH nodes (in process, on 127.0.0.1:0) and
//! the real Kamailio + PostgreSQL that `tests/setup/30-kamailio.sh` starts.
#![allow(clippy::unwrap_used)]

use pairscale_aws::cloudwatch::CloudWatchQuality;
use pairscale_aws::dynamodb::DynamoLockStore;
use pairscale_aws::fleet_state::AwsFleetState;
use pairscale_core::ports::{
    AcquireLock, Clock, Dispatcher, FleetStateStore, LoadSample, LockStore, SipDestination,
    SystemClock,
};
use pairscale_core::state::{Fence, Journal, WriteBatch};
use pairscale_core::{ErrorName, FleetName, Owner, Pair, PairId, PairStatus, Timestamp};
use pairscale_dispatcher::DestinationStatus;
use pairscale_fssim::{CallSpec, Direction, Fault, NodeConfig, NodeHandle, Simulator};
use pairscale_lambdas::handlers::drain::DrainHandler;
use pairscale_lambdas::metrics::Metrics;
use pairscale_media::{DispatcherConfig, EslNodes, KamailioDispatcher, KamailioNodes, Password};
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "drain-test-secret";
const PREFIX: &str = "/pairscale-drain-test";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the drain tests need the Kamailio and PostgreSQL that \
             tests/setup/30-kamailio.sh starts; run ./tests/run"
        )
    })
}

/// Take fleet `FLEET`'s lock in `table` as `owner`; its token.
async fn take_lock(sdk: &aws_config::SdkConfig, table: &str, owner: &str) -> u64 {
    DynamoLockStore::new(aws_sdk_dynamodb::Client::new(sdk), table)
        .acquire(&AcquireLock {
            fleet: FleetName::parse(FLEET).unwrap(),
            owner: Owner::parse(owner).unwrap(),
            ttl_secs: 600,
            request: "drain test".into(),
            now: SystemClock.now(),
        })
        .await
        .unwrap()
        .token
}

fn kamailio() -> KamailioDispatcher {
    KamailioDispatcher::new(
        DispatcherConfig::new(&env("PAIRSCALE_TEST_PG_URL"), env("KAMAILIO_RPC_URL"))
            .expect("valid test database URL"),
    )
    .expect("valid dispatcher configuration")
}

struct Env {
    handler: DrainHandler,
    /// The same fleet state the handler reads, for the test to seed and check.
    state: Arc<AwsFleetState>,
    sdk: aws_config::SdkConfig,
    /// The fleet table `measure` reads and writes: this test's own.
    table: String,
    metrics: Arc<std::sync::Mutex<Vec<Value>>>,
    dispatcher: Arc<KamailioNodes>,
    nodes: Vec<NodeHandle>,
    set_id: u32,
    /// The fleet `quiesce`, `resume` and `force` name, whose lock this test holds, and the
    /// holder's owner and token: what [`Env::fenced`] adds to their input.
    fence: Value,
}

const FLEET: &str = "voice-eu";
const HOLDER: &str = "cli:drain-test";

/// `n` simulated nodes, each registered in dispatcher set `set_id` (one set per test, so tests
/// run in parallel without seeing each other's destinations).
async fn env_with(n: usize, set_id: u32) -> Env {
    let dispatcher = Arc::new(KamailioNodes::new(kamailio()));
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(
            Simulator::spawn(NodeConfig {
                password: PASSWORD.into(),
                heartbeat: None,
                seed: i as u64 + 1,
                ..NodeConfig::default()
            })
            .await
            .unwrap(),
        );
    }
    let (metrics, lines) = Metrics::memory("PairscaleTest");
    let sdk = kit::sdk().await;
    let table = kit::unique("drain");
    kit::create_table(&sdk, &table).await;
    let token = take_lock(&sdk, &table, HOLDER).await;
    let e = Env {
        metrics: lines,
        state: Arc::new(AwsFleetState::new(&sdk, &table, PREFIX)),
        handler: DrainHandler {
            nodes: Arc::new(EslNodes::new(
                Password::new(PASSWORD),
                8,
                Duration::from_millis(1_500),
            )),
            dispatcher: dispatcher.clone(),
            clock: Arc::new(SystemClock),
            metrics,
            state: Arc::new(AwsFleetState::new(&sdk, &table, PREFIX)),
            signals: Arc::new(CloudWatchQuality::new(&sdk)),
            locks: Arc::new(DynamoLockStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                &table,
            )),
        },
        fence: json!({"fleet": FLEET, "owner": HOLDER, "token": token}),
        sdk,
        table,
        dispatcher,
        nodes,
        set_id,
    };
    for i in 0..n {
        e.dispatcher.register(&e.destination(i)).await.unwrap();
    }
    e
}

impl Env {
    fn pair(&self, i: usize) -> PairId {
        PairId::new(i as u32 + 1).unwrap()
    }

    /// The SIP side of node `i`: a URI unique to this test's set.
    fn sip_uri(&self, i: usize) -> String {
        format!("sip:127.0.0.1:{}", 40_000 + self.set_id * 10 + i as u32)
    }

    fn destination(&self, i: usize) -> SipDestination {
        SipDestination {
            set_id: self.set_id,
            uri: self.sip_uri(i),
            pair_id: self.pair(i),
            proxies: None,
        }
    }

    fn node(&self, i: usize) -> Value {
        json!({
            "pair_id": self.pair(i),
            "esl_endpoint": self.nodes[i].addr().to_string(),
            "sip_uri": self.sip_uri(i),
            "set_id": self.set_id,
            "protected": false,
            "created_at": 1_700_000_000_000i64 + i as i64,
        })
    }

    fn all(&self) -> Value {
        Value::Array((0..self.nodes.len()).map(|i| self.node(i)).collect())
    }

    async fn call(&self, input: Value) -> Value {
        self.handle(input).await.unwrap()
    }

    /// The handler's answer to `input`, fenced by this test's lock when it changes nodes.
    async fn handle(&self, input: Value) -> pairscale_core::Result<Value> {
        self.handler.handle(self.fenced(input)).await
    }

    /// `input` with this test's fleet, owner and token, when its action changes nodes and it
    /// names no fence of its own.
    fn fenced(&self, mut input: Value) -> Value {
        let changes_nodes =
            ["quiesce", "resume", "force"].contains(&input["action"].as_str().unwrap_or(""));
        if let (true, Some(o)) = (changes_nodes, input.as_object_mut()) {
            for (k, v) in self.fence.as_object().unwrap() {
                o.entry(k.clone()).or_insert(v.clone());
            }
        }
        input
    }

    /// Kamailio's status for node `i`, read with `dispatcher.list`.
    async fn listed(&self, i: usize) -> DestinationStatus {
        self.listed_by(&env("KAMAILIO_RPC_URL"), i)
            .await
            .unwrap_or_else(|| panic!("{} is not listed in set {}", self.sip_uri(i), self.set_id))
    }

    /// Node `i` as the Kamailio at `url` alone lists it.
    async fn listed_by(&self, url: &str, i: usize) -> Option<DestinationStatus> {
        let uri = self.sip_uri(i);
        self.dispatcher
            .inner()
            .through(&[url])
            .unwrap()
            .list()
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.set_id == self.set_id as i32 && d.uri == uri)
            .map(|d| d.status)
    }

    fn paused_both(&self, i: usize) -> bool {
        self.nodes[i].paused(Direction::Inbound) && self.nodes[i].paused(Direction::Outbound)
    }
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_ranks_by_youngest_calls_and_never_offers_a_protected_pair() {
    let e = env_with(4, 301).await;
    // pair-0001: two old calls. pair-0002: five young calls (more channels, younger).
    // pair-0003: idle but protected. pair-0004: one young call.
    e.nodes[0].add_calls(2, CallSpec::inbound());
    // Channel ages have one-second resolution: let the first calls age.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    e.nodes[1].add_calls(5, CallSpec::inbound());
    e.nodes[3].add_calls(1, CallSpec::outbound());
    let mut nodes = e.all();
    nodes[2]["protected"] = json!(true);

    let out = e
        .call(json!({"action": "select", "nodes": nodes, "remove": 1, "race_spares": 1}))
        .await;

    let chosen: Vec<&str> = out["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pair_id"].as_str().unwrap())
        .collect();
    assert_eq!(chosen, ["pair-0004", "pair-0002"], "{out}");
    assert_eq!(ids(&out["passed_over"]), ["pair-0001"], "{out}");
    assert_eq!(ids(&out["protected"]), ["pair-0003"], "{out}");
    assert_eq!(out["candidates"][1]["channels"], 5, "{out}");
    assert_eq!(out["enough"], true);
    // The chosen nodes come back in the input shape, ready for quiesce and check.
    assert_eq!(out["nodes"][0], e.node(3));
    assert_eq!(out["nodes"][1], e.node(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_races_only_the_spares_the_live_load_leaves_room_for() {
    let e = env_with(4, 328).await;
    // 21 channels up, 6 of them on a protected pair; pairs of 10 channels. Removing one
    // leaves 3 pairs serving (30 channels); a spare would leave 2 (20): too few.
    for (i, calls) in [6, 5, 6, 4].into_iter().enumerate() {
        e.nodes[i].add_calls(calls, CallSpec::inbound());
    }
    let mut nodes = e.all();
    nodes[2]["protected"] = json!(true);
    let select = |capacity: Value| {
        json!({"action": "select", "nodes": nodes, "remove": 1, "race_spares": 2,
               "pair_capacity_channels": capacity})
    };

    let tight = e.call(select(json!(10))).await;
    assert_eq!(
        tight["live_channels"], 21,
        "the protected pair's load counts: {tight}"
    );
    assert_eq!(tight["spares_allowed"], 0, "{tight}");
    assert_eq!(tight["race_spares"], 2, "{tight}");
    assert_eq!(tight["nodes"].as_array().unwrap().len(), 1, "{tight}");
    assert_eq!(tight["enough"], true);

    // Pairs of 20 channels: two left serving carry 40, room for one spare.
    let roomy = e.call(select(json!(20))).await;
    assert_eq!(roomy["spares_allowed"], 1, "{roomy}");
    assert!(roomy["nodes"].as_array().unwrap().len() <= 2, "{roomy}");
    // No capacity configured: the plan's race_spares, as before.
    let free = e.call(select(Value::Null)).await;
    assert_eq!(free["spares_allowed"], 2, "{free}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiesce_disables_in_kamailio_and_pauses_both_ways_and_a_retry_changes_nothing() {
    let e = env_with(2, 302).await;
    let victims = json!([e.node(0)]);

    let first = e.call(json!({"action": "quiesce", "nodes": victims})).await;
    assert_eq!(first["nodes"][0]["already_paused"], false, "{first}");
    assert_eq!(e.listed(0).await, DestinationStatus::Disabled);
    assert!(e.paused_both(0));
    assert!(e.nodes[0].add_call(CallSpec::inbound()).is_err());
    // The other node is untouched.
    assert_eq!(e.listed(1).await, DestinationStatus::Active);
    assert!(!e.nodes[1].paused(Direction::Inbound));

    let again = e.call(json!({"action": "quiesce", "nodes": victims})).await;
    assert_eq!(again["nodes"][0]["already_paused"], true, "{again}");
    assert_eq!(e.listed(0).await, DestinationStatus::Disabled);
    assert!(e.paused_both(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_counts_channels_and_an_unreachable_node_is_never_drained() {
    let e = env_with(3, 303).await;
    // Two bridged calls up before the drain: four channels.
    e.nodes[1].add_calls(2, CallSpec::inbound().bridged());
    e.call(json!({"action": "quiesce", "nodes": e.all()})).await;
    e.nodes[2].set_fault(Fault::Hang);

    let out = e
        .call(json!({"action": "check", "nodes": e.all(), "remove": 1}))
        .await;

    assert_eq!(out["nodes"][0]["channels"], 0, "{out}");
    assert_eq!(out["nodes"][1]["channels"], 4, "{out}");
    assert_eq!(
        out["nodes"][2]["error"]["errorType"],
        ErrorName::NodeUnreachable.as_str(),
        "{out}"
    );
    assert_eq!(out["total_channels"], 4);
    assert_eq!(out["all_drained"], false);
    assert_eq!(ids(&out["drained"]), ["pair-0001"]);
    assert_eq!(ids(&out["unreachable"]), ["pair-0003"]);
    assert_eq!(out["race_won"], true);
    assert_eq!(ids(&out["winners"]), ["pair-0001"]);

    // The same fault, every node: nothing is drained.
    e.nodes[0].set_fault(Fault::DropConnections);
    let out = e
        .call(json!({"action": "check", "nodes": [e.node(0)]}))
        .await;
    assert_eq!(out["all_drained"], false, "{out}");
    assert_eq!(out["race_won"], false, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reapplies_the_pause_a_restart_forgot_and_says_so() {
    let e = env_with(2, 304).await;
    e.call(json!({"action": "quiesce", "nodes": e.all()})).await;
    e.nodes[1].restart();
    assert!(!e.paused_both(1), "a restart forgets the pause flags");

    let out = e.call(json!({"action": "check", "nodes": e.all()})).await;
    assert_eq!(ids(&out["repaused"]), ["pair-0002"], "{out}");
    assert_eq!(out["nodes"][1]["repaused"], true);
    assert_eq!(out["nodes"][0]["repaused"], false);
    assert!(e.paused_both(1));
    // Its count was read before the pause held: not drained in this round.
    assert_eq!(out["all_drained"], false, "{out}");
    assert_eq!(ids(&out["drained"]), ["pair-0001"], "{out}");

    let again = e.call(json!({"action": "check", "nodes": e.all()})).await;
    assert_eq!(ids(&again["repaused"]), Vec::<String>::new(), "{again}");
    assert_eq!(
        again["all_drained"], true,
        "read at zero while paused: {again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_policy_decision_at_the_deadline() {
    let e = env_with(1, 305).await;
    e.nodes[0].add_call(CallSpec::inbound()).unwrap();
    e.call(json!({"action": "quiesce", "nodes": e.all()})).await;
    let now = SystemClock.now().millis();
    let drain =
        |policy: &str| json!({"deadline_seconds": 600, "policy": policy, "hard_max_seconds": 3600});
    let cases = [
        ("force", now - 1_000, "wait"),
        ("force", now - 601_000, "force"),
        ("abort", now - 601_000, "abort"),
        ("wait", now - 601_000, "wait"),
        ("wait", now - 3_601_000, "abort"),
    ];
    for (policy, started_at, want) in cases {
        let out = e
            .call(json!({"action": "check", "nodes": e.all(), "drain": drain(policy), "started_at": started_at}))
            .await;
        assert_eq!(
            out["decision"], want,
            "{policy} started {started_at}: {out}"
        );
    }
    e.nodes[0].end_all();
    let out = e
        .call(json!({"action": "check", "nodes": e.all(), "drain": drain("abort"), "started_at": now - 9_999_000}))
        .await;
    assert_eq!(out["decision"], "done", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_force_the_nodes_whose_calls_were_cut_win_and_spares_keep_theirs() {
    let e = env_with(2, 320).await;
    e.nodes[0].add_calls(3, CallSpec::inbound());
    e.nodes[1].add_calls(1, CallSpec::inbound());
    e.call(json!({"action": "quiesce", "nodes": e.all()})).await;
    let drain = json!({"deadline_seconds": 600, "policy": "force", "hard_max_seconds": 3600});
    let late = SystemClock.now().millis() - 601_000;
    let check = |chosen: Value| {
        json!({"action": "check", "nodes": e.all(), "remove": 1, "drain": drain,
               "started_at": late, "chosen": chosen})
    };
    // The first force: pair-0002 (the emptiest) is the one the run removes, and is cut.
    let out = e.call(check(json!([]))).await;
    assert_eq!(ids(&out["force_chosen"]), ["pair-0002"], "{out}");
    assert_eq!(out["force_nodes"][0]["pair_id"], "pair-0002", "{out}");
    e.call(json!({"action": "force", "nodes": out["force_nodes"]}))
        .await;
    // Meanwhile the spare, ranked first, empties by itself: the cut node still wins.
    e.nodes[0].end_all();
    let out = e.call(check(json!(["pair-0002"]))).await;
    assert_eq!(out["decision"], "done", "{out}");
    assert_eq!(ids(&out["winners"]), ["pair-0002"], "{out}");
    assert_eq!(out["loser_nodes"][0]["pair_id"], "pair-0001", "{out}");
    // A designation that is not among the nodes is refused by name.
    let bad = e.handle(check(json!(["pair-0009"]))).await.unwrap_err();
    assert!(bad.to_string().contains("chosen"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_force_with_the_nodes_to_remove_unreachable_nothing_is_cut() {
    let e = env_with(1, 321).await;
    e.nodes[0].add_calls(2, CallSpec::inbound());
    e.call(json!({"action": "quiesce", "nodes": e.all()})).await;
    e.nodes[0].set_fault(Fault::DropConnections);
    let out = e
        .call(json!({"action": "check", "nodes": e.all(), "remove": 1,
                     "drain": {"deadline_seconds": 600, "policy": "force", "hard_max_seconds": 3600},
                     "started_at": SystemClock.now().millis() - 601_000}))
        .await;
    assert_eq!(out["decision"], "force", "{out}");
    assert_eq!(out["force_nodes"], json!([]), "{out}");
    assert_eq!(out["all_drained"], false, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_undoes_quiesce() {
    let e = env_with(1, 306).await;
    e.call(json!({"action": "quiesce", "nodes": e.all()})).await;
    assert_eq!(e.listed(0).await, DestinationStatus::Disabled);

    let out = e.call(json!({"action": "resume", "nodes": e.all()})).await;
    assert_eq!(out["nodes"][0]["was_paused"], true, "{out}");
    assert_eq!(e.listed(0).await, DestinationStatus::Active);
    assert!(!e.nodes[0].paused(Direction::Inbound) && !e.nodes[0].paused(Direction::Outbound));
    assert!(e.nodes[0].add_call(CallSpec::inbound()).is_ok());

    let again = e.call(json!({"action": "resume", "nodes": e.all()})).await;
    assert_eq!(again["nodes"][0]["was_paused"], false, "{again}");
    assert_eq!(e.listed(0).await, DestinationStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_cuts_the_channels_left_and_reports_how_many() {
    let e = env_with(2, 307).await;
    e.nodes[0].add_calls(3, CallSpec::inbound());
    e.nodes[1].add_calls(2, CallSpec::inbound().bridged());
    e.call(json!({"action": "quiesce", "nodes": e.all()})).await;

    let out = e
        .call(json!({"action": "force", "nodes": e.all(), "hupall_cause": "NORMAL_CLEARING"}))
        .await;
    assert_eq!(out["cut"], 7, "{out}");
    assert_eq!(out["nodes"][0]["cut"], 3);
    assert_eq!(out["nodes"][1]["cut"], 4);
    assert_eq!(out["cause"], "NORMAL_CLEARING");
    assert_eq!(out["complete"], true);
    assert_eq!(
        (e.nodes[0].channel_count(), e.nodes[1].channel_count()),
        (0, 0)
    );
    assert_eq!(
        e.nodes[0].hupall_channels() + e.nodes[1].hupall_channels(),
        7
    );

    let out = e.call(json!({"action": "check", "nodes": e.all()})).await;
    assert_eq!(out["all_drained"], true, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_request_naming_the_field() {
    let e = env_with(1, 308).await;
    let mut bad_endpoint = e.node(0);
    bad_endpoint["esl_endpoint"] = json!("10.0.0.1");
    let mut bad_uri = e.node(0);
    bad_uri["sip_uri"] = json!("10.0.0.1:5060");
    let mut unknown = e.node(0);
    unknown["weight"] = json!(3);
    let mut protected = e.node(0);
    protected["protected"] = json!(true);
    let cases = [
        (json!({"action": "drain"}), "action"),
        (json!({"action": "check"}), "nodes"),
        (json!({"action": "check", "nodes": []}), "nodes"),
        (
            json!({"action": "check", "nodes": [bad_endpoint]}),
            "nodes[0].esl_endpoint",
        ),
        (
            json!({"action": "quiesce", "nodes": [bad_uri]}),
            "nodes[0].sip_uri",
        ),
        (json!({"action": "check", "nodes": [unknown]}), "weight"),
        (
            json!({"action": "check", "nodes": [e.node(0), e.node(0)]}),
            "nodes[1].pair_id",
        ),
        (
            json!({"action": "select", "nodes": [e.node(0)], "remove": 0}),
            "remove",
        ),
        (
            json!({"action": "select", "nodes": [e.node(0)], "remove": "one"}),
            "remove",
        ),
        (
            json!({"action": "check", "nodes": [e.node(0)], "remove": 2}),
            "remove",
        ),
        (
            json!({"action": "check", "nodes": [e.node(0)], "started_at": 1}),
            "drain",
        ),
        (
            json!({"action": "quiesce", "nodes": [protected]}),
            "nodes[0].protected",
        ),
        (
            json!({"action": "quiesce", "nodes": [e.node(0)], "kamailio_rpc_urls": []}),
            "kamailio_rpc_urls",
        ),
        (
            json!({"action": "resume", "nodes": [e.node(0)], "kamailio_rpc_urls": ["10.0.0.1:5071"]}),
            "kamailio_rpc_urls",
        ),
        (
            json!({"action": "force", "nodes": [e.node(0)], "hupall_cause": "hang up"}),
            "hupall_cause",
        ),
    ];
    for (input, field) in cases {
        let err = e.handle(input.clone()).await.expect_err("invalid");
        assert_eq!(err.name(), ErrorName::InvalidRequest, "{input}: {err}");
        assert!(
            err.to_string().contains(field),
            "{input}: {err} does not name {field}"
        );
    }
    // Nothing was changed by a refused request.
    assert_eq!(e.listed(0).await, DestinationStatus::Active);
    assert!(!e.nodes[0].paused(Direction::Inbound));
}

/// Both Kamailio instances of the HA pair tests/setup/30-kamailio.sh started (one table).
fn kamailio_pair() -> Vec<String> {
    env("KAMAILIO_RPC_URLS")
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiesce_and_resume_change_the_node_on_every_kamailio_the_fleet_lists() {
    // Registered through the first instance only: the second has never loaded the node.
    let e = env_with(1, 311).await;
    let urls = kamailio_pair();

    let each = |status| vec![Some(status); urls.len()];
    let seen = || async {
        let mut seen = Vec::new();
        for url in &urls {
            seen.push(e.listed_by(url, 0).await);
        }
        seen
    };

    e.call(json!({"action": "quiesce", "nodes": e.all(), "kamailio_rpc_urls": urls}))
        .await;
    assert_eq!(seen().await, each(DestinationStatus::Disabled));

    e.call(json!({"action": "resume", "nodes": e.all(), "kamailio_rpc_urls": urls}))
        .await;
    assert_eq!(seen().await, each(DestinationStatus::Active));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiesce_with_one_kamailio_unreachable_fails_naming_it_after_the_other_took_it() {
    let e = env_with(1, 312).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{closed}/RPC");
    let up = kamailio_pair()[0].clone();

    let err = e
        .handle(json!({"action": "quiesce", "nodes": e.all(), "kamailio_rpc_urls": [down, up]}))
        .await
        .expect_err("one kamailio is unreachable");

    assert_eq!(err.name(), ErrorName::Retryable, "{err}");
    assert!(
        err.to_string().contains(&down) && !err.to_string().contains(&up),
        "{err}"
    );
    assert_eq!(e.listed_by(&up, 0).await, Some(DestinationStatus::Disabled));
}

/// The canary configuration the tests use: one-second calls.
fn canary(min_mos: f64) -> Value {
    json!({"seconds": 1, "min_mos": min_mos, "quality_sample": 3})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_passes_nodes_whose_call_is_answered_with_good_quality_and_hangs_it_up() {
    let e = env_with(2, 320).await;
    let out = e
        .call(json!({"action": "canary", "nodes": e.all(), "canary": canary(3.5)}))
        .await;
    assert_eq!(out["skipped"], false, "{out}");
    for (i, n) in out["nodes"].as_array().unwrap().iter().enumerate() {
        assert_eq!(n["pair_id"], e.pair(i).to_string(), "{out}");
        assert_eq!(n["answered"], true, "{out}");
        assert_eq!(n["mos"], 4.5, "{out}");
        assert_eq!(n["hangup_cause"], "NORMAL_CLEARING", "{out}");
        assert!(n["media_packets"].as_u64().unwrap() > 0, "{out}");
    }
    // Each node placed exactly one call, and it is over.
    for node in &e.nodes {
        assert_eq!(node.sessions_since_startup(), 1);
        assert_eq!(node.channel_count(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_fails_naming_the_node_that_did_not_answer_or_sounded_bad() {
    let e = env_with(2, 321).await;
    e.nodes[1].set_canary_mos(None);
    let err = e
        .handle(json!({"action": "canary", "nodes": e.all(), "canary": canary(3.5)}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), ErrorName::CanaryFailed, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("pair-0002") && text.contains(&e.sip_uri(1)),
        "{text}"
    );
    assert!(text.contains("not answered (NORMAL_CLEARING)"), "{text}");

    e.nodes[1].set_canary_mos(Some(3.05));
    let err = e
        .handle(json!({"action": "canary", "nodes": e.all(), "canary": canary(3.5)}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), ErrorName::CanaryFailed);
    assert!(err.to_string().contains("MOS 3.05 < 3.50"), "{err}");

    // A paused node cannot place the call: not a node to put into rotation.
    e.nodes[1].set_canary_mos(Some(4.5));
    e.nodes[1].set_paused(Direction::Outbound, true);
    let err = e
        .handle(json!({"action": "canary", "nodes": e.all(), "canary": canary(3.5)}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("DESTINATION_OUT_OF_ORDER"),
        "{err}"
    );
    // No canary call is left up anywhere.
    assert!(e.nodes.iter().all(|n| n.channel_count() == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_switched_off_places_no_call() {
    let e = env_with(1, 322).await;
    let out = e
        .call(json!({"action": "canary", "nodes": e.all(), "canary": {"enabled": false}}))
        .await;
    assert_eq!(out, json!({"skipped": true, "nodes": []}));
    assert_eq!(e.nodes[0].sessions_since_startup(), 0);
    let out = e
        .call(json!({"action": "quality", "fleet": "voice-eu", "nodes": e.all(), "canary": {"enabled": false}}))
        .await;
    assert_eq!(out, json!({"hold_scale_in": false, "reading": null}));
    assert_eq!(e.nodes[0].sessions_since_startup(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_is_the_median_of_a_sample_holds_scale_in_when_low_and_is_published() {
    let e = env_with(4, 323).await;
    for (node, mos) in e.nodes.iter().zip([Some(4.5), Some(3.0), None, Some(3.2)]) {
        node.set_canary_mos(mos);
    }
    let out = e
        .call(json!({"action": "quality", "fleet": "voice-eu", "nodes": e.all(), "canary": canary(3.5)}))
        .await;
    // Three of four are called (the first, the last and one between): 4.50, 3.00 and 3.20;
    // the third node, which would not answer, is not in the sample.
    let called: Vec<u64> = e.nodes.iter().map(|n| n.sessions_since_startup()).collect();
    assert_eq!(called, vec![1, 1, 0, 1]);
    let r = &out["reading"];
    assert_eq!(out["hold_scale_in"], true, "{out}");
    assert_eq!(r["hold_scale_in"], true, "{out}");
    assert_eq!(r["threshold"], 3.5, "{out}");
    assert_eq!(r["nodes"].as_array().unwrap().len(), 3, "{out}");
    let mos = r["mos"].as_f64().unwrap();
    assert_eq!(mos, 3.2, "the median of the sample: {out}");
    let published = e.metrics.lock().unwrap().clone();
    let line = published
        .iter()
        .find(|l| l.get("CallQualityMos").is_some())
        .unwrap_or_else(|| panic!("no CallQualityMos in {published:?}"));
    assert_eq!(line["CallQualityMos"].as_f64(), Some(mos));
    assert_eq!(line["Fleet"], "voice-eu");

    for node in &e.nodes {
        node.set_canary_mos(Some(4.4));
    }
    let out = e
        .call(json!({"action": "quality", "fleet": "voice-eu", "nodes": e.all(), "canary": canary(3.5)}))
        .await;
    assert_eq!(out["hold_scale_in"], false, "{out}");
    assert_eq!(out["reading"]["mos"], 4.4, "{out}");
}

impl Env {
    /// A fleet of this test's own in the table and SSM: node `i` as pair `i + 1` with
    /// `status[i]`, the canary configuration `canary` (the nodes' SIP side is not dialled by
    /// the simulator, so the records' private addresses need only be loopback).
    async fn seed_fleet(&self, status: &[PairStatus], canary: Value) -> FleetName {
        let mut config = kit::sample_config();
        config["canary"] = canary;
        self.seed_fleet_with(status, config).await
    }

    /// [`Env::seed_fleet`] with the whole fleet configuration given.
    async fn seed_fleet_with(&self, status: &[PairStatus], config: Value) -> FleetName {
        let fleet = kit::unique_fleet();
        kit::put_fleet_params(
            &self.sdk,
            PREFIX,
            &fleet,
            &status.len().to_string(),
            &config,
        )
        .await;
        let name = FleetName::parse(&fleet).unwrap();
        let now = SystemClock.now();
        let locks = DynamoLockStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), &self.table);
        let owner = Owner::parse("cli:seed").unwrap();
        let grant = locks
            .acquire(&AcquireLock {
                fleet: name.clone(),
                owner: owner.clone(),
                ttl_secs: 60,
                request: "seed".into(),
                now,
            })
            .await
            .unwrap();
        let put_pairs = status
            .iter()
            .enumerate()
            .map(|(i, st)| Pair {
                private_ip: Some("127.0.0.1".into()),
                esl_endpoint: Some(self.nodes[i].addr().to_string()),
                instance_id: Some(format!("i-{i:08x}")),
                ecs_service: Some(format!("esl-{i}")),
                ..Pair::new(self.pair(i), *st, now)
            })
            .collect();
        let fence = Fence {
            owner,
            token: grant.token,
        };
        let batch = WriteBatch {
            journal: Journal::new(name.clone(), "seed".into(), now),
            put_pairs,
            delete_pairs: Vec::new(),
            stamp: None,
        };
        self.state.write(&name, &fence, &batch).await.unwrap();
        name
    }

    /// One data point of the operator's metric, now, with dimension `Fleet` = `fleet`.
    async fn publish_operator_mos(&self, namespace: &str, fleet: &str, value: f64) {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        aws_sdk_cloudwatch::Client::new(&self.sdk)
            .put_metric_data()
            .namespace(namespace)
            .metric_data(
                MetricDatum::builder()
                    .metric_name("CallMos")
                    .dimensions(Dimension::builder().name("Fleet").value(fleet).build())
                    .value(value)
                    .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_millis(
                        SystemClock.now().millis(),
                    ))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
}

fn operator_canary(namespace: &str, fleet_dimension: &str) -> Value {
    json!({
        "seconds": 1, "min_mos": 3.5, "quality_sample": 3,
        "operator_metric": {
            "namespace": namespace, "metric_name": "CallMos",
            "dimensions": {"Fleet": fleet_dimension}, "statistic": "Minimum", "window_seconds": 300
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_calls_only_the_active_nodes_and_records_the_reading_unless_a_newer_one_is_there() {
    use PairStatus::*;
    let e = env_with(4, 324).await;
    for node in &e.nodes {
        node.set_canary_mos(Some(4.4));
    }
    let fleet = e
        .seed_fleet(
            &[Active, Draining, Active, Active],
            json!({"seconds": 1, "min_mos": 3.5, "quality_sample": 3}),
        )
        .await;
    let out = e
        .call(json!({"action": "measure", "fleet": fleet.as_str()}))
        .await;
    assert_eq!(out["recorded"], true, "{out}");
    assert_eq!(out["active_nodes"], 3, "{out}");
    let called: Vec<u64> = e.nodes.iter().map(|n| n.sessions_since_startup()).collect();
    assert_eq!(
        called,
        vec![1, 0, 1, 1],
        "the draining node is never called"
    );
    let r = &out["reading"];
    assert_eq!(r["measured_by"], "schedule", "{out}");
    assert_eq!(r["mos"], 4.4, "{out}");
    assert_eq!(r["hold_scale_in"], false, "{out}");
    let recorded = e.state.meta(&fleet).await.unwrap().quality.unwrap();
    assert_eq!(serde_json::to_value(&recorded).unwrap(), *r);

    // A reading older than the recorded one is not written over it; a newer one is.
    let mut older = recorded.clone();
    older.measured_at = Timestamp(recorded.measured_at.millis() - 60_000);
    older.mos = pairscale_core::Mos::WORST;
    e.state.note_quality(&fleet, &older).await.unwrap();
    assert_eq!(
        e.state.meta(&fleet).await.unwrap().quality,
        Some(recorded.clone())
    );
    let mut newer = older.clone();
    newer.measured_at = Timestamp(recorded.measured_at.millis() + 1);
    e.state.note_quality(&fleet, &newer).await.unwrap();
    assert_eq!(e.state.meta(&fleet).await.unwrap().quality, Some(newer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_metric_joins_the_canary_calls_and_the_worse_of_the_two_is_the_fleets() {
    use PairStatus::*;
    let e = env_with(3, 325).await;
    for node in &e.nodes {
        node.set_canary_mos(Some(4.4));
    }
    let namespace = kit::unique("Ops");
    // Seeded first, so that the metric's dimension can name the fleet.
    let fleet = e
        .seed_fleet(&[Active, Active, Active], json!({"seconds": 1}))
        .await;
    let config = operator_canary(&namespace, fleet.as_str());

    // No data in the window yet: the calls alone make the figure.
    let out = e
        .call(json!({"action": "quality", "fleet": fleet.as_str(), "nodes": e.all(), "canary": config}))
        .await;
    assert_eq!(out["reading"]["mos"], 4.4, "{out}");
    assert_eq!(out["reading"]["operator"], Value::Null, "{out}");

    e.publish_operator_mos(&namespace, fleet.as_str(), 3.6)
        .await;
    e.publish_operator_mos(&namespace, fleet.as_str(), 3.1)
        .await;
    let out = e
        .call(json!({"action": "quality", "fleet": fleet.as_str(), "nodes": e.all(), "canary": config}))
        .await;
    let r = &out["reading"];
    assert_eq!(r["canary_mos"], 4.4, "{out}");
    assert_eq!(r["operator"]["mos"], 3.1, "the window's minimum: {out}");
    assert_eq!(
        r["operator"]["metric"],
        format!("{namespace}/CallMos"),
        "{out}"
    );
    assert_eq!(r["mos"], 3.1, "the worse of the two: {out}");
    assert_eq!(out["hold_scale_in"], true, "{out}");
    assert_eq!(r["measured_by"], "scale_in", "{out}");

    // A value that is not a MOS (a metric of something else) is named, metric and value. (A
    // dimension of its own as well: the emulator matches dimensions without the namespace.)
    let elsewhere = kit::unique("Ops");
    let other = kit::unique_fleet();
    e.publish_operator_mos(&elsewhere, &other, 7.0).await;
    let config = operator_canary(&elsewhere, &other);
    let err = e
        .handle(json!({"action": "quality", "fleet": fleet.as_str(), "nodes": e.all(), "canary": config}))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("{elsewhere}/CallMos reported 7")),
        "{text}"
    );
}

/// Moves every pair's last sample `by_ms` back, as if it had been taken that much earlier.
async fn age_samples(e: &Env, fleet: &FleetName, by_ms: i64) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let db = aws_sdk_dynamodb::Client::new(&e.sdk);
    for p in e.state.pairs(fleet).await.unwrap() {
        let Some(seen) = p.last_seen_at else { continue };
        db.update_item()
            .table_name(&e.table)
            .key("pk", AttributeValue::S(format!("FLEET#{fleet}")))
            .key("sk", AttributeValue::S(format!("PAIR#{}", p.id)))
            .update_expression("SET last_seen_at = :at")
            .expression_attribute_values(
                ":at",
                AttributeValue::N((seen.millis() - by_ms).to_string()),
            )
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_records_each_active_pairs_channels_and_publishes_the_fleets_load() {
    use PairStatus::*;
    let e = env_with(4, 329).await;
    let mut config = kit::sample_config();
    config["pair_capacity_channels"] = json!(10);
    let fleet = e
        .seed_fleet_with(&[Active, Draining, Active, Active], config)
        .await;
    for (node, calls) in e.nodes.iter().zip([3, 9, 5, 0]) {
        node.add_calls(calls, CallSpec::inbound());
    }
    // The third node does not answer: its record keeps what it had.
    e.nodes[2].set_fault(Fault::DropConnections);

    let out = e
        .call(json!({"action": "sample", "fleet": fleet.as_str()}))
        .await;
    assert_eq!(
        out["active_nodes"], 3,
        "the draining pair is not sampled: {out}"
    );
    assert_eq!(out["channels"], 3, "{out}");
    assert_eq!(out["channels_per_pair"], 1.5, "two pairs read: {out}");
    assert_eq!(out["utilization_percent"], 15.0, "3 of 2 x 10: {out}");
    assert!(out["nodes"][1]["error"]["errorType"].is_string(), "{out}");
    let records = e.state.pairs(&fleet).await.unwrap();
    let seen: Vec<(Option<u32>, bool)> = records
        .iter()
        .map(|p| (p.last_channels, p.last_seen_at.is_some()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Some(3), true),
            (None, false),
            (None, false),
            (Some(0), true)
        ],
        "{records:?}"
    );
    let at = records[0].last_seen_at.unwrap();
    assert_eq!(out["sampled_at"], at.millis(), "{out}");
    let lines = e.metrics.lock().unwrap().clone();
    let values = |name: &str| -> Vec<f64> {
        lines
            .iter()
            .filter_map(|l| l.get(name).and_then(Value::as_f64))
            .collect()
    };
    assert_eq!(values("ChannelsPerPair"), vec![3.0, 0.0], "{lines:?}");
    assert_eq!(values("Channels"), vec![3.0], "{lines:?}");
    assert_eq!(values("CapacityUtilization"), vec![15.0], "{lines:?}");
    // A first sample has no arrivals: there is no count before it to rise from.
    let counters: Vec<(Option<u64>, Option<u32>)> = records
        .iter()
        .map(|p| (p.sessions_since_startup, p.arrivals_per_minute))
        .collect();
    assert_eq!(
        counters,
        vec![(Some(3), None), (None, None), (None, None), (Some(0), None)],
        "the nodes' `sessions since startup`: {records:?}"
    );
    assert_eq!(out["arrivals_per_minute"], Value::Null, "{out}");
    assert!(values("CallArrivals").is_empty(), "{lines:?}");

    // A sample retried right after the first reads no rate either: a few milliseconds of
    // calls are no rate a minute.
    let out = e
        .call(json!({"action": "sample", "fleet": fleet.as_str()}))
        .await;
    assert_eq!(out["arrivals_per_minute"], Value::Null, "{out}");
    let retried = e.state.pairs(&fleet).await.unwrap();
    assert_eq!(
        (
            retried[0].sessions_since_startup,
            retried[0].arrivals_per_minute
        ),
        (Some(3), None),
        "{retried:?}"
    );

    // The next sample reads the calls that arrived since, a minute: the rise of each node's
    // counter over the time between the two samples (the samples before moved a minute back,
    // as the schedule would space them).
    age_samples(&e, &fleet, 60_000).await;
    let at = e.state.pairs(&fleet).await.unwrap()[0]
        .last_seen_at
        .unwrap();
    e.nodes[0].add_calls(6, CallSpec::inbound());
    e.nodes[3].add_calls(2, CallSpec::inbound());
    let out = e
        .call(json!({"action": "sample", "fleet": fleet.as_str()}))
        .await;
    let again = e.state.pairs(&fleet).await.unwrap();
    let elapsed = again[0].last_seen_at.unwrap().millis() - at.millis();
    assert!(elapsed > 0, "{again:?}");
    let per_minute = |calls: f64| (calls * 60_000.0 / elapsed as f64).round();
    assert_eq!(
        (
            again[0].sessions_since_startup,
            again[3].sessions_since_startup
        ),
        (Some(9), Some(2)),
        "{again:?}"
    );
    assert_eq!(
        again[0].arrivals_per_minute.map(f64::from),
        Some(per_minute(6.0)),
        "{again:?}"
    );
    assert_eq!(
        again[3].arrivals_per_minute.map(f64::from),
        Some(per_minute(2.0)),
        "{again:?}"
    );
    assert_eq!(
        out["arrivals_per_minute"].as_f64(),
        Some(per_minute(6.0) + per_minute(2.0)),
        "every pair read had a sample before: {out}"
    );
    let lines = e.metrics.lock().unwrap().clone();
    let arrivals: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.get("CallArrivals").and_then(Value::as_f64))
        .collect();
    assert_eq!(
        arrivals,
        vec![per_minute(6.0) + per_minute(2.0)],
        "{lines:?}"
    );
    // The node that did not answer is read again: its first sample, so no fleet figure.
    e.nodes[2].set_fault(Fault::None);
    age_samples(&e, &fleet, 60_000).await;
    let out = e
        .call(json!({"action": "sample", "fleet": fleet.as_str()}))
        .await;
    assert_eq!(out["channels"], 9 + 5 + 2, "{out}");
    assert_eq!(
        out["arrivals_per_minute"],
        Value::Null,
        "a pair without a sample before leaves the fleet's arrivals unknown: {out}"
    );
    let records = e.state.pairs(&fleet).await.unwrap();
    assert_eq!(records[2].sessions_since_startup, Some(5), "{records:?}");
    let at = records[0].last_seen_at.unwrap();

    // An older sample is not written over a newer one, and a removed pair is not brought back.
    let first = records[0].id;
    let older = Timestamp(at.millis() - 60_000);
    let stale = LoadSample {
        channels: 99,
        sessions_since_startup: Some(1),
        arrivals_per_minute: Some(1),
    };
    assert!(!e
        .state
        .note_sample(&fleet, first, stale, older)
        .await
        .unwrap());
    assert_eq!(
        e.state.pairs(&fleet).await.unwrap()[0].last_channels,
        Some(9)
    );
    let gone = pairscale_core::PairId::new(77).unwrap();
    assert!(!e
        .state
        .note_sample(&fleet, gone, stale, Timestamp(at.millis() + 1))
        .await
        .unwrap());
    assert_eq!(e.state.pairs(&fleet).await.unwrap().len(), 4);
    // A sample whose counter was not read takes the pair's arrivals away with it: a rate is
    // never left beside a sample it was not read from.
    let unread = LoadSample {
        channels: 4,
        sessions_since_startup: None,
        arrivals_per_minute: None,
    };
    assert!(e
        .state
        .note_sample(&fleet, first, unread, Timestamp(at.millis() + 1))
        .await
        .unwrap());
    let p = e.state.pairs(&fleet).await.unwrap()[0].clone();
    assert_eq!(
        (
            p.last_channels,
            p.sessions_since_startup,
            p.arrivals_per_minute
        ),
        (Some(4), None, None),
        "{p:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_of_an_unknown_fleet_or_with_the_canary_off_names_why_and_records_nothing() {
    let e = env_with(1, 326).await;
    let err = e
        .handle(json!({"action": "measure", "fleet": "no-such-fleet"}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), ErrorName::UnknownFleet, "{err}");
    let fleet = e
        .seed_fleet(&[PairStatus::Active], json!({"enabled": false}))
        .await;
    let out = e
        .call(json!({"action": "measure", "fleet": fleet.as_str()}))
        .await;
    assert_eq!(out["recorded"], false, "{out}");
    assert_eq!(out["reading"], Value::Null, "{out}");
    assert_eq!(e.nodes[0].sessions_since_startup(), 0);
    assert_eq!(e.state.meta(&fleet).await.unwrap().quality, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lock_neither_hangs_up_calls_nor_puts_back_nodes() {
    let e = env_with(2, 327).await;
    e.nodes[0].add_calls(3, CallSpec::inbound());
    e.call(json!({"action": "quiesce", "nodes": [e.node(0)]}))
        .await;
    let lost = e.fence.clone();
    // The lock expires and another run takes it (a new token), then quiesces node 1.
    let locks = DynamoLockStore::new(aws_sdk_dynamodb::Client::new(&e.sdk), &e.table);
    let fleet = FleetName::parse(FLEET).unwrap();
    locks
        .release(&fleet, &Owner::parse(HOLDER).unwrap(), SystemClock.now())
        .await
        .unwrap();
    let token = take_lock(&e.sdk, &e.table, "cli:next-run").await;
    let next = json!({"fleet": FLEET, "owner": "cli:next-run", "token": token});
    let with = |fence: &Value, mut input: Value| {
        for (k, v) in fence.as_object().unwrap() {
            input[k] = v.clone();
        }
        input
    };
    e.call(with(
        &next,
        json!({"action": "quiesce", "nodes": [e.node(1)]}),
    ))
    .await;

    // The run that lost the lock: every action that changes nodes is refused, naming why.
    for input in [
        json!({"action": "force", "nodes": [e.node(0)], "hupall_cause": "NORMAL_CLEARING"}),
        json!({"action": "resume", "nodes": e.all()}),
        json!({"action": "quiesce", "nodes": e.all()}),
    ] {
        let err = e.handle(with(&lost, input.clone())).await.unwrap_err();
        assert_eq!(err.name(), ErrorName::LockLost, "{input}: {err}");
        assert!(err.to_string().contains("held by cli:next-run"), "{err}");
    }
    // ... and nothing was done: node 0's calls are up, both nodes stay out of rotation.
    assert_eq!(e.nodes[0].channel_count(), 3);
    assert_eq!(e.listed(0).await, DestinationStatus::Disabled);
    assert_eq!(e.listed(1).await, DestinationStatus::Disabled);
    assert!(e.nodes[1].paused(Direction::Inbound));
    // A wrong token of the right owner is refused as well; the holder's own actions work.
    let stale = json!({"fleet": FLEET, "owner": "cli:next-run", "token": token - 1});
    let err = e
        .handle(with(
            &stale,
            json!({"action": "resume", "nodes": [e.node(1)]}),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.name(), ErrorName::LockLost, "{err}");
    e.call(with(&next, json!({"action": "resume", "nodes": e.all()})))
        .await;
    assert_eq!(e.listed(1).await, DestinationStatus::Active);
}
