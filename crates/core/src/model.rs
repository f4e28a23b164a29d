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
use burn::tensor::activation::{gelu, gelu_approximate, log_softmax, relu, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::rng::{self, Stream};
use crate::spec::{SpecError, limits};

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

/// How a model places positions and wires its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// GPT-2: learned position embeddings added to the token embeddings; each block is
    /// `x + attn(ln1(x))`, then `+ mlp(ln2(.))`.
    #[default]
    Gpt2,
    /// GPT-NeoX (Hugging Face's `GPTNeoXForCausalLM`): no position embeddings; rotary
    /// positions on the first `rotary_dims` dimensions of every query and key head
    /// (NeoX's rotate-half pairing, frequencies `base^(-2i/rotary_dims)`); with
    /// `parallel`, each block is `x + attn(ln1(x)) + mlp(ln2(x))`.
    Neox {
        /// Rotated dimensions per head (even, at most the head dimension).
        rotary_dims: usize,
        /// The rotary base (`rope_theta`).
        rotary_base: u32,
        /// Attention and MLP read the same input (`use_parallel_residual`).
        parallel: bool,
    },
}

impl Layout {
    /// Whether this is the default, GPT-2.
    pub fn is_gpt2(&self) -> bool {
        *self == Layout::Gpt2
    }

    /// The rotary settings, for GPT-NeoX.
    fn rotary(&self) -> Option<Rotary> {
        match *self {
            Layout::Gpt2 => None,
            Layout::Neox {
                rotary_dims,
                rotary_base,
                ..
            } => (rotary_dims > 0).then_some(Rotary {
                dims: rotary_dims,
                base: rotary_base as f64,
            }),
        }
    }
}

/// Rotary position embedding of part of each attention head (GPT-NeoX).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotary {
    /// Rotated dimensions per head (even).
    pub dims: usize,
    /// Base of the frequencies.
    pub base: f64,
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

/// Host-side initialiser: every weight comes from one seeded stream, in a fixed order.
struct HostInit {
    rng: rand_chacha::ChaCha8Rng,
    device: Device,
}

impl HostInit {
    fn normal(&mut self, shape: [usize; 2], std: f64) -> Param<Tensor<2>> {
        let dist = Normal::new(0.0f64, std).unwrap_or_else(|_| unreachable_normal());
        let n = shape[0] * shape[1];
        let v: Vec<f32> = (0..n).map(|_| dist.sample(&mut self.rng) as f32).collect();
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
        let mut init = HostInit {
            rng: rng::stream(seed, Stream::Init),
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
        let mut h = h;
        for block in &self.blocks {
            h = block.forward(h);
        }
        let h = self.ln_f.forward(h);
        match &self.head {
            Some(w) => h.matmul(w.val().unsqueeze()),
            None => h.matmul(self.wte.val().transpose().unsqueeze()),
        }
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
    /// (`targets[b, t]` is the token that follows `inputs[b, ..=t]`).
    pub fn token_log_probs(&self, inputs: Tensor<2, Int>, targets: Tensor<2, Int>) -> Tensor<2> {
        let logp = log_softmax(self.forward(inputs), 2);
        logp.gather(2, targets.unsqueeze_dim(2)).squeeze_dim(2)
    }

    /// Next-token probabilities at the last position, for each sequence `[B, T]`.
    pub fn next_token_probs(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let logits = self.forward(ids);
        let [b, t, v] = logits.dims();
        softmax(logits.slice([0..b, t - 1..t, 0..v]).reshape([b, v]), 1)
    }

    /// Greedy decoding: append `n` argmax tokens to `prompt` (the window slides when the
    /// context is full). Returns only the generated tokens; an empty prompt gives none.
    pub async fn greedy(
        &self,
        prompt: &[u32],
        n: usize,
    ) -> Result<Vec<u32>, burn::tensor::ExecutionError> {
        if prompt.is_empty() {
            // Nothing to condition on (and no position to read the next token from).
            return Ok(Vec::new());
        }
        let device = self.wte.val().device();
        let ctx = self.context();
        let mut seq: Vec<u32> = prompt.to_vec();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let start = seq.len().saturating_sub(ctx);
            let window = &seq[start..];
            let ids = ids_tensor(&[window.to_vec()], window.len(), 0, &device);
            let logits = self.forward(ids);
            let [_, t, v] = logits.dims();
            let last = logits.slice([0..1, t - 1..t, 0..v]).reshape([v]);
            let data = last.argmax(0).into_data_async().await?;
            let next = data.iter::<i64>().next().unwrap_or(0) as u32;
            seq.push(next);
            out.push(next);
        }
        Ok(out)
    }

    /// Greedy decoding of many prompts at once: for each prompt, the `n` argmax tokens
    /// that [`Gpt::greedy`] would append to it (the window slides when the context is
    /// full), in the order of `prompts`.
    ///
    /// Prompts of the same length are decoded together, one forward pass of the whole
    /// group per generated token; prompts of different lengths are grouped by length
    /// internally, so any mix is accepted. An empty prompt gives no tokens (as with
    /// [`Gpt::greedy`]); no prompts give an empty result. Callers that want to bound the
    /// memory of one pass pass at most that many prompts per call.
    pub async fn greedy_batch(
        &self,
        prompts: &[Vec<u32>],
        n: usize,
    ) -> Result<Vec<Vec<u32>>, burn::tensor::ExecutionError> {
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        if n == 0 {
            return Ok(out);
        }
        // Group prompt indices by length, in order of first appearance.
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, p) in prompts.iter().enumerate() {
            if p.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(len, _)| *len == p.len()) {
                Some((_, members)) => members.push(i),
                None => groups.push((p.len(), vec![i])),
            }
        }
        let device = self.wte.val().device();
        let ctx = self.context();
        for (_, members) in groups {
            let mut seqs: Vec<Vec<u32>> = members.iter().map(|&i| prompts[i].clone()).collect();
            let b = seqs.len();
            for _ in 0..n {
                let len = seqs.first().map_or(0, Vec::len);
                let start = len.saturating_sub(ctx);
                let t = len - start;
                let windows: Vec<Vec<u32>> = seqs.iter().map(|s| s[start..].to_vec()).collect();
                let ids = ids_tensor(&windows, t, 0, &device);
                let logits = self.forward(ids);
                let [_, t, v] = logits.dims();
                let last = logits.slice([0..b, t - 1..t, 0..v]).reshape([b, v]);
                let data = last.argmax(1).into_data_async().await?;
                let mut next = data.iter::<i64>();
                // Every row grows by one token, so the rows keep one length.
                for seq in &mut seqs {
                    seq.push(next.next().unwrap_or(0) as u32);
                }
            }
            for (&i, mut seq) in members.iter().zip(seqs) {
                out[i] = seq.split_off(prompts[i].len());
            }
        }
        Ok(out)
    }
}

impl Gpt {
    /// Greedy decoding conditioned on soft prompts: for each row, the `n` argmax tokens
    /// that follow the soft prompt `soft[i]` (a `[L_i, d]` tensor on the model's device;
    /// `L_i` may be 0) and the tokens `prompts[i]`, read as [`Gpt::forward_prompted`]
    /// reads them with `positions` ([`Gpt::forward_prompted_at`]).
    ///
    /// With an empty soft prompt this is [`Gpt::greedy_batch`]. Rows with the same
    /// `(L_i, prompts[i].len())` are decoded together, one forward pass of the group per
    /// generated token. A row with neither soft prompt nor tokens gives no tokens.
    ///
    /// Window: when `L_i` + tokens exceed the context, the oldest *tokens* slide out and
    /// the soft prompt stays in front; a soft prompt longer than `context - 1` keeps only
    /// its last `context - 1` vectors. Callers that want the whole input seen keep
    /// `L_i + prompts[i].len() + n - 1 <= context`. Rows whose soft prompt is not
    /// `[L, d_model]` give no tokens.
    pub async fn greedy_embeddings(
        &self,
        positions: PromptPositions,
        soft: &[Tensor<2>],
        prompts: &[Vec<u32>],
        n: usize,
    ) -> Result<Vec<Vec<u32>>, burn::tensor::ExecutionError> {
        let rows = soft.len().min(prompts.len());
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        if n == 0 {
            return Ok(out);
        }
        let d = self.d_model();
        let ctx = self.context();
        // Group rows by (soft-prompt length, token count), in order of first appearance.
        let mut groups: Vec<((usize, usize), Vec<usize>)> = Vec::new();
        for i in 0..rows {
            let [l, width] = soft[i].dims();
            if width != d || (l == 0 && prompts[i].is_empty()) {
                continue;
            }
            let key = (l, prompts[i].len());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let device = self.wte.val().device();
        for ((l, _), members) in groups {
            let b = members.len();
            // The soft prompts of the group, `[b, l', d]`, cut to leave room for a token.
            let keep = l.min(ctx.saturating_sub(1));
            let soft_group: Option<Tensor<3>> = (keep > 0).then(|| {
                Tensor::cat(
                    members
                        .iter()
                        .map(|&i| soft[i].clone().slice(l - keep..l).unsqueeze::<3>())
                        .collect(),
                    0,
                )
            });
            let mut seqs: Vec<Vec<u32>> = members.iter().map(|&i| prompts[i].clone()).collect();
            let start_len = seqs.first().map_or(0, Vec::len);
            for _ in 0..n {
                let len = seqs.first().map_or(0, Vec::len);
                let room = ctx - keep;
                let start = len.saturating_sub(room);
                let t = len - start;
                let windows: Vec<Vec<u32>> = seqs.iter().map(|s| s[start..].to_vec()).collect();
                let logits = match (&soft_group, t) {
                    (Some(s), 0) => match positions {
                        PromptPositions::Kept => self.forward_residual(s.clone()),
                        PromptPositions::Shifted => self.forward_embeddings(s.clone()),
                    },
                    (Some(s), _) => self.forward_prompted_at(
                        positions,
                        s.clone(),
                        ids_tensor(&windows, t, 0, &device),
                    ),
                    (None, _) => self.forward(ids_tensor(&windows, t, 0, &device)),
                };
                let [_, t, v] = logits.dims();
                let last = logits.slice([0..b, t - 1..t, 0..v]).reshape([b, v]);
                let data = last.argmax(1).into_data_async().await?;
                let mut next = data.iter::<i64>();
                for seq in &mut seqs {
                    seq.push(next.next().unwrap_or(0) as u32);
                }
            }
            for (&i, mut seq) in members.iter().zip(seqs) {
                out[i] = seq.split_off(start_len);
            }
        }
        Ok(out)
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
        let attn = self.attn.forward(self.ln1.forward(x.clone()));
        if self.parallel {
            let m = mlp(&self.mlp, self.ln2.forward(x.clone()));
            x + attn + m
        } else {
            let x = x + attn;
            x.clone() + mlp(&self.mlp, self.ln2.forward(x))
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
        self.act(self.fc.forward(x))
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
        for (l, block) in self.blocks.iter().enumerate() {
            h = block.forward_with_mlp(h, &mut |m, x| mlp(l, m, x));
        }
        let h = self.ln_f.forward(h);
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
    /// autodiff, and on WebGPU, they are written out (burn's autodiff would decompose the
    /// fused op into the same steps anyway). A test checks both paths give one answer.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
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
        let (q, k) = match &self.rotary {
            Some(r) => {
                let (cos, sin) = r.tables(t, &q.device());
                (r.apply(q, &cos, &sin), r.apply(k, &cos, &sin))
            }
            None => (q, k),
        };
        let y = if fused {
            let options = AttentionModuleOptions {
                scale: Some(1.0 / sqrt_hd),
                softcap: None,
                is_causal: true,
            };
            attention(q, k, v, None, None, options)
        } else {
            let scores = q.matmul(k.swap_dims(2, 3)) / sqrt_hd;
            let mask = Tensor::<2, Bool>::tril_mask([t, t], 0, &scores.device())
                .unsqueeze::<4>()
                .expand([b, h, t, t]);
            softmax(scores.mask_fill(mask, -1.0e9), 3).matmul(v)
        };
        self.proj.forward(y.swap_dims(1, 2).reshape([b, t, d]))
    }
}

impl Rotary {
    /// `cos` and `sin` of the angles of positions 0..t, `[1, 1, t, dims]` each: position
    /// `p`, dimension `j` has angle `p * base^(-2 (j mod dims/2) / dims)` (the two halves
    /// repeat the frequencies, as NeoX pairs dimension `j` with `j + dims/2`).
    pub fn tables(&self, t: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let half = self.dims / 2;
        let mut cos = Vec::with_capacity(t * self.dims);
        let mut sin = Vec::with_capacity(t * self.dims);
        for p in 0..t {
            for j in 0..self.dims {
                let i = j % half;
                // As the reference computes it: inverse frequency in f32, then the angle.
                let inv = (1.0 / self.base.powf((2 * i) as f64 / self.dims as f64)) as f32;
                let angle = p as f32 * inv;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let shape = [1, 1, t, self.dims];
        (
            Tensor::from_data(TensorData::new(cos, shape), device),
            Tensor::from_data(TensorData::new(sin, shape), device),
        )
    }

    /// Rotate the first `dims` dimensions of `x` `[B, H, T, hd]`; the rest pass through.
    pub fn apply(&self, x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
        let [_, _, _, hd] = x.dims();
        let half = self.dims / 2;
        let rot = x.clone().narrow(3, 0, self.dims);
        let x1 = rot.clone().narrow(3, 0, half);
        let x2 = rot.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![-x2, x1], 3);
        let out = rot * cos.clone() + rotated * sin.clone();
        if self.dims == hd {
            out
        } else {
            Tensor::cat(vec![out, x.narrow(3, self.dims, hd - self.dims)], 3)
        }
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
