//! What runs behind the fleet's instances, as `./sandbox` chose it: real FreeSWITCH where this
//! machine has built it (`PAIRSCALE_FREESWITCH_PREFIX`, which `tests/setup/40-freeswitch.sh`
//! exports), simulated (fssim) otherwise. The nodes asked what they are, and, on real ones,
//! SIP calls placed with sipp through Kamailio for the scale-in's drain to wait for (simulated
//! nodes carry the calls of their own model instead).

use anyhow::{anyhow, bail, Context as _, Result};
use pairscale_esl::{Client, ClientOptions, Password};
use pairscale_freeswitch::{Build, CallPlan, Calls, RtpSink};
use pairscale_stack::{Media, Stack};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The calls placed before the scale-in: spread by Kamailio over the four pairs, each held by
/// its caller long enough that the drain has live calls to wait for.
const CALLS: u32 = 12;
const CALLS_PER_SEC: u32 = 4;
const HOLD: Duration = Duration::from_secs(20);
/// How long the calls may take to come up on the nodes (a loaded machine places them slowly).
const CALLS_UP_WITHIN: Duration = Duration::from_secs(60);

/// The nodes this run's builds start.
#[derive(Debug)]
pub struct Nodes {
    pub media: Media,
    /// `real FreeSWITCH 1.10.12`, `simulated (fssim)`.
    pub name: String,
}

impl Nodes {
    /// Real FreeSWITCH where `PAIRSCALE_FREESWITCH_PREFIX` names a build (a whole one, with the
    /// Ansible that configures it, or this fails saying which setup step makes it), simulated
    /// where it is unset.
    pub fn from_env() -> Result<Nodes> {
        let prefix = pairscale_freeswitch::build::PREFIX_ENV;
        if std::env::var(prefix).unwrap_or_default().is_empty() {
            return Ok(Nodes {
                media: Media::Simulated,
                name: "simulated (fssim)".into(),
            });
        }
        let build = Build::from_env()
            .with_context(|| format!("{prefix} is set, for real FreeSWITCH nodes"))?;
        let version = build.version()?;
        Ok(Nodes {
            name: format!("real FreeSWITCH {version}"),
            media: Media::FreeSwitch(build),
        })
    }

    pub fn is_real(&self) -> bool {
        matches!(self.media, Media::FreeSwitch(_))
    }

    /// What the nodes are, and for simulated ones how to get real ones.
    pub fn describe(&self) -> String {
        match &self.media {
            Media::FreeSwitch(build) => format!(
                "media nodes: {} from {}: one per EC2 instance, on the instance's private \
                 (loopback) address, its configuration rendered by the project's FreeSWITCH \
                 role (ansible/roles/freeswitch). Each new pair proves itself with a real SIP \
                 canary call before it takes calls, and before the scale-in sipp places {CALLS} \
                 real SIP calls through Kamailio, which the drain waits for.",
                self.name,
                build.prefix.display()
            ),
            Media::Simulated => format!(
                "media nodes: {}: a pairscale-fssim on each EC2 instance's private address, \
                 answering the Event Socket with a model of calls arriving and ending (no SIP). \
                 For real FreeSWITCH: ./sandbox --freeswitch (it builds FreeSWITCH 1.10.12 \
                 first, about 6 minutes on two cores, once per machine), or ./sandbox after \
                 ./tests/run, which builds it.",
                self.name
            ),
        }
    }
}

/// An authenticated Event Socket session with the node at `ip`.
async fn esl(s: &Stack, ip: Ipv4Addr) -> Result<Client> {
    let endpoint = format!("{ip}:{}", s.esl_port);
    Client::connect(
        &endpoint,
        &Password::new(&s.esl_password),
        ClientOptions::default(),
    )
    .await
    .with_context(|| format!("connecting to the Event Socket at {endpoint}"))
}

/// The fleet's nodes by pair, from Kamailio's dispatcher set: (pair, address).
async fn nodes(s: &Stack) -> Result<Vec<(String, Ipv4Addr)>> {
    s.try_dispatcher_rows()
        .await?
        .into_iter()
        .map(|(pair, (uri, _))| {
            let addr: SocketAddr = uri
                .strip_prefix("sip:")
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| {
                    anyhow!("{pair}: the dispatcher destination {uri} is not sip:IP:PORT")
                })?;
            match addr.ip() {
                std::net::IpAddr::V4(ip) => Ok((pair, ip)),
                other => bail!("{pair}: {other} is not an IPv4 address"),
            }
        })
        .collect()
}

/// Each node asked over its Event Socket what it is (`version`), and the program its pid runs.
pub async fn show(s: &Stack) -> Result<()> {
    println!(
        "The nodes behind the instances: what each says over its Event Socket (`version`), and \
         the program its pid runs:"
    );
    for (pair, ip) in nodes(s).await? {
        let version = esl(s, ip).await?.api("version").await?;
        let pid_file = pairscale_local_build::nodes::pid_file_in(&s.state_dir, &s.fleet, &pair);
        let program = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|pid| {
                let pid = pid.trim().to_string();
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
                Some(format!("pid {pid}: {}", exe.display()))
            })
            .unwrap_or_else(|| format!("no running process in {}", pid_file.display()));
        println!("  {pair}  {ip:<15} {}  ({program})", version.trim());
    }
    Ok(())
}

/// Calls up on real nodes while the scale-in runs.
#[derive(Debug)]
pub struct LiveCalls {
    calls: Calls,
    _sink: RtpSink,
}

/// Places [`CALLS`] calls with sipp through Kamailio to the fleet's dispatcher set (Kamailio's
/// test configuration takes a numeric R-URI user as the set; the role's canary extension
/// answers them and sends a tone), and waits until every one is up on a node.
pub async fn place_calls(s: &Stack) -> Result<LiveCalls> {
    let port: u16 = std::env::var("KAMAILIO_SIP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("KAMAILIO_SIP_PORT is not set: tests/setup/30-kamailio.sh starts Kamailio and exports it"))?;
    let kamailio = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let sink = RtpSink::bind().await?;
    let plan = CallPlan::hold(kamailio, s.set_id.to_string(), CALLS, HOLD, sink.port())
        .rate(CALLS_PER_SEC);
    println!(
        "$ sipp {kamailio} -s {} -m {CALLS} -r {CALLS_PER_SEC} -d {}   ({CALLS} SIP calls through \
         Kamailio to the fleet's dispatcher set, each held {} s by its caller)",
        s.set_id,
        HOLD.as_millis(),
        HOLD.as_secs()
    );
    let mut calls = plan.start()?;
    let started = Instant::now();
    loop {
        let mut up = Vec::new();
        for (pair, ip) in nodes(s).await? {
            up.push((pair, esl(s, ip).await?.channel_count().await?));
        }
        let total: u64 = up.iter().map(|(_, n)| n).sum();
        let per_node = up
            .iter()
            .map(|(pair, n)| format!("{pair} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        if total >= u64::from(CALLS) {
            println!("{total} calls up: {per_node}");
            return Ok(LiveCalls { calls, _sink: sink });
        }
        if !calls.is_running() {
            let out = calls.finish().await?;
            bail!(
                "sipp ended with only {total} calls up ({per_node}): {} completed, {} failed; it said: {}",
                out.successful,
                out.failed,
                out.stderr.trim()
            );
        }
        if started.elapsed() > CALLS_UP_WITHIN {
            bail!(
                "only {total} of the {CALLS} calls were up within {CALLS_UP_WITHIN:?}: {per_node}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits for sipp to end its calls; every one must have gone through (none cut by the drain).
pub async fn finish(live: LiveCalls) -> Result<()> {
    let out = live.calls.finish().await?;
    println!(
        "sipp: {} calls completed, {} failed",
        out.successful, out.failed
    );
    if out.failed > 0 || out.successful < u64::from(CALLS) {
        bail!(
            "of the {CALLS} calls, {} completed and {} failed; sipp said: {}",
            out.successful,
            out.failed,
            out.stderr.trim()
        );
    }
    Ok(())
}

/// What the summary says of the calls.
pub fn calls_summary(nodes: &Nodes) -> String {
    if nodes.is_real() {
        format!("{CALLS} SIP calls through Kamailio, none dropped")
    } else {
        "simulated calls".into()
    }
}
