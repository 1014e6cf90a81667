//! Where things are: the FreeSWITCH build (`tests/setup/40-freeswitch.sh`), the Ansible venv
//! (`tests/setup/25-ansible.sh`) and this repository (its role and playbooks).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The installed FreeSWITCH tree: `bin/freeswitch`, `lib/freeswitch/mod`, `etc/freeswitch`.
pub const PREFIX_ENV: &str = "PAIRSCALE_FREESWITCH_PREFIX";
/// The Ansible venv's `bin` folder.
pub const ANSIBLE_BIN_ENV: &str = "PAIRSCALE_ANSIBLE_BIN";

const PREFIX_HINT: &str = "tests/setup/40-freeswitch.sh builds FreeSWITCH 1.10.12 and exports it; \
    run ./tests/run (or source tests/lib/common.sh and tests/setup/40-freeswitch.sh first)";
const ANSIBLE_HINT: &str = "tests/setup/25-ansible.sh makes the Ansible venv and exports it; \
    run ./tests/run (or source tests/lib/common.sh and tests/setup/25-ansible.sh first)";

/// What starting an instance needs, found once.
#[derive(Debug, Clone)]
pub struct Build {
    /// The installed tree.
    pub prefix: PathBuf,
    /// `ansible-playbook` of the venv.
    pub ansible_playbook: PathBuf,
    /// This repository's root (its `ansible/` and `tests/fixtures/ansible/`).
    pub repo: PathBuf,
}

impl Build {
    /// From the environment the setup steps export.
    pub fn from_env() -> Result<Build> {
        Build::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup of variables (the environment, or a test's table).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Build> {
        let var = |name: &'static str, hint: &'static str| {
            lookup(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or(Error::NotSet { name, hint })
        };
        let prefix = var(PREFIX_ENV, PREFIX_HINT)?;
        // The build marks its tree whole at the very end; anything less is an interrupted build.
        present(&prefix.join(".complete"), PREFIX_HINT)?;
        present(&prefix.join("bin/freeswitch"), PREFIX_HINT)?;
        let ansible_playbook = var(ANSIBLE_BIN_ENV, ANSIBLE_HINT)?.join("ansible-playbook");
        present(&ansible_playbook, ANSIBLE_HINT)?;
        Ok(Build {
            prefix,
            ansible_playbook,
            repo: repo_root(),
        })
    }

    pub fn freeswitch(&self) -> PathBuf {
        self.prefix.join("bin/freeswitch")
    }

    /// The release `bin/freeswitch -version` names (`1.10.12`).
    pub fn version(&self) -> Result<String> {
        let bin = self.freeswitch();
        let out = std::process::Command::new(&bin)
            .arg("-version")
            .output()
            .map_err(Error::io(format!("running {} -version", bin.display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        release(&text).map(str::to_string).ok_or(Error::Missing {
            path: bin,
            hint: "it does not say its version; tests/setup/40-freeswitch.sh builds it again once its folder is removed",
        })
    }

    /// The build's default configuration, which seeds every instance's tree.
    pub fn default_conf(&self) -> PathBuf {
        self.prefix.join("etc/freeswitch")
    }

    /// The modules this build has (`mod_sofia`, ...), sorted: all of them are loaded.
    pub fn modules(&self) -> Result<Vec<String>> {
        let dir = self.prefix.join("lib/freeswitch/mod");
        let entries = std::fs::read_dir(&dir).map_err(Error::io(format!(
            "listing the modules in {}",
            dir.display()
        )))?;
        let mut modules: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".so").map(str::to_string)
            })
            .collect();
        modules.sort();
        Ok(modules)
    }
}

/// `1.10.12` from `FreeSWITCH version: 1.10.12-release~64bit ( 64bit)`.
fn release(version_output: &str) -> Option<&str> {
    let v = version_output
        .split("version:")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let release = v.split(['-', '~', '+']).next()?;
    (!release.is_empty()).then_some(release)
}

fn present(path: &Path, hint: &'static str) -> Result<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(Error::Missing {
            path: path.to_path_buf(),
            hint,
        })
    }
}

/// Three levels up from this crate (`crates/localstack/freeswitch`).
fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(3)
        .map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn without_the_build_it_fails_naming_the_variable_and_the_setup_step() {
        let err = Build::from_lookup(|_| None).unwrap_err().to_string();
        assert!(err.contains(PREFIX_ENV), "{err}");
        assert!(err.contains("tests/setup/40-freeswitch.sh"), "{err}");
    }

    #[test]
    fn an_interrupted_build_is_refused() {
        let empty = std::env::temp_dir();
        let err = Build::from_lookup(|name| {
            (name == PREFIX_ENV).then(|| empty.to_string_lossy().into_owned())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(".complete is missing"), "{err}");
    }

    #[test]
    fn the_release_is_read_from_the_version_line() {
        assert_eq!(
            release("FreeSWITCH version: 1.10.12-release~64bit ( 64bit)\n"),
            Some("1.10.12")
        );
        assert_eq!(release("FreeSWITCH version: 1.10.12\n"), Some("1.10.12"));
        assert_eq!(release("something else"), None);
    }

    #[test]
    fn the_repository_root_holds_the_role() {
        assert!(repo_root().join("ansible/roles/freeswitch").is_dir());
    }
}
