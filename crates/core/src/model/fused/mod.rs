//! The transformer block's hot path as fused operations, forward and backward, through
//! burn's backend extension (`#[backend_extension]`).
//!
//! burn's CPU backend (flex) runs one kernel per primitive operation, and burn-autodiff
//! records each with its own backward, so a layer norm, a softmax or a bias followed by
//! GELU was several passes over memory each way. Each operation here is a primitive of
//! Mnemo's own: flex gets f32 kernels over contiguous rows (split over threads with the
//! `rayon` feature, with partial sums added in task order so that losses stay
//! bit-identical run to run), `Autodiff<B, C>` a handwritten backward that calls the
//! fused gradient kernel, and every other backend (WebGPU, CUDA, ndarray) the traits'
//! default bodies, which compose plain burn operations. Tests check values and gradients
//! against the unfused formulas (tests/fused_ops.rs) and the kernels against the
//! composed bodies (the unit tests below each kernel).
//!
//! - [`layer_norm`]: `LayerNorm` of every block and the final norm.
//! - [`bias_gelu`]: the MLP's bias and exact GELU after its expansion's matrix product.
//! - [`causal_softmax`]: attention's scaling, causal mask and softmax of the scores.
//! - [`target_log_softmax`]: the head's log-softmax read at the targets (the loss).

mod gelu;
mod layernorm;
pub mod math;
mod softmax;
mod xent;

pub use gelu::{BiasGeluBackend, bias_gelu};
pub use layernorm::{EPSILON, LayerNormBackend, layer_norm};
pub use softmax::{CausalSoftmaxBackend, MASKED, causal_softmax};
pub use xent::{TargetLogSoftmaxBackend, target_log_softmax};

use burn::tensor::Shape;

/// `(dims, rows, d)` of a tensor seen as rows of its last dimension.
fn rows_of(shape: &Shape) -> (Vec<usize>, usize, usize) {
    let dims: Vec<usize> = shape.iter().copied().collect();
    let d = dims.last().copied().unwrap_or(1).max(1);
    let rows = dims.iter().product::<usize>() / d;
    (dims, rows, d)
}

/// `[1, ..., 1, d]` of rank `rank` (a vector broadcast over rows).
fn broadcast(rank: usize, d: usize) -> Shape {
    Shape::from(
        (0..rank)
            .map(|i| if i + 1 == rank { d } else { 1 })
            .collect::<Vec<_>>(),
    )
}

#[cfg(feature = "flex")]
mod flex {
    //! What the flex kernels share: contiguous f32 views and rows split over tasks.

    use std::borrow::Cow;

    use burn::backend::flex::FlexTensor;
    use burn::tensor::{DType, TensorData};

    /// A contiguous f32 view, copied only when the tensor is a strided view; `None` for
    /// other dtypes (the caller falls back to the composed operation).
    pub fn view(t: &FlexTensor) -> Option<Cow<'_, [f32]>> {
        if t.dtype() != DType::F32 {
            return None;
        }
        match t.as_slice::<f32>() {
            Some(s) => Some(Cow::Borrowed(s)),
            None => t
                .to_contiguous()
                .as_slice::<f32>()
                .map(|s| Cow::Owned(s.to_vec())),
        }
    }

    /// A tensor of `values` with `dims`.
    pub fn tensor(values: Vec<f32>, dims: Vec<usize>) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, dims))
    }

    const LANES: usize = 8;

    /// `sum f(a[i], b[i])` over eight accumulators, so the loop vectorises (a single f32
    /// accumulator cannot be reordered by the compiler).
    #[inline(always)]
    pub fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
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

    /// The maximum of `a` over eight lanes (a single running maximum does not vectorise).
    #[inline(always)]
    pub fn lane_max(a: &[f32]) -> f32 {
        let mut acc = [f32::NEG_INFINITY; LANES];
        let chunks = a.chunks_exact(LANES);
        let tail = chunks
            .remainder()
            .iter()
            .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        for c in chunks {
            for l in 0..LANES {
                acc[l] = acc[l].max(c[l]);
            }
        }
        acc.iter().fold(tail, |m, &x| m.max(x))
    }

    /// Rows per task when rows are split over threads.
    pub const ROWS_PER_TASK: usize = 64;

    /// `f(first_row, chunk)` on consecutive chunks of [`ROWS_PER_TASK`] rows of `out`
    /// (rows of `row_len`), on rayon's threads with the `rayon` feature; the results in
    /// chunk order, whatever the threads.
    pub fn par_rows<R: Send>(
        out: &mut [f32],
        row_len: usize,
        f: impl Fn(usize, &mut [f32]) -> R + Sync + Send,
    ) -> Vec<R> {
        let chunk = ROWS_PER_TASK * row_len.max(1);
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            out.par_chunks_mut(chunk)
                .enumerate()
                .map(|(k, o)| f(k * ROWS_PER_TASK, o))
                .collect()
        }
        #[cfg(not(feature = "rayon"))]
        {
            out.chunks_mut(chunk)
                .enumerate()
                .map(|(k, o)| f(k * ROWS_PER_TASK, o))
                .collect()
        }
    }

    /// The element-wise sum of per-task partial sums of length `d`, added in task order.
    pub fn sum_parts(parts: &[Vec<f32>], d: usize) -> Vec<f32> {
        let mut total = vec![0.0f32; d];
        for p in parts {
            for (t, v) in total.iter_mut().zip(p) {
                *t += v;
            }
        }
        total
    }

    #[cfg(test)]
    pub mod tests {
        //! Helpers of the kernels' unit tests.
        #![allow(clippy::unwrap_used)]

        use super::*;
        use burn::backend::Flex;
        use burn::backend::TensorMetadata;
        use burn::backend::tensor::FloatTensor;
        use rand::{Rng, SeedableRng};

        /// A tensor of `dims` with values uniform in `[-scale, scale)` from `seed`.
        pub fn random(dims: &[usize], seed: u64, scale: f32) -> FlexTensor {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let n = dims.iter().product();
            tensor(
                (0..n).map(|_| rng.random_range(-scale..scale)).collect(),
                dims.to_vec(),
            )
        }

        /// Equal shapes and values within `tol` (relative above 1, absolute below).
        pub fn assert_close(what: &str, a: FloatTensor<Flex>, b: FloatTensor<Flex>, tol: f32) {
            assert_eq!(a.shape(), b.shape(), "{what}: shapes");
            let (a, b) = (view(&a).unwrap(), view(&b).unwrap());
            let worst = a
                .iter()
                .zip(b.iter())
                .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
                .fold(0.0f32, f32::max);
            assert!(
                worst <= tol,
                "{what}: differs by {worst:e} (tolerance {tol:e})"
            );
        }
    }
}
