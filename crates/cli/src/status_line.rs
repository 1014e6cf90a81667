//! Progress on stderr while a command waits (`scale --wait`, `drain`), in one of two modes.
//!
//! - **Live**, on a terminal: one line rewritten in place by indicatif, with a spinner that
//!   turns between polls (a poll may be a minute apart; the spinner says the command is alive)
//!   and the line cut to the terminal's width, colour codes and all. A line longer than the
//!   terminal wraps, and a wrapped line cannot be rewritten with a carriage return: each
//!   update would leave its first rows behind. When it ends, the last line stays, plain.
//! - **Plain**, for logs (stderr is not a terminal, or `CI` is set: a CI runner may give a
//!   pseudo-terminal to a log that keeps every rewrite): a line is written when what it says
//!   changes (`key`), and at least every [`StatusLine::LOG_EVERY`], so a log shows each step
//!   once and a long wait still shows signs of life.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::time::{Duration, Instant};

/// Whether the line is live: stderr is a terminal and no CI says it is a log.
pub fn live(stderr_is_terminal: bool, ci: Option<&str>) -> bool {
    let in_ci = ci.is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"));
    stderr_is_terminal && !in_ci
}

#[derive(Debug)]
pub struct StatusLine {
    mode: Mode,
    key: Option<String>,
}

#[derive(Debug)]
enum Mode {
    Live { bar: ProgressBar, last: String },
    Plain { printed: Instant },
}

impl StatusLine {
    pub const LOG_EVERY: Duration = Duration::from_secs(30);
    const TICK: Duration = Duration::from_millis(120);

    /// Live or plain, as [`live`] decides for this process's stderr and environment.
    pub fn for_stderr(stderr_is_terminal: bool) -> StatusLine {
        let ci = std::env::var("CI").ok();
        StatusLine::new(live(stderr_is_terminal, ci.as_deref()))
    }

    pub fn new(live: bool) -> StatusLine {
        let mode = if live {
            let bar = ProgressBar::new_spinner();
            // The template is fixed and valid; the default spinner would do if it were not.
            if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Self::TICK);
            Mode::Live {
                bar,
                last: String::new(),
            }
        } else {
            Mode::Plain {
                printed: Instant::now(),
            }
        };
        StatusLine { mode, key: None }
    }

    /// Show `line`; `key` is what it says, without the clock (a log gets a new line only
    /// when the key changes, or when [`Self::LOG_EVERY`] has passed).
    pub fn show(&mut self, key: &str, line: &str) {
        match &mut self.mode {
            Mode::Live { bar, last } => {
                bar.set_message(line.to_string());
                line.clone_into(last);
            }
            Mode::Plain { printed } => {
                if self.key.as_deref() == Some(key) && printed.elapsed() < Self::LOG_EVERY {
                    return;
                }
                let mut err = std::io::stderr();
                let _ = writeln!(err, "{line}");
                let _ = err.flush();
                *printed = Instant::now();
            }
        }
        self.key = Some(key.to_string());
    }

    /// End the line before anything else is printed; on a terminal the last line stays.
    pub fn finish(&mut self) {
        if let Mode::Live { bar, last } = &self.mode {
            bar.finish_and_clear();
            if self.key.take().is_some() {
                eprintln!("{last}");
            }
        }
    }
}

impl Drop for StatusLine {
    // An early return (an error with `?`) must not leave the spinner turning over the message.
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_live_only_on_a_terminal_outside_ci() {
        assert!(live(true, None));
        assert!(live(true, Some("")));
        assert!(live(true, Some("false")));
        assert!(!live(true, Some("true")));
        assert!(!live(true, Some("1")));
        assert!(!live(false, None));
        assert!(!live(false, Some("false")));
    }
}
