//! One module per command. Each reads what it needs through the adapters (or the Step
//! Functions and Lambda APIs), returns a [`View`] to print and the exit code it ends with.

pub mod drain;
pub mod lock;
pub mod plan;
pub mod scale;
pub mod status;
pub mod validate;

use crate::error::{exit, CliError, Result};
use crate::render::View;
use crate::settings::{Aws, Settings};
use aws_sdk_lambda::primitives::Blob;
use pairscale_core::FleetName;
use serde_json::Value;

/// What every command gets.
#[derive(Debug)]
pub struct Ctx {
    pub settings: Settings,
    pub aws: Aws,
}

/// What a command printed, and how the process ends.
pub struct Outcome {
    pub view: Box<dyn View>,
    pub code: u8,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome").field("code", &self.code).finish()
    }
}

impl Outcome {
    pub fn ok(view: impl View + 'static) -> Outcome {
        Outcome {
            view: Box::new(view),
            code: exit::OK,
        }
    }
}

impl Ctx {
    /// Invoke a function synchronously; its own error (`X-Amz-Function-Error`) is a
    /// [`CliError::Remote`] carrying the function's `errorType`.
    pub async fn invoke(
        &self,
        function: &str,
        payload: &Value,
        fleet: &FleetName,
    ) -> Result<Value> {
        let body = serde_json::to_vec(payload)
            .map_err(|e| CliError::failed(format!("payload does not serialise: {e}"), None))?;
        let out = self
            .aws
            .lambda()
            .invoke()
            .function_name(function)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|e| {
                self.settings.core_error(Some(fleet))(pairscale_aws::error::classify(
                    "lambda:Invoke",
                    e,
                ))
            })?;
        let answer: Value = out
            .payload()
            .map(|b| serde_json::from_slice(b.as_ref()).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        if out.function_error().is_some() {
            let error_type = answer["errorType"]
                .as_str()
                .unwrap_or("Unhandled")
                .to_string();
            let message = answer["errorMessage"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| answer.to_string());
            let hint = match error_type.as_str() {
                "Pairscale.NodeUnreachable" => Some(
                    "the node's Event Socket did not answer: is the instance running and port 8021 open to the drain function? Try again".to_string(),
                ),
                "Pairscale.Dispatcher" | "Pairscale.Retryable" => {
                    Some("try again; the action is idempotent".to_string())
                }
                _ => None,
            };
            return Err(CliError::Remote {
                error_type,
                message,
                hint,
            });
        }
        Ok(answer)
    }
}
