//! The CodeBuild projects Terraform made, read back from the emulator as CodeBuild gives them
//! to a build (parameter-store variables resolved), and what a local build of each needs on
//! top: the buildspec Terraform put on the project, and the source it runs in.

use crate::terraform::repo_root;
use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_codebuild::types::EnvironmentVariableType;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// One project as a build sees it.
#[derive(Debug)]
pub struct Project {
    pub name: String,
    /// The emulator's environment, then the project's own variables.
    pub env: Map<String, Value>,
    pub buildspec: String,
}

impl Project {
    pub async fn read(sdk: &aws_config::SdkConfig, name: &str) -> Result<Project> {
        let got = aws_sdk_codebuild::Client::new(sdk)
            .batch_get_projects()
            .names(name)
            .send()
            .await
            .with_context(|| format!("reading CodeBuild project {name}"))?;
        let p = got
            .projects()
            .first()
            .ok_or_else(|| anyhow!("the emulator has no CodeBuild project {name}"))?;
        let buildspec = p
            .source()
            .and_then(|s| s.buildspec())
            .ok_or_else(|| anyhow!("CodeBuild project {name} has no buildspec"))?
            .to_string();
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let mut env = pairscale_stack::emulator_env()?;
        for v in p
            .environment()
            .map(|e| e.environment_variables())
            .unwrap_or_default()
        {
            let value = match v.r#type() {
                Some(EnvironmentVariableType::ParameterStore) => parameter(&ssm, v.value()).await?,
                Some(EnvironmentVariableType::SecretsManager) => bail!(
                    "{name}: {} comes from Secrets Manager, which the sandbox does not resolve",
                    v.name()
                ),
                _ => v.value().to_string(),
            };
            env.insert(v.name().to_string(), json!(value));
        }
        Ok(Project {
            name: name.to_string(),
            env,
            buildspec,
        })
    }

    /// One of the project's variables.
    pub fn var(&self, name: &str) -> Result<&str> {
        self.env
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{} has no {name}", self.name))
    }

    /// The buildspec, written to `work` for the local build.
    pub fn write_buildspec(&self, work: &Path, kind: &str) -> Result<PathBuf> {
        let spec = work.join(format!("{kind}-buildspec.yml"));
        std::fs::write(&spec, &self.buildspec)
            .with_context(|| format!("writing {}", spec.display()))?;
        Ok(spec)
    }
}

/// A parameter's value, decrypted (as CodeBuild resolves a PARAMETER_STORE variable).
pub async fn parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String> {
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

/// What the builds run in, as the deploy workflow's source bundle holds it: the repository's
/// `terraform/` and `ansible/`, with an override file in the pairs root `tf_root` pointing its
/// provider and its S3 backend at the emulator. Everything else in a build (init with the
/// fleet's state bucket, lock table and key; plan; apply; the playbooks) is the buildspec's own.
pub fn repository_bundle(work: &Path, tf_root: &str, endpoint: &str) -> Result<PathBuf> {
    let source = work.join("source");
    for part in ["terraform", "ansible"] {
        pairscale_local_build::copy_source(&repo_root().join(part), &source.join(part))?;
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
    r#"# Written by the sandbox (crates/localstack/sandbox/src/projects.rs): this root against the local AWS
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
