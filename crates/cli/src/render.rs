//! Printing for humans: aligned tables, a little colour (only on a terminal, never with
//! NO_COLOR), and times as ages ("3m 12s ago") beside their RFC 3339 form.

use crate::args::OutputFormat;
use pairscale_core::Timestamp;
use serde_json::Value;

/// What a command shows: the same content as a table for humans or JSON for scripts.
pub trait View {
    fn json(&self) -> Value;
    fn table(&self, style: &Style) -> String;
}

/// Print a view in the chosen format.
pub fn render(view: &dyn View, format: OutputFormat, style: &Style) -> String {
    match format {
        OutputFormat::Json => {
            let mut s = serde_json::to_string_pretty(&view.json()).unwrap_or_else(|_| "{}".into());
            s.push('\n');
            s
        }
        OutputFormat::Table => view.table(style),
    }
}

/// Colour only when stdout is a terminal, NO_COLOR is unset or empty, and the output is a table.
pub fn use_color(stdout_is_terminal: bool, no_color: Option<&str>, format: OutputFormat) -> bool {
    stdout_is_terminal && no_color.is_none_or(str::is_empty) && format == OutputFormat::Table
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    pub fn good(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn warn(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn bad(&self, s: &str) -> String {
        self.paint("31", s)
    }

    /// A pair status or execution status, coloured by what it means.
    pub fn status(&self, s: &str) -> String {
        match s {
            "active" | "SUCCEEDED" | "ok" | "valid" | "free" => self.good(s),
            "provisioning" | "draining" | "drained" | "RUNNING" | "PENDING_REDRIVE" | "held" => {
                self.warn(s)
            }
            "failed" | "FAILED" | "TIMED_OUT" | "ABORTED" => self.bad(s),
            _ => s.to_string(),
        }
    }
}

/// A table with a header row. Cells may carry colour codes; widths ignore them.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self, style: &Style) -> String {
        let cols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| visible_len(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(visible_len(c));
            }
        }
        let line = |cells: &[String], bold: bool| {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate().take(cols) {
                let last = i + 1 == cols;
                let text = if bold { style.bold(c) } else { c.clone() };
                out.push_str(&text);
                if !last {
                    out.push_str(&" ".repeat(widths[i] - visible_len(c) + 2));
                }
            }
            out.push('\n');
            out
        };
        let mut out = line(&self.headers, true);
        for r in &self.rows {
            out.push_str(&line(r, false));
        }
        out
    }
}

/// The printed width of a string, without ANSI colour codes.
pub fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        if in_escape {
            in_escape = c != 'm';
        } else if c == '\x1b' {
            in_escape = true;
        } else {
            n += 1;
        }
    }
    n
}

/// `2h 05m`, `3m 12s`, `45s`: a span of time, to the second.
pub fn duration(ms: i64) -> String {
    let secs = ms.unsigned_abs() / 1000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `3m 12s ago` or `in 14m 00s`, from `now`.
pub fn relative(t: Timestamp, now: Timestamp) -> String {
    let d = t.millis() - now.millis();
    if d > 0 {
        format!("in {}", duration(d))
    } else {
        format!("{} ago", duration(d))
    }
}

/// `2026-11-22T03:15:00Z (3m 12s ago)`.
pub fn when(t: Timestamp, now: Timestamp) -> String {
    format!("{} ({})", t.rfc3339(), relative(t, now))
}

/// `-` for nothing.
pub fn or_dash(s: Option<impl ToString>) -> String {
    s.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use OutputFormat::*;
        assert!(use_color(true, None, Table));
        assert!(use_color(true, Some(""), Table));
        assert!(!use_color(true, Some("1"), Table));
        assert!(!use_color(false, None, Table));
        assert!(!use_color(true, None, Json));
    }

    #[test]
    fn tables_align_columns_whatever_the_colour() {
        let mut t = Table::new(&["PAIR", "STATUS", "ADDRESS"]);
        t.row(vec![
            "pair-0001".into(),
            "active".into(),
            "10.0.1.10".into(),
        ]);
        t.row(vec!["pair-0012".into(), "draining".into(), "-".into()]);
        let plain = t.render(&Style { color: false });
        assert_eq!(
            plain,
            "PAIR       STATUS    ADDRESS\n\
             pair-0001  active    10.0.1.10\n\
             pair-0012  draining  -\n"
        );
        let style = Style { color: true };
        let mut c = Table::new(&["PAIR", "STATUS", "ADDRESS"]);
        c.row(vec![
            "pair-0001".into(),
            style.status("active"),
            "10.0.1.10".into(),
        ]);
        c.row(vec![
            "pair-0012".into(),
            style.status("draining"),
            "-".into(),
        ]);
        let coloured = c.render(&style);
        assert!(coloured.contains("\x1b[32mactive\x1b[0m"), "{coloured:?}");
        let stripped: String = {
            let mut out = String::new();
            let mut esc = false;
            for ch in coloured.chars() {
                if esc {
                    esc = ch != 'm';
                } else if ch == '\x1b' {
                    esc = true;
                } else {
                    out.push(ch);
                }
            }
            out
        };
        assert_eq!(stripped, plain);
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(192_000), "3m 12s");
        assert_eq!(duration(7_500_000), "2h 05m");
        assert_eq!(relative(Timestamp(0), Timestamp(61_000)), "1m 01s ago");
        assert_eq!(relative(Timestamp(120_000), Timestamp(0)), "in 2m 00s");
        assert_eq!(
            when(Timestamp(0), Timestamp(5_000)),
            "1970-01-01T00:00:00Z (5s ago)"
        );
    }
}
