//! `pairscale scale`: validate a request as the state machine will, start an execution, and
//! with `--wait` follow it to its end.

use super::{Ctx, Outcome};
use crate::args::{ScaleArgs, Target};
use crate::error::{exit, CliError, Result};
use crate::progress::{progress, Event, Progress};
use crate::render::{duration, or_dash, StatusLine, Style, View};
use crate::settings::now;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use pairscale_core::request::{Intent, ScaleRequest};
use pairscale_core::Timestamp;
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

/// The execution's page in the Step Functions console, in the execution's own region.
pub fn console_url(execution_arn: &str) -> String {
    let region = execution_arn.split(':').nth(3).unwrap_or("us-east-1");
    format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    )
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
    let name = execution_name(&req, &s.user, now(), salt());
    let started = ctx
        .aws
        .sfn()
        .start_execution()
        .state_machine_arn(machine)
        .name(&name)
        .input(input.to_string())
        .send()
        .await
        .map_err(|e| {
            s.core_error(Some(&req.fleet))(pairscale_aws::error::classify(
                "states:StartExecution",
                e,
            ))
        })?;
    let view = Started {
        execution_arn: started.execution_arn().to_string(),
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
    wait(ctx, view, a.timeout, a.poll_interval).await
}

/// A started execution.
#[derive(Debug, Clone)]
pub struct Started {
    pub execution_arn: String,
    pub name: String,
    pub request: Value,
}

impl View for Started {
    fn json(&self) -> Value {
        json!({"execution_arn": self.execution_arn, "name": self.name,
               "console_url": console_url(&self.execution_arn), "request": self.request})
    }

    fn table(&self, style: &Style) -> String {
        format!(
            "Started {}\n  execution: {}\n  console:   {}\n",
            style.bold(&self.name),
            self.execution_arn,
            console_url(&self.execution_arn)
        )
    }
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Ended {
    pub started: Started,
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
}

impl Ended {
    fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }
}

impl View for Ended {
    fn json(&self) -> Value {
        let mut v = self.started.json();
        v["status"] = json!(self.status);
        v["output"] = self.output.clone().unwrap_or(Value::Null);
        v["error"] = json!(self.error);
        v["cause"] = json!(self.cause);
        v["started_at"] = json!(self.started_at);
        v["stopped_at"] = json!(self.stopped_at);
        v
    }

    fn table(&self, style: &Style) -> String {
        let took = match (self.started_at, self.stopped_at) {
            (Some(a), Some(b)) => format!(" in {}", duration(b - a)),
            _ => String::new(),
        };
        let mut out = format!(
            "{} {}{took}\n",
            self.started.name,
            style.status(&self.status)
        );
        if let Some(o) = &self.output {
            out.push_str(&format!("  {}\n", summarise_output(o)));
        }
        if !self.succeeded() {
            out.push_str(&format!(
                "  error: {}\n  cause: {}\n",
                style.bad(self.error.as_deref().unwrap_or("-")),
                self.cause.as_deref().unwrap_or("-")
            ));
        }
        out
    }
}

/// One line on what a successful run did, from the state machine's report.
pub fn summarise_output(o: &Value) -> String {
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    match (o["outcome"].as_str(), o["direction"].as_str()) {
        (Some("scaled"), Some("out")) => format!(
            "scaled out {} → {}; pairs added: {}",
            o["from"],
            o["to"],
            list(&o["pairs_added"])
        ),
        (Some("scaled"), Some("in")) => format!(
            "scaled in {} → {}; pairs removed: {}",
            o["from"],
            o["to"],
            list(&o["pairs_removed"])
        ),
        (Some(outcome @ ("dry_run" | "no_op")), _) => {
            let plan = &o["plan"];
            let what = match plan["action"].as_str() {
                Some("scale_out") => format!(
                    "scale out {} → {} (add {})",
                    plan["from"], plan["to"], plan["add"]
                ),
                Some("scale_in") => format!(
                    "scale in {} → {} (remove {}, eligible: {})",
                    plan["from"],
                    plan["to"],
                    plan["remove"],
                    list(&plan["eligible"])
                ),
                Some("no_op") => format!(
                    "no change ({}): {}",
                    plan["reason"].as_str().unwrap_or("?"),
                    plan["detail"].as_str().unwrap_or("")
                ),
                _ => plan.to_string(),
            };
            if outcome == "dry_run" {
                format!("dry run, nothing changed; the plan: {what}")
            } else {
                format!("nothing to do: {what}")
            }
        }
        _ => o.to_string(),
    }
}

async fn wait(ctx: &Ctx, started: Started, timeout: Duration, every: Duration) -> Result<Outcome> {
    let sfn = ctx.aws.sfn();
    let s = &ctx.settings;
    let begun = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let err_style = Style {
        color: tty && s.style.color,
    };
    let mut status = StatusLine::new(tty);
    let mut last = Progress::default();
    loop {
        let d = match sfn
            .describe_execution()
            .execution_arn(&started.execution_arn)
            .send()
            .await
        {
            Ok(d) => d,
            Err(e) => {
                let e = pairscale_aws::error::classify("states:DescribeExecution", e);
                // A throttled or dropped poll is not the run's end: look again, within --timeout.
                if e.name() == pairscale_core::ErrorName::Retryable && begun.elapsed() < timeout {
                    status.show(
                        &e.to_string(),
                        &format!("(could not look at the run: {e}; trying again)"),
                    );
                    tokio::time::sleep(every).await;
                    continue;
                }
                status.finish();
                return Err(s.core_error(None)(e));
            }
        };
        let started_at = d.start_date().to_millis().ok();
        if d.status() != &ExecutionStatus::Running {
            status.finish();
            let ended = Ended {
                started,
                status: d.status().as_str().to_string(),
                output: d.output().and_then(|o| serde_json::from_str(o).ok()),
                error: d.error().map(str::to_string),
                cause: d.cause().map(str::to_string),
                started_at,
                stopped_at: d.stop_date().and_then(|t| t.to_millis().ok()),
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
        // The newest events are enough to know where the run is (one drain loop is ~20).
        let hres = sfn
            .get_execution_history()
            .execution_arn(&started.execution_arn)
            .reverse_order(true)
            .max_results(200)
            .send()
            .await;
        if let Ok(h) = hres {
            // Oldest first, by id: whatever order the service answered in (an emulator may
            // not honour reverse_order).
            let mut events: Vec<Event> = h.events().iter().map(event_of).collect();
            events.sort_by_key(|e| e.id);
            last = progress(&events);
        }
        let t = now().millis();
        let elapsed = started_at.map(|a| t - a).unwrap_or_default();
        let line = last.line(t, elapsed, &err_style);
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

fn event_of(e: &HistoryEvent) -> Event {
    let kind = e.r#type().as_str().to_string();
    let state = e
        .state_entered_event_details()
        .map(|d| d.name().to_string())
        .or_else(|| e.state_exited_event_details().map(|d| d.name().to_string()));
    let output = e
        .task_succeeded_event_details()
        .and_then(|d| d.output())
        .or_else(|| {
            e.lambda_function_succeeded_event_details()
                .and_then(|d| d.output())
        })
        .or_else(|| e.state_exited_event_details().and_then(|d| d.output()))
        .map(str::to_string);
    Event {
        id: e.id(),
        kind,
        state,
        output,
        at: e.timestamp().to_millis().unwrap_or_default(),
    }
}

/// Rows for `status`: an execution's name, status and times.
pub fn execution_row(
    name: &str,
    status: &str,
    start: Option<i64>,
    stop: Option<i64>,
    now: Timestamp,
    style: &Style,
) -> Vec<String> {
    vec![
        name.to_string(),
        style.status(status),
        or_dash(start.map(|t| crate::render::when(Timestamp(t), now))),
        or_dash(stop.map(|t| Timestamp(t).rfc3339())),
    ]
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

    #[test]
    fn the_console_link_is_in_the_executions_region() {
        let arn = "arn:aws:states:eu-west-1:123456789012:execution:pairscale-scale:voice-to-4";
        assert_eq!(
            console_url(arn),
            format!("https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{arn}")
        );
    }

    fn started() -> Started {
        Started {
            execution_arn: "arn:aws:states:us-east-1:1:execution:m:voice-in-1".into(),
            name: "voice-in-1".into(),
            request: json!({"fleet": "voice", "delta": -1}),
        }
    }

    #[test]
    fn a_finished_run_renders_its_outcome() {
        let ok = Ended {
            started: started(),
            status: "SUCCEEDED".into(),
            output: Some(
                json!({"fleet": "voice", "direction": "in", "from": 3, "to": 2,
                                "pairs_removed": ["pair-0002"], "outcome": "scaled"}),
            ),
            error: None,
            cause: None,
            started_at: Some(0),
            stopped_at: Some(192_000),
        };
        let t = ok.table(&Style::default());
        assert_eq!(
            t,
            "voice-in-1 SUCCEEDED in 3m 12s\n  scaled in 3 → 2; pairs removed: pair-0002\n"
        );
        let j = ok.json();
        assert_eq!(j["status"], "SUCCEEDED");
        assert_eq!(j["output"]["pairs_removed"][0], "pair-0002");
        assert!(j["console_url"]
            .as_str()
            .unwrap()
            .starts_with("https://us-east-1."));

        let failed = Ended {
            status: "FAILED".into(),
            output: None,
            error: Some("Pairscale.LockHeld".into()),
            cause: Some("held by cli:bob".into()),
            ..ok
        };
        let t = failed.table(&Style::default());
        assert!(t.contains("error: Pairscale.LockHeld"), "{t}");
        assert!(t.contains("cause: held by cli:bob"), "{t}");
        assert_eq!(failed.json()["error"], "Pairscale.LockHeld");
    }

    #[test]
    fn a_dry_run_says_what_it_would_have_done() {
        let o = json!({"outcome": "dry_run", "plan": {"action": "scale_in", "from": 3, "to": 2, "remove": 1,
                       "race_spares": 1, "eligible": ["pair-0001", "pair-0003"]}});
        assert_eq!(
            summarise_output(&o),
            "dry run, nothing changed; the plan: scale in 3 → 2 (remove 1, eligible: pair-0001, pair-0003)"
        );
        let o = json!({"outcome": "no_op", "plan": {"action": "no_op", "reason": "at_target", "detail": "already at 2 pair(s)"}});
        assert_eq!(
            summarise_output(&o),
            "nothing to do: no change (at_target): already at 2 pair(s)"
        );
    }
}
