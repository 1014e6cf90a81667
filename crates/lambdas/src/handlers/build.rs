//! `pairscale-build`: start the Terraform and Ansible CodeBuild builds, read their progress,
//! and stop them.
//!
//! - `start` {fleet, owner, token, step, kind: terraform|ansible, playbook?, pair_ids?,
//!   idempotency_key} → {build_id, project, kind, started_at}. A Terraform build gets the
//!   pair set from the fleet's records at this moment; the same key returns the same build.
//!   The build is kept in the run's journal under `step` (fenced by the lock) before the
//!   answer goes back; if that fails the build is stopped, so no build runs that nothing
//!   records.
//!   `attempt` (0 for the first start) keeps each retry of a step under its own journal key,
//!   and `since`, the first attempt's start, comes back so that every attempt shares the
//!   step's deadline.
//! - `status` {build_id, started_at, timeout_seconds, retry?} → {build_id, status, done,
//!   succeeded, overdue, stopped, cause, retry_in_seconds}. A build still running past its
//!   deadline is stopped here, so that the compensation's own Terraform run does not queue
//!   behind it. A build that ended without success has its log read and classified: `cause`
//!   quotes the line that decided, and with `retry` {attempt, retries, retry_seconds} a
//!   transient failure gets the wait before the next attempt (null: undo now).
//! - `stop` {build_ids} → {builds: [{build_id, status, stopped}]}: every build still running is
//!   asked to stop; `Pairscale.BuildStopping` while any of them is still IN_PROGRESS (the state
//!   machine retries), so nothing that undoes a build's work starts before it has ended.

use crate::contract::{contract, Fenced, Fields};
use pairscale_core::build::{
    attempt_step, backoff, classify_failure, is_attempt_of, progress, retry_in, Backoff, BuildKind,
    BuildProgress, BuildRequest, BuildStatus, Failure, Playbook, RetryPolicy,
};
use pairscale_core::fleet::bounds::{BUILD_POLL_SECONDS, BUILD_RETRIES, BUILD_RETRY_SECONDS};
use pairscale_core::ports::{Builds, Clock, FleetStateStore};
use pairscale_core::state::JournalBuild;
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
        "start" => Start(Fenced<StartInput>) -> Started = start,
        /// Read a build against its deadline, stopping it when it is overdue.
        "status" => Status(StatusInput) -> BuildState = status,
        /// Stop builds and report whether they have ended (`Pairscale.BuildStopping` until
        /// they have).
        "stop" => Stop(StopInput) -> StoppedBuilds = stop,
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInput {
    pub fleet: FleetName,
    /// The run's step that starts it (`out_terraform`): its key in the run's journal.
    pub step: String,
    pub kind: BuildKind,
    /// Ansible only.
    #[serde(default)]
    pub playbook: Option<Playbook>,
    /// Ansible only: the pairs the playbook is limited to.
    #[serde(default)]
    pub pair_ids: Vec<PairId>,
    pub idempotency_key: String,
    /// 0 for the step's first start, n for its n-th retry.
    #[serde(default)]
    pub attempt: u32,
    /// A retry: when the step's first attempt started (what `start` returned as `since`).
    #[serde(default)]
    pub since: Option<Timestamp>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    pub build_id: String,
    /// Epoch milliseconds, as `start` returned them.
    pub started_at: i64,
    /// The run's build deadline, counted from `started_at`.
    pub timeout_seconds: u64,
    /// How a failure of this build may be retried; none: never.
    #[serde(default)]
    pub retry: Option<RetryInput>,
}

/// Which attempt of its step a build is, and the fleet's retry policy.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryInput {
    pub attempt: u32,
    /// The fleet's `build_retries`.
    pub retries: u32,
    /// The fleet's `build_retry_seconds`.
    pub retry_seconds: u64,
    /// The fleet's `build_poll_seconds`: no round of the wait is longer.
    pub poll_seconds: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopInput {
    /// 1 to [`MAX_STOP_BUILDS`] build ids; builds that already ended are left as they are.
    #[serde(default)]
    pub build_ids: Vec<String>,
    /// Instead of ids: the build `run` started at `step`, as the run's journal keeps it in
    /// `fleet` (nothing to stop if the step started none).
    #[serde(default)]
    pub fleet: Option<FleetName>,
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub step: Option<String>,
}

/// The most builds one `stop` takes.
pub const MAX_STOP_BUILDS: usize = 50;

impl Fields for StartInput {}
impl Fields for StatusInput {}
impl Fields for StopInput {}

/// Each build `stop` was given, as it stands now.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StoppedBuilds {
    pub builds: Vec<StoppedBuild>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StoppedBuild {
    pub build_id: String,
    pub status: BuildStatus,
    /// This call asked it to stop (it was still running).
    pub stopped: bool,
}

/// A started build.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Started {
    pub build_id: String,
    pub project: String,
    pub kind: BuildKind,
    pub started_at: Timestamp,
    /// Which attempt of its step this is.
    pub attempt: u32,
    /// When the step's first attempt started: its deadline counts from here.
    pub since: Timestamp,
}

/// A build's progress against its deadline.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BuildState {
    pub build_id: String,
    #[serde(flatten)]
    pub progress: BuildProgress,
    /// It was overdue and this call stopped it.
    pub stopped: bool,
    /// An ended build that did not succeed: what its log says (empty otherwise).
    pub cause: String,
    /// The transient cause of its failure, if the log shows one.
    pub transient: Option<pairscale_core::build::TransientCause>,
    /// Seconds to wait before the step's next attempt; null: no retry (it succeeded, is
    /// still running, failed for good, or its retries or deadline are spent).
    pub retry_in_seconds: Option<u64>,
    /// That wait in rounds of at most `poll_seconds`, the lock renewed after each.
    pub backoff: Option<Backoff>,
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
    async fn start(&self, Fenced { fence, input: s }: Fenced<StartInput>) -> Result<Started> {
        pairscale_core::state::check_build_step(&s.step)?;
        if !BUILD_RETRIES.contains(&s.attempt) {
            return Err(Error::invalid(
                "attempt",
                s.attempt,
                format!("must be within build_retries' bounds {BUILD_RETRIES:?}"),
            ));
        }
        if (s.attempt == 0) != s.since.is_none() {
            return Err(Error::invalid(
                "since",
                s.since.map(|t| t.0).unwrap_or_default(),
                "a retry (attempt > 0) gives the first attempt's start, and only a retry",
            ));
        }
        let journal_step = attempt_step(&s.step, s.attempt);
        pairscale_core::state::check_build_step(&journal_step)?;
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
        // The step was checked above, before anything started.
        let noted = self
            .state
            .note_build(
                &req.fleet,
                &fence,
                fence.owner.as_str(),
                &journal_step,
                &JournalBuild {
                    build_id: build.build_id.clone(),
                    kind: req.kind,
                    started_at,
                },
                started_at,
            )
            .await;
        if let Err(e) = noted {
            // Nothing would know this build runs: stop it rather than leave it to change the
            // fleet behind the run's back.
            tracing::error!(fleet = %req.fleet, build_id = %build.build_id, error = %e, "build not journaled: stopping it");
            if let Err(stop) = self.builds.stop(&build.build_id).await {
                tracing::error!(build_id = %build.build_id, error = %stop, "stopping the unjournaled build failed");
            }
            return Err(e);
        }
        tracing::info!(
            fleet = %req.fleet,
            step = %journal_step,
            attempt = s.attempt,
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
            attempt: s.attempt,
            since: s.since.unwrap_or(started_at),
        })
    }

    /// The ids `stop` was given, or the one the run's journal keeps for its step.
    async fn builds_to_stop(&self, s: StopInput) -> Result<Vec<String>> {
        match (s.fleet, s.run, s.step) {
            (None, None, None) => {}
            (Some(fleet), Some(run), Some(step)) if s.build_ids.is_empty() => {
                pairscale_core::state::check_build_step(&step)?;
                if run.is_empty()
                    || run.len() > pairscale_core::Owner::MAX_LEN
                    || !run.chars().all(|c| c.is_ascii_graphic())
                {
                    return Err(Error::invalid("run", &run, "must be an execution ARN"));
                }
                // Every attempt of the step: the ended ones are left as they are.
                let journal = self.state.journal(&fleet, &run).await?;
                return Ok(journal
                    .map(|j| {
                        j.builds
                            .iter()
                            .filter(|(key, _)| is_attempt_of(key, &step))
                            .map(|(_, b)| b.build_id.clone())
                            .collect()
                    })
                    .unwrap_or_default());
            }
            _ => {
                return Err(Error::invalid(
                    "build_ids",
                    s.build_ids.len(),
                    "give build_ids, or fleet, run and step (not both)",
                ))
            }
        }
        if s.build_ids.is_empty() || s.build_ids.len() > MAX_STOP_BUILDS {
            return Err(Error::invalid(
                "build_ids",
                s.build_ids.len(),
                format!("must name 1..={MAX_STOP_BUILDS} builds"),
            ));
        }
        for id in &s.build_ids {
            check_build_id(id)?;
        }
        Ok(s.build_ids)
    }

    async fn stop(&self, s: StopInput) -> Result<StoppedBuilds> {
        let ids = self.builds_to_stop(s).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            let before = self.builds.status(id).await?;
            let stopped = !before.done();
            if stopped {
                tracing::warn!(build_id = %id, "stopping a build");
                self.builds.stop(id).await?;
            }
            let status = if stopped {
                self.builds.status(id).await?
            } else {
                before
            };
            out.push(StoppedBuild {
                build_id: id.clone(),
                status,
                stopped,
            });
        }
        if let Some(b) = out.iter().find(|b| !b.status.done()) {
            return Err(Error::BuildStopping {
                build_id: b.build_id.clone(),
                status: b.status.as_str().to_string(),
            });
        }
        Ok(StoppedBuilds { builds: out })
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
        let policy = s
            .retry
            .as_ref()
            .map(|r| {
                if !BUILD_RETRIES.contains(&r.retries) || r.attempt > r.retries {
                    return Err(Error::invalid(
                        "retry",
                        format!("attempt {} of retries {}", r.attempt, r.retries),
                        format!(
                            "retries must be within {BUILD_RETRIES:?} and attempt at most retries"
                        ),
                    ));
                }
                if !BUILD_RETRY_SECONDS.contains(&r.retry_seconds) {
                    return Err(Error::invalid(
                        "retry.retry_seconds",
                        r.retry_seconds,
                        format!("must be within {BUILD_RETRY_SECONDS:?}"),
                    ));
                }
                if !BUILD_POLL_SECONDS.contains(&r.poll_seconds) {
                    return Err(Error::invalid(
                        "retry.poll_seconds",
                        r.poll_seconds,
                        format!("must be within {BUILD_POLL_SECONDS:?}"),
                    ));
                }
                Ok((
                    r.attempt,
                    r.poll_seconds,
                    RetryPolicy {
                        retries: r.retries,
                        base_seconds: r.retry_seconds,
                    },
                ))
            })
            .transpose()?;
        let (mut cause, mut transient, mut retry_in_seconds) = (String::new(), None, None);
        let mut poll_seconds = 1;
        if progress.done && !progress.succeeded {
            let failure = self.failure(&s.build_id, status).await?;
            let now = self.clock.now();
            let deadline = Timestamp(s.started_at).plus_secs(s.timeout_seconds);
            retry_in_seconds = policy.and_then(|(attempt, poll, policy)| {
                poll_seconds = poll;
                retry_in(&failure, attempt, policy, now, deadline)
            });
            tracing::warn!(
                build_id = %s.build_id,
                status = status.as_str(),
                transient = failure.transient.map(|t| t.as_str()),
                retry_in_seconds,
                evidence = %failure.evidence,
                "build did not succeed"
            );
            (cause, transient) = (failure.evidence, failure.transient);
        }
        Ok(BuildState {
            build_id: s.build_id,
            progress,
            stopped,
            cause,
            transient,
            retry_in_seconds,
            backoff: retry_in_seconds.map(|wait| backoff(wait, poll_seconds)),
        })
    }

    /// What an ended build's log says of its failure. A log that cannot be read leaves the
    /// failure permanent (the run undoes its work, which is always safe), unless the read
    /// itself may pass: then the call fails retryable and the state machine asks again.
    async fn failure(&self, build_id: &str, status: BuildStatus) -> Result<Failure> {
        if status != BuildStatus::Failed {
            return Ok(classify_failure(status, None));
        }
        let log = match self.builds.log_tail(build_id).await {
            Ok(log) => log,
            Err(e @ Error::Retryable { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(build_id, error = %e, "the build's log could not be read");
                None
            }
        };
        Ok(classify_failure(status, log.as_deref()))
    }
}
