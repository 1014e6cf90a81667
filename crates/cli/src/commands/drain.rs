//! `pairscale drain` and `undrain`: one node out of rotation for maintenance, and back.
//!
//! Node level only: the drain function's `quiesce` (dispatcher disabled, FreeSWITCH paused
//! both ways), then `check` until the node has no channel or the deadline passes; `undrain`
//! is its `resume`. The pair record is not changed: marking it `draining` would need a run's
//! journal and would make validation report drift for as long as the maintenance lasts. The
//! fleet's lock is held (owner `cli:<user>`) while the command works, so no scaling run
//! quiesces, resumes or removes the same node at the same time; it is released at the end,
//! on an error and on Ctrl-C.

use super::{Ctx, Outcome};
use crate::args::{DrainArgs, PairArgs};
use crate::error::{CliError, Result};
use crate::render::{duration, Style, View};
use crate::settings::{fleet, now};
use crate::status_line::StatusLine;
use pairscale_core::drain::{node_of, DrainNode};
use pairscale_core::lock::{MAX_TTL_SECS, MIN_TTL_SECS};
use pairscale_core::ports::{AcquireLock, LockStore};
use pairscale_core::{FleetName, Owner, PairId, PairStatus};
use serde::Serialize;
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct DrainView {
    pub fleet: FleetName,
    pub pair_id: PairId,
    /// `drained` or `resumed`.
    pub outcome: &'static str,
    pub channels: Option<u64>,
    pub took_seconds: u64,
    /// The function's last answer.
    pub result: Value,
}

impl View for DrainView {
    fn json(&self) -> Value {
        json!(self)
    }

    fn table(&self, style: &Style) -> String {
        match self.outcome {
            "drained" => format!(
                "{} {} of fleet {} in {}: out of rotation and paused, no calls left.\nIt stays so until: pairscale undrain --fleet {} --pair {}\n",
                style.good("Drained"),
                self.pair_id,
                self.fleet,
                duration(self.took_seconds as i64 * 1000),
                self.fleet,
                self.pair_id
            ),
            _ => format!(
                "{} {} of fleet {}: it takes calls again and is back in rotation.\n",
                style.good("Resumed"),
                self.pair_id,
                self.fleet
            ),
        }
    }
}

/// The node of one active pair, from its record and the fleet configuration.
async fn node(
    ctx: &Ctx,
    a: &PairArgs,
) -> Result<(FleetName, DrainNode, pairscale_core::FleetConfig)> {
    let s = &ctx.settings;
    let fleet = fleet(s, &a.fleet.fleet)?;
    let err = s.core_error(Some(&fleet));
    let pair_id = PairId::parse(&a.pair).map_err(&err)?;
    let params = ctx.aws.params(s);
    let table = ctx.aws.fleet_table(s)?;
    let (config, pairs) =
        tokio::try_join!(params.config(&fleet), table.pairs(&fleet)).map_err(&err)?;
    let pair = pairs.iter().find(|p| p.id == pair_id).ok_or_else(|| {
        CliError::usage(
            format!("fleet '{fleet}' has no pair {pair_id}"),
            Some(format!("pairscale status --fleet {fleet} lists its pairs")),
        )
    })?;
    if pair.status != PairStatus::Active {
        return Err(CliError::failed(
            format!(
                "{pair_id} is {}: only an active pair is drained or undrained by hand",
                pair.status.as_str()
            ),
            Some(format!(
                "a scaling run is working on it, or did: pairscale status --fleet {fleet}"
            )),
        ));
    }
    if pair.protected {
        return Err(CliError::failed(
            format!("{pair_id} is protected: the drain function refuses to quiesce or resume it"),
            None,
        ));
    }
    let node = node_of(pair, &config).map_err(&err)?;
    Ok((fleet, node, config))
}

/// The fleet's lock, held for one command.
struct Held<'a> {
    ctx: &'a Ctx,
    fleet: FleetName,
    owner: Owner,
    /// The lock's fencing token: the drain function acts on nodes only for the holder.
    token: u64,
    ttl: u64,
}

impl<'a> Held<'a> {
    async fn take(ctx: &'a Ctx, fleet: &FleetName, what: Value, ttl: u64) -> Result<Held<'a>> {
        let s = &ctx.settings;
        let owner = Owner::parse(&s.owner()).map_err(s.core_error(Some(fleet)))?;
        let grant = ctx
            .aws
            .locks(s)?
            .acquire(&AcquireLock {
                fleet: fleet.clone(),
                owner: owner.clone(),
                ttl_secs: ttl,
                request: what.to_string(),
                now: now(),
            })
            .await
            .map_err(s.core_error(Some(fleet)))?;
        Ok(Held {
            ctx,
            fleet: fleet.clone(),
            owner,
            token: grant.token,
            ttl,
        })
    }

    /// `input` with the fleet, the owner and the token a node action is fenced by.
    fn fenced(&self, mut input: Value) -> Value {
        if let Some(o) = input.as_object_mut() {
            o.insert("fleet".into(), json!(self.fleet));
            o.insert("owner".into(), json!(self.owner));
            o.insert("token".into(), json!(self.token));
        }
        input
    }

    async fn heartbeat(&self) -> Result<()> {
        let s = &self.ctx.settings;
        self.ctx
            .aws
            .locks(s)?
            .heartbeat(&self.fleet, &self.owner, self.ttl, now())
            .await
            .map(|_| ())
            .map_err(s.core_error(Some(&self.fleet)))
    }

    async fn release(self) {
        let s = &self.ctx.settings;
        let released = match self.ctx.aws.locks(s) {
            Ok(l) => l.release(&self.fleet, &self.owner, now()).await.map(|_| ()),
            Err(_) => Ok(()),
        };
        if let Err(e) = released {
            eprintln!(
                "warning: the lock of fleet '{}' was not released ({e}); it expires by itself within {}, or: pairscale lock break --fleet {} --force --reason '...'",
                self.fleet,
                duration(self.ttl as i64 * 1000),
                self.fleet
            );
        }
    }
}

/// `work`, unless Ctrl-C comes first (the caller then releases the lock all the same).
async fn interruptible(
    work: impl std::future::Future<Output = Result<Outcome>>,
) -> Result<Outcome> {
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => {
            if std::io::stderr().is_terminal() {
                eprintln!();
            }
            Err(CliError::failed(
            "interrupted: what was done stays done (a quiesced node stays out of rotation)",
            Some("run the command again to finish, or pairscale undrain to put the node back".to_string()),
        ))
        }
    }
}

pub async fn drain(ctx: &Ctx, a: &DrainArgs) -> Result<Outcome> {
    let (fleet, node, config) = node(ctx, &a.pair).await?;
    let function = ctx.settings.drain_fn()?.to_string();
    let deadline = a
        .deadline
        .unwrap_or(Duration::from_secs(config.drain.deadline_seconds));
    let every = Duration::from_secs(config.drain.check_interval_seconds.clamp(1, 60));
    let ttl = (every.as_secs() * 4).clamp(MIN_TTL_SECS.max(60), MAX_TTL_SECS);
    let what = json!({"maintenance": "drain", "pair": node.pair_id, "by": ctx.settings.user});
    let held = Held::take(ctx, &fleet, what, ttl).await?;
    let target = Target {
        function: &function,
        fleet: &fleet,
        node: &node,
        kamailio_rpc_urls: config.kamailio_rpc_urls.as_ref(),
    };
    let result = interruptible(drain_node(ctx, &held, &target, deadline, every)).await;
    held.release().await;
    result
}

/// The node a maintenance drain works on, and every Kamailio of its fleet (null: the drain
/// function's own), to take it out of rotation on each.
#[derive(Clone, Copy)]
struct Target<'a> {
    function: &'a str,
    fleet: &'a FleetName,
    node: &'a DrainNode,
    kamailio_rpc_urls: Option<&'a pairscale_core::KamailioRpcUrls>,
}

async fn drain_node(
    ctx: &Ctx,
    held: &Held<'_>,
    target: &Target<'_>,
    deadline: Duration,
    every: Duration,
) -> Result<Outcome> {
    let Target {
        function,
        fleet,
        node,
        kamailio_rpc_urls,
    } = *target;
    let tty = std::io::stderr().is_terminal();
    let style = Style {
        color: ctx.settings.style.color && tty,
    };
    let mut status = StatusLine::for_stderr(tty);
    let begun = Instant::now();
    let nodes = json!([node]);
    ctx.invoke(
        function,
        &held.fenced(
            json!({"action": "quiesce", "nodes": nodes, "kamailio_rpc_urls": kamailio_rpc_urls}),
        ),
        fleet,
    )
    .await?;
    eprintln!(
        "{} is out of rotation and paused; waiting for its calls to end (deadline in {})",
        node.pair_id,
        duration(deadline.as_millis() as i64)
    );
    loop {
        held.heartbeat().await?;
        let answer = ctx
            .invoke(function, &json!({"action": "check", "nodes": nodes}), fleet)
            .await?;
        let seen = &answer["nodes"][0];
        let channels = seen["channels"].as_u64();
        let elapsed = begun.elapsed();
        if channels == Some(0) {
            status.finish();
            return Ok(Outcome::ok(DrainView {
                fleet: fleet.clone(),
                pair_id: node.pair_id,
                outcome: "drained",
                channels: Some(0),
                took_seconds: elapsed.as_secs(),
                result: answer,
            }));
        }
        let what = match channels {
            Some(c) => format!("{c} channel(s) left"),
            None => format!(
                "{} ({})",
                style.bad("not counted"),
                seen["error"]["errorMessage"]
                    .as_str()
                    .unwrap_or("no answer")
            ),
        };
        status.show(
            &what,
            &format!(
                "[{}] {}: {what}, deadline in {}",
                duration(elapsed.as_millis() as i64),
                node.pair_id,
                duration(deadline.saturating_sub(elapsed).as_millis() as i64)
            ),
        );
        if elapsed >= deadline {
            status.finish();
            return Err(CliError::TimedOut {
                message: format!(
                    "{} still has {} channel(s) after {}; it stays out of rotation (it takes no new calls)",
                    node.pair_id,
                    channels.map(|c| c.to_string()).unwrap_or_else(|| "uncounted".into()),
                    duration(deadline.as_millis() as i64)
                ),
                hint: Some(format!(
                    "wait longer: pairscale drain --fleet {fleet} --pair {p} --deadline 1h; or put it back: pairscale undrain --fleet {fleet} --pair {p}",
                    p = node.pair_id
                )),
            });
        }
        tokio::time::sleep(
            every
                .min(deadline.saturating_sub(elapsed))
                .max(Duration::from_secs(1)),
        )
        .await;
    }
}

pub async fn undrain(ctx: &Ctx, a: &PairArgs) -> Result<Outcome> {
    let (fleet, node, config) = node(ctx, a).await?;
    let function = ctx.settings.drain_fn()?.to_string();
    let what = json!({"maintenance": "undrain", "pair": node.pair_id, "by": ctx.settings.user});
    let held = Held::take(ctx, &fleet, what, 60).await?;
    let result = interruptible(async {
        let answer = ctx
            .invoke(
                &function,
                &held.fenced(
                    json!({"action": "resume", "nodes": [node], "kamailio_rpc_urls": config.kamailio_rpc_urls}),
                ),
                &fleet,
            )
            .await?;
        Ok(Outcome::ok(DrainView {
            fleet: fleet.clone(),
            pair_id: node.pair_id,
            outcome: "resumed",
            channels: None,
            took_seconds: 0,
            result: answer,
        }))
    })
    .await;
    held.release().await;
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_drained_node_says_how_to_bring_it_back() {
        let v = DrainView {
            fleet: FleetName::parse("voice").unwrap(),
            pair_id: PairId::new(3).unwrap(),
            outcome: "drained",
            channels: Some(0),
            took_seconds: 75,
            result: json!({"total_channels": 0}),
        };
        let t = v.table(&Style::default());
        assert_eq!(
            t,
            "Drained pair-0003 of fleet voice in 1m 15s: out of rotation and paused, no calls left.\nIt stays so until: pairscale undrain --fleet voice --pair pair-0003\n"
        );
        let j = v.json();
        assert_eq!(j["pair_id"], "pair-0003");
        assert_eq!(j["outcome"], "drained");
        assert_eq!(j["channels"], 0);
    }
}
