//! The node behind an instance when the project names a FreeSWITCH build: real FreeSWITCH
//! 1.10.12 from the build the test command made (`tests/setup/40-freeswitch.sh`), started by
//! `nodes::ensure` as a Terraform build starts it and ended by `nodes::stop` as a later build
//! does. Without the build this fails naming the setup step; it never passes on a simulator.
#![allow(clippy::unwrap_used)]

use pairscale_esl::{Client, ClientOptions, Password};
use pairscale_freeswitch::slot::Slot;
use pairscale_freeswitch::Build;
use pairscale_local_build::{nodes, vars, LocalBuildEnv};
use std::collections::BTreeMap;
use std::path::Path;

const PASSWORD: &str = "pairscale-local-build-test-password";
const FLEET: &str = "nodetest";
const PAIR: &str = "pair-0001";

/// Whether `pid` runs (a zombie's command line is empty).
fn runs(pid: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

/// Whatever the test's outcome: a node it started is killed, its state folder removed (the
/// node outlives this process otherwise, by design).
struct Cleanup {
    state_dir: std::path::PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let pid_file = nodes::pid_file_in(&self.state_dir, FLEET, PAIR);
        if let Ok(pid) = std::fs::read_to_string(pid_file) {
            let pid = pid.trim();
            let ours = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c).contains(&*self.state_dir.to_string_lossy())
            });
            if ours {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", pid])
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_node_is_freeswitch_of_the_build_in_its_own_group_until_stop_ends_it() {
    let build = Build::from_env().unwrap_or_else(|e| panic!("{e}"));
    // A loopback address and ports no other test uses while this runs.
    let slot = Slot::reserve().unwrap();
    let state_dir = std::env::temp_dir().join(pairscale_testkit::unique("local-build-node"));
    let _cleanup = Cleanup {
        state_dir: state_dir.clone(),
    };
    let settings: BTreeMap<String, String> = [
        (vars::KIND, "terraform".to_string()),
        (pairscale_core::build::env::FLEET, FLEET.into()),
        (vars::SUBNET, "subnet-local".into()),
        (vars::STATE_DIR, state_dir.to_string_lossy().into_owned()),
        (vars::FSSIM_BIN, "/nonexistent/pairscale-fssim".into()),
        (vars::ESL_PORT, slot.esl_port().to_string()),
        (vars::SIP_PORT, slot.sip_port().to_string()),
        (vars::ESL_PASSWORD, PASSWORD.into()),
        (
            vars::FREESWITCH_PREFIX,
            build.prefix.to_string_lossy().into_owned(),
        ),
        (
            vars::ANSIBLE_BIN,
            build
                .ansible_playbook
                .parent()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let env = LocalBuildEnv::from_lookup(|k| settings.get(k).cloned()).unwrap();
    let ip = slot.ip().to_string();

    let said = nodes::ensure(&env, PAIR, &ip).await.unwrap();
    assert!(said.starts_with("FreeSWITCH ready (pid "), "{said}");
    let pid_file = nodes::pid_file_in(&state_dir, FLEET, PAIR);
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();

    // FreeSWITCH itself, this build's binary, in a process group of its own (so that the
    // build's group ending leaves it running).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, build.freeswitch());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let group = after_name.split_whitespace().nth(2).unwrap();
    assert_eq!(group, pid, "{stat}");

    // Its Event Socket on the fleet's port with the fleet's password; ready; the role's SIP
    // profile on the fleet's SIP port.
    let mut esl = Client::connect(
        &format!("{ip}:{}", slot.esl_port()),
        &Password::new(PASSWORD),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    let version = esl.api("version").await.unwrap();
    assert!(version.contains("FreeSWITCH Version 1.10.12"), "{version}");
    assert!(esl.status().await.unwrap().ready);
    let sofia = esl.api("sofia status").await.unwrap();
    assert!(
        sofia.contains(&format!("{ip}:{}", slot.sip_port())) && sofia.contains("RUNNING"),
        "{sofia}"
    );
    drop(esl);

    // A second build finds it running and leaves it be.
    let again = nodes::ensure(&env, PAIR, &ip).await.unwrap();
    assert_eq!(again, format!("FreeSWITCH running (pid {pid})"));

    // The instance destroyed: the process ends, its folders and pid file go.
    nodes::stop(&env, PAIR).await.unwrap();
    assert!(!runs(&pid), "FreeSWITCH {pid} still runs after stop");
    assert!(!pid_file.exists());
    let node_dir = state_dir.join("nodes").join(format!("{FLEET}-{PAIR}"));
    assert!(!Path::new(&node_dir).exists(), "{}", node_dir.display());
}
