//! Example-tied dropout of the MLP's hidden units: which units each example trains, the
//! forward the trainer uses, and the test-time model.

use crate::model::fused::target_log_softmax;
use burn::module::Param;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::model::Gpt;
use crate::rng::{self, Stream};
use crate::spec::regulariser::ExampleTiedDropout;

/// The unit assignment of example-tied dropout (Maini et al. 2023, "Can neural network
/// memorization be localized?") over the `hidden` units of each MLP (`4 d`).
///
/// - The first `shared = floor(shared_share * hidden)` units (as the reference,
///   `int(p_fixed * shape)`) are always active.
/// - Each training instance `i` is tied to exactly `tied = round(tied_share * (hidden -
///   shared))` (at least 1) of the other units, drawn without replacement by a partial
///   Fisher-Yates shuffle from `rng::substream(seed, Stream::TiedDropout, i)`: the spec's
///   seed and the instance id, so the tie is the same at every step, on every backend,
///   whatever the batch. (The reference draws each unit with probability `p_mem`, so the
///   count varies; a fixed count makes "its units" exact.) The same units are tied in
///   every layer.
/// - While `i` is trained only its shared and tied units are active (the others' hidden
///   activations are multiplied by 0; no rescaling, as in the reference's training mode).
/// - At test time only the shared units are active ([`TiedUnits::test_model`]).
///
/// This masks *units* (the MLP's hidden neurons), what the method's paper describes. The
/// TinyMem reference applies its dropout module to GPT-2's hidden states `[B, T, ...]`
/// and masks along dimension 1, which there is the sequence position, not a unit.
/// The reference's test mode also scales the shared units by `(p_fixed + p_mem) /
/// p_fixed`; Mnemo's test-time model only drops the tied units, so that it is the
/// trained weights with the non-shared units' input weights zeroed.
#[derive(Debug, Clone, PartialEq)]
pub struct TiedUnits {
    hidden: usize,
    shared: usize,
    tied: usize,
    seed: u64,
}

impl TiedUnits {
    /// The assignment for MLPs of `hidden` units under `seed`.
    pub fn new(settings: &ExampleTiedDropout, hidden: usize, seed: u64) -> Self {
        let shared = ((settings.shared * hidden as f64).floor() as usize).min(hidden);
        let rest = hidden - shared;
        let tied = ((settings.tied * rest as f64).round() as usize).clamp(rest.min(1), rest);
        TiedUnits {
            hidden,
            shared,
            tied,
            seed,
        }
    }

    /// The assignment a trainer of `model` uses.
    pub fn for_model(settings: &ExampleTiedDropout, model: &Gpt, seed: u64) -> Self {
        let hidden = model
            .blocks
            .first()
            .map_or(0, |b| b.mlp.fc.weight.val().dims()[1]);
        Self::new(settings, hidden, seed)
    }

    /// Hidden units per MLP.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Units always active: `0..shared`.
    pub fn shared(&self) -> usize {
        self.shared
    }

    /// Units tied to each example.
    pub fn tied(&self) -> usize {
        self.tied
    }

    /// The units tied to instance `id`, ascending (all `>= shared`).
    pub fn tied_units(&self, id: u32) -> Vec<usize> {
        let mut rng = rng::substream(self.seed, Stream::TiedDropout, id);
        let mut pool: Vec<usize> = (self.shared..self.hidden).collect();
        let n = pool.len();
        for i in 0..self.tied.min(n) {
            let j = rand::Rng::random_range(&mut rng, i..n);
            pool.swap(i, j);
        }
        pool.truncate(self.tied.min(n));
        pool.sort_unstable();
        pool
    }

    /// The 0/1 mask of the units active while instance `id` is trained (`hidden` long).
    pub fn mask(&self, id: u32) -> Vec<f32> {
        let mut m = vec![0.0f32; self.hidden];
        m[..self.shared].fill(1.0);
        for u in self.tied_units(id) {
            m[u] = 1.0;
        }
        m
    }

    /// The 0/1 mask of the shared units (`hidden` long): the test-time mask.
    pub fn shared_mask(&self) -> Vec<f32> {
        let mut m = vec![0.0f32; self.hidden];
        m[..self.shared].fill(1.0);
        m
    }

    /// The masks of a batch of instances, `[B, 1, hidden]` (the same for every position).
    pub fn batch_mask(&self, ids: &[u32], device: &Device) -> Tensor<3> {
        let mut v = Vec::with_capacity(ids.len() * self.hidden);
        for &id in ids {
            v.extend(self.mask(id));
        }
        Tensor::from_data(TensorData::new(v, [ids.len(), 1, self.hidden]), device)
    }

    /// Log-probability of each target `[B, T]`, as [`Gpt::token_log_probs`] computes it
    /// but with row `b`'s MLP hidden activations masked by instance `ids[b]`'s units in
    /// every layer: the forward the trainer trains with.
    pub fn token_log_probs(
        &self,
        model: &Gpt,
        ids: &[u32],
        inputs: Tensor<2, Int>,
        targets: Tensor<2, Int>,
    ) -> Tensor<2> {
        let mask = self.batch_mask(ids, &inputs.device());
        let logits = model.forward_with_mlp(inputs, &mut |_, m, x| {
            m.proj.forward(m.hidden(x) * mask.clone())
        });
        target_log_softmax(logits, targets)
    }

    /// The model as used at test time: every non-shared unit's input weights (its column
    /// of `c_fc`) and bias set to 0 in every layer, so its activation is `act(0) = 0`
    /// (ReLU and GELU alike) and it drops out; everything else as trained. Built on the
    /// device, without reading anything back.
    pub fn test_model(&self, model: &Gpt) -> Gpt {
        let mut out = model.clone();
        let device = model.wte.val().device();
        let keep =
            Tensor::<1>::from_data(TensorData::new(self.shared_mask(), [self.hidden]), &device);
        for block in &mut out.blocks {
            let fc = &mut block.mlp.fc;
            let w = fc.weight.val();
            fc.weight = Param::initialized(fc.weight.id, w * keep.clone().unsqueeze::<2>());
            if let Some(b) = &mut fc.bias {
                *b = Param::initialized(b.id, b.val() * keep.clone());
            }
        }
        out
    }
}
