//! The policy's adapters against the local emulator: its record (conditional writes that
//! never lose a recommendation), the fleet's scaling machine (one run per name, the time to
//! capacity of the recent scale-outs) and CloudWatch (alarms in ALARM, the Channels history).
#![allow(clippy::unwrap_used)]

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricDatum, StateValue, Statistic,
};
use pairscale_aws::cloudwatch::CloudWatchSignals;
use pairscale_aws::dynamodb::DynamoPolicyStore;
use pairscale_aws::sfn::MachineRuns;
use pairscale_core::policy::{Recommendation, Suspension};
use pairscale_core::ports::{FleetSignals, PolicyStore, ScalingRuns, StartOutcome};
use pairscale_core::{FleetName, Timestamp};
use pairscale_testkit as kit;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn rec(at: i64, pairs: u32) -> Recommendation {
    Recommendation {
        at: Timestamp(at),
        pairs,
        load_channels: None,
        // Kept with the recommendation for the offered load: it must come back as written.
        arrivals_per_minute: Some(u64::from(pairs) * 7),
    }
}

#[tokio::test]
async fn the_policy_record_is_written_only_over_the_version_read() {
    let sdk = kit::sdk().await;
    let table = kit::unique("policy");
    kit::create_table(&sdk, &table).await;
    let store = DynamoPolicyStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let fleet = FleetName::parse(&kit::unique_fleet()).unwrap();

    let first = store.load(&fleet).await.unwrap();
    assert_eq!(
        (first.version, first.recent.len(), first.suspended),
        (0, 0, None)
    );
    // Two evaluations read version 0; the first write wins, the second is told.
    assert!(store
        .save_recent(&fleet, 0, &[rec(60_000, 3)], Timestamp(1))
        .await
        .unwrap());
    assert!(!store
        .save_recent(&fleet, 0, &[rec(60_000, 5)], Timestamp(2))
        .await
        .unwrap());
    let read = store.load(&fleet).await.unwrap();
    assert_eq!(
        (read.version, read.recent.clone()),
        (1, vec![rec(60_000, 3)])
    );
    assert!(store
        .save_recent(&fleet, 1, &[rec(60_000, 3), rec(120_000, 4)], Timestamp(3))
        .await
        .unwrap());
    assert!(!store
        .save_recent(&fleet, 1, &[], Timestamp(4))
        .await
        .unwrap());

    // A suspension keeps the recommendations and moves the version, so an evaluation that
    // read before it merges again.
    let s = Suspension::new("alice", Timestamp(5), "carrier maintenance").unwrap();
    store.set_suspended(&fleet, Some(&s)).await.unwrap();
    let read = store.load(&fleet).await.unwrap();
    assert_eq!(read.suspended, Some(s));
    assert_eq!(read.version, 3);
    assert_eq!(read.recent, vec![rec(60_000, 3), rec(120_000, 4)]);
    assert!(!store
        .save_recent(&fleet, 2, &[], Timestamp(6))
        .await
        .unwrap());
    store.set_suspended(&fleet, None).await.unwrap();
    let read = store.load(&fleet).await.unwrap();
    assert_eq!(
        (read.suspended, read.version, read.recent.len()),
        (None, 4, 2)
    );
    // Resumed again: still nothing suspended, no error.
    store.set_suspended(&fleet, None).await.unwrap();
    assert_eq!(store.load(&fleet).await.unwrap().suspended, None);
}

/// A state machine in the emulator whose every run ends with `output`.
async fn machine(sdk: &aws_config::SdkConfig, states: Value) -> String {
    aws_sdk_sfn::Client::new(sdk)
        .create_state_machine()
        .name(kit::unique("policy"))
        .definition(json!({"StartAt": "Only", "States": {"Only": states}}).to_string())
        .role_arn("arn:aws:iam::123456789012:role/pairscale-tests")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string()
}

async fn wait_until_none_running(runs: &MachineRuns) {
    let begun = Instant::now();
    while runs.any_running().await.unwrap() {
        assert!(begun.elapsed() < Duration::from_secs(30), "still running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_run_is_started_once_per_name_and_scale_outs_give_the_time_to_capacity() {
    let sdk = kit::sdk().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let out = machine(
        &sdk,
        json!({"Type": "Pass", "Result": {"direction": "out", "outcome": "scaled"}, "End": true}),
    )
    .await;
    let runs = MachineRuns::new(sfn.clone(), &out);
    assert_eq!(
        runs.scale_out_durations(5).await.unwrap(),
        Vec::<i64>::new()
    );
    let started = runs
        .start_once("voice-policy-1", &json!({"fleet": "voice"}))
        .await
        .unwrap();
    assert!(
        matches!(started, StartOutcome::Started { .. }),
        "{started:?}"
    );
    // The same name again, even with another input: already started, not an error.
    let again = runs
        .start_once(
            "voice-policy-1",
            &json!({"fleet": "voice", "target_pair_count": 3}),
        )
        .await
        .unwrap();
    assert_eq!(again, StartOutcome::AlreadyStarted);
    wait_until_none_running(&runs).await;
    runs.start_once("voice-policy-2", &json!({})).await.unwrap();
    wait_until_none_running(&runs).await;
    let durations = runs.scale_out_durations(5).await.unwrap();
    assert_eq!(durations.len(), 2, "{durations:?}");
    assert!(durations.iter().all(|d| *d >= 0), "{durations:?}");
    assert_eq!(runs.scale_out_durations(1).await.unwrap().len(), 1);

    // A machine whose runs scale in (or do nothing) has no time to capacity.
    let inward = machine(
        &sdk,
        json!({"Type": "Pass", "Result": {"direction": "in", "outcome": "scaled"}, "End": true}),
    )
    .await;
    let runs = MachineRuns::new(sfn.clone(), &inward);
    runs.start_once("voice-policy-3", &json!({})).await.unwrap();
    wait_until_none_running(&runs).await;
    assert_eq!(
        runs.scale_out_durations(5).await.unwrap(),
        Vec::<i64>::new()
    );

    // A run that waits is in flight while it waits.
    let slow = machine(&sdk, json!({"Type": "Wait", "Seconds": 30, "End": true})).await;
    let runs = MachineRuns::new(sfn, &slow);
    assert!(!runs.any_running().await.unwrap());
    runs.start_once("voice-policy-4", &json!({})).await.unwrap();
    assert!(runs.any_running().await.unwrap());
}

#[tokio::test]
async fn alarms_in_alarm_and_the_channels_history_are_read_from_cloudwatch() {
    let sdk = kit::sdk().await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let namespace = kit::unique("Ns");
    let fleet = FleetName::parse(&kit::unique_fleet()).unwrap();
    let signals = CloudWatchSignals::new(&sdk, &namespace);
    let (high, low) = (kit::unique("high"), kit::unique("low"));
    for name in [&high, &low] {
        cw.put_metric_alarm()
            .alarm_name(name)
            .namespace(&namespace)
            .metric_name("ChannelsPerPair")
            .statistic(Statistic::Average)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .threshold(100.0)
            .period(60)
            .evaluation_periods(1)
            .send()
            .await
            .unwrap();
    }
    cw.set_alarm_state()
        .alarm_name(&high)
        .state_value(StateValue::Alarm)
        .state_reason("test")
        .send()
        .await
        .unwrap();
    let names = vec![high.clone(), low.clone(), kit::unique("absent")];
    assert_eq!(
        signals.alarms_in_alarm(&names).await.unwrap(),
        vec![high.clone()]
    );
    cw.set_alarm_state()
        .alarm_name(&high)
        .state_value(StateValue::Ok)
        .state_reason("test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        signals.alarms_in_alarm(&names).await.unwrap(),
        Vec::<String>::new()
    );

    // Three periods of channels, the highest value of each is the history's point.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let period = 300_000;
    let base = (now / period - 6) * period;
    for (offset, value) in [
        (0, 10.0),
        (60_000, 40.0),
        (period, 20.0),
        (2 * period + 1_000, 30.0),
    ] {
        cw.put_metric_data()
            .namespace(&namespace)
            .metric_data(
                MetricDatum::builder()
                    .metric_name("Channels")
                    .dimensions(
                        Dimension::builder()
                            .name("Fleet")
                            .value(fleet.as_str())
                            .build(),
                    )
                    .timestamp(DateTime::from_millis(base + offset))
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let points = signals
        .channels_history(&fleet, Timestamp(now - 28 * 86_400_000), Timestamp(now))
        .await
        .unwrap();
    assert_eq!(
        points,
        vec![
            (base, 40.0),
            (base + period, 20.0),
            (base + 2 * period, 30.0)
        ]
    );
    // Another fleet's history is its own.
    let other = FleetName::parse(&kit::unique_fleet()).unwrap();
    assert!(signals
        .channels_history(&other, Timestamp(now - 86_400_000), Timestamp(now))
        .await
        .unwrap()
        .is_empty());
}
