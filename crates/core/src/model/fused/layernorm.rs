//! Layer norm as one fused operation (see the parent module).
//!
//! burn's `LayerNorm` runs flex's fused kernel only without autodiff: burn-autodiff does
//! not override `ModuleOps::layer_norm`, so in training every layer norm was about ten
//! primitive operations, each with its own backward.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::LayerNorm;
use burn::tensor::{Shape, Tensor};

use super::{broadcast, rows_of};

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

/// The forward in plain operations (every backend without kernels of its own).
fn composed_forward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    eps: f64,
) -> FloatTensor<B> {
    let (dims, _, d) = rows_of(&x.shape());
    let (xh, _) = normalised::<B>(x, eps);
    let g = B::float_reshape(gamma, broadcast(dims.len(), d));
    let b = B::float_reshape(beta, broadcast(dims.len(), d));
    B::float_add(B::float_mul(xh, g), b)
}

/// `(xh, rstd)`: each row normalised, `(x - mean) * rstd`, and `rstd = 1 / sqrt(var + eps)`
/// (biased variance), in plain operations.
fn normalised<B: Backend>(x: FloatTensor<B>, eps: f64) -> (FloatTensor<B>, FloatTensor<B>) {
    let last = x.shape().num_dims() - 1;
    let mean = B::float_mean_dim(x.clone(), last);
    let xc = B::float_sub(x, mean);
    let var = B::float_mean_dim(B::float_mul(xc.clone(), xc.clone()), last);
    let rstd = B::float_recip(B::float_sqrt(B::float_add_scalar(var, eps.into())));
    (B::float_mul(xc, rstd.clone()), rstd)
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
    let (xh, rstd) = normalised::<B>(x, eps);
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
    use crate::model::fused::flex::{lane_sum, par_rows, sum_parts, tensor, view};
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;

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

    /// `dx` of the rows; their `dgamma` and `dbeta`.
    fn backward_rows(
        x: &[f32],
        g: &[f32],
        dy: &[f32],
        eps: f32,
        dx: &mut [f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let d = g.len();
        let n = d as f32;
        let (mut dg, mut db) = (vec![0.0f32; d], vec![0.0f32; d]);
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
            let views = (|| Some((view(&x)?, view(&gamma)?, view(&beta)?)))()
                .filter(|(_, g, b)| g.len() == d && b.len() == d);
            let Some((xs, gs, bs)) = views else {
                return composed_forward::<Self>(x, gamma, beta, eps);
            };
            let mut y = vec![0.0f32; xs.len()];
            par_rows(&mut y, d, |r0, yc| {
                forward_rows(&xs[r0 * d..r0 * d + yc.len()], &gs, &bs, d, eps as f32, yc)
            });
            tensor(y, dims)
        }

        fn fused_layer_norm_backward(
            x: FlexTensor,
            gamma: FlexTensor,
            grad: FlexTensor,
            eps: f64,
        ) -> (FlexTensor, FlexTensor, FlexTensor) {
            let (dims, _, d) = rows_of(&x.shape());
            let views = (|| Some((view(&x)?, view(&gamma)?, view(&grad)?)))()
                .filter(|(xs, g, dy)| g.len() == d && dy.len() == xs.len());
            let Some((xs, gs, dys)) = views else {
                return composed_backward::<Self>(x, gamma, grad, eps);
            };
            let mut dx = vec![0.0f32; xs.len()];
            let parts = par_rows(&mut dx, d, |r0, dxc| {
                let rows = r0 * d..r0 * d + dxc.len();
                backward_rows(&xs[rows.clone()], &gs, &dys[rows], eps as f32, dxc)
            });
            let (pg, pb): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
            (
                tensor(dx, dims),
                tensor(sum_parts(&pg, d), vec![d]),
                tensor(sum_parts(&pb, d), vec![d]),
            )
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::model::fused::flex::tests::{assert_close, random};

        /// The kernels against the composed bodies on flex (the bodies other backends run).
        #[test]
        fn kernels_equal_the_composed_operations() {
            for dims in [vec![3, 7, 13], vec![2, 5, 128], vec![130, 9]] {
                let d = *dims.last().unwrap_or(&1);
                let x = random(&dims, 1, 2.0);
                let g = random(&[d], 2, 1.0);
                let b = random(&[d], 3, 1.0);
                let dy = random(&dims, 4, 1.0);
                assert_close(
                    "y",
                    Flex::fused_layer_norm(x.clone(), g.clone(), b.clone(), 1e-5),
                    composed_forward::<Flex>(x.clone(), g.clone(), b, 1e-5),
                    1e-5,
                );
                let (dx, dg, db) =
                    Flex::fused_layer_norm_backward(x.clone(), g.clone(), dy.clone(), 1e-5);
                let (cx, cg, cb) = composed_backward::<Flex>(x, g, dy, 1e-5);
                assert_close("dx", dx, cx, 1e-5);
                assert_close("dgamma", dg, cg, 5e-5);
                assert_close("dbeta", db, cb, 5e-5);
            }
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
