//! The node's state and call model, with time passed in so tests can drive it.
//!
//! Calls are generated lazily: nothing runs between requests; each look at the state first
//! plays arrivals and hang-ups up to "now" in time order. That keeps an idle node free of
//! tasks and timers, so one process can hold a thousand of them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{CoreDb, Direction, DurationDist, Fault, NodeConfig, Traffic};

/// Most arrivals and hang-ups replayed by one look at the state; beyond it arrivals are
/// skipped (a node left alone for hours at a high rate would otherwise stall a request).
const MAX_STEPS_PER_ADVANCE: usize = 200_000;

/// What a new call looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSpec {
    pub direction: Direction,
    /// Bridged to a second, outbound leg: 2 channels, 1 call.
    pub bridged: bool,
    /// `None`: until hung up.
    pub duration: Option<Duration>,
}

impl CallSpec {
    pub fn inbound() -> Self {
        CallSpec {
            direction: Direction::Inbound,
            bridged: false,
            duration: None,
        }
    }

    pub fn outbound() -> Self {
        CallSpec {
            direction: Direction::Outbound,
            ..CallSpec::inbound()
        }
    }

    pub fn bridged(mut self) -> Self {
        self.bridged = true;
        self
    }

    pub fn lasting(mut self, d: Duration) -> Self {
        self.duration = Some(d);
        self
    }
}

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("new {} sessions are paused", .0.as_str())]
    Paused(Direction),
    #[error("maximum sessions reached")]
    MaxSessions,
}

/// Calls refused since start (or restart), by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused {
    pub inbound: u64,
    pub outbound: u64,
    pub max_sessions: u64,
}

impl Refused {
    pub fn total(&self) -> u64 {
        self.inbound + self.outbound + self.max_sessions
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Its time was up: the caller or the callee hung up.
    Natural,
    /// Cut by `hupall`.
    Hupall,
    /// Ended by `uuid_kill` (the canary calls) or by a test through the handle.
    Killed,
    /// Dropped by a FreeSWITCH restart.
    Restart,
    /// Still up when the node's process went away.
    Shutdown,
}

/// Every call a node admitted since its process started, and how each one ended: a restart
/// keeps these (unlike FreeSWITCH's own counters), so that whoever drives the node can tell a
/// call that ended by itself from one that was cut, and by what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallTally {
    pub admitted: u64,
    pub natural: u64,
    pub hupall: u64,
    pub killed: u64,
    pub restart: u64,
    pub shutdown: u64,
}

impl CallTally {
    fn ended(&mut self, why: EndReason, calls: u64) {
        let n = match why {
            EndReason::Natural => &mut self.natural,
            EndReason::Hupall => &mut self.hupall,
            EndReason::Killed => &mut self.killed,
            EndReason::Restart => &mut self.restart,
            EndReason::Shutdown => &mut self.shutdown,
        };
        *n += calls;
    }

    pub fn ended_total(&self) -> u64 {
        self.natural + self.hupall + self.killed + self.restart + self.shutdown
    }

    /// One line of JSON, with `up`, the calls up now.
    pub fn json(&self, up: u64) -> String {
        format!(
            r#"{{"admitted":{},"natural":{},"hupall":{},"killed":{},"restart":{},"shutdown":{},"up":{up}}}"#,
            self.admitted, self.natural, self.hupall, self.killed, self.restart, self.shutdown
        )
    }
}

/// One channel (leg) as `show channels` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub uuid: String,
    pub direction: Direction,
    pub created: SystemTime,
    pub name: String,
    /// For a bridged b-leg, the a-leg's uuid.
    pub call_uuid: Option<String>,
    pub bridged: bool,
}

#[derive(Debug, Clone)]
struct Call {
    legs: Vec<Leg>,
    ends_at: Option<Instant>,
}

/// Identifies a call for `end_call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

#[derive(Debug)]
struct TrafficGen {
    cfg: Traffic,
    next_arrival: Instant,
}

/// Per-second counters for the "peak" and "last 5min" figures of `status`.
#[derive(Debug, Clone, Copy)]
struct Second {
    index: u64,
    created: u64,
    peak_channels: u64,
}

#[derive(Debug)]
pub struct NodeState {
    pub(crate) start: Instant,
    start_wall: SystemTime,
    pub(crate) core_uuid: String,
    pub pause_inbound: bool,
    pub pause_outbound: bool,
    calls: BTreeMap<u64, Call>,
    ends: BinaryHeap<Reverse<(Instant, u64)>>,
    next_id: u64,
    channels: u64,
    pub sessions_since_startup: u64,
    pub sessions_peak: u64,
    sps_peak: u64,
    seconds: VecDeque<Second>,
    pub refused: Refused,
    pub hupall_channels: u64,
    /// Calls admitted and ended since the process started (kept across restarts).
    pub tally: CallTally,
    pub(crate) event_seq: u64,
    traffic: Option<TrafficGen>,
    rng: StdRng,
    pub max_sessions: u64,
    pub max_sessions_per_sec: u64,
    pub min_idle_cpu: f64,
    pub idle_cpu: f64,
    pub hostname: String,
    pub fault: Fault,
    core_db: CoreDb,
    /// Ended legs the lagging core database still holds, with when they ended (wall clock).
    ended: VecDeque<(Leg, SystemTime)>,
    /// The MOS a canary call placed by `originate` measures; None: such calls are not
    /// answered (a node without the canary extension).
    pub canary_mos: Option<f64>,
    /// Canary calls up, by their uuid.
    canaries: BTreeMap<String, (CallId, Instant)>,
}

/// A canary call's end, as its `CHANNEL_HANGUP_COMPLETE` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryEnd {
    pub uuid: String,
    pub up_for: Duration,
    pub mos: f64,
}

impl NodeState {
    pub fn new(cfg: &NodeConfig, now: Instant) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let core_uuid = uuid(&mut rng);
        let mut st = NodeState {
            start: now,
            start_wall: SystemTime::now(),
            core_uuid,
            pause_inbound: false,
            pause_outbound: false,
            calls: BTreeMap::new(),
            ends: BinaryHeap::new(),
            next_id: 1,
            channels: 0,
            sessions_since_startup: 0,
            sessions_peak: 0,
            sps_peak: 0,
            seconds: VecDeque::new(),
            refused: Refused::default(),
            hupall_channels: 0,
            tally: CallTally::default(),
            event_seq: 0,
            traffic: None,
            rng,
            max_sessions: cfg.max_sessions,
            max_sessions_per_sec: cfg.max_sessions_per_sec,
            min_idle_cpu: cfg.min_idle_cpu,
            idle_cpu: cfg.idle_cpu,
            hostname: cfg.hostname.clone(),
            fault: Fault::None,
            core_db: cfg.core_db,
            ended: VecDeque::new(),
            canary_mos: Some(4.5),
            canaries: BTreeMap::new(),
        };
        st.traffic = cfg.traffic.clone().map(|t| {
            let first = now + st.gap(&t);
            TrafficGen {
                cfg: t,
                next_arrival: first,
            }
        });
        st
    }

    /// The wall clock as this node sees it: start time plus tokio time elapsed, so that a
    /// paused tokio clock pauses it too.
    pub fn wall(&self, now: Instant) -> SystemTime {
        self.start_wall + now.saturating_duration_since(self.start)
    }

    pub fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start)
    }

    /// Drops every call and forgets the pause flags and counters, as a FreeSWITCH restart
    /// does (the flags live only in memory); the [`CallTally`] counts the calls dropped.
    pub fn restart(&mut self, now: Instant) {
        let fault = self.fault;
        let mut tally = self.tally;
        tally.ended(EndReason::Restart, self.call_count());
        let cfg_like = NodeConfig {
            max_sessions: self.max_sessions,
            max_sessions_per_sec: self.max_sessions_per_sec,
            min_idle_cpu: self.min_idle_cpu,
            idle_cpu: self.idle_cpu,
            hostname: self.hostname.clone(),
            traffic: self.traffic.as_ref().map(|t| t.cfg.clone()),
            seed: self.rng.random(),
            core_db: self.core_db,
            ..NodeConfig::default()
        };
        *self = NodeState::new(&cfg_like, now);
        self.fault = fault;
        self.tally = tally;
        info!(core_uuid = %self.core_uuid, "node restarted");
    }

    /// Plays arrivals and hang-ups up to `now`, in time order.
    pub fn advance(&mut self, now: Instant) {
        let lag = self.db_lag();
        let wall = self.wall(now);
        while self.ended.front().is_some_and(|(_, at)| *at + lag <= wall) {
            self.ended.pop_front();
        }
        for _ in 0..MAX_STEPS_PER_ADVANCE {
            let next_end = self.ends.peek().map(|Reverse((t, _))| *t);
            let next_arrival = self.traffic.as_ref().map(|t| t.next_arrival);
            match (next_end, next_arrival) {
                (Some(e), a) if e <= now && a.is_none_or(|a| e <= a) => {
                    if let Some(Reverse((t, id))) = self.ends.pop() {
                        let due = self.calls.get(&id).and_then(|c| c.ends_at) == Some(t);
                        if due {
                            let at = self.wall(t);
                            self.remove(id, at, EndReason::Natural);
                        }
                    }
                }
                (_, Some(a)) if a <= now => self.arrive(a),
                _ => return,
            }
        }
        if let Some(t) = self.traffic.as_mut() {
            warn!("call model fell behind; skipping arrivals up to now");
            t.next_arrival = now;
        }
    }

    fn arrive(&mut self, at: Instant) {
        let Some(cfg) = self.traffic.as_ref().map(|t| t.cfg.clone()) else {
            return;
        };
        let direction = if self.rng.random_bool(cfg.outbound_fraction.clamp(0.0, 1.0)) {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let bridged = self.rng.random_bool(cfg.bridged_fraction.clamp(0.0, 1.0));
        let duration = match cfg.duration {
            DurationDist::Fixed(d) => d,
            DurationDist::LogNormal { median, sigma } => {
                let mu = median.as_secs_f64().max(1e-3).ln();
                match LogNormal::new(mu, sigma.max(0.0)) {
                    Ok(dist) => Duration::from_secs_f64(dist.sample(&mut self.rng).min(86_400.0)),
                    Err(_) => median,
                }
            }
        };
        let spec = CallSpec {
            direction,
            bridged,
            duration: Some(duration),
        };
        let _ = self.admit(spec, at);
        let gap = self.gap(&cfg);
        if let Some(t) = self.traffic.as_mut() {
            t.next_arrival = at + gap;
        }
    }

    fn gap(&mut self, t: &Traffic) -> Duration {
        if !(t.calls_per_sec.is_finite() && t.calls_per_sec > 0.0) {
            return Duration::from_secs(86_400 * 365);
        }
        match Exp::new(t.calls_per_sec) {
            Ok(exp) => Duration::from_secs_f64(exp.sample(&mut self.rng).min(86_400.0)),
            Err(_) => Duration::from_secs(1),
        }
    }

    /// Admits a call (counting a refusal if the node will not take it) at time `at`.
    pub fn admit(&mut self, spec: CallSpec, at: Instant) -> Result<CallId, Refusal> {
        let refuse = |st: &mut NodeState, r: Refusal| {
            match r {
                Refusal::Paused(Direction::Inbound) => st.refused.inbound += 1,
                Refusal::Paused(Direction::Outbound) => st.refused.outbound += 1,
                Refusal::MaxSessions => st.refused.max_sessions += 1,
            }
            Err(r)
        };
        if self.paused(spec.direction) {
            return refuse(self, Refusal::Paused(spec.direction));
        }
        if spec.bridged && self.pause_outbound {
            return refuse(self, Refusal::Paused(Direction::Outbound));
        }
        let legs = if spec.bridged { 2 } else { 1 };
        if self.channels + legs > self.max_sessions {
            return refuse(self, Refusal::MaxSessions);
        }
        let created = self.wall(at);
        let a_uuid = uuid(&mut self.rng);
        let mut call_legs = vec![Leg {
            uuid: a_uuid.clone(),
            direction: spec.direction,
            created,
            name: "sofia/lo/sipp@127.0.0.1:5070".into(),
            call_uuid: None,
            bridged: spec.bridged,
        }];
        if spec.bridged {
            call_legs.push(Leg {
                uuid: uuid(&mut self.rng),
                direction: Direction::Outbound,
                created,
                name: "sofia/lo/service@127.0.0.1:5090".into(),
                call_uuid: Some(a_uuid),
                bridged: true,
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        let ends_at = spec.duration.map(|d| at + d);
        if let Some(t) = ends_at {
            self.ends.push(Reverse((t, id)));
        }
        self.calls.insert(
            id,
            Call {
                legs: call_legs,
                ends_at,
            },
        );
        self.channels += legs;
        self.tally.admitted += 1;
        self.sessions_since_startup += legs;
        self.sessions_peak = self.sessions_peak.max(self.channels);
        let sec = self.second(at);
        sec.created += legs;
        let created_now = sec.created;
        let channels = self.channels;
        let sec = self.second(at);
        sec.peak_channels = sec.peak_channels.max(channels);
        self.sps_peak = self.sps_peak.max(created_now);
        Ok(CallId(id))
    }

    fn second(&mut self, at: Instant) -> &mut Second {
        let index = at.saturating_duration_since(self.start).as_secs();
        while self.seconds.front().is_some_and(|s| s.index + 300 < index) {
            self.seconds.pop_front();
        }
        if self.seconds.back().is_none_or(|s| s.index != index) {
            let channels = self.channels;
            self.seconds.push_back(Second {
                index,
                created: 0,
                peak_channels: channels,
            });
        }
        self.seconds
            .back_mut()
            .expect("an entry for this second was just ensured")
    }

    /// Ends call `id` at `at` (the node's wall clock) for `why`; returns its channels.
    fn remove(&mut self, id: u64, at: SystemTime, why: EndReason) -> u64 {
        match self.calls.remove(&id) {
            Some(call) => {
                self.tally.ended(why, 1);
                let n = call.legs.len() as u64;
                self.channels = self.channels.saturating_sub(n);
                if !self.db_lag().is_zero() {
                    self.ended.extend(call.legs.into_iter().map(|l| (l, at)));
                }
                n
            }
            None => 0,
        }
    }

    /// How far the core database trails the node's memory.
    fn db_lag(&self) -> Duration {
        match self.core_db {
            CoreDb::Lagging(lag) => lag,
            CoreDb::Current | CoreDb::Disabled => Duration::ZERO,
        }
    }

    /// The legs FreeSWITCH's core database holds at `now` (what `show` answers from): with a
    /// lag, not yet the newest, and still those that ended less than the lag ago.
    pub fn db_legs(&self, now: Instant) -> impl Iterator<Item = &Leg> {
        let lag = self.db_lag();
        let wall = self.wall(now);
        let known = move |l: &&Leg| l.created + lag <= wall;
        let still_held = move |(_, ended): &&(Leg, SystemTime)| *ended + lag > wall;
        self.legs().filter(known).chain(
            self.ended
                .iter()
                .filter(still_held)
                .map(|(l, _)| l)
                .filter(known),
        )
    }

    pub fn paused(&self, d: Direction) -> bool {
        match d {
            Direction::Inbound => self.pause_inbound,
            Direction::Outbound => self.pause_outbound,
        }
    }

    /// FreeSWITCH's `switch_core_ready()`: false only when new sessions are refused both ways.
    pub fn ready(&self) -> bool {
        !(self.pause_inbound && self.pause_outbound)
    }

    pub fn end_call(&mut self, id: CallId) -> bool {
        let at = self.wall(Instant::now());
        self.remove(id.0, at, EndReason::Killed) > 0
    }

    /// `originate` of a canary call: an outbound leg with `uuid`, up until killed. Err: the
    /// cause FreeSWITCH names when it cannot place or connect the call.
    pub fn originate(&mut self, uuid: &str, at: Instant) -> Result<(), &'static str> {
        if self.pause_outbound {
            // sofia cannot create the outbound session (mod_sofia.c, `Error Creating Session`).
            return Err("DESTINATION_OUT_OF_ORDER");
        }
        if self.canary_mos.is_none() {
            // What FreeSWITCH 1.10.12's originate says when nothing in the callee's dialplan
            // answers the number (crates/localstack/freeswitch/tests/canary.rs sees it).
            return Err("NORMAL_CLEARING");
        }
        let id = self.admit(CallSpec::outbound(), at).map_err(|r| match r {
            Refusal::MaxSessions => "SWITCH_CONGESTION",
            Refusal::Paused(_) => "DESTINATION_OUT_OF_ORDER",
        })?;
        if let Some(leg) = self.calls.get_mut(&id.0).and_then(|c| c.legs.first_mut()) {
            leg.uuid = uuid.to_string();
            leg.name = "sofia/pairscale/pairscale-canary@127.0.0.1:5060".into();
        }
        self.canaries.insert(uuid.to_string(), (id, at));
        Ok(())
    }

    /// `uuid_kill` of a canary call still up.
    pub fn kill_canary(&mut self, uuid: &str, at: Instant) -> Option<CanaryEnd> {
        let (id, since) = self.canaries.remove(uuid)?;
        if !self.end_call(id) {
            return None;
        }
        Some(CanaryEnd {
            uuid: uuid.to_string(),
            up_for: at.saturating_duration_since(since),
            mos: self.canary_mos.unwrap_or(0.0),
        })
    }

    /// Hangs up every call, as a test does; returns the number of channels cut.
    pub fn end_all(&mut self) -> u64 {
        self.end_all_because(EndReason::Killed)
    }

    /// Ends every call for `why`; returns the number of channels cut.
    pub fn end_all_because(&mut self, why: EndReason) -> u64 {
        let at = self.wall(Instant::now());
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        let cut = ids.into_iter().map(|id| self.remove(id, at, why)).sum();
        self.ends.clear();
        cut
    }

    pub fn channel_count(&self) -> u64 {
        self.channels
    }

    pub fn call_count(&self) -> u64 {
        self.calls.len() as u64
    }

    pub fn legs(&self) -> impl Iterator<Item = &Leg> {
        self.calls.values().flat_map(|c| c.legs.iter())
    }

    pub fn sessions_per_sec(&self, now: Instant) -> u64 {
        let index = now.saturating_duration_since(self.start).as_secs();
        self.seconds
            .iter()
            .rev()
            .find(|s| s.index == index)
            .map_or(0, |s| s.created)
    }

    pub fn sessions_per_sec_peak(&self) -> u64 {
        self.sps_peak
    }

    fn recent(&self, now: Instant) -> impl Iterator<Item = &Second> {
        let index = now.saturating_duration_since(self.start).as_secs();
        self.seconds.iter().filter(move |s| s.index + 300 >= index)
    }

    pub fn sessions_per_sec_5min(&self, now: Instant) -> u64 {
        self.recent(now).map(|s| s.created).max().unwrap_or(0)
    }

    pub fn sessions_peak_5min(&self, now: Instant) -> u64 {
        self.recent(now)
            .map(|s| s.peak_channels)
            .max()
            .unwrap_or(0)
            .max(self.channels)
    }

    pub fn next_seq(&mut self) -> u64 {
        self.event_seq += 1;
        self.event_seq
    }

    pub fn new_uuid(&mut self) -> String {
        uuid(&mut self.rng)
    }
}

/// A version-4 shaped UUID from the node's seeded generator (reproducible per seed).
fn uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    let h = |r: std::ops::Range<usize>| -> String {
        b.get(r)
            .unwrap_or_default()
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    };
    let mut s = format!(
        "{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    );
    // Version and variant nibbles, as uuid v4 has them.
    s.replace_range(14..15, "4");
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn node() -> (NodeState, Instant) {
        let now = Instant::now();
        (NodeState::new(&NodeConfig::default(), now), now)
    }

    #[test]
    fn a_bridged_call_is_two_channels_and_one_call() {
        let (mut st, now) = node();
        st.admit(CallSpec::inbound().bridged(), now).unwrap();
        st.admit(CallSpec::inbound(), now).unwrap();
        assert_eq!(st.channel_count(), 3);
        assert_eq!(st.call_count(), 2);
        assert_eq!(st.sessions_since_startup, 3);
    }

    #[test]
    fn paused_directions_refuse_and_count() {
        let (mut st, now) = node();
        st.pause_inbound = true;
        assert_eq!(
            st.admit(CallSpec::inbound(), now),
            Err(Refusal::Paused(Direction::Inbound))
        );
        assert!(st.admit(CallSpec::outbound(), now).is_ok());
        assert!(st.ready(), "paused one way is still ready");
        st.pause_outbound = true;
        assert!(!st.ready());
        assert_eq!(
            st.admit(CallSpec::outbound(), now),
            Err(Refusal::Paused(Direction::Outbound))
        );
        assert_eq!(st.refused.total(), 2);
    }

    #[test]
    fn calls_end_when_their_duration_is_up() {
        let (mut st, now) = node();
        st.admit(CallSpec::inbound().lasting(Duration::from_secs(10)), now)
            .unwrap();
        st.admit(CallSpec::inbound().lasting(Duration::from_secs(30)), now)
            .unwrap();
        st.advance(now + Duration::from_secs(11));
        assert_eq!(st.channel_count(), 1);
        st.advance(now + Duration::from_secs(31));
        assert_eq!(st.channel_count(), 0);
        assert_eq!(st.sessions_peak, 2);
    }

    #[test]
    fn random_traffic_arrives_and_drains() {
        let cfg = NodeConfig {
            traffic: Some(Traffic {
                calls_per_sec: 5.0,
                duration: DurationDist::LogNormal {
                    median: Duration::from_secs(20),
                    sigma: 0.5,
                },
                outbound_fraction: 0.0,
                bridged_fraction: 0.5,
            }),
            ..NodeConfig::default()
        };
        let now = Instant::now();
        let mut st = NodeState::new(&cfg, now);
        st.advance(now + Duration::from_secs(60));
        assert!(
            st.sessions_since_startup > 100,
            "{}",
            st.sessions_since_startup
        );
        assert!(
            st.channel_count() > st.call_count(),
            "some calls are bridged"
        );
        st.pause_inbound = true;
        let before = st.sessions_since_startup;
        st.advance(now + Duration::from_secs(120));
        assert_eq!(
            st.sessions_since_startup, before,
            "paused: nothing admitted"
        );
        assert!(st.refused.inbound > 100);
        st.advance(now + Duration::from_secs(3600));
        assert_eq!(st.channel_count(), 0, "drained once paused");
    }

    #[test]
    fn restart_forgets_calls_and_pause_flags() {
        let (mut st, now) = node();
        st.admit(CallSpec::inbound(), now).unwrap();
        st.pause_inbound = true;
        st.pause_outbound = true;
        let old = st.core_uuid.clone();
        st.restart(now + Duration::from_secs(5));
        assert_eq!(st.channel_count(), 0);
        assert!(!st.pause_inbound && !st.pause_outbound);
        assert_eq!(st.sessions_since_startup, 0);
        assert_ne!(st.core_uuid, old);
    }

    #[test]
    fn a_lagging_core_database_holds_ended_channels_for_its_lag() {
        let cfg = NodeConfig::like_freeswitch();
        let CoreDb::Lagging(lag) = cfg.core_db else {
            panic!("like_freeswitch lags");
        };
        let now = Instant::now();
        let mut st = NodeState::new(&cfg, now);
        st.admit(CallSpec::inbound().lasting(lag), now).unwrap();
        st.admit(CallSpec::inbound().bridged(), now).unwrap();
        assert_eq!(st.db_legs(now).count(), 0, "not written yet");
        let ended = now + lag;
        st.advance(ended);
        assert_eq!(st.channel_count(), 2, "the first call ended");
        assert_eq!(st.db_legs(ended).count(), 3, "the database still holds it");
        let later = ended + lag;
        st.advance(later);
        assert_eq!(st.db_legs(later).count(), 2);
    }

    #[test]
    fn a_current_core_database_is_the_node_itself() {
        let (mut st, now) = node();
        let id = st.admit(CallSpec::inbound(), now).unwrap();
        assert_eq!(st.db_legs(now).count(), 1);
        st.end_call(id);
        assert_eq!(st.db_legs(now).count(), 0);
    }

    #[test]
    fn the_tally_says_how_every_call_ended_and_survives_a_restart() {
        let (mut st, now) = node();
        st.admit(CallSpec::inbound().lasting(Duration::from_secs(1)), now)
            .unwrap();
        let killed = st.admit(CallSpec::inbound().bridged(), now).unwrap();
        st.admit(CallSpec::inbound(), now).unwrap();
        st.advance(now + Duration::from_secs(2));
        assert!(st.end_call(killed));
        st.end_all_because(EndReason::Hupall);
        st.admit(CallSpec::inbound(), now).unwrap();
        st.admit(CallSpec::outbound(), now).unwrap();
        st.restart(now + Duration::from_secs(3));
        st.admit(CallSpec::inbound(), now).unwrap();
        st.end_all_because(EndReason::Shutdown);
        let t = st.tally;
        assert_eq!(
            t,
            CallTally {
                admitted: 6,
                natural: 1,
                hupall: 1,
                killed: 1,
                restart: 2,
                shutdown: 1,
            }
        );
        assert_eq!(t.ended_total(), t.admitted, "every call ended once");
    }

    #[test]
    fn every_admitted_call_is_up_or_ended_for_a_reason() {
        let cfg = NodeConfig {
            traffic: Some(Traffic {
                calls_per_sec: 20.0,
                duration: DurationDist::LogNormal {
                    median: Duration::from_secs(2),
                    sigma: 0.8,
                },
                outbound_fraction: 0.2,
                bridged_fraction: 0.3,
            }),
            ..NodeConfig::default()
        };
        let now = Instant::now();
        let mut st = NodeState::new(&cfg, now);
        for s in 1..60 {
            let at = now + Duration::from_secs(s);
            st.advance(at);
            match s {
                10 | 40 => {
                    st.end_all_because(EndReason::Hupall);
                }
                25 => st.restart(at),
                30 => st.pause_inbound = true,
                _ => {}
            }
            let t = st.tally;
            assert_eq!(
                t.admitted,
                t.ended_total() + st.call_count(),
                "at {s} s: {t:?}"
            );
        }
        let t = st.tally;
        assert!(t.natural > 0 && t.hupall > 0 && t.restart > 0, "{t:?}");
        assert_eq!(
            t.json(st.call_count()),
            format!(
                r#"{{"admitted":{},"natural":{},"hupall":{},"killed":0,"restart":{},"shutdown":0,"up":{}}}"#,
                t.admitted,
                t.natural,
                t.hupall,
                t.restart,
                st.call_count()
            )
        );
    }

    #[test]
    fn uuids_look_like_uuids() {
        let (mut st, _) = node();
        let u = st.new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(u.matches('-').count(), 4);
    }
}
