//! After a scale-out's Terraform build: where the new pairs run, recorded under the lock and
//! handed on as drain nodes for the health check and `resume`.

use super::journal::commit;
use crate::drain::{node_of, DrainNode};
use crate::error::{Error, Result};
use crate::fleet::{Pair, MAX_FLEET_PAIRS};
use crate::ids::{FleetName, PairId, Timestamp};
use crate::ports::{FleetStateStore, Inventory};
use crate::state::{ChangeSet, Fence};
use serde::Serialize;

/// The pairs [`discover`] recorded, as records and as drain nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Discovery {
    /// The pairs as drain nodes, for the drain's `health` and `resume`.
    pub nodes: Vec<DrainNode>,
    pub pairs: Vec<Pair>,
}

/// Find each pair's FreeSWITCH instance and ESL client service by their `pairscale:pair-id`
/// tags and record them (a fenced, journaled commit of `run`). A pair with no running instance,
/// more than one, or no service is `Pairscale.Drift` naming it; nothing is written then.
pub async fn discover(
    store: &dyn FleetStateStore,
    inventory: &dyn Inventory,
    fleet: &FleetName,
    fence: &Fence,
    run: &str,
    pair_ids: &[PairId],
    now: Timestamp,
) -> Result<Discovery> {
    if pair_ids.is_empty() || pair_ids.len() > MAX_FLEET_PAIRS as usize {
        return Err(Error::invalid(
            "pair_ids",
            pair_ids.len(),
            format!("must name 1..={MAX_FLEET_PAIRS} pairs"),
        ));
    }
    let (config, found) = futures::try_join!(store.config(fleet), inventory.snapshot(fleet))?;
    let changes = ChangeSet {
        updates: crate::validate::discover(fleet, pair_ids, &found, config.esl_port)?,
        ..ChangeSet::default()
    };
    commit(store, fleet, fence, run, &changes, now).await?;
    let pairs: Vec<Pair> = store
        .pairs(fleet)
        .await?
        .into_iter()
        .filter(|p| pair_ids.contains(&p.id))
        .collect();
    let nodes = pairs
        .iter()
        .map(|p| node_of(p, &config))
        .collect::<Result<_>>()?;
    Ok(Discovery { nodes, pairs })
}
