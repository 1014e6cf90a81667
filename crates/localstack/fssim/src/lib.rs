//! A FreeSWITCH 1.10.12 simulator for tests, benchmarks and the local sandbox: each node is
//! an event socket server that answers `auth`, `api`, `bgapi`, `event`, `noevents` and `exit`
//! with the bytes a real FreeSWITCH sends, over a call model (random or scripted calls,
//! bridged calls as two channels and one call) with `fsctl pause`/`resume` flags that refuse
//! and count new calls, `hupall`, HEARTBEAT events, restarts that forget the pause flags (also
//! `fsctl shutdown restart`), fault modes, and a tally of how every call ended (the
//! simulator's own `api fssim_call_tally`, and a last line when the process is stopped).
//! `NodeConfig::like_freeswitch()` adds what a real FreeSWITCH 1.10.12 does in the background: a core database that trails the calls it holds, new and ended alike; the
//! differential test in `crates/localstack/freeswitch` holds it to the real one. A node costs one listener task plus one task per open connection, so a
//! process can host a thousand.
//!
//! Layout:
//! - [`config`]: `NodeConfig`, traffic, ACL and fault settings.
//! - [`model`]: the node's state and call model, time passed in (pure, unit-tested).
//! - [`text`]: FreeSWITCH's exact reply and event texts.
//! - [`server`]: the listener task and the per-connection protocol.
//! - [`handle`]: `Simulator::spawn`, `NodeHandle` controls, `Fleet`.

pub mod config;
pub mod handle;
pub mod model;
pub mod server;
pub mod text;

pub use config::{Acl, CoreDb, Direction, DurationDist, Fault, NodeConfig, Traffic};
pub use handle::{ChannelInfo, Fleet, NodeHandle, Simulator};
pub use model::{CallId, CallSpec, CallTally, EndReason, Refusal, Refused};
