//! The drain handler end to end against real FreeSWITCH 1.10.12: instances configured by the
//! project's role (this crate), registered in the real Kamailio's dispatcher table the way the
//! product registers them, carrying SIP calls placed by sipp through Kamailio or straight to a
//! node, drained by `DrainHandler` with the product's `EslNodes` and `KamailioNodes`.
//!
//! Every test counts the calls sipp saw fail: none may, except the ones `force` cuts. Each test
//! has its own dispatcher set (the R-URI user picks it in tests/kamailio/kamailio.cfg), so they
//! run in parallel. Waits are bounded in count and time; a call that must still be up when
//! something is checked is held at least 5 s longer than the check needs.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pairscale_aws::dynamodb::DynamoLockStore;
use pairscale_aws::fleet_state::AwsFleetState;
use pairscale_core::ports::{
    AcquireLock, Clock, Dispatcher, LockStore, SipDestination, SystemClock,
};
use pairscale_core::{ErrorName, FleetName, Owner, PairId};
use pairscale_dispatcher::{DestinationStatus, DispatcherConfig, KamailioDispatcher};
use pairscale_esl::{EventFormat, Status};
use pairscale_freeswitch::{CallPlan, Cluster, Options, RtpSink};
use pairscale_lambdas::handlers::drain::DrainHandler;
use pairscale_media::{EslNodes, KamailioNodes, Password};
use serde_json::{json, Value};

const PASSWORD: &str = "pairscale-drain-test-password";
const FLEET: &str = "voice-eu";
const HOLDER: &str = "cli:drain-test";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the Kamailio and PostgreSQL that \
             tests/setup/30-kamailio.sh starts; run ./tests/run"
        )
    })
}

fn kamailio_sip() -> SocketAddr {
    let port: u16 = env("KAMAILIO_SIP_PORT")
        .parse()
        .expect("KAMAILIO_SIP_PORT is a port");
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The drain handler, with a fleet table of its own in the emulator whose lock (fleet
/// `voice-eu`, owner `cli:drain-test`) the test holds: `quiesce`, `resume` and `force` act only
/// for the lock's holder.
async fn handler(dispatcher: Arc<KamailioNodes>, password: &str) -> DrainHandler {
    let sdk = pairscale_testkit::sdk().await;
    let table = pairscale_testkit::unique("fs-drain");
    pairscale_testkit::create_table(&sdk, &table).await;
    let locks = DynamoLockStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    locks
        .acquire(&AcquireLock {
            fleet: FleetName::parse(FLEET).unwrap(),
            owner: Owner::parse(HOLDER).unwrap(),
            ttl_secs: 3600,
            request: "drain test".into(),
            now: SystemClock.now(),
        })
        .await
        .unwrap();
    DrainHandler {
        nodes: Arc::new(EslNodes::new(
            Password::new(password),
            8,
            Duration::from_secs(3),
        )),
        dispatcher,
        clock: Arc::new(SystemClock),
        metrics: pairscale_lambdas::metrics::Metrics::memory("PairscaleTest").0,
        // Read only by `measure`, which these tests do not run.
        state: Arc::new(AwsFleetState::new(
            &sdk,
            "pairscale-unused",
            "/pairscale-unused",
        )),
        signals: Arc::new(pairscale_aws::cloudwatch::CloudWatchQuality::new(&sdk)),
        locks: Arc::new(locks),
    }
}

/// Bounded polling: a round every 100 ms, for at most `within` (and as many rounds).
struct Poll {
    started: Instant,
    within: Duration,
    rounds: u128,
}

impl Poll {
    fn within(within: Duration) -> Poll {
        Poll {
            started: Instant::now(),
            within,
            rounds: 0,
        }
    }

    /// True for the next round (after a pause); false once the time or the rounds are up.
    async fn again(&mut self) -> bool {
        if self.rounds > 0 {
            if self.started.elapsed() >= self.within || self.rounds > self.within.as_millis() / 100
            {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.rounds += 1;
        true
    }
}

/// Polls `probe` until it holds, at most `within`; false if it never did.
async fn until<F, Fut>(within: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut poll = Poll::within(within);
    while poll.again().await {
        if probe().await {
            return true;
        }
    }
    false
}

struct Env {
    fs: Cluster,
    handler: DrainHandler,
    dispatcher: Arc<KamailioNodes>,
    set_id: u32,
    sink: RtpSink,
}

/// `n` real instances, alone in dispatcher set `set_id`, each registered as the product does.
async fn env_with(n: usize, set_id: u32) -> Env {
    let fs = Cluster::start(Options {
        instances: n,
        esl_password: PASSWORD.into(),
        ..Options::default()
    })
    .await
    .expect("FreeSWITCH instances start");
    let config = DispatcherConfig::new(&env("PAIRSCALE_TEST_PG_URL"), env("KAMAILIO_RPC_URL"))
        .expect("a valid test database URL");
    // What an earlier, interrupted run left in this set would take calls.
    let (db, connection) =
        tokio_postgres::connect(&env("PAIRSCALE_TEST_PG_URL"), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
    tokio::spawn(connection);
    db.execute(
        "DELETE FROM dispatcher WHERE setid = $1",
        &[&(set_id as i32)],
    )
    .await
    .expect("clear the set");
    let dispatcher = Arc::new(KamailioNodes::new(
        KamailioDispatcher::new(config).expect("valid dispatcher configuration"),
    ));
    // The suite's shared Kamailio may be restarting (tests/setup/30-kamailio.sh restarts it
    // after a crash): asked again for up to 20 s, as the role's reload handler does.
    let reloaded = until(Duration::from_secs(20), || async {
        dispatcher.inner().reload().await.is_ok()
    })
    .await;
    if !reloaded {
        dispatcher.inner().reload().await.expect("reload");
    }
    for (i, node) in fs.instances().iter().enumerate() {
        let at = SipDestination {
            set_id,
            uri: node.sip_uri(),
            pair_id: pair(i),
            proxies: None,
        };
        dispatcher.register(&at).await.unwrap();
    }
    Env {
        handler: handler(dispatcher.clone(), PASSWORD).await,
        dispatcher,
        set_id,
        sink: RtpSink::bind().await.unwrap(),
        fs,
    }
}

/// Instance `i` is pair `i + 1`.
fn pair(i: usize) -> PairId {
    PairId::new(i as u32 + 1).unwrap()
}

impl Env {
    fn nodes(&self, which: &[usize]) -> Value {
        let node = |i: usize| {
            let created_at = 1_700_000_000_000 + i as i64;
            self.fs[i].drain_node(&pair(i).to_string(), self.set_id, created_at)
        };
        Value::Array(which.iter().map(|&i| node(i)).collect())
    }

    /// The handler's answer; `quiesce`, `resume` and `force` as the lock's holder.
    async fn call(&self, mut input: Value) -> Value {
        if ["quiesce", "resume", "force"].contains(&input["action"].as_str().unwrap_or("")) {
            let token = self.holder_token().await;
            input["fleet"] = json!(FLEET);
            input["owner"] = json!(HOLDER);
            input["token"] = json!(token);
        }
        self.handler
            .handle(input.clone())
            .await
            .unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    /// The token of the lock this test's handler holds.
    async fn holder_token(&self) -> u64 {
        self.handler
            .locks
            .get(&FleetName::parse(FLEET).unwrap())
            .await
            .unwrap()
            .expect("the test's lock")
            .token
    }

    async fn check(&self, which: &[usize]) -> Value {
        self.call(json!({"action": "check", "nodes": self.nodes(which)}))
            .await
    }

    /// Calls through Kamailio into this test's set.
    fn via_kamailio(&self, calls: u32, hold: Duration) -> CallPlan {
        CallPlan::hold(
            kamailio_sip(),
            self.set_id.to_string(),
            calls,
            hold,
            self.sink.port(),
        )
    }

    /// Calls straight to instance `i`.
    fn direct(&self, i: usize, calls: u32, hold: Duration) -> CallPlan {
        CallPlan::hold(
            self.fs[i].sip_addr(),
            self.set_id.to_string(),
            calls,
            hold,
            self.sink.port(),
        )
    }

    /// What instance `i`'s `status` says, read outside the code under test.
    async fn status(&self, i: usize) -> Status {
        self.fs[i].esl().await.unwrap().status().await.unwrap()
    }

    /// `sessions since startup` of every instance.
    async fn since_startup(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.fs.len());
        for i in 0..self.fs.len() {
            out.push(self.status(i).await.sessions_since_startup);
        }
        out
    }

    /// Waits (bounded) until FreeSWITCH counts `want` calls on each instance everywhere: in
    /// its sessions and in its core database, which trails them.
    async fn wait_counted(&self, want: &[u64]) {
        let mut seen = Vec::new();
        let mut poll = Poll::within(Duration::from_secs(15));
        while poll.again().await {
            seen.clear();
            for node in self.fs.instances() {
                let mut c = node.esl().await.unwrap();
                let sessions = c.status().await.unwrap().sessions;
                let counted = c.channel_count().await.unwrap();
                seen.push(if sessions == counted {
                    sessions
                } else {
                    u64::MAX
                });
            }
            if seen.as_slice() == want {
                return;
            }
        }
        panic!("calls per node: want {want:?}, have {seen:?} (MAX: the counts disagree)");
    }

    /// Kamailio's state of instance `i`, from `dispatcher.list`.
    async fn listed(&self, i: usize) -> DestinationStatus {
        let (set, uri) = (self.set_id as i32, self.fs[i].sip_uri());
        let listed = self.dispatcher.inner().list().await.unwrap();
        match listed
            .iter()
            .find(|d| (d.set_id, d.uri.as_str()) == (set, uri.as_str()))
        {
            Some(d) => d.status,
            None => panic!("{uri} is not listed in set {set}"),
        }
    }

    async fn paused(&self, i: usize) -> (bool, bool) {
        use pairscale_esl::Direction::{Inbound, Outbound};
        let mut c = self.fs[i].esl().await.unwrap();
        (
            c.pause_check(Some(Inbound)).await.unwrap(),
            c.pause_check(Some(Outbound)).await.unwrap(),
        )
    }
}

/// Places the calls and checks that every one went through its scenario.
async fn completes(plan: CallPlan) {
    let out = plan.run().await.unwrap();
    assert_eq!(
        (out.successful, out.failed),
        (u64::from(plan.calls), 0),
        "{plan:?}: {out:?}"
    );
}

/// The pair ids of a list in the handler's output.
fn ids(v: &Value) -> Vec<&str> {
    let list = v.as_array().unwrap_or_else(|| panic!("not a list: {v}"));
    list.iter().filter_map(Value::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiesce_sends_new_calls_elsewhere_refuses_direct_ones_and_keeps_calls_up_with_media() {
    let e = env_with(2, 501).await;
    // Twelve calls through Kamailio, held 20 s: both nodes get some (hashed over Call-ID).
    let held = e.via_kamailio(12, Duration::from_secs(20)).start().unwrap();
    let mut up = [0u64; 2];
    let mut poll = Poll::within(Duration::from_secs(15));
    while poll.again().await {
        up = [e.status(0).await.sessions, e.status(1).await.sessions];
        if up[0] + up[1] == 12 {
            break;
        }
    }
    assert_eq!(up[0] + up[1], 12, "calls up: {up:?}");
    assert!(
        up[0] > 0 && up[1] > 0,
        "Kamailio sent every call to one node: {up:?}"
    );

    let out = e
        .call(json!({"action": "quiesce", "nodes": e.nodes(&[0])}))
        .await;
    let quiesced = Instant::now();
    assert_eq!(out["nodes"][0]["already_paused"], false, "{out}");
    assert_eq!(e.listed(0).await, DestinationStatus::Disabled);
    assert_eq!(e.listed(1).await, DestinationStatus::Active);
    assert_eq!(e.paused(0).await, (true, true));

    // New calls through Kamailio all go to the other node; node 1 sees none of them.
    let before = e.since_startup().await;
    completes(e.via_kamailio(10, Duration::from_secs(1))).await;
    let after = e.since_startup().await;
    assert_eq!(after, [before[0], before[1] + 10], "before: {before:?}");

    // A call sent straight to the node gets FreeSWITCH's own refusal.
    completes(CallPlan::refused(e.fs[0].sip_addr(), e.sink.port())).await;

    // The calls already on the node keep their media well past the quiesce.
    let settle = Duration::from_secs(6).saturating_sub(quiesced.elapsed());
    tokio::time::sleep(settle).await;
    let streams = e.sink.streams_from(e.fs[0].ip());
    let older: Vec<_> = streams.iter().filter(|(_, s)| s.first < quiesced).collect();
    assert_eq!(
        older.len() as u64,
        up[0],
        "one stream per call on node 1: {streams:?}"
    );
    for (from, s) in older {
        assert!(
            s.last > quiesced + Duration::from_secs(5),
            "the call with media from {from} went quiet after the quiesce: {s:?}"
        );
    }
    assert_eq!(
        e.status(0).await.sessions,
        up[0],
        "calls on the quiesced node ended early"
    );

    let held = held.finish().await.unwrap();
    assert_eq!((held.successful, held.failed), (12, 0), "{held:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_drained_only_after_the_last_bye() {
    let e = env_with(1, 502).await;
    let held = e.via_kamailio(5, Duration::from_secs(15)).start().unwrap();
    e.wait_counted(&[5]).await;
    e.call(json!({"action": "quiesce", "nodes": e.nodes(&[0])}))
        .await;

    // For 5 s, with every call up for 5 s more at least: never drained, every call counted.
    let window = Instant::now();
    let mut checks = 0;
    while window.elapsed() < Duration::from_secs(5) && checks < 50 {
        let out = e.check(&[0]).await;
        assert_eq!(out["all_drained"], false, "drained with 5 calls up: {out}");
        assert_eq!(out["nodes"][0]["channels"], 5, "{out}");
        checks += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(checks >= 5, "only {checks} checks in the window");

    // sipp exits once every BYE is answered; from then on the node drains.
    let held = held.finish().await.unwrap();
    assert_eq!((held.successful, held.failed), (5, 0), "{held:?}");
    let mut last = Value::Null;
    let mut poll = Poll::within(Duration::from_secs(10));
    while poll.again().await {
        last = e.check(&[0]).await;
        if last["all_drained"] == true {
            break;
        }
    }
    assert_eq!(
        last["all_drained"], true,
        "not drained after the last BYE: {last}"
    );
    assert_eq!(last["nodes"][0]["channels"], 0, "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_right_after_quiesce_counts_a_call_that_has_just_arrived() {
    let e = env_with(1, 503).await;
    let mut events = e.fs[0].esl().await.unwrap();
    events
        .subscribe(EventFormat::Plain, &["CHANNEL_CREATE"])
        .await
        .unwrap();
    // FreeSWITCH's core database lags its calls by up to ~200 ms under a burst: the first
    // reading after a call arrives is where a lagging count would say zero.
    for attempt in 0..3 {
        let idle = until(Duration::from_secs(10), || async {
            let mut c = e.fs[0].esl().await.unwrap();
            c.status().await.unwrap().sessions == 0 && c.channel_count().await.unwrap() == 0
        })
        .await;
        assert!(idle, "attempt {attempt}: the last call is still counted");
        let call = e.direct(0, 1, Duration::from_secs(6)).start().unwrap();
        let arrived = events.next_event(Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            arrived.as_ref().and_then(|ev| ev.name()),
            Some("CHANNEL_CREATE")
        );

        e.call(json!({"action": "quiesce", "nodes": e.nodes(&[0])}))
            .await;
        let out = e.check(&[0]).await;
        assert_eq!(
            out["all_drained"], false,
            "attempt {attempt}: drained with a call up: {out}"
        );
        assert_eq!(out["nodes"][0]["channels"], 1, "attempt {attempt}: {out}");

        e.call(json!({"action": "resume", "nodes": e.nodes(&[0])}))
            .await;
        let call = call.finish().await.unwrap();
        assert_eq!(
            (call.successful, call.failed),
            (1, 0),
            "attempt {attempt}: {call:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_takes_calls_again() {
    let e = env_with(1, 504).await;
    e.call(json!({"action": "quiesce", "nodes": e.nodes(&[0])}))
        .await;
    completes(CallPlan::refused(e.fs[0].sip_addr(), e.sink.port())).await;

    let out = e
        .call(json!({"action": "resume", "nodes": e.nodes(&[0])}))
        .await;
    assert_eq!(out["nodes"][0]["was_paused"], true, "{out}");
    assert_eq!(e.listed(0).await, DestinationStatus::Active);
    assert_eq!(e.paused(0).await, (false, false));

    let before = e.since_startup().await;
    completes(e.via_kamailio(5, Duration::from_secs(1))).await;
    completes(e.direct(0, 1, Duration::from_secs(1))).await;
    assert_eq!(e.since_startup().await, [before[0] + 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_hangs_up_with_the_configured_cause_and_only_on_the_nodes_given() {
    let e = env_with(2, 505).await;
    // Four calls on each node, straight to it, held well past the force.
    let on0 = e.direct(0, 4, Duration::from_secs(20)).start().unwrap();
    let on1 = e.direct(1, 4, Duration::from_secs(20)).start().unwrap();
    e.wait_counted(&[4, 4]).await;
    let mut hangups = e.fs[0].esl().await.unwrap();
    hangups
        .subscribe(EventFormat::Plain, &["CHANNEL_HANGUP"])
        .await
        .unwrap();
    e.call(json!({"action": "quiesce", "nodes": e.nodes(&[0])}))
        .await;

    let out = e
        .call(json!({"action": "force", "nodes": e.nodes(&[0]), "hupall_cause": "SYSTEM_SHUTDOWN"}))
        .await;
    assert_eq!(out["cut"], 4, "{out}");
    assert_eq!(out["cause"], "SYSTEM_SHUTDOWN", "{out}");
    assert_eq!(out["nodes"][0]["cause"], "SYSTEM_SHUTDOWN", "{out}");
    assert_eq!(out["complete"], true, "{out}");

    // FreeSWITCH hung each call up with that cause.
    let mut causes = Vec::new();
    for _ in 0..4 {
        match hangups.next_event(Duration::from_secs(10)).await.unwrap() {
            Some(ev) => causes.push(ev.get("Hangup-Cause").unwrap_or("(none)").to_string()),
            None => break,
        }
    }
    assert_eq!(causes, vec!["SYSTEM_SHUTDOWN"; 4]);

    // The other node kept its calls, to the end.
    assert_eq!(e.status(1).await.sessions, 4);
    let kept = on1.finish().await.unwrap();
    assert_eq!((kept.successful, kept.failed), (4, 0), "{kept:?}");
    // sipp saw the four cut calls end early: the only failures of this test.
    let cut = on0.finish().await.unwrap();
    assert_eq!((cut.successful, cut.failed), (0, 4), "{cut:?}");
    let drained = until(Duration::from_secs(10), || async {
        e.check(&[0]).await["all_drained"] == true
    })
    .await;
    assert!(drained, "the forced node never drained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeswitch_restarted_mid_drain_is_paused_again() {
    let mut e = env_with(1, 506).await;
    e.call(json!({"action": "quiesce", "nodes": e.nodes(&[0])}))
        .await;
    e.fs.get_mut(0).restart().await.unwrap();
    assert_eq!(
        e.paused(0).await,
        (false, false),
        "a restart forgets the pause"
    );

    let out = e.check(&[0]).await;
    assert_eq!(ids(&out["repaused"]), ["pair-0001"], "{out}");
    assert_eq!(out["nodes"][0]["repaused"], true, "{out}");
    assert_eq!(e.paused(0).await, (true, true));
    // Refused with FreeSWITCH's 503: the restarted node takes no call.
    completes(CallPlan::refused(e.fs[0].sip_addr(), e.sink.port())).await;

    let again = e.check(&[0]).await;
    assert_eq!(ids(&again["repaused"]), Vec::<&str>::new(), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_freeswitch_is_unreachable_and_never_drained() {
    let mut e = env_with(2, 507).await;
    e.call(json!({"action": "quiesce", "nodes": e.nodes(&[0, 1])}))
        .await;
    e.fs.get_mut(0).stop().await.unwrap();

    let out = e
        .call(json!({"action": "check", "nodes": e.nodes(&[0, 1]), "remove": 1}))
        .await;
    assert_eq!(
        out["nodes"][0]["error"]["errorType"],
        ErrorName::NodeUnreachable.as_str(),
        "{out}"
    );
    assert_eq!(ids(&out["unreachable"]), ["pair-0001"], "{out}");
    assert_eq!(ids(&out["drained"]), ["pair-0002"], "{out}");
    assert_eq!(ids(&out["winners"]), ["pair-0002"], "{out}");
    assert_eq!(out["all_drained"], false, "{out}");

    let alone = e.check(&[0]).await;
    assert_eq!(alone["all_drained"], false, "{alone}");
    assert_eq!(alone["race_won"], false, "{alone}");
    assert_eq!(ids(&alone["drained"]), Vec::<&str>::new(), "{alone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_esl_password_is_a_clear_error_naming_the_node() {
    let e = env_with(1, 508).await;
    let wrong = handler(e.dispatcher.clone(), "not-the-password-at-all").await;
    let endpoint = e.fs[0].esl_endpoint();

    let out = wrong
        .handle(json!({"action": "check", "nodes": e.nodes(&[0])}))
        .await
        .unwrap();
    let error = &out["nodes"][0]["error"];
    assert_eq!(
        error["errorType"],
        ErrorName::NodeUnreachable.as_str(),
        "{out}"
    );
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains(&endpoint), "{message}");
    assert!(message.contains("authentication rejected"), "{message}");
    assert_eq!(out["all_drained"], false, "{out}");

    let err = wrong
        .handle(json!({"action": "health", "nodes": e.nodes(&[0])}))
        .await
        .expect_err("health with a wrong password");
    assert_eq!(err.name(), ErrorName::NodeUnreachable);
    assert!(err.to_string().contains("authentication rejected"), "{err}");
    // Nothing was changed on the node.
    assert_eq!(e.paused(0).await, (false, false));
}
