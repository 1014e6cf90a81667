//! pairscale's domain: fleets of FreeSWITCH + ESL-client pairs, the requests that scale them,
//! the plans that decide what one run does, the scaling lock's rules and the error catalogue.
//!
//! Nothing here does I/O. The world is seen through the traits in [`ports`], implemented by
//! the AWS adapters (`pairscale-aws`), the Event Socket client and the dispatcher adapter.
//!
//! Layout:
//! - [`canary`]: the canary call a new node passes before it takes calls, and the fleet's
//!   call-quality figure that holds a scale-in.
//! - [`build`]: the Terraform and Ansible builds a run starts, and how their progress reads.
//! - [`error`]: the error catalogue (`Pairscale.*` names) and the one error type.
//! - [`ids`]: validated fleet names, pair ids, lock owners and time stamps.
//! - [`fleet`]: pair records, pair status, fleet configuration (and its [`fleet::bounds`]), drain policy.
//! - [`history`]: the execution history budget a fleet's configuration must fit.
//! - [`hangup`]: the hangup causes FreeSWITCH knows, for `hupall`.
//! - [`proxies`]: the Kamailio instances (an HA pair) every dispatcher change goes to.
//! - [`request`]: manual and alarm scale requests, parsed and validated.
//! - [`plan`]: the planner (clamps, cooldowns, in-flight pairs, race spares).
//! - [`policy`]: the scaling policy evaluated every minute (target tracking, scheduled
//!   minimums, limits).
//! - [`lock`]: lock records, staleness and fencing tokens.
//! - [`state`]: change sets, journals and rollback.
//! - [`validate`]: the fleet state held against the EC2 and ECS inventory.
//! - [`ports`]: the traits adapters implement (`LockStore`, `FleetStateStore`, `Inventory`,
//!   `ExecutionRegistry`, `Clock`).
//! - [`drain`]: drain ranking, verdicts and deadline policy (ports `MediaNodes`, `Dispatcher`).
//! - [`service`]: the use cases over those traits (break a stale lock, commit, roll back,
//!   discover new pairs, recover from a stale run).

pub mod build;
pub mod canary;
pub mod drain;
pub mod error;
pub mod fleet;
pub mod hangup;
pub mod history;
pub mod ids;
pub mod lock;
pub mod plan;
pub mod policy;
pub mod ports;
pub mod proxies;
pub mod request;
pub mod service;
pub mod state;
pub mod validate;

pub use canary::{CanaryConfig, Mos, OperatorMetric, QualityReading};
pub use error::{Error, ErrorName, Result};
pub use fleet::{DrainConfig, DrainPolicy, FleetConfig, FleetMeta, Pair, PairStatus};
pub use hangup::HangupCause;
pub use ids::{FleetName, Owner, PairId, Timestamp};
pub use proxies::KamailioRpcUrls;
