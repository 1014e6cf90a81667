//! The history budget's figures (`pairscale_core::history`) held against the state machine's
//! definition: each loop's round and each Map item counted from `statemachines/scale.asl.json`,
//! the straight part bounded by its states, the force rounds by its own limit. A change to the
//! definition that makes a round longer fails here until the figures follow.
#![allow(clippy::unwrap_used)]

use pairscale_core::history::*;
use pairscale_core::FleetName;
use serde_json::Value;
use std::collections::BTreeMap;

fn states() -> BTreeMap<String, Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../statemachines/scale.asl.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let def: Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(def["States"].clone()).unwrap()
}

fn events_of(state: &Value) -> u64 {
    match state["Type"].as_str().unwrap() {
        "Task" => TASK_EVENTS,
        _ => OTHER_STATE_EVENTS,
    }
}

/// The events of one round of the loop through `start`: follow `Next` (and, at a Choice, the
/// choice that leads back) until `start` comes round again.
fn round(states: &BTreeMap<String, Value>, start: &str) -> u64 {
    let mut at = start.to_string();
    let mut total = 0;
    for _ in 0..20 {
        let st = &states[&at];
        total += events_of(st);
        let next = match st.get("Next").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => st["Choices"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["Next"].as_str())
                .find(|n| *n == start)
                .or_else(|| st["Default"].as_str().filter(|d| *d == start))
                .unwrap_or_else(|| panic!("{at} does not lead back to {start}"))
                .to_string(),
        };
        if next == start {
            return total;
        }
        at = next;
    }
    panic!("no loop through {start}");
}

#[test]
fn the_drain_round_is_the_definitions() {
    assert_eq!(round(&states(), "In: drain wait"), DRAIN_ROUND_EVENTS);
}

#[test]
fn the_last_look_before_the_destroy_is_a_drain_round_bounded_by_the_drains_force_count() {
    let states = states();
    assert_eq!(round(&states, "In: confirm wait"), DRAIN_ROUND_EVENTS);
    let bound = &states["In: too many confirm hangups?"]["Choices"][0];
    assert_eq!(bound["Variable"], "$.drain.forces", "{bound}");
    assert_eq!(
        bound["NumericGreaterThan"].as_u64(),
        Some(FORCE_ROUNDS),
        "{bound}"
    );
    // It shares the drain's start: its rounds end where the drain's would have.
    let check = &states["In: confirm empty"]["Parameters"]["Payload"];
    assert_eq!(check["started_at.$"], "$.drain.started_at", "{check}");
    // One hang-up round of it (count, bound, anything to cut, hangups) is no longer than the
    // drain's, which the budget counts.
    let force_round: u64 = [
        "In: count confirm hangups",
        "In: too many confirm hangups?",
        "In: anything to cut on removed pairs?",
        "In: confirm hangups",
    ]
    .iter()
    .map(|n| events_of(&states[*n]))
    .sum();
    assert!(force_round <= FORCE_ROUND_EVENTS, "{force_round}");
}

/// Every state reachable from `from`: Next, Default, the choices and the catches.
fn reachable(states: &BTreeMap<String, Value>, from: &str) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(at) = todo.pop() {
        if !seen.insert(at.clone()) {
            continue;
        }
        let st = &states[&at];
        let mut next: Vec<&Value> = vec![&st["Next"], &st["Default"]];
        for list in ["Choices", "Catch"] {
            if let Some(items) = st[list].as_array() {
                next.extend(items.iter().map(|c| &c["Next"]));
            }
        }
        todo.extend(next.into_iter().filter_map(Value::as_str).map(String::from));
    }
    seen
}

#[test]
fn a_scale_out_polls_four_builds_at_most_since_the_refill_is_never_undone() {
    let states = states();
    // The refill starts after the count is committed and the pairs are in rotation: from it, no
    // path leads back to a build that undoes the scale-out, or to the scale-out's own builds.
    let after = reachable(&states, "Out: refill the pool?");
    let builds: Vec<&String> = after.iter().filter(|n| n.ends_with(" Wait")).collect();
    assert_eq!(builds, ["Out: refill terraform Wait"], "{after:?}");
    // And the undo never leads to the refill.
    let undo = reachable(&states, "Out: undo, roll back");
    assert!(!undo.contains("Out: refill the pool?"), "{undo:?}");
    assert!(reachable(&states, "Out: commit new pairs").contains("Out: refill the pool?"));
}

#[test]
fn every_build_loop_round_is_the_definitions() {
    let states = states();
    let waits: Vec<&String> = states
        .keys()
        .filter(|n| n.ends_with(" Wait") && (n.contains("terraform") || n.contains("ansible")))
        .collect();
    // Every build loop is counted in one of the run's worst cases: a scale-out's five (of
    // which one run polls four at most, below) or a scale-in's two, after the recovery's two.
    assert_eq!(
        waits.len() as u64,
        SCALE_OUT_BUILD_LOOPS + SCALE_IN_BUILDS + RECOVERY_BUILDS,
        "the build loops: {waits:?}"
    );
    assert_eq!(
        waits.iter().filter(|w| w.starts_with("Recover: ")).count() as u64,
        RECOVERY_BUILDS,
        "{waits:?}"
    );
    for w in waits {
        assert_eq!(round(&states, w), BUILD_ROUND_EVENTS, "{w}");
    }
}

#[test]
fn only_terraform_builds_retry_and_a_back_off_round_is_no_longer_than_a_poll_round() {
    let states = states();
    let retrying: Vec<&String> = states
        .keys()
        .filter(|n| n.ends_with(" Back off wait"))
        .collect();
    assert_eq!(
        retrying.len() as u64,
        SCALE_OUT_TERRAFORM_LOOPS + SCALE_IN_TERRAFORM_BUILDS + RECOVERY_TERRAFORM_BUILDS,
        "{retrying:?}"
    );
    for w in retrying {
        assert!(w.contains("terraform"), "{w}");
        assert!(round(&states, w) <= BUILD_ROUND_EVENTS, "{w}");
        // A retry starts the build again, and its poll shares the first attempt's deadline.
        let again = &states[&w.replace(" Back off wait", " Start again")];
        assert_eq!(
            again["Next"],
            w.replace(" Back off wait", " Wait"),
            "{again}"
        );
        let status = &states[&w.replace(" Back off wait", " Status")]["Parameters"]["Payload"];
        assert!(
            status["started_at.$"].as_str().unwrap().ends_with(".since"),
            "{status}"
        );
    }
}

#[test]
fn the_health_wait_round_is_the_definitions() {
    let states = states();
    // The loop goes back through the health check's Catch, not its Next.
    let check = &states["Out: wait until healthy"];
    assert_eq!(check["Catch"][0]["Next"], "Out: not healthy yet", "{check}");
    let round = [
        "Out: wait until healthy",
        "Out: not healthy yet",
        "Out: still waiting for health?",
        "Out: health wait",
        "Out: health heartbeat",
    ];
    for pair in round.windows(2).skip(1) {
        let st = &states[pair[0]];
        let next = st
            .get("Next")
            .or_else(|| st.get("Default"))
            .and_then(Value::as_str);
        assert_eq!(next, Some(pair[1]), "{st}");
    }
    assert_eq!(states["Out: health heartbeat"]["Next"], round[0]);
    let events: u64 = round.iter().map(|n| events_of(&states[*n])).sum();
    assert_eq!(events, HEALTH_ROUND_EVENTS);
    let bound = &states["Out: still waiting for health?"]["Choices"][0]["NumericGreaterThan"];
    assert_eq!(bound.as_u64(), Some(HEALTH_ROUNDS), "{bound}");
}

#[test]
fn the_maps_and_the_straight_part_are_bounded_by_the_definition() {
    let states = states();
    let maps: Vec<&Value> = states.values().filter(|s| s["Type"] == "Map").collect();
    for m in &maps {
        let inner = m["ItemProcessor"]["States"].as_object().unwrap();
        let per_item: u64 = inner.values().map(events_of).sum::<u64>() + 2;
        assert!(per_item <= MAP_ITEM_EVENTS, "{per_item} events per item");
    }
    // A scale-out passes one Map; a scale-in two, and one in each force round.
    assert!(maps.len() as u64 <= MAPS_PER_RUN + 2, "{}", maps.len());
    let every_state_once: u64 = states.len() as u64 * TASK_EVENTS;
    assert!(
        every_state_once <= STRAIGHT_EVENTS,
        "{} states: {every_state_once} events",
        states.len()
    );
    // The force loop gives up after FORCE_ROUNDS rounds.
    let bound = &states["In: too many forced hangups?"]["Choices"][0]["NumericGreaterThan"];
    assert_eq!(bound.as_u64(), Some(FORCE_ROUNDS), "{bound}");
}

fn config(json: &str) -> pairscale_core::Result<pairscale_core::FleetConfig> {
    pairscale_core::FleetConfig::from_json(&FleetName::parse("voice").unwrap(), json)
}

#[test]
fn a_configuration_whose_worst_run_passes_the_budget_is_refused_naming_the_loop() {
    // A 7-day drain checked every second: over 600,000 events.
    let e = config(
        r#"{"min_pairs": 1, "max_pairs": 10, "max_step": 2, "cooldown_out_seconds": 0,
            "cooldown_in_seconds": 0,
            "drain": {"deadline_seconds": 600, "policy": "wait", "hard_max_seconds": 604800,
                      "check_interval_seconds": 1}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("drain.check_interval_seconds = 1"), "{e}");
    assert!(e.contains("history events"), "{e}");
    // Builds of 8 hours polled every 15 s, six of them in a failed scale-out that first
    // recovered an earlier one.
    let e = config(
        r#"{"min_pairs": 1, "max_pairs": 10, "max_step": 2, "cooldown_out_seconds": 0,
            "cooldown_in_seconds": 0, "build_timeout_seconds": 28800, "build_poll_seconds": 15,
            "drain": {"deadline_seconds": 600, "policy": "abort"}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("build_poll_seconds = 15"), "{e}");
    // The same builds polled every three minutes fit.
    config(
        r#"{"min_pairs": 1, "max_pairs": 10, "max_step": 2, "cooldown_out_seconds": 0,
            "cooldown_in_seconds": 0, "build_timeout_seconds": 28800, "build_poll_seconds": 180,
            "drain": {"deadline_seconds": 600, "policy": "abort"}}"#,
    )
    .unwrap();
}

#[test]
fn the_shipped_defaults_fit_with_room_to_spare() {
    let c = config(
        r#"{"min_pairs": 1, "max_pairs": 1000, "max_step": 10, "cooldown_out_seconds": 300,
            "cooldown_in_seconds": 1800,
            "drain": {"deadline_seconds": 1800, "policy": "wait", "hard_max_seconds": 7200}}"#,
    )
    .unwrap();
    let worst = worst_case_events(&c);
    assert!(worst <= BUDGET, "{worst}");
}

#[test]
fn the_force_round_is_the_definitions() {
    let states = states();
    let round = [
        "In: count forced hangups",
        "In: too many forced hangups?",
        "In: anything to cut?",
        "In: mark chosen drained",
        "In: commit chosen",
        "In: note calls hung up",
        "In: force hangups",
    ];
    for pair in round.windows(2) {
        let st = &states[pair[0]];
        let next = st.get("Next").and_then(Value::as_str).or_else(|| {
            st["Choices"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(std::iter::once(&st["Default"]))
                .filter_map(|c| c.get("Next").or(Some(c)).and_then(Value::as_str))
                .find(|n| *n == pair[1])
        });
        assert_eq!(next, Some(pair[1]), "{st}");
    }
    assert_eq!(states["In: force hangups"]["Next"], "In: drain wait");
    let events: u64 = round.iter().map(|n| events_of(&states[*n])).sum();
    assert_eq!(events, FORCE_ROUND_EVENTS);
    assert_eq!(states["In: mark chosen drained"]["Type"], "Map");
}
