//! One FreeSWITCH process and its folders.
//!
//! It runs in the foreground without a console (`-nc -nf`), without NAT discovery (`-nonat`,
//! `-nonatmap`: nothing leaves loopback), with every folder it writes (`-conf`, `-log`, `-db`,
//! `-run`, `-temp`, `-storage`, `-cache`, `-certs`, `-recordings`) in its slot's folder. It is
//! ready once its Event Socket answers and its SIP profile says RUNNING.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pairscale_esl::{Client, ClientOptions, Password};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::render::{tail, HostVars};
use crate::slot::Slot;

/// The SIP profile the role writes (`freeswitch_sip_profile`'s default).
pub const PROFILE: &str = "pairscale";
/// A start takes about 2 s on two idle cores; this bounds one on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// A graceful stop takes 5 to 7 s (FreeSWITCH winds its modules down); then it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
const FOLDERS: [&str; 9] = [
    "conf",
    "log",
    "db",
    "run",
    "temp",
    "storage",
    "cache",
    "certs",
    "recordings",
];

/// A FreeSWITCH instance: stopped until started, killed when dropped.
#[derive(Debug)]
pub struct Instance {
    name: String,
    slot: Slot,
    dir: PathBuf,
    bin: PathBuf,
    password: String,
    child: Option<Child>,
}

impl Instance {
    /// Takes `slot`'s folder under `base`, ending whatever an earlier test process left there.
    pub(crate) fn prepare(
        name: String,
        slot: Slot,
        base: &Path,
        bin: PathBuf,
        password: String,
    ) -> Result<Instance> {
        let dir = base.join(format!("slot-{:02}", slot.index()));
        end_leftover(&dir);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(Error::io(format!("clearing {}", dir.display())))?;
        }
        for f in FOLDERS {
            let path = dir.join(f);
            std::fs::create_dir_all(&path)
                .map_err(Error::io(format!("creating {}", path.display())))?;
        }
        Ok(Instance {
            name,
            slot,
            dir,
            bin,
            password,
            child: None,
        })
    }

    /// What the role is told about this instance.
    pub(crate) fn host_vars(&self, canary_seconds: u32, modules: &[String]) -> HostVars {
        HostVars {
            name: self.name.clone(),
            conf_dir: self.dir.join("conf"),
            core_db_dir: self.dir.join("db"),
            ip: self.ip(),
            sip_port: self.slot.sip_port(),
            esl_port: self.slot.esl_port(),
            rtp_ports: self.slot.rtp_ports(),
            esl_password: self.password.clone(),
            canary_seconds,
            modules: modules.to_vec(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ip(&self) -> Ipv4Addr {
        self.slot.ip()
    }

    /// `host:port` of the Event Socket, as a drain node's `esl_endpoint`.
    pub fn esl_endpoint(&self) -> String {
        format!("{}:{}", self.ip(), self.slot.esl_port())
    }

    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip(), self.slot.sip_port()))
    }

    /// `sip:host:port`, as the dispatcher registers it.
    pub fn sip_uri(&self) -> String {
        format!("sip:{}", self.sip_addr())
    }

    /// This instance as the drain function's input names a node (`DrainNode`): pair
    /// `pair_id`, in dispatcher set `set_id`, created at `created_at` (ms since the epoch).
    pub fn drain_node(&self, pair_id: &str, set_id: u32, created_at: i64) -> serde_json::Value {
        serde_json::json!({
            "pair_id": pair_id,
            "esl_endpoint": self.esl_endpoint(),
            "sip_uri": self.sip_uri(),
            "set_id": set_id,
            "protected": false,
            "created_at": created_at,
        })
    }

    pub fn esl_password(&self) -> Password {
        Password::new(self.password.clone())
    }

    /// The instance's configuration tree, as the role rendered it.
    pub fn conf_dir(&self) -> PathBuf {
        self.dir.join("conf")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("log/freeswitch.log")
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        std::fs::read_to_string(self.log_file())
            .map(|t| tail(&t, lines))
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// True while the process runs (reaping it if it has exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// An authenticated Event Socket session from 127.0.0.1, which the ACL admits.
    pub async fn esl(&self) -> pairscale_esl::Result<Client> {
        let opts = ClientOptions {
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        };
        Client::connect(&self.esl_endpoint(), &self.esl_password(), opts).await
    }

    /// Starts the process and waits until it takes calls.
    pub async fn start(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log/console.log"))
            .map_err(Error::io("opening the console log"))?;
        let err = console
            .try_clone()
            .map_err(Error::io("opening the console log"))?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-nonat", "-nonatmap", "-nc", "-nf"]);
        for f in FOLDERS {
            cmd.arg(format!("-{f}")).arg(self.dir.join(f));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(err)
            .spawn()
            .map_err(Error::io(format!("starting {}", self.bin.display())))?;
        debug!(name = %self.name, pid = child.id(), "started");
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut last = String::from("not tried yet");
        while started.elapsed() < START_TIMEOUT {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(Error::Exited {
                        name: self.name.clone(),
                        status: status.to_string(),
                        log: self.log_tail(30),
                    });
                }
            }
            match self.profile_state().await {
                Ok(true) => return Ok(()),
                Ok(false) => last = format!("profile {PROFILE} not RUNNING yet"),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(POLL).await;
        }
        Err(Error::NotReady {
            name: self.name.clone(),
            after: START_TIMEOUT,
            last,
            log: self.log_tail(30),
        })
    }

    /// Whether `sofia status` lists the profile as RUNNING.
    async fn profile_state(&self) -> pairscale_esl::Result<bool> {
        let mut c = self.esl().await?;
        let text = c.api("sofia status").await?;
        Ok(text
            .lines()
            .any(|l| l.split_whitespace().next() == Some(PROFILE) && l.contains("RUNNING")))
    }

    /// Stops it as `systemctl stop` would (SIGTERM), killing it if it has not exited in time.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < STOP_TIMEOUT {
            if !self.is_running() {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        warn!(name = %self.name, "did not stop within {STOP_TIMEOUT:?}; killing it");
        self.kill();
        Ok(())
    }

    /// Ends it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A stop and a start: the pause flags, calls and counters are gone afterwards.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.start().await
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "FreeSWITCH {}: folders kept in {}",
                self.name,
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Ends a FreeSWITCH an earlier test process started in `dir` and could not stop (it was
/// killed). Only a process whose command line names `dir` is touched.
fn end_leftover(dir: &Path) {
    let Ok(pid) = std::fs::read_to_string(dir.join("run/freeswitch.pid")) else {
        return;
    };
    let pid = pid.trim();
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    if !String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy()) {
        return;
    }
    warn!(pid, dir = %dir.display(), "ending a FreeSWITCH left by an earlier test");
    let _ = Command::new("kill").args(["-KILL", pid]).status();
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
