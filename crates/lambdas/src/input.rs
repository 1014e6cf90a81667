//! Handler input: `{"action": "...", ...}`. The action picks a typed struct; unknown fields
//! are refused; every error names the field (by its JSON path) and what was there.

use pairscale_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The `action` of an input, checked against the handler's list.
pub fn action<'a>(input: &'a Value, known: &[&str]) -> Result<&'a str> {
    let obj = input
        .as_object()
        .ok_or_else(|| Error::invalid("input", input, "must be a JSON object with an 'action'"))?;
    match obj.get("action") {
        None => Err(Error::invalid(
            "action",
            "missing",
            format!("must be one of {}", known.join(", ")),
        )),
        Some(Value::String(a)) if known.contains(&a.as_str()) => Ok(a.as_str()),
        Some(other) => Err(Error::invalid(
            "action",
            other,
            format!("must be one of {}", known.join(", ")),
        )),
    }
}

/// The input without its `action`, as `T`.
pub fn parse<T: DeserializeOwned>(input: &Value) -> Result<T> {
    let mut v = input.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("action");
    }
    serde_path_to_error::deserialize::<_, T>(&v).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            "input".to_string()
        } else {
            path
        };
        let value = lookup(&v, &field)
            .map(|x| x.to_string())
            .unwrap_or_else(|| "missing".into());
        Error::invalid(field, value, e.into_inner().to_string())
    })
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, seg| {
        match seg.strip_suffix(']').and_then(|s| s.split_once('[')) {
            Some((name, idx)) => {
                let base = if name.is_empty() { cur } else { cur.get(name)? };
                base.get(idx.parse::<usize>().ok()?)
            }
            None => cur.get(seg),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        fleet: pairscale_core::FleetName,
        ttl_seconds: Option<u64>,
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let e = parse::<T>(&json!({"action": "x", "fleet": "voice", "ttl_seconds": "soon"}))
            .expect_err("type");
        let msg = e.to_string();
        assert!(msg.contains("ttl_seconds") && msg.contains("soon"), "{msg}");
        let e = parse::<T>(&json!({"fleet": "Bad!"})).expect_err("fleet");
        assert!(
            e.to_string().contains("fleet") && e.to_string().contains("Bad!"),
            "{e}"
        );
        let e = parse::<T>(&json!({"fleet": "voice", "extra": 1})).expect_err("unknown");
        assert!(e.to_string().contains("extra"), "{e}");
        let e = parse::<T>(&json!({})).expect_err("missing");
        assert!(e.to_string().contains("fleet"), "{e}");
    }

    #[test]
    fn unknown_actions_are_refused() {
        assert_eq!(
            action(&json!({"action": "acquire"}), &["acquire"]).expect("known"),
            "acquire"
        );
        let e = action(&json!({"action": "steal"}), &["acquire", "release"]).expect_err("unknown");
        assert!(
            e.to_string().contains("steal") && e.to_string().contains("release"),
            "{e}"
        );
        assert!(action(&json!("acquire"), &["acquire"]).is_err());
    }
}
