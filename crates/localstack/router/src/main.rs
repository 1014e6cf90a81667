//! `pairscale-router`: the local Lambda and CodeBuild front for moto. Prints
//! `{"listen": "127.0.0.1:PORT"}` on stdout once it answers, and runs until SIGTERM or
//! SIGINT, when it stops every function process and running build.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use pairscale_router::{ConfigFile, Router, RouterOptions};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(
    name = "pairscale-router",
    about = "Local Lambda and CodeBuild front for moto"
)]
struct Args {
    /// Loopback address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// moto's base URL; every request the router does not serve goes there.
    #[arg(long, env = "MOTO_URL")]
    moto: String,
    /// A JSON file of functions and CodeBuild projects to register at start.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where build logs are kept; a new temporary directory when absent.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Region of the ARNs the router makes up when a request does not name one.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let state_dir = args.state_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "pairscale-router-{}",
            uuid::Uuid::new_v4().simple()
        ))
    });
    let router = Router::bind(RouterOptions {
        listen: args.listen,
        moto: args.moto,
        config,
        state_dir,
        region: args.region,
    })
    .await?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    println!(
        "{}",
        serde_json::json!({ "listen": router.local_addr().to_string() })
    );
    router
        .serve(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
        .await;
    Ok(())
}
