//! The scaling lock as one DynamoDB item, changed only by conditional writes.
//!
//! The item is never deleted by pairscale: a release clears the holder and keeps the token,
//! so the next acquisition's token is larger. The `ttl` attribute lets DynamoDB remove an
//! abandoned item long after it expired; tokens still grow then, because they never fall
//! below the clock in milliseconds ([`pairscale_core::lock::next_token`]).

use super::codec::{item_to_record, n, s, Item};
use super::{pk, PK, RETENTION_SECS, RUN_PREFIX, SK, SK_LOCK};
use crate::error::classify;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use pairscale_core::lock::{
    held_error, next_token, BreakRecord, LockGrant, LockRecord, ReleaseOutcome,
};
use pairscale_core::ports::{AcquireLock, LockStore};
use pairscale_core::{Error, FleetName, Owner, Result, Timestamp};
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct DynamoLockStore {
    client: Client,
    table: String,
}

impl DynamoLockStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoLockStore {
            client,
            table: table.into(),
        }
    }

    /// An update of the lock item. `names` are the `#placeholders` its expressions use:
    /// DynamoDB refuses a request that declares a name none of its expressions uses.
    fn update(
        &self,
        fleet: &FleetName,
        names: &[&str],
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let mut b = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk(fleet)))
            .key(SK, s(SK_LOCK));
        for name in names {
            let attr = match *name {
                "#holder" => "holder",
                "#token" => "token",
                "#expires" => "expires_at",
                "#ttl" => "ttl",
                "#request" => "request",
                other => other.trim_start_matches('#'),
            };
            b = b.expression_attribute_names(*name, attr);
        }
        b
    }

    async fn get_consistent(&self, fleet: &FleetName) -> Result<Option<LockRecord>> {
        self.seen(fleet, None).await
    }

    /// The lock item as the failed write saw it: from the error when DynamoDB returned it,
    /// otherwise read back.
    async fn seen_item(&self, fleet: &FleetName, old: Option<Item>) -> Result<Option<Item>> {
        if old.is_some() {
            return Ok(old);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk(fleet)))
            .key(SK, s(SK_LOCK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", e))?;
        Ok(out.item)
    }

    async fn seen(&self, fleet: &FleetName, old: Option<Item>) -> Result<Option<LockRecord>> {
        self.seen_item(fleet, old)
            .await?
            .map(|i| decode(fleet, &i))
            .transpose()
    }
}

/// For a conditional-check failure, `Some(item it saw, if returned)`; `None` for any other error.
fn conditional_failure_item(
    e: &SdkError<UpdateItemError, aws_smithy_runtime_api::http::Response>,
) -> Option<Option<Item>> {
    match e {
        SdkError::ServiceError(se) => match se.err() {
            UpdateItemError::ConditionalCheckFailedException(c) => Some(c.item().cloned()),
            _ => None,
        },
        _ => None,
    }
}

fn decode(fleet: &FleetName, item: &Item) -> Result<LockRecord> {
    let mut item = item.clone();
    item.insert("fleet".into(), s(fleet.as_str()));
    item_to_record("lock item", &item)
}

fn grant(rec: &LockRecord, owner: &Owner, reacquired: bool) -> LockGrant {
    LockGrant {
        fleet: rec.fleet.clone(),
        owner: owner.to_string(),
        token: rec.token,
        acquired_at: rec.acquired_at,
        expires_at: rec.expires_at,
        reacquired,
    }
}

fn not_owned(fleet: &FleetName, owner: &Owner, rec: Option<&LockRecord>, now: Timestamp) -> Error {
    let holder = match rec {
        Some(r) if r.held_by(owner) && r.is_expired(now) => {
            format!("nobody: it expired at {}", r.expires_at.rfc3339())
        }
        Some(r) => r.holder.clone().unwrap_or_else(|| "nobody".into()),
        None => "nobody".into(),
    };
    Error::LockNotOwned {
        fleet: fleet.to_string(),
        owner: owner.to_string(),
        holder,
    }
}

#[async_trait]
impl LockStore for DynamoLockStore {
    #[instrument(skip(self), fields(fleet = %fleet, owner = %owner))]
    async fn finish_journal(
        &self,
        fleet: &FleetName,
        owner: &Owner,
        now: Timestamp,
    ) -> Result<bool> {
        use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};
        let build = |e: aws_sdk_dynamodb::error::BuildError| Error::internal(e.to_string());
        let pk = pk(fleet);
        let res = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .key(PK, s(&pk))
                            .key(SK, s(SK_LOCK))
                            .condition_expression("#holder = :me")
                            .expression_attribute_names("#holder", "holder")
                            .expression_attribute_values(":me", s(owner.as_str()))
                            .build()
                            .map_err(build)?,
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.table)
                            .key(PK, s(&pk))
                            .key(SK, s(format!("{RUN_PREFIX}{owner}")))
                            .update_expression("SET finished_at = :now")
                            .condition_expression(
                                "attribute_exists(sk) AND attribute_not_exists(finished_at)",
                            )
                            .expression_attribute_values(":now", n(now.millis()))
                            .build()
                            .map_err(build)?,
                    )
                    .build(),
            )
            .send()
            .await;
        match res {
            Ok(_) => {
                tracing::info!("run journal finished");
                Ok(true)
            }
            // A condition failed: no journal, finished already, or not our lock.
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                Ok(false)
            }
            Err(e) => Err(classify("dynamodb:TransactWriteItems", e)),
        }
    }

    #[instrument(skip(self, req), fields(fleet = %req.fleet, owner = %req.owner))]
    async fn acquire(&self, req: &AcquireLock) -> Result<LockGrant> {
        let now = req.now;
        let expires = now.plus_secs(req.ttl_secs);
        let mut candidate = next_token(None, now);
        // Normally one write. A second only for a retried acquire (extend our own lock) or
        // when a stored token is ahead of the clock (bounded: the next candidate beats it).
        for _ in 0..3 {
            let res = self
                .update(
                    &req.fleet,
                    &["#holder", "#token", "#expires", "#request", "#ttl"],
                )
                .update_expression(
                    "SET #holder = :me, #token = :cand, acquired_at = :now, #expires = :exp, \
                     heartbeat_at = :now, #request = :req, #ttl = :ttl REMOVE released_at",
                )
                .condition_expression(
                    "(attribute_not_exists(#holder) OR #expires <= :now) \
                     AND (attribute_not_exists(#token) OR #token < :cand)",
                )
                .expression_attribute_values(":me", s(req.owner.as_str()))
                .expression_attribute_values(":cand", n(candidate))
                .expression_attribute_values(":now", n(now.millis()))
                .expression_attribute_values(":exp", n(expires.millis()))
                .expression_attribute_values(
                    ":req",
                    s(pairscale_core::error::shorten(&req.request)),
                )
                .expression_attribute_values(
                    ":ttl",
                    n(expires.plus_secs(RETENTION_SECS).epoch_secs()),
                )
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let err = match res {
                Ok(out) => {
                    let item = out
                        .attributes()
                        .ok_or_else(|| Error::internal("UpdateItem returned no attributes"))?;
                    let rec = decode(&req.fleet, item)?;
                    tracing::info!(token = rec.token, "lock acquired");
                    return Ok(grant(&rec, &req.owner, false));
                }
                Err(e) => e,
            };
            let Some(old) = conditional_failure_item(&err) else {
                return Err(classify("dynamodb:UpdateItem", err));
            };
            let Some(rec) = self.seen(&req.fleet, old).await? else {
                // Gone between the write and the read (a TTL deletion): try again.
                continue;
            };
            if rec.is_held(now) {
                if rec.held_by(&req.owner) {
                    tracing::info!(
                        token = rec.token,
                        "lock already held by this owner: extending"
                    );
                    return self
                        .heartbeat(&req.fleet, &req.owner, req.ttl_secs, now)
                        .await;
                }
                return Err(held_error(&rec));
            }
            candidate = next_token(Some(rec.token), now);
        }
        Err(Error::Retryable {
            operation: "acquire lock".into(),
            message: "the lock item kept changing under us".into(),
        })
    }

    #[instrument(skip(self), fields(fleet = %fleet, owner = %owner))]
    async fn release(
        &self,
        fleet: &FleetName,
        owner: &Owner,
        now: Timestamp,
    ) -> Result<ReleaseOutcome> {
        let res = self
            .update(fleet, &["#holder", "#ttl"])
            .update_expression(
                "REMOVE #holder SET released_at = :now, released_by = :me, #ttl = :ttl",
            )
            .condition_expression("#holder = :me")
            .expression_attribute_values(":me", s(owner.as_str()))
            .expression_attribute_values(":now", n(now.millis()))
            .expression_attribute_values(":ttl", n(now.plus_secs(RETENTION_SECS).epoch_secs()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => {
                tracing::info!("lock released");
                Ok(ReleaseOutcome::Released)
            }
            Err(e) => {
                let Some(old) = conditional_failure_item(&e) else {
                    return Err(classify("dynamodb:UpdateItem", e));
                };
                // Not ours now. Success when we had released it (or it was broken from us):
                // a retried release. Otherwise someone else's lock: refuse.
                let item = self.seen_item(fleet, old).await?;
                let rec = item.as_ref().map(|i| decode(fleet, i)).transpose()?;
                let was_ours = rec.as_ref().is_some_and(|r| {
                    r.broken
                        .as_ref()
                        .is_some_and(|b| b.previous_holder == owner.as_str())
                        || released_by(item.as_ref()).as_deref() == Some(owner.as_str())
                });
                match rec {
                    None => Ok(ReleaseOutcome::AlreadyReleased),
                    Some(r) if r.holder.is_none() || was_ours => {
                        Ok(ReleaseOutcome::AlreadyReleased)
                    }
                    Some(r) => Err(not_owned(fleet, owner, Some(&r), now)),
                }
            }
        }
    }

    #[instrument(skip(self), fields(fleet = %fleet, owner = %owner))]
    async fn heartbeat(
        &self,
        fleet: &FleetName,
        owner: &Owner,
        ttl_secs: u64,
        now: Timestamp,
    ) -> Result<LockGrant> {
        let expires = now.plus_secs(ttl_secs);
        let res = self
            .update(fleet, &["#expires", "#ttl", "#holder"])
            .update_expression("SET #expires = :exp, heartbeat_at = :now, #ttl = :ttl")
            // An expired lock is not ours to extend: another run may already be breaking it.
            .condition_expression("#holder = :me AND #expires > :now")
            .expression_attribute_values(":exp", n(expires.millis()))
            .expression_attribute_values(":now", n(now.millis()))
            .expression_attribute_values(":ttl", n(expires.plus_secs(RETENTION_SECS).epoch_secs()))
            .expression_attribute_values(":me", s(owner.as_str()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => {
                let rec = decode(
                    fleet,
                    out.attributes()
                        .ok_or_else(|| Error::internal("UpdateItem returned no attributes"))?,
                )?;
                Ok(grant(&rec, owner, true))
            }
            Err(e) => {
                let old = conditional_failure_item(&e);
                match old {
                    Some(old) => {
                        let rec = self.seen(fleet, old).await?;
                        Err(not_owned(fleet, owner, rec.as_ref(), now))
                    }
                    None => Err(classify("dynamodb:UpdateItem", e)),
                }
            }
        }
    }

    async fn get(&self, fleet: &FleetName) -> Result<Option<LockRecord>> {
        self.get_consistent(fleet).await
    }

    #[instrument(skip(self, expected, record), fields(fleet = %expected.fleet))]
    async fn force_release(&self, expected: &LockRecord, record: &BreakRecord) -> Result<()> {
        let fleet = &expected.fleet;
        let holder = expected
            .holder
            .as_deref()
            .ok_or_else(|| Error::internal("force_release of a lock with no holder"))?;
        let broken = super::codec::to_av(
            &serde_json::to_value(record).map_err(|e| Error::internal(e.to_string()))?,
        );
        let res = self
            .update(fleet, &["#holder", "#token", "#expires"])
            .update_expression("REMOVE #holder SET released_at = :now, broken = :broken")
            // Only the lock as it was judged stale: a heartbeat since (a new expiry) keeps it.
            .condition_expression("#holder = :h AND #token = :t AND #expires = :e")
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":t", n(expected.token))
            .expression_attribute_values(":e", n(expected.expires_at.millis()))
            .expression_attribute_values(":now", n(record.broken_at.millis()))
            .expression_attribute_values(":broken", broken)
            .send()
            .await;
        match res {
            Ok(_) => {
                tracing::warn!(previous_holder = holder, token = expected.token, reason = %record.reason, "stale lock broken");
                Ok(())
            }
            Err(e) if conditional_failure_item(&e).is_some() => Err(Error::LockNotStale {
                fleet: fleet.to_string(),
                why: "the lock was renewed or changed hands while it was being broken".into(),
            }),
            Err(e) => Err(classify("dynamodb:UpdateItem", e)),
        }
    }
}

fn released_by(item: Option<&Item>) -> Option<String> {
    item?.get("released_by")?.as_s().ok().cloned()
}
