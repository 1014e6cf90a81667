//! Kamailio dispatcher control for pairscale: puts media servers into a Kamailio load
//! balancer's rotation, takes them out for a drain, and removes them, keeping the `dispatcher`
//! table in PostgreSQL (what survives a reload or a restart) and Kamailio's memory (what routes
//! calls now) in step. Every change is written to the table, applied over JSON-RPC, and read
//! back with `dispatcher.list` before it is reported done. A destination leaves rotation as
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
//! - `config`: [`DispatcherConfig`] (database, RPC URL, timeouts; `Debug` hides the password)
//! - `destination`: [`Destination`] validated at the edge, [`DestinationState`] from the list
//! - `dispatcher`: [`KamailioDispatcher`], the adapter (register, disable, enable, deregister)
//! - `table`: the PostgreSQL half
//! - `rpc`: the JSON-RPC half ([`KamailioRpc`])
//! - `error`: [`DispatcherError`]

mod config;
mod destination;
mod dispatcher;
mod error;
mod rpc;
mod table;

pub use config::{parse_db_url, DispatcherConfig, DB_URL_ENV, RPC_URL_ENV};
pub use destination::{
    Destination, DestinationState, DestinationStatus, DUID_ATTR, MAX_ATTRS_LEN, MAX_URI_LEN,
};
pub use dispatcher::{DeregisterOutcome, KamailioDispatcher, RegisterOutcome};
pub use error::{DispatcherError, Result};
pub use rpc::{KamailioRpc, SetState};
