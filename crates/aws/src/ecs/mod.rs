//! ECS: the ESL-client services of a fleet, found by tag, every page read.

use crate::error::classify;
use crate::tags;
use aws_sdk_ecs::types::ServiceField;
use aws_sdk_ecs::Client;
use pairscale_core::validate::ServiceInfo;
use pairscale_core::{FleetName, Result};
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct Services {
    client: Client,
    cluster: String,
}

impl Services {
    pub fn new(client: Client, cluster: impl Into<String>) -> Self {
        Services {
            client,
            cluster: cluster.into(),
        }
    }

    /// Services of the cluster tagged with the fleet (and so with a pair id).
    #[instrument(skip(self), fields(fleet = %fleet, cluster = %self.cluster))]
    pub async fn list(&self, fleet: &FleetName) -> Result<Vec<ServiceInfo>> {
        let mut arns = Vec::new();
        let mut token = None;
        for _ in 0..10_000 {
            let page = self
                .client
                .list_services()
                .cluster(&self.cluster)
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("ecs:ListServices", e))?;
            arns.extend(page.service_arns().iter().cloned());
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        let mut out = Vec::new();
        // DescribeServices takes at most 10 services a call.
        for chunk in arns.chunks(10) {
            let page = self
                .client
                .describe_services()
                .cluster(&self.cluster)
                .set_services(Some(chunk.to_vec()))
                .include(ServiceField::Tags)
                .send()
                .await
                .map_err(|e| classify("ecs:DescribeServices", e))?;
            for svc in page.services() {
                let tag = |k: &str| {
                    svc.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                        .map(str::to_string)
                };
                if tag(tags::FLEET).as_deref() != Some(fleet.as_str()) {
                    continue;
                }
                if svc.status() == Some("INACTIVE") {
                    continue;
                }
                out.push(ServiceInfo {
                    service_arn: svc.service_arn().unwrap_or_default().to_string(),
                    service_name: svc.service_name().unwrap_or_default().to_string(),
                    pair_tag: tag(tags::PAIR_ID),
                    status: svc.status().unwrap_or_default().to_string(),
                    desired_count: svc.desired_count(),
                    running_count: svc.running_count(),
                });
            }
        }
        Ok(out)
    }
}
