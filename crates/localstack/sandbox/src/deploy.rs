//! A sandbox fleet's orchestrator deployed through Terraform: `terraform/envs/sandbox` (the
//! orchestrator module, as an operator applies it) applied to the emulator with the terraform
//! binary on this machine. What the emulator only stores is then wired to what Terraform made,
//! under the same names and with the configuration Terraform gave it, read back from the
//! emulator:
//! - each function Terraform created is run by the router from the workspace's handler binary,
//!   with the environment Terraform set on it (plus the emulator's endpoint and credentials);
//! - each CodeBuild project Terraform created runs `pairscale-local-build` with the project's
//!   own environment variables, parameter-store ones resolved as CodeBuild resolves them, plus
//!   where on this machine the local build works: the Terraform builds and Ansible's scale_in
//!   run the project's buildspec for real, the rest is the labelled stand-in.
//!
//! Needs what `tests/setup/20-terraform.sh` exports: `PAIRSCALE_TF_ENDPOINT` (the emulator,
//! behind the proxy for the two Step Functions actions moto lacks) and `TF_CLI_CONFIG_FILE`
//! (providers from the local mirror).

use crate::package::write_stand_in_zip;
use crate::projects::{parameter, repository_bundle, Project};
use crate::terraform::{self, Terraform, ROOT};
use anyhow::{anyhow, Context as _, Result};
use pairscale_local_build::vars;
use pairscale_stack::wiring::put_function;
use pairscale_stack::{
    fleet_config, free_port, loopback_network, BuildSite, DispatcherDb, Network, Options, Stack,
    FUNCTIONS,
};
use pairscale_testkit::{emulator, unique, unique_fleet};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// Deploy a fleet's orchestrator through Terraform and wire the router to it, saying each
/// Terraform command through `say`. The fleet is configured as every stack's (see
/// [`fleet_config`]).
pub async fn deploy(opts: Options, say: impl Fn(&str)) -> Result<Stack> {
    let endpoint =
        terraform::endpoint().map_err(|why| anyhow!("Terraform cannot deploy here: {why}"))?;
    let sb = Sandbox::prepare().await?;
    let net = loopback_network(&sb.sdk).await?;
    let variables = sb.variables(&opts, &net, &endpoint).await?;
    let orch = sb.apply(&variables, &endpoint, say)?;
    let prefix = sb.wire_functions(&orch).await?;
    let site = BuildSite {
        subnet_id: &net.subnet_id,
        cluster: &orch.cluster,
        state_dir: &sb.state_dir,
        esl_port: sb.esl_port,
        opts: &opts,
    };
    sb.wire_projects(&orch, &site, &endpoint).await?;
    Ok(sb.into_stack(orch, prefix))
}

/// What the sandbox makes before Terraform runs: names, folders, the dispatcher database, and
/// the settings the fleet's builds and nodes take.
struct Sandbox {
    sdk: aws_config::SdkConfig,
    id: String,
    fleet: String,
    /// Terraform's working files and logs, the functions' packages, the builds' source.
    work: PathBuf,
    state_dir: PathBuf,
    pg_url: String,
    db: DispatcherDb,
    rpc_url: String,
    esl_port: u16,
    set_id: i32,
    esl_password: String,
}

/// What Terraform's `orchestrator` output names.
struct Orchestrator {
    table: String,
    state_machine: String,
    cluster: String,
    /// Function (`lock`, ...) → its ARN.
    function_arns: Vec<(&'static str, String)>,
    tf_project: String,
    an_project: String,
    esl_param: String,
}

impl Sandbox {
    /// Names, folders, the stand-in packages of the functions, and the local services'
    /// settings.
    async fn prepare() -> Result<Sandbox> {
        let why = "tests/setup/30-kamailio.sh starts PostgreSQL and Kamailio";
        let pg_url = std::env::var("PAIRSCALE_TEST_PG_URL")
            .with_context(|| format!("PAIRSCALE_TEST_PG_URL: {why}"))?;
        let rpc_url = std::env::var("KAMAILIO_RPC_URL")
            .with_context(|| format!("KAMAILIO_RPC_URL: {why}"))?;
        let id = unique("sbx");
        let sb = Sandbox {
            sdk: emulator::sdk().await?,
            fleet: unique_fleet(),
            work: std::env::temp_dir().join(format!("{id}-work")),
            state_dir: std::env::temp_dir().join(&id),
            db: DispatcherDb::parse(&pg_url)?,
            pg_url,
            rpc_url,
            esl_port: free_port()?,
            set_id: pairscale_stack::fleet::dispatcher_set_id(),
            esl_password: format!("{}{}", unique("esl"), unique("pw")),
            id,
        };
        std::fs::create_dir_all(&sb.work).context("creating Terraform's working folder")?;
        std::fs::create_dir_all(&sb.state_dir).context("creating the stack's state folder")?;
        for f in FUNCTIONS {
            let dir = sb.artifacts().join(format!("pairscale-{f}"));
            std::fs::create_dir_all(&dir)?;
            write_stand_in_zip(&dir.join("bootstrap.zip"))?;
        }
        Ok(sb)
    }

    fn artifacts(&self) -> PathBuf {
        self.work.join("lambda")
    }

    /// The root's variables, as an operator writes them for their account (a security group
    /// of Kamailio's made first, as the account has one), in a file beside Terraform's state.
    async fn variables(&self, opts: &Options, net: &Network, endpoint: &str) -> Result<PathBuf> {
        let db = &self.db;
        let vars = json!({
            "aws_endpoint": endpoint,
            "name": self.id,
            "fleet": self.fleet,
            "lambda_artifacts_dir": self.artifacts(),
            "vpc_id": net.vpc_id,
            "vpc_cidr": net.vpc_cidr,
            "subnet_id": net.subnet_id,
            "subnet_cidr": net.subnet_cidr,
            "kamailio_security_group_id": self.kamailio_security_group(net).await?,
            "dispatcher_db_host": db.host,
            "dispatcher_db_port": db.port,
            "dispatcher_db_user": db.user,
            "dispatcher_db_name": db.dbname,
            "kamailio_rpc_url": self.rpc_url,
            "fleet_config": fleet_config(opts, self.esl_port, self.set_id),
        });
        let file = self.work.join("sandbox.tfvars.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&vars)?)
            .with_context(|| format!("writing {}", file.display()))?;
        Ok(file)
    }

    async fn kamailio_security_group(&self, net: &Network) -> Result<String> {
        aws_sdk_ec2::Client::new(&self.sdk)
            .create_security_group()
            .group_name(format!("{}-kamailio", self.id))
            .description("Kamailio (the account's load balancer)")
            .vpc_id(&net.vpc_id)
            .send()
            .await
            .context("creating Kamailio's security group")?
            .group_id()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the new security group has no id"))
    }

    /// `terraform init`, `apply` and `output`; what the orchestrator module made.
    fn apply(&self, variables: &Path, endpoint: &str, say: impl Fn(&str)) -> Result<Orchestrator> {
        let tf = Terraform { work: &self.work };
        // The two secrets reach Terraform through its environment, never a file or the log.
        let secrets = [
            ("TF_VAR_dispatcher_db_password", self.db.password.as_str()),
            ("TF_VAR_esl_password", self.esl_password.as_str()),
        ];
        let state = format!("-state={}", self.work.join("terraform.tfstate").display());
        let var_file = format!("-var-file={}", variables.display());
        say(&format!("$ terraform -chdir={ROOT} init"));
        tf.run("init.log", &["init", "-input=false", "-no-color"], &[])?;
        say(&format!(
            "$ terraform -chdir={ROOT} apply   (against the emulator at {endpoint})"
        ));
        let applied = tf.run(
            "apply.log",
            &[
                "apply",
                "-auto-approve",
                "-input=false",
                "-no-color",
                &state,
                &var_file,
            ],
            &secrets,
        )?;
        if let Some(line) = applied.lines().find(|l| l.starts_with("Apply complete!")) {
            say(line);
        }
        let output = tf.run("output.log", &["output", "-json", "-no-color", &state], &[])?;
        let outputs: Value =
            serde_json::from_str(&output).context("terraform output -json is not JSON")?;
        Orchestrator::from_outputs(&outputs["orchestrator"]["value"])
    }

    /// The router runs each function Terraform created with the environment Terraform set on
    /// it; the fleet's parameter prefix, as the state function is given it.
    async fn wire_functions(&self, orch: &Orchestrator) -> Result<String> {
        let lambda = aws_sdk_lambda::Client::new(&self.sdk);
        let mut prefix = None;
        for (f, arn) in &orch.function_arns {
            let conf = lambda
                .get_function_configuration()
                .function_name(arn)
                .send()
                .await
                .with_context(|| format!("reading the configuration of {arn}"))?;
            let mut env: Map<String, Value> = conf
                .environment()
                .and_then(|e| e.variables())
                .map(|m| m.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
                .unwrap_or_default();
            if let Some(p) = env.get("PAIRSCALE_SSM_PREFIX").and_then(Value::as_str) {
                prefix = Some(p.to_string());
            }
            env.extend(pairscale_stack::emulator_env()?);
            let name = conf.function_name().unwrap_or_default();
            put_function(name, f, env, conf.timeout().unwrap_or(60)).await?;
        }
        prefix.ok_or_else(|| anyhow!("the state function has no PAIRSCALE_SSM_PREFIX"))
    }

    /// The router runs each project's builds with `pairscale-local-build`: the project's
    /// variables, where on this machine it works, and the buildspec and source of a real build.
    async fn wire_projects(
        &self,
        orch: &Orchestrator,
        site: &BuildSite<'_>,
        endpoint: &str,
    ) -> Result<()> {
        let tf = Project::read(&self.sdk, &orch.tf_project).await?;
        let an = Project::read(&self.sdk, &orch.an_project).await?;
        let source = repository_bundle(&self.work, tf.var("PAIRSCALE_TF_ROOT")?, endpoint)?;
        let esl_password = parameter(&aws_sdk_ssm::Client::new(&self.sdk), &orch.esl_param).await?;
        let tf_env = self.terraform_build(&tf, site, &source, &esl_password)?;
        site.put_project(&tf.name, tf_env).await?;
        let an_env = self.ansible_build(&an, site, &source)?;
        site.put_project(&an.name, an_env).await?;
        Ok(())
    }

    /// The real Terraform build: the project's buildspec run in a copy of the repository whose
    /// pairs root is pointed at the emulator.
    fn terraform_build(
        &self,
        tf: &Project,
        site: &BuildSite<'_>,
        source: &Path,
        esl_password: &str,
    ) -> Result<Map<String, Value>> {
        let mut env = tf.env.clone();
        env.extend(site.env("terraform")?);
        // On AWS the Ansible run writes it into each node's FreeSWITCH; here the build gives
        // it to each node it starts (the role writes it into a real one's configuration).
        env.insert(vars::ESL_PASSWORD.into(), json!(esl_password));
        env.insert(
            vars::BUILDSPEC.into(),
            json!(tf.write_buildspec(&self.work, "terraform")?),
        );
        env.insert(vars::SOURCE.into(), json!(source));
        // Plain text in the build logs.
        for command in ["init", "plan", "apply"] {
            env.insert(format!("TF_CLI_ARGS_{command}"), json!("-no-color"));
        }
        if let Ok(cli_config) = std::env::var("TF_CLI_CONFIG_FILE") {
            env.insert("TF_CLI_CONFIG_FILE".into(), json!(cli_config));
        }
        Ok(env)
    }

    /// The Ansible build: the stand-in, told the dispatcher database by libpq's variables as
    /// the project sets them; where Ansible is installed (tests/setup/25-ansible.sh), scale_in
    /// runs the project's buildspec with it (scale_out stays the stand-in: see
    /// pairscale-local-build).
    fn ansible_build(
        &self,
        an: &Project,
        site: &BuildSite<'_>,
        source: &Path,
    ) -> Result<Map<String, Value>> {
        let mut env = an.env.clone();
        env.extend(site.env("ansible")?);
        let db = DispatcherDb {
            user: an.var("PGUSER")?.to_string(),
            password: an.var("PGPASSWORD")?.to_string(),
            host: an.var("PGHOST")?.to_string(),
            port: an.var("PGPORT")?.parse().context("PGPORT is not a port")?,
            dbname: an.var("PGDATABASE")?.to_string(),
        };
        env.insert(vars::DB_URL.into(), json!(db.url()));
        if let Ok(bin) = std::env::var("PAIRSCALE_ANSIBLE_BIN") {
            env.insert(
                vars::BUILDSPEC.into(),
                json!(an.write_buildspec(&self.work, "ansible")?),
            );
            env.insert(vars::SOURCE.into(), json!(source));
            let path = std::env::var("PATH").unwrap_or_default();
            env.insert("PATH".into(), json!(format!("{bin}:{path}")));
            env.insert(
                "ANSIBLE_LOCAL_TEMP".into(),
                json!(self.work.join("ansible-tmp")),
            );
            env.insert("ANSIBLE_HOME".into(), json!(self.work.join("ansible-home")));
        }
        Ok(env)
    }

    fn into_stack(self, orch: Orchestrator, prefix: String) -> Stack {
        Stack {
            sdk: self.sdk,
            fleet: self.fleet,
            id: self.id,
            state_machine: orch.state_machine,
            table: orch.table,
            cluster: orch.cluster,
            tf_project: orch.tf_project,
            an_project: orch.an_project,
            state_dir: self.state_dir,
            set_id: self.set_id,
            esl_port: self.esl_port,
            pg_url: self.pg_url,
            prefix,
            esl_password: self.esl_password,
            scratch: Some(self.work),
        }
    }
}

impl Orchestrator {
    fn from_outputs(orch: &Value) -> Result<Orchestrator> {
        let text = |path: &[&str]| -> Result<String> {
            path.iter()
                .fold(orch, |v, k| &v[*k])
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| {
                    anyhow!(
                        "Terraform's outputs have no orchestrator.{}",
                        path.join(".")
                    )
                })
        };
        let cluster_arn = text(&["ecs_cluster_arn"])?;
        let function_arns = FUNCTIONS
            .iter()
            .map(|f| Ok((*f, text(&["function_arns", f])?)))
            .collect::<Result<_>>()?;
        Ok(Orchestrator {
            table: text(&["table_name"])?,
            state_machine: text(&["state_machine_arn"])?,
            cluster: cluster_arn
                .rsplit('/')
                .next()
                .unwrap_or(&cluster_arn)
                .to_string(),
            function_arns,
            tf_project: text(&["codebuild_project_names", "terraform"])?,
            an_project: text(&["codebuild_project_names", "ansible"])?,
            esl_param: text(&["ssm_parameter_names", "esl_password"])?,
        })
    }
}
