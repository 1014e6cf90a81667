//! How long the fleet's calls last, as the drain models it, and what that says of when a node
//! will be empty.
//!
//! The model is estimated from nothing but what the nodes report: the ages of their live
//! calls. In a steady state the age of a call that is up has density `S(a) / mean` (a call is
//! seen at age `a` only if it lasts longer than `a`), so the pooled ages of the fleet give the
//! holding-time distribution by maximum likelihood. Two families are fitted and the likelier
//! one kept: Weibull (exponential at shape 1; a shape below 1 is a heavy tail) and lognormal.
//!
//! Given the model, a call of age `a` is still up `t` seconds later with probability
//! `S(a + t) / S(a)`, a node is empty once all of its calls have ended, and the expected time
//! to empty is the integral of the chance that it is not. A race of several candidates ends
//! when `remove` of them are empty.

use serde::Serialize;

/// A holding-time distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum HoldingTimes {
    /// `S(x) = exp(-(x / scale)^shape)`; shape 1 is the exponential.
    Weibull { shape: f64, scale_seconds: f64 },
    /// `ln x` is normal with mean `mu` and deviation `sigma`.
    Lognormal { mu: f64, sigma: f64 },
}

/// Below this many live calls the fleet's ages say too little to fit a tail, and there is no
/// estimate.
pub const MIN_CALLS_TO_FIT: usize = 20;
/// At most this many ages are used to fit (spread evenly over the fleet's), which bounds the
/// cost on a large fleet.
const MAX_FIT_SAMPLES: usize = 2_048;

impl HoldingTimes {
    pub fn exponential(mean_seconds: f64) -> HoldingTimes {
        HoldingTimes::Weibull {
            shape: 1.0,
            scale_seconds: mean_seconds.max(1.0),
        }
    }

    /// A lognormal with this mean and the `sigma` of its logarithm.
    pub fn lognormal(mean_seconds: f64, sigma: f64) -> HoldingTimes {
        HoldingTimes::Lognormal {
            mu: mean_seconds.max(1.0).ln() - sigma * sigma / 2.0,
            sigma,
        }
    }

    pub fn mean_seconds(&self) -> f64 {
        match *self {
            HoldingTimes::Weibull {
                shape,
                scale_seconds,
            } => scale_seconds * ln_gamma(1.0 + 1.0 / shape).exp(),
            HoldingTimes::Lognormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
        }
    }

    /// `ln S(x)`: the log of the chance that a call lasts longer than `x` seconds.
    pub fn ln_survival(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        match *self {
            HoldingTimes::Weibull {
                shape,
                scale_seconds,
            } => -(x / scale_seconds).powf(shape),
            HoldingTimes::Lognormal { mu, sigma } => {
                ln_erfc((x.ln() - mu) / (sigma * std::f64::consts::SQRT_2)) - std::f64::consts::LN_2
            }
        }
    }

    /// The model the live calls' ages (seconds, as nodes report them) point to; none below
    /// [`MIN_CALLS_TO_FIT`] calls.
    pub fn estimate(ages: &[u64]) -> Option<HoldingTimes> {
        // Ages are whole seconds, rounded down: the middle of the second is the better guess.
        let step = ages.len().div_ceil(MAX_FIT_SAMPLES).max(1);
        let sample: Vec<f64> = ages.iter().step_by(step).map(|a| *a as f64 + 0.5).collect();
        if sample.len() < MIN_CALLS_TO_FIT {
            return None;
        }
        let (weibull, lw) = fit_weibull(&sample);
        let mean_age = sample.iter().sum::<f64>() / sample.len() as f64;
        let (lognormal, ll) = fit_lognormal(&sample, mean_age);
        Some(if ll > lw { lognormal } else { weibull })
    }
}

/// The mean log-likelihood of ages `a` under the model: `ln S(a) - ln mean`.
fn age_log_likelihood(model: &HoldingTimes, ages: &[f64]) -> f64 {
    let ln_mean = model.mean_seconds().ln();
    ages.iter().map(|a| model.ln_survival(*a)).sum::<f64>() / ages.len() as f64 - ln_mean
}

/// The maximum of a unimodal `f` over `[lo, hi]`, by golden-section search.
fn golden_max(mut lo: f64, mut hi: f64, iterations: usize, f: impl Fn(f64) -> f64) -> (f64, f64) {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let mut x1 = hi - r * (hi - lo);
    let mut x2 = lo + r * (hi - lo);
    let (mut f1, mut f2) = (f(x1), f(x2));
    for _ in 0..iterations {
        if f1 < f2 {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + r * (hi - lo);
            f2 = f(x2);
        } else {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - r * (hi - lo);
            f1 = f(x1);
        }
    }
    if f1 > f2 {
        (x1, f1)
    } else {
        (x2, f2)
    }
}

/// Weibull by maximum likelihood: for a given shape `k` the best scale is closed-form
/// (`scale^k = k * mean(a^k)`), so only the shape is searched.
fn fit_weibull(ages: &[f64]) -> (HoldingTimes, f64) {
    let at = |ln_k: f64| {
        let k = ln_k.exp();
        let mean_pow = ages.iter().map(|a| a.powf(k)).sum::<f64>() / ages.len() as f64;
        HoldingTimes::Weibull {
            shape: k,
            scale_seconds: (k * mean_pow).powf(1.0 / k),
        }
    };
    let (ln_k, ll) = golden_max(0.2f64.ln(), 4f64.ln(), 40, |x| {
        age_log_likelihood(&at(x), ages)
    });
    (at(ln_k), ll)
}

/// Lognormal by maximum likelihood: `sigma` searched, and for each `sigma` the best `mu`.
fn fit_lognormal(ages: &[f64], mean_age: f64) -> (HoldingTimes, f64) {
    let centre = mean_age.max(1.0).ln();
    let best_mu = |sigma: f64| {
        golden_max(centre - 4.0 - 2.0 * sigma * sigma, centre + 2.0, 40, |mu| {
            age_log_likelihood(&HoldingTimes::Lognormal { mu, sigma }, ages)
        })
    };
    let (sigma, ll) = golden_max(0.2, 3.0, 30, |s| best_mu(s).1);
    let (mu, _) = best_mu(sigma);
    (HoldingTimes::Lognormal { mu, sigma }, ll)
}

/// `ln erfc(x)`, good where `erfc` itself underflows (Numerical Recipes' Chebyshev fit,
/// fractional error below 1.2e-7).
fn ln_erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ln_upper = t.ln() + poly;
    if x >= 0.0 {
        ln_upper
    } else {
        (2.0 - ln_upper.exp()).ln()
    }
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |s, (i, g)| s + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The time grid the drain's integrals are taken on: geometric, from a 64th of the mean
/// holding time to a thousand of them (a node of heavy-tailed calls can take that long).
pub(crate) fn grid(model: &HoldingTimes) -> Vec<f64> {
    let mean = model.mean_seconds().max(1.0);
    let mut t = vec![0.0];
    let mut x = mean / 64.0;
    while x < mean * 1_000.0 {
        t.push(x);
        x *= 1.08;
    }
    t
}

/// The chance that a node with calls of these ages still has one up, at each time of `grid`.
pub(crate) fn busy_curve(model: &HoldingTimes, ages: &[u64], grid: &[f64]) -> Vec<f64> {
    let now: Vec<f64> = ages
        .iter()
        .map(|a| model.ln_survival(*a as f64 + 0.5))
        .collect();
    grid.iter()
        .map(|t| {
            let all_ended = ages.iter().zip(&now).fold(1.0, |p, (a, s0)| {
                let still_up = (model.ln_survival(*a as f64 + 0.5 + t) - s0).exp();
                p * (1.0 - still_up.clamp(0.0, 1.0))
            });
            1.0 - all_ended
        })
        .collect()
}

/// The integral over `grid` of a curve given at its points (trapezoids).
pub(crate) fn integral(grid: &[f64], curve: &[f64]) -> f64 {
    grid.windows(2)
        .zip(curve.windows(2))
        .map(|(t, y)| (t[1] - t[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

/// The chance, at each time of the grid, that fewer than `remove` of the nodes whose busy
/// curves are given are empty: the race is still on.
pub(crate) fn race_curve(busy: &[&[f64]], remove: usize, points: usize) -> Vec<f64> {
    (0..points)
        .map(|m| {
            // dist[j]: the chance that exactly j nodes are empty (j < remove kept).
            let mut dist = vec![0.0; remove.max(1)];
            dist[0] = 1.0;
            for curve in busy {
                let empty = 1.0 - curve[m];
                for j in (0..dist.len()).rev() {
                    let stay = dist[j] * curve[m];
                    let from = if j > 0 { dist[j - 1] * empty } else { 0.0 };
                    dist[j] = stay + from;
                }
            }
            dist.iter().sum::<f64>().clamp(0.0, 1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_functions_match_known_values() {
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-10);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-10);
        assert!((ln_erfc(0.0) - 0.0).abs() < 1e-6);
        assert!((ln_erfc(1.0) - 0.157_299_207f64.ln()).abs() < 1e-6);
        assert!((ln_erfc(-1.0) - 1.842_700_793f64.ln()).abs() < 1e-6);
        // Far in the tail, where erfc itself is 0 in f64: ~ -x^2 - ln(x sqrt(pi)).
        let x = 30.0f64;
        let want = -x * x - (x * std::f64::consts::PI.sqrt()).ln();
        assert!((ln_erfc(x) - want).abs() < 1e-3, "{}", ln_erfc(x));
    }

    #[test]
    fn models_have_the_mean_they_are_built_with() {
        assert!((HoldingTimes::exponential(180.0).mean_seconds() - 180.0).abs() < 1e-9);
        assert!((HoldingTimes::lognormal(180.0, 1.2).mean_seconds() - 180.0).abs() < 1e-9);
    }

    #[test]
    fn an_exponential_node_of_one_call_empties_in_the_mean_holding_time() {
        let m = HoldingTimes::exponential(100.0);
        let g = grid(&m);
        for age in [0, 50, 1_000] {
            let e = integral(&g, &busy_curve(&m, &[age], &g));
            assert!((e - 100.0).abs() < 1.0, "age {age}: {e}");
        }
        // Two calls: the mean of the later of two ends, 1.5 means.
        let e = integral(&g, &busy_curve(&m, &[5, 500], &g));
        assert!((e - 150.0).abs() < 1.5, "{e}");
    }

    #[test]
    fn with_a_heavy_tail_an_old_call_is_expected_to_last_longer() {
        let m = HoldingTimes::lognormal(180.0, 1.2);
        let g = grid(&m);
        let young = integral(&g, &busy_curve(&m, &[10], &g));
        let old = integral(&g, &busy_curve(&m, &[1_000], &g));
        assert!(old > 2.0 * young, "young {young}, old {old}");
    }

    #[test]
    fn a_race_of_two_for_one_ends_with_the_first_to_empty() {
        let m = HoldingTimes::exponential(100.0);
        let g = grid(&m);
        let a = busy_curve(&m, &[1], &g);
        let b = busy_curve(&m, &[1], &g);
        // The first of two exponential ends: half the mean.
        let first = integral(&g, &race_curve(&[&a, &b], 1, g.len()));
        assert!((first - 50.0).abs() < 1.0, "{first}");
        // Both of them: 1.5 means.
        let both = integral(&g, &race_curve(&[&a, &b], 2, g.len()));
        assert!((both - 150.0).abs() < 1.5, "{both}");
    }

    /// Ages of live calls in a steady state, drawn without randomness: calls start once a
    /// second and last `holding(u)` for evenly spread quantiles `u`; a call started `a` seconds
    /// ago is up if it lasts longer than `a`.
    fn live_ages(holding: impl Fn(f64) -> f64, span: u64) -> Vec<u64> {
        (0..span)
            .filter(|a| {
                let u = ((*a * 7_919) % 1_000) as f64 / 1_000.0 + 0.000_5;
                holding(u) > *a as f64
            })
            .collect()
    }

    #[test]
    fn the_fit_tells_a_heavy_tail_from_a_memoryless_one() {
        let exp = live_ages(|u| -100.0 * (1.0 - u).ln(), 5_000);
        let m = HoldingTimes::estimate(&exp).expect("thousands of ages");
        match m {
            HoldingTimes::Weibull { shape, .. } => assert!((shape - 1.0).abs() < 0.25, "{shape}"),
            m => panic!("exponential ages fitted as {m:?}"),
        }
        assert!((m.mean_seconds() - 100.0).abs() < 20.0, "{m:?}");
        // Lognormal, sigma 1.2, median 90 s.
        let heavy = live_ages(|u| (90f64.ln() + 1.2 * normal_quantile(u)).exp(), 20_000);
        let m = HoldingTimes::estimate(&heavy).expect("thousands of ages");
        let tail = match m {
            HoldingTimes::Lognormal { sigma, .. } => sigma > 0.8,
            HoldingTimes::Weibull { shape, .. } => shape < 0.9,
        };
        assert!(tail, "heavy-tailed ages fitted as {m:?}");
    }

    #[test]
    fn too_few_calls_give_no_estimate() {
        assert_eq!(HoldingTimes::estimate(&[]), None);
        assert_eq!(HoldingTimes::estimate(&[10; MIN_CALLS_TO_FIT - 1]), None);
        assert!(HoldingTimes::estimate(&[10; MIN_CALLS_TO_FIT]).is_some());
    }

    /// The standard normal quantile (Acklam's rational fit; ample for a test's inputs).
    fn normal_quantile(p: f64) -> f64 {
        let a = [
            -3.969_683_028_665_376e1,
            2.209_460_984_245_205e2,
            -2.759_285_104_469_687e2,
            1.383_577_518_672_69e2,
            -3.066_479_806_614_716e1,
            2.506_628_277_459_239,
        ];
        let b = [
            -5.447_609_879_822_406e1,
            1.615_858_368_580_409e2,
            -1.556_989_798_598_866e2,
            6.680_131_188_771_972e1,
            -1.328_068_155_288_572e1,
        ];
        let c = [
            -7.784_894_002_430_293e-3,
            -3.223_964_580_411_365e-1,
            -2.400_758_277_161_838,
            -2.549_732_539_343_734,
            4.374_664_141_464_968,
            2.938_163_982_698_783,
        ];
        let d = [
            7.784_695_709_041_462e-3,
            3.224_671_290_700_398e-1,
            2.445_134_137_142_996,
            3.754_408_661_907_416,
        ];
        let tail = |q: f64| {
            (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
        };
        if p < 0.024_25 {
            tail((-2.0 * p.ln()).sqrt())
        } else if p > 1.0 - 0.024_25 {
            -tail((-2.0 * (1.0 - p).ln()).sqrt())
        } else {
            let q = p - 0.5;
            let r = q * q;
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
        }
    }
}
