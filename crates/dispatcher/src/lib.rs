//! Kamailio dispatcher control for pairscale: puts media servers into a Kamailio load
//! balancer's rotation, takes them out for a drain, and removes them, keeping the `dispatcher`
//! table in PostgreSQL (what survives a reload or a restart) and Kamailio's memory (what routes
//! calls now) in step. Every change is written to the table once, then applied over JSON-RPC
//! to every Kamailio that reads the table (an HA pair shares one table but routes from two
//! lists in memory), and read back from each with `dispatcher.list` before it is reported done.
//! An instance that cannot be reached fails the change, named by its URL, after the others
//! took it. A destination leaves rotation as
//! *disabled* (`d`, flags 4), never *inactive* (`i`), which probing would undo at the next
//! OPTIONS reply.
//!
//! The table is Kamailio 5.6's `dispatcher` table plus a unique constraint that makes
//! registering an insert-if-absent:
//!
//! ```sql
//! ALTER TABLE dispatcher ADD CONSTRAINT dispatcher_setid_destination_key
//!     UNIQUE (setid, destination);
//! ```
//!
//! Layout:
//! - `config`: [`DispatcherConfig`] (database, RPC URLs, timeouts; `Debug` hides the password)
//! - `tls`: [`DbTls`], the database connection's sslmode (disable or verify-full)
//! - `destination`: [`Destination`] validated at the edge, [`DestinationState`] from the list
//! - `dispatcher`: [`KamailioDispatcher`], the adapter (register, disable, enable, deregister)
//! - `table`: the PostgreSQL half
//! - `rpc`: the JSON-RPC half ([`KamailioRpc`], one per Kamailio)
//! - `error`: [`DispatcherError`] (and [`KamailioFailure`]: which instance, and why)

mod config;
mod destination;
mod dispatcher;
mod error;
mod rpc;
mod table;
mod tls;

pub use config::{parse_db_url, DispatcherConfig, DB_URL_ENV, RPC_URL_ENV};
pub use destination::{
    Destination, DestinationState, DestinationStatus, DUID_ATTR, MAX_ATTRS_LEN, MAX_URI_LEN,
};
pub use dispatcher::{DeregisterOutcome, KamailioDispatcher, RegisterOutcome};
pub use error::{DispatcherError, KamailioFailure, Result};
pub use rpc::{KamailioRpc, SetState, DEFAULT_RELOAD_WAIT};
pub use tls::DbTls;
