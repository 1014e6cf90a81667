//! FreeSWITCH 1.10.12's exact words and bytes: frames, `status`, `show`, events.
//! Strings here were taken from captures of a real server (see the esl crate's fixtures) or,
//! where no capture shows them, from FreeSWITCH's source.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::model::{Leg, NodeState};

pub const VERSION_BANNER: &str =
    "FreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit)";
pub const VERSION_HEADER: &str = "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit";

pub const AUTH_REQUEST: &[u8] = b"Content-Type: auth/request\n\n";
pub const DISCONNECT_NOTICE: &[u8] = b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\nDisconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";
pub const RUDE_REJECTION: &[u8] =
    b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n";

pub fn command_reply(text: &str) -> Vec<u8> {
    format!("Content-Type: command/reply\nReply-Text: {text}\n\n").into_bytes()
}

pub fn api_response(body: &str) -> Vec<u8> {
    format!(
        "Content-Type: api/response\nContent-Length: {}\n\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn bgapi_reply(job_uuid: &str) -> Vec<u8> {
    format!(
        "Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job_uuid}\nJob-UUID: {job_uuid}\n\n"
    )
    .into_bytes()
}

/// "0 years, 0 days, 0 hours, 0 minutes, 10 seconds, 832 milliseconds, 707 microseconds"
pub fn uptime_words(d: Duration) -> String {
    let us = d.as_micros();
    let parts: [(u128, &str); 7] = [
        (us / (365 * 86_400_000_000), "year"),
        (us / 86_400_000_000 % 365, "day"),
        (us / 3_600_000_000 % 24, "hour"),
        (us / 60_000_000 % 60, "minute"),
        (us / 1_000_000 % 60, "second"),
        (us / 1_000 % 1_000, "millisecond"),
        (us % 1_000, "microsecond"),
    ];
    parts
        .iter()
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn status(st: &NodeState, now: Instant) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "UP {}", uptime_words(st.uptime(now)));
    let _ = writeln!(
        s,
        "{VERSION_BANNER} is {}",
        if st.ready() { "ready" } else { "not ready" }
    );
    let _ = writeln!(s, "{} session(s) since startup", st.sessions_since_startup);
    let _ = writeln!(
        s,
        "{} session(s) - peak {}, last 5min {} ",
        st.channel_count(),
        st.sessions_peak,
        st.sessions_peak_5min(now)
    );
    let _ = writeln!(
        s,
        "{} session(s) per Sec out of max {}, peak {}, last 5min {} ",
        st.sessions_per_sec(now),
        st.max_sessions_per_sec,
        st.sessions_per_sec_peak(),
        st.sessions_per_sec_5min(now)
    );
    let _ = writeln!(s, "{} session(s) max", st.max_sessions);
    let _ = writeln!(s, "min idle cpu {:.2}/{:.2}", st.min_idle_cpu, st.idle_cpu);
    s.push_str("Current Stack Size/Max 240K/8192K\n");
    s
}

pub fn count(n: u64) -> String {
    format!("\n{n} total.\n")
}

pub fn count_json(n: u64) -> String {
    format!("{{\"row_count\":{n},\"rows\":[]}}")
}

/// `show channels as json`; `{"row_count":0}` when there are none, as FreeSWITCH answers.
pub fn channels_json(st: &NodeState, legs: Vec<&Leg>) -> String {
    if legs.is_empty() {
        return "{\"row_count\":0}".into();
    }
    let mut out = format!("{{\"row_count\":{},\"rows\":[", legs.len());
    for (i, leg) in legs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let epoch = epoch_secs(leg.created);
        let (app, app_data, state) = if leg.bridged {
            if leg.call_uuid.is_some() {
                ("", "", "CS_EXCHANGE_MEDIA")
            } else {
                ("bridge", "sofia/lo/service@127.0.0.1:5090", "CS_EXECUTE")
            }
        } else {
            ("park", "", "CS_EXECUTE")
        };
        let fields: Vec<(&str, String)> = vec![
            ("uuid", leg.uuid.clone()),
            ("direction", leg.direction.as_str().into()),
            ("created", local_date(leg.created)),
            ("created_epoch", epoch.to_string()),
            ("name", leg.name.clone()),
            ("state", state.into()),
            ("cid_name", "sipp".into()),
            ("cid_num", "sipp".into()),
            ("ip_addr", "127.0.0.1".into()),
            ("dest", "service".into()),
            ("application", app.into()),
            ("application_data", app_data.into()),
            ("dialplan", "XML".into()),
            ("context", "public".into()),
            ("read_codec", "PCMU".into()),
            ("read_rate", "8000".into()),
            ("read_bit_rate", "64000".into()),
            ("write_codec", "PCMU".into()),
            ("write_rate", "8000".into()),
            ("write_bit_rate", "64000".into()),
            ("secure", "".into()),
            ("hostname", st.hostname.clone()),
            ("presence_id", "".into()),
            ("presence_data", "".into()),
            ("accountcode", "".into()),
            ("callstate", "ACTIVE".into()),
            ("callee_name", "".into()),
            ("callee_num", "".into()),
            ("callee_direction", "".into()),
            ("call_uuid", leg.call_uuid.clone().unwrap_or_default()),
            ("sent_callee_name", "".into()),
            ("sent_callee_num", "".into()),
            ("initial_cid_name", "sipp".into()),
            ("initial_cid_num", "sipp".into()),
            ("initial_ip_addr", "127.0.0.1".into()),
            ("initial_dest", "service".into()),
            ("initial_dialplan", "XML".into()),
            ("initial_context", "public".into()),
        ];
        out.push('{');
        let mut first = true;
        for (k, v) in &fields {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{}:{}", json_str(k), json_str(v));
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

pub fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn epoch_micros(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros()
}

/// (year, month 1-12, day 1-31) from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

struct Tm {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    min: u64,
    sec: u64,
    weekday: usize,
}

fn tm(t: SystemTime) -> Tm {
    let secs = epoch_secs(t);
    let days = (secs / 86_400) as i64;
    let (year, month, day) = civil(days);
    Tm {
        year,
        month,
        day,
        hour: secs / 3600 % 24,
        min: secs / 60 % 60,
        sec: secs % 60,
        // 1970-01-01 was a Thursday.
        weekday: ((days + 4) % 7) as usize,
    }
}

/// "2026-11-22 03:45:42" (the simulator's local time is UTC).
pub fn local_date(t: SystemTime) -> String {
    let x = tm(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        x.year, x.month, x.day, x.hour, x.min, x.sec
    )
}

/// "Sun, 22 Nov 2026 03:45:39 GMT"
pub fn gmt_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let x = tm(t);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS.get(x.weekday).unwrap_or(&"Sun"),
        x.day,
        MONTHS
            .get((x.month as usize).saturating_sub(1))
            .unwrap_or(&"Jan"),
        x.year,
        x.hour,
        x.min,
        x.sec
    )
}

/// FreeSWITCH's `switch_url_encode`: everything outside printable ASCII, and the characters in
/// `SWITCH_URL_UNSAFE`, as `%XX`. (So `,` and `~` stay, `:` and `+` and space do not.)
pub fn url_encode(s: &str) -> String {
    const UNSAFE: &[u8] = b"\r\n \"#%&+:;<=>?@[\\]^`{|}";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if !(b' '..=b'~').contains(&b) || UNSAFE.contains(&b) {
            let _ = write!(out, "%{b:02X}");
        } else {
            out.push(b as char);
        }
    }
    out
}

/// An event ready to be written in either format.
#[derive(Debug, Clone)]
pub struct SimEvent {
    pub name: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl SimEvent {
    /// `text/event-plain`: Content-Length first, then Content-Type, as FreeSWITCH orders them.
    pub fn plain(&self) -> Vec<u8> {
        let mut body = String::new();
        for (k, v) in &self.headers {
            let _ = writeln!(body, "{k}: {}", url_encode(v));
        }
        match &self.body {
            Some(b) => {
                let _ = write!(body, "Content-Length: {}\n\n{b}", b.len());
            }
            None => body.push('\n'),
        }
        format!(
            "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
            body.len()
        )
        .into_bytes()
    }

    pub fn json(&self) -> Vec<u8> {
        let mut body = String::from("{");
        for (i, (k, v)) in self.headers.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let _ = write!(body, "{}:{}", json_str(k), json_str(v));
        }
        if let Some(b) = &self.body {
            let _ = write!(
                body,
                ",\"Content-Length\":\"{}\",\"_body\":{}",
                b.len(),
                json_str(b)
            );
        }
        body.push('}');
        format!(
            "Content-Length: {}\nContent-Type: text/event-json\n\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// The headers every fired event starts with.
fn common_headers(
    st: &mut NodeState,
    now: Instant,
    name: &str,
    file: &str,
    function: &str,
    line: u32,
) -> Vec<(String, String)> {
    let wall = st.wall(now);
    let seq = st.next_seq();
    vec![
        ("Event-Name".into(), name.into()),
        ("Core-UUID".into(), st.core_uuid.clone()),
        ("FreeSWITCH-Hostname".into(), st.hostname.clone()),
        ("FreeSWITCH-Switchname".into(), st.hostname.clone()),
        ("FreeSWITCH-IPv4".into(), "127.0.0.1".into()),
        ("FreeSWITCH-IPv6".into(), "::1".into()),
        ("Event-Date-Local".into(), local_date(wall)),
        ("Event-Date-GMT".into(), gmt_date(wall)),
        (
            "Event-Date-Timestamp".into(),
            epoch_micros(wall).to_string(),
        ),
        ("Event-Calling-File".into(), file.into()),
        ("Event-Calling-Function".into(), function.into()),
        ("Event-Calling-Line-Number".into(), line.to_string()),
        ("Event-Sequence".into(), seq.to_string()),
    ]
}

pub fn heartbeat(st: &mut NodeState, now: Instant) -> SimEvent {
    let mut h = common_headers(st, now, "HEARTBEAT", "switch_core.c", "send_heartbeat", 95);
    let up = st.uptime(now);
    let info = if st.ready() {
        "System Ready"
    } else {
        "System Not Ready"
    };
    h.extend([
        ("Event-Info".into(), info.into()),
        ("Up-Time".into(), uptime_words(up)),
        ("FreeSWITCH-Version".into(), VERSION_HEADER.into()),
        ("Uptime-msec".into(), up.as_millis().to_string()),
        ("Session-Count".into(), st.channel_count().to_string()),
        ("Max-Sessions".into(), st.max_sessions.to_string()),
        (
            "Session-Per-Sec".into(),
            st.max_sessions_per_sec.to_string(),
        ),
        (
            "Session-Per-Sec-Last".into(),
            st.sessions_per_sec(now).to_string(),
        ),
        (
            "Session-Per-Sec-Max".into(),
            st.sessions_per_sec_peak().to_string(),
        ),
        (
            "Session-Per-Sec-FiveMin".into(),
            st.sessions_per_sec_5min(now).to_string(),
        ),
        (
            "Session-Since-Startup".into(),
            st.sessions_since_startup.to_string(),
        ),
        ("Session-Peak-Max".into(), st.sessions_peak.to_string()),
        (
            "Session-Peak-FiveMin".into(),
            st.sessions_peak_5min(now).to_string(),
        ),
        ("Idle-CPU".into(), format!("{:.6}", st.idle_cpu)),
    ]);
    SimEvent {
        name: "HEARTBEAT",
        headers: h,
        body: None,
    }
}

/// The `CHANNEL_HANGUP_COMPLETE` of a canary call ended by `uuid_kill`, with the receive
/// statistics FreeSWITCH writes into the leg's variables at hangup (`switch_core_media.c`,
/// `set_stats`: two decimals for the figures).
pub fn canary_hangup(st: &mut NodeState, now: Instant, end: &crate::model::CanaryEnd) -> SimEvent {
    let packets = end.up_for.as_millis() / 20;
    let mut h = common_headers(
        st,
        now,
        "CHANNEL_HANGUP_COMPLETE",
        "switch_core_state_machine.c",
        "switch_core_session_reporting_state",
        1011,
    );
    h.extend(
        [
            ("Unique-ID", end.uuid.clone()),
            (
                "Channel-Name",
                "sofia/pairscale/pairscale-canary@127.0.0.1:5060".into(),
            ),
            ("Call-Direction", "outbound".into()),
            ("Answer-State", "hangup".into()),
            ("Hangup-Cause", "NORMAL_CLEARING".into()),
            ("variable_hangup_cause", "NORMAL_CLEARING".into()),
            (
                "variable_rtp_audio_in_media_packet_count",
                packets.to_string(),
            ),
            ("variable_rtp_audio_in_skip_packet_count", "0".into()),
            ("variable_rtp_audio_in_jitter_max_variance", "0.00".into()),
            ("variable_rtp_audio_in_jitter_loss_rate", "0.00".into()),
            ("variable_rtp_audio_in_mos", format!("{:.2}", end.mos)),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    SimEvent {
        name: "CHANNEL_HANGUP_COMPLETE",
        headers: h,
        body: None,
    }
}

pub fn background_job(
    st: &mut NodeState,
    now: Instant,
    job_uuid: &str,
    command: &str,
    arg: Option<&str>,
    result: String,
) -> SimEvent {
    let mut h = vec![
        ("Job-UUID".to_string(), job_uuid.to_string()),
        ("Job-Command".to_string(), command.to_string()),
    ];
    if let Some(a) = arg {
        h.push(("Job-Command-Arg".into(), a.into()));
    }
    h.extend(common_headers(
        st,
        now,
        "BACKGROUND_JOB",
        "mod_event_socket.c",
        "api_exec",
        1572,
    ));
    SimEvent {
        name: "BACKGROUND_JOB",
        headers: h,
        body: Some(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_matches_the_captured_heartbeat() {
        assert_eq!(url_encode("fd00::2"), "fd00%3A%3A2");
        assert_eq!(
            url_encode("Sun, 22 Nov 2026 03:45:39 GMT"),
            "Sun,%2022%20Nov%202026%2003%3A45%3A39%20GMT"
        );
        assert_eq!(
            url_encode(VERSION_HEADER),
            "1.10.12-release%2Bgit~20240802T210227Z~a88d069d6f~64bit"
        );
    }

    #[test]
    fn dates_format_like_freeswitch() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_319_139);
        assert_eq!(local_date(t), "2026-11-22 03:45:39");
        assert_eq!(gmt_date(t), "Sun, 22 Nov 2026 03:45:39 GMT");
    }

    #[test]
    fn uptime_words_match_the_capture_and_use_the_singular_for_one() {
        assert_eq!(
            uptime_words(Duration::from_micros(19_567_549)),
            "0 years, 0 days, 0 hours, 0 minutes, 19 seconds, 567 milliseconds, 549 microseconds"
        );
        assert_eq!(
            uptime_words(Duration::from_micros(3_661_001_001)),
            "0 years, 0 days, 1 hour, 1 minute, 1 second, 1 millisecond, 1 microsecond"
        );
    }
}
