//! Pair records, fleet bookkeeping and run journals, written in transactions fenced by the
//! lock item.

use super::codec::{item_to_record, n, record_to_item, s, to_av, Item};
use super::{pk, PAIR_PREFIX, PK, RETENTION_SECS, RUN_PREFIX, SK, SK_LOCK, SK_META};
use crate::error::classify;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use pairscale_core::plan::Direction;
use pairscale_core::state::{Fence, Journal, WriteBatch};
use pairscale_core::{Error, FleetMeta, FleetName, Pair, PairId, Result};
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct FleetTable {
    pub(super) client: Client,
    pub(super) table: String,
}

const SET_QUALITY: &str = "SET #q = :q, #qa = :at";

/// A reading as the bookkeeping item holds it: the document, and its time in milliseconds.
fn quality_values(
    reading: &pairscale_core::QualityReading,
) -> Result<(
    aws_sdk_dynamodb::types::AttributeValue,
    aws_sdk_dynamodb::types::AttributeValue,
)> {
    let value = serde_json::to_value(reading).map_err(|e| Error::internal(e.to_string()))?;
    Ok((to_av(&value), n(reading.measured_at.millis())))
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::internal(format!("building a DynamoDB request: {e}"))
}

impl FleetTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        FleetTable {
            client,
            table: table.into(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub(super) async fn get(&self, fleet: &FleetName, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk(fleet)))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", e))?;
        Ok(out.item)
    }

    /// Every pair record, sorted by id (paginated: a fleet may have 1,000).
    #[instrument(skip(self), fields(fleet = %fleet))]
    pub async fn pairs(&self, fleet: &FleetName) -> Result<Vec<Pair>> {
        let mut pairs = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(pk(fleet)))
                .expression_attribute_values(":prefix", s(PAIR_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("dynamodb:Query", e))?;
            for item in out.items() {
                pairs.push(item_to_record::<Pair>("pair record", item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        pairs.sort_by_key(|p| p.id);
        Ok(pairs)
    }

    pub async fn meta(&self, fleet: &FleetName) -> Result<FleetMeta> {
        match self.get(fleet, SK_META).await? {
            Some(item) => item_to_record("fleet meta", &item),
            None => Ok(FleetMeta::default()),
        }
    }

    pub async fn journal(&self, fleet: &FleetName, run: &str) -> Result<Option<Journal>> {
        let Some(item) = self.get(fleet, &format!("{RUN_PREFIX}{run}")).await? else {
            return Ok(None);
        };
        journal_of(&item, fleet, &format!("{RUN_PREFIX}{run}")).map(Some)
    }

    /// Journals without `finished_at`, oldest first.
    pub async fn open_journals(&self, fleet: &FleetName) -> Result<Vec<Journal>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        // Bounded: a fleet keeps 30 days of journals, a few per hour at most.
        for _ in 0..1_000 {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :run)")
                .filter_expression("attribute_not_exists(finished_at)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(pk(fleet)))
                .expression_attribute_values(":run", s(RUN_PREFIX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb:Query", e))?;
            for item in page.items() {
                let key = item
                    .get(SK)
                    .and_then(|v| v.as_s().ok())
                    .map_or("RUN#", |k| k);
                out.push(journal_of(item, fleet, key)?);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by_key(|j| (j.started_at, j.run.clone()));
        Ok(out)
    }

    /// Another run's journal marked finished, only while `fence` holds the lock.
    pub async fn finish_journal(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        run: &str,
        now: pairscale_core::Timestamp,
    ) -> Result<()> {
        let pk = pk(fleet);
        let items = vec![
            self.fence_check(&pk, fence)?,
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .key(PK, s(&pk))
                        .key(SK, s(format!("{RUN_PREFIX}{run}")))
                        .update_expression("SET finished_at = if_not_exists(finished_at, :now)")
                        .condition_expression("attribute_exists(sk)")
                        .expression_attribute_values(":now", n(now.millis()))
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
        ];
        self.transact(fleet, fence, items).await
    }

    pub async fn allocate_pair_ids(&self, fleet: &FleetName, count: u32) -> Result<Vec<PairId>> {
        if count == 0 || count > pairscale_core::fleet::MAX_FLEET_PAIRS {
            return Err(Error::invalid(
                "new_pairs",
                count,
                format!("must be 1..={}", pairscale_core::fleet::MAX_FLEET_PAIRS),
            ));
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk(fleet)))
            .key(SK, s(SK_META))
            .update_expression("ADD last_pair_seq :n")
            .expression_attribute_values(":n", n(count))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem", e))?;
        let last = out
            .attributes()
            .and_then(|a| a.get("last_pair_seq"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| {
                Error::corrupt("fleet meta", "last_pair_seq", "not a number after ADD")
            })?;
        (last - count + 1..=last).map(PairId::new).collect()
    }

    /// One fenced transaction: the lock must still be `fence`'s, or nothing is written.
    #[instrument(skip(self, fence, batch), fields(fleet = %fleet, token = fence.token, puts = batch.put_pairs.len(), deletes = batch.delete_pairs.len()))]
    pub async fn write(&self, fleet: &FleetName, fence: &Fence, batch: &WriteBatch) -> Result<()> {
        let pk = pk(fleet);
        let mut items = vec![self.fence_check(&pk, fence)?];
        let journal =
            serde_json::to_string(&batch.journal).map_err(|e| Error::internal(e.to_string()))?;
        let journal_ttl = pairscale_core::Timestamp(batch.journal.started_at.millis())
            .plus_secs(RETENTION_SECS)
            .epoch_secs();
        items.push(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .item(PK, s(&pk))
                        .item(SK, s(format!("{RUN_PREFIX}{}", batch.journal.run)))
                        .item("journal", s(journal))
                        .item("ttl", n(journal_ttl))
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
        );
        for p in &batch.put_pairs {
            let mut item = record_to_item(p)?;
            item.insert(PK.into(), s(&pk));
            item.insert(SK.into(), s(format!("{PAIR_PREFIX}{}", p.id)));
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            );
        }
        for id in &batch.delete_pairs {
            items.push(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .key(PK, s(&pk))
                            .key(SK, s(format!("{PAIR_PREFIX}{id}")))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            );
        }
        if let Some((dir, at)) = batch.stamp {
            let attr = match dir {
                Direction::Out => "last_scale_out_at",
                Direction::In => "last_scale_in_at",
            };
            items.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.table)
                            .key(PK, s(&pk))
                            .key(SK, s(SK_META))
                            .update_expression("SET #a = :at")
                            .expression_attribute_names("#a", attr)
                            .expression_attribute_values(":at", n(at.millis()))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            );
        }
        self.transact(fleet, fence, items).await
    }

    /// A run's quality reading on the fleet's bookkeeping item (`quality`, and its time in
    /// milliseconds as `quality_at`), written only while the lock is still `fence`'s.
    #[instrument(skip(self, fence, reading), fields(fleet = %fleet, token = fence.token))]
    pub async fn record_quality(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        reading: &pairscale_core::QualityReading,
    ) -> Result<()> {
        let pk = pk(fleet);
        let (value, at) = quality_values(reading)?;
        let items = vec![
            self.fence_check(&pk, fence)?,
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .key(PK, s(&pk))
                        .key(SK, s(SK_META))
                        .update_expression(SET_QUALITY)
                        .expression_attribute_names("#q", "quality")
                        .expression_attribute_names("#qa", "quality_at")
                        .expression_attribute_values(":q", value)
                        .expression_attribute_values(":at", at)
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
        ];
        self.transact(fleet, fence, items).await
    }

    /// A scheduled quality reading, taken under no lock: written only over an older reading
    /// (by `quality_at`), so a late measurement never hides a newer one.
    #[instrument(skip(self, reading), fields(fleet = %fleet))]
    pub async fn note_quality(
        &self,
        fleet: &FleetName,
        reading: &pairscale_core::QualityReading,
    ) -> Result<()> {
        let (value, at) = quality_values(reading)?;
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk(fleet)))
            .key(SK, s(SK_META))
            .update_expression(SET_QUALITY)
            .condition_expression("attribute_not_exists(#qa) OR #qa < :at")
            .expression_attribute_names("#q", "quality")
            .expression_attribute_names("#qa", "quality_at")
            .expression_attribute_values(":q", value)
            .expression_attribute_values(":at", at)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                tracing::info!("a newer quality reading is already recorded");
                Ok(())
            }
            Err(e) => Err(classify("dynamodb:UpdateItem", e)),
        }
    }

    /// Record a load sample on one pair: its channel count, when it was read, the node's
    /// session counter and the arrivals a minute since the sample before (`last_channels`,
    /// `last_seen_at`, `sessions_since_startup`, `arrivals_per_minute`; the last two removed
    /// when unknown, so a stale rate never outlives the sample it came from). Under no lock:
    /// written only to a record that exists (a pair removed since is not brought back) and over
    /// an older sample, never a newer. Returns whether it was written.
    pub async fn note_sample(
        &self,
        fleet: &FleetName,
        pair: PairId,
        sample: pairscale_core::ports::LoadSample,
        at: pairscale_core::Timestamp,
    ) -> Result<bool> {
        let mut set = vec!["#c = :c", "#at = :at"];
        let mut remove = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk(fleet)))
            .key(SK, s(format!("{PAIR_PREFIX}{pair}")))
            .condition_expression(
                "attribute_exists(#sk) AND (attribute_not_exists(#at) OR #at < :at)",
            )
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#c", "last_channels")
            .expression_attribute_names("#at", "last_seen_at")
            .expression_attribute_names("#s", "sessions_since_startup")
            .expression_attribute_names("#r", "arrivals_per_minute")
            .expression_attribute_values(":c", n(sample.channels))
            .expression_attribute_values(":at", n(at.millis()));
        match sample.sessions_since_startup {
            Some(v) => {
                set.push("#s = :s");
                req = req.expression_attribute_values(":s", n(v));
            }
            None => remove.push("#s"),
        }
        match sample.arrivals_per_minute {
            Some(v) => {
                set.push("#r = :r");
                req = req.expression_attribute_values(":r", n(v));
            }
            None => remove.push("#r"),
        }
        let mut expr = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let res = req.update_expression(expr).send().await;
        match res {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("dynamodb:UpdateItem", e)),
        }
    }

    /// The check every fenced transaction starts with: the lock is still `fence`'s.
    fn fence_check(&self, pk: &str, fence: &Fence) -> Result<TransactWriteItem> {
        Ok(TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .key(PK, s(pk))
                    .key(SK, s(SK_LOCK))
                    .condition_expression("#holder = :me AND #token = :t")
                    .expression_attribute_names("#holder", "holder")
                    .expression_attribute_names("#token", "token")
                    .expression_attribute_values(":me", s(fence.owner.as_str()))
                    .expression_attribute_values(":t", n(fence.token))
                    .build()
                    .map_err(build_err)?,
            )
            .build())
    }

    /// One fenced transaction of `items` (the first being [`Self::fence_check`]).
    async fn transact(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        items: Vec<TransactWriteItem>,
    ) -> Result<()> {
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => Err(self.explain_cancel(fleet, fence, e).await),
        }
    }
}

/// The journal a run item holds (its `journal` attribute, JSON), with the builds the build
/// function noted beside it (`build_<step>` attributes, see [`super::builds`]); an item that
/// holds only builds is the journal of a run that changed no record yet. `what` is the item's
/// sort key, for errors.
fn journal_of(item: &Item, fleet: &FleetName, what: &str) -> Result<Journal> {
    let mut journal = match item.get("journal").and_then(|v| v.as_s().ok()) {
        Some(raw) => {
            serde_json::from_str(raw).map_err(|e| Error::corrupt("journal", raw, e.to_string()))?
        }
        None => {
            let run = what.strip_prefix(RUN_PREFIX).unwrap_or(what);
            Journal::new(fleet.clone(), run.to_string(), pairscale_core::Timestamp(0))
        }
    };
    let builds = super::builds::builds_of(item)?;
    if item.get("journal").is_none() && builds.is_empty() {
        return Err(Error::corrupt(
            "journal item",
            what,
            "has neither a journal nor a build",
        ));
    }
    if journal.started_at == pairscale_core::Timestamp(0) {
        if let Some(first) = builds.values().map(|b| b.started_at).min() {
            journal.started_at = first;
        }
    }
    for (step, b) in builds {
        journal.builds.entry(step).or_insert(b);
    }
    Ok(journal)
}
