//! The routing proof: real calls through the real Kamailio. Two tiny UDP user agents stand in
//! for media servers in a dispatcher set; sipp's built-in UAC places calls through Kamailio
//! (its R-URI user, `-s SET`, selects the set in kamailio.cfg, so each test has its own); each agent
//! counts the INVITEs and BYEs it answered. A disabled destination gets no new calls, keeps the
//! calls it has until they end, and once enabled shares new calls again.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{clear_sets, dispatcher, env, SIP_PORT_ENV};
use pairscale_dispatcher::Destination;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

const CALLS: usize = 20;
/// Bound on one sipp run (20 calls at 10 per second take about 2 s, plus the hold time).
const SIPP_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Seen {
    invites: HashSet<String>,
    byes: HashSet<String>,
}

/// A user agent server that answers every INVITE and BYE with 200 and remembers Call-IDs.
struct Uas {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Uas {
    async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind uas");
        let addr = socket.local_addr().expect("uas addr");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let task = tokio::spawn(serve(socket, addr, seen.clone()));
        Self { addr, seen, task }
    }

    /// (INVITEs, BYEs) answered so far, counted by Call-ID.
    fn counts(&self) -> (usize, usize) {
        let seen = self.seen.lock().expect("uas state");
        (seen.invites.len(), seen.byes.len())
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(socket: UdpSocket, addr: SocketAddr, seen: Arc<Mutex<Seen>>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let Ok(text) = std::str::from_utf8(&buf[..n]) else {
            continue;
        };
        let Some(request) = Request::parse(text) else {
            continue; // a response, or noise
        };
        let reply = match request.method.as_str() {
            "ACK" => continue,
            "INVITE" => {
                seen.lock()
                    .expect("uas state")
                    .invites
                    .insert(request.call_id.clone());
                request.ok(addr)
            }
            "BYE" => {
                seen.lock()
                    .expect("uas state")
                    .byes
                    .insert(request.call_id.clone());
                request.ok(addr)
            }
            _ => request.ok(addr),
        };
        let _ = socket.send_to(reply.as_bytes(), from).await;
    }
}

struct Request {
    method: String,
    call_id: String,
    /// Via, From, To, Call-ID, CSeq: copied into the response, Vias in order.
    echoed: Vec<(String, String)>,
}

impl Request {
    fn parse(text: &str) -> Option<Self> {
        let head = text.split("\r\n\r\n").next()?;
        let mut lines = head.split("\r\n");
        let first = lines.next()?;
        if first.starts_with("SIP/2.0") {
            return None;
        }
        let method = first.split(' ').next()?.to_string();
        let mut echoed = Vec::new();
        let mut call_id = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim().to_string();
            let name = match name.trim().to_ascii_lowercase().as_str() {
                "via" | "v" => "Via",
                "from" | "f" => "From",
                "to" | "t" => "To",
                "call-id" | "i" => {
                    call_id = Some(value.clone());
                    "Call-ID"
                }
                "cseq" => "CSeq",
                _ => continue,
            };
            echoed.push((name.to_string(), value));
        }
        Some(Self {
            method,
            call_id: call_id?,
            echoed,
        })
    }

    fn ok(&self, contact: SocketAddr) -> String {
        let mut out = String::from("SIP/2.0 200 OK\r\n");
        for (name, value) in &self.echoed {
            let value = if name == "To" && !value.contains(";tag=") {
                format!("{value};tag=uas-{}", contact.port())
            } else {
                value.clone()
            };
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!(
            "Contact: <sip:{contact}>\r\nContent-Length: 0\r\n\r\n"
        ));
        out
    }
}

/// Places `CALLS` calls through Kamailio with sipp's built-in UAC, each held `hold_ms` before
/// its BYE, and waits for them, bounded. Ok when every call succeeded (sipp's exit status).
async fn place_calls(kamailio_sip_port: u16, set: i32, hold_ms: u32) -> Result<(), String> {
    let mut child = tokio::process::Command::new("sipp")
        .arg(format!("127.0.0.1:{kamailio_sip_port}"))
        .args(["-sn", "uac", "-i", "127.0.0.1", "-nostdin", "-s", &set.to_string()])
        .args(["-m", &CALLS.to_string(), "-r", "10", "-d", &hold_ms.to_string()])
        .args(["-recv_timeout", "10000", "-timeout", "40s", "-timeout_error"])
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot start sipp ({e}); it comes with Debian's sip-tester, which ./tests/run installs")
        })?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let status = match tokio::time::timeout(SIPP_DEADLINE, child.wait()).await {
        Ok(status) => status.map_err(|e| format!("waiting for sipp: {e}"))?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(format!("sipp still running after {SIPP_DEADLINE:?}"));
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err).await;
    Err(format!("sipp exited with {status}: {err}"))
}

/// Calls each agent received during one run of `place_calls`: (INVITEs, BYEs) per agent.
async fn run(port: u16, set: i32, a: &Uas, b: &Uas) -> [(usize, usize); 2] {
    let (a0, b0) = (a.counts(), b.counts());
    place_calls(port, set, 0)
        .await
        .expect("every call completes");
    let (a1, b1) = (a.counts(), b.counts());
    [(a1.0 - a0.0, a1.1 - a0.1), (b1.0 - b0.0, b1.1 - b0.1)]
}

/// Two fresh agents registered in `set`, and nothing else there.
async fn two_agents_in(set: i32) -> (Uas, Destination, Uas, Destination) {
    clear_sets(&[set]).await;
    let disp = dispatcher();
    disp.reload().await.expect("reload");
    let a = Uas::start().await;
    let b = Uas::start().await;
    let da = Destination::new(set, format!("sip:{}", a.addr), "pair-a").expect("valid");
    let db = Destination::new(set, format!("sip:{}", b.addr), "pair-b").expect("valid");
    disp.register(&da).await.expect("register a");
    disp.register(&db).await.expect("register b");
    (a, da, b, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_destination_gets_no_new_calls_and_shares_them_again_once_enabled() {
    const SET: i32 = 11;
    let port: u16 = env(SIP_PORT_ENV)
        .parse()
        .expect("KAMAILIO_SIP_PORT is a port");
    let disp = dispatcher();
    let (a, da, b, db) = two_agents_in(SET).await;

    // Both in rotation: every call reaches exactly one of them, and both get some.
    let [(ia, ba), (ib, bb)] = run(port, SET, &a, &b).await;
    assert_eq!(ia + ib, CALLS, "a got {ia}, b got {ib}");
    assert!(ia > 0 && ib > 0, "calls not shared: a got {ia}, b got {ib}");
    // The BYEs went where their INVITEs went.
    assert_eq!((ba, bb), (ia, ib));

    // A out of rotation: none of the next calls reach it.
    disp.disable(&da).await.expect("disable a");
    let [(ia, ba), (ib, bb)] = run(port, SET, &a, &b).await;
    assert_eq!((ia, ba), (0, 0), "disabled destination got calls");
    assert_eq!((ib, bb), (CALLS, CALLS));

    // Back in rotation: shared again.
    disp.enable(&da).await.expect("enable a");
    let [(ia, _), (ib, _)] = run(port, SET, &a, &b).await;
    assert_eq!(ia + ib, CALLS, "a got {ia}, b got {ib}");
    assert!(
        ia > 0 && ib > 0,
        "calls not shared after enable: a got {ia}, b got {ib}"
    );

    disp.deregister(&da).await.expect("cleanup a");
    disp.deregister(&db).await.expect("cleanup b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_already_on_a_destination_end_there_after_it_is_disabled() {
    const SET: i32 = 12;
    let port: u16 = env(SIP_PORT_ENV)
        .parse()
        .expect("KAMAILIO_SIP_PORT is a port");
    let disp = dispatcher();
    let (a, da, b, db) = two_agents_in(SET).await;

    // Calls held 5 s each; all 20 start within about 2 s.
    let calls = tokio::spawn(place_calls(port, SET, 5_000));
    for _ in 0..200 {
        if a.counts().0 > 0 || calls.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(a.counts().0 > 0, "no call reached a before the disable");

    disp.disable(&da).await.expect("disable a");
    let (invites_before, byes_before) = a.counts();
    assert_eq!(
        byes_before, 0,
        "a call on a already ended before the disable: the test proves nothing (hold too short?)"
    );

    calls
        .await
        .expect("sipp task")
        .expect("every call completes, those on the disabled destination included");
    let (invites, byes) = a.counts();
    assert!(invites >= invites_before);
    assert_eq!(byes, invites, "calls on a did not end on a");
    let (b_invites, b_byes) = b.counts();
    assert_eq!(invites + b_invites, CALLS);
    assert_eq!(b_byes, b_invites);

    disp.deregister(&da).await.expect("cleanup a");
    disp.deregister(&db).await.expect("cleanup b");
}
