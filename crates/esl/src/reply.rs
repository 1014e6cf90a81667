//! Typed readings of FreeSWITCH's text answers (`status`, `show ... count`, `show channels as
//! json`, `hupall`). Pure functions: the error is a reason string the client wraps with the
//! command that produced the text.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A call leg's direction, as FreeSWITCH names it.
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

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Direction {
    type Err = String;
    /// Unknown values are refused, never defaulted.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "inbound" => Ok(Direction::Inbound),
            "outbound" => Ok(Direction::Outbound),
            other => Err(format!("unknown direction {other:?}")),
        }
    }
}

/// What `api status` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// `is ready`: false once new sessions are refused both ways (or shutting down).
    pub ready: bool,
    pub uptime: Duration,
    pub sessions_since_startup: u64,
    /// Current sessions (channels, i.e. legs).
    pub sessions: u64,
    pub sessions_peak: u64,
    pub sessions_peak_5min: u64,
    pub sessions_per_sec: u64,
    pub max_sessions_per_sec: u64,
    pub max_sessions: u64,
    pub min_idle_cpu: f64,
    /// Current idle CPU, percent.
    pub idle_cpu: f64,
}

impl Status {
    pub fn parse(text: &str) -> Result<Status, String> {
        let mut lines = text.lines();
        let mut next = |what: &str| lines.next().ok_or_else(|| format!("missing {what} line"));

        let up = next("UP")?;
        let uptime = parse_uptime(up)?;

        let banner = next("banner")?.trim_end();
        let ready = if banner.ends_with(" is not ready") {
            false
        } else if banner.ends_with(" is ready") {
            true
        } else {
            return Err(format!(
                "banner {banner:?} says neither ready nor not ready"
            ));
        };

        let since = next("since startup")?;
        let sessions_since_startup = leading_number(since, " session(s) since startup")?;

        // "20 session(s) - peak 21, last 5min 21 "
        let cur = next("current sessions")?;
        let sessions = leading_number(cur, " session(s) - peak ")?;
        let sessions_peak = number_after(cur, "peak ")?;
        let sessions_peak_5min = number_after(cur, "last 5min ")?;

        // "1 session(s) per Sec out of max 100, peak 10, last 5min 10 "
        let rate = next("per Sec")?;
        let sessions_per_sec = leading_number(rate, " session(s) per Sec out of max ")?;
        let max_sessions_per_sec = number_after(rate, "out of max ")?;

        let max = next("max sessions")?;
        let max_sessions = leading_number(max, " session(s) max")?;

        // "min idle cpu 0.00/80.00"
        let cpu = next("idle cpu")?;
        let pair = cpu
            .strip_prefix("min idle cpu ")
            .ok_or_else(|| format!("unexpected idle cpu line {cpu:?}"))?;
        let (min, cur) = pair
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("unexpected idle cpu line {cpu:?}"))?;
        let min_idle_cpu = parse_f64(min)?;
        let idle_cpu = parse_f64(cur)?;

        Ok(Status {
            ready,
            uptime,
            sessions_since_startup,
            sessions,
            sessions_peak,
            sessions_peak_5min,
            sessions_per_sec,
            max_sessions_per_sec,
            max_sessions,
            min_idle_cpu,
            idle_cpu,
        })
    }
}

fn parse_f64(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{s:?} is not finite"))
    }
}

fn leading_number(line: &str, then: &str) -> Result<u64, String> {
    let (n, rest) = line
        .split_once(' ')
        .ok_or_else(|| format!("unexpected line {line:?}"))?;
    if !format!(" {rest}").starts_with(then) {
        return Err(format!("unexpected line {line:?}"));
    }
    n.parse().map_err(|_| format!("unexpected line {line:?}"))
}

fn number_after(line: &str, key: &str) -> Result<u64, String> {
    let (_, rest) = line
        .split_once(key)
        .ok_or_else(|| format!("no {key:?} in {line:?}"))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .map_err(|_| format!("no number after {key:?} in {line:?}"))
}

/// "UP 0 years, 0 days, 0 hours, 0 minutes, 10 seconds, 832 milliseconds, 707 microseconds"
fn parse_uptime(line: &str) -> Result<Duration, String> {
    let rest = line
        .strip_prefix("UP ")
        .ok_or_else(|| format!("status does not start with UP: {line:?}"))?;
    let mut micros: u128 = 0;
    for part in rest.split(", ") {
        let (n, unit) = part
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("bad uptime part {part:?}"))?;
        let n: u128 = n.parse().map_err(|_| format!("bad uptime part {part:?}"))?;
        let scale: u128 = match unit.trim_end_matches('s') {
            "year" => 365 * 86_400_000_000,
            "day" => 86_400_000_000,
            "hour" => 3_600_000_000,
            "minute" => 60_000_000,
            "second" => 1_000_000,
            "millisecond" => 1_000,
            "microsecond" => 1,
            _ => return Err(format!("bad uptime unit {unit:?}")),
        };
        micros = micros.saturating_add(n.saturating_mul(scale));
    }
    let micros = u64::try_from(micros).map_err(|_| "uptime out of range".to_string())?;
    Ok(Duration::from_micros(micros))
}

/// `show channels count` / `show calls count`: "\n20 total.\n".
pub fn parse_count(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let n = t
        .strip_suffix(" total.")
        .ok_or_else(|| format!("expected \"N total.\", got {t:?}"))?;
    n.parse()
        .map_err(|_| format!("expected \"N total.\", got {t:?}"))
}

/// `true` / `false` with no newline (tolerating one).
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}

/// One row of `show channels as json`: what draining decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub uuid: String,
    pub direction: Direction,
    /// Seconds since the epoch when the channel was created.
    pub created_epoch: u64,
    /// `CS_EXECUTE`, `CS_EXCHANGE_MEDIA`, ...
    pub state: String,
    pub name: String,
}

impl Channel {
    /// How long the channel has existed at `now` (zero if its clock is ahead of ours).
    pub fn age(&self, now: SystemTime) -> Duration {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Duration::from_secs(now.saturating_sub(self.created_epoch))
    }
}

#[derive(serde::Deserialize)]
struct ChannelRows {
    row_count: u64,
    #[serde(default)]
    rows: Vec<ChannelRow>,
}

#[derive(serde::Deserialize)]
struct ChannelRow {
    uuid: String,
    direction: String,
    created_epoch: String,
    state: String,
    #[serde(default)]
    name: String,
}

/// `show channels as json`: `{"row_count":N,"rows":[...]}`, or `{"row_count":0}` when empty.
pub fn parse_channels(text: &str) -> Result<Vec<Channel>, String> {
    let table: ChannelRows = serde_json::from_str(text.trim()).map_err(|e| e.to_string())?;
    if u64::try_from(table.rows.len()).ok() != Some(table.row_count) {
        return Err(format!(
            "row_count {} but {} row(s)",
            table.row_count,
            table.rows.len()
        ));
    }
    table
        .rows
        .into_iter()
        .map(|r| {
            Ok(Channel {
                direction: r.direction.parse()?,
                created_epoch: r
                    .created_epoch
                    .parse()
                    .map_err(|_| format!("bad created_epoch {:?}", r.created_epoch))?,
                uuid: r.uuid,
                state: r.state,
                name: r.name,
            })
        })
        .collect()
}

/// What `hupall` reports: the cause FreeSWITCH actually used (unknown causes become
/// `MANAGER_REQUEST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hupall {
    pub cause: String,
}

pub fn parse_hupall(text: &str) -> Result<Hupall, String> {
    let t = text.trim_end();
    let cause = t
        .strip_prefix("+OK hangup all channels with cause ")
        .ok_or_else(|| format!("unexpected hupall reply {t:?}"))?;
    Ok(Hupall {
        cause: cause.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const STATUS_READY: &str =
        "UP 0 years, 0 days, 0 hours, 0 minutes, 39 seconds, 354 milliseconds, 698 microseconds\n\
FreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n\
21 session(s) since startup\n\
20 session(s) - peak 21, last 5min 21 \n\
1 session(s) per Sec out of max 100, peak 10, last 5min 10 \n\
1000 session(s) max\n\
min idle cpu 0.00/0.73\n\
Current Stack Size/Max 240K/8192K\n";

    #[test]
    fn status_from_a_loaded_server() {
        let s = Status::parse(STATUS_READY).unwrap();
        assert!(s.ready);
        assert_eq!(s.sessions_since_startup, 21);
        assert_eq!(s.sessions, 20);
        assert_eq!(s.sessions_peak, 21);
        assert_eq!(s.sessions_peak_5min, 21);
        assert_eq!(s.sessions_per_sec, 1);
        assert_eq!(s.max_sessions_per_sec, 100);
        assert_eq!(s.max_sessions, 1000);
        assert_eq!(s.min_idle_cpu, 0.0);
        assert_eq!(s.idle_cpu, 0.73);
        assert_eq!(s.uptime, Duration::from_micros(39_354_698));
    }

    #[test]
    fn status_not_ready_is_read_as_not_ready() {
        let text = STATUS_READY.replace(") is ready", ") is not ready");
        assert!(!Status::parse(&text).unwrap().ready);
        let odd = STATUS_READY.replace(") is ready", ") is sleepy");
        assert!(Status::parse(&odd).is_err());
    }

    #[test]
    fn truncated_status_is_an_error() {
        for cut in 0..STATUS_READY.len() - 40 {
            if let Some(prefix) = STATUS_READY.get(..cut) {
                assert!(Status::parse(prefix).is_err(), "cut {cut}");
            }
        }
    }

    #[test]
    fn counts_start_with_a_newline() {
        assert_eq!(parse_count("\n20 total.\n").unwrap(), 20);
        assert_eq!(parse_count("\n0 total.\n").unwrap(), 0);
        assert!(parse_count("\n-1 total.\n").is_err());
        assert!(parse_count("-ERR no\n").is_err());
    }

    #[test]
    fn booleans_are_exact() {
        assert!(parse_bool("true").unwrap());
        assert!(!parse_bool("false").unwrap());
        assert!(parse_bool("yes").is_err());
    }

    #[test]
    fn channels_json_with_and_without_rows() {
        assert!(parse_channels("{\"row_count\":0}").unwrap().is_empty());
        let one = r#"{"row_count":1,"rows":[{"uuid":"u1","direction":"outbound","created_epoch":"100","state":"CS_EXECUTE","name":"sofia/x"}]}"#;
        let ch = parse_channels(one).unwrap();
        assert_eq!(ch[0].direction, Direction::Outbound);
        assert_eq!(ch[0].created_epoch, 100);
        assert_eq!(
            ch[0].age(UNIX_EPOCH + Duration::from_secs(160)),
            Duration::from_secs(60)
        );
        let wrong = one.replace("outbound", "sideways");
        assert!(parse_channels(&wrong).is_err());
        let miscounted = one.replace("\"row_count\":1", "\"row_count\":2");
        assert!(parse_channels(&miscounted).is_err());
    }

    #[test]
    fn hupall_reports_the_cause_used() {
        assert_eq!(
            parse_hupall("+OK hangup all channels with cause MANAGER_REQUEST\n")
                .unwrap()
                .cause,
            "MANAGER_REQUEST"
        );
        assert!(parse_hupall("-ERR x").is_err());
    }
}
