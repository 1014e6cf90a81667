//! Fleets and pairs: the configuration an operator writes, and the record of every pair.

use crate::canary::{CanaryConfig, QualityReading};
use crate::error::{Error, Result};
use crate::hangup::HangupCause;
use crate::ids::{FleetName, PairId, Timestamp};
use crate::proxies::KamailioRpcUrls;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The most pairs one fleet may have. Pair records, inventory validation and the drain check
/// are all built and tested for this many.
pub const MAX_FLEET_PAIRS: u32 = 1_000;

/// A pair's life: `provisioning` → `active` → `draining` → `drained` → (deleted), or `failed`.
/// A pair of the fleet's warm pool (`warm_pool`) starts as `warm`: its id allocated, its node
/// built from the fleet's image and stopped, no ESL client; a scale-out takes it (`warm` →
/// `provisioning`) before it allocates new ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
#[derive(schemars::JsonSchema)]
pub enum PairStatus {
    Provisioning,
    Active,
    Draining,
    Drained,
    Failed,
    Warm,
}

impl PairStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PairStatus::Provisioning => "provisioning",
            PairStatus::Active => "active",
            PairStatus::Draining => "draining",
            PairStatus::Drained => "drained",
            PairStatus::Failed => "failed",
            PairStatus::Warm => "warm",
        }
    }

    pub fn parse(s: &str) -> Result<PairStatus> {
        match s {
            "provisioning" => Ok(PairStatus::Provisioning),
            "active" => Ok(PairStatus::Active),
            "draining" => Ok(PairStatus::Draining),
            "drained" => Ok(PairStatus::Drained),
            "failed" => Ok(PairStatus::Failed),
            "warm" => Ok(PairStatus::Warm),
            other => Err(Error::invalid(
                "status",
                other,
                "must be one of provisioning, active, draining, drained, failed, warm",
            )),
        }
    }

    /// Whether a pair in this status should have its instance and ESL service running.
    pub fn expects_infrastructure(self) -> bool {
        matches!(
            self,
            PairStatus::Active | PairStatus::Draining | PairStatus::Drained
        )
    }
}

/// One FreeSWITCH + ESL-client pair, as pairscale records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    pub id: PairId,
    pub status: PairStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// `host:port` of the node's Event Socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esl_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_service: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_channels: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Timestamp>,
    /// The node's `sessions since startup` counter at that sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_since_startup: Option<u64>,
    /// The calls that arrived a minute between the sample before and that one; absent
    /// without a sample before it between [`crate::policy::offered::MIN_ARRIVALS_INTERVAL_MS`]
    /// and [`crate::policy::offered::MAX_ARRIVALS_INTERVAL_MS`] back, or when the counter went
    /// back (the node restarted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrivals_per_minute: Option<u32>,
    /// A protected pair is never chosen for scale-in.
    #[serde(default)]
    pub protected: bool,
}

impl Pair {
    pub fn new(id: PairId, status: PairStatus, now: Timestamp) -> Pair {
        Pair {
            id,
            status,
            instance_id: None,
            private_ip: None,
            esl_endpoint: None,
            ecs_service: None,
            created_at: now,
            updated_at: now,
            last_channels: None,
            last_seen_at: None,
            sessions_since_startup: None,
            arrivals_per_minute: None,
            protected: false,
        }
    }
}

/// What to do when a drain reaches its deadline with calls still up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DrainPolicy {
    /// Keep waiting, up to `hard_max_seconds`; then abort.
    Wait,
    /// Hang up what is left (`hupall`) and go on.
    Force,
    /// Put the candidates back into rotation and fail the run.
    Abort,
}

impl DrainPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainPolicy::Wait => "wait",
            DrainPolicy::Force => "force",
            DrainPolicy::Abort => "abort",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainConfig {
    /// How long to wait for calls to end before applying the policy.
    pub deadline_seconds: u64,
    pub policy: DrainPolicy,
    /// Under `wait`, the absolute limit after which the run aborts.
    #[serde(default)]
    pub hard_max_seconds: Option<u64>,
    /// The hangup cause `hupall` uses under `force`.
    #[serde(default)]
    pub hupall_cause: HangupCause,
    /// Seconds between channel checks.
    #[serde(default = "default_check_interval")]
    pub check_interval_seconds: u64,
}

fn default_check_interval() -> u64 {
    15
}

/// Three: on a heavy-tailed fleet one spare leaves the drain near 1.5 times the oracle's wait
/// and three bring it near 1.2 (docs/benchmarks.md); the drain races fewer when another would
/// not shorten the expected wait ([`crate::drain::choose`]), and the plan fewer when the load
/// needs the capacity ([`crate::plan::race_spares`]).
fn default_race_spares() -> u32 {
    3
}

/// A fleet's scaling configuration: SSM parameter `/pairscale/<fleet>/config`, JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    pub min_pairs: u32,
    pub max_pairs: u32,
    /// The most pairs one run may add or remove.
    pub max_step: u32,
    /// Seconds after a scale-out before another scale-out (short: scale up fast).
    pub cooldown_out_seconds: u64,
    /// Seconds after any scaling before a scale-in (long: scale down slowly).
    pub cooldown_in_seconds: u64,
    pub drain: DrainConfig,
    /// The most extra candidates quiesced in a scale-in race; the first to empty win.
    #[serde(default = "default_race_spares")]
    pub race_spares: u32,
    /// Channels one pair can carry; used to keep a race from leaving too little capacity.
    #[serde(default)]
    pub pair_capacity_channels: Option<u32>,
    /// CloudWatch alarm name → signed step (+2 adds two pairs, -1 removes one).
    #[serde(default)]
    pub alarm_steps: BTreeMap<String, i32>,
    /// Seconds between two looks at a running Terraform or Ansible build.
    #[serde(default = "default_build_poll_seconds")]
    pub build_poll_seconds: u64,
    /// A build still running after this long fails the run (and is compensated).
    #[serde(default = "default_build_timeout_seconds")]
    pub build_timeout_seconds: u64,
    /// How many times a Terraform build whose failure is transient (capacity, throttling, a
    /// held state lock, a service fault: [`crate::build::classify_failure`]) is started again
    /// before the run undoes its work. Every attempt of a step shares its
    /// `build_timeout_seconds`, counted from the first start.
    #[serde(default = "default_build_retries")]
    pub build_retries: u32,
    /// The wait before the first retry of a build; doubled before each later one.
    #[serde(default = "default_build_retry_seconds")]
    pub build_retry_seconds: u64,
    /// The SIP port of every FreeSWITCH of the fleet, as the dispatcher table spells it.
    #[serde(default = "default_sip_port")]
    pub sip_port: u16,
    /// Kamailio dispatcher set the fleet's nodes belong to.
    #[serde(default = "default_dispatcher_set_id")]
    pub dispatcher_set_id: u32,
    /// The Event Socket port of every FreeSWITCH of the fleet.
    #[serde(default = "default_esl_port")]
    pub esl_port: u16,
    /// The JSON-RPC endpoint of every Kamailio sharing the dispatcher table: each takes, and
    /// confirms, every disable and enable ([`crate::proxies`]). None: the drain function's own
    /// `PAIRSCALE_KAMAILIO_RPC_URL` alone.
    #[serde(default)]
    pub kamailio_rpc_urls: Option<KamailioRpcUrls>,
    /// The fleet's baked FreeSWITCH image (`packer/freeswitch.pkr.hcl`), an AMI id: new pairs
    /// start from it and their scale-out runs only the role's configure tasks. The orchestrator
    /// module hands it to the builds (`TF_VAR_image_id`, `PAIRSCALE_FREESWITCH_IMAGE_ID`); the
    /// functions only validate it. None: packages are installed at each scale-out.
    #[serde(default)]
    pub image_id: Option<String>,
    /// Stopped instances of `image_id` kept ready per fleet, each under a pair id of its own
    /// (status `warm`, no ESL client): a scale-out takes them first, so those pairs skip the
    /// launch and the first reads of a fresh volume, and refills the pool after its new pairs
    /// are in rotation. 0: no pool. Lowering it stops refilling; the pairs already warm are
    /// taken by the next scale-outs.
    #[serde(default)]
    pub warm_pool: u32,
    /// The canary call every new node passes before it takes calls, and the quality figure
    /// that holds a scale-in ([`crate::canary`]).
    #[serde(default)]
    pub canary: CanaryConfig,
    /// The scaling policy evaluated every minute ([`crate::policy`]); None: the fleet scales
    /// only when asked (the CLI, an alarm's fixed step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::PolicyConfig>,
}

fn default_esl_port() -> u16 {
    8021
}

fn default_build_poll_seconds() -> u64 {
    20
}

fn default_build_timeout_seconds() -> u64 {
    3600
}

fn default_build_retries() -> u32 {
    2
}

fn default_build_retry_seconds() -> u64 {
    60
}

fn default_sip_port() -> u16 {
    5060
}

fn default_dispatcher_set_id() -> u32 {
    1
}

impl FleetConfig {
    /// Parse and validate a stored configuration. Every complaint names the field and value.
    pub fn from_json(fleet: &FleetName, raw: &str) -> Result<FleetConfig> {
        let complaint = |field: String, value: &str, reason: String| Error::InvalidConfig {
            fleet: fleet.to_string(),
            field,
            value: crate::error::shorten(value),
            reason,
        };
        let json: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| complaint("config".into(), raw, e.to_string()))?;
        let cfg: FleetConfig = serde_path_to_error::deserialize(json.clone()).map_err(|e| {
            // The field's path and value where serde knows them (`drain.hupall_cause`), else
            // the whole document.
            let path = e.path().to_string();
            let at = json.pointer(&format!("/{}", path.replace('.', "/")));
            match at {
                Some(v) if path != "." => {
                    complaint(path, &v.to_string(), e.into_inner().to_string())
                }
                _ => complaint("config".into(), raw, e.into_inner().to_string()),
            }
        })?;
        cfg.validate(fleet)?;
        Ok(cfg)
    }

    pub fn validate(&self, fleet: &FleetName) -> Result<()> {
        self.check()
            .map_err(|(field, value, reason)| Error::InvalidConfig {
                fleet: fleet.to_string(),
                field,
                value,
                reason,
            })
    }

    /// The configuration against the lock's TTL (`PAIRSCALE_LOCK_TTL_SECONDS`): a run renews its
    /// lock once per drain wait and once per build poll, and what runs between two renewals
    /// (the wait, then the check or status call and their retries) must end well before the
    /// lock expires. So each of those intervals may be at most half the TTL; a longer one is
    /// refused here, naming it, before the run changes anything, rather than found out when
    /// another run takes the expired lock mid-drain.
    pub fn check_lock_ttl(&self, fleet: &FleetName, ttl_secs: u64) -> Result<()> {
        let half = ttl_secs / 2;
        for (field, value) in [
            (
                "drain.check_interval_seconds",
                self.drain.check_interval_seconds,
            ),
            ("build_poll_seconds", self.build_poll_seconds),
        ] {
            if value > half {
                return Err(Error::InvalidConfig {
                    fleet: fleet.to_string(),
                    field: field.into(),
                    value: value.to_string(),
                    reason: format!(
                        "must be at most half the scaling lock's TTL ({ttl_secs} s, PAIRSCALE_LOCK_TTL_SECONDS): \
                         the lock is renewed once per wait and would expire between renewals"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The first rule broken, as (field, value, why), in a fixed order.
    fn check(&self) -> std::result::Result<(), Complaint> {
        use bounds::*;
        if self.max_pairs > MAX_FLEET_PAIRS {
            return complain(
                "max_pairs",
                self.max_pairs,
                format!("must be at most {MAX_FLEET_PAIRS}"),
            );
        }
        if self.min_pairs > self.max_pairs {
            return complain("min_pairs", self.min_pairs, "must not exceed max_pairs");
        }
        within("max_step", self.max_step, MAX_STEP)?;
        within(
            "cooldown_out_seconds",
            self.cooldown_out_seconds,
            COOLDOWN_SECONDS,
        )?;
        within(
            "cooldown_in_seconds",
            self.cooldown_in_seconds,
            COOLDOWN_SECONDS,
        )?;
        let d = &self.drain;
        within("drain.deadline_seconds", d.deadline_seconds, DRAIN_SECONDS)?;
        match (d.policy, d.hard_max_seconds) {
            (DrainPolicy::Wait, None) => {
                return complain(
                    "drain.hard_max_seconds",
                    "null",
                    "policy 'wait' needs a hard maximum",
                )
            }
            (_, Some(h)) if h < d.deadline_seconds || h > *DRAIN_SECONDS.end() => {
                return complain(
                    "drain.hard_max_seconds",
                    h,
                    format!(
                        "must be at least drain.deadline_seconds and at most {}",
                        DRAIN_SECONDS.end()
                    ),
                )
            }
            _ => {}
        }
        within(
            "drain.check_interval_seconds",
            d.check_interval_seconds,
            CHECK_INTERVAL_SECONDS,
        )?;
        within("race_spares", self.race_spares, RACE_SPARES)?;
        within(
            "build_poll_seconds",
            self.build_poll_seconds,
            BUILD_POLL_SECONDS,
        )?;
        within(
            "build_timeout_seconds",
            self.build_timeout_seconds,
            BUILD_TIMEOUT_SECONDS,
        )?;
        within("build_retries", self.build_retries, BUILD_RETRIES)?;
        within(
            "build_retry_seconds",
            self.build_retry_seconds,
            BUILD_RETRY_SECONDS,
        )?;
        within("esl_port", self.esl_port, PORT)?;
        within("sip_port", self.sip_port, PORT)?;
        within(
            "dispatcher_set_id",
            self.dispatcher_set_id,
            DISPATCHER_SET_ID,
        )?;
        if let Some(image) = &self.image_id {
            if !is_ami_id(image) {
                return complain(
                    "image_id",
                    image,
                    "must be an AMI id, ami- and 8 or 17 lower-case hex digits (ami-0123456789abcdef0)",
                );
            }
        }
        if self.warm_pool > 0 {
            within("warm_pool", self.warm_pool, WARM_POOL)?;
            if self.image_id.is_none() {
                return complain(
                    "warm_pool",
                    self.warm_pool,
                    "a warm pool is of the fleet's baked image: set image_id too",
                );
            }
            if self.max_pairs + self.warm_pool > MAX_FLEET_PAIRS {
                return complain(
                    "warm_pool",
                    self.warm_pool,
                    format!(
                        "with max_pairs {} the fleet could hold more than {MAX_FLEET_PAIRS} pairs \
                         (warm ones count)",
                        self.max_pairs
                    ),
                );
            }
        }
        if let Some(c) = self.pair_capacity_channels {
            within("pair_capacity_channels", c, PAIR_CAPACITY_CHANNELS)?;
        }
        self.canary.check()?;
        if let Some(policy) = &self.policy {
            // The policy words its complaints with their full path (`policy.schedules[0].to`).
            policy.validate(self).map_err(|e| match e {
                Error::InvalidRequest {
                    field,
                    value,
                    reason,
                } => (field, value, reason),
                other => ("policy".to_string(), String::new(), other.to_string()),
            })?;
        }
        let worst = crate::history::worst_case(self);
        let events = worst.events;
        if events > crate::history::BUDGET {
            // Named by the loop that needs the most: a longer interval is the usual remedy.
            let (field, value) = if worst.drain_events >= worst.build_events {
                (
                    "drain.check_interval_seconds",
                    self.drain.check_interval_seconds,
                )
            } else {
                ("build_poll_seconds", self.build_poll_seconds)
            };
            return complain(
                field,
                value,
                format!(
                    "with these limits one run could need {events} history events, more than the {} \
                     of Step Functions' {} a run may plan on: check or poll less often, or lower \
                     drain.hard_max_seconds (deadline_seconds) or build_timeout_seconds",
                    crate::history::BUDGET,
                    crate::history::LIMIT
                ),
            );
        }
        for (name, step) in &self.alarm_steps {
            if !ALARM_NAME_LENGTH.contains(&name.len()) {
                return complain(
                    "alarm_steps",
                    name,
                    format!(
                        "alarm names are {}-{} characters",
                        ALARM_NAME_LENGTH.start(),
                        ALARM_NAME_LENGTH.end()
                    ),
                );
            }
            if *step == 0 || step.unsigned_abs() > self.max_step {
                return complain(
                    &format!("alarm_steps.{name}"),
                    step,
                    "must be non-zero and within max_step",
                );
            }
        }
        Ok(())
    }
}

/// The bounds of a fleet configuration, in one place: [`FleetConfig::validate`] checks them
/// and words its complaints from them, and the Terraform module's validation is held against
/// them (`tests/terraform/contract.py`, through this crate's `check_fleet_config` example).
pub mod bounds {
    use std::ops::RangeInclusive;

    const DAY: u64 = 86_400;
    pub const MAX_STEP: RangeInclusive<u32> = 1..=super::MAX_FLEET_PAIRS;
    pub const COOLDOWN_SECONDS: RangeInclusive<u64> = 0..=DAY;
    /// A drain's deadline and its hard maximum.
    pub const DRAIN_SECONDS: RangeInclusive<u64> = 1..=7 * DAY;
    pub const CHECK_INTERVAL_SECONDS: RangeInclusive<u64> = 1..=3600;
    pub const RACE_SPARES: RangeInclusive<u32> = 0..=10;
    pub const BUILD_POLL_SECONDS: RangeInclusive<u64> = 1..=600;
    /// CodeBuild's own maximum is 8 hours.
    pub const BUILD_TIMEOUT_SECONDS: RangeInclusive<u64> = 10..=8 * 3600;
    pub const BUILD_RETRIES: RangeInclusive<u32> = 0..=5;
    pub const BUILD_RETRY_SECONDS: RangeInclusive<u64> = 1..=900;
    pub const PORT: RangeInclusive<u16> = 1..=u16::MAX;
    pub const DISPATCHER_SET_ID: RangeInclusive<u32> = 1..=65_535;
    pub const PAIR_CAPACITY_CHANNELS: RangeInclusive<u32> = 1..=u32::MAX;
    /// Stopped instances kept per fleet (each also counts against the fleet's pairs).
    pub const WARM_POOL: RangeInclusive<u32> = 0..=100;
    pub const ALARM_NAME_LENGTH: RangeInclusive<usize> = 1..=255;
    /// Kamailio instances sharing the table: an HA pair, or a few more (each is visited by
    /// every disable and enable of every node).
    pub const KAMAILIO_RPC_URLS: RangeInclusive<usize> = 1..=8;
    pub const KAMAILIO_RPC_URL_LENGTH: RangeInclusive<usize> = 1..=255;
}

type Complaint = (String, String, String);

/// `ami-` and 8 or 17 lower-case hex digits: the two lengths EC2 has issued.
pub fn is_ami_id(s: &str) -> bool {
    s.strip_prefix("ami-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn complain(
    field: &str,
    value: impl ToString,
    reason: impl Into<String>,
) -> std::result::Result<(), Complaint> {
    Err((field.into(), value.to_string(), reason.into()))
}

/// `value` within `range`, or a complaint worded from the range itself.
fn within<T>(
    field: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> std::result::Result<(), Complaint>
where
    T: PartialOrd + Default + fmt::Display + Copy,
{
    if range.contains(&value) {
        return Ok(());
    }
    let (lo, hi) = (*range.start(), *range.end());
    let why = if lo == T::default() {
        format!("must be at most {hi}")
    } else {
        format!("must be {lo}..={hi}")
    };
    complain(field, value, why)
}

/// Per-fleet bookkeeping beside the pair records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FleetMeta {
    /// The highest pair sequence ever allocated; ids are never reused. Absent until the first
    /// allocation (the item may hold a scheduled quality reading before any run): none yet.
    #[serde(default)]
    pub last_pair_seq: u32,
    pub last_scale_out_at: Option<Timestamp>,
    pub last_scale_in_at: Option<Timestamp>,
    /// The fleet's latest call-quality reading: scheduled, or taken before a scale-in.
    #[serde(default)]
    pub quality: Option<QualityReading>,
}

#[cfg(test)]
pub(crate) fn sample_config() -> FleetConfig {
    FleetConfig {
        min_pairs: 1,
        max_pairs: 10,
        max_step: 3,
        cooldown_out_seconds: 60,
        cooldown_in_seconds: 600,
        drain: DrainConfig {
            deadline_seconds: 600,
            policy: DrainPolicy::Wait,
            hard_max_seconds: Some(3600),
            hupall_cause: HangupCause::default(),
            check_interval_seconds: 10,
        },
        race_spares: 1,
        pair_capacity_channels: None,
        alarm_steps: BTreeMap::from([("calls-high".into(), 2), ("calls-low".into(), -1)]),
        build_poll_seconds: default_build_poll_seconds(),
        build_timeout_seconds: default_build_timeout_seconds(),
        build_retries: default_build_retries(),
        build_retry_seconds: default_build_retry_seconds(),
        sip_port: default_sip_port(),
        dispatcher_set_id: default_dispatcher_set_id(),
        esl_port: default_esl_port(),
        kamailio_rpc_urls: None,
        image_id: None,
        warm_pool: 0,
        canary: CanaryConfig::default(),
        policy: None,
    }
}

#[cfg(test)]
mod tests;
