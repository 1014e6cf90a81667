//! The builds a run started, kept on its journal item as `build_<step>` attributes (each a
//! map: build_id, kind, started_at), written by the build function the moment a build starts. One small
//! update of one attribute, fenced by the lock item, so the build function needs no right to
//! the records or the journal itself (its role allows exactly these attributes).

use super::codec::{from_av, n, s, to_av, Item};
use super::{pk, FleetTable, PK, RETENTION_SECS, RUN_PREFIX, SK, SK_LOCK};
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};
use pairscale_core::state::{Fence, JournalBuild};
use pairscale_core::{Error, FleetName, Result, Timestamp};
use std::collections::BTreeMap;

/// The attribute a step's build is kept in.
const BUILD_ATTR_PREFIX: &str = "build_";

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::internal(format!("building a DynamoDB request: {e}"))
}

/// The builds an item holds, by step.
pub(super) fn builds_of(item: &Item) -> Result<BTreeMap<String, JournalBuild>> {
    let mut out = BTreeMap::new();
    for (k, v) in item {
        let Some(step) = k.strip_prefix(BUILD_ATTR_PREFIX) else {
            continue;
        };
        let doc = from_av(v)?;
        let b: JournalBuild = serde_json::from_value(doc.clone())
            .map_err(|e| Error::corrupt(k, doc, e.to_string()))?;
        out.insert(step.to_string(), b);
    }
    Ok(out)
}

impl FleetTable {
    /// `build` under `step` on `run`'s journal item (created if the run wrote nothing yet),
    /// only while `fence` holds the lock. The same build again is a no-op; another build at
    /// the same step is refused.
    pub async fn note_build(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        run: &str,
        step: &str,
        build: &JournalBuild,
        now: Timestamp,
    ) -> Result<()> {
        let pk = pk(fleet);
        let doc = serde_json::to_value(build).map_err(|e| Error::internal(e.to_string()))?;
        let sk = format!("{RUN_PREFIX}{run}");
        let lock_is_ours = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PK, s(&pk))
            .key(SK, s(SK_LOCK))
            .condition_expression("holder = :me AND #token = :t")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":me", s(fence.owner.as_str()))
            .expression_attribute_values(":t", n(fence.token))
            .build()
            .map_err(build_err)?;
        let keep = Update::builder()
            .table_name(&self.table)
            .key(PK, s(&pk))
            .key(SK, s(&sk))
            .update_expression("SET #b = if_not_exists(#b, :b), #ttl = if_not_exists(#ttl, :ttl)")
            .condition_expression("attribute_not_exists(#b) OR #b.#id = :id")
            .expression_attribute_names("#b", format!("{BUILD_ATTR_PREFIX}{step}"))
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#id", "build_id")
            .expression_attribute_values(":b", to_av(&doc))
            .expression_attribute_values(":id", s(&build.build_id))
            .expression_attribute_values(":ttl", n(now.plus_secs(RETENTION_SECS).epoch_secs()))
            .build()
            .map_err(build_err)?;
        let res = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(lock_is_ours)
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().update(keep).build())
            .send()
            .await;
        let Err(e) = res else {
            return Ok(());
        };
        let why = self.explain_cancel(fleet, fence, e).await;
        if !matches!(why, Error::Retryable { .. }) {
            return Err(why);
        }
        // The lock is still ours: either the step holds another build, or the transaction met
        // a conflicting one (retry).
        if let Some(item) = self.get(fleet, &sk).await? {
            if let Some(other) = builds_of(&item)?.get(step) {
                if other.build_id != build.build_id {
                    return Err(Error::invalid(
                        "step",
                        step,
                        format!(
                            "run {run} already started build {} at this step",
                            other.build_id
                        ),
                    ));
                }
            }
        }
        Err(why)
    }
}
