//! The terraform binary on this machine, run in the sandbox's root (`terraform/envs/sandbox`)
//! with its working files in a folder of the sandbox's own.

use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The root the sandbox applies, relative to the repository.
pub const ROOT: &str = "terraform/envs/sandbox";

/// Where Terraform can deploy to, or why it cannot (what `tests/setup/20-terraform.sh` found).
pub fn endpoint() -> Result<String, String> {
    match std::env::var("PAIRSCALE_TF_ENDPOINT") {
        Ok(e) if !e.is_empty() => Ok(e),
        _ => Err(std::env::var("PAIRSCALE_TF_MISSING").unwrap_or_else(|_| {
            "PAIRSCALE_TF_ENDPOINT is not set (tests/setup/20-terraform.sh sets it up)".into()
        })),
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// Terraform in the sandbox root, keeping its working files (`.terraform`, logs) in `work`.
#[derive(Debug)]
pub struct Terraform<'a> {
    pub work: &'a Path,
}

impl Terraform<'_> {
    /// Run `terraform args`, with `secrets` in its environment only; its output goes to
    /// `work/<log>`, and the log's end is in the error when it fails. Its standard output.
    pub fn run(&self, log: &str, args: &[&str], secrets: &[(&str, &str)]) -> Result<String> {
        let log_path = self.work.join(log);
        let out = Command::new("terraform")
            .arg(format!("-chdir={}", repo_root().join(ROOT).display()))
            .args(args)
            .env("TF_DATA_DIR", self.work.join(".terraform"))
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .envs(secrets.iter().copied())
            .output()
            .context("running terraform")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let text = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(&log_path, &text)
            .with_context(|| format!("writing {}", log_path.display()))?;
        if !out.status.success() {
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
}
