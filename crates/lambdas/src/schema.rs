//! The JSON schemas of the handlers' contracts, generated from their types. docs/handlers.md
//! carries them between [`BEGIN`] and [`END`]; a test holds the file to what the types say now
//! (`PAIRSCALE_BLESS=1` rewrites it).
//!
//! One schema per handler (JSON Schema 2020-12): its root is the input, one `oneOf` branch per
//! action; `$defs` holds every type the handler takes or returns, each action's output among
//! them, as the table beside it names.

use crate::contract::Contract;
use crate::handlers::state::StateAction;
use crate::handlers::{
    build::BuildAction, drain::DrainAction, lock::LockAction, policy::PolicyAction,
};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{Map, Value};
use std::fmt::Write;

pub const BEGIN: &str = "<!-- BEGIN schemas: generated from the handlers' types by crates/lambdas/src/schema.rs; PAIRSCALE_BLESS=1 cargo test --test schemas rewrites them -->";
pub const END: &str = "<!-- END schemas -->";

/// The generated part of docs/handlers.md: every handler's schema.
pub fn markdown() -> String {
    let mut out = String::new();
    section::<LockAction>(&mut out, "pairscale-lock");
    section::<StateAction>(&mut out, "pairscale-state");
    section::<DrainAction>(&mut out, "pairscale-drain");
    section::<BuildAction>(&mut out, "pairscale-build");
    section::<PolicyAction>(&mut out, "pairscale-policy");
    out
}

/// `doc` with the text between its markers replaced by `generated`; `None` without markers.
pub fn splice(doc: &str, generated: &str) -> Option<String> {
    let start = doc.find(BEGIN)? + BEGIN.len();
    let end = start + doc[start..].find(END)?;
    Some(format!("{}\n{generated}{}", &doc[..start], &doc[end..]))
}

/// One handler's schema: its root the input, its `$defs` every type, outputs included.
pub fn handler_schema<C: Contract + JsonSchema>() -> (Value, Vec<(&'static str, String)>) {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let outputs = C::output_schemas(&mut generator)
        .into_iter()
        .map(|(action, schema)| (action, type_name(&schema.to_value())))
        .collect();
    (generator.root_schema_for::<C>().to_value(), outputs)
}

fn section<C: Contract + JsonSchema>(out: &mut String, function: &str) {
    let (schema, outputs) = handler_schema::<C>();
    let _ = writeln!(
        out,
        "### `{function}`\n\n| action | output (`$defs`) |\n|---|---|"
    );
    for (action, output) in outputs {
        let _ = writeln!(out, "| `{action}` | `{output}` |");
    }
    let _ = writeln!(out, "\n```json\n{}\n```\n", pretty_root(&schema));
}

/// The name an output schema refers to, or the schema itself when it is inline.
fn type_name(schema: &Value) -> String {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .map(str::to_string)
        .unwrap_or_else(|| schema.to_string())
}

/// The schema, pretty, with its own keywords before the long `$defs`.
fn pretty_root(schema: &Value) -> String {
    let Some(obj) = schema.as_object() else {
        return schema.to_string();
    };
    let first = ["$schema", "title", "description", "oneOf"];
    let mut keys: Vec<&String> = obj.keys().filter(|k| first.contains(&k.as_str())).collect();
    keys.sort_by_key(|k| first.iter().position(|f| f == k));
    keys.extend(obj.keys().filter(|k| !first.contains(&k.as_str())));
    let ordered: Map<String, Value> = keys
        .into_iter()
        .map(|k| (k.clone(), obj[k].clone()))
        .collect();
    let mut out = String::new();
    pretty(&mut out, &Value::Object(ordered), 0, 0);
    out
}

/// The widest line written on one line; anything longer is spread over several.
const WIDTH: usize = 100;

/// Pretty JSON that keeps a value on one line when it fits, so that a `$ref`, a `required`
/// list or a small enum takes one line rather than five. `column` is where `v` starts.
fn pretty(out: &mut String, v: &Value, indent: usize, column: usize) {
    let one_line = inline(v);
    let items: Vec<(Option<&String>, &Value)> = match v {
        Value::Object(m) if column + one_line.len() > WIDTH => {
            m.iter().map(|(k, v)| (Some(k), v)).collect()
        }
        Value::Array(a) if column + one_line.len() > WIDTH => a.iter().map(|v| (None, v)).collect(),
        _ => {
            out.push_str(&one_line);
            return;
        }
    };
    let (open, close) = if v.is_object() {
        ('{', '}')
    } else {
        ('[', ']')
    };
    out.push(open);
    for (i, (key, item)) in items.iter().enumerate() {
        out.push('\n');
        let mut line = " ".repeat(indent + 2);
        if let Some(k) = key {
            line.push_str(&format!("{}: ", Value::String(k.to_string())));
        }
        out.push_str(&line);
        pretty(out, item, indent + 2, line.len());
        if i + 1 < items.len() {
            out.push(',');
        }
    }
    out.push('\n');
    out.push_str(&" ".repeat(indent));
    out.push(close);
}

/// JSON on one line, spaced as people write it.
fn inline(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let fields: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.to_string()), inline(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        scalar => scalar.to_string(),
    }
}
