//! What a run shows: a started execution, how it ended, what its output says, and its row
//! in `status`. Shared by `scale` (which starts and follows runs) and `status` (which lists
//! them).

use crate::render::{duration, Style, View};
use pairscale_core::lock::ExecutionStatus;
use serde_json::{json, Value};

/// `SUCCEEDED`, `RUNNING`, ...: a status as Step Functions and the console spell it.
pub fn status_name(s: ExecutionStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{s:?}"))
}

/// The execution's page in the Step Functions console, in the execution's own region.
pub fn console_url(execution_arn: &str) -> String {
    let region = execution_arn.split(':').nth(3).unwrap_or("us-east-1");
    format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    )
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
    pub status: ExecutionStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
}

impl Ended {
    pub fn succeeded(&self) -> bool {
        self.status == ExecutionStatus::Succeeded
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
            style.status(&status_name(self.status))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pairscale_core::ErrorName;

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
            status: ExecutionStatus::Succeeded,
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
            status: ExecutionStatus::Failed,
            output: None,
            error: Some(ErrorName::LockHeld.to_string()),
            cause: Some("held by cli:bob".into()),
            ..ok
        };
        let t = failed.table(&Style::default());
        assert!(
            t.contains(&format!("error: {}", ErrorName::LockHeld)),
            "{t}"
        );
        assert!(t.contains("cause: held by cli:bob"), "{t}");
        assert_eq!(failed.json()["error"], ErrorName::LockHeld.as_str());
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
