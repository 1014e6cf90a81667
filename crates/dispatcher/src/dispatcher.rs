//! The adapter: every change is written to the table first, then applied to Kamailio's memory,
//! then read back with `dispatcher.list` before it counts as done.

use tracing::{debug, info, instrument, warn};

use crate::config::DispatcherConfig;
use crate::destination::{Destination, DestinationState, DestinationStatus};
use crate::error::{DispatcherError, Result};
use crate::rpc::{KamailioRpc, SetState};
use crate::table::{DispatcherTable, Insert, Keyed};

/// Outcome of [`KamailioDispatcher::register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// A new row was written.
    Inserted,
    /// The row was already there for this pair; its flags were left as they were.
    AlreadyPresent,
}

/// Outcome of [`KamailioDispatcher::deregister`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeregisterOutcome {
    Removed,
    /// There was no row for this pair: nothing to do.
    AlreadyAbsent,
}

/// Controls one Kamailio's dispatcher list through its PostgreSQL table and JSON-RPC.
#[derive(Debug)]
pub struct KamailioDispatcher {
    table: DispatcherTable,
    rpc: KamailioRpc,
    verify_attempts: u32,
    verify_interval: std::time::Duration,
}

/// What a change must look like in `dispatcher.list`.
#[derive(Debug, Clone, Copy)]
enum Goal {
    Listed,
    Unlisted,
    State(SetState),
}

impl Goal {
    fn describe(self) -> &'static str {
        match self {
            Self::Listed => "listed",
            Self::Unlisted => "not listed",
            Self::State(SetState::Active) => "active",
            Self::State(SetState::Disabled) => "disabled",
        }
    }

    fn met_by(self, seen: Option<&DestinationState>) -> bool {
        match (self, seen) {
            (Self::Listed, Some(_)) | (Self::Unlisted, None) => true,
            (Self::State(SetState::Active), Some(s)) => s.status == DestinationStatus::Active,
            (Self::State(SetState::Disabled), Some(s)) => s.status == DestinationStatus::Disabled,
            _ => false,
        }
    }
}

impl KamailioDispatcher {
    /// Checks the configuration; connects nothing yet.
    pub fn new(config: DispatcherConfig) -> Result<Self> {
        Ok(Self {
            table: DispatcherTable::new(config.db, config.db_timeout),
            rpc: KamailioRpc::new(config.rpc_url, config.rpc_timeout)?,
            verify_attempts: config.verify_attempts.max(1),
            verify_interval: config.verify_interval,
        })
    }

    /// Adds the destination if absent (keyed on set id and URI), then reloads Kamailio and
    /// checks that it lists it. Registering again is harmless and reloads again, so a retry
    /// after a failed reload converges.
    #[instrument(skip_all, fields(set_id = d.set_id, uri = %d.uri, pair_id = %d.pair_id))]
    pub async fn register(&self, d: &Destination) -> Result<RegisterOutcome> {
        d.validate()?;
        let outcome = match self.table.insert_if_absent(d).await? {
            Insert::Inserted => RegisterOutcome::Inserted,
            Insert::Existing(Some(duid)) if duid == d.pair_id => RegisterOutcome::AlreadyPresent,
            Insert::Existing(other) => {
                return Err(DispatcherError::Conflict {
                    set_id: d.set_id,
                    uri: d.uri.clone(),
                    existing_pair_id: other.unwrap_or_default(),
                })
            }
        };
        self.apply_and_verify(d, Goal::Listed).await?;
        info!(?outcome, "destination registered");
        Ok(outcome)
    }

    /// Takes the destination out of rotation: flags 4 in the table (so a reload keeps it out),
    /// state `d` in Kamailio (so it takes effect now), checked with `dispatcher.list`.
    /// Established calls are not touched.
    #[instrument(skip_all, fields(set_id = d.set_id, uri = %d.uri, pair_id = %d.pair_id))]
    pub async fn disable(&self, d: &Destination) -> Result<()> {
        self.set_rotation(d, SetState::Disabled).await?;
        info!("destination disabled");
        Ok(())
    }

    /// Puts the destination back into rotation: flags 0 and state `a`, checked.
    #[instrument(skip_all, fields(set_id = d.set_id, uri = %d.uri, pair_id = %d.pair_id))]
    pub async fn enable(&self, d: &Destination) -> Result<()> {
        self.set_rotation(d, SetState::Active).await?;
        info!("destination enabled");
        Ok(())
    }

    /// Deletes the row and reloads. A destination that is already gone is an outcome, not an
    /// error; a row at the same address that belongs to another pair is never deleted.
    #[instrument(skip_all, fields(set_id = d.set_id, uri = %d.uri, pair_id = %d.pair_id))]
    pub async fn deregister(&self, d: &Destination) -> Result<DeregisterOutcome> {
        d.validate()?;
        let outcome = match self.table.delete(d).await? {
            Keyed::Done => DeregisterOutcome::Removed,
            Keyed::Absent => DeregisterOutcome::AlreadyAbsent,
            Keyed::OtherPair(existing_pair_id) => {
                return Err(DispatcherError::Conflict {
                    set_id: d.set_id,
                    uri: d.uri.clone(),
                    existing_pair_id,
                })
            }
        };
        self.apply_and_verify(d, Goal::Unlisted).await?;
        info!(?outcome, "destination deregistered");
        Ok(outcome)
    }

    /// Kamailio's in-memory list, every set.
    pub async fn list(&self) -> Result<Vec<DestinationState>> {
        self.rpc.list().await
    }

    /// `dispatcher.reload`: rebuild Kamailio's list from the table.
    pub async fn reload(&self) -> Result<()> {
        self.rpc.reload().await
    }

    async fn set_rotation(&self, d: &Destination, state: SetState) -> Result<()> {
        d.validate()?;
        match self
            .table
            .set_disabled(d, state == SetState::Disabled)
            .await?
        {
            Keyed::Done => {}
            Keyed::Absent => {
                return Err(DispatcherError::NotRegistered {
                    set_id: d.set_id,
                    uri: d.uri.clone(),
                })
            }
            Keyed::OtherPair(existing_pair_id) => {
                return Err(DispatcherError::Conflict {
                    set_id: d.set_id,
                    uri: d.uri.clone(),
                    existing_pair_id,
                })
            }
        }
        self.apply_and_verify(d, Goal::State(state)).await
    }

    /// Applies the change to Kamailio and reads it back, a bounded number of times. Each round
    /// applies again: a reload by someone else that read the table just before our write can
    /// undo an in-memory change.
    async fn apply_and_verify(&self, d: &Destination, goal: Goal) -> Result<()> {
        let mut seen = None;
        for attempt in 0..self.verify_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.verify_interval).await;
            }
            match goal {
                Goal::Listed | Goal::Unlisted => self.rpc.reload().await?,
                Goal::State(state) => {
                    match self.rpc.set_state(state, d.set_id, &d.uri).await {
                        Ok(()) => {}
                        // Not in Kamailio's memory (the row was written but never loaded):
                        // a reload loads it with the flags just persisted.
                        Err(DispatcherError::Rpc { message, .. }) => {
                            debug!(%message, "set_state refused; reloading from the table");
                            self.rpc.reload().await?;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            let found = self
                .rpc
                .list()
                .await?
                .into_iter()
                .find(|s| s.set_id == d.set_id && s.uri == d.uri);
            if goal.met_by(found.as_ref()) {
                return Ok(());
            }
            seen = found.map(|s| s.flags);
            warn!(attempt, expected = goal.describe(), seen = ?seen, "kamailio does not show the change yet");
        }
        Err(DispatcherError::NotVerified {
            set_id: d.set_id,
            uri: d.uri.clone(),
            expected: goal.describe(),
            seen,
        })
    }
}
