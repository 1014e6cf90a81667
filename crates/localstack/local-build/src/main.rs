//! `pairscale-local-build`: the local CodeBuild projects' command (see
//! [`pairscale_local_build`]). Exits non-zero, with the reason on stderr, when the
//! build fails, as a real build would.

use pairscale_local_build::{run, LocalBuildEnv};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match LocalBuildEnv::from_lookup(|k| std::env::var(k).ok()) {
        Ok(env) => run(env).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("build failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
