//! Configuration from the environment, read once at cold start. The variable names are
//! constants here and appear with the same spelling in `terraform/modules/orchestrator`.

use pairscale_core::lock::{MAX_TTL_SECS, MIN_TTL_SECS};
use pairscale_core::{Error, Result};

pub const ENV_TABLE: &str = "PAIRSCALE_TABLE";
pub const ENV_SSM_PREFIX: &str = "PAIRSCALE_SSM_PREFIX";
pub const ENV_LOCK_TTL: &str = "PAIRSCALE_LOCK_TTL_SECONDS";
pub const ENV_ECS_CLUSTER: &str = "PAIRSCALE_ECS_CLUSTER";
/// The CloudWatch namespace of the fleet metrics (default `Pairscale`).
pub const ENV_METRICS_NAMESPACE: &str = "PAIRSCALE_METRICS_NAMESPACE";

/// Every variable the handlers of this crate read, for the Terraform consistency test.
pub const ALL_ENV: &[&str] = &[
    ENV_TABLE,
    ENV_SSM_PREFIX,
    ENV_LOCK_TTL,
    ENV_ECS_CLUSTER,
    ENV_METRICS_NAMESPACE,
];

pub const DEFAULT_METRICS_NAMESPACE: &str = "Pairscale";
/// CloudWatch's longest namespace.
pub const MAX_METRICS_NAMESPACE_LEN: usize = 255;

pub const DEFAULT_LOCK_TTL_SECS: u64 = 900;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub ssm_prefix: String,
    pub lock_ttl_secs: u64,
    pub ecs_cluster: Option<String>,
    pub metrics_namespace: String,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Parse from any lookup (tests pass a map). Fails fast, naming the variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let bad = |k: &str, v: &str, why: &str| Error::InvalidConfig {
            fleet: "*".into(),
            field: k.into(),
            value: v.into(),
            reason: why.into(),
        };
        let table = table(get(ENV_TABLE))?;
        let ssm_prefix = ssm_prefix(get(ENV_SSM_PREFIX))?;
        let lock_ttl_secs = match get(ENV_LOCK_TTL) {
            None => DEFAULT_LOCK_TTL_SECS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .and_then(|t| pairscale_core::lock::validate_ttl(t).ok())
                .ok_or_else(|| {
                    bad(
                        ENV_LOCK_TTL,
                        &v,
                        &format!("must be seconds, {MIN_TTL_SECS}..={MAX_TTL_SECS}"),
                    )
                })?,
        };
        let metrics_namespace = metrics_namespace(get(ENV_METRICS_NAMESPACE))?;
        Ok(Config {
            table,
            ssm_prefix,
            lock_ttl_secs,
            ecs_cluster: get(ENV_ECS_CLUSTER).filter(|v| !v.is_empty()),
            metrics_namespace,
        })
    }
}

/// `PAIRSCALE_TABLE` as set: required, not empty.
fn table(set: Option<String>) -> Result<String> {
    set.filter(|v| !v.is_empty())
        .ok_or_else(|| Error::InvalidConfig {
            fleet: "*".into(),
            field: ENV_TABLE.into(),
            value: String::new(),
            reason: "must be set to the DynamoDB table name".into(),
        })
}

/// `PAIRSCALE_SSM_PREFIX` as set (or not): `/pairscale` when unset.
fn ssm_prefix(set: Option<String>) -> Result<String> {
    let prefix = set.unwrap_or_else(|| pairscale_aws::ssm::DEFAULT_PREFIX.into());
    if !prefix.starts_with('/') {
        return Err(Error::InvalidConfig {
            fleet: "*".into(),
            field: ENV_SSM_PREFIX.into(),
            value: prefix,
            reason: "must start with '/'".into(),
        });
    }
    Ok(prefix)
}

/// `PAIRSCALE_METRICS_NAMESPACE` as set (or not): `Pairscale` when unset.
fn metrics_namespace(set: Option<String>) -> Result<String> {
    let ns = set
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.into());
    if ns.len() > MAX_METRICS_NAMESPACE_LEN || ns.contains(':') {
        return Err(Error::InvalidConfig {
            fleet: "*".into(),
            field: ENV_METRICS_NAMESPACE.into(),
            value: ns,
            reason: format!(
                "must be a CloudWatch namespace: 1-{MAX_METRICS_NAMESPACE_LEN} characters, no ':'"
            ),
        });
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_apply_and_the_table_is_required() {
        let c = Config::from_lookup(lookup(&[(ENV_TABLE, "t")])).expect("valid");
        assert_eq!(c.lock_ttl_secs, DEFAULT_LOCK_TTL_SECS);
        assert_eq!(c.ssm_prefix, "/pairscale");
        let e = Config::from_lookup(lookup(&[])).expect_err("no table");
        assert!(e.to_string().contains(ENV_TABLE), "{e}");
    }

    #[test]
    fn a_bad_ttl_names_the_variable() {
        let e =
            Config::from_lookup(lookup(&[(ENV_TABLE, "t"), (ENV_LOCK_TTL, "5")])).expect_err("ttl");
        assert!(e.to_string().contains(ENV_LOCK_TTL), "{e}");
    }
}

// ----- pairscale-drain -------------------------------------------------------------------

/// SSM SecureString holding the Event Socket password (read once per cold start).
pub const ENV_ESL_PASSWORD_PARAM: &str = "PAIRSCALE_ESL_PASSWORD_PARAM";
/// SSM SecureString holding the dispatcher database password.
pub const ENV_DISPATCHER_DB_PASSWORD_PARAM: &str = "PAIRSCALE_DISPATCHER_DB_PASSWORD_PARAM";
/// `postgres://user@host:port/db`, without a password: the password comes from SSM.
pub const ENV_DISPATCHER_DB_URL_BASE: &str = "PAIRSCALE_DISPATCHER_DB_URL_BASE";
/// TLS to the dispatcher database: `verify-full` (the default) or `disable`, as libpq names them.
pub const ENV_DISPATCHER_DB_SSLMODE: &str = "PAIRSCALE_DISPATCHER_DB_SSLMODE";
/// An SSM String parameter holding the PEM bundle of the CAs verify-full trusts (RDS: the
/// region's bundle). Unset: the system's root certificates.
pub const ENV_DISPATCHER_DB_CA_PARAM: &str = "PAIRSCALE_DISPATCHER_DB_CA_PARAM";
/// Kamailio's JSON-RPC endpoint, `http://host:port/RPC`: the one a quiesce or resume changes
/// when its input names no `kamailio_rpc_urls` (the fleet configuration's HA pair, which the
/// state machine passes per run).
pub const ENV_KAMAILIO_RPC_URL: &str = "PAIRSCALE_KAMAILIO_RPC_URL";
/// Nodes visited at once (default 64: a Lambda has 1,024 file descriptors).
pub const ENV_DRAIN_CONCURRENCY: &str = "PAIRSCALE_DRAIN_CONCURRENCY";
/// The bound on one visit to one node, connect included (default 3000).
pub const ENV_ESL_TIMEOUT_MS: &str = "PAIRSCALE_ESL_TIMEOUT_MS";

/// Every variable `pairscale-drain` reads, for the Terraform consistency test.
pub const DRAIN_ENV: &[&str] = &[
    ENV_TABLE,
    ENV_SSM_PREFIX,
    ENV_ESL_PASSWORD_PARAM,
    ENV_DISPATCHER_DB_PASSWORD_PARAM,
    ENV_DISPATCHER_DB_URL_BASE,
    ENV_DISPATCHER_DB_SSLMODE,
    ENV_DISPATCHER_DB_CA_PARAM,
    ENV_KAMAILIO_RPC_URL,
    ENV_DRAIN_CONCURRENCY,
    ENV_ESL_TIMEOUT_MS,
    ENV_METRICS_NAMESPACE,
];

pub const DEFAULT_DRAIN_CONCURRENCY: usize = 64;
pub const MAX_DRAIN_CONCURRENCY: usize = 400;
pub const DEFAULT_ESL_TIMEOUT_MS: u64 = 3_000;
pub const MIN_ESL_TIMEOUT_MS: u64 = 100;
pub const MAX_ESL_TIMEOUT_MS: u64 = 60_000;

/// `pairscale-drain`'s configuration. Holds names of secrets, never their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainConfig {
    pub esl_password_param: String,
    pub dispatcher_db_password_param: String,
    /// The dispatcher database without its password (that comes from SSM at start).
    pub dispatcher_db: tokio_postgres::Config,
    /// `verify-full` or `disable`.
    pub dispatcher_db_sslmode: String,
    /// The SSM parameter with the CA bundle verify-full trusts (`None`: the system's roots).
    pub dispatcher_db_ca_param: Option<String>,
    pub kamailio_rpc_url: String,
    pub concurrency: usize,
    pub esl_timeout_ms: u64,
    /// Where the fleet's call-quality figure is published.
    pub metrics_namespace: String,
    /// The fleet table, where `measure` reads the pair records and records the reading.
    pub table: String,
    /// Where the fleet configurations are (`measure` reads the fleet's).
    pub ssm_prefix: String,
}

impl DrainConfig {
    pub fn from_env() -> Result<DrainConfig> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Parse from any lookup (tests pass a map). Fails fast, naming the variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<DrainConfig> {
        let bad = |k: &str, v: &str, why: &str| Error::InvalidConfig {
            fleet: "*".into(),
            field: k.into(),
            value: pairscale_core::error::shorten(v),
            reason: why.into(),
        };
        let required = |k: &str, why: &str| {
            get(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(k, "", why))
        };
        let table = table(get(ENV_TABLE))?;
        let ssm_prefix = ssm_prefix(get(ENV_SSM_PREFIX))?;
        let esl_password_param = required(
            ENV_ESL_PASSWORD_PARAM,
            "must name the SSM SecureString with the ESL password",
        )?;
        let dispatcher_db_password_param = required(
            ENV_DISPATCHER_DB_PASSWORD_PARAM,
            "must name the SSM SecureString with the dispatcher DB password",
        )?;
        // Never echo a value that might carry a password.
        let no_password = "must be postgres://user@host:port/db with a user and no password";
        let dispatcher_db = pairscale_media::parse_db_url(&required(
            ENV_DISPATCHER_DB_URL_BASE,
            "must be postgres://user@host:port/db",
        )?)
        .ok()
        .filter(|db| db.get_user().is_some_and(|u| !u.is_empty()) && db.get_password().is_none())
        .ok_or_else(|| bad(ENV_DISPATCHER_DB_URL_BASE, "<not shown>", no_password))?;
        let dispatcher_db_sslmode =
            match get(ENV_DISPATCHER_DB_SSLMODE) {
                None => "verify-full".to_string(),
                Some(v) if v == "verify-full" || v == "disable" => v,
                Some(v) => return Err(bad(
                    ENV_DISPATCHER_DB_SSLMODE,
                    &v,
                    "must be verify-full or disable (require and prefer do not check who answers)",
                )),
            };
        let dispatcher_db_ca_param = get(ENV_DISPATCHER_DB_CA_PARAM).filter(|v| !v.is_empty());
        if dispatcher_db_ca_param.is_some() && dispatcher_db_sslmode != "verify-full" {
            return Err(bad(
                ENV_DISPATCHER_DB_CA_PARAM,
                dispatcher_db_ca_param.as_deref().unwrap_or_default(),
                "names a CA bundle, yet PAIRSCALE_DISPATCHER_DB_SSLMODE is not verify-full",
            ));
        }
        let kamailio_rpc_url = required(ENV_KAMAILIO_RPC_URL, "must be http://host:port/RPC")?;
        if !kamailio_rpc_url.starts_with("http://") && !kamailio_rpc_url.starts_with("https://") {
            return Err(bad(
                ENV_KAMAILIO_RPC_URL,
                &kamailio_rpc_url,
                "must be an http(s) URL",
            ));
        }
        let concurrency = match get(ENV_DRAIN_CONCURRENCY) {
            None => DEFAULT_DRAIN_CONCURRENCY,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|c| (1..=MAX_DRAIN_CONCURRENCY).contains(c))
                .ok_or_else(|| {
                    bad(
                        ENV_DRAIN_CONCURRENCY,
                        &v,
                        &format!(
                            "must be 1..={MAX_DRAIN_CONCURRENCY} (a Lambda has 1,024 descriptors)"
                        ),
                    )
                })?,
        };
        let esl_timeout_ms = match get(ENV_ESL_TIMEOUT_MS) {
            None => DEFAULT_ESL_TIMEOUT_MS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|t| (MIN_ESL_TIMEOUT_MS..=MAX_ESL_TIMEOUT_MS).contains(t))
                .ok_or_else(|| {
                    bad(
                        ENV_ESL_TIMEOUT_MS,
                        &v,
                        &format!(
                            "must be milliseconds, {MIN_ESL_TIMEOUT_MS}..={MAX_ESL_TIMEOUT_MS}"
                        ),
                    )
                })?,
        };
        Ok(DrainConfig {
            esl_password_param,
            dispatcher_db_password_param,
            dispatcher_db,
            dispatcher_db_sslmode,
            dispatcher_db_ca_param,
            kamailio_rpc_url,
            concurrency,
            esl_timeout_ms,
            metrics_namespace: metrics_namespace(get(ENV_METRICS_NAMESPACE))?,
            table,
            ssm_prefix,
        })
    }

    /// The database settings with `password` put in. The result holds a secret: hand it to
    /// the dispatcher adapter, never to a log (its `Debug` hides the password).
    pub fn dispatcher_db(&self, password: &str) -> tokio_postgres::Config {
        let mut db = self.dispatcher_db.clone();
        db.password(password);
        db
    }
}

#[cfg(test)]
mod drain_config_tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        (ENV_ESL_PASSWORD_PARAM, "/pairscale/esl-password"),
        (
            ENV_DISPATCHER_DB_PASSWORD_PARAM,
            "/pairscale/dispatcher-db-password",
        ),
        (
            ENV_DISPATCHER_DB_URL_BASE,
            "postgres://kamailio@10.0.0.5:5432/kamailio",
        ),
        (ENV_KAMAILIO_RPC_URL, "http://10.0.0.5:5080/RPC"),
        (ENV_TABLE, "pairscale"),
    ];

    #[test]
    fn defaults_apply_and_every_required_variable_is_named() {
        let c = DrainConfig::from_lookup(lookup(BASE)).expect("valid");
        assert_eq!(
            (c.concurrency, c.esl_timeout_ms),
            (DEFAULT_DRAIN_CONCURRENCY, DEFAULT_ESL_TIMEOUT_MS)
        );
        for (name, _) in BASE {
            let partial: Vec<(&str, &str)> =
                BASE.iter().filter(|(k, _)| k != name).copied().collect();
            let e = DrainConfig::from_lookup(lookup(&partial)).expect_err("missing");
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_not_echoed() {
        let mut env = BASE.to_vec();
        env[2] = (
            ENV_DISPATCHER_DB_URL_BASE,
            "postgres://kamailio:hunter2@db/kamailio",
        );
        let e = DrainConfig::from_lookup(lookup(&env)).expect_err("password in url");
        assert!(
            e.to_string().contains(ENV_DISPATCHER_DB_URL_BASE)
                && !e.to_string().contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn the_password_is_put_in_as_it_is() {
        let c = DrainConfig::from_lookup(lookup(BASE)).expect("valid");
        let db = c.dispatcher_db("p@ss:w/rd");
        assert_eq!(db.get_password(), Some(&b"p@ss:w/rd"[..]));
        assert_eq!(db.get_user(), Some("kamailio"));
        assert_eq!(db.get_dbname(), Some("kamailio"));
        assert_eq!(db.get_ports(), &[5432]);
        assert!(!format!("{db:?}").contains("p@ss"), "{db:?}");
    }

    #[test]
    fn a_url_without_a_user_or_that_does_not_parse_is_refused() {
        for url in [
            "postgres://10.0.0.5/kamailio",
            "postgres://kamailio@db:port/k",
            "http://",
        ] {
            let mut env = BASE.to_vec();
            env[2] = (ENV_DISPATCHER_DB_URL_BASE, url);
            let e = DrainConfig::from_lookup(lookup(&env)).expect_err(url);
            assert!(e.to_string().contains(ENV_DISPATCHER_DB_URL_BASE), "{e}");
        }
    }

    #[test]
    fn tls_is_verify_full_unless_disabled_and_other_modes_are_refused_by_name() {
        let c = DrainConfig::from_lookup(lookup(BASE)).expect("valid");
        assert_eq!(
            (c.dispatcher_db_sslmode.as_str(), c.dispatcher_db_ca_param),
            ("verify-full", None)
        );
        let mut env = BASE.to_vec();
        env.push((ENV_DISPATCHER_DB_SSLMODE, "disable"));
        let c = DrainConfig::from_lookup(lookup(&env)).expect("disable");
        assert_eq!(c.dispatcher_db_sslmode, "disable");
        for mode in ["require", "prefer", "verify-ca", ""] {
            let mut env = BASE.to_vec();
            env.push((ENV_DISPATCHER_DB_SSLMODE, mode));
            let e = DrainConfig::from_lookup(lookup(&env)).expect_err(mode);
            assert!(e.to_string().contains(ENV_DISPATCHER_DB_SSLMODE), "{e}");
        }
    }

    #[test]
    fn a_ca_bundle_goes_with_verify_full_only() {
        let mut env = BASE.to_vec();
        env.push((ENV_DISPATCHER_DB_CA_PARAM, "/pairscale/f/dispatcher_db_ca"));
        let c = DrainConfig::from_lookup(lookup(&env)).expect("verify-full with a bundle");
        assert_eq!(
            c.dispatcher_db_ca_param.as_deref(),
            Some("/pairscale/f/dispatcher_db_ca")
        );
        env.push((ENV_DISPATCHER_DB_SSLMODE, "disable"));
        let e = DrainConfig::from_lookup(lookup(&env)).expect_err("a bundle with disable");
        assert!(e.to_string().contains(ENV_DISPATCHER_DB_CA_PARAM), "{e}");
    }

    #[test]
    fn bad_numbers_name_their_variable() {
        for (k, v) in [
            (ENV_DRAIN_CONCURRENCY, "0"),
            (ENV_DRAIN_CONCURRENCY, "5000"),
            (ENV_ESL_TIMEOUT_MS, "fast"),
        ] {
            let mut env = BASE.to_vec();
            env.push((k, v));
            let e = DrainConfig::from_lookup(lookup(&env)).expect_err(v);
            assert!(e.to_string().contains(k), "{e}");
        }
    }
}

// ----- pairscale-build -------------------------------------------------------------------

/// The CodeBuild project that runs the pairs' Terraform.
pub const ENV_TERRAFORM_PROJECT: &str = "PAIRSCALE_TERRAFORM_PROJECT";
/// The CodeBuild project that runs the Ansible playbooks.
pub const ENV_ANSIBLE_PROJECT: &str = "PAIRSCALE_ANSIBLE_PROJECT";

/// Every variable `pairscale-build` reads (it also reads [`ENV_TABLE`] for the pair records).
pub const BUILD_ENV: &[&str] = &[ENV_TABLE, ENV_TERRAFORM_PROJECT, ENV_ANSIBLE_PROJECT];

/// `pairscale-build`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildConfig {
    pub table: String,
    pub terraform_project: String,
    pub ansible_project: String,
}

impl BuildConfig {
    pub fn from_env() -> Result<BuildConfig> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Parse from any lookup (tests pass a map). Fails fast, naming the variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<BuildConfig> {
        let required = |k: &str, why: &str| {
            get(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::InvalidConfig {
                    fleet: "*".into(),
                    field: k.into(),
                    value: String::new(),
                    reason: why.into(),
                })
        };
        Ok(BuildConfig {
            table: required(ENV_TABLE, "must be set to the DynamoDB table name")?,
            terraform_project: required(
                ENV_TERRAFORM_PROJECT,
                "must name the CodeBuild project that runs the pairs' Terraform",
            )?,
            ansible_project: required(
                ENV_ANSIBLE_PROJECT,
                "must name the CodeBuild project that runs the Ansible playbooks",
            )?,
        })
    }
}

#[cfg(test)]
mod build_tests {
    use super::*;

    #[test]
    fn every_build_variable_is_required_and_named_when_missing() {
        let all = [
            (ENV_TABLE, "t"),
            (ENV_TERRAFORM_PROJECT, "tf"),
            (ENV_ANSIBLE_PROJECT, "an"),
        ];
        let c = BuildConfig::from_lookup(|k| {
            all.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .expect("valid");
        assert_eq!(c.terraform_project, "tf");
        for missing in BUILD_ENV {
            let e = BuildConfig::from_lookup(|k| {
                all.iter()
                    .find(|(n, _)| *n == k && n != missing)
                    .map(|(_, v)| v.to_string())
            })
            .expect_err("missing");
            assert!(e.to_string().contains(missing), "{missing}: {e}");
        }
    }
}

// ----- pairscale-policy ------------------------------------------------------------------

/// The fleet's scaling state machine, which the policy starts runs of.
pub const ENV_STATE_MACHINE_ARN: &str = "PAIRSCALE_STATE_MACHINE_ARN";

/// Every variable `pairscale-policy` reads.
pub const POLICY_ENV: &[&str] = &[
    ENV_TABLE,
    ENV_SSM_PREFIX,
    ENV_METRICS_NAMESPACE,
    ENV_STATE_MACHINE_ARN,
];

/// `pairscale-policy`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEnv {
    pub table: String,
    pub ssm_prefix: String,
    /// Where the decision metrics go, and where the `Channels` history is read from.
    pub metrics_namespace: String,
    pub state_machine_arn: String,
}

impl PolicyEnv {
    pub fn from_env() -> Result<PolicyEnv> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Parse from any lookup (tests pass a map). Fails fast, naming the variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<PolicyEnv> {
        let table = table(get(ENV_TABLE))?;
        let ssm_prefix = ssm_prefix(get(ENV_SSM_PREFIX))?;
        let metrics_namespace = metrics_namespace(get(ENV_METRICS_NAMESPACE))?;
        let state_machine_arn = get(ENV_STATE_MACHINE_ARN)
            .filter(|v| v.starts_with("arn:") && v.contains(":stateMachine:"))
            .ok_or_else(|| Error::InvalidConfig {
                fleet: "*".into(),
                field: ENV_STATE_MACHINE_ARN.into(),
                value: get(ENV_STATE_MACHINE_ARN).unwrap_or_default(),
                reason: "must be the ARN of the fleet's scaling state machine".into(),
            })?;
        Ok(PolicyEnv {
            table,
            ssm_prefix,
            metrics_namespace,
            state_machine_arn,
        })
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn the_state_machine_is_required_and_named_when_missing_or_wrong() {
        let arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:voice-scale";
        let with = |machine: Option<&'static str>| {
            PolicyEnv::from_lookup(move |k| match k {
                ENV_TABLE => Some("t".into()),
                ENV_STATE_MACHINE_ARN => machine.map(str::to_string),
                _ => None,
            })
        };
        let c = with(Some(arn)).expect("valid");
        assert_eq!(c.state_machine_arn, arn);
        assert_eq!(c.metrics_namespace, DEFAULT_METRICS_NAMESPACE);
        for bad in [None, Some(""), Some("voice-scale")] {
            let e = with(bad).expect_err("refused");
            assert!(
                e.to_string().contains(ENV_STATE_MACHINE_ARN),
                "{bad:?}: {e}"
            );
        }
    }
}
