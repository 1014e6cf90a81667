//! The fleet's instances, and the FreeSWITCH nodes behind them, one per instance on the
//! instance's own (loopback) address: a simulated one (`pairscale-fssim`), or, where the
//! project names a FreeSWITCH build ([`vars::FREESWITCH_PREFIX`]), real FreeSWITCH configured
//! by the project's role, with its folders beside its pid file. Either outlives the build that
//! starts it, as an instance outlives the Terraform run that made it; its pid file in the
//! stack's state folder lets a later build, or the stack going away, stop it.

use crate::env::{vars, LocalBuildEnv};
use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_ec2::types::Filter;
use pairscale_aws::tags;
use pairscale_freeswitch::{node, Place};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A real node's RTP ports: 100 (50 calls), below the ephemeral range. Every node has an
/// address of its own, so they share the numbers.
const RTP_PORTS: (u16, u16) = (30_000, 30_099);
/// How long the canary extension of a real node holds a call before hanging up: longer than
/// the sandbox's calls, so that only their caller ends them, yet a call left up still ends.
const CANARY_SECONDS: u32 = 120;

/// The pairs this fleet has a node's pid file for.
pub(crate) fn pairs(env: &LocalBuildEnv) -> Result<BTreeSet<String>> {
    let prefix = format!("{}-", env.fleet);
    let mut pairs = BTreeSet::new();
    let dir = env.state_dir.join("nodes");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(pair) = name
            .strip_prefix(&prefix)
            .and_then(|n| n.strip_suffix(".pid"))
        {
            if pairscale_core::PairId::parse(pair).is_ok() {
                pairs.insert(pair.to_string());
            }
        }
    }
    Ok(pairs)
}

/// The fleet's live FreeSWITCH instances by pair id: (instance id, private IP).
pub async fn instances(
    ec2: &aws_sdk_ec2::Client,
    fleet: &str,
) -> Result<BTreeMap<String, (String, String)>> {
    Ok(instances_in(ec2, fleet, &["pending", "running"])
        .await?
        .into_iter()
        .map(|(pair, i)| (pair, (i.id, i.ip)))
        .collect())
}

/// One of the fleet's instances that has not been terminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub ip: String,
    /// `pending`, `running`, `stopping` or `stopped`.
    pub state: String,
}

impl Instance {
    /// Stopped or on its way there: a warm pair's node.
    pub fn is_stopped(&self) -> bool {
        matches!(self.state.as_str(), "stopping" | "stopped")
    }
}

/// Every instance of the fleet not terminated, by pair id: running ones and the warm pool's
/// stopped ones.
pub async fn all_instances(
    ec2: &aws_sdk_ec2::Client,
    fleet: &str,
) -> Result<BTreeMap<String, Instance>> {
    instances_in(ec2, fleet, &["pending", "running", "stopping", "stopped"]).await
}

async fn instances_in(
    ec2: &aws_sdk_ec2::Client,
    fleet: &str,
    states: &[&str],
) -> Result<BTreeMap<String, Instance>> {
    let out = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", tags::FLEET))
                .values(fleet)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(states.iter().map(|s| s.to_string()).collect()))
                .build(),
        )
        .send()
        .await
        .context("ec2:DescribeInstances")?;
    let mut found = BTreeMap::new();
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        let pair = i
            .tags()
            .iter()
            .find(|t| t.key() == Some(tags::PAIR_ID))
            .and_then(|t| t.value());
        let state = i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default();
        if let (Some(pair), Some(id), Some(ip)) = (pair, i.instance_id(), i.private_ip_address()) {
            found.insert(
                pair.to_string(),
                Instance {
                    id: id.to_string(),
                    ip: ip.to_string(),
                    state,
                },
            );
        }
    }
    Ok(found)
}

/// Where the pid file of `fleet`'s node of `pair` is, in the stack's state folder `state_dir`.
pub fn pid_file_in(state_dir: &Path, fleet: &str, pair: &str) -> PathBuf {
    state_dir.join("nodes").join(format!("{fleet}-{pair}.pid"))
}

fn pid_file(env: &LocalBuildEnv, pair: &str) -> PathBuf {
    pid_file_in(&env.state_dir, &env.fleet, pair)
}

/// A real node's folders (configuration, logs, database, run files).
fn node_dir(env: &LocalBuildEnv, pair: &str) -> PathBuf {
    env.state_dir
        .join("nodes")
        .join(format!("{}-{pair}", env.fleet))
}

/// The pid in `path`, while that process runs (a zombie does not: a node's starter is gone,
/// and whoever inherited the node may not reap it).
fn running_pid(path: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (!cmdline.is_empty()).then_some(pid)
}

/// What runs behind the instances, for the build's log.
pub(crate) fn media(env: &LocalBuildEnv) -> String {
    match &env.freeswitch {
        Some(build) => format!("real FreeSWITCH from {}", build.prefix.display()),
        None => "simulated (pairscale-fssim)".into(),
    }
}

/// [`ensure`] for every `(pair, ip)` at once (a real node's start is mostly the role's run
/// and FreeSWITCH loading its modules: side by side, a scale-out waits for the slowest only),
/// saying what each node is.
pub(crate) async fn ensure_all(env: &LocalBuildEnv, nodes: &[(String, String)]) -> Result<()> {
    let said =
        futures::future::try_join_all(nodes.iter().map(|(pair, ip)| ensure(env, pair, ip))).await?;
    for ((pair, ip), what) in nodes.iter().zip(said) {
        println!("{pair}: instance at {ip}, {what}");
    }
    Ok(())
}

/// Start the pair's node on `ip` unless it runs already, and wait until it answers; what it
/// is. It lives in its own process group, so that the build ending (or being stopped) leaves
/// it running, as an instance outlives the Terraform run that made it.
pub async fn ensure(env: &LocalBuildEnv, pair: &str, ip: &str) -> Result<String> {
    let addr: Ipv4Addr = ip
        .parse()
        .with_context(|| format!("instance address {ip}"))?;
    if !addr.is_loopback() {
        bail!("instance address {ip} is not in 127.0.0.0/8: the local subnet must be loopback");
    }
    std::fs::create_dir_all(env.state_dir.join("nodes"))?;
    match &env.freeswitch {
        Some(build) => ensure_freeswitch(env, build, pair, addr).await,
        None => ensure_simulated(env, pair, addr).await,
    }
}

/// Real FreeSWITCH, its configuration rendered by the role: the Event Socket on the fleet's
/// port with the fleet's password, SIP on the fleet's port, the canary extension installed.
async fn ensure_freeswitch(
    env: &LocalBuildEnv,
    build: &pairscale_freeswitch::Build,
    pair: &str,
    ip: Ipv4Addr,
) -> Result<String> {
    let pid_path = pid_file(env, pair);
    if let Some(pid) = running_pid(&pid_path) {
        return Ok(format!("FreeSWITCH running (pid {pid})"));
    }
    let password = env
        .esl_password
        .as_deref()
        .ok_or_else(|| anyhow!("{} is not set", vars::ESL_PASSWORD))?;
    let place = Place {
        ip,
        sip_port: env.sip_port,
        esl_port: env.esl_port,
        rtp_ports: RTP_PORTS,
    };
    let pid = node::start(
        build,
        pair,
        place,
        &node_dir(env, pair),
        password,
        CANARY_SECONDS,
    )
    .await
    .with_context(|| format!("starting FreeSWITCH for {pair} at {ip}"))?;
    std::fs::write(&pid_path, pid.to_string())?;
    Ok(format!(
        "FreeSWITCH ready (pid {pid}; Event Socket {ip}:{}, SIP {ip}:{})",
        env.esl_port, env.sip_port
    ))
}

async fn ensure_simulated(env: &LocalBuildEnv, pair: &str, addr: Ipv4Addr) -> Result<String> {
    let pid_path = pid_file(env, pair);
    if running_pid(&pid_path).is_none() {
        let log = std::fs::File::create(pid_path.with_extension("log"))?;
        let mut cmd = std::process::Command::new(&env.fssim_bin);
        cmd.arg("--nodes")
            .arg("1")
            .arg("--bind-ip")
            .arg(addr.to_string())
            .arg("--base-port")
            .arg(env.esl_port.to_string())
            .arg("--heartbeat-secs")
            .arg("0")
            .arg("--calls-per-sec")
            .arg(env.calls_per_sec.to_string())
            .arg("--median-call-secs")
            .arg(env.median_call_secs.to_string())
            .arg("--bridged-fraction")
            .arg("0.3")
            .arg("--initial-calls")
            .arg(env.initial_calls.to_string())
            .env_remove("FSSIM_PASSWORD")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Given to the node through its environment, never on its command line.
        if let Some(password) = &env.esl_password {
            cmd.env("FSSIM_PASSWORD", password);
        }
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", env.fssim_bin.display()))?;
        std::fs::write(&pid_path, child.id().to_string())?;
    }
    let sock = SocketAddr::from((addr, env.esl_port));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(sock).await.is_ok() {
            return Ok("simulated FreeSWITCH listening".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the simulated FreeSWITCH of {pair} did not listen on {sock} within 5 s")
}

/// [`stop`] for every pair at once (a real FreeSWITCH takes a few seconds to wind down).
pub(crate) async fn stop_all(env: &LocalBuildEnv, pairs: &[String]) -> Result<()> {
    futures::future::try_join_all(pairs.iter().map(|pair| stop(env, pair))).await?;
    Ok(())
}

/// Stop the pair's node, if it runs: a real one as `systemctl stop` would, its folders removed.
pub async fn stop(env: &LocalBuildEnv, pair: &str) -> Result<()> {
    let pid_path = pid_file(env, pair);
    let dir = node_dir(env, pair);
    if dir.exists() {
        node::stop(running_pid(&pid_path), &dir)
            .await
            .with_context(|| format!("stopping the FreeSWITCH of {pair}"))?;
    } else if let Some(pid) = running_pid(&pid_path) {
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()?;
        if !status.success() {
            bail!("could not stop the simulated FreeSWITCH of {pair} (pid {pid})");
        }
    }
    let _ = std::fs::remove_file(pid_path);
    Ok(())
}
