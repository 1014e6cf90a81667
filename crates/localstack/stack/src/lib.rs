//! The stack harness: one pairscale fleet deployed into the local stack the test setup starts
//! (the AWS emulator, the router running the handler binaries and the local CodeBuild builds,
//! the real Kamailio and PostgreSQL), for the end-to-end tests (`tests/e2e.rs`), the CLI's
//! tests and the sandbox. Making and reading a deployment returns a [`StackError`]; the
//! helpers in [`testing`] panic instead, a panic being a test's failure.
//!
//! Layout:
//! - [`deployment`]: [`Stack`], one fleet's deployment however it was made, and what the
//!   sandbox reads from it.
//! - [`sdk`]: a whole deployment made through the SDK in seconds.
//! - [`wiring`]: the router's side of a deployment: functions run from the handler binaries,
//!   CodeBuild projects run by `pairscale-local-build`.
//! - [`fleet`]: the fleet configuration every stack gives its fleet, and [`Options`] (with
//!   [`Media`]: simulated or real FreeSWITCH nodes).
//! - [`network`]: the account's VPC and subnet, on loopback addresses.
//! - [`postgres`]: the dispatcher database's URL, read by tokio-postgres.
//! - [`machine`]: what a deployment takes from this machine (built binaries, free ports, the
//!   emulator's environment).
//! - [`testing`]: executions started and waited for, and what a run changed, for tests.
//! - `error`: [`StackError`].

pub mod deployment;
mod error;
pub mod fleet;
pub mod machine;
pub mod network;
pub mod postgres;
pub mod sdk;
pub mod testing;
pub mod wiring;

pub use deployment::Stack;
pub use error::StackError;
pub use fleet::{fleet_config, Media, Options, PREFIX};
pub use machine::{binary, emulator_env, free_port, ACCOUNT, REGION};
pub use network::{loopback_network, Network};
pub use postgres::DispatcherDb;
pub use testing::{assert_succeeded, stack, Ended};
pub use wiring::{BuildSite, FUNCTIONS};
