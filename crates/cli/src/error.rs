//! The CLI's failures, each with its exit code and, where one is known, what to do next.

use pairscale_aws::lambda::FunctionError;
use pairscale_core::{Error as CoreError, ErrorName};

/// Exit codes, as `pairscale --help` lists them.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const TIMED_OUT: u8 = 3;
    pub const DRIFT: u8 = 4;
    /// Interrupted (Ctrl-C), as a shell reports SIGINT.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage or input: a missing setting, a value the domain refuses.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// A domain or AWS failure, with a hint chosen from its catalogue name.
    #[error("{source}")]
    Core {
        #[source]
        source: CoreError,
        hint: Option<String>,
    },
    /// A function answered with an error of its own.
    #[error("{source}")]
    Remote {
        #[source]
        source: FunctionError,
        hint: Option<String>,
    },
    /// Something ended badly (a run failed, a lock was not broken).
    #[error("{message}")]
    Failed {
        message: String,
        hint: Option<String>,
    },
    /// Waiting ran out of time; what was waited for goes on.
    #[error("{message}")]
    TimedOut {
        message: String,
        hint: Option<String>,
    },
    /// Waiting was interrupted (Ctrl-C); what was waited for goes on.
    #[error("{message}")]
    Interrupted {
        message: String,
        hint: Option<String>,
    },
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> CliError {
        CliError::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn failed(message: impl Into<String>, hint: impl Into<Option<String>>) -> CliError {
        CliError::Failed {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage { .. } => exit::USAGE,
            CliError::Core { source, .. } if source.name() == ErrorName::InvalidRequest => {
                exit::USAGE
            }
            CliError::Remote { source, .. } if source.name() == Some(ErrorName::InvalidRequest) => {
                exit::USAGE
            }
            CliError::TimedOut { .. } => exit::TIMED_OUT,
            CliError::Interrupted { .. } => exit::INTERRUPTED,
            _ => exit::FAILED,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            CliError::Usage { hint, .. }
            | CliError::Core { hint, .. }
            | CliError::Remote { hint, .. }
            | CliError::Failed { hint, .. }
            | CliError::TimedOut { hint, .. }
            | CliError::Interrupted { hint, .. } => hint.as_deref(),
        }
    }

    /// Attach a hint unless the error already has one.
    pub fn or_hint(mut self, h: impl Into<String>) -> CliError {
        let slot = match &mut self {
            CliError::Usage { hint, .. }
            | CliError::Core { hint, .. }
            | CliError::Remote { hint, .. }
            | CliError::Failed { hint, .. }
            | CliError::TimedOut { hint, .. }
            | CliError::Interrupted { hint, .. } => hint,
        };
        if slot.is_none() {
            *slot = Some(h.into());
        }
        self
    }
}

/// Where each setting comes from, for hints.
#[derive(Debug, Clone, Default)]
pub struct HintContext {
    pub fleet: Option<String>,
    pub ssm_prefix: String,
    pub table: Option<String>,
    pub endpoint: Option<String>,
}

/// A core error with what to do about it.
pub fn from_core(e: CoreError, ctx: &HintContext) -> CliError {
    let fleet = ctx.fleet.as_deref().unwrap_or("<fleet>");
    let hint = match &e {
        CoreError::InvalidRequest { field, .. } => flag_of(field)
            .map(|flag| format!("check {flag}"))
            .or_else(|| Some("check the command's arguments (pairscale <command> --help)".into())),
        CoreError::UnknownFleet { .. } => Some(format!(
            "check --fleet and --ssm-prefix (now '{}'): a fleet has the parameters {}/{fleet}/pair_count and /config (terraform output ssm_parameter_names)",
            ctx.ssm_prefix,
            ctx.ssm_prefix.trim_end_matches('/'),
        )),
        CoreError::LockHeld { .. } => Some(format!(
            "another run or operator is working on the fleet: `pairscale lock show --fleet {fleet}`; wait for it to end, or break a stale lock with `pairscale lock break --fleet {fleet}`"
        )),
        CoreError::LockNotStale { .. } => Some(format!(
            "see who holds it: `pairscale lock show --fleet {fleet}`"
        )),
        CoreError::Retryable { message, .. } if message.starts_with("could not reach") => {
            Some(match &ctx.endpoint {
                Some(url) => format!("is {url} (AWS_ENDPOINT_URL / --endpoint-url) up?"),
                None => "check the network and the region (--region, AWS_REGION); then try again".into(),
            })
        }
        CoreError::Retryable { .. } => Some("try again in a moment".into()),
        CoreError::Aws { operation, .. } => Some(aws_hint(operation, ctx)),
        CoreError::CorruptState { .. } | CoreError::InvalidConfig { .. } => Some(format!(
            "fix the stored value named above; `pairscale validate --fleet {fleet}` shows what else is off"
        )),
        _ => None,
    };
    CliError::Core { source: e, hint }
}

/// A function's own error with what to do about it.
pub fn from_function(e: FunctionError) -> CliError {
    let hint = match e.name() {
        Some(ErrorName::NodeUnreachable) => Some(
            "the node's Event Socket did not answer: is the instance running and port 8021 open to the drain function? Try again".to_string(),
        ),
        Some(ErrorName::Dispatcher | ErrorName::Retryable) => {
            Some("try again; the action is idempotent".to_string())
        }
        _ => None,
    };
    CliError::Remote { source: e, hint }
}

fn aws_hint(operation: &str, ctx: &HintContext) -> String {
    let service = operation.split(':').next().unwrap_or_default();
    let setting = match service {
        "dynamodb" => format!(
            "the table (--table / PAIRSCALE_TABLE, now '{}'; terraform output table_name)",
            ctx.table.as_deref().unwrap_or("")
        ),
        "ssm" => "the SSM prefix (--ssm-prefix / PAIRSCALE_SSM_PREFIX)".to_string(),
        "states" => {
            "the state machine (--state-machine-arn / PAIRSCALE_STATE_MACHINE_ARN)".to_string()
        }
        "lambda" => {
            "the function (--drain-function / PAIRSCALE_DRAIN_FUNCTION; terraform output function_arns)"
                .to_string()
        }
        "ecs" => {
            "the cluster (--ecs-cluster / PAIRSCALE_ECS_CLUSTER; terraform output ecs_cluster_arn)"
                .to_string()
        }
        _ => "the settings of that call".to_string(),
    };
    format!(
        "check your credentials and region (aws sts get-caller-identity; --profile, --region) and {setting}"
    )
}

/// The command line flag that sets a request field.
pub fn flag_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "fleet" => "--fleet",
        "target_pair_count" => "--to",
        "delta" => "--by",
        "reason" => "--reason",
        "requested_by" => "--requested-by",
        "pair_id" => "--pair",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_exit_2_and_names_the_flag() {
        let e = from_core(
            CoreError::invalid("target_pair_count", 5000, "must be between 0 and 1000"),
            &HintContext::default(),
        );
        assert_eq!(e.exit_code(), exit::USAGE);
        assert_eq!(e.hint(), Some("check --to"));
        assert!(e.to_string().contains("target_pair_count = 5000"), "{e}");
    }

    #[test]
    fn failures_say_what_to_do_next() {
        let ctx = HintContext {
            fleet: Some("voice".into()),
            ssm_prefix: "/pairscale".into(),
            table: Some("t".into()),
            endpoint: None,
        };
        let e = from_core(
            CoreError::UnknownFleet {
                fleet: "voice".into(),
                what: "SSM parameter /pairscale/voice/pair_count".into(),
            },
            &ctx,
        );
        assert_eq!(e.exit_code(), exit::FAILED);
        assert!(
            e.hint()
                .is_some_and(|h| h.contains("/pairscale/voice/pair_count")),
            "{:?}",
            e.hint()
        );
        let e = from_core(
            CoreError::Aws {
                operation: "dynamodb:Query".into(),
                message: "ResourceNotFoundException: no table".into(),
            },
            &ctx,
        );
        assert!(e.hint().is_some_and(|h| h.contains("PAIRSCALE_TABLE")));
        let e = CliError::TimedOut {
            message: "still running".into(),
            hint: None,
        };
        assert_eq!(e.exit_code(), exit::TIMED_OUT);
        let e = from_function(FunctionError {
            error_type: ErrorName::InvalidRequest.as_str().into(),
            message: "invalid request: nodes = []: must not be empty".into(),
        });
        assert_eq!(e.exit_code(), exit::USAGE);
        assert_eq!(e.hint(), None);
        let e = from_function(FunctionError {
            error_type: ErrorName::NodeUnreachable.as_str().into(),
            message: "media node 10.0.1.4:8021 unreachable: refused".into(),
        });
        assert_eq!(e.exit_code(), exit::FAILED);
        assert!(
            e.hint().is_some_and(|h| h.contains("8021")),
            "{:?}",
            e.hint()
        );
        let shown = format!("{}: media node", ErrorName::NodeUnreachable);
        assert!(e.to_string().starts_with(&shown), "{e}");
        let e = CliError::usage("x", None).or_hint("y");
        assert_eq!(e.hint(), Some("y"));
    }
}
