//! `pairscale-sandbox`: pairscale's main job on this machine. Run by `./sandbox`, which starts
//! the local services first (the AWS emulator and the router, PostgreSQL and Kamailio).
//!
//! It deploys a fleet's orchestrator into the local stack (through the Terraform module where
//! `tests/setup/20-terraform.sh` found Terraform, otherwise through the SDK, saying why),
//! brings the fleet to 2 pairs, then with the `pairscale` CLI scales it out to 4 and back in to
//! 2 through the real state machine, and ends with `pairscale status`. The pairs' media nodes
//! are real FreeSWITCH where `./sandbox` found it built (`PAIRSCALE_FREESWITCH_PREFIX`), with
//! real SIP calls through Kamailio during the scale-in, or simulated ones (fssim) carrying
//! simulated calls; it says which, first and last.
//!
//! `--keep` leaves everything up and prints the settings for exploring with the CLI.
//!
//! Layout:
//! - this file: the options, the choice of deploy, `--keep`.
//! - `deploy`: the deploy through Terraform, step by step; the deploy through the SDK is the
//!   stack harness's (`pairscale_stack::sdk`).
//! - `terraform`: the terraform binary run in `terraform/envs/sandbox`.
//! - `projects`: the CodeBuild projects Terraform made, read back, and the source their
//!   real builds run in.
//! - `package`: the stand-in package each function is created with.
//! - `demo`: the scale-out and scale-in with the CLI, and what each run did.
//! - `media`: what the nodes are (real or simulated), asked over their Event Socket; the SIP
//!   calls on real ones.

mod demo;
mod deploy;
mod media;
mod package;
mod projects;
mod terraform;

use anyhow::Result;
use demo::heading;
use media::Nodes;
use pairscale_stack::{binary, Options, Stack, REGION};
use std::process::ExitCode;

/// Through Terraform where it can deploy here, otherwise through the SDK; says which, and why.
async fn deploy(opts: Options) -> Result<Stack> {
    let node = match opts.media {
        pairscale_stack::Media::FreeSwitch(_) => {
            "a real FreeSWITCH, configured by the project's FreeSWITCH role,"
        }
        pairscale_stack::Media::Simulated => "a simulated FreeSWITCH",
    };
    match terraform::endpoint() {
        Ok(_) => {
            heading("Deploying the orchestrator into the local stack through Terraform");
            println!(
                "{} applies terraform/modules/orchestrator to the emulator: the table, the \
                 parameters, the four functions, the state machine (statemachines/scale.asl.json), \
                 the CodeBuild projects, the ECS cluster, IAM, alarms. The emulator stores the \
                 functions and projects; the router runs each function from its built handler \
                 binary with the environment Terraform gave it, and each project's builds on \
                 this machine with the project's variables. The Terraform builds are the real \
                 thing: the project's buildspec runs terraform/envs/example/pairs with terraform \
                 against the emulator (S3 state, DynamoDB lock), and {node} is started on each \
                 new instance's address. The Ansible scale_in builds run the project's buildspec \
                 with ansible-playbook against the local PostgreSQL and Kamailio (where Ansible \
                 is installed); the scale_out builds are a local stand-in, since their first play \
                 configures FreeSWITCH over SSM, which the local instances do not have: it writes \
                 the rows the register play writes.",
                terraform::ROOT
            );
            deploy::deploy(opts, |line| println!("{line}"))
                .await
                .map_err(|e| e.context("deploying through Terraform"))
        }
        Err(why) => {
            heading("Deploying the orchestrator into the local stack through the AWS SDK");
            println!(
                "Terraform cannot deploy here ({why}), so the same resources are created \
                 through the AWS SDK against the emulator instead: the state machine \
                 (statemachines/scale.asl.json), the four handler functions, the CodeBuild \
                 projects, the table, the parameters, the VPC and the ECS cluster. The builds run \
                 the local stand-in for Terraform and Ansible: it makes the instances and \
                 services, starts {node} on each instance's address and writes Kamailio's \
                 dispatcher table."
            );
            Ok(pairscale_stack::sdk::deploy(opts).await?)
        }
    }
}

/// `--keep`: the settings for the CLI, then wait for Ctrl-C.
async fn keep_up(s: &Stack) -> Result<()> {
    heading("--keep: the stack stays up until Ctrl-C");
    println!("Use the CLI against it:");
    println!(
        "  export AWS_ENDPOINT_URL={} AWS_REGION={REGION} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    );
    println!(
        "  export PAIRSCALE_STATE_MACHINE_ARN={} PAIRSCALE_TABLE={} PAIRSCALE_SSM_PREFIX={} PAIRSCALE_ECS_CLUSTER={} PAIRSCALE_DRAIN_FUNCTION={}",
        s.state_machine,
        s.table,
        s.prefix,
        s.cluster,
        s.function("drain")
    );
    println!("  {} status --fleet {}", binary("pairscale")?, s.fleet);
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut keep = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--keep" => keep = true,
            "-h" | "--help" => {
                println!("usage: pairscale-sandbox [--keep]   (run it through ./sandbox)");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("error: unknown option '{other}' (known: --keep)");
                return ExitCode::from(2);
            }
        }
    }
    // Ctrl-C reaches the CLI this waits for, which ends; the error that follows drops the stack,
    // which stops the nodes (in process groups of their own, Ctrl-C does not reach them).
    // Without a handler of its own this program would die at once and leave them running.
    let _interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    let nodes = match Nodes::from_env() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("sandbox failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", nodes.describe());
    let opts = Options {
        policy: "wait",
        deadline_seconds: 120,
        initial_calls: 0,
        // Simulated nodes: calls with realistic spread, shortened for a demo, a median of 3 s.
        calls_per_sec: 2.0,
        median_call_secs: 3.0,
        media: nodes.media.clone(),
        ..Options::default()
    };
    let s = match deploy(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sandbox failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("fleet {} · state machine {}", s.fleet, s.state_machine);
    let mut result = demo::run(&s, &nodes).await;
    if keep {
        result = result.and(keep_up(&s).await);
    }
    match result {
        Ok(()) => {
            heading(&format!(
                "Done: scaled out 2 → 4 and in 4 → 2 on {} media nodes; the removed pairs left only after their last call ended ({})",
                nodes.name,
                media::calls_summary(&nodes)
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sandbox failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
