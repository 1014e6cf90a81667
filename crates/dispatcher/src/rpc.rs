//! Kamailio's JSON-RPC (jsonrpcs over xhttp): the few dispatcher methods this crate needs.
//!
//! HTTP rather than `kamcmd`: `kamcmd` exits 0 even when the command failed, whereas a JSON-RPC
//! response says so in its `error` member.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{debug, instrument};

use crate::destination::DestinationState;
use crate::error::{DispatcherError, Result};

const SERVICE: &str = "kamailio";

/// How long [`KamailioRpc::reload`] asks again while Kamailio refuses a reload for coming
/// within its `reload_delta` of the last one: twice the default delta of 5 s, and then some.
pub const DEFAULT_RELOAD_WAIT: Duration = Duration::from_secs(12);

/// Between two reloads asked while Kamailio refuses them.
const RELOAD_REFUSED_PAUSE: Duration = Duration::from_millis(500);

/// A JSON-RPC client for one Kamailio instance.
#[derive(Debug)]
pub struct KamailioRpc {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
    reload_wait: Duration,
    next_id: AtomicU64,
}

/// The state letter `dispatcher.set_state` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetState {
    /// `a`: active.
    Active,
    /// `d`: disabled. Not `i` (inactive): probing would bring an inactive destination back at
    /// its next OPTIONS reply.
    Disabled,
}

impl SetState {
    fn letter(self) -> &'static str {
        match self {
            Self::Active => "a",
            Self::Disabled => "d",
        }
    }
}

/// An HTTP client whose every request, connect included, is bounded by `timeout`. One serves
/// every Kamailio of a dispatcher (it pools connections per host).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| DispatcherError::InvalidInput {
            field: "rpc_timeout",
            value: format!("{} ms", timeout.as_millis()),
            reason: if e.is_builder() {
                "cannot build an HTTP client with it"
            } else {
                "cannot build an HTTP client"
            },
        })
}

impl KamailioRpc {
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<Self> {
        Self::with_client(http_client(timeout)?, url, timeout)
    }

    /// A client for the Kamailio at `url` over an existing HTTP client (built with
    /// `timeout`).
    pub(crate) fn with_client(
        http: reqwest::Client,
        url: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self> {
        let url = url.into();
        match reqwest::Url::parse(&url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => {
                return Err(DispatcherError::InvalidInput {
                    field: "rpc_url",
                    value: url,
                    reason: "must be an http:// URL",
                })
            }
        }
        Ok(Self {
            http,
            url,
            timeout,
            reload_wait: DEFAULT_RELOAD_WAIT,
            next_id: AtomicU64::new(1),
        })
    }

    /// How long [`Self::reload`] waits out refusals ([`DEFAULT_RELOAD_WAIT`] unless set).
    pub fn with_reload_wait(mut self, wait: Duration) -> Self {
        self.reload_wait = wait;
        self
    }

    /// The endpoint, as given: how errors name this Kamailio.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One call; the `result` member, or the `error` member as [`DispatcherError::Rpc`].
    #[instrument(level = "debug", skip(self, params))]
    pub async fn call(&self, method: &'static str, params: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        let response = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.transport_error(e))?;
        let parsed: Value =
            serde_json::from_str(&text).map_err(|_| DispatcherError::BadResponse {
                method,
                detail: format!("HTTP {status}, body is not JSON: {}", truncate(&text)),
            })?;
        if let Some(error) = parsed.get("error") {
            return Err(DispatcherError::Rpc {
                method,
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            });
        }
        parsed
            .get("result")
            .cloned()
            .ok_or_else(|| DispatcherError::BadResponse {
                method,
                detail: format!(
                    "HTTP {status}, neither result nor error: {}",
                    truncate(&text)
                ),
            })
    }

    /// `dispatcher.reload`: rebuild the in-memory lists from the table.
    ///
    /// Kamailio takes one reload per `reload_delta` seconds (5 by default) and answers the rest
    /// "Ongoing reload" without loading anything. That refusal is asked again every 500 ms for
    /// up to the reload wait, then is [`DispatcherError::ReloadRefused`] (retryable). Kamailio
    /// 5.6 needs that limit: two reloads running at once in two of its processes corrupt its
    /// shared memory.
    pub async fn reload(&self) -> Result<()> {
        let started = tokio::time::Instant::now();
        loop {
            match self.call("dispatcher.reload", json!([])).await {
                Err(DispatcherError::Rpc { message, .. }) if is_reload_refusal(&message) => {
                    let waited = started.elapsed();
                    if waited + RELOAD_REFUSED_PAUSE > self.reload_wait {
                        return Err(DispatcherError::ReloadRefused { waited, message });
                    }
                    debug!(%message, waited_ms = waited.as_millis() as u64, "reload refused; asking again");
                    tokio::time::sleep(RELOAD_REFUSED_PAUSE).await;
                }
                other => return other.map(drop),
            }
        }
    }

    /// `dispatcher.set_state`. The set id goes as a JSON integer (a string is refused) and the
    /// URI must be the stored string exactly.
    pub async fn set_state(&self, state: SetState, set_id: i32, uri: &str) -> Result<()> {
        self.call("dispatcher.set_state", json!([state.letter(), set_id, uri]))
            .await
            .map(drop)
    }

    /// `dispatcher.list`, flattened. An empty table is an empty list, not an error.
    pub async fn list(&self) -> Result<Vec<DestinationState>> {
        const METHOD: &str = "dispatcher.list";
        let result = match self.call(METHOD, json!([])).await {
            Ok(v) => v,
            // Kamailio answers an empty list with this error and a generic 500; the message is
            // the only thing that tells it apart from a real failure.
            Err(DispatcherError::Rpc { message, .. }) if message == "No Destination Sets" => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(e),
        };
        parse_list(result).map_err(|detail| DispatcherError::BadResponse {
            method: METHOD,
            detail,
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> DispatcherError {
        if e.is_timeout() {
            DispatcherError::timeout(SERVICE, self.timeout)
        } else {
            DispatcherError::Unreachable {
                service: SERVICE,
                detail: e.to_string(),
            }
        }
    }
}

/// Kamailio's answer to a reload within `reload_delta` of the last: "Ongoing reload" in the
/// dispatcher module (5.x), "ongoing reload" in others of the same pattern.
fn is_reload_refusal(message: &str) -> bool {
    message.eq_ignore_ascii_case("ongoing reload")
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct ListResult {
    #[serde(default)]
    records: Vec<Record>,
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct Record {
    set: Set,
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct Set {
    id: i32,
    #[serde(default)]
    targets: Vec<Target>,
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct Target {
    dest: Dest,
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct Dest {
    uri: String,
    flags: String,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    attrs: Option<Attrs>,
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct Attrs {
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    duid: Option<String>,
}

fn parse_list(result: Value) -> std::result::Result<Vec<DestinationState>, String> {
    let list: ListResult = serde_json::from_value(result).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for record in list.records {
        for target in record.set.targets {
            let d = target.dest;
            let (attrs, duid) = match d.attrs {
                Some(a) => (a.body.unwrap_or_default(), a.duid),
                None => (String::new(), None),
            };
            let flags = d.flags;
            let state = DestinationState::parse(
                record.set.id,
                d.uri,
                flags.clone(),
                d.priority,
                duid,
                attrs,
            )
            .ok_or_else(|| format!("unknown destination flags '{flags}'"))?;
            out.push(state);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::DestinationStatus;

    #[test]
    fn parses_the_list_kamailio_5_6_returns() {
        // Captured from Kamailio 5.6.3.
        let result = json!({"NRSETS":2,"RECORDS":[
            {"SET":{"ID":7,"TARGETS":[
                {"DEST":{"URI":"sip:127.0.0.1:5999","FLAGS":"DX","PRIORITY":0,"ATTRS":{
                    "BODY":"duid=p1;weight=5","DUID":"p1","MAXLOAD":0,"WEIGHT":5,"RWEIGHT":0,
                    "SOCKET":null,"SOCKNAME":null,"OBPROXY":null}}},
                {"DEST":{"URI":"sip:127.0.0.1:5998","FLAGS":"IP","PRIORITY":3,"ATTRS":{
                    "BODY":"","DUID":"","MAXLOAD":0,"WEIGHT":0,"RWEIGHT":0,
                    "SOCKET":null,"SOCKNAME":null,"OBPROXY":null}}}]}},
            {"SET":{"ID":1,"TARGETS":[
                {"DEST":{"URI":"sip:[::1]:5060","FLAGS":"AX","PRIORITY":0}}]}}]});
        let list = parse_list(result).expect("parses");
        assert_eq!(list.len(), 3);
        assert_eq!(
            (
                list[0].set_id,
                list[0].uri.as_str(),
                list[0].status,
                list[0].duid.as_deref()
            ),
            (
                7,
                "sip:127.0.0.1:5999",
                DestinationStatus::Disabled,
                Some("p1")
            )
        );
        assert_eq!(list[0].attrs, "duid=p1;weight=5");
        assert_eq!(
            (list[1].status, list[1].probing, list[1].duid.as_deref()),
            (DestinationStatus::Inactive, true, None)
        );
        assert_eq!(list[1].priority, 3);
        assert_eq!(
            (list[2].set_id, list[2].status),
            (1, DestinationStatus::Active)
        );
    }

    #[test]
    fn an_rpc_url_that_is_not_http_is_invalid_input() {
        for url in ["", "127.0.0.1:5080/RPC", "unix:/run/kamailio.sock"] {
            match KamailioRpc::new(url, Duration::from_secs(1)) {
                Err(DispatcherError::InvalidInput { field, value, .. }) => {
                    assert_eq!((field, value.as_str()), ("rpc_url", url))
                }
                other => panic!("expected InvalidInput for {url:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_a_list_with_an_unknown_state() {
        let result = json!({"RECORDS":[{"SET":{"ID":1,"TARGETS":[
            {"DEST":{"URI":"sip:1.2.3.4:5","FLAGS":"QX"}}]}}]});
        assert!(parse_list(result).expect_err("unknown flag").contains("QX"));
    }
}
