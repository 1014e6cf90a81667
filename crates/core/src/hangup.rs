//! The hangup cause `hupall` uses under the `force` policy.
//!
//! FreeSWITCH looks a cause up by name in its cause chart (`switch_channel_str2cause`,
//! `src/switch_channel.c`) and, for a name it does not know, silently uses
//! `NORMAL_CLEARING`: a typo in the configuration would cut calls that then look normal in
//! the call records. So only the names in that chart are accepted, in the spelling FreeSWITCH
//! prints them, and every layer (fleet config, the drain handler, the Event Socket client)
//! parses through this one type.

use crate::error::{Error, Result};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// The cause names of FreeSWITCH 1.10's cause chart, in its order, less `NONE` (which
/// `hupall` replaces with `MANAGER_REQUEST`).
pub const KNOWN_CAUSES: [&str; 81] = [
    "UNALLOCATED_NUMBER",
    "NO_ROUTE_TRANSIT_NET",
    "NO_ROUTE_DESTINATION",
    "CHANNEL_UNACCEPTABLE",
    "CALL_AWARDED_DELIVERED",
    "NORMAL_CLEARING",
    "USER_BUSY",
    "NO_USER_RESPONSE",
    "NO_ANSWER",
    "SUBSCRIBER_ABSENT",
    "CALL_REJECTED",
    "NUMBER_CHANGED",
    "REDIRECTION_TO_NEW_DESTINATION",
    "EXCHANGE_ROUTING_ERROR",
    "DESTINATION_OUT_OF_ORDER",
    "INVALID_NUMBER_FORMAT",
    "FACILITY_REJECTED",
    "RESPONSE_TO_STATUS_ENQUIRY",
    "NORMAL_UNSPECIFIED",
    "NORMAL_CIRCUIT_CONGESTION",
    "NETWORK_OUT_OF_ORDER",
    "NORMAL_TEMPORARY_FAILURE",
    "SWITCH_CONGESTION",
    "ACCESS_INFO_DISCARDED",
    "REQUESTED_CHAN_UNAVAIL",
    "PRE_EMPTED",
    "FACILITY_NOT_SUBSCRIBED",
    "OUTGOING_CALL_BARRED",
    "INCOMING_CALL_BARRED",
    "BEARERCAPABILITY_NOTAUTH",
    "BEARERCAPABILITY_NOTAVAIL",
    "SERVICE_UNAVAILABLE",
    "BEARERCAPABILITY_NOTIMPL",
    "CHAN_NOT_IMPLEMENTED",
    "FACILITY_NOT_IMPLEMENTED",
    "SERVICE_NOT_IMPLEMENTED",
    "INVALID_CALL_REFERENCE",
    "INCOMPATIBLE_DESTINATION",
    "INVALID_MSG_UNSPECIFIED",
    "MANDATORY_IE_MISSING",
    "MESSAGE_TYPE_NONEXIST",
    "WRONG_MESSAGE",
    "IE_NONEXIST",
    "INVALID_IE_CONTENTS",
    "WRONG_CALL_STATE",
    "RECOVERY_ON_TIMER_EXPIRE",
    "MANDATORY_IE_LENGTH_ERROR",
    "PROTOCOL_ERROR",
    "INTERWORKING",
    "SUCCESS",
    "ORIGINATOR_CANCEL",
    "CRASH",
    "SYSTEM_SHUTDOWN",
    "LOSE_RACE",
    "MANAGER_REQUEST",
    "BLIND_TRANSFER",
    "ATTENDED_TRANSFER",
    "ALLOTTED_TIMEOUT",
    "USER_CHALLENGE",
    "MEDIA_TIMEOUT",
    "PICKED_OFF",
    "USER_NOT_REGISTERED",
    "PROGRESS_TIMEOUT",
    "INVALID_GATEWAY",
    "GATEWAY_DOWN",
    "INVALID_URL",
    "INVALID_PROFILE",
    "NO_PICKUP",
    "SRTP_READ_ERROR",
    "BOWOUT",
    "BUSY_EVERYWHERE",
    "DECLINE",
    "DOES_NOT_EXIST_ANYWHERE",
    "NOT_ACCEPTABLE",
    "UNWANTED",
    "NO_IDENTITY",
    "BAD_IDENTITY_INFO",
    "UNSUPPORTED_CERTIFICATE",
    "INVALID_IDENTITY",
    "STALE_DATE",
    "REJECT_ALL",
];

/// A hangup cause FreeSWITCH knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HangupCause(&'static str);

impl HangupCause {
    /// FreeSWITCH's own default for `hupall`, and ours.
    pub const MANAGER_REQUEST: HangupCause = HangupCause("MANAGER_REQUEST");

    /// Why any other name is refused.
    pub const RULE: &'static str = "must be a hangup cause FreeSWITCH knows, such as \
        MANAGER_REQUEST or NORMAL_CLEARING (its cause chart, upper case): FreeSWITCH would \
        hang up an unknown one as NORMAL_CLEARING";

    fn known(s: &str) -> Option<HangupCause> {
        KNOWN_CAUSES
            .iter()
            .find(|c| **c == s)
            .map(|c| HangupCause(c))
    }

    pub fn parse(s: &str) -> Result<HangupCause> {
        HangupCause::known(s).ok_or_else(|| Error::invalid("hupall_cause", s, HangupCause::RULE))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl Default for HangupCause {
    fn default() -> Self {
        HangupCause::MANAGER_REQUEST
    }
}

impl fmt::Display for HangupCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for HangupCause {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl JsonSchema for HangupCause {
    fn schema_name() -> Cow<'static, str> {
        "HangupCause".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "enum": KNOWN_CAUSES.as_slice(),
            "default": HangupCause::MANAGER_REQUEST.as_str(),
            "description": "A hangup cause FreeSWITCH knows by name.",
        })
    }
}

impl<'de> Deserialize<'de> for HangupCause {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // The field's name and path come from the caller's deserializer.
        let s = String::deserialize(d)?;
        HangupCause::known(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} {}", HangupCause::RULE)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_causes_operators_use_are_known() {
        for c in [
            "MANAGER_REQUEST",
            "NORMAL_CLEARING",
            "SYSTEM_SHUTDOWN",
            "NORMAL_UNSPECIFIED",
        ] {
            assert_eq!(HangupCause::parse(c).expect(c).as_str(), c);
        }
        assert_eq!(HangupCause::default(), HangupCause::MANAGER_REQUEST);
    }

    #[test]
    fn a_cause_freeswitch_would_turn_into_normal_clearing_is_refused() {
        for bad in [
            "MANAGER_REQUESTS",
            "manager_request",
            "",
            "NONE",
            "16",
            "x; rm",
            "CALL_REJECTED ",
        ] {
            let e = HangupCause::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("hupall_cause"), "{e}");
        }
    }

    #[test]
    fn the_chart_has_no_duplicates_and_only_cause_spellings() {
        let mut seen = std::collections::HashSet::new();
        for c in KNOWN_CAUSES {
            assert!(seen.insert(c), "{c} twice");
            assert!(
                c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'),
                "{c}"
            );
        }
    }

    #[test]
    fn it_travels_as_its_name() {
        let c: HangupCause = serde_json::from_str("\"SYSTEM_SHUTDOWN\"").expect("known");
        assert_eq!(
            serde_json::to_string(&c).expect("ser"),
            "\"SYSTEM_SHUTDOWN\""
        );
        let e = serde_json::from_str::<HangupCause>("\"SHUTDOWN\"").expect_err("unknown");
        assert!(e.to_string().contains("SHUTDOWN"), "{e}");
    }
}
