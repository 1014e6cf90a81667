//! The canary call and the quality figure against real FreeSWITCH 1.10.12: a node configured by
//! the project's role calls itself through its own SIP profile (the role admits its own address
//! for this), the canary extension answers and sends its tone, and FreeSWITCH's own receive
//! statistics for the call (MOS, jitter, loss, packets) come back in its
//! `CHANNEL_HANGUP_COMPLETE`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use pairscale_aws::fleet_state::AwsFleetState;
use pairscale_core::ports::{MediaNodes, SystemClock};
use pairscale_core::{CanaryConfig, ErrorName};
use pairscale_dispatcher::{DispatcherConfig, KamailioDispatcher};
use pairscale_freeswitch::{Cluster, Options};
use pairscale_lambdas::handlers::drain::DrainHandler;
use pairscale_lambdas::metrics::Metrics;
use pairscale_media::{EslNodes, KamailioNodes, Password};
use serde_json::{json, Value};

const PASSWORD: &str = "pairscale-canary-test-password";

async fn cluster(instances: usize) -> Cluster {
    Cluster::start(Options {
        instances,
        esl_password: PASSWORD.into(),
        // Longer than any call here: the caller hangs up, not the extension.
        canary_seconds: 60,
    })
    .await
    .expect("FreeSWITCH instances start")
}

fn nodes() -> EslNodes {
    EslNodes::new(Password::new(PASSWORD), 8, Duration::from_secs(3))
}

/// The drain handler with a dispatcher it never uses here (canary and quality do not touch
/// Kamailio): a database URL that is never connected to.
async fn handler() -> (DrainHandler, Arc<std::sync::Mutex<Vec<Value>>>) {
    let (metrics, lines) = Metrics::memory("PairscaleTest");
    let sdk = pairscale_testkit::sdk().await;
    let unused = KamailioDispatcher::new(
        DispatcherConfig::new(
            "postgres://nobody@127.0.0.1:1/none",
            "http://127.0.0.1:1/RPC",
        )
        .unwrap(),
    )
    .unwrap();
    (
        DrainHandler {
            nodes: Arc::new(nodes()),
            dispatcher: Arc::new(KamailioNodes::new(unused)),
            clock: Arc::new(SystemClock),
            metrics,
            // Read only by `measure`, which these tests do not run.
            state: Arc::new(AwsFleetState::new(
                &sdk,
                "pairscale-unused",
                "/pairscale-unused",
            )),
            signals: Arc::new(pairscale_aws::cloudwatch::CloudWatchQuality::new(&sdk)),
            // Read only by quiesce, resume and force, which these tests do not run.
            locks: Arc::new(pairscale_aws::dynamodb::DynamoLockStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                "pairscale-unused",
            )),
        },
        lines,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_call_through_the_nodes_own_sip_port_is_answered_and_its_quality_measured() {
    let fs = cluster(1).await;
    let node = fs.get(0);
    let dial = CanaryConfig::default()
        .dial_string(&node.sip_uri())
        .unwrap();
    let call = nodes()
        .canary(&node.esl_endpoint(), &dial, 3)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", node.log_tail(40)));
    eprintln!("canary call: {call:?}");
    assert!(call.answered, "{call:?}\n{}", node.log_tail(40));
    assert_eq!(call.hangup_cause, "NORMAL_CLEARING", "{call:?}");
    // A 3 s call of 20 ms packets is 150 sent, but how many arrive in the 3 s depends on how
    // soon the media starts: 52 on a CI run whose other tests kept both cores busy. What the
    // canary relies on is that media arrived and FreeSWITCH scored it.
    assert!(call.media_packets > 0, "{call:?}");
    let mos = call.mos.unwrap_or_else(|| panic!("no MOS: {call:?}"));
    assert!(mos.as_f64() >= 4.0, "a loopback call sounds good: {call:?}");
    assert!(call.duration_ms >= 3_000, "{call:?}");
    // Both legs are gone: the call was hung up, not left on the node.
    let mut esl = node.esl().await.unwrap();
    let mut sessions = u64::MAX;
    for _ in 0..50 {
        sessions = esl.status().await.unwrap().sessions;
        if sessions == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sessions, 0, "the canary's legs are still up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_action_passes_new_nodes_and_fails_one_whose_call_is_not_answered() {
    let fs = cluster(2).await;
    let (h, _) = handler().await;
    let all = json!([
        fs.get(0).drain_node("pair-0001", 1, 1_700_000_000_000),
        fs.get(1).drain_node("pair-0002", 1, 1_700_000_000_001),
    ]);
    let out = h
        .handle(json!({"action": "canary", "nodes": all, "canary": {"seconds": 2}}))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", fs.get(0).log_tail(40)));
    assert_eq!(out["nodes"].as_array().unwrap().len(), 2, "{out}");
    assert!(
        out["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["answered"] == true),
        "{out}"
    );

    // A destination the canary extension does not answer: the call is never answered, and the
    // node is named with the cause FreeSWITCH gave (1.10.12 says NORMAL_CLEARING; fssim is
    // held to that).
    let err = h
        .handle(json!({"action": "canary", "nodes": all,
                       "canary": {"seconds": 1, "destination": "no-such-extension"}}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), ErrorName::CanaryFailed, "{err}");
    let text = err.to_string();
    eprintln!("refused: {text}");
    assert!(
        text.contains("pair-0001") && text.contains("was not answered (NORMAL_CLEARING)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_quality_of_healthy_nodes_passes_and_is_published() {
    let fs = cluster(2).await;
    let (h, lines) = handler().await;
    let all = json!([
        fs.get(0).drain_node("pair-0001", 1, 1_700_000_000_000),
        fs.get(1).drain_node("pair-0002", 1, 1_700_000_000_001),
    ]);
    let out = h
        .handle(
            json!({"action": "quality", "fleet": "voice-eu", "nodes": all,
                       "canary": {"seconds": 2, "quality_sample": 2}}),
        )
        .await
        .unwrap();
    assert_eq!(out["hold_scale_in"], false, "{out}");
    let reading = &out["reading"];
    assert_eq!(reading["nodes"].as_array().unwrap().len(), 2, "{out}");
    assert!(reading["mos"].as_f64().unwrap() >= 4.0, "{out}");
    let published = lines.lock().unwrap().clone();
    assert!(
        published
            .iter()
            .any(|l| l["CallQualityMos"] == reading["mos"]),
        "{published:?}"
    );
}
