//! Helpers shared by the integration tests: the capture files split into what the client sent
//! and what FreeSWITCH answered, a scripted fake server, and streams that hand bytes over in
//! deliberately small pieces.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use pairscale_esl::{Frame, Limits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

/// One direction of a capture, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Bytes the client sent (one command, through its blank line).
    Sent(Vec<u8>),
    /// One frame FreeSWITCH sent.
    Recv(Vec<u8>),
}

/// The crate's own copy of a capture (never ../shared: the crate must stand alone).
pub fn capture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.raw", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Splits a `.raw` capture (both directions interleaved, no markers). FreeSWITCH's frames all
/// start with a `Content-` header and are measured with the parser under test; everything else
/// is a client command ending in a blank line.
pub fn segments(raw: &[u8]) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut pos = 0;
    let limits = Limits::default();
    while pos < raw.len() {
        let rest = &raw[pos..];
        if rest.starts_with(b"Content-") {
            let len = Frame::check(rest, &limits)
                .expect("capture frames are valid")
                .expect("capture frames are complete");
            out.push(Segment::Recv(rest[..len].to_vec()));
            pos += len;
        } else {
            let end = rest
                .windows(2)
                .position(|w| w == b"\n\n")
                .expect("commands end with a blank line")
                + 2;
            out.push(Segment::Sent(rest[..end].to_vec()));
            pos += end;
        }
    }
    out
}

/// Every byte FreeSWITCH sent in a capture.
pub fn server_bytes(raw: &[u8]) -> Vec<u8> {
    segments(raw)
        .into_iter()
        .filter_map(|s| match s {
            Segment::Recv(b) => Some(b),
            Segment::Sent(_) => None,
        })
        .flatten()
        .collect()
}

/// Plays FreeSWITCH's side of a capture over `server`: every command the client writes must
/// be byte-for-byte the captured one; then the captured answers are written. Returns the
/// number of commands matched. Panics (failing the test) on the first difference.
pub async fn play_server(mut server: DuplexStream, script: Vec<Segment>) -> usize {
    let mut matched = 0;
    for seg in script {
        match seg {
            Segment::Sent(expected) => {
                let mut got = vec![0u8; expected.len()];
                if server.read_exact(&mut got).await.is_err() {
                    // The client hung up early (e.g. after an error): stop the script.
                    return matched;
                }
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&expected),
                    "client sent different bytes"
                );
                matched += 1;
            }
            Segment::Recv(bytes) => {
                if server.write_all(&bytes).await.is_err() {
                    return matched;
                }
            }
        }
    }
    let _ = server.shutdown().await;
    matched
}

/// Wraps a stream so that every read returns at most `max` bytes: a 376-byte `status` body
/// then reaches the parser in dozens of pieces.
#[derive(Debug)]
pub struct Trickle<S> {
    pub inner: S,
    pub max: usize,
}

impl<S: AsyncRead + Unpin> AsyncRead for Trickle<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let max = self.max.max(1).min(buf.remaining());
        let mut small = vec![0u8; max];
        let mut small_buf = ReadBuf::new(&mut small);
        match Pin::new(&mut self.inner).poll_read(cx, &mut small_buf) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(small_buf.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Trickle<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A read-only stream that yields exactly the given chunks, one per read, then EOF. Writes
/// are accepted and dropped.
#[derive(Debug)]
pub struct Chunks(pub VecDeque<Vec<u8>>);

impl Chunks {
    /// `bytes` cut at each of `cuts` (positions, any order, duplicates and out-of-range
    /// ignored).
    pub fn split(bytes: &[u8], cuts: &[usize]) -> Chunks {
        let mut cuts: Vec<usize> = cuts
            .iter()
            .copied()
            .filter(|&c| c > 0 && c < bytes.len())
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut chunks = VecDeque::new();
        let mut start = 0;
        for c in cuts {
            chunks.push_back(bytes[start..c].to_vec());
            start = c;
        }
        if start < bytes.len() {
            chunks.push_back(bytes[start..].to_vec());
        }
        Chunks(chunks)
    }
}

impl AsyncRead for Chunks {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(mut chunk) = self.0.pop_front() {
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            if n < chunk.len() {
                let rest = chunk.split_off(n);
                self.0.push_front(rest);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Chunks {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// All frames in `bytes`, read through a `Connection` over `Chunks::split(bytes, cuts)`.
pub async fn frames_via_connection(
    bytes: &[u8],
    cuts: &[usize],
) -> pairscale_esl::Result<Vec<Frame>> {
    let mut conn = pairscale_esl::Connection::new(Chunks::split(bytes, cuts));
    let mut frames = Vec::new();
    for _ in 0..10_000 {
        match conn.read_frame().await? {
            Some(f) => frames.push(f),
            None => return Ok(frames),
        }
    }
    panic!("more than 10000 frames");
}
