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
/// draining pairs carry calls. Drained pairs are the ones this run removes; failed pairs are
/// the ones a rollback gave up on.
pub fn keeps_infrastructure(status: PairStatus) -> bool {
    matches!(
        status,
        PairStatus::Provisioning | PairStatus::Active | PairStatus::Draining
    )
}

/// The pairs' Terraform variables: `{"pairs": {"pair-0001": {}, ...}}`, sorted by id.
pub fn tfvars(pairs: &[Pair]) -> Value {
    let mut ids: Vec<&Pair> = pairs
        .iter()
        .filter(|p| keeps_infrastructure(p.status))
        .collect();
    ids.sort_by_key(|p| p.id);
    let map: Map<String, Value> = ids
        .into_iter()
        .map(|p| (p.id.to_string(), json!({})))
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
    fn terraform_keeps_building_active_and_draining_pairs_and_drops_the_rest() {
        let pairs = [
            pair(3, PairStatus::Active),
            pair(1, PairStatus::Provisioning),
            pair(2, PairStatus::Drained),
            pair(4, PairStatus::Draining),
            pair(5, PairStatus::Failed),
        ];
        assert_eq!(
            tfvars(&pairs),
            json!({"pairs": {"pair-0001": {}, "pair-0003": {}, "pair-0004": {}}})
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
}
