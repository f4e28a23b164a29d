//! Layer norm as one fused operation, forward and backward, on the CPU backend (flex).
//!
//! burn's `LayerNorm` runs flex's fused kernel only without autodiff: burn-autodiff does
//! not override `ModuleOps::layer_norm`, so in training every layer norm was about ten
//! primitive operations, each with its own backward. This registers a primitive of
//! Mnemo's own through burn's backend extension (`#[backend_extension]`): flex gets
//! fused f32 kernels over contiguous rows, `Autodiff<B, C>` a handwritten backward that
//! calls the fused gradient kernel, and every other backend (WebGPU, CUDA, ndarray) the
//! trait's default bodies, which compose plain burn operations. A test checks values and
//! gradients against burn's `LayerNorm` (tests/fused_layernorm.rs).

use std::borrow::Cow;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::LayerNorm;
use burn::tensor::{Shape, Tensor};

/// The layer norm's primitives.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda")),
    Autodiff
)]
pub trait LayerNormBackend: Backend {
    /// `(x - mean) / sqrt(var + eps) * gamma + beta` over the last dimension (biased
    /// variance).
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        composed_forward::<Self>(x, gamma, beta, eps)
    }

    /// `(dx, dgamma, dbeta)` from the forward's input, `gamma` and the output's gradient.
    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composed_backward::<Self>(x, gamma, grad, eps)
    }
}

/// `(dims, rows, d)` of a tensor normalised over its last dimension.
fn rows_of(shape: &Shape) -> (Vec<usize>, usize, usize) {
    let dims: Vec<usize> = shape.iter().copied().collect();
    let d = dims.last().copied().unwrap_or(1).max(1);
    let rows = dims.iter().product::<usize>() / d;
    (dims, rows, d)
}

/// `[1, ..., 1, d]` of rank `rank`.
fn broadcast(rank: usize, d: usize) -> Shape {
    Shape::from(
        (0..rank)
            .map(|i| if i + 1 == rank { d } else { 1 })
            .collect::<Vec<_>>(),
    )
}

/// The forward in plain operations (every backend without kernels of its own).
fn composed_forward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    eps: f64,
) -> FloatTensor<B> {
    let (dims, _, d) = rows_of(&x.shape());
    let last = dims.len() - 1;
    let mean = B::float_mean_dim(x.clone(), last);
    let xc = B::float_sub(x, mean);
    let var = B::float_mean_dim(B::float_mul(xc.clone(), xc.clone()), last);
    let std = B::float_sqrt(B::float_add_scalar(var, eps.into()));
    let g = B::float_reshape(gamma, broadcast(dims.len(), d));
    let b = B::float_reshape(beta, broadcast(dims.len(), d));
    B::float_add(B::float_mul(B::float_div(xc, std), g), b)
}

/// The backward in plain operations: with `xh = (x - mean) * rstd` and `a = dy * gamma`,
/// `dx = rstd * (a - mean(a) - xh * mean(a * xh))`, `dgamma = sum(dy * xh)`,
/// `dbeta = sum(dy)` over the rows.
fn composed_backward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    dy: FloatTensor<B>,
    eps: f64,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let (dims, rows, d) = rows_of(&x.shape());
    let last = dims.len() - 1;
    let mean = B::float_mean_dim(x.clone(), last);
    let xc = B::float_sub(x, mean);
    let var = B::float_mean_dim(B::float_mul(xc.clone(), xc.clone()), last);
    let rstd = B::float_recip(B::float_sqrt(B::float_add_scalar(var, eps.into())));
    let xh = B::float_mul(xc, rstd.clone());
    let a = B::float_mul(
        dy.clone(),
        B::float_reshape(gamma, broadcast(dims.len(), d)),
    );
    let m1 = B::float_mean_dim(a.clone(), last);
    let m2 = B::float_mean_dim(B::float_mul(a.clone(), xh.clone()), last);
    let dx = B::float_mul(
        B::float_sub(B::float_sub(a, m1), B::float_mul(xh.clone(), m2)),
        rstd,
    );
    let flat = Shape::from(vec![rows, d]);
    let dgamma = B::float_sum_dim(
        B::float_reshape(B::float_mul(dy.clone(), xh), flat.clone()),
        0,
    );
    let dbeta = B::float_sum_dim(B::float_reshape(dy, flat), 0);
    let one = Shape::from(vec![d]);
    (
        dx,
        B::float_reshape(dgamma, one.clone()),
        B::float_reshape(dbeta, one),
    )
}

#[cfg(feature = "flex")]
mod flex {
    //! The fused f32 kernels on flex.

    use super::*;
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;
    use burn::tensor::{DType, TensorData};

    /// A contiguous f32 view, copied only when the tensor is a strided view.
    fn rows(t: &FlexTensor) -> Option<Cow<'_, [f32]>> {
        match t.as_slice::<f32>() {
            Some(s) => Some(Cow::Borrowed(s)),
            None => t
                .to_contiguous()
                .as_slice::<f32>()
                .map(|s| Cow::Owned(s.to_vec())),
        }
    }

    fn tensor(values: Vec<f32>, dims: Vec<usize>) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, dims))
    }

    const LANES: usize = 8;

    /// `sum f(a[i], b[i])` over eight accumulators, so the loop vectorises (a single f32
    /// accumulator cannot be reordered by the compiler).
    #[inline(always)]
    fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(&x, &y)| f(x, y))
            .sum();
        for (xa, xb) in ca.zip(cb) {
            for l in 0..LANES {
                acc[l] += f(xa[l], xb[l]);
            }
        }
        acc.iter().sum::<f32>() + tail
    }

    /// A row's mean and `1 / sqrt(var + eps)`.
    #[inline(always)]
    fn stats(row: &[f32], eps: f32) -> (f32, f32) {
        let n = row.len() as f32;
        let mean = lane_sum(row, row, |x, _| x) / n;
        let var = lane_sum(row, row, |x, _| (x - mean) * (x - mean)) / n;
        (mean, 1.0 / (var + eps).sqrt())
    }

    fn forward_rows(x: &[f32], g: &[f32], b: &[f32], d: usize, eps: f32, y: &mut [f32]) {
        for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            let (mean, rstd) = stats(xr, eps);
            for (((y, &x), &g), &b) in yr.iter_mut().zip(xr).zip(g).zip(b) {
                *y = (x - mean) * rstd * g + b;
            }
        }
    }

    /// `dx` of the rows; `dgamma` and `dbeta` added into `dg` and `db`.
    #[allow(clippy::too_many_arguments)]
    fn backward_rows(
        x: &[f32],
        g: &[f32],
        dy: &[f32],
        d: usize,
        eps: f32,
        dx: &mut [f32],
        dg: &mut [f32],
        db: &mut [f32],
    ) {
        let n = d as f32;
        let mut xh = vec![0.0f32; d];
        let mut a = vec![0.0f32; d];
        for ((xr, dyr), dxr) in x
            .chunks_exact(d)
            .zip(dy.chunks_exact(d))
            .zip(dx.chunks_exact_mut(d))
        {
            let (mean, rstd) = stats(xr, eps);
            for i in 0..d {
                let h = (xr[i] - mean) * rstd;
                xh[i] = h;
                a[i] = dyr[i] * g[i];
                dg[i] += dyr[i] * h;
                db[i] += dyr[i];
            }
            let m1 = lane_sum(&a, &a, |v, _| v) / n;
            let m2 = lane_sum(&a, &xh, |v, h| v * h) / n;
            for ((dx, &v), &h) in dxr.iter_mut().zip(&a).zip(&xh) {
                *dx = rstd * (v - m1 - h * m2);
            }
        }
    }

    /// Rows per task when rows are split over threads.
    #[cfg(feature = "rayon")]
    const ROWS_PER_TASK: usize = 64;

    fn forward(x: &[f32], g: &[f32], b: &[f32], d: usize, eps: f32, y: &mut [f32]) {
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            y.par_chunks_mut(ROWS_PER_TASK * d)
                .zip(x.par_chunks(ROWS_PER_TASK * d))
                .for_each(|(yc, xc)| forward_rows(xc, g, b, d, eps, yc));
        }
        #[cfg(not(feature = "rayon"))]
        forward_rows(x, g, b, d, eps, y);
    }

    /// `(dgamma, dbeta)`; each task sums its rows, then the tasks' sums are added in task
    /// order (the same order every run: bit-identical losses run to run).
    fn backward(
        x: &[f32],
        g: &[f32],
        dy: &[f32],
        d: usize,
        eps: f32,
        dx: &mut [f32],
    ) -> (Vec<f32>, Vec<f32>) {
        #[cfg(feature = "rayon")]
        let parts: Vec<(Vec<f32>, Vec<f32>)> = {
            use rayon::prelude::*;
            let chunk = ROWS_PER_TASK * d;
            dx.par_chunks_mut(chunk)
                .zip(x.par_chunks(chunk).zip(dy.par_chunks(chunk)))
                .map(|(dxc, (xc, dyc))| {
                    let (mut dg, mut db) = (vec![0.0f32; d], vec![0.0f32; d]);
                    backward_rows(xc, g, dyc, d, eps, dxc, &mut dg, &mut db);
                    (dg, db)
                })
                .collect()
        };
        #[cfg(not(feature = "rayon"))]
        let parts = {
            let (mut dg, mut db) = (vec![0.0f32; d], vec![0.0f32; d]);
            backward_rows(x, g, dy, d, eps, dx, &mut dg, &mut db);
            vec![(dg, db)]
        };
        let (mut dg, mut db) = (vec![0.0f32; d], vec![0.0f32; d]);
        for (pg, pb) in &parts {
            for i in 0..d {
                dg[i] += pg[i];
                db[i] += pb[i];
            }
        }
        (dg, db)
    }

    impl LayerNormBackend for Flex {
        fn fused_layer_norm(
            x: FlexTensor,
            gamma: FlexTensor,
            beta: FlexTensor,
            eps: f64,
        ) -> FlexTensor {
            let (dims, _, d) = rows_of(&x.shape());
            let views = (x.dtype() == DType::F32)
                .then(|| Some((rows(&x)?, rows(&gamma)?, rows(&beta)?)))
                .flatten()
                .filter(|(_, g, b)| g.len() == d && b.len() == d);
            let Some((xs, gs, bs)) = views else {
                return composed_forward::<Self>(x, gamma, beta, eps);
            };
            let mut y = vec![0.0f32; xs.len()];
            forward(&xs, &gs, &bs, d, eps as f32, &mut y);
            tensor(y, dims)
        }

        fn fused_layer_norm_backward(
            x: FlexTensor,
            gamma: FlexTensor,
            grad: FlexTensor,
            eps: f64,
        ) -> (FlexTensor, FlexTensor, FlexTensor) {
            let (dims, _, d) = rows_of(&x.shape());
            let views = (x.dtype() == DType::F32)
                .then(|| Some((rows(&x)?, rows(&gamma)?, rows(&grad)?)))
                .flatten()
                .filter(|(xs, g, dy)| g.len() == d && dy.len() == xs.len());
            let Some((xs, gs, dys)) = views else {
                return composed_backward::<Self>(x, gamma, grad, eps);
            };
            let mut dx = vec![0.0f32; xs.len()];
            let (dg, db) = backward(&xs, &gs, &dys, d, eps as f32, &mut dx);
            (tensor(dx, dims), tensor(dg, vec![d]), tensor(db, vec![d]))
        }
    }
}

#[cfg(feature = "ndarray")]
impl LayerNormBackend for burn::backend::NdArray {}

#[cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda"))]
impl LayerNormBackend for burn::backend::Cube {}

/// The backward of [`LayerNormBackend::fused_layer_norm`]: the fused gradient kernel.
#[derive(Debug)]
struct FusedLayerNormBackward;

impl<B: LayerNormBackend> Backward<B, 3> for FusedLayerNormBackward {
    /// The forward's input, `gamma` and `eps` (the row statistics are recomputed).
    type State = (FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, gamma, eps) = ops.state;
        let (dx, dgamma, dbeta) = B::fused_layer_norm_backward(x, gamma, dy, eps);
        for (node, g) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(n) = node {
                grads.register::<B>(n.id, g);
            }
        }
    }
}

impl<B: LayerNormBackend, C: CheckpointStrategy> LayerNormBackend for Autodiff<B, C> {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        let (xp, xn) = x.into_parts();
        let (gp, gn) = gamma.into_parts();
        let (bp, bn) = beta.into_parts();
        match FusedLayerNormBackward
            .prepare::<C>([xn, gn, bn])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::fused_layer_norm(xp.clone(), gp.clone(), bp, eps);
                prep.finish((xp, gp, eps), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_layer_norm(xp, gp, bp, eps)),
        }
    }
}

/// The epsilon of every layer norm of Mnemo's models (burn's default; imported models with
/// another are refused by `hf::parse_config`). burn keeps a `LayerNorm`'s own private.
pub const EPSILON: f64 = 1e-5;

/// `ln` on `x` through the fused primitive (Mnemo's layer norms all have a bias and
/// [`EPSILON`]).
pub fn layer_norm<const D: usize>(ln: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    let Some(beta) = &ln.beta else {
        return ln.forward(x);
    };
    Tensor::from_dispatch(<Dispatch as LayerNormBackend>::fused_layer_norm(
        x.into_dispatch(),
        ln.gamma.val().into_dispatch(),
        beta.val().into_dispatch(),
        EPSILON,
    ))
}
