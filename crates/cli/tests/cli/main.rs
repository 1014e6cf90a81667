//! The `pairscale` binary against the local stack: each test builds a deployment with
//! [`pairscale_stack`] (state machine, functions, table, parameters, cluster, real
//! Kamailio and PostgreSQL) and runs the real binary as an operator would, with its settings
//! in the environment (`AWS_ENDPOINT_URL` from the suite, `PAIRSCALE_*` from the stack).
//!
//! Layout: [`common`] runs the binary; one module per area of commands.
#![allow(clippy::unwrap_used)]

mod common;
mod drain;
mod lock;
mod policy;
mod scale;
