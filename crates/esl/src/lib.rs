//! A client for FreeSWITCH's Event Socket in inbound mode: connect to `mod_event_socket`,
//! authenticate, run `api`/`bgapi` commands and read events, with typed answers for what
//! pairscale needs to drain and scale media servers (`status`, channel and call counts,
//! `fsctl pause`/`resume`/`pause_check`, `hupall`, `HEARTBEAT`). Every command has a timeout;
//! no input from the wire, however malformed, makes it panic; the password is never logged.
//!
//! Layout:
//! - [`frame`]: check that a whole frame is buffered, then parse it (`Incomplete` is `Ok(None)`).
//! - [`connection`]: a buffered stream plus a `BytesMut`; `read_frame` loops parse-then-read.
//! - [`client`]: authentication and typed commands, one at a time, events queued meanwhile.
//! - [`event`]: `text/event-plain` and `text/event-json` bodies; [`Heartbeat`].
//! - [`reply`]: pure parsers for `status`, counts, `show channels as json`, `hupall`.
//! - [`error`]: the crate's one error enum.

pub mod client;
pub mod connection;
pub mod error;
pub mod event;
pub mod frame;
pub mod reply;

pub use client::{Client, ClientOptions, Password};
pub use connection::Connection;
pub use error::{Error, Result};
pub use event::{Event, EventFormat, Heartbeat};
pub use frame::{Frame, Headers, Limits};
pub use reply::{Channel, Direction, Hupall, Status};
