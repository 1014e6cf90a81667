//! The event socket server of one node: a listener task (which also fires HEARTBEAT), and a
//! task per connection that speaks mod_event_socket's inbound protocol.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::config::{Acl, CoreDb, Direction, Fault, NodeConfig};
use crate::model::{EndReason, NodeState};
use crate::text::{self, SimEvent};

/// Longest command block accepted from a client before the connection is dropped.
const MAX_COMMAND: usize = 64 * 1024;

/// Shared by the listener, the connections and the handle.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) password: String,
    pub(crate) acl: Mutex<Acl>,
    pub(crate) state: Mutex<NodeState>,
    pub(crate) events: broadcast::Sender<Arc<SimEvent>>,
    /// Bumped on restart: every open connection closes.
    pub(crate) generation: watch::Sender<u64>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) connections: AtomicUsize,
    pub(crate) accepted: AtomicU64,
    pub(crate) core_db: CoreDb,
}

impl Node {
    pub(crate) fn new(cfg: &NodeConfig) -> Self {
        Node {
            password: cfg.password.clone(),
            acl: Mutex::new(cfg.acl),
            state: Mutex::new(NodeState::new(cfg, Instant::now())),
            // Small: events are few, and a thousand nodes each hold one of these.
            events: broadcast::channel(64).0,
            generation: watch::channel(0).0,
            shutdown: watch::channel(false).0,
            connections: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            core_db: cfg.core_db,
        }
    }

    /// The state, brought up to date with the call model.
    pub(crate) fn state(&self) -> MutexGuard<'_, NodeState> {
        // A panic while holding the lock cannot leave the counters half-updated in a way
        // that matters to a simulator; keep serving.
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.advance(Instant::now());
        st
    }

    pub(crate) fn acl(&self) -> Acl {
        *self.acl.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fire_heartbeat(&self) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let ev = {
            let mut st = self.state();
            text::heartbeat(&mut st, Instant::now())
        };
        let _ = self.events.send(Arc::new(ev));
    }
}

pub(crate) async fn run_listener(
    listener: TcpListener,
    node: Arc<Node>,
    heartbeat: Option<Duration>,
) {
    let mut shutdown = node.shutdown.subscribe();
    let mut hb = heartbeat.filter(|p| !p.is_zero()).map(|p| {
        let mut i = tokio::time::interval_at(Instant::now() + p, p);
        i.set_missed_tick_behavior(MissedTickBehavior::Delay);
        i
    });
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((stream, peer)) => {
                    debug!(%peer, "accepted");
                    node.accepted.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(serve(stream, node.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = tick(&mut hb) => node.fire_heartbeat(),
            _ = shutdown.changed() => break,
        }
    }
}

async fn tick(hb: &mut Option<Interval>) {
    match hb {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

struct ConnGuard(Arc<Node>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Per-connection protocol state.
#[derive(Debug, Default)]
struct Session {
    authed: bool,
    /// `(json?, names)` once `event` has been sent.
    events: Option<(bool, Vec<String>)>,
    /// `filter <header> <value>`: with any set, only events matching one of them are sent.
    filters: Vec<(String, String)>,
}

impl Session {
    fn wants(&self, ev: &SimEvent) -> Option<bool> {
        let (json, names) = self.events.as_ref()?;
        let named = names.iter().any(|n| n == ev.name || n == "ALL");
        let passes = self.filters.is_empty()
            || self.filters.iter().any(|(h, v)| {
                ev.headers
                    .iter()
                    .any(|(k, x)| k.eq_ignore_ascii_case(h) && x == v)
            });
        (named && passes).then_some(*json)
    }
}

enum Flow {
    Continue,
    Close,
}

async fn serve(stream: TcpStream, node: Arc<Node>) {
    node.connections.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnGuard(node.clone());
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();

    if node.acl() == Acl::Deny {
        info!("connection refused by acl");
        let _ = wr.write_all(text::RUDE_REJECTION).await;
        let _ = wr.write_all(text::DISCONNECT_NOTICE).await;
        let _ = wr.shutdown().await;
        return;
    }
    if node.state().fault == Fault::DropConnections {
        return;
    }
    if wr.write_all(text::AUTH_REQUEST).await.is_err() {
        return;
    }

    let mut reader = CommandReader {
        rd,
        buf: Vec::new(),
    };
    let mut events = node.events.subscribe();
    let mut generation = node.generation.subscribe();
    let mut shutdown = node.shutdown.subscribe();
    let mut sess = Session::default();
    loop {
        tokio::select! {
            cmd = reader.next() => match cmd {
                Ok(Some(block)) => {
                    match handle_command(&node, &mut sess, &mut wr, &block).await {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::Close) | Err(_) => break,
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(error = %e, "dropping connection");
                    break;
                }
            },
            ev = events.recv() => match ev {
                Ok(ev) => {
                    if let Some(json) = sess.wants(&ev) {
                        let bytes = if json { ev.json() } else { ev.plain() };
                        if wr.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(skipped = n, "slow event reader; events dropped");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = generation.changed() => break,
            _ = shutdown.changed() => break,
        }
    }
    let _ = wr.shutdown().await;
}

/// Reads command blocks: lines up to an empty line. CRs are dropped, as FreeSWITCH ignores them.
struct CommandReader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
}

impl CommandReader {
    /// Cancel-safe: bytes read stay in `buf` for the next call.
    async fn next(&mut self) -> std::io::Result<Option<String>> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return Ok(Some(String::from_utf8_lossy(&block).into_owned()));
            }
            if self.buf.len() > MAX_COMMAND {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "command too long",
                ));
            }
            let mut chunk = [0u8; 4096];
            let n = self.rd.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf
                .extend(chunk.iter().take(n).copied().filter(|&b| b != b'\r'));
        }
    }
}

/// Writes a reply, honouring the node's fault mode.
async fn reply(node: &Node, wr: &mut OwnedWriteHalf, bytes: &[u8]) -> std::io::Result<Flow> {
    let fault = node.state().fault;
    match fault {
        Fault::None => {}
        Fault::SlowReplies(d) => tokio::time::sleep(d).await,
        Fault::Hang => return Ok(Flow::Continue),
        Fault::DropConnections => return Ok(Flow::Close),
        Fault::Garbage => {
            wr.write_all(b"\x00\xffthis is not an event socket\n\n")
                .await?;
            return Ok(Flow::Continue);
        }
        Fault::CloseMidReply => {
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            wr.write_all(half).await?;
            return Ok(Flow::Close);
        }
    }
    wr.write_all(bytes).await?;
    Ok(Flow::Continue)
}

async fn handle_command(
    node: &Node,
    sess: &mut Session,
    wr: &mut OwnedWriteHalf,
    block: &str,
) -> std::io::Result<Flow> {
    let mut lines = block.lines();
    let line = lines.next().unwrap_or_default().trim();
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let (word, rest) = match line.split_once(' ') {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let word = word.to_ascii_lowercase();

    if word == "exit" {
        let flow = reply(node, wr, &text::command_reply("+OK bye")).await?;
        if let Flow::Close = flow {
            return Ok(Flow::Close);
        }
        wr.write_all(text::DISCONNECT_NOTICE).await?;
        return Ok(Flow::Close);
    }

    if !sess.authed {
        if word == "auth" {
            if rest == node.password {
                sess.authed = true;
                return reply(node, wr, &text::command_reply("+OK accepted")).await;
            }
            info!("authentication failed");
            let flow = reply(node, wr, &text::command_reply("-ERR invalid")).await?;
            if let Flow::Continue = flow {
                wr.write_all(text::DISCONNECT_NOTICE).await?;
            }
            return Ok(Flow::Close);
        }
        return reply(node, wr, &text::command_reply("-ERR command not found")).await;
    }

    match word.as_str() {
        "api" => {
            let body = run_api(node, rest);
            reply(node, wr, &text::api_response(&body)).await
        }
        "bgapi" => {
            let job = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Job-UUID"))
                .map(|(_, v)| v.to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| node.state().new_uuid());
            let flow = reply(node, wr, &text::bgapi_reply(&job)).await?;
            let result = run_api(node, rest);
            let (cmd, arg) = match rest.split_once(' ') {
                Some((c, a)) => (c, Some(a)),
                None => (rest, None),
            };
            let ev = {
                let mut st = node.state();
                text::background_job(&mut st, Instant::now(), &job, cmd, arg, result)
            };
            let _ = node.events.send(Arc::new(ev));
            Ok(flow)
        }
        "event" => {
            let mut words = rest.split_whitespace().peekable();
            let json = match words.peek().map(|w| w.to_ascii_lowercase()) {
                Some(f) if f == "json" => {
                    words.next();
                    true
                }
                Some(f) if f == "plain" => {
                    words.next();
                    false
                }
                _ => false,
            };
            let fmt = if json { "json" } else { "plain" };
            let mut names = sess.events.take().map(|(_, n)| n).unwrap_or_default();
            names.extend(words.map(|w| w.to_ascii_uppercase()));
            sess.events = Some((json, names));
            reply(
                node,
                wr,
                &text::command_reply(&format!("+OK event listener enabled {fmt}")),
            )
            .await
        }
        "filter" => {
            let reply_text = match rest.split_once(' ') {
                Some((h, v)) if !h.eq_ignore_ascii_case("delete") => {
                    let (h, v) = (h.trim().to_string(), v.trim().to_string());
                    let text = format!("+OK filter added. [{h}]=[{v}]");
                    sess.filters.push((h, v));
                    text
                }
                _ => "-ERR invalid syntax".to_string(),
            };
            reply(node, wr, &text::command_reply(&reply_text)).await
        }
        "noevents" => {
            let text = if sess.events.take().is_some() {
                "+OK no longer listening for events"
            } else {
                "-ERR not listening for events"
            };
            reply(node, wr, &text::command_reply(text)).await
        }
        _ => reply(node, wr, &text::command_reply("-ERR command not found")).await,
    }
}

/// An `api` command's output, as mod_commands would write it.
pub(crate) fn run_api(node: &Node, command: &str) -> String {
    let now = Instant::now();
    let mut words = command.split_whitespace();
    let name = words.next().unwrap_or_default();
    let args: Vec<&str> = words.collect();
    let mut st = node.state();
    match name {
        "status" => text::status(&st, now),
        "version" => format!(
            "FreeSWITCH Version {} (git a88d069 2024-08-02 21:02:27Z 64bit)\n",
            text::VERSION_HEADER
        ),
        "show" if node.core_db == CoreDb::Disabled => "-ERR SQL disabled\n".into(),
        "show" => match args.as_slice() {
            ["calls", "count"] => text::count(st.db_legs(now).filter(|l| l.call_uuid.is_none()).count() as u64),
            ["channels", "count"] => text::count(st.db_legs(now).count() as u64),
            ["calls", "count", "as", "json"] => text::count_json(st.db_legs(now).filter(|l| l.call_uuid.is_none()).count() as u64),
            ["channels", "count", "as", "json"] => text::count_json(st.db_legs(now).count() as u64),
            ["channels", "as", "json"] => text::channels_json(&st, st.db_legs(now).collect()),
            _ => "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status\n".into(),
        },
        "fsctl" if args == ["shutdown", "restart"] => {
            // Connections close once this reply is written, as the process going away
            // closes them.
            st.restart(now);
            node.generation.send_modify(|g| *g += 1);
            "+OK\n".into()
        }
        "fsctl" => fsctl(&mut st, &args),
        // Not FreeSWITCH's: how the simulated calls ended, for tests that judge call losses
        // (a real FreeSWITCH answers `-ERR fssim_call_tally Command not found!`).
        "fssim_call_tally" => format!("{}\n", st.tally.json(st.call_count())),
        "originate" => originate(&mut st, command, now),
        "uuid_kill" => match args.first() {
            None => "-USAGE: <uuid> [cause]\n".into(),
            Some(uuid) => match st.kill_canary(uuid, now) {
                Some(end) => {
                    let ev = text::canary_hangup(&mut st, now, &end);
                    let _ = node.events.send(Arc::new(ev));
                    "+OK\n".into()
                }
                None => "-ERR No such channel!\n".into(),
            },
        },
        "hupall" => {
            let cause = hupall_cause(args.first().copied());
            let cut = st.end_all_because(EndReason::Hupall);
            st.hupall_channels += cut;
            info!(channels = cut, cause, "hupall");
            format!("+OK hangup all channels with cause {cause}\n")
        }
        _ => format!("-ERR {name} Command not found!\n"),
    }
}

/// `originate {origination_uuid=U,...}<dial string> &park()`: a canary call. Replies as
/// mod_commands does: `+OK <uuid>` once answered, or `-ERR <cause>`.
fn originate(st: &mut NodeState, command: &str, now: Instant) -> String {
    let args = command.trim_start_matches("originate").trim();
    let vars = args
        .strip_prefix('{')
        .and_then(|a| a.split_once('}'))
        .map(|(v, _)| v)
        .unwrap_or_default();
    let uuid = vars
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == "origination_uuid")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| st.new_uuid());
    if args.is_empty() {
        return "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n".into();
    }
    match st.originate(&uuid, now) {
        Ok(()) => format!("+OK {uuid}\n"),
        Err(cause) => format!("-ERR {cause}\n"),
    }
}

fn fsctl(st: &mut NodeState, args: &[&str]) -> String {
    let dir = |a: Option<&&str>| match a.map(|s| s.to_ascii_lowercase()) {
        Some(s) if s == "inbound" => Some(Direction::Inbound),
        Some(s) if s == "outbound" => Some(Direction::Outbound),
        _ => None,
    };
    let set = |st: &mut NodeState, d: Option<Direction>, on: bool| match d {
        Some(Direction::Inbound) => st.pause_inbound = on,
        Some(Direction::Outbound) => st.pause_outbound = on,
        None => {
            st.pause_inbound = on;
            st.pause_outbound = on;
        }
    };
    match args.first().map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("pause") => {
            set(st, dir(args.get(1)), true);
            "+OK\n".into()
        }
        Some("resume") => {
            set(st, dir(args.get(1)), false);
            "+OK\n".into()
        }
        Some("pause_check") => {
            let paused = match dir(args.get(1)) {
                Some(d) => st.paused(d),
                // SCF_NO_NEW_SESSIONS is both bits: true only when paused both ways.
                None => st.pause_inbound && st.pause_outbound,
            };
            paused.to_string()
        }
        Some("ready_check") => st.ready().to_string(),
        _ => "-ERR INVALID COMMAND\nUSAGE: fsctl [recover|send_sighup|hupall|pause [inbound|outbound]|resume [inbound|outbound]|shutdown [cancel|elegant|asap|now|restart]|sps|sps_peak_reset|sync_clock|sync_clock_when_idle|reclaim_mem|max_sessions|min_dtmf_duration [num]|max_dtmf_duration [num]|default_dtmf_duration [num]|min_idle_cpu|loglevel [level]|debug_level [level]|mdns_resolve [enable|disable]]\n".into(),
    }
}

/// The cause `hupall` uses, as FreeSWITCH 1.10 picks it (`switch_channel_str2cause`, then
/// `hupall_api_function`): a name from its cause chart in any case; a number as that cause;
/// `NONE` or nothing as `MANAGER_REQUEST`; any other name as `NORMAL_CLEARING`.
fn hupall_cause(arg: Option<&str>) -> &'static str {
    const BY_CODE: &[(u32, &str)] = &[
        (16, "NORMAL_CLEARING"),
        (17, "USER_BUSY"),
        (21, "CALL_REJECTED"),
        (31, "NORMAL_UNSPECIFIED"),
        (503, "SYSTEM_SHUTDOWN"),
        (900, "MANAGER_REQUEST"),
    ];
    let Some(s) = arg.filter(|s| !s.is_empty()) else {
        return "MANAGER_REQUEST";
    };
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        let code: u32 = s
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(0);
        return match code {
            0 => "MANAGER_REQUEST",
            _ => BY_CODE
                .iter()
                .find(|(c, _)| *c == code)
                .map_or("UNKNOWN", |(_, n)| n),
        };
    }
    if s.eq_ignore_ascii_case("NONE") {
        return "MANAGER_REQUEST";
    }
    pairscale_core::hangup::KNOWN_CAUSES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(s))
        .copied()
        .unwrap_or("NORMAL_CLEARING")
}
