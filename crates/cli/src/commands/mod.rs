//! One module per command. Each reads what it needs through the adapters of `pairscale-aws`
//! (the fleet's state, its runs, the drain function), returns a [`View`] to print and the exit
//! code it ends with.

pub mod drain;
pub mod lock;
pub mod plan;
pub mod policy;
pub mod runs;
pub mod scale;
pub mod status;
pub mod validate;

use crate::error::{exit, from_function, Result};
use crate::render::View;
use crate::settings::{Aws, Settings};
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
    /// [`CliError::Remote`] carrying the function's catalogue name.
    pub async fn invoke(
        &self,
        function: &str,
        payload: &Value,
        fleet: &FleetName,
    ) -> Result<Value> {
        self.aws
            .functions()
            .invoke(function, payload)
            .await
            .map_err(self.settings.core_error(Some(fleet)))?
            .map_err(from_function)
    }
}
