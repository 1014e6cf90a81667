//! `pairscale-build`: start the Terraform and Ansible CodeBuild builds, and read their progress.
//!
//! - `start` {fleet, kind: terraform|ansible, playbook?, pair_ids?, idempotency_key}
//!   → {build_id, project, kind, started_at}. A Terraform build gets the pair set from the
//!   fleet's records at this moment; the same key returns the same build.
//! - `status` {build_id, started_at, timeout_seconds} → {build_id, status, done, succeeded,
//!   overdue, stopped}. A build still running past its deadline is stopped here, so that the
//!   compensation's own Terraform run does not queue behind it.

use crate::input::{action, parse};
use pairscale_core::build::{progress, BuildKind, BuildRequest, Playbook};
use pairscale_core::ports::{Builds, Clock, FleetStateStore};
use pairscale_core::{Error, FleetName, PairId, Result, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub const ACTIONS: &[&str] = &["start", "status"];

/// The longest build deadline a run may ask for (CodeBuild's own maximum is 8 hours).
pub const MAX_BUILD_TIMEOUT_SECS: u64 = 8 * 3600;

#[derive(Clone)]
pub struct BuildHandler {
    pub builds: Arc<dyn Builds>,
    pub state: Arc<dyn FleetStateStore>,
    pub clock: Arc<dyn Clock>,
    pub terraform_project: String,
    pub ansible_project: String,
}

impl std::fmt::Debug for BuildHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildHandler")
            .field("terraform_project", &self.terraform_project)
            .field("ansible_project", &self.ansible_project)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    fleet: FleetName,
    kind: BuildKind,
    #[serde(default)]
    playbook: Option<Playbook>,
    #[serde(default)]
    pair_ids: Vec<PairId>,
    idempotency_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Status {
    build_id: String,
    started_at: i64,
    timeout_seconds: u64,
}

fn check_build_id(id: &str) -> Result<()> {
    // CodeBuild ids are `project:uuid`; anything else is a wiring mistake, not a build.
    let ok = !id.is_empty()
        && id.len() <= 512
        && id.contains(':')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "build_id",
            id,
            "must be a CodeBuild build id, project:uuid",
        ))
    }
}

impl BuildHandler {
    pub async fn handle(&self, input: Value) -> Result<Value> {
        match action(&input, ACTIONS)? {
            "start" => {
                let s: Start = parse(&input)?;
                let req =
                    BuildRequest::new(s.fleet, s.kind, s.playbook, s.pair_ids, s.idempotency_key)?;
                let pairs = match req.kind {
                    BuildKind::Terraform => self.state.pairs(&req.fleet).await?,
                    BuildKind::Ansible => Vec::new(),
                };
                let env = req.environment(&pairs)?;
                let project = match req.kind {
                    BuildKind::Terraform => &self.terraform_project,
                    BuildKind::Ansible => &self.ansible_project,
                };
                let started_at = self.clock.now();
                let build = self
                    .builds
                    .start(project, &env, &req.idempotency_key)
                    .await?;
                tracing::info!(
                    fleet = %req.fleet,
                    kind = req.kind.as_str(),
                    playbook = req.playbook.map(Playbook::as_str),
                    pairs = if req.kind == BuildKind::Terraform { pairs.len() } else { req.pair_ids.len() },
                    build_id = %build.build_id,
                    "build started"
                );
                Ok(json!({
                    "build_id": build.build_id,
                    "project": build.project,
                    "kind": req.kind,
                    "started_at": started_at.millis(),
                }))
            }
            "status" => {
                let s: Status = parse(&input)?;
                check_build_id(&s.build_id)?;
                if s.timeout_seconds == 0 || s.timeout_seconds > MAX_BUILD_TIMEOUT_SECS {
                    return Err(Error::invalid(
                        "timeout_seconds",
                        s.timeout_seconds,
                        "must be 1..=28800",
                    ));
                }
                if s.started_at <= 0 {
                    return Err(Error::invalid(
                        "started_at",
                        s.started_at,
                        "must be the epoch milliseconds start returned",
                    ));
                }
                let status = self.builds.status(&s.build_id).await?;
                let p = progress(
                    status,
                    Timestamp(s.started_at),
                    s.timeout_seconds,
                    self.clock.now(),
                );
                let mut stopped = false;
                if p.overdue {
                    tracing::warn!(build_id = %s.build_id, timeout_seconds = s.timeout_seconds, "build overdue: stopping it");
                    self.builds.stop(&s.build_id).await?;
                    stopped = true;
                }
                Ok(json!({
                    "build_id": s.build_id,
                    "status": p.status,
                    "done": p.done,
                    "succeeded": p.succeeded,
                    "overdue": p.overdue,
                    "stopped": stopped,
                }))
            }
            other => Err(Error::internal(format!(
                "action {other} listed but not handled"
            ))),
        }
    }
}
