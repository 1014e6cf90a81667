//! The use cases against an in-memory store and inventory: what `recover` and `discover`
//! write, return and refuse.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::error::{Error, ErrorName, Result};
use crate::fleet::{FleetConfig, FleetMeta, Pair, PairStatus, MAX_FLEET_PAIRS};
use crate::ids::{FleetName, Owner, PairId, Timestamp};
use crate::ports::{FleetStateStore, Inventory};
use crate::state::{ChangeSet, Fence, Journal, JournalBuild, PairUpdate, WriteBatch};
use crate::validate::{InstanceInfo, InventorySnapshot, ServiceInfo};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

const CONFIG: &str = r#"{"min_pairs": 0, "max_pairs": 10, "max_step": 3, "cooldown_out_seconds": 0,
    "cooldown_in_seconds": 0, "drain": {"deadline_seconds": 60, "policy": "abort"}}"#;

/// A fleet in memory; writes are refused unless they carry `holder`.
struct Memory {
    fleet: FleetName,
    holder: Mutex<Fence>,
    count: Mutex<u32>,
    pairs: Mutex<BTreeMap<PairId, Pair>>,
    journals: Mutex<BTreeMap<String, Journal>>,
    finished: Mutex<std::collections::BTreeSet<String>>,
    inventory: InventorySnapshot,
    /// The highest pair sequence allocated: ids are never reused.
    last_seq: Mutex<u32>,
}

impl Memory {
    fn new(pairs: Vec<Pair>, holder: &Fence) -> Memory {
        let last = pairs.iter().map(|p| p.id.seq()).max().unwrap_or(0);
        Memory {
            last_seq: Mutex::new(last),
            fleet: fleet(),
            holder: Mutex::new(holder.clone()),
            count: Mutex::new(pairs.len() as u32),
            pairs: Mutex::new(pairs.into_iter().map(|p| (p.id, p)).collect()),
            journals: Mutex::default(),
            finished: Mutex::default(),
            inventory: InventorySnapshot::default(),
        }
    }

    fn pair(&self, seq: u32) -> Option<Pair> {
        self.pairs.lock().unwrap().get(&id(seq)).cloned()
    }
}

#[async_trait]
impl FleetStateStore for Memory {
    async fn pair_count(&self, _: &FleetName) -> Result<u32> {
        Ok(*self.count.lock().unwrap())
    }
    async fn set_pair_count(&self, _: &FleetName, count: u32) -> Result<()> {
        *self.count.lock().unwrap() = count;
        Ok(())
    }
    async fn config(&self, fleet: &FleetName) -> Result<FleetConfig> {
        FleetConfig::from_json(fleet, CONFIG)
    }
    async fn pairs(&self, _: &FleetName) -> Result<Vec<Pair>> {
        Ok(self.pairs.lock().unwrap().values().cloned().collect())
    }
    async fn meta(&self, _: &FleetName) -> Result<FleetMeta> {
        Ok(FleetMeta::default())
    }
    async fn journal(&self, _: &FleetName, run: &str) -> Result<Option<Journal>> {
        Ok(self.journals.lock().unwrap().get(run).cloned())
    }
    async fn open_journals(&self, _: &FleetName) -> Result<Vec<Journal>> {
        let finished = self.finished.lock().unwrap().clone();
        let mut open: Vec<Journal> = self
            .journals
            .lock()
            .unwrap()
            .values()
            .filter(|j| !finished.contains(&j.run))
            .cloned()
            .collect();
        open.sort_by_key(|j| (j.started_at, j.run.clone()));
        Ok(open)
    }
    async fn finish_journal(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        run: &str,
        _: Timestamp,
    ) -> Result<()> {
        if *fence != *self.holder.lock().unwrap() {
            return Err(Error::Fenced {
                fleet: fleet.to_string(),
                presented: fence.token,
                current: "another".into(),
            });
        }
        self.finished.lock().unwrap().insert(run.to_string());
        Ok(())
    }
    async fn note_build(
        &self,
        fleet: &FleetName,
        fence: &Fence,
        run: &str,
        step: &str,
        build: &JournalBuild,
        now: Timestamp,
    ) -> Result<()> {
        if *fence != *self.holder.lock().unwrap() {
            return Err(Error::Fenced {
                fleet: fleet.to_string(),
                presented: fence.token,
                current: "another".into(),
            });
        }
        let mut journals = self.journals.lock().unwrap();
        let j = journals
            .entry(run.to_string())
            .or_insert_with(|| Journal::new(fleet.clone(), run.to_string(), now));
        match j.builds.get(step) {
            Some(b) if b.build_id != build.build_id => Err(Error::invalid("step", step, "taken")),
            Some(_) => Ok(()),
            None => {
                j.builds.insert(step.to_string(), build.clone());
                Ok(())
            }
        }
    }
    async fn allocate_pair_ids(&self, _: &FleetName, n: u32) -> Result<Vec<PairId>> {
        let mut last = self.last_seq.lock().unwrap();
        let ids = (*last + 1..=*last + n).map(id).collect();
        *last += n;
        Ok(ids)
    }
    async fn write(&self, fleet: &FleetName, fence: &Fence, batch: &WriteBatch) -> Result<()> {
        let holder = self.holder.lock().unwrap().clone();
        if *fence != holder || *fleet != self.fleet {
            return Err(Error::Fenced {
                fleet: fleet.to_string(),
                presented: fence.token,
                current: holder.token.to_string(),
            });
        }
        let mut pairs = self.pairs.lock().unwrap();
        for p in &batch.put_pairs {
            pairs.insert(p.id, p.clone());
        }
        for id in &batch.delete_pairs {
            pairs.remove(id);
        }
        self.journals
            .lock()
            .unwrap()
            .insert(batch.journal.run.clone(), batch.journal.clone());
        Ok(())
    }
    async fn record_quality(
        &self,
        _: &FleetName,
        _: &Fence,
        _: &crate::canary::QualityReading,
    ) -> Result<()> {
        Err(Error::internal("no service records quality"))
    }
    async fn note_quality(&self, _: &FleetName, _: &crate::canary::QualityReading) -> Result<()> {
        Err(Error::internal("no service records quality"))
    }
    async fn note_sample(
        &self,
        _: &FleetName,
        _: PairId,
        _: crate::ports::LoadSample,
        _: Timestamp,
    ) -> Result<bool> {
        Err(Error::internal("no service records load samples"))
    }
}

#[async_trait]
impl Inventory for Memory {
    async fn snapshot(&self, _: &FleetName) -> Result<InventorySnapshot> {
        Ok(self.inventory.clone())
    }
}

fn fleet() -> FleetName {
    FleetName::parse("voice").unwrap()
}

fn id(seq: u32) -> PairId {
    PairId::new(seq).unwrap()
}

fn fence(run: &str, token: u64) -> Fence {
    Fence {
        owner: Owner::parse(&format!("arn:aws:states:eu-west-1:1:execution:scale:{run}")).unwrap(),
        token,
    }
}

/// An active pair with its node's addresses.
fn active(seq: u32) -> Pair {
    let mut p = Pair::new(id(seq), PairStatus::Active, Timestamp(0));
    p.private_ip = Some(format!("10.0.0.{seq}"));
    p.esl_endpoint = Some(format!("10.0.0.{seq}:8021"));
    p
}

/// The run `old` commits each of `batches` of updates in turn, under its own lock.
async fn commits(store: &Memory, old: &Fence, batches: Vec<Vec<PairUpdate>>) {
    for updates in batches {
        let changes = ChangeSet {
            updates,
            ..ChangeSet::default()
        };
        commit(
            store,
            &fleet(),
            old,
            old.owner.as_str(),
            &changes,
            Timestamp(1),
        )
        .await
        .unwrap();
    }
}

/// The stale run `old` sets pair 1 to each of `statuses` in turn, under its own lock.
async fn stale_run_that_set(store: &Memory, old: &Fence, statuses: &[PairStatus]) {
    let batches = statuses
        .iter()
        .map(|s| vec![PairUpdate::status(id(1), *s)])
        .collect();
    commits(store, old, batches).await;
}

#[tokio::test]
async fn a_run_stopped_mid_drain_is_rolled_back_and_its_pair_goes_back_into_rotation() {
    let (old, new) = (fence("old", 1), fence("new", 2));
    let store = Memory::new(vec![active(1), active(2)], &old);
    stale_run_that_set(&store, &old, &[PairStatus::Draining]).await;
    *store.holder.lock().unwrap() = new.clone();

    let r = recover(&store, &fleet(), &new, old.owner.as_str(), Timestamp(2))
        .await
        .unwrap();
    assert_eq!(r.action, RecoveryAction::RolledBack);
    assert_eq!(r.pairs_restored, vec![id(1)]);
    assert_eq!(store.pair(1).unwrap().status, PairStatus::Active);
    let resumed: Vec<PairId> = r.resume_nodes.iter().map(|n| n.pair_id).collect();
    assert_eq!(resumed, vec![id(1)], "only the pair the stale run touched");
    assert_eq!(r.resume_nodes[0].sip_uri, "sip:10.0.0.1:5060");
    assert_eq!(
        r.pairs.len(),
        2,
        "the records after the recovery, for the metrics"
    );
}

/// The stale run `old` quiesced pairs 1 and 2 as candidates, then committed pair 1 to removal
/// (`drained`: drained to zero, or chosen under `force` before its calls were cut).
async fn scale_in_stopped_while_removing(store: &Memory, old: &Fence) {
    let batches = vec![
        vec![
            PairUpdate::status(id(1), PairStatus::Draining),
            PairUpdate::status(id(2), PairStatus::Draining),
        ],
        vec![PairUpdate::status(id(1), PairStatus::Drained)],
    ];
    commits(store, old, batches).await;
}

#[tokio::test]
async fn a_run_stopped_while_removing_puts_its_spare_back_and_leaves_the_removal_to_finish() {
    let (old, new) = (fence("old", 1), fence("new", 2));
    let store = Memory::new(vec![active(1), active(2), active(3)], &old);
    scale_in_stopped_while_removing(&store, &old).await;
    *store.holder.lock().unwrap() = new.clone();

    let r = recover(&store, &fleet(), &new, old.owner.as_str(), Timestamp(2))
        .await
        .unwrap();
    assert_eq!(r.action, RecoveryAction::FinishRemoval);
    assert_eq!(
        r.pairs_restored,
        vec![id(2)],
        "the spare, not the pair removed"
    );
    assert_eq!(store.pair(2).unwrap().status, PairStatus::Active);
    assert_eq!(store.pair(1).unwrap().status, PairStatus::Drained);
    let resumed: Vec<PairId> = r.resume_nodes.iter().map(|n| n.pair_id).collect();
    assert_eq!(resumed, vec![id(2)], "never the pair being removed");
    assert_eq!(r.compensate, vec![id(1)], "deregistered, then destroyed");
    let hung: Vec<PairId> = r.hangup_nodes.iter().map(|n| n.pair_id).collect();
    assert_eq!(hung, vec![id(1)]);
    assert_eq!(
        *store.count.lock().unwrap(),
        3,
        "the count waits for the builds"
    );
    assert!(
        store.journals.lock().unwrap()[old.owner.as_str()]
            .rolled_back_at
            .is_none(),
        "the run is finished forward, not rolled back"
    );
}

#[tokio::test]
async fn an_unfinished_removal_is_finished_by_the_next_run_once_and_only_once() {
    let (a, c) = (fence("a", 1), fence("c", 3));
    let store = Memory::new(vec![active(1), active(2), active(3)], &a);
    scale_in_stopped_while_removing(&store, &a).await;
    *store.holder.lock().unwrap() = c.clone();
    // A recovery stopped before its builds ended finds the same obligation again.
    for _ in 0..2 {
        let r = recover_open(&store, &fleet(), &c, Timestamp(3))
            .await
            .unwrap();
        assert_eq!(r.runs[0].action, RecoveryAction::FinishRemoval);
        assert_eq!(r.compensate_pairs, vec![id(1)]);
        assert_eq!(r.finish_after, vec![a.owner.as_str().to_string()]);
        assert_eq!(r.hangup_nodes.len(), 1);
        assert!(store.finished.lock().unwrap().is_empty());
    }
    // The builds ran: the removal is committed as the run's own, and the run is finished.
    let runs = vec![a.owner.as_str().to_string()];
    for _ in 0..2 {
        finish_runs(&store, &fleet(), &c, &runs, Timestamp(4))
            .await
            .unwrap();
        assert!(store.pair(1).is_none(), "the removed pair's record goes");
        assert_eq!(
            *store.count.lock().unwrap(),
            2,
            "counted once, retried or not"
        );
    }
    assert_eq!(
        store.journals.lock().unwrap()[a.owner.as_str()].pair_count_before,
        Some(3)
    );
    let d = fence("d", 4);
    *store.holder.lock().unwrap() = d.clone();
    let again = recover_open(&store, &fleet(), &d, Timestamp(5))
        .await
        .unwrap();
    assert!(again.runs.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_count_committed_with_the_records_but_never_written_is_put_in_place_by_the_next_run() {
    let (a, c) = (fence("a", 1), fence("c", 3));
    let store = Memory::new(vec![active(1), active(2), active(3)], &a);
    scale_in_stopped_while_removing(&store, &a).await;
    *store.holder.lock().unwrap() = c.clone();
    let runs = vec![a.owner.as_str().to_string()];
    let died_between_the_writes = || {
        // The records and the journal say removed; the count and the finish never came.
        *store.count.lock().unwrap() = 3;
        store.finished.lock().unwrap().clear();
    };
    finish_runs(&store, &fleet(), &c, &runs, Timestamp(4))
        .await
        .unwrap();
    died_between_the_writes();
    // The step's retry puts the count in place...
    finish_runs(&store, &fleet(), &c, &runs, Timestamp(5))
        .await
        .unwrap();
    assert_eq!(*store.count.lock().unwrap(), 2);
    assert!(store.pair(1).is_none());
    // ...and so does the next run's recovery, which finds the run committed.
    died_between_the_writes();
    let d = fence("d", 4);
    *store.holder.lock().unwrap() = d.clone();
    let r = recover_open(&store, &fleet(), &d, Timestamp(6))
        .await
        .unwrap();
    assert_eq!(r.runs[0].action, RecoveryAction::Committed, "{r:?}");
    assert_eq!(*store.count.lock().unwrap(), 2);
    // A run whose count was written is left as it is.
    *store.count.lock().unwrap() = 2;
    recover_open(&store, &fleet(), &d, Timestamp(7))
        .await
        .unwrap();
    assert_eq!(*store.count.lock().unwrap(), 2);
}

#[tokio::test]
async fn a_run_that_hung_up_calls_undoes_all_but_the_pairs_it_committed_to_removal() {
    let run = fence("run", 1);
    let store = Memory::new(vec![active(1), active(2)], &run);
    scale_in_stopped_while_removing(&store, &run).await;
    let r = rollback_keeping_removal(&store, &fleet(), &run, run.owner.as_str(), Timestamp(2))
        .await
        .unwrap();
    assert_eq!(r.removing, vec![id(1)]);
    assert_eq!(r.receipt.pairs_restored, vec![id(2)]);
    assert_eq!(store.pair(1).unwrap().status, PairStatus::Drained);
    assert_eq!(store.pair(2).unwrap().status, PairStatus::Active);

    // Before any pair was committed to removal, it is the whole rollback.
    let other = fence("other", 2);
    let store = Memory::new(vec![active(1), active(2)], &other);
    stale_run_that_set(&store, &other, &[PairStatus::Draining]).await;
    let r = rollback_keeping_removal(&store, &fleet(), &other, other.owner.as_str(), Timestamp(2))
        .await
        .unwrap();
    assert!(r.removing.is_empty() && r.receipt.rolled_back, "{r:?}");
    assert_eq!(store.pair(1).unwrap().status, PairStatus::Active);
}

#[tokio::test]
async fn a_run_cannot_recover_itself() {
    let new = fence("new", 2);
    let store = Memory::new(vec![active(1)], &new);
    let e = recover(&store, &fleet(), &new, new.owner.as_str(), Timestamp(2))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidRequest { field, .. } if field == "stale_run"),
        "{e}"
    );
}

#[tokio::test]
async fn discover_records_where_the_new_pairs_run_and_returns_them_as_nodes() {
    let run = fence("run", 1);
    let mut store = Memory::new(
        vec![
            active(1),
            Pair::new(id(3), PairStatus::Provisioning, Timestamp(0)),
        ],
        &run,
    );
    store.inventory = InventorySnapshot {
        instances: vec![InstanceInfo {
            instance_id: "i-3".into(),
            pair_tag: Some("pair-0003".into()),
            state: "running".into(),
            private_ip: Some("10.0.0.3".into()),
        }],
        services: vec![ServiceInfo {
            service_arn: "arn:aws:ecs:eu-west-1:1:service/voice/pair-0003".into(),
            service_name: "voice-pair-0003-esl".into(),
            pair_tag: Some("pair-0003".into()),
            status: "ACTIVE".into(),
            desired_count: 1,
            running_count: 1,
        }],
    };
    let d = discover(
        &store,
        &store,
        &fleet(),
        &run,
        "run",
        &[id(3)],
        Timestamp(5),
    )
    .await
    .unwrap();
    assert_eq!(d.pairs.len(), 1);
    assert_eq!(d.pairs[0].instance_id.as_deref(), Some("i-3"));
    assert_eq!(d.nodes[0].esl_endpoint, "10.0.0.3:8021");
    assert_eq!(
        store.pair(3).unwrap().ecs_service.as_deref(),
        Some("voice-pair-0003-esl")
    );
}

#[tokio::test]
async fn discover_names_between_one_and_the_fleet_maximum_of_pairs() {
    let run = fence("run", 1);
    let store = Memory::new(vec![], &run);
    let too_many: Vec<PairId> = (1..=MAX_FLEET_PAIRS + 1).map(id).collect();
    for ids in [&[][..], &too_many[..]] {
        let e = discover(&store, &store, &fleet(), &run, "run", ids, Timestamp(5))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains(&format!("1..={MAX_FLEET_PAIRS}")),
            "{e}"
        );
    }
}

#[tokio::test]
async fn every_unfinished_run_is_recovered_once_oldest_first_whatever_the_lock_says() {
    // Run A stopped mid-drain; run B drained pair 2 and finished; neither lock says anything
    // to the run that comes next (A's lock expired, or was broken by someone else).
    let (a, b, c) = (fence("a", 1), fence("b", 2), fence("c", 3));
    let store = Memory::new(vec![active(1), active(2), active(3)], &a);
    stale_run_that_set(&store, &a, &[PairStatus::Draining]).await;
    *store.holder.lock().unwrap() = b.clone();
    let changes = ChangeSet {
        updates: vec![PairUpdate::status(id(3), PairStatus::Draining)],
        ..ChangeSet::default()
    };
    commit(
        &store,
        &fleet(),
        &b,
        b.owner.as_str(),
        &changes,
        Timestamp(2),
    )
    .await
    .unwrap();
    store
        .finished
        .lock()
        .unwrap()
        .insert(b.owner.as_str().to_string());
    *store.holder.lock().unwrap() = c.clone();

    let r = recover_open(&store, &fleet(), &c, Timestamp(3))
        .await
        .unwrap();
    let runs: Vec<&str> = r.runs.iter().map(|x| x.stale_run.as_str()).collect();
    assert_eq!(runs, vec![a.owner.as_str()], "only the unfinished run");
    assert_eq!(r.runs[0].action, RecoveryAction::RolledBack);
    assert_eq!(store.pair(1).unwrap().status, PairStatus::Active);
    assert_eq!(
        store.pair(3).unwrap().status,
        PairStatus::Draining,
        "B's finished work stands"
    );
    let resumed: Vec<PairId> = r.resume_nodes.iter().map(|n| n.pair_id).collect();
    assert_eq!(resumed, vec![id(1)]);

    // Recovered once: the next run finds nothing left.
    let d = fence("d", 4);
    *store.holder.lock().unwrap() = d.clone();
    let again = recover_open(&store, &fleet(), &d, Timestamp(4))
        .await
        .unwrap();
    assert!(again.runs.is_empty(), "{again:?}");
    assert!(again.resume_nodes.is_empty());
}

#[tokio::test]
async fn a_recovery_under_a_lost_lock_changes_nothing() {
    let (a, c) = (fence("a", 1), fence("c", 3));
    let store = Memory::new(vec![active(1), active(2)], &a);
    stale_run_that_set(&store, &a, &[PairStatus::Draining]).await;
    // C thinks it holds the lock, but the store says A still does.
    let e = recover_open(&store, &fleet(), &c, Timestamp(3))
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::Fenced, "{e}");
    assert_eq!(store.pair(1).unwrap().status, PairStatus::Draining);
    assert!(store.finished.lock().unwrap().is_empty());
}

/// Run `a` recorded new pair 3 as provisioning and, when `build` is set, started its
/// Terraform build; then it stopped.
fn scale_out_stopped(store: &Memory, a: &Fence, build: Option<&str>) {
    let mut j = Journal::new(fleet(), a.owner.as_str().to_string(), Timestamp(1));
    j.allocated = vec![id(3)];
    j.remember(id(3), None);
    if let Some(b) = build {
        j.builds.insert(
            "out_terraform".into(),
            JournalBuild {
                build_id: b.into(),
                kind: crate::build::BuildKind::Terraform,
                started_at: Timestamp(1),
            },
        );
    }
    store.journals.lock().unwrap().insert(j.run.clone(), j);
    store.pairs.lock().unwrap().insert(
        id(3),
        Pair::new(id(3), PairStatus::Provisioning, Timestamp(1)),
    );
}

#[tokio::test]
async fn a_scale_out_stopped_after_its_build_began_gets_compensating_builds_before_it_counts_as_finished(
) {
    let (a, c, d) = (fence("a", 1), fence("c", 3), fence("d", 4));
    let store = Memory::new(vec![active(1), active(2)], &c);
    scale_out_stopped(&store, &a, Some("tf:1"));

    let r = recover_open(&store, &fleet(), &c, Timestamp(3))
        .await
        .unwrap();
    assert_eq!(r.runs[0].action, RecoveryAction::RolledBack);
    assert_eq!(r.stop_builds, vec!["tf:1".to_string()]);
    assert_eq!(r.compensate_pairs, vec![id(3)]);
    assert_eq!(r.finish_after, vec![a.owner.as_str().to_string()]);
    assert_eq!(store.pair(3), None, "its record is rolled back at once");
    assert!(
        store.finished.lock().unwrap().is_empty(),
        "not finished before the builds ran"
    );

    // The recovering run stops before its compensating builds end: the next one meets the
    // same obligation, though the records were already rolled back.
    *store.holder.lock().unwrap() = d.clone();
    let again = recover_open(&store, &fleet(), &d, Timestamp(4))
        .await
        .unwrap();
    assert_eq!(again.runs[0].action, RecoveryAction::Nothing);
    assert_eq!(again.compensate_pairs, vec![id(3)]);
    assert_eq!(again.stop_builds, vec!["tf:1".to_string()]);

    // Once the builds are done, the run is finished and met no more.
    finish_runs(&store, &fleet(), &d, &again.finish_after, Timestamp(5))
        .await
        .unwrap();
    let after = recover_open(&store, &fleet(), &d, Timestamp(6))
        .await
        .unwrap();
    assert!(after.runs.is_empty(), "{after:?}");
    let e = finish_runs(
        &store,
        &fleet(),
        &d,
        &[d.owner.as_str().to_string()],
        Timestamp(7),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), ErrorName::InvalidRequest, "{e}");
}

#[tokio::test]
async fn a_scale_out_stopped_before_any_build_is_only_rolled_back() {
    let (a, c) = (fence("a", 1), fence("c", 3));
    let store = Memory::new(vec![active(1), active(2)], &c);
    scale_out_stopped(&store, &a, None);
    let r = recover_open(&store, &fleet(), &c, Timestamp(3))
        .await
        .unwrap();
    assert_eq!(r.runs[0].action, RecoveryAction::RolledBack);
    assert!(
        r.compensate_pairs.is_empty() && r.stop_builds.is_empty(),
        "{r:?}"
    );
    assert!(r.finish_after.is_empty());
    assert!(store.finished.lock().unwrap().contains(a.owner.as_str()));
}

#[tokio::test]
async fn a_build_is_journaled_once_per_step_and_only_under_the_lock() {
    let (a, b) = (fence("a", 1), fence("b", 2));
    let store = Memory::new(vec![], &a);
    let build = |id: &str| JournalBuild {
        build_id: id.into(),
        kind: crate::build::BuildKind::Ansible,
        started_at: Timestamp(1),
    };
    let run = a.owner.as_str();
    note_build(
        &store,
        &fleet(),
        &a,
        run,
        "out_ansible",
        build("an:1"),
        Timestamp(1),
    )
    .await
    .unwrap();
    // A retried start returns the same build: a no-op.
    note_build(
        &store,
        &fleet(),
        &a,
        run,
        "out_ansible",
        build("an:1"),
        Timestamp(2),
    )
    .await
    .unwrap();
    let e = note_build(
        &store,
        &fleet(),
        &a,
        run,
        "out_ansible",
        build("an:2"),
        Timestamp(2),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), ErrorName::InvalidRequest, "{e}");
    let e = note_build(
        &store,
        &fleet(),
        &a,
        run,
        "Out Ansible",
        build("an:3"),
        Timestamp(2),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("step"), "{e}");
    let e = note_build(
        &store,
        &fleet(),
        &b,
        run,
        "out_terraform",
        build("tf:1"),
        Timestamp(2),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), ErrorName::Fenced, "{e}");
    let j = store.journals.lock().unwrap()[run].clone();
    assert_eq!(j.builds.len(), 1);
    assert_eq!(j.builds["out_ansible"].build_id, "an:1");
}

fn warm(seq: u32) -> Pair {
    Pair::new(id(seq), PairStatus::Warm, Timestamp(0))
}

#[tokio::test]
async fn a_scale_out_takes_the_warm_pool_first_the_same_pairs_on_a_retry_and_a_rollback_returns_them(
) {
    let run = fence("out", 1);
    // Two active, warm pairs 3 and 4: adding three takes both, then allocates pair 5.
    let store = Memory::new(vec![active(1), active(2), warm(3), warm(4)], &run);
    let changes = ChangeSet {
        new_pairs: 3,
        ..ChangeSet::default()
    };
    let first = commit(
        &store,
        &fleet(),
        &run,
        run.owner.as_str(),
        &changes,
        Timestamp(5),
    )
    .await
    .unwrap();
    assert_eq!(first.new_pairs, vec![id(3), id(4), id(5)]);
    for seq in [3, 4, 5] {
        assert_eq!(
            store.pair(seq).unwrap().status,
            PairStatus::Provisioning,
            "pair {seq}"
        );
    }
    let again = commit(
        &store,
        &fleet(),
        &run,
        run.owner.as_str(),
        &changes,
        Timestamp(6),
    )
    .await
    .unwrap();
    assert_eq!(
        again.new_pairs, first.new_pairs,
        "a retry takes the same pairs"
    );
    assert_eq!(
        *store.last_seq.lock().unwrap(),
        5,
        "and allocates nothing more"
    );

    let undone = rollback(&store, &fleet(), &run, run.owner.as_str(), Timestamp(7))
        .await
        .unwrap();
    assert_eq!(undone.pairs_deleted, vec![id(5)]);
    assert_eq!(store.pair(3), Some(warm(3)), "back in the pool as it was");
    assert_eq!(store.pair(4), Some(warm(4)));
    assert_eq!(store.pair(5), None);
}

#[tokio::test]
async fn a_refill_allocates_warm_pairs_once_per_run_and_only_after_the_run_added_its_pairs() {
    let run = fence("out", 1);
    let store = Memory::new(vec![active(1), warm(2)], &run);
    let add = ChangeSet {
        new_pairs: 1,
        ..ChangeSet::default()
    };
    let added = commit(
        &store,
        &fleet(),
        &run,
        run.owner.as_str(),
        &add,
        Timestamp(5),
    )
    .await
    .unwrap();
    assert_eq!(added.new_pairs, vec![id(2)], "the warm pair, no new id");
    let refill = ChangeSet {
        warm_pairs: 2,
        ..ChangeSet::default()
    };
    let warmed = commit(
        &store,
        &fleet(),
        &run,
        run.owner.as_str(),
        &refill,
        Timestamp(6),
    )
    .await
    .unwrap();
    assert_eq!(warmed.warm_pairs, vec![id(3), id(4)]);
    assert!(warmed.new_pairs.is_empty());
    let retried = commit(
        &store,
        &fleet(),
        &run,
        run.owner.as_str(),
        &refill,
        Timestamp(7),
    )
    .await
    .unwrap();
    assert_eq!(
        retried.warm_pairs, warmed.warm_pairs,
        "a retry allocates nothing more"
    );
    assert_eq!(store.pair(3).unwrap().status, PairStatus::Warm);
    assert_eq!(store.pair(2).unwrap().status, PairStatus::Provisioning);
    let more = ChangeSet {
        warm_pairs: 1,
        ..ChangeSet::default()
    };
    let e = commit(
        &store,
        &fleet(),
        &run,
        run.owner.as_str(),
        &more,
        Timestamp(8),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("refills the pool once"), "{e}");
}
