//! `pairscale-sandbox`: pairscale's main job on this machine. Run by `./sandbox`, which starts
//! the local services first (the AWS emulator and the router, PostgreSQL and Kamailio).
//!
//! It deploys a fleet's orchestrator into the local stack (through the Terraform module where
//! `tests/setup/20-terraform.sh` found Terraform, otherwise through the SDK, saying why),
//! brings the fleet to 2 pairs of simulated FreeSWITCH nodes carrying calls, then with the
//! `pairscale` CLI scales it out to 4 and back in to 2 through the real state machine, and
//! ends with `pairscale status`.
//!
//! `--keep` leaves everything up and prints the settings for exploring with the CLI.

use pairscale_sandbox::stack::{binary, stack, Options, Stack, REGION};
use pairscale_sandbox::terraform;
use std::collections::BTreeSet;
use std::process::{Command, ExitCode};

fn heading(text: &str) {
    println!("\n=== {text}");
}

/// The CLI, pointed at this stack.
fn cli(s: &Stack, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary("pairscale"));
    cmd.args(args)
        .env("PAIRSCALE_STATE_MACHINE_ARN", &s.state_machine)
        .env("PAIRSCALE_TABLE", &s.table)
        .env("PAIRSCALE_SSM_PREFIX", &s.prefix)
        .env("PAIRSCALE_ECS_CLUSTER", &s.cluster)
        .env("PAIRSCALE_DRAIN_FUNCTION", s.function("drain"))
        .env("PAIRSCALE_USER", "sandbox")
        .env("AWS_REGION", REGION);
    cmd
}

fn run_cli(s: &Stack, args: &[&str]) -> Result<(), String> {
    println!("$ pairscale {}", args.join(" "));
    let status = cli(s, args)
        .status()
        .map_err(|e| format!("could not run pairscale: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("pairscale {} ended with {status}", args.join(" ")))
    }
}

/// The builds a run started (the router ran them on this machine): project, number, how they
/// ended, whether each was the real tool or the stand-in, and the line that says what it did.
async fn show_builds(s: &Stack, seen: &mut BTreeSet<String>) {
    let mut builds = s.builds(&s.tf_project).await;
    builds.extend(s.builds(&s.an_project).await);
    builds.sort_by(|a, b| {
        a["start_time"]
            .as_f64()
            .partial_cmp(&b["start_time"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    println!("Builds this run started (run here by the local CodeBuild):");
    for b in builds {
        let id = b["id"].as_str().unwrap_or_default().to_string();
        if !seen.insert(id) {
            continue;
        }
        let log = b["log_path"]
            .as_str()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let kind = if log.starts_with("LOCAL BUILD of the terraform") {
            "real terraform"
        } else if log.starts_with("LOCAL BUILD of the ansible") {
            "real ansible"
        } else if log.starts_with("LOCAL STAND-IN") {
            "stand-in"
        } else {
            "?"
        };
        let summary = log
            .lines()
            .rev()
            .find(|l| {
                l.starts_with("Apply complete!")
                    || (l.starts_with("localhost ") && l.contains("changed="))
                    || l.starts_with("playbook ")
                    || l.starts_with("apply complete")
                    || l.starts_with("build failed")
            })
            .unwrap_or("");
        let summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
        println!(
            "  {} #{:<2} {:<10} {kind:<15} {summary}",
            b["project"].as_str().unwrap_or_default(),
            b["build_number"],
            b["status"].as_str().unwrap_or_default(),
        );
    }
}

async fn show_dispatcher(s: &Stack) {
    let rows = s.dispatcher_rows().await;
    println!("Kamailio dispatcher set {}:", s.set_id);
    for (pair, (uri, flags)) in &rows {
        let state = if flags & 4 != 0 {
            "disabled: no new calls"
        } else {
            "in rotation"
        };
        println!("  {pair}  {uri:<28} {state}");
    }
    if rows.is_empty() {
        println!("  (no destinations)");
    }
}

/// `pairscale scale --fleet F --to N --reason R --wait`.
fn scale_to(s: &Stack, to: &str, reason: &str) -> Result<(), String> {
    run_cli(
        s,
        &[
            "scale", "--fleet", &s.fleet, "--to", to, "--reason", reason, "--wait",
        ],
    )
}

async fn demo(s: &Stack) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    heading("Bringing the fleet to 2 pairs (a scale-out run from nothing)");
    scale_to(s, "2", "sandbox: initial fleet")?;
    show_builds(s, &mut seen).await;
    show_dispatcher(s).await;

    heading("Scale-out 2 → 4");
    scale_to(s, "4", "sandbox: calls per pair high")?;
    show_builds(s, &mut seen).await;
    show_dispatcher(s).await;

    heading("Scale-in 4 → 2 (the drained pairs' calls end before they are removed)");
    scale_to(s, "2", "sandbox: calls per pair low")?;
    show_builds(s, &mut seen).await;
    println!("The removed pairs are gone from the dispatcher; the rest take calls:");
    show_dispatcher(s).await;

    heading("pairscale status");
    run_cli(s, &["status", "--fleet", &s.fleet, "--live"])?;
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
    let opts = Options {
        policy: "wait",
        deadline_seconds: 120,
        initial_calls: 0,
        // Calls with realistic spread, shortened for a demo: a median of 3 s.
        calls_per_sec: 2.0,
        median_call_secs: 3.0,
    };
    let s = match terraform::endpoint() {
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
                 against the emulator (S3 state, DynamoDB lock), and a simulated FreeSWITCH is \
                 started on each new instance's address. The Ansible scale_in builds run the \
                 project's buildspec with ansible-playbook against the local PostgreSQL and \
                 Kamailio (where Ansible is installed); the scale_out builds are a local stand-in, \
                 since their first play configures FreeSWITCH over SSM, which a simulated node \
                 cannot take: it writes the rows the register play writes.",
                terraform::ROOT
            );
            match terraform::deploy(opts, |line| println!("{line}")).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("sandbox failed: deploying through Terraform: {e:#}");
                    return ExitCode::FAILURE;
                }
            }
        }
        Err(why) => {
            heading("Deploying the orchestrator into the local stack through the AWS SDK");
            println!(
                "Terraform cannot deploy here ({why}), so the same resources are created \
                 through the AWS SDK against the emulator instead: the state machine \
                 (statemachines/scale.asl.json), the four handler functions, the CodeBuild \
                 projects, the table, the parameters, the VPC and the ECS cluster. The builds run \
                 the local stand-in for Terraform and Ansible: it makes the instances and \
                 services, starts a simulated FreeSWITCH on each instance's address and writes \
                 Kamailio's dispatcher table."
            );
            stack(opts).await
        }
    };
    println!("fleet {} · state machine {}", s.fleet, s.state_machine);
    let result = demo(&s).await;
    if keep {
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
        println!("  {} status --fleet {}", binary("pairscale"), s.fleet);
        let _ = tokio::signal::ctrl_c().await;
    }
    match result {
        Ok(()) => {
            heading("Done: scaled out 2 → 4 and in 4 → 2; the removed pairs left only after their last call ended");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sandbox failed: {e}");
            ExitCode::FAILURE
        }
    }
}
