//! One fleet's scaling machine as the policy sees it ([`ScalingRuns`]): is a run executing,
//! start a run once by name, and how long the recent scale-outs took.

use super::status_of;
use crate::error::classify;
use async_trait::async_trait;
use aws_sdk_sfn::error::SdkError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::types::ExecutionStatus as SfnStatus;
use aws_sdk_sfn::Client;
use pairscale_core::lock::ExecutionStatus;
use pairscale_core::ports::{ScalingRuns, StartOutcome};
use pairscale_core::Result;
use serde_json::Value;
use tracing::instrument;

/// How many runs listed as running one look confirms: one fleet runs one at a time, so more
/// than a few are runs that have just ended.
const RUNNING_PAGE: i32 = 10;
/// How many succeeded runs one look reads to find the recent scale-outs.
const SUCCEEDED_PAGE: i32 = 50;

#[derive(Debug, Clone)]
pub struct MachineRuns {
    client: Client,
    state_machine_arn: String,
}

impl MachineRuns {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        MachineRuns {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }
}

/// Whether a run's output says it scaled out (the machine's `Out: report`: `direction`
/// `out`, `outcome` `scaled`); a no-op or a scale-in took no time to capacity.
fn scaled_out(output: Option<&str>) -> bool {
    output
        .and_then(|o| serde_json::from_str::<Value>(o).ok())
        .is_some_and(|v| v["direction"] == "out" && v["outcome"] == "scaled")
}

/// When a scale-out's new pairs went into rotation, as its output says (`in_rotation_at`,
/// RFC 3339): its time to capacity ends there, before the warm pool's refill. None: an output
/// without it (a run from before it was recorded), whose stop time stands in.
fn in_rotation_at(output: Option<&str>) -> Option<i64> {
    let v: Value = serde_json::from_str(output?).ok()?;
    pairscale_core::Timestamp::parse_rfc3339(v["in_rotation_at"].as_str()?).map(|t| t.millis())
}

#[async_trait]
impl ScalingRuns for MachineRuns {
    #[instrument(skip(self))]
    async fn any_running(&self) -> Result<bool> {
        const OP: &str = "states:ListExecutions";
        let out = self
            .client
            .list_executions()
            .state_machine_arn(&self.state_machine_arn)
            .status_filter(SfnStatus::Running)
            .max_results(RUNNING_PAGE)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        // The listing is eventually consistent: a run it still shows running may have ended,
        // and one that ended must not hold the policy back. Each is confirmed by its own
        // status.
        for e in out.executions() {
            let d = self
                .client
                .describe_execution()
                .execution_arn(e.execution_arn())
                .send()
                .await
                .map_err(|e| classify("states:DescribeExecution", e))?;
            if status_of("states:DescribeExecution", d.status())? == ExecutionStatus::Running {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // The input is the caller's to log.
    #[instrument(skip(self, input))]
    async fn start_once(&self, name: &str, input: &Value) -> Result<StartOutcome> {
        match self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await
        {
            Ok(out) => Ok(StartOutcome::Started {
                execution_arn: out.execution_arn().to_string(),
            }),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), StartExecutionError::ExecutionAlreadyExists(_)) =>
            {
                Ok(StartOutcome::AlreadyStarted)
            }
            Err(e) => Err(classify("states:StartExecution", e)),
        }
    }

    #[instrument(skip(self))]
    async fn scale_out_durations(&self, count: usize) -> Result<Vec<i64>> {
        let out = self
            .client
            .list_executions()
            .state_machine_arn(&self.state_machine_arn)
            .status_filter(SfnStatus::Succeeded)
            .max_results(SUCCEEDED_PAGE)
            .send()
            .await
            .map_err(|e| classify("states:ListExecutions", e))?;
        let mut runs: Vec<(i64, String)> = out
            .executions()
            .iter()
            .filter(|e| e.status() == &SfnStatus::Succeeded)
            .filter_map(|e| {
                Some((
                    e.start_date().to_millis().ok()?,
                    e.execution_arn().to_string(),
                ))
            })
            .collect();
        runs.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        let mut durations = Vec::new();
        for (_, arn) in runs {
            if durations.len() >= count {
                break;
            }
            let d = self
                .client
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .map_err(|e| classify("states:DescribeExecution", e))?;
            let (Some(stop), Ok(start)) = (d.stop_date(), d.start_date().to_millis()) else {
                continue;
            };
            if scaled_out(d.output()) {
                if let Some(end) = in_rotation_at(d.output()).or_else(|| stop.to_millis().ok()) {
                    durations.push((end - start).max(0));
                }
            }
        }
        Ok(durations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_run_that_carried_out_a_scale_out_counts() {
        assert!(scaled_out(Some(
            r#"{"direction": "out", "outcome": "scaled", "to": 3}"#
        )));
        assert!(!scaled_out(Some(
            r#"{"direction": "in", "outcome": "scaled"}"#
        )));
        assert!(!scaled_out(Some(
            r#"{"outcome": "no_op", "plan": {"action": "no_op"}}"#
        )));
        assert!(!scaled_out(Some("not json")));
        assert!(!scaled_out(None));
    }

    #[test]
    fn capacity_arrives_when_the_pairs_went_into_rotation_whatever_came_after() {
        // Step Functions' and the local emulator's spellings of $$.State.EnteredTime.
        for (at, ms) in [
            ("2026-12-06T01:00:00.250Z", 1_796_518_800_250),
            ("2026-12-06T01:00:00.250000+00:00", 1_796_518_800_250),
        ] {
            let out =
                format!(r#"{{"direction": "out", "outcome": "scaled", "in_rotation_at": "{at}"}}"#);
            assert_eq!(in_rotation_at(Some(&out)), Some(ms), "{at}");
        }
        assert_eq!(
            in_rotation_at(Some(r#"{"direction": "out", "outcome": "scaled"}"#)),
            None
        );
        assert_eq!(in_rotation_at(Some(r#"{"in_rotation_at": "soon"}"#)), None);
        assert_eq!(in_rotation_at(None), None);
    }
}
