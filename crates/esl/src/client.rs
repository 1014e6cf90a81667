//! Typed inbound-mode commands over one authenticated [`Connection`].
//!
//! ESL answers commands strictly in order, with events interleaved. The client therefore runs
//! one command at a time (`&mut self`), queues any event that arrives while it waits for a
//! reply, and hands queued events out through [`Client::next_event`]. A command that times out
//! leaves its reply in flight, so the client marks itself poisoned and refuses further
//! commands rather than pair the next command with a stale answer.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::{debug, instrument, warn};

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::event::{Event, EventFormat};
use crate::frame::Frame;

mod commands;
mod options;

pub use options::{ClientOptions, Password};

/// An authenticated inbound event socket session.
#[derive(Debug)]
pub struct Client<S = TcpStream> {
    conn: Connection<S>,
    opts: ClientOptions,
    peer: String,
    events: VecDeque<Event>,
    dropped_events: u64,
    subscription: Option<(EventFormat, BTreeSet<String>)>,
    poisoned: bool,
}

impl Client<TcpStream> {
    /// Connects to `addr` (`host:port`) and authenticates.
    #[instrument(skip(password, opts), fields(peer = %addr))]
    pub async fn connect(addr: &str, password: &Password, opts: ClientOptions) -> Result<Self> {
        let after = opts.connect_timeout;
        let stream = tokio::time::timeout(after, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::ConnectTimeout {
                addr: addr.to_string(),
                after,
            })??;
        // Commands are tiny and answered one at a time: do not let Nagle hold them back.
        stream.set_nodelay(true)?;
        Client::handshake(stream, addr.to_string(), password, opts).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Runs the greeting and `auth` over an already connected stream.
    #[instrument(skip(stream, password, opts), fields(peer = %peer))]
    pub async fn handshake(
        stream: S,
        peer: String,
        password: &Password,
        opts: ClientOptions,
    ) -> Result<Self> {
        if password.expose().contains(['\n', '\r']) {
            return Err(Error::InvalidArgument(
                "password contains a line break".into(),
            ));
        }
        let mut client = Client {
            conn: Connection::with_limits(stream, opts.limits),
            opts,
            peer,
            events: VecDeque::new(),
            dropped_events: 0,
            subscription: None,
            poisoned: false,
        };
        let after = client.opts.connect_timeout;
        let greeting = tokio::time::timeout(after, client.conn.read_frame())
            .await
            .map_err(|_| Error::ConnectTimeout {
                addr: client.peer.clone(),
                after,
            })??;
        let Some(greeting) = greeting else {
            return Err(Error::ConnectionClosed);
        };
        match greeting.content_type() {
            Some("auth/request") => {}
            Some("text/rude-rejection") => {
                return Err(Error::AccessDenied {
                    message: greeting.body_text().trim_end().to_string(),
                })
            }
            Some("text/disconnect-notice") => {
                return Err(Error::Disconnected {
                    notice: greeting.body_text().trim_end().to_string(),
                })
            }
            other => {
                return Err(Error::UnexpectedFrame {
                    expected: "auth/request",
                    got: other.map(str::to_owned),
                })
            }
        }
        let line = format!("auth {}", password.expose());
        let reply = client.exchange(&line, "auth", Expect::CommandReply).await?;
        let text = reply.reply_text().unwrap_or_default();
        if text.starts_with("+OK") {
            debug!("authenticated");
            Ok(client)
        } else {
            warn!(reply = text, "authentication rejected");
            client.poisoned = true;
            Err(Error::AuthRejected {
                reply: text.to_string(),
            })
        }
    }

    /// `api <command>`: the response body. A body starting with `-ERR` or `-USAGE` is
    /// [`Error::CommandFailed`]; use [`Client::api_raw`] to see such bodies as text.
    #[instrument(skip(self), fields(peer = %self.peer))]
    pub async fn api(&mut self, command: &str) -> Result<String> {
        let body = self.api_raw(command).await?;
        if body.starts_with("-ERR") || body.starts_with("-USAGE") {
            return Err(Error::CommandFailed {
                command: command.to_string(),
                reply: body.trim_end().to_string(),
            });
        }
        Ok(body)
    }

    /// `api <command>`: the response body exactly as sent.
    #[instrument(skip(self), fields(peer = %self.peer))]
    pub async fn api_raw(&mut self, command: &str) -> Result<String> {
        check_line(command)?;
        let line = format!("api {command}");
        let frame = self.exchange(&line, &line, Expect::ApiResponse).await?;
        Ok(frame.body_text().into_owned())
    }

    /// `bgapi <command>`: starts a background job and returns its Job-UUID at once.
    #[instrument(skip(self), fields(peer = %self.peer))]
    pub async fn bgapi_start(&mut self, command: &str) -> Result<String> {
        check_line(command)?;
        let line = format!("bgapi {command}");
        let frame = self.command_ok(line.clone()).await?;
        let text = frame.reply_text().unwrap_or_default();
        let uuid = frame
            .headers
            .get("Job-UUID")
            .or_else(|| text.strip_prefix("+OK Job-UUID: "))
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Error::UnexpectedReply {
                command: line.clone(),
                reason: "no Job-UUID".into(),
            })?;
        Ok(uuid.to_string())
    }

    /// Waits for the `BACKGROUND_JOB` event of `job_uuid` and returns its body. Requires a
    /// subscription to `BACKGROUND_JOB` ([`Client::bgapi`] makes one).
    #[instrument(skip(self), fields(peer = %self.peer))]
    pub async fn bgapi_wait(&mut self, job_uuid: &str) -> Result<String> {
        let is_job =
            |e: &Event| e.name() == Some("BACKGROUND_JOB") && e.get("Job-UUID") == Some(job_uuid);
        if let Some(i) = self.events.iter().position(is_job) {
            if let Some(ev) = self.events.remove(i) {
                return Ok(ev.body.unwrap_or_default());
            }
        }
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let after = self.opts.command_timeout;
        let wait = async {
            loop {
                let ev = self.read_event().await?;
                if is_job(&ev) {
                    return Ok(ev.body.unwrap_or_default());
                }
                self.queue(ev);
            }
        };
        match tokio::time::timeout(after, wait).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(e)) => {
                self.poisoned = true;
                Err(e)
            }
            // Nothing is in flight: a late job result is queued like any event.
            Err(_) => Err(Error::Timeout {
                command: format!("bgapi job {job_uuid}"),
                after,
            }),
        }
    }

    /// `bgapi <command>` and its result, matched by Job-UUID. Subscribes to
    /// `BACKGROUND_JOB` first if needed. A result starting with `-ERR` is an error.
    #[instrument(skip(self), fields(peer = %self.peer))]
    pub async fn bgapi(&mut self, command: &str) -> Result<String> {
        let subscribed = self
            .subscription
            .as_ref()
            .is_some_and(|(_, names)| names.contains("BACKGROUND_JOB") || names.contains("ALL"));
        if !subscribed {
            let format = self
                .subscription
                .as_ref()
                .map_or(EventFormat::Plain, |(f, _)| *f);
            self.subscribe(format, &["BACKGROUND_JOB"]).await?;
        }
        let job = self.bgapi_start(command).await?;
        let body = self.bgapi_wait(&job).await?;
        if body.starts_with("-ERR") || body.starts_with("-USAGE") {
            return Err(Error::CommandFailed {
                command: format!("bgapi {command}"),
                reply: body.trim_end().to_string(),
            });
        }
        Ok(body)
    }

    /// `event <format> <names...>`: adds `names` to the subscription (FreeSWITCH keeps
    /// earlier names, and the last format wins).
    #[instrument(skip(self), fields(peer = %self.peer))]
    pub async fn subscribe(&mut self, format: EventFormat, names: &[&str]) -> Result<()> {
        if names.is_empty() {
            return Err(Error::InvalidArgument("no event names".into()));
        }
        for n in names {
            let ok = !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'));
            if !ok {
                return Err(Error::InvalidArgument(format!("bad event name {n:?}")));
            }
        }
        let line = format!("event {} {}", format.as_str(), names.join(" "));
        self.command_ok(line).await?;
        let set = match self.subscription.take() {
            Some((_, set)) => set,
            None => BTreeSet::new(),
        };
        let mut set = set;
        set.extend(names.iter().map(|n| n.to_string()));
        self.subscription = Some((format, set));
        Ok(())
    }

    /// `filter <header> <value>`: from now on only events whose `header` is `value` (or that
    /// match another filter) are sent. With a busy node this keeps one call's events from
    /// drowning in everyone else's.
    #[instrument(skip(self), fields(peer = %self.peer))]
    pub async fn filter(&mut self, header: &str, value: &str) -> Result<()> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        };
        if !plain(header) || !plain(value) {
            return Err(Error::InvalidArgument(format!(
                "bad event filter {header:?} = {value:?}"
            )));
        }
        self.command_ok(format!("filter {header} {value}")).await?;
        Ok(())
    }

    /// `noevents`: true if a subscription was dropped, false if there was none.
    #[instrument(skip(self), fields(peer = %self.peer))]
    pub async fn noevents(&mut self) -> Result<bool> {
        let frame = self
            .exchange("noevents", "noevents", Expect::CommandReply)
            .await?;
        let text = frame.reply_text().unwrap_or_default();
        self.subscription = None;
        if text.starts_with("+OK") {
            Ok(true)
        } else if text == "-ERR not listening for events" {
            Ok(false)
        } else {
            Err(Error::UnexpectedReply {
                command: "noevents".into(),
                reason: text.to_string(),
            })
        }
    }

    /// `exit`: the server says `+OK bye`, sends its disconnect notice and closes.
    #[instrument(skip(self), fields(peer = %self.peer))]
    pub async fn exit(mut self) -> Result<()> {
        let frame = self.exchange("exit", "exit", Expect::CommandReply).await?;
        let text = frame.reply_text().unwrap_or_default();
        if !text.starts_with("+OK") {
            return Err(Error::UnexpectedReply {
                command: "exit".into(),
                reason: text.to_string(),
            });
        }
        let after = self.opts.command_timeout;
        let drain = async {
            // Bounded by the notice, the close, or the timeout around it.
            loop {
                match self.conn.read_frame().await {
                    Ok(None) | Err(_) => return,
                    Ok(Some(f)) if f.content_type() == Some("text/disconnect-notice") => return,
                    Ok(Some(_)) => {}
                }
            }
        };
        let _ = tokio::time::timeout(after, drain).await;
        Ok(())
    }

    /// The next event: a queued one, or one read within `wait`. `Ok(None)` if none came in
    /// time. The server closing the connection is [`Error::Disconnected`] or
    /// [`Error::ConnectionClosed`].
    pub async fn next_event(&mut self, wait: Duration) -> Result<Option<Event>> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        // read_frame is cancel-safe, so running out of time here loses nothing.
        match tokio::time::timeout(wait, self.read_event()).await {
            Err(_) => Ok(None),
            Ok(Ok(ev)) => Ok(Some(ev)),
            Ok(Err(e)) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// False once a timeout or protocol error has made the connection unusable.
    pub fn is_usable(&self) -> bool {
        !self.poisoned
    }

    // ----- plumbing ------------------------------------------------------------------------

    /// Sends one command line and waits for its reply, queueing events that arrive first.
    /// `name` is what logs and errors show (never the `auth` line).
    /// A command whose reply must start with `+OK` (`CommandFailed` naming it otherwise).
    async fn command_ok(&mut self, line: String) -> Result<Frame> {
        let frame = self.exchange(&line, &line, Expect::CommandReply).await?;
        let text = frame.reply_text().unwrap_or_default();
        if !text.starts_with("+OK") {
            return Err(Error::CommandFailed {
                command: line,
                reply: text.to_string(),
            });
        }
        Ok(frame)
    }

    async fn exchange(&mut self, line: &str, name: &str, expect: Expect) -> Result<Frame> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let after = self.opts.command_timeout;
        let run = async {
            self.conn.write_command(line, &[]).await?;
            loop {
                let frame = self
                    .conn
                    .read_frame()
                    .await?
                    .ok_or(Error::ConnectionClosed)?;
                match self.route(frame)? {
                    Routed::Event(ev) => self.queue(ev),
                    Routed::Ignored => {}
                    Routed::Reply(f) => {
                        let got = f.content_type();
                        if got == Some(expect.content_type()) {
                            return Ok(f);
                        }
                        return Err(Error::UnexpectedFrame {
                            expected: expect.content_type(),
                            got: got.map(str::to_owned),
                        });
                    }
                }
            }
        };
        match tokio::time::timeout(after, run).await {
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(e)) => {
                // Whatever went wrong, the reply stream can no longer be trusted.
                self.poisoned = true;
                warn!(command = name, error = %e, "command failed");
                Err(e)
            }
            Err(_) => {
                self.poisoned = true;
                warn!(command = name, ?after, "command timed out");
                Err(Error::Timeout {
                    command: name.to_string(),
                    after,
                })
            }
        }
    }

    /// The next event off the wire (no command is awaiting a reply): a reply here is out of
    /// step. Cancel-safe, as `read_frame` is.
    async fn read_event(&mut self) -> Result<Event> {
        loop {
            let frame = self
                .conn
                .read_frame()
                .await?
                .ok_or(Error::ConnectionClosed)?;
            match self.route(frame)? {
                Routed::Event(ev) => return Ok(ev),
                Routed::Ignored => {}
                Routed::Reply(f) => {
                    return Err(Error::UnexpectedFrame {
                        expected: "an event",
                        got: f.content_type().map(str::to_owned),
                    })
                }
            }
        }
    }

    /// Sorts a frame: event, reply, or noise; the server saying goodbye is an error.
    fn route(&mut self, frame: Frame) -> Result<Routed> {
        match frame.content_type() {
            Some("text/event-plain") | Some("text/event-json") => {
                match Event::from_frame(&frame)? {
                    Some(ev) => Ok(Routed::Event(ev)),
                    None => Ok(Routed::Ignored),
                }
            }
            Some("text/disconnect-notice") => Err(Error::Disconnected {
                notice: frame.body_text().trim_end().to_string(),
            }),
            Some("text/rude-rejection") => Err(Error::AccessDenied {
                message: frame.body_text().trim_end().to_string(),
            }),
            // Log lines and xml events are not subscribed to by this client.
            Some("log/data") | Some("text/event-xml") => Ok(Routed::Ignored),
            Some("command/reply") | Some("api/response") => Ok(Routed::Reply(frame)),
            other => Err(Error::UnexpectedFrame {
                expected: "a reply or an event",
                got: other.map(str::to_owned),
            }),
        }
    }

    fn queue(&mut self, ev: Event) {
        if self.events.len() >= self.opts.event_queue.max(1) {
            self.events.pop_front();
            self.dropped_events = self.dropped_events.saturating_add(1);
        }
        self.events.push_back(ev);
    }
}

enum Routed {
    Event(Event),
    Reply(Frame),
    Ignored,
}

#[derive(Clone, Copy)]
enum Expect {
    CommandReply,
    ApiResponse,
}

impl Expect {
    fn content_type(self) -> &'static str {
        match self {
            Expect::CommandReply => "command/reply",
            Expect::ApiResponse => "api/response",
        }
    }
}

fn check_line(command: &str) -> Result<()> {
    if command.trim().is_empty() {
        return Err(Error::InvalidArgument("empty command".into()));
    }
    if command.contains(['\n', '\r']) {
        return Err(Error::InvalidArgument(
            "command contains a line break".into(),
        ));
    }
    Ok(())
}

fn unexpected(command: &str, reason: String) -> Error {
    Error::UnexpectedReply {
        command: command.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_with_line_breaks_are_refused() {
        assert!(check_line("status\n\nauth x").is_err());
        assert!(check_line("status\r").is_err());
        assert!(check_line("  ").is_err());
        assert!(check_line("show channels count").is_ok());
    }
}
