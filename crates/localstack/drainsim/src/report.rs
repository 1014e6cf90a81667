//! The figures of a report, and the table the command prints.

use crate::scenario::{Judged, Report};
use std::fmt::Write;

/// One choice's figures over a scenario's scale-ins.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub choice: String,
    pub drains: usize,
    pub wait_mean_secs: f64,
    pub wait_p50_secs: f64,
    pub wait_p90_secs: f64,
    /// The same, as multiples of the oracle's.
    pub mean_x: f64,
    pub p50_x: f64,
    pub p90_x: f64,
    pub spares_mean: f64,
    /// Per scale-in: spares quiesced then kept.
    pub held_out_pair_secs: f64,
    /// Per scale-in: the removed nodes' drain.
    pub draining_pair_secs: f64,
    pub cut_calls: u64,
    pub aborted: usize,
}

/// The nearest-rank percentile of `v` (sorted).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

fn raw(j: &Judged, remove: usize) -> Figures {
    let mut waits: Vec<f64> = j.outcomes.iter().map(|o| o.wait_secs).collect();
    waits.sort_by(f64::total_cmp);
    Figures {
        choice: j.choice.name(),
        drains: j.outcomes.len(),
        wait_mean_secs: mean(waits.iter().copied()),
        wait_p50_secs: percentile(&waits, 50.0),
        wait_p90_secs: percentile(&waits, 90.0),
        mean_x: 1.0,
        p50_x: 1.0,
        p90_x: 1.0,
        spares_mean: mean(j.outcomes.iter().map(|o| o.spares as f64)),
        held_out_pair_secs: mean(j.outcomes.iter().map(|o| o.held_out_pair_secs())),
        draining_pair_secs: mean(j.outcomes.iter().map(|o| o.draining_pair_secs(remove))),
        cut_calls: j.outcomes.iter().map(|o| o.cut_calls).sum(),
        aborted: j.outcomes.iter().filter(|o| o.aborted).count(),
    }
}

impl Report {
    /// Every choice's figures, the oracle first; multiples are of the oracle's figures.
    pub fn figures(&self) -> Vec<Figures> {
        let remove = self.scenario.remove as usize;
        let all: Vec<Figures> = self.judged.iter().map(|j| raw(j, remove)).collect();
        let Some(oracle) = all.first().cloned() else {
            return all;
        };
        all.into_iter()
            .map(|f| Figures {
                mean_x: ratio(f.wait_mean_secs, oracle.wait_mean_secs),
                p50_x: ratio(f.wait_p50_secs, oracle.wait_p50_secs),
                p90_x: ratio(f.wait_p90_secs, oracle.wait_p90_secs),
                ..f
            })
            .collect()
    }

    /// The figures of the choice named `name`.
    pub fn of(&self, name: &str) -> Option<Figures> {
        self.figures().into_iter().find(|f| f.choice == name)
    }
}

/// The table of `reports`, one block per scenario.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        let figures = r.figures();
        let drains = figures.first().map(|f| f.drains).unwrap_or(0);
        let _ = writeln!(out, "{} ({drains} scale-ins)", r.scenario.describe());
        let header = [
            "choice",
            "spares",
            "wait mean",
            "p50",
            "p90",
            "mean s",
            "held out pair-s",
            "draining pair-s",
            "cut calls",
            "aborted",
        ];
        let rows: Vec<[String; 10]> = figures
            .iter()
            .map(|f| {
                [
                    f.choice.clone(),
                    format!("{:.2}", f.spares_mean),
                    format!("{:.2}x", f.mean_x),
                    format!("{:.2}x", f.p50_x),
                    format!("{:.2}x", f.p90_x),
                    format!("{:.0}", f.wait_mean_secs),
                    format!("{:.0}", f.held_out_pair_secs),
                    format!("{:.0}", f.draining_pair_secs),
                    f.cut_calls.to_string(),
                    f.aborted.to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                if i == 0 {
                    let _ = write!(s, "{c:<w$}");
                } else {
                    let _ = write!(s, "  {c:>w$}");
                }
            }
            s.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&header.map(String::from)));
        let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 2 * 9));
        for row in &rows {
            let _ = writeln!(out, "{}", line(row));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 90.0), 9.0);
        assert_eq!(percentile(&v, 100.0), 10.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
