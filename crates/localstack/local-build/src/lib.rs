//! What the local stack's CodeBuild projects run: the router starts `pairscale-local-build` as
//! a build's command, with the project's environment.
//!
//! Where the project carries a buildspec and a source to run it in (`PAIRSCALE_LOCAL_BUILDSPEC`,
//! `PAIRSCALE_LOCAL_SOURCE`: the sandbox deployed through Terraform sets them), the `terraform`
//! build is the real one: the buildspec's commands ([`buildspec`]) run the repository's
//! pairs root with terraform against the emulator, and only the machines behind the instances
//! are this machine's: a FreeSWITCH node started on each instance's private address, stopped
//! when the instance is gone. So is an `ansible` build of `scale_in` (its playbook only
//! deregisters rows, on the controller): ansible-playbook against the local PostgreSQL and
//! Kamailio. An `ansible` build of `scale_out` stays the stand-in: its first play configures
//! FreeSWITCH on each node over SSM, which the local instances do not have.
//!
//! The node behind an instance is simulated (`pairscale-fssim`: the Event Socket and a call
//! model, no SIP) unless the project names a FreeSWITCH build (`PAIRSCALE_LOCAL_FREESWITCH_PREFIX`,
//! what `tests/setup/40-freeswitch.sh` builds): then it is real FreeSWITCH, its configuration
//! rendered by the project's role (the Event Socket on the fleet's port with the fleet's
//! password, SIP on the fleet's port, the canary extension), started in its own process group
//! so that it outlives the build, and ready (`status` says so, its SIP profile runs) before the
//! build goes on. The first line of the log says which.
//!
//! Otherwise, **this is a stand-in, not Terraform or Ansible.** It produces the same records
//! the real builds produce, in the same places pairscale reads them:
//! - `terraform`: makes the fleet's tagged EC2 instances and ECS services match the pair set
//!   in `PAIRSCALE_TFVARS_JSON` (create what is missing, remove what is not wanted), and for
//!   each instance starts a FreeSWITCH node (as above) on the instance's private address,
//!   which the local VPC puts in 127.0.0.0/8;
//! - `ansible` `scale_out`: registers each new node in Kamailio's dispatcher table, out of
//!   rotation (flags 4) until the state machine's health check puts it in; `scale_in`:
//!   deregisters each pair's rows, found by pair id (`duid`), whether or not its instance
//!   still exists.
//!
//! Like the real builds it converges: running it twice changes nothing the second time.
//!
//! Layout:
//! - [`env`]: what a build is configured with, the project's variables ([`vars`]) read into
//!   a [`LocalBuildEnv`].
//! - [`buildspec`]: a CodeBuild buildspec read and run on this machine.
//! - `real`: the real builds: the project's buildspec in a fresh copy of the source, then,
//!   after Terraform, a FreeSWITCH node behind each instance it left.
//! - `stand_in`: the stand-in for Terraform and Ansible where no buildspec runs.
//! - [`nodes`]: the fleet's instances and the FreeSWITCH nodes on their addresses, simulated
//!   or real.

use anyhow::Result;

pub mod buildspec;
pub mod env;
pub mod nodes;
mod real;
mod stand_in;

pub use env::{vars, wanted_pairs, LocalBuildEnv};
pub use real::copy_source;

/// Run the build `env` describes: the real one where the project gives a buildspec that runs
/// here, the stand-in otherwise. The first line of the log says which.
pub async fn run(env: LocalBuildEnv) -> Result<()> {
    let sdk = pairscale_aws::load_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    match (&env.real, env.kind.as_str(), env.playbook.as_deref()) {
        (Some((spec, src)), "terraform", _) => {
            println!(
                "LOCAL BUILD of the terraform project of fleet {}: the buildspec {} with terraform against the emulator; the FreeSWITCH nodes behind the instances: {}",
                env.fleet,
                spec.display(),
                nodes::media(&env)
            );
            return real::terraform(&env, &ec2, spec, src).await;
        }
        (Some((spec, src)), "ansible", Some("scale_in")) => {
            println!(
                "LOCAL BUILD of the ansible project of fleet {}: the buildspec {} with ansible-playbook against the local PostgreSQL and Kamailio",
                env.fleet,
                spec.display()
            );
            return real::run_buildspec(&env, spec, src).await;
        }
        (Some(_), "ansible", _) => println!(
            "LOCAL STAND-IN for the ansible build of fleet {} (scale_out configures FreeSWITCH over SSM, which the local instances do not have{}; the stand-in writes the rows its register play writes)",
            env.fleet,
            if env.freeswitch.is_some() {
                ": the terraform build configured each node's FreeSWITCH with the same role when it started it"
            } else {
                ""
            }
        ),
        _ => println!(
            "LOCAL STAND-IN for the {} build of fleet {} (not the real tool; same records; the FreeSWITCH nodes: {})",
            env.kind,
            env.fleet,
            nodes::media(&env)
        ),
    }
    match env.kind.as_str() {
        "terraform" => stand_in::terraform(&env, &ec2, &aws_sdk_ecs::Client::new(&sdk)).await,
        _ => stand_in::ansible(&env, &ec2).await,
    }
}
