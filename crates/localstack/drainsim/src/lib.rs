//! A fleet simulator that drives pairscale's real drain code, to measure what a scale-in
//! costs: how long the drain waits, as a multiple of what an oracle (which knows when every
//! call ends) would wait, how many calls a forced drain cuts, and how much capacity the race
//! holds out of rotation. Deterministic from a seed.
//!
//! The candidates come from `pairscale_core::drain::rank` and the spares from
//! `pairscale_core::plan::race_spares`; each round of the drain goes through
//! `drain::verdict`, `drain::decide` and `drain::force_targets`, as the state machine's
//! check loop does. Nothing of the drain is copied here.
//!
//! Layout:
//! - [`dist`]: arrivals (Poisson, CSV trace) and holding times (lognormal, exponential, CSV).
//! - [`fleet`]: the simulated fleet and its load balancer (round-robin, least-loaded).
//! - [`choice`]: the ways to pick candidates: the project's, the oracle and blind yardsticks.
//! - [`race`]: one drain, round by round.
//! - [`scenario`]: a fleet, its traffic and drain configuration; running many scale-ins.
//! - [`report`]: the figures and the table.
//! - [`error`]: the crate's error type.
//! - [`week`]: scaling policies (static alarms, `core::policy`'s target tracking, an oracle)
//!   on a week of traffic: calls refused and pair-hours spent.

pub mod choice;
pub mod dist;
pub mod error;
pub mod fleet;
pub mod race;
pub mod report;
pub mod scenario;
pub mod week;

pub use choice::Choice;
pub use error::{Error, Result};
pub use scenario::{run, Report, Scenario};
