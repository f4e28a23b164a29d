//! A GPT-2-style decoder: token and learned position embeddings, pre-LayerNorm blocks of
//! causal self-attention and an MLP, a final LayerNorm, and a tied or untied output head.
//! The same module also reads GPT-NeoX models ([`Layout::Neox`], the Pythia family, imported
//! from Hugging Face): rotary positions on part of each head instead of learned ones, and
//! optionally attention and MLP in parallel on the same input.
//!
//! The model accepts token ids or input embeddings directly (soft prompts need the
//! latter), returns per-token log-probabilities, and decodes greedily.
//!
//! Initial weights are drawn on the host from the spec's seed (normal, std 0.02;
//! residual output projections scaled by `1/sqrt(2 * n_layers)`, as GPT-2 does), so a
//! model starts from bit-identical weights on every backend.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu, gelu_approximate, relu, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::rng::{self, Stream};

mod decode;
pub mod fused;
mod rotary;

use fused::{bias_gelu, causal_softmax, layer_norm, target_log_softmax};

use crate::spec::{SpecError, limits};
pub use rotary::{Layout, Rotary, RotaryTables};

/// The shape of a model (the vocabulary size comes from the tokenizer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Transformer blocks (1-8).
    pub n_layers: usize,
    /// Residual width (32-256).
    pub d_model: usize,
    /// Attention heads; must divide `d_model`.
    pub n_heads: usize,
    /// Longest input, in tokens (8-256).
    pub context: usize,
    /// Whether the output head reuses the token embedding matrix.
    #[serde(default = "yes")]
    pub tied_head: bool,
    /// The MLP's nonlinearity: GELU (GPT-2's, the default) or ReLU (TinyMem's reference
    /// model). Left out of the JSON when it is the default, so specs written before the
    /// field existed keep their text and digest.
    #[serde(default, skip_serializing_if = "Activation::is_gelu")]
    pub activation: Activation,
    /// GPT-2's layout (Mnemo's own models, the default, left out of the JSON) or
    /// GPT-NeoX's (imported Pythia models).
    #[serde(default, skip_serializing_if = "Layout::is_gpt2")]
    pub layout: Layout,
}

fn yes() -> bool {
    true
}

/// The nonlinearity of the MLP (`d -> 4d -> d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// GPT-2's GELU (tanh-free, exact).
    #[default]
    Gelu,
    /// The tanh approximation of GELU (`gelu_new` of Hugging Face's GPT-2).
    #[serde(rename = "gelu_tanh")]
    GeluTanh,
    /// ReLU, as in TinyMem's reference model (Sakarvadia et al. 2025).
    Relu,
}

impl Activation {
    /// Whether this is the default, GELU.
    pub fn is_gelu(&self) -> bool {
        *self == Activation::Gelu
    }
}

impl ModelConfig {
    /// Check the shape against the shared limits.
    pub fn validate(&self) -> Result<(), SpecError> {
        let check = |field, v: usize, (lo, hi): (usize, usize)| {
            if v < lo || v > hi {
                Err(SpecError::OutOfRange {
                    field,
                    value: v as f64,
                    min: lo as f64,
                    max: hi as f64,
                })
            } else {
                Ok(())
            }
        };
        check("model.n_layers", self.n_layers, limits::LAYERS)?;
        check("model.d_model", self.d_model, limits::D_MODEL)?;
        check("model.n_heads", self.n_heads, limits::HEADS)?;
        check("model.context", self.context, limits::CONTEXT)?;
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(SpecError::Inconsistent(format!(
                "model.d_model ({}) must be a multiple of model.n_heads ({})",
                self.d_model, self.n_heads
            )));
        }
        self.validate_layout()
    }

    /// Check a model read from elsewhere (a Hugging Face checkpoint): only what the
    /// engine needs to run it, not the limits of the page's specs.
    pub fn validate_imported(&self) -> Result<(), SpecError> {
        let positive = |field, v: usize| {
            if v == 0 {
                Err(SpecError::OutOfRange {
                    field,
                    value: 0.0,
                    min: 1.0,
                    max: f64::INFINITY,
                })
            } else {
                Ok(())
            }
        };
        positive("model.n_layers", self.n_layers)?;
        positive("model.d_model", self.d_model)?;
        positive("model.n_heads", self.n_heads)?;
        positive("model.context", self.context)?;
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(SpecError::Inconsistent(format!(
                "model.d_model ({}) must be a multiple of model.n_heads ({})",
                self.d_model, self.n_heads
            )));
        }
        self.validate_layout()
    }

    fn validate_layout(&self) -> Result<(), SpecError> {
        if let Layout::Neox {
            rotary_dims,
            rotary_base,
            ..
        } = self.layout
        {
            let head = self.d_model / self.n_heads;
            if rotary_dims % 2 != 0 || rotary_dims > head {
                return Err(SpecError::Inconsistent(format!(
                    "model.layout.rotary_dims ({rotary_dims}) must be even and at most the head dimension ({head})"
                )));
            }
            if rotary_base < 2 {
                return Err(SpecError::Inconsistent(format!(
                    "model.layout.rotary_base ({rotary_base}) must be at least 2"
                )));
            }
        }
        Ok(())
    }

    /// Number of trainable parameters for a vocabulary of `vocab` ids.
    pub fn n_params(&self, vocab: usize) -> usize {
        let d = self.d_model;
        let block =
            2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
        let positions = if self.layout.is_gpt2() {
            self.context * d
        } else {
            0
        };
        vocab * d
            + positions
            + self.n_layers * block
            + 2 * d
            + if self.tied_head { 0 } else { d * vocab }
    }
}

/// Causal self-attention.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query, key and value projections, fused: `[d, 3d]`.
    pub qkv: Linear,
    /// Output projection `[d, d]`.
    pub proj: Linear,
    /// Heads.
    #[module(skip)]
    pub n_heads: usize,
    /// Rotary positions (GPT-NeoX); `None` for GPT-2.
    #[module(skip)]
    pub rotary: Option<Rotary>,
}

/// The position-wise MLP (`d -> 4d -> d`, GELU or ReLU).
#[derive(Module, Debug)]
pub struct Mlp {
    /// Expansion.
    pub fc: Linear,
    /// Output projection.
    pub proj: Linear,
    /// The nonlinearity.
    #[module(skip)]
    pub activation: Activation,
}

/// A pre-LayerNorm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    /// Norm before attention.
    pub ln1: LayerNorm,
    /// Attention.
    pub attn: Attention,
    /// Norm before the MLP.
    pub ln2: LayerNorm,
    /// MLP.
    pub mlp: Mlp,
    /// Attention and MLP both read the block's input (GPT-NeoX's parallel residual).
    #[module(skip)]
    pub parallel: bool,
}

/// Where the tokens behind a soft prompt sit (see [`Gpt::forward_prompted_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptPositions {
    /// The prompt has no positions; the tokens keep 0, 1, ... (models trained unpacked).
    #[default]
    Kept,
    /// The prompt takes positions 0..L and the tokens follow (models trained packed).
    Shifted,
}

impl PromptPositions {
    /// How a model trained packed (`training.packed`) or not reads a soft prompt.
    pub fn for_training(packed: bool) -> Self {
        if packed {
            PromptPositions::Shifted
        } else {
            PromptPositions::Kept
        }
    }
}

/// The decoder.
#[derive(Module, Debug)]
pub struct Gpt {
    /// Token embeddings `[vocab, d]`.
    pub wte: Param<Tensor<2>>,
    /// Position embeddings `[context, d]`; `None` for rotary positions (GPT-NeoX).
    pub wpe: Option<Param<Tensor<2>>>,
    /// Blocks.
    pub blocks: Vec<Block>,
    /// Final norm.
    pub ln_f: LayerNorm,
    /// Untied output head `[d, vocab]`; `None` when tied to `wte`.
    pub head: Option<Param<Tensor<2>>>,
    /// Longest input, in tokens.
    #[module(skip)]
    pub context: usize,
}

/// Host-side initialiser: every weight comes from one seeded stream, in a fixed order;
/// without a stream, zeros (a model whose weights are about to be loaded).
struct HostInit {
    rng: Option<rand_chacha::ChaCha8Rng>,
    device: Device,
}

impl HostInit {
    fn normal(&mut self, shape: [usize; 2], std: f64) -> Param<Tensor<2>> {
        let n = shape[0] * shape[1];
        let v: Vec<f32> = match &mut self.rng {
            Some(rng) => {
                let dist = Normal::new(0.0f64, std).unwrap_or_else(|_| unreachable_normal());
                (0..n).map(|_| dist.sample(rng) as f32).collect()
            }
            None => vec![0.0; n],
        };
        Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), &self.device))
    }

    fn zeros(&self, n: usize) -> Param<Tensor<1>> {
        Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.0f32; n], [n]),
            &self.device,
        ))
    }

    fn linear(&mut self, d_in: usize, d_out: usize, std: f64) -> Linear {
        Linear {
            weight: self.normal([d_in, d_out], std),
            bias: Some(self.zeros(d_out)),
        }
    }
}

fn unreachable_normal() -> Normal<f64> {
    // Normal::new only fails for a negative or NaN std; ours are fixed positive constants.
    Normal::new(0.0, 0.02).unwrap_or_else(|_| unreachable!())
}

impl Gpt {
    /// A freshly initialised model.
    pub fn new(config: &ModelConfig, vocab: usize, seed: u64, device: &Device) -> Self {
        Self::build(config, vocab, Some(seed), device)
    }

    /// A model of this shape with zero weights, to be overwritten by loaded ones (no
    /// random draws: at Pythia-70m's size they take about a second).
    pub(crate) fn zeroed(config: &ModelConfig, vocab: usize, device: &Device) -> Self {
        Self::build(config, vocab, None, device)
    }

    fn build(config: &ModelConfig, vocab: usize, seed: Option<u64>, device: &Device) -> Self {
        let mut init = HostInit {
            rng: seed.map(|seed| rng::stream(seed, Stream::Init)),
            device: device.clone(),
        };
        let d = config.d_model;
        let std = 0.02;
        let resid_std = std / (2.0 * config.n_layers as f64).sqrt();
        let wte = init.normal([vocab, d], std);
        let wpe = config
            .layout
            .is_gpt2()
            .then(|| init.normal([config.context, d], std / 2.0));
        let ln = || LayerNormConfig::new(d).init(device);
        let rotary = config.layout.rotary();
        let parallel = matches!(config.layout, Layout::Neox { parallel: true, .. });
        let blocks = (0..config.n_layers)
            .map(|_| Block {
                ln1: ln(),
                attn: Attention {
                    qkv: init.linear(d, 3 * d, std),
                    proj: init.linear(d, d, resid_std),
                    n_heads: config.n_heads,
                    rotary,
                },
                ln2: ln(),
                mlp: Mlp {
                    fc: init.linear(d, 4 * d, std),
                    proj: init.linear(4 * d, d, resid_std),
                    activation: config.activation,
                },
                parallel,
            })
            .collect();
        let head = (!config.tied_head).then(|| init.normal([d, vocab], std));
        Gpt {
            wte,
            wpe,
            blocks,
            ln_f: ln(),
            head,
            context: config.context,
        }
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.wte.val().dims()[0]
    }

    /// Context length.
    pub fn context(&self) -> usize {
        self.context
    }

    /// `x` `[B, T, d]` with the learned position embeddings of positions 0..T added
    /// (GPT-2); unchanged for rotary models, whose attention places the tokens.
    pub fn add_positions(&self, x: Tensor<3>) -> Tensor<3> {
        match &self.wpe {
            Some(wpe) => {
                let [_, t, d] = x.dims();
                x + wpe.val().slice(0..t).reshape([1, t, d])
            }
            None => x,
        }
    }

    /// Residual width.
    pub fn d_model(&self) -> usize {
        self.wte.val().dims()[1]
    }

    /// Token embeddings of `ids` `[B, T]` -> `[B, T, d]` (no positions: those are added
    /// by [`Gpt::forward_embeddings`]).
    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        burn::tensor::module::embedding(self.wte.val(), ids)
    }

    /// Logits `[B, T, vocab]` for input embeddings `[B, T, d]` (T <= context).
    /// Position embeddings 0..T are added here. (A soft prompt goes through
    /// [`Gpt::forward_prompted`] instead, which leaves the tokens at the positions they have
    /// without it.)
    pub fn forward_embeddings(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.add_positions(x);
        self.forward_residual(x)
    }

    /// Logits `[B, T, vocab]` for a residual stream `[B, T, d]` that already carries
    /// whatever position embeddings the caller chose: the blocks (causal), the final norm
    /// and the head. [`Gpt::forward_embeddings`] is this after adding positions 0..T.
    pub fn forward_residual(&self, h: Tensor<3>) -> Tensor<3> {
        let tables = self.rotary_tables(&h);
        let mut h = h;
        for block in &self.blocks {
            h = block.forward_at(h, tables.as_ref(), &mut |m, x| m.forward(x));
        }
        let h = layer_norm(&self.ln_f, h);
        match &self.head {
            Some(w) => h.matmul(w.val().unsqueeze()),
            None => h.matmul(self.wte.val().transpose().unsqueeze()),
        }
    }

    /// The rotary tables of a residual stream's length (`None` for GPT-2 models): computed
    /// once per forward pass and shared by every layer.
    pub fn rotary_tables(&self, h: &Tensor<3>) -> Option<RotaryTables> {
        self.blocks.first().and_then(|b| b.attn.rotary_tables(h))
    }

    /// Position embeddings `[B, T, d]` of the positions `[B, T]` (each below the context);
    /// zeros for rotary models, which have none.
    pub fn position_embeddings(&self, positions: Tensor<2, Int>) -> Tensor<3> {
        match &self.wpe {
            Some(wpe) => burn::tensor::module::embedding(wpe.val(), positions),
            None => {
                let [b, t] = positions.dims();
                Tensor::zeros([b, t, self.d_model()], &positions.device())
            }
        }
    }

    /// Logits `[B, L + T, vocab]` for a soft prompt `soft` `[B, L, d]` followed by the
    /// tokens `ids` `[B, T]` (`L + T <= context` when `positions` is
    /// [`PromptPositions::Shifted`], `T <= context` otherwise).
    ///
    /// The soft prompt is a sequence of residual-stream vectors in front of the tokens,
    /// seen by them through causal attention. Where the tokens sit is `positions`:
    /// - [`PromptPositions::Kept`]: the prompt gets no position embedding (a trainable
    ///   prompt would absorb one), and the tokens keep positions 0..T, the positions they
    ///   have without a prompt. A model trained with every text at position 0 (unpacked)
    ///   is read this way: shifting the text behind the prompt would measure the shift
    ///   rather than the prompt.
    /// - [`PromptPositions::Shifted`]: the prompt takes positions 0..L and the tokens
    ///   L..L+T, as the soft-prompt papers' models read `inputs_embeds` (a prompt of a
    ///   text's own token embeddings then gives exactly the logits of that text). For
    ///   models trained packed, which saw texts at every offset.
    ///
    /// `L` or `T` may be 0, not both.
    pub fn forward_prompted_at(
        &self,
        positions: PromptPositions,
        soft: Tensor<3>,
        ids: Tensor<2, Int>,
    ) -> Tensor<3> {
        let [_, t] = ids.dims();
        let [_, l, _] = soft.dims();
        if positions == PromptPositions::Shifted {
            if t == 0 {
                return self.forward_embeddings(soft);
            }
            let tokens = self.embed(ids);
            let x = if l == 0 {
                tokens
            } else {
                Tensor::cat(vec![soft, tokens], 1)
            };
            return self.forward_embeddings(x);
        }
        if t == 0 {
            // Only the prompt (a zero-length reshape would read as "keep this dimension").
            return self.forward_residual(soft);
        }
        let tokens = self.add_positions(self.embed(ids));
        let h = if l == 0 {
            tokens
        } else {
            Tensor::cat(vec![soft, tokens], 1)
        };
        self.forward_residual(h)
    }

    /// [`Gpt::forward_prompted_at`] with [`PromptPositions::Kept`].
    pub fn forward_prompted(&self, soft: Tensor<3>, ids: Tensor<2, Int>) -> Tensor<3> {
        self.forward_prompted_at(PromptPositions::Kept, soft, ids)
    }

    /// Logits `[B, T, vocab]` for token ids `[B, T]`.
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.forward_embeddings(self.embed(ids))
    }

    /// Log-probability of each target `[B, T]` given the inputs `[B, T]`
    /// (`targets[b, t]` is the token that follows `inputs[b, ..=t]`), through the fused
    /// [`fused::target_log_softmax`].
    pub fn token_log_probs(&self, inputs: Tensor<2, Int>, targets: Tensor<2, Int>) -> Tensor<2> {
        target_log_softmax(self.forward(inputs), targets)
    }

    /// Next-token probabilities at the last position, for each sequence `[B, T]`.
    pub fn next_token_probs(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let logits = self.forward(ids);
        let [b, t, v] = logits.dims();
        softmax(logits.slice([0..b, t - 1..t, 0..v]).reshape([b, v]), 1)
    }
}

/// `[B, T]` id tensor from rows, right-padded with `pad` to length `t`.
pub fn ids_tensor(rows: &[Vec<u32>], t: usize, pad: u32, device: &Device) -> Tensor<2, Int> {
    let mut v: Vec<i32> = Vec::with_capacity(rows.len() * t);
    for r in rows {
        v.extend(r.iter().take(t).map(|&x| x as i32));
        v.extend(std::iter::repeat_n(pad as i32, t.saturating_sub(r.len())));
    }
    Tensor::from_data(TensorData::new(v, [rows.len(), t]), device)
}

impl Block {
    /// The block on a residual stream `[B, T, d]`, causally (each position sees itself
    /// and the positions before it): `x + attn(ln1(x))`, then `+ mlp(ln2(.))`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_with_mlp(x, &mut |m, x| m.forward(x))
    }

    /// [`Block::forward`] with the MLP computed by `mlp(&self.mlp, input)`. Parallel
    /// blocks (GPT-NeoX) give the MLP `ln2(x)` of the block's input `x`.
    pub fn forward_with_mlp(
        &self,
        x: Tensor<3>,
        mlp: &mut dyn FnMut(&Mlp, Tensor<3>) -> Tensor<3>,
    ) -> Tensor<3> {
        let tables = self.attn.rotary_tables(&x);
        self.forward_at(x, tables.as_ref(), mlp)
    }

    /// [`Block::forward_with_mlp`] with the rotary tables of the input's length already
    /// computed ([`Gpt::rotary_tables`]: once per forward pass, not once per layer).
    pub fn forward_at(
        &self,
        x: Tensor<3>,
        tables: Option<&RotaryTables>,
        mlp: &mut dyn FnMut(&Mlp, Tensor<3>) -> Tensor<3>,
    ) -> Tensor<3> {
        let attn = self
            .attn
            .forward_at(layer_norm(&self.ln1, x.clone()), tables);
        if self.parallel {
            let m = mlp(&self.mlp, layer_norm(&self.ln2, x.clone()));
            x + attn + m
        } else {
            let x = x + attn;
            x.clone() + mlp(&self.mlp, layer_norm(&self.ln2, x))
        }
    }
}

impl Mlp {
    /// The MLP on `[B, T, d]`: `proj(act(fc(x)))`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.proj.forward(self.hidden(x))
    }

    /// The hidden activations `act(fc(x))` `[B, T, 4d]`: one value per neuron.
    pub fn hidden(&self, x: Tensor<3>) -> Tensor<3> {
        match (self.activation, &self.fc.bias) {
            // The bias and exact GELU as one fused operation.
            (Activation::Gelu, Some(bias)) => {
                bias_gelu(x.matmul(self.fc.weight.val().unsqueeze()), bias.val())
            }
            _ => self.act(self.fc.forward(x)),
        }
    }

    /// The nonlinearity alone.
    pub fn act(&self, x: Tensor<3>) -> Tensor<3> {
        match self.activation {
            Activation::Gelu => gelu(x),
            Activation::GeluTanh => gelu_approximate(x),
            Activation::Relu => relu(x),
        }
    }
}

impl Gpt {
    /// Logits `[B, T, vocab]` for token ids `[B, T]`, with every block's MLP computed by
    /// `mlp(layer, &block.mlp, input)` instead of `block.mlp.forward(input)` (the input is
    /// the block's normalised residual stream `[B, T, d]`). Analyses that edit or score
    /// MLP neurons and weights (TinyMem's unlearning methods) go through this; with
    /// `|_, m, x| m.forward(x)` it is [`Gpt::forward`].
    pub fn forward_with_mlp(
        &self,
        ids: Tensor<2, Int>,
        mlp: &mut dyn FnMut(usize, &Mlp, Tensor<3>) -> Tensor<3>,
    ) -> Tensor<3> {
        let mut h = self.add_positions(self.embed(ids));
        let tables = self.rotary_tables(&h);
        for (l, block) in self.blocks.iter().enumerate() {
            h = block.forward_at(h, tables.as_ref(), &mut |m, x| mlp(l, m, x));
        }
        let h = layer_norm(&self.ln_f, h);
        match &self.head {
            Some(w) => h.matmul(w.val().unsqueeze()),
            None => h.matmul(self.wte.val().transpose().unsqueeze()),
        }
    }
}

impl Attention {
    /// Causal multi-head self-attention: `softmax(q k^T / sqrt(hd))` with the future
    /// masked, times `v`. Without autodiff on the CPU backend (evaluation, decoding) the
    /// scores, softmax and weighted sum are burn's fused `attention` kernel; under
    /// autodiff, and on WebGPU, the scaled causal softmax is Mnemo's fused primitive
    /// ([`fused::causal_softmax`]) between two matrix products (burn's autodiff would
    /// decompose burn's `attention` into many steps). A test checks both paths give one
    /// answer.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let tables = self.rotary_tables(&x);
        self.forward_at(x, tables.as_ref())
    }

    /// The rotary tables for `x`'s length, when this attention is rotary.
    pub fn rotary_tables(&self, x: &Tensor<3>) -> Option<RotaryTables> {
        self.rotary.map(|r| r.tables(x.dims()[1], &x.device()))
    }

    /// [`Attention::forward`] with the rotary tables given (`None` for GPT-2; a rotary
    /// attention given none computes them).
    pub fn forward_at(&self, x: Tensor<3>, tables: Option<&RotaryTables>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let h = self.n_heads;
        let hd = d / h;
        let sqrt_hd = (hd as f64).sqrt();
        let fused = fused_attention(&x);
        let qkv = self.qkv.forward(x);
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * d, d)
                .reshape([b, t, h, hd])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let (q, k) = match (&self.rotary, tables) {
            (Some(r), Some(tables)) => (r.apply(q, tables), r.apply(k, tables)),
            (Some(r), None) => {
                let tables = r.tables(t, &q.device());
                (r.apply(q, &tables), r.apply(k, &tables))
            }
            (None, _) => (q, k),
        };
        let y = if fused {
            let options = AttentionModuleOptions {
                scale: Some(1.0 / sqrt_hd),
                softcap: None,
                is_causal: true,
            };
            attention(q, k, v, None, None, options)
        } else {
            causal_softmax(q.matmul(k.swap_dims(2, 3)), 1.0 / sqrt_hd).matmul(v)
        };
        self.proj.forward(y.swap_dims(1, 2).reshape([b, t, d]))
    }
}

/// Whether [`Attention::forward`] takes burn's fused kernel for `x`: no gradient recorded,
/// on the CPU backend (`flex`).
fn fused_attention(x: &Tensor<3>) -> bool {
    #[cfg(feature = "flex")]
    {
        !x.is_autodiff() && x.device() == Device::flex()
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = x;
        false
    }
}
