//! One FreeSWITCH process and its folders.
//!
//! It runs in the foreground without a console (`-nc -nf`), without NAT discovery (`-nonat`,
//! `-nonatmap`: nothing leaves loopback), with every folder it writes (`-conf`, `-log`, `-db`,
//! `-run`, `-temp`, `-storage`, `-cache`, `-certs`, `-recordings`) in its own folder. It is
//! ready once its Event Socket answers, `status` says FreeSWITCH is ready and its SIP profile
//! says RUNNING.
//!
//! A test's instance lives while the test holds it. One started with
//! [`Instance::start_detached`] outlives the process that started it, as the local CodeBuild's
//! media node outlives the build that made its EC2 instance: it runs in its own process group,
//! keeps its folders, and [`stop_detached`] ends it later, from its pid, and removes them.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pairscale_esl::{Client, ClientOptions, Password};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::render::{tail, HostVars};
use crate::slot::{Place, Slot};

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

/// A FreeSWITCH instance: stopped until started, killed when dropped (unless detached).
#[derive(Debug)]
pub struct Instance {
    name: String,
    place: Place,
    /// A test instance's slot, held as long as the instance.
    _slot: Option<Slot>,
    dir: PathBuf,
    bin: PathBuf,
    password: String,
    child: Option<Child>,
    /// Started with [`Instance::start_detached`]: its process and folders are not this value's.
    detached: bool,
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
        Instance::with(name, slot.place(), Some(slot), dir, bin, password)
    }

    /// An instance of the FreeSWITCH `bin` at `place`, with its folders in `dir`, made afresh:
    /// a FreeSWITCH an earlier process left running there is ended first.
    pub fn new(
        name: String,
        place: Place,
        dir: PathBuf,
        bin: PathBuf,
        password: String,
    ) -> Result<Instance> {
        Instance::with(name, place, None, dir, bin, password)
    }

    fn with(
        name: String,
        place: Place,
        slot: Option<Slot>,
        dir: PathBuf,
        bin: PathBuf,
        password: String,
    ) -> Result<Instance> {
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
            place,
            _slot: slot,
            dir,
            bin,
            password,
            child: None,
            detached: false,
        })
    }

    /// What the role is told about this instance (for [`crate::render::render`]).
    pub fn host_vars(&self, canary_seconds: u32, modules: &[String]) -> HostVars {
        HostVars {
            name: self.name.clone(),
            conf_dir: self.dir.join("conf"),
            core_db_dir: self.dir.join("db"),
            ip: self.ip(),
            sip_port: self.place.sip_port,
            esl_port: self.place.esl_port,
            rtp_ports: self.place.rtp_ports,
            esl_password: self.password.clone(),
            canary_seconds,
            modules: modules.to_vec(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ip(&self) -> Ipv4Addr {
        self.place.ip
    }

    /// `host:port` of the Event Socket, as a drain node's `esl_endpoint`.
    pub fn esl_endpoint(&self) -> String {
        format!("{}:{}", self.ip(), self.place.esl_port)
    }

    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip(), self.place.sip_port))
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
        self.spawn(false)?;
        self.wait_ready().await
    }

    /// Starts the process in a process group of its own, waits until it takes calls, and lets
    /// it go: it outlives this value and this process, keeps its folders, and is ended by
    /// [`stop_detached`] with the pid this returns. One that is not ready in time is killed.
    pub async fn start_detached(mut self) -> Result<u32> {
        self.spawn(true)?;
        self.wait_ready().await?;
        let pid = self.child.take().map(|c| c.id());
        self.detached = true;
        pid.ok_or_else(|| Error::NotRunning {
            name: self.name.clone(),
        })
    }

    /// Starts the process; `own_group`: in a process group of its own, so that a signal to
    /// the starter's group (Ctrl-C, a stopped build) does not reach it.
    fn spawn(&mut self, own_group: bool) -> Result<()> {
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
        if own_group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(err)
            .spawn()
            .map_err(Error::io(format!("starting {}", self.bin.display())))?;
        debug!(name = %self.name, pid = child.id(), "started");
        self.child = Some(child);
        Ok(())
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
            match self.readiness().await {
                Ok(None) => return Ok(()),
                Ok(Some(not_yet)) => last = not_yet,
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

    /// `None` once `status` says FreeSWITCH is ready and `sofia status` lists the profile as
    /// RUNNING; otherwise what is not yet.
    async fn readiness(&self) -> pairscale_esl::Result<Option<String>> {
        let mut c = self.esl().await?;
        if !c.status().await?.ready {
            return Ok(Some("status does not say ready yet".into()));
        }
        let text = c.api("sofia status").await?;
        let running = text
            .lines()
            .any(|l| l.split_whitespace().next() == Some(PROFILE) && l.contains("RUNNING"));
        Ok((!running).then(|| format!("profile {PROFILE} not RUNNING yet")))
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
        if self.detached {
            return;
        }
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

/// Ends the FreeSWITCH [`Instance::start_detached`] started in `dir` with pid `pid` (SIGTERM,
/// as `systemctl stop` would; SIGKILL if it has not exited in time), then removes `dir`. A pid
/// whose process does not run from `dir` (it has exited, and the pid may be another's now) is
/// left alone.
pub async fn stop_detached(pid: u32, dir: &Path) -> Result<()> {
    if runs_from(pid, dir) {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let started = Instant::now();
        while runs_from(pid, dir) && started.elapsed() < STOP_TIMEOUT {
            tokio::time::sleep(POLL).await;
        }
        if runs_from(pid, dir) {
            warn!(pid, dir = %dir.display(), "did not stop within {STOP_TIMEOUT:?}; killing it");
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("removing {}", dir.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Whether `pid` is a live process (not a zombie: a detached instance's parent may be gone,
/// and whoever inherited it may not reap it) whose command line names `dir`.
fn runs_from(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // A zombie's command line is empty.
    String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy())
}

/// Ends a FreeSWITCH an earlier process started in `dir` and did not stop (a test that was
/// killed; a node whose build was interrupted). Only a process whose command line names `dir`
/// is touched.
fn end_leftover(dir: &Path) {
    let Ok(pid) = std::fs::read_to_string(dir.join("run/freeswitch.pid")) else {
        return;
    };
    let Ok(pid) = pid.trim().parse::<u32>() else {
        return;
    };
    if !runs_from(pid, dir) {
        return;
    }
    warn!(pid, dir = %dir.display(), "ending a FreeSWITCH left by an earlier process");
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    for _ in 0..100 {
        if !runs_from(pid, dir) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
