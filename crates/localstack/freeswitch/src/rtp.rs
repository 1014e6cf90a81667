//! Where the test calls' media goes: the sipp scenarios offer this socket's port in their SDP,
//! so FreeSWITCH sends each call's RTP here, from a port of its own. A stream (one source
//! address) is one call; its last packet says until when the call had media.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// One source's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    pub packets: u64,
    pub first: Instant,
    pub last: Instant,
}

type Streams = Arc<Mutex<HashMap<SocketAddr, Stream>>>;

/// A UDP socket on 127.0.0.1 counting what each source sends; stops when dropped.
#[derive(Debug)]
pub struct RtpSink {
    port: u16,
    streams: Streams,
    task: JoinHandle<()>,
}

impl RtpSink {
    pub async fn bind() -> Result<RtpSink> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(Error::io("binding the RTP sink"))?;
        let port = socket
            .local_addr()
            .map_err(Error::io("reading the RTP sink's address"))?
            .port();
        let streams = Streams::default();
        let task = tokio::spawn(receive(socket, streams.clone()));
        Ok(RtpSink {
            port,
            streams,
            task,
        })
    }

    /// The port to offer in the SDP (the address is 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The streams `ip` has sent, by source address.
    pub fn streams_from(&self, ip: Ipv4Addr) -> Vec<(SocketAddr, Stream)> {
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = streams
            .iter()
            .filter(|(from, _)| from.ip() == ip)
            .map(|(from, s)| (*from, *s))
            .collect();
        out.sort_by_key(|(from, _)| *from);
        out
    }
}

impl Drop for RtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(socket: UdpSocket, streams: Streams) {
    let mut buf = vec![0u8; 2048];
    while let Ok((_, from)) = socket.recv_from(&mut buf).await {
        let now = Instant::now();
        let mut streams = streams.lock().unwrap_or_else(|p| p.into_inner());
        let s = streams.entry(from).or_insert(Stream {
            packets: 0,
            first: now,
            last: now,
        });
        s.packets += 1;
        s.last = now;
    }
}
