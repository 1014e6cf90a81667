//! Scale requests: what an operator or an alarm asks for, validated at the edge.
//!
//! Two shapes are accepted:
//! - manual: `{"fleet", "target_pair_count" | "delta", "reason"?, "requested_by"?,
//!   "dry_run"?, "reconcile"?, "ignore_cooldown"?}`; unknown fields are refused so that a
//!   typo (`"target_pairs"`) cannot turn into a silent no-op;
//! - an EventBridge "CloudWatch Alarm State Change" event, either wrapped by the rule's
//!   input transformer as `{"fleet": ..., "alarm": <event>}` or carrying `"fleet"` beside the
//!   event's own fields.

use crate::error::{Error, Result};
use crate::fleet::MAX_FLEET_PAIRS;
use crate::ids::FleetName;
use serde::Serialize;
use serde_json::{Map, Value};

pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// What the request wants, before any policy is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Intent {
    /// Reach exactly this many pairs.
    Target { pair_count: u32 },
    /// Add (positive) or remove (negative) this many pairs.
    Delta { delta: i32 },
    /// A CloudWatch alarm changed state; its step comes from the fleet configuration.
    Alarm { alarm_name: String, state: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ScaleRequest {
    pub fleet: FleetName,
    pub intent: Intent,
    pub reason: String,
    pub requested_by: String,
    pub dry_run: bool,
    /// Go ahead even though validation found drift (the run will repair what it can).
    pub reconcile: bool,
    /// Manual requests may skip the cooldown; alarms never do.
    pub ignore_cooldown: bool,
}

const MANUAL_FIELDS: &[&str] = &[
    "fleet",
    "target_pair_count",
    "delta",
    "reason",
    "requested_by",
    "dry_run",
    "reconcile",
    "ignore_cooldown",
];

/// The largest start input taken, as JSON. Step Functions carries the request through every
/// state of a run, and a run whose data passes 256 KB is ended with `States.DataLimitExceeded`,
/// which no Catch sees (no undo, no release): a larger request is refused by name first.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// `Pairscale.InvalidRequest` for a request over [`MAX_REQUEST_BYTES`].
pub fn check_request_size(v: &Value) -> Result<()> {
    let size = v.to_string().len();
    if size > MAX_REQUEST_BYTES {
        return Err(Error::invalid(
            "request",
            format!("{size} bytes"),
            format!(
                "a scaling request is at most {MAX_REQUEST_BYTES} bytes of JSON (the run carries it through every state, and Step Functions ends a run whose data passes 256 KB)"
            ),
        ));
    }
    Ok(())
}

impl ScaleRequest {
    /// Parse a request from the JSON a state machine execution was started with.
    pub fn from_json(v: &Value) -> Result<ScaleRequest> {
        check_request_size(v)?;
        let obj = v
            .as_object()
            .ok_or_else(|| Error::invalid("request", v, "must be a JSON object"))?;
        if let Some(alarm) = obj.get("alarm") {
            let fleet = fleet_field(obj)?;
            return Self::from_alarm(fleet, alarm);
        }
        if obj.get("detail-type").is_some() || obj.get("source").is_some() {
            let fleet = fleet_field(obj)?;
            return Self::from_alarm(fleet, v);
        }
        Self::from_manual(obj)
    }

    fn from_manual(obj: &Map<String, Value>) -> Result<ScaleRequest> {
        if let Some(unknown) = obj.keys().find(|k| !MANUAL_FIELDS.contains(&k.as_str())) {
            return Err(Error::invalid(
                unknown.as_str(),
                &obj[unknown],
                format!("unknown field; known fields: {}", MANUAL_FIELDS.join(", ")),
            ));
        }
        let fleet = fleet_field(obj)?;
        let intent = match (obj.get("target_pair_count"), obj.get("delta")) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "target_pair_count",
                    "and delta",
                    "give exactly one of target_pair_count and delta",
                ))
            }
            (None, None) => {
                return Err(Error::invalid(
                    "target_pair_count",
                    "missing",
                    "give exactly one of target_pair_count and delta",
                ))
            }
            (Some(t), None) => {
                let n = t
                    .as_i64()
                    .filter(|_| t.is_i64() || t.is_u64())
                    .ok_or_else(|| {
                        Error::invalid("target_pair_count", t, "must be a whole number")
                    })?;
                if !(0..=i64::from(MAX_FLEET_PAIRS)).contains(&n) {
                    return Err(Error::invalid(
                        "target_pair_count",
                        n,
                        format!("must be between 0 and {MAX_FLEET_PAIRS}"),
                    ));
                }
                Intent::Target {
                    pair_count: n as u32,
                }
            }
            (None, Some(d)) => {
                let n = d
                    .as_i64()
                    .ok_or_else(|| Error::invalid("delta", d, "must be a whole number"))?;
                if n == 0 || n.unsigned_abs() > u64::from(MAX_FLEET_PAIRS) {
                    return Err(Error::invalid(
                        "delta",
                        n,
                        format!(
                            "must be non-zero and between -{MAX_FLEET_PAIRS} and {MAX_FLEET_PAIRS}"
                        ),
                    ));
                }
                Intent::Delta { delta: n as i32 }
            }
        };
        Ok(ScaleRequest {
            fleet,
            intent,
            reason: text_field(obj, "reason", 500)?.unwrap_or_else(|| "manual".into()),
            requested_by: text_field(obj, "requested_by", 200)?.unwrap_or_else(|| "unknown".into()),
            dry_run: bool_field(obj, "dry_run")?,
            reconcile: bool_field(obj, "reconcile")?,
            ignore_cooldown: bool_field(obj, "ignore_cooldown")?,
        })
    }

    fn from_alarm(fleet: FleetName, event: &Value) -> Result<ScaleRequest> {
        let detail_type = event.get("detail-type").and_then(Value::as_str);
        if detail_type != Some(ALARM_DETAIL_TYPE) {
            return Err(Error::invalid(
                "detail-type",
                event.get("detail-type").unwrap_or(&Value::Null),
                format!("only '{ALARM_DETAIL_TYPE}' events start a scaling run"),
            ));
        }
        let detail = event
            .get("detail")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::invalid("detail", "missing", "the alarm event has no detail"))?;
        let alarm_name = detail
            .get("alarmName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| {
                Error::invalid(
                    "detail.alarmName",
                    detail.get("alarmName").unwrap_or(&Value::Null),
                    "must be the alarm's name",
                )
            })?
            .to_string();
        let state = detail
            .get("state")
            .and_then(|s| s.get("value"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::invalid(
                    "detail.state.value",
                    "missing",
                    "the alarm event has no state",
                )
            })?;
        if !["ALARM", "OK", "INSUFFICIENT_DATA"].contains(&state) {
            return Err(Error::invalid(
                "detail.state.value",
                state,
                "must be ALARM, OK or INSUFFICIENT_DATA",
            ));
        }
        let time = event
            .get("time")
            .and_then(Value::as_str)
            .unwrap_or("unknown time");
        Ok(ScaleRequest {
            fleet,
            reason: format!("alarm {alarm_name} is {state} at {time}"),
            requested_by: "cloudwatch".into(),
            intent: Intent::Alarm {
                alarm_name,
                state: state.to_string(),
            },
            dry_run: false,
            reconcile: false,
            ignore_cooldown: false,
        })
    }
}

fn fleet_field(obj: &Map<String, Value>) -> Result<FleetName> {
    match obj.get("fleet") {
        None => Err(Error::invalid(
            "fleet",
            "missing",
            "every request names its fleet",
        )),
        Some(Value::String(s)) => FleetName::parse(s),
        Some(other) => Err(Error::invalid("fleet", other, "must be a string")),
    }
}

fn text_field(obj: &Map<String, Value>, name: &str, max: usize) -> Result<Option<String>> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max && !s.chars().any(char::is_control) => {
            Ok(Some(s.clone()))
        }
        Some(Value::String(s)) => Err(Error::invalid(
            name,
            s,
            format!("must be at most {max} characters without control characters"),
        )),
        Some(other) => Err(Error::invalid(name, other, "must be a string")),
    }
}

fn bool_field(obj: &Map<String, Value>, name: &str) -> Result<bool> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Error::invalid(name, other, "must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn alarm_event(name: &str, state: &str) -> Value {
        json!({
            "version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
            "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "account": "123456789012", "time": "2026-11-01T03:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:calls-high"],
            "detail": {"alarmName": name, "state": {"value": state, "reason": "Threshold Crossed"},
                       "previousState": {"value": "OK"}}
        })
    }

    #[test]
    fn manual_target_and_delta_parse() {
        let r = ScaleRequest::from_json(&json!({"fleet": "voice", "target_pair_count": 6}))
            .expect("valid");
        assert_eq!(r.intent, Intent::Target { pair_count: 6 });
        assert!(!r.dry_run);
        let r = ScaleRequest::from_json(
            &json!({"fleet": "voice", "delta": -1, "dry_run": true, "reason": "night", "requested_by": "alice"}),
        )
        .expect("valid");
        assert_eq!(r.intent, Intent::Delta { delta: -1 });
        assert!(r.dry_run);
        assert_eq!(
            (r.reason.as_str(), r.requested_by.as_str()),
            ("night", "alice")
        );
    }

    #[test]
    fn alarm_events_parse_wrapped_or_as_they_are() {
        let wrapped = json!({"fleet": "voice", "alarm": alarm_event("calls-high", "ALARM")});
        let r = ScaleRequest::from_json(&wrapped).expect("valid");
        assert_eq!(
            r.intent,
            Intent::Alarm {
                alarm_name: "calls-high".into(),
                state: "ALARM".into()
            }
        );
        let mut bare = alarm_event("calls-low", "OK");
        bare["fleet"] = json!("voice");
        let r = ScaleRequest::from_json(&bare).expect("valid");
        assert_eq!(r.requested_by, "cloudwatch");
        assert!(matches!(r.intent, Intent::Alarm { ref state, .. } if state == "OK"));
    }

    #[test]
    fn a_request_over_the_size_limit_is_refused_with_its_size() {
        let big = json!({"fleet": "voice", "delta": 1, "reason": "x".repeat(MAX_REQUEST_BYTES)});
        let e = ScaleRequest::from_json(&big).expect_err("too big");
        assert!(
            e.to_string().contains("request") && e.to_string().contains("bytes"),
            "{e}"
        );
        let fits = json!({"fleet": "voice", "delta": 1, "reason": "x".repeat(150)});
        ScaleRequest::from_json(&fits).expect("a normal request");
    }

    #[test]
    fn bad_requests_name_the_field_and_value() {
        let cases = [
            (json!({"target_pair_count": 3}), "fleet"),
            (json!({"fleet": "voice"}), "target_pair_count"),
            (
                json!({"fleet": "voice", "target_pair_count": -2}),
                "target_pair_count",
            ),
            (
                json!({"fleet": "voice", "target_pair_count": 5000}),
                "target_pair_count",
            ),
            (
                json!({"fleet": "voice", "target_pair_count": 2.5}),
                "target_pair_count",
            ),
            (
                json!({"fleet": "voice", "target_pair_count": "6"}),
                "target_pair_count",
            ),
            (json!({"fleet": "voice", "delta": 0}), "delta"),
            (
                json!({"fleet": "voice", "delta": 1, "target_pair_count": 3}),
                "target_pair_count",
            ),
            (json!({"fleet": "Voice!", "delta": 1}), "fleet"),
            (json!({"fleet": 7, "delta": 1}), "fleet"),
            (
                json!({"fleet": "voice", "delta": 1, "dry_run": "yes"}),
                "dry_run",
            ),
            (
                json!({"fleet": "voice", "delta": 1, "target_pairs": 3}),
                "target_pairs",
            ),
            (
                json!({"fleet": "voice", "alarm": {"detail-type": "EC2 Instance State-change Notification"}}),
                "detail-type",
            ),
            (
                json!({"fleet": "voice", "alarm": {"detail-type": ALARM_DETAIL_TYPE, "detail": {"state": {"value": "ALARM"}}}}),
                "detail.alarmName",
            ),
            (
                json!({"alarm": alarm_event("calls-high", "ALARM")}),
                "fleet",
            ),
            (json!([1, 2]), "request"),
        ];
        for (input, field) in cases {
            let e = ScaleRequest::from_json(&input).expect_err(&input.to_string());
            match &e {
                Error::InvalidRequest { field: f, .. } => assert_eq!(f, field, "{input}: {e}"),
                other => panic!("{input}: unexpected {other}"),
            }
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            "[a-z_-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("fleet".to_string()),
                        Just("target_pair_count".to_string()),
                        Just("delta".to_string()),
                        Just("dry_run".to_string()),
                        Just("alarm".to_string()),
                        Just("detail".to_string()),
                        Just("detail-type".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever arrives, the parser answers with a request or an InvalidRequest; it never
        /// panics and never invents a count outside the fleet limit.
        #[test]
        fn the_parser_never_panics_and_only_accepts_sane_counts(v in arb_json()) {
            match ScaleRequest::from_json(&v) {
                Ok(r) => match r.intent {
                    Intent::Target { pair_count } => prop_assert!(pair_count <= MAX_FLEET_PAIRS),
                    Intent::Delta { delta } => prop_assert!(delta != 0 && delta.unsigned_abs() <= MAX_FLEET_PAIRS),
                    Intent::Alarm { .. } => {}
                },
                Err(e) => prop_assert_eq!(e.name(), crate::ErrorName::InvalidRequest),
            }
        }

        #[test]
        fn any_valid_target_round_trips(n in 0u32..=1000, fleet in "[a-z][a-z0-9-]{0,20}[a-z0-9]") {
            let r = ScaleRequest::from_json(&json!({"fleet": fleet, "target_pair_count": n})).expect("valid");
            prop_assert_eq!(r.intent, Intent::Target { pair_count: n });
        }
    }
}
