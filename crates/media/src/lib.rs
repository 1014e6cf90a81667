//! The adapters a drain acts through: FreeSWITCH media nodes over their Event Socket
//! ([`EslNodes`], the core's `MediaNodes`) and the SIP load balancer's dispatcher list
//! ([`KamailioNodes`], the core's `Dispatcher`). Kept apart from the Lambda crate so that the
//! benchmark, the sandbox and tests can drive real sockets without the AWS SDK.
//!
//! Layout:
//! - [`esl`]: `MediaNodes` over `pairscale-esl`: one short session per visit, a bounded number
//!   of nodes at once, each visit under its own timeout.
//! - [`kamailio`]: `Dispatcher` over `pairscale-dispatcher`, its errors mapped to catalogue names.

pub mod esl;
pub mod kamailio;

pub use esl::EslNodes;
pub use kamailio::KamailioNodes;
pub use pairscale_dispatcher::{parse_db_url, DbTls, DispatcherConfig, KamailioDispatcher};
pub use pairscale_esl::Password;
