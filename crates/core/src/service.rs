//! The domain's use cases, written against the ports: breaking a stale lock, committing a
//! journaled change, rolling a run back. No I/O of their own; every effect goes through a trait.

use crate::error::{Error, Result};
use crate::fleet::{Pair, PairStatus};
use crate::ids::{FleetName, Owner, PairId, Timestamp};
use crate::lock::{staleness, BreakRecord, ExecutionStatus, Staleness};
use crate::plan::Direction;
use crate::ports::{ExecutionRegistry, FleetStateStore, LockStore};
use crate::state::{apply_update, rollback_batch, ChangeSet, Fence, Journal, WriteBatch};
use serde::Serialize;
use std::collections::BTreeMap;

/// The most pair writes in one store transaction (DynamoDB allows 100 actions; the lock
/// check, the journal and the fleet bookkeeping take three).
pub const MAX_PAIR_WRITES_PER_BATCH: usize = 90;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakOutcome {
    pub broken: BreakRecord,
    /// Why it was stale: `expired`, or the holder's final execution status.
    pub stale_because: String,
}

/// Break the lock only when its holder can no longer be using it: it has expired, or its
/// execution is no longer running. Never otherwise.
pub async fn break_stale(
    locks: &dyn LockStore,
    executions: &dyn ExecutionRegistry,
    fleet: &FleetName,
    breaker: &str,
    reason: &str,
    now: Timestamp,
) -> Result<BreakOutcome> {
    let record = locks.get(fleet).await?.ok_or_else(|| Error::LockNotStale {
        fleet: fleet.to_string(),
        why: "no lock exists".into(),
    })?;
    let owner_status = match record.holder.as_deref().and_then(|h| Owner::parse(h).ok()) {
        Some(owner) => match owner.execution_arn() {
            Some(arn) => Some(executions.status(arn).await?),
            None => None,
        },
        None => None,
    };
    let stale_because = match staleness(&record, now, owner_status) {
        Staleness::NotHeld => {
            return Err(Error::LockNotStale {
                fleet: fleet.to_string(),
                why: "the lock is not held".into(),
            })
        }
        Staleness::Live { why } => {
            return Err(Error::LockNotStale {
                fleet: fleet.to_string(),
                why,
            })
        }
        Staleness::Expired { expired_at } => format!("expired at {}", expired_at.rfc3339()),
        Staleness::OwnerFinished { status } => {
            format!("holder execution is {}", status_name(status))
        }
    };
    let broken = BreakRecord {
        broken_by: breaker.to_string(),
        broken_at: now,
        previous_holder: record.holder.clone().unwrap_or_default(),
        previous_token: record.token,
        reason: format!("{reason} ({stale_because})"),
    };
    locks.force_release(&record, &broken).await?;
    Ok(BreakOutcome {
        broken,
        stale_because,
    })
}

fn status_name(s: ExecutionStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| format!("{s:?}"))
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitReceipt {
    pub run: String,
    pub pair_count_before: Option<u32>,
    pub pair_count: Option<u32>,
    /// Pair ids created by this run (the same ids on a retry).
    pub new_pairs: Vec<PairId>,
    pub pairs: Vec<Pair>,
    pub removed: Vec<PairId>,
}

/// Apply a change under the lock, journaling the state before it first, so that `rollback`
/// can restore it exactly. Safe to retry with the same input: a retry allocates no new ids
/// and leaves records as the first attempt wrote them.
pub async fn commit(
    store: &dyn FleetStateStore,
    fleet: &FleetName,
    fence: &Fence,
    run: &str,
    changes: &ChangeSet,
    now: Timestamp,
) -> Result<CommitReceipt> {
    let mut journal = store
        .journal(fleet, run)
        .await?
        .unwrap_or_else(|| Journal::new(fleet.clone(), run.to_string(), now));
    if journal.rolled_back_at.is_some() {
        return Err(Error::invalid(
            "run",
            run,
            "this run was rolled back; start a new run",
        ));
    }
    let current: BTreeMap<PairId, Pair> = store
        .pairs(fleet)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();

    // New pairs: allocate once per run.
    let new_ids = if changes.new_pairs == 0 {
        Vec::new()
    } else if journal.allocated.is_empty() {
        let ids = store.allocate_pair_ids(fleet, changes.new_pairs).await?;
        journal.allocated = ids.clone();
        ids
    } else if journal.allocated.len() == changes.new_pairs as usize {
        journal.allocated.clone()
    } else {
        return Err(Error::invalid(
            "new_pairs",
            changes.new_pairs,
            format!(
                "run {run} already allocated {} pair(s); a run adds pairs once",
                journal.allocated.len()
            ),
        ));
    };

    let mut next: BTreeMap<PairId, Pair> = BTreeMap::new();
    for id in &new_ids {
        journal.remember(*id, current.get(id));
        let p = current
            .get(id)
            .cloned()
            .unwrap_or_else(|| Pair::new(*id, PairStatus::Provisioning, now));
        next.insert(*id, p);
    }
    for u in &changes.updates {
        let base = next
            .get(&u.pair_id)
            .or_else(|| current.get(&u.pair_id))
            .ok_or_else(|| {
                Error::invalid(
                    "updates.pair_id",
                    u.pair_id,
                    format!("no such pair in fleet '{fleet}'"),
                )
            })?;
        let updated = apply_update(base, u, now)?;
        journal.remember(u.pair_id, current.get(&u.pair_id));
        next.insert(u.pair_id, updated);
    }
    let mut removed = Vec::new();
    for id in &changes.removes {
        if next.contains_key(id) {
            return Err(Error::invalid(
                "removes",
                id,
                "a pair cannot be updated and removed at once",
            ));
        }
        match current.get(id) {
            Some(p) if matches!(p.status, PairStatus::Drained | PairStatus::Failed) => {
                journal.remember(*id, Some(p));
                removed.push(*id);
            }
            Some(p) => {
                return Err(Error::invalid(
                    "removes",
                    id,
                    format!(
                        "only drained or failed pairs are removed; this one is {}",
                        p.status.as_str()
                    ),
                ))
            }
            // Already gone: a retried removal.
            None => {}
        }
    }
    if let Some(n) = changes.pair_count {
        if n > crate::fleet::MAX_FLEET_PAIRS {
            return Err(Error::invalid("pair_count", n, "must be at most 1000"));
        }
        if journal.pair_count_before.is_none() {
            journal.pair_count_before = Some(store.pair_count(fleet).await?);
        }
    }

    let puts: Vec<Pair> = next.values().cloned().collect();
    write_in_batches(
        store,
        fleet,
        fence,
        journal.clone(),
        puts.clone(),
        removed.clone(),
        changes.scaled.map(|d| (d, now)),
    )
    .await?;
    if let Some(n) = changes.pair_count {
        store.set_pair_count(fleet, n).await?;
    }
    Ok(CommitReceipt {
        run: run.to_string(),
        pair_count_before: journal.pair_count_before,
        pair_count: changes.pair_count,
        new_pairs: new_ids,
        pairs: puts,
        removed,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackReceipt {
    pub run: String,
    /// False when the run had written nothing.
    pub rolled_back: bool,
    pub pair_count_restored: Option<u32>,
    pub pairs_restored: Vec<PairId>,
    pub pairs_deleted: Vec<PairId>,
}

/// Put back every record and the count a run changed, as they were before it. Idempotent.
pub async fn rollback(
    store: &dyn FleetStateStore,
    fleet: &FleetName,
    fence: &Fence,
    run: &str,
    now: Timestamp,
) -> Result<RollbackReceipt> {
    let Some(journal) = store.journal(fleet, run).await? else {
        return Ok(RollbackReceipt {
            run: run.to_string(),
            rolled_back: false,
            pair_count_restored: None,
            pairs_restored: Vec::new(),
            pairs_deleted: Vec::new(),
        });
    };
    let count_before = journal.pair_count_before;
    let batch = rollback_batch(journal, now);
    let restored = batch.put_pairs.iter().map(|p| p.id).collect();
    let deleted = batch.delete_pairs.clone();
    write_in_batches(
        store,
        fleet,
        fence,
        batch.journal,
        batch.put_pairs,
        batch.delete_pairs,
        None,
    )
    .await?;
    if let Some(n) = count_before {
        store.set_pair_count(fleet, n).await?;
    }
    Ok(RollbackReceipt {
        run: run.to_string(),
        rolled_back: true,
        pair_count_restored: count_before,
        pairs_restored: restored,
        pairs_deleted: deleted,
    })
}

/// Every batch carries the whole journal, so whichever batches land, the journal covers them.
async fn write_in_batches(
    store: &dyn FleetStateStore,
    fleet: &FleetName,
    fence: &Fence,
    journal: Journal,
    puts: Vec<Pair>,
    deletes: Vec<PairId>,
    stamp: Option<(Direction, Timestamp)>,
) -> Result<()> {
    let mut writes: Vec<Result<Pair, PairId>> = puts.into_iter().map(Ok).collect();
    writes.extend(deletes.into_iter().map(Err));
    let mut chunks: Vec<Vec<Result<Pair, PairId>>> = writes
        .chunks(MAX_PAIR_WRITES_PER_BATCH)
        .map(<[_]>::to_vec)
        .collect();
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    for chunk in chunks {
        let (put_pairs, delete_pairs) =
            chunk
                .into_iter()
                .fold((Vec::new(), Vec::new()), |(mut p, mut d), w| {
                    match w {
                        Ok(pair) => p.push(pair),
                        Err(id) => d.push(id),
                    }
                    (p, d)
                });
        let batch = WriteBatch {
            journal: journal.clone(),
            put_pairs,
            delete_pairs,
            stamp,
        };
        store.write(fleet, fence, &batch).await?;
    }
    Ok(())
}

/// What a run whose lock was broken as stale left behind, judged from its journal and the
/// records as they are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaleRun {
    /// It wrote nothing, or was rolled back already.
    NothingWritten,
    /// It stopped before its count commit and before removing any pair: roll it back.
    RollBack,
    /// It committed its count (a scale-out stopped before it put its new nodes into rotation,
    /// or any run stopped before its release): its records are the truth; nothing to undo.
    Committed,
    /// It stopped while removing these drained pairs: they may already be deregistered or
    /// destroyed, so rolling it back would bring back records of pairs that are gone.
    Removing(Vec<PairId>),
}

/// Judge a stale run's leftovers (no I/O).
pub fn assess_stale_run(journal: Option<&Journal>, pairs: &[Pair]) -> StaleRun {
    let Some(j) = journal else {
        return StaleRun::NothingWritten;
    };
    if j.rolled_back_at.is_some() || (j.pairs_before.is_empty() && j.pair_count_before.is_none()) {
        return StaleRun::NothingWritten;
    }
    if j.pair_count_before.is_some() {
        return StaleRun::Committed;
    }
    let removing: Vec<PairId> = pairs
        .iter()
        .filter(|p| j.pairs_before.contains_key(&p.id) && p.status == PairStatus::Drained)
        .map(|p| p.id)
        .collect();
    if removing.is_empty() {
        StaleRun::RollBack
    } else {
        StaleRun::Removing(removing)
    }
}

#[cfg(test)]
mod stale_run_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fleet() -> FleetName {
        FleetName::parse("voice").unwrap()
    }

    fn pair(seq: u32, status: PairStatus) -> Pair {
        Pair::new(PairId::new(seq).unwrap(), status, Timestamp(0))
    }

    #[test]
    fn a_run_that_wrote_nothing_or_was_rolled_back_needs_nothing() {
        assert_eq!(assess_stale_run(None, &[]), StaleRun::NothingWritten);
        let j = Journal::new(fleet(), "run".into(), Timestamp(1));
        assert_eq!(assess_stale_run(Some(&j), &[]), StaleRun::NothingWritten);
        let mut j = j;
        j.remember(PairId::new(1).unwrap(), Some(&pair(1, PairStatus::Active)));
        j.rolled_back_at = Some(Timestamp(2));
        assert_eq!(assess_stale_run(Some(&j), &[]), StaleRun::NothingWritten);
    }

    #[test]
    fn a_drain_stopped_midway_is_rolled_back() {
        let mut j = Journal::new(fleet(), "run".into(), Timestamp(1));
        j.remember(PairId::new(1).unwrap(), Some(&pair(1, PairStatus::Active)));
        let now = [pair(1, PairStatus::Draining), pair(2, PairStatus::Active)];
        assert_eq!(assess_stale_run(Some(&j), &now), StaleRun::RollBack);
    }

    #[test]
    fn a_run_removing_drained_pairs_is_not_rolled_back() {
        let mut j = Journal::new(fleet(), "run".into(), Timestamp(1));
        j.remember(PairId::new(1).unwrap(), Some(&pair(1, PairStatus::Active)));
        j.remember(PairId::new(2).unwrap(), Some(&pair(2, PairStatus::Active)));
        let now = [pair(1, PairStatus::Drained), pair(2, PairStatus::Active)];
        assert_eq!(
            assess_stale_run(Some(&j), &now),
            StaleRun::Removing(vec![PairId::new(1).unwrap()])
        );
    }

    #[test]
    fn a_run_that_committed_its_count_is_left_as_it_is() {
        let mut j = Journal::new(fleet(), "run".into(), Timestamp(1));
        j.pair_count_before = Some(2);
        j.remember(PairId::new(3).unwrap(), None);
        assert_eq!(
            assess_stale_run(Some(&j), &[pair(3, PairStatus::Active)]),
            StaleRun::Committed
        );
    }
}
