//! The local AWS front the tests and the sandbox talk to. moto runs Step Functions state
//! machines but needs Docker for Lambda and fakes CodeBuild; the router sits in front of it
//! (moto is started with `MOTO_PORT` set to the router's port, so its interpreter calls come
//! back through here) and serves Lambda `Invoke` by running the project's real handler
//! binaries through `pairscale-lambda-emu`, serves CodeBuild `StartBuild`, `BatchGetBuilds`
//! and `StopBuild` by running local commands, injects the faults tests ask for, and forwards
//! every other request to moto unchanged.
//!
//! Layout:
//! - [`server`]: the listener and the dispatch; [`Router`], [`RouterOptions`].
//! - `state`: what every request handler shares (functions, projects, faults, the proxy),
//!   read by the dispatch and the control API alike.
//! - [`lambda`]: `Invoke` over a per-function pool of execution environments.
//! - [`codebuild`]: builds as local commands in their own process groups.
//! - [`faults`]: armed faults, consumed as they fire.
//! - [`control`]: the `/_router/` API that registers functions, projects and faults.
//! - [`proxy`]: the pass-through to moto.
//! - [`config`]: function and project specs and the `--config` file.
//! - `http`: the body type and response helpers; `error`: [`RouterError`].

pub mod codebuild;
pub mod config;
pub mod control;
mod error;
pub mod faults;
mod http;
pub mod lambda;
pub mod proxy;
pub mod server;
mod state;

pub use config::{ConfigFile, FunctionConfig, ProjectConfig};
pub use error::RouterError;
pub use server::{Router, RouterOptions};
