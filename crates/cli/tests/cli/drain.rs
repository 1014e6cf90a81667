//! `drain` and `undrain`: one node's maintenance.

use crate::common::{assert_code, pairscale, two_pairs};
use pairscale_stack::Options;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_and_undrain_take_one_node_out_of_rotation_and_back() {
    let s = two_pairs(Options::default()).await;
    let instances = s.instances().await;
    let (pair, ip) = instances.iter().next().unwrap();
    let other = instances.keys().find(|p| *p != pair).unwrap();

    let r = pairscale(
        Some(&s),
        &[
            "drain",
            "--fleet",
            &s.fleet,
            "--pair",
            pair,
            "--deadline",
            "30s",
        ],
    )
    .await;
    assert_code(&r, 0);
    assert!(
        r.stdout.starts_with(&format!("Drained {pair}")),
        "{}",
        r.stdout
    );
    let rows = s.dispatcher_rows().await;
    assert_eq!(rows[pair].1, 4, "out of rotation: {rows:?}");
    assert_eq!(rows[other].1, 0, "the other pair is untouched: {rows:?}");
    assert!(s.node_view(ip).await.1, "{pair} refuses new calls");
    // Node level only: the records are as they were, and the lock is free again.
    let records = s.records().await;
    assert_eq!(records[pair]["status"], "active");
    assert!(!s.lock_held().await);
    let r = pairscale(Some(&s), &["validate", "--fleet", &s.fleet]).await;
    assert_code(&r, 0);

    let r = pairscale(
        Some(&s),
        &[
            "undrain", "--fleet", &s.fleet, "--pair", pair, "--output", "json",
        ],
    )
    .await;
    assert_code(&r, 0);
    assert_eq!(r.json()["outcome"], "resumed");
    assert_eq!(s.dispatcher_rows().await[pair].1, 0);
    assert!(!s.node_view(ip).await.1, "{pair} takes calls again");
    assert!(!s.lock_held().await);

    // An unknown pair is bad input, named.
    let r = pairscale(
        Some(&s),
        &["drain", "--fleet", &s.fleet, "--pair", "pair-0099"],
    )
    .await;
    assert_code(&r, 2);
    assert!(r.stderr.contains("no pair pair-0099"), "{}", r.stderr);
}
