//! Benchmarks of pairscale's Lambda handlers, run on one machine: the release binaries under
//! the local Runtime API (`pairscale-lambda-emu`) against the local AWS emulator. The
//! program `pairscale-bench-handlers` measures binary size, cold start and warm latency next
//! to the bare AWS SDK calls each action makes, so that what the handler adds can be read off.
//!
//! Layout:
//! - [`Samples`]: latencies and their order statistics.
//! - [`Table`]: a plain-text table for the report.

use std::fmt::Write as _;
use std::time::Duration;

/// Latencies of one measured thing.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The nearest-rank percentile (`p` in 0..=100); zero when there are no samples.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn median(&self) -> Duration {
        self.percentile(50.0)
    }

    pub fn p99(&self) -> Duration {
        self.percentile(99.0)
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `a - b` in milliseconds, signed: an overhead can come out negative in the noise.
pub fn ms_diff(a: Duration, b: Duration) -> String {
    format!("{:+.2} ms", (a.as_secs_f64() - b.as_secs_f64()) * 1000.0)
}

/// A left-aligned plain-text table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            rows: vec![header.into_iter().map(Into::into).collect()],
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (i, row) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let _ = write!(line, "{cell:<w$}  ", w = width[c]);
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if i == 0 {
                let total: usize = width.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_samples(v: &[u64]) -> Samples {
        Samples::new(v.iter().map(|&m| Duration::from_millis(m)).collect())
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s = ms_samples(&[5, 1, 4, 2, 3]);
        assert_eq!(s.median(), Duration::from_millis(3));
        assert_eq!(s.percentile(100.0), Duration::from_millis(5));
        assert_eq!(s.percentile(0.0), Duration::from_millis(1));
        let hundred = Samples::new((1..=100).map(Duration::from_millis).collect());
        assert_eq!(hundred.p99(), Duration::from_millis(99));
        assert_eq!(hundred.median(), Duration::from_millis(50));
    }

    #[test]
    fn no_samples_read_as_zero() {
        assert_eq!(Samples::default().median(), Duration::ZERO);
    }

    #[test]
    fn a_table_pads_its_columns() {
        let mut t = Table::new(["name", "value"]);
        t.row(["a", "1"]);
        t.row(["longer", "22"]);
        assert_eq!(
            t.render(),
            "name    value\n-------------\na       1\nlonger  22\n"
        );
    }
}
