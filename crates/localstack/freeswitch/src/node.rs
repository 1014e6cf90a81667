//! One FreeSWITCH that outlives the process starting it: the media node the local CodeBuild
//! (`crates/localstack/local-build`) runs behind an EC2 instance of the sandbox, on the
//! instance's private (loopback) address and the fleet's ports, configured by the role as a
//! test instance is. The build that starts it exits; a later build, or the stack going away,
//! ends it by its pid.

use std::path::Path;

use crate::build::Build;
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::render;
use crate::slot::Place;

/// Renders the configuration of node `name` at `place` into `dir` with the role (ESL password
/// `password`, the canary extension holding a call for `canary_seconds`), starts it in a
/// process group of its own and waits until it takes calls. Its pid: [`stop`] ends it.
pub async fn start(
    build: &Build,
    name: &str,
    place: Place,
    dir: &Path,
    password: &str,
    canary_seconds: u32,
) -> Result<u32> {
    let instance = Instance::new(
        name.to_string(),
        place,
        dir.to_path_buf(),
        build.freeswitch(),
        password.to_string(),
    )?;
    let work = dir.join("render");
    std::fs::create_dir_all(&work).map_err(Error::io(format!("creating {}", work.display())))?;
    let hosts = [instance.host_vars(canary_seconds, &build.modules()?)];
    render::render(build, &work, &hosts).await?;
    let _ = std::fs::remove_dir_all(&work);
    instance.start_detached().await
}

/// Ends the node [`start`] started in `dir` with pid `pid` (as `systemctl stop` would, killing
/// it if it takes too long) and removes its folders; without a pid, only the folders.
pub async fn stop(pid: Option<u32>, dir: &Path) -> Result<()> {
    match pid {
        Some(pid) => crate::instance::stop_detached(pid, dir).await,
        None => match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", dir.display()))(e))
            }
            _ => Ok(()),
        },
    }
}
