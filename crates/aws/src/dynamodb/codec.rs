//! JSON ⇄ DynamoDB attribute values, so that records are stored as readable attributes (an
//! operator can read a pair in the console) without hand-written field mapping.

use aws_sdk_dynamodb::types::AttributeValue;
use pairscale_core::Error;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn to_av(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_av).collect()),
        Value::Object(o) => AttributeValue::M(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), to_av(v)))
                .collect(),
        ),
    }
}

pub(crate) fn from_av(av: &AttributeValue) -> Result<Value, Error> {
    Ok(match av {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => {
            let num = n
                .parse::<i64>()
                .map(Number::from)
                .or_else(|_| n.parse::<u64>().map(Number::from))
                .ok()
                .or_else(|| n.parse::<f64>().ok().and_then(Number::from_f64))
                .ok_or_else(|| Error::corrupt("dynamodb number", n, "not a number"))?;
            Value::Number(num)
        }
        AttributeValue::L(l) => Value::Array(l.iter().map(from_av).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => Value::Object(item_to_json(m)?),
        other => {
            return Err(Error::corrupt(
                "dynamodb attribute",
                format!("{other:?}"),
                "unsupported type",
            ))
        }
    })
}

/// An item's attributes as a JSON object, without the key attributes.
pub(crate) fn item_to_json(item: &Item) -> Result<Map<String, Value>, Error> {
    item.iter()
        .filter(|(k, _)| k.as_str() != super::PK && k.as_str() != super::SK)
        .map(|(k, v)| Ok((k.clone(), from_av(v)?)))
        .collect()
}

/// A serialisable record as item attributes (top-level nulls are left out).
pub(crate) fn record_to_item<T: serde::Serialize>(record: &T) -> Result<Item, Error> {
    match serde_json::to_value(record) {
        Ok(Value::Object(o)) => Ok(o
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), to_av(v)))
            .collect()),
        Ok(other) => Err(Error::internal(format!("record is not an object: {other}"))),
        Err(e) => Err(Error::internal(format!("record does not serialise: {e}"))),
    }
}

pub(crate) fn item_to_record<T: serde::de::DeserializeOwned>(
    what: &str,
    item: &Item,
) -> Result<T, Error> {
    let json = Value::Object(item_to_json(item)?);
    serde_json::from_value(json.clone()).map_err(|e| Error::corrupt(what, json, e.to_string()))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_attribute_values() {
        let v = json!({"a": 1, "b": "x", "c": [true, 2.5, "y"], "d": {"e": -3}, "big": 18446744073709551615u64});
        let back = from_av(&to_av(&v)).expect("decode");
        assert_eq!(back, v);
    }

    #[test]
    fn a_corrupt_number_is_reported() {
        let e = from_av(&AttributeValue::N("12abc".into())).expect_err("corrupt");
        assert_eq!(e.name(), pairscale_core::ErrorName::CorruptState);
    }
}
