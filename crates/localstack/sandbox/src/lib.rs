//! pairscale's local stack.
//!
//! Layout:
//! - [`buildspec`]: a CodeBuild buildspec read and run on this machine.
//! - [`local_build`]: what the local CodeBuild projects run: the project's buildspec for real
//!   where the sandbox deployed through Terraform (the Terraform builds, Ansible's scale_in),
//!   otherwise the stand-in for Terraform and Ansible (EC2 instances and ECS services in the
//!   emulator, simulated FreeSWITCH nodes on loopback addresses, rows in Kamailio's dispatcher
//!   table).
//! - [`stack`]: a whole deployment in the local emulator and router (state machine, functions,
//!   build projects, fleet parameters and table) made through the SDK, for the end-to-end
//!   tests and the CLI's tests, and for the sandbox where Terraform is not installed.
//! - [`terraform`]: the same deployment through the orchestrator's Terraform module
//!   (`terraform/envs/sandbox`), wired to the router: what `./sandbox` uses where it can.
//!
//! The end-to-end runs of the scaling state machine are in `tests/e2e.rs`.

pub mod buildspec;
pub mod local_build;
pub mod stack;
pub mod terraform;
