//! `EslNodes` against simulated FreeSWITCH nodes on 127.0.0.1:0.
#![allow(clippy::unwrap_used)]

use pairscale_core::ports::MediaNodes;
use pairscale_core::{Error, ErrorName, HangupCause, Timestamp};
use pairscale_fssim::{CallSpec, CoreDb, Direction, Fault, NodeConfig, Simulator};
use pairscale_media::{EslNodes, Password};
use std::time::Duration;

fn nodes(concurrency: usize) -> EslNodes {
    EslNodes::new(
        Password::new("ClueCon"),
        concurrency,
        Duration::from_millis(800),
    )
}

fn quiet() -> NodeConfig {
    NodeConfig {
        heartbeat: None,
        ..NodeConfig::default()
    }
}

#[tokio::test]
async fn pause_and_resume_are_confirmed_and_idempotent() {
    let node = Simulator::spawn(quiet()).await.unwrap();
    let ep = node.addr().to_string();
    let esl = nodes(4);
    assert!(!esl.pause(&ep).await.unwrap(), "first pause sets the flags");
    assert!(node.paused(Direction::Inbound) && node.paused(Direction::Outbound));
    assert!(esl.pause(&ep).await.unwrap(), "second pause finds them set");
    assert!(esl.drain_state(&ep).await.unwrap().paused);
    assert!(esl.resume(&ep).await.unwrap());
    assert!(!node.paused(Direction::Inbound) && !node.paused(Direction::Outbound));
    assert!(!esl.resume(&ep).await.unwrap());
    assert!(!esl.drain_state(&ep).await.unwrap().paused);
}

#[tokio::test]
async fn a_call_the_core_database_has_not_caught_up_with_is_still_counted() {
    // FreeSWITCH answers `show channels count` from its core database, written in the
    // background: a call just up reads 0 there while `status` already counts its session.
    let node = Simulator::spawn(NodeConfig {
        core_db: CoreDb::Lagging(Duration::from_secs(3600)),
        ..quiet()
    })
    .await
    .unwrap();
    let ep = node.addr().to_string();
    let esl = nodes(4);
    assert_eq!(node.add_calls(1, CallSpec::inbound()), 1);
    esl.pause(&ep).await.unwrap();
    let state = esl.drain_state(&ep).await.unwrap();
    assert_eq!(
        (state.channels, state.paused),
        (1, true),
        "never drained with a call up"
    );
    node.end_all();
    assert_eq!(esl.drain_state(&ep).await.unwrap().channels, 0);
}

#[tokio::test]
async fn with_the_core_database_off_the_session_count_alone_counts() {
    let node = Simulator::spawn(NodeConfig {
        core_db: CoreDb::Disabled,
        ..quiet()
    })
    .await
    .unwrap();
    let ep = node.addr().to_string();
    assert_eq!(node.add_calls(2, CallSpec::inbound()), 2);
    let state = nodes(4)
        .drain_state(&ep)
        .await
        .expect("not an unreachable node");
    assert_eq!(state.channels, 2);
}

#[tokio::test]
async fn snapshot_ages_and_hupall_counts_channels() {
    let node = Simulator::spawn(quiet()).await.unwrap();
    let ep = node.addr().to_string();
    node.add_calls(2, CallSpec::inbound().bridged());
    let esl = nodes(4);
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + 60_000,
    );
    let snap = esl.snapshot(&ep, now).await.unwrap();
    assert_eq!(snap.channel_ages_secs.len(), 4);
    assert!(
        snap.channel_ages_secs.iter().all(|a| (59..=61).contains(a)),
        "{snap:?}"
    );
    let h = esl
        .hupall(&ep, HangupCause::parse("NORMAL_CLEARING").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (h.cut, h.remaining, h.cause.as_str()),
        (4, 0, "NORMAL_CLEARING")
    );
    assert_eq!(esl.drain_state(&ep).await.unwrap().channels, 0);
}

#[tokio::test]
async fn every_failure_is_node_unreachable_naming_the_node() {
    let node = Simulator::spawn(quiet()).await.unwrap();
    let ep = node.addr().to_string();
    for fault in [
        Fault::Hang,
        Fault::DropConnections,
        Fault::Garbage,
        Fault::CloseMidReply,
    ] {
        node.set_fault(fault);
        let e = nodes(4).drain_state(&ep).await.expect_err("fault");
        assert_eq!(e.name(), ErrorName::NodeUnreachable, "{fault:?}: {e}");
        assert!(
            matches!(&e, Error::NodeUnreachable { node, .. } if *node == ep),
            "{e}"
        );
    }
    node.set_fault(Fault::None);
    let wrong = EslNodes::new(Password::new("nope"), 1, Duration::from_millis(800));
    let e = wrong.drain_state(&ep).await.expect_err("bad password");
    assert_eq!(e.name(), ErrorName::NodeUnreachable);
    assert!(!e.to_string().contains("nope"), "{e}");
    // Nothing listens on a closed port.
    drop(node);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = nodes(1).drain_state(&ep).await.expect_err("closed");
    assert_eq!(e.name(), ErrorName::NodeUnreachable);
    assert!(nodes(1)
        .hupall(&ep, HangupCause::MANAGER_REQUEST)
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_of_one_still_visits_every_node() {
    let fleet = pairscale_fssim::Fleet::spawn(20, |_| quiet())
        .await
        .unwrap();
    let esl = std::sync::Arc::new(nodes(1));
    let tasks: Vec<_> = fleet
        .addrs()
        .into_iter()
        .map(|a| {
            let esl = esl.clone();
            tokio::spawn(async move { esl.drain_state(&a.to_string()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().channels, 0);
    }
    // One at a time: never more than one connection open on the whole fleet.
    assert!(fleet.nodes().iter().all(|n| n.accepted() == 1));
}
