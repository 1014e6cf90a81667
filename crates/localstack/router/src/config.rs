//! What tests register: functions (a handler binary and its environment), CodeBuild projects
//! (a command), and the `--config` file that holds both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::RouterError;

/// The account id in every ARN the router makes up: moto's default account.
pub const ACCOUNT: &str = "123456789012";

/// Lambda's default timeout and its maximum.
const DEFAULT_TIMEOUT_SECS: u64 = 3;
const MAX_TIMEOUT_SECS: u64 = 900;

/// Lambda would scale further; four processes per function are enough to show concurrency
/// on a small machine.
pub const DEFAULT_MAX_CONCURRENCY: usize = 4;
const MAX_CONCURRENCY: usize = 64;

/// One Lambda function, as `PUT /_router/functions/{name}` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// An absolute path to a handler binary built with `lambda_runtime`.
    pub binary: PathBuf,
    /// Added to the router's own environment for every process of the function.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// How many processes may serve invocations at once; more invocations queue.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
}

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_max_concurrency() -> usize {
    DEFAULT_MAX_CONCURRENCY
}

impl FunctionConfig {
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            env: BTreeMap::new(),
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Refuse what could only fail later, at the first invocation, with a vaguer message.
    pub fn validate(&self, name: &str) -> Result<(), RouterError> {
        let what = || format!("function {name:?}");
        validate_function_name(name)?;
        check_executable(&self.binary).map_err(|reason| RouterError::invalid(what(), reason))?;
        if !(1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs) {
            return Err(RouterError::invalid(
                what(),
                format!("timeout_secs must be 1..={MAX_TIMEOUT_SECS}"),
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.max_concurrency) {
            return Err(RouterError::invalid(
                what(),
                format!("max_concurrency must be 1..={MAX_CONCURRENCY}"),
            ));
        }
        validate_env(&self.env).map_err(|reason| RouterError::invalid(what(), reason))
    }
}

/// Lambda's rule for a function name: letters, digits, `-` and `_`, at most 64.
pub fn validate_function_name(name: &str) -> Result<(), RouterError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(RouterError::invalid(
            format!("function name {name:?}"),
            "use 1 to 64 letters, digits, '-' or '_'",
        ))
    }
}

/// One CodeBuild project, as `PUT /_router/codebuild/projects/{name}` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// The program (an absolute path) and its arguments; run once per build.
    pub command: Vec<String>,
    /// Added to the router's environment; a build's overrides win over these.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The build's working directory (absolute); the router's own when absent.
    #[serde(default)]
    pub workdir: Option<PathBuf>,
}

impl ProjectConfig {
    pub fn validate(&self, name: &str) -> Result<(), RouterError> {
        let what = || format!("CodeBuild project {name:?}");
        validate_project_name(name)?;
        let Some(program) = self.command.first() else {
            return Err(RouterError::invalid(what(), "command is empty"));
        };
        check_executable(Path::new(program))
            .map_err(|reason| RouterError::invalid(what(), format!("command[0]: {reason}")))?;
        if let Some(dir) = &self.workdir {
            if !dir.is_absolute() || !dir.is_dir() {
                return Err(RouterError::invalid(
                    what(),
                    format!(
                        "workdir {} is not an absolute path to a directory",
                        dir.display()
                    ),
                ));
            }
        }
        validate_env(&self.env).map_err(|reason| RouterError::invalid(what(), reason))
    }
}

/// CodeBuild's rule for a project name: a letter or digit, then letters, digits, `-`, `_`;
/// 2 to 255 characters.
pub fn validate_project_name(name: &str) -> Result<(), RouterError> {
    let mut chars = name.chars();
    let ok = (2..=255).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(RouterError::invalid(
            format!("project name {name:?}"),
            "use 2 to 255 letters, digits, '-' or '_', starting with a letter or digit",
        ))
    }
}

/// The CodeBuild part of the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodebuildConfig {
    #[serde(default)]
    pub projects: BTreeMap<String, ProjectConfig>,
}

/// `--config FILE`: `{"functions": {name: FunctionConfig}, "codebuild": {"projects": {...}}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionConfig>,
    #[serde(default)]
    pub codebuild: CodebuildConfig,
}

impl ConfigFile {
    /// Read and validate every entry, so that a typo stops the router at start.
    pub fn load(path: &Path) -> Result<Self, RouterError> {
        let text = std::fs::read(path).map_err(|source| RouterError::ConfigRead {
            path: path.to_owned(),
            source,
        })?;
        let config: Self =
            serde_json::from_slice(&text).map_err(|source| RouterError::ConfigParse {
                path: path.to_owned(),
                source,
            })?;
        for (name, function) in &config.functions {
            function.validate(name)?;
        }
        for (name, project) in &config.codebuild.projects {
            project.validate(name)?;
        }
        Ok(config)
    }
}

fn check_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(format!("{} is not an executable file", path.display())),
        Err(error) => Err(format!("{}: {error}", path.display())),
    }
}

fn validate_env(env: &BTreeMap<String, String>) -> Result<(), String> {
    match env
        .keys()
        .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
    {
        Some(key) => Err(format!("bad environment variable name {key:?}")),
        None => match env.iter().find(|(_, v)| v.contains('\0')) {
            Some((key, _)) => Err(format!("the value of {key} contains a NUL byte")),
            None => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_function_spec_takes_lambda_defaults() {
        let spec: FunctionConfig = serde_json::from_str(r#"{"binary": "/bin/true"}"#).unwrap();
        assert_eq!(spec, FunctionConfig::new("/bin/true"));
        assert_eq!(spec.timeout(), Duration::from_secs(3));
        spec.validate("ok-name_1").unwrap();
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(
            serde_json::from_str::<FunctionConfig>(r#"{"binary": "/bin/true", "memory": 1}"#)
                .is_err()
        );
        let mut spec = FunctionConfig::new("relative/bin");
        assert!(spec.validate("f").is_err());
        spec.binary = "/bin/true".into();
        spec.max_concurrency = 0;
        assert!(spec.validate("f").is_err());
        spec.max_concurrency = 1;
        spec.timeout_secs = 0;
        assert!(spec.validate("f").is_err());
        spec.timeout_secs = 1;
        assert!(spec.validate("f:1").is_err());
        assert!(spec.validate("").is_err());
        spec.env.insert("A=B".into(), "x".into());
        assert!(spec.validate("f").is_err());
        // A directory is not a handler.
        assert!(FunctionConfig::new("/tmp").validate("f").is_err());
    }

    #[test]
    fn a_project_needs_an_absolute_program_and_an_existing_workdir() {
        let ok = ProjectConfig {
            command: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            env: BTreeMap::new(),
            workdir: Some("/tmp".into()),
        };
        ok.validate("deploy").unwrap();
        let mut bad = ok.clone();
        bad.command.clear();
        assert!(bad.validate("deploy").is_err());
        let mut bad = ok.clone();
        bad.command[0] = "sh".into();
        assert!(bad.validate("deploy").is_err());
        let mut bad = ok.clone();
        bad.workdir = Some("/no/such/dir".into());
        assert!(bad.validate("deploy").is_err());
        assert!(ok.validate("-x").is_err());
        assert!(ok.validate("a").is_err());
    }

    #[test]
    fn the_config_file_holds_functions_and_projects() {
        let config: ConfigFile = serde_json::from_str(
            r#"{"functions": {"lock": {"binary": "/bin/true", "env": {"K": "V"}, "timeout_secs": 60}},
                "codebuild": {"projects": {"apply": {"command": ["/bin/true"]}}}}"#,
        )
        .unwrap();
        assert_eq!(config.functions["lock"].env["K"], "V");
        assert_eq!(
            config.functions["lock"].max_concurrency,
            DEFAULT_MAX_CONCURRENCY
        );
        assert_eq!(config.codebuild.projects["apply"].command, ["/bin/true"]);
        assert!(serde_json::from_str::<ConfigFile>(r#"{"function": {}}"#).is_err());
    }
}
