//! SIP calls placed with sipp (Debian's `sip-tester`), with the scenarios in this crate's
//! `sipp/` folder, and counted from sipp's own statistics file: how many calls went through
//! their whole scenario and how many failed (refused, timed out, or hung up by the other side
//! when the scenario hangs up itself).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};

const HINT: &str = "it comes with Debian's sip-tester, which tests/setup/30-kamailio.sh installs";

/// The scenarios (files in `sipp/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Answered, held for the plan's `hold`, hung up by the caller.
    Hold,
    /// Refused with FreeSWITCH's `503 Maximum Calls In Progress` and a `Retry-After`: a call
    /// that gets anything else fails.
    Refused,
    /// Answered, then hung up by FreeSWITCH (the canary extension's own end).
    HungUpByCallee,
}

impl Scenario {
    fn file(self) -> PathBuf {
        let name = match self {
            Scenario::Hold => "hold.xml",
            Scenario::Refused => "refused.xml",
            Scenario::HungUpByCallee => "hung_up_by_callee.xml",
        };
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sipp")
            .join(name)
    }
}

/// Calls to place.
#[derive(Debug, Clone)]
pub struct CallPlan {
    /// Kamailio, or an instance's SIP address.
    pub to: SocketAddr,
    /// The R-URI user: a dispatcher set number (Kamailio's test configuration routes by it), or
    /// `pairscale-canary`.
    pub service: String,
    pub scenario: Scenario,
    pub calls: u32,
    /// New calls per second.
    pub rate: u32,
    /// How long the caller holds an answered call ([`Scenario::Hold`]).
    pub hold: Duration,
    /// Where the callee's media goes (an [`crate::RtpSink`]'s port on 127.0.0.1).
    pub rtp_sink: u16,
}

impl CallPlan {
    /// `calls` calls, ten a second, each held for `hold`.
    pub fn hold(
        to: SocketAddr,
        service: impl Into<String>,
        calls: u32,
        hold: Duration,
        rtp_sink: u16,
    ) -> Self {
        CallPlan {
            to,
            service: service.into(),
            scenario: Scenario::Hold,
            calls,
            rate: 10,
            hold,
            rtp_sink,
        }
    }

    /// One call that must be refused with FreeSWITCH's 503.
    pub fn refused(to: SocketAddr, rtp_sink: u16) -> Self {
        CallPlan {
            scenario: Scenario::Refused,
            ..CallPlan::hold(to, "pairscale-canary", 1, Duration::ZERO, rtp_sink)
        }
    }

    /// One call to the canary extension, which FreeSWITCH hangs up.
    pub fn canary(to: SocketAddr, rtp_sink: u16) -> Self {
        CallPlan {
            scenario: Scenario::HungUpByCallee,
            ..CallPlan::hold(to, "pairscale-canary", 1, Duration::ZERO, rtp_sink)
        }
    }

    pub fn rate(mut self, per_sec: u32) -> Self {
        self.rate = per_sec.max(1);
        self
    }

    /// How long the whole run may take: placing every call, holding the last, and slack for
    /// retransmissions.
    fn deadline(&self) -> Duration {
        let placing = Duration::from_secs(u64::from(self.calls / self.rate.max(1) + 1));
        placing + self.hold + Duration::from_secs(60)
    }

    /// Starts sipp; the calls run in the background until [`Calls::finish`].
    pub fn start(&self) -> Result<Calls> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pairscale-sipp-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(Error::io("creating sipp's folder"))?;
        let stats = dir.join("stats.csv");
        let deadline = self.deadline();
        let child = tokio::process::Command::new("sipp")
            .arg(self.to.to_string())
            .arg("-sf")
            .arg(self.scenario.file())
            .args(["-i", "127.0.0.1", "-nostdin", "-s", &self.service])
            .args(["-key", "rtp_sink", &self.rtp_sink.to_string()])
            .args(["-m", &self.calls.to_string(), "-r", &self.rate.to_string()])
            .args(["-d", &self.hold.as_millis().to_string()])
            .args(["-recv_timeout", "15000", "-timeout"])
            .arg(format!("{}s", deadline.as_secs()))
            .args(["-timeout_error", "-trace_stat", "-fd", "1", "-stf"])
            .arg(&stats)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Sipp(format!("cannot start sipp ({e}); {HINT}")))?;
        Ok(Calls {
            child,
            dir,
            stats,
            started: Instant::now(),
            deadline,
        })
    }

    /// Places the calls and waits for them.
    pub async fn run(&self) -> Result<Outcome> {
        self.start()?.finish().await
    }
}

/// A sipp run in progress.
#[derive(Debug)]
pub struct Calls {
    child: tokio::process::Child,
    dir: PathBuf,
    stats: PathBuf,
    started: Instant,
    deadline: Duration,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Calls that went through the whole scenario.
    pub successful: u64,
    /// Calls that did not.
    pub failed: u64,
    /// From start to exit.
    pub elapsed: Duration,
    /// sipp's exit code (0: every call succeeded).
    pub exit_code: Option<i32>,
    /// What sipp printed on stderr.
    pub stderr: String,
}

impl Calls {
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for sipp to exit (bounded by the plan's deadline) and reads its statistics.
    pub async fn finish(mut self) -> Result<Outcome> {
        let left = self.deadline.saturating_sub(self.started.elapsed()) + Duration::from_secs(10);
        let status = match tokio::time::timeout(left, self.child.wait()).await {
            Ok(status) => status.map_err(Error::io("waiting for sipp"))?,
            Err(_) => {
                let _ = self.child.kill().await;
                return Err(Error::Sipp(format!(
                    "still running {:?} after it started",
                    self.started.elapsed()
                )));
            }
        };
        let elapsed = self.started.elapsed();
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut stderr).await;
        }
        let text = std::fs::read_to_string(&self.stats).map_err(|e| {
            Error::Sipp(format!(
                "no statistics from sipp ({e}; exit {status}); it said: {stderr}"
            ))
        })?;
        let (successful, failed) = counts(&text).map_err(|why| {
            Error::Sipp(format!(
                "{why} in {}; it said: {stderr}",
                self.stats.display()
            ))
        })?;
        Ok(Outcome {
            successful,
            failed,
            elapsed,
            exit_code: status.code(),
            stderr,
        })
    }
}

impl Drop for Calls {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (successful, failed) from the last line of sipp's `-trace_stat` file (`;`-separated, a
/// header line first).
fn counts(csv: &str) -> std::result::Result<(u64, u64), String> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or("an empty statistics file")?
        .split(';')
        .collect();
    let last: Vec<&str> = lines
        .next_back()
        .ok_or("no statistics line")?
        .split(';')
        .collect();
    let column = |name: &str| -> std::result::Result<u64, String> {
        let i = header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("no column {name}"))?;
        last.get(i)
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("no number in column {name}"))
    };
    Ok((column("SuccessfulCall(C)")?, column("FailedCall(C)")?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_come_from_the_last_line() {
        let csv = "StartTime;SuccessfulCall(C);FailedCall(C);\n\
                   t0;0;0;\n\
                   t1;7;2;\n";
        assert_eq!(counts(csv).unwrap(), (7, 2));
        assert!(counts("StartTime;SuccessfulCall(C)\nt0;1\n").is_err());
        assert!(counts("").is_err());
    }

    #[test]
    fn every_scenario_file_is_there() {
        for s in [Scenario::Hold, Scenario::Refused, Scenario::HungUpByCallee] {
            assert!(s.file().is_file(), "{}", s.file().display());
        }
    }
}
