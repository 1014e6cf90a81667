//! Step Functions: is a lock holder's execution still running?

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
            Ok(out) => Ok(match out.status() {
                SfnStatus::Running => ExecutionStatus::Running,
                SfnStatus::Succeeded => ExecutionStatus::Succeeded,
                SfnStatus::Failed => ExecutionStatus::Failed,
                SfnStatus::TimedOut => ExecutionStatus::TimedOut,
                SfnStatus::Aborted => ExecutionStatus::Aborted,
                SfnStatus::PendingRedrive => ExecutionStatus::PendingRedrive,
                other => {
                    return Err(Error::Aws {
                        operation: "states:DescribeExecution".into(),
                        message: format!("unknown execution status {other:?}"),
                    })
                }
            }),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), DescribeExecutionError::ExecutionDoesNotExist(_)) =>
            {
                Ok(ExecutionStatus::NotFound)
            }
            Err(e) => Err(classify("states:DescribeExecution", e)),
        }
    }
}
