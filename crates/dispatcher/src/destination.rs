//! What a destination is (validated at the edge) and what Kamailio says about one.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use crate::error::{DispatcherError, Result};

/// The `attrs` column is `VARCHAR(128)` in Kamailio 5.6's schema.
pub const MAX_ATTRS_LEN: usize = 128;
/// The `destination` column is `VARCHAR(192)`.
pub const MAX_URI_LEN: usize = 192;
/// The attribute that carries the pair id; Kamailio exposes it as the destination's DUID.
pub const DUID_ATTR: &str = "duid";

/// One media server in a dispatcher set.
///
/// Every adapter method validates it again (`validate`), so a value built field by field is as
/// safe as one from [`Destination::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Dispatcher set id, `>= 0`.
    pub set_id: i32,
    /// `sip:IP:PORT` (IPv6 in brackets). Kamailio matches it as a string, so it is compared
    /// and stored exactly as given.
    pub uri: String,
    /// The pair this media server belongs to; stored as `duid=<pair_id>` in `attrs`.
    pub pair_id: String,
    /// Dispatcher priority (higher first for priority-based algorithms).
    pub priority: i32,
    /// Extra attributes (`key=value`), written after the duid.
    pub attrs: BTreeMap<String, String>,
}

impl Destination {
    /// A validated destination with priority 0 and no extra attributes.
    pub fn new(set_id: i32, uri: impl Into<String>, pair_id: impl Into<String>) -> Result<Self> {
        let d = Self {
            set_id,
            uri: uri.into(),
            pair_id: pair_id.into(),
            priority: 0,
            attrs: BTreeMap::new(),
        };
        d.validate()?;
        Ok(d)
    }

    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Adds an attribute; validation happens at the next use.
    pub fn with_attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attrs.insert(key.into(), value.into());
        self
    }

    /// Checks every field and the rendered `attrs`, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.set_id < 0 {
            return Err(invalid("set_id", self.set_id, "must not be negative"));
        }
        validate_uri(&self.uri)?;
        if !is_token(&self.pair_id) {
            return Err(invalid(
                "pair_id",
                &self.pair_id,
                "must be 1-64 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        for (key, value) in &self.attrs {
            if key == DUID_ATTR {
                return Err(invalid("attrs", key, "duid is set from pair_id"));
            }
            if !is_token(key) {
                return Err(invalid(
                    "attrs",
                    key,
                    "key must be 1-64 characters of A-Z a-z 0-9 . _ -",
                ));
            }
            if value.is_empty() || value.len() > 64 || value.contains([';', '=', '\'', '"']) {
                return Err(invalid(
                    "attrs",
                    format!("{key}={value}"),
                    "value must be 1-64 characters without ; = or quotes",
                ));
            }
        }
        let rendered = self.attrs_string();
        if rendered.len() > MAX_ATTRS_LEN {
            return Err(invalid("attrs", rendered, "longer than 128 characters"));
        }
        Ok(())
    }

    /// The `attrs` column value: `duid=<pair_id>` then the extra attributes in key order.
    pub fn attrs_string(&self) -> String {
        let mut s = format!("{DUID_ATTR}={}", self.pair_id);
        for (k, v) in &self.attrs {
            s.push(';');
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
        s
    }
}

fn invalid(field: &'static str, value: impl fmt::Display, reason: &'static str) -> DispatcherError {
    DispatcherError::InvalidInput {
        field,
        value: value.to_string(),
        reason,
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `sip:IP:PORT` with a literal address and a non-zero port; nothing else (no user part, no
/// parameters, no host names), because Kamailio compares the stored string byte for byte and
/// a second spelling of the same address would be a second destination.
fn validate_uri(uri: &str) -> Result<()> {
    const REASON: &str = "must be sip:IP:PORT (IPv6 in brackets, port 1-65535)";
    let bad = || invalid("uri", uri, REASON);
    if uri.len() > MAX_URI_LEN {
        return Err(bad());
    }
    let addr: SocketAddr = uri
        .strip_prefix("sip:")
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    // Reject spellings that parse but are not canonical (leading zeros, "::ffff:" forms, ...).
    if addr.port() == 0 || format!("sip:{addr}") != uri {
        return Err(bad());
    }
    Ok(())
}

/// Kamailio's view of a destination's state: the first letter of its `FLAGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationStatus {
    /// `A`: gets calls.
    Active,
    /// `I`: failed; gets no calls until probing finds it answering again.
    Inactive,
    /// `D`: taken out of rotation; never probed back.
    Disabled,
    /// `T`: failed once, not yet inactive.
    Trying,
}

impl DestinationStatus {
    fn from_flags(flags: &str) -> Option<Self> {
        match flags.as_bytes().first()? {
            b'A' => Some(Self::Active),
            b'I' => Some(Self::Inactive),
            b'D' => Some(Self::Disabled),
            b'T' => Some(Self::Trying),
            _ => None,
        }
    }
}

/// One row of `dispatcher.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationState {
    pub set_id: i32,
    pub uri: String,
    /// Raw flags as Kamailio shows them, e.g. `AX`, `DX`, `IP`.
    pub flags: String,
    pub status: DestinationStatus,
    /// `P` in the flags: Kamailio sends OPTIONS to it.
    pub probing: bool,
    pub priority: i32,
    /// The `duid` attribute, i.e. the pair id for destinations this crate registered.
    pub duid: Option<String>,
    /// The whole attrs string.
    pub attrs: String,
}

impl DestinationState {
    pub(crate) fn parse(
        set_id: i32,
        uri: String,
        flags: String,
        priority: i32,
        duid: Option<String>,
        attrs: String,
    ) -> Option<Self> {
        let status = DestinationStatus::from_flags(&flags)?;
        Some(Self {
            set_id,
            probing: flags[1..].contains('P'),
            uri,
            flags,
            status,
            priority,
            duid: duid.filter(|d| !d.is_empty()),
            attrs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field_of(err: DispatcherError) -> (&'static str, String) {
        match err {
            DispatcherError::InvalidInput { field, value, .. } => (field, value),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn accepts_canonical_ipv4_and_ipv6_uris() {
        for uri in [
            "sip:10.0.1.7:5060",
            "sip:127.0.0.1:1",
            "sip:[2001:db8::1]:5080",
        ] {
            assert!(Destination::new(1, uri, "pair-1").is_ok(), "{uri}");
        }
    }

    #[test]
    fn rejects_uris_kamailio_would_store_as_another_destination() {
        let bad = [
            "",
            "10.0.1.7:5060",
            "sips:10.0.1.7:5060",
            "sip:10.0.1.7",
            "sip:10.0.1.7:0",
            "sip:10.0.1.7:70000",
            "sip:010.0.1.7:5060",
            "sip:10.0.1.7:05060",
            "sip:host.example:5060",
            "sip:user@10.0.1.7:5060",
            "sip:10.0.1.7:5060;transport=tcp",
            "sip:2001:db8::1:5060",
            "sip:[2001:DB8::1]:5060",
            "SIP:10.0.1.7:5060",
            " sip:10.0.1.7:5060",
        ];
        for uri in bad {
            let (field, value) = field_of(Destination::new(1, uri, "p").expect_err(uri));
            assert_eq!((field, value.as_str()), ("uri", uri));
        }
    }

    #[test]
    fn a_negative_set_id_is_named_with_its_value() {
        let (field, value) =
            field_of(Destination::new(-3, "sip:10.0.0.1:5060", "p").expect_err("negative"));
        assert_eq!((field, value.as_str()), ("set_id", "-3"));
    }

    #[test]
    fn pair_ids_that_would_break_the_attrs_string_are_rejected() {
        for pair in ["", "a;b", "a=b", "a b", &"x".repeat(65)] {
            let (field, _) =
                field_of(Destination::new(1, "sip:10.0.0.1:5060", pair).expect_err(pair));
            assert_eq!(field, "pair_id");
        }
    }

    #[test]
    fn attrs_start_with_the_duid_then_extra_keys_in_order() {
        let d = Destination::new(2, "sip:10.0.0.1:5060", "pair-7")
            .expect("valid")
            .with_attr("weight", "50")
            .with_attr("az", "eu-west-1a");
        d.validate().expect("valid attrs");
        assert_eq!(d.attrs_string(), "duid=pair-7;az=eu-west-1a;weight=50");
    }

    #[test]
    fn attrs_may_not_override_the_duid_or_overflow_the_column() {
        let d = Destination::new(2, "sip:10.0.0.1:5060", "p")
            .expect("valid")
            .with_attr("duid", "other");
        assert_eq!(field_of(d.validate().expect_err("duid")).0, "attrs");
        let d = Destination::new(2, "sip:10.0.0.1:5060", "p")
            .expect("valid")
            .with_attr("a", "x".repeat(64))
            .with_attr("b", "y".repeat(64));
        assert_eq!(field_of(d.validate().expect_err("too long")).0, "attrs");
    }

    #[test]
    fn list_flags_map_to_a_status_and_unknown_letters_are_refused() {
        let parse = |flags: &str| {
            DestinationState::parse(
                1,
                "sip:1.2.3.4:5".into(),
                flags.into(),
                0,
                None,
                String::new(),
            )
        };
        let st = parse("DX").expect("known");
        assert_eq!(
            (st.status, st.probing),
            (DestinationStatus::Disabled, false)
        );
        let st = parse("IP").expect("known");
        assert_eq!((st.status, st.probing), (DestinationStatus::Inactive, true));
        assert_eq!(
            parse("AX").expect("known").status,
            DestinationStatus::Active
        );
        assert!(parse("ZX").is_none());
        assert!(parse("").is_none());
    }

    proptest! {
        #[test]
        fn every_accepted_uri_is_a_literal_socket_address(s in "sip:[0-9a-f:.\\[\\]]{0,30}") {
            if Destination::new(1, s.clone(), "p").is_ok() {
                let addr: SocketAddr = s[4..].parse().expect("accepted implies parseable");
                prop_assert_eq!(format!("sip:{addr}"), s);
            }
        }

        #[test]
        fn every_ipv4_socket_address_is_accepted(ip in any::<[u8; 4]>(), port in 1u16..) {
            let uri = format!("sip:{}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3]);
            prop_assert!(Destination::new(0, uri, "p").is_ok());
        }
    }
}
