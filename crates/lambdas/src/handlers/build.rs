//! `pairscale-build`: start the Terraform and Ansible CodeBuild builds, and read their progress.
//!
//! - `start` {fleet, kind: terraform|ansible, playbook?, pair_ids?, idempotency_key}
//!   → {build_id, project, kind, started_at}. A Terraform build gets the pair set from the
//!   fleet's records at this moment; the same key returns the same build.
//! - `status` {build_id, started_at, timeout_seconds} → {build_id, status, done, succeeded,
//!   overdue, stopped}. A build still running past its deadline is stopped here, so that the
//!   compensation's own Terraform run does not queue behind it.

use crate::contract::{contract, Fields};
use pairscale_core::build::{progress, BuildKind, BuildProgress, BuildRequest, Playbook};
use pairscale_core::ports::{Builds, Clock, FleetStateStore};
use pairscale_core::{Error, FleetName, PairId, Result, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The longest build deadline a run may ask for (CodeBuild's own maximum is 8 hours).
pub const MAX_BUILD_TIMEOUT_SECS: u64 = 8 * 3600;

/// The longest CodeBuild build id taken.
pub const MAX_BUILD_ID_LEN: usize = 512;

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

contract! {
    /// The input of `pairscale-build`.
    pub enum BuildAction for BuildHandler {
        /// Start one build; the same idempotency key returns the same build.
        "start" => Start(StartInput) -> Started = start,
        /// Read a build against its deadline, stopping it when it is overdue.
        "status" => Status(StatusInput) -> BuildState = status,
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInput {
    pub fleet: FleetName,
    pub kind: BuildKind,
    /// Ansible only.
    #[serde(default)]
    pub playbook: Option<Playbook>,
    /// Ansible only: the pairs the playbook is limited to.
    #[serde(default)]
    pub pair_ids: Vec<PairId>,
    pub idempotency_key: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    pub build_id: String,
    /// Epoch milliseconds, as `start` returned them.
    pub started_at: i64,
    /// The run's build deadline, counted from `started_at`.
    pub timeout_seconds: u64,
}

impl Fields for StartInput {}
impl Fields for StatusInput {}

/// A started build.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Started {
    pub build_id: String,
    pub project: String,
    pub kind: BuildKind,
    pub started_at: Timestamp,
}

/// A build's progress against its deadline.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BuildState {
    pub build_id: String,
    #[serde(flatten)]
    pub progress: BuildProgress,
    /// It was overdue and this call stopped it.
    pub stopped: bool,
}

fn check_build_id(id: &str) -> Result<()> {
    // CodeBuild ids are `project:uuid`; anything else is a wiring mistake, not a build.
    let ok = !id.is_empty()
        && id.len() <= MAX_BUILD_ID_LEN
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
    async fn start(&self, s: StartInput) -> Result<Started> {
        let req = BuildRequest::new(s.fleet, s.kind, s.playbook, s.pair_ids, s.idempotency_key)?;
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
        Ok(Started {
            build_id: build.build_id,
            project: build.project,
            kind: req.kind,
            started_at,
        })
    }

    async fn status(&self, s: StatusInput) -> Result<BuildState> {
        check_build_id(&s.build_id)?;
        if s.timeout_seconds == 0 || s.timeout_seconds > MAX_BUILD_TIMEOUT_SECS {
            return Err(Error::invalid(
                "timeout_seconds",
                s.timeout_seconds,
                format!("must be 1..={MAX_BUILD_TIMEOUT_SECS}"),
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
        let progress = progress(
            status,
            Timestamp(s.started_at),
            s.timeout_seconds,
            self.clock.now(),
        );
        let stopped = progress.overdue;
        if stopped {
            tracing::warn!(build_id = %s.build_id, timeout_seconds = s.timeout_seconds, "build overdue: stopping it");
            self.builds.stop(&s.build_id).await?;
        }
        Ok(BuildState {
            build_id: s.build_id,
            progress,
            stopped,
        })
    }
}
