//! Processes the router's tests start: the router binary itself, moto when a test needs it,
//! and the echo handler from `pairscale-lambda-emu`. Every process is stopped when its
//! guard drops, the router with SIGTERM so that it stops its own children first.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A child process, stopped on drop.
#[derive(Debug)]
pub struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pairscale-router-test-{what}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The echo handler (`pairscale-echo-fn`).
///
/// A whole-workspace test run (`./tests/run`) builds it beside this test's own binaries, with
/// the workspace's features: that copy is used. Run alone (`-p pairscale-router`), cargo builds
/// only this package's binaries, so it is built here with the same cargo and target dir.
/// Building it here in a whole-workspace run would be a second build of the dependencies with
/// another feature set: minutes on a small machine. `PAIRSCALE_ECHO_FN` overrides the path.
pub fn echo_fn() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("PAIRSCALE_ECHO_FN") {
            return PathBuf::from(path);
        }
        if std::env::var_os("PAIRSCALE_WORKSPACE_TEST_RUN").is_some() {
            let exe = std::env::current_exe().expect("the test's own path");
            let sibling = exe
                .parent()
                .and_then(Path::parent)
                .map(|d| d.join("pairscale-echo-fn"))
                .expect("the test binary sits in target/<profile>/deps");
            assert!(
                sibling.exists(),
                "{} is not built: a whole-workspace run builds it",
                sibling.display()
            );
            return sibling;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "pairscale-lambda-emu",
                "--bin",
                "pairscale-echo-fn",
                "--message-format=json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running cargo to build pairscale-echo-fn");
        assert!(
            out.status.success(),
            "cargo build of pairscale-echo-fn failed"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| {
                m["reason"] == "compiler-artifact" && m["target"]["name"] == "pairscale-echo-fn"
            })
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no pairscale-echo-fn executable")
    })
}

/// A running router.
#[derive(Debug)]
pub struct Router {
    pub url: String,
    pub port: u16,
    pub state_dir: PathBuf,
    pub client: reqwest::Client,
    proc: Option<Proc>,
}

impl Drop for Router {
    fn drop(&mut self) {
        drop(self.proc.take());
        // Kept after a failure, for its log and the build logs.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }
}

impl Router {
    /// Start the router in front of `moto` (which need not be running).
    pub fn start(moto: &str) -> Self {
        Self::start_with(moto, &[])
    }

    /// Start the router with more command-line arguments.
    pub fn start_with(moto: &str, args: &[&str]) -> Self {
        let state_dir = scratch_dir("state");
        let log = std::fs::File::create(state_dir.join("router.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pairscale-router"))
            .args(["--listen", "127.0.0.1:0", "--moto", moto, "--state-dir"])
            .arg(&state_dir)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let proc = Proc { child };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "router printed {line:?} ({e}); its log:\n{}",
                std::fs::read_to_string(state_dir.join("router.log")).unwrap_or_default()
            )
        });
        let listen = ready["listen"].as_str().unwrap().to_owned();
        let port = listen.rsplit(':').next().unwrap().parse().unwrap();
        Router {
            url: format!("http://{listen}"),
            port,
            state_dir,
            client: reqwest::Client::new(),
            proc: Some(proc),
        }
    }

    /// Stop the router as the test setup does (SIGTERM) and wait for it to exit.
    pub fn stop(&mut self) {
        drop(self.proc.take());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("router.log")).unwrap_or_default()
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        let resp = self
            .client
            .put(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "PUT {path}: {status} {body}");
        body
    }

    pub async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Register the echo handler as `name`.
    pub async fn register_echo(&self, name: &str, extra: Value) -> Value {
        let mut spec = json!({ "binary": echo_fn(), "timeout_secs": 10 });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        self.put(&format!("/_router/functions/{name}"), spec).await
    }

    /// `Invoke` as the SDK sends it; the function reference is put in the path as given, and
    /// a `?query` after it goes after `/invocations`.
    pub async fn invoke(&self, function: &str, payload: &Value) -> reqwest::Response {
        self.invoke_with(function, payload, "RequestResponse").await
    }

    pub async fn invoke_with(
        &self,
        function: &str,
        payload: &Value,
        invocation_type: &str,
    ) -> reqwest::Response {
        let (function, query) = function.split_once('?').unwrap_or((function, ""));
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        self.client
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations{query}",
                self.url
            ))
            .header("X-Amz-Invocation-Type", invocation_type)
            .header("Content-Type", "application/json")
            .body(payload.to_string())
            .send()
            .await
            .unwrap()
    }
}

/// moto, started on a free port with `MOTO_PORT` naming the router, as tests/setup does.
#[derive(Debug)]
pub struct Moto {
    pub url: String,
    dir: PathBuf,
    proc: Option<Proc>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.proc.take());
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The path of `moto_server`, or `None` with a loud message: the test command sets it.
pub fn moto_server() -> Option<PathBuf> {
    match std::env::var_os("PAIRSCALE_MOTO_SERVER") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            eprintln!(
                "\n*** SKIPPED: PAIRSCALE_MOTO_SERVER is not set, so this test cannot start moto.\n\
                 *** Source tests/setup/10-moto.sh (or set it to the venv's moto_server) to run it.\n"
            );
            None
        }
    }
}

impl Moto {
    pub async fn start(server: &Path, port: u16, router_port: u16) -> Self {
        let dir = scratch_dir("moto");
        let log = dir.join("moto.log");
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", router_port.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::create(log.with_extension("err")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            proc: Some(Proc { child }),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(resp) = client.get(format!("{}/moto-api/", moto.url)).send().await {
                if resp.status().is_success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "moto did not start; its log:\n{}",
                std::fs::read_to_string(log.with_extension("err")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        moto
    }
}

/// Poll `f` until it returns `Some`, or panic after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
