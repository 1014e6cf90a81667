//! The simulator's bytes against FreeSWITCH 1.10.12's: the captured client commands are sent
//! over TCP and every answer is compared with the captured one, byte for byte except where a
//! real server's answer cannot be reproduced (uptime, job and channel uuids, call timestamps),
//! which are masked on both sides before comparing.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use pairscale_esl::{Frame, Limits};
use pairscale_fssim::{Acl, CallSpec, NodeConfig, NodeHandle, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The captures live once, in the esl crate's fixtures.
fn capture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../esl/tests/fixtures/{name}.raw",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

enum Seg {
    Sent(Vec<u8>),
    Recv(Vec<u8>),
}

fn segments(raw: &[u8]) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let rest = &raw[pos..];
        if rest.starts_with(b"Content-") {
            let len = Frame::check(rest, &Limits::default()).unwrap().unwrap();
            out.push(Seg::Recv(rest[..len].to_vec()));
            pos += len;
        } else {
            let end = rest.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
            out.push(Seg::Sent(rest[..end].to_vec()));
            pos += end;
        }
    }
    out
}

struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(node: &NodeHandle) -> Raw {
        let stream = TcpStream::connect(node.addr()).await.unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// The next whole frame's bytes, or `None` at EOF.
    async fn frame(&mut self) -> Option<Vec<u8>> {
        for _ in 0..10_000 {
            if let Some(len) = Frame::check(&self.buf, &Limits::default()).unwrap() {
                return Some(self.buf.drain(..len).collect());
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
                .await
                .expect("simulator answered in time")
                .unwrap();
            if n == 0 {
                assert!(self.buf.is_empty(), "EOF mid-frame");
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        panic!("no frame after 10000 reads");
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }
}

/// Masks what differs between any two servers in the same state.
fn normalise(frame: &[u8]) -> String {
    let parsed = Frame::parse(&Bytes::copy_from_slice(frame), &Limits::default()).unwrap();
    let text = String::from_utf8_lossy(frame).into_owned();
    let body = parsed.body_text().into_owned();
    let mut head: Vec<String> = text
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .map(|l| {
            if let Some(v) = l.strip_prefix("Job-UUID: ") {
                format!("Job-UUID: {}", mask_uuid(v))
            } else if let Some(v) = l.strip_prefix("Reply-Text: +OK Job-UUID: ") {
                format!("Reply-Text: +OK Job-UUID: {}", mask_uuid(v))
            } else {
                l.to_string()
            }
        })
        .collect();
    let masked_body = if body.starts_with("UP ") {
        // Uptime can never match; the rest of `status` must.
        body.lines()
            .map(|l| {
                if l.starts_with("UP ") {
                    "UP <uptime>"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    } else if body.contains("\"rows\":[{") {
        channel_rows_shape(&body)
    } else {
        body.clone()
    };
    if masked_body != body {
        head.retain(|l| !l.starts_with("Content-Length"));
    }
    format!("{}\n\n{masked_body}", head.join("\n"))
}

fn mask_uuid(v: &str) -> String {
    assert_eq!(v.len(), 36, "uuid {v:?}");
    assert_eq!(v.matches('-').count(), 4, "uuid {v:?}");
    "<uuid>".into()
}

/// `show channels as json`: row count, then each row's keys in order with the values that do
/// not depend on time or randomness.
fn channel_rows_shape(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let first = body.split("},{").next().unwrap();
    let keys: Vec<&str> = first
        .split("\",\"")
        .filter_map(|kv| kv.split("\":\"").next())
        .map(|k| {
            k.trim_start_matches("{\"row_count\":")
                .trim_matches(|c| c == '{' || c == '"')
        })
        .collect();
    let stable: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["direction"], r["state"], r["application"], r["callstate"]
            )
        })
        .collect();
    format!(
        "row_count={} keys={:?} rows={:?}",
        v["row_count"], keys, stable
    )
}

/// Sends every captured command and compares every captured answer. Events are left to the
/// event tests.
async fn replay(node: &NodeHandle, name: &str, raw: &mut Raw, skip_greeting: bool) {
    let mut segs = segments(&capture(name)).into_iter();
    if skip_greeting {
        segs.next();
    }
    for seg in segs {
        match seg {
            Seg::Sent(bytes) => raw.send(&bytes).await,
            Seg::Recv(expected) if expected.starts_with(b"Content-Length") => {
                // An event; checked elsewhere.
                let got = raw.frame().await.unwrap();
                assert!(got.starts_with(b"Content-Length"), "expected an event");
            }
            Seg::Recv(expected) => {
                let got = raw.frame().await.expect("a reply, not EOF");
                assert_eq!(
                    normalise(&got),
                    normalise(&expected),
                    "{name}: answer differs"
                );
            }
        }
    }
    let _ = node;
}

fn cfg() -> NodeConfig {
    NodeConfig {
        heartbeat: Some(Duration::from_millis(100)),
        ..NodeConfig::default()
    }
}

#[tokio::test]
async fn an_idle_node_answers_like_the_idle_capture() {
    let node = Simulator::spawn(cfg()).await.unwrap();
    let mut raw = Raw::connect(&node).await;
    replay(&node, "01_idle_basic", &mut raw, false).await;
}

#[tokio::test]
async fn a_loaded_node_answers_counts_pause_and_status_like_the_captures() {
    let node = Simulator::spawn(NodeConfig {
        idle_cpu: 0.73,
        ..cfg()
    })
    .await
    .unwrap();
    node.add_calls(20, CallSpec::inbound());
    let mut raw = Raw::connect(&node).await;
    // 02 ends with inbound paused, which is where 05 starts. The status lines that count
    // sessions per second depend on the capture's history, so compare them for shape only.
    let mut segs = segments(&capture("02_loaded_pause_inbound"));
    segs.extend(segments(&capture("05_pause_checks")).into_iter().skip(3));
    for seg in segs {
        match seg {
            Seg::Sent(bytes) => raw.send(&bytes).await,
            Seg::Recv(expected) => {
                let got = raw.frame().await.unwrap();
                let (g, e) = (normalise(&got), normalise(&expected));
                if e.contains("UP <uptime>") {
                    assert_eq!(shape(&g), shape(&e));
                    assert_eq!(
                        g.lines().nth(3),
                        e.lines().nth(3),
                        "the ready/not ready banner must match"
                    );
                } else {
                    assert_eq!(g, e);
                }
            }
        }
    }
    assert!(!node.paused(pairscale_fssim::Direction::Inbound));
}

fn shape(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect::<String>()
        .split('#')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("#")
}

#[tokio::test]
async fn channels_json_unknown_api_bgapi_noevents_and_exit_match_the_capture() {
    let node = Simulator::spawn(cfg()).await.unwrap();
    node.add_calls(20, CallSpec::inbound());
    let mut raw = Raw::connect(&node).await;
    replay(&node, "07_misc_and_exit", &mut raw, false).await;
    assert_eq!(
        raw.frame().await,
        None,
        "closed after the disconnect notice"
    );
}

#[tokio::test]
async fn a_wrong_password_gets_the_captured_bytes_then_eof() {
    let node = Simulator::spawn(cfg()).await.unwrap();
    let mut raw = Raw::connect(&node).await;
    let mut got = Vec::new();
    got.extend(raw.frame().await.unwrap());
    raw.send(b"auth WrongPass\n\n").await;
    while let Some(f) = raw.frame().await {
        got.extend(f);
    }
    let expected: Vec<u8> = segments(&capture("08_bad_password"))
        .into_iter()
        .filter_map(|s| match s {
            Seg::Recv(b) => Some(b),
            Seg::Sent(_) => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
}

#[tokio::test]
async fn a_denied_address_gets_a_rude_rejection_and_the_disconnect_notice() {
    let node = Simulator::spawn(NodeConfig {
        acl: Acl::Deny,
        ..cfg()
    })
    .await
    .unwrap();
    let mut raw = Raw::connect(&node).await;
    let first = raw.frame().await.unwrap();
    assert_eq!(
        first,
        b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"
    );
    let second = raw.frame().await.unwrap();
    assert!(second.starts_with(b"Content-Type: text/disconnect-notice\n"));
    assert_eq!(raw.frame().await, None);
}

#[tokio::test]
async fn heartbeat_events_carry_the_captured_headers_in_the_captured_order() {
    let node = Simulator::spawn(cfg()).await.unwrap();
    let mut raw = Raw::connect(&node).await;
    raw.frame().await.unwrap();
    raw.send(b"auth ClueCon\n\nevent plain HEARTBEAT\n\n").await;
    raw.frame().await.unwrap();
    assert_eq!(
        raw.frame().await.unwrap(),
        b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n"
    );
    let got = raw.frame().await.unwrap();
    let expected = segments(&capture("01_idle_basic"))
        .into_iter()
        .find_map(|s| match s {
            Seg::Recv(b) if b.starts_with(b"Content-Length") => Some(b),
            _ => None,
        })
        .unwrap();
    let names = |frame: &[u8]| -> Vec<String> {
        let f = Frame::parse(&Bytes::copy_from_slice(frame), &Limits::default()).unwrap();
        let outer: Vec<String> = f.headers.iter().map(|(k, _)| k.to_string()).collect();
        let ev = pairscale_esl::Event::from_frame(&f).unwrap().unwrap();
        outer
            .into_iter()
            .chain(ev.headers.iter().map(|(k, _)| k.to_string()))
            .collect()
    };
    assert_eq!(names(&got), names(&expected));
}
