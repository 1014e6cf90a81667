//! The pairscale DynamoDB table: one item per fleet lock, per pair, per run journal, and one
//! for fleet bookkeeping, all under the partition `FLEET#<fleet>`:
//!
//! | sort key        | item                                                          |
//! |-----------------|---------------------------------------------------------------|
//! | `LOCK`          | the scaling lock (holder, token, expiry, `ttl`)               |
//! | `META`          | the pair id sequence and the last scaling times               |
//! | `PAIR#pair-0001`| one pair record                                               |
//! | `RUN#<exec>`    | a run's journal (the state before it first changed anything), |
//! |                 | and each build it started (`build_<step>`)                    |
//! | `POLICY`        | the scaling policy's kept recommendations and suspension      |
//!
//! One partition per fleet lets a single transaction check the lock and write records.

mod builds;
mod codec;
mod fence;
mod lock;
mod policy;
mod table;

pub use lock::DynamoLockStore;
pub use policy::DynamoPolicyStore;
pub use table::FleetTable;

use pairscale_core::FleetName;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const SK_LOCK: &str = "LOCK";
pub(crate) const SK_META: &str = "META";
pub(crate) const SK_POLICY: &str = "POLICY";
pub(crate) const PAIR_PREFIX: &str = "PAIR#";
pub(crate) const RUN_PREFIX: &str = "RUN#";
/// How long a released lock item and a run journal stay before DynamoDB's TTL removes them.
pub(crate) const RETENTION_SECS: u64 = 30 * 86_400;

pub(crate) fn pk(fleet: &FleetName) -> String {
    format!("FLEET#{fleet}")
}
