//! Kamailio's `reload_delta`: a real Kamailio 5.6 takes one `dispatcher.reload` per
//! `reload_delta` seconds (5 by default) and answers the others "Ongoing reload" without
//! loading anything. A production proxy keeps that limit (two reloads at once corrupt 5.6's
//! shared memory), so every change pairscale makes, each followed by a reload, must wait a
//! refusal out rather than fail on it or, worse, take it for done.
//!
//! Each test starts a Kamailio of its own with the limit set (the suite's shared instances run
//! without it); it reads the shared table. Set ids 141..

mod common;

use common::{clear_sets, dispatcher_through, OwnKamailio};
use pairscale_dispatcher::{Destination, DestinationStatus, DispatcherError, KamailioRpc};
use serde_json::json;
use std::time::Duration;

fn dest(set_id: i32, port: u16, pair: &str) -> Destination {
    Destination::new(set_id, format!("sip:127.0.0.1:{port}"), pair).expect("valid destination")
}

/// The refusal this is about, asked for directly: a second reload right after one.
async fn assert_refuses_a_second_reload(rpc: &KamailioRpc) {
    rpc.call("dispatcher.reload", json!([]))
        .await
        .expect("a first reload is taken");
    match rpc.call("dispatcher.reload", json!([])).await {
        Err(DispatcherError::Rpc { message, .. }) => assert_eq!(message, "Ongoing reload"),
        other => panic!("expected Kamailio to refuse a reload right after one, got {other:?}"),
    }
}

#[tokio::test]
async fn changes_right_after_a_reload_wait_out_kamailios_reload_delta() {
    clear_sets(&[141]).await;
    let own = OwnKamailio::start_with_reload_delta(5).await;
    let rpc = KamailioRpc::new(own.url(), Duration::from_secs(5)).expect("client");
    assert_refuses_a_second_reload(&rpc).await;

    // Each change reloads: the first comes within 5 s of the reload above, each of the
    // others within 5 s of the one before. None may fail on it, nor report a change that
    // Kamailio did not load.
    let one = dispatcher_through(&[own.url()]);
    let (a, b) = (dest(141, 43001, "pair-141a"), dest(141, 43002, "pair-141b"));
    one.register(&a)
        .await
        .expect("register a right after a reload");
    one.register(&b).await.expect("register b right after a's");
    let listed = |d: &Destination, list: &[pairscale_dispatcher::DestinationState]| {
        list.iter()
            .find(|s| s.set_id == d.set_id && s.uri == d.uri)
            .map(|s| s.status)
    };
    let list = rpc.list().await.expect("list");
    assert_eq!(listed(&a, &list), Some(DestinationStatus::Active));
    assert_eq!(listed(&b, &list), Some(DestinationStatus::Active));

    one.deregister(&a).await.expect("deregister a");
    one.deregister(&b).await.expect("deregister b");
    let list = rpc.list().await.expect("list");
    assert_eq!((listed(&a, &list), listed(&b, &list)), (None, None));
}

#[tokio::test]
async fn a_kamailio_that_refuses_reloads_past_the_wait_fails_the_reload_retryably() {
    let own = OwnKamailio::start_with_reload_delta(600).await;
    let rpc = KamailioRpc::new(own.url(), Duration::from_secs(5))
        .expect("client")
        .with_reload_wait(Duration::from_secs(2));
    assert_refuses_a_second_reload(&rpc).await;

    let err = rpc.reload().await.expect_err("refused for ten minutes");
    assert!(
        matches!(err, DispatcherError::ReloadRefused { .. }),
        "expected ReloadRefused, got {err:?}"
    );
    assert!(err.is_retryable(), "a later reload is taken: {err}");
    let shown = err.to_string();
    assert!(
        shown.contains("reload_delta") && shown.contains("Ongoing reload"),
        "the message says why: {shown}"
    );
}
