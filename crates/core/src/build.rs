//! The CodeBuild runs a scaling run starts: what each one is given, and how its progress reads.
//!
//! Two kinds of build change the world. The Terraform build makes the pairs' infrastructure
//! match the pair set written here from the fleet's records; the Ansible build configures new
//! nodes and registers them with Kamailio, or deregisters nodes about to go. The buildspecs
//! (`terraform/buildspecs/`) read exactly the variables [`BuildRequest::environment`] sets.

use crate::error::{Error, Result};
use crate::fleet::{Pair, PairStatus, MAX_FLEET_PAIRS};
use crate::ids::{FleetName, PairId, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Which build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuildKind {
    Terraform,
    Ansible,
}

impl BuildKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildKind::Terraform => "terraform",
            BuildKind::Ansible => "ansible",
        }
    }
}

/// Which playbook an Ansible build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Playbook {
    /// Install, configure and register the new nodes.
    ScaleOut,
    /// Deregister the nodes about to be removed.
    ScaleIn,
}

impl Playbook {
    pub fn as_str(self) -> &'static str {
        match self {
            Playbook::ScaleOut => "scale_out",
            Playbook::ScaleIn => "scale_in",
        }
    }
}

/// The environment variables a build is started with (CodeBuild's
/// `environmentVariablesOverride`), read by the buildspecs.
pub mod env {
    pub const FLEET: &str = "PAIRSCALE_FLEET";
    /// The run's idempotency key, so a build log names the run that started it.
    pub const RUN_KEY: &str = "PAIRSCALE_RUN_KEY";
    /// Terraform: `{"pairs": {"pair-0001": {}, ...}}`, written to `pairs.auto.tfvars.json`.
    pub const TFVARS_JSON: &str = "PAIRSCALE_TFVARS_JSON";
    /// Ansible: `scale_out` or `scale_in`.
    pub const PLAYBOOK: &str = "PAIRSCALE_PLAYBOOK";
    /// Ansible: the JSON list of the pair ids the playbook is limited to.
    pub const PAIR_IDS: &str = "PAIRSCALE_PAIR_IDS";
}

/// The longest idempotency key a build request takes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 64;

/// A validated request to start one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    pub fleet: FleetName,
    pub kind: BuildKind,
    /// Ansible only.
    pub playbook: Option<Playbook>,
    /// Ansible only: the pairs this run touches.
    pub pair_ids: Vec<PairId>,
    /// The same key starts the same build (CodeBuild's idempotency token), so a retried start
    /// never runs Terraform twice.
    pub idempotency_key: String,
}

impl BuildRequest {
    pub fn new(
        fleet: FleetName,
        kind: BuildKind,
        playbook: Option<Playbook>,
        pair_ids: Vec<PairId>,
        idempotency_key: String,
    ) -> Result<BuildRequest> {
        if idempotency_key.is_empty()
            || idempotency_key.len() > MAX_IDEMPOTENCY_KEY_LEN
            || !idempotency_key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid(
                "idempotency_key",
                &idempotency_key,
                format!(
                    "must be 1-{MAX_IDEMPOTENCY_KEY_LEN} characters of A-Z, a-z, 0-9, '-' or '_'"
                ),
            ));
        }
        match kind {
            BuildKind::Terraform => {
                if playbook.is_some() {
                    return Err(Error::invalid(
                        "playbook",
                        playbook.map(Playbook::as_str).unwrap_or_default(),
                        "only an ansible build takes a playbook",
                    ));
                }
                if !pair_ids.is_empty() {
                    return Err(Error::invalid(
                        "pair_ids",
                        pair_ids.len(),
                        "a terraform build takes the whole pair set from the fleet records, not pair_ids",
                    ));
                }
            }
            BuildKind::Ansible => {
                if playbook.is_none() {
                    return Err(Error::invalid(
                        "playbook",
                        "(none)",
                        "an ansible build needs playbook scale_out or scale_in",
                    ));
                }
                if pair_ids.is_empty() || pair_ids.len() > MAX_FLEET_PAIRS as usize {
                    return Err(Error::invalid(
                        "pair_ids",
                        pair_ids.len(),
                        format!("an ansible build must name 1..={MAX_FLEET_PAIRS} pairs"),
                    ));
                }
                let mut sorted = pair_ids.clone();
                sorted.sort();
                sorted.dedup();
                if sorted.len() != pair_ids.len() {
                    return Err(Error::invalid(
                        "pair_ids",
                        pair_ids.len(),
                        "names a pair more than once",
                    ));
                }
            }
        }
        Ok(BuildRequest {
            fleet,
            kind,
            playbook,
            pair_ids,
            idempotency_key,
        })
    }

    /// The variables this build is started with. `pairs` are the fleet's records, read for a
    /// Terraform build (ignored for Ansible).
    pub fn environment(&self, pairs: &[Pair]) -> Result<Vec<(String, String)>> {
        let mut vars = vec![
            (env::FLEET.to_string(), self.fleet.to_string()),
            (env::RUN_KEY.to_string(), self.idempotency_key.clone()),
        ];
        match self.kind {
            BuildKind::Terraform => {
                vars.push((env::TFVARS_JSON.to_string(), tfvars(pairs).to_string()));
            }
            BuildKind::Ansible => {
                let playbook = self
                    .playbook
                    .ok_or_else(|| Error::internal("an ansible build without a playbook"))?;
                let ids: Vec<String> = self.pair_ids.iter().map(|p| p.to_string()).collect();
                vars.push((env::PLAYBOOK.to_string(), playbook.as_str().to_string()));
                vars.push((env::PAIR_IDS.to_string(), json!(ids).to_string()));
            }
        }
        Ok(vars)
    }
}

/// Whether Terraform keeps a pair's infrastructure. New pairs are being built, active and
/// draining pairs carry calls, warm pairs wait stopped. Drained pairs are the ones this run
/// removes; failed pairs are the ones a rollback gave up on.
pub fn keeps_infrastructure(status: PairStatus) -> bool {
    matches!(
        status,
        PairStatus::Provisioning | PairStatus::Active | PairStatus::Draining | PairStatus::Warm
    )
}

/// The pairs' Terraform variables: `{"pairs": {"pair-0001": {}, "pair-0004": {"warm": true},
/// ...}}`, sorted by id. A warm pair's node is kept stopped, without its ESL client; the same
/// pair without `warm` is its node started in place and its client made.
pub fn tfvars(pairs: &[Pair]) -> Value {
    let mut ids: Vec<&Pair> = pairs
        .iter()
        .filter(|p| keeps_infrastructure(p.status))
        .collect();
    ids.sort_by_key(|p| p.id);
    let map: Map<String, Value> = ids
        .into_iter()
        .map(|p| {
            let vars = if p.status == PairStatus::Warm {
                json!({ "warm": true })
            } else {
                json!({})
            };
            (p.id.to_string(), vars)
        })
        .collect();
    json!({ "pairs": map })
}

/// CodeBuild's build status, as pairscale reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildStatus {
    InProgress,
    Succeeded,
    Failed,
    Fault,
    TimedOut,
    Stopped,
}

impl BuildStatus {
    pub fn parse(s: &str) -> Result<BuildStatus> {
        Ok(match s {
            "IN_PROGRESS" => BuildStatus::InProgress,
            "SUCCEEDED" => BuildStatus::Succeeded,
            "FAILED" => BuildStatus::Failed,
            "FAULT" => BuildStatus::Fault,
            "TIMED_OUT" => BuildStatus::TimedOut,
            "STOPPED" => BuildStatus::Stopped,
            other => {
                return Err(Error::invalid(
                    "build status",
                    other,
                    "not a CodeBuild build status",
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::InProgress => "IN_PROGRESS",
            BuildStatus::Succeeded => "SUCCEEDED",
            BuildStatus::Failed => "FAILED",
            BuildStatus::Fault => "FAULT",
            BuildStatus::TimedOut => "TIMED_OUT",
            BuildStatus::Stopped => "STOPPED",
        }
    }

    pub fn done(self) -> bool {
        self != BuildStatus::InProgress
    }
}

/// What the state machine's poll loop reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct BuildProgress {
    pub status: BuildStatus,
    pub done: bool,
    pub succeeded: bool,
    /// Still running past the run's build deadline: the handler stops it.
    pub overdue: bool,
}

/// Read a build's status against its deadline (`timeout_seconds` after `started_at`).
pub fn progress(
    status: BuildStatus,
    started_at: Timestamp,
    timeout_seconds: u64,
    now: Timestamp,
) -> BuildProgress {
    let overdue = !status.done() && now >= started_at.plus_secs(timeout_seconds);
    BuildProgress {
        status,
        done: status.done(),
        succeeded: status == BuildStatus::Succeeded,
        overdue,
    }
}

/// Why a Terraform build that did not succeed may be started again: a passing condition of
/// the cloud, not of the configuration. Read from the build's log ([`classify_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransientCause {
    /// EC2 had no capacity of the type in the zone (`InsufficientInstanceCapacity`).
    Capacity,
    /// An AWS API refused the call's rate (`RequestLimitExceeded`, `Throttling`).
    Throttling,
    /// Another Terraform run held the state lock (`Error acquiring the state lock`).
    StateLock,
    /// An AWS service answered with its own fault, or did not answer (`ServiceUnavailable`,
    /// `InternalError`, a timeout or reset on the connection); also CodeBuild's `FAULT`.
    ServiceFault,
}

impl TransientCause {
    pub fn as_str(self) -> &'static str {
        match self {
            TransientCause::Capacity => "capacity",
            TransientCause::Throttling => "throttling",
            TransientCause::StateLock => "state_lock",
            TransientCause::ServiceFault => "service_fault",
        }
    }
}

/// What a failed build's log says of its failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Failure {
    /// Set when the failure is transient: starting the same build again may succeed.
    pub transient: Option<TransientCause>,
    /// The log line that decided it (at most [`MAX_FAILURE_LINE`] characters), or why there
    /// is none.
    pub evidence: String,
}

/// The longest log line a [`Failure`] quotes.
pub const MAX_FAILURE_LINE: usize = 300;

/// Markers of a failure that no retry can mend: the configuration, the permissions or the
/// code are wrong. One of them anywhere in the log makes the failure permanent, whatever
/// transient marker sits beside it (a throttled call retried by the provider may precede an
/// access denial that ends the apply).
const PERMANENT_MARKERS: &[&str] = &[
    "UnauthorizedOperation",
    "AccessDenied",
    "is not authorized to perform",
    "InvalidParameter",
    "InvalidAMIID",
    "InvalidSubnetID",
    "InvalidGroup.NotFound",
    "InvalidKeyPair",
    "ValidationException",
    "Unsupported argument",
    "Invalid value for variable",
    "Missing required argument",
    "Reference to undeclared",
    "Error: Invalid",
];

/// Markers of a transient failure, by cause, in the order they are looked for.
const TRANSIENT_MARKERS: &[(&str, TransientCause)] = &[
    ("InsufficientInstanceCapacity", TransientCause::Capacity),
    ("InsufficientCapacity", TransientCause::Capacity),
    ("InsufficientHostCapacity", TransientCause::Capacity),
    ("Error acquiring the state lock", TransientCause::StateLock),
    ("RequestLimitExceeded", TransientCause::Throttling),
    ("ThrottlingException", TransientCause::Throttling),
    ("Throttling", TransientCause::Throttling),
    ("TooManyRequestsException", TransientCause::Throttling),
    ("Rate exceeded", TransientCause::Throttling),
    ("ServiceUnavailable", TransientCause::ServiceFault),
    ("InternalError", TransientCause::ServiceFault),
    ("InternalFailure", TransientCause::ServiceFault),
    ("RequestTimeout", TransientCause::ServiceFault),
    ("connection reset by peer", TransientCause::ServiceFault),
    ("i/o timeout", TransientCause::ServiceFault),
    ("TLS handshake timeout", TransientCause::ServiceFault),
];

fn quote(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(MAX_FAILURE_LINE) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// Classify a build that ended without success from its status and the end of its log.
///
/// - `FAULT` is CodeBuild's own failure: transient.
/// - `FAILED` is read from the log: a permanent marker anywhere makes it permanent; else the
///   first transient marker names its cause; a log with neither (or no log at all) is
///   permanent, since only a known passing condition earns a retry.
/// - Every other end (`STOPPED`, `TIMED_OUT`) is permanent: the run, or the build's own
///   timeout, stopped it, and starting it again would repeat that.
pub fn classify_failure(status: BuildStatus, log: Option<&str>) -> Failure {
    match status {
        BuildStatus::Fault => {
            return Failure {
                transient: Some(TransientCause::ServiceFault),
                evidence: "CodeBuild ended the build in FAULT (its own failure)".into(),
            }
        }
        BuildStatus::Failed => {}
        other => {
            return Failure {
                transient: None,
                evidence: format!("the build ended {}", other.as_str()),
            }
        }
    }
    let Some(log) = log else {
        return Failure {
            transient: None,
            evidence: "the build's log could not be read".into(),
        };
    };
    if let Some(line) = log
        .lines()
        .find(|l| PERMANENT_MARKERS.iter().any(|m| l.contains(m)))
    {
        return Failure {
            transient: None,
            evidence: quote(line),
        };
    }
    for (marker, cause) in TRANSIENT_MARKERS {
        if let Some(line) = log.lines().find(|l| l.contains(marker)) {
            return Failure {
                transient: Some(*cause),
                evidence: quote(line),
            };
        }
    }
    Failure {
        transient: None,
        evidence: log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(quote)
            .unwrap_or_else(|| "the build's log is empty".into()),
    }
}

/// How a run retries a build whose failure is transient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Starts after the first (the fleet's `build_retries`).
    pub retries: u32,
    /// The wait before the first retry, doubled before each later one (`build_retry_seconds`).
    pub base_seconds: u64,
}

/// The wait before starting attempt `attempt + 1` of a build that failed with `failure`, or
/// None when the run undoes its work now: the failure is permanent, the retries are spent, or
/// the wait would end past the step's deadline (`deadline`, counted from the first attempt's
/// start, so every attempt of a step shares one `build_timeout_seconds`).
pub fn retry_in(
    failure: &Failure,
    attempt: u32,
    policy: RetryPolicy,
    now: Timestamp,
    deadline: Timestamp,
) -> Option<u64> {
    failure.transient?;
    if attempt >= policy.retries {
        return None;
    }
    let wait = policy.base_seconds.saturating_mul(1u64 << attempt.min(16));
    let left_ms = u64::try_from(deadline.0.saturating_sub(now.0)).unwrap_or(0);
    (wait.saturating_mul(1000) < left_ms).then_some(wait)
}

/// A wait before a retry, cut into rounds of at most the fleet's poll interval: the state
/// machine renews the lock once per round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Backoff {
    pub rounds: u64,
    pub seconds: u64,
}

/// `wait` seconds as [`Backoff`] rounds of at most `poll_seconds` each (at least one round of
/// at least one second), together at least `wait`.
pub fn backoff(wait: u64, poll_seconds: u64) -> Backoff {
    let poll = poll_seconds.max(1);
    let wait = wait.max(1);
    let rounds = wait.div_ceil(poll);
    Backoff {
        rounds,
        seconds: wait.div_ceil(rounds),
    }
}

/// The key under which a run's journal keeps attempt `attempt` of the build `step` starts: the
/// first under the step itself, each retry under its own (`out_terraform_retry1`), since a
/// journal entry never changes its build.
pub fn attempt_step(step: &str, attempt: u32) -> String {
    if attempt == 0 {
        step.to_string()
    } else {
        format!("{step}{RETRY_STEP_INFIX}{attempt}")
    }
}

/// Between a step and its attempt in a journal key.
pub const RETRY_STEP_INFIX: &str = "_retry";

/// Whether the journal key `key` holds an attempt of `step`.
pub fn is_attempt_of(key: &str, step: &str) -> bool {
    key == step
        || key
            .strip_prefix(step)
            .and_then(|rest| rest.strip_prefix(RETRY_STEP_INFIX))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fleet() -> FleetName {
        FleetName::parse("voice-eu1").unwrap()
    }

    fn pair(seq: u32, status: PairStatus) -> Pair {
        Pair::new(PairId::new(seq).unwrap(), status, Timestamp(0))
    }

    #[test]
    fn terraform_keeps_building_active_draining_and_warm_pairs_and_drops_the_rest() {
        let pairs = [
            pair(3, PairStatus::Active),
            pair(1, PairStatus::Provisioning),
            pair(2, PairStatus::Drained),
            pair(4, PairStatus::Draining),
            pair(5, PairStatus::Failed),
            pair(6, PairStatus::Warm),
        ];
        assert_eq!(
            tfvars(&pairs),
            json!({"pairs": {
                "pair-0001": {}, "pair-0003": {}, "pair-0004": {}, "pair-0006": {"warm": true}
            }})
        );
    }

    #[test]
    fn a_terraform_build_gets_the_pair_set_and_no_playbook() {
        let req = BuildRequest::new(fleet(), BuildKind::Terraform, None, vec![], "abc123".into())
            .unwrap();
        let env = req.environment(&[pair(7, PairStatus::Active)]).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get(env::FLEET), Some("voice-eu1"));
        assert_eq!(get(env::TFVARS_JSON), Some(r#"{"pairs":{"pair-0007":{}}}"#));
        assert_eq!(get(env::PLAYBOOK), None);
        let e = BuildRequest::new(
            fleet(),
            BuildKind::Terraform,
            Some(Playbook::ScaleIn),
            vec![],
            "k".into(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("playbook"), "{e}");
    }

    #[test]
    fn an_ansible_build_names_its_playbook_and_pairs() {
        let ids = vec![PairId::new(2).unwrap(), PairId::new(9).unwrap()];
        let req = BuildRequest::new(
            fleet(),
            BuildKind::Ansible,
            Some(Playbook::ScaleIn),
            ids.clone(),
            "k-1".into(),
        )
        .unwrap();
        let env = req.environment(&[]).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get(env::PLAYBOOK).as_deref(), Some("scale_in"));
        assert_eq!(
            get(env::PAIR_IDS).as_deref(),
            Some(r#"["pair-0002","pair-0009"]"#)
        );
        for (playbook, ids, what) in [
            (None, ids.clone(), "playbook"),
            (Some(Playbook::ScaleOut), vec![], "pair_ids"),
            (
                Some(Playbook::ScaleOut),
                vec![ids[0], ids[0]],
                "more than once",
            ),
        ] {
            let e = BuildRequest::new(fleet(), BuildKind::Ansible, playbook, ids, "k".into())
                .unwrap_err();
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
    }

    #[test]
    fn an_idempotency_key_is_a_codebuild_token() {
        for bad in ["", "has space", "ü", &"x".repeat(65)] {
            assert!(
                BuildRequest::new(fleet(), BuildKind::Terraform, None, vec![], bad.into()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_build_is_overdue_only_while_running_past_its_deadline() {
        let start = Timestamp(1_000_000);
        let late = start.plus_secs(601);
        let p = progress(BuildStatus::InProgress, start, 600, start.plus_secs(599));
        assert!(!p.done && !p.overdue);
        let p = progress(BuildStatus::InProgress, start, 600, late);
        assert!(p.overdue && !p.done && !p.succeeded);
        let p = progress(BuildStatus::Succeeded, start, 600, late);
        assert!(p.done && p.succeeded && !p.overdue);
        let p = progress(BuildStatus::Fault, start, 600, late);
        assert!(p.done && !p.succeeded && !p.overdue);
    }

    #[test]
    fn every_codebuild_status_round_trips() {
        for s in [
            "IN_PROGRESS",
            "SUCCEEDED",
            "FAILED",
            "FAULT",
            "TIMED_OUT",
            "STOPPED",
        ] {
            assert_eq!(BuildStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(BuildStatus::parse("PENDING").is_err());
    }

    #[test]
    fn a_failure_is_transient_only_by_a_known_passing_marker() {
        let capacity = "aws_instance.node[\"pair-0003\"]: Creating...\n\
            Error: creating EC2 Instance: InsufficientInstanceCapacity: We currently do not have sufficient c5.large capacity\n";
        let f = classify_failure(BuildStatus::Failed, Some(capacity));
        assert_eq!(f.transient, Some(TransientCause::Capacity));
        assert!(
            f.evidence.starts_with("Error: creating EC2 Instance"),
            "{f:?}"
        );
        for (log, cause) in [
            ("Error: Error acquiring the state lock\nLock Info: ...", TransientCause::StateLock),
            ("operation error EC2: RunInstances, api error RequestLimitExceeded: Request limit exceeded.", TransientCause::Throttling),
            ("api error ServiceUnavailable: try again", TransientCause::ServiceFault),
            ("dial tcp 10.0.0.1:443: i/o timeout", TransientCause::ServiceFault),
        ] {
            assert_eq!(classify_failure(BuildStatus::Failed, Some(log)).transient, Some(cause), "{log}");
        }
        // A permanent marker wins over a transient one anywhere in the log.
        let mixed =
            "RequestLimitExceeded, retrying\nError: UnauthorizedOperation: You are not authorized";
        let f = classify_failure(BuildStatus::Failed, Some(mixed));
        assert_eq!(f.transient, None);
        assert!(f.evidence.contains("UnauthorizedOperation"), "{f:?}");
        // An unknown failure, an empty log and an unreadable one are permanent.
        let f = classify_failure(BuildStatus::Failed, Some("Error: something new\n\n"));
        assert_eq!(
            (f.transient, f.evidence.as_str()),
            (None, "Error: something new")
        );
        assert_eq!(
            classify_failure(BuildStatus::Failed, Some("")).transient,
            None
        );
        assert_eq!(classify_failure(BuildStatus::Failed, None).transient, None);
        // CodeBuild's own fault is transient; a stop or a timeout is not.
        assert_eq!(
            classify_failure(BuildStatus::Fault, None).transient,
            Some(TransientCause::ServiceFault)
        );
        for s in [BuildStatus::Stopped, BuildStatus::TimedOut] {
            assert_eq!(classify_failure(s, Some(capacity)).transient, None, "{s:?}");
        }
    }

    #[test]
    fn a_quoted_line_is_bounded() {
        let long = format!("InsufficientInstanceCapacity {}", "é".repeat(1000));
        let f = classify_failure(BuildStatus::Failed, Some(&long));
        assert_eq!(f.evidence.chars().count(), MAX_FAILURE_LINE + 1);
    }

    #[test]
    fn retries_back_off_by_doubling_within_their_count_and_the_deadline() {
        let transient = Failure {
            transient: Some(TransientCause::Capacity),
            evidence: String::new(),
        };
        let permanent = Failure {
            transient: None,
            evidence: String::new(),
        };
        let policy = RetryPolicy {
            retries: 3,
            base_seconds: 30,
        };
        let now = Timestamp(1_000_000);
        let far = now.plus_secs(10_000);
        assert_eq!(retry_in(&transient, 0, policy, now, far), Some(30));
        assert_eq!(retry_in(&transient, 1, policy, now, far), Some(60));
        assert_eq!(retry_in(&transient, 2, policy, now, far), Some(120));
        assert_eq!(
            retry_in(&transient, 3, policy, now, far),
            None,
            "retries spent"
        );
        assert_eq!(retry_in(&permanent, 0, policy, now, far), None, "permanent");
        assert_eq!(
            retry_in(
                &transient,
                0,
                RetryPolicy {
                    retries: 0,
                    ..policy
                },
                now,
                far
            ),
            None
        );
        // A wait that would end at or past the deadline is not taken.
        assert_eq!(
            retry_in(&transient, 1, policy, now, now.plus_secs(60)),
            None
        );
        assert_eq!(
            retry_in(&transient, 1, policy, now, now.plus_secs(61)),
            Some(60)
        );
        // No overflow on a huge attempt number.
        assert_eq!(
            retry_in(
                &transient,
                60,
                RetryPolicy {
                    retries: u32::MAX,
                    base_seconds: u64::MAX
                },
                now,
                far
            ),
            None
        );
    }

    #[test]
    fn a_backoff_is_cut_into_rounds_no_longer_than_a_poll() {
        for (wait, poll, rounds, seconds) in [
            (60, 20, 3, 20),
            (61, 60, 2, 31),
            (5, 20, 1, 5),
            (0, 0, 1, 1),
            (900, 1, 900, 1),
        ] {
            let b = backoff(wait, poll);
            assert_eq!((b.rounds, b.seconds), (rounds, seconds), "{wait} {poll}");
            assert!(
                b.seconds <= poll.max(1) && b.rounds * b.seconds >= wait,
                "{b:?}"
            );
        }
    }

    #[test]
    fn each_attempt_of_a_step_has_its_own_journal_key() {
        assert_eq!(attempt_step("out_terraform", 0), "out_terraform");
        assert_eq!(attempt_step("out_terraform", 2), "out_terraform_retry2");
        crate::state::check_build_step(&attempt_step("recover_terraform", 5)).unwrap();
        assert!(is_attempt_of("out_terraform", "out_terraform"));
        assert!(is_attempt_of("out_terraform_retry2", "out_terraform"));
        for other in [
            "out_terraform_retry",
            "out_terraform_retryx",
            "out_undo_terraform",
            "out_terraform2",
        ] {
            assert!(!is_attempt_of(other, "out_terraform"), "{other}");
        }
    }
}
