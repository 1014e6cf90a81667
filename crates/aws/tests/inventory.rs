//! Inventory from the EC2 and ECS emulators, checked against pair records.
#![allow(clippy::unwrap_used)]

use pairscale_aws::ec2::Instances;
use pairscale_aws::ecs::Services;
use pairscale_aws::fleet_state::AwsInventory;
use pairscale_core::ports::Inventory;
use pairscale_core::validate::{validate, Finding};
use pairscale_core::{FleetName, Pair, PairId, PairStatus, Timestamp};
use pairscale_testkit as kit;

fn active(n: u32) -> Pair {
    Pair::new(PairId::new(n).unwrap(), PairStatus::Active, Timestamp(0))
}

#[tokio::test]
async fn validation_finds_each_kind_of_drift_by_pair_id() {
    let sdk = kit::sdk().await;
    let fleet = kit::unique_fleet();
    let other_fleet = kit::unique_fleet();
    let cluster = kit::unique("cluster");
    // pair-0001: complete. pair-0002: instance only. pair-0003: nothing. pair-0009: orphan.
    kit::run_instance(&sdk, &fleet, Some("pair-0001")).await;
    kit::create_service(
        &sdk,
        &cluster,
        &fleet,
        &kit::unique("svc1"),
        Some("pair-0001"),
    )
    .await;
    kit::run_instance(&sdk, &fleet, Some("pair-0002")).await;
    kit::run_instance(&sdk, &fleet, Some("pair-0009")).await;
    // Another fleet's pairs are invisible.
    kit::run_instance(&sdk, &other_fleet, Some("pair-0003")).await;
    kit::create_service(
        &sdk,
        &cluster,
        &other_fleet,
        &kit::unique("svc3"),
        Some("pair-0003"),
    )
    .await;

    let inv = AwsInventory {
        instances: Instances::new(aws_sdk_ec2::Client::new(&sdk)),
        services: Services::new(aws_sdk_ecs::Client::new(&sdk), &cluster),
    };
    let snap = inv
        .snapshot(&FleetName::parse(&fleet).unwrap())
        .await
        .unwrap();
    assert_eq!(snap.instances.len(), 3, "{:?}", snap.instances);
    assert_eq!(snap.services.len(), 1, "{:?}", snap.services);

    let report = validate(3, &[active(1), active(2), active(3)], &snap);
    assert!(!report.valid);
    let f = |id: &str| {
        report
            .pairs
            .iter()
            .find(|p| p.pair_id == id)
            .unwrap()
            .findings
            .clone()
    };
    assert_eq!(f("pair-0001"), vec![Finding::Ok]);
    assert_eq!(f("pair-0002"), vec![Finding::EslServiceMissing]);
    assert_eq!(
        f("pair-0003"),
        vec![Finding::FreeswitchMissing, Finding::EslServiceMissing]
    );
    assert_eq!(f("pair-0009"), vec![Finding::OrphanInstance]);
}

#[tokio::test]
async fn every_page_of_instances_is_read() {
    let sdk = kit::sdk().await;
    let fleet = kit::unique_fleet();
    // More instances than one page of the adapter's requests (100 reservations a page).
    let launches = (1..=130u32).map(|n| {
        let (sdk, fleet) = (sdk.clone(), fleet.clone());
        async move { kit::run_instance(&sdk, &fleet, Some(&format!("pair-{n:04}"))).await }
    });
    let launched = futures::future::join_all(launches).await;
    assert_eq!(launched.len(), 130);
    let list = Instances::new(aws_sdk_ec2::Client::new(&sdk))
        .list(&FleetName::parse(&fleet).unwrap())
        .await
        .unwrap();
    assert_eq!(list.len(), 130);
    let mut tags: Vec<String> = list.iter().filter_map(|i| i.pair_tag.clone()).collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), 130);
}
