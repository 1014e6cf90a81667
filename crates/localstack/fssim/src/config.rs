//! How a simulated node is set up, and the faults it can be told to show.

use std::net::SocketAddr;
use std::time::Duration;

/// A call leg's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Whether the event socket ACL admits the client (tests only connect from loopback, so the
/// ACL is a switch rather than a CIDR list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acl {
    Allow,
    /// Sends `text/rude-rejection` then the disconnect notice, and closes: FreeSWITCH's
    /// answer to an address outside `apply-inbound-acl`.
    Deny,
}

/// How long calls last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DurationDist {
    Fixed(Duration),
    /// Log-normal with the given median and shape (sigma of the underlying normal).
    LogNormal {
        median: Duration,
        sigma: f64,
    },
}

/// Random call arrivals (a Poisson process).
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub calls_per_sec: f64,
    pub duration: DurationDist,
    /// Share of calls that are outbound (the rest are inbound).
    pub outbound_fraction: f64,
    /// Share of calls bridged to a second, outbound leg (2 channels, 1 call).
    pub bridged_fraction: f64,
}

/// Misbehaviour on demand, for testing the client's failure paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Every reply is sent this much later.
    SlowReplies(Duration),
    /// Commands are read and never answered.
    Hang,
    /// Each connection is closed as soon as it sends a command (new ones right after accept).
    DropConnections,
    /// Commands are answered with bytes that are not ESL.
    Garbage,
    /// Replies are cut off halfway and the connection closed.
    CloseMidReply,
}

/// FreeSWITCH's core database, which answers `show ... count` and `show channels`. FreeSWITCH
/// writes it in the background, so under a burst it lags what the node holds in memory (the
/// session count `status` reports): a count read from it can say 0 with calls up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CoreDb {
    /// Every channel is in the database the moment it is created.
    #[default]
    Current,
    /// A channel reaches the database this long after it is created, and leaves it this long
    /// after it ends.
    Lagging(Duration),
    /// Started with the core database off: `show` answers `-ERR SQL disabled`.
    Disabled,
}

/// One simulated FreeSWITCH.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where to listen; port 0 picks a free one. Keep it on loopback.
    pub bind: SocketAddr,
    pub password: String,
    pub acl: Acl,
    pub max_sessions: u64,
    pub max_sessions_per_sec: u64,
    pub min_idle_cpu: f64,
    pub idle_cpu: f64,
    /// FreeSWITCH sends HEARTBEAT every 20 s by default; `None` disables it.
    pub heartbeat: Option<Duration>,
    pub traffic: Option<Traffic>,
    pub hostname: String,
    pub seed: u64,
    pub core_db: CoreDb,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            password: "ClueCon".into(),
            acl: Acl::Allow,
            max_sessions: 1000,
            max_sessions_per_sec: 100,
            min_idle_cpu: 0.0,
            idle_cpu: 80.0,
            heartbeat: Some(Duration::from_secs(20)),
            traffic: None,
            hostname: "fssim".into(),
            seed: 1,
            core_db: CoreDb::Current,
        }
    }
}

impl NodeConfig {
    /// A node whose core database lags as FreeSWITCH 1.10.12's does, as measured on the real
    /// one: new and ended channels reach it 100 to 170 ms late, so the count read right after
    /// `hupall` still holds every channel cut. The differential test
    /// (crates/localstack/freeswitch/tests/differential.rs) holds this node to the real one,
    /// command by command.
    pub fn like_freeswitch() -> NodeConfig {
        NodeConfig {
            core_db: CoreDb::Lagging(Duration::from_millis(150)),
            ..NodeConfig::default()
        }
    }
}
