//! What every command needs: the settings from flags and environment, and the adapters of
//! `pairscale-aws`, built once from the standard configuration (region, profile, credentials
//! and `AWS_ENDPOINT_URL` as the AWS CLI finds them, `--region`, `--profile` and
//! `--endpoint-url` on top). A setting a command needs and does not have is a usage error that
//! says where the value comes from.

use crate::args::{GlobalArgs, OutputFormat};
use crate::error::{from_core, CliError, HintContext, Result};
use crate::render::Style;
use pairscale_aws::clients::{Clients, Overrides};
use pairscale_aws::dynamodb::{DynamoLockStore, FleetTable};
use pairscale_aws::fleet_state::AwsInventory;
use pairscale_aws::lambda::Functions;
use pairscale_aws::sfn::{Executions, Runs};
use pairscale_aws::ssm::FleetParams;
use pairscale_core::ports::Clock;
use pairscale_core::{FleetName, Timestamp};

#[derive(Debug, Clone)]
pub struct Settings {
    pub output: OutputFormat,
    pub style: Style,
    pub state_machine_arn: Option<String>,
    pub table: Option<String>,
    pub ssm_prefix: String,
    pub ecs_cluster: Option<String>,
    pub drain_function: Option<String>,
    pub policy_function: Option<String>,
    /// Who runs the command: `cli:<user>` owns locks, and runs are `requested_by` them.
    pub user: String,
    pub endpoint: Option<String>,
}

impl Settings {
    pub fn from_args(g: &GlobalArgs, style: Style) -> Result<Settings> {
        let user = match &g.user {
            Some(u) => u.clone(),
            None => std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "operator".into()),
        };
        let user = owner_safe(&user).ok_or_else(|| {
            CliError::usage(
                format!("user '{user}' cannot name a lock owner"),
                Some(format!(
                    "pass --user with 1 to {MAX_USER_LEN} letters, digits, '.', '_', '@' or '-'"
                )),
            )
        })?;
        Ok(Settings {
            output: g.output,
            style,
            state_machine_arn: nonempty(&g.state_machine_arn),
            table: nonempty(&g.table),
            ssm_prefix: g.ssm_prefix.clone(),
            ecs_cluster: nonempty(&g.ecs_cluster),
            drain_function: nonempty(&g.drain_function),
            policy_function: nonempty(&g.policy_function),
            user,
            endpoint: g
                .endpoint_url
                .clone()
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                .filter(|s| !s.is_empty()),
        })
    }

    pub fn state_machine(&self) -> Result<&str> {
        self.state_machine_arn.as_deref().ok_or_else(|| {
            CliError::usage(
                "no state machine given",
                Some("pass --state-machine-arn or set PAIRSCALE_STATE_MACHINE_ARN (terraform output state_machine_arn)".to_string()),
            )
        })
    }

    pub fn table_name(&self) -> Result<&str> {
        self.table.as_deref().ok_or_else(|| {
            CliError::usage(
                "no table given",
                Some(
                    "pass --table or set PAIRSCALE_TABLE (terraform output table_name)".to_string(),
                ),
            )
        })
    }

    pub fn cluster(&self) -> Result<&str> {
        self.ecs_cluster.as_deref().ok_or_else(|| {
            CliError::usage(
                "no ECS cluster given",
                Some(
                    "pass --ecs-cluster or set PAIRSCALE_ECS_CLUSTER (terraform output ecs_cluster_arn)"
                        .to_string(),
                ),
            )
        })
    }

    pub fn drain_fn(&self) -> Result<&str> {
        self.drain_function.as_deref().ok_or_else(|| {
            CliError::usage(
                "no drain function given",
                Some("pass --drain-function or set PAIRSCALE_DRAIN_FUNCTION (terraform output function_arns, key \"drain\")".to_string()),
            )
        })
    }

    pub fn policy_function(&self) -> Result<&str> {
        self.policy_function.as_deref().ok_or_else(|| {
            CliError::usage(
                "no policy function given",
                Some("pass --policy-function or set PAIRSCALE_POLICY_FUNCTION (terraform output function_arns, key \"policy\")".to_string()),
            )
        })
    }

    /// The lock owner this command acts as.
    pub fn owner(&self) -> String {
        format!("cli:{}", self.user)
    }

    pub fn hints(&self, fleet: Option<&FleetName>) -> HintContext {
        HintContext {
            fleet: fleet.map(ToString::to_string),
            ssm_prefix: self.ssm_prefix.clone(),
            table: self.table.clone(),
            endpoint: self.endpoint.clone(),
        }
    }

    /// A core error with the hint these settings suggest.
    pub fn core_error(
        &self,
        fleet: Option<&FleetName>,
    ) -> impl Fn(pairscale_core::Error) -> CliError + '_ {
        let ctx = self.hints(fleet);
        move |e| from_core(e, &ctx)
    }
}

/// The longest user name a lock owner carries (`cli:<user>`).
pub const MAX_USER_LEN: usize = 64;

/// A user name as a lock owner may carry it; `None` when nothing printable is left, or when it
/// is too long to keep whole (cutting it would name someone else).
pub fn owner_safe(user: &str) -> Option<String> {
    let s: String = user
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    (s.len() <= MAX_USER_LEN && s.chars().any(|c| c.is_ascii_alphanumeric())).then_some(s)
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.trim().is_empty())
}

/// The adapters, built from one AWS configuration loaded once.
#[derive(Debug, Clone)]
pub struct Aws {
    pub clients: Clients,
}

impl Aws {
    pub async fn load(g: &GlobalArgs) -> Result<Aws> {
        let clients = Clients::load(&Overrides {
            region: g.region.clone(),
            profile: g.profile.clone(),
            endpoint_url: g.endpoint_url.clone(),
        })
        .await;
        if clients.region().is_none() {
            return Err(CliError::usage(
                "no AWS region",
                Some(
                    "pass --region, set AWS_REGION, or give your profile a region (aws configure)"
                        .to_string(),
                ),
            ));
        }
        Ok(Aws { clients })
    }

    pub fn runs(&self) -> Runs {
        self.clients.runs()
    }

    pub fn functions(&self) -> Functions {
        self.clients.functions()
    }

    pub fn executions(&self) -> Executions {
        self.clients.executions()
    }

    pub fn params(&self, s: &Settings) -> FleetParams {
        self.clients.fleet_params(&s.ssm_prefix)
    }

    pub fn fleet_table(&self, s: &Settings) -> Result<FleetTable> {
        Ok(self.clients.fleet_table(s.table_name()?))
    }

    pub fn locks(&self, s: &Settings) -> Result<DynamoLockStore> {
        Ok(self.clients.locks(s.table_name()?))
    }

    pub fn inventory(&self, s: &Settings) -> Result<AwsInventory> {
        Ok(self.clients.inventory(s.cluster()?))
    }
}

/// Now, by the machine's clock.
pub fn now() -> Timestamp {
    pairscale_core::ports::SystemClock.now()
}

/// A fleet name from the command line, checked as the core checks it.
pub fn fleet(s: &Settings, name: &str) -> Result<FleetName> {
    FleetName::parse(name).map_err(s.core_error(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_become_safe_lock_owners() {
        assert_eq!(owner_safe("alice").as_deref(), Some("alice"));
        assert_eq!(owner_safe("Alice Smith").as_deref(), Some("Alice-Smith"));
        assert_eq!(owner_safe("a@b.c").as_deref(), Some("a@b.c"));
        assert_eq!(owner_safe("   "), None);
        assert_eq!(owner_safe("!!!"), None);
        assert_eq!(
            owner_safe(&"x".repeat(MAX_USER_LEN)).map(|s| s.len()),
            Some(64)
        );
        assert_eq!(
            owner_safe(&"x".repeat(MAX_USER_LEN + 1)),
            None,
            "never cut short"
        );
    }
}
