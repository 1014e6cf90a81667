//! Scaling lock semantics: who may take it, when it is stale, and how fencing tokens grow.
//!
//! The store (DynamoDB) enforces these rules with conditional writes; this module states them
//! once, so the adapter and its tests agree on what "held", "expired" and "stale" mean.

use crate::error::{Error, Result};
use crate::ids::{FleetName, Owner, Timestamp};
use serde::{Deserialize, Serialize};

/// Lock time-to-live bounds: long enough for one polling step, short enough that an orphan
/// does not block scaling for long. Drains heartbeat the lock to outlast any fixed TTL.
pub const MIN_TTL_SECS: u64 = 30;
pub const MAX_TTL_SECS: u64 = 6 * 3600;

/// The lock as stored. A released lock keeps its item (and its token) with no holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LockRecord {
    pub fleet: FleetName,
    /// `None` once released or broken.
    pub holder: Option<String>,
    pub token: u64,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
    pub heartbeat_at: Option<Timestamp>,
    /// What the holder is doing, for whoever finds the lock held.
    pub request: Option<String>,
    pub released_at: Option<Timestamp>,
    pub broken: Option<BreakRecord>,
}

impl LockRecord {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }

    /// Held by someone, and not expired.
    pub fn is_held(&self, now: Timestamp) -> bool {
        self.holder.is_some() && !self.is_expired(now)
    }

    pub fn held_by(&self, owner: &Owner) -> bool {
        self.holder.as_deref() == Some(owner.as_str())
    }
}

/// Who broke a stale lock, when and why: kept on the lock item for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BreakRecord {
    pub broken_by: String,
    pub broken_at: Timestamp,
    pub previous_holder: String,
    pub previous_token: u64,
    pub reason: String,
}

/// A successful acquisition or heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LockGrant {
    pub fleet: FleetName,
    pub owner: String,
    pub token: u64,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
    /// True when the owner already held the lock (a retried acquire).
    pub reacquired: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseOutcome {
    Released,
    /// The owner had already released it (a retried release), or it was broken since.
    AlreadyReleased,
}

/// A Step Functions execution's status, as far as lock liveness is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
    /// No such execution (deleted, or never existed).
    NotFound,
}

/// Why a lock may be broken, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    NotHeld,
    Expired { expired_at: Timestamp },
    OwnerFinished { status: ExecutionStatus },
    Live { why: String },
}

/// Decide whether a lock may be broken. `owner_status` is the holder's execution status when
/// the holder is an execution ARN (looked up by the caller), `None` otherwise.
pub fn staleness(
    record: &LockRecord,
    now: Timestamp,
    owner_status: Option<ExecutionStatus>,
) -> Staleness {
    let Some(holder) = &record.holder else {
        return Staleness::NotHeld;
    };
    if record.is_expired(now) {
        return Staleness::Expired {
            expired_at: record.expires_at,
        };
    }
    match owner_status {
        Some(ExecutionStatus::Running) => Staleness::Live {
            why: format!(
                "holder {holder} is still RUNNING and the lock expires at {}",
                record.expires_at.rfc3339()
            ),
        },
        Some(ExecutionStatus::PendingRedrive) => Staleness::Live {
            why: format!("holder {holder} is PENDING_REDRIVE and may resume"),
        },
        Some(status) => Staleness::OwnerFinished { status },
        None => Staleness::Live {
            why: format!(
                "holder {holder} is not an execution and the lock expires at {}",
                record.expires_at.rfc3339()
            ),
        },
    }
}

/// The next fencing token: greater than the last one, and never below the clock in
/// milliseconds, so tokens keep growing even if the lock item is deleted by DynamoDB's TTL.
pub fn next_token(previous: Option<u64>, now: Timestamp) -> u64 {
    let floor = now.millis().max(0) as u64;
    match previous {
        Some(p) => (p + 1).max(floor),
        None => floor.max(1),
    }
}

pub fn validate_ttl(ttl_secs: u64) -> Result<u64> {
    if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl_secs) {
        return Err(Error::invalid(
            "ttl_seconds",
            ttl_secs,
            format!("must be {MIN_TTL_SECS}..={MAX_TTL_SECS}"),
        ));
    }
    Ok(ttl_secs)
}

/// The error for a lock someone else holds, naming them.
/// Whether the run `fence` names still holds the lock `record` shows at `now`: the same
/// holder, the same token and not expired. A node action checks it just before it acts, so a
/// run that lost its lock (released, expired, broken or taken over) cannot hang up calls or
/// put back nodes the new holder is draining; `Pairscale.LockLost` says what holds it now.
pub fn check_fence(
    fleet: &FleetName,
    record: Option<&LockRecord>,
    fence: &crate::state::Fence,
    now: Timestamp,
) -> Result<()> {
    let lost = |now_held: String| Error::LockLost {
        fleet: fleet.to_string(),
        owner: fence.owner.to_string(),
        token: fence.token,
        now: now_held,
    };
    let Some(r) = record else {
        return Err(lost("the fleet has no lock".into()));
    };
    match r.holder.as_deref() {
        None => Err(lost(match &r.broken {
            Some(b) => format!("broken by {}", b.broken_by),
            None => "released".into(),
        })),
        Some(h) if h != fence.owner.as_str() || r.token != fence.token => {
            Err(lost(format!("held by {h} with token {}", r.token)))
        }
        Some(_) if r.is_expired(now) => Err(lost(format!("expired at {}", r.expires_at.rfc3339()))),
        Some(_) => Ok(()),
    }
}

pub fn held_error(record: &LockRecord) -> Error {
    Error::LockHeld {
        fleet: record.fleet.to_string(),
        holder: record.holder.clone().unwrap_or_else(|| "nobody".into()),
        token: record.token,
        expires_at: record.expires_at.rfc3339(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: Option<&str>, expires: i64) -> LockRecord {
        LockRecord {
            fleet: FleetName::parse("voice").expect("fleet"),
            holder: holder.map(str::to_string),
            token: 7,
            acquired_at: Timestamp(0),
            expires_at: Timestamp(expires),
            heartbeat_at: None,
            request: None,
            released_at: None,
            broken: None,
        }
    }

    const ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:m:run";

    #[test]
    fn only_the_live_holder_with_its_token_passes_the_fence() {
        let fleet = FleetName::parse("voice").expect("fleet");
        let fence = crate::state::Fence {
            owner: Owner::parse(ARN).expect("owner"),
            token: 7,
        };
        let now = Timestamp(5_000);
        let check =
            |r: Option<&LockRecord>, f: &crate::state::Fence| check_fence(&fleet, r, f, now);
        assert_eq!(check(Some(&record(Some(ARN), 10_000)), &fence), Ok(()));
        let why = |r: Option<&LockRecord>, f: &crate::state::Fence| {
            let e = check(r, f).expect_err("lost");
            assert_eq!(e.name(), crate::error::ErrorName::LockLost);
            e.to_string()
        };
        assert!(why(None, &fence).contains("no lock"));
        assert!(why(Some(&record(None, 10_000)), &fence).contains("released"));
        assert!(why(Some(&record(Some("cli:bob"), 10_000)), &fence).contains("held by cli:bob"));
        let stale = crate::state::Fence {
            token: 6,
            ..fence.clone()
        };
        assert!(why(Some(&record(Some(ARN), 10_000)), &stale).contains("token 7"));
        assert!(why(Some(&record(Some(ARN), 5_000)), &fence).contains("expired"));
        let mut broken = record(None, 10_000);
        broken.broken = Some(BreakRecord {
            broken_by: "cli:alice".into(),
            broken_at: Timestamp(4_000),
            previous_holder: ARN.into(),
            previous_token: 7,
            reason: "stuck".into(),
        });
        let text = why(Some(&broken), &fence);
        assert!(
            text.contains("broken by cli:alice") && text.contains("nothing was done"),
            "{text}"
        );
    }

    #[test]
    fn a_live_running_holder_is_never_stale() {
        let r = record(Some(ARN), 10_000);
        assert!(matches!(
            staleness(&r, Timestamp(5_000), Some(ExecutionStatus::Running)),
            Staleness::Live { .. }
        ));
        assert!(matches!(
            staleness(&r, Timestamp(5_000), None),
            Staleness::Live { .. }
        ));
        assert!(matches!(
            staleness(&r, Timestamp(5_000), Some(ExecutionStatus::PendingRedrive)),
            Staleness::Live { .. }
        ));
    }

    #[test]
    fn an_expired_or_finished_holder_is_stale() {
        let r = record(Some(ARN), 10_000);
        assert!(matches!(
            staleness(&r, Timestamp(10_000), Some(ExecutionStatus::Running)),
            Staleness::Expired { .. }
        ));
        for s in [
            ExecutionStatus::Aborted,
            ExecutionStatus::Failed,
            ExecutionStatus::Succeeded,
            ExecutionStatus::NotFound,
        ] {
            assert_eq!(
                staleness(&r, Timestamp(1), Some(s)),
                Staleness::OwnerFinished { status: s }
            );
        }
        assert_eq!(
            staleness(&record(None, 10_000), Timestamp(1), None),
            Staleness::NotHeld
        );
    }

    #[test]
    fn tokens_always_grow() {
        assert!(next_token(None, Timestamp(0)) >= 1);
        assert_eq!(next_token(Some(5), Timestamp(3)), 6);
        assert_eq!(next_token(Some(5), Timestamp(1_000)), 1_000);
        // After the item is gone, the clock keeps tokens above any earlier one.
        let earlier = next_token(None, Timestamp(1_000));
        assert!(next_token(None, Timestamp(2_000)) > earlier);
    }

    #[test]
    fn ttl_bounds_are_enforced() {
        assert!(validate_ttl(29).is_err());
        assert!(validate_ttl(30).is_ok());
        assert!(validate_ttl(MAX_TTL_SECS + 1).is_err());
    }
}
