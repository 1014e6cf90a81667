//! `pairscale-fssim`: starts N simulated FreeSWITCH nodes on loopback, prints one JSON line
//! per node (`{"node":0,"addr":"127.0.0.1:8021","port":8021}`), and runs until killed.
//! `--bind-ip` puts the nodes on another loopback address, one per simulated host. Stopped
//! (SIGTERM or Ctrl-C), it ends the calls still up and prints each node's final call tally,
//! `{"node":0,"call_tally":{"admitted":..,"natural":..,..,"shutdown":..,"up":0}}`, so that a
//! node that is gone can still say how its calls ended.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use pairscale_fssim::{Acl, CallSpec, DurationDist, Fleet, NodeConfig, Traffic};

#[derive(Debug, Parser)]
#[command(
    name = "pairscale-fssim",
    about = "Simulated FreeSWITCH event sockets on loopback"
)]
struct Args {
    /// How many nodes to start.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// First port; nodes take consecutive ports from here. 0 = random free ports.
    #[arg(long, default_value_t = 0)]
    base_port: u16,
    /// The loopback address the nodes listen on (any of 127.0.0.0/8), so that several
    /// simulated hosts can each have their own address and the same port.
    #[arg(long, default_value_t = Ipv4Addr::LOCALHOST)]
    bind_ip: Ipv4Addr,
    /// Event socket password of every node.
    #[arg(
        long,
        env = "FSSIM_PASSWORD",
        default_value = "ClueCon",
        hide_env_values = true
    )]
    password: String,
    /// Seconds between HEARTBEAT events; 0 disables them.
    #[arg(long, default_value_t = 20)]
    heartbeat_secs: u64,
    /// Random call arrivals per second per node; 0 = none.
    #[arg(long, default_value_t = 0.0)]
    calls_per_sec: f64,
    /// Median call length (log-normal), seconds.
    #[arg(long, default_value_t = 120.0)]
    median_call_secs: f64,
    /// Log-normal shape of call lengths.
    #[arg(long, default_value_t = 0.8)]
    call_sigma: f64,
    /// Share of random calls bridged to a second leg.
    #[arg(long, default_value_t = 0.0)]
    bridged_fraction: f64,
    /// Share of random calls that are outbound.
    #[arg(long, default_value_t = 0.0)]
    outbound_fraction: f64,
    /// Unbridged inbound calls each node starts with (they last until hung up).
    #[arg(long, default_value_t = 0)]
    initial_calls: usize,
    /// Bridged calls (2 channels each) each node starts with.
    #[arg(long, default_value_t = 0)]
    initial_bridged: usize,
    #[arg(long, default_value_t = 20_000)]
    max_sessions: u64,
    /// Refuse every event socket client as FreeSWITCH's ACL would.
    #[arg(long)]
    deny_acl: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.nodes == 0 {
        anyhow::bail!("--nodes must be at least 1");
    }
    if !args.bind_ip.is_loopback() {
        anyhow::bail!(
            "--bind-ip {} is not a loopback address (127.0.0.0/8)",
            args.bind_ip
        );
    }
    let traffic = (args.calls_per_sec > 0.0).then(|| Traffic {
        calls_per_sec: args.calls_per_sec,
        duration: DurationDist::LogNormal {
            median: Duration::from_secs_f64(args.median_call_secs.max(0.001)),
            sigma: args.call_sigma,
        },
        outbound_fraction: args.outbound_fraction,
        bridged_fraction: args.bridged_fraction,
    });
    let base = args.base_port;
    let fleet = Fleet::spawn(args.nodes, |i| {
        let port = if base == 0 {
            0
        } else {
            base.saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
        };
        NodeConfig {
            bind: SocketAddr::from((args.bind_ip, port)),
            password: args.password.clone(),
            acl: if args.deny_acl { Acl::Deny } else { Acl::Allow },
            heartbeat: (args.heartbeat_secs > 0).then(|| Duration::from_secs(args.heartbeat_secs)),
            traffic: traffic.clone(),
            max_sessions: args.max_sessions,
            seed: args.seed.wrapping_add(i as u64),
            ..NodeConfig::default()
        }
    })
    .await
    .context("starting nodes")?;
    for (i, node) in fleet.nodes().iter().enumerate() {
        node.add_calls(args.initial_calls, CallSpec::inbound());
        node.add_calls(args.initial_bridged, CallSpec::inbound().bridged());
        let addr = node.addr();
        println!(
            "{}",
            serde_json::json!({ "node": i, "addr": addr.to_string(), "port": addr.port() })
        );
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    for (i, node) in fleet.nodes().iter().enumerate() {
        let tally = node.shut_down_calls();
        println!(r#"{{"node":{i},"call_tally":{}}}"#, tally.json(0));
    }
    fleet.shutdown().await;
    Ok(())
}
