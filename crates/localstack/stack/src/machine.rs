//! What a deployment in the local stack takes from this machine: the workspace's built
//! binaries, free loopback ports, and the environment that points a function or a build at
//! the emulator.

use crate::error::StackError;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// The account and region of every ARN in the local stack.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The folder the workspace's binaries are built into: beside a binary, one up from a test
/// (tests run from `deps/` below it).
pub fn bin_dir() -> Result<PathBuf, StackError> {
    let exe = std::env::current_exe().map_err(StackError::io("the running executable's path"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| StackError::Unexpected(format!("{} is in no folder", exe.display())))?;
    Ok(match dir.parent() {
        Some(up) if dir.file_name().is_some_and(|n| n == "deps") => up.to_path_buf(),
        _ => dir.to_path_buf(),
    })
}

/// The path of one of the workspace's binaries, which must be built.
pub fn binary(name: &str) -> Result<String, StackError> {
    let p = bin_dir()?.join(name);
    if !p.exists() {
        return Err(StackError::NotBuilt(p));
    }
    Ok(p.to_string_lossy().into_owned())
}

pub fn free_port() -> Result<u16, StackError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(StackError::io("finding a free loopback port"))
}

/// What a function or a build needs to reach the emulator: the router's endpoint, the region
/// and the emulator's fake credentials.
pub fn emulator_env() -> Result<Map<String, Value>, StackError> {
    let mut env = Map::new();
    env.insert(
        "AWS_ENDPOINT_URL".into(),
        json!(pairscale_testkit::control::url()?),
    );
    for (k, v) in [
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
    ] {
        env.insert(k.into(), json!(v));
    }
    Ok(env)
}

/// A setting the local stack's setup exports.
pub(crate) fn setting(var: &'static str, why: &'static str) -> Result<String, StackError> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(StackError::NotSet { var, why })
}
