//! Fleet state changes: what a run may write, how each write is journaled, and how a journal
//! rolls a run back exactly.

use crate::error::{Error, Result};
use crate::fleet::{Pair, PairStatus};
use crate::ids::{FleetName, Owner, PairId, Timestamp};
use crate::plan::Direction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The lock a write is made under. Stores refuse the write with `Pairscale.Fenced` unless
/// the lock is still held by `owner` with this `token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fence {
    pub owner: Owner,
    pub token: u64,
}

/// Fields of a pair record a run may set. `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PairUpdate {
    pub pair_id: PairId,
    #[serde(default)]
    pub status: Option<PairStatus>,
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub private_ip: Option<String>,
    #[serde(default)]
    pub esl_endpoint: Option<String>,
    #[serde(default)]
    pub ecs_service: Option<String>,
    #[serde(default)]
    pub last_channels: Option<u32>,
    #[serde(default)]
    pub protected: Option<bool>,
}

impl PairUpdate {
    /// An update of `pair_id` that changes nothing yet.
    pub fn new(pair_id: PairId) -> PairUpdate {
        PairUpdate {
            pair_id,
            status: None,
            instance_id: None,
            private_ip: None,
            esl_endpoint: None,
            ecs_service: None,
            last_channels: None,
            protected: None,
        }
    }

    pub fn status(pair_id: PairId, status: PairStatus) -> PairUpdate {
        PairUpdate {
            status: Some(status),
            ..PairUpdate::new(pair_id)
        }
    }
}

/// One fenced, journaled change of a fleet's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeSet {
    /// The new committed pair count (SSM).
    #[serde(default)]
    pub pair_count: Option<u32>,
    /// Add this many pairs, recorded as `provisioning`: the warm pool's first (lowest ids),
    /// then newly allocated ids.
    #[serde(default)]
    pub new_pairs: u32,
    /// Allocate this many new pair ids and record them as `warm` (the pool's refill).
    #[serde(default)]
    pub warm_pairs: u32,
    #[serde(default)]
    pub updates: Vec<PairUpdate>,
    /// Delete these records (decommissioned pairs).
    #[serde(default)]
    pub removes: Vec<PairId>,
    /// Stamp the fleet's last scaling time in this direction (cooldowns start here).
    #[serde(default)]
    pub scaled: Option<Direction>,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.pair_count.is_none()
            && self.new_pairs == 0
            && self.warm_pairs == 0
            && self.updates.is_empty()
            && self.removes.is_empty()
            && self.scaled.is_none()
    }
}

/// What a run changed, as it was before the run first touched it. Written before the change
/// itself, so that a run that fails anywhere can be put back exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub fleet: FleetName,
    pub run: String,
    pub started_at: Timestamp,
    /// The committed count before the run first changed it.
    pub pair_count_before: Option<u32>,
    /// The count the run committed, written with its records: the count itself is a second
    /// write, and a run that dies between the two leaves it here for the next run to put in
    /// place.
    #[serde(default)]
    pub pair_count_after: Option<u32>,
    /// Ids this run added, taken from the warm pool or allocated (so a retried commit adds
    /// the same ids).
    pub allocated: Vec<PairId>,
    /// Ids this run allocated for the warm pool.
    #[serde(default)]
    pub warmed: Vec<PairId>,
    /// Each pair the run touched: its record before, or `None` if the run created it.
    pub pairs_before: BTreeMap<PairId, Option<Pair>>,
    pub rolled_back_at: Option<Timestamp>,
    /// Every build the run started, under the name of the step that started it
    /// (`out_terraform`, `out_undo_ansible`, ...): whoever finishes the run after it died
    /// stops the ones still running before it undoes anything.
    #[serde(default)]
    pub builds: BTreeMap<String, JournalBuild>,
}

/// A build a run started, as its journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JournalBuild {
    pub build_id: String,
    pub kind: crate::build::BuildKind,
    pub started_at: Timestamp,
}

/// The longest step name a build is journaled under.
pub const MAX_BUILD_STEP_LEN: usize = 64;

/// A build step's name: 1-64 characters of a-z, 0-9 and '_'.
pub fn check_build_step(step: &str) -> Result<()> {
    if step.is_empty()
        || step.len() > MAX_BUILD_STEP_LEN
        || !step
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::invalid(
            "step",
            step,
            format!("must be 1-{MAX_BUILD_STEP_LEN} characters of a-z, 0-9 and '_'"),
        ));
    }
    Ok(())
}

impl Journal {
    pub fn new(fleet: FleetName, run: String, now: Timestamp) -> Journal {
        Journal {
            fleet,
            run,
            started_at: now,
            pair_count_before: None,
            pair_count_after: None,
            allocated: Vec::new(),
            warmed: Vec::new(),
            pairs_before: BTreeMap::new(),
            rolled_back_at: None,
            builds: BTreeMap::new(),
        }
    }

    /// A scale-out that allocated pairs and started a build, and never committed its count:
    /// its instances, services and dispatcher rows may exist whatever its records say, so
    /// undoing it takes the compensating builds (deregister, then destroy), not only a
    /// rollback of records.
    pub fn needs_compensating_builds(&self) -> bool {
        !self.allocated.is_empty() && self.pair_count_before.is_none() && !self.builds.is_empty()
    }

    /// Remember a pair's state before its first change by this run; later changes keep the
    /// first snapshot.
    pub fn remember(&mut self, id: PairId, before: Option<&Pair>) {
        self.pairs_before
            .entry(id)
            .or_insert_with(|| before.cloned());
    }
}

/// The writes one fenced transaction makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    pub journal: Journal,
    pub put_pairs: Vec<Pair>,
    pub delete_pairs: Vec<PairId>,
    pub stamp: Option<(Direction, Timestamp)>,
}

/// Which status changes a run may make. Staying in the same status is always allowed, so a
/// retried write succeeds.
pub fn transition_allowed(from: PairStatus, to: PairStatus) -> bool {
    use PairStatus::*;
    from == to
        || matches!(
            (from, to),
            (Provisioning, Active)
                | (Provisioning, Failed)
                | (Active, Draining)
                | (Draining, Active)
                | (Draining, Drained)
                | (Draining, Failed)
                | (Drained, Active)
                | (Drained, Failed)
                | (Active, Failed)
                | (Failed, Active)
        )
}

/// Apply an update to a record, checking the status transition.
pub fn apply_update(pair: &Pair, u: &PairUpdate, now: Timestamp) -> Result<Pair> {
    let mut p = pair.clone();
    if let Some(to) = u.status {
        if !transition_allowed(p.status, to) {
            return Err(Error::invalid(
                format!("updates[{}].status", u.pair_id),
                to.as_str(),
                format!(
                    "a pair cannot go from {} to {}",
                    p.status.as_str(),
                    to.as_str()
                ),
            ));
        }
        p.status = to;
    }
    set_text(&mut p.instance_id, &u.instance_id, "instance_id", u.pair_id)?;
    set_text(&mut p.private_ip, &u.private_ip, "private_ip", u.pair_id)?;
    set_text(
        &mut p.esl_endpoint,
        &u.esl_endpoint,
        "esl_endpoint",
        u.pair_id,
    )?;
    set_text(&mut p.ecs_service, &u.ecs_service, "ecs_service", u.pair_id)?;
    if let Some(c) = u.last_channels {
        p.last_channels = Some(c);
        p.last_seen_at = Some(now);
    }
    if let Some(prot) = u.protected {
        p.protected = prot;
    }
    if p != *pair {
        p.updated_at = now;
    }
    Ok(p)
}

/// The longest text a pair record field may hold.
pub const MAX_TEXT_LEN: usize = 2048;

fn set_text(slot: &mut Option<String>, v: &Option<String>, field: &str, id: PairId) -> Result<()> {
    if let Some(v) = v {
        if v.is_empty() || v.len() > MAX_TEXT_LEN || v.chars().any(char::is_control) {
            return Err(Error::invalid(
                format!("updates[{id}].{field}"),
                v,
                format!("must be 1-{MAX_TEXT_LEN} printable characters"),
            ));
        }
        *slot = Some(v.clone());
    }
    Ok(())
}

/// The writes that restore what a journal remembers.
pub fn rollback_batch(mut journal: Journal, now: Timestamp) -> WriteBatch {
    let mut put_pairs = Vec::new();
    let mut delete_pairs = Vec::new();
    for (id, before) in &journal.pairs_before {
        match before {
            Some(p) => put_pairs.push(p.clone()),
            None => delete_pairs.push(*id),
        }
    }
    journal.rolled_back_at.get_or_insert(now);
    WriteBatch {
        journal,
        put_pairs,
        delete_pairs,
        stamp: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: u32, s: PairStatus) -> Pair {
        Pair::new(PairId::new(n).expect("id"), s, Timestamp(0))
    }

    #[test]
    fn updates_check_transitions_and_are_idempotent() {
        let p = pair(1, PairStatus::Active);
        let u = PairUpdate::status(p.id, PairStatus::Draining);
        let once = apply_update(&p, &u, Timestamp(5)).expect("active → draining");
        assert_eq!(once.status, PairStatus::Draining);
        assert_eq!(once.updated_at, Timestamp(5));
        let twice = apply_update(&once, &u, Timestamp(9)).expect("retry");
        assert_eq!(twice, once, "a retried update changes nothing");
        let bad = PairUpdate::status(p.id, PairStatus::Provisioning);
        let e = apply_update(&p, &bad, Timestamp(5)).expect_err("active → provisioning");
        assert!(e.to_string().contains("pair-0001"), "{e}");
    }

    #[test]
    fn the_journal_keeps_the_first_snapshot() {
        let mut j = Journal::new(
            FleetName::parse("voice").expect("fleet"),
            "run".into(),
            Timestamp(0),
        );
        let p = pair(1, PairStatus::Active);
        j.remember(p.id, Some(&p));
        let mut later = p.clone();
        later.status = PairStatus::Draining;
        j.remember(p.id, Some(&later));
        j.remember(PairId::new(2).expect("id"), None);
        assert_eq!(
            j.pairs_before[&p.id].as_ref().map(|p| p.status),
            Some(PairStatus::Active)
        );
        let b = rollback_batch(j, Timestamp(7));
        assert_eq!(b.put_pairs, vec![p]);
        assert_eq!(b.delete_pairs, vec![PairId::new(2).expect("id")]);
        assert_eq!(b.journal.rolled_back_at, Some(Timestamp(7)));
    }

    #[test]
    fn text_fields_are_validated() {
        let p = pair(1, PairStatus::Provisioning);
        let u = PairUpdate {
            private_ip: Some("10.0.0.1\n".into()),
            ..PairUpdate::new(p.id)
        };
        assert!(apply_update(&p, &u, Timestamp(1)).is_err());
    }
}
