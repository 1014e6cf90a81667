//! Validated names: fleets, pairs, lock owners, and the time stamps they carry.

use crate::error::{Error, Result};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A fleet name: 1 to 40 characters of `[a-z0-9-]`, starting with a letter. It becomes part
/// of SSM parameter paths, DynamoDB keys and tag values, so it is kept to a safe alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FleetName(String);

impl FleetName {
    pub const MAX_LEN: usize = 40;

    pub fn parse(s: &str) -> Result<FleetName> {
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let starts = s.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        if s.is_empty() || s.len() > Self::MAX_LEN || !ok_chars || !starts || s.ends_with('-') {
            return Err(Error::invalid(
                "fleet",
                s,
                format!(
                    "must be 1-{} characters of a-z, 0-9 and '-', starting with a letter",
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(FleetName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FleetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FleetName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FleetName::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A pair's stable id, `pair-NNNN`. Ids come from a per-fleet sequence and are never reused,
/// so a record, a Terraform `for_each` key and an EC2 tag name the same pair forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairId(u32);

impl PairId {
    pub const MAX_SEQ: u32 = 9_999_999;

    pub fn new(seq: u32) -> Result<PairId> {
        if seq == 0 || seq > Self::MAX_SEQ {
            return Err(Error::invalid(
                "pair_id",
                seq,
                format!("sequence must be 1..={}", Self::MAX_SEQ),
            ));
        }
        Ok(PairId(seq))
    }

    pub fn seq(self) -> u32 {
        self.0
    }

    pub fn parse(s: &str) -> Result<PairId> {
        let bad = || Error::invalid("pair_id", s, "must look like pair-0001");
        let digits = s.strip_prefix("pair-").ok_or_else(bad)?;
        if digits.len() < 4 || digits.len() > 7 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u32 = digits.parse().map_err(|_| bad())?;
        // One spelling per id: `pair-0001`, never `pair-00001`.
        if format!("{:04}", n) != digits {
            return Err(bad());
        }
        PairId::new(n).map_err(|_| bad())
    }
}

impl fmt::Display for PairId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pair-{:04}", self.0)
    }
}

impl Serialize for PairId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PairId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PairId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Who holds (or asks for) the scaling lock: a Step Functions execution ARN, or for one-off
/// operator actions, a `cli:` owner. Only execution ARNs can be checked for liveness.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Owner(String);

impl Owner {
    pub const MAX_LEN: usize = 512;

    pub fn parse(s: &str) -> Result<Owner> {
        let printable = s.chars().all(|c| c.is_ascii_graphic());
        let known = s.starts_with("arn:") || s.starts_with("cli:");
        if s.is_empty() || s.len() > Self::MAX_LEN || !printable || !known {
            return Err(Error::invalid(
                "owner",
                s,
                format!(
                    "must be a Step Functions execution ARN or 'cli:<who>', printable, at most {} characters",
                    Self::MAX_LEN
                ),
            ));
        }
        if s.starts_with("arn:") && !is_execution_arn(s) {
            return Err(Error::invalid(
                "owner",
                s,
                "an ARN owner must be a Step Functions execution ARN (arn:<partition>:states:<region>:<account>:execution:<machine>:<name>)",
            ));
        }
        Ok(Owner(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The execution ARN, when the owner is a state machine execution.
    pub fn execution_arn(&self) -> Option<&str> {
        is_execution_arn(&self.0).then_some(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Owner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Owner::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_execution_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() >= 8
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "states"
        && parts[5] == "execution"
        && parts[3..].iter().all(|p| !p.is_empty())
}

/// The JSON schema of a validated name: a string, its rule as a pattern. The pattern says what
/// a regular expression can; `parse` has the last word (e.g. `pair-0001`, never `pair-00001`).
fn string_schema(pattern: &str, max_len: usize, description: &str) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": pattern,
        "maxLength": max_len,
        "description": description,
    })
}

impl JsonSchema for FleetName {
    fn schema_name() -> Cow<'static, str> {
        "FleetName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema(
            "^[a-z]([a-z0-9-]*[a-z0-9])?$",
            FleetName::MAX_LEN,
            "A fleet name: a-z, 0-9 and '-', starting with a letter.",
        )
    }
}

impl JsonSchema for PairId {
    fn schema_name() -> Cow<'static, str> {
        "PairId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema(
            "^pair-[0-9]{4,7}$",
            "pair-".len() + 7,
            "A pair's stable id, pair-NNNN (at least four digits, no needless leading zero).",
        )
    }
}

impl JsonSchema for Owner {
    fn schema_name() -> Cow<'static, str> {
        "Owner".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema(
            "^(cli:[!-~]*|arn:aws[!-9;-~]*:states:[!-9;-~]+:[!-9;-~]+:execution:[!-9;-~]+(:[!-9;-~]+)+)$",
            Owner::MAX_LEN,
            "Who holds the lock: a Step Functions execution ARN, or cli:<who>.",
        )
    }
}

/// Milliseconds since the Unix epoch. Every time pairscale stores or compares is one of these:
/// plain integers sort, compare and survive DynamoDB and JSON without a format to agree on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_secs(self, secs: u64) -> Timestamp {
        Timestamp(self.0.saturating_add((secs as i64).saturating_mul(1000)))
    }

    /// Whole seconds since the epoch, for DynamoDB's TTL attribute.
    pub fn epoch_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// An RFC 3339 instant (`2026-12-05T08:00:00Z`, any offset); None when it is not one.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000))
            .ok()
            .map(Timestamp)
    }

    /// RFC 3339, for humans and for error messages.
    pub fn rfc3339(self) -> String {
        let nanos = (self.0 as i128) * 1_000_000;
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| format!("{}ms", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_instants_parse_back() {
        let t = Timestamp(1_796_457_600_000);
        assert_eq!(Timestamp::parse_rfc3339(&t.rfc3339()), Some(t));
        assert_eq!(
            Timestamp::parse_rfc3339("2026-12-05T09:00:00+01:00"),
            Timestamp::parse_rfc3339("2026-12-05T08:00:00Z")
        );
        for bad in ["", "2026-12-05", "2026-12-05 08:00:00", "yesterday"] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn fleet_names_are_validated() {
        for ok in ["voice", "voice-eu-1", "a"] {
            assert!(FleetName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Voice",
            "1voice",
            "voice_eu",
            "voice-",
            &"a".repeat(41),
            "vo ice",
            "vo/ice",
        ] {
            let e = FleetName::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("fleet"), "{e}");
        }
    }

    #[test]
    fn pair_ids_have_one_spelling() {
        let id = PairId::parse("pair-0042").expect("valid");
        assert_eq!(id.seq(), 42);
        assert_eq!(id.to_string(), "pair-0042");
        assert_eq!(PairId::new(12345).expect("valid").to_string(), "pair-12345");
        for bad in [
            "pair-42",
            "pair-00042",
            "pair-0000",
            "p-0001",
            "pair-00x1",
            "pair-",
            "pair-99999999",
        ] {
            assert!(PairId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn owners_are_execution_arns_or_cli() {
        let arn = "arn:aws:states:us-east-1:123456789012:execution:pairscale-scale-in:run-1";
        let o = Owner::parse(arn).expect("valid");
        assert_eq!(o.execution_arn(), Some(arn));
        let cli = Owner::parse("cli:alice").expect("valid");
        assert_eq!(cli.execution_arn(), None);
        for bad in ["", "alice", "arn:aws:s3:::bucket", "cli:has space"] {
            assert!(Owner::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(1_500).plus_secs(2).millis(), 3_500);
        assert_eq!(Timestamp(1_999).epoch_secs(), 1);
    }
}
