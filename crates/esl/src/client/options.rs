//! What a client is given: the password (never printed) and its timeouts and limits.

use std::fmt;
use std::time::Duration;

use crate::frame::Limits;

/// The event socket password. Never printed: `Debug` shows `Password(<redacted>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password::new(s)
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Password(s)
    }
}

/// Timeouts and limits for one client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TCP connect plus the server's `auth/request` greeting.
    pub connect_timeout: Duration,
    /// Each command from sending it to its whole reply (and `bgapi` from job to result).
    pub command_timeout: Duration,
    pub limits: Limits,
    /// Events kept while no one reads them; the oldest are dropped beyond this.
    pub event_queue: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            limits: Limits::default(),
            event_queue: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::from("ClueCon");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert!(!format!("{:?}", Some(&p)).contains("ClueCon"));
    }
}
