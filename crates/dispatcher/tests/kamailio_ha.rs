//! Kamailio as an HA pair: two (or more) real Kamailio 5.6 instances reading the one dispatcher
//! table in PostgreSQL. A change is written to the table once and must be taken, and confirmed,
//! by every instance; one that cannot be reached fails the change by its URL, after the others
//! took it, and the retry converges once it is back.
//!
//! The pair that tests/setup/30-kamailio.sh started serves the tests that only need the table
//! and every instance to agree. A test that stops an instance, or sets one's memory apart from
//! the table, starts one of its own (tests/kamailio/run.sh, same table) for that: the tests
//! running beside it stop nothing of theirs, and their reloads (which rebuild every set of an
//! instance) cannot undo its setup. Each test owns its set ids (131..).

mod common;

use common::{clear_sets, dispatcher_through, ha_urls, rows, OwnKamailio};
use pairscale_dispatcher::{
    Destination, DestinationStatus, DispatcherError, KamailioDispatcher, KamailioRpc, SetState,
};
use std::time::Duration;

fn dest(set_id: i32, port: u16, pair: &str) -> Destination {
    Destination::new(set_id, format!("sip:127.0.0.1:{port}"), pair).expect("valid destination")
}

/// What the Kamailio at `url` lists for `d`, read from that instance alone.
async fn seen_by(url: &str, d: &Destination) -> Option<DestinationStatus> {
    dispatcher_through(&[url])
        .list()
        .await
        .unwrap_or_else(|e| panic!("dispatcher.list at {url}: {e}"))
        .into_iter()
        .find(|s| s.set_id == d.set_id && s.uri == d.uri)
        .map(|s| s.status)
}

/// Each instance's view of `d`, in the order of `urls`.
async fn seen_by_each(urls: &[String], d: &Destination) -> Vec<Option<DestinationStatus>> {
    let mut out = Vec::new();
    for url in urls {
        out.push(seen_by(url, d).await);
    }
    out
}

/// The failure of a change with one instance down: it names that instance, and only it.
fn assert_names_only(err: &DispatcherError, down: &str, up: &str) {
    match err {
        DispatcherError::Kamailios { failed } => {
            let named: Vec<&str> = failed.iter().map(|f| f.url.as_str()).collect();
            assert_eq!(named, [down], "{err}");
        }
        other => panic!("expected Kamailios naming {down}, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.contains(down) && !shown.contains(up),
        "the message must name the instance that is down and only it: {shown}"
    );
    assert!(
        err.is_retryable(),
        "an instance that is down may come back: {err}"
    );
}

#[tokio::test]
async fn disable_and_enable_reach_both_kamailios_and_each_lists_the_change() {
    clear_sets(&[131]).await;
    let urls = ha_urls();
    let ha = dispatcher_through(&urls);
    assert_eq!(ha.rpc_urls().collect::<Vec<_>>(), urls);
    let d = dest(131, 42001, "pair-131");
    let other = dest(131, 42002, "pair-131b");
    ha.register(&d).await.expect("register");
    ha.register(&other).await.expect("register other");
    let active = Some(DestinationStatus::Active);
    let disabled = Some(DestinationStatus::Disabled);
    assert_eq!(seen_by_each(&urls, &d).await, [active, active]);

    ha.disable(&d).await.expect("disable");
    assert_eq!(rows(131, &d.uri).await[0].0, 4, "written to the table once");
    assert_eq!(seen_by_each(&urls, &d).await, [disabled, disabled]);
    assert_eq!(seen_by_each(&urls, &other).await, [active, active]);
    ha.disable(&d).await.expect("disable again");
    assert_eq!(seen_by_each(&urls, &d).await, [disabled, disabled]);

    ha.enable(&d).await.expect("enable");
    assert_eq!(rows(131, &d.uri).await[0].0, 0);
    assert_eq!(seen_by_each(&urls, &d).await, [active, active]);

    ha.deregister(&d).await.expect("deregister");
    ha.deregister(&other).await.expect("deregister other");
    assert_eq!(seen_by_each(&urls, &d).await, [None, None]);
}

/// What `reload` is for after the table was changed by hand: every instance rebuilds its list
/// from the table, also one whose memory went its own way.
#[tokio::test]
async fn reload_rebuilds_every_kamailios_list_from_the_table() {
    let apart = Apart::set_up(132, 42003).await;
    let (urls, ha, d) = (&apart.urls, &apart.ha, &apart.d);

    ha.reload().await.expect("reload both");

    let disabled = Some(DestinationStatus::Disabled);
    assert_eq!(seen_by_each(urls, d).await, [disabled, disabled]);
    ha.deregister(d).await.expect("cleanup");
}

/// A node disabled on a shared instance and on the test's own, then put back into rotation in
/// the own instance's memory alone: the table and the two instances no longer agree.
struct Apart {
    _own: OwnKamailio,
    urls: [String; 2],
    ha: KamailioDispatcher,
    d: Destination,
}

impl Apart {
    async fn set_up(set_id: i32, port: u16) -> Apart {
        clear_sets(&[set_id]).await;
        let own = OwnKamailio::start().await;
        let urls = [ha_urls()[0].clone(), own.url()];
        let ha = dispatcher_through(&urls);
        let d = dest(set_id, port, &format!("pair-{set_id}"));
        ha.register(&d).await.expect("register on both");
        ha.disable(&d).await.expect("disable on both");
        behind_our_back(&urls[1], &d).await;
        assert_eq!(rows(set_id, &d.uri).await[0].0, 4);
        Apart {
            _own: own,
            urls,
            ha,
            d,
        }
    }
}

/// Puts `d` back into rotation in the memory of the Kamailio at `url` alone, as an instance
/// back from a partition with its old list would hold it; the table is not touched. `url` must
/// be the test's own instance: a reload by a test running beside it would undo this.
async fn behind_our_back(url: &str, d: &Destination) {
    KamailioRpc::new(url, Duration::from_secs(5))
        .expect("rpc")
        .set_state(SetState::Active, d.set_id, &d.uri)
        .await
        .expect("set_state on one instance");
    assert_eq!(seen_by(url, d).await, Some(DestinationStatus::Active));
}

/// Which way a node's rotation changes.
#[derive(Clone, Copy)]
enum Rotation {
    Out,
    In,
}

impl Rotation {
    async fn apply(self, ha: &KamailioDispatcher, d: &Destination) -> Result<(), DispatcherError> {
        match self {
            Rotation::Out => ha.disable(d).await,
            Rotation::In => ha.enable(d).await,
        }
    }

    /// The row's flags and what `dispatcher.list` shows, once the change is in.
    fn after(self) -> (i32, DestinationStatus) {
        match self {
            Rotation::Out => (4, DestinationStatus::Disabled),
            Rotation::In => (0, DestinationStatus::Active),
        }
    }
}

/// One instance stopped (the test's own, listed first, so an adapter that gave up at the first
/// failure would leave the change undone on the other): the change fails naming it and only
/// it, the table and the instance that is up have the change already, and once the stopped one
/// is back the same call converges on both. The node starts on the other side of `change`.
async fn one_stopped_then_back(set_id: i32, port: u16, up: usize, change: Rotation) {
    clear_sets(&[set_id]).await;
    let mut own = OwnKamailio::start().await;
    let (down, up) = (own.url(), ha_urls()[up].clone());
    let urls = [down.clone(), up.clone()];
    let ha = dispatcher_through(&urls);
    let d = dest(set_id, port, &format!("pair-{set_id}"));
    ha.register(&d).await.expect("register on both");
    if let Rotation::In = change {
        ha.disable(&d).await.expect("disable on both");
    }
    let (flags, status) = change.after();

    own.stop().await;
    let err = change
        .apply(&ha, &d)
        .await
        .expect_err("one kamailio is down");
    assert_names_only(&err, &down, &up);
    assert_eq!(
        rows(set_id, &d.uri).await[0].0,
        flags,
        "the table holds the change"
    );
    assert_eq!(
        seen_by(&up, &d).await,
        Some(status),
        "the kamailio that is up routes by the change now"
    );

    own.start_again().await;
    change.apply(&ha, &d).await.expect("the retry converges");
    assert_eq!(seen_by_each(&urls, &d).await, [Some(status), Some(status)]);
    ha.deregister(&d).await.expect("cleanup");
}

#[tokio::test]
async fn with_one_kamailio_stopped_disable_fails_naming_it_and_the_retry_converges() {
    one_stopped_then_back(133, 42004, 0, Rotation::Out).await;
}

#[tokio::test]
async fn with_one_kamailio_stopped_enable_fails_naming_it_and_the_retry_converges() {
    one_stopped_then_back(134, 42005, 1, Rotation::In).await;
}

/// An instance can hold an old list in memory while the table already holds the change (it
/// came back from a partition, or reloaded just before the write): the retry must apply the
/// change to every instance again, never skip one because the table is already right.
#[tokio::test]
async fn a_retry_reapplies_the_change_to_an_instance_whose_memory_is_behind_the_table() {
    let apart = Apart::set_up(135, 42006).await;
    let (urls, ha, d) = (&apart.urls, &apart.ha, &apart.d);
    assert_eq!(
        seen_by_each(urls, d).await,
        [
            Some(DestinationStatus::Disabled),
            Some(DestinationStatus::Active)
        ]
    );

    ha.disable(d).await.expect("disable again");

    let disabled = Some(DestinationStatus::Disabled);
    assert_eq!(seen_by_each(urls, d).await, [disabled, disabled]);
    ha.deregister(d).await.expect("cleanup");
}

#[test]
fn a_list_naming_no_kamailio_or_one_twice_is_invalid_input() {
    let base = common::config();
    for urls in [
        vec![],
        vec!["http://127.0.0.1:1/RPC", "http://127.0.0.1:1/RPC"],
        vec!["http://127.0.0.1:1/RPC", "127.0.0.1:2/RPC"],
    ] {
        let err =
            KamailioDispatcher::new(base.clone().with_rpc_urls(urls.clone())).expect_err("refused");
        assert!(
            matches!(err, DispatcherError::InvalidInput { .. }),
            "{urls:?}: {err:?}"
        );
        assert!(!err.is_retryable());
    }
}
