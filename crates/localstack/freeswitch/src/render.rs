//! Every instance's configuration, written by the project's FreeSWITCH role: one
//! `ansible-playbook -c local` run of `tests/fixtures/ansible/freeswitch.yml` over an inventory
//! with one host per instance (its variables in `host_vars/<name>.json`). The playbook seeds
//! each tree from the build's default configuration and runs the role's configure tasks with
//! `freeswitch_manage_host` off, so nothing outside the trees changes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::build::Build;
use crate::error::{Error, Result};

/// A whole role run for a few hosts takes a few seconds; this bounds a stuck one.
const RENDER_TIMEOUT: Duration = Duration::from_secs(180);

/// Where the drain connects from: loopback's own address.
pub const ORCHESTRATOR_CIDR: &str = "127.0.0.1/32";
/// Where a pair's ESL client would connect from (no test runs one).
pub const ESL_CLIENT_CIDR: &str = "127.0.0.2/32";
/// An address no ACL admits: a test connecting from it must be refused.
pub const OUTSIDER_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 254);
/// Where Kamailio and sipp send SIP from.
pub const KAMAILIO_CIDR: &str = "127.0.0.1/32";
/// The canary extension answers `pairscale-canary` and, for tests, any number: Kamailio's test
/// configuration routes a numeric R-URI user to that dispatcher set, and the number reaches
/// FreeSWITCH unchanged.
pub const CANARY_DESTINATIONS: &str = "^(pairscale-canary|[0-9]+)$";

/// What the role is told about one instance.
#[derive(Debug, Clone)]
pub struct HostVars {
    pub name: String,
    pub conf_dir: PathBuf,
    pub core_db_dir: PathBuf,
    pub ip: std::net::Ipv4Addr,
    pub sip_port: u16,
    pub esl_port: u16,
    pub rtp_ports: (u16, u16),
    pub esl_password: String,
    pub canary_seconds: u32,
    pub modules: Vec<String>,
}

impl HostVars {
    fn to_json(&self) -> Value {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        json!({
            "freeswitch_conf_dir": path(&self.conf_dir),
            "freeswitch_core_db_dir": path(&self.core_db_dir),
            "freeswitch_esl_listen_ip": self.ip.to_string(),
            "freeswitch_esl_port": self.esl_port,
            "freeswitch_esl_password": self.esl_password,
            "freeswitch_esl_orchestrator_cidrs": [ORCHESTRATOR_CIDR],
            "freeswitch_esl_client_cidrs": [ESL_CLIENT_CIDR],
            "freeswitch_kamailio_cidrs": [KAMAILIO_CIDR],
            "freeswitch_sip_ip": self.ip.to_string(),
            "freeswitch_sip_port": self.sip_port,
            "freeswitch_rtp_start_port": self.rtp_ports.0,
            "freeswitch_rtp_end_port": self.rtp_ports.1,
            "freeswitch_loglevel": "info",
            "freeswitch_modules": self.modules,
            "freeswitch_canary_destination_regex": CANARY_DESTINATIONS,
            "freeswitch_canary_seconds": self.canary_seconds,
        })
    }
}

/// Runs the role for `hosts`, with its inventory, Ansible home and temporary files in `work`.
/// Each host's configuration folder must exist (the seed copies into it).
pub async fn render(build: &Build, work: &Path, hosts: &[HostVars]) -> Result<()> {
    let inventory = work.join("inventory");
    let host_vars = inventory.join("host_vars");
    std::fs::create_dir_all(&host_vars).map_err(Error::io("creating the inventory"))?;
    let mut names = String::new();
    for h in hosts {
        names.push_str(&h.name);
        names.push('\n');
        let file = host_vars.join(format!("{}.json", h.name));
        std::fs::write(&file, h.to_json().to_string())
            .map_err(Error::io(format!("writing {}", file.display())))?;
    }
    let hosts_file = inventory.join("hosts.ini");
    std::fs::write(&hosts_file, names).map_err(Error::io("writing the inventory"))?;

    let playbook = build.repo.join("tests/fixtures/ansible/freeswitch.yml");
    let mut cmd = tokio::process::Command::new(&build.ansible_playbook);
    cmd.arg("-i")
        .arg(&hosts_file)
        .arg("--forks")
        .arg(hosts.len().max(1).to_string())
        .arg(&playbook)
        .env("ANSIBLE_CONFIG", build.repo.join("ansible/ansible.cfg"))
        .env("ANSIBLE_HOME", work.join("ansible-home"))
        .env("ANSIBLE_LOCAL_TEMP", work.join("ansible-tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
        .env(crate::build::PREFIX_ENV, &build.prefix)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let run = tokio::time::timeout(RENDER_TIMEOUT, cmd.output()).await;
    let out = match run {
        Ok(out) => out.map_err(Error::io(format!(
            "running {}",
            build.ansible_playbook.display()
        )))?,
        Err(_) => {
            return Err(Error::Render {
                status: format!("still running after {RENDER_TIMEOUT:?}"),
                output: String::new(),
            })
        }
    };
    if out.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Err(Error::Render {
        status: out.status.to_string(),
        output: tail(&text, 60),
    })
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
