//! The memorisation-mitigating regularisers of training (METHODS.md section 5, methods
//! 1-3), as the [`crate::Trainer`] applies them when `training.regulariser` is set
//! ([`crate::spec::Regulariser`]):
//!
//! - **Loss truncation** ([`truncation`]): per-sequence mean token losses; a sequence
//!   whose loss is above the `(1 - c)` quantile of the window of recent per-sequence
//!   losses is left out of the batch's loss. The threshold comes from the window *before*
//!   the batch (the first batch keeps all), the keep mask is a comparison in the graph,
//!   and [`crate::Trainer::step`] reads the batch's per-sequence losses back (with the
//!   loss, in one read) and pushes them into the window. The reference (Kang and
//!   Hashimoto's `LossDropper`) instead waits for 10,000 losses before dropping any,
//!   recomputes its percentile every 10,000 losses and counts the current batch in it.
//! - **Spectral-norm penalty** ([`spectral`]): `lambda / 2 * sum sigma_max(W)` added to
//!   the loss, one power iteration per step with persistent vectors.
//! - **Example-tied dropout** ([`dropout`]): MLP hidden units shared by all examples plus
//!   units tied to each example; the tied ones dropped at test time
//!   ([`crate::Trainer::test_checkpoint`]).
//!
//! The loss a step reports ([`crate::StepReport::loss`], [`crate::Trainer::losses`]) stays
//! the batch's mean token cross-entropy of every sequence without any penalty, so loss
//! curves of runs with and without a regulariser compare; the objective differentiated
//! is the regularised one.
//!
//! Resume points carry the state of the two stateful methods ([`RegulariserState`]: the
//! loss window, the power iteration's vectors, both as exact `f32` bits), so a resumed
//! run is bit-identical to an uninterrupted one; example-tied dropout has no state (its
//! masks are functions of the seed and the instance ids).

mod active;
pub mod dropout;
pub mod spectral;
pub mod truncation;

use serde::{Deserialize, Serialize};

pub(crate) use active::Active;
pub use dropout::TiedUnits;
pub use spectral::{PowerIteration, penalised_blocks};
pub use truncation::{LossWindow, quantile, truncated_loss};

/// A regulariser's state between steps, as a resume point stores it (values as `f32`
/// bit patterns, so they come back exactly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RegulariserState {
    /// Loss truncation's window, oldest first.
    LossWindow {
        /// The per-sequence losses (`f32::to_bits`).
        losses: Vec<u32>,
    },
    /// The spectral-norm penalty's power-iteration vectors, block by block.
    PowerVectors {
        /// Each block's shape `[k, m, 1]` and values (`f32::to_bits`).
        vectors: Vec<(Vec<usize>, Vec<u32>)>,
    },
}

impl RegulariserState {
    /// Which method this state belongs to (a name of [`crate::spec::Regulariser::NAMES`]).
    pub fn method(&self) -> &'static str {
        match self {
            RegulariserState::LossWindow { .. } => "loss-truncation",
            RegulariserState::PowerVectors { .. } => "spectral-norm",
        }
    }
}

/// `f32` values as bits.
pub(crate) fn to_bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Bits back to `f32` values.
pub(crate) fn from_bits(v: &[u32]) -> Vec<f32> {
    v.iter().map(|&x| f32::from_bits(x)).collect()
}
