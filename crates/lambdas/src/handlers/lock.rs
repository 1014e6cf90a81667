//! `pairscale-lock`: acquire, release, heartbeat, break_stale (and `show`, for the CLI).

use crate::input::{action, parse};
use crate::metrics::{Metrics, LOCK_AGE_SECONDS};
use pairscale_core::lock::validate_ttl;
use pairscale_core::ports::{AcquireLock, Clock, ExecutionRegistry, LockStore};
use pairscale_core::service::break_stale;
use pairscale_core::{Error, FleetName, Owner, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub const ACTIONS: &[&str] = &["acquire", "release", "heartbeat", "break_stale", "show"];

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Acquire {
    fleet: FleetName,
    owner: Owner,
    #[serde(default)]
    ttl_seconds: Option<u64>,
    #[serde(default)]
    request: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Release {
    fleet: FleetName,
    owner: Owner,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Heartbeat {
    fleet: FleetName,
    owner: Owner,
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakStale {
    fleet: FleetName,
    /// Who breaks it: the execution that found it stale, or `cli:<user>`.
    breaker: Owner,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Show {
    fleet: FleetName,
}

impl LockHandler {
    fn lock_age(
        &self,
        fleet: &FleetName,
        acquired_at: pairscale_core::Timestamp,
        now: pairscale_core::Timestamp,
    ) {
        let age = (now.millis() - acquired_at.millis()).max(0) as f64 / 1000.0;
        self.metrics
            .put(fleet, LOCK_AGE_SECONDS, age, "Seconds", now);
    }

    pub async fn handle(&self, input: Value) -> Result<Value> {
        let now = self.clock.now();
        match action(&input, ACTIONS)? {
            "acquire" => {
                let a: Acquire = parse(&input)?;
                let ttl = validate_ttl(a.ttl_seconds.unwrap_or(self.default_ttl_secs))?;
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
                to_json(&grant)
            }
            "release" => {
                let r: Release = parse(&input)?;
                let outcome = self.locks.release(&r.fleet, &r.owner, now).await?;
                self.metrics
                    .put(&r.fleet, LOCK_AGE_SECONDS, 0.0, "Seconds", now);
                Ok(json!({"fleet": r.fleet, "owner": r.owner, "outcome": outcome}))
            }
            "heartbeat" => {
                let h: Heartbeat = parse(&input)?;
                let ttl = validate_ttl(h.ttl_seconds.unwrap_or(self.default_ttl_secs))?;
                let grant = self.locks.heartbeat(&h.fleet, &h.owner, ttl, now).await?;
                self.lock_age(&h.fleet, grant.acquired_at, now);
                to_json(&grant)
            }
            "break_stale" => {
                let b: BreakStale = parse(&input)?;
                if b.reason.trim().is_empty() || b.reason.len() > 500 {
                    return Err(Error::invalid(
                        "reason",
                        &b.reason,
                        "say why, in at most 500 characters",
                    ));
                }
                let out = break_stale(
                    self.locks.as_ref(),
                    self.executions.as_ref(),
                    &b.fleet,
                    b.breaker.as_str(),
                    &b.reason,
                    now,
                )
                .await?;
                to_json(&out)
            }
            "show" => {
                let s: Show = parse(&input)?;
                let rec = self.locks.get(&s.fleet).await?;
                Ok(
                    json!({"fleet": s.fleet, "lock": rec, "held": rec.as_ref().is_some_and(|r| r.is_held(now))}),
                )
            }
            other => Err(Error::internal(format!(
                "action {other} listed but not handled"
            ))),
        }
    }
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::internal(format!("output does not serialise: {e}")))
}
