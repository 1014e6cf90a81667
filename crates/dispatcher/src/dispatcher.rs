//! The adapter: every change is written to the table first, then applied to each Kamailio's
//! memory, then read back from each with `dispatcher.list` before it counts as done.
//!
//! The table is written once, whatever the number of Kamailio instances: it is what each of
//! them reloads from. The instances are then visited one after the other, and a failure on
//! one does not stop the visit of the next: a node being drained must leave the rotation of
//! every proxy that can be reached, even while another is down. The change is reported done
//! only when every instance confirmed it; otherwise [`DispatcherError::Kamailios`] names those
//! that did not, and a retry (every step here is idempotent) brings them in line.

use std::time::Duration;

use tracing::{debug, info, instrument, warn};

use crate::config::DispatcherConfig;
use crate::destination::{Destination, DestinationState, DestinationStatus};
use crate::error::{DispatcherError, KamailioFailure, Result};
use crate::rpc::{self, KamailioRpc, SetState};
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

/// Controls the dispatcher list of every Kamailio that reads one PostgreSQL table: the table,
/// then each instance over JSON-RPC.
#[derive(Debug)]
pub struct KamailioDispatcher {
    table: DispatcherTable,
    /// Every instance, in the order configured; never empty.
    kamailios: Vec<KamailioRpc>,
    http: reqwest::Client,
    rpc_timeout: Duration,
    verify_attempts: u32,
    verify_interval: Duration,
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

/// One client per URL: at least one, none twice, each an http(s) URL.
fn kamailios<S: AsRef<str>>(
    http: &reqwest::Client,
    urls: &[S],
    timeout: Duration,
) -> Result<Vec<KamailioRpc>> {
    let invalid = |value: String, reason| DispatcherError::InvalidInput {
        field: "rpc_urls",
        value,
        reason,
    };
    if urls.is_empty() {
        return Err(invalid(String::new(), "must name at least one Kamailio"));
    }
    let mut out: Vec<KamailioRpc> = Vec::with_capacity(urls.len());
    for url in urls.iter().map(AsRef::as_ref) {
        if out.iter().any(|k| k.url() == url) {
            return Err(invalid(url.to_string(), "names the same Kamailio twice"));
        }
        out.push(KamailioRpc::with_client(http.clone(), url, timeout)?);
    }
    Ok(out)
}

impl KamailioDispatcher {
    /// Checks the configuration; connects nothing yet.
    pub fn new(config: DispatcherConfig) -> Result<Self> {
        let http = rpc::http_client(config.rpc_timeout)?;
        Ok(Self {
            table: DispatcherTable::new(config.db, config.db_tls, config.db_timeout),
            kamailios: kamailios(&http, &config.rpc_urls, config.rpc_timeout)?,
            http,
            rpc_timeout: config.rpc_timeout,
            verify_attempts: config.verify_attempts.max(1),
            verify_interval: config.verify_interval,
        })
    }

    /// The same table and settings, with every change applied through the Kamailio instances
    /// at `rpc_urls` instead of the configured ones: for a caller that learns the list per
    /// call (the fleet's configuration). Connects nothing.
    pub fn through<S: AsRef<str>>(&self, rpc_urls: &[S]) -> Result<Self> {
        Ok(Self {
            table: self.table.clone(),
            kamailios: kamailios(&self.http, rpc_urls, self.rpc_timeout)?,
            http: self.http.clone(),
            rpc_timeout: self.rpc_timeout,
            verify_attempts: self.verify_attempts,
            verify_interval: self.verify_interval,
        })
    }

    /// The JSON-RPC URL of every Kamailio this dispatcher drives, in order.
    pub fn rpc_urls(&self) -> impl Iterator<Item = &str> {
        self.kamailios.iter().map(KamailioRpc::url)
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

    /// The first Kamailio's in-memory list, every set (another's: [`Self::through`] it alone).
    pub async fn list(&self) -> Result<Vec<DestinationState>> {
        self.kamailios[0].list().await
    }

    /// `dispatcher.reload` on every Kamailio: each rebuilds its list from the table.
    pub async fn reload(&self) -> Result<()> {
        let mut failed = Vec::new();
        for k in &self.kamailios {
            if let Err(error) = k.reload().await {
                failed.push(KamailioFailure {
                    url: k.url().to_string(),
                    error,
                });
            }
        }
        all_or_named(failed)
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

    /// Applies the change to every Kamailio and reads it back from each. Every instance is
    /// tried even after one failed; the error names each that did not confirm.
    async fn apply_and_verify(&self, d: &Destination, goal: Goal) -> Result<()> {
        let mut failed = Vec::new();
        for k in &self.kamailios {
            if let Err(error) = self.apply_and_verify_on(k, d, goal).await {
                warn!(kamailio = k.url(), %error, "kamailio did not take the change");
                failed.push(KamailioFailure {
                    url: k.url().to_string(),
                    error,
                });
            }
        }
        all_or_named(failed)
    }

    /// Applies the change to one Kamailio and reads it back, a bounded number of times. Each
    /// round applies again: a reload by someone else that read the table just before our write
    /// can undo an in-memory change.
    #[instrument(level = "debug", skip_all, fields(kamailio = k.url()))]
    async fn apply_and_verify_on(
        &self,
        k: &KamailioRpc,
        d: &Destination,
        goal: Goal,
    ) -> Result<()> {
        let mut seen = None;
        for attempt in 0..self.verify_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.verify_interval).await;
            }
            match goal {
                Goal::Listed | Goal::Unlisted => k.reload().await?,
                Goal::State(state) => {
                    // A destination not in this Kamailio's memory (its row written but never
                    // loaded here) is loaded by a reload, with the flags just persisted. It is
                    // never sent set_state: Kamailio 5.6's dispatcher answers that for a set it
                    // has not loaded with "destination set not found", and one such call took
                    // its RPC process down with a segmentation fault (seen in this project's
                    // tests), and the whole proxy with it.
                    let loaded = k
                        .list()
                        .await?
                        .iter()
                        .any(|s| s.set_id == d.set_id && s.uri == d.uri);
                    if loaded {
                        match k.set_state(state, d.set_id, &d.uri).await {
                            Ok(()) => {}
                            // Gone from memory between the two calls (a reload by someone
                            // else): load it again.
                            Err(DispatcherError::Rpc { message, .. }) => {
                                debug!(%message, "set_state refused; reloading from the table");
                                k.reload().await?;
                            }
                            Err(e) => return Err(e),
                        }
                    } else {
                        debug!("not loaded in this kamailio; reloading from the table");
                        k.reload().await?;
                    }
                }
            }
            let found = k
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

/// Done when nothing failed; otherwise every failure, each naming its Kamailio.
fn all_or_named(failed: Vec<KamailioFailure>) -> Result<()> {
    if failed.is_empty() {
        Ok(())
    } else {
        Err(DispatcherError::Kamailios { failed })
    }
}
