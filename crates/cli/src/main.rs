//! `pairscale`: see [`pairscale_cli`].

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // Usage errors leave here with clap's message and exit code 2 (and, under --output json,
    // the same as a JSON document on stdout).
    let cli = match pairscale_cli::args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => pairscale_cli::usage_error(e, std::env::args().collect()),
    };
    std::process::ExitCode::from(pairscale_cli::run(cli).await)
}
