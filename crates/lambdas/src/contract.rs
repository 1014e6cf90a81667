//! The handlers' JSON contract. Each handler declares its actions with `contract!`: a
//! `#[serde(tag = "action")]` enum with one variant per action holding that action's fields,
//! and the output type each action returns. The enum is the contract; the schemas in
//! docs/handlers.md are generated from it ([`crate::schema`]).
//!
//! Parsing reads the `action` first, then the variant's fields through `serde_path_to_error`:
//! an internally tagged enum loses the path of a bad field, and every error here names the
//! field (by its JSON path) and what was there. Unknown fields are refused.

use pairscale_core::state::Fence;
use pairscale_core::{Error, FleetName, Result};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A handler's input: one of its actions, with that action's fields.
pub trait Contract: Sized {
    /// The actions, as the input spells them.
    const ACTIONS: &'static [&'static str];

    /// The variant of `action`, from the input's other fields.
    fn from_fields(action: &str, fields: Value) -> Result<Self>;

    /// Each action with the schema of its output, in the order of [`Contract::ACTIONS`].
    fn output_schemas(generator: &mut SchemaGenerator) -> Vec<(&'static str, Schema)>;

    /// `{"action": ..., ...}` as one action.
    fn parse(input: &Value) -> Result<Self> {
        let action = action(input, Self::ACTIONS)?;
        let mut fields = input.clone();
        if let Some(o) = fields.as_object_mut() {
            o.remove("action");
        }
        Self::from_fields(action, fields)
    }
}

/// The fields of one action (the input less its `action`).
pub trait Fields: DeserializeOwned {
    fn from_fields(fields: Value) -> Result<Self> {
        parse(&fields)
    }
}

/// The fields of an action that writes under the scaling lock: the lock's [`Fence`]
/// (`owner`, `token`) beside the action's own fields, on one level of the JSON object.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fenced<T> {
    #[serde(flatten)]
    pub fence: Fence,
    #[serde(flatten)]
    pub input: T,
}

/// The wire names of [`Fence`]'s fields.
const FENCE_FIELDS: [&str; 2] = ["owner", "token"];

impl<T: Fields> Fields for Fenced<T> {
    /// The fence and the action's own fields are parsed apart: inside `#[serde(flatten)]`,
    /// serde loses the path of a bad field, and the error would no longer name it.
    fn from_fields(mut fields: Value) -> Result<Self> {
        let mut fence = Map::new();
        if let Some(o) = fields.as_object_mut() {
            for key in FENCE_FIELDS {
                if let Some(v) = o.remove(key) {
                    fence.insert(key.to_string(), v);
                }
            }
        }
        Ok(Fenced {
            fence: parse(&Value::Object(fence))?,
            input: T::from_fields(fields)?,
        })
    }
}

/// The input of the actions that read one fleet.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetInput {
    pub fleet: FleetName,
}

impl Fields for FleetInput {}

/// Declares a handler's contract: the input enum (one variant per action), the output type of
/// each action, and the handler's `handle`, which parses an input, calls the action's method
/// and returns its output as JSON.
///
/// ```ignore
/// contract! {
///     pub enum LockAction for LockHandler {
///         "acquire" => Acquire(AcquireInput) -> LockGrant = acquire,
///     }
/// }
/// ```
macro_rules! contract {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident for $handler:ty {
            $(
                $(#[$vmeta:meta])*
                $tag:literal => $variant:ident($input:ty) -> $output:ty = $method:ident,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
        #[serde(tag = "action")]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $tag)]
                $variant($input),
            )+
        }

        impl $crate::contract::Contract for $name {
            const ACTIONS: &'static [&'static str] = &[$($tag),+];

            fn from_fields(
                action: &str,
                fields: serde_json::Value,
            ) -> pairscale_core::Result<Self> {
                match action {
                    $(
                        $tag => <$input as $crate::contract::Fields>::from_fields(fields)
                            .map($name::$variant),
                    )+
                    other => Err($crate::contract::unknown_action(other, Self::ACTIONS)),
                }
            }

            fn output_schemas(
                generator: &mut schemars::SchemaGenerator,
            ) -> Vec<(&'static str, schemars::Schema)> {
                vec![$(($tag, generator.subschema_for::<$output>())),+]
            }
        }

        impl $handler {
            /// Runs one action: the input parsed as the handler's contract, the action's
            /// output as JSON.
            pub async fn handle(
                &self,
                input: serde_json::Value,
            ) -> pairscale_core::Result<serde_json::Value> {
                match <$name as $crate::contract::Contract>::parse(&input)? {
                    $(
                        $name::$variant(fields) => {
                            let output: $output = self.$method(fields).await?;
                            $crate::contract::to_json(&output)
                        }
                    )+
                }
            }
        }
    };
}
pub(crate) use contract;

/// The `action` of an input, checked against the handler's list.
pub fn action<'a>(input: &'a Value, known: &[&str]) -> Result<&'a str> {
    let obj = input
        .as_object()
        .ok_or_else(|| Error::invalid("input", input, "must be a JSON object with an 'action'"))?;
    match obj.get("action") {
        None => Err(unknown_action("missing", known)),
        Some(Value::String(a)) if known.contains(&a.as_str()) => Ok(a.as_str()),
        Some(other) => Err(unknown_action(other, known)),
    }
}

/// The error for an action the handler does not know (or a missing one).
pub fn unknown_action(value: impl std::fmt::Display, known: &[&str]) -> Error {
    Error::invalid(
        "action",
        value,
        format!("must be one of {}", known.join(", ")),
    )
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

/// An action's output as JSON.
pub fn to_json<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::internal(format!("output does not serialise: {e}")))
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
mod tests;
