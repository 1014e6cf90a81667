//! `MediaNodes` over the Event Socket.
//!
//! Each visit opens one session, runs its few commands and drops it: a drain looks at a node
//! every few seconds at most, and a session that is not kept cannot go stale or pile up.
//! A Lambda has 1,024 file descriptors, so at most `concurrency` nodes are visited at once
//! (a semaphore); the per-node timeout starts only once a visit has its permit, so a node
//! queued behind 63 others is not timed out for waiting its turn.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use pairscale_core::canary::{CanaryCall, Mos};
use pairscale_core::ports::{DrainState, Hangup, MediaNodes, NodeHealth, NodeSnapshot};
use pairscale_core::{Error, HangupCause, Result, Timestamp};
use pairscale_esl::{Client, ClientOptions, Direction, Event, EventFormat, Password};
use tokio::sync::Semaphore;
use tracing::{debug, instrument};

/// The default bound on nodes visited at once: a quarter of a Lambda's 1,024 descriptors'
/// worth of headroom, and enough to check a thousand nodes within a second on loopback.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// The default bound on one visit (connect, authenticate, commands).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a canary call may ring before it counts as not answered.
pub const CANARY_ANSWER_SECONDS: u32 = 10;
/// How long after its hangup FreeSWITCH may take to report a canary call's end.
const CANARY_REPORT_WAIT: Duration = Duration::from_secs(5);

/// FreeSWITCH nodes reached through `mod_event_socket`, all with the same password.
pub struct EslNodes {
    password: Password,
    timeout: Duration,
    permits: Arc<Semaphore>,
    concurrency: usize,
}

impl std::fmt::Debug for EslNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EslNodes")
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl EslNodes {
    /// `concurrency` is clamped to at least 1.
    pub fn new(password: Password, concurrency: usize, timeout: Duration) -> Self {
        let concurrency = concurrency.max(1);
        EslNodes {
            password,
            timeout,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
        }
    }

    async fn connect(&self, endpoint: &str) -> pairscale_esl::Result<Client> {
        let opts = ClientOptions {
            connect_timeout: self.timeout,
            command_timeout: self.timeout,
            ..ClientOptions::default()
        };
        Client::connect(endpoint, &self.password, opts).await
    }

    /// Runs one visit with a permit and under the per-node timeout, naming the node in any
    /// failure.
    async fn visit<T>(
        &self,
        endpoint: &str,
        visit: impl Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::internal("the node semaphore was closed"))?;
        match tokio::time::timeout(self.timeout, visit).await {
            Ok(r) => r,
            Err(_) => Err(unreachable(
                endpoint,
                format!("no answer within {} ms", self.timeout.as_millis()),
            )),
        }
    }
}

fn unreachable(endpoint: &str, message: impl Into<String>) -> Error {
    Error::NodeUnreachable {
        node: endpoint.to_string(),
        message: message.into(),
    }
}

/// Every ESL failure is the node's: refused, timed out, closed, garbled or saying no. Never a
/// reason to think it drained.
fn esl_err(endpoint: &str) -> impl Fn(pairscale_esl::Error) -> Error + '_ {
    move |e| match e {
        // The client refused to send a command: a bug here, not the node's fault.
        pairscale_esl::Error::InvalidArgument(what) => Error::internal(format!(
            "an Event Socket command was refused before sending: {what}"
        )),
        other => unreachable(endpoint, other.to_string()),
    }
}

/// The node's channels as a count that never says zero with a call up. `show channels count`
/// is answered from FreeSWITCH's core database, written in the background: under a burst it
/// reads 0 for a while with calls up, and after `hupall` it still counts what was cut. The
/// session count `status` reports is held in memory and never lags; a node is counted by the
/// larger of both, and by the session count alone when the core database is off
/// (`-ERR SQL disabled`).
async fn live_channels(c: &mut Client) -> std::result::Result<u64, pairscale_esl::Error> {
    let sessions = c.status().await?.sessions;
    let counted = match c.channel_count().await {
        Ok(n) => n,
        Err(pairscale_esl::Error::CommandFailed { reply, .. })
            if reply.contains("SQL disabled") =>
        {
            sessions
        }
        Err(other) => return Err(other),
    };
    Ok(sessions.max(counted))
}

#[async_trait]
impl MediaNodes for EslNodes {
    #[instrument(skip(self), fields(node = %endpoint))]
    async fn snapshot(&self, endpoint: &str, now: Timestamp) -> Result<NodeSnapshot> {
        let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(now.millis()).unwrap_or(0));
        self.visit(endpoint, async {
            let mut c = self.connect(endpoint).await.map_err(esl_err(endpoint))?;
            let channels = c.channels().await.map_err(esl_err(endpoint))?;
            let status = c.status().await.map_err(esl_err(endpoint))?;
            Ok(NodeSnapshot {
                channel_ages_secs: channels.iter().map(|ch| ch.age(at).as_secs()).collect(),
                sessions_since_startup: Some(status.sessions_since_startup),
            })
        })
        .await
    }

    #[instrument(skip(self), fields(node = %endpoint))]
    async fn health(&self, endpoint: &str) -> Result<NodeHealth> {
        self.visit(endpoint, async {
            let mut c = self.connect(endpoint).await.map_err(esl_err(endpoint))?;
            let st = c.status().await.map_err(esl_err(endpoint))?;
            Ok(NodeHealth {
                ready: st.ready,
                sessions: st.sessions,
                max_sessions: st.max_sessions,
                idle_cpu: st.idle_cpu,
            })
        })
        .await
    }

    #[instrument(skip(self), fields(node = %endpoint))]
    async fn drain_state(&self, endpoint: &str) -> Result<DrainState> {
        self.visit(endpoint, async {
            let e = esl_err(endpoint);
            let mut c = self.connect(endpoint).await.map_err(&e)?;
            let paused = c.pause_check(None).await.map_err(&e)?;
            let channels = live_channels(&mut c).await.map_err(&e)?;
            debug!(channels, paused, "drain state");
            Ok(DrainState { channels, paused })
        })
        .await
    }

    #[instrument(skip(self), fields(node = %endpoint))]
    async fn pause(&self, endpoint: &str) -> Result<bool> {
        self.visit(endpoint, async {
            let e = esl_err(endpoint);
            let mut c = self.connect(endpoint).await.map_err(&e)?;
            if c.pause_check(None).await.map_err(&e)? {
                return Ok(true);
            }
            c.pause(Direction::Inbound).await.map_err(&e)?;
            c.pause(Direction::Outbound).await.map_err(&e)?;
            let inbound = c.pause_check(Some(Direction::Inbound)).await.map_err(&e)?;
            let outbound = c.pause_check(Some(Direction::Outbound)).await.map_err(&e)?;
            if !(inbound && outbound) {
                return Err(unreachable(
                    endpoint,
                    format!(
                        "pause not confirmed: pause_check inbound {inbound}, outbound {outbound}"
                    ),
                ));
            }
            Ok(false)
        })
        .await
    }

    #[instrument(skip(self), fields(node = %endpoint))]
    async fn resume(&self, endpoint: &str) -> Result<bool> {
        self.visit(endpoint, async {
            let e = esl_err(endpoint);
            let mut c = self.connect(endpoint).await.map_err(&e)?;
            let was_in = c.pause_check(Some(Direction::Inbound)).await.map_err(&e)?;
            let was_out = c.pause_check(Some(Direction::Outbound)).await.map_err(&e)?;
            if was_in {
                c.resume(Direction::Inbound).await.map_err(&e)?;
            }
            if was_out {
                c.resume(Direction::Outbound).await.map_err(&e)?;
            }
            let inbound = c.pause_check(Some(Direction::Inbound)).await.map_err(&e)?;
            let outbound = c.pause_check(Some(Direction::Outbound)).await.map_err(&e)?;
            if inbound || outbound {
                return Err(unreachable(
                    endpoint,
                    format!(
                        "resume not confirmed: pause_check inbound {inbound}, outbound {outbound}"
                    ),
                ));
            }
            Ok(was_in || was_out)
        })
        .await
    }

    #[instrument(skip(self), fields(node = %endpoint))]
    async fn hupall(&self, endpoint: &str, cause: HangupCause) -> Result<Hangup> {
        self.visit(endpoint, async {
            let e = esl_err(endpoint);
            let mut c = self.connect(endpoint).await.map_err(&e)?;
            let cut = live_channels(&mut c).await.map_err(&e)?;
            let used = c.hupall(cause).await.map_err(&e)?;
            let remaining = live_channels(&mut c).await.map_err(&e)?;
            Ok(Hangup {
                cut,
                remaining,
                cause: used.cause,
            })
        })
        .await
    }

    /// The node calls `dial_string` with `originate`, which returns once the call is answered
    /// (or says why it was not); the call's end is read from its `CHANNEL_HANGUP_COMPLETE`
    /// event, filtered by the call's own id, which carries the receive statistics FreeSWITCH
    /// writes into the calling leg's variables at hangup.
    #[instrument(skip(self), fields(node = %endpoint))]
    async fn canary(&self, endpoint: &str, dial_string: &str, seconds: u32) -> Result<CanaryCall> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::internal("the node semaphore was closed"))?;
        let e = esl_err(endpoint);
        let call_time = Duration::from_secs(u64::from(seconds));
        let answer_time = Duration::from_secs(u64::from(CANARY_ANSWER_SECONDS));
        let opts = ClientOptions {
            connect_timeout: self.timeout,
            // `originate` holds the socket until the call is answered or given up.
            command_timeout: answer_time + self.timeout,
            ..ClientOptions::default()
        };
        let mut c = Client::connect(endpoint, &self.password, opts)
            .await
            .map_err(&e)?;
        let id = uuid::Uuid::new_v4().to_string();
        c.subscribe(EventFormat::Plain, &["CHANNEL_HANGUP_COMPLETE"])
            .await
            .map_err(&e)?;
        c.filter("Unique-ID", &id).await.map_err(&e)?;
        let reply = c
            .api_raw(&format!(
                "originate {{origination_uuid={id},originate_timeout={CANARY_ANSWER_SECONDS},\
                 ignore_early_media=true,origination_caller_id_number=pairscale-canary}}\
                 {dial_string} &park()"
            ))
            .await
            .map_err(&e)?;
        let reply = reply.trim();
        if let Some(cause) = reply.strip_prefix("-ERR") {
            debug!(reply, "canary not answered");
            return Ok(CanaryCall {
                answered: false,
                hangup_cause: cause.trim().to_string(),
                mos: None,
                jitter_max_variance: 0.0,
                loss_percent: 0.0,
                media_packets: 0,
                duration_ms: 0,
            });
        }
        if reply.strip_prefix("+OK").map(str::trim) != Some(id.as_str()) {
            return Err(unreachable(
                endpoint,
                format!("originate answered {reply:?}, not +OK {id}"),
            ));
        }
        let answered_at = std::time::Instant::now();
        // The callee may end the call first (the canary extension's own time limit).
        let ended = match hangup_of(&mut c, &id, call_time).await.map_err(&e)? {
            Some(ev) => ev,
            None => {
                let kill = c
                    .api_raw(&format!("uuid_kill {id} NORMAL_CLEARING"))
                    .await
                    .map_err(&e)?;
                debug!(reply = kill.trim(), "canary hung up");
                hangup_of(&mut c, &id, CANARY_REPORT_WAIT)
                    .await
                    .map_err(&e)?
                    .ok_or_else(|| {
                        unreachable(
                            endpoint,
                            format!(
                                "the canary call {id} was hung up but no CHANNEL_HANGUP_COMPLETE \
                                 came within {} s",
                                CANARY_REPORT_WAIT.as_secs()
                            ),
                        )
                    })?
            }
        };
        let var = |name: &str| ended.get(&format!("variable_{name}"));
        let number = |name: &str| var(name).and_then(|v| v.trim().parse::<f64>().ok());
        Ok(CanaryCall {
            answered: true,
            hangup_cause: ended
                .get("Hangup-Cause")
                .or_else(|| var("hangup_cause"))
                .unwrap_or("UNKNOWN")
                .to_string(),
            mos: number("rtp_audio_in_mos").and_then(Mos::from_f64),
            jitter_max_variance: number("rtp_audio_in_jitter_max_variance").unwrap_or(0.0),
            loss_percent: number("rtp_audio_in_jitter_loss_rate").unwrap_or(0.0),
            media_packets: number("rtp_audio_in_media_packet_count").map_or(0, |n| n as u64),
            duration_ms: answered_at.elapsed().as_millis() as u64,
        })
    }
}

/// The `CHANNEL_HANGUP_COMPLETE` of call `id`, if it comes within `wait`.
async fn hangup_of(
    c: &mut Client,
    id: &str,
    wait: Duration,
) -> std::result::Result<Option<Event>, pairscale_esl::Error> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match c.next_event(left).await? {
            None => return Ok(None),
            Some(ev)
                if ev.name() == Some("CHANNEL_HANGUP_COMPLETE")
                    && ev.get("Unique-ID") == Some(id) =>
            {
                return Ok(Some(ev))
            }
            Some(_) => {}
        }
    }
}
