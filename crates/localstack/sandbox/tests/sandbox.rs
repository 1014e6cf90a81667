//! The README's first command, non-interactively: `pairscale-sandbox` runs the whole
//! scale-out and scale-in against the local stack the test command started, through the CLI,
//! with the orchestrator deployed through Terraform where the test command found Terraform,
//! and through the SDK (saying why) where it did not; with simulated media nodes where
//! FreeSWITCH is not built (as `./sandbox` runs on a new machine), and with real FreeSWITCH
//! nodes carrying real SIP calls where it is (the test command builds it first).
#![allow(clippy::unwrap_used)]

use std::process::Command;

/// What `./sandbox` leaves out where FreeSWITCH is not built: the program's nodes are simulated.
const FREESWITCH_PREFIX: &str = "PAIRSCALE_FREESWITCH_PREFIX";

/// The simulated nodes said so, and how to get real ones, first and last; each of the four
/// answered its Event Socket from a pairscale-fssim process.
fn assert_simulated(stdout: &str) {
    assert!(
        stdout.contains("media nodes: simulated (fssim)")
            && stdout.contains("./sandbox --freeswitch")
            && stdout.contains("on simulated (fssim) media nodes"),
        "{stdout}"
    );
    let nodes: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("FreeSWITCH Version"))
        .collect();
    assert_eq!(nodes.len(), 4, "{stdout}");
    assert!(
        nodes.iter().all(|l| l.contains("/pairscale-fssim)")),
        "{stdout}"
    );
}

/// Run the sandbox; its standard output, after checking that it ran the whole job.
fn run_sandbox(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for needle in [
        "Scale-out 2 → 4",
        "Scale-in 4 → 2",
        "$ pairscale status --fleet",
        "Done: scaled out 2 → 4 and in 4 → 2",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }
    // Two pairs stay in rotation at the end, and two were removed from the dispatcher.
    let last = stdout.rsplit("Kamailio dispatcher set").next().unwrap();
    assert_eq!(last.matches("in rotation").count(), 2, "{last}");
    assert!(!last.contains("disabled"), "{last}");
    stdout
}

#[test]
fn the_sandbox_scales_out_and_in_and_exits_0() {
    let stdout = run_sandbox(
        Command::new(env!("CARGO_BIN_EXE_pairscale-sandbox")).env_remove(FREESWITCH_PREFIX),
    );
    assert_simulated(&stdout);
    match std::env::var("PAIRSCALE_TF_ENDPOINT") {
        Ok(_) => {
            assert!(
                stdout.contains("through Terraform")
                    && stdout.contains("$ terraform -chdir=terraform/envs/sandbox apply")
                    && stdout.contains("Apply complete! Resources:"),
                "Terraform is set up but the sandbox did not deploy through it:\n{stdout}"
            );
            // The Terraform builds were the real thing: three applies, the last destroying
            // the two removed pairs' resources.
            let real: Vec<&str> = stdout
                .lines()
                .filter(|l| l.contains("real terraform") && l.contains("SUCCEEDED"))
                .collect();
            assert_eq!(real.len(), 3, "{stdout}");
            // Seven resources per pair: instance, its running state, task definition,
            // service, and the security group its node and its own ESL client share, with its
            // rule each way.
            assert!(real[2].contains("Resources: 0 added"), "{stdout}");
            assert!(real[2].contains("14 destroyed."), "{stdout}");
            // Ansible: scale_out is the stand-in; scale_in the real playbook where the test
            // command installed Ansible, which changed the dispatcher table.
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains("stand-in") && l.contains("playbook scale_out complete")),
                "{stdout}"
            );
            let scale_in = stdout
                .lines()
                .find(|l| l.contains("-ansible #3"))
                .unwrap_or_else(|| panic!("no third Ansible build in:\n{stdout}"));
            if std::env::var_os("PAIRSCALE_ANSIBLE_BIN").is_some() {
                assert!(
                    scale_in.contains("real ansible")
                        && scale_in.contains("changed=1")
                        && scale_in.contains("failed=0"),
                    "{stdout}"
                );
            } else {
                assert!(scale_in.contains("stand-in"), "{stdout}");
            }
        }
        Err(_) => {
            let why = std::env::var("PAIRSCALE_TF_MISSING").unwrap();
            assert!(stdout.contains(&why), "{stdout}");
        }
    }
}

#[test]
fn without_terraform_the_sandbox_deploys_through_the_sdk_and_says_so() {
    let stdout = run_sandbox(
        Command::new(env!("CARGO_BIN_EXE_pairscale-sandbox"))
            .env_remove("PAIRSCALE_TF_ENDPOINT")
            .env("PAIRSCALE_TF_MISSING", "terraform is not installed (test)")
            .env_remove(FREESWITCH_PREFIX),
    );
    assert_simulated(&stdout);
    assert!(
        stdout.contains("through the AWS SDK")
            && stdout.contains("Terraform cannot deploy here (terraform is not installed (test))"),
        "{stdout}"
    );
    assert!(!stdout.contains("$ terraform"), "{stdout}");
}

/// As `./sandbox` runs once FreeSWITCH is built: the nodes behind the instances are real
/// FreeSWITCH 1.10.12 processes of this machine's build, each new pair passes the state
/// machine's canary call (a real SIP call from the node to itself) before it takes calls, the
/// scale-in's quality gate measures real calls, and the drain waits for real SIP calls placed
/// through Kamailio, none of which is dropped.
#[test]
fn with_freeswitch_built_the_sandbox_runs_real_freeswitch_nodes_through_the_scaling() {
    // The test command builds FreeSWITCH before the tests run: without it this fails, naming
    // the setup step (tests/setup/40-freeswitch.sh), rather than passing on simulated nodes.
    let build = pairscale_freeswitch::Build::from_env().unwrap_or_else(|e| panic!("{e}"));
    let prefix = build.prefix.display().to_string();
    let stdout = run_sandbox(&mut Command::new(env!("CARGO_BIN_EXE_pairscale-sandbox")));
    assert!(
        stdout.contains(&format!(
            "media nodes: real FreeSWITCH 1.10.12 from {prefix}"
        )),
        "{stdout}"
    );
    // At 4 pairs, each node's Event Socket answered `version` from this build's binary.
    let nodes: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("FreeSWITCH Version"))
        .collect();
    assert_eq!(nodes.len(), 4, "{stdout}");
    for node in &nodes {
        assert!(
            node.contains("FreeSWITCH Version 1.10.12")
                && node.contains(&format!("{prefix}/bin/freeswitch)")),
            "{node}\n{stdout}"
        );
    }
    // The scale-in waited for real calls, and every one went through.
    assert!(stdout.contains("12 calls up: "), "{stdout}");
    assert!(
        stdout.contains("sipp: 12 calls completed, 0 failed"),
        "{stdout}"
    );
    // The quality gate's canary calls on the real nodes passed (a held scale-in would leave
    // four pairs, which run_sandbox refuses).
    let quality = stdout
        .lines()
        .find(|l| l.contains("MOS") && l.contains("threshold"))
        .unwrap_or_else(|| panic!("no call quality in:\n{stdout}"));
    assert!(!quality.contains("below the threshold"), "{quality}");
    assert!(
        stdout.contains("on real FreeSWITCH 1.10.12 media nodes")
            && stdout.contains("12 SIP calls through Kamailio, none dropped"),
        "{stdout}"
    );
}
