//! The output head's log-softmax read at the targets (the log-likelihood whose negative is
//! the cross-entropy) as one fused operation (see the parent module).
//!
//! Written out, `gather(log_softmax(logits), targets)` keeps a `[N, V]` log-probability
//! tensor for the gather, and its backward scatters the gradient into a zeroed `[N, V]`
//! tensor before log-softmax's own backward reads it again. The fused kernel computes each
//! row's log-sum-exp once and writes only `logits[target] - lse`; the backward writes the
//! logits' gradient in one pass per row, `d = g * (onehot(target) - softmax(logits))`,
//! recomputing the row's log-sum-exp from the logits (the only state kept). With a vocabulary
//! of a few hundred (bytes, BPE) the head is where most of a small model's element-wise
//! work is.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::tensor::{IndexingUpdateOp, Int, Shape, Tensor};

/// The log-likelihood's primitives.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda")),
    Autodiff
)]
pub trait TargetLogSoftmaxBackend: Backend {
    /// `log_softmax(logits)[..., targets]` over the last dimension: logits `[..., V]`,
    /// targets `[...]` (indices into the last dimension), the result shaped as the targets.
    fn target_log_softmax(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        composed_forward::<Self>(logits, targets)
    }

    /// The logits' gradient from the logits, the targets and the result's gradient.
    fn target_log_softmax_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed_backward::<Self>(logits, targets, grad)
    }
}

/// `(logits' dims, the same with the last dimension 1, the targets' dims)`.
fn shapes(logits: &Shape) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let dims: Vec<usize> = logits.iter().copied().collect();
    let n = dims.len();
    let mut one = dims.clone();
    if let Some(last) = one.last_mut() {
        *last = 1;
    }
    let out = dims[..n.saturating_sub(1)].to_vec();
    (dims, one, out)
}

/// The forward in plain operations (every backend without kernels of its own).
fn composed_forward<B: Backend>(logits: FloatTensor<B>, targets: IntTensor<B>) -> FloatTensor<B> {
    let (dims, one, out) = shapes(&logits.shape());
    let last = dims.len() - 1;
    let logp = B::log_softmax(logits, last);
    let picked = B::float_gather(last, logp, B::int_reshape(targets, Shape::from(one)));
    B::float_reshape(picked, Shape::from(out))
}

/// The backward in plain operations: `g * (onehot(target) - softmax(logits))`.
fn composed_backward<B: Backend>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let (dims, one, _) = shapes(&logits.shape());
    let last = dims.len() - 1;
    let g = B::float_reshape(grad, Shape::from(one.clone()));
    let p = B::softmax(logits, last);
    let minus = B::float_neg(B::float_mul(p, g.clone()));
    B::float_scatter(
        last,
        minus,
        B::int_reshape(targets, Shape::from(one)),
        g,
        IndexingUpdateOp::Add,
    )
}

#[cfg(feature = "flex")]
mod flex {
    //! The fused f32 kernels on flex.

    use super::*;
    use crate::model::fused::flex::{lane_max, lane_sum, par_rows, tensor, view};
    use crate::model::fused::math::exp;
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;
    use burn::tensor::DType;

    /// The targets as indices when every one is below `v`; `None` otherwise (the caller
    /// falls back to the composed operation, which reports what burn reports).
    fn indices(t: &FlexTensor, v: usize) -> Option<Vec<usize>> {
        let t = t.to_contiguous();
        let idx: Vec<i64> = match t.dtype() {
            DType::I64 => t.as_slice::<i64>()?.to_vec(),
            DType::I32 => t.as_slice::<i32>()?.iter().map(|&x| x as i64).collect(),
            DType::U32 => t.as_slice::<u32>()?.iter().map(|&x| x as i64).collect(),
            _ => return None,
        };
        idx.into_iter()
            .map(|x| usize::try_from(x).ok().filter(|&x| x < v))
            .collect()
    }

    /// A row's log-sum-exp (the exponentials and their sum vectorised).
    #[inline(always)]
    fn lse(row: &[f32]) -> f32 {
        let max = lane_max(row);
        max + lane_sum(row, row, |x, _| exp(x - max)).ln()
    }

    impl TargetLogSoftmaxBackend for Flex {
        fn target_log_softmax(logits: FlexTensor, targets: FlexTensor) -> FlexTensor {
            let (dims, _, out) = shapes(&logits.shape());
            let v = dims.last().copied().unwrap_or(0);
            let inputs = (|| Some((view(&logits)?, indices(&targets, v)?)))()
                .filter(|(x, t)| v > 0 && x.len() == t.len() * v);
            let Some((x, t)) = inputs else {
                return composed_forward::<Self>(logits, targets);
            };
            let mut lp = vec![0.0f32; t.len()];
            par_rows(&mut lp, 1, |r0, chunk| {
                for (k, o) in chunk.iter_mut().enumerate() {
                    let r = r0 + k;
                    let row = &x[r * v..(r + 1) * v];
                    *o = row[t[r]] - lse(row);
                }
            });
            tensor(lp, out)
        }

        fn target_log_softmax_backward(
            logits: FlexTensor,
            targets: FlexTensor,
            grad: FlexTensor,
        ) -> FlexTensor {
            let (dims, _, _) = shapes(&logits.shape());
            let v = dims.last().copied().unwrap_or(0);
            let inputs = (|| Some((view(&logits)?, indices(&targets, v)?, view(&grad)?)))()
                .filter(|(x, t, g)| v > 0 && x.len() == t.len() * v && g.len() == t.len());
            let Some((x, t, g)) = inputs else {
                return composed_backward::<Self>(logits, targets, grad);
            };
            let mut d = vec![0.0f32; x.len()];
            par_rows(&mut d, v, |r0, chunk| {
                for (k, dr) in chunk.chunks_exact_mut(v).enumerate() {
                    let r = r0 + k;
                    let row = &x[r * v..(r + 1) * v];
                    let (l, gr) = (lse(row), g[r]);
                    for (o, &xi) in dr.iter_mut().zip(row) {
                        *o = -gr * exp(xi - l);
                    }
                    dr[t[r]] += gr;
                }
            });
            tensor(d, dims)
        }
    }

    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used)]

        use super::*;
        use crate::model::fused::flex::tests::{assert_close, random};
        use burn::tensor::TensorData;

        fn targets(dims: &[usize], v: usize, seed: u64) -> FlexTensor {
            let n: usize = dims.iter().product();
            let t: Vec<i64> = (0..n as u64)
                .map(|i| ((i * 7 + seed * 13) % v as u64) as i64)
                .collect();
            FlexTensor::from_data(TensorData::new(t, dims.to_vec()))
        }

        /// The kernels against the composed bodies on flex (the bodies other backends run),
        /// rows across task boundaries, vocabularies below and above the vector width.
        #[test]
        fn kernels_equal_the_composed_operations() {
            for (lead, v) in [(vec![2, 3], 5), (vec![3, 70], 259), (vec![130], 14)] {
                let mut dims = lead.clone();
                dims.push(v);
                let x = random(&dims, 3, 8.0);
                let t = targets(&lead, v, 1);
                assert_close(
                    "log p",
                    Flex::target_log_softmax(x.clone(), t.clone()),
                    composed_forward::<Flex>(x.clone(), t.clone()),
                    1e-6,
                );
                let g = random(&lead, 4, 1.0);
                assert_close(
                    "d logits",
                    Flex::target_log_softmax_backward(x.clone(), t.clone(), g.clone()),
                    composed_backward::<Flex>(x, t, g),
                    1e-6,
                );
            }
        }

        /// A target outside the vocabulary is not read by the kernel: the composed operation
        /// answers instead (the kernel must not index past a row).
        #[test]
        fn out_of_range_targets_are_not_read() {
            let t = FlexTensor::from_data(TensorData::new(vec![0i64, 9], vec![2]));
            assert!(indices(&t, 5).is_none());
            assert_eq!(indices(&t, 10), Some(vec![0, 9]));
        }
    }
}

#[cfg(feature = "ndarray")]
impl TargetLogSoftmaxBackend for burn::backend::NdArray {}

#[cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda"))]
impl TargetLogSoftmaxBackend for burn::backend::Cube {}

/// The backward of [`TargetLogSoftmaxBackend::target_log_softmax`].
#[derive(Debug)]
struct TargetLogSoftmaxBackward;

impl<B: TargetLogSoftmaxBackend> Backward<B, 1> for TargetLogSoftmaxBackward {
    /// The logits and the targets.
    type State = (FloatTensor<B>, IntTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let g = grads.consume::<B>(&ops.node);
        let (logits, targets) = ops.state;
        if let Some(n) = node {
            grads.register::<B>(n.id, B::target_log_softmax_backward(logits, targets, g));
        }
    }
}

impl<B: TargetLogSoftmaxBackend, C: CheckpointStrategy> TargetLogSoftmaxBackend for Autodiff<B, C> {
    fn target_log_softmax(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        let (xp, xn) = logits.into_parts();
        match TargetLogSoftmaxBackward
            .prepare::<C>([xn])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = B::target_log_softmax(xp.clone(), targets.clone());
                prep.finish((xp, targets), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::target_log_softmax(xp, targets)),
        }
    }
}

/// `log_softmax(logits)` read at `targets` over the vocabulary: logits `[B, T, V]`,
/// targets `[B, T]`, through the fused primitive.
pub fn target_log_softmax(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as TargetLogSoftmaxBackend>::target_log_softmax(
        logits.into_dispatch(),
        targets.into_dispatch(),
    ))
}
