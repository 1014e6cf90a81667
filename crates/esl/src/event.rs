//! Events: the body of a `text/event-plain` frame (a second header block, values URL-encoded,
//! optionally its own `Content-Length` and body) or of a `text/event-json` frame.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::frame::{split_header, Frame, Headers};

/// Event encodings the client can subscribe with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    Plain,
    Json,
}

impl EventFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            EventFormat::Plain => "plain",
            EventFormat::Json => "json",
        }
    }
}

/// One FreeSWITCH event with its headers decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub headers: Headers,
    /// The event's own body (for `BACKGROUND_JOB`, the command's output).
    pub body: Option<String>,
}

impl Event {
    pub fn name(&self) -> Option<&str> {
        self.headers.get("Event-Name")
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Decodes an event frame; `Ok(None)` if the frame is not an event.
    pub fn from_frame(frame: &Frame) -> Result<Option<Event>> {
        let body = frame.body.as_deref().unwrap_or_default();
        match frame.content_type() {
            Some("text/event-plain") => Event::from_plain(body).map(Some),
            Some("text/event-json") => Event::from_json(body).map(Some),
            _ => Ok(None),
        }
    }

    /// Parses a `text/event-plain` body.
    pub fn from_plain(bytes: &[u8]) -> Result<Event> {
        let mut headers = Headers::new();
        let mut pos = 0usize;
        let mut body_start = None;
        while pos < bytes.len() {
            let rest = bytes.get(pos..).unwrap_or_default();
            let nl = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let mut line = rest.get(..nl).unwrap_or_default();
            if let Some(s) = line.strip_suffix(b"\r") {
                line = s;
            }
            pos = pos.saturating_add(nl).saturating_add(1);
            if line.is_empty() {
                body_start = Some(pos.min(bytes.len()));
                break;
            }
            let (name, value) = split_header(line)?;
            headers.push(String::from_utf8_lossy(name), url_decode(value));
        }
        let body = match (headers.get("Content-Length"), body_start) {
            (Some(len), Some(start)) => {
                let len = crate::frame::parse_content_length(
                    len.as_bytes(),
                    &crate::frame::Limits::default(),
                )?;
                let end = start.saturating_add(len);
                let Some(b) = bytes.get(start..end) else {
                    return Err(Error::InvalidContentLength {
                        value: format!("{len} (only {} byte(s) follow)", bytes.len() - start),
                    });
                };
                Some(String::from_utf8_lossy(b).into_owned())
            }
            _ => None,
        };
        Ok(Event { headers, body })
    }

    /// Parses a `text/event-json` body: one object of string values, the body under `_body`.
    pub fn from_json(bytes: &[u8]) -> Result<Event> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::UnexpectedReply {
                command: "event json".into(),
                reason: e.to_string(),
            })?;
        let serde_json::Value::Object(map) = value else {
            return Err(Error::UnexpectedReply {
                command: "event json".into(),
                reason: "event is not a JSON object".into(),
            });
        };
        let mut headers = Headers::new();
        let mut body = None;
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            if k == "_body" {
                body = Some(text);
            } else {
                headers.push(k, text);
            }
        }
        Ok(Event { headers, body })
    }
}

fn url_decode(value: &[u8]) -> String {
    match urlencoding::decode_binary(value) {
        Cow::Borrowed(b) => String::from_utf8_lossy(b).into_owned(),
        Cow::Owned(b) => String::from_utf8_lossy(&b).into_owned(),
    }
}

/// The numbers a `HEARTBEAT` event carries about load.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    pub session_count: u64,
    pub max_sessions: u64,
    pub session_since_startup: u64,
    pub session_peak_max: Option<u64>,
    pub idle_cpu: f64,
    pub uptime_msec: Option<u64>,
    pub core_uuid: Option<String>,
}

impl Heartbeat {
    pub fn from_event(event: &Event) -> Result<Heartbeat> {
        let bad = |reason: String| Error::UnexpectedReply {
            command: "HEARTBEAT event".into(),
            reason,
        };
        if event.name() != Some("HEARTBEAT") {
            return Err(bad(format!("event is {:?}, not HEARTBEAT", event.name())));
        }
        let field = |name: &str| -> Result<&str> {
            event
                .get(name)
                .map(str::trim)
                .ok_or_else(|| bad(format!("missing {name}")))
        };
        let int = |name: &str| -> Result<u64> {
            field(name)?
                .parse()
                .map_err(|_| bad(format!("{name} is not a whole number")))
        };
        let idle_cpu: f64 = field("Idle-CPU")?
            .parse()
            .map_err(|_| bad("Idle-CPU is not a number".into()))?;
        if !idle_cpu.is_finite() {
            return Err(bad("Idle-CPU is not finite".into()));
        }
        Ok(Heartbeat {
            session_count: int("Session-Count")?,
            max_sessions: int("Max-Sessions")?,
            session_since_startup: int("Session-Since-Startup")?,
            session_peak_max: int("Session-Peak-Max").ok(),
            idle_cpu,
            uptime_msec: int("Uptime-msec").ok(),
            core_uuid: event.get("Core-UUID").map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plain_values_are_url_decoded() {
        let ev =
            Event::from_plain(b"Event-Name: HEARTBEAT\nFreeSWITCH-IPv6: fd00%3A%3A2\n\n").unwrap();
        assert_eq!(ev.name(), Some("HEARTBEAT"));
        assert_eq!(ev.get("FreeSWITCH-IPv6"), Some("fd00::2"));
        assert_eq!(ev.body, None);
    }

    #[test]
    fn a_plain_event_body_follows_its_own_content_length() {
        let raw = b"Job-UUID: j1\nEvent-Name: BACKGROUND_JOB\nContent-Length: 4\n\n+OK\n";
        let ev = Event::from_plain(raw).unwrap();
        assert_eq!(ev.get("Job-UUID"), Some("j1"));
        assert_eq!(ev.body.as_deref(), Some("+OK\n"));
    }

    #[test]
    fn a_short_event_body_is_an_error_not_a_panic() {
        let raw = b"Event-Name: X\nContent-Length: 40\n\nshort";
        assert!(Event::from_plain(raw).is_err());
    }

    #[test]
    fn json_events_carry_the_body_under_underscore_body() {
        let ev = Event::from_json(br#"{"Event-Name":"BACKGROUND_JOB","Job-UUID":"j","_body":"x"}"#)
            .unwrap();
        assert_eq!(ev.get("Job-UUID"), Some("j"));
        assert_eq!(ev.body.as_deref(), Some("x"));
        assert!(Event::from_json(b"[1]").is_err());
    }

    #[test]
    fn heartbeat_fields_are_typed_and_required() {
        let ev = Event::from_plain(
            b"Event-Name: HEARTBEAT\nSession-Count: 3\nMax-Sessions: 1000\nSession-Since-Startup: 9\nIdle-CPU: 50.000000\n\n",
        )
        .unwrap();
        let hb = Heartbeat::from_event(&ev).unwrap();
        assert_eq!(hb.session_count, 3);
        assert_eq!(hb.max_sessions, 1000);
        assert_eq!(hb.session_since_startup, 9);
        assert_eq!(hb.idle_cpu, 50.0);
        let missing = Event::from_plain(b"Event-Name: HEARTBEAT\nSession-Count: 3\n\n").unwrap();
        assert!(Heartbeat::from_event(&missing).is_err());
    }
}
