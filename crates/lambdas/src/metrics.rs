//! Fleet metrics as CloudWatch embedded-metric-format (EMF) log lines: one JSON object per
//! line on stdout, which CloudWatch Logs turns into metrics. No SDK call, no IAM beyond logs,
//! nothing on the hot path but a line of output. The orchestrator's dashboard reads them
//! (`terraform/modules/orchestrator/events.tf`): `LockAgeSeconds` from the lock function,
//! `DrainsInProgress` from the state function and `CallQualityMos` from the drain function,
//! each with dimension `Fleet`.

use pairscale_core::{FleetName, Timestamp};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub const LOCK_AGE_SECONDS: &str = "LockAgeSeconds";
pub const DRAINS_IN_PROGRESS: &str = "DrainsInProgress";
/// The fleet's call quality (median MOS of canary calls), from the drain function.
pub const CALL_QUALITY_MOS: &str = "CallQualityMos";
/// From the drain function's `sample`, every minute: one value per active pair read (so the
/// metric's Average is the fleet's channels per pair and its Maximum the busiest pair's)...
pub const CHANNELS_PER_PAIR: &str = "ChannelsPerPair";
/// ...the channels up on the whole fleet...
pub const CHANNELS: &str = "Channels";
/// ...and, with `pair_capacity_channels`, those channels as a percentage of what the pairs
/// read can carry.
pub const CAPACITY_UTILIZATION: &str = "CapacityUtilization";
/// ...and the calls that arrived on the fleet a minute, when every pair read has a sample
/// before this one (the policy's offered load: arrivals times the mean call length).
pub const CALL_ARRIVALS: &str = "CallArrivals";

/// Where metric lines go.
#[derive(Clone)]
enum Sink {
    Stdout,
    /// Tests read them back.
    Memory(Arc<Mutex<Vec<Value>>>),
}

#[derive(Clone)]
pub struct Metrics {
    namespace: String,
    sink: Sink,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metric lines on stdout, where Lambda sends them to CloudWatch Logs.
    pub fn stdout(namespace: impl Into<String>) -> Metrics {
        Metrics {
            namespace: namespace.into(),
            sink: Sink::Stdout,
        }
    }

    /// Metric lines kept in memory, for tests: the handle reads them.
    pub fn memory(namespace: impl Into<String>) -> (Metrics, Arc<Mutex<Vec<Value>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (
            Metrics {
                namespace: namespace.into(),
                sink: Sink::Memory(lines.clone()),
            },
            lines,
        )
    }

    /// One value of one metric for one fleet.
    pub fn put(&self, fleet: &FleetName, name: &str, value: f64, unit: &str, now: Timestamp) {
        let line = emf(&self.namespace, fleet, name, value, unit, now);
        match &self.sink {
            Sink::Stdout => println!("{line}"),
            Sink::Memory(lines) => {
                if let Ok(mut l) = lines.lock() {
                    l.push(line);
                }
            }
        }
    }
}

/// The EMF document for one value.
pub fn emf(
    namespace: &str,
    fleet: &FleetName,
    name: &str,
    value: f64,
    unit: &str,
    now: Timestamp,
) -> Value {
    json!({
        "_aws": {
            "Timestamp": now.millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Fleet"]],
                "Metrics": [{"Name": name, "Unit": unit}],
            }],
        },
        "Fleet": fleet.as_str(),
        name: value,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_value_is_an_emf_document_with_the_fleet_dimension() {
        let fleet = FleetName::parse("voice-eu").unwrap();
        let (m, lines) = Metrics::memory("Pairscale");
        m.put(
            &fleet,
            LOCK_AGE_SECONDS,
            42.5,
            "Seconds",
            Timestamp(1_795_000_000_000),
        );
        let lines = lines.lock().unwrap();
        assert_eq!(
            lines[0],
            json!({"_aws": {"Timestamp": 1_795_000_000_000_i64, "CloudWatchMetrics": [{
                       "Namespace": "Pairscale", "Dimensions": [["Fleet"]],
                       "Metrics": [{"Name": "LockAgeSeconds", "Unit": "Seconds"}]}]},
                   "Fleet": "voice-eu", "LockAgeSeconds": 42.5})
        );
    }
}
