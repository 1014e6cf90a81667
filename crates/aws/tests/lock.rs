//! The scaling lock against the local DynamoDB emulator, over real HTTP.
#![allow(clippy::unwrap_used)]

use pairscale_aws::dynamodb::DynamoLockStore;
use pairscale_core::lock::{BreakRecord, ExecutionStatus, ReleaseOutcome};
use pairscale_core::ports::{AcquireLock, ExecutionRegistry, LockStore};
use pairscale_core::service::break_stale;
use pairscale_core::{ErrorName, FleetName, Owner, Timestamp};
use pairscale_testkit as kit;
use std::sync::Arc;

fn owner(n: usize) -> Owner {
    Owner::parse(&format!(
        "arn:aws:states:us-east-1:123456789012:execution:pairscale-scale-out:run-{n}"
    ))
    .unwrap()
}

async fn store() -> (DynamoLockStore, FleetName) {
    let sdk = kit::sdk().await;
    let table = kit::unique("locks");
    kit::create_table(&sdk, &table).await;
    (
        DynamoLockStore::new(aws_sdk_dynamodb::Client::new(&sdk), table),
        FleetName::parse(&kit::unique_fleet()).unwrap(),
    )
}

fn req(fleet: &FleetName, o: &Owner, now: i64) -> AcquireLock {
    AcquireLock {
        fleet: fleet.clone(),
        owner: o.clone(),
        ttl_secs: 60,
        request: "scale-out to 4".into(),
        now: Timestamp(now),
    }
}

const T0: i64 = 1_800_000_000_000;

#[tokio::test]
async fn acquire_then_a_second_owner_is_told_who_holds_it() {
    let (locks, fleet) = store().await;
    let g = locks.acquire(&req(&fleet, &owner(1), T0)).await.unwrap();
    assert!(!g.reacquired);
    assert!(
        g.token >= T0 as u64,
        "token {} is not below the clock",
        g.token
    );
    let e = locks
        .acquire(&req(&fleet, &owner(2), T0 + 1_000))
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::LockHeld);
    assert!(e.to_string().contains(owner(1).as_str()), "{e}");
    let rec = locks.get(&fleet).await.unwrap().unwrap();
    assert_eq!(rec.holder.as_deref(), Some(owner(1).as_str()));
    assert_eq!(rec.token, g.token);
    assert_eq!(rec.request.as_deref(), Some("scale-out to 4"));
}

#[tokio::test]
async fn a_retried_acquire_by_the_holder_succeeds_with_the_same_token() {
    let (locks, fleet) = store().await;
    let g1 = locks.acquire(&req(&fleet, &owner(1), T0)).await.unwrap();
    let g2 = locks
        .acquire(&req(&fleet, &owner(1), T0 + 5_000))
        .await
        .unwrap();
    assert!(g2.reacquired);
    assert_eq!(g2.token, g1.token);
    assert_eq!(
        g2.expires_at,
        Timestamp(T0 + 5_000 + 60_000),
        "the retry extends the expiry"
    );
}

#[tokio::test]
async fn an_expired_lock_is_taken_over_with_a_larger_token() {
    let (locks, fleet) = store().await;
    let g1 = locks.acquire(&req(&fleet, &owner(1), T0)).await.unwrap();
    // The lock expires at T0 + 60 s; DynamoDB's TTL has not removed it, we compare ourselves.
    let g2 = locks
        .acquire(&req(&fleet, &owner(2), T0 + 60_000))
        .await
        .unwrap();
    assert!(g2.token > g1.token);
    let e = locks
        .heartbeat(&fleet, &owner(1), 60, Timestamp(T0 + 61_000))
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::LockNotOwned);
}

#[tokio::test]
async fn tokens_grow_across_release_and_reacquire_even_with_a_clock_behind() {
    let (locks, fleet) = store().await;
    let mut last = 0;
    for i in 0..4 {
        // The clock goes backwards: tokens must still grow.
        let g = locks
            .acquire(&req(&fleet, &owner(i), T0 - i as i64 * 10_000))
            .await
            .unwrap();
        assert!(g.token > last, "token {} after {last}", g.token);
        last = g.token;
        assert_eq!(
            locks
                .release(&fleet, &owner(i), Timestamp(T0))
                .await
                .unwrap(),
            ReleaseOutcome::Released
        );
    }
}

#[tokio::test]
async fn release_is_owner_checked_and_idempotent() {
    let (locks, fleet) = store().await;
    locks.acquire(&req(&fleet, &owner(1), T0)).await.unwrap();
    let e = locks
        .release(&fleet, &owner(2), Timestamp(T0))
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::LockNotOwned);
    assert!(
        locks
            .get(&fleet)
            .await
            .unwrap()
            .unwrap()
            .is_held(Timestamp(T0)),
        "a refused release changes nothing"
    );
    assert_eq!(
        locks
            .release(&fleet, &owner(1), Timestamp(T0))
            .await
            .unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(
        locks
            .release(&fleet, &owner(1), Timestamp(T0))
            .await
            .unwrap(),
        ReleaseOutcome::AlreadyReleased
    );
    // Released, then taken by another run, then our retried release arrives: still a success
    // for us, and the other run keeps its lock.
    locks
        .acquire(&req(&fleet, &owner(3), T0 + 1))
        .await
        .unwrap();
    assert_eq!(
        locks
            .release(&fleet, &owner(1), Timestamp(T0 + 2))
            .await
            .unwrap(),
        ReleaseOutcome::AlreadyReleased
    );
    assert_eq!(
        locks.get(&fleet).await.unwrap().unwrap().holder.as_deref(),
        Some(owner(3).as_str())
    );
    // A never-held lock releases as "already released".
    let other = FleetName::parse(&kit::unique_fleet()).unwrap();
    assert_eq!(
        locks
            .release(&other, &owner(1), Timestamp(T0))
            .await
            .unwrap(),
        ReleaseOutcome::AlreadyReleased
    );
}

#[tokio::test]
async fn heartbeat_extends_only_for_the_holder() {
    let (locks, fleet) = store().await;
    let g = locks.acquire(&req(&fleet, &owner(1), T0)).await.unwrap();
    let hb = locks
        .heartbeat(&fleet, &owner(1), 300, Timestamp(T0 + 50_000))
        .await
        .unwrap();
    assert_eq!(hb.token, g.token);
    assert_eq!(hb.expires_at, Timestamp(T0 + 50_000 + 300_000));
    // Long past the original TTL, still held thanks to the heartbeat.
    let e = locks
        .acquire(&req(&fleet, &owner(2), T0 + 200_000))
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::LockHeld);
    let e = locks
        .heartbeat(&fleet, &owner(2), 300, Timestamp(T0 + 60_000))
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::LockNotOwned);
}

#[tokio::test]
async fn an_expired_lock_is_not_extended_by_its_late_heartbeat() {
    // Past its expiry another run may already be breaking it: the heartbeat must not revive it.
    let (locks, fleet) = store().await;
    locks.acquire(&req(&fleet, &owner(1), T0)).await.unwrap();
    let e = locks
        .heartbeat(&fleet, &owner(1), 300, Timestamp(T0 + 60_000))
        .await
        .unwrap_err();
    assert_eq!(e.name(), ErrorName::LockNotOwned);
    assert!(e.to_string().contains("expired"), "{e}");
    let rec = locks.get(&fleet).await.unwrap().unwrap();
    assert_eq!(rec.expires_at, Timestamp(T0 + 60_000), "expiry untouched");
}

#[tokio::test]
async fn a_lock_renewed_after_it_was_judged_stale_is_not_broken() {
    let (locks, fleet) = store().await;
    locks.acquire(&req(&fleet, &owner(1), T0)).await.unwrap();
    let judged = locks.get(&fleet).await.unwrap().unwrap();
    // The holder's heartbeat lands between the breaker's read and its write.
    locks
        .heartbeat(&fleet, &owner(1), 60, Timestamp(T0 + 30_000))
        .await
        .unwrap();
    let record = BreakRecord {
        broken_by: "cli:ops".into(),
        broken_at: Timestamp(T0 + 31_000),
        previous_holder: owner(1).to_string(),
        previous_token: judged.token,
        reason: "looked stuck".into(),
    };
    let e = locks.force_release(&judged, &record).await.unwrap_err();
    assert_eq!(e.name(), ErrorName::LockNotStale);
    assert!(
        locks.get(&fleet).await.unwrap().unwrap().holder.is_some(),
        "still held"
    );
}

#[tokio::test]
async fn fifty_concurrent_acquirers_one_wins_and_the_rest_see_the_holder() {
    let (locks, fleet) = store().await;
    let locks = Arc::new(locks);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let locks = locks.clone();
        let fleet = fleet.clone();
        tasks.push(tokio::spawn(async move {
            (i, locks.acquire(&req(&fleet, &owner(i), T0)).await)
        }));
    }
    let mut winners = Vec::new();
    let mut held = 0;
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match r {
            Ok(g) => winners.push((i, g)),
            Err(e) => {
                assert_eq!(e.name(), ErrorName::LockHeld, "{e}");
                held += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    assert_eq!(held, 49);
    let (wi, wg) = &winners[0];
    let rec = locks.get(&fleet).await.unwrap().unwrap();
    assert_eq!(rec.holder.as_deref(), Some(owner(*wi).as_str()));
    assert_eq!(rec.token, wg.token, "the losers changed nothing");
    assert_eq!(rec.acquired_at, Timestamp(T0));
}

struct FixedStatus(ExecutionStatus);

#[async_trait::async_trait]
impl ExecutionRegistry for FixedStatus {
    async fn status(&self, _arn: &str) -> pairscale_core::Result<ExecutionStatus> {
        Ok(self.0)
    }
}

#[tokio::test]
async fn break_stale_refuses_a_live_holder_and_records_who_broke_it() {
    let (locks, fleet) = store().await;
    let g = locks.acquire(&req(&fleet, &owner(1), T0)).await.unwrap();
    let running = FixedStatus(ExecutionStatus::Running);
    let e = break_stale(
        &locks,
        &running,
        &fleet,
        "cli:alice",
        "stuck?",
        Timestamp(T0 + 1_000),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), ErrorName::LockNotStale);
    assert!(locks
        .get(&fleet)
        .await
        .unwrap()
        .unwrap()
        .is_held(Timestamp(T0 + 1_000)));

    let aborted = FixedStatus(ExecutionStatus::Aborted);
    let out = break_stale(
        &locks,
        &aborted,
        &fleet,
        "cli:alice",
        "run was stopped",
        Timestamp(T0 + 2_000),
    )
    .await
    .unwrap();
    assert_eq!(out.broken.previous_holder, owner(1).as_str());
    assert_eq!(out.broken.previous_token, g.token);
    let rec = locks.get(&fleet).await.unwrap().unwrap();
    assert!(rec.holder.is_none());
    let b = rec.broken.unwrap();
    assert_eq!(
        (b.broken_by.as_str(), b.broken_at),
        ("cli:alice", Timestamp(T0 + 2_000))
    );
    assert!(b.reason.contains("ABORTED"), "{}", b.reason);
    // The broken owner's late release is harmless; a new run gets a larger token.
    assert_eq!(
        locks
            .release(&fleet, &owner(1), Timestamp(T0 + 3_000))
            .await
            .unwrap(),
        ReleaseOutcome::AlreadyReleased
    );
    let g2 = locks
        .acquire(&req(&fleet, &owner(2), T0 + 3_000))
        .await
        .unwrap();
    assert!(g2.token > g.token);
}

#[tokio::test]
async fn break_stale_breaks_an_expired_lock_even_if_the_owner_runs() {
    let (locks, fleet) = store().await;
    locks.acquire(&req(&fleet, &owner(1), T0)).await.unwrap();
    let running = FixedStatus(ExecutionStatus::Running);
    let out = break_stale(
        &locks,
        &running,
        &fleet,
        "cli:bob",
        "expired",
        Timestamp(T0 + 61_000),
    )
    .await
    .unwrap();
    assert!(
        out.stale_because.starts_with("expired"),
        "{}",
        out.stale_because
    );
    let e = break_stale(
        &locks,
        &running,
        &fleet,
        "cli:bob",
        "again",
        Timestamp(T0 + 62_000),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), ErrorName::LockNotStale, "nothing left to break");
}
