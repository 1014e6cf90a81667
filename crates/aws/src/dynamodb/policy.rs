//! The policy's record of a fleet, one item (`FLEET#<fleet>`, `POLICY`): the recommendations
//! kept for the stabilisation window (`recent`, a list of `{at, pairs}`), the operator's
//! suspension (`suspended`: `{by, at, reason}`) and `version`, which every write checks and
//! raises. No `ttl`: the item lives as long as the fleet.

use super::codec::{from_av, n, s, to_av, Item};
use super::{pk, PK, SK, SK_POLICY};
use crate::error::classify;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::Client;
use pairscale_core::policy::{PolicyState, Recommendation, Suspension};
use pairscale_core::ports::PolicyStore;
use pairscale_core::{Error, FleetName, Result, Timestamp};
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct DynamoPolicyStore {
    client: Client,
    table: String,
}

impl DynamoPolicyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoPolicyStore {
            client,
            table: table.into(),
        }
    }
}

fn decode(item: &Item) -> Result<PolicyState> {
    let field = |name: &str| item.get(name).map(from_av).transpose();
    let corrupt =
        |what: &str, e: serde_json::Error| Error::corrupt("policy item", what, e.to_string());
    let recent: Vec<Recommendation> = match field("recent")? {
        Some(v) => serde_json::from_value(v).map_err(|e| corrupt("recent", e))?,
        None => Vec::new(),
    };
    let suspended: Option<Suspension> = match field("suspended")? {
        Some(serde_json::Value::Null) | None => None,
        Some(v) => Some(serde_json::from_value(v).map_err(|e| corrupt("suspended", e))?),
    };
    let version = match field("version")? {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| Error::corrupt("policy item", v, "version is not a count"))?,
        None => 0,
    };
    Ok(PolicyState {
        recent,
        suspended,
        version,
    })
}

fn conditional_failed(
    e: &SdkError<UpdateItemError, aws_smithy_runtime_api::http::Response>,
) -> bool {
    matches!(e, SdkError::ServiceError(se)
        if matches!(se.err(), UpdateItemError::ConditionalCheckFailedException(_)))
}

#[async_trait]
impl PolicyStore for DynamoPolicyStore {
    #[instrument(skip(self), fields(fleet = %fleet))]
    async fn load(&self, fleet: &FleetName) -> Result<PolicyState> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk(fleet)))
            .key(SK, s(SK_POLICY))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", e))?;
        match out.item {
            Some(item) => decode(&item),
            None => Ok(PolicyState::default()),
        }
    }

    #[instrument(skip(self, recent), fields(fleet = %fleet, kept = recent.len()))]
    async fn save_recent(
        &self,
        fleet: &FleetName,
        version: u64,
        recent: &[Recommendation],
        now: Timestamp,
    ) -> Result<bool> {
        let value = serde_json::to_value(recent).map_err(|e| Error::internal(e.to_string()))?;
        let b = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk(fleet)))
            .key(SK, s(SK_POLICY))
            .update_expression("SET #r = :r, #v = :next, #u = :now")
            .expression_attribute_names("#r", "recent")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#u", "updated_at")
            .expression_attribute_values(":r", to_av(&value))
            .expression_attribute_values(":next", n(version + 1))
            .expression_attribute_values(":now", n(now.millis()));
        // Version 0 is "no item yet": only a first write may create it.
        let b = if version == 0 {
            b.condition_expression("attribute_not_exists(#v)")
        } else {
            b.condition_expression("#v = :read")
                .expression_attribute_values(":read", n(version))
        };
        match b.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => {
                tracing::info!(version, "another evaluation wrote first");
                Ok(false)
            }
            Err(e) => Err(classify("dynamodb:UpdateItem", e)),
        }
    }

    #[instrument(skip(self, suspension), fields(fleet = %fleet, suspend = suspension.is_some()))]
    async fn set_suspended(
        &self,
        fleet: &FleetName,
        suspension: Option<&Suspension>,
    ) -> Result<()> {
        let b = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk(fleet)))
            .key(SK, s(SK_POLICY))
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0));
        let b = match suspension {
            Some(susp) => {
                let value =
                    serde_json::to_value(susp).map_err(|e| Error::internal(e.to_string()))?;
                b.update_expression("SET #s = :s, #v = if_not_exists(#v, :zero) + :one")
                    .expression_attribute_names("#s", "suspended")
                    .expression_attribute_values(":s", to_av(&value))
            }
            None => b
                .update_expression("SET #v = if_not_exists(#v, :zero) + :one REMOVE #s")
                .expression_attribute_names("#s", "suspended"),
        };
        b.send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem", e))?;
        Ok(())
    }
}
