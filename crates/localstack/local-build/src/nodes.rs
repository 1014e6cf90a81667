//! The fleet's instances, and the simulated FreeSWITCH nodes behind them: a `pairscale-fssim`
//! per instance on the instance's own (loopback) address, its pid file in the stack's state
//! folder so that a later build, or the stack going away, can stop it.

use crate::env::{vars, LocalBuildEnv};
use anyhow::{bail, Context as _, Result};
use aws_sdk_ec2::types::Filter;
use pairscale_aws::tags;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
pub(crate) async fn instances(
    ec2: &aws_sdk_ec2::Client,
    fleet: &str,
) -> Result<BTreeMap<String, (String, String)>> {
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
                .values("pending")
                .values("running")
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
        if let (Some(pair), Some(id), Some(ip)) = (pair, i.instance_id(), i.private_ip_address()) {
            found.insert(pair.to_string(), (id.to_string(), ip.to_string()));
        }
    }
    Ok(found)
}

fn pid_file(env: &LocalBuildEnv, pair: &str) -> PathBuf {
    env.state_dir
        .join("nodes")
        .join(format!("{}-{pair}.pid", env.fleet))
}

fn running_pid(path: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// Start the pair's simulated FreeSWITCH on `ip:esl_port` unless it runs already. It lives in
/// its own process group, so that the build ending (or being stopped) leaves it running, as
/// an instance outlives the Terraform run that made it.
pub(crate) async fn ensure(env: &LocalBuildEnv, pair: &str, ip: &str) -> Result<()> {
    let addr: Ipv4Addr = ip
        .parse()
        .with_context(|| format!("instance address {ip}"))?;
    if !addr.is_loopback() {
        bail!("instance address {ip} is not in 127.0.0.0/8: the local subnet must be loopback");
    }
    let pid_path = pid_file(env, pair);
    if running_pid(&pid_path).is_none() {
        let log = std::fs::File::create(pid_path.with_extension("log"))?;
        let mut cmd = std::process::Command::new(&env.fssim_bin);
        cmd.arg("--nodes")
            .arg("1")
            .arg("--bind-ip")
            .arg(ip)
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
        if let Some(password) = std::env::var_os(vars::ESL_PASSWORD).filter(|p| !p.is_empty()) {
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
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the simulated FreeSWITCH of {pair} did not listen on {sock} within 5 s")
}

pub(crate) fn stop(env: &LocalBuildEnv, pair: &str) -> Result<()> {
    let pid_path = pid_file(env, pair);
    if let Some(pid) = running_pid(&pid_path) {
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
