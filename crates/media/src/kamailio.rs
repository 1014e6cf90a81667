//! `Dispatcher` over `pairscale-dispatcher`: the table in PostgreSQL and the memory of every
//! Kamailio that reads it, every change confirmed on each with `dispatcher.list`. The
//! instances are those the destination names (the fleet's `kamailio_rpc_urls`, per call), or
//! else the adapter's own (`PAIRSCALE_KAMAILIO_RPC_URL`).

use async_trait::async_trait;
use pairscale_core::ports::{Dispatcher, SipDestination};
use pairscale_core::{Error, Result};
use pairscale_dispatcher::{Destination, DispatcherError, KamailioDispatcher};
use tracing::instrument;

/// Kamailio's dispatcher list as the core's [`Dispatcher`].
#[derive(Debug)]
pub struct KamailioNodes {
    inner: KamailioDispatcher,
}

impl KamailioNodes {
    pub fn new(inner: KamailioDispatcher) -> Self {
        KamailioNodes { inner }
    }

    /// The adapter underneath, for `list` and `reload`.
    pub fn inner(&self) -> &KamailioDispatcher {
        &self.inner
    }

    /// The adapter for `node`'s change: through the Kamailio instances it names, if any.
    fn through(&self, node: &SipDestination) -> Result<Through<'_>> {
        match &node.proxies {
            None => Ok(Through::Own(&self.inner)),
            Some(urls) => self
                .inner
                .through(urls.as_slice())
                .map(|d| Through::Named(Box::new(d)))
                .map_err(|e| map(node, "configure", e)),
        }
    }
}

enum Through<'a> {
    Own(&'a KamailioDispatcher),
    Named(Box<KamailioDispatcher>),
}

impl std::ops::Deref for Through<'_> {
    type Target = KamailioDispatcher;

    fn deref(&self) -> &KamailioDispatcher {
        match self {
            Through::Own(d) => d,
            Through::Named(d) => d,
        }
    }
}

fn destination(node: &SipDestination) -> Result<Destination> {
    let set_id = i32::try_from(node.set_id)
        .map_err(|_| Error::invalid("set_id", node.set_id, "must fit a 32-bit signed integer"))?;
    Destination::new(set_id, node.uri.clone(), node.pair_id.to_string())
        .map_err(|e| map(node, "validate", e))
}

/// Bad input is the request's fault; what may pass is retryable; the rest is the
/// dispatcher's refusal. A Kamailio that failed is named in the message by its URL.
fn map(node: &SipDestination, operation: &str, e: DispatcherError) -> Error {
    match e {
        DispatcherError::InvalidInput {
            field,
            value,
            reason,
        } => Error::invalid(field, value, reason),
        e if e.is_retryable() => Error::Retryable {
            operation: format!("dispatcher {operation} {}", node.uri),
            message: e.to_string(),
        },
        e => Error::Dispatcher {
            destination: format!("{} (set {}, {})", node.uri, node.set_id, node.pair_id),
            message: e.to_string(),
        },
    }
}

#[async_trait]
impl Dispatcher for KamailioNodes {
    #[instrument(skip(self), fields(pair_id = %node.pair_id, uri = %node.uri))]
    async fn register(&self, node: &SipDestination) -> Result<()> {
        let d = destination(node)?;
        self.through(node)?
            .register(&d)
            .await
            .map(|_| ())
            .map_err(|e| map(node, "register", e))
    }

    #[instrument(skip(self), fields(pair_id = %node.pair_id, uri = %node.uri))]
    async fn disable(&self, node: &SipDestination) -> Result<()> {
        let d = destination(node)?;
        self.through(node)?
            .disable(&d)
            .await
            .map_err(|e| map(node, "disable", e))
    }

    #[instrument(skip(self), fields(pair_id = %node.pair_id, uri = %node.uri))]
    async fn enable(&self, node: &SipDestination) -> Result<()> {
        let d = destination(node)?;
        self.through(node)?
            .enable(&d)
            .await
            .map_err(|e| map(node, "enable", e))
    }

    #[instrument(skip(self), fields(pair_id = %node.pair_id, uri = %node.uri))]
    async fn deregister(&self, node: &SipDestination) -> Result<()> {
        let d = destination(node)?;
        self.through(node)?
            .deregister(&d)
            .await
            .map(|_| ())
            .map_err(|e| map(node, "deregister", e))
    }
}
