//! CodeBuild: start the Terraform and Ansible builds, read their status, stop an overdue one,
//! and read the end of a failed one's log (CloudWatch Logs, where CodeBuild sends it).

use crate::error::classify;
use async_trait::async_trait;
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType};
use aws_sdk_codebuild::Client;
use pairscale_core::build::BuildStatus;
use pairscale_core::ports::{Builds, StartedBuild, LOG_TAIL_LINES};

pub mod logs;
use pairscale_core::{Error, Result};
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct CodeBuilds {
    client: Client,
    logs: logs::BuildLogs,
}

impl CodeBuilds {
    pub fn new(client: Client, logs: logs::BuildLogs) -> Self {
        CodeBuilds { client, logs }
    }

    /// CodeBuild and CloudWatch Logs from one loaded configuration.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        CodeBuilds::new(Client::new(sdk), logs::BuildLogs::from_sdk(sdk))
    }

    async fn describe(&self, build_id: &str) -> Result<aws_sdk_codebuild::types::Build> {
        let out = self
            .client
            .batch_get_builds()
            .ids(build_id)
            .send()
            .await
            .map_err(|e| classify("codebuild:BatchGetBuilds", e))?;
        out.builds()
            .iter()
            .find(|b| b.id() == Some(build_id))
            .cloned()
            .ok_or_else(|| Error::invalid("build_id", build_id, "CodeBuild knows no such build"))
    }
}

#[async_trait]
impl Builds for CodeBuilds {
    // The environment is not logged: it holds the whole pair set.
    #[instrument(skip(self, environment))]
    async fn start(
        &self,
        project: &str,
        environment: &[(String, String)],
        idempotency_token: &str,
    ) -> Result<StartedBuild> {
        let vars = environment
            .iter()
            .map(|(name, value)| {
                EnvironmentVariable::builder()
                    .name(name)
                    .value(value)
                    .r#type(EnvironmentVariableType::Plaintext)
                    .build()
                    .map_err(|e| Error::internal(format!("environment variable {name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .client
            .start_build()
            .project_name(project)
            .set_environment_variables_override(Some(vars))
            .idempotency_token(idempotency_token)
            .send()
            .await
            .map_err(|e| classify("codebuild:StartBuild", e))?;
        let build = out
            .build_value()
            .ok_or_else(|| Error::internal("StartBuild returned no build"))?;
        let build_id = build
            .id()
            .ok_or_else(|| Error::internal("StartBuild returned a build without an id"))?;
        Ok(StartedBuild {
            build_id: build_id.to_string(),
            project: build.project_name().unwrap_or(project).to_string(),
        })
    }

    #[instrument(skip(self))]
    async fn status(&self, build_id: &str) -> Result<BuildStatus> {
        let build = self.describe(build_id).await?;
        let status = build
            .build_status()
            .ok_or_else(|| Error::internal(format!("build {build_id} has no status")))?;
        BuildStatus::parse(status.as_str())
    }

    #[instrument(skip(self))]
    async fn stop(&self, build_id: &str) -> Result<()> {
        self.client
            .stop_build()
            .id(build_id)
            .send()
            .await
            .map_err(|e| classify("codebuild:StopBuild", e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn log_tail(&self, build_id: &str) -> Result<Option<String>> {
        let build = self.describe(build_id).await?;
        let Some(logs) = build.logs() else {
            return Ok(None);
        };
        let (Some(group), Some(stream)) = (logs.group_name(), logs.stream_name()) else {
            return Ok(None);
        };
        self.logs
            .tail(group, stream, LOG_TAIL_LINES)
            .await
            .map(Some)
    }
}
