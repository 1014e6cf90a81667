//! A build's log in CloudWatch Logs, where CodeBuild sends it: its last lines, read when a
//! build failed, to tell a passing failure from one no retry mends.

use crate::error::classify;
use aws_sdk_cloudwatchlogs::Client;
use pairscale_core::Result;
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct BuildLogs {
    client: Client,
}

impl BuildLogs {
    pub fn new(client: Client) -> Self {
        BuildLogs { client }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        BuildLogs::new(Client::new(sdk))
    }

    /// The last `lines` events of the stream, one line each, oldest first.
    #[instrument(skip(self))]
    pub async fn tail(&self, group: &str, stream: &str, lines: usize) -> Result<String> {
        let out = self
            .client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(false)
            .limit(i32::try_from(lines).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("logs:GetLogEvents", e))?;
        let lines: Vec<&str> = out
            .events()
            .iter()
            .filter_map(|e| e.message())
            .map(str::trim_end)
            .collect();
        Ok(lines.join("\n"))
    }
}
