//! Fleet state (SSM + DynamoDB) against the local emulator: the count, the configuration,
//! fenced and journaled commits, exact rollback, and 1,000 pair records.
#![allow(clippy::unwrap_used)]

use pairscale_aws::dynamodb::{DynamoLockStore, FleetTable};
use pairscale_aws::fleet_state::AwsFleetState;
use pairscale_aws::ssm::FleetParams;
use pairscale_core::plan::Direction;
use pairscale_core::ports::{AcquireLock, FleetStateStore, LockStore};
use pairscale_core::service::{commit, rollback, CommitReceipt};
use pairscale_core::state::{ChangeSet, Fence, PairUpdate};
use pairscale_core::{ErrorName, FleetName, Owner, PairId, PairStatus, Timestamp};
use pairscale_testkit as kit;

const PREFIX: &str = "/pairscale-test";
const T0: i64 = 1_800_000_000_000;

struct Env {
    sdk: aws_config::SdkConfig,
    state: AwsFleetState,
    locks: DynamoLockStore,
    fleet: FleetName,
}

async fn env(count: &str) -> Env {
    let sdk = kit::sdk().await;
    let table = kit::unique("state");
    kit::create_table(&sdk, &table).await;
    let fleet = FleetName::parse(&kit::unique_fleet()).unwrap();
    kit::put_fleet_params(&sdk, PREFIX, fleet.as_str(), count, &kit::sample_config()).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    Env {
        state: AwsFleetState {
            params: FleetParams::new(aws_sdk_ssm::Client::new(&sdk), PREFIX),
            table: FleetTable::new(ddb.clone(), &table),
        },
        locks: DynamoLockStore::new(ddb, &table),
        fleet,
        sdk,
    }
}

fn owner(n: u32) -> Owner {
    Owner::parse(&format!(
        "arn:aws:states:us-east-1:123456789012:execution:pairscale:run-{n}"
    ))
    .unwrap()
}

async fn lock(e: &Env, n: u32, now: i64) -> Fence {
    let g = e
        .locks
        .acquire(&AcquireLock {
            fleet: e.fleet.clone(),
            owner: owner(n),
            ttl_secs: 60,
            request: String::new(),
            now: Timestamp(now),
        })
        .await
        .unwrap();
    Fence {
        owner: owner(n),
        token: g.token,
    }
}

/// `commit` on the test fleet's store.
async fn commit_as(
    e: &Env,
    fence: &Fence,
    run: &str,
    changes: &ChangeSet,
    now: Timestamp,
) -> pairscale_core::Result<CommitReceipt> {
    commit(&e.state, &e.fleet, fence, run, changes, now).await
}

#[tokio::test]
async fn the_pair_count_and_config_are_read_and_validated() {
    let e = env("2").await;
    assert_eq!(e.state.pair_count(&e.fleet).await.unwrap(), 2);
    assert_eq!(e.state.config(&e.fleet).await.unwrap().max_step, 3);
    let unknown = FleetName::parse(&kit::unique_fleet()).unwrap();
    let err = e.state.pair_count(&unknown).await.unwrap_err();
    assert_eq!(err.name(), ErrorName::UnknownFleet);
    assert!(
        err.to_string()
            .contains(&format!("{PREFIX}/{unknown}/pair_count")),
        "{err}"
    );
}

#[tokio::test]
async fn a_corrupt_count_or_config_is_reported_not_guessed() {
    let e = env("two").await;
    let err = e.state.pair_count(&e.fleet).await.unwrap_err();
    assert_eq!(err.name(), ErrorName::CorruptState);
    assert!(err.to_string().contains("two"), "{err}");
    let mut bad = kit::sample_config();
    bad["min_pairs"] = 50.into();
    kit::put_fleet_params(&e.sdk, PREFIX, e.fleet.as_str(), "2", &bad).await;
    let err = e.state.config(&e.fleet).await.unwrap_err();
    assert_eq!(err.name(), ErrorName::InvalidConfig);
    assert!(err.to_string().contains("min_pairs"), "{err}");
}

#[tokio::test]
async fn a_scale_out_commit_is_journaled_idempotent_and_rolls_back_exactly() {
    let e = env("0").await;
    let fence = lock(&e, 1, T0).await;
    let run = owner(1).to_string();
    // Provision two pairs.
    let mark = ChangeSet {
        new_pairs: 2,
        ..Default::default()
    };
    let r1 = commit(&e.state, &e.fleet, &fence, &run, &mark, Timestamp(T0))
        .await
        .unwrap();
    assert_eq!(r1.new_pairs.len(), 2);
    // A retry (lost response) allocates nothing new.
    let r2 = commit(&e.state, &e.fleet, &fence, &run, &mark, Timestamp(T0 + 1))
        .await
        .unwrap();
    assert_eq!(r2.new_pairs, r1.new_pairs);
    let pairs = e.state.pairs(&e.fleet).await.unwrap();
    assert_eq!(pairs.len(), 2);
    assert!(pairs.iter().all(|p| p.status == PairStatus::Provisioning));
    // Activate them and commit the count.
    let activate = ChangeSet {
        pair_count: Some(2),
        updates: r1
            .new_pairs
            .iter()
            .map(|id| PairUpdate {
                private_ip: Some("10.0.0.5".into()),
                ..PairUpdate::status(*id, PairStatus::Active)
            })
            .collect(),
        scaled: Some(Direction::Out),
        ..Default::default()
    };
    let r3 = commit(
        &e.state,
        &e.fleet,
        &fence,
        &run,
        &activate,
        Timestamp(T0 + 2),
    )
    .await
    .unwrap();
    assert_eq!(
        r3.pair_count_before,
        Some(0),
        "the previous value is recorded"
    );
    assert_eq!(e.state.pair_count(&e.fleet).await.unwrap(), 2);
    assert_eq!(
        e.state.meta(&e.fleet).await.unwrap().last_scale_out_at,
        Some(Timestamp(T0 + 2))
    );
    // Roll it all back: records gone, count restored; twice is the same as once.
    for _ in 0..2 {
        let rb = rollback(&e.state, &e.fleet, &fence, &run, Timestamp(T0 + 3))
            .await
            .unwrap();
        assert!(rb.rolled_back);
        assert_eq!(rb.pair_count_restored, Some(0));
        assert_eq!(rb.pairs_deleted.len(), 2);
    }
    assert!(e.state.pairs(&e.fleet).await.unwrap().is_empty());
    assert_eq!(e.state.pair_count(&e.fleet).await.unwrap(), 0);
    // Ids are never reused: the next run gets new ones.
    let fence2 = lock(&e, 1, T0 + 4).await;
    let r4 = commit_as(&e, &fence2, "other-run", &mark, Timestamp(T0 + 5))
        .await
        .unwrap();
    assert!(
        r4.new_pairs.iter().all(|id| !r1.new_pairs.contains(id)),
        "{:?} vs {:?}",
        r4.new_pairs,
        r1.new_pairs
    );
}

#[tokio::test]
async fn a_write_with_a_stale_token_is_fenced_and_changes_nothing() {
    let e = env("0").await;
    let old = lock(&e, 1, T0).await;
    // Run 1's lock expires; run 2 takes over.
    let new = lock(&e, 2, T0 + 61_000).await;
    assert!(new.token > old.token);
    let err = commit_as(
        &e,
        &old,
        "run-1",
        &ChangeSet {
            new_pairs: 1,
            pair_count: Some(1),
            ..Default::default()
        },
        Timestamp(T0 + 62_000),
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), ErrorName::Fenced);
    assert!(e.state.pairs(&e.fleet).await.unwrap().is_empty());
    assert_eq!(e.state.pair_count(&e.fleet).await.unwrap(), 0);
    // The current holder writes fine.
    commit_as(
        &e,
        &new,
        "run-2",
        &ChangeSet {
            new_pairs: 1,
            ..Default::default()
        },
        Timestamp(T0 + 62_000),
    )
    .await
    .unwrap();
    // After release, even the right token is fenced.
    e.locks
        .release(&e.fleet, &owner(2), Timestamp(T0 + 63_000))
        .await
        .unwrap();
    let err = commit_as(
        &e,
        &new,
        "run-2",
        &ChangeSet {
            pair_count: Some(1),
            ..Default::default()
        },
        Timestamp(T0 + 64_000),
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), ErrorName::Fenced);
}

#[tokio::test]
async fn a_scale_in_rollback_restores_the_previous_statuses() {
    let e = env("0").await;
    let fence = lock(&e, 1, T0).await;
    let add = commit_as(
        &e,
        &fence,
        "setup",
        &ChangeSet {
            new_pairs: 3,
            ..Default::default()
        },
        Timestamp(T0),
    )
    .await
    .unwrap();
    let ids = add.new_pairs.clone();
    let act = ChangeSet {
        pair_count: Some(3),
        updates: ids
            .iter()
            .map(|id| PairUpdate::status(*id, PairStatus::Active))
            .collect(),
        ..Default::default()
    };
    commit(&e.state, &e.fleet, &fence, "setup", &act, Timestamp(T0))
        .await
        .unwrap();
    // The scale-in run drains one, then fails.
    let drain = ChangeSet {
        updates: vec![PairUpdate::status(ids[0], PairStatus::Draining)],
        ..Default::default()
    };
    commit_as(&e, &fence, "scale-in", &drain, Timestamp(T0 + 10))
        .await
        .unwrap();
    let done = ChangeSet {
        updates: vec![PairUpdate::status(ids[0], PairStatus::Drained)],
        pair_count: Some(2),
        ..Default::default()
    };
    commit_as(&e, &fence, "scale-in", &done, Timestamp(T0 + 20))
        .await
        .unwrap();
    assert_eq!(e.state.pair_count(&e.fleet).await.unwrap(), 2);
    let rb = rollback(&e.state, &e.fleet, &fence, "scale-in", Timestamp(T0 + 30))
        .await
        .unwrap();
    assert_eq!(rb.pairs_restored, vec![ids[0]]);
    let pairs = e.state.pairs(&e.fleet).await.unwrap();
    assert!(
        pairs.iter().all(|p| p.status == PairStatus::Active),
        "{pairs:?}"
    );
    assert_eq!(e.state.pair_count(&e.fleet).await.unwrap(), 3);
    // A rolled-back run cannot write again.
    let err = commit_as(&e, &fence, "scale-in", &drain, Timestamp(T0 + 40))
        .await
        .unwrap_err();
    assert_eq!(err.name(), ErrorName::InvalidRequest);
}

#[tokio::test]
async fn bad_changes_are_refused_before_anything_is_written() {
    let e = env("0").await;
    let fence = lock(&e, 1, T0).await;
    let ghost = PairId::new(4242).unwrap();
    let err = commit_as(
        &e,
        &fence,
        "r",
        &ChangeSet {
            updates: vec![PairUpdate::status(ghost, PairStatus::Active)],
            ..Default::default()
        },
        Timestamp(T0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), ErrorName::InvalidRequest);
    assert!(err.to_string().contains("pair-4242"), "{err}");
    let add = commit_as(
        &e,
        &fence,
        "r",
        &ChangeSet {
            new_pairs: 1,
            ..Default::default()
        },
        Timestamp(T0),
    )
    .await
    .unwrap();
    let before = e.state.pairs(&e.fleet).await.unwrap();
    // provisioning → draining is not a transition; the pair stays as it was.
    let err = commit_as(
        &e,
        &fence,
        "r",
        &ChangeSet {
            updates: vec![PairUpdate::status(add.new_pairs[0], PairStatus::Draining)],
            pair_count: Some(9),
            ..Default::default()
        },
        Timestamp(T0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), ErrorName::InvalidRequest);
    assert_eq!(e.state.pairs(&e.fleet).await.unwrap(), before);
    assert_eq!(e.state.pair_count(&e.fleet).await.unwrap(), 0);
}

#[tokio::test]
async fn a_thousand_pair_records_are_written_and_read_back() {
    let e = env("0").await;
    let fence = lock(&e, 1, T0).await;
    let r = commit_as(
        &e,
        &fence,
        "big",
        &ChangeSet {
            new_pairs: 1000,
            ..Default::default()
        },
        Timestamp(T0),
    )
    .await
    .unwrap();
    assert_eq!(r.new_pairs.len(), 1000);
    let pairs = e.state.pairs(&e.fleet).await.unwrap();
    assert_eq!(pairs.len(), 1000, "every page is read");
    let ids: Vec<PairId> = pairs.iter().map(|p| p.id).collect();
    assert_eq!(ids, r.new_pairs, "sorted by id, none missing");
}
