//! A sandbox fleet's orchestrator deployed through Terraform: `terraform/envs/sandbox` (the
//! orchestrator module, as an operator applies it) applied to the emulator with the terraform
//! binary on this machine. What the emulator only stores is then wired to what Terraform made,
//! under the same names and with the configuration Terraform gave it, read back from the
//! emulator:
//! - each function Terraform created is run by the router from the workspace's handler binary,
//!   with the environment Terraform set on it (plus the emulator's endpoint and credentials);
//! - each CodeBuild project Terraform created runs the local build stand-in
//!   ([`crate::local_build`]) with the project's own environment variables, parameter-store
//!   ones resolved as CodeBuild resolves them, plus where on this machine the stand-in works.
//!
//! Needs what `tests/setup/20-terraform.sh` exports: `PAIRSCALE_TF_ENDPOINT` (the emulator,
//! behind the proxy for the two Step Functions actions moto lacks) and `TF_CLI_CONFIG_FILE`
//! (providers from the local mirror).

use crate::stack::{
    binary, emulator_env, fleet_config, free_port, loopback_network, rand_u16, split_password,
};
use crate::stack::{Options, Stack, FUNCTIONS};
use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_codebuild::types::EnvironmentVariableType;
use pairscale_testkit as kit;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The root the sandbox applies, relative to the repository.
pub const ROOT: &str = "terraform/envs/sandbox";

/// Where Terraform can deploy to, or why it cannot.
pub fn endpoint() -> Result<String, String> {
    match std::env::var("PAIRSCALE_TF_ENDPOINT") {
        Ok(e) if !e.is_empty() => Ok(e),
        _ => Err(std::env::var("PAIRSCALE_TF_MISSING").unwrap_or_else(|_| {
            "PAIRSCALE_TF_ENDPOINT is not set (tests/setup/20-terraform.sh sets it up)".into()
        })),
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// `postgres://user@host:port/db` → (user, host, port, db).
fn db_parts(base: &str) -> Result<(String, String, u16, String)> {
    let rest = base
        .strip_prefix("postgres://")
        .or_else(|| base.strip_prefix("postgresql://"))
        .ok_or_else(|| anyhow!("{base:?} is not a postgres:// URL"))?;
    let (user, rest) = rest
        .split_once('@')
        .ok_or_else(|| anyhow!("{base:?} names no user"))?;
    let (hostport, db) = rest
        .split_once('/')
        .ok_or_else(|| anyhow!("{base:?} names no database"))?;
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    let port = port
        .parse()
        .map_err(|_| anyhow!("{base:?}: the port {port:?} is not a number"))?;
    let db = db.split('?').next().unwrap_or(db);
    Ok((user.into(), host.into(), port, db.into()))
}

/// A one-file zip (stored, not compressed): the package each function is created with. The
/// emulator only stores it; the router runs the built binaries.
fn write_stand_in_zip(path: &Path) -> Result<()> {
    let name = b"bootstrap";
    let data = b"#!/bin/sh\necho 'run by the router from the built binary' >&2\nexit 1\n";
    let crc = crc32fast::hash(data);
    let (n, d) = (name.len() as u16, data.len() as u32);
    let mut z = Vec::new();
    // Local file header.
    z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]); // version, flags, stored, time, date
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&d.to_le_bytes());
    z.extend_from_slice(&d.to_le_bytes());
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(name);
    z.extend_from_slice(data);
    let central = z.len() as u32;
    // Central directory entry (external attributes: a regular file, mode 0755).
    z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&d.to_le_bytes());
    z.extend_from_slice(&d.to_le_bytes());
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // extra, comment, disk, internal attrs
    z.extend_from_slice(&(0o100_755u32 << 16).to_le_bytes());
    z.extend_from_slice(&0u32.to_le_bytes()); // offset of the local header
    z.extend_from_slice(name);
    let size = z.len() as u32 - central;
    // End of central directory.
    z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&size.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    std::fs::write(path, z).with_context(|| format!("writing {}", path.display()))
}

/// Run terraform in the sandbox root with its working files in `work`; its output goes to
/// `work/<log>`, and the log's end is in the error when it fails.
fn terraform(work: &Path, log: &str, args: &[&str], secrets: &[(&str, &str)]) -> Result<String> {
    let log_path = work.join(log);
    let out = Command::new("terraform")
        .arg(format!("-chdir={}", repo_root().join(ROOT).display()))
        .args(args)
        .env("TF_DATA_DIR", work.join(".terraform"))
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env("CHECKPOINT_DISABLE", "1")
        .envs(secrets.iter().copied())
        .output()
        .context("running terraform")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::write(&log_path, format!("{stdout}\n{stderr}"))
        .with_context(|| format!("writing {}", log_path.display()))?;
    if !out.status.success() {
        let text = format!("{stdout}\n{stderr}");
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        bail!(
            "terraform {} failed ({}); the end of {}:\n{tail}",
            args.first().copied().unwrap_or_default(),
            out.status,
            log_path.display()
        );
    }
    Ok(stdout)
}

/// Deploy a fleet's orchestrator through Terraform and wire the router to it. The fleet is
/// configured as [`crate::stack::stack`] configures its own (see [`fleet_config`]).
pub async fn deploy(opts: Options, say: impl Fn(&str)) -> Result<Stack> {
    let endpoint = endpoint().map_err(|why| anyhow!("Terraform cannot deploy here: {why}"))?;
    let sdk = kit::sdk().await;
    let id = kit::unique("sbx");
    let fleet = kit::unique_fleet();
    let work = std::env::temp_dir().join(format!("{id}-work"));
    let state_dir = std::env::temp_dir().join(&id);
    std::fs::create_dir_all(&work).context("creating Terraform's working folder")?;
    std::fs::create_dir_all(&state_dir).context("creating the stack's state folder")?;

    let artifacts = work.join("lambda");
    for f in FUNCTIONS {
        let dir = artifacts.join(format!("pairscale-{f}"));
        std::fs::create_dir_all(&dir)?;
        write_stand_in_zip(&dir.join("bootstrap.zip"))?;
    }

    let pg_url = std::env::var("PAIRSCALE_TEST_PG_URL").context(
        "PAIRSCALE_TEST_PG_URL: tests/setup/30-kamailio.sh starts PostgreSQL and Kamailio",
    )?;
    let rpc_url = std::env::var("KAMAILIO_RPC_URL").context("KAMAILIO_RPC_URL")?;
    let (db_base, db_password) = split_password(&pg_url);
    let (db_user, db_host, db_port, db_name) = db_parts(&db_base)?;
    let esl_password = format!("{}{}", kit::unique("esl"), kit::unique("pw"));
    let esl_port = free_port();
    let set_id = 100 + (rand_u16() % 30_000) as i32;
    // The account's network, as an operator has it before applying the orchestrator.
    let net = loopback_network(&sdk).await;
    let kamailio_sg = aws_sdk_ec2::Client::new(&sdk)
        .create_security_group()
        .group_name(format!("{id}-kamailio"))
        .description("Kamailio (the account's load balancer)")
        .vpc_id(&net.vpc_id)
        .send()
        .await
        .context("creating Kamailio's security group")?
        .group_id()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the new security group has no id"))?;
    let vars = json!({
        "aws_endpoint": endpoint,
        "name": id,
        "fleet": fleet,
        "lambda_artifacts_dir": artifacts,
        "vpc_id": net.vpc_id,
        "vpc_cidr": net.vpc_cidr,
        "subnet_id": net.subnet_id,
        "subnet_cidr": net.subnet_cidr,
        "kamailio_security_group_id": kamailio_sg,
        "dispatcher_db_host": db_host,
        "dispatcher_db_port": db_port,
        "dispatcher_db_user": db_user,
        "dispatcher_db_name": db_name,
        "kamailio_rpc_url": rpc_url,
        "fleet_config": fleet_config(&opts, esl_port, set_id),
    });
    let var_file = work.join("sandbox.tfvars.json");
    std::fs::write(&var_file, serde_json::to_vec_pretty(&vars)?)?;
    // The two secrets reach Terraform through its environment, never a file or the log.
    let secrets = [
        ("TF_VAR_dispatcher_db_password", db_password.as_str()),
        ("TF_VAR_esl_password", esl_password.as_str()),
    ];
    let state = work.join("terraform.tfstate");
    let state_arg = format!("-state={}", state.display());
    let var_arg = format!("-var-file={}", var_file.display());

    say(&format!("$ terraform -chdir={ROOT} init"));
    terraform(
        &work,
        "init.log",
        &["init", "-input=false", "-no-color"],
        &[],
    )?;
    say(&format!(
        "$ terraform -chdir={ROOT} apply   (against the emulator at {endpoint})"
    ));
    let applied = terraform(
        &work,
        "apply.log",
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            &state_arg,
            &var_arg,
        ],
        &secrets,
    )?;
    if let Some(line) = applied.lines().find(|l| l.starts_with("Apply complete!")) {
        say(line);
    }
    let outputs: Value = serde_json::from_str(&terraform(
        &work,
        "output.log",
        &["output", "-json", "-no-color", &state_arg],
        &[],
    )?)
    .context("terraform output -json is not JSON")?;
    let orch = &outputs["orchestrator"]["value"];
    let text = |v: &Value, what: &str| -> Result<String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("Terraform's outputs have no {what}"))
    };
    let subnet_id = net.subnet_id.clone();
    let table = text(&orch["table_name"], "orchestrator.table_name")?;
    let state_machine = text(&orch["state_machine_arn"], "orchestrator.state_machine_arn")?;
    let cluster_arn = text(&orch["ecs_cluster_arn"], "orchestrator.ecs_cluster_arn")?;
    let cluster = cluster_arn
        .rsplit('/')
        .next()
        .unwrap_or(&cluster_arn)
        .to_string();

    // The functions: the environment Terraform set on each, read back from the emulator.
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let mut prefix = None;
    for f in FUNCTIONS {
        let arn = text(
            &orch["function_arns"][f],
            &format!("orchestrator.function_arns.{f}"),
        )?;
        let conf = lambda
            .get_function_configuration()
            .function_name(&arn)
            .send()
            .await
            .with_context(|| format!("reading the configuration of {arn}"))?;
        let name = conf.function_name().unwrap_or_default().to_string();
        let mut env: Map<String, Value> = conf
            .environment()
            .and_then(|e| e.variables())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
            .unwrap_or_default();
        if let Some(p) = env.get("PAIRSCALE_SSM_PREFIX").and_then(Value::as_str) {
            prefix = Some(p.to_string());
        }
        env.extend(emulator_env());
        kit::router(
            reqwest::Method::PUT,
            &format!("functions/{name}"),
            Some(json!({
                "binary": binary(&format!("pairscale-{f}")),
                "env": env,
                "timeout_secs": conf.timeout().unwrap_or(60),
                "max_concurrency": 2,
            })),
        )
        .await;
    }
    let prefix = prefix.ok_or_else(|| anyhow!("the state function has no PAIRSCALE_SSM_PREFIX"))?;

    // The CodeBuild projects: their environment as CodeBuild gives it to a build.
    let codebuild = aws_sdk_codebuild::Client::new(&sdk);
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let projects = &orch["codebuild_project_names"];
    let tf_project = text(
        &projects["terraform"],
        "orchestrator.codebuild_project_names.terraform",
    )?;
    let an_project = text(
        &projects["ansible"],
        "orchestrator.codebuild_project_names.ansible",
    )?;
    let esl_param = text(
        &orch["ssm_parameter_names"]["esl_password"],
        "orchestrator.ssm_parameter_names.esl_password",
    )?;
    let state_dir_str = state_dir.to_string_lossy().into_owned();
    for (project, kind) in [(&tf_project, "terraform"), (&an_project, "ansible")] {
        let got = codebuild
            .batch_get_projects()
            .names(project)
            .send()
            .await
            .with_context(|| format!("reading CodeBuild project {project}"))?;
        let p = got
            .projects()
            .first()
            .ok_or_else(|| anyhow!("the emulator has no CodeBuild project {project}"))?;
        let mut env = emulator_env();
        let buildspec = p
            .source()
            .and_then(|s| s.buildspec())
            .ok_or_else(|| anyhow!("CodeBuild project {project} has no buildspec"))?
            .to_string();
        for v in p
            .environment()
            .map(|e| e.environment_variables())
            .unwrap_or_default()
        {
            let value = match v.r#type() {
                Some(EnvironmentVariableType::ParameterStore) => parameter(&ssm, v.value()).await?,
                Some(EnvironmentVariableType::SecretsManager) => {
                    bail!("{project}: {} comes from Secrets Manager, which the sandbox does not resolve", v.name())
                }
                _ => v.value().to_string(),
            };
            env.insert(v.name().to_string(), json!(value));
        }
        // Where on this machine the stand-in works, and what it stands in for.
        let mut local = json!({
            "PAIRSCALE_LOCAL_KIND": kind,
            "PAIRSCALE_LOCAL_SUBNET_ID": subnet_id,
            "PAIRSCALE_ECS_CLUSTER": cluster,
            "PAIRSCALE_LOCAL_STATE_DIR": state_dir_str,
            "PAIRSCALE_FSSIM_BIN": binary("pairscale-fssim"),
            "PAIRSCALE_ESL_PORT": esl_port.to_string(),
            "PAIRSCALE_LOCAL_INITIAL_CALLS": opts.initial_calls.to_string(),
            "PAIRSCALE_LOCAL_CALLS_PER_SEC": opts.calls_per_sec.to_string(),
            "PAIRSCALE_LOCAL_MEDIAN_CALL_SECS": opts.median_call_secs.to_string(),
        });
        if kind == "terraform" {
            // On AWS the Ansible run writes it into each node's FreeSWITCH; here the
            // simulated node takes it when the build starts it.
            local["PAIRSCALE_ESL_PASSWORD"] = json!(parameter(&ssm, &esl_param).await?);
            // The real build: the project's buildspec, run in a copy of the repository's
            // terraform/ whose pairs root is pointed at the emulator.
            let root = env
                .get("PAIRSCALE_TF_ROOT")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{project} has no PAIRSCALE_TF_ROOT"))?
                .to_string();
            let source = repository_bundle(&work, &root, &endpoint)?;
            local["PAIRSCALE_LOCAL_BUILDSPEC"] = json!(write_buildspec(&work, kind, &buildspec)?);
            local["PAIRSCALE_LOCAL_SOURCE"] = json!(source);
            // Plain text in the build logs.
            for command in ["init", "plan", "apply"] {
                local[format!("TF_CLI_ARGS_{command}")] = json!("-no-color");
            }
            if let Ok(cli_config) = std::env::var("TF_CLI_CONFIG_FILE") {
                local["TF_CLI_CONFIG_FILE"] = json!(cli_config);
            }
        } else {
            // libpq's variables, as the project sets them, as one URL for the stand-in.
            let pg = |k: &str| {
                env.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            local["PAIRSCALE_DISPATCHER_DB_URL"] = json!(format!(
                "postgres://{}:{}@{}:{}/{}",
                pg("PGUSER"),
                pg("PGPASSWORD"),
                pg("PGHOST"),
                pg("PGPORT"),
                pg("PGDATABASE")
            ));
            // Where Ansible is installed (tests/setup/25-ansible.sh), the scale_in build runs
            // the project's buildspec with it; scale_out stays the stand-in (see local_build).
            if let Ok(bin) = std::env::var("PAIRSCALE_ANSIBLE_BIN") {
                local["PAIRSCALE_LOCAL_BUILDSPEC"] =
                    json!(write_buildspec(&work, kind, &buildspec)?);
                // The bundle made for the terraform project above.
                local["PAIRSCALE_LOCAL_SOURCE"] = json!(work.join("source"));
                local["PATH"] = json!(format!(
                    "{bin}:{}",
                    std::env::var("PATH").unwrap_or_default()
                ));
                local["ANSIBLE_LOCAL_TEMP"] = json!(work.join("ansible-tmp"));
                local["ANSIBLE_HOME"] = json!(work.join("ansible-home"));
            }
        }
        env.extend(local.as_object().cloned().unwrap_or_default());
        kit::put_codebuild_project(
            project,
            &[&binary("pairscale-local-build")],
            Value::Object(env),
            &state_dir_str,
        )
        .await;
    }

    Ok(Stack {
        sdk,
        fleet,
        id,
        state_machine,
        table,
        cluster,
        tf_project,
        an_project,
        state_dir,
        set_id,
        esl_port,
        pg_url,
        prefix,
        esl_password,
        scratch: Some(work),
    })
}

/// The buildspec Terraform put on a project, written to a file for the local build.
fn write_buildspec(work: &Path, kind: &str, buildspec: &str) -> Result<PathBuf> {
    let spec = work.join(format!("{kind}-buildspec.yml"));
    std::fs::write(&spec, buildspec).with_context(|| format!("writing {}", spec.display()))?;
    Ok(spec)
}

/// What the builds run in, as the deploy workflow's source bundle holds it: the repository's
/// `terraform/` and `ansible/`, with an override file in the pairs root `tf_root` pointing its
/// provider and its S3 backend at the emulator. Everything else in a build (init with the
/// fleet's state bucket, lock table and key; plan; apply; the playbooks) is the buildspec's own.
fn repository_bundle(work: &Path, tf_root: &str, endpoint: &str) -> Result<PathBuf> {
    let source = work.join("source");
    for part in ["terraform", "ansible"] {
        crate::local_build::copy_source(&repo_root().join(part), &source.join(part))?;
    }
    let root_dir = source.join(tf_root);
    if !root_dir.is_dir() {
        bail!("PAIRSCALE_TF_ROOT {tf_root:?} is not a folder of the repository");
    }
    std::fs::write(
        root_dir.join("sandbox_override.tf"),
        emulator_override(endpoint),
    )?;
    Ok(source)
}

/// A Terraform override file: the AWS provider and the S3 backend against the emulator.
fn emulator_override(endpoint: &str) -> String {
    r#"# Written by the sandbox (crates/localstack/sandbox/src/terraform.rs): this root against the local AWS
# emulator. Terraform merges it over the root's own provider and backend blocks.
terraform {
  backend "s3" {
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    endpoints = {
      s3       = "EMULATOR"
      dynamodb = "EMULATOR"
      sts      = "EMULATOR"
      iam      = "EMULATOR"
    }
  }
}

provider "aws" {
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {
    cloudwatchlogs = "EMULATOR"
    ec2            = "EMULATOR"
    ecs            = "EMULATOR"
    iam            = "EMULATOR"
    kms            = "EMULATOR"
    s3             = "EMULATOR"
    ssm            = "EMULATOR"
    sts            = "EMULATOR"
  }
}
"#
    .replace("EMULATOR", endpoint)
}

/// A parameter's value, decrypted (as CodeBuild resolves a PARAMETER_STORE variable).
async fn parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String> {
    ssm.get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .with_context(|| format!("reading parameter {name}"))?
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("parameter {name} has no value"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn db_parts_reads_user_host_port_and_database() {
        assert_eq!(
            db_parts("postgres://kam@127.0.0.1:6543/pairscale_test").unwrap(),
            (
                "kam".into(),
                "127.0.0.1".into(),
                6543,
                "pairscale_test".into()
            )
        );
        assert_eq!(db_parts("postgres://kam@db/k").unwrap().2, 5432);
        assert!(db_parts("mysql://kam@db/k").is_err());
        assert!(db_parts("postgres://db/k").is_err());
    }

    #[test]
    fn the_stand_in_package_is_a_zip_python_can_read() {
        let dir = std::env::temp_dir().join(kit::unique("zip"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bootstrap.zip");
        write_stand_in_zip(&path).unwrap();
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; \
                 i = z.getinfo('bootstrap'); print(oct(i.external_attr >> 16), z.read(i).decode().splitlines()[0])",
            ])
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0o100755 #!/bin/sh"
        );
    }
}
