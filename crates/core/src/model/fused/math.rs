//! `exp` and `erf` on f32 without branches or calls, so that a loop over a slice
//! vectorises (libm's `expf` and `erff` are calls, one element at a time: 5.6% and 7.0%
//! of a native training step in the profile of issue 20).
//!
//! `exp`: Cephes' single-precision scheme (Moshier): `x = n ln 2 + r` with `|r| <= ln 2 / 2`
//! (`ln 2` split in two parts), `e^r` by its degree-7 minimax polynomial, `2^n` built in
//! the exponent bits; relative error about 2e-7. `erf`: the rational minimax approximation
//! on `[-4, 4]` used by Eigen and XLA for f32 (an odd degree-13 numerator over an even
//! degree-8 denominator; `|erf(x)|` rounds to 1 beyond 4); absolute error about 1e-7. The
//! tests compare both with f64 references.

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2 = LN2_HI + LN2_LO`, the high part exact in a few bits so that `n * LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `1.5 * 2^23`: adding it rounds to an integer held in the mantissa's low bits.
const ROUND: f32 = 12_582_912.0;

/// `e^x` (inputs below -87 give `e^-87`, about 1.6e-38, and above 88 give `e^88`).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = r * r * p + r + 1.0;
    // The mantissa's low bits of `t` hold `n` (|n| <= 127): 2^n from the exponent bits.
    let k = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    e * f32::from_bits(((k + 127) << 23) as u32)
}

/// `erf(x)`.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ((((((-2.726_142_3e-10 * x2 + 2.770_681_4e-8) * x2 - 2.101_024_1e-6) * x2
        - 5.692_506_4e-5)
        * x2
        - 7.349_906_3e-4)
        * x2
        - 2.954_6e-3)
        * x2
        - 1.609_603_3e-2)
        * x;
    let q = (((-1.456_607_2e-5 * x2 - 2.133_740_6e-4) * x2 - 1.682_827e-3) * x2 - 7.373_329_3e-3)
        * x2
        - 1.426_473_9e-2;
    p / q
}

/// `1 / sqrt(2)`.
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1 / sqrt(2 pi)`.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// Exact GELU, `x Phi(x) = x (1 + erf(x / sqrt 2)) / 2`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))
}

/// GELU's derivative, `Phi(x) + x phi(x)`.
#[inline(always)]
pub fn gelu_grad(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * FRAC_1_SQRT_2)) + x * FRAC_1_SQRT_2PI * exp(-0.5 * x * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Maclaurin series in f64 (for |x| <= 4 the terms' cancellation leaves
    /// about 1e-9), a reference independent of the rational approximation.
    fn erf64(x: f64) -> f64 {
        let (mut term, mut sum, mut n) = (x, x, 0.0f64);
        while term.abs() > 1e-17 {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    #[test]
    fn exp_matches_f64_to_a_few_ulps() {
        let worst = grid(-87.0, 88.0, 200_003)
            .map(|x| {
                let want = (x as f64).exp();
                ((exp(x) as f64 - want) / want).abs()
            })
            .fold(0.0f64, f64::max);
        assert!(worst < 4e-7, "exp: relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-200.0) < 2e-38 && exp(-200.0) > 0.0);
    }

    #[test]
    fn erf_matches_the_series() {
        let worst = grid(-4.5, 4.5, 90_001)
            .map(|x| {
                let want = if x.abs() > 4.0 {
                    erf64(4.0 * x.signum() as f64)
                } else {
                    erf64(x as f64)
                };
                (erf(x) as f64 - want).abs()
            })
            .fold(0.0f64, f64::max);
        assert!(worst < 5e-7, "erf: absolute error {worst:e}");
        assert_eq!(erf(0.0), 0.0);
        assert!((erf(1.0) - 0.842_700_8).abs() < 2e-7);
    }

    #[test]
    fn gelu_grad_is_the_derivative_of_gelu() {
        for x in grid(-6.0, 6.0, 1_201) {
            let h = 1e-3f64;
            let g = |x: f64| 0.5 * x * (1.0 + erf64(x / std::f64::consts::SQRT_2));
            let numeric = (g(x as f64 + h) - g(x as f64 - h)) / (2.0 * h);
            assert!(
                (gelu_grad(x) as f64 - numeric).abs() < 2e-6,
                "x = {x}: {} vs {numeric}",
                gelu_grad(x)
            );
            assert!((gelu(x) as f64 - g(x as f64)).abs() < 1e-6 * (1.0 + x.abs() as f64));
        }
    }
}
