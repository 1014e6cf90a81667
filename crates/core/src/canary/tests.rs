#![allow(clippy::unwrap_used)]
use super::*;

fn call(mos: Option<f64>) -> CanaryCall {
    CanaryCall {
        answered: true,
        hangup_cause: "NORMAL_CLEARING".into(),
        mos: mos.and_then(Mos::from_f64),
        jitter_max_variance: 0.5,
        loss_percent: 0.0,
        media_packets: 150,
        duration_ms: 3000,
    }
}

fn node(id: u32, mos: Option<f64>) -> NodeQuality {
    NodeQuality {
        pair_id: PairId::new(id).unwrap(),
        mos: mos.and_then(Mos::from_f64),
        error: mos.is_none().then(|| "not answered".to_string()),
    }
}

#[test]
fn a_good_call_passes_with_its_score() {
    let c = CanaryConfig::default();
    assert_eq!(c.judge(&call(Some(4.41))), Ok(Mos::from_f64(4.41).unwrap()));
}

#[test]
fn each_way_a_call_can_fail_is_named() {
    let c = CanaryConfig::default();
    let unanswered = CanaryCall {
        answered: false,
        hangup_cause: "NO_ROUTE_DESTINATION".into(),
        ..call(None)
    };
    assert_eq!(
        c.judge(&unanswered).unwrap_err(),
        "the canary call was not answered (NO_ROUTE_DESTINATION)"
    );
    let silent = CanaryCall {
        media_packets: 0,
        ..call(Some(4.5))
    };
    assert!(c
        .judge(&silent)
        .unwrap_err()
        .contains("no media arrived in 3 s"));
    assert!(c.judge(&call(None)).unwrap_err().contains("no MOS"));
    let poor = c.judge(&call(Some(3.2))).unwrap_err();
    assert!(poor.contains("MOS 3.20 < 3.50"), "{poor}");
}

#[test]
fn the_threshold_itself_passes() {
    let c = CanaryConfig::default();
    assert!(c.judge(&call(Some(3.5))).is_ok());
    assert!(c.judge(&call(Some(3.49))).is_err());
}

#[test]
fn the_fleet_figure_is_the_lower_median_with_failures_counted_worst() {
    let t = Mos::from_f64(3.5).unwrap();
    let at = Timestamp(1);
    let r = QualityReading::of(
        vec![node(1, Some(4.4)), node(2, None), node(3, Some(4.2))],
        t,
        at,
    )
    .unwrap();
    assert_eq!(r.mos.to_string(), "4.20");
    assert!(!r.hold_scale_in);
    let r = QualityReading::of(vec![node(1, Some(4.4)), node(2, None)], t, at).unwrap();
    assert_eq!(r.mos, Mos::WORST);
    assert!(r.hold_scale_in);
    let r = QualityReading::of(
        vec![node(1, Some(3.1)), node(2, Some(3.3)), node(3, Some(4.4))],
        t,
        at,
    )
    .unwrap();
    assert_eq!(r.mos.to_string(), "3.30");
    assert!(r.hold_scale_in);
    assert_eq!(QualityReading::of(Vec::new(), t, at), None);
}

#[test]
fn the_sample_is_spread_over_the_list_and_never_repeats() {
    let ids: Vec<u32> = (1..=10).collect();
    assert_eq!(quality_sample(&ids, 3), vec![1, 5, 10]);
    assert_eq!(quality_sample(&ids, 1), vec![1]);
    assert_eq!(quality_sample(&ids[..2], 3), vec![1, 2]);
    assert_eq!(quality_sample(&ids, 10), ids);
    assert!(quality_sample::<u32>(&[], 3).is_empty());
}

#[test]
fn the_dial_string_goes_through_the_profile_to_the_nodes_sip_address() {
    let c = CanaryConfig::default();
    assert_eq!(
        c.dial_string("sip:10.0.1.7:5060").unwrap(),
        "sofia/pairscale/pairscale-canary@10.0.1.7:5060"
    );
    let e = c.dial_string("sip:10.0.1.7:5060 &hupall").unwrap_err();
    assert!(e.to_string().contains("sip_uri"), "{e}");
}

#[test]
fn config_is_checked_field_by_field() {
    let ok = CanaryConfig::default();
    assert_eq!(ok.check(), Ok(()));
    let field = |c: CanaryConfig| c.check().unwrap_err().0;
    assert_eq!(
        field(CanaryConfig {
            destination: "x}&park".into(),
            ..ok.clone()
        }),
        "canary.destination"
    );
    assert_eq!(
        field(CanaryConfig {
            sip_profile: String::new(),
            ..ok.clone()
        }),
        "canary.sip_profile"
    );
    assert_eq!(
        field(CanaryConfig {
            seconds: 0,
            ..ok.clone()
        }),
        "canary.seconds"
    );
    assert_eq!(
        field(CanaryConfig {
            seconds: 31,
            ..ok.clone()
        }),
        "canary.seconds"
    );
    let (f, v, why) = CanaryConfig {
        min_mos: Mos::from_f64(4.8).unwrap(),
        ..ok.clone()
    }
    .check()
    .unwrap_err();
    assert_eq!((f.as_str(), v.as_str()), ("canary.min_mos", "4.80"));
    assert!(why.contains("1.00..=4.50"), "{why}");
    assert_eq!(
        field(CanaryConfig {
            quality_sample: 0,
            ..ok.clone()
        }),
        "canary.quality_sample"
    );
    assert_eq!(
        field(CanaryConfig {
            measure_every_minutes: 1441,
            ..ok.clone()
        }),
        "canary.measure_every_minutes"
    );
    let metric = |f: &dyn Fn(&mut OperatorMetric)| {
        let mut m = operator_metric();
        f(&mut m);
        CanaryConfig {
            operator_metric: Some(m),
            ..ok.clone()
        }
        .check()
        .err()
        .map(|e| e.0)
    };
    assert_eq!(metric(&|_| ()), None);
    assert_eq!(
        metric(&|m| m.namespace = "a:b".into()).as_deref(),
        Some("canary.operator_metric.namespace")
    );
    assert_eq!(
        metric(&|m| m.metric_name = "x".repeat(256)).as_deref(),
        Some("canary.operator_metric.metric_name")
    );
    assert_eq!(
        metric(&|m| {
            m.dimensions.insert("Fleet".into(), String::new());
        })
        .as_deref(),
        Some("canary.operator_metric.dimensions.Fleet")
    );
    assert_eq!(
        metric(&|m| m.dimensions = (0..31).map(|i| (i.to_string(), "v".into())).collect())
            .as_deref(),
        Some("canary.operator_metric.dimensions")
    );
    for w in [0, 90, 3660] {
        assert_eq!(
            metric(&|m| m.window_seconds = w).as_deref(),
            Some("canary.operator_metric.window_seconds"),
            "{w}"
        );
    }
}

fn operator_metric() -> OperatorMetric {
    serde_json::from_value(serde_json::json!({"namespace": "Voice", "metric_name": "CallMos"}))
        .unwrap()
}

#[test]
fn the_operators_metric_defaults_to_the_average_over_five_minutes() {
    let m = operator_metric();
    assert_eq!(m.statistic, MetricStatistic::Average);
    assert_eq!(m.window_seconds, 300);
    assert!(m.dimensions.is_empty());
    assert_eq!(m.label(), "Voice/CallMos");
    let e = serde_json::from_value::<OperatorMetric>(serde_json::json!({
        "namespace": "Voice", "metric_name": "CallMos", "statistic": "p50"
    }))
    .unwrap_err();
    assert!(e.to_string().contains("p50"), "{e}");
}

#[test]
fn the_fleet_figure_is_the_worse_of_the_calls_and_the_operators_metric() {
    let t = Mos::from_f64(3.5).unwrap();
    let at = Timestamp(1);
    let op = |v: f64| {
        Some(OperatorReading {
            metric: "Voice/CallMos".into(),
            mos: Mos::from_f64(v).unwrap(),
        })
    };
    let r = QualityReading::combined(vec![node(1, Some(4.4))], op(3.2), t, at).unwrap();
    assert_eq!((r.mos.to_string(), r.hold_scale_in), ("3.20".into(), true));
    assert_eq!(r.canary_mos, Mos::from_f64(4.4));
    let r = QualityReading::combined(vec![node(1, Some(3.0))], op(4.2), t, at).unwrap();
    assert_eq!(r.mos.to_string(), "3.00");
    // The metric alone, when no node was there to call; neither: no reading, no hold.
    let r = QualityReading::combined(Vec::new(), op(4.1), t, at).unwrap();
    assert_eq!((r.mos.to_string(), r.canary_mos), ("4.10".into(), None));
    assert_eq!(QualityReading::combined(Vec::new(), None, t, at), None);
    assert_eq!(r.measured_by, MeasuredBy::ScaleIn);
    assert_eq!(r.by(MeasuredBy::Schedule).measured_by, MeasuredBy::Schedule);
}

#[test]
fn a_reading_recorded_before_the_operators_metric_existed_still_reads() {
    let old = serde_json::json!({
        "mos": 4.2, "threshold": 3.5, "hold_scale_in": false, "measured_at": 5,
        "nodes": [{"pair_id": "pair-0001", "mos": 4.2}]
    });
    let r: QualityReading = serde_json::from_value(old).unwrap();
    assert_eq!(
        (r.canary_mos, r.operator, r.measured_by),
        (None, None, MeasuredBy::ScaleIn)
    );
}

#[test]
fn a_score_parses_from_json_and_refuses_what_is_not_one() {
    let c: CanaryConfig = serde_json::from_str(r#"{"min_mos": 3.8}"#).unwrap();
    assert_eq!(c.min_mos.to_string(), "3.80");
    assert_eq!(c.seconds, 3);
    let e = serde_json::from_str::<CanaryConfig>(r#"{"min_mos": 7}"#).unwrap_err();
    assert!(
        e.to_string().contains("7 is not a mean opinion score"),
        "{e}"
    );
    assert!(serde_json::from_str::<CanaryConfig>(r#"{"min_mos": 3, "extra": 1}"#).is_err());
}
