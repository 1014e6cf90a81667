//! Running the binary against a stack, and what every test asserts on a run.

use pairscale_stack::{assert_succeeded, stack, Options, Stack, PREFIX};
use serde_json::{json, Value};
use std::time::Duration;

pub const USER: &str = "tester";

/// What one run of the binary did.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}
impl Ran {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Run `pairscale args...` with the stack's settings in the environment.
pub async fn pairscale(s: Option<&Stack>, args: &[&str]) -> Ran {
    let mut cmd = command(s, args);
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("pairscale ended within 180 s")
        .unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `pairscale args...` with the stack's settings in the environment, not yet started.
pub fn command(s: Option<&Stack>, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pairscale"));
    cmd.args(args)
        .env("PAIRSCALE_USER", USER)
        .env("NO_COLOR", "1")
        .env_remove("PAIRSCALE_STATE_MACHINE_ARN")
        .env_remove("PAIRSCALE_TABLE")
        .env_remove("PAIRSCALE_ECS_CLUSTER")
        .env_remove("PAIRSCALE_DRAIN_FUNCTION")
        .env_remove("PAIRSCALE_POLICY_FUNCTION")
        .env("PAIRSCALE_SSM_PREFIX", PREFIX);
    if let Some(s) = s {
        cmd.env("PAIRSCALE_STATE_MACHINE_ARN", &s.state_machine)
            .env("PAIRSCALE_TABLE", &s.table)
            .env("PAIRSCALE_ECS_CLUSTER", &s.cluster)
            .env("PAIRSCALE_DRAIN_FUNCTION", s.function("drain"))
            .env("PAIRSCALE_POLICY_FUNCTION", s.function("policy"));
    }
    cmd
}

pub fn assert_code(r: &Ran, code: i32) {
    assert_eq!(r.code, code, "{r:#?}");
}

/// A stack whose fleet already runs two pairs.
pub async fn two_pairs(opts: Options) -> Stack {
    let s = stack(opts).await;
    let out = s
        .run("out", json!({"fleet": s.fleet, "target_pair_count": 2}))
        .await;
    assert_succeeded(&out);
    s
}
