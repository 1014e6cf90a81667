use super::*;
use crate::fleet::sample_config;
use crate::ids::FleetName;
use proptest::prelude::*;

fn pairs(statuses: &[PairStatus]) -> Vec<Pair> {
    statuses
        .iter()
        .enumerate()
        .map(|(i, s)| Pair::new(PairId::new(i as u32 + 1).expect("id"), *s, Timestamp(0)))
        .collect()
}

fn req(intent: Intent) -> ScaleRequest {
    ScaleRequest {
        fleet: FleetName::parse("voice").expect("fleet"),
        intent,
        reason: "test".into(),
        requested_by: "test".into(),
        dry_run: false,
        reconcile: false,
        ignore_cooldown: false,
    }
}

fn run(intent: Intent, ps: &[Pair], meta: &FleetMeta) -> PlanOutcome {
    run_with(&sample_config(), intent, ps, meta)
}

fn run_with(cfg: &FleetConfig, intent: Intent, ps: &[Pair], meta: &FleetMeta) -> PlanOutcome {
    plan(
        &req(intent),
        PlanContext {
            config: cfg,
            desired: ps.len() as u32,
            pairs: ps,
            meta,
            now: Timestamp(1_000_000),
        },
    )
    .expect("plan")
}

use PairStatus::*;

fn scale_out(from: u32, to: u32, add: u32) -> Plan {
    pooled(from, to, add, 0, 0)
}

fn pooled(from: u32, to: u32, add: u32, from_pool: u32, refill: u32) -> Plan {
    Plan::ScaleOut {
        from,
        to,
        add,
        from_pool,
        refill,
    }
}

fn with_pool(warm_pool: u32, intent: Intent, ps: &[Pair]) -> PlanOutcome {
    let mut cfg = sample_config();
    cfg.warm_pool = warm_pool;
    cfg.image_id = Some("ami-0123456789abcdef0".into());
    cfg.validate(&FleetName::parse("voice").expect("fleet"))
        .expect("a pool of the fleet's image");
    run_with(&cfg, intent, ps, &FleetMeta::default())
}

#[test]
fn a_scale_out_takes_warm_pairs_first_and_refills_the_pool() {
    // Two active, one warm, a pool of two: adding two takes the warm one and allocates one;
    // the pool is then empty and gets two.
    let out = with_pool(
        2,
        Intent::Target { pair_count: 4 },
        &pairs(&[Active, Active, Warm]),
    );
    assert_eq!(out.warm, 1);
    assert_eq!(out.plan, pooled(2, 4, 2, 1, 2));
    // Adding one of a full pool of two: one taken, one left, one to refill.
    let out = with_pool(2, Intent::Delta { delta: 1 }, &pairs(&[Active, Warm, Warm]));
    assert_eq!(out.plan, pooled(1, 2, 1, 1, 1));
}

#[test]
fn warm_pairs_are_not_capacity_and_a_pool_above_its_size_is_not_refilled() {
    // Three warm pairs (the pool was lowered to one): none counts as capacity; after the take
    // two are left, more than the pool's one, so nothing is refilled.
    let out = with_pool(
        1,
        Intent::Target { pair_count: 2 },
        &pairs(&[Active, Warm, Warm, Warm]),
    );
    assert_eq!(out.active, 1);
    assert_eq!(out.plan, pooled(1, 2, 1, 1, 0));
    // At target, a short pool is left alone: only a scale-out refills it.
    let out = with_pool(2, Intent::Target { pair_count: 1 }, &pairs(&[Active]));
    assert!(matches!(out.plan, Plan::NoOp { .. }), "{:?}", out.plan);
    // A scale-in never chooses a warm pair.
    let out = with_pool(
        2,
        Intent::Target { pair_count: 1 },
        &pairs(&[Active, Active, Warm]),
    );
    match out.plan {
        Plan::ScaleIn { eligible, .. } => {
            assert_eq!(
                eligible,
                vec![PairId::new(1).expect("id"), PairId::new(2).expect("id")]
            )
        }
        other => panic!("expected a scale-in, got {other:?}"),
    }
}

#[test]
fn scale_out_to_a_target_adds_the_difference() {
    let out = run(
        Intent::Target { pair_count: 4 },
        &pairs(&[Active, Active]),
        &FleetMeta::default(),
    );
    assert_eq!(out.plan, scale_out(2, 4, 2));
}

#[test]
fn the_step_and_the_bounds_clamp_a_request() {
    let out = run(
        Intent::Target { pair_count: 9 },
        &pairs(&[Active, Active]),
        &FleetMeta::default(),
    );
    assert_eq!(out.plan, scale_out(2, 5, 3));
    assert_eq!(out.clamps.len(), 1, "{:?}", out.clamps);
    let out = run(
        Intent::Delta { delta: -5 },
        &pairs(&[Active, Active]),
        &FleetMeta::default(),
    );
    assert!(
        matches!(
            out.plan,
            Plan::ScaleIn {
                remove: 1,
                to: 1,
                ..
            }
        ),
        "{:?}",
        out.plan
    );
    assert!(out.clamps.iter().any(|c| c.contains("min_pairs")));
}

#[test]
fn provisioning_pairs_count_towards_the_target_not_as_capacity() {
    let ps = pairs(&[Active, Active, Provisioning]);
    let out = run(Intent::Delta { delta: 2 }, &ps, &FleetMeta::default());
    // capacity 2, +2 → 4; one is on its way, so one more.
    assert_eq!(out.plan, scale_out(2, 4, 1));
    let out = run(Intent::Target { pair_count: 3 }, &ps, &FleetMeta::default());
    assert!(matches!(
        out.plan,
        Plan::NoOp {
            reason: NoOpReason::AtTarget,
            ..
        }
    ));
}

#[test]
fn draining_pairs_are_not_capacity() {
    let ps = pairs(&[Active, Active, Active, Draining]);
    let out = run(Intent::Delta { delta: -1 }, &ps, &FleetMeta::default());
    match out.plan {
        Plan::ScaleIn {
            from,
            to,
            remove,
            ref eligible,
            ..
        } => {
            assert_eq!((from, to, remove), (3, 2, 1));
            assert_eq!(eligible.len(), 3, "the draining pair is not eligible again");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn protected_pairs_are_never_eligible() {
    let mut ps = pairs(&[Active, Active, Active]);
    ps[0].protected = true;
    ps[1].protected = true;
    let out = run(Intent::Target { pair_count: 1 }, &ps, &FleetMeta::default());
    match out.plan {
        Plan::ScaleIn {
            remove,
            ref eligible,
            race_spares,
            ..
        } => {
            assert_eq!(remove, 1);
            assert_eq!(eligible, &vec![ps[2].id]);
            assert_eq!(race_spares, 0);
        }
        other => panic!("{other:?}"),
    }
    ps[2].protected = true;
    let out = run(Intent::Target { pair_count: 1 }, &ps, &FleetMeta::default());
    assert!(matches!(
        out.plan,
        Plan::NoOp {
            reason: NoOpReason::AllProtected,
            ..
        }
    ));
}

#[test]
fn cooldowns_are_per_direction() {
    let ps = pairs(&[Active, Active, Active]);
    let just_scaled_out = FleetMeta {
        last_scale_out_at: Some(Timestamp(990_000)),
        ..Default::default()
    };
    // 10 s after a scale-out: another scale-out waits out 60 s, a scale-in 600 s.
    let out = run(Intent::Delta { delta: 1 }, &ps, &just_scaled_out);
    assert!(matches!(
        out.plan,
        Plan::NoOp {
            reason: NoOpReason::Cooldown,
            ..
        }
    ));
    let out = run(Intent::Delta { delta: -1 }, &ps, &just_scaled_out);
    assert!(matches!(
        out.plan,
        Plan::NoOp {
            reason: NoOpReason::Cooldown,
            ..
        }
    ));
    let a_while_ago = FleetMeta {
        last_scale_out_at: Some(Timestamp(900_000)),
        ..Default::default()
    };
    let out = run(Intent::Delta { delta: 1 }, &ps, &a_while_ago);
    assert!(matches!(out.plan, Plan::ScaleOut { .. }));
    let out = run(Intent::Delta { delta: -1 }, &ps, &a_while_ago);
    assert!(matches!(
        out.plan,
        Plan::NoOp {
            reason: NoOpReason::Cooldown,
            ..
        }
    ));
}

#[test]
fn a_manual_request_may_skip_the_cooldown() {
    let cfg = sample_config();
    let ps = pairs(&[Active, Active]);
    let meta = FleetMeta {
        last_scale_in_at: Some(Timestamp(999_000)),
        ..Default::default()
    };
    let mut r = req(Intent::Delta { delta: -1 });
    r.ignore_cooldown = true;
    let out = plan(
        &r,
        PlanContext {
            config: &cfg,
            desired: 2,
            pairs: &ps,
            meta: &meta,
            now: Timestamp(1_000_000),
        },
    )
    .expect("plan");
    assert!(matches!(out.plan, Plan::ScaleIn { .. }));
}

#[test]
fn alarms_map_to_configured_steps() {
    let ps = pairs(&[Active, Active]);
    let out = run(
        Intent::Alarm {
            alarm_name: "calls-high".into(),
            state: "ALARM".into(),
        },
        &ps,
        &FleetMeta::default(),
    );
    assert_eq!(out.plan, scale_out(2, 4, 2));
    let out = run(
        Intent::Alarm {
            alarm_name: "calls-high".into(),
            state: "OK".into(),
        },
        &ps,
        &FleetMeta::default(),
    );
    assert!(matches!(
        out.plan,
        Plan::NoOp {
            reason: NoOpReason::AlarmNotFiring,
            ..
        }
    ));
    let cfg = sample_config();
    let e = plan(
        &req(Intent::Alarm {
            alarm_name: "cpu".into(),
            state: "ALARM".into(),
        }),
        PlanContext {
            config: &cfg,
            desired: 2,
            pairs: &ps,
            meta: &FleetMeta::default(),
            now: Timestamp(0),
        },
    )
    .expect_err("unmapped alarm");
    assert!(e.to_string().contains("cpu"));
}

#[test]
fn spares_shrink_when_the_rest_could_not_carry_the_load() {
    let mut cfg = sample_config();
    cfg.race_spares = 2;
    cfg.min_pairs = 1;
    assert_eq!(race_spares(&cfg, 6, 6, 1, None), 2);
    // 3 active, remove 1: 2 spares would leave 0 serving; 1 spare leaves 1.
    assert_eq!(race_spares(&cfg, 3, 3, 1, None), 1);
    cfg.pair_capacity_channels = Some(100);
    // 6 active carrying 350 channels: 6-1-2 = 3 serving x 100 < 350; 6-1-1 = 4 x 100 ok.
    assert_eq!(race_spares(&cfg, 6, 6, 1, Some(350)), 1);
    assert_eq!(race_spares(&cfg, 6, 6, 1, Some(450)), 0);
}

#[test]
fn only_fresh_load_samples_hold_the_spares_back() {
    let mut cfg = sample_config();
    cfg.race_spares = 2;
    cfg.min_pairs = 1;
    cfg.pair_capacity_channels = Some(100);
    let now = Timestamp(1_000_000);
    let sampled = |age_ms: i64| {
        let mut ps = pairs(&[Active; 6]);
        for p in &mut ps {
            p.last_channels = Some(60);
            p.last_seen_at = Some(Timestamp(now.0 - age_ms));
        }
        ps
    };
    let spares = |ps: &[Pair]| {
        let meta = FleetMeta::default();
        let out = plan(
            &req(Intent::Delta { delta: -1 }),
            PlanContext {
                config: &cfg,
                desired: 6,
                pairs: ps,
                meta: &meta,
                now,
            },
        )
        .expect("plan");
        match out.plan {
            Plan::ScaleIn { race_spares, .. } => race_spares,
            other => panic!("{other:?}"),
        }
    };
    // 360 channels: 3 pairs left serving (300) are too few, 4 (400) enough: one spare.
    assert_eq!(spares(&sampled(60_000)), 1);
    // The same figures ten minutes old say nothing of the load now.
    assert_eq!(spares(&sampled(600_000)), 2);
}

fn arb_status() -> impl Strategy<Value = PairStatus> {
    prop_oneof![
        Just(Provisioning),
        Just(Active),
        Just(Draining),
        Just(Drained),
        Just(Failed)
    ]
}

proptest! {
    /// A plan never leaves [min, max], never moves more than max_step, and never removes
    /// a protected or non-active pair.
    #[test]
    fn a_plan_never_leaves_the_bounds(
        statuses in prop::collection::vec(arb_status(), 0..30),
        protected in prop::collection::vec(any::<bool>(), 30),
        min in 0u32..5, span in 0u32..20, step in 1u32..6,
        target in prop_oneof![(0u32..40).prop_map(|t| Intent::Target { pair_count: t }),
                              (-30i32..30).prop_filter("non-zero", |d| *d != 0).prop_map(|d| Intent::Delta { delta: d })],
    ) {
        let mut cfg = sample_config();
        cfg.min_pairs = min;
        cfg.max_pairs = min + span;
        cfg.max_step = step;
        let mut ps = pairs(&statuses);
        for (p, prot) in ps.iter_mut().zip(protected) { p.protected = prot; }
        let out = plan(&req(target), PlanContext { config: &cfg, desired: 0, pairs: &ps, meta: &FleetMeta::default(), now: Timestamp(0) }).expect("plan");
        match out.plan {
            Plan::ScaleOut { to, add, .. } => {
                prop_assert!(to <= cfg.max_pairs && add >= 1 && add <= step);
            }
            Plan::ScaleIn { to, remove, race_spares, ref eligible, .. } => {
                prop_assert!(to >= cfg.min_pairs && remove >= 1 && remove <= step);
                prop_assert!(remove + race_spares <= eligible.len() as u32);
                for id in eligible {
                    let p = ps.iter().find(|p| p.id == *id).expect("known");
                    prop_assert!(p.status == Active && !p.protected);
                }
            }
            Plan::NoOp { .. } => {}
        }
    }
}
