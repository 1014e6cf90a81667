//! A buffered byte stream that yields whole [`Frame`]s and writes commands.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::frame::{Frame, Limits};

/// Reads frames from, and writes commands to, one event socket stream.
///
/// `read_frame` is cancel-safe: bytes already read stay in the buffer, so a timeout around it
/// loses nothing.
#[derive(Debug)]
pub struct Connection<S = TcpStream> {
    stream: BufWriter<S>,
    buffer: BytesMut,
    limits: Limits,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S) -> Self {
        Self::with_limits(stream, Limits::default())
    }

    pub fn with_limits(stream: S, limits: Limits) -> Self {
        Connection {
            stream: BufWriter::new(stream),
            buffer: BytesMut::with_capacity(4 * 1024),
            limits,
        }
    }

    /// The next frame; `Ok(None)` when the peer closed the stream cleanly between frames.
    /// A close in the middle of a frame is [`Error::ConnectionResetMidFrame`].
    pub async fn read_frame(&mut self) -> Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.parse_frame()? {
                return Ok(Some(frame));
            }
            self.buffer.reserve(4 * 1024);
            if 0 == self.stream.read_buf(&mut self.buffer).await? {
                return if self.buffer.is_empty() {
                    Ok(None)
                } else {
                    Err(Error::ConnectionResetMidFrame {
                        buffered: self.buffer.len(),
                    })
                };
            }
        }
    }

    fn parse_frame(&mut self) -> Result<Option<Frame>> {
        match Frame::check(&self.buffer, &self.limits)? {
            None => Ok(None),
            Some(len) => {
                let bytes = self.buffer.split_to(len).freeze();
                Frame::parse(&bytes, &self.limits).map(Some)
            }
        }
    }

    /// Writes `command` followed by optional header lines and the blank line that ends it.
    /// Callers have already refused line breaks inside `command` and the headers.
    pub async fn write_command(&mut self, command: &str, headers: &[(&str, &str)]) -> Result<()> {
        self.stream.write_all(command.as_bytes()).await?;
        self.stream.write_all(b"\n").await?;
        for (name, value) in headers {
            self.stream.write_all(name.as_bytes()).await?;
            self.stream.write_all(b": ").await?;
            self.stream.write_all(value.as_bytes()).await?;
            self.stream.write_all(b"\n").await?;
        }
        self.stream.write_all(b"\n").await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Bytes received but not yet part of a whole frame.
    pub fn buffered(&self) -> usize {
        self.buffer.remaining()
    }

    pub fn get_ref(&self) -> &S {
        self.stream.get_ref()
    }
}
