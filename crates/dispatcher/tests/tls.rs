//! The dispatcher database over TLS (verify-full), against the real PostgreSQL with a
//! certificate of the test's own CA that tests/setup/35-postgres-tls.sh starts, and a Kamailio
//! of the test's own reading that database's table. On 127.0.0.1 that server takes TLS
//! sessions only, so a change that reaches its table there went over TLS.

mod common;

use common::{env, OwnKamailio};
use pairscale_dispatcher::{
    DbTls, Destination, DestinationStatus, DispatcherConfig, DispatcherError, KamailioDispatcher,
    RegisterOutcome,
};

const TLS_URL_ENV: &str = "PAIRSCALE_TEST_PG_TLS_URL";

fn pem(var: &str) -> String {
    let path = env(var);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{var}={path}: {e}"))
}

fn tls(ca_var: &str) -> DbTls {
    DbTls::verify_full(Some(&pem(ca_var))).expect("a CA bundle that parses")
}

fn dispatcher(url: &str, tls: DbTls, rpc_url: String) -> KamailioDispatcher {
    KamailioDispatcher::new(
        DispatcherConfig::new(url, rpc_url)
            .expect("a valid test database URL")
            .with_tls(tls),
    )
    .expect("valid configuration")
}

/// Rows in `set_id`, read over a connection of the test's own (verify-full, the right CA),
/// which also says whether that session is encrypted.
async fn rows_and_ssl(set_id: i32) -> (Vec<String>, bool) {
    let ca = DbTls::verify_full(Some(&pem("PAIRSCALE_TEST_PG_TLS_CA"))).expect("ca");
    let DbTls::VerifyFull(config) = ca else {
        unreachable!()
    };
    let mut pg: tokio_postgres::Config = env(TLS_URL_ENV).parse().expect("url");
    pg.ssl_mode(tokio_postgres::config::SslMode::Require);
    let (client, connection) = pg
        .connect(tokio_postgres_rustls::MakeRustlsConnect::new(
            (*config).clone(),
        ))
        .await
        .expect("connect over TLS");
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT destination FROM dispatcher WHERE setid = $1 ORDER BY destination",
            &[&set_id],
        )
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0);
    (rows, ssl)
}

fn unreachable_detail(e: DispatcherError) -> String {
    match e {
        DispatcherError::Unreachable { service, detail } => {
            assert_eq!(service, "postgresql");
            detail
        }
        other => panic!("expected the database to be unreachable as configured, got {other:?}"),
    }
}

#[tokio::test]
async fn every_change_goes_over_verified_tls_and_kamailio_follows_it() {
    let kamailio = OwnKamailio::start_reading(&env(TLS_URL_ENV)).await;
    let disp = dispatcher(
        &env(TLS_URL_ENV),
        tls("PAIRSCALE_TEST_PG_TLS_CA"),
        kamailio.url(),
    );
    let d = Destination::new(601, "sip:127.0.0.1:46001", "pair-601").expect("destination");
    let _ = disp.deregister(&d).await;

    assert_eq!(
        disp.register(&d).await.expect("register"),
        RegisterOutcome::Inserted
    );
    let (rows, ssl) = rows_and_ssl(601).await;
    assert_eq!(rows, vec![d.uri.clone()]);
    assert!(ssl, "the checking session itself is not encrypted");

    disp.disable(&d).await.expect("disable");
    let seen = disp.list().await.expect("list");
    let state = seen
        .iter()
        .find(|s| s.set_id == 601 && s.uri == d.uri)
        .expect("kamailio lists the destination it read from the TLS database");
    assert_eq!(state.status, DestinationStatus::Disabled);
    disp.enable(&d).await.expect("enable");
    disp.deregister(&d).await.expect("deregister");
    assert_eq!(rows_and_ssl(601).await.0, Vec::<String>::new());
}

#[tokio::test]
async fn a_certificate_of_another_ca_is_refused_and_nothing_is_written() {
    let disp = dispatcher(
        &env(TLS_URL_ENV),
        tls("PAIRSCALE_TEST_PG_TLS_OTHER_CA"),
        // Never reached: the database refuses first.
        "http://127.0.0.1:9/RPC".into(),
    );
    let d = Destination::new(602, "sip:127.0.0.1:46002", "pair-602").expect("destination");
    let e = disp.register(&d).await.expect_err("an unknown issuer");
    assert!(!e.to_string().contains("pairscale_tls_pw"), "{e}");
    let detail = unreachable_detail(e);
    assert!(
        detail.contains("TLS") && detail.to_lowercase().contains("certificate"),
        "the error does not say the certificate was refused: {detail}"
    );
    assert_eq!(rows_and_ssl(602).await.0, Vec::<String>::new());
}

#[tokio::test]
async fn a_certificate_that_does_not_name_the_host_is_refused() {
    // The same server and CA, reached at 127.0.0.2, which its certificate does not name.
    let url = env(TLS_URL_ENV).replace("@127.0.0.1:", "@127.0.0.2:");
    assert_ne!(url, env(TLS_URL_ENV), "the test URL names 127.0.0.1");
    let disp = dispatcher(
        &url,
        tls("PAIRSCALE_TEST_PG_TLS_CA"),
        "http://127.0.0.1:9/RPC".into(),
    );
    let d = Destination::new(603, "sip:127.0.0.1:46003", "pair-603").expect("destination");
    let detail = unreachable_detail(disp.register(&d).await.expect_err("a name mismatch"));
    assert!(
        detail.to_lowercase().contains("not valid for name")
            || detail.to_lowercase().contains("notvalidforname"),
        "the error does not name the host-name mismatch: {detail}"
    );
    assert_eq!(rows_and_ssl(603).await.0, Vec::<String>::new());
}

#[tokio::test]
async fn the_server_refuses_a_plain_session_where_it_takes_tls_only() {
    // What makes the tests above prove TLS was used: 127.0.0.1 refuses plain text.
    let plain = dispatcher(
        &env(TLS_URL_ENV),
        DbTls::Disable,
        "http://127.0.0.1:9/RPC".into(),
    );
    let d = Destination::new(604, "sip:127.0.0.1:46004", "pair-604").expect("destination");
    match plain.register(&d).await.expect_err("a plain session") {
        e @ DispatcherError::Database(_) => {
            let shown = e.to_string();
            assert!(shown.contains("no encryption"), "{shown}");
        }
        other => panic!("expected the server's refusal, got {other:?}"),
    }
    assert_eq!(rows_and_ssl(604).await.0, Vec::<String>::new());
}
