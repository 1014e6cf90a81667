//! The local stand-in for the two CodeBuild builds, run by the router as a build's command.
//!
//! Where the project carries a buildspec and a source to run it in (`PAIRSCALE_LOCAL_BUILDSPEC`,
//! `PAIRSCALE_LOCAL_SOURCE`: the sandbox deployed through Terraform sets them), the `terraform`
//! build is the real one: the buildspec's commands ([`crate::buildspec`]) run the repository's
//! pairs root with terraform against the emulator, and only the machines behind the instances
//! are simulated: a `pairscale-fssim` started on each instance's private address, stopped when
//! the instance is gone. So is an `ansible` build of `scale_in` (its playbook only deregisters
//! rows, on the controller): ansible-playbook against the local PostgreSQL and Kamailio. An
//! `ansible` build of `scale_out` stays the stand-in: its first play configures FreeSWITCH on
//! each node over SSM, which a simulated node cannot take.
//!
//! Otherwise, **this is a stand-in, not Terraform or Ansible.** It produces the same records
//! the real builds produce, in the same places pairscale reads them:
//! - `terraform`: makes the fleet's tagged EC2 instances and ECS services match the pair set
//!   in `PAIRSCALE_TFVARS_JSON` (create what is missing, remove what is not wanted), and for
//!   each instance starts a simulated FreeSWITCH (`pairscale-fssim`) on the instance's
//!   private address, which the local VPC puts in 127.0.0.0/8;
//! - `ansible` `scale_out`: registers each new node in Kamailio's dispatcher table, out of
//!   rotation (flags 4) until the state machine's health check puts it in; `scale_in`:
//!   deregisters each pair's rows, found by pair id (`duid`), whether or not its instance
//!   still exists.
//!
//! Like the real builds it converges: running it twice changes nothing the second time.

use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use pairscale_aws::tags;
use pairscale_core::build::env as build_env;
use pairscale_dispatcher::{Destination, DispatcherConfig, KamailioDispatcher};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// The event-socket password the simulated nodes take (the real Ansible run writes this
    /// variable into FreeSWITCH's configuration); unset, FreeSWITCH's default.
    pub const ESL_PASSWORD: &str = "PAIRSCALE_ESL_PASSWORD";
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
            kind,
        })
    }
}

impl LocalBuildEnv {
    /// The pair ids this Terraform build must leave standing.
    fn wanted_pairs(&self) -> Result<BTreeSet<String>> {
        wanted_pairs(
            self.tfvars_json
                .as_deref()
                .ok_or_else(|| anyhow!("{} is not set", build_env::TFVARS_JSON))?,
        )
    }
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

/// What a converge does: pairs to create, and running pairs to destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converge {
    pub create: Vec<String>,
    pub destroy: Vec<String>,
}

pub fn converge(wanted: &BTreeSet<String>, running: &BTreeSet<String>) -> Converge {
    Converge {
        create: wanted.difference(running).cloned().collect(),
        destroy: running.difference(wanted).cloned().collect(),
    }
}

pub async fn run(env: LocalBuildEnv) -> Result<()> {
    let sdk = pairscale_aws::load_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    match (&env.real, env.kind.as_str(), env.playbook.as_deref()) {
        (Some((spec, src)), "terraform", _) => {
            println!(
                "LOCAL BUILD of the terraform project of fleet {}: the buildspec {} with terraform against the emulator; the FreeSWITCH nodes behind the instances are simulated",
                env.fleet,
                spec.display()
            );
            return terraform_for_real(&env, &ec2, spec, src).await;
        }
        (Some((spec, src)), "ansible", Some("scale_in")) => {
            println!(
                "LOCAL BUILD of the ansible project of fleet {}: the buildspec {} with ansible-playbook against the local PostgreSQL and Kamailio",
                env.fleet,
                spec.display()
            );
            return run_buildspec(&env, spec, src).await;
        }
        (Some(_), "ansible", _) => println!(
            "LOCAL STAND-IN for the ansible build of fleet {} (scale_out configures FreeSWITCH over SSM, which a simulated node cannot take; the stand-in writes the rows its register play writes)",
            env.fleet
        ),
        _ => println!(
            "LOCAL STAND-IN for the {} build of fleet {} (not the real tool; same records)",
            env.kind, env.fleet
        ),
    }
    match env.kind.as_str() {
        "terraform" => terraform(&env, &ec2, &aws_sdk_ecs::Client::new(&sdk)).await,
        _ => ansible(&env, &ec2).await,
    }
}

/// The buildspec at `spec_path`, run in a fresh copy of `source` (as CodeBuild checks the
/// source out afresh for every build) with this build's environment.
async fn run_buildspec(env: &LocalBuildEnv, spec_path: &Path, source: &Path) -> Result<()> {
    let spec = crate::buildspec::Buildspec::parse(
        &std::fs::read_to_string(spec_path)
            .with_context(|| format!("reading {}", spec_path.display()))?,
    )?;
    let number = std::env::var("CODEBUILD_BUILD_NUMBER").unwrap_or_else(|_| "0".into());
    let src = env
        .state_dir
        .join("builds")
        .join(format!("{}-{}-{number}", env.fleet, env.kind));
    let _ = std::fs::remove_dir_all(&src);
    copy_source(source, &src)?;
    // The build's own environment wins over the buildspec's variables, as in CodeBuild.
    let build_env: BTreeMap<String, String> = std::env::vars().collect();
    let dir = src.clone();
    let ran = tokio::task::spawn_blocking(move || spec.run(&dir, &build_env))
        .await
        .context("the buildspec's runner")?;
    let _ = std::fs::remove_dir_all(&src);
    ran
}

/// The buildspec; then a simulated FreeSWITCH on each instance Terraform left, and none for a
/// pair whose instance it destroyed.
async fn terraform_for_real(
    env: &LocalBuildEnv,
    ec2: &aws_sdk_ec2::Client,
    spec_path: &Path,
    source: &Path,
) -> Result<()> {
    let wanted = env.wanted_pairs()?;
    run_buildspec(env, spec_path, source).await?;

    std::fs::create_dir_all(env.state_dir.join("nodes"))?;
    let running = instances(ec2, &env.fleet).await?;
    let left: BTreeSet<String> = running.keys().cloned().collect();
    if left != wanted {
        bail!("terraform apply left the pairs {left:?} running; the build asked for {wanted:?}");
    }
    for (pair, (_, ip)) in &running {
        ensure_node(env, pair, ip).await?;
        println!("{pair}: instance at {ip}, simulated FreeSWITCH listening");
    }
    for pair in node_pairs(env)?.difference(&left) {
        stop_node(env, pair)?;
        println!("{pair}: instance destroyed, simulated FreeSWITCH stopped");
    }
    Ok(())
}

/// The pairs this fleet has a node's pid file for.
fn node_pairs(env: &LocalBuildEnv) -> Result<BTreeSet<String>> {
    let prefix = format!("{}-", env.fleet);
    let mut pairs = BTreeSet::new();
    let dir = env.state_dir.join("nodes");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(pair) = name
            .strip_prefix(&prefix)
            .and_then(|n| n.strip_suffix(".pid"))
        {
            if pairscale_core::PairId::parse(pair).is_ok() {
                pairs.insert(pair.to_string());
            }
        }
    }
    Ok(pairs)
}

/// Copy the source tree, leaving out what a checkout would not have: Terraform's working
/// folders, state files and lock files written by local runs.
pub fn copy_source(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let n = name.to_string_lossy();
        if n == ".terraform" || n.contains(".tfstate") || n == ".terraform.lock.hcl" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_source(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The fleet's live FreeSWITCH instances by pair id: (instance id, private IP).
async fn instances(
    ec2: &aws_sdk_ec2::Client,
    fleet: &str,
) -> Result<BTreeMap<String, (String, String)>> {
    let out = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", tags::FLEET))
                .values(fleet)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .send()
        .await
        .context("ec2:DescribeInstances")?;
    let mut found = BTreeMap::new();
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        let pair = i
            .tags()
            .iter()
            .find(|t| t.key() == Some(tags::PAIR_ID))
            .and_then(|t| t.value());
        if let (Some(pair), Some(id), Some(ip)) = (pair, i.instance_id(), i.private_ip_address()) {
            found.insert(pair.to_string(), (id.to_string(), ip.to_string()));
        }
    }
    Ok(found)
}

fn pid_file(env: &LocalBuildEnv, pair: &str) -> PathBuf {
    env.state_dir
        .join("nodes")
        .join(format!("{}-{pair}.pid", env.fleet))
}

async fn terraform(
    env: &LocalBuildEnv,
    ec2: &aws_sdk_ec2::Client,
    ecs: &aws_sdk_ecs::Client,
) -> Result<()> {
    let wanted = env.wanted_pairs()?;
    let running = instances(ec2, &env.fleet).await?;
    let plan = converge(&wanted, &running.keys().cloned().collect());
    println!(
        "plan: {} to add, {} to destroy",
        plan.create.len(),
        plan.destroy.len()
    );
    std::fs::create_dir_all(env.state_dir.join("nodes"))?;
    ecs.create_cluster()
        .cluster_name(&env.ecs_cluster)
        .send()
        .await
        .context("ecs:CreateCluster")?;
    // A node whose instance exists but whose simulator died (a restart of the stack) is
    // started again: Terraform would not notice, but the machine behind the address would
    // still be there.
    for (pair, (_, ip)) in running.iter().filter(|(p, _)| wanted.contains(*p)) {
        ensure_node(env, pair, ip).await?;
    }
    for pair in &plan.create {
        let ip = create_pair(env, ec2, ecs, pair).await?;
        ensure_node(env, pair, &ip).await?;
        println!("created {pair} at {ip}");
    }
    for pair in &plan.destroy {
        let (instance, ip) = &running[pair];
        destroy_pair(env, ec2, ecs, pair, instance).await?;
        println!("destroyed {pair} ({ip})");
    }
    println!("apply complete");
    Ok(())
}

fn service_name(fleet: &str, pair: &str) -> String {
    format!("{fleet}-{pair}-esl")
}

async fn create_pair(
    env: &LocalBuildEnv,
    ec2: &aws_sdk_ec2::Client,
    ecs: &aws_sdk_ecs::Client,
    pair: &str,
) -> Result<String> {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::C6gLarge)
        .min_count(1)
        .max_count(1)
        .subnet_id(&env.subnet_id)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(tag(tags::FLEET, &env.fleet))
                .tags(tag(tags::PAIR_ID, pair))
                .tags(tag(tags::ROLE, tags::ROLE_FREESWITCH))
                .tags(tag("Name", &format!("{}-{pair}-freeswitch", env.fleet)))
                .build(),
        )
        .send()
        .await
        .context("ec2:RunInstances")?;
    let ip = out
        .instances()
        .first()
        .and_then(|i| i.private_ip_address())
        .ok_or_else(|| anyhow!("RunInstances returned no private address"))?
        .to_string();
    let td = ecs
        .register_task_definition()
        .family(format!("{}-{pair}-esl-client", env.fleet))
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("esl-client")
                .image("pairscale/esl-client:local")
                .memory(256)
                .environment(
                    aws_sdk_ecs::types::KeyValuePair::builder()
                        .name("FREESWITCH_ESL_HOST")
                        .value(&ip)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .context("ecs:RegisterTaskDefinition")?;
    let td_arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or_else(|| anyhow!("RegisterTaskDefinition returned no ARN"))?;
    let etag = |k: &str, v: &str| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build();
    ecs.create_service()
        .cluster(&env.ecs_cluster)
        .service_name(service_name(&env.fleet, pair))
        .task_definition(td_arn)
        .desired_count(1)
        .tags(etag(tags::FLEET, &env.fleet))
        .tags(etag(tags::PAIR_ID, pair))
        .tags(etag(tags::ROLE, "esl-client"))
        .send()
        .await
        .context("ecs:CreateService")?;
    Ok(ip)
}

async fn destroy_pair(
    env: &LocalBuildEnv,
    ec2: &aws_sdk_ec2::Client,
    ecs: &aws_sdk_ecs::Client,
    pair: &str,
    instance: &str,
) -> Result<()> {
    stop_node(env, pair)?;
    ecs.delete_service()
        .cluster(&env.ecs_cluster)
        .service(service_name(&env.fleet, pair))
        .force(true)
        .send()
        .await
        .context("ecs:DeleteService")?;
    ec2.terminate_instances()
        .instance_ids(instance)
        .send()
        .await
        .context("ec2:TerminateInstances")?;
    Ok(())
}

fn running_pid(path: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// Start the pair's simulated FreeSWITCH on `ip:esl_port` unless it runs already. It lives in
/// its own process group, so that the build ending (or being stopped) leaves it running, as
/// an instance outlives the Terraform run that made it.
async fn ensure_node(env: &LocalBuildEnv, pair: &str, ip: &str) -> Result<()> {
    let addr: Ipv4Addr = ip
        .parse()
        .with_context(|| format!("instance address {ip}"))?;
    if !addr.is_loopback() {
        bail!("instance address {ip} is not in 127.0.0.0/8: the local subnet must be loopback");
    }
    let pid_path = pid_file(env, pair);
    if running_pid(&pid_path).is_none() {
        let log = std::fs::File::create(pid_path.with_extension("log"))?;
        let mut cmd = std::process::Command::new(&env.fssim_bin);
        cmd.arg("--nodes")
            .arg("1")
            .arg("--bind-ip")
            .arg(ip)
            .arg("--base-port")
            .arg(env.esl_port.to_string())
            .arg("--heartbeat-secs")
            .arg("0")
            .arg("--calls-per-sec")
            .arg(env.calls_per_sec.to_string())
            .arg("--median-call-secs")
            .arg(env.median_call_secs.to_string())
            .arg("--bridged-fraction")
            .arg("0.3")
            .arg("--initial-calls")
            .arg(env.initial_calls.to_string())
            .env_remove("FSSIM_PASSWORD")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Given to the node through its environment, never on its command line.
        if let Some(password) = std::env::var_os(vars::ESL_PASSWORD).filter(|p| !p.is_empty()) {
            cmd.env("FSSIM_PASSWORD", password);
        }
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", env.fssim_bin.display()))?;
        std::fs::write(&pid_path, child.id().to_string())?;
    }
    let sock = SocketAddr::from((addr, env.esl_port));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(sock).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the simulated FreeSWITCH of {pair} did not listen on {sock} within 5 s")
}

fn stop_node(env: &LocalBuildEnv, pair: &str) -> Result<()> {
    let pid_path = pid_file(env, pair);
    if let Some(pid) = running_pid(&pid_path) {
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()?;
        if !status.success() {
            bail!("could not stop the simulated FreeSWITCH of {pair} (pid {pid})");
        }
    }
    let _ = std::fs::remove_file(pid_path);
    Ok(())
}

async fn ansible(env: &LocalBuildEnv, ec2: &aws_sdk_ec2::Client) -> Result<()> {
    let playbook = env
        .playbook
        .as_deref()
        .ok_or_else(|| anyhow!("{} is not set", build_env::PLAYBOOK))?;
    let ids: Vec<String> = serde_json::from_str(
        env.pair_ids
            .as_deref()
            .ok_or_else(|| anyhow!("{} is not set", build_env::PAIR_IDS))?,
    )
    .with_context(|| format!("{} is not a JSON list", build_env::PAIR_IDS))?;
    let dispatcher = KamailioDispatcher::new(
        DispatcherConfig::new(&env.dispatcher_db_url, env.kamailio_rpc_url.clone())
            .map_err(|e| anyhow!("dispatcher: {e}"))?,
    )
    .map_err(|e| anyhow!("dispatcher: {e}"))?;
    match playbook {
        "scale_out" => {
            let running = instances(ec2, &env.fleet).await?;
            for pair in &ids {
                let (_, ip) = running
                    .get(pair)
                    .ok_or_else(|| anyhow!("{pair}: no running instance to configure"))?;
                let d = Destination::new(env.set_id, format!("sip:{ip}:{}", env.sip_port), pair)
                    .map_err(|e| anyhow!("{pair}: {e}"))?;
                dispatcher
                    .register(&d)
                    .await
                    .map_err(|e| anyhow!("{pair}: {e}"))?;
                // Out of rotation until the state machine's health check resumes it.
                dispatcher
                    .disable(&d)
                    .await
                    .map_err(|e| anyhow!("{pair}: {e}"))?;
                println!("{pair}: registered {} (disabled)", d.uri);
            }
        }
        "scale_in" => {
            // By pair id, as the playbook does: the node's instance may be gone already.
            let listed = dispatcher.list().await.map_err(|e| anyhow!("{e}"))?;
            for pair in &ids {
                let rows: Vec<_> = listed
                    .iter()
                    .filter(|s| s.set_id == env.set_id && s.duid.as_deref() == Some(pair))
                    .collect();
                if rows.is_empty() {
                    println!("{pair}: not in the dispatcher; nothing to deregister");
                }
                for s in rows {
                    let d = Destination::new(env.set_id, s.uri.clone(), pair)
                        .map_err(|e| anyhow!("{pair}: {e}"))?;
                    let outcome = dispatcher
                        .deregister(&d)
                        .await
                        .map_err(|e| anyhow!("{pair}: {e}"))?;
                    println!("{pair}: deregistered {} ({outcome:?})", d.uri);
                }
            }
        }
        other => bail!(
            "{}={other:?} must be scale_out or scale_in",
            build_env::PLAYBOOK
        ),
    }
    println!("playbook {playbook} complete");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn converge_creates_the_missing_and_destroys_the_unwanted() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let c = converge(
            &set(&["pair-0001", "pair-0003"]),
            &set(&["pair-0001", "pair-0002"]),
        );
        assert_eq!(c.create, vec!["pair-0003"]);
        assert_eq!(c.destroy, vec!["pair-0002"]);
    }

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
    fn a_kind_other_than_terraform_or_ansible_is_refused() {
        let e = LocalBuildEnv::from_lookup(|k| match k {
            vars::KIND => Some("docker".into()),
            _ => Some("x".into()),
        })
        .unwrap_err();
        assert!(e.to_string().contains(vars::KIND), "{e}");
    }
}
