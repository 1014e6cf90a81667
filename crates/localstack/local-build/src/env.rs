//! What a local build is configured with: the local CodeBuild project's environment, the
//! build's own `PAIRSCALE_*` variables (as the state machine's build handler sets them) and
//! the local ones ([`vars`]) that say where on this machine it works.

use anyhow::{anyhow, bail, Context as _, Result};
use pairscale_core::build::env as build_env;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// What the stand-in is configured with (the local CodeBuild project's environment).
#[derive(Debug, Clone)]
pub struct LocalBuildEnv {
    pub kind: String,
    pub fleet: String,
    pub tfvars_json: Option<String>,
    pub playbook: Option<String>,
    pub pair_ids: Option<String>,
    pub subnet_id: String,
    pub ecs_cluster: String,
    pub state_dir: PathBuf,
    pub fssim_bin: PathBuf,
    pub esl_port: u16,
    pub sip_port: u16,
    pub set_id: i32,
    pub calls_per_sec: f64,
    pub median_call_secs: f64,
    /// Calls each new node starts with that last until hung up (drain deadline tests).
    pub initial_calls: u32,
    pub dispatcher_db_url: String,
    pub kamailio_rpc_url: String,
    /// The buildspec to run and the source to run it in, for a real `terraform` build.
    pub real: Option<(PathBuf, PathBuf)>,
    /// Real FreeSWITCH behind the instances, from this build (configured by the role with this
    /// Ansible); `None`: simulated nodes (`fssim_bin`).
    pub freeswitch: Option<pairscale_freeswitch::Build>,
    /// The nodes' event-socket password; unset, FreeSWITCH's default (simulated nodes only:
    /// the role refuses a password shorter than 16 characters).
    pub esl_password: Option<String>,
}

/// The variables the local projects set (besides the build's own `PAIRSCALE_*` overrides).
pub mod vars {
    pub const KIND: &str = "PAIRSCALE_LOCAL_KIND";
    pub const SUBNET: &str = "PAIRSCALE_LOCAL_SUBNET_ID";
    pub const CLUSTER: &str = "PAIRSCALE_ECS_CLUSTER";
    pub const STATE_DIR: &str = "PAIRSCALE_LOCAL_STATE_DIR";
    pub const FSSIM_BIN: &str = "PAIRSCALE_FSSIM_BIN";
    pub const ESL_PORT: &str = "PAIRSCALE_ESL_PORT";
    pub const SIP_PORT: &str = "PAIRSCALE_SIP_PORT";
    pub const SET_ID: &str = "PAIRSCALE_DISPATCHER_SET_ID";
    pub const CALLS_PER_SEC: &str = "PAIRSCALE_LOCAL_CALLS_PER_SEC";
    pub const MEDIAN_CALL_SECS: &str = "PAIRSCALE_LOCAL_MEDIAN_CALL_SECS";
    pub const INITIAL_CALLS: &str = "PAIRSCALE_LOCAL_INITIAL_CALLS";
    pub const DB_URL: &str = "PAIRSCALE_DISPATCHER_DB_URL";
    pub const RPC_URL: &str = "PAIRSCALE_KAMAILIO_RPC_URL";
    /// The event-socket password the nodes take (the real Ansible run writes this variable
    /// into FreeSWITCH's configuration); unset, FreeSWITCH's default (simulated nodes only).
    pub const ESL_PASSWORD: &str = "PAIRSCALE_ESL_PASSWORD";
    /// Set: the nodes behind the instances are real FreeSWITCH from this installed tree (what
    /// `tests/setup/40-freeswitch.sh` builds), configured by the project's role; unset, they
    /// are simulated. A name of the local build's own, not the harness's
    /// `PAIRSCALE_FREESWITCH_PREFIX`: a build inherits the router's environment, which may
    /// carry that one, and only a project that asks for real nodes gets them.
    pub const FREESWITCH_PREFIX: &str = "PAIRSCALE_LOCAL_FREESWITCH_PREFIX";
    /// The Ansible venv's `bin` folder, whose `ansible-playbook` renders a real node's
    /// configuration (`tests/setup/25-ansible.sh` exports it under this name).
    pub const ANSIBLE_BIN: &str = "PAIRSCALE_ANSIBLE_BIN";
    /// A buildspec file, and the folder holding the repository it runs in (copied afresh for
    /// every build, as CodeBuild checks the source out afresh): both or neither.
    pub const BUILDSPEC: &str = "PAIRSCALE_LOCAL_BUILDSPEC";
    pub const SOURCE: &str = "PAIRSCALE_LOCAL_SOURCE";
}

impl LocalBuildEnv {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<LocalBuildEnv> {
        let req = |k: &str| {
            get(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| anyhow!("{k} is not set"))
        };
        let num = |k: &str, default: &str| -> Result<f64> {
            let v = get(k).unwrap_or_else(|| default.to_string());
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| anyhow!("{k}={v:?} is not a non-negative number"))
        };
        let port = |k: &str, default: &str| -> Result<u16> {
            let v = get(k).unwrap_or_else(|| default.to_string());
            v.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| anyhow!("{k}={v:?} is not a port"))
        };
        let kind = req(vars::KIND)?;
        let is_tf = kind == "terraform";
        if !is_tf && kind != "ansible" {
            bail!("{}={kind:?} must be terraform or ansible", vars::KIND);
        }
        Ok(LocalBuildEnv {
            fleet: req(build_env::FLEET)?,
            tfvars_json: get(build_env::TFVARS_JSON),
            playbook: get(build_env::PLAYBOOK),
            pair_ids: get(build_env::PAIR_IDS),
            subnet_id: if is_tf {
                req(vars::SUBNET)?
            } else {
                String::new()
            },
            ecs_cluster: get(vars::CLUSTER).unwrap_or_else(|| "default".into()),
            state_dir: PathBuf::from(req(vars::STATE_DIR)?),
            fssim_bin: PathBuf::from(if is_tf {
                req(vars::FSSIM_BIN)?
            } else {
                String::new()
            }),
            esl_port: port(vars::ESL_PORT, "8021")?,
            sip_port: port(vars::SIP_PORT, "5060")?,
            set_id: get(vars::SET_ID)
                .unwrap_or_else(|| "1".into())
                .parse()
                .map_err(|_| anyhow!("{} is not a number", vars::SET_ID))?,
            calls_per_sec: num(vars::CALLS_PER_SEC, "0")?,
            median_call_secs: num(vars::MEDIAN_CALL_SECS, "20")?,
            initial_calls: get(vars::INITIAL_CALLS)
                .unwrap_or_else(|| "0".into())
                .parse()
                .map_err(|_| anyhow!("{} is not a count", vars::INITIAL_CALLS))?,
            dispatcher_db_url: if is_tf {
                String::new()
            } else {
                req(vars::DB_URL)?
            },
            kamailio_rpc_url: if is_tf {
                String::new()
            } else {
                req(vars::RPC_URL)?
            },
            real: match (
                get(vars::BUILDSPEC).filter(|v| !v.is_empty()),
                get(vars::SOURCE).filter(|v| !v.is_empty()),
            ) {
                (Some(spec), Some(src)) => Some((PathBuf::from(spec), PathBuf::from(src))),
                (None, None) => None,
                _ => bail!(
                    "{} and {} go together: set both or neither",
                    vars::BUILDSPEC,
                    vars::SOURCE
                ),
            },
            freeswitch: freeswitch(&get)?,
            esl_password: get(vars::ESL_PASSWORD).filter(|p| !p.is_empty()),
            kind,
        })
        .and_then(LocalBuildEnv::checked)
    }

    /// Real nodes take the fleet's event-socket password, which the role wants long.
    fn checked(self) -> Result<LocalBuildEnv> {
        if self.kind == "terraform" && self.freeswitch.is_some() {
            match &self.esl_password {
                Some(p) if p.chars().count() >= 16 => {}
                _ => bail!(
                    "{} is set, so the nodes are real FreeSWITCH: they need {}, 16 characters or more (the FreeSWITCH role's minimum)",
                    vars::FREESWITCH_PREFIX,
                    vars::ESL_PASSWORD
                ),
            }
        }
        Ok(self)
    }
}

/// The FreeSWITCH build [`vars::FREESWITCH_PREFIX`] names, checked whole, with the Ansible
/// that configures its nodes; `None` when it is unset.
fn freeswitch(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<pairscale_freeswitch::Build>> {
    if get(vars::FREESWITCH_PREFIX).is_none_or(|p| p.is_empty()) {
        return Ok(None);
    }
    pairscale_freeswitch::Build::from_lookup(|name| match name {
        pairscale_freeswitch::build::PREFIX_ENV => get(vars::FREESWITCH_PREFIX),
        other => get(other),
    })
    .map(Some)
    .map_err(|e| anyhow!("{}: {e}", vars::FREESWITCH_PREFIX))
}

impl LocalBuildEnv {
    /// The pair ids this Terraform build must leave standing.
    pub(crate) fn wanted_pairs(&self) -> Result<BTreeSet<String>> {
        wanted_pairs(self.tfvars()?)
    }

    pub(crate) fn warm_pairs(&self) -> Result<BTreeSet<String>> {
        warm_pairs(self.tfvars()?)
    }

    fn tfvars(&self) -> Result<&str> {
        self.tfvars_json
            .as_deref()
            .ok_or_else(|| anyhow!("{} is not set", build_env::TFVARS_JSON))
    }
}

/// Of [`wanted_pairs`], those of the warm pool (`{"warm": true}`): their instance stopped, no
/// ESL client.
pub fn warm_pairs(tfvars_json: &str) -> Result<BTreeSet<String>> {
    let v: serde_json::Value =
        serde_json::from_str(tfvars_json).context("PAIRSCALE_TFVARS_JSON is not JSON")?;
    let mut warm = BTreeSet::new();
    for (id, vars) in v
        .get("pairs")
        .and_then(|p| p.as_object())
        .ok_or_else(|| anyhow!("PAIRSCALE_TFVARS_JSON has no \"pairs\" object"))?
    {
        match vars.get("warm") {
            None | Some(serde_json::Value::Bool(false)) => {}
            Some(serde_json::Value::Bool(true)) => {
                warm.insert(id.clone());
            }
            Some(other) => bail!("{id}: \"warm\" must be true or false, not {other}"),
        }
    }
    Ok(warm)
}

/// The pair ids a Terraform run must leave standing: the keys of `{"pairs": {...}}`.
pub fn wanted_pairs(tfvars_json: &str) -> Result<BTreeSet<String>> {
    let v: serde_json::Value =
        serde_json::from_str(tfvars_json).context("PAIRSCALE_TFVARS_JSON is not JSON")?;
    let pairs = v
        .get("pairs")
        .and_then(|p| p.as_object())
        .ok_or_else(|| anyhow!("PAIRSCALE_TFVARS_JSON has no \"pairs\" object"))?;
    pairs
        .keys()
        .map(|k| {
            pairscale_core::PairId::parse(k)
                .map(|p| p.to_string())
                .map_err(|e| anyhow!("{e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    #[test]
    fn tfvars_must_name_valid_pairs() {
        assert_eq!(
            wanted_pairs(r#"{"pairs": {"pair-0002": {}}}"#)
                .unwrap()
                .len(),
            1
        );
        assert!(wanted_pairs(r#"{"pairs": {"node-2": {}}}"#).is_err());
        assert!(wanted_pairs(r#"{"nodes": {}}"#).is_err());
        assert!(wanted_pairs("nope").is_err());
    }

    #[test]
    fn warm_pairs_are_the_ones_marked_warm() {
        let tfvars = r#"{"pairs": {"pair-0001": {}, "pair-0002": {"warm": true}, "pair-0003": {"warm": false}}}"#;
        assert_eq!(wanted_pairs(tfvars).unwrap().len(), 3);
        assert_eq!(
            warm_pairs(tfvars).unwrap().into_iter().collect::<Vec<_>>(),
            vec!["pair-0002"]
        );
        assert!(warm_pairs(r#"{"pairs": {"pair-0002": {"warm": "yes"}}}"#).is_err());
    }

    #[test]
    fn a_kind_other_than_terraform_or_ansible_is_refused() {
        let e = LocalBuildEnv::from_lookup(|k| match k {
            vars::KIND => Some("docker".into()),
            _ => Some("x".into()),
        })
        .unwrap_err();
        assert!(e.to_string().contains(vars::KIND), "{e}");
    }

    /// A terraform build's variables, with `extra` over them.
    fn terraform_env(extra: &[(&str, &str)]) -> Result<LocalBuildEnv> {
        let base = [
            (vars::KIND, "terraform"),
            (build_env::FLEET, "voice"),
            (vars::SUBNET, "subnet-1"),
            (vars::STATE_DIR, "/tmp/x"),
            (vars::FSSIM_BIN, "/bin/true"),
        ];
        let all: std::collections::BTreeMap<String, String> = base
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LocalBuildEnv::from_lookup(|k| all.get(k).cloned())
    }

    #[test]
    fn without_a_freeswitch_prefix_the_nodes_are_simulated() {
        let env = terraform_env(&[]).unwrap();
        assert!(env.freeswitch.is_none());
        assert!(env.esl_password.is_none());
    }

    #[test]
    fn a_freeswitch_prefix_that_holds_no_whole_build_is_refused_naming_it() {
        let empty = std::env::temp_dir();
        let e = terraform_env(&[(vars::FREESWITCH_PREFIX, &empty.to_string_lossy())])
            .unwrap_err()
            .to_string();
        assert!(e.contains(vars::FREESWITCH_PREFIX), "{e}");
        assert!(e.contains("tests/setup/40-freeswitch.sh"), "{e}");
    }

    #[test]
    fn real_nodes_need_the_fleets_long_event_socket_password() {
        // What the harness checks of a build: the marker, the binary, ansible-playbook.
        let tree = std::env::temp_dir().join(pairscale_testkit::unique("fs-tree"));
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        for f in [".complete", "bin/freeswitch", "bin/ansible-playbook"] {
            std::fs::write(tree.join(f), "").unwrap();
        }
        let prefix = tree.to_string_lossy().into_owned();
        let bin = tree.join("bin").to_string_lossy().into_owned();
        let real = [
            (vars::FREESWITCH_PREFIX, prefix.as_str()),
            (vars::ANSIBLE_BIN, bin.as_str()),
        ];
        for password in [None, Some("ClueCon")] {
            let mut with = real.to_vec();
            with.extend(password.map(|p| (vars::ESL_PASSWORD, p)));
            let e = terraform_env(&with).unwrap_err().to_string();
            assert!(e.contains(vars::ESL_PASSWORD) && e.contains("16"), "{e}");
        }
        let mut with = real.to_vec();
        with.push((vars::ESL_PASSWORD, "a-password-long-enough"));
        let env = terraform_env(&with).unwrap();
        assert_eq!(env.freeswitch.unwrap().prefix, tree);
        std::fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn the_ansible_variable_is_the_one_the_freeswitch_harness_reads() {
        assert_eq!(
            vars::ANSIBLE_BIN,
            pairscale_freeswitch::build::ANSIBLE_BIN_ENV
        );
    }
}
