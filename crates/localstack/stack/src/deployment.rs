//! One fleet's deployment in the local stack, however it was made (through the SDK, [`crate::sdk`],
//! or through Terraform by the sandbox): the names of what it made, the settings its builds
//! and nodes use, and the reads the sandbox shows (the dispatcher set, the builds).

use crate::error::StackError;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug)]
pub struct Stack {
    pub sdk: aws_config::SdkConfig,
    pub fleet: String,
    /// The prefix of every name this stack made (`<id>-table`, `<id>-lock`, ...).
    pub id: String,
    pub state_machine: String,
    pub table: String,
    pub cluster: String,
    pub tf_project: String,
    pub an_project: String,
    pub state_dir: PathBuf,
    pub set_id: i32,
    pub esl_port: u16,
    pub pg_url: String,
    /// The root of the fleet's SSM parameters (`PAIRSCALE_SSM_PREFIX`).
    pub prefix: String,
    /// The nodes' event-socket password.
    pub esl_password: String,
    /// A folder removed with the stack (Terraform's working files, when it deployed).
    pub scratch: Option<PathBuf>,
}

impl Drop for Stack {
    /// Stop the nodes this fleet's builds started, whatever the test's outcome, and wait for
    /// them to go (a real FreeSWITCH winds down for a few seconds; then it is killed), so that
    /// none outlives the stack.
    fn drop(&mut self) {
        let mut pids = Vec::new();
        if let Ok(dir) = std::fs::read_dir(self.state_dir.join("nodes")) {
            for entry in dir.flatten() {
                if entry.path().extension().is_some_and(|e| e == "pid") {
                    if let Ok(pid) = std::fs::read_to_string(entry.path()) {
                        let pid = pid.trim().to_string();
                        if self.is_node(&pid) {
                            let _ = std::process::Command::new("kill").arg(&pid).status();
                            pids.push(pid);
                        }
                    }
                }
            }
        }
        let started = std::time::Instant::now();
        while pids.iter().any(|p| self.is_node(p)) && started.elapsed() < NODES_STOP_TIMEOUT {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        for pid in pids.iter().filter(|p| self.is_node(p)) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid])
                .status();
        }
        // And its folders: the nodes' pid files and logs, the builds' copies of the source.
        let _ = std::fs::remove_dir_all(&self.state_dir);
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// How long the nodes get to stop when a stack goes away (FreeSWITCH takes 5 to 7 s).
const NODES_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Stack {
    /// Whether process `pid` is one of this stack's nodes and runs: a simulated one, or a
    /// FreeSWITCH whose folders are in the state folder. Not a zombie (whose command line is
    /// empty: a node's starter is gone, and whoever inherited it may not reap it), nor
    /// another process that took the pid of a node gone since.
    fn is_node(&self, pid: &str) -> bool {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        cmdline.contains("pairscale-fssim") || cmdline.contains(&*self.state_dir.to_string_lossy())
    }

    /// The name of one of this stack's functions (`lock`, `state`, `drain`, `build`).
    pub fn function(&self, f: &str) -> String {
        format!("{}-{f}", self.id)
    }

    /// The dispatcher rows of this stack's set: pair id → (destination, flags).
    pub async fn try_dispatcher_rows(&self) -> Result<BTreeMap<String, (String, i32)>, StackError> {
        let (client, conn) = tokio_postgres::connect(&self.pg_url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let rows = client
            .query(
                "SELECT destination, flags, attrs FROM dispatcher WHERE setid = $1",
                &[&self.set_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let (destination, flags, attrs): (String, i32, String) =
                    (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                let pair = attrs
                    .split(';')
                    .find_map(|kv| kv.strip_prefix("duid="))
                    .ok_or_else(|| {
                        StackError::Unexpected(format!(
                            "the dispatcher row of {destination} carries no pair id (duid) in {attrs:?}"
                        ))
                    })?;
                Ok((pair.to_string(), (destination, flags)))
            })
            .collect()
    }

    /// The builds the router ran for `project`, as its control API lists them.
    pub async fn try_builds(&self, project: &str) -> Result<Vec<serde_json::Value>, StackError> {
        let all = pairscale_testkit::control::request(reqwest::Method::GET, "builds", None).await?;
        let listed = all
            .as_array()
            .or_else(|| all["builds"].as_array())
            .ok_or_else(|| StackError::Unexpected(format!("the router listed no builds: {all}")))?;
        Ok(listed
            .iter()
            .filter(|b| b["project"] == project || b["projectName"] == project)
            .cloned()
            .collect())
    }
}
