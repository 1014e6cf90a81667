//! A CodeBuild buildspec (version 0.2), read and run on this machine as CodeBuild runs it: the
//! variables of `env.variables`, then the commands of `install`, `pre_build`, `build` and
//! `post_build` in that order, all in one shell session (so the working folder and exported
//! variables carry from one command to the next, as in CodeBuild), starting in
//! `CODEBUILD_SRC_DIR`. The first command that fails ends the build.
//!
//! What the local builds do not do is refused by name rather than ignored: another shell than
//! bash, parameter-store or secrets-manager variables in the buildspec (the projects give those
//! as project variables), `finally` and `on-failure` blocks, artifacts and reports.

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

pub const PHASES: [&str; 4] = ["install", "pre_build", "build", "post_build"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buildspec {
    pub variables: BTreeMap<String, String>,
    /// Phase name → its commands, in [`PHASES`] order; phases the buildspec lacks are absent.
    pub phases: Vec<(String, Vec<String>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: serde_yaml::Value,
    #[serde(default)]
    env: Option<RawEnv>,
    phases: BTreeMap<String, RawPhase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    #[serde(default)]
    shell: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    commands: Vec<String>,
}

impl Buildspec {
    pub fn parse(text: &str) -> Result<Buildspec> {
        let raw: Raw =
            serde_yaml::from_str(text).context("the buildspec is not one the local builds run")?;
        let version = match &raw.version {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            other => bail!("buildspec version {other:?} is not 0.2"),
        };
        if version != "0.2" {
            bail!("buildspec version {version} is not 0.2");
        }
        let env = raw.env.unwrap_or(RawEnv {
            shell: None,
            variables: BTreeMap::new(),
        });
        if let Some(shell) = env.shell.filter(|s| s != "bash") {
            bail!("buildspec env.shell {shell:?}: the local builds run bash");
        }
        let variables = env
            .variables
            .into_iter()
            .map(|(k, v)| {
                let value = match v {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    other => bail!("buildspec variable {k}: {other:?} is not a scalar"),
                };
                Ok((k, value))
            })
            .collect::<Result<_>>()?;
        if let Some(unknown) = raw.phases.keys().find(|p| !PHASES.contains(&p.as_str())) {
            bail!("buildspec phase {unknown:?} is not one of {PHASES:?}");
        }
        let mut phases_in = raw.phases;
        let phases = PHASES
            .iter()
            .filter_map(|p| phases_in.remove(*p).map(|ph| (p.to_string(), ph.commands)))
            .collect();
        Ok(Buildspec { variables, phases })
    }

    /// The whole build as one bash script: each phase announced, then its commands.
    pub fn script(&self) -> String {
        let mut s = String::from("set -e\n");
        for (phase, commands) in &self.phases {
            s.push_str(&format!("echo '[phase {phase}]'\n"));
            for c in commands {
                s.push_str(c);
                if !c.ends_with('\n') {
                    s.push('\n');
                }
            }
        }
        s
    }

    /// Run it in `src_dir` (also `CODEBUILD_SRC_DIR`) with the build's environment `env` (the
    /// buildspec's own variables go under it, as in CodeBuild, where project and start-build
    /// variables win). The output goes to this process's stdout and stderr: the build log.
    pub fn run(&self, src_dir: &Path, env: &BTreeMap<String, String>) -> Result<()> {
        let status = Command::new("bash")
            .arg("-c")
            .arg(self.script())
            .current_dir(src_dir)
            .envs(&self.variables)
            .envs(env)
            .env("CODEBUILD_SRC_DIR", src_dir)
            .status()
            .context("running bash")?;
        if status.success() {
            Ok(())
        } else {
            Err(anyhow!("the buildspec's commands failed ({status})"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn repo_buildspec(name: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../../terraform/buildspecs/{name}")),
        )
        .unwrap()
    }

    #[test]
    fn the_repositorys_buildspecs_parse_with_their_phases_in_order() {
        let tf = Buildspec::parse(&repo_buildspec("terraform.yml")).unwrap();
        let names: Vec<_> = tf.phases.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["install", "pre_build", "build"]);
        assert_eq!(tf.variables["TF_IN_AUTOMATION"], "1");
        assert!(tf.phases[2].1.iter().any(|c| c.contains("terraform apply")));
        let an = Buildspec::parse(&repo_buildspec("ansible.yml")).unwrap();
        assert!(an
            .phases
            .iter()
            .any(|(p, c)| p == "build" && c.iter().any(|c| c.contains("ansible-playbook"))));
    }

    #[test]
    fn what_the_local_builds_cannot_do_is_refused_by_name() {
        for (text, needle) in [
            ("version: 0.1\nphases: {build: {commands: [true]}}", "0.1"),
            ("version: 0.2\nenv: {shell: sh}\nphases: {build: {commands: [true]}}", "sh"),
            ("version: 0.2\nphases: {deploy: {commands: [true]}}", "deploy"),
            (
                "version: 0.2\nphases: {build: {commands: [true], finally: [true]}}",
                "finally",
            ),
            (
                "version: 0.2\nenv: {parameter-store: {A: /x}}\nphases: {build: {commands: [true]}}",
                "parameter-store",
            ),
            ("version: 0.2\nphases: {build: {commands: [true]}}\nartifacts: {files: [x]}", "artifacts"),
        ] {
            let err = format!("{:#}", Buildspec::parse(text).unwrap_err());
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn commands_share_one_session_and_the_first_failure_ends_the_build() {
        let dir = std::env::temp_dir().join(pairscale_testkit::unique("bs"));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let spec = Buildspec::parse(
            "version: 0.2\nenv:\n  variables:\n    GREETING: from-spec\n    OVERRIDDEN: spec\n\
             phases:\n  install:\n    commands:\n      - cd sub\n      - export CARRIED=yes\n\
             \x20 build:\n    commands:\n      - echo \"$GREETING $OVERRIDDEN $CARRIED $(basename $PWD) $(basename $CODEBUILD_SRC_DIR)\" > out\n",
        )
        .unwrap();
        spec.run(
            &dir,
            &BTreeMap::from([("OVERRIDDEN".into(), "project".into())]),
        )
        .unwrap();
        let out = std::fs::read_to_string(dir.join("sub/out")).unwrap();
        let src = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(out.trim(), format!("from-spec project yes sub {src}"));

        let failing = Buildspec::parse(
            "version: 0.2\nphases:\n  pre_build:\n    commands:\n      - \"false\"\n\
             \x20 build:\n    commands:\n      - touch reached\n",
        )
        .unwrap();
        assert!(failing.run(&dir, &BTreeMap::new()).is_err());
        assert!(!dir.join("reached").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
