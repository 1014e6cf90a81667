//! The fleet every stack deploys: how it drains, what runs behind its instances and how
//! simulated nodes carry calls, and the configuration both deploys give it (through the SDK,
//! or as Terraform's `fleet_config`).

use serde_json::{json, Value};

/// The root of the fleets' SSM parameters in a stack made through the SDK.
pub const PREFIX: &str = "/pairscale-e2e";

/// How the fleet drains, what its nodes are, and how many calls each simulated node starts
/// with.
#[derive(Debug)]
pub struct Options {
    pub policy: &'static str,
    pub deadline_seconds: u64,
    pub initial_calls: u32,
    /// Random call arrivals per second per node (log-normal lengths around `median_call_secs`).
    pub calls_per_sec: f64,
    pub median_call_secs: f64,
    pub media: Media,
    /// The Kamailio (its JSON-RPC URL) the fleet's functions and builds drive; `None`: the
    /// first instance the test setup started (`KAMAILIO_RPC_URL`). A test that restarts
    /// Kamailio gives the fleet one of its own, leaving the shared ones to the other tests.
    pub kamailio_rpc_url: Option<String>,
    /// Each function's timeout (the emulator's, as Lambda's): 60 s, as short as a handler
    /// allows. The 1,000-pair payload test gives more: its calls are slow on a loaded machine,
    /// and it measures sizes, not time.
    pub function_timeout_secs: i32,
}

/// What the local builds run behind each instance's address.
#[derive(Debug, Clone, Default)]
pub enum Media {
    /// `pairscale-fssim`: the Event Socket and a call model (the calls above), no SIP.
    #[default]
    Simulated,
    /// Real FreeSWITCH from this build, configured by the project's role; it carries only the
    /// calls someone places through Kamailio.
    FreeSwitch(pairscale_freeswitch::Build),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy: "wait",
            deadline_seconds: 60,
            initial_calls: 0,
            calls_per_sec: 0.0,
            median_call_secs: 1.0,
            media: Media::Simulated,
            kamailio_rpc_url: None,
            function_timeout_secs: 60,
        }
    }
}

/// The fleet configuration of every stack: min 1, max 10, max step 4, no cooldowns, one
/// race spare, drain checks every second, `opts`' drain policy and deadline (`wait` gets twice
/// the deadline as its hard maximum); build polls every second and two minutes for a build,
/// or, for real FreeSWITCH nodes, whose start (the role's run, then FreeSWITCH itself) a
/// Terraform build waits for, every two seconds and five minutes; a transient Terraform
/// failure retried twice, a second apart and then two.
pub fn fleet_config(opts: &Options, esl_port: u16, set_id: i32) -> Value {
    let (build_poll_seconds, build_timeout_seconds) = match opts.media {
        Media::Simulated => (1, 120),
        Media::FreeSwitch(_) => (2, 300),
    };
    json!({
        "min_pairs": 1, "max_pairs": 10, "max_step": 4,
        "cooldown_out_seconds": 0, "cooldown_in_seconds": 0,
        "drain": {"deadline_seconds": opts.deadline_seconds, "policy": opts.policy,
                  "hard_max_seconds": if opts.policy == "wait" { json!(opts.deadline_seconds * 2) } else { Value::Null },
                  "check_interval_seconds": 1},
        "race_spares": 1,
        "build_poll_seconds": build_poll_seconds,
        "build_timeout_seconds": build_timeout_seconds,
        "build_retries": 2,
        "build_retry_seconds": 1,
        "esl_port": esl_port,
        "dispatcher_set_id": set_id,
    })
}

/// A dispatcher set of its own for a new stack, so that stacks sharing the one Kamailio do
/// not see each other's destinations.
pub fn dispatcher_set_id() -> i32 {
    100 + i32::from(rand::random::<u16>() % 30_000)
}
