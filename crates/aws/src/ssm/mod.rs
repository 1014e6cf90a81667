//! SSM Parameter Store: `/pairscale/<fleet>/pair_count` (the committed pair count, a plain
//! integer string that Terraform and a human in the console can read) and
//! `/pairscale/<fleet>/config` (the fleet configuration, JSON, validated on every read).

use crate::error::classify;
use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::types::ParameterType;
use aws_sdk_ssm::Client;
use pairscale_core::fleet::MAX_FLEET_PAIRS;
use pairscale_core::{Error, FleetConfig, FleetName, Result};
use tracing::instrument;

pub const DEFAULT_PREFIX: &str = "/pairscale";

#[derive(Debug, Clone)]
pub struct FleetParams {
    client: Client,
    prefix: String,
}

impl FleetParams {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        FleetParams {
            client,
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    pub fn pair_count_name(&self, fleet: &FleetName) -> String {
        format!("{}/{fleet}/pair_count", self.prefix)
    }

    pub fn config_name(&self, fleet: &FleetName) -> String {
        format!("{}/{fleet}/config", self.prefix)
    }

    /// A parameter's value, `None` when it does not exist.
    async fn get(&self, name: &str, decrypt: bool) -> Result<Option<String>> {
        match self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(decrypt)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), GetParameterError::ParameterNotFound(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify("ssm:GetParameter", e)),
        }
    }

    /// One of a fleet's own parameters: its absence means the fleet is unknown.
    async fn fleet_param(&self, fleet: &FleetName, name: &str) -> Result<String> {
        self.get(name, false)
            .await?
            .ok_or_else(|| Error::UnknownFleet {
                fleet: fleet.to_string(),
                what: format!("SSM parameter {name}"),
            })
    }

    #[instrument(skip(self), fields(fleet = %fleet))]
    pub async fn pair_count(&self, fleet: &FleetName) -> Result<u32> {
        let name = self.pair_count_name(fleet);
        let raw = self.fleet_param(fleet, &name).await?;
        parse_pair_count(&name, &raw)
    }

    #[instrument(skip(self), fields(fleet = %fleet))]
    pub async fn set_pair_count(&self, fleet: &FleetName, count: u32) -> Result<()> {
        if count > MAX_FLEET_PAIRS {
            return Err(Error::invalid(
                "pair_count",
                count,
                format!("must be at most {MAX_FLEET_PAIRS}"),
            ));
        }
        self.client
            .put_parameter()
            .name(self.pair_count_name(fleet))
            .value(count.to_string())
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| classify("ssm:PutParameter", e))?;
        Ok(())
    }

    #[instrument(skip(self), fields(fleet = %fleet))]
    pub async fn config(&self, fleet: &FleetName) -> Result<FleetConfig> {
        let name = self.config_name(fleet);
        let raw = self.fleet_param(fleet, &name).await?;
        FleetConfig::from_json(fleet, &raw)
    }

    /// A plain String parameter that must exist (the dispatcher database's CA bundle).
    #[instrument(skip(self))]
    pub async fn text(&self, name: &str) -> Result<String> {
        self.get(name, false).await?.ok_or_else(|| Error::Aws {
            operation: "ssm:GetParameter".into(),
            message: format!("parameter {name} does not exist"),
        })
    }

    /// A SecureString (the ESL password): decrypted, never logged.
    #[instrument(skip(self))]
    pub async fn secret(&self, name: &str) -> Result<String> {
        self.get(name, true).await?.ok_or_else(|| Error::Aws {
            operation: "ssm:GetParameter".into(),
            message: format!("secret parameter {name} does not exist"),
        })
    }
}

/// The count is a plain non-negative integer; anything else is corrupt, not zero.
pub fn parse_pair_count(name: &str, raw: &str) -> Result<u32> {
    let t = raw.trim();
    let ok = !t.is_empty() && t.len() <= 4 && t.chars().all(|c| c.is_ascii_digit());
    match t.parse::<u32>() {
        Ok(v) if ok && v <= MAX_FLEET_PAIRS => Ok(v),
        _ => Err(Error::corrupt(
            name,
            raw,
            format!("must be a whole number from 0 to {MAX_FLEET_PAIRS}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_counts_are_plain_integers() {
        assert_eq!(parse_pair_count("p", "4").expect("4"), 4);
        assert_eq!(parse_pair_count("p", " 12\n").expect("12"), 12);
        for bad in ["", "-1", "4.0", "four", "1001", "0x10", "+3", "99999999999"] {
            let e = parse_pair_count("/pairscale/voice/pair_count", bad).expect_err(bad);
            assert!(e.to_string().contains("/pairscale/voice/pair_count"), "{e}");
        }
    }
}
