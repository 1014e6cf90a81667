//! The adapter against the real Kamailio 5.6 and PostgreSQL started by tests/setup.
//! Tests run in parallel on one Kamailio, so each owns a set id (101..) and nothing else.

mod common;

use common::{clear_sets, db, dispatcher, rows};
use pairscale_dispatcher::{
    DeregisterOutcome, Destination, DestinationState, DestinationStatus, DispatcherConfig,
    DispatcherError, KamailioDispatcher, RegisterOutcome,
};

fn dest(set_id: i32, port: u16, pair: &str) -> Destination {
    Destination::new(set_id, format!("sip:127.0.0.1:{port}"), pair).expect("valid destination")
}

async fn listed(d: &Destination) -> Option<DestinationState> {
    dispatcher()
        .list()
        .await
        .expect("dispatcher.list")
        .into_iter()
        .find(|s| s.set_id == d.set_id && s.uri == d.uri)
}

#[tokio::test]
async fn registering_twice_writes_one_row_and_kamailio_lists_it_with_its_pair_id() {
    clear_sets(&[101]).await;
    let disp = dispatcher();
    let d = dest(101, 41001, "pair-101").with_attr("az", "a");

    assert_eq!(
        disp.register(&d).await.expect("first"),
        RegisterOutcome::Inserted
    );
    assert_eq!(
        disp.register(&d).await.expect("second"),
        RegisterOutcome::AlreadyPresent
    );

    assert_eq!(
        rows(101, &d.uri).await,
        vec![(0, "duid=pair-101;az=a".to_string())]
    );
    let seen = listed(&d).await.expect("kamailio lists the destination");
    assert_eq!(seen.status, DestinationStatus::Active);
    assert_eq!(seen.duid.as_deref(), Some("pair-101"));
    assert_eq!(seen.attrs, "duid=pair-101;az=a");

    disp.deregister(&d).await.expect("cleanup");
}

#[tokio::test]
async fn a_row_written_behind_kamailios_back_is_listed_after_register_reloads() {
    clear_sets(&[102]).await;
    let d = dest(102, 41002, "pair-102");
    // As if an earlier register wrote the row and died before its reload.
    db().await
        .execute(
            "INSERT INTO dispatcher (setid, destination, attrs) VALUES ($1, $2, 'duid=pair-102')",
            &[&d.set_id, &d.uri],
        )
        .await
        .expect("insert");
    let disp = dispatcher();
    assert_eq!(
        disp.register(&d).await.expect("register"),
        RegisterOutcome::AlreadyPresent
    );
    assert!(listed(&d).await.is_some());
    disp.deregister(&d).await.expect("cleanup");
}

#[tokio::test]
async fn disable_persists_flags_4_and_kamailio_shows_it_disabled() {
    clear_sets(&[103]).await;
    let disp = dispatcher();
    let d = dest(103, 41003, "pair-103");
    let other = dest(103, 41004, "pair-103b");
    disp.register(&d).await.expect("register");
    disp.register(&other).await.expect("register other");

    disp.disable(&d).await.expect("disable");

    assert_eq!(rows(103, &d.uri).await[0].0, 4);
    let seen = listed(&d).await.expect("still listed");
    assert_eq!(
        seen.status,
        DestinationStatus::Disabled,
        "flags {}",
        seen.flags
    );
    assert!(seen.flags.starts_with('D'));
    // Only that one.
    assert_eq!(rows(103, &other.uri).await[0].0, 0);
    assert_eq!(
        listed(&other).await.expect("listed").status,
        DestinationStatus::Active
    );

    // Disabling again is harmless.
    disp.disable(&d).await.expect("disable again");
    assert_eq!(
        listed(&d).await.expect("listed").status,
        DestinationStatus::Disabled
    );

    disp.deregister(&d).await.expect("cleanup");
    disp.deregister(&other).await.expect("cleanup");
}

#[tokio::test]
async fn a_reload_after_disable_keeps_the_destination_disabled() {
    clear_sets(&[104]).await;
    let disp = dispatcher();
    let d = dest(104, 41005, "pair-104");
    disp.register(&d).await.expect("register");
    disp.disable(&d).await.expect("disable");

    disp.reload().await.expect("reload");

    let seen = listed(&d).await.expect("listed after reload");
    assert_eq!(
        seen.status,
        DestinationStatus::Disabled,
        "flags {}",
        seen.flags
    );
    disp.deregister(&d).await.expect("cleanup");
}

#[tokio::test]
async fn enable_after_disable_restores_flags_0_and_active_also_across_a_reload() {
    clear_sets(&[105]).await;
    let disp = dispatcher();
    let d = dest(105, 41006, "pair-105");
    disp.register(&d).await.expect("register");
    disp.disable(&d).await.expect("disable");

    disp.enable(&d).await.expect("enable");

    assert_eq!(rows(105, &d.uri).await[0].0, 0);
    assert_eq!(
        listed(&d).await.expect("listed").status,
        DestinationStatus::Active
    );
    disp.reload().await.expect("reload");
    assert_eq!(
        listed(&d).await.expect("listed").status,
        DestinationStatus::Active
    );
    disp.deregister(&d).await.expect("cleanup");
}

#[tokio::test]
async fn disable_of_a_row_kamailio_never_loaded_reloads_and_still_verifies() {
    clear_sets(&[106]).await;
    let d = dest(106, 41007, "pair-106");
    db().await
        .execute(
            "INSERT INTO dispatcher (setid, destination, attrs) VALUES ($1, $2, 'duid=pair-106')",
            &[&d.set_id, &d.uri],
        )
        .await
        .expect("insert");
    let disp = dispatcher();
    disp.disable(&d).await.expect("disable");
    assert_eq!(
        listed(&d).await.expect("listed").status,
        DestinationStatus::Disabled
    );
    disp.deregister(&d).await.expect("cleanup");
}

#[tokio::test]
async fn deregistering_twice_removes_the_row_then_reports_it_already_absent() {
    clear_sets(&[107]).await;
    let disp = dispatcher();
    let d = dest(107, 41008, "pair-107");
    disp.register(&d).await.expect("register");

    assert_eq!(
        disp.deregister(&d).await.expect("first"),
        DeregisterOutcome::Removed
    );
    assert_eq!(
        disp.deregister(&d).await.expect("second"),
        DeregisterOutcome::AlreadyAbsent
    );

    assert!(rows(107, &d.uri).await.is_empty());
    assert!(listed(&d).await.is_none());
}

#[tokio::test]
async fn a_bad_uri_is_invalid_input_naming_field_and_value_and_writes_nothing() {
    let disp = dispatcher();
    let d = Destination {
        set_id: 108,
        uri: "sip:not-an-ip:5060".to_string(),
        pair_id: "pair-108".to_string(),
        priority: 0,
        attrs: Default::default(),
    };
    for result in [
        disp.register(&d).await.map(drop),
        disp.disable(&d).await,
        disp.enable(&d).await,
        disp.deregister(&d).await.map(drop),
    ] {
        match result {
            Err(DispatcherError::InvalidInput { field, value, .. }) => {
                assert_eq!((field, value.as_str()), ("uri", "sip:not-an-ip:5060"));
            }
            other => panic!("expected InvalidInput for the uri, got {other:?}"),
        }
    }
    assert!(rows(108, &d.uri).await.is_empty());
}

#[tokio::test]
async fn a_negative_set_id_is_invalid_input_and_writes_nothing() {
    let disp = dispatcher();
    let d = Destination {
        set_id: -5,
        uri: "sip:127.0.0.1:41009".to_string(),
        pair_id: "pair-neg".to_string(),
        priority: 0,
        attrs: Default::default(),
    };
    let err = disp.register(&d).await.expect_err("negative set id");
    assert!(!err.is_retryable());
    match err {
        DispatcherError::InvalidInput { field, value, .. } => {
            assert_eq!((field, value.as_str()), ("set_id", "-5"));
        }
        other => panic!("expected InvalidInput for set_id, got {other:?}"),
    }
    let n: i64 = db()
        .await
        .query_one(
            "SELECT count(*) FROM dispatcher WHERE destination = $1",
            &[&d.uri],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn another_pairs_destination_is_neither_taken_over_nor_disabled_nor_deleted() {
    clear_sets(&[109]).await;
    let disp = dispatcher();
    let mine = dest(109, 41010, "pair-old");
    let theirs = dest(109, 41010, "pair-new");
    disp.register(&mine).await.expect("register");

    for result in [
        disp.register(&theirs).await.map(drop),
        disp.disable(&theirs).await,
        disp.deregister(&theirs).await.map(drop),
    ] {
        match result {
            Err(DispatcherError::Conflict {
                existing_pair_id, ..
            }) => {
                assert_eq!(existing_pair_id, "pair-old")
            }
            other => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(
        rows(109, &mine.uri).await,
        vec![(0, "duid=pair-old".to_string())]
    );
    assert_eq!(
        listed(&mine).await.expect("listed").status,
        DestinationStatus::Active
    );
    disp.deregister(&mine).await.expect("cleanup");
}

#[tokio::test]
async fn disabling_a_destination_that_was_never_registered_is_not_registered() {
    clear_sets(&[110]).await;
    let err = dispatcher()
        .disable(&dest(110, 41011, "pair-110"))
        .await
        .expect_err("not registered");
    assert!(
        matches!(err, DispatcherError::NotRegistered { set_id: 110, ref uri } if uri == "sip:127.0.0.1:41011"),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_services_are_retryable_unreachable_errors() {
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let good = common::config();

    let no_rpc = KamailioDispatcher::new(
        good.clone()
            .with_rpc_urls([format!("http://127.0.0.1:{closed}/RPC")]),
    )
    .expect("config");
    let err = no_rpc.list().await.expect_err("no kamailio there");
    assert!(
        matches!(
            err,
            DispatcherError::Unreachable {
                service: "kamailio",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());

    let no_db = KamailioDispatcher::new(DispatcherConfig {
        db: format!("postgres://nobody:pw@127.0.0.1:{closed}/none")
            .parse()
            .expect("a connection string"),
        ..good
    })
    .expect("config");
    let err = no_db
        .register(&dest(111, 41012, "pair-111"))
        .await
        .expect_err("no database there");
    assert!(
        matches!(
            err,
            DispatcherError::Unreachable {
                service: "postgresql",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
}
