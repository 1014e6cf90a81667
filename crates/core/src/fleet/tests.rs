use super::*;

fn fleet() -> FleetName {
    FleetName::parse("voice").expect("valid")
}

#[test]
fn a_valid_config_round_trips() {
    let cfg = sample_config();
    let raw = serde_json::to_string(&cfg).expect("serialise");
    assert_eq!(FleetConfig::from_json(&fleet(), &raw).expect("parse"), cfg);
}

#[test]
fn invalid_configs_name_the_field() {
    type Mutation = Box<dyn Fn(&mut FleetConfig)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("min_pairs", Box::new(|c| c.min_pairs = 11)),
        ("max_pairs", Box::new(|c| c.max_pairs = 1001)),
        ("max_step", Box::new(|c| c.max_step = 0)),
        (
            "drain.deadline_seconds",
            Box::new(|c| c.drain.deadline_seconds = 0),
        ),
        (
            "drain.hard_max_seconds",
            Box::new(|c| c.drain.hard_max_seconds = None),
        ),
        (
            "drain.hard_max_seconds",
            Box::new(|c| c.drain.hard_max_seconds = Some(5)),
        ),
        (
            "alarm_steps.calls-high",
            Box::new(|c| {
                c.alarm_steps.insert("calls-high".into(), 9);
            }),
        ),
        ("race_spares", Box::new(|c| c.race_spares = 99)),
    ];
    for (field, mutate) in cases {
        let mut cfg = sample_config();
        mutate(&mut cfg);
        let e = cfg.validate(&fleet()).expect_err(field);
        assert!(
            matches!(&e, Error::InvalidConfig { field: f, .. } if f == field),
            "{field}: {e}"
        );
    }
}

#[test]
fn a_hangup_cause_freeswitch_does_not_know_is_refused_by_name() {
    let mut v = serde_json::to_value(sample_config()).expect("serialise");
    v["drain"]["hupall_cause"] = "MANAGER_REQEUST".into();
    let e = FleetConfig::from_json(&fleet(), &v.to_string()).expect_err("typo");
    assert!(
        matches!(&e, Error::InvalidConfig { field, .. } if field == "drain.hupall_cause"),
        "{e}"
    );
    assert!(e.to_string().contains("MANAGER_REQEUST"), "{e}");
}

#[test]
fn complaints_are_worded_from_the_bounds() {
    let mut cfg = sample_config();
    cfg.build_timeout_seconds = *bounds::BUILD_TIMEOUT_SECONDS.end() + 1;
    let e = cfg.validate(&fleet()).expect_err("too long");
    assert!(e.to_string().contains("must be 10..=28800"), "{e}");
    let mut cfg = sample_config();
    cfg.cooldown_in_seconds = 86_401;
    let e = cfg.validate(&fleet()).expect_err("too long");
    assert!(e.to_string().contains("must be at most 86400"), "{e}");
}

#[test]
fn corrupt_or_unknown_config_json_is_rejected() {
    for raw in ["", "{", "[]", r#"{"min_pairs": -1}"#] {
        let e = FleetConfig::from_json(&fleet(), raw).expect_err(raw);
        assert_eq!(e.name(), crate::ErrorName::InvalidConfig);
    }
    let mut v = serde_json::to_value(sample_config()).expect("serialise");
    v["max_pairz"] = 3.into();
    let e = FleetConfig::from_json(&fleet(), &v.to_string()).expect_err("typo");
    assert!(e.to_string().contains("max_pairz"), "{e}");
}

#[test]
fn only_live_statuses_expect_infrastructure() {
    assert!(PairStatus::Active.expects_infrastructure());
    assert!(PairStatus::Draining.expects_infrastructure());
    assert!(!PairStatus::Provisioning.expects_infrastructure());
    assert!(!PairStatus::Failed.expects_infrastructure());
    assert!(!PairStatus::Warm.expects_infrastructure());
    for s in [
        "provisioning",
        "active",
        "draining",
        "drained",
        "failed",
        "warm",
    ] {
        assert_eq!(PairStatus::parse(s).expect(s).as_str(), s);
    }
    assert!(PairStatus::parse("Active").is_err());
}

#[test]
fn each_wait_between_lock_renewals_may_be_at_most_half_the_ttl() {
    let fleet = FleetName::parse("voice").expect("fleet");
    let mut c = sample_config();
    c.drain.check_interval_seconds = 60;
    c.build_poll_seconds = 60;
    assert_eq!(c.check_lock_ttl(&fleet, 120), Ok(()));
    let field = |c: &FleetConfig, ttl| match c.check_lock_ttl(&fleet, ttl) {
        Err(Error::InvalidConfig { field, .. }) => Some(field),
        _ => None,
    };
    assert_eq!(
        field(&c, 119).as_deref(),
        Some("drain.check_interval_seconds")
    );
    c.drain.check_interval_seconds = 15;
    assert_eq!(field(&c, 119).as_deref(), Some("build_poll_seconds"));
    c.build_poll_seconds = 15;
    assert_eq!(field(&c, 119), None);
    // The issue's own case: a drain checked every 150 s under a 120 s lock.
    c.drain.check_interval_seconds = 150;
    let e = c
        .check_lock_ttl(&fleet, 120)
        .expect_err("150 s under 120 s")
        .to_string();
    assert!(e.contains("150") && e.contains("120 s"), "{e}");
}

#[test]
fn a_baked_image_is_an_ami_id_and_anything_else_is_refused_naming_image_id() {
    for good in ["ami-0123abcd", "ami-0123456789abcdef0"] {
        let mut cfg = sample_config();
        cfg.image_id = Some(good.into());
        cfg.validate(&fleet()).expect(good);
    }
    for bad in [
        "",
        "ami-0123abc",
        "ami-0123456789abcdef",
        "ami-0123456789ABCDEF0",
        "ami-0123abcg",
        "i-0123abcd",
        " ami-0123abcd",
        "ami-0123abcd\n",
    ] {
        let mut v = serde_json::to_value(sample_config()).expect("serialise");
        v["image_id"] = bad.into();
        let e = FleetConfig::from_json(&fleet(), &v.to_string()).expect_err(bad);
        assert!(
            matches!(&e, Error::InvalidConfig { field, .. } if field == "image_id"),
            "{bad:?}: {e}"
        );
    }
    // Absent and null are the same: no baked image.
    let mut v = serde_json::to_value(sample_config()).expect("serialise");
    v["image_id"] = serde_json::Value::Null;
    let cfg = FleetConfig::from_json(&fleet(), &v.to_string()).expect("null");
    assert_eq!(cfg.image_id, None);
}

#[test]
fn a_warm_pool_needs_the_fleet_image_and_room_under_the_pair_limit() {
    let field = |v: &serde_json::Value| match FleetConfig::from_json(&fleet(), &v.to_string()) {
        Ok(c) => Ok(c.warm_pool),
        Err(Error::InvalidConfig { field, reason, .. }) => Err(format!("{field}: {reason}")),
        Err(e) => Err(e.to_string()),
    };
    let mut v = serde_json::to_value(sample_config()).expect("serialise");
    v.as_object_mut().expect("object").remove("warm_pool");
    assert_eq!(field(&v), Ok(0), "absent: no pool");
    v["warm_pool"] = 2.into();
    let e = field(&v).expect_err("a pool without an image");
    assert!(e.starts_with("warm_pool:") && e.contains("image_id"), "{e}");
    v["image_id"] = "ami-0123456789abcdef0".into();
    assert_eq!(field(&v), Ok(2));
    v["warm_pool"] = 101.into();
    assert!(field(&v).expect_err("101").starts_with("warm_pool:"));
    v["warm_pool"] = 20.into();
    v["max_pairs"] = 990.into();
    let e = field(&v).expect_err("990 + 20 records");
    assert!(e.starts_with("warm_pool:") && e.contains("1000"), "{e}");
    v["warm_pool"] = (-1).into();
    assert!(field(&v).expect_err("negative").starts_with("warm_pool"));
}

#[test]
fn a_policy_is_validated_with_its_fleet_and_named_by_its_path() {
    let with = |policy: serde_json::Value| {
        let mut v = serde_json::to_value(sample_config()).expect("serialise");
        v["policy"] = policy;
        FleetConfig::from_json(&fleet(), &v.to_string())
    };
    let schedule = |zone: &str, min_pairs: u32| {
        serde_json::json!({"name": "office", "days": ["mon"], "from": "08:00", "to": "18:00",
                           "time_zone": zone, "min_pairs": min_pairs})
    };
    let cfg = with(serde_json::json!({"target_channels_per_pair": 100,
                                      "schedules": [schedule("Europe/Berlin", 4)]}))
    .expect("valid policy");
    let policy = cfg.policy.clone().expect("kept");
    assert_eq!(policy.target_channels_per_pair, 100);
    assert_eq!(policy.scale_in_stabilization_seconds, 600);
    // Round trip: what is written is what is read.
    let raw = serde_json::to_string(&cfg).expect("serialise");
    assert_eq!(FleetConfig::from_json(&fleet(), &raw).expect("parse"), cfg);

    let field_of = |policy: serde_json::Value| match with(policy) {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("refused by name, got {other:?}"),
    };
    assert_eq!(
        field_of(serde_json::json!({"target_channels_per_pair": 0})),
        "policy.target_channels_per_pair"
    );
    // The fleet's max_step is 3.
    assert_eq!(
        field_of(serde_json::json!({"target_channels_per_pair": 10, "max_step_in": 4})),
        "policy.max_step_in"
    );
    // Terraform cannot tell a zone name from a typo: this is where it is caught.
    assert_eq!(
        field_of(serde_json::json!({"target_channels_per_pair": 10,
                                    "schedules": [schedule("Europe/Berlim", 4)]})),
        "policy.schedules[0].time_zone"
    );
    // The fleet's max_pairs is 10.
    assert_eq!(
        field_of(serde_json::json!({"target_channels_per_pair": 10,
                                    "schedules": [schedule("UTC", 11)]})),
        "policy.schedules[0].min_pairs"
    );
    // serde's own complaints carry the path too.
    let unknown = field_of(serde_json::json!({"target_channels_per_pair": 10, "target": 3}));
    assert!(unknown.starts_with("policy"), "{unknown}");
}
