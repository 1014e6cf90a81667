//! fssim against the real thing: every command the project sends over the Event Socket (the
//! typed commands of `pairscale-esl` and the visits of `pairscale-media`'s `EslNodes`) goes to a
//! real FreeSWITCH 1.10.12 and to a simulated node brought into the same state (idle, with
//! calls, paused one way, paused both ways, right after `hupall`, once the hangups are done,
//! resumed), and the replies must parse to the same values. Where they differ, the simulator is
//! wrong: fssim stands in for FreeSWITCH in the benchmarks and the fault tests, so it must
//! answer as FreeSWITCH does.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use pairscale_core::ports::MediaNodes;
use pairscale_core::{HangupCause, Timestamp};
use pairscale_esl::{Client, ClientOptions, Direction, Error as EslError, Password};
use pairscale_freeswitch::render::OUTSIDER_IP;
use pairscale_freeswitch::{CallPlan, Calls, Cluster, Options, RtpSink};
use pairscale_fssim::{Acl, CallSpec, NodeConfig, NodeHandle, Simulator};
use pairscale_media::EslNodes;
use tokio::net::TcpSocket;

const PASSWORD: &str = "pairscale-differential-password";
const CALLS: u32 = 3;

/// What one side answered to the read-only commands, parsed.
#[derive(Debug, PartialEq)]
struct Reading {
    /// `status`: everything but the clock-driven figures (uptime, rate, idle CPU).
    ready: bool,
    sessions: u64,
    sessions_since_startup: u64,
    sessions_peak: u64,
    sessions_peak_5min: u64,
    max_sessions: u64,
    max_sessions_per_sec: u64,
    channel_count: u64,
    call_count: u64,
    /// `show channels as json`: (direction, state) per channel, sorted.
    channels: Vec<(Direction, String)>,
    pause_check: bool,
    pause_check_inbound: bool,
    pause_check_outbound: bool,
    ready_check: bool,
    /// `EslNodes`: health (ready, sessions, max), drain state (channels, paused), snapshot size.
    health: (bool, u64, u64),
    drain_state: (u64, bool),
    snapshot_channels: usize,
}

struct Side {
    name: &'static str,
    endpoint: String,
}

impl Side {
    async fn client(&self) -> Client {
        Client::connect(
            &self.endpoint,
            &Password::new(PASSWORD),
            ClientOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    async fn read(&self, nodes: &EslNodes) -> Reading {
        let mut c = self.client().await;
        let st = c.status().await.unwrap();
        let mut channels: Vec<_> = c
            .channels()
            .await
            .unwrap()
            .into_iter()
            .map(|ch| (ch.direction, ch.state))
            .collect();
        channels.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        let health = nodes.health(&self.endpoint).await.unwrap();
        let drain = nodes.drain_state(&self.endpoint).await.unwrap();
        let now = Timestamp(UNIX_EPOCH.elapsed().unwrap().as_millis() as i64);
        Reading {
            ready: st.ready,
            sessions: st.sessions,
            sessions_since_startup: st.sessions_since_startup,
            sessions_peak: st.sessions_peak,
            sessions_peak_5min: st.sessions_peak_5min,
            max_sessions: st.max_sessions,
            max_sessions_per_sec: st.max_sessions_per_sec,
            channel_count: c.channel_count().await.unwrap(),
            call_count: c.call_count().await.unwrap(),
            channels,
            pause_check: c.pause_check(None).await.unwrap(),
            pause_check_inbound: c.pause_check(Some(Direction::Inbound)).await.unwrap(),
            pause_check_outbound: c.pause_check(Some(Direction::Outbound)).await.unwrap(),
            ready_check: c.ready_check().await.unwrap(),
            health: (health.ready, health.sessions, health.max_sessions),
            drain_state: (drain.channels, drain.paused),
            snapshot_channels: nodes
                .snapshot(&self.endpoint, now)
                .await
                .unwrap()
                .channel_ages_secs
                .len(),
        }
    }
}

struct Pair {
    fs: Cluster,
    sim: NodeHandle,
    real: Side,
    fake: Side,
    nodes: EslNodes,
}

impl Pair {
    async fn start() -> Pair {
        let fs = Cluster::start(Options {
            esl_password: PASSWORD.into(),
            ..Options::default()
        })
        .await
        .expect("FreeSWITCH starts");
        // The simulator as the role configures FreeSWITCH (freeswitch_max_sessions,
        // freeswitch_sessions_per_second), lagging as FreeSWITCH does.
        let sim = Simulator::spawn(NodeConfig {
            password: PASSWORD.into(),
            max_sessions: 2000,
            max_sessions_per_sec: 100,
            heartbeat: None,
            ..NodeConfig::like_freeswitch()
        })
        .await
        .unwrap();
        Pair {
            real: Side {
                name: "FreeSWITCH",
                endpoint: fs[0].esl_endpoint(),
            },
            fake: Side {
                name: "fssim",
                endpoint: sim.addr().to_string(),
            },
            sim,
            fs,
            nodes: EslNodes::new(Password::new(PASSWORD), 4, Duration::from_secs(3)),
        }
    }

    /// Both sides' readings must be equal.
    async fn same(&self, state: &str) -> Reading {
        let real = self.real.read(&self.nodes).await;
        let fake = self.fake.read(&self.nodes).await;
        assert_eq!(
            fake, real,
            "{state}: fssim (left) does not answer as FreeSWITCH (right)"
        );
        real
    }

    /// Runs `command` on both sides and returns (FreeSWITCH's, fssim's) result.
    async fn both<T, F, Fut>(&self, command: F) -> (T, T)
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let real = command(self.real.endpoint.clone()).await;
        let fake = command(self.fake.endpoint.clone()).await;
        (real, fake)
    }
}

/// A session opened from `from`, which no ACL of the role admits.
async fn connect_from(from: std::net::Ipv4Addr, to: &str) -> pairscale_esl::Result<Client> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((from, 0).into())?;
    let stream = socket.connect(to.parse::<SocketAddr>().unwrap()).await?;
    Client::handshake(
        stream,
        to.into(),
        &Password::new(PASSWORD),
        ClientOptions::default(),
    )
    .await
}

/// Places `CALLS` calls on the real node and waits until FreeSWITCH counts them everywhere.
async fn calls_on_the_real_node(p: &Pair, sink: &RtpSink) -> Calls {
    let calls = CallPlan::hold(
        p.fs[0].sip_addr(),
        "pairscale-canary",
        CALLS,
        Duration::from_secs(120),
        sink.port(),
    )
    .start()
    .unwrap();
    let started = Instant::now();
    loop {
        let mut c = p.real.client().await;
        let counted = c.channel_count().await.unwrap();
        let sessions = c.status().await.unwrap().sessions;
        if (counted, sessions) == (u64::from(CALLS), u64::from(CALLS)) {
            return calls;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "calls not up: {counted} counted, {sessions} sessions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fssim_answers_every_command_the_project_sends_as_freeswitch_does() {
    let pair = Pair::start().await;
    let p = &pair;
    let sink = RtpSink::bind().await.unwrap();

    // Refusals: a wrong password, an address outside the ACL.
    let (real, fake) = p
        .both(|ep| async move {
            match Client::connect(&ep, &Password::new("wrong"), ClientOptions::default()).await {
                Err(EslError::AuthRejected { reply }) => reply,
                other => panic!("{ep}: {other:?}"),
            }
        })
        .await;
    assert_eq!(fake, real, "wrong password");
    let real_denied = match connect_from(OUTSIDER_IP, &p.real.endpoint).await {
        Err(EslError::AccessDenied { message }) => message,
        other => panic!("FreeSWITCH admitted {OUTSIDER_IP}: {other:?}"),
    };
    p.sim.set_acl(Acl::Deny);
    let fake_denied = match Client::connect(
        &p.fake.endpoint,
        &Password::new(PASSWORD),
        ClientOptions::default(),
    )
    .await
    {
        Err(EslError::AccessDenied { message }) => message,
        other => panic!("fssim admitted a denied client: {other:?}"),
    };
    p.sim.set_acl(Acl::Allow);
    assert_eq!(fake_denied, real_denied, "ACL refusal");

    let idle = p.same("idle").await;
    assert_eq!((idle.sessions, idle.ready), (0, true));

    // The same calls on both.
    let calls = calls_on_the_real_node(p, &sink).await;
    assert_eq!(
        p.sim.add_calls(CALLS as usize, CallSpec::inbound()),
        CALLS as usize
    );
    // The simulated core database catches up as FreeSWITCH's does.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let up = p.same("with calls").await;
    assert_eq!(up.drain_state.0, u64::from(CALLS));

    // Paused inbound only: not "paused" for pause_check without a direction, still ready.
    let (real, fake) = p
        .both(|ep| async move {
            let mut c = Client::connect(&ep, &Password::new(PASSWORD), ClientOptions::default())
                .await
                .unwrap();
            c.pause(Direction::Inbound).await.map_err(|e| e.to_string())
        })
        .await;
    assert_eq!(fake, real, "fsctl pause inbound");
    let one_way = p.same("paused inbound").await;
    assert_eq!((one_way.pause_check, one_way.ready), (false, true));

    // The drain's pause: both ways, confirmed.
    let (real, fake) = p
        .both(|ep| async move { p.nodes.pause(&ep).await.map_err(|e| e.to_string()) })
        .await;
    assert_eq!(fake, real, "EslNodes::pause");
    let paused = p.same("paused").await;
    assert_eq!(
        (paused.pause_check, paused.ready, paused.drain_state),
        (true, false, (u64::from(CALLS), true))
    );

    // hupall: the cause used and the counts read right after it, while the hangups finish in
    // the background.
    let cause = HangupCause::parse("SYSTEM_SHUTDOWN").unwrap();
    let (real, fake) = p
        .both(|ep| async move { p.nodes.hupall(&ep, cause).await.unwrap() })
        .await;
    assert_eq!(fake, real, "EslNodes::hupall");
    assert_eq!(
        (real.cut, real.cause.as_str()),
        (u64::from(CALLS), "SYSTEM_SHUTDOWN")
    );
    let cut = calls.finish().await.unwrap();
    assert_eq!(cut.failed, u64::from(CALLS), "{cut:?}");
    // Once both are done hanging up (bounded), they read the same again.
    let started = Instant::now();
    loop {
        let (real, fake) = p
            .both(|ep| async move { p.nodes.drain_state(&ep).await.unwrap().channels })
            .await;
        if (real, fake) == (0, 0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still counted after hupall: FreeSWITCH {real}, fssim {fake}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = p.same("after hupall").await;
    assert_eq!(
        (after.sessions, after.sessions_since_startup),
        (0, u64::from(CALLS))
    );

    // The drain's resume, and the typed resume of what is already resumed.
    let (real, fake) = p
        .both(|ep| async move { p.nodes.resume(&ep).await.map_err(|e| e.to_string()) })
        .await;
    assert_eq!(fake, real, "EslNodes::resume");
    assert_eq!(real, Ok(true));
    let (real, fake) = p
        .both(|ep| async move {
            let mut c = Client::connect(&ep, &Password::new(PASSWORD), ClientOptions::default())
                .await
                .unwrap();
            let a = c.resume_all().await.map_err(|e| e.to_string());
            let b = c.pause_all().await.map_err(|e| e.to_string());
            let paused = c.pause_check(None).await.map_err(|e| e.to_string());
            let c2 = c
                .resume(Direction::Outbound)
                .await
                .map_err(|e| e.to_string());
            let d = c
                .resume(Direction::Inbound)
                .await
                .map_err(|e| e.to_string());
            (a, b, paused, c2, d)
        })
        .await;
    assert_eq!(
        fake, real,
        "fsctl resume, pause, pause_check, resume outbound, resume inbound"
    );
    let resumed = p.same("resumed").await;
    assert_eq!((resumed.ready, resumed.pause_check), (true, false));
}

/// The canary call as the drain places it (`EslNodes::canary`): answered, ended by the caller,
/// with a MOS and media; a destination nothing answers; a node paused outbound. fssim must give
/// the same outcome and cause as FreeSWITCH (its figures are its own: it carries no RTP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fssim_places_and_reports_the_canary_call_as_freeswitch_does() {
    let p = Pair::start().await;
    let real_sip = p.fs[0].sip_uri();
    let dial = |to: &str| {
        pairscale_core::CanaryConfig {
            destination: to.into(),
            ..pairscale_core::CanaryConfig::default()
        }
        .dial_string(&real_sip)
        .unwrap()
    };
    let outcome = |c: pairscale_core::canary::CanaryCall| {
        (
            c.answered,
            c.hangup_cause,
            c.mos.is_some(),
            c.media_packets > 0,
        )
    };
    let answered = dial("pairscale-canary");
    let (real, fake) = p
        .both(|ep| {
            let d = answered.clone();
            let nodes = &p.nodes;
            async move {
                nodes
                    .canary(&ep, &d, 2)
                    .await
                    .map(outcome)
                    .map_err(|e| e.to_string())
            }
        })
        .await;
    assert_eq!(real, Ok((true, "NORMAL_CLEARING".to_string(), true, true)));
    assert_eq!(fake, real, "a canary call answered");

    // Nothing answers the number: fssim is told so; FreeSWITCH finds no extension.
    p.sim.set_canary_mos(None);
    let unanswered = dial("no-such-extension");
    let (real, fake) = p
        .both(|ep| {
            let d = unanswered.clone();
            let nodes = &p.nodes;
            async move {
                nodes
                    .canary(&ep, &d, 1)
                    .await
                    .map(outcome)
                    .map_err(|e| e.to_string())
            }
        })
        .await;
    assert_eq!(fake, real, "a canary call nothing answers");
    assert!(matches!(&real, Ok((false, _, false, false))), "{real:?}");

    // Paused outbound, the node cannot place it.
    p.sim.set_canary_mos(Some(4.5));
    let (real, fake) = p
        .both(|ep| {
            let d = answered.clone();
            let nodes = &p.nodes;
            async move {
                let mut c =
                    Client::connect(&ep, &Password::new(PASSWORD), ClientOptions::default())
                        .await
                        .unwrap();
                c.pause(Direction::Outbound).await.unwrap();
                let r = nodes
                    .canary(&ep, &d, 1)
                    .await
                    .map(outcome)
                    .map_err(|e| e.to_string());
                c.resume(Direction::Outbound).await.unwrap();
                r
            }
        })
        .await;
    assert_eq!(fake, real, "a canary call from a node paused outbound");
    assert!(matches!(&real, Ok((false, _, false, false))), "{real:?}");
    // No canary call is left up on either side (FreeSWITCH tears its two legs down in the
    // background: bounded wait). Session totals differ by design: fssim has no callee leg.
    for ep in [&p.real.endpoint, &p.fake.endpoint] {
        let mut sessions = u64::MAX;
        for _ in 0..50 {
            sessions = p.nodes.health(ep).await.unwrap().sessions;
            if sessions == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(sessions, 0, "{ep}: a canary call is still up");
    }
}
