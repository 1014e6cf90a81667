//! The real builds: the project's buildspec run as CodeBuild runs it, in a fresh copy of the
//! source; after a Terraform build, a FreeSWITCH node (simulated or real, see `nodes`) on each
//! instance it left and none for a pair whose instance it destroyed.

use crate::env::LocalBuildEnv;
use crate::nodes;
use anyhow::{bail, Context as _, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The buildspec at `spec_path`, run in a fresh copy of `source` (as CodeBuild checks the
/// source out afresh for every build) with this build's environment.
pub(crate) async fn run_buildspec(
    env: &LocalBuildEnv,
    spec_path: &Path,
    source: &Path,
) -> Result<()> {
    let spec = crate::buildspec::Buildspec::parse(
        &std::fs::read_to_string(spec_path)
            .with_context(|| format!("reading {}", spec_path.display()))?,
    )?;
    let number = std::env::var("CODEBUILD_BUILD_NUMBER").unwrap_or_else(|_| "0".into());
    let src = env
        .state_dir
        .join("builds")
        .join(format!("{}-{}-{number}", env.fleet, env.kind));
    let _ = std::fs::remove_dir_all(&src);
    copy_source(source, &src)?;
    // The build's own environment wins over the buildspec's variables, as in CodeBuild.
    let build_env: BTreeMap<String, String> = std::env::vars().collect();
    let dir = src.clone();
    let ran = tokio::task::spawn_blocking(move || spec.run(&dir, &build_env))
        .await
        .context("the buildspec's runner")?;
    let _ = std::fs::remove_dir_all(&src);
    ran
}

/// The buildspec; then a FreeSWITCH node on each instance Terraform left running, and none for
/// a pair whose instance it stopped (the warm pool) or destroyed.
pub(crate) async fn terraform(
    env: &LocalBuildEnv,
    ec2: &aws_sdk_ec2::Client,
    spec_path: &Path,
    source: &Path,
) -> Result<()> {
    let warm = env.warm_pairs()?;
    let wanted: BTreeSet<String> = env.wanted_pairs()?.difference(&warm).cloned().collect();
    run_buildspec(env, spec_path, source).await?;

    std::fs::create_dir_all(env.state_dir.join("nodes"))?;
    // One look at the fleet's instances: the stopped ones are the pool's, the rest run.
    let (stopped, running): (BTreeMap<_, _>, BTreeMap<_, _>) =
        nodes::all_instances(ec2, &env.fleet)
            .await?
            .into_iter()
            .partition(|(_, i)| i.is_stopped());
    let stopped: BTreeSet<String> = stopped.into_keys().collect();
    if stopped != warm {
        bail!("terraform apply left the pairs {stopped:?} stopped; the build asked for {warm:?}");
    }
    let left: BTreeSet<String> = running.keys().cloned().collect();
    if left != wanted {
        bail!("terraform apply left the pairs {left:?} running; the build asked for {wanted:?}");
    }
    let standing: Vec<(String, String)> =
        running.into_iter().map(|(pair, i)| (pair, i.ip)).collect();
    nodes::ensure_all(env, &standing).await?;
    let gone: Vec<String> = nodes::pairs(env)?.difference(&left).cloned().collect();
    nodes::stop_all(env, &gone).await?;
    for pair in gone {
        println!("{pair}: instance destroyed, its FreeSWITCH stopped");
    }
    Ok(())
}

/// Copy the source tree, leaving out what a checkout would not have: Terraform's working
/// folders, state files and lock files written by local runs.
pub fn copy_source(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let n = name.to_string_lossy();
        if n == ".terraform" || n.contains(".tfstate") || n == ".terraform.lock.hcl" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_source(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}
