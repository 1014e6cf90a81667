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

pub const RPC_URLS_ENV: &str = "KAMAILIO_RPC_URLS";

/// Both Kamailio instances of the HA pair that tests/setup/30-kamailio.sh started, sharing the
/// test table.
pub fn ha_urls() -> Vec<String> {
    let urls: Vec<String> = env(RPC_URLS_ENV)
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        urls.len(),
        2,
        "{RPC_URLS_ENV} must name two Kamailio instances"
    );
    urls
}

/// A dispatcher driving exactly the Kamailio instances at `urls`.
pub fn dispatcher_through<S: AsRef<str>>(urls: &[S]) -> KamailioDispatcher {
    dispatcher().through(urls).expect("valid Kamailio URLs")
}

/// A Kamailio of the test's own, started with tests/kamailio/run.sh on free loopback ports and
/// reading the shared test table: one the test may stop and start again on the same ports
/// without disturbing the tests that share the setup's instances. Stopped when dropped.
pub struct OwnKamailio {
    sip_port: u16,
    http_port: u16,
    run_dir: std::path::PathBuf,
    /// The dispatcher database it reads (`None`: the shared test table).
    pg_url: Option<String>,
    /// Its dispatcher `reload_delta` in seconds (`None`: the suite's 0).
    reload_delta: Option<u32>,
    child: Option<std::process::Child>,
}

impl OwnKamailio {
    pub async fn start() -> Self {
        Self::start_with(None, None).await
    }

    /// One reading the dispatcher table of the database at `pg_url` instead.
    pub async fn start_reading(pg_url: &str) -> Self {
        Self::start_with(Some(pg_url.to_string()), None).await
    }

    /// One that refuses a reload within `seconds` of the last, as Kamailio does by default (5).
    pub async fn start_with_reload_delta(seconds: u32) -> Self {
        Self::start_with(None, Some(seconds)).await
    }

    async fn start_with(pg_url: Option<String>, reload_delta: Option<u32>) -> Self {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
        };
        let (sip_port, http_port) = (free(), free());
        let base = std::env::var_os("PS_WORK")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let mut k = OwnKamailio {
            sip_port,
            http_port,
            run_dir: base.join(format!("kamailio-own-{http_port}")),
            pg_url,
            reload_delta,
            child: None,
        };
        k.start_again().await;
        k
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/RPC", self.http_port)
    }

    /// Starts it (again, on the same ports) and waits until it answers `dispatcher.list`.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/kamailio/run.sh");
        let log = std::fs::File::create(self.run_dir.with_extension("log")).expect("log file");
        let mut command = std::process::Command::new(script);
        if let Some(pg_url) = &self.pg_url {
            command.env(PG_URL_ENV, pg_url);
        }
        if let Some(seconds) = self.reload_delta {
            command.env("KAMAILIO_RELOAD_DELTA", seconds.to_string());
        }
        let child = command
            .args([
                self.sip_port.to_string(),
                self.http_port.to_string(),
                self.run_dir.display().to_string(),
            ])
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("run tests/kamailio/run.sh");
        self.child = Some(child);
        let me = dispatcher_through(&[self.url()]);
        for _ in 0..100 {
            if me.list().await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "the test's own kamailio did not answer at {} (log: {})",
            self.url(),
            self.run_dir.with_extension("log").display()
        );
    }

    /// Stops it (TERM: Kamailio's main process takes its children down) and waits until the
    /// process is gone and nothing answers on its port.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        terminate(&mut child);
        let me = dispatcher_through(&[self.url()]);
        for _ in 0..50 {
            if me.list().await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the test's own kamailio still answers at {}", self.url());
    }
}

fn terminate(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

impl Drop for OwnKamailio {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}
