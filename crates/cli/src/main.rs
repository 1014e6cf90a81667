//! `pairscale`: see [`pairscale_cli`].

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // Usage errors leave here with clap's message and exit code 2.
    let cli = pairscale_cli::args::Cli::parse();
    std::process::ExitCode::from(pairscale_cli::run(cli).await)
}
