//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong talking to a FreeSWITCH event socket.
///
/// Frame-level variants (`HeaderTooLarge` ... `InvalidContentLength`) mean the peer sent bytes
/// that are not ESL; after one of them, or after a `Timeout`, the connection is out of step and
/// the client refuses further commands with `Poisoned`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout { addr: String, after: Duration },

    #[error("`{command}` timed out after {after:?}")]
    Timeout { command: String, after: Duration },

    /// FreeSWITCH answered `auth` with `-ERR invalid` (or anything but `+OK`).
    #[error("authentication rejected: {reply}")]
    AuthRejected { reply: String },

    /// The event socket's ACL refused this address (`text/rude-rejection`).
    #[error("access denied by the event socket ACL: {message}")]
    AccessDenied { message: String },

    /// The server sent `text/disconnect-notice` while a reply was awaited.
    #[error("server disconnected: {notice}")]
    Disconnected { notice: String },

    /// The peer closed the connection cleanly between frames while a reply was awaited.
    #[error("connection closed by peer")]
    ConnectionClosed,

    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed mid-frame with {buffered} byte(s) of a partial frame buffered")]
    ConnectionResetMidFrame { buffered: usize },

    #[error("header block larger than {limit} bytes")]
    HeaderTooLarge { limit: usize },

    #[error("body of {len} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge { len: usize, limit: usize },

    #[error("malformed header line {line:?}")]
    MalformedHeader { line: String },

    #[error("invalid Content-Length {value:?}")]
    InvalidContentLength { value: String },

    /// A well-formed frame arrived that makes no sense at this point of the conversation.
    #[error("expected {expected}, got a frame with Content-Type {got:?}")]
    UnexpectedFrame {
        expected: &'static str,
        got: Option<String>,
    },

    /// The command ran and FreeSWITCH said no (`-ERR ...`, `-USAGE ...`).
    #[error("`{command}` failed: {reply}")]
    CommandFailed { command: String, reply: String },

    /// The command ran but its answer is not in the shape this client knows.
    #[error("could not understand the reply to `{command}`: {reason}")]
    UnexpectedReply { command: String, reason: String },

    /// A caller-supplied argument would break the line-based protocol (or is unknown).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An earlier timeout or protocol error left the stream out of step.
    #[error("connection unusable after an earlier timeout or protocol error")]
    Poisoned,
}

impl Error {
    /// True for errors that say the bytes on the wire were not ESL; the stream cannot be
    /// trusted afterwards.
    pub fn is_protocol(&self) -> bool {
        matches!(
            self,
            Error::HeaderTooLarge { .. }
                | Error::BodyTooLarge { .. }
                | Error::MalformedHeader { .. }
                | Error::InvalidContentLength { .. }
        )
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
