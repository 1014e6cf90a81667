//! Where the dispatcher table and Kamailio's JSON-RPC live, and how long to wait for them.

use std::fmt;
use std::time::Duration;

use crate::error::{DispatcherError, Result};

/// Environment variable holding the PostgreSQL URL of the database with the `dispatcher` table.
pub const DB_URL_ENV: &str = "PAIRSCALE_DISPATCHER_DB_URL";
/// Environment variable holding Kamailio's JSON-RPC URL (`http://host:port/RPC`).
pub const RPC_URL_ENV: &str = "PAIRSCALE_KAMAILIO_RPC_URL";

/// Connection settings for [`crate::KamailioDispatcher`].
///
/// `Debug` never shows the database password.
#[derive(Clone)]
pub struct DispatcherConfig {
    /// `postgres://user:password@host:port/db` or the `key=value` form.
    pub db_url: String,
    /// Kamailio's jsonrpcs endpoint over xhttp, e.g. `http://127.0.0.1:5080/RPC`.
    pub rpc_url: String,
    /// Bound on connecting to PostgreSQL and on each statement.
    pub db_timeout: Duration,
    /// Bound on each JSON-RPC request, connect included.
    pub rpc_timeout: Duration,
    /// How many times a state change is checked with `dispatcher.list` before giving up.
    pub verify_attempts: u32,
    /// Pause between two checks.
    pub verify_interval: Duration,
}

impl DispatcherConfig {
    /// Settings with the default timeouts (5 s each, 5 checks 200 ms apart).
    pub fn new(db_url: impl Into<String>, rpc_url: impl Into<String>) -> Self {
        Self {
            db_url: db_url.into(),
            rpc_url: rpc_url.into(),
            db_timeout: Duration::from_secs(5),
            rpc_timeout: Duration::from_secs(5),
            verify_attempts: 5,
            verify_interval: Duration::from_millis(200),
        }
    }

    /// Reads [`DB_URL_ENV`] and [`RPC_URL_ENV`], naming the one that is missing.
    pub fn from_env() -> Result<Self> {
        let get = |name: &'static str| {
            std::env::var(name).map_err(|_| DispatcherError::InvalidInput {
                field: name,
                value: String::new(),
                reason: "environment variable is not set",
            })
        };
        Ok(Self::new(get(DB_URL_ENV)?, get(RPC_URL_ENV)?))
    }
}

impl fmt::Debug for DispatcherConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatcherConfig")
            .field("db_url", &redact_db_url(&self.db_url))
            .field("rpc_url", &self.rpc_url)
            .field("db_timeout", &self.db_timeout)
            .field("rpc_timeout", &self.rpc_timeout)
            .field("verify_attempts", &self.verify_attempts)
            .field("verify_interval", &self.verify_interval)
            .finish()
    }
}

/// The database URL with any password replaced by `***`, for logs and `Debug`.
pub fn redact_db_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        // Only the authority part can hold a password; a '@' in the path or query does not count.
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &rest[at..]
                );
            }
        }
        // A password may also ride in the query string.
        return redact_query_password(url);
    }
    redact_key_value_password(url)
}

fn redact_query_password(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_string();
    };
    let params: Vec<String> = url[q + 1..]
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_string(),
        })
        .collect();
    format!("{}?{}", &url[..q], params.join("&"))
}

fn redact_key_value_password(conninfo: &str) -> String {
    let Some(start) = conninfo.find("password") else {
        return conninfo.to_string();
    };
    let after_key = &conninfo[start + "password".len()..];
    let Some(eq) = after_key.find('=') else {
        return conninfo.to_string();
    };
    if !after_key[..eq].trim().is_empty() {
        return conninfo.to_string();
    }
    let value = after_key[eq + 1..].trim_start();
    let value_start = conninfo.len() - value.len();
    // libpq values are either single-quoted (with backslash escapes) or run to the next space.
    let value_len = if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        let mut end = quoted.len();
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        1 + end
    } else {
        value.find(char::is_whitespace).unwrap_or(value.len())
    };
    format!(
        "{}***{}",
        &conninfo[..value_start],
        &conninfo[value_start + value_len..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_every_form_of_password() {
        let cases = [
            (
                "postgres://kam:s3cret@10.0.0.5:5432/kamailio",
                "postgres://kam:***@10.0.0.5:5432/kamailio",
            ),
            (
                "postgresql://kam:p@ss@db/kamailio",
                "postgresql://kam:***@db/kamailio",
            ),
            (
                "postgres://kam@db/kamailio?password=s3cret&sslmode=disable",
                "postgres://kam@db/kamailio?password=***&sslmode=disable",
            ),
            ("postgres://db/kamailio", "postgres://db/kamailio"),
            (
                "host=db user=kam password=s3cret dbname=kamailio",
                "host=db user=kam password=*** dbname=kamailio",
            ),
            (
                "host=db password = 'my \\' secret' dbname=k",
                "host=db password = *** dbname=k",
            ),
            ("host=db user=kam", "host=db user=kam"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_db_url(input), want, "input {input}");
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let config = DispatcherConfig::new(
            "postgres://kam:hunter2@127.0.0.1/kamailio",
            "http://127.0.0.1:5080/RPC",
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://kam:***@127.0.0.1/kamailio"),
            "{shown}"
        );
    }
}
