//! The handlers. Each owns its ports as `Arc<dyn ...>` and declares its contract (its actions,
//! their inputs and outputs) with `contract!` (in `crate::contract`): one method per action.

pub mod build;
pub mod drain;
pub mod lock;
pub mod policy;
pub mod state;
