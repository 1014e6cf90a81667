//! Real FreeSWITCH for tests. `tests/setup/40-freeswitch.sh` builds FreeSWITCH 1.10.12 once per
//! machine and exports where; this crate starts as many instances as a test asks for, each on
//! its own loopback address (127.0.0.x) with its own SIP, Event Socket and RTP ports and its own
//! configuration, log, database and run folders, and stops them when dropped. The configuration
//! is what production gets: the project's FreeSWITCH role (`ansible/roles/freeswitch`) renders
//! it with `ansible-playbook -c local` (its configure tasks, with `freeswitch_manage_host`
//! off), seeded from the build's default configuration. A test can stop, start and restart an
//! instance (a restart in the middle of a drain), place SIP calls with `sipp` and watch the
//! media FreeSWITCH sends back.
//!
//! The sandbox's real media nodes are started the same way, by the local CodeBuild ([`node`]):
//! one per EC2 instance, on the instance's address, outliving the build that starts it.
//!
//! Nothing here skips: without the build (or the Ansible venv) starting fails with a message
//! that says which setup step provides it.
//!
//! Layout:
//! - [`build`]: where the build, Ansible and the repository are (from the environment).
//! - [`slot`]: an instance's addresses and ports, reserved across test processes.
//! - [`render`]: the role run that writes every instance's configuration.
//! - [`instance`]: one FreeSWITCH process: start, wait until ready, stop, kill, restart.
//! - [`cluster`]: N instances started together; what tests hold.
//! - [`node`]: one instance that outlives its starter: the sandbox's media node.
//! - [`sipp`]: calls placed with sipp, counted from its statistics.
//! - [`rtp`]: a UDP socket that receives the calls' media and remembers each stream.
//! - [`error`]: the crate's one error enum.

pub mod build;
pub mod cluster;
pub mod error;
pub mod instance;
pub mod node;
pub mod render;
pub mod rtp;
pub mod sipp;
pub mod slot;

pub use build::Build;
pub use cluster::{Cluster, Options};
pub use error::{Error, Result};
pub use instance::Instance;
pub use rtp::{RtpSink, Stream};
pub use sipp::{CallPlan, Calls, Outcome, Scenario};
pub use slot::Place;
