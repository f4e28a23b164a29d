//! Ranks and exposure from log-perplexities: pure numbers, no model.
//!
//! **Rank** (the Secret Sharer's definition 3): the number of candidates whose
//! log-perplexity is at most the secret's, the secret included. So rank 1 means the
//! secret is strictly the most likely candidate, and a tie counts against the secret
//! (a candidate as likely as the secret ranks above it).
//!
//! **Exposure** `log2 |R| - log2 rank`: from 0 (the secret is the least likely) to
//! `log2 |R|` (the most likely).
//!
//! **Extrapolation** (the paper's section 4.3) for spaces too large to score: fit a
//! skew-normal distribution to the log-perplexities of candidates drawn uniformly from
//! the space, and read the secret's rank as `|R| F(x)`, with `F` the fitted CDF at the
//! secret's log-perplexity `x`; the estimate is kept at 1 or more, so the extrapolated
//! exposure `min(log2 |R|, -log2 F(x))` lies in the same range as the exact one. The fit
//! is by the method of moments (sample mean, variance and skewness, the skewness kept
//! within the family's range, |skewness| <= 0.99), and `F` is integrated numerically in
//! log space, so it stays accurate far into the left tail where a memorised secret lies.

use serde::{Deserialize, Serialize};
use std::f64::consts::{FRAC_2_PI, PI, SQRT_2};

/// The rank of a secret of log-perplexity `secret` among candidates of log-perplexities
/// `others` (the secret itself not among them): `1 + #{others <= secret}`.
pub fn exact_rank(secret: f64, others: impl IntoIterator<Item = f64>) -> u64 {
    1 + others.into_iter().filter(|&x| x <= secret).count() as u64
}

/// `log2 candidates - log2 rank`.
pub fn exposure(candidates: f64, rank: f64) -> f64 {
    candidates.log2() - rank.log2()
}

/// A skew-normal distribution: location `xi`, scale `omega`, shape `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SkewNormal {
    /// Location.
    pub xi: f64,
    /// Scale (> 0).
    pub omega: f64,
    /// Shape (0: the normal distribution).
    pub alpha: f64,
}

/// `ln Phi(t)`, the standard normal's log CDF, accurate in both tails.
pub fn ln_normal_cdf(t: f64) -> f64 {
    if t > -30.0 {
        (0.5 * libm::erfc(-t / SQRT_2)).ln()
    } else {
        // Mills' ratio: Phi(t) ~ phi(t) / -t (1 - 1/t^2 + 3/t^4).
        let t2 = t * t;
        -0.5 * t2 - (-t).ln() - 0.5 * (2.0 * PI).ln() + (1.0 - 1.0 / t2 + 3.0 / (t2 * t2)).ln()
    }
}

/// Why a distribution could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Fewer than 3 values, or values that are not finite.
    #[error("a fit needs at least 3 finite values, found {0}")]
    TooFew(usize),
    /// Every value is the same: the spread is 0.
    #[error("every sampled candidate has the same log-perplexity; nothing to fit")]
    NoSpread,
}

impl SkewNormal {
    /// Fit by the method of moments (see the module).
    pub fn fit(values: &[f64]) -> Result<Self, FitError> {
        let n = values.len();
        if n < 3 || values.iter().any(|v| !v.is_finite()) {
            return Err(FitError::TooFew(n));
        }
        let nf = n as f64;
        let mean = values.iter().sum::<f64>() / nf;
        let m2 = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nf;
        let m3 = values.iter().map(|v| (v - mean).powi(3)).sum::<f64>() / nf;
        if m2 <= 1e-300 * mean.abs().max(1.0) {
            return Err(FitError::NoSpread);
        }
        let var = m2 * nf / (nf - 1.0);
        let skew = (m3 / m2.powf(1.5)).clamp(-0.99, 0.99);
        let g = skew.abs().powf(2.0 / 3.0);
        let k = ((4.0 - PI) / 2.0).powf(2.0 / 3.0);
        let delta = skew.signum() * ((PI / 2.0) * g / (g + k)).sqrt();
        let alpha = delta / (1.0 - delta * delta).sqrt();
        let omega = (var / (1.0 - FRAC_2_PI * delta * delta)).sqrt();
        let xi = mean - omega * delta * FRAC_2_PI.sqrt();
        Ok(SkewNormal { xi, omega, alpha })
    }

    /// The mean `xi + omega delta sqrt(2/pi)`.
    pub fn mean(&self) -> f64 {
        let delta = self.alpha / (1.0 + self.alpha * self.alpha).sqrt();
        self.xi + self.omega * delta * FRAC_2_PI.sqrt()
    }

    /// `ln` of the density at `x`.
    pub fn ln_pdf(&self, x: f64) -> f64 {
        let z = (x - self.xi) / self.omega;
        (2.0f64).ln() - 0.5 * z * z - 0.5 * (2.0 * PI).ln() + ln_normal_cdf(self.alpha * z)
            - self.omega.ln()
    }

    /// `ln F(x)`: the log CDF, by Simpson's rule on the standardised density over
    /// `[-40, z]` (below -40 the density is under `e^-800`), summed in log space.
    pub fn ln_cdf(&self, x: f64) -> f64 {
        let z = (x - self.xi) / self.omega;
        const LO: f64 = -40.0;
        if z <= LO {
            // Beyond the grid: the normal tail bound, times 2 Phi(alpha z) <= 2.
            return (2.0f64).ln() + ln_normal_cdf(z) + ln_normal_cdf(self.alpha * z);
        }
        if z >= 40.0 {
            return 0.0;
        }
        let ln_f = |u: f64| {
            (2.0f64).ln() - 0.5 * u * u - 0.5 * (2.0 * PI).ln() + ln_normal_cdf(self.alpha * u)
        };
        // Steps of at most 1e-3 standard units (and an even count for Simpson).
        let mut m = ((z - LO) / 1e-3).ceil() as usize;
        m += m % 2;
        let h = (z - LO) / m as f64;
        let logs: Vec<f64> = (0..=m)
            .map(|i| {
                let w = if i == 0 || i == m {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                ln_f(LO + h * i as f64) + f64::ln(w)
            })
            .collect();
        let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = logs.iter().map(|l| (l - top).exp()).sum();
        (top + sum.ln() + (h / 3.0).ln()).min(0.0)
    }
}

/// An extrapolated rank and exposure: `rank = max(1, |R| F(x))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extrapolated {
    /// `|R| F(x)`, at least 1.
    pub rank: f64,
    /// `log2 |R| - log2 rank`.
    pub exposure: f64,
}

/// The extrapolated rank and exposure of a secret of log-perplexity `secret` in a space
/// of `candidates`, from the fitted distribution `fit`.
pub fn extrapolate(fit: &SkewNormal, secret: f64, candidates: f64) -> Extrapolated {
    let ln_rank = (candidates.ln() + fit.ln_cdf(secret)).max(0.0);
    let rank = ln_rank.exp();
    Extrapolated {
        rank,
        exposure: candidates.log2() - ln_rank / std::f64::consts::LN_2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn ranks_count_ties_against_the_secret() {
        let others = [3.0, 1.0, 2.0, 2.0, 5.0];
        assert_eq!(exact_rank(0.5, others), 1, "most likely");
        assert_eq!(exact_rank(2.0, others), 4, "the two ties rank above it");
        assert_eq!(exact_rank(9.0, others), 6, "least likely: rank |R|");
        assert_eq!(exposure(6.0, 1.0), 6f64.log2());
        assert_eq!(exposure(6.0, 6.0), 0.0);
    }

    #[test]
    fn the_cdf_matches_closed_forms() {
        // alpha = 0 is the normal: F = Phi, in the body and deep in the tail.
        let n = SkewNormal {
            xi: 1.0,
            omega: 2.0,
            alpha: 0.0,
        };
        for z in [-35.0, -20.0, -8.0, -3.0, -1.0, 0.0, 0.5, 2.0] {
            let x = 1.0 + 2.0 * z;
            let want = ln_normal_cdf(z);
            let got = n.ln_cdf(x);
            assert!(
                (got - want).abs() < 1e-7 * want.abs().max(1.0),
                "z {z}: {got} vs {want}"
            );
        }
        // The skew-normal at its location: F(xi) = 1/2 - atan(alpha) / pi.
        for alpha in [-4.0, -1.0, 0.5, 1.0, 3.0] {
            let s = SkewNormal {
                xi: -2.0,
                omega: 0.7,
                alpha,
            };
            let want = 0.5 - f64::atan(alpha) / PI;
            let got = s.ln_cdf(-2.0).exp();
            assert!((got - want).abs() < 1e-9, "alpha {alpha}: {got} vs {want}");
        }
        // ln Phi across the switch to the asymptotic form.
        assert!((ln_normal_cdf(-29.999) - ln_normal_cdf(-30.001)).abs() < 0.07);
        assert!((ln_normal_cdf(0.0) - 0.5f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn the_fit_recovers_a_known_skew_normal() {
        // X = xi + omega (delta |U0| + sqrt(1 - delta^2) U1) is SN(xi, omega, alpha).
        let (xi, omega, alpha) = (30.0, 4.0, 3.0f64);
        let delta = alpha / (1.0 + alpha * alpha).sqrt();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let xs: Vec<f64> = (0..200_000)
            .map(|_| {
                let u0: f64 = StandardNormal.sample(&mut rng);
                let u1: f64 = StandardNormal.sample(&mut rng);
                xi + omega * (delta * u0.abs() + (1.0 - delta * delta).sqrt() * u1)
            })
            .collect();
        let f = SkewNormal::fit(&xs).unwrap();
        assert!((f.xi - xi).abs() < 0.15, "{f:?}");
        assert!((f.omega - omega).abs() < 0.15, "{f:?}");
        assert!((f.alpha - alpha).abs() < 0.6, "{f:?}");
        // The fitted CDF at a few points against the sample's share below them.
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.01, 0.1, 0.5, 0.9] {
            let x = sorted[(q * sorted.len() as f64) as usize];
            let got = f.ln_cdf(x).exp();
            assert!((got - q).abs() < 0.01, "quantile {q}: {got}");
        }
        assert!(matches!(
            SkewNormal::fit(&[1.0, 1.0, 1.0]),
            Err(FitError::NoSpread)
        ));
        assert!(matches!(
            SkewNormal::fit(&[1.0, 2.0]),
            Err(FitError::TooFew(2))
        ));
        assert!(SkewNormal::fit(&[1.0, f64::NAN, 2.0]).is_err());
    }

    #[test]
    fn extrapolated_exposure_stays_in_range() {
        let f = SkewNormal {
            xi: 0.0,
            omega: 1.0,
            alpha: 0.0,
        };
        let r = 1e8;
        // At the median: rank |R| / 2, exposure 1 bit.
        let mid = extrapolate(&f, 0.0, r);
        assert!((mid.exposure - 1.0).abs() < 1e-9 && (mid.rank - r / 2.0).abs() < 1.0);
        // Far beyond every candidate: rank 1, exposure log2 |R|.
        let far = extrapolate(&f, -50.0, r);
        assert_eq!(far.rank, 1.0);
        assert!((far.exposure - r.log2()).abs() < 1e-12);
        // Least likely: exposure 0.
        assert!(extrapolate(&f, 60.0, r).exposure.abs() < 1e-12);
    }
}
