//! The scaling runs as an operator sees them: start an execution of the state machine, read
//! how it stands, list the newest, and read where it is from its history. SDK types stay
//! here: callers get [`Run`], [`RunSummary`] and [`RunEvent`].

use super::status_of;
use crate::error::classify;
use aws_sdk_sfn::primitives::DateTime;
use aws_sdk_sfn::types::HistoryEvent;
use aws_sdk_sfn::Client;
use pairscale_core::lock::ExecutionStatus;
use pairscale_core::{Error, Result, Timestamp};
use serde_json::Value;
use tracing::instrument;

/// How many executions one listing reads before the newest are picked: the service lists the
/// newest first, an emulator may not, so the pick is made here.
const LIST_PAGE: i32 = 100;

#[derive(Debug, Clone)]
pub struct Runs {
    client: Client,
}

/// An execution in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub execution_arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub started_at: Timestamp,
    pub stopped_at: Option<Timestamp>,
}

/// An execution as it stands, with its result once it has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub summary: RunSummary,
    /// The state machine's output (JSON text), once it succeeded.
    pub output: Option<String>,
    /// The error name and cause, once it failed.
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// One history event, as much of it as following a run needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    /// The event's id: ids grow with time within an execution.
    pub id: i64,
    /// The event type, e.g. `TaskStateEntered`, `TaskSucceeded`.
    pub kind: String,
    /// The state's name, on `*StateEntered` and `*StateExited` events.
    pub state: Option<String>,
    /// The task's result (`TaskSucceeded`, `LambdaFunctionSucceeded`) or the state's output
    /// (`*StateExited`), as JSON text.
    pub output: Option<String>,
    pub at: Timestamp,
}

impl Runs {
    pub fn new(client: Client) -> Self {
        Runs { client }
    }

    /// Start an execution of `state_machine_arn` named `name`; returns its ARN.
    // The input is not logged: it is the caller's to log.
    #[instrument(skip(self, input))]
    pub async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &Value,
    ) -> Result<String> {
        let out = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| classify("states:StartExecution", e))?;
        Ok(out.execution_arn().to_string())
    }

    /// An execution as it stands now.
    #[instrument(skip(self))]
    pub async fn describe(&self, execution_arn: &str) -> Result<Run> {
        const OP: &str = "states:DescribeExecution";
        let out = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        Ok(Run {
            summary: RunSummary {
                execution_arn: out.execution_arn().to_string(),
                name: out.name().unwrap_or_default().to_string(),
                status: status_of(OP, out.status())?,
                started_at: timestamp(OP, out.start_date())?,
                stopped_at: out.stop_date().map(|t| timestamp(OP, t)).transpose()?,
            },
            output: out.output().map(str::to_string),
            error: out.error().map(str::to_string),
            cause: out.cause().map(str::to_string),
        })
    }

    /// The `count` newest executions of a state machine, newest first.
    #[instrument(skip(self))]
    pub async fn newest(&self, state_machine_arn: &str, count: usize) -> Result<Vec<RunSummary>> {
        const OP: &str = "states:ListExecutions";
        let out = self
            .client
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .max_results(LIST_PAGE)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let mut runs = out
            .executions()
            .iter()
            .map(|e| {
                Ok(RunSummary {
                    execution_arn: e.execution_arn().to_string(),
                    name: e.name().to_string(),
                    status: status_of(OP, e.status())?,
                    started_at: timestamp(OP, e.start_date())?,
                    stopped_at: e.stop_date().map(|t| timestamp(OP, t)).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        runs.truncate(count);
        Ok(runs)
    }

    /// The `count` newest events of an execution's history, oldest first (by id, whatever
    /// order the service answered in: an emulator may not honour `reverseOrder`).
    #[instrument(skip(self))]
    pub async fn recent_events(&self, execution_arn: &str, count: i32) -> Result<Vec<RunEvent>> {
        let out = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .max_results(count)
            .send()
            .await
            .map_err(|e| classify("states:GetExecutionHistory", e))?;
        let mut events: Vec<RunEvent> = out.events().iter().map(event_of).collect();
        events.sort_by_key(|e| e.id);
        Ok(events)
    }
}

fn timestamp(operation: &str, t: &DateTime) -> Result<Timestamp> {
    t.to_millis().map(Timestamp).map_err(|e| Error::Aws {
        operation: operation.into(),
        message: format!("a date out of range: {e}"),
    })
}

fn event_of(e: &HistoryEvent) -> RunEvent {
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
    RunEvent {
        id: e.id(),
        kind: e.r#type().as_str().to_string(),
        state,
        output,
        // An event whose time cannot be read still says where the run is.
        at: Timestamp(e.timestamp().to_millis().unwrap_or_default()),
    }
}
