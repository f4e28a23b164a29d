//! Loss truncation: the window of recent per-sequence losses, its quantile (pure, on the
//! host) and the truncated batch loss (in the graph).

use std::collections::VecDeque;

use burn::tensor::Tensor;

/// The `p` quantile (`0 <= p <= 1`) of `values`, by linear interpolation between the
/// order statistics (numpy's default, `method="linear"`): with the values sorted,
/// `x[0] <= ... <= x[n-1]`, and `h = (n - 1) p`, it is `x[floor h] + (h - floor h)
/// (x[floor h + 1] - x[floor h])`. `None` for no values. NaNs sort last (`total_cmp`).
pub fn quantile(values: &[f32], p: f64) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let p = if p.is_nan() { 0.5 } else { p.clamp(0.0, 1.0) };
    let h = (n - 1) as f64 * p;
    let lo = (h.floor() as usize).min(n - 1);
    let mut v = values.to_vec();
    let (_, &mut x_lo, above) = v.select_nth_unstable_by(lo, f32::total_cmp);
    let x_lo = x_lo as f64;
    let frac = h - lo as f64;
    if frac == 0.0 || above.is_empty() {
        return Some(x_lo);
    }
    // The next order statistic is the smallest value above position `lo`.
    let x_hi = above
        .iter()
        .copied()
        .min_by(f32::total_cmp)
        .unwrap_or(x_lo as f32) as f64;
    Some(x_lo + frac * (x_hi - x_lo))
}

/// The last `capacity` per-sequence losses, oldest first, and the threshold they set.
#[derive(Debug, Clone, PartialEq)]
pub struct LossWindow {
    capacity: usize,
    values: VecDeque<f32>,
}

impl LossWindow {
    /// An empty window that keeps at most `capacity` losses (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        LossWindow {
            capacity,
            values: VecDeque::with_capacity(capacity.min(1 << 16)),
        }
    }

    /// A window holding the last `capacity` of `values` (oldest first).
    pub fn with_values(capacity: usize, values: &[f32]) -> Self {
        let mut w = Self::new(capacity);
        w.push(values);
        w
    }

    /// Add losses (in batch order); the oldest leave once the window is full.
    pub fn push(&mut self, losses: &[f32]) {
        for &l in losses {
            if self.values.len() == self.capacity {
                self.values.pop_front();
            }
            self.values.push_back(l);
        }
    }

    /// The losses held, oldest first.
    pub fn values(&self) -> Vec<f32> {
        self.values.iter().copied().collect()
    }

    /// How many losses the window holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the window holds no loss yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Most losses held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The threshold for dropping a share `c` of sequences: the `(1 - c)` [`quantile`] of
    /// the window, as `f32` (what the graph compares with); `None` while the window is
    /// empty (the first batch of a run keeps every sequence).
    pub fn threshold(&self, c: f64) -> Option<f32> {
        let (a, b) = self.values.as_slices();
        let all: Vec<f32> = a.iter().chain(b).copied().collect();
        quantile(&all, 1.0 - c).map(|q| q as f32)
    }

    /// Which of a batch's per-sequence `losses` are kept against this window: a sequence
    /// is dropped when its loss is above the threshold (`loss > threshold`; ties are
    /// kept); all are kept while the window is empty. The same rule as
    /// [`truncated_loss`], on the host.
    pub fn keep(&self, c: f64, losses: &[f32]) -> Vec<bool> {
        match self.threshold(c) {
            Some(t) => losses.iter().map(|&l| l <= t).collect(),
            None => vec![true; losses.len()],
        }
    }
}

/// What [`truncated_loss`] builds.
pub struct Truncated {
    /// The objective: the summed token loss of the kept sequences over their target
    /// tokens, `[1]` (with nothing kept, 0, so the step only decays the weights).
    pub objective: Tensor<1>,
    /// Each sequence's mean token loss `[B]` (detached): what goes into the window.
    pub per_sequence: Tensor<1>,
    /// 1 for a kept sequence, 0 for a dropped one `[B]`.
    pub keep: Tensor<1>,
}

/// The loss-truncated batch loss from the token losses `nll` `[B, T]` (already zero on
/// unscored positions) and the 0/1 mask of scored positions `mask` `[B, T]`: sequences
/// whose mean token loss is above `threshold` are left out, and the rest are averaged
/// over *their* target tokens, so the step is the step on a batch of the kept sequences
/// alone (the reference instead averages the per-sequence means over the whole batch,
/// dropped ones counting as 0; with AdamW the scale barely matters). With no threshold
/// every sequence is kept. Everything stays in the graph: no value is read back.
pub fn truncated_loss(nll: Tensor<2>, mask: Tensor<2>, threshold: Option<f32>) -> Truncated {
    let [b, _] = nll.dims();
    let row_sum = nll.sum_dim(1); // [B, 1]
    let row_tokens = mask.sum_dim(1); // [B, 1]
    let per_sequence = (row_sum.clone() / row_tokens.clone().clamp_min(1.0))
        .detach()
        .reshape([b]);
    let keep = match threshold {
        Some(t) => per_sequence.clone().lower_equal_elem(t).float(),
        None => per_sequence.ones_like(),
    };
    let keep2 = keep.clone().reshape([b, 1]);
    let kept_tokens = (row_tokens * keep2.clone()).sum().clamp_min(1.0);
    let objective = (row_sum * keep2).sum() / kept_tokens;
    Truncated {
        objective,
        per_sequence,
        keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantile_interpolates_linearly_as_numpy_does() {
        // numpy.percentile([3, 1, 4, 1, 5], q) for q = 0, 25, 60, 90, 100.
        let v = [3.0, 1.0, 4.0, 1.0, 5.0];
        let q = |p| quantile(&v, p).unwrap_or(f64::NAN);
        assert_eq!(q(0.0), 1.0);
        assert_eq!(q(0.25), 1.0);
        assert!((q(0.6) - 3.4).abs() < 1e-12, "{}", q(0.6));
        assert!((q(0.9) - 4.6).abs() < 1e-12, "{}", q(0.9));
        assert_eq!(q(1.0), 5.0);
        assert_eq!(quantile(&[2.5], 0.3), Some(2.5));
        assert_eq!(quantile(&[], 0.3), None);
    }

    #[test]
    fn the_window_keeps_the_last_losses_and_drops_exactly_the_ones_above_its_quantile() {
        let mut w = LossWindow::new(4);
        assert!(w.is_empty());
        assert_eq!(
            w.keep(0.4, &[9.0, 0.1]),
            vec![true, true],
            "empty: keep all"
        );
        w.push(&[100.0, 1.0, 2.0]);
        w.push(&[3.0, 4.0]);
        assert_eq!(w.values(), vec![1.0, 2.0, 3.0, 4.0], "the oldest left");
        // (1 - 0.4) quantile of 1, 2, 3, 4: h = 3 * 0.6 = 1.8, 2 + 0.8 * 1 = 2.8.
        assert_eq!(w.threshold(0.4), Some(2.8));
        assert_eq!(
            w.keep(0.4, &[2.79, 2.8, 2.81, 0.0, 100.0]),
            vec![true, true, false, true, false]
        );
        // c = 0.75: the 0.25 quantile, h = 0.75: 1.75.
        assert_eq!(w.threshold(0.75), Some(1.75));
        assert_eq!(
            LossWindow::with_values(2, &[5.0, 6.0, 7.0]).values(),
            [6.0, 7.0]
        );
    }
}
