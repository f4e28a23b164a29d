//! Attention's scaled, causally masked softmax as one fused operation (see the parent
//! module).
//!
//! Written out, `softmax(mask_fill(scores * scale, future, MASKED))` is a scaling, a mask
//! built and expanded to `[B, H, T, T]`, a fill, and burn's softmax (a max, a
//! subtraction, `exp`, a sum and a division), each recorded with its own backward under
//! autodiff. The fused kernel does one pass per row forward (the future's probabilities
//! are written as 0 without computing them) and one backward, keeping only the
//! probabilities for the backward: `dS = scale * P * (dP - sum(dP * P))` per row.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{
    Backend, Dispatch, TensorMetadata, backend_extension, get_or_init_device_settings,
};
use burn::tensor::{Shape, Tensor};

/// The score the written-out form gives masked positions (their probability is then 0).
pub const MASKED: f32 = -1.0e9;

/// The causal softmax's primitives.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda")),
    Autodiff
)]
pub trait CausalSoftmaxBackend: Backend {
    /// Softmax over the last dimension of `scores * scale` `[..., Tq, Tk]`, where query
    /// `i` sees keys `j <= i + Tk - Tq` (the others get probability 0).
    fn causal_softmax(scores: FloatTensor<Self>, scale: f64) -> FloatTensor<Self> {
        composed_forward::<Self>(scores, scale)
    }

    /// The scores' gradient from the probabilities `p` and their gradient.
    fn causal_softmax_backward(
        p: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: f64,
    ) -> FloatTensor<Self> {
        composed_backward::<Self>(p, grad, scale)
    }
}

/// `(dims, Tq, Tk)` of a score tensor.
fn queries_keys(shape: &Shape) -> (Vec<usize>, usize, usize) {
    let dims: Vec<usize> = shape.iter().copied().collect();
    let n = dims.len();
    let tk = dims.last().copied().unwrap_or(1);
    let tq = if n >= 2 { dims[n - 2] } else { 1 };
    (dims, tq, tk)
}

/// The future of each query, `true` where masked (key `j > i + Tk - Tq`), `[Tq, Tk]`
/// expanded to `dims`; built from index ranges on the device, as burn's own causal mask.
fn future<B: Backend>(dims: &[usize], tq: usize, tk: usize, device: &B::Device) -> BoolTensor<B> {
    let settings = get_or_init_device_settings::<B>(device);
    let rows = B::int_reshape(
        B::int_arange(0..tq as i64, device, settings.int_dtype),
        Shape::from(vec![tq, 1]),
    );
    let cols = B::int_reshape(
        B::int_arange(0..tk as i64, device, settings.int_dtype),
        Shape::from(vec![1, tk]),
    );
    let shifted = B::int_add_scalar(rows, (tk as i64 - tq as i64).into());
    let mask = B::int_lower(shifted, cols, settings.bool_dtype);
    let mut lead = vec![1; dims.len().saturating_sub(2)];
    lead.extend([tq, tk]);
    B::bool_expand(
        B::bool_reshape(mask, Shape::from(lead)),
        Shape::from(dims.to_vec()),
    )
}

/// The forward in plain operations (every backend without kernels of its own).
fn composed_forward<B: Backend>(scores: FloatTensor<B>, scale: f64) -> FloatTensor<B> {
    let (dims, tq, tk) = queries_keys(&scores.shape());
    let mask = future::<B>(&dims, tq, tk, &scores.device());
    let scaled = B::float_mul_scalar(scores, scale.into());
    B::softmax(
        B::float_mask_fill(scaled, mask, MASKED.into()),
        dims.len() - 1,
    )
}

/// The backward in plain operations.
fn composed_backward<B: Backend>(
    p: FloatTensor<B>,
    dp: FloatTensor<B>,
    scale: f64,
) -> FloatTensor<B> {
    let last = p.shape().num_dims() - 1;
    let c = B::float_sum_dim(B::float_mul(p.clone(), dp.clone()), last);
    B::float_mul_scalar(B::float_mul(p, B::float_sub(dp, c)), scale.into())
}

#[cfg(feature = "flex")]
mod flex {
    //! The fused f32 kernels on flex.

    use super::*;
    use crate::model::fused::flex::{lane_max, lane_sum, par_rows, tensor, view};
    use crate::model::fused::math::exp;
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;

    /// Keys that row `r` sees: `r` counts rows of `[..., Tq, Tk]`.
    #[inline(always)]
    fn seen(r: usize, tq: usize, tk: usize) -> usize {
        ((r % tq) + tk.saturating_sub(tq) + 1).min(tk)
    }

    fn forward_rows(s: &[f32], r0: usize, tq: usize, tk: usize, scale: f32, p: &mut [f32]) {
        for (k, (sr, pr)) in s.chunks_exact(tk).zip(p.chunks_exact_mut(tk)).enumerate() {
            let n = seen(r0 + k, tq, tk);
            let (sr, (pr, rest)) = (&sr[..n], pr.split_at_mut(n));
            let max = lane_max(sr) * scale;
            for (p, &v) in pr.iter_mut().zip(sr) {
                *p = exp(v * scale - max);
            }
            let inv = 1.0 / lane_sum(pr, pr, |v, _| v);
            pr.iter_mut().for_each(|p| *p *= inv);
            rest.fill(0.0);
        }
    }

    fn backward_rows(
        p: &[f32],
        dp: &[f32],
        r0: usize,
        tq: usize,
        tk: usize,
        scale: f32,
        ds: &mut [f32],
    ) {
        let rows = p.chunks_exact(tk).zip(dp.chunks_exact(tk));
        for (k, ((pr, dpr), dsr)) in rows.zip(ds.chunks_exact_mut(tk)).enumerate() {
            let n = seen(r0 + k, tq, tk);
            let (pr, dpr, (dsr, rest)) = (&pr[..n], &dpr[..n], dsr.split_at_mut(n));
            let c = lane_sum(pr, dpr, |p, g| p * g);
            for ((d, &p), &g) in dsr.iter_mut().zip(pr).zip(dpr) {
                *d = scale * p * (g - c);
            }
            rest.fill(0.0);
        }
    }

    impl CausalSoftmaxBackend for Flex {
        fn causal_softmax(scores: FlexTensor, scale: f64) -> FlexTensor {
            let (dims, tq, tk) = queries_keys(&scores.shape());
            // A positive scale keeps the row's maximum where the scores' is.
            let Some(s) = view(&scores).filter(|_| scale > 0.0 && tk > 0) else {
                return composed_forward::<Self>(scores, scale);
            };
            let mut p = vec![0.0f32; s.len()];
            par_rows(&mut p, tk, |r0, pc| {
                let rows = r0 * tk..r0 * tk + pc.len();
                forward_rows(&s[rows], r0, tq, tk, scale as f32, pc)
            });
            tensor(p, dims)
        }

        fn causal_softmax_backward(p: FlexTensor, grad: FlexTensor, scale: f64) -> FlexTensor {
            let (dims, tq, tk) = queries_keys(&p.shape());
            let views = (|| Some((view(&p)?, view(&grad)?)))()
                .filter(|(p, g)| p.len() == g.len() && tk > 0);
            let Some((ps, gs)) = views else {
                return composed_backward::<Self>(p, grad, scale);
            };
            let mut ds = vec![0.0f32; ps.len()];
            par_rows(&mut ds, tk, |r0, dc| {
                let rows = r0 * tk..r0 * tk + dc.len();
                backward_rows(&ps[rows.clone()], &gs[rows], r0, tq, tk, scale as f32, dc)
            });
            tensor(ds, dims)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::model::fused::flex::tests::{assert_close, random};

        /// The kernels against the composed bodies on flex (the bodies other backends run),
        /// square and with fewer queries than keys, rows across task boundaries.
        #[test]
        fn kernels_equal_the_composed_operations() {
            for dims in [
                vec![2, 3, 7, 7],
                vec![1, 2, 70, 70],
                vec![3, 5, 9],
                vec![4, 11],
            ] {
                let scale = 0.35;
                let s = random(&dims, 5, 6.0);
                let p = Flex::causal_softmax(s.clone(), scale);
                assert_close("p", p.clone(), composed_forward::<Flex>(s, scale), 1e-6);
                let dp = random(&dims, 6, 1.0);
                assert_close(
                    "ds",
                    Flex::causal_softmax_backward(p.clone(), dp.clone(), scale),
                    composed_backward::<Flex>(p, dp, scale),
                    1e-6,
                );
            }
        }
    }
}

#[cfg(feature = "ndarray")]
impl CausalSoftmaxBackend for burn::backend::NdArray {}

#[cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda"))]
impl CausalSoftmaxBackend for burn::backend::Cube {}

/// The backward of [`CausalSoftmaxBackend::causal_softmax`].
#[derive(Debug)]
struct CausalSoftmaxBackward;

impl<B: CausalSoftmaxBackend> Backward<B, 1> for CausalSoftmaxBackward {
    /// The probabilities and the scale.
    type State = (FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dp = grads.consume::<B>(&ops.node);
        let (p, scale) = ops.state;
        if let Some(n) = node {
            grads.register::<B>(n.id, B::causal_softmax_backward(p, dp, scale));
        }
    }
}

impl<B: CausalSoftmaxBackend, C: CheckpointStrategy> CausalSoftmaxBackend for Autodiff<B, C> {
    fn causal_softmax(scores: FloatTensor<Self>, scale: f64) -> FloatTensor<Self> {
        let (sp, sn) = scores.into_parts();
        match CausalSoftmaxBackward
            .prepare::<C>([sn])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let p = B::causal_softmax(sp, scale);
                prep.finish((p.clone(), scale), p)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::causal_softmax(sp, scale)),
        }
    }
}

/// `softmax(scores * scale)` over the last dimension of `[..., Tq, Tk]` with each query's
/// future masked (query `i` sees keys `j <= i + Tk - Tq`), through the fused primitive.
pub fn causal_softmax<const D: usize>(scores: Tensor<D>, scale: f64) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as CausalSoftmaxBackend>::causal_softmax(
        scores.into_dispatch(),
        scale,
    ))
}
