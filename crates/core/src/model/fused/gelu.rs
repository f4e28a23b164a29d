//! The MLP's bias and exact GELU as one fused operation (see the parent module):
//! `gelu(x + bias)` over the last dimension, after the expansion's matrix product.
//!
//! Written out it is a bias added (one pass, recorded under autodiff) and burn's GELU
//! (one pass with libm's `erff`, one element at a time, and one backward with `erff` and
//! `expf`). The fused kernels add the bias on the fly and compute `erf` and `exp` in
//! vectorisable form ([`super::math`]); the backward also sums the bias's gradient. On
//! backends without kernels the composed backward uses the exact derivative (burn's
//! default `gelu_backward`, which WebGPU used, is the tanh approximation's).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::tensor::{Shape, Tensor};

use super::{broadcast, rows_of};

/// The bias + GELU primitives.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda")),
    Autodiff
)]
pub trait BiasGeluBackend: Backend {
    /// `gelu(x + bias)`, exact GELU, `bias` `[d]` added to every row of `x` `[..., d]`.
    fn bias_gelu(x: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        composed_forward::<Self>(x, bias)
    }

    /// `(dx, dbias)` from the forward's inputs and the output's gradient.
    fn bias_gelu_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composed_backward::<Self>(x, bias, grad)
    }
}

/// `x + bias` in plain operations.
fn biased<B: Backend>(x: FloatTensor<B>, bias: FloatTensor<B>) -> FloatTensor<B> {
    let (dims, _, d) = rows_of(&x.shape());
    B::float_add(x, B::float_reshape(bias, broadcast(dims.len(), d)))
}

/// The forward in plain operations.
fn composed_forward<B: Backend>(x: FloatTensor<B>, bias: FloatTensor<B>) -> FloatTensor<B> {
    let z = biased::<B>(x, bias);
    B::float_mul(z.clone(), cdf::<B>(z))
}

/// `Phi(z) = (1 + erf(z / sqrt 2)) / 2` in plain operations.
fn cdf<B: Backend>(z: FloatTensor<B>) -> FloatTensor<B> {
    let erf = B::float_erf(B::float_mul_scalar(
        z,
        std::f64::consts::FRAC_1_SQRT_2.into(),
    ));
    B::float_mul_scalar(B::float_add_scalar(erf, 1.0.into()), 0.5.into())
}

/// The backward in plain operations: `dz = dy * (Phi(z) + z phi(z))`, `dbias = sum(dz)`.
fn composed_backward<B: Backend>(
    x: FloatTensor<B>,
    bias: FloatTensor<B>,
    dy: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let (_, rows, d) = rows_of(&x.shape());
    let z = biased::<B>(x, bias);
    let cdf = cdf::<B>(z.clone());
    let pdf = B::float_mul_scalar(
        B::float_exp(B::float_mul_scalar(
            B::float_mul(z.clone(), z.clone()),
            (-0.5).into(),
        )),
        (1.0 / (2.0 * std::f64::consts::PI).sqrt()).into(),
    );
    let dz = B::float_mul(dy, B::float_add(cdf, B::float_mul(z, pdf)));
    let dbias = B::float_sum_dim(B::float_reshape(dz.clone(), Shape::from(vec![rows, d])), 0);
    (dz, B::float_reshape(dbias, Shape::from(vec![d])))
}

#[cfg(feature = "flex")]
mod flex {
    //! The fused f32 kernels on flex.

    use super::*;
    use crate::model::fused::flex::{par_rows, sum_parts, tensor, view};
    use crate::model::fused::math::{gelu, gelu_grad};
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;

    impl BiasGeluBackend for Flex {
        fn bias_gelu(x: FlexTensor, bias: FlexTensor) -> FlexTensor {
            let (dims, _, d) = rows_of(&x.shape());
            let views = (|| Some((view(&x)?, view(&bias)?)))().filter(|(_, b)| b.len() == d);
            let Some((xs, bs)) = views else {
                return composed_forward::<Self>(x, bias);
            };
            let mut y = vec![0.0f32; xs.len()];
            par_rows(&mut y, d, |r0, yc| {
                let x = &xs[r0 * d..r0 * d + yc.len()];
                for (yr, xr) in yc.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                    for ((y, &x), &b) in yr.iter_mut().zip(xr).zip(bs.iter()) {
                        *y = gelu(x + b);
                    }
                }
            });
            tensor(y, dims)
        }

        fn bias_gelu_backward(
            x: FlexTensor,
            bias: FlexTensor,
            grad: FlexTensor,
        ) -> (FlexTensor, FlexTensor) {
            let (dims, _, d) = rows_of(&x.shape());
            let views = (|| Some((view(&x)?, view(&bias)?, view(&grad)?)))()
                .filter(|(xs, b, g)| b.len() == d && g.len() == xs.len());
            let Some((xs, bs, gs)) = views else {
                return composed_backward::<Self>(x, bias, grad);
            };
            let mut dx = vec![0.0f32; xs.len()];
            let parts = par_rows(&mut dx, d, |r0, dc| {
                let rows = r0 * d..r0 * d + dc.len();
                let (x, g) = (&xs[rows.clone()], &gs[rows]);
                let mut db = vec![0.0f32; d];
                for ((dr, xr), gr) in dc
                    .chunks_exact_mut(d)
                    .zip(x.chunks_exact(d))
                    .zip(g.chunks_exact(d))
                {
                    for ((dz, &x), (&b, &g)) in dr.iter_mut().zip(xr).zip(bs.iter().zip(gr)) {
                        *dz = g * gelu_grad(x + b);
                    }
                    for (s, &dz) in db.iter_mut().zip(dr.iter()) {
                        *s += dz;
                    }
                }
                db
            });
            (tensor(dx, dims), tensor(sum_parts(&parts, d), vec![d]))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::model::fused::flex::tests::{assert_close, random};

        /// The kernels against the composed bodies on flex (the bodies other backends run).
        #[test]
        fn kernels_equal_the_composed_operations() {
            for dims in [vec![2, 3, 7], vec![2, 150, 64], vec![70, 5]] {
                let d = *dims.last().unwrap_or(&1);
                let x = random(&dims, 7, 5.0);
                let b = random(&[d], 8, 1.0);
                assert_close(
                    "y",
                    Flex::bias_gelu(x.clone(), b.clone()),
                    composed_forward::<Flex>(x.clone(), b.clone()),
                    1e-6,
                );
                let dy = random(&dims, 9, 1.0);
                let (dx, db) = Flex::bias_gelu_backward(x.clone(), b.clone(), dy.clone());
                let (cx, cb) = composed_backward::<Flex>(x, b, dy);
                assert_close("dx", dx, cx, 1e-6);
                assert_close("dbias", db, cb, 2e-5);
            }
        }
    }
}

#[cfg(feature = "ndarray")]
impl BiasGeluBackend for burn::backend::NdArray {}

#[cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda"))]
impl BiasGeluBackend for burn::backend::Cube {}

/// The backward of [`BiasGeluBackend::bias_gelu`].
#[derive(Debug)]
struct BiasGeluBackward;

impl<B: BiasGeluBackend> Backward<B, 2> for BiasGeluBackward {
    /// The forward's inputs.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_bias] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, bias) = ops.state;
        let (dx, dbias) = B::bias_gelu_backward(x, bias, dy);
        for (node, g) in [(node_x, dx), (node_bias, dbias)] {
            if let Some(n) = node {
                grads.register::<B>(n.id, g);
            }
        }
    }
}

impl<B: BiasGeluBackend, C: CheckpointStrategy> BiasGeluBackend for Autodiff<B, C> {
    fn bias_gelu(x: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        let (xp, xn) = x.into_parts();
        let (bp, bn) = bias.into_parts();
        match BiasGeluBackward
            .prepare::<C>([xn, bn])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::bias_gelu(xp.clone(), bp.clone());
                prep.finish((xp, bp), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::bias_gelu(xp, bp)),
        }
    }
}

/// `gelu(x + bias)` (exact GELU) over the last dimension, through the fused primitive.
pub fn bias_gelu<const D: usize>(x: Tensor<D>, bias: Tensor<1>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as BiasGeluBackend>::bias_gelu(
        x.into_dispatch(),
        bias.into_dispatch(),
    ))
}
