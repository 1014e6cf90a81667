//! Where calls come from and how long they last: Poisson arrivals or a CSV trace; lognormal,
//! exponential or empirical (CSV) holding times.
//!
//! CSV files are plain: one record a line, `#` starts a comment, a first line that does not
//! parse as a number is taken for a header. A trace line is `arrival_seconds[,holding_seconds]`
//! (arrivals in non-decreasing order; without a holding time the scenario's distribution draws
//! one); an empirical holding-time file has the seconds in its first column.

use crate::error::{Error, Result};
use pairscale_core::drain::HoldingTimes;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use std::path::Path;
use std::sync::Arc;

/// How long calls last.
#[derive(Debug, Clone, PartialEq)]
pub enum Holding {
    /// Lognormal with this mean and the `sigma` of its logarithm (heavy-tailed: a few calls
    /// last hours).
    Lognormal { mean_secs: f64, sigma: f64 },
    /// Exponential with this mean (memoryless: a call's age says nothing of what is left).
    Exponential { mean_secs: f64 },
    /// Drawn uniformly from measured holding times.
    Empirical { secs: Arc<Vec<f64>> },
}

impl Holding {
    pub fn mean_secs(&self) -> f64 {
        match self {
            Holding::Lognormal { mean_secs, .. } | Holding::Exponential { mean_secs } => *mean_secs,
            Holding::Empirical { secs } => secs.iter().sum::<f64>() / secs.len().max(1) as f64,
        }
    }

    /// The distribution as pairscale's drain models holding times, when it has the shape.
    pub fn model(&self) -> Option<HoldingTimes> {
        match self {
            Holding::Lognormal { mean_secs, sigma } => {
                Some(HoldingTimes::lognormal(*mean_secs, *sigma))
            }
            Holding::Exponential { mean_secs } => Some(HoldingTimes::exponential(*mean_secs)),
            Holding::Empirical { .. } => None,
        }
    }

    /// A short description for the table.
    pub fn describe(&self) -> String {
        match self {
            Holding::Lognormal { mean_secs, sigma } => {
                format!("lognormal mean {mean_secs:.0} s sigma {sigma}")
            }
            Holding::Exponential { mean_secs } => format!("exponential mean {mean_secs:.0} s"),
            Holding::Empirical { secs } => format!(
                "empirical, {} holding times, mean {:.0} s",
                secs.len(),
                self.mean_secs()
            ),
        }
    }

    pub(crate) fn sampler(&self) -> Result<Sampler> {
        match self {
            Holding::Lognormal { mean_secs, sigma } => {
                positive("holding.mean_secs", *mean_secs)?;
                positive("holding.sigma", *sigma)?;
                // mean = exp(mu + sigma^2 / 2)
                let mu = mean_secs.ln() - sigma * sigma / 2.0;
                LogNormal::new(mu, *sigma)
                    .map(Sampler::Lognormal)
                    .map_err(|e| Error::scenario("holding.sigma", sigma, e.to_string()))
            }
            Holding::Exponential { mean_secs } => {
                positive("holding.mean_secs", *mean_secs)?;
                Exp::new(1.0 / mean_secs)
                    .map(Sampler::Exponential)
                    .map_err(|e| Error::scenario("holding.mean_secs", mean_secs, e.to_string()))
            }
            Holding::Empirical { secs } => {
                if secs.is_empty() {
                    return Err(Error::scenario(
                        "holding",
                        "no holding times",
                        "an empirical distribution needs at least one",
                    ));
                }
                Ok(Sampler::Empirical(secs.clone()))
            }
        }
    }
}

fn positive(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::scenario(field, v, "must be a positive number"))
    }
}

/// A holding-time distribution ready to draw from.
#[derive(Debug, Clone)]
pub(crate) enum Sampler {
    Lognormal(LogNormal<f64>),
    Exponential(Exp<f64>),
    Empirical(Arc<Vec<f64>>),
}

impl Sampler {
    pub(crate) fn draw(&self, rng: &mut StdRng) -> f64 {
        match self {
            Sampler::Lognormal(d) => d.sample(rng),
            Sampler::Exponential(d) => d.sample(rng),
            Sampler::Empirical(v) => v[rng.random_range(0..v.len())],
        }
    }
}

/// One call of a trace: when it arrives and, if the trace says, how long it lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceCall {
    pub at_secs: f64,
    pub holding_secs: Option<f64>,
}

/// When calls arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrivals {
    /// A Poisson process that offers the scenario's load: rate = load / mean holding time.
    Poisson,
    /// Exactly these calls, in order.
    Trace(Arc<Vec<TraceCall>>),
}

/// The records of a CSV file: each line's comma-separated numbers (a header line skipped).
fn csv_numbers(name: &str, text: &str) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: std::result::Result<Vec<f64>, _> =
            line.split(',').map(|f| f.trim().parse::<f64>()).collect();
        match fields {
            Ok(v) if v.iter().all(|x| x.is_finite() && *x >= 0.0) => out.push(v),
            Ok(_) => {
                return Err(Error::Csv {
                    path: name.into(),
                    line: i + 1,
                    reason: "numbers must be finite and not negative".into(),
                })
            }
            Err(_) if out.is_empty() => {} // a header
            Err(e) => {
                return Err(Error::Csv {
                    path: name.into(),
                    line: i + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// A call trace from CSV text (`name` is for messages).
pub fn parse_trace(name: &str, text: &str) -> Result<Vec<TraceCall>> {
    let mut calls = Vec::new();
    let mut last = 0.0f64;
    for (i, rec) in csv_numbers(name, text)?.into_iter().enumerate() {
        let call = TraceCall {
            at_secs: rec[0],
            holding_secs: rec.get(1).copied(),
        };
        if call.at_secs < last {
            return Err(Error::Csv {
                path: name.into(),
                line: i + 1,
                reason: format!("arrival {} before the previous one ({last})", call.at_secs),
            });
        }
        last = call.at_secs;
        calls.push(call);
    }
    Ok(calls)
}

/// Holding times from CSV text: the first column of each record.
pub fn parse_holding_times(name: &str, text: &str) -> Result<Vec<f64>> {
    Ok(csv_numbers(name, text)?
        .into_iter()
        .map(|r| r[0])
        .filter(|s| *s > 0.0)
        .collect())
}

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_lognormal_draws_around_its_mean() {
        let s = Holding::Lognormal {
            mean_secs: 180.0,
            sigma: 1.2,
        }
        .sampler()
        .unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let n = 200_000;
        let mean = (0..n).map(|_| s.draw(&mut rng)).sum::<f64>() / f64::from(n);
        assert!((mean - 180.0).abs() < 5.0, "mean {mean}");
    }

    #[test]
    fn a_trace_reads_with_or_without_holding_times_and_a_header() {
        let t = parse_trace("t.csv", "arrival,holding\n0,10\n1.5\n# note\n2,3 # late\n").unwrap();
        assert_eq!(
            t,
            vec![
                TraceCall {
                    at_secs: 0.0,
                    holding_secs: Some(10.0)
                },
                TraceCall {
                    at_secs: 1.5,
                    holding_secs: None
                },
                TraceCall {
                    at_secs: 2.0,
                    holding_secs: Some(3.0)
                },
            ]
        );
    }

    #[test]
    fn a_trace_out_of_order_or_garbled_is_refused_with_its_line() {
        let e = parse_trace("t.csv", "5\n4\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse_trace("t.csv", "1\nx\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
