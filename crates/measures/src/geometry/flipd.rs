//! FLIPD (Kamkari et al., NeurIPS 2024) and the normal bundle (Stanczuk et al., ICML 2024)
//! of any noise predictor, in tensor code that runs on every burn backend.
//!
//! **FLIPD** at `t0`, with `y = psi(t0) x` and no noise added:
//! `FLIPD(x) = D - sigma(t0) tr(d eps / d y) + ||eps(y, t0)||²`, not clamped.
//! The trace is `sum_p v_pᵀ J v_p` over probe vectors `v_p`, each product `v_pᵀ J` one
//! vector-Jacobian product by reverse mode: the points are stacked once per probe into
//! one batch (the network treats rows independently), `(eps(Y) * V).sum()` is
//! differentiated once, and `sum_j V_j (dL/dY)_j` per row is `v_pᵀ J v_p`.
//! - *Exact*: the `D` standard basis vectors (`tr J` exactly, up to float rounding).
//! - *Hutchinson*: `P` Rademacher vectors from `Stream::Geometry`; the estimate is the
//!   mean of `v_pᵀ J v_p`, unbiased, with standard error `sd / sqrt(P)` (the sample
//!   standard deviation of the `P` terms; its variance is `2 sum_{i≠j} J_ij²`-ish per
//!   probe, 0 for a diagonal `J`). It is returned with each estimate. FLIPD's error is
//!   `sigma(t0)` times the trace's.
//!
//! **Normal bundle** at time `t` (`normal_bundle_t0`): `K = 4D` perturbations `x_i = psi
//! x + sigma e_i` (noise from `Stream::Geometry`), scores `-eps(x_i, t) / sigma` stacked
//! into a `K x D` matrix, its singular values `s_1 >= ... >= s_D`; the normal dimension
//! is `1 + argmax_j (s_j - s_{j+1})` (the largest drop, first on a tie) and the LID `D -`
//! that. By construction it lies in `[1, D - 1]`: with `D = 2` it is always 1, and it
//! cannot report a point mass (0) or a full-dimensional region (`D`). All singular values
//! equal (no drop at all) gives `None`.

use mnemo_core::backend::Device;
use mnemo_core::burn::tensor::{Tensor, TensorData};
use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::GeometryError;
use super::model::{EpsNet, gauss, psi, sigma};

/// Rows of one stacked batch in a trace pass (points × probes); larger inputs are cut into
/// chunks of whole points.
pub const MAX_ROWS: usize = 16_384;

/// Something that predicts the noise `eps(y, t)` of a VP-SDE, in tensor code.
pub trait NoisePredictor {
    /// The data dimension `D`.
    fn dim(&self) -> usize;
    /// `eps(y, t)` for every row of `y` `[N, D]`.
    fn eps(&self, y: Tensor<2>, t: f64) -> Tensor<2>;
}

impl NoisePredictor for EpsNet {
    fn dim(&self) -> usize {
        let [_, d] = self.out.weight.val().dims();
        d
    }
    fn eps(&self, y: Tensor<2>, t: f64) -> Tensor<2> {
        self.forward_at(y, t)
    }
}

/// The exact noise predictor of Gaussian data `N(mu, S)` (`S` may be singular, a point
/// mass is `S = 0`): `eps(y, t) = sigma (psi² S + sigma² I)^-1 (y - psi mu)`, the matrix
/// computed on the host in `f64` and applied as a tensor product.
#[derive(Debug, Clone)]
pub struct GaussianEps {
    /// Mean.
    pub mu: Vec<f64>,
    /// Covariance, row-major `D x D`.
    pub cov: Vec<f64>,
}

impl GaussianEps {
    /// `(psi² S + sigma² I)^-1` at `t`, row-major.
    pub fn precision(&self, t: f64) -> Option<Vec<f64>> {
        let d = self.mu.len();
        let (p, s) = (psi(t), sigma(t));
        let c = DMatrix::from_fn(d, d, |i, j| {
            p * p * self.cov[i * d + j] + if i == j { s * s } else { 0.0 }
        });
        let inv = c.try_inverse()?;
        Some((0..d * d).map(|k| inv[(k / d, k % d)]).collect())
    }

    /// METHODS.md's closed form: with `s2 = e^{B(t0)} - 1` and `C = S + s2 I`,
    /// `FLIPD(x) = D - s2 tr C^-1 + s2 ||C^-1 (x - mu)||²`.
    pub fn flipd_closed_form(&self, x: &[f64], t0: f64) -> Option<f64> {
        let d = self.mu.len();
        let s2 = super::model::big_b(t0).exp_m1();
        let c = DMatrix::from_fn(d, d, |i, j| {
            self.cov[i * d + j] + if i == j { s2 } else { 0.0 }
        });
        let inv = c.try_inverse()?;
        let r = DVector::from_fn(d, |i, _| x[i] - self.mu[i]);
        let v = &inv * r;
        Some(d as f64 - s2 * inv.trace() + s2 * v.norm_squared())
    }
}

impl NoisePredictor for GaussianEps {
    fn dim(&self) -> usize {
        self.mu.len()
    }
    fn eps(&self, y: Tensor<2>, t: f64) -> Tensor<2> {
        let d = self.mu.len();
        let device = y.device();
        let (p, s) = (psi(t), sigma(t));
        // A singular matrix only at t = 0 with a singular S; the limits exclude t = 0.
        let prec = self.precision(t).unwrap_or_else(|| vec![0.0; d * d]);
        let a: Vec<f32> = prec.iter().map(|v| (s * v) as f32).collect();
        let m: Vec<f32> = self.mu.iter().map(|v| (p * v) as f32).collect();
        let a = Tensor::<2>::from_data(TensorData::new(a, [d, d]), &device);
        let m = Tensor::<1>::from_data(TensorData::new(m, [d]), &device).unsqueeze::<2>();
        (y - m).matmul(a)
    }
}

/// How the trace is taken.
pub enum Trace<'a> {
    /// `D` basis probes.
    Exact,
    /// `probes` Rademacher probes drawn from `rng`.
    Hutchinson {
        /// Probes per point.
        probes: usize,
        /// Their stream.
        rng: &'a mut ChaCha8Rng,
    },
}

/// `eps` at each point and the trace of its Jacobian there.
#[derive(Debug, Clone, PartialEq)]
pub struct EpsTrace {
    /// `eps(y_i, t)`, row-major `N x D`.
    pub eps: Vec<f64>,
    /// `tr(d eps / d y)` at each point (estimated for Hutchinson).
    pub trace: Vec<f64>,
    /// Standard error of each trace (Hutchinson only).
    pub se: Option<Vec<f64>>,
}

fn device_err(e: impl std::fmt::Debug) -> GeometryError {
    GeometryError::Device(format!("{e:?}"))
}

pub(super) async fn read(t: Tensor<2>) -> Result<Vec<f32>, GeometryError> {
    t.into_data_async()
        .await
        .map_err(device_err)?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(device_err)
}

/// `eps` and the Jacobian trace of `model` at the points `y` (row-major, `N x D`) at time
/// `t`; `device` must be an autodiff device (the model's).
pub async fn eps_and_trace<P: NoisePredictor>(
    model: &P,
    y: &[f64],
    t: f64,
    trace: Trace<'_>,
    device: &Device,
) -> Result<EpsTrace, GeometryError> {
    let d = model.dim();
    let n = y.len() / d;
    let (probes, mut rng) = match trace {
        Trace::Exact => (d, None),
        Trace::Hutchinson { probes, rng } => (probes.max(1), Some(rng)),
    };
    let chunk = (MAX_ROWS / probes).max(1);
    let mut out = EpsTrace {
        eps: Vec::with_capacity(n * d),
        trace: Vec::with_capacity(n),
        se: rng.is_some().then(Vec::new),
    };
    let mut start = 0;
    while start < n {
        let m = chunk.min(n - start);
        let pts = &y[start * d..(start + m) * d];
        // V: probe p of point i at row p * m + i.
        let mut v = vec![0.0f32; probes * m * d];
        for p in 0..probes {
            for i in 0..m {
                for c in 0..d {
                    v[(p * m + i) * d + c] = match rng.as_deref_mut() {
                        None => (c == p) as u8 as f32,
                        Some(r) => {
                            if r.random::<bool>() {
                                1.0
                            } else {
                                -1.0
                            }
                        }
                    };
                }
            }
        }
        let stacked: Vec<f32> = (0..probes)
            .flat_map(|_| pts.iter().map(|&x| x as f32))
            .collect();
        let yt = Tensor::<2>::from_data(TensorData::new(stacked, [probes * m, d]), device)
            .require_grad();
        let vt = Tensor::<2>::from_data(TensorData::new(v, [probes * m, d]), device);
        let e = model.eps(yt.clone(), t);
        let loss = (e.clone() * vt.clone()).sum();
        let grads = loss.backward();
        let g = yt
            .grad(&grads)
            .ok_or_else(|| GeometryError::Device("no gradient reached the input".into()))?;
        let q = (g * vt.inner()).sum_dim(1);
        let q = read(q).await?;
        let eps = read(e.inner().slice([0..m, 0..d])).await?;
        out.eps.extend(eps.iter().map(|&v| v as f64));
        for i in 0..m {
            let terms: Vec<f64> = (0..probes).map(|p| q[p * m + i] as f64).collect();
            match &mut out.se {
                None => out.trace.push(terms.iter().sum()),
                Some(se) => {
                    let mean = terms.iter().sum::<f64>() / probes as f64;
                    let var = if probes > 1 {
                        terms.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>()
                            / (probes - 1) as f64
                    } else {
                        0.0
                    };
                    out.trace.push(mean);
                    se.push((var / probes as f64).sqrt());
                }
            }
        }
        start += m;
    }
    Ok(out)
}

/// FLIPD of `model` at the points `x` (row-major `N x D`) at `t0`, with the standard
/// error of each value (Hutchinson only).
pub async fn flipd<P: NoisePredictor>(
    model: &P,
    x: &[f64],
    t0: f64,
    trace: Trace<'_>,
    device: &Device,
) -> Result<(Vec<f64>, Option<Vec<f64>>), GeometryError> {
    let d = model.dim();
    let (p, s) = (psi(t0), sigma(t0));
    let y: Vec<f64> = x.iter().map(|v| p * v).collect();
    let et = eps_and_trace(model, &y, t0, trace, device).await?;
    let values = et
        .trace
        .iter()
        .zip(et.eps.chunks(d))
        .map(|(tr, e)| d as f64 - s * tr + e.iter().map(|v| v * v).sum::<f64>())
        .collect();
    let se = et.se.map(|se| se.iter().map(|v| s * v).collect());
    Ok((values, se))
}

/// The normal bundle's LID estimate at each point (see the module), on any device (no
/// gradient is taken).
pub async fn normal_bundle<P: NoisePredictor>(
    model: &P,
    x: &[f64],
    t: f64,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<Vec<Option<f64>>, GeometryError> {
    let d = model.dim();
    let n = x.len() / d;
    let k = 4 * d;
    let (p, s) = (psi(t), sigma(t));
    let mut out = Vec::with_capacity(n);
    let chunk = (MAX_ROWS / k).max(1);
    let mut start = 0;
    while start < n {
        let m = chunk.min(n - start);
        let mut rows = Vec::with_capacity(m * k * d);
        for i in start..start + m {
            for _ in 0..k {
                for c in 0..d {
                    rows.push((p * x[i * d + c]) as f32 + s as f32 * gauss(rng));
                }
            }
        }
        let yt = Tensor::<2>::from_data(TensorData::new(rows, [m * k, d]), device);
        let e = read(model.eps(yt, t)).await?;
        for i in 0..m {
            let mat = DMatrix::from_fn(k, d, |r, c| -(e[(i * k + r) * d + c] as f64) / s);
            let mut sv: Vec<f64> = mat.singular_values().iter().copied().collect();
            sv.sort_by(|a, b| b.total_cmp(a));
            let mut best: Option<(usize, f64)> = None;
            for j in 0..sv.len().saturating_sub(1) {
                let drop = sv[j] - sv[j + 1];
                if drop > 0.0 && best.is_none_or(|(_, b)| drop > b) {
                    best = Some((j, drop));
                }
            }
            out.push(best.map(|(j, _)| (d - (j + 1)) as f64));
        }
        start += m;
    }
    Ok(out)
}
