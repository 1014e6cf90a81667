//! The typed commands: each sends one `api` line and parses its reply with [`crate::reply`].
//! A reply that does not parse is an error naming the command, never a guess.

use pairscale_core::HangupCause;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{unexpected, Client};
use crate::error::Result;
use crate::reply::{self, Channel, Direction, Hupall, Status};

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// `api status`.
    pub async fn status(&mut self) -> Result<Status> {
        let text = self.api("status").await?;
        Status::parse(&text).map_err(|reason| unexpected("status", reason))
    }

    /// `api show channels count`: channels (legs).
    pub async fn channel_count(&mut self) -> Result<u64> {
        let text = self.api("show channels count").await?;
        reply::parse_count(&text).map_err(|r| unexpected("show channels count", r))
    }

    /// `api show calls count`: calls, a bridged pair counted once.
    pub async fn call_count(&mut self) -> Result<u64> {
        let text = self.api("show calls count").await?;
        reply::parse_count(&text).map_err(|r| unexpected("show calls count", r))
    }

    /// `api show channels as json`.
    pub async fn channels(&mut self) -> Result<Vec<Channel>> {
        let text = self.api("show channels as json").await?;
        reply::parse_channels(&text).map_err(|r| unexpected("show channels as json", r))
    }

    /// `api fsctl pause <direction>`: refuse new sessions of that direction.
    pub async fn pause(&mut self, direction: Direction) -> Result<()> {
        self.fsctl_ok(&format!("fsctl pause {direction}")).await
    }

    /// `api fsctl resume <direction>`.
    pub async fn resume(&mut self, direction: Direction) -> Result<()> {
        self.fsctl_ok(&format!("fsctl resume {direction}")).await
    }

    /// `api fsctl pause`: refuse new sessions both ways (`status` then says "not ready").
    pub async fn pause_all(&mut self) -> Result<()> {
        self.fsctl_ok("fsctl pause").await
    }

    /// `api fsctl resume`: accept new sessions both ways.
    pub async fn resume_all(&mut self) -> Result<()> {
        self.fsctl_ok("fsctl resume").await
    }

    /// `api fsctl pause_check [direction]`. Without a direction, true only when paused
    /// both ways.
    pub async fn pause_check(&mut self, direction: Option<Direction>) -> Result<bool> {
        let command = match direction {
            Some(d) => format!("fsctl pause_check {d}"),
            None => "fsctl pause_check".to_string(),
        };
        let text = self.api(&command).await?;
        reply::parse_bool(&text).map_err(|r| unexpected(&command, r))
    }

    /// `api fsctl ready_check`.
    pub async fn ready_check(&mut self) -> Result<bool> {
        let text = self.api("fsctl ready_check").await?;
        reply::parse_bool(&text).map_err(|r| unexpected("fsctl ready_check", r))
    }

    /// `api hupall <cause>`: hangs up every channel. The cause is one FreeSWITCH knows by
    /// name (an unknown one it would silently replace with `NORMAL_CLEARING`); the reply names
    /// the cause actually used.
    pub async fn hupall(&mut self, cause: HangupCause) -> Result<Hupall> {
        let command = format!("hupall {cause}");
        let text = self.api(&command).await?;
        reply::parse_hupall(&text).map_err(|r| unexpected(&command, r))
    }

    async fn fsctl_ok(&mut self, command: &str) -> Result<()> {
        let text = self.api(command).await?;
        if text.trim_end() == "+OK" {
            Ok(())
        } else {
            Err(unexpected(command, format!("expected +OK, got {text:?}")))
        }
    }
}
