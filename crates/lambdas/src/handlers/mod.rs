//! The handlers. Each owns its ports as `Arc<dyn ...>` and maps a JSON input to a JSON output.

pub mod build;
pub mod drain;
pub mod lock;
pub mod state;
