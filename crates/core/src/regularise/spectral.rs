//! The spectral-norm penalty: `sigma_max` of every penalised weight block by power
//! iteration, with persistent, detached singular-vector estimates.

use burn::tensor::{Tensor, TensorData};
use rand_distr::{Distribution, StandardNormal};

use crate::model::Gpt;
use crate::rng::{self, Stream};

/// The penalised weight matrices of `model`, each as a batch of blocks `[k, m, n]`
/// (burn's `[in, out]` layout), with its name. Per block `b` the penalty takes
/// `sigma_max(W[b])`. Layer by layer:
///
/// - `h.{l}.attn.c_attn`: `3 * n_heads` blocks `[d, d / n_heads]`, the query, key and
///   value projection of each head (columns `j * hd .. (j + 1) * hd` of `c_attn`, queries
///   first), as in the reference;
/// - `h.{l}.attn.c_proj`: `n_heads` blocks `[d / n_heads, d]`, the rows that carry head
///   `h`'s output (the attention output is `sum_h z_h W_O^h`, so this is each head's own
///   output map). The reference chunks `c_proj` by *output* columns instead, which does
///   not follow the heads; Mnemo splits by heads, as the method describes;
/// - `h.{l}.mlp.c_fc` `[d, 4d]` and `h.{l}.mlp.c_proj` `[4d, d]`, one block each.
///
/// Not penalised: layer norms, biases, the token and position embeddings, and the output
/// head. A tied head is the token embedding; an untied one is left out too, so that tied
/// and untied models are penalised alike and as in the reference, whose GPT-2 ties its
/// head to the embeddings (`should_compute_sigma` skips `ln`, `wte`, `wpe`, `bias`).
pub fn penalised_blocks(model: &Gpt) -> Vec<(String, Tensor<3>)> {
    let mut out = Vec::with_capacity(4 * model.blocks.len());
    for (l, block) in model.blocks.iter().enumerate() {
        let h = block.attn.n_heads;
        let qkv = block.attn.qkv.weight.val();
        let [d, three_d] = qkv.dims();
        let hd = d / h.max(1);
        out.push((
            format!("h.{l}.attn.c_attn"),
            qkv.reshape([d, three_d / hd, hd]).swap_dims(0, 1),
        ));
        let proj = block.attn.proj.weight.val();
        let [d_in, d_out] = proj.dims();
        out.push((
            format!("h.{l}.attn.c_proj"),
            proj.reshape([h, d_in / h.max(1), d_out]),
        ));
        out.push((
            format!("h.{l}.mlp.c_fc"),
            block.mlp.fc.weight.val().unsqueeze::<3>(),
        ));
        out.push((
            format!("h.{l}.mlp.c_proj"),
            block.mlp.proj.weight.val().unsqueeze::<3>(),
        ));
    }
    out
}

/// Unit vectors along dimension 1 of `x` `[k, m, 1]` (a zero vector stays zero).
fn normalise(x: Tensor<3>) -> Tensor<3> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Power iteration over [`penalised_blocks`]: one left-singular-vector estimate `u`
/// `[k, m, 1]` per weight matrix, kept between steps and never differentiated.
///
/// Each [`PowerIteration::sigmas`] call does one iteration per block, `v = W^T u / |.|`,
/// `u = W v / |.|` (both from the detached weights), then `sigma = u^T W v` with `W`
/// live, so the gradient of `sigma` is `u v^T`: the gradient of `sigma_max` once the
/// vectors have converged. The starting `u` are standard normal draws from the seed
/// (`Stream::Spectral`), drawn on the host so every backend starts alike.
#[derive(Debug, Clone)]
pub struct PowerIteration {
    us: Vec<Tensor<3>>,
}

impl PowerIteration {
    /// Fresh vectors for `model`'s blocks.
    pub fn new(model: &Gpt, seed: u64) -> Self {
        let mut rng = rng::stream(seed, Stream::Spectral);
        let device = model.wte.val().device();
        let us = penalised_blocks(model)
            .into_iter()
            .map(|(_, w)| {
                let [k, m, _] = w.dims();
                let v: Vec<f32> = (0..k * m)
                    .map(|_| {
                        let x: f64 = StandardNormal.sample(&mut rng);
                        x as f32
                    })
                    .collect();
                Tensor::from_data(TensorData::new(v, [k, m, 1]), &device)
            })
            .collect();
        PowerIteration { us }
    }

    /// Vectors read back from [`PowerIteration::to_host`], for `model`'s blocks; `None`
    /// when their number or shapes do not fit.
    pub fn from_host(model: &Gpt, vectors: &[(Vec<usize>, Vec<f32>)]) -> Option<Self> {
        let blocks = penalised_blocks(model);
        if blocks.len() != vectors.len() {
            return None;
        }
        let device = model.wte.val().device();
        let mut us = Vec::with_capacity(blocks.len());
        for ((_, w), (shape, values)) in blocks.iter().zip(vectors) {
            let [k, m, _] = w.dims();
            if shape.as_slice() != [k, m, 1] || values.len() != k * m {
                return None;
            }
            us.push(Tensor::from_data(
                TensorData::new(values.clone(), [k, m, 1]),
                &device,
            ));
        }
        Some(PowerIteration { us })
    }

    /// The vectors on the host, block by block: shape and values (asynchronous: WebGPU).
    pub async fn to_host(&self) -> Result<Vec<(Vec<usize>, Vec<f32>)>, String> {
        let mut out = Vec::with_capacity(self.us.len());
        for u in &self.us {
            let shape = u.dims().to_vec();
            let data = u
                .clone()
                .into_data_async()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let values = data.try_into_vec::<f32>().map_err(|e| format!("{e:?}"))?;
            out.push((shape, values));
        }
        Ok(out)
    }

    /// One power iteration on every block of `model`: each block's `sigma` estimates
    /// `[k]`, differentiable in the weights, named as [`penalised_blocks`] names them.
    pub fn sigmas(&mut self, model: &Gpt) -> Vec<(String, Tensor<1>)> {
        let blocks = penalised_blocks(model);
        let mut out = Vec::with_capacity(blocks.len());
        for ((name, w), u) in blocks.into_iter().zip(self.us.iter_mut()) {
            let [k, _, _] = w.dims();
            let fixed = w.clone().detach();
            let v = normalise(fixed.swap_dims(1, 2).matmul(u.clone())).detach();
            let wv = w.matmul(v); // [k, m, 1], live in W
            let u_next = normalise(wv.clone().detach()).detach();
            let sigma = (u_next.clone() * wv).sum_dim(1).reshape([k]);
            *u = u_next;
            out.push((name, sigma));
        }
        out
    }

    /// One iteration ([`PowerIteration::sigmas`]) and the penalty
    /// `lambda / 2 * sum sigma` `[1]`, summed over every block of every matrix.
    pub fn penalty(&mut self, model: &Gpt, lambda: f64) -> Tensor<1> {
        let total = self
            .sigmas(model)
            .into_iter()
            .map(|(_, s)| s.sum())
            .reduce(|a, b| a + b);
        match total {
            Some(t) => t * (lambda / 2.0),
            None => Tensor::zeros([1], &model.wte.val().device()),
        }
    }
}
