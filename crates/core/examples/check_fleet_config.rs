//! `FleetConfig::from_json` as a filter, so that checks outside Rust (the Terraform contract
//! check, `tests/terraform/contract.py`) judge a configuration by the one copy of its rules
//! instead of a port of them.
//!
//! Reads one JSON document a line on standard input; writes one line a document:
//! `{"ok":true}` or `{"ok":false,"field":"drain.hupall_cause","error":"..."}`.
//! With `--causes`, prints the hangup causes `drain.hupall_cause` accepts, as a JSON list.

use pairscale_core::hangup::KNOWN_CAUSES;
use pairscale_core::{Error, FleetConfig, FleetName};
use serde_json::json;
use std::io::{BufRead, Write};

fn main() -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if std::env::args().nth(1).as_deref() == Some("--causes") {
        return writeln!(out, "{}", json!(KNOWN_CAUSES.to_vec()));
    }
    let fleet = FleetName::parse("contract").map_err(std::io::Error::other)?;
    for line in std::io::stdin().lock().lines() {
        let verdict = match FleetConfig::from_json(&fleet, &line?) {
            Ok(_) => json!({"ok": true}),
            Err(e) => {
                let field = match &e {
                    Error::InvalidConfig { field, .. } => field.clone(),
                    _ => String::new(),
                };
                json!({"ok": false, "field": field, "error": e.to_string()})
            }
        };
        writeln!(out, "{verdict}")?;
    }
    Ok(())
}
