//! The router's side of a deployment, whichever way it was made: each of the fleet's functions
//! run from the workspace's handler binary, each CodeBuild project's builds run on this
//! machine by `pairscale-local-build`.

use crate::error::StackError;
use crate::fleet::{Media, Options};
use crate::machine::binary;
use pairscale_local_build::vars;
use pairscale_testkit::control;
use serde_json::{json, Map, Value};
use std::path::Path;

/// The fleet's five functions, each its own handler binary (`pairscale-lock`, ...): the
/// state machine's four, and the policy that starts it.
pub const FUNCTIONS: [&str; 5] = ["lock", "state", "drain", "build", "policy"];

/// Have the router run the function `name` from the handler binary of `function` (one of
/// [`FUNCTIONS`]) with `env`.
pub async fn put_function(
    name: &str,
    function: &str,
    env: Map<String, Value>,
    timeout_secs: i32,
) -> Result<(), StackError> {
    let spec = json!({
        "binary": binary(&format!("pairscale-{function}"))?,
        "env": env,
        "timeout_secs": timeout_secs,
        "max_concurrency": 2,
    });
    control::request(
        reqwest::Method::PUT,
        &format!("functions/{name}"),
        Some(spec),
    )
    .await?;
    Ok(())
}

/// Where on this machine a fleet's local builds work, and what the nodes they start are (and
/// how simulated ones carry calls).
#[derive(Debug)]
pub struct BuildSite<'a> {
    pub subnet_id: &'a str,
    pub cluster: &'a str,
    /// The stack's state folder: the builds run in it and keep the nodes' pid files there.
    pub state_dir: &'a Path,
    pub esl_port: u16,
    pub opts: &'a Options,
}

impl BuildSite<'_> {
    /// The variables that tell `pairscale-local-build` so, for a project of `kind`
    /// (`terraform` or `ansible`). The nodes' event-socket password is the deployment's to
    /// give ([`vars::ESL_PASSWORD`]).
    pub fn env(&self, kind: &str) -> Result<Map<String, Value>, StackError> {
        let opts = self.opts;
        let mut settings: Vec<(&str, String)> = vec![
            (vars::KIND, kind.to_string()),
            (vars::SUBNET, self.subnet_id.to_string()),
            (vars::CLUSTER, self.cluster.to_string()),
            (
                vars::STATE_DIR,
                self.state_dir.to_string_lossy().into_owned(),
            ),
            (vars::FSSIM_BIN, binary("pairscale-fssim")?),
            (vars::ESL_PORT, self.esl_port.to_string()),
            (vars::INITIAL_CALLS, opts.initial_calls.to_string()),
            (vars::CALLS_PER_SEC, opts.calls_per_sec.to_string()),
            (vars::MEDIAN_CALL_SECS, opts.median_call_secs.to_string()),
        ];
        if let Media::FreeSwitch(build) = &opts.media {
            settings.push((
                vars::FREESWITCH_PREFIX,
                build.prefix.to_string_lossy().into_owned(),
            ));
            let ansible_bin = build
                .ansible_playbook
                .parent()
                .unwrap_or(&build.ansible_playbook);
            settings.push((
                vars::ANSIBLE_BIN,
                ansible_bin.to_string_lossy().into_owned(),
            ));
        }
        Ok(settings
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect())
    }

    /// Have the router run `project`'s builds with `pairscale-local-build`, in the state
    /// folder, with `env`.
    pub async fn put_project(
        &self,
        project: &str,
        env: Map<String, Value>,
    ) -> Result<(), StackError> {
        control::put_codebuild_project(
            project,
            &[&binary("pairscale-local-build")?],
            Value::Object(env),
            &self.state_dir.to_string_lossy(),
        )
        .await?;
        Ok(())
    }
}
