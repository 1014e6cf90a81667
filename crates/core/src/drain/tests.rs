use super::*;
use proptest::prelude::*;

fn id(n: u32) -> PairId {
    PairId::new(n).expect("valid id")
}

fn reading(n: u32, ages: &[u64]) -> Reading {
    Reading {
        pair_id: id(n),
        protected: false,
        created_at: Timestamp(1_000 * i64::from(n)),
        channel_ages_secs: ages.to_vec(),
    }
}

fn ids(c: &[Candidate]) -> Vec<u32> {
    c.iter().map(|c| c.pair_id.seq()).collect()
}

#[test]
fn ranking_follows_age_sum_then_channels_then_newest_pair() {
    // (name, readings, k, s, chosen in order)
    type Case = (&'static str, Vec<Reading>, u32, u32, Vec<u32>);
    let cases: &[Case] = &[
        (
            "young calls beat few calls",
            vec![reading(1, &[3_000]), reading(2, &[10, 20, 30])],
            1,
            0,
            vec![2],
        ),
        (
            "equal ages: fewer channels first",
            vec![reading(1, &[0, 0, 0]), reading(2, &[0])],
            2,
            0,
            vec![2, 1],
        ),
        (
            "equal everything: the newest pair first",
            vec![reading(1, &[5]), reading(2, &[5]), reading(3, &[5])],
            2,
            1,
            vec![3, 2, 1],
        ),
        (
            "an idle node is the best candidate",
            vec![reading(1, &[1]), reading(2, &[])],
            1,
            1,
            vec![2, 1],
        ),
        (
            "k + s larger than the fleet: every eligible pair",
            vec![reading(1, &[1]), reading(2, &[2])],
            3,
            2,
            vec![1, 2],
        ),
        (
            "k = 0 and s = 0: nothing",
            vec![reading(1, &[])],
            0,
            0,
            vec![],
        ),
    ];
    for (name, readings, k, s, want) in cases {
        let sel = rank(readings, *k, *s);
        assert_eq!(ids(&sel.candidates), *want, "{name}");
        let ranks: Vec<usize> = sel.candidates.iter().map(|c| c.rank).collect();
        assert_eq!(ranks, (1..=want.len()).collect::<Vec<_>>(), "{name}");
    }
}

#[test]
fn protected_pairs_are_listed_and_never_chosen() {
    let mut p = reading(1, &[]);
    p.protected = true;
    let sel = rank(&[p, reading(2, &[9_999])], 2, 0);
    assert_eq!(ids(&sel.candidates), vec![2]);
    assert_eq!(sel.protected, vec![id(1)]);
}

#[test]
fn candidates_report_what_was_seen() {
    let sel = rank(&[reading(4, &[10, 50, 40]), reading(5, &[1])], 1, 0);
    assert_eq!(
        sel.candidates,
        vec![Candidate {
            pair_id: id(5),
            rank: 1,
            channels: 1,
            age_sum_seconds: 1,
            oldest_call_seconds: 1
        }]
    );
    assert_eq!(sel.passed_over, vec![id(4)]);
}

fn heavy() -> HoldingTimes {
    HoldingTimes::lognormal(180.0, 1.2)
}

fn memoryless() -> HoldingTimes {
    HoldingTimes::exponential(180.0)
}

#[test]
fn expected_drain_weighs_ages_by_the_tail_the_fleet_shows() {
    // (name, model, readings, chosen in order), one to remove and no spare.
    type Case = (&'static str, HoldingTimes, Vec<Reading>, Vec<u32>);
    let cases: Vec<Case> = vec![
        (
            "heavy tail: young calls beat few calls",
            heavy(),
            vec![reading(1, &[3_000]), reading(2, &[10, 20, 30])],
            vec![2],
        ),
        (
            "memoryless: few calls beat young calls",
            memoryless(),
            vec![reading(1, &[3_000]), reading(2, &[10, 20, 30])],
            vec![1],
        ),
        (
            "equal calls: the newest pair first",
            heavy(),
            vec![reading(1, &[5]), reading(2, &[5])],
            vec![2],
        ),
        (
            "an idle node is the best candidate",
            heavy(),
            vec![reading(1, &[1]), reading(2, &[])],
            vec![2],
        ),
    ];
    for (name, model, readings, want) in &cases {
        let sel = choose_with(readings, 1, 0, model, SPARE_MIN_GAIN);
        assert_eq!(ids(&sel.candidates), *want, "{name}");
    }
}

#[test]
fn a_spare_races_only_while_it_shortens_the_expected_wait_enough() {
    let fleet = [
        reading(1, &[20]),
        reading(2, &[20, 40]),
        reading(3, &[20, 40, 60]),
        reading(4, &[20, 40, 60, 80]),
    ];
    let model = memoryless();
    // Memoryless calls: the first to empty of nodes 1 and 2 comes after 2/3 of a mean instead
    // of a whole one (-33 %), with node 3 too after 7/12 (-12.5 %), with node 4 after 0.55
    // (-5.5 %, not worth a pair).
    let sel = choose_with(&fleet, 1, 3, &model, SPARE_MIN_GAIN);
    assert_eq!(ids(&sel.candidates), vec![1, 2, 3]);
    assert_eq!(sel.passed_over, vec![id(4)]);
    let sel = choose_with(&fleet, 1, 3, &model, 0.3);
    assert_eq!(ids(&sel.candidates), vec![1, 2]);
    // Never beyond the plan's number.
    let sel = choose_with(&fleet, 1, 1, &model, 0.0);
    assert_eq!(ids(&sel.candidates), vec![1, 2]);
    assert_eq!(sel.passed_over, vec![id(3), id(4)]);
    // An idle node will be empty at the first check: no spare is worth a pair's capacity.
    let idle = [reading(1, &[20]), reading(2, &[])];
    let sel = choose_with(&idle, 1, 3, &model, SPARE_MIN_GAIN);
    assert_eq!(ids(&sel.candidates), vec![2]);
}

#[test]
fn too_few_calls_to_estimate_from_leave_the_choice_to_the_sum_of_ages() {
    let fleet = vec![
        reading(1, &[3_000, 2]),
        reading(2, &[10, 20, 30]),
        reading(3, &[1]),
    ];
    assert_eq!(choose(&fleet, 1, 1), rank(&fleet, 1, 1));
}

#[test]
fn choose_estimates_the_holding_times_from_the_pooled_ages() {
    // Forty calls, most of them young and a few very old: a heavy tail. The node of two
    // young calls empties before the node of one old call.
    let mut young: Vec<u64> = (0..36).map(|i| i * 7 % 120).collect();
    young.extend([4_000, 5_500]);
    let fleet = vec![
        reading(1, &young),
        reading(2, &[6_000]),
        reading(3, &[15, 40]),
    ];
    let sel = choose(&fleet, 1, 0);
    assert_eq!(ids(&sel.candidates), vec![3]);
    let mut p = reading(4, &[]);
    p.protected = true;
    let mut with_protected = fleet.clone();
    with_protected.push(p);
    let sel = choose(&with_protected, 2, 3);
    assert!(!ids(&sel.candidates).contains(&4));
    assert_eq!(sel.protected, vec![id(4)]);
}

fn count(n: u32, c: std::result::Result<u64, ()>) -> Count {
    Count {
        pair_id: id(n),
        channels: c.map_err(|()| Error::NodeUnreachable {
            node: format!("node-{n}"),
            message: "refused".into(),
        }),
        repaused: false,
    }
}

#[test]
fn verdicts_count_only_what_answered() {
    // (name, counts, k, total, all_drained, first_k, race_won, winners, unreachable)
    type Case = (
        &'static str,
        Vec<Count>,
        usize,
        u64,
        bool,
        bool,
        bool,
        Vec<u32>,
        Vec<u32>,
    );
    let cases: Vec<Case> = vec![
        (
            "all at zero",
            vec![count(1, Ok(0)), count(2, Ok(0))],
            2,
            0,
            true,
            true,
            true,
            vec![1, 2],
            vec![],
        ),
        (
            "a spare wins the race",
            vec![count(1, Ok(3)), count(2, Ok(0))],
            1,
            3,
            false,
            false,
            true,
            vec![2],
            vec![],
        ),
        (
            "an unreachable node is never drained",
            vec![count(1, Err(())), count(2, Ok(0))],
            2,
            0,
            false,
            false,
            false,
            vec![],
            vec![1],
        ),
        (
            "unreachable spare: the race is still won, not all drained",
            vec![count(1, Ok(0)), count(2, Err(()))],
            1,
            0,
            false,
            true,
            true,
            vec![1],
            vec![2],
        ),
        (
            "k larger than the nodes is clamped",
            vec![count(1, Ok(0))],
            5,
            0,
            true,
            true,
            true,
            vec![1],
            vec![],
        ),
        (
            "channels add up",
            vec![count(1, Ok(7)), count(2, Ok(5)), count(3, Ok(0))],
            2,
            12,
            false,
            false,
            false,
            vec![],
            vec![],
        ),
    ];
    for (name, counts, k, total, all, first_k, won, winners, unreachable) in cases {
        let v = verdict(&counts, k, &[]);
        assert_eq!(v.total_channels, total, "{name}");
        assert_eq!(v.all_drained, all, "{name}");
        assert_eq!(v.first_k_drained, first_k, "{name}");
        assert_eq!(v.race_won, won, "{name}");
        let w: Vec<u32> = v.winners.iter().map(|p| p.seq()).collect();
        assert_eq!(w, winners, "{name}");
        let u: Vec<u32> = v.unreachable.iter().map(|p| p.seq()).collect();
        assert_eq!(u, unreachable, "{name}");
    }
}

fn drain(policy: DrainPolicy, hard_max: Option<u64>) -> DrainConfig {
    DrainConfig {
        deadline_seconds: 600,
        policy,
        hard_max_seconds: hard_max,
        hupall_cause: crate::HangupCause::MANAGER_REQUEST,
        check_interval_seconds: 15,
    }
}

#[test]
fn the_policy_applies_only_after_the_deadline() {
    let start = Timestamp(1_000_000);
    let at = |secs: u64| start.plus_secs(secs);
    use Decision::*;
    use DrainPolicy as P;
    let cases = [
        (P::Force, None, 599, false, Wait),
        (P::Force, None, 600, false, Force),
        (P::Force, None, 600, true, Done),
        (P::Abort, None, 601, false, Abort),
        (P::Abort, None, 10, true, Done),
        (P::Wait, Some(3_600), 601, false, Wait),
        (P::Wait, Some(3_600), 3_599, false, Wait),
        (P::Wait, Some(3_600), 3_600, false, Abort),
        (P::Wait, Some(3_600), 9_000, true, Done),
        (P::Wait, None, 1_000_000, false, Wait),
    ];
    for (policy, hard_max, elapsed, won, want) in cases {
        assert_eq!(
            decide(&drain(policy, hard_max), start, at(elapsed), won),
            want,
            "{policy:?} {hard_max:?} after {elapsed}s, won {won}"
        );
    }
}

fn node(n: u32) -> DrainNode {
    DrainNode {
        pair_id: id(n),
        esl_endpoint: format!("10.0.0.{n}:8021"),
        sip_uri: format!("sip:10.0.0.{n}:5060"),
        set_id: 1,
        protected: false,
        created_at: Timestamp(0),
    }
}

#[test]
fn node_lists_are_checked_field_by_field() {
    assert!(validate_nodes("nodes", &[node(1), node(2)]).is_ok());
    let field = |nodes: &[DrainNode]| match validate_nodes("nodes", nodes) {
        Err(Error::InvalidRequest { field, .. }) => field,
        other => panic!("expected InvalidRequest, got {other:?}"),
    };
    assert_eq!(field(&[]), "nodes");
    assert_eq!(field(&[node(1), node(1)]), "nodes[1].pair_id");
    for bad in ["10.0.0.1", "10.0.0.1:0", ":8021", "10.0.0.1:http", "a b:1"] {
        let mut n = node(1);
        n.esl_endpoint = bad.into();
        assert_eq!(field(&[n]), "nodes[0].esl_endpoint", "{bad}");
    }
    for bad in [
        "10.0.0.1:5060",
        "sip:10.0.0.1",
        "sip:010.0.0.1:5060",
        "sip:h:5060",
    ] {
        let mut n = node(1);
        n.sip_uri = bad.into();
        assert_eq!(field(&[n]), "nodes[0].sip_uri", "{bad}");
    }
    let mut ok = node(1);
    ok.esl_endpoint = "fs-1.internal:8021".into();
    ok.sip_uri = "sip:[2001:db8::1]:5080".into();
    assert!(validate_nodes("nodes", &[ok]).is_ok());
}

fn arb_reading() -> impl Strategy<Value = Reading> {
    (
        1u32..500,
        any::<bool>(),
        0i64..1_000_000,
        prop::collection::vec(0u64..100_000, 0..20),
    )
        .prop_map(|(n, protected, created, ages)| Reading {
            pair_id: id(n),
            protected,
            created_at: Timestamp(created),
            channel_ages_secs: ages,
        })
}

proptest! {
    #[test]
    fn ranking_never_offers_a_protected_pair_and_offers_as_many_as_it_can(
        readings in prop::collection::vec(arb_reading(), 0..40),
        k in 0u32..10,
        s in 0u32..5,
    ) {
        // Pair ids are unique in a fleet.
        let mut seen = HashSet::new();
        let readings: Vec<Reading> =
            readings.into_iter().filter(|r| seen.insert(r.pair_id)).collect();
        let eligible = readings.iter().filter(|r| !r.protected).count();
        let sel = rank(&readings, k, s);
        prop_assert_eq!(sel.candidates.len(), ((k + s) as usize).min(eligible));
        prop_assert_eq!(sel.candidates.len() + sel.passed_over.len(), eligible);
        for c in &sel.candidates {
            let r = readings.iter().find(|r| r.pair_id == c.pair_id);
            prop_assert!(r.is_some_and(|r| !r.protected));
        }
        // Best first: the ranking key never decreases.
        for w in sel.candidates.windows(2) {
            prop_assert!(
                (w[0].age_sum_seconds, w[0].channels) <= (w[1].age_sum_seconds, w[1].channels)
            );
        }
    }

    #[test]
    fn the_expected_drain_choice_keeps_within_its_bounds(
        readings in prop::collection::vec(arb_reading(), 0..12),
        k in 0u32..5,
        s in 0u32..4,
        heavy_tail in any::<bool>(),
    ) {
        let mut seen = HashSet::new();
        let readings: Vec<Reading> =
            readings.into_iter().filter(|r| seen.insert(r.pair_id)).collect();
        let eligible = readings.iter().filter(|r| !r.protected).count();
        let model = if heavy_tail { heavy() } else { memoryless() };
        for sel in [choose_with(&readings, k, s, &model, SPARE_MIN_GAIN), choose(&readings, k, s)] {
            let n = sel.candidates.len();
            prop_assert!(n >= (k as usize).min(eligible));
            prop_assert!(n <= ((k + s) as usize).min(eligible));
            prop_assert_eq!(n + sel.passed_over.len(), eligible);
            let ranks: Vec<usize> = sel.candidates.iter().map(|c| c.rank).collect();
            prop_assert_eq!(ranks, (1..=n).collect::<Vec<_>>());
            for c in &sel.candidates {
                let r = readings.iter().find(|r| r.pair_id == c.pair_id);
                prop_assert!(r.is_some_and(|r| !r.protected));
            }
        }
    }

    #[test]
    fn a_node_that_did_not_answer_is_never_drained(
        counts in prop::collection::vec(prop::option::of(0u64..5), 1..30),
        k in 0usize..30,
    ) {
        let counts: Vec<Count> = counts
            .iter()
            .enumerate()
            .map(|(i, c)| count(i as u32 + 1, c.ok_or(())))
            .collect();
        let v = verdict(&counts, k, &[]);
        for u in &v.unreachable {
            prop_assert!(!v.drained.contains(u) && !v.winners.contains(u));
        }
        if !v.unreachable.is_empty() {
            prop_assert!(!v.all_drained);
        }
        prop_assert_eq!(v.race_won, v.winners.len() == v.remove);
    }
}

#[test]
fn spares_are_lowered_until_the_pairs_left_serving_carry_the_live_load() {
    // 6 active pairs of 10 channels, 1 to remove, up to 3 spares.
    let f = |load| spares_within_capacity(6, 1, 3, 10, load);
    assert_eq!(f(0), 3);
    assert_eq!(f(20), 3, "2 pairs left serving carry 20 channels");
    assert_eq!(f(21), 2);
    assert_eq!(f(40), 1);
    assert_eq!(f(41), 0);
    assert_eq!(
        f(60),
        0,
        "no spare, whatever the load: the removal is the plan's"
    );
}

proptest! {
    #[test]
    fn the_spares_allowed_leave_the_load_carried_and_fall_as_it_rises(
        active in 0u32..50, remove in 0u32..10, spares in 0u32..10, cap in 1u32..200,
        load in 0u64..5_000,
    ) {
        let s = spares_within_capacity(active, remove, spares, cap, load);
        prop_assert!(s <= spares);
        let serving = |s: u32| u64::from(active.saturating_sub(remove + s)) * u64::from(cap);
        if s > 0 {
            prop_assert!(serving(s) >= load);
        }
        // The most that fit: one more would not (or none were asked).
        if s < spares {
            prop_assert!(serving(s + 1) < load);
        }
        prop_assert!(spares_within_capacity(active, remove, spares, cap, load + 1) <= s);
    }
}

mod force_tests {
    #![allow(clippy::unwrap_used)]
    use super::super::*;

    fn count(seq: u32, ch: Option<u64>) -> Count {
        Count {
            pair_id: PairId::new(seq).unwrap(),
            channels: ch.ok_or_else(|| Error::internal("unreachable")),
            repaused: false,
        }
    }

    fn ids(seqs: &[u32]) -> Vec<PairId> {
        seqs.iter().map(|s| PairId::new(*s).unwrap()).collect()
    }

    #[test]
    fn force_cuts_only_as_many_nodes_as_the_run_removes_the_emptiest_first() {
        // k = 1 of three candidates: only the node with the fewest calls is hung up.
        let counts = [count(1, Some(5)), count(2, Some(2)), count(3, Some(9))];
        let plan = force_targets(&counts, 1, &[]);
        assert_eq!((plan.chosen, plan.cut), (ids(&[2]), ids(&[2])));
        // k = 2, one already empty: it is chosen, and only one more is cut.
        let counts = [count(1, Some(5)), count(2, Some(0)), count(3, Some(3))];
        let plan = force_targets(&counts, 2, &[]);
        assert_eq!((plan.chosen, plan.cut), (ids(&[2, 3]), ids(&[3])));
        // An unreachable node is never chosen; ties go to the better-ranked node.
        let counts = [count(1, None), count(2, Some(4)), count(3, Some(4))];
        assert_eq!(force_targets(&counts, 1, &[]).cut, ids(&[2]));
    }

    #[test]
    fn later_force_rounds_keep_the_nodes_first_chosen() {
        // Node 3 emptied by itself since node 2 was cut: node 2 stays the one removed, and
        // only its late calls are cut again; node 3 keeps running as a spare.
        let counts = [count(1, Some(5)), count(2, Some(1)), count(3, Some(0))];
        let plan = force_targets(&counts, 1, &ids(&[2]));
        assert_eq!((plan.chosen, plan.cut), (ids(&[2]), ids(&[2])));
    }

    #[test]
    fn with_every_candidate_unreachable_nothing_is_cut() {
        let counts = [count(1, None), count(2, None)];
        let plan = force_targets(&counts, 1, &[]);
        assert!(plan.chosen.is_empty() && plan.cut.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_node_whose_calls_were_cut_wins_over_a_spare_that_emptied_first() {
        // Ranking order: spare 1 first. Node 2 was chosen and hung up; both read zero now.
        let counts = [count(1, Some(0)), count(2, Some(0)), count(3, Some(4))];
        let v = verdict(&counts, 1, &ids(&[2]));
        assert_eq!(v.winners, ids(&[2]));
        // Without a force, the ranking order decides.
        assert_eq!(verdict(&counts, 1, &[]).winners, ids(&[1]));
    }

    #[test]
    fn once_a_node_was_chosen_the_race_waits_for_it_even_when_a_spare_is_empty() {
        // Node 2 was chosen and hung up but cannot be read this round; spare 1 is empty. The
        // spare must not win: node 2 lost its calls and is committed to removal.
        let counts = [count(1, Some(0)), count(2, None), count(3, Some(4))];
        let v = verdict(&counts, 1, &ids(&[2]));
        assert!(!v.race_won && v.winners.is_empty(), "{v:?}");
        let counts = [count(1, Some(0)), count(2, Some(1)), count(3, Some(4))];
        assert!(!verdict(&counts, 1, &ids(&[2])).race_won);
    }

    #[test]
    fn a_node_repaused_this_round_is_not_drained_until_a_later_round() {
        let mut restarted = count(1, Some(0));
        restarted.repaused = true;
        let counts = [restarted, count(2, Some(3))];
        let v = verdict(&counts, 1, &[]);
        assert!(
            !v.race_won && v.drained.is_empty() && !v.all_drained,
            "{v:?}"
        );
        let v = verdict(&[count(1, Some(0)), count(2, Some(3))], 1, &[]);
        assert_eq!(v.winners, ids(&[1]));
    }
}
