//! Step Functions: whether a lock holder's execution still runs ([`Executions`], for breaking
//! stale locks), and the scaling runs an operator starts and follows ([`Runs`]).

mod machine;
mod runs;

pub use machine::MachineRuns;
pub use runs::{Run, RunEvent, RunSummary, Runs};

use crate::error::classify;
use async_trait::async_trait;
use aws_sdk_sfn::error::SdkError;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::types::ExecutionStatus as SfnStatus;
use aws_sdk_sfn::Client;
use pairscale_core::lock::ExecutionStatus;
use pairscale_core::ports::ExecutionRegistry;
use pairscale_core::{Error, Result};
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct Executions {
    client: Client,
}

impl Executions {
    pub fn new(client: Client) -> Self {
        Executions { client }
    }
}

#[async_trait]
impl ExecutionRegistry for Executions {
    #[instrument(skip(self))]
    async fn status(&self, execution_arn: &str) -> Result<ExecutionStatus> {
        match self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
        {
            Ok(out) => status_of("states:DescribeExecution", out.status()),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), DescribeExecutionError::ExecutionDoesNotExist(_)) =>
            {
                Ok(ExecutionStatus::NotFound)
            }
            Err(e) => Err(classify("states:DescribeExecution", e)),
        }
    }
}

/// The service's status in core terms; a status this code does not know is an error, not a
/// guess (a lock must not be broken on a misread).
fn status_of(operation: &str, status: &SfnStatus) -> Result<ExecutionStatus> {
    Ok(match status {
        SfnStatus::Running => ExecutionStatus::Running,
        SfnStatus::Succeeded => ExecutionStatus::Succeeded,
        SfnStatus::Failed => ExecutionStatus::Failed,
        SfnStatus::TimedOut => ExecutionStatus::TimedOut,
        SfnStatus::Aborted => ExecutionStatus::Aborted,
        SfnStatus::PendingRedrive => ExecutionStatus::PendingRedrive,
        other => {
            return Err(Error::Aws {
                operation: operation.into(),
                message: format!("unknown execution status {other:?}"),
            })
        }
    })
}
