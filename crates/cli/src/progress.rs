//! A run's progress, read from its execution history: the state it is in, and during a drain
//! the channels left per pair (from the drain `check` task's own output, which the state
//! machine's `ResultSelector` keeps only in part) and the time left to the drain deadline
//! (from the state's output: `$.drain.started_at` and `$.plan.config.drain`).
//!
//! Pure: the caller reads the events with `pairscale_aws::sfn::Runs`, oldest first.

use crate::render::{duration, Style};
use pairscale_aws::sfn::RunEvent as Event;
use serde::Serialize;
use serde_json::Value;

/// The state whose task output carries the per-pair channel counts.
pub const DRAIN_CHECK_STATE: &str = "In: drain check";

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    /// The state most recently entered.
    pub state: Option<String>,
    pub drain: Option<DrainProgress>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DrainProgress {
    /// Channels per pair at the last check, in the order checked.
    pub pairs: Vec<PairChannels>,
    pub total_channels: Option<u64>,
    /// The policy's verdict at the last check: wait, done, force or abort.
    pub decision: Option<String>,
    /// When the last check ran (ms).
    pub checked_at: Option<i64>,
    /// When the drain began (ms): the quiesce.
    pub started_at: Option<i64>,
    /// When the fleet's policy applies (ms).
    pub deadline_at: Option<i64>,
    pub policy: Option<String>,
    /// Under policy `wait`, when waiting stops for good (ms).
    pub hard_max_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairChannels {
    pub pair_id: String,
    pub channels: Option<u64>,
    /// Why the pair could not be counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Read progress from `events`, oldest first. A task's result belongs to the state entered
/// last before it (tasks of one state do not interleave with another's in this machine).
pub fn progress(events: &[Event]) -> Progress {
    let mut p = Progress::default();
    for e in events {
        if e.kind.ends_with("StateEntered") {
            p.state.clone_from(&e.state);
            continue;
        }
        let Some(out) = e
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str::<Value>(o).ok())
        else {
            continue;
        };
        let is_result = e.kind == "TaskSucceeded" || e.kind == "LambdaFunctionSucceeded";
        if is_result && p.state.as_deref() == Some(DRAIN_CHECK_STATE) {
            // `lambda:invoke` wraps the function's answer in `Payload`; a plain Lambda
            // resource returns it as it is.
            let payload = out.get("Payload").unwrap_or(&out);
            let d = p.drain.get_or_insert_with(DrainProgress::default);
            d.pairs = payload["nodes"]
                .as_array()
                .map(|nodes| nodes.iter().map(pair_channels).collect())
                .unwrap_or_default();
            d.total_channels = payload["total_channels"].as_u64();
            d.decision = payload["decision"].as_str().map(str::to_string);
            d.checked_at = Some(e.at.millis());
        }
        if e.kind.ends_with("StateExited") {
            if let (Some(started), Some(cfg)) = (
                out.pointer("/drain/started_at").and_then(Value::as_i64),
                out.pointer("/plan/config/drain"),
            ) {
                let d = p.drain.get_or_insert_with(DrainProgress::default);
                d.started_at = Some(started);
                d.deadline_at = cfg["deadline_seconds"].as_i64().map(|s| started + s * 1000);
                d.hard_max_at = cfg["hard_max_seconds"].as_i64().map(|s| started + s * 1000);
                d.policy = cfg["policy"].as_str().map(str::to_string);
            }
        }
    }
    p
}

fn pair_channels(n: &Value) -> PairChannels {
    PairChannels {
        pair_id: n["pair_id"].as_str().unwrap_or("?").to_string(),
        channels: n["channels"].as_u64(),
        error: n.get("error").map(|e| {
            e["errorMessage"]
                .as_str()
                .unwrap_or("unreachable")
                .to_string()
        }),
    }
}

impl Progress {
    /// Whether the run is draining now (the per-pair counts are worth showing).
    pub fn draining(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.starts_with("In: drain") || s == "In: quiesce")
    }

    /// One line for a person: the state, and during a drain the channels per pair and the
    /// time left to the deadline.
    pub fn line(&self, now: i64, elapsed_ms: i64, style: &Style) -> String {
        let mut out = format!(
            "[{}] {}",
            duration(elapsed_ms),
            style.bold(self.state.as_deref().unwrap_or("starting"))
        );
        let Some(d) = self.drain.as_ref().filter(|_| self.draining()) else {
            return out;
        };
        if !d.pairs.is_empty() {
            let per_pair: Vec<String> = d
                .pairs
                .iter()
                .map(|p| match (p.channels, &p.error) {
                    (Some(c), _) => format!("{} {c} ch", p.pair_id),
                    (None, Some(_)) => format!("{} {}", p.pair_id, style.bad("unreachable")),
                    (None, None) => format!("{} ?", p.pair_id),
                })
                .collect();
            out.push_str(&format!(" | channels left: {}", per_pair.join(", ")));
        }
        if let Some(deadline) = d.deadline_at {
            let left = deadline - now;
            if left > 0 {
                out.push_str(&format!(" | deadline in {}", duration(left)));
            } else {
                let policy = d.policy.as_deref().unwrap_or("?");
                out.push_str(&format!(
                    " | {} (policy {policy}",
                    style.warn(&format!("deadline passed {} ago", duration(left)))
                ));
                match (policy, d.hard_max_at) {
                    ("wait", Some(h)) if h > now => {
                        out.push_str(&format!(", gives up in {})", duration(h - now)))
                    }
                    _ => out.push(')'),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pairscale_core::{ErrorName, Timestamp};
    use serde_json::json;

    fn entered(name: &str, at: i64) -> Event {
        Event {
            id: at,
            kind: "TaskStateEntered".into(),
            state: Some(name.into()),
            output: None,
            at: Timestamp(at),
        }
    }

    fn succeeded(output: Value, at: i64) -> Event {
        Event {
            id: at,
            kind: "TaskSucceeded".into(),
            state: None,
            output: Some(output.to_string()),
            at: Timestamp(at),
        }
    }

    fn exited(name: &str, output: Value, at: i64) -> Event {
        Event {
            id: at,
            kind: "TaskStateExited".into(),
            state: Some(name.into()),
            output: Some(output.to_string()),
            at: Timestamp(at),
        }
    }

    fn drain_state(started_at: i64) -> Value {
        json!({"drain": {"started_at": started_at, "forces": 0},
               "plan": {"config": {"drain": {"deadline_seconds": 600, "policy": "wait", "hard_max_seconds": 1200}}}})
    }

    #[test]
    fn the_drain_check_output_gives_channels_per_pair_and_the_deadline() {
        let check = json!({"StatusCode": 200, "Payload": {
            "nodes": [{"pair_id": "pair-0003", "channels": 4, "repaused": false},
                      {"pair_id": "pair-0004", "error": {"errorType": ErrorName::NodeUnreachable.as_str(), "errorMessage": "no answer"}}],
            "total_channels": 4, "decision": "wait"}});
        let events = vec![
            entered("In: quiesce", 1_000),
            exited("In: quiesce", drain_state(1_000), 1_500),
            entered("In: drain wait", 1_600),
            entered(DRAIN_CHECK_STATE, 2_000),
            succeeded(check, 2_500),
            exited(DRAIN_CHECK_STATE, drain_state(1_000), 2_600),
            entered("In: drain decision", 2_700),
            entered("In: drain wait", 2_800),
        ];
        let p = progress(&events);
        assert_eq!(p.state.as_deref(), Some("In: drain wait"));
        assert!(p.draining());
        let d = p.drain.clone().unwrap();
        assert_eq!(d.total_channels, Some(4));
        assert_eq!(d.decision.as_deref(), Some("wait"));
        assert_eq!(d.deadline_at, Some(601_000));
        assert_eq!(d.hard_max_at, Some(1_201_000));
        assert_eq!(d.pairs[0].channels, Some(4));
        assert_eq!(d.pairs[1].error.as_deref(), Some("no answer"));
        let line = p.line(61_000, 60_000, &Style::default());
        assert_eq!(
            line,
            "[1m 00s] In: drain wait | channels left: pair-0003 4 ch, pair-0004 unreachable | deadline in 9m 00s"
        );
        let late = p.line(661_000, 660_000, &Style::default());
        assert!(
            late.ends_with("deadline passed 1m 00s ago (policy wait, gives up in 9m 00s)"),
            "{late}"
        );
    }

    #[test]
    fn results_of_other_states_are_not_drain_counts() {
        let events = vec![
            entered("In: select candidates", 1),
            succeeded(
                json!({"Payload": {"nodes": [{"pair_id": "pair-0001", "channels": 9}]}}),
                2,
            ),
            entered("Out: terraform Wait", 3),
        ];
        let p = progress(&events);
        assert_eq!(p.drain, None);
        assert!(!p.draining());
        assert_eq!(
            p.line(0, 5_000, &Style::default()),
            "[5s] Out: terraform Wait"
        );
    }

    #[test]
    fn a_plain_lambda_result_is_read_too() {
        let events = vec![
            entered(DRAIN_CHECK_STATE, 1),
            Event {
                id: 2,
                kind: "LambdaFunctionSucceeded".into(),
                state: None,
                output: Some(json!({"nodes": [{"pair_id": "pair-0002", "channels": 0}], "total_channels": 0}).to_string()),
                at: Timestamp(2),
            },
        ];
        let d = progress(&events).drain.unwrap();
        assert_eq!(d.pairs[0].channels, Some(0));
        assert_eq!(d.deadline_at, None);
    }
}
