//! EC2: the FreeSWITCH instances of a fleet, found by tag, every page read.

use crate::error::classify;
use crate::tags;
use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;
use pairscale_core::validate::InstanceInfo;
use pairscale_core::{FleetName, Result};
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct Instances {
    client: Client,
}

impl Instances {
    pub fn new(client: Client) -> Self {
        Instances { client }
    }

    /// Instances tagged for the fleet with role `freeswitch`, pending or running.
    #[instrument(skip(self), fields(fleet = %fleet))]
    pub async fn list(&self, fleet: &FleetName) -> Result<Vec<InstanceInfo>> {
        let filter = |k: String, v: &[&str]| {
            Filter::builder()
                .name(k)
                .set_values(Some(v.iter().map(|s| s.to_string()).collect()))
                .build()
        };
        let mut out = Vec::new();
        let mut token = None;
        // MaxResults counts reservations, not instances: follow NextToken until it ends.
        for _ in 0..10_000 {
            let page = self
                .client
                .describe_instances()
                .filters(filter(format!("tag:{}", tags::FLEET), &[fleet.as_str()]))
                .filters(filter(
                    format!("tag:{}", tags::ROLE),
                    &[tags::ROLE_FREESWITCH],
                ))
                .filters(filter(
                    "instance-state-name".into(),
                    &["pending", "running"],
                ))
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("ec2:DescribeInstances", e))?;
            for r in page.reservations() {
                for i in r.instances() {
                    let pair_tag = i
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(tags::PAIR_ID))
                        .and_then(|t| t.value())
                        .map(str::to_string);
                    out.push(InstanceInfo {
                        instance_id: i.instance_id().unwrap_or_default().to_string(),
                        pair_tag,
                        state: i
                            .state()
                            .and_then(|s| s.name())
                            .map(|n| n.as_str().to_string())
                            .unwrap_or_default(),
                        private_ip: i.private_ip_address().map(str::to_string),
                    });
                }
            }
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }
}
