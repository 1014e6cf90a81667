//! `pairscale status`: the desired count, every pair, the lock, and the last runs.

use super::lock::{holder_status, LockSummary};
use super::runs::status_name;
use super::{Ctx, Outcome};
use crate::args::StatusArgs;
use crate::error::Result;
use crate::render::{or_dash, relative, when, Style, Table, View};
use crate::settings::{fleet, now};
use pairscale_aws::sfn::RunSummary;
use pairscale_core::canary::MeasuredBy;
use pairscale_core::drain::node_of;
use pairscale_core::ports::LockStore;
use pairscale_core::{FleetName, Pair, PairStatus, QualityReading, Timestamp};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct PairRow {
    pub pair_id: String,
    pub status: PairStatus,
    pub address: Option<String>,
    pub instance_id: Option<String>,
    pub protected: bool,
    pub channels: Option<u64>,
    /// `live`, or `last_seen` (the record's last count), or `unreachable`.
    pub channels_source: &'static str,
    pub channels_seen_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExecutionRow {
    pub name: String,
    pub execution_arn: String,
    pub status: String,
    pub start: Option<i64>,
    pub stop: Option<i64>,
}

impl ExecutionRow {
    fn of(run: &RunSummary) -> ExecutionRow {
        ExecutionRow {
            name: run.name.clone(),
            execution_arn: run.execution_arn.clone(),
            status: status_name(run.status),
            start: Some(run.started_at.millis()),
            stop: run.stopped_at.map(Timestamp::millis),
        }
    }

    /// Its name, status and times, as the table shows them.
    fn cells(&self, now: Timestamp, style: &Style) -> Vec<String> {
        vec![
            self.name.clone(),
            style.status(&self.status),
            or_dash(self.start.map(|t| when(Timestamp(t), now))),
            or_dash(self.stop.map(|t| Timestamp(t).rfc3339())),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct StatusView {
    pub fleet: FleetName,
    pub desired: u32,
    pub pairs: Vec<PairRow>,
    pub live: bool,
    pub lock: LockSummary,
    /// The newest runs, or why they are not shown.
    pub executions: std::result::Result<Vec<ExecutionRow>, String>,
    /// The fleet's call quality as the last scale-in measured it.
    pub quality: Option<QualityReading>,
    pub now: Timestamp,
}

pub async fn run(ctx: &Ctx, a: &StatusArgs) -> Result<Outcome> {
    let s = &ctx.settings;
    let fleet = fleet(s, &a.fleet.fleet)?;
    let err = s.core_error(Some(&fleet));
    let params = ctx.aws.params(s);
    let table = ctx.aws.fleet_table(s)?;
    let locks = ctx.aws.locks(s)?;
    let (desired, pairs, lock, meta) = tokio::try_join!(
        params.pair_count(&fleet),
        table.pairs(&fleet),
        locks.get(&fleet),
        table.meta(&fleet)
    )
    .map_err(&err)?;
    let t = now();
    let mut rows: Vec<PairRow> = pairs.iter().map(row_of).collect();
    if a.live {
        let config = params.config(&fleet).await.map_err(&err)?;
        live_channels(ctx, &fleet, &pairs, &config, &mut rows).await?;
    }
    let holder = holder_status(ctx, lock.as_ref()).await;
    let executions = match s.state_machine() {
        Ok(machine) => last_executions(ctx, machine).await,
        Err(_) => Err(
            "not shown: pass --state-machine-arn or set PAIRSCALE_STATE_MACHINE_ARN".to_string(),
        ),
    };
    Ok(Outcome::ok(StatusView {
        lock: LockSummary::of(lock.as_ref(), holder, t),
        fleet,
        desired,
        pairs: rows,
        live: a.live,
        executions,
        quality: meta.quality,
        now: t,
    }))
}

fn row_of(p: &Pair) -> PairRow {
    PairRow {
        pair_id: p.id.to_string(),
        status: p.status,
        address: p.private_ip.clone().or_else(|| p.esl_endpoint.clone()),
        instance_id: p.instance_id.clone(),
        protected: p.protected,
        channels: p.last_channels.map(u64::from),
        channels_source: "last_seen",
        channels_seen_at: p.last_seen_at,
        error: None,
    }
}

/// Live counts through the drain function's `select`, which only reads: every pair that has
/// an address is sent (marked unprotected, so that protected pairs are read too), and the
/// channels of each come back in its ranking.
async fn live_channels(
    ctx: &Ctx,
    fleet: &FleetName,
    pairs: &[Pair],
    config: &pairscale_core::FleetConfig,
    rows: &mut [PairRow],
) -> Result<()> {
    let function = ctx.settings.drain_fn()?;
    let nodes: Vec<_> = pairs
        .iter()
        .filter(|p| p.esl_endpoint.is_some() && p.private_ip.is_some())
        .filter_map(|p| node_of(p, config).ok())
        .map(|mut n| {
            n.protected = false;
            n
        })
        .collect();
    if nodes.is_empty() {
        return Ok(());
    }
    let answer = ctx
        .invoke(
            function,
            &json!({"action": "select", "nodes": nodes, "remove": nodes.len(), "race_spares": 0}),
            fleet,
        )
        .await?;
    let mut seen: BTreeMap<String, std::result::Result<u64, String>> = BTreeMap::new();
    for c in answer["candidates"].as_array().into_iter().flatten() {
        if let (Some(id), Some(ch)) = (c["pair_id"].as_str(), c["channels"].as_u64()) {
            seen.insert(id.to_string(), Ok(ch));
        }
    }
    for u in answer["unreachable"].as_array().into_iter().flatten() {
        if let Some(id) = u["pair_id"].as_str() {
            let why = u["error"]["errorMessage"]
                .as_str()
                .unwrap_or("unreachable")
                .to_string();
            seen.insert(id.to_string(), Err(why));
        }
    }
    let t = now();
    for r in rows.iter_mut() {
        match seen.remove(&r.pair_id) {
            Some(Ok(ch)) => {
                r.channels = Some(ch);
                r.channels_source = "live";
                r.channels_seen_at = Some(t);
            }
            Some(Err(why)) => {
                r.channels = None;
                r.channels_source = "unreachable";
                r.error = Some(why);
            }
            None => {}
        }
    }
    Ok(())
}

/// The newest five runs of the state machine.
async fn last_executions(
    ctx: &Ctx,
    machine: &str,
) -> std::result::Result<Vec<ExecutionRow>, String> {
    let runs = ctx
        .aws
        .runs()
        .newest(machine, 5)
        .await
        .map_err(|e| format!("could not list executions: {e}"))?;
    Ok(runs.iter().map(ExecutionRow::of).collect())
}

impl StatusView {
    /// The last quality reading and what it means for scale-in.
    fn quality_line(&self, style: &Style) -> String {
        let Some(q) = &self.quality else {
            return style.dim(
                "not measured yet (the schedule and every scale-in measure it: canary.measure_every_minutes)",
            );
        };
        let at = relative(q.measured_at, self.now);
        let by = match q.measured_by {
            MeasuredBy::Schedule => "scheduled",
            MeasuredBy::ScaleIn => "before a scale-in",
        };
        let failed = q.nodes.iter().filter(|n| n.error.is_some()).count();
        let mut parts = Vec::new();
        if let Some(c) = q.canary_mos.filter(|_| q.operator.is_some()) {
            parts.push(format!("canary calls {c}"));
        }
        if let Some(o) = &q.operator {
            parts.push(format!("{} {}", o.metric, o.mos));
        }
        parts.push(format!("{} node(s)", q.nodes.len()));
        if failed > 0 {
            parts.push(format!("{failed} call(s) failed"));
        }
        let detail = format!("{by}, {at}, {}", parts.join(", "));
        if q.hold_scale_in {
            style.bad(&format!(
                "MOS {} below the threshold {} ({detail}): scale-in is held until it recovers",
                q.mos, q.threshold,
            ))
        } else {
            format!("MOS {} (threshold {}, {detail})", q.mos, q.threshold)
        }
    }
}

impl View for StatusView {
    fn json(&self) -> Value {
        json!({
            "fleet": self.fleet,
            "desired_count": self.desired,
            "active_count": self.pairs.iter().filter(|p| p.status == PairStatus::Active).count(),
            "pairs": self.pairs,
            "channels": if self.live { "live" } else { "last_seen" },
            "lock": self.lock,
            "executions": match &self.executions {
                Ok(rows) => json!(rows),
                Err(_) => Value::Null,
            },
            "executions_note": self.executions.as_ref().err(),
            "quality": self.quality,
        })
    }

    fn table(&self, style: &Style) -> String {
        let active = self
            .pairs
            .iter()
            .filter(|p| p.status == PairStatus::Active)
            .count();
        let mut out = format!(
            "Fleet {}: {} desired, {} active, {} record(s)\n\n",
            style.bold(self.fleet.as_str()),
            self.desired,
            active,
            self.pairs.len()
        );
        let channels_header = if self.live {
            "CHANNELS (live)"
        } else {
            "CHANNELS (last seen)"
        };
        let mut t = Table::new(&[
            "PAIR",
            "STATUS",
            "ADDRESS",
            "INSTANCE",
            channels_header,
            "PROTECTED",
        ]);
        for p in &self.pairs {
            let channels = match (p.channels, p.channels_source, &p.channels_seen_at) {
                (_, "unreachable", _) => style.bad("unreachable"),
                (Some(c), "live", _) => c.to_string(),
                (Some(c), _, Some(at)) => format!("{c} ({})", relative(*at, self.now)),
                (Some(c), _, None) => c.to_string(),
                (None, _, _) => "-".into(),
            };
            t.row(vec![
                p.pair_id.clone(),
                style.status(p.status.as_str()),
                or_dash(p.address.as_ref()),
                or_dash(p.instance_id.as_ref()),
                channels,
                if p.protected {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]);
        }
        if t.is_empty() {
            out.push_str("No pairs.\n");
        } else {
            out.push_str(&t.render(style));
        }
        if !self.live {
            out.push_str(
                &style.dim("(channel counts are the last ones recorded; --live asks the nodes)\n"),
            );
        }
        out.push('\n');
        out.push_str(&format!("Lock: {}\n", self.lock.line(style, self.now)));
        out.push_str(&format!("Call quality: {}\n", self.quality_line(style)));
        out.push('\n');
        match &self.executions {
            Ok(rows) if rows.is_empty() => out.push_str("Last executions: none\n"),
            Ok(rows) => {
                out.push_str("Last executions:\n");
                let mut t = Table::new(&["NAME", "STATUS", "STARTED", "STOPPED"]);
                for r in rows {
                    t.row(r.cells(self.now, style));
                }
                out.push_str(&t.render(style));
            }
            Err(why) => out.push_str(&format!("Last executions: {why}\n")),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pairscale_core::lock::LockRecord;
    use pairscale_core::PairId;

    fn view() -> StatusView {
        let now = Timestamp(1_795_000_000_000);
        let mut p1 = Pair::new(PairId::new(1).unwrap(), PairStatus::Active, Timestamp(0));
        p1.private_ip = Some("10.0.1.10".into());
        p1.instance_id = Some("i-0abc".into());
        p1.last_channels = Some(37);
        p1.last_seen_at = Some(Timestamp(now.millis() - 60_000));
        let mut p2 = Pair::new(PairId::new(2).unwrap(), PairStatus::Draining, Timestamp(0));
        p2.protected = true;
        let fleet = FleetName::parse("voice-eu").unwrap();
        let lock = LockRecord {
            fleet: fleet.clone(),
            holder: Some("arn:aws:states:us-east-1:1:execution:m:voice-eu-in-1".into()),
            token: 7,
            acquired_at: Timestamp(now.millis() - 192_000),
            expires_at: Timestamp(now.millis() + 600_000),
            heartbeat_at: None,
            request: None,
            released_at: None,
            broken: None,
        };
        StatusView {
            lock: LockSummary::of(Some(&lock), Some("RUNNING".into()), now),
            fleet,
            desired: 2,
            pairs: vec![row_of(&p1), row_of(&p2)],
            live: false,
            executions: Ok(vec![ExecutionRow {
                name: "voice-eu-in-1".into(),
                execution_arn: "arn:aws:states:us-east-1:1:execution:m:voice-eu-in-1".into(),
                status: "RUNNING".into(),
                start: Some(now.millis() - 192_000),
                stop: None,
            }]),
            quality: None,
            now,
        }
    }

    #[test]
    fn status_shows_pairs_lock_and_runs() {
        let t = view().table(&Style::default());
        assert!(
            t.starts_with("Fleet voice-eu: 2 desired, 1 active, 2 record(s)\n"),
            "{t}"
        );
        assert!(
            t.contains("pair-0001  active    10.0.1.10  i-0abc    37 (1m 00s ago)"),
            "{t}"
        );
        assert!(t.contains("pair-0002  draining  -"), "{t}");
        assert!(t.contains("Lock: held by arn:aws:states:us-east-1:1:execution:m:voice-eu-in-1 (RUNNING) for 3m 12s, token 7, expires in 10m 00s"), "{t}");
        assert!(t.contains("voice-eu-in-1  RUNNING"), "{t}");
        assert!(t.contains("--live"), "{t}");
    }

    #[test]
    fn status_json_carries_the_same() {
        let j = view().json();
        assert_eq!(j["desired_count"], 2);
        assert_eq!(j["active_count"], 1);
        assert_eq!(j["pairs"][0]["channels"], 37);
        assert_eq!(j["pairs"][0]["channels_source"], "last_seen");
        assert_eq!(j["pairs"][1]["status"], "draining");
        assert_eq!(j["lock"]["held"], true);
        assert_eq!(j["lock"]["holder_status"], "RUNNING");
        assert_eq!(j["lock"]["age_seconds"], 192);
        assert_eq!(j["executions"][0]["status"], "RUNNING");
        assert_eq!(j["quality"], Value::Null);
    }

    #[test]
    fn status_says_when_scale_in_is_held_for_quality() {
        let mut v = view();
        assert!(v
            .table(&Style::default())
            .contains("Call quality: not measured yet"));
        let node = |id: u32, mos: Option<f64>| pairscale_core::canary::NodeQuality {
            pair_id: PairId::new(id).unwrap(),
            mos: mos.and_then(pairscale_core::Mos::from_f64),
            error: mos.is_none().then(|| "not answered".into()),
        };
        let threshold = pairscale_core::Mos::from_f64(3.5).unwrap();
        let at = Timestamp(v.now.millis() - 120_000);
        v.quality = QualityReading::of(
            vec![node(1, Some(3.1)), node(2, None), node(3, Some(4.4))],
            threshold,
            at,
        );
        let t = v.table(&Style::default());
        assert!(
            t.contains("Call quality: MOS 3.10 below the threshold 3.50 (before a scale-in, 2m 00s ago, 3 node(s), 1 call(s) failed): scale-in is held until it recovers"),
            "{t}"
        );
        assert_eq!(v.json()["quality"]["hold_scale_in"], true);
        v.quality = QualityReading::of(vec![node(1, Some(4.4))], threshold, at)
            .map(|r| r.by(MeasuredBy::Schedule));
        let t = v.table(&Style::default());
        assert!(
            t.contains("Call quality: MOS 4.40 (threshold 3.50, scheduled, 2m 00s ago, 1 node(s))"),
            "{t}"
        );
        // The operator's metric, worse than the calls, is the figure; both are shown.
        v.quality = QualityReading::combined(
            vec![node(1, Some(4.4))],
            Some(pairscale_core::canary::OperatorReading {
                metric: "Voice/CallMos".into(),
                mos: pairscale_core::Mos::from_f64(3.3).unwrap(),
            }),
            threshold,
            at,
        );
        let t = v.table(&Style::default());
        assert!(
            t.contains("Call quality: MOS 3.30 below the threshold 3.50 (before a scale-in, 2m 00s ago, canary calls 4.40, Voice/CallMos 3.30, 1 node(s)): scale-in is held"),
            "{t}"
        );
    }
}
