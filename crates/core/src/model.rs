//! A GPT-2-style decoder: token and learned position embeddings, pre-LayerNorm blocks of
//! causal self-attention and an MLP, a final LayerNorm, and a tied or untied output head.
//!
//! The model accepts token ids or input embeddings directly (soft prompts need the
//! latter), returns per-token log-probabilities, and decodes greedily.
//!
//! Initial weights are drawn on the host from the spec's seed (normal, std 0.02;
//! residual output projections scaled by `1/sqrt(2 * n_layers)`, as GPT-2 does), so a
//! model starts from bit-identical weights on every backend.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu, log_softmax, softmax};
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
}

fn yes() -> bool {
    true
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
        Ok(())
    }

    /// Number of trainable parameters for a vocabulary of `vocab` ids.
    pub fn n_params(&self, vocab: usize) -> usize {
        let d = self.d_model;
        let block =
            2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
        vocab * d
            + self.context * d
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
    pub n_heads: usize,
}

/// The position-wise MLP (`d -> 4d -> d`, GELU).
#[derive(Module, Debug)]
pub struct Mlp {
    /// Expansion.
    pub fc: Linear,
    /// Output projection.
    pub proj: Linear,
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
}

/// The decoder.
#[derive(Module, Debug)]
pub struct Gpt {
    /// Token embeddings `[vocab, d]`.
    pub wte: Param<Tensor<2>>,
    /// Position embeddings `[context, d]`.
    pub wpe: Param<Tensor<2>>,
    /// Blocks.
    pub blocks: Vec<Block>,
    /// Final norm.
    pub ln_f: LayerNorm,
    /// Untied output head `[d, vocab]`; `None` when tied to `wte`.
    pub head: Option<Param<Tensor<2>>>,
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
        let wpe = init.normal([config.context, d], std / 2.0);
        let ln = || LayerNormConfig::new(d).init(device);
        let blocks = (0..config.n_layers)
            .map(|_| Block {
                ln1: ln(),
                attn: Attention {
                    qkv: init.linear(d, 3 * d, std),
                    proj: init.linear(d, d, resid_std),
                    n_heads: config.n_heads,
                },
                ln2: ln(),
                mlp: Mlp {
                    fc: init.linear(d, 4 * d, std),
                    proj: init.linear(4 * d, d, resid_std),
                },
            })
            .collect();
        let head = (!config.tied_head).then(|| init.normal([d, vocab], std));
        Gpt {
            wte,
            wpe,
            blocks,
            ln_f: ln(),
            head,
        }
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.wte.val().dims()[0]
    }

    /// Context length.
    pub fn context(&self) -> usize {
        self.wpe.val().dims()[0]
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
    /// Position embeddings 0..T are added here, so a soft prompt prepended to a prefix's
    /// embeddings takes the first positions.
    pub fn forward_embeddings(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, t, d] = x.dims();
        let pos = self.wpe.val().slice(0..t).reshape([1, t, d]);
        let mut h = x + pos;
        let mask = Tensor::<2, Bool>::tril_mask([t, t], 0, &h.device());
        for block in &self.blocks {
            h = block.forward(h, mask.clone());
        }
        let h = self.ln_f.forward(h);
        match &self.head {
            Some(w) => h.matmul(w.val().unsqueeze()),
            None => h.matmul(self.wte.val().transpose().unsqueeze()),
        }
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
    fn forward(&self, x: Tensor<3>, mask: Tensor<2, Bool>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln1.forward(x), mask);
        x.clone() + self.mlp.forward(self.ln2.forward(x))
    }
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.proj.forward(gelu(self.fc.forward(x)))
    }
}

impl Attention {
    fn forward(&self, x: Tensor<3>, mask: Tensor<2, Bool>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let h = self.n_heads;
        let hd = d / h;
        let qkv = self.qkv.forward(x);
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * d, d)
                .reshape([b, t, h, hd])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q.matmul(k.swap_dims(2, 3)) / (hd as f64).sqrt();
        let mask = mask.unsqueeze::<4>().expand([b, h, t, t]);
        let att = softmax(scores.mask_fill(mask, -1.0e9), 3);
        let y = att.matmul(v).swap_dims(1, 2).reshape([b, t, d]);
        self.proj.forward(y)
    }
}
