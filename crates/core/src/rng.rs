//! Seeded random streams. Every random draw in Mnemo comes from a stream derived here
//! from the experiment's seed, so a spec fully determines a run.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Named purposes of random streams, so that, for example, changing the data order
/// never changes the initial weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Initial weights of a model.
    Init = 1,
    /// Order in which training instances are visited.
    DataOrder = 2,
    /// Held-out split of a corpus.
    Split = 3,
    /// Synthetic data generation (TinyMem, facts, canaries).
    Data = 4,
    /// Sampling instances into an analysis panel.
    Panel = 5,
    /// Subsets and seeds of a counterfactual ensemble.
    Ensemble = 6,
    /// Splitting (prefix, suffix) pairs for soft-prompt training.
    Pairs = 7,
    /// Random removals of influence's case-deletion test.
    Influence = 8,
    /// TinyMem's post-hoc unlearning methods (retain samples, gates, scores).
    Unlearn = 12,
    /// The geometry of memorisation's sampler, trace probes and normal-bundle draws.
    Geometry = 13,
    /// The power iteration's starting vectors of the spectral-norm regulariser.
    Spectral = 14,
    /// The units example-tied dropout ties to each training example (one substream per
    /// instance, see [`substream`]).
    TiedDropout = 15,
    /// The secrets of an exposure canary set.
    Canaries = 16,
    /// The candidates sampled for exposure's extrapolation.
    Exposure = 17,
    /// The offset at which packed training cuts its first window.
    Packing = 18,
}

/// A deterministic generator for `stream` under `seed`.
pub fn stream(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

/// A deterministic generator for item `index` of `stream` under `seed` (for example one
/// per training instance): ChaCha's 64-bit stream number is `stream` in the high 32 bits
/// and `index` in the low ones, so it never meets [`stream`]'s generators (high bits 0)
/// nor another item's.
pub fn substream(seed: u64, stream: Stream, index: u32) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((stream as u64) << 32) | index as u64);
    rng
}

/// Fisher-Yates shuffle driven by `rng` (explicit, so the order never depends on a
/// library's internal algorithm changing between versions).
pub fn shuffle<T>(items: &mut [T], rng: &mut impl rand::Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}
