//! Shared by the integration tests: the Kamailio and PostgreSQL that `tests/setup/30-kamailio.sh`
//! started, found through the environment. Without them the tests fail rather than pass.

#![allow(dead_code)]

use pairscale_dispatcher::{DispatcherConfig, KamailioDispatcher};

pub const PG_URL_ENV: &str = "PAIRSCALE_TEST_PG_URL";
pub const RPC_URL_ENV: &str = "KAMAILIO_RPC_URL";
pub const SIP_PORT_ENV: &str = "KAMAILIO_SIP_PORT";

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the Kamailio and PostgreSQL that \
             tests/setup/30-kamailio.sh starts; run ./tests/run (or source tests/lib/common.sh \
             and tests/setup/30-kamailio.sh first)"
        )
    })
}

pub fn config() -> DispatcherConfig {
    DispatcherConfig::new(&env(PG_URL_ENV), env(RPC_URL_ENV)).expect("a valid test database URL")
}

pub fn dispatcher() -> KamailioDispatcher {
    KamailioDispatcher::new(config()).expect("valid test configuration")
}

/// A direct connection to the test database, to check what the adapter wrote.
pub async fn db() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&env(PG_URL_ENV), tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// (flags, attrs) of every row with this set id and URI.
pub async fn rows(set_id: i32, uri: &str) -> Vec<(i32, String)> {
    db().await
        .query(
            "SELECT flags, attrs FROM dispatcher WHERE setid = $1 AND destination = $2",
            &[&set_id, &uri],
        )
        .await
        .expect("select")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Removes whatever an earlier, interrupted run left in these sets.
pub async fn clear_sets(set_ids: &[i32]) {
    let client = db().await;
    for id in set_ids {
        client
            .execute("DELETE FROM dispatcher WHERE setid = $1", &[id])
            .await
            .expect("delete");
    }
}
