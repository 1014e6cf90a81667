//! A fenced, journaled change of a fleet's state, and its exact undo.

use crate::error::{Error, Result};
use crate::fleet::{Pair, PairStatus, MAX_FLEET_PAIRS};
use crate::ids::{FleetName, PairId, Timestamp};
use crate::plan::Direction;
use crate::ports::FleetStateStore;
use crate::state::{
    apply_update, check_build_step, rollback_batch, ChangeSet, Fence, Journal, JournalBuild,
    WriteBatch,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// The most pair writes in one store transaction (DynamoDB allows 100 actions; the lock
/// check, the journal and the fleet bookkeeping take three).
pub const MAX_PAIR_WRITES_PER_BATCH: usize = 90;

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CommitReceipt {
    pub run: String,
    pub pair_count_before: Option<u32>,
    pub pair_count: Option<u32>,
    /// Pair ids this run added: taken from the warm pool, then allocated (the same ids on a
    /// retry).
    pub new_pairs: Vec<PairId>,
    /// Pair ids this run allocated for the warm pool (the same ids on a retry).
    pub warm_pairs: Vec<PairId>,
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

    // New pairs: once per run, the warm pool's first (lowest ids), then new ids.
    let new_ids = if changes.new_pairs == 0 {
        Vec::new()
    } else if journal.allocated.is_empty() {
        let mut ids: Vec<PairId> = current
            .values()
            .filter(|p| p.status == PairStatus::Warm)
            .map(|p| p.id)
            .take(changes.new_pairs as usize)
            .collect();
        let rest = changes.new_pairs - ids.len() as u32;
        if rest > 0 {
            ids.extend(store.allocate_pair_ids(fleet, rest).await?);
        }
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

    // Warm pairs: allocate once per run, apart from the run's new pairs.
    let warm_ids = if changes.warm_pairs == 0 {
        Vec::new()
    } else if journal.warmed.is_empty() {
        let ids = store.allocate_pair_ids(fleet, changes.warm_pairs).await?;
        journal.warmed = ids.clone();
        ids
    } else if journal.warmed.len() == changes.warm_pairs as usize {
        journal.warmed.clone()
    } else {
        return Err(Error::invalid(
            "warm_pairs",
            changes.warm_pairs,
            format!(
                "run {run} already allocated {} warm pair(s); a run refills the pool once",
                journal.warmed.len()
            ),
        ));
    };

    let mut next: BTreeMap<PairId, Pair> = BTreeMap::new();
    for id in &new_ids {
        journal.remember(*id, current.get(id));
        let p = match current.get(id) {
            // Taken from the pool: its node is there, stopped; the build starts it.
            Some(p) if p.status == PairStatus::Warm => Pair {
                status: PairStatus::Provisioning,
                updated_at: now,
                ..p.clone()
            },
            Some(p) => p.clone(),
            None => Pair::new(*id, PairStatus::Provisioning, now),
        };
        next.insert(*id, p);
    }
    for id in &warm_ids {
        journal.remember(*id, current.get(id));
        let p = current
            .get(id)
            .cloned()
            .unwrap_or_else(|| Pair::new(*id, PairStatus::Warm, now));
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
        if n > MAX_FLEET_PAIRS {
            return Err(Error::invalid(
                "pair_count",
                n,
                format!("must be at most {MAX_FLEET_PAIRS}"),
            ));
        }
        if journal.pair_count_before.is_none() {
            journal.pair_count_before = Some(store.pair_count(fleet).await?);
        }
        journal.pair_count_after = Some(n);
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
        warm_pairs: warm_ids,
        pairs: puts,
        removed,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
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

/// Put back every record a run changed as it was before it, except `keep` (the pairs it was
/// removing, which go forward, not back); the count is left alone and the journal stays open
/// (not rolled back), since the run is not undone: its removal is finished next. Idempotent.
pub async fn restore_except(
    store: &dyn FleetStateStore,
    fleet: &FleetName,
    fence: &Fence,
    run: &str,
    keep: &[PairId],
) -> Result<RollbackReceipt> {
    let Some(journal) = store.journal(fleet, run).await? else {
        return Err(Error::invalid(
            "run",
            run,
            "has no journal: nothing of it can be restored",
        ));
    };
    let mut restored = Vec::new();
    let mut deleted = Vec::new();
    for (id, before) in journal
        .pairs_before
        .iter()
        .filter(|(id, _)| !keep.contains(id))
    {
        match before {
            Some(p) => restored.push(p.clone()),
            None => deleted.push(*id),
        }
    }
    let receipt = RollbackReceipt {
        run: run.to_string(),
        rolled_back: false,
        pair_count_restored: None,
        pairs_restored: restored.iter().map(|p| p.id).collect(),
        pairs_deleted: deleted.clone(),
    };
    write_in_batches(store, fleet, fence, journal, restored, deleted, None).await?;
    Ok(receipt)
}

/// Keep a build the run started in its journal, under `step`, before the run goes on: a run
/// that dies while the build runs leaves its id to whoever finishes the run, who stops it
/// before undoing anything. Fenced like every write; the same step and build again is a
/// no-op, and a step holds one build (a retried start returns the same build).
pub async fn note_build(
    store: &dyn FleetStateStore,
    fleet: &FleetName,
    fence: &Fence,
    run: &str,
    step: &str,
    build: JournalBuild,
    now: Timestamp,
) -> Result<()> {
    check_build_step(step)?;
    store.note_build(fleet, fence, run, step, &build, now).await
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
