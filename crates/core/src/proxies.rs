//! The Kamailio instances a fleet's dispatcher changes go to.
//!
//! Kamailio runs as an HA pair (or a few more) sharing one `dispatcher` table, and each
//! instance routes from its own copy of the list in memory: a node disabled through one is
//! still sent new calls by the other until that one reloads. So a fleet names the JSON-RPC
//! endpoint of every instance (`kamailio_rpc_urls` in its configuration), and every disable
//! and enable is applied to, and confirmed on, each of them.
//!
//! The rules are checked here once, for the fleet configuration and the drain function's input
//! alike, and Terraform's `fleet_config` validation words the same ones: 1 to
//! [`bounds::KAMAILIO_RPC_URLS`] URLs, none twice, each `http(s)://HOST[:PORT][/PATH]` (HOST a
//! name, an IPv4 address or a bracketed IPv6 address; PORT 1-65535; PATH printable ASCII
//! without spaces) of at most [`bounds::KAMAILIO_RPC_URL_LENGTH`] characters.

use crate::fleet::bounds;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Every Kamailio's JSON-RPC endpoint, in the order given; validated, so never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KamailioRpcUrls(Vec<String>);

impl KamailioRpcUrls {
    /// The list, or why it is refused (naming the offending URL).
    pub fn parse<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let urls: Vec<String> = urls.into_iter().map(Into::into).collect();
        let (lo, hi) = (
            *bounds::KAMAILIO_RPC_URLS.start(),
            *bounds::KAMAILIO_RPC_URLS.end(),
        );
        if !bounds::KAMAILIO_RPC_URLS.contains(&urls.len()) {
            return Err(format!(
                "must list {lo} to {hi} Kamailio JSON-RPC URLs, not {}",
                urls.len()
            ));
        }
        for (i, url) in urls.iter().enumerate() {
            if let Err(why) = check_url(url) {
                return Err(format!("[{i}] {url:?} {why}"));
            }
            if urls[..i].contains(url) {
                return Err(format!("[{i}] {url:?} is listed twice"));
            }
        }
        Ok(KamailioRpcUrls(urls))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for KamailioRpcUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

impl Serialize for KamailioRpcUrls {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl JsonSchema for KamailioRpcUrls {
    fn schema_name() -> Cow<'static, str> {
        "KamailioRpcUrls".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "items": {"type": "string", "maxLength": *bounds::KAMAILIO_RPC_URL_LENGTH.end()},
            "minItems": *bounds::KAMAILIO_RPC_URLS.start(),
            "maxItems": *bounds::KAMAILIO_RPC_URLS.end(),
            "uniqueItems": true,
            "description": "Every Kamailio's JSON-RPC endpoint, http(s)://HOST[:PORT][/PATH].",
        })
    }
}

impl<'de> Deserialize<'de> for KamailioRpcUrls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The field's name and path come from the caller's deserializer.
        KamailioRpcUrls::parse(Vec::<String>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `http(s)://HOST[:PORT][/PATH]`, as the module comment says; `Err` says what is wrong.
fn check_url(url: &str) -> Result<(), &'static str> {
    const SHAPE: &str = "must be http(s)://HOST[:PORT][/PATH]: HOST a name, an IPv4 address \
        or a bracketed IPv6 address, PORT 1-65535, PATH printable ASCII without spaces";
    if !bounds::KAMAILIO_RPC_URL_LENGTH.contains(&url.len()) {
        return Err("is too long for a Kamailio JSON-RPC URL");
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or(SHAPE)?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if !path.chars().all(|c| ('!'..='~').contains(&c)) {
        return Err(SHAPE);
    }
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or(SHAPE)?;
            let ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.'));
            match after {
                "" => (ok, None),
                p => (ok, Some(p.strip_prefix(':').ok_or(SHAPE)?)),
            }
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            let ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
            (ok, port)
        }
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65_535).contains(&n))
    });
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(SHAPE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_urls_of_an_ha_pair_are_accepted_as_given() {
        for urls in [
            vec!["http://10.0.32.10:5071/RPC", "http://10.0.33.10:5071/RPC"],
            vec!["https://kamailio-a.internal/RPC"],
            vec!["http://[fd00::10]:5071/RPC", "http://kam-b:080"],
            vec!["http://127.0.0.1:65535/RPC?x=1"],
        ] {
            let parsed = KamailioRpcUrls::parse(urls.clone()).expect("valid");
            assert_eq!(parsed.iter().collect::<Vec<_>>(), urls);
            let json = serde_json::to_string(&parsed).expect("serialise");
            assert_eq!(
                serde_json::from_str::<KamailioRpcUrls>(&json).expect("round trip"),
                parsed
            );
        }
    }

    #[test]
    fn a_bad_url_is_refused_naming_it() {
        for bad in [
            "",
            "10.0.0.1:5071/RPC",
            "ftp://10.0.0.1/RPC",
            "unix:/run/kamailio.sock",
            "http://",
            "http://:5071/RPC",
            "http://h:/RPC",
            "http://h:0/RPC",
            "http://h:65536/RPC",
            "http://h:123456/RPC",
            "http://h:50x/RPC",
            "http://user@h/RPC",
            "http://h/R PC",
            "http://h/RPC\n",
            "http://[]:5071/RPC",
            "http://[::1/RPC",
            "http://[::1]5071/RPC",
            "http://[::g]/RPC",
            "HTTP://h/RPC",
        ] {
            let e = KamailioRpcUrls::parse([bad]).expect_err(bad);
            assert!(e.contains(&format!("{bad:?}")), "{bad:?}: {e}");
        }
        let long = format!("http://h/{}", "x".repeat(247));
        assert_eq!(long.len(), 256);
        KamailioRpcUrls::parse([long.clone()]).expect_err("too long");
        KamailioRpcUrls::parse([&long[..255]]).expect("255 characters");
    }

    #[test]
    fn the_count_is_bounded_and_a_url_listed_twice_is_refused() {
        let url = |i: usize| format!("http://10.0.0.{i}:5071/RPC");
        let none: [String; 0] = [];
        assert!(KamailioRpcUrls::parse(none)
            .expect_err("empty")
            .contains("1 to 8"));
        KamailioRpcUrls::parse((1..=8).map(url)).expect("eight");
        KamailioRpcUrls::parse((1..=9).map(url)).expect_err("nine");
        let e = KamailioRpcUrls::parse([url(1), url(2), url(1)]).expect_err("twice");
        assert!(e.contains("[2]") && e.contains("twice"), "{e}");
    }

    #[test]
    fn a_fleet_configuration_names_the_field_and_without_it_travels_as_null() {
        use crate::{Error, FleetConfig, FleetName};
        let fleet = FleetName::parse("voice").expect("valid");
        let mut v = serde_json::to_value(crate::fleet::sample_config()).expect("serialise");
        // Null, not absent: the state machine hands `$.plan.config.kamailio_rpc_urls` on as it is.
        assert!(v["kamailio_rpc_urls"].is_null(), "{v}");
        v.as_object_mut()
            .expect("object")
            .remove("kamailio_rpc_urls");
        let cfg = FleetConfig::from_json(&fleet, &v.to_string()).expect("absent");
        assert_eq!(cfg.kamailio_rpc_urls, None);
        let pair = ["http://10.0.0.1:5071/RPC", "http://10.0.0.2:5071/RPC"];
        v["kamailio_rpc_urls"] = serde_json::json!(pair);
        let cfg = FleetConfig::from_json(&fleet, &v.to_string()).expect("a pair");
        assert_eq!(
            cfg.kamailio_rpc_urls.expect("set").as_slice(),
            pair.map(String::from)
        );
        for bad in [
            serde_json::json!([]),
            serde_json::json!([pair[0], pair[0]]),
            serde_json::json!(["10.0.0.1:5071"]),
        ] {
            v["kamailio_rpc_urls"] = bad.clone();
            let e = FleetConfig::from_json(&fleet, &v.to_string()).expect_err("refused");
            assert!(
                matches!(&e, Error::InvalidConfig { field, .. } if field == "kamailio_rpc_urls"),
                "{bad}: {e}"
            );
        }
    }
}
