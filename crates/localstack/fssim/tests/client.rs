//! The esl client against simulated nodes over loopback TCP: every typed command, the call
//! model behind the counts, pause flags refusing calls, faults turning into typed errors.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pairscale_core::HangupCause;
use pairscale_esl::{Client, ClientOptions, Direction, Error, EventFormat, Heartbeat, Password};
use pairscale_fssim::{Acl, CallSpec, Fault, Fleet, NodeConfig, NodeHandle, Refusal, Simulator};

fn opts() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    }
}

async fn node() -> NodeHandle {
    Simulator::spawn(NodeConfig {
        heartbeat: Some(Duration::from_millis(100)),
        ..NodeConfig::default()
    })
    .await
    .unwrap()
}

async fn connect(node: &NodeHandle) -> pairscale_esl::Result<Client> {
    connect_with(node, opts()).await
}

async fn connect_with(node: &NodeHandle, o: ClientOptions) -> pairscale_esl::Result<Client> {
    Client::connect(&node.addr().to_string(), &Password::from("ClueCon"), o).await
}

#[tokio::test]
async fn the_right_password_authenticates_and_a_wrong_one_is_rejected() {
    let n = node().await;
    assert!(connect(&n).await.is_ok());
    let bad = Client::connect(&n.addr().to_string(), &Password::from("nope"), opts()).await;
    match bad {
        Err(Error::AuthRejected { reply }) => assert_eq!(reply, "-ERR invalid"),
        other => panic!("expected AuthRejected, got {other:?}"),
    }
}

#[tokio::test]
async fn an_acl_refusal_is_access_denied() {
    let n = node().await;
    n.set_acl(Acl::Deny);
    assert!(matches!(connect(&n).await, Err(Error::AccessDenied { .. })));
    n.set_acl(Acl::Allow);
    assert!(connect(&n).await.is_ok());
}

#[tokio::test]
async fn bridged_calls_count_two_channels_and_one_call() {
    let n = node().await;
    assert_eq!(n.add_calls(3, CallSpec::inbound()), 3);
    assert_eq!(n.add_calls(2, CallSpec::inbound().bridged()), 2);
    let mut c = connect(&n).await.unwrap();
    assert_eq!(c.channel_count().await.unwrap(), 7);
    assert_eq!(c.call_count().await.unwrap(), 5);
    let status = c.status().await.unwrap();
    assert_eq!(status.sessions, 7);
    assert_eq!(status.sessions_since_startup, 7);
    assert!(status.ready);
    let channels = c.channels().await.unwrap();
    assert_eq!(channels.len(), 7);
    assert_eq!(
        channels
            .iter()
            .filter(|ch| ch.direction == Direction::Outbound)
            .count(),
        2
    );
    let uuids: Vec<String> = n.channels().into_iter().map(|l| l.uuid).collect();
    assert!(channels.iter().all(|ch| uuids.contains(&ch.uuid)));
    assert!(channels
        .iter()
        .all(|ch| ch.age(std::time::SystemTime::now()) < Duration::from_secs(60)));
}

#[tokio::test]
async fn an_empty_node_lists_no_channels() {
    let n = node().await;
    let mut c = connect(&n).await.unwrap();
    assert!(c.channels().await.unwrap().is_empty());
    assert_eq!(c.channel_count().await.unwrap(), 0);
}

#[tokio::test]
async fn pausing_inbound_refuses_and_counts_new_inbound_calls_only() {
    let n = node().await;
    let mut c = connect(&n).await.unwrap();
    c.pause(Direction::Inbound).await.unwrap();
    assert!(c.pause_check(Some(Direction::Inbound)).await.unwrap());
    assert!(!c.pause_check(Some(Direction::Outbound)).await.unwrap());
    assert!(!c.pause_check(None).await.unwrap());
    assert!(c.ready_check().await.unwrap());
    assert!(c.status().await.unwrap().ready, "paused one way is ready");

    assert_eq!(
        n.add_call(CallSpec::inbound()),
        Err(Refusal::Paused(pairscale_fssim::Direction::Inbound))
    );
    assert!(n.add_call(CallSpec::outbound()).is_ok());
    assert_eq!(n.refused().inbound, 1);
    assert_eq!(n.refused_count(), 1);

    c.pause(Direction::Outbound).await.unwrap();
    assert!(c.pause_check(None).await.unwrap());
    assert!(!c.ready_check().await.unwrap());
    assert!(!c.status().await.unwrap().ready);
    assert!(n.add_call(CallSpec::outbound()).is_err());
    assert_eq!(n.refused_count(), 2);

    c.resume_all().await.unwrap();
    assert!(!c.pause_check(Some(Direction::Inbound)).await.unwrap());
    assert!(n.add_call(CallSpec::inbound()).is_ok());
    assert_eq!(c.channel_count().await.unwrap(), 2);
}

#[tokio::test]
async fn calls_with_a_duration_end_by_themselves() {
    let n = node().await;
    n.add_calls(4, CallSpec::inbound().lasting(Duration::from_millis(150)));
    n.add_calls(1, CallSpec::inbound());
    let mut c = connect(&n).await.unwrap();
    let mut remaining = c.channel_count().await.unwrap();
    for _ in 0..100 {
        if remaining == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        remaining = c.channel_count().await.unwrap();
    }
    assert_eq!(remaining, 1, "only the open-ended call is left");
}

#[tokio::test]
async fn hupall_cuts_every_channel_and_reports_the_cause() {
    let n = node().await;
    n.add_calls(3, CallSpec::inbound());
    n.add_calls(2, CallSpec::inbound().bridged());
    let mut c = connect(&n).await.unwrap();
    let out = c
        .hupall(HangupCause::parse("NORMAL_CLEARING").unwrap())
        .await
        .unwrap();
    assert_eq!(out.cause, "NORMAL_CLEARING");
    assert_eq!(c.channel_count().await.unwrap(), 0);
    assert_eq!(n.hupall_channels(), 7);
}

#[tokio::test]
async fn hupall_picks_the_cause_as_freeswitch_does() {
    let n = node().await;
    let mut c = connect(&n).await.unwrap();
    for (arg, used) in [
        ("", "MANAGER_REQUEST"),
        ("NONE", "MANAGER_REQUEST"),
        ("system_shutdown", "SYSTEM_SHUTDOWN"),
        ("16", "NORMAL_CLEARING"),
        // An unknown name: FreeSWITCH's str2cause falls back to NORMAL_CLEARING.
        ("MANAGER_REQEUST", "NORMAL_CLEARING"),
    ] {
        n.add_calls(1, CallSpec::inbound());
        let text = c.api(format!("hupall {arg}").trim_end()).await.unwrap();
        assert_eq!(
            text.trim_end(),
            format!("+OK hangup all channels with cause {used}"),
            "hupall {arg}"
        );
    }
    assert_eq!(n.hupall_channels(), 5);
}

#[tokio::test]
async fn heartbeats_report_the_session_count() {
    let n = node().await;
    n.add_calls(2, CallSpec::inbound().bridged());
    let mut c = connect(&n).await.unwrap();
    c.subscribe(EventFormat::Plain, &["HEARTBEAT"])
        .await
        .unwrap();
    let ev = c.next_event(Duration::from_secs(5)).await.unwrap().unwrap();
    let hb = Heartbeat::from_event(&ev).unwrap();
    assert_eq!(hb.session_count, 4);
    assert_eq!(hb.session_since_startup, 4);
    assert_eq!(hb.max_sessions, 1000);
    assert_eq!(hb.idle_cpu, 80.0);

    let mut j = connect(&n).await.unwrap();
    j.subscribe(EventFormat::Json, &["HEARTBEAT"])
        .await
        .unwrap();
    let ev = j.next_event(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(Heartbeat::from_event(&ev).unwrap().session_count, 4);
    assert!(j.noevents().await.unwrap());
}

#[tokio::test]
async fn bgapi_returns_the_result_matched_by_job_uuid() {
    let n = node().await;
    n.add_calls(2, CallSpec::inbound());
    let mut c = connect(&n).await.unwrap();
    assert_eq!(c.bgapi("show calls count").await.unwrap(), "\n2 total.\n");
    assert!(matches!(
        c.bgapi("no_such_api").await,
        Err(Error::CommandFailed { .. })
    ));
    // Interleaved with heartbeats, and the client still pairs replies correctly.
    c.subscribe(EventFormat::Plain, &["HEARTBEAT"])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(c.channel_count().await.unwrap(), 2);
    let ev = c.next_event(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(ev.name(), Some("HEARTBEAT"));
    c.exit().await.unwrap();
}

#[tokio::test]
async fn a_slow_or_hung_node_is_a_typed_timeout_and_poisons_the_client() {
    for fault in [Fault::SlowReplies(Duration::from_secs(3)), Fault::Hang] {
        let n = node().await;
        let mut c = connect_with(
            &n,
            ClientOptions {
                command_timeout: Duration::from_millis(200),
                ..opts()
            },
        )
        .await
        .unwrap();
        n.set_fault(fault);
        assert!(
            matches!(c.status().await, Err(Error::Timeout { .. })),
            "{fault:?}"
        );
        assert!(matches!(c.status().await, Err(Error::Poisoned)));
    }
}

#[tokio::test]
async fn dropped_connections_garbage_and_cut_replies_are_typed_errors() {
    let n = node().await;
    let mut c = connect(&n).await.unwrap();
    n.set_fault(Fault::DropConnections);
    assert!(matches!(c.status().await, Err(Error::ConnectionClosed)));
    assert!(
        connect(&n).await.is_err(),
        "new connections are dropped too"
    );

    n.set_fault(Fault::None);
    let mut c = connect(&n).await.unwrap();
    n.set_fault(Fault::Garbage);
    let err = c.status().await.unwrap_err();
    assert!(err.is_protocol(), "{err:?}");

    n.set_fault(Fault::None);
    let mut c = connect(&n).await.unwrap();
    n.set_fault(Fault::CloseMidReply);
    assert!(matches!(
        c.status().await,
        Err(Error::ConnectionResetMidFrame { .. })
    ));
}

#[tokio::test]
async fn a_restart_drops_calls_connections_and_pause_flags() {
    let n = node().await;
    n.add_calls(5, CallSpec::inbound());
    let mut c = connect(&n).await.unwrap();
    c.pause_all().await.unwrap();
    assert!(c.pause_check(None).await.unwrap());
    n.restart();
    assert!(c.status().await.is_err(), "the old connection is gone");
    let mut c = connect(&n).await.unwrap();
    assert!(!c.pause_check(Some(Direction::Inbound)).await.unwrap());
    assert!(!c.pause_check(Some(Direction::Outbound)).await.unwrap());
    let status = c.status().await.unwrap();
    assert!(status.ready);
    assert_eq!(status.sessions, 0);
    assert_eq!(status.sessions_since_startup, 0);
}

#[tokio::test]
async fn fsctl_shutdown_restart_restarts_the_node_as_a_restart_does() {
    let n = node().await;
    n.add_calls(2, CallSpec::inbound());
    let mut c = connect(&n).await.unwrap();
    c.pause_all().await.unwrap();
    assert_eq!(c.api("fsctl shutdown restart").await.unwrap(), "+OK\n");
    assert!(c.status().await.is_err(), "the connection closed");
    let mut c = connect(&n).await.unwrap();
    assert!(!c.pause_check(Some(Direction::Inbound)).await.unwrap());
    assert_eq!(c.channel_count().await.unwrap(), 0);
    assert_eq!(n.call_tally().restart, 2);
}

#[tokio::test]
async fn the_call_tally_says_over_the_event_socket_how_each_call_ended() {
    let n = node().await;
    n.add_calls(2, CallSpec::inbound().lasting(Duration::from_millis(10)));
    n.add_calls(1, CallSpec::inbound().bridged());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut c = connect(&n).await.unwrap();
    c.hupall(HangupCause::parse("NORMAL_CLEARING").unwrap())
        .await
        .unwrap();
    n.add_calls(1, CallSpec::inbound());
    n.restart();
    n.add_calls(3, CallSpec::inbound());
    let mut c = connect(&n).await.unwrap();
    assert_eq!(
        c.api("fssim_call_tally").await.unwrap(),
        concat!(
            r#"{"admitted":7,"natural":2,"hupall":1,"killed":0,"restart":1,"shutdown":0,"up":3}"#,
            "\n"
        )
    );
    let last = n.shut_down_calls();
    assert_eq!((last.shutdown, last.ended_total()), (3, 7));
}

/// The soft limit on open files, where /proc says (Linux); a listener is one descriptor.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test]
async fn a_thousand_nodes_start_in_one_process_and_answer() {
    // Other tests in this binary hold sockets too: leave them room under a low limit.
    let n = open_file_limit().map_or(1000, |l| l.saturating_sub(300).min(1000));
    assert!(n >= 500, "open-file limit too low to host many nodes");
    let fleet = Fleet::spawn(n, |i| NodeConfig {
        seed: i as u64,
        heartbeat: None,
        ..NodeConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(fleet.len(), n);
    let mut addrs = fleet.addrs();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), n, "every node has its own port");
    for i in (0..n).step_by(111) {
        let node = fleet.node(i).unwrap();
        node.add_calls(i % 7, CallSpec::inbound());
        let mut c = connect(node).await.unwrap();
        assert_eq!(c.channel_count().await.unwrap(), (i % 7) as u64);
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn the_password_never_reaches_the_logs() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    let buf = Buf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buf.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let n = Simulator::spawn(NodeConfig {
        password: "S3cret-Right".into(),
        heartbeat: None,
        ..NodeConfig::default()
    })
    .await
    .unwrap();
    let addr = n.addr().to_string();
    let bad = Client::connect(&addr, &Password::from("S3cret-Wrong"), opts()).await;
    let bad_text = format!("{bad:?}");
    let mut good = Client::connect(&addr, &Password::from("S3cret-Right"), opts())
        .await
        .unwrap();
    good.status().await.unwrap();
    n.set_fault(Fault::Hang);
    let _ = Client::connect(
        &addr,
        &Password::from("S3cret-Right"),
        ClientOptions {
            command_timeout: Duration::from_millis(100),
            ..opts()
        },
    )
    .await;

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("authentication rejected"), "{logs}");
    assert!(logs.contains("timed out"), "{logs}");
    for secret in ["S3cret-Right", "S3cret-Wrong"] {
        assert!(!logs.contains(secret), "password in logs: {logs}");
        assert!(!bad_text.contains(secret), "password in error: {bad_text}");
    }
}

#[tokio::test(start_paused = true)]
async fn random_traffic_follows_tokio_time_and_drains_once_paused() {
    use pairscale_fssim::{DurationDist, Traffic};
    let n = Simulator::spawn(NodeConfig {
        heartbeat: None,
        traffic: Some(Traffic {
            calls_per_sec: 4.0,
            duration: DurationDist::LogNormal {
                median: Duration::from_secs(30),
                sigma: 0.6,
            },
            outbound_fraction: 0.25,
            bridged_fraction: 0.5,
        }),
        ..NodeConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(n.sessions_since_startup(), 0);
    tokio::time::advance(Duration::from_secs(120)).await;
    assert!(n.channel_count() > 0);
    assert!(
        n.channel_count() > n.call_count(),
        "bridged calls have two legs"
    );
    let started = n.sessions_since_startup();
    assert!(started > 100, "{started}");

    n.set_paused(pairscale_fssim::Direction::Inbound, true);
    n.set_paused(pairscale_fssim::Direction::Outbound, true);
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(n.channel_count(), 0, "every call ended, none admitted");
    assert_eq!(n.sessions_since_startup(), started);
    let refused = n.refused();
    assert!(refused.inbound > 0 && refused.outbound > 0, "{refused:?}");
}
