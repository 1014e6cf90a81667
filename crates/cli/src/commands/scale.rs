//! `pairscale scale`: validate a request as the state machine will, start an execution, and
//! with `--wait` follow it to its end.

use super::runs::{console_url, Ended, Started};
use super::{Ctx, Outcome};
use crate::args::{ScaleArgs, Target};
use crate::error::{exit, CliError, Result};
use crate::progress::{progress, Progress};
use crate::render::{duration, Style, View};
use crate::settings::now;
use crate::status_line::StatusLine;
use pairscale_core::lock::ExecutionStatus;
use pairscale_core::request::{Intent, ScaleRequest};
use pairscale_core::{ErrorName, Timestamp};
use serde_json::{json, Map, Value};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// The request exactly as the console would start the state machine with it.
pub fn request_json(
    fleet: &str,
    target: &Target,
    reason: Option<&str>,
    requested_by: &str,
    dry_run: bool,
) -> Value {
    let mut m = Map::new();
    m.insert("fleet".into(), json!(fleet));
    if let Some(n) = target.to {
        m.insert("target_pair_count".into(), json!(n));
    }
    if let Some(k) = target.by {
        m.insert("delta".into(), json!(k));
    }
    if let Some(r) = reason {
        m.insert("reason".into(), json!(r));
    }
    m.insert("requested_by".into(), json!(requested_by));
    if dry_run {
        m.insert("dry_run".into(), json!(true));
    }
    Value::Object(m)
}

/// Execution names read as an audit log in the console's history:
/// `<fleet>-<to-N|out-K|in-K>[-dry]-<user>-<UTC time>-<4 hex>`, within Step Functions' 80
/// characters of `[A-Za-z0-9_-]`. The hex tells apart two requests in the same second.
pub fn execution_name(req: &ScaleRequest, user: &str, at: Timestamp, salt: u16) -> String {
    let what = match &req.intent {
        Intent::Target { pair_count } => format!("to-{pair_count}"),
        Intent::Delta { delta } if *delta > 0 => format!("out-{delta}"),
        Intent::Delta { delta } => format!("in-{}", delta.unsigned_abs()),
        Intent::Alarm { .. } => "alarm".to_string(),
    };
    let dry = if req.dry_run { "-dry" } else { "" };
    let time = compact_time(at);
    let fixed = format!("{}-{what}{dry}--{time}-{salt:04x}", req.fleet);
    let room = 80usize.saturating_sub(fixed.len());
    let who: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(room)
        .collect();
    if who.is_empty() {
        format!("{}-{what}{dry}-{time}-{salt:04x}", req.fleet)
    } else {
        format!("{}-{what}{dry}-{who}-{time}-{salt:04x}", req.fleet)
    }
}

/// `20261122T031500Z`.
fn compact_time(t: Timestamp) -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.millis()) * 1_000_000)
        .ok()
        .and_then(|d| d.format(&fmt).ok())
        .unwrap_or_else(|| t.millis().to_string())
}

fn salt() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    (nanos ^ std::process::id().rotate_left(16)) as u16
}

pub async fn run(ctx: &Ctx, a: &ScaleArgs) -> Result<Outcome> {
    let s = &ctx.settings;
    let requested_by = a.requested_by.clone().unwrap_or_else(|| s.user.clone());
    let input = request_json(
        &a.fleet.fleet,
        &a.target,
        a.reason.as_deref(),
        &requested_by,
        a.dry_run,
    );
    // The state machine's own parser: what it would refuse is refused here, before any run.
    let req = ScaleRequest::from_json(&input).map_err(s.core_error(None))?;
    let machine = s.state_machine()?;
    // A fleet that does not exist is refused here, as every other command refuses it: a run
    // for it would take a lock item for nothing and fail at Validate.
    ctx.aws
        .params(s)
        .pair_count(&req.fleet)
        .await
        .map_err(s.core_error(Some(&req.fleet)))?;
    let name = execution_name(&req, &s.user, now(), salt());
    let execution_arn = ctx
        .aws
        .runs()
        .start(machine, &name, &input)
        .await
        .map_err(s.core_error(Some(&req.fleet)))?;
    let view = Started {
        execution_arn,
        name,
        request: input,
    };
    if !a.wait {
        return Ok(Outcome::ok(view));
    }
    if s.output == crate::args::OutputFormat::Table {
        print!("{}", view.table(&s.style));
        let _ = std::io::stdout().flush();
    }
    let name = view.name.clone();
    let arn = view.execution_arn.clone();
    tokio::select! {
        waited = wait(ctx, view, a.timeout, a.poll_interval) => waited,
        _ = tokio::signal::ctrl_c() => {
            StatusLine::for_stderr(std::io::stderr().is_terminal()).finish();
            Err(CliError::Interrupted {
                message: format!(
                    "stopped waiting for {name}; the run goes on: interrupting the CLI does not stop it"
                ),
                hint: Some(format!(
                    "follow it at {} (pairscale status lists it), or stop it: aws stepfunctions stop-execution --execution-arn {arn}",
                    console_url(&arn)
                )),
            })
        }
    }
}

async fn wait(ctx: &Ctx, started: Started, timeout: Duration, every: Duration) -> Result<Outcome> {
    let runs = ctx.aws.runs();
    let s = &ctx.settings;
    let begun = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let err_style = Style {
        color: tty && s.style.color,
    };
    let mut status = StatusLine::for_stderr(tty);
    let mut last = Progress::default();
    loop {
        let run = match runs.describe(&started.execution_arn).await {
            Ok(run) => run,
            // A throttled or dropped poll is not the run's end: look again, within --timeout.
            Err(e) if e.name() == ErrorName::Retryable && begun.elapsed() < timeout => {
                status.show(
                    &e.to_string(),
                    &format!("(could not look at the run: {e}; trying again)"),
                );
                tokio::time::sleep(every).await;
                continue;
            }
            Err(e) => {
                status.finish();
                return Err(s.core_error(None)(e));
            }
        };
        let started_at = run.summary.started_at.millis();
        if run.summary.status != ExecutionStatus::Running {
            status.finish();
            let ended = Ended {
                started,
                status: run.summary.status,
                output: run.output.and_then(|o| serde_json::from_str(&o).ok()),
                error: run.error,
                cause: run.cause,
                started_at: Some(started_at),
                stopped_at: run.summary.stopped_at.map(Timestamp::millis),
            };
            let code = if ended.succeeded() {
                exit::OK
            } else {
                exit::FAILED
            };
            return Ok(Outcome {
                view: Box::new(ended),
                code,
            });
        }
        if begun.elapsed() >= timeout {
            status.finish();
            return Err(CliError::TimedOut {
                message: format!(
                    "{} is still RUNNING after {} (now at: {}); it goes on without us",
                    started.name,
                    duration(timeout.as_millis() as i64),
                    last.state.as_deref().unwrap_or("?")
                ),
                hint: Some(format!(
                    "follow it at {} or stop it: aws stepfunctions stop-execution --execution-arn {}",
                    console_url(&started.execution_arn),
                    started.execution_arn
                )),
            });
        }
        // The newest events are enough to know where the run is (one drain loop is ~20); a
        // history that cannot be read now leaves the last progress shown.
        if let Ok(events) = runs.recent_events(&started.execution_arn, 200).await {
            last = progress(&events);
        }
        let t = now().millis();
        let line = last.line(t, t - started_at, &err_style);
        // A new line when the run moves on or the counts change, not for the clock alone.
        let key = format!(
            "{:?} {:?}",
            last.state,
            last.drain
                .as_ref()
                .filter(|_| last.draining())
                .map(|d| &d.pairs)
        );
        status.show(&key, &line);
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(v: Value) -> ScaleRequest {
        ScaleRequest::from_json(&v).unwrap()
    }

    #[test]
    fn the_request_is_the_one_the_console_would_send() {
        let t = Target {
            to: None,
            by: Some(-1),
        };
        let v = request_json("voice-eu", &t, Some("night"), "alice", true);
        assert_eq!(
            v,
            json!({"fleet": "voice-eu", "delta": -1, "reason": "night", "requested_by": "alice", "dry_run": true})
        );
        let r = req(v);
        assert_eq!(r.intent, Intent::Delta { delta: -1 });
        let t = Target {
            to: Some(4),
            by: None,
        };
        let v = request_json("voice-eu", &t, None, "alice", false);
        assert_eq!(
            v,
            json!({"fleet": "voice-eu", "target_pair_count": 4, "requested_by": "alice"})
        );
    }

    #[test]
    fn bad_requests_are_refused_naming_the_field() {
        for (target, field) in [
            (
                Target {
                    to: Some(5000),
                    by: None,
                },
                "target_pair_count",
            ),
            (
                Target {
                    to: Some(-2),
                    by: None,
                },
                "target_pair_count",
            ),
            (
                Target {
                    to: None,
                    by: Some(0),
                },
                "delta",
            ),
        ] {
            let e = ScaleRequest::from_json(&request_json("voice", &target, None, "a", false))
                .unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
        let e = ScaleRequest::from_json(&request_json(
            "Voice_EU",
            &Target {
                to: Some(2),
                by: None,
            },
            None,
            "a",
            false,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("fleet"), "{e}");
    }

    #[test]
    fn execution_names_read_as_an_audit_log_and_fit_the_rules() {
        let at = Timestamp(1_795_000_000_000);
        let r = req(json!({"fleet": "voice-eu", "delta": -1}));
        assert_eq!(
            execution_name(&r, "alice", at, 0x3fa2),
            "voice-eu-in-1-alice-20261118T110640Z-3fa2"
        );
        let r = req(json!({"fleet": "voice-eu", "delta": 2, "dry_run": true}));
        assert!(execution_name(&r, "a.b@c", at, 1).starts_with("voice-eu-out-2-dry-a_b_c-"));
        let r = req(json!({"fleet": "voice-eu", "target_pair_count": 6}));
        assert!(execution_name(&r, "bob", at, 1).starts_with("voice-eu-to-6-bob-"));
        // The longest fleet, the largest request, a long user: still at most 80.
        let long = "f".repeat(40);
        let r = req(json!({"fleet": long, "delta": -1000, "dry_run": true}));
        let n = execution_name(&r, &"u".repeat(100), at, 0xffff);
        assert!(n.len() <= 80, "{} {n}", n.len());
        assert!(n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(n.ends_with("-20261118T110640Z-ffff"), "{n}");
    }
}
