//! Breaking a stale lock: only when its holder can no longer be using it.

use crate::error::{Error, Result};
use crate::ids::{FleetName, Owner, Timestamp};
use crate::lock::{staleness, BreakRecord, ExecutionStatus, Staleness};
use crate::ports::{ExecutionRegistry, LockStore};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct BreakOutcome {
    pub broken: BreakRecord,
    /// Why it was stale: `expired`, or the holder's final execution status.
    pub stale_because: String,
}

/// Break the lock only when its holder can no longer be using it: it has expired, or its
/// execution is no longer running. Never otherwise.
pub async fn break_stale(
    locks: &dyn LockStore,
    executions: &dyn ExecutionRegistry,
    fleet: &FleetName,
    breaker: &str,
    reason: &str,
    now: Timestamp,
) -> Result<BreakOutcome> {
    let record = locks.get(fleet).await?.ok_or_else(|| Error::LockNotStale {
        fleet: fleet.to_string(),
        why: "no lock exists".into(),
    })?;
    let owner_status = match record.holder.as_deref().and_then(|h| Owner::parse(h).ok()) {
        Some(owner) => match owner.execution_arn() {
            Some(arn) => Some(executions.status(arn).await?),
            None => None,
        },
        None => None,
    };
    let stale_because = match staleness(&record, now, owner_status) {
        Staleness::NotHeld => {
            return Err(Error::LockNotStale {
                fleet: fleet.to_string(),
                why: "the lock is not held".into(),
            })
        }
        Staleness::Live { why } => {
            return Err(Error::LockNotStale {
                fleet: fleet.to_string(),
                why,
            })
        }
        Staleness::Expired { expired_at } => format!("expired at {}", expired_at.rfc3339()),
        Staleness::OwnerFinished { status } => {
            format!("holder execution is {}", status_name(status))
        }
    };
    let broken = BreakRecord {
        broken_by: breaker.to_string(),
        broken_at: now,
        previous_holder: record.holder.clone().unwrap_or_default(),
        previous_token: record.token,
        reason: format!("{reason} ({stale_because})"),
    };
    locks.force_release(&record, &broken).await?;
    Ok(BreakOutcome {
        broken,
        stale_because,
    })
}

fn status_name(s: ExecutionStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| format!("{s:?}"))
}
