//! Starting nodes and steering them from tests.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{Acl, Direction, Fault, NodeConfig};
use crate::model::{CallId, CallSpec, CallTally, EndReason, Leg, Refusal, Refused};
use crate::server::{run_listener, Node};

/// Starts simulated FreeSWITCH nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Simulator;

impl Simulator {
    /// Binds `config.bind` and serves the event socket from one task. The node stops when
    /// its handle is dropped (or [`NodeHandle::shutdown`] is called).
    pub async fn spawn(config: NodeConfig) -> std::io::Result<NodeHandle> {
        let listener = TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let node = Arc::new(Node::new(&config));
        let task = tokio::spawn(run_listener(listener, node.clone(), config.heartbeat));
        Ok(NodeHandle {
            addr,
            node,
            task: Some(task),
        })
    }
}

/// A running node: its address, and the controls tests use.
#[derive(Debug)]
pub struct NodeHandle {
    addr: SocketAddr,
    node: Arc<Node>,
    task: Option<JoinHandle<()>>,
}

/// A channel as the node sees it.
pub type ChannelInfo = Leg;

impl NodeHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts a call now, subject to the pause flags and max sessions (a refusal is counted).
    pub fn add_call(&self, spec: CallSpec) -> Result<CallId, Refusal> {
        self.node.state().admit(spec, Instant::now())
    }

    /// Starts `n` calls like `spec`; returns how many were admitted.
    pub fn add_calls(&self, n: usize, spec: CallSpec) -> usize {
        let mut st = self.node.state();
        let now = Instant::now();
        (0..n).filter(|_| st.admit(spec, now).is_ok()).count()
    }

    /// What the node's canary calls measure: Some(MOS), or None for calls not answered.
    pub fn set_canary_mos(&self, mos: Option<f64>) {
        self.node.state().canary_mos = mos;
    }

    pub fn end_call(&self, id: CallId) -> bool {
        self.node.state().end_call(id)
    }

    /// Hangs up everything (not through `hupall`); returns the channels cut.
    pub fn end_all(&self) -> u64 {
        self.node.state().end_all()
    }

    pub fn channel_count(&self) -> u64 {
        self.node.state().channel_count()
    }

    pub fn call_count(&self) -> u64 {
        self.node.state().call_count()
    }

    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.node.state().legs().cloned().collect()
    }

    /// Calls refused since start or the last restart, by reason.
    pub fn refused(&self) -> Refused {
        self.node.state().refused
    }

    pub fn refused_count(&self) -> u64 {
        self.refused().total()
    }

    pub fn paused(&self, direction: Direction) -> bool {
        self.node.state().paused(direction)
    }

    /// Sets a pause flag directly, as `fsctl pause|resume <direction>` would.
    pub fn set_paused(&self, direction: Direction, paused: bool) {
        let mut st = self.node.state();
        match direction {
            Direction::Inbound => st.pause_inbound = paused,
            Direction::Outbound => st.pause_outbound = paused,
        }
    }

    /// Channels cut by `hupall` since start or the last restart.
    pub fn hupall_channels(&self) -> u64 {
        self.node.state().hupall_channels
    }

    pub fn sessions_since_startup(&self) -> u64 {
        self.node.state().sessions_since_startup
    }

    pub fn set_fault(&self, fault: Fault) {
        self.node.state().fault = fault;
    }

    pub fn fault(&self) -> Fault {
        self.node.state().fault
    }

    /// Applies to connections accepted from now on.
    pub fn set_acl(&self, acl: Acl) {
        *self.node.acl.lock().unwrap_or_else(|p| p.into_inner()) = acl;
    }

    pub fn set_idle_cpu(&self, idle: f64) {
        self.node.state().idle_cpu = idle;
    }

    /// A FreeSWITCH restart: every call dropped, pause flags lost, counters and uptime reset,
    /// open event socket connections closed. The port stays the same.
    pub fn restart(&self) {
        self.node.state().restart(Instant::now());
        self.node.generation.send_modify(|g| *g += 1);
    }

    /// Every call admitted since spawn, and how each one that ended ended.
    pub fn call_tally(&self) -> CallTally {
        self.node.state().tally
    }

    /// Ends the calls still up as the node's process going away does, and returns the
    /// final tally.
    pub fn shut_down_calls(&self) -> CallTally {
        let mut st = self.node.state();
        st.end_all_because(EndReason::Shutdown);
        st.tally
    }

    /// Event socket connections open now.
    pub fn connections(&self) -> usize {
        self.node.connections.load(Ordering::Relaxed)
    }

    /// Event socket connections accepted since spawn.
    pub fn accepted(&self) -> u64 {
        self.node.accepted.load(Ordering::Relaxed)
    }

    /// Stops listening and closes every connection.
    pub async fn shutdown(mut self) {
        let _ = self.node.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        let _ = self.node.shutdown.send(true);
    }
}

/// Many nodes in one process, each on its own loopback port.
#[derive(Debug)]
pub struct Fleet {
    nodes: Vec<NodeHandle>,
}

impl Fleet {
    /// Starts `n` nodes; `config(i)` sets up node `i`.
    pub async fn spawn(
        n: usize,
        mut config: impl FnMut(usize) -> NodeConfig,
    ) -> std::io::Result<Fleet> {
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            nodes.push(Simulator::spawn(config(i)).await?);
        }
        Ok(Fleet { nodes })
    }

    pub fn nodes(&self) -> &[NodeHandle] {
        &self.nodes
    }

    pub fn node(&self, i: usize) -> Option<&NodeHandle> {
        self.nodes.get(i)
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(NodeHandle::addr).collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub async fn shutdown(self) {
        for n in self.nodes {
            n.shutdown().await;
        }
    }
}
