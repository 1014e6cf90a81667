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
use pairscale_core::ports::{DrainState, Hangup, MediaNodes, NodeHealth, NodeSnapshot};
use pairscale_core::{Error, HangupCause, Result, Timestamp};
use pairscale_esl::{Client, ClientOptions, Direction, Password};
use tokio::sync::Semaphore;
use tracing::{debug, instrument};

/// The default bound on nodes visited at once: a quarter of a Lambda's 1,024 descriptors'
/// worth of headroom, and enough to check a thousand nodes within a second on loopback.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// The default bound on one visit (connect, authenticate, commands).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

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
            Ok(NodeSnapshot {
                channel_ages_secs: channels.iter().map(|ch| ch.age(at).as_secs()).collect(),
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
}
