//! The client against FreeSWITCH 1.10.12's own bytes: each capture is replayed by a scripted
//! server that checks every command byte-for-byte and answers with the captured frames, read
//! by the client a few bytes at a time so every body is split across reads.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{capture, play_server, segments, server_bytes, Segment, Trickle};
use pairscale_esl::{Client, ClientOptions, Direction, Error, EventFormat, Heartbeat, Password};
use tokio::io::DuplexStream;

const ALL: [&str; 5] = [
    "01_idle_basic",
    "02_loaded_pause_inbound",
    "05_pause_checks",
    "07_misc_and_exit",
    "08_bad_password",
];

fn opts() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    }
}

/// A client over a trickling duplex pipe whose other end plays `name`.
async fn replay(
    name: &str,
    password: &str,
    trickle: usize,
) -> (
    pairscale_esl::Result<Client<Trickle<DuplexStream>>>,
    tokio::task::JoinHandle<usize>,
) {
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let script = segments(&capture(name));
    let server = tokio::spawn(play_server(server_end, script));
    let stream = Trickle {
        inner: client_end,
        max: trickle,
    };
    let client = Client::handshake(stream, name.into(), &Password::from(password), opts()).await;
    (client, server)
}

fn sent_count(name: &str) -> usize {
    segments(&capture(name))
        .iter()
        .filter(|s| matches!(s, Segment::Sent(_)))
        .count()
}

#[test]
fn every_capture_splits_into_whole_frames_and_commands() {
    for name in ALL {
        let raw = capture(name);
        let segs = segments(&raw);
        let total: usize = segs
            .iter()
            .map(|s| match s {
                Segment::Sent(b) | Segment::Recv(b) => b.len(),
            })
            .sum();
        assert_eq!(total, raw.len(), "{name}: every byte accounted for");
        assert!(
            matches!(segs.first(), Some(Segment::Recv(b)) if b == b"Content-Type: auth/request\n\n")
        );
    }
}

#[tokio::test]
async fn idle_server_counts_status_and_heartbeat() {
    let (client, server) = replay("01_idle_basic", "ClueCon", 7).await;
    let mut client = client.unwrap();
    assert_eq!(client.call_count().await.unwrap(), 0);
    assert_eq!(client.channel_count().await.unwrap(), 0);
    let status = client.status().await.unwrap();
    assert!(status.ready);
    assert_eq!(status.sessions, 0);
    assert_eq!(status.sessions_since_startup, 0);
    assert_eq!(status.max_sessions, 1000);
    assert_eq!(status.min_idle_cpu, 0.0);
    assert_eq!(status.idle_cpu, 80.0);
    assert_eq!(status.uptime, Duration::from_micros(10_832_707));
    client
        .subscribe(EventFormat::Plain, &["HEARTBEAT"])
        .await
        .unwrap();
    let event = client
        .next_event(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the captured heartbeat");
    assert_eq!(event.get("FreeSWITCH-IPv6"), Some("fd00::2"));
    assert_eq!(
        event.get("Event-Date-GMT"),
        Some("Sun, 22 Nov 2026 03:45:39 GMT")
    );
    let hb = Heartbeat::from_event(&event).unwrap();
    assert_eq!(hb.session_count, 0);
    assert_eq!(hb.max_sessions, 1000);
    assert_eq!(hb.session_since_startup, 0);
    assert_eq!(hb.idle_cpu, 50.0);
    assert_eq!(hb.uptime_msec, Some(19567));
    assert_eq!(server.await.unwrap(), sent_count("01_idle_basic"));
}

#[tokio::test]
async fn loaded_server_then_pause_inbound_stays_ready() {
    let (client, server) = replay("02_loaded_pause_inbound", "ClueCon", 5).await;
    let mut client = client.unwrap();
    assert_eq!(client.call_count().await.unwrap(), 20);
    assert_eq!(client.channel_count().await.unwrap(), 20);
    let before = client.status().await.unwrap();
    assert_eq!(
        (
            before.sessions,
            before.sessions_since_startup,
            before.sessions_peak
        ),
        (20, 21, 21)
    );
    assert_eq!(before.idle_cpu, 0.73);
    client.pause(Direction::Inbound).await.unwrap();
    let after = client.status().await.unwrap();
    assert!(after.ready, "paused only inbound is still ready");
    assert_eq!(server.await.unwrap(), sent_count("02_loaded_pause_inbound"));
}

#[tokio::test]
async fn pause_checks_ready_checks_and_not_ready() {
    let (client, server) = replay("05_pause_checks", "ClueCon", 3).await;
    let mut c = client.unwrap();
    assert!(!c.pause_check(None).await.unwrap());
    assert!(c.pause_check(Some(Direction::Inbound)).await.unwrap());
    assert!(!c.pause_check(Some(Direction::Outbound)).await.unwrap());
    assert!(c.ready_check().await.unwrap());
    c.resume(Direction::Inbound).await.unwrap();
    assert!(!c.pause_check(Some(Direction::Inbound)).await.unwrap());
    c.pause_all().await.unwrap();
    assert!(c.pause_check(None).await.unwrap());
    assert!(!c.status().await.unwrap().ready);
    c.resume_all().await.unwrap();
    assert!(c.ready_check().await.unwrap());
    assert!(c.status().await.unwrap().ready);
    assert_eq!(c.call_count().await.unwrap(), 20);
    assert_eq!(server.await.unwrap(), sent_count("05_pause_checks"));
}

#[tokio::test]
async fn channels_json_unknown_command_bgapi_noevents_and_exit() {
    let (client, server) = replay("07_misc_and_exit", "ClueCon", 1000).await;
    let mut c = client.unwrap();
    let json = c.api("show calls count as json").await.unwrap();
    assert_eq!(json, r#"{"row_count":20,"rows":[]}"#);
    let channels = c.channels().await.unwrap();
    assert_eq!(channels.len(), 20);
    assert!(channels.iter().all(|ch| ch.direction == Direction::Inbound
        && (1_795_319_142..=1_795_319_143).contains(&ch.created_epoch)
        && ch.state == "CS_EXECUTE"));
    assert_eq!(
        channels
            .iter()
            .filter(|ch| ch.created_epoch == 1_795_319_143)
            .count(),
        10
    );
    assert_eq!(channels[0].uuid, "2919b736-8a04-4caa-af3e-de53ed54f199");
    match c.api("bogus_command").await {
        Err(Error::CommandFailed { reply, .. }) => {
            assert_eq!(reply, "-ERR bogus_command Command not found!")
        }
        other => panic!("expected CommandFailed, got {other:?}"),
    }
    assert!(
        c.is_usable(),
        "a failed api command leaves the stream in step"
    );
    let job = c.bgapi_start("status").await.unwrap();
    assert_eq!(job, "1e9e83e1-9dda-49dc-b4a6-eea5a15a09c0");
    assert!(!c.noevents().await.unwrap(), "was not listening");
    c.exit().await.unwrap();
    assert_eq!(server.await.unwrap(), sent_count("07_misc_and_exit"));
}

#[tokio::test]
async fn wrong_password_is_a_typed_auth_error() {
    let (client, server) = replay("08_bad_password", "WrongPass", 2).await;
    match client {
        Err(Error::AuthRejected { reply }) => assert_eq!(reply, "-ERR invalid"),
        other => panic!("expected AuthRejected, got {other:?}"),
    }
    assert_eq!(server.await.unwrap(), 1);
}

#[tokio::test]
async fn a_connection_closed_mid_body_is_an_error_and_between_frames_is_not() {
    use pairscale_esl::Connection;
    let idle = server_bytes(&capture("01_idle_basic"));
    // auth/request (28) + "+OK accepted" reply (54) + 30 bytes into the count response.
    let cut = 28 + 54 + 30;
    let mut conn = Connection::new(common::Chunks::split(&idle[..cut], &[10, 40, 90]));
    assert!(conn.read_frame().await.unwrap().is_some());
    assert!(conn.read_frame().await.unwrap().is_some());
    match conn.read_frame().await {
        Err(Error::ConnectionResetMidFrame { buffered }) => assert_eq!(buffered, 30),
        other => panic!("expected ConnectionResetMidFrame, got {other:?}"),
    }

    let mut conn = Connection::new(common::Chunks::split(&idle[..28 + 54], &[5]));
    assert!(conn.read_frame().await.unwrap().is_some());
    assert!(conn.read_frame().await.unwrap().is_some());
    assert!(conn.read_frame().await.unwrap().is_none(), "clean EOF");
}

#[tokio::test]
async fn a_reply_cut_off_mid_frame_fails_the_command_and_poisons_the_client() {
    let status_reply = segments(&capture("01_idle_basic"))
        .into_iter()
        .filter_map(|s| match s {
            Segment::Recv(b)
                if b.starts_with(b"Content-Type: api/response\nContent-Length: 371") =>
            {
                Some(b)
            }
            _ => None,
        })
        .next()
        .unwrap();
    let script = vec![
        Segment::Recv(b"Content-Type: auth/request\n\n".to_vec()),
        Segment::Sent(b"auth ClueCon\n\n".to_vec()),
        Segment::Recv(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n".to_vec()),
        Segment::Sent(b"api status\n\n".to_vec()),
        Segment::Recv(status_reply[..200].to_vec()),
    ];
    let (client_end, server_end) = tokio::io::duplex(4096);
    let server = tokio::spawn(play_server(server_end, script));
    let mut c = Client::handshake(client_end, "t".into(), &Password::from("ClueCon"), opts())
        .await
        .unwrap();
    match c.status().await {
        Err(Error::ConnectionResetMidFrame { buffered }) => assert_eq!(buffered, 200),
        other => panic!("expected ConnectionResetMidFrame, got {other:?}"),
    }
    assert_eq!(server.await.unwrap(), 2);
    assert!(matches!(c.status().await, Err(Error::Poisoned)));
}

#[tokio::test]
async fn a_rude_rejection_is_access_denied() {
    let script = vec![Segment::Recv(
        b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"
            .to_vec(),
    )];
    let (client_end, server_end) = tokio::io::duplex(4096);
    let server = tokio::spawn(play_server(server_end, script));
    let res = Client::handshake(client_end, "t".into(), &Password::from("x"), opts()).await;
    match res {
        Err(Error::AccessDenied { message }) => assert_eq!(message, "Access Denied, go away."),
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_is_a_typed_timeout() {
    let (client_end, _server_end) = tokio::io::duplex(4096);
    let res = Client::handshake(client_end, "t".into(), &Password::from("x"), opts()).await;
    assert!(matches!(res, Err(Error::ConnectTimeout { .. })), "{res:?}");
}
