//! `pairscale lock show|break`.
//!
//! A plain `break` is the core's `break_stale`: only an expired lock, or one whose holder
//! execution is no longer RUNNING. `--force --reason` also breaks a lock whose holder cannot
//! be shown to be gone (an operator's `cli:<who>`, or an execution whose status cannot be
//! read), recorded on the lock item like any break. It never breaks the lock of a RUNNING (or
//! PENDING_REDRIVE) execution: that run would go on working on the fleet beside the next one;
//! stopping it first makes its lock stale, and the stop is recorded in its history.

use super::runs::status_name;
use super::{Ctx, Outcome};
use crate::args::{BreakArgs, FleetArg};
use crate::error::{CliError, Result};
use crate::render::{duration, or_dash, relative, when, Style, View};
use crate::settings::{fleet, now};
use pairscale_core::lock::{BreakRecord, ExecutionStatus, LockRecord};
use pairscale_core::ports::{ExecutionRegistry, LockStore};
use pairscale_core::service::{break_stale, BreakOutcome};
use pairscale_core::{Error as CoreError, FleetName, Owner, Timestamp};
use serde::Serialize;
use serde_json::{json, Value};

/// The lock in a few words, for `status` and `lock show`.
#[derive(Debug, Clone, Serialize)]
pub struct LockSummary {
    pub held: bool,
    pub holder: Option<String>,
    /// The holder execution's status, when the holder is an execution and it could be read.
    pub holder_status: Option<String>,
    pub token: Option<u64>,
    pub age_seconds: Option<i64>,
    pub expires_at: Option<Timestamp>,
    pub last_released_at: Option<Timestamp>,
    pub broken: Option<BreakRecord>,
}

impl LockSummary {
    pub fn of(rec: Option<&LockRecord>, holder_status: Option<String>, now: Timestamp) -> Self {
        let held = rec.is_some_and(|r| r.is_held(now));
        LockSummary {
            held,
            holder: rec.and_then(|r| r.holder.clone()),
            holder_status,
            token: rec.map(|r| r.token),
            age_seconds: rec
                .filter(|r| r.holder.is_some())
                .map(|r| (now.millis() - r.acquired_at.millis()) / 1000),
            expires_at: rec.filter(|r| r.holder.is_some()).map(|r| r.expires_at),
            last_released_at: rec.and_then(|r| r.released_at),
            broken: rec.and_then(|r| r.broken.clone()),
        }
    }

    pub fn line(&self, style: &Style, now: Timestamp) -> String {
        match (&self.holder, self.held) {
            (Some(h), held) => {
                let status = self
                    .holder_status
                    .as_deref()
                    .map(|s| format!(" ({})", style.status(s)))
                    .unwrap_or_default();
                let age = self
                    .age_seconds
                    .map(|a| duration(a * 1000))
                    .unwrap_or_else(|| "?".into());
                let expiry = self
                    .expires_at
                    .map(|e| {
                        if held {
                            format!("expires {}", relative(e, now))
                        } else {
                            style.warn(&format!("expired {}", relative(e, now)))
                        }
                    })
                    .unwrap_or_default();
                format!(
                    "{} by {h}{status} for {age}, token {}, {expiry}",
                    if held {
                        style.warn("held")
                    } else {
                        "left".into()
                    },
                    or_dash(self.token)
                )
            }
            (None, _) => {
                let mut s = style.good("free");
                if let Some(b) = &self.broken {
                    s.push_str(&format!(
                        " (last broken by {} {}: {})",
                        b.broken_by,
                        relative(b.broken_at, now),
                        b.reason
                    ));
                } else if let Some(r) = self.last_released_at {
                    s.push_str(&format!(" (last released {})", relative(r, now)));
                }
                s
            }
        }
    }
}

/// The holder execution's status, if the holder is an execution and it can be read.
pub async fn holder_status(ctx: &Ctx, rec: Option<&LockRecord>) -> Option<String> {
    let arn = rec?
        .holder
        .as_deref()
        .and_then(|h| Owner::parse(h).ok())
        .and_then(|o| o.execution_arn().map(str::to_string))?;
    ctx.aws
        .executions()
        .status(&arn)
        .await
        .ok()
        .map(status_name)
}

#[derive(Debug, Clone)]
pub struct LockView {
    pub fleet: FleetName,
    pub record: Option<LockRecord>,
    pub summary: LockSummary,
    pub now: Timestamp,
}

pub async fn show(ctx: &Ctx, a: &FleetArg) -> Result<Outcome> {
    let s = &ctx.settings;
    let fleet = fleet(s, &a.fleet)?;
    let record = ctx
        .aws
        .locks(s)?
        .get(&fleet)
        .await
        .map_err(s.core_error(Some(&fleet)))?;
    let status = holder_status(ctx, record.as_ref()).await;
    let t = now();
    Ok(Outcome::ok(LockView {
        summary: LockSummary::of(record.as_ref(), status, t),
        fleet,
        record,
        now: t,
    }))
}

impl View for LockView {
    fn json(&self) -> Value {
        json!({"fleet": self.fleet, "held": self.summary.held, "summary": self.summary, "lock": self.record})
    }

    fn table(&self, style: &Style) -> String {
        let mut out = format!(
            "Lock of fleet {}: {}\n",
            style.bold(self.fleet.as_str()),
            self.summary.line(style, self.now)
        );
        let Some(r) = &self.record else {
            out.push_str("  (no lock item: the fleet was never locked)\n");
            return out;
        };
        let mut field = |k: &str, v: String| out.push_str(&format!("  {k:<13}{v}\n"));
        field("holder", or_dash(r.holder.as_ref()));
        field("token", r.token.to_string());
        if r.holder.is_some() {
            field("acquired", when(r.acquired_at, self.now));
            field("expires", when(r.expires_at, self.now));
            field(
                "heartbeat",
                or_dash(r.heartbeat_at.map(|t| when(t, self.now))),
            );
        } else {
            // A free lock keeps its last acquisition; its expiry no longer means anything.
            field("last taken", when(r.acquired_at, self.now));
        }
        field(
            "request",
            or_dash(r.request.as_ref().filter(|s| !s.is_empty())),
        );
        field(
            "released",
            or_dash(r.released_at.map(|t| when(t, self.now))),
        );
        if let Some(b) = &r.broken {
            field(
                "broken",
                format!(
                    "by {} {}: {} (holder was {}, token {})",
                    b.broken_by,
                    when(b.broken_at, self.now),
                    b.reason,
                    b.previous_holder,
                    b.previous_token
                ),
            );
        }
        out
    }
}

/// What `lock break` did.
#[derive(Debug, Clone, Serialize)]
pub struct BreakView {
    pub fleet: FleetName,
    /// `broken`, `forced`, or `not_held` (nothing to break).
    pub outcome: &'static str,
    pub broken: Option<BreakRecord>,
    pub stale_because: Option<String>,
}

impl View for BreakView {
    fn json(&self) -> Value {
        json!(self)
    }

    fn table(&self, style: &Style) -> String {
        match &self.broken {
            None => format!(
                "The lock of fleet {} is not held: nothing to break.\n",
                self.fleet
            ),
            Some(b) => format!(
                "{} the lock of fleet {} (holder {}, token {}).\n  recorded: broken by {} at {}: {}\n  next: the next run of the fleet repairs what {} left (stops its builds, undoes a half-built scale-out, puts drained candidates back); to do only that (a dry run changes nothing else): pairscale scale --fleet {} --by +1 --dry-run --wait\n",
                if self.outcome == "forced" {
                    style.warn("Forced")
                } else {
                    style.good("Broke")
                },
                self.fleet,
                b.previous_holder,
                b.previous_token,
                b.broken_by,
                b.broken_at.rfc3339(),
                b.reason,
                b.previous_holder,
                self.fleet,
            ),
        }
    }
}

pub async fn brk(ctx: &Ctx, a: &BreakArgs) -> Result<Outcome> {
    let s = &ctx.settings;
    let fleet = fleet(s, &a.fleet.fleet)?;
    let err = s.core_error(Some(&fleet));
    if let Some(r) = &a.reason {
        if r.trim().is_empty() || r.chars().count() > 400 || r.chars().any(char::is_control) {
            return Err(CliError::usage(
                format!("--reason '{r}' must say why, in 1-400 characters on one line"),
                None,
            ));
        }
    }
    let locks = ctx.aws.locks(s)?;
    let executions = ctx.aws.executions();
    let breaker = s.owner();
    let t = now();
    let record = locks.get(&fleet).await.map_err(&err)?;
    let Some(record) = record.filter(|r| r.holder.is_some()) else {
        return Ok(Outcome::ok(BreakView {
            fleet,
            outcome: "not_held",
            broken: None,
            stale_because: None,
        }));
    };
    let holder = record.holder.clone().unwrap_or_default();
    let reason = a
        .reason
        .clone()
        .unwrap_or_else(|| format!("stale lock broken with pairscale lock break by {}", s.user));
    match break_stale(&locks, &executions, &fleet, &breaker, &reason, t).await {
        Ok(BreakOutcome {
            broken,
            stale_because,
        }) => {
            return Ok(Outcome::ok(BreakView {
                fleet,
                outcome: "broken",
                broken: Some(broken),
                stale_because: Some(stale_because),
            }))
        }
        Err(CoreError::LockNotStale { why, .. }) if !a.force => {
            let hint = match holder_execution(&holder) {
                Some(arn) => format!(
                    "its run is still going: let it end, or stop it (aws stepfunctions stop-execution --execution-arn {arn}) and break again"
                ),
                None => format!(
                    "if {holder} is no longer working on the fleet: pairscale lock break --fleet {fleet} --force --reason '<why>'"
                ),
            };
            return Err(CliError::failed(
                format!("the lock of fleet '{fleet}' was not broken: {why}"),
                Some(hint),
            ));
        }
        // Forced: the liveness check said no (or could not answer); decide below.
        Err(CoreError::LockNotStale { .. })
        | Err(CoreError::Aws { .. })
        | Err(CoreError::Retryable { .. })
            if a.force => {}
        Err(e) => return Err(err(e)),
    }

    // --force. Never from a RUNNING execution, whatever the reason.
    if let Some(arn) = holder_execution(&holder) {
        if let Ok(st @ (ExecutionStatus::Running | ExecutionStatus::PendingRedrive)) =
            executions.status(&arn).await
        {
            return Err(CliError::failed(
                format!(
                    "the lock of fleet '{fleet}' is held by {arn}, which is {}: not broken, even with --force (that run would go on changing the fleet beside the next one)",
                    status_name(st)
                ),
                Some(format!(
                    "stop it first: aws stepfunctions stop-execution --execution-arn {arn}; then pairscale lock break --fleet {fleet}"
                )),
            ));
        }
    }
    let current = locks.get(&fleet).await.map_err(&err)?;
    let Some(current) = current.filter(|r| r.holder.is_some()) else {
        return Ok(Outcome::ok(BreakView {
            fleet,
            outcome: "not_held",
            broken: None,
            stale_because: None,
        }));
    };
    let why_live = if current.is_expired(t) {
        format!("expired at {}", current.expires_at.rfc3339())
    } else {
        format!("held until {}", current.expires_at.rfc3339())
    };
    let broken = BreakRecord {
        broken_by: breaker,
        broken_at: t,
        previous_holder: current.holder.clone().unwrap_or_default(),
        previous_token: current.token,
        reason: format!("forced: {reason} ({why_live})"),
    };
    // Conditional on the same holder and token: if it changed hands meanwhile, nothing breaks.
    locks.force_release(&current, &broken).await.map_err(&err)?;
    Ok(Outcome::ok(BreakView {
        fleet,
        outcome: "forced",
        broken: Some(broken),
        stale_because: None,
    }))
}

fn holder_execution(holder: &str) -> Option<String> {
    Owner::parse(holder)
        .ok()
        .and_then(|o| o.execution_arn().map(str::to_string))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(holder: Option<&str>, now: i64) -> LockRecord {
        LockRecord {
            fleet: FleetName::parse("voice").unwrap(),
            holder: holder.map(str::to_string),
            token: 42,
            acquired_at: Timestamp(now - 65_000),
            expires_at: Timestamp(now + 835_000),
            heartbeat_at: Some(Timestamp(now - 5_000)),
            request: Some("{\"maintenance\":\"drain\"}".into()),
            released_at: None,
            broken: None,
        }
    }

    #[test]
    fn a_held_lock_shows_holder_age_and_expiry() {
        let now = Timestamp(1_795_000_000_000);
        let r = record(Some("cli:bob"), now.millis());
        let v = LockView {
            summary: LockSummary::of(Some(&r), None, now),
            fleet: r.fleet.clone(),
            record: Some(r),
            now,
        };
        let t = v.table(&Style::default());
        assert!(
            t.starts_with(
                "Lock of fleet voice: held by cli:bob for 1m 05s, token 42, expires in 13m 55s\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("  request      {\"maintenance\":\"drain\"}\n"),
            "{t}"
        );
        let j = v.json();
        assert_eq!(j["held"], true);
        assert_eq!(j["lock"]["holder"], "cli:bob");
        assert_eq!(j["summary"]["age_seconds"], 65);
    }

    #[test]
    fn a_free_lock_says_how_it_was_last_let_go() {
        let now = Timestamp(1_795_000_000_000);
        let mut r = record(None, now.millis());
        r.broken = Some(BreakRecord {
            broken_by: "cli:alice".into(),
            broken_at: Timestamp(now.millis() - 120_000),
            previous_holder: "cli:bob".into(),
            previous_token: 41,
            reason: "forced: bob's laptop died (held until ...)".into(),
        });
        let s = LockSummary::of(Some(&r), None, now);
        assert!(!s.held);
        assert_eq!(
            s.line(&Style::default(), now),
            "free (last broken by cli:alice 2m 00s ago: forced: bob's laptop died (held until ...))"
        );
        assert_eq!(
            LockSummary::of(None, None, now).line(&Style::default(), now),
            "free"
        );
    }

    #[test]
    fn a_break_reports_what_was_recorded() {
        let v = BreakView {
            fleet: FleetName::parse("voice").unwrap(),
            outcome: "forced",
            broken: Some(BreakRecord {
                broken_by: "cli:alice".into(),
                broken_at: Timestamp(0),
                previous_holder: "cli:bob".into(),
                previous_token: 41,
                reason: "forced: gone".into(),
            }),
            stale_because: None,
        };
        assert_eq!(
            v.table(&Style::default()),
            "Forced the lock of fleet voice (holder cli:bob, token 41).\n  recorded: broken by cli:alice at 1970-01-01T00:00:00Z: forced: gone\n  next: the next run of the fleet repairs what cli:bob left (stops its builds, undoes a half-built scale-out, puts drained candidates back); to do only that (a dry run changes nothing else): pairscale scale --fleet voice --by +1 --dry-run --wait\n"
        );
        assert_eq!(v.json()["broken"]["broken_by"], "cli:alice");
        assert_eq!(v.json()["outcome"], "forced");
    }
}
