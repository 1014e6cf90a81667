#![allow(clippy::unwrap_used)]

use super::*;
use pairscale_core::{Pair, PairId};

const T: i64 = 1_796_457_600_000; // 2026-12-05T08:00:00Z

#[test]
fn the_event_time_is_an_instant_near_the_clock() {
    let now = Timestamp(T);
    assert_eq!(event_time(None, now).unwrap(), now);
    assert_eq!(
        event_time(Some("2026-12-05T08:05:30Z"), now).unwrap(),
        Timestamp(T + 330_000)
    );
    assert_eq!(
        event_time(Some("2026-12-05T09:00:00+01:00"), now).unwrap(),
        now
    );
    for bad in [
        "08:00",
        "2026-12-05",
        "",
        "2026-12-05T08:16:00Z",
        "2026-12-05T07:44:00Z",
    ] {
        let e = event_time(Some(bad), now).unwrap_err();
        assert!(e.to_string().contains("time"), "{bad}: {e}");
    }
    assert_eq!(minute_of(Timestamp(T + 59_999)), Timestamp(T));
}

fn pair(seq: u32, status: PairStatus, sample: Option<(u32, i64)>) -> Pair {
    let mut p = Pair::new(PairId::new(seq).unwrap(), status, Timestamp(0));
    if let Some((c, at)) = sample {
        p.last_channels = Some(c);
        p.last_seen_at = Some(Timestamp(at));
    }
    p
}

#[test]
fn the_load_is_the_fresh_samples_of_active_pairs_only() {
    let now = Timestamp(T);
    let pairs = [
        pair(1, PairStatus::Active, Some((120, T - 60_000))),
        pair(2, PairStatus::Active, Some((80, T - SAMPLE_MAX_AGE_MS))),
        pair(
            3,
            PairStatus::Active,
            Some((900, T - SAMPLE_MAX_AGE_MS - 1)),
        ),
        pair(4, PairStatus::Draining, Some((500, T))),
        pair(5, PairStatus::Active, None),
    ];
    assert_eq!(fresh_load(&pairs, now), (Some(200), 4, 2));
    assert_eq!(fresh_load(&pairs[2..], now), (None, 2, 0));
    assert_eq!(fresh_load(&[], now), (None, 0, 0));
}

#[test]
fn the_arrivals_are_known_only_when_every_fresh_sample_has_its_own() {
    let now = Timestamp(T);
    let with = |seq, status, sample, arrivals| pairscale_core::Pair {
        arrivals_per_minute: arrivals,
        ..pair(seq, status, sample)
    };
    let pairs = [
        with(1, PairStatus::Active, Some((120, T - 60_000)), Some(30)),
        with(2, PairStatus::Active, Some((80, T)), Some(12)),
        // Stale, draining or never sampled: not in the load, so not in the arrivals.
        with(
            3,
            PairStatus::Active,
            Some((900, T - SAMPLE_MAX_AGE_MS - 1)),
            None,
        ),
        with(4, PairStatus::Draining, Some((500, T)), None),
        with(5, PairStatus::Active, None, None),
    ];
    assert_eq!(fresh_arrivals(&pairs, now), Some(42));
    // A fresh sample without arrivals (a new pair's first) leaves them unknown.
    let mut first = pairs.to_vec();
    first.push(with(6, PairStatus::Active, Some((10, T)), None));
    assert_eq!(fresh_arrivals(&first, now), None);
    assert_eq!(fresh_arrivals(&pairs[2..], now), None);
    assert_eq!(fresh_arrivals(&[], now), None);
}

#[test]
fn the_time_to_capacity_is_the_median() {
    assert_eq!(median(vec![]), None);
    assert_eq!(median(vec![5]), Some(5));
    assert_eq!(median(vec![9, 1, 5]), Some(5));
    assert_eq!(median(vec![9, 1, 5, 7]), Some(5));
}

#[test]
fn the_run_request_is_what_the_state_machine_accepts() {
    let fleet = FleetName::parse("voice").unwrap();
    let mut d = without_policy(2);
    d.desired = 4;
    d.reasons = vec!["x".repeat(800)];
    let r = run_request(&fleet, &d).unwrap();
    assert_eq!(r["target_pair_count"], 4);
    assert_eq!(r["requested_by"], "policy");
    assert!(r["reason"].as_str().unwrap().len() <= 500);
    let parsed = ScaleRequest::from_json(&r).unwrap();
    assert_eq!(parsed.fleet, fleet);
}
