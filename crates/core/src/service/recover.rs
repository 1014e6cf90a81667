//! Repairing what a run left behind when its lock was broken as stale: judged from its
//! journal and the records as they are now, rolled back where that is safe, refused (as drift,
//! naming what is left to do) where it is not.

use super::journal::{commit, restore_except, rollback, RollbackReceipt};
use crate::drain::{node_of, DrainNode};
use crate::error::{Error, Result};
use crate::fleet::{Pair, PairStatus};
use crate::ids::{FleetName, PairId, Timestamp};
use crate::ports::FleetStateStore;
use crate::state::{ChangeSet, Fence, Journal};
use serde::Serialize;

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
    /// It stopped after committing these pairs to removal (`drained`: drained to zero, or
    /// chosen under `force` and their calls cut): they may already be deregistered or
    /// destroyed, and a pair whose calls were cut must never go back into rotation, so the
    /// removal is finished rather than rolled back.
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

/// What [`recover`] did with the stale run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryAction {
    /// It wrote nothing, or was rolled back already.
    Nothing,
    /// It committed its count: its records are the truth, nothing to undo.
    Committed,
    /// Its changes were rolled back.
    RolledBack,
    /// It was removing pairs: the rest of its candidates were put back, and the removal is
    /// finished (hang up what is left on them, deregister, destroy, commit the count).
    FinishRemoval,
}

impl RecoveryAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryAction::Nothing => "nothing",
            RecoveryAction::Committed => "committed",
            RecoveryAction::RolledBack => "rolled_back",
            RecoveryAction::FinishRemoval => "finish_removal",
        }
    }
}

/// What [`recover`] did, and the nodes the run should put back into rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Recovery {
    pub stale_run: String,
    pub action: RecoveryAction,
    pub pairs_restored: Vec<PairId>,
    pub pairs_deleted: Vec<PairId>,
    pub pair_count_restored: Option<u32>,
    /// Every pair the stale run touched that is active now, for the drain's `resume`
    /// (idempotent): a drain it quiesced, or new nodes it committed but never resumed.
    pub resume_nodes: Vec<DrainNode>,
    /// The Kamailio instances to put them back on (the resume's input).
    pub kamailio_rpc_urls: Option<crate::KamailioRpcUrls>,
    /// Every build the run's journal names: those still running are stopped before anything
    /// is undone.
    pub builds: Vec<String>,
    /// A scale-out that ran a build and never committed its count: these pairs may have
    /// instances, services and dispatcher rows, so they get the compensating builds
    /// (deregister, then destroy) once the records are rolled back. A scale-in stopped while
    /// removing: the pairs it was removing get the same builds, and [`finish_runs`] commits
    /// their removal.
    pub compensate: Vec<PairId>,
    /// The pairs being removed, as nodes: whatever calls are still up on them are hung up
    /// before they are deregistered (the run committed them to removal; under `force` it may
    /// have stopped before its hangup).
    pub hangup_nodes: Vec<DrainNode>,
    /// The fleet's records after the recovery, for the caller's metrics; not reported.
    #[serde(skip)]
    pub pairs: Vec<Pair>,
}

/// Repair what `stale_run` left, under this run's `fence`: roll it back when it stopped before
/// its count commit and before removing any pair; leave it when it committed its count; when
/// it was removing drained pairs, put its other candidates back and finish the removal (they
/// may already be deregistered or destroyed, and a rollback would bring back their records).
pub async fn recover(
    store: &dyn FleetStateStore,
    fleet: &FleetName,
    fence: &Fence,
    stale_run: &str,
    now: Timestamp,
) -> Result<Recovery> {
    if stale_run == fence.owner.as_str() {
        return Err(Error::invalid(
            "stale_run",
            stale_run,
            "is this run itself, not the run whose lock was broken",
        ));
    }
    let (journal, pairs) = futures::try_join!(store.journal(fleet, stale_run), store.pairs(fleet))?;
    let touched: Vec<PairId> = journal
        .as_ref()
        .map(|j| j.pairs_before.keys().copied().collect())
        .unwrap_or_default();
    let mut removing: Vec<PairId> = Vec::new();
    let (action, receipt) = match assess_stale_run(journal.as_ref(), &pairs) {
        StaleRun::NothingWritten => (RecoveryAction::Nothing, None),
        StaleRun::Committed => {
            if let Some(j) = &journal {
                settle_count(store, fleet, j).await?;
            }
            (RecoveryAction::Committed, None)
        }
        StaleRun::RollBack => (
            RecoveryAction::RolledBack,
            Some(rollback(store, fleet, fence, stale_run, now).await?),
        ),
        StaleRun::Removing(ids) => {
            let receipt = restore_except(store, fleet, fence, stale_run, &ids).await?;
            removing = ids;
            (RecoveryAction::FinishRemoval, Some(receipt))
        }
    };
    let (config, pairs) = futures::try_join!(store.config(fleet), store.pairs(fleet))?;
    let resume_nodes = pairs
        .iter()
        .filter(|p| {
            touched.contains(&p.id) && p.status == PairStatus::Active && p.esl_endpoint.is_some()
        })
        .map(|p| node_of(p, &config))
        .collect::<Result<_>>()?;
    let (pairs_restored, pairs_deleted, pair_count_restored) = match receipt {
        Some(r) => (r.pairs_restored, r.pairs_deleted, r.pair_count_restored),
        None => (Vec::new(), Vec::new(), None),
    };
    let builds = journal
        .as_ref()
        .map(|j| j.builds.values().map(|b| b.build_id.clone()).collect())
        .unwrap_or_default();
    let compensate = match &journal {
        Some(_) if !removing.is_empty() => removing.clone(),
        Some(j) if j.needs_compensating_builds() => j.allocated.clone(),
        _ => Vec::new(),
    };
    // A record without its endpoints (never the case for a pair that was in rotation) has no
    // calls to hang up.
    let hangup_nodes = pairs
        .iter()
        .filter(|p| removing.contains(&p.id) && p.esl_endpoint.is_some())
        .map(|p| node_of(p, &config))
        .collect::<Result<_>>()?;
    Ok(Recovery {
        stale_run: stale_run.to_string(),
        action,
        pairs_restored,
        pairs_deleted,
        pair_count_restored,
        resume_nodes,
        kamailio_rpc_urls: config.kamailio_rpc_urls,
        builds,
        compensate,
        hangup_nodes,
        pairs,
    })
}

/// What [`rollback_keeping_removal`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PartialRollback {
    #[serde(flatten)]
    pub receipt: RollbackReceipt,
    /// The pairs the run committed to removal (`drained`), left for the next run to remove.
    /// Empty when the run was rolled back whole.
    pub removing: Vec<PairId>,
}

/// A run's own undo once it has hung up calls under `force`: every record goes back except
/// the pairs it committed to removal, which must not go back into rotation; the journal stays
/// open, so the next run finishes their removal ([`recover`]). A run that committed none is
/// rolled back whole, as by [`rollback`]. Idempotent.
pub async fn rollback_keeping_removal(
    store: &dyn FleetStateStore,
    fleet: &FleetName,
    fence: &Fence,
    run: &str,
    now: Timestamp,
) -> Result<PartialRollback> {
    let (journal, pairs) = futures::try_join!(store.journal(fleet, run), store.pairs(fleet))?;
    match assess_stale_run(journal.as_ref(), &pairs) {
        StaleRun::Removing(ids) => Ok(PartialRollback {
            receipt: restore_except(store, fleet, fence, run, &ids).await?,
            removing: ids,
        }),
        _ => Ok(PartialRollback {
            receipt: rollback(store, fleet, fence, run, now).await?,
            removing: Vec::new(),
        }),
    }
}

/// What [`recover_open`] did: each unfinished run it found, oldest first, the nodes to put
/// back into rotation for all of them, and what the state machine has left to do before they
/// count as finished: stop their builds, run the compensating builds, then [`finish_runs`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct OpenRecovery {
    pub runs: Vec<Recovery>,
    pub resume_nodes: Vec<DrainNode>,
    pub kamailio_rpc_urls: Option<crate::KamailioRpcUrls>,
    /// Every build the unfinished runs started (the build function's `stop` skips those that
    /// ended).
    pub stop_builds: Vec<String>,
    /// The pairs of every scale-out to undo with the compensating builds: Ansible `scale_in`
    /// for them, then Terraform (which destroys what the records no longer hold).
    pub compensate_pairs: Vec<PairId>,
    /// Every pair being removed, as nodes: their calls are hung up before the compensating
    /// builds deregister and destroy them.
    pub hangup_nodes: Vec<DrainNode>,
    /// The runs marked finished only once their builds are stopped and compensated
    /// ([`finish_runs`]): until then the next run meets them again.
    pub finish_after: Vec<String>,
    /// The fleet's build pace, for the compensating builds' poll loops.
    pub build_poll_seconds: u64,
    pub build_timeout_seconds: u64,
    pub build_retries: u32,
    pub build_retry_seconds: u64,
}

/// The recovery obligation, kept in the fleet's own journals rather than in the lock: every
/// run, right after it takes the lock (fresh, after an expiry or after a break), finishes or
/// undoes what every earlier run left unfinished, oldest first, and marks each finished. A run
/// whose leftovers cannot be undone stops this one with `Pairscale.Drift` naming it and stays
/// unfinished, so the next run meets it too. Idempotent: a recovery stopped half way is
/// finished by the next run (a rolled-back run rolls back to nothing; a finished one is not
/// met again).
pub async fn recover_open(
    store: &dyn FleetStateStore,
    fleet: &FleetName,
    fence: &Fence,
    now: Timestamp,
) -> Result<OpenRecovery> {
    let (open, config) = futures::try_join!(store.open_journals(fleet), store.config(fleet))?;
    let mut runs = Vec::new();
    let mut resume: Vec<DrainNode> = Vec::new();
    let mut kamailio_rpc_urls = None;
    let (mut stop_builds, mut compensate_pairs, mut finish_after) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut hangup_nodes: Vec<DrainNode> = Vec::new();
    for j in open.iter().filter(|j| j.run != fence.owner.as_str()) {
        let r = recover(store, fleet, fence, &j.run, now).await?;
        if r.builds.is_empty() && r.compensate.is_empty() {
            store.finish_journal(fleet, fence, &j.run, now).await?;
        } else {
            // Finished only once its builds are stopped and undone: a recovery stopped half
            // way leaves the obligation where the next run finds it.
            finish_after.push(j.run.clone());
        }
        for n in &r.resume_nodes {
            if !resume.iter().any(|x| x.pair_id == n.pair_id) {
                resume.push(n.clone());
            }
        }
        for b in &r.builds {
            if !stop_builds.contains(b) {
                stop_builds.push(b.clone());
            }
        }
        for p in &r.compensate {
            if !compensate_pairs.contains(p) {
                compensate_pairs.push(*p);
            }
        }
        for n in &r.hangup_nodes {
            if !hangup_nodes.iter().any(|x| x.pair_id == n.pair_id) {
                hangup_nodes.push(n.clone());
            }
        }
        kamailio_rpc_urls = r.kamailio_rpc_urls.clone();
        runs.push(r);
    }
    compensate_pairs.sort();
    Ok(OpenRecovery {
        runs,
        resume_nodes: resume,
        kamailio_rpc_urls,
        stop_builds,
        compensate_pairs,
        hangup_nodes,
        finish_after,
        build_poll_seconds: config.build_poll_seconds,
        build_timeout_seconds: config.build_timeout_seconds,
        build_retries: config.build_retries,
        build_retry_seconds: config.build_retry_seconds,
    })
}

/// Mark the unfinished runs a recovery has now finished (their builds stopped, their
/// compensating builds done): the last step of [`recover_open`]'s obligation. A run that was
/// removing pairs gets the commit it never made first: its drained pairs' records go and the
/// count drops by as many, journaled as its own, so a retry (or the next run, once the count
/// is committed) finds it done. Idempotent.
pub async fn finish_runs(
    store: &dyn FleetStateStore,
    fleet: &FleetName,
    fence: &Fence,
    runs: &[String],
    now: Timestamp,
) -> Result<()> {
    if runs.len() > MAX_FINISH_RUNS {
        return Err(Error::invalid(
            "runs",
            runs.len(),
            format!("at most {MAX_FINISH_RUNS} runs at once"),
        ));
    }
    for run in runs {
        if run == fence.owner.as_str() {
            return Err(Error::invalid(
                "runs",
                run,
                "is this run itself: a run's own journal is finished by its release",
            ));
        }
        let (journal, pairs) = futures::try_join!(store.journal(fleet, run), store.pairs(fleet))?;
        let stale = assess_stale_run(journal.as_ref(), &pairs);
        if let (StaleRun::Committed, Some(j)) = (&stale, &journal) {
            // A retry after the removal's records were written and before its count was.
            settle_count(store, fleet, j).await?;
        }
        if let StaleRun::Removing(ids) = stale {
            let count = store.pair_count(fleet).await?;
            let left = u32::try_from(ids.len())
                .ok()
                .and_then(|n| count.checked_sub(n))
                .ok_or_else(|| Error::Drift {
                    fleet: fleet.to_string(),
                    summary: format!(
                        "the stopped run {run} was removing {} pair(s) but the fleet's pair_count is {count}",
                        ids.len()
                    ),
                })?;
            let changes = ChangeSet {
                pair_count: Some(left),
                removes: ids,
                ..ChangeSet::default()
            };
            commit(store, fleet, fence, run, &changes, now).await?;
        }
        store.finish_journal(fleet, fence, run, now).await?;
    }
    Ok(())
}

/// Puts in place the count a run committed with its records (`pair_count_after`), if the
/// count itself was never written: the two are separate writes (the records and the journal
/// in one transaction, the count in Parameter Store), and a run may die between them. A
/// journal left unfinished blocks every later run until it is recovered, so no later commit
/// can have changed the count since. Idempotent.
async fn settle_count(store: &dyn FleetStateStore, fleet: &FleetName, j: &Journal) -> Result<()> {
    let Some(n) = j.pair_count_after else {
        return Ok(());
    };
    let count = store.pair_count(fleet).await?;
    if count != n {
        store.set_pair_count(fleet, n).await?;
    }
    Ok(())
}

/// The most runs [`finish_runs`] takes at once.
pub const MAX_FINISH_RUNS: usize = 100;

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
