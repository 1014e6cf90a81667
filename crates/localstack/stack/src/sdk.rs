//! A whole deployment made through the SDK in seconds: the scaling state machine
//! (`statemachines/scale.asl.json`, rendered as Terraform renders it) created in the emulator,
//! the five handler binaries registered as functions in the router, local CodeBuild projects
//! that run the build stand-in (`pairscale-local-build`), and the fleet's table, parameters,
//! VPC and ECS cluster. The dispatcher is the real Kamailio and PostgreSQL.
//!
//! Each deployment has its own fleet, table, VPC, ECS cluster, functions, projects, state
//! machine, ESL port and dispatcher set, so callers (the end-to-end tests, the CLI's tests,
//! the sandbox where Terraform is missing) run in parallel without seeing each other.

use crate::deployment::Stack;
use crate::error::StackError;
use crate::fleet::{dispatcher_set_id, fleet_config, Options, PREFIX};
use crate::machine::{emulator_env, free_port, setting, ACCOUNT, REGION};
use crate::network::{loopback_network, Network};
use crate::postgres::DispatcherDb;
use crate::wiring::{put_function, BuildSite, FUNCTIONS};
use pairscale_local_build::vars;
use pairscale_testkit::{emulator, unique, unique_fleet};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// The nodes' event-socket password: long enough for the FreeSWITCH role (16 characters or
/// more), which configures real nodes with it.
const ESL_PASSWORD: &str = "pairscale-local-esl-password";

/// The two secrets' parameter names (SecureString, as the orchestrator's Terraform makes them).
struct Secrets {
    esl_param: String,
    db_param: String,
}

/// Deploy a fleet through the SDK: it starts with 0 pairs (see [`fleet_config`] for the rest).
/// Needs the services `./tests/run` starts and the workspace's binaries built.
pub async fn deploy(opts: Options) -> Result<Stack, StackError> {
    let why = "tests/setup/30-kamailio.sh starts PostgreSQL and Kamailio";
    let pg_url = setting("PAIRSCALE_TEST_PG_URL", why)?;
    let rpc_url = match &opts.kamailio_rpc_url {
        Some(url) => url.clone(),
        None => setting("KAMAILIO_RPC_URL", why)?,
    };
    let db = DispatcherDb::parse(&pg_url)?;
    let id = unique("e2e");
    let mut s = Stack {
        sdk: emulator::sdk().await?,
        fleet: unique_fleet(),
        state_machine: String::new(),
        table: format!("{id}-table"),
        cluster: format!("{id}-cluster"),
        tf_project: format!("{id}-terraform"),
        an_project: format!("{id}-ansible"),
        state_dir: std::env::temp_dir().join(&id),
        set_id: dispatcher_set_id(),
        esl_port: free_port()?,
        pg_url,
        prefix: PREFIX.to_string(),
        esl_password: ESL_PASSWORD.to_string(),
        scratch: None,
        id,
    };
    std::fs::create_dir_all(&s.state_dir).map_err(StackError::io("creating the state folder"))?;
    seed_fleet(&s, &opts).await?;
    let secrets = put_secrets(&s, &db).await?;
    let net = loopback_network(&s.sdk).await?;
    create_cluster(&s).await?;
    put_functions(&s, &secrets, &db, &rpc_url, opts.function_timeout_secs).await?;
    put_projects(&s, &opts, &net, &rpc_url).await?;
    s.state_machine = create_state_machine(&s).await?;
    Ok(s)
}

/// The fleet's table and its parameters: no pairs yet, [`fleet_config`].
async fn seed_fleet(s: &Stack, opts: &Options) -> Result<(), StackError> {
    emulator::create_table(&s.sdk, &s.table).await?;
    let config = fleet_config(opts, s.esl_port, s.set_id);
    emulator::put_fleet_params(&s.sdk, &s.prefix, &s.fleet, "0", &config).await?;
    Ok(())
}

async fn put_secrets(s: &Stack, db: &DispatcherDb) -> Result<Secrets, StackError> {
    let secrets = Secrets {
        esl_param: format!("{}/{}/esl_password", s.prefix, s.fleet),
        db_param: format!("{}/{}/dispatcher_db_password", s.prefix, s.fleet),
    };
    let ssm = aws_sdk_ssm::Client::new(&s.sdk);
    for (name, value) in [
        (&secrets.esl_param, s.esl_password.as_str()),
        (&secrets.db_param, db.password.as_str()),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .map_err(StackError::aws(format!("put the parameter {name}")))?;
    }
    Ok(secrets)
}

/// The orchestrator's Terraform makes the fleet's ECS cluster; the pairs' services go in it.
async fn create_cluster(s: &Stack) -> Result<(), StackError> {
    aws_sdk_ecs::Client::new(&s.sdk)
        .create_cluster()
        .cluster_name(&s.cluster)
        .send()
        .await
        .map_err(StackError::aws(format!(
            "create the ECS cluster {}",
            s.cluster
        )))?;
    Ok(())
}

/// The emulator's environment, with the handlers' and builds' logs at `info`, plus `extra`.
fn with_aws(extra: Map<String, Value>) -> Result<Map<String, Value>, StackError> {
    let mut env = emulator_env()?;
    env.insert("RUST_LOG".into(), json!("info"));
    env.extend(extra);
    Ok(env)
}

/// The five functions, each with the environment the orchestrator's Terraform gives it.
async fn put_functions(
    s: &Stack,
    secrets: &Secrets,
    db: &DispatcherDb,
    rpc_url: &str,
    timeout_secs: i32,
) -> Result<(), StackError> {
    let functions = [
        (
            "lock",
            json!({"PAIRSCALE_TABLE": s.table, "PAIRSCALE_LOCK_TTL_SECONDS": "120"}),
        ),
        (
            "state",
            json!({
                "PAIRSCALE_TABLE": s.table,
                "PAIRSCALE_SSM_PREFIX": s.prefix,
                "PAIRSCALE_LOCK_TTL_SECONDS": "120",
                "PAIRSCALE_ECS_CLUSTER": s.cluster,
            }),
        ),
        (
            "drain",
            json!({
                "PAIRSCALE_TABLE": s.table,
                "PAIRSCALE_SSM_PREFIX": s.prefix,
                "PAIRSCALE_ESL_PASSWORD_PARAM": secrets.esl_param,
                "PAIRSCALE_DISPATCHER_DB_PASSWORD_PARAM": secrets.db_param,
                "PAIRSCALE_DISPATCHER_DB_URL_BASE": db.url_without_password(),
                // The shared test database's certificate is the machine's own, which nothing
                // here can verify (verify-full is tested against a server of the tests' own CA).
                "PAIRSCALE_DISPATCHER_DB_SSLMODE": "disable",
                "PAIRSCALE_KAMAILIO_RPC_URL": rpc_url,
                "PAIRSCALE_ESL_TIMEOUT_MS": "2000",
            }),
        ),
        (
            "build",
            json!({
                "PAIRSCALE_TABLE": s.table,
                "PAIRSCALE_TERRAFORM_PROJECT": s.tf_project,
                "PAIRSCALE_ANSIBLE_PROJECT": s.an_project,
            }),
        ),
        (
            "policy",
            json!({
                "PAIRSCALE_TABLE": s.table,
                "PAIRSCALE_SSM_PREFIX": s.prefix,
                // Made after the functions (its tasks name them), under this name.
                "PAIRSCALE_STATE_MACHINE_ARN": state_machine_arn(s),
            }),
        ),
    ];
    for (f, env) in functions {
        let env = with_aws(env.as_object().cloned().unwrap_or_default())?;
        put_function(&s.function(f), f, env, timeout_secs).await?;
    }
    Ok(())
}

/// The two CodeBuild projects, both run by the stand-in, which also writes the dispatcher
/// table (so it is told where Kamailio is) and gives the nodes it starts the fleet's
/// event-socket password.
async fn put_projects(
    s: &Stack,
    opts: &Options,
    net: &Network,
    rpc_url: &str,
) -> Result<(), StackError> {
    let site = BuildSite {
        subnet_id: &net.subnet_id,
        cluster: &s.cluster,
        state_dir: &s.state_dir,
        esl_port: s.esl_port,
        opts,
    };
    for (project, kind) in [(&s.tf_project, "terraform"), (&s.an_project, "ansible")] {
        let mut env = with_aws(site.env(kind)?)?;
        for (k, v) in [
            (vars::SET_ID, s.set_id.to_string()),
            (vars::DB_URL, s.pg_url.clone()),
            (vars::RPC_URL, rpc_url.to_string()),
            (vars::ESL_PASSWORD, s.esl_password.clone()),
        ] {
            env.insert(k.into(), json!(v));
        }
        site.put_project(project, env).await?;
    }
    Ok(())
}

/// The name the fleet's machine is made under.
fn state_machine_name(s: &Stack) -> String {
    format!("{}-scale", s.id)
}

/// Its ARN, known before it is made, as the orchestrator's Terraform builds it.
fn state_machine_arn(s: &Stack) -> String {
    format!(
        "arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{}",
        state_machine_name(s)
    )
}

/// The one definition, rendered as Terraform's templatefile would; the new machine's ARN.
async fn create_state_machine(s: &Stack) -> Result<String, StackError> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../statemachines/scale.asl.json");
    let mut definition = std::fs::read_to_string(&path)
        .map_err(StackError::io(format!("reading {}", path.display())))?;
    for f in FUNCTIONS {
        let arn = format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
            s.function(f)
        );
        definition = definition.replace(&format!("${{{f}_function_arn}}"), &arn);
    }
    if let Some(at) = definition.find("${") {
        let rest: String = definition[at..].chars().take(40).collect();
        return Err(StackError::Unexpected(format!(
            "{} has a placeholder the stack does not bind: {rest}",
            path.display()
        )));
    }
    let created = aws_sdk_sfn::Client::new(&s.sdk)
        .create_state_machine()
        .name(state_machine_name(s))
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/pairscale-e2e"))
        .send()
        .await
        .map_err(StackError::aws("create the state machine"))?;
    let arn = created.state_machine_arn().to_string();
    if arn != state_machine_arn(s) {
        return Err(StackError::Unexpected(format!(
            "the emulator made the state machine {arn}, not {}: the policy function was given the latter",
            state_machine_arn(s)
        )));
    }
    Ok(arn)
}
