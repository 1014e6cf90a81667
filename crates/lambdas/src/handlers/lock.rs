//! `pairscale-lock`: acquire, release, heartbeat, break_stale (and `show`, for the CLI).

use crate::contract::{contract, Fields, FleetInput};
use crate::metrics::{Metrics, LOCK_AGE_SECONDS};
use pairscale_core::lock::{validate_ttl, LockGrant, LockRecord, ReleaseOutcome};
use pairscale_core::ports::{AcquireLock, Clock, ExecutionRegistry, LockStore};
use pairscale_core::service::{break_stale, BreakOutcome};
use pairscale_core::{Error, FleetName, Owner, Result, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// The longest `reason` a `break_stale` may give.
pub const MAX_REASON_LEN: usize = 500;

#[derive(Clone)]
pub struct LockHandler {
    pub locks: Arc<dyn LockStore>,
    pub executions: Arc<dyn ExecutionRegistry>,
    pub clock: Arc<dyn Clock>,
    pub default_ttl_secs: u64,
    /// `LockAgeSeconds` on every acquire and heartbeat (0 on release), for the dashboard.
    pub metrics: Metrics,
}

impl std::fmt::Debug for LockHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockHandler")
            .field("default_ttl_secs", &self.default_ttl_secs)
            .finish()
    }
}

contract! {
    /// The input of `pairscale-lock`.
    pub enum LockAction for LockHandler {
        /// Take the lock when it is free or expired; a retried acquire keeps the token.
        "acquire" => Acquire(AcquireInput) -> LockGrant = acquire,
        /// Let the lock go; releasing it again is a success.
        "release" => Release(ReleaseInput) -> Released = release,
        /// Push the expiry forward; only the holder may.
        "heartbeat" => Heartbeat(HeartbeatInput) -> LockGrant = heartbeat,
        /// Break the lock when its holder has expired or is no longer running.
        "break_stale" => BreakStale(BreakStaleInput) -> BreakOutcome = break_stale,
        /// The lock as stored.
        "show" => Show(FleetInput) -> Shown = show,
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquireInput {
    pub fleet: FleetName,
    pub owner: Owner,
    /// The handler's default (`PAIRSCALE_LOCK_TTL_SECONDS`) when absent.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// What the run is for, shown to whoever finds the lock held: the execution's input.
    #[serde(default)]
    pub request: Option<Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInput {
    pub fleet: FleetName,
    pub owner: Owner,
    /// The run is over: its journal is marked finished (nothing for a later run to recover)
    /// before the lock is released. False for a run whose compensation did not finish: the
    /// next run recovers what it left.
    #[serde(default = "finished_by_default")]
    pub finished: bool,
}

fn finished_by_default() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatInput {
    pub fleet: FleetName,
    pub owner: Owner,
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakStaleInput {
    pub fleet: FleetName,
    /// Who breaks it: the execution that found it stale, or `cli:<user>`.
    pub breaker: Owner,
    pub reason: String,
}

impl Fields for AcquireInput {}
impl Fields for ReleaseInput {}
impl Fields for HeartbeatInput {}
impl Fields for BreakStaleInput {}

/// What `release` did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Released {
    pub fleet: FleetName,
    pub owner: Owner,
    pub outcome: ReleaseOutcome,
}

/// The lock of a fleet, if it has one, and whether it is held now.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Shown {
    pub fleet: FleetName,
    pub lock: Option<LockRecord>,
    pub held: bool,
}

impl LockHandler {
    fn lock_age(&self, fleet: &FleetName, acquired_at: Timestamp, now: Timestamp) {
        let age = (now.millis() - acquired_at.millis()).max(0) as f64 / 1000.0;
        self.metrics
            .put(fleet, LOCK_AGE_SECONDS, age, "Seconds", now);
    }

    async fn acquire(&self, a: AcquireInput) -> Result<LockGrant> {
        let now = self.clock.now();
        let ttl = validate_ttl(a.ttl_seconds.unwrap_or(self.default_ttl_secs))?;
        if let Some(r) = &a.request {
            pairscale_core::request::check_request_size(r)?;
        }
        let request = match a.request {
            None => String::new(),
            Some(Value::String(s)) => s,
            Some(v) => v.to_string(),
        };
        let grant = self
            .locks
            .acquire(&AcquireLock {
                fleet: a.fleet.clone(),
                owner: a.owner,
                ttl_secs: ttl,
                request,
                now,
            })
            .await?;
        self.lock_age(&a.fleet, grant.acquired_at, now);
        Ok(grant)
    }

    async fn release(&self, r: ReleaseInput) -> Result<Released> {
        let now = self.clock.now();
        if r.finished {
            // First, while the lock is still ours: a release that dies in between leaves a
            // finished run and a lock that expires, never a lock released on unfinished work
            // nobody will come back for.
            self.locks.finish_journal(&r.fleet, &r.owner, now).await?;
        }
        let outcome = self.locks.release(&r.fleet, &r.owner, now).await?;
        self.metrics
            .put(&r.fleet, LOCK_AGE_SECONDS, 0.0, "Seconds", now);
        Ok(Released {
            fleet: r.fleet,
            owner: r.owner,
            outcome,
        })
    }

    async fn heartbeat(&self, h: HeartbeatInput) -> Result<LockGrant> {
        let now = self.clock.now();
        let ttl = validate_ttl(h.ttl_seconds.unwrap_or(self.default_ttl_secs))?;
        let grant = self.locks.heartbeat(&h.fleet, &h.owner, ttl, now).await?;
        self.lock_age(&h.fleet, grant.acquired_at, now);
        Ok(grant)
    }

    async fn break_stale(&self, b: BreakStaleInput) -> Result<BreakOutcome> {
        if b.reason.trim().is_empty() || b.reason.len() > MAX_REASON_LEN {
            return Err(Error::invalid(
                "reason",
                &b.reason,
                format!("say why, in at most {MAX_REASON_LEN} characters"),
            ));
        }
        break_stale(
            self.locks.as_ref(),
            self.executions.as_ref(),
            &b.fleet,
            b.breaker.as_str(),
            &b.reason,
            self.clock.now(),
        )
        .await
    }

    async fn show(&self, s: FleetInput) -> Result<Shown> {
        let lock = self.locks.get(&s.fleet).await?;
        let held = lock.as_ref().is_some_and(|r| r.is_held(self.clock.now()));
        Ok(Shown {
            fleet: s.fleet,
            lock,
            held,
        })
    }
}
