//! One example's gradients at one checkpoint, for every method at once: the full
//! gradient (TracIn), the head's part (TracIn-Last), and the embedding lookup's per-token
//! sums (TracIn-WE) and their TopK.

use std::collections::BTreeMap;

use mnemo_core::Gpt;
use mnemo_core::backend::Device;
use mnemo_core::burn::module::Param;
use mnemo_core::burn::nn::{LayerNorm, Linear};
use mnemo_core::burn::tensor::activation::log_softmax;
use mnemo_core::burn::tensor::{Gradients, Tensor};
use mnemo_core::model::ids_tensor;

use super::{InfluenceError, device_err};

/// One example's gradients at one checkpoint, on the host.
pub(super) struct ExampleGrad {
    /// Every parameter's gradient (the embedding matrix's in full: head and lookup parts).
    pub(super) full: Vec<f32>,
    /// The output head's part.
    pub(super) head: Vec<f32>,
    /// TracIn-WE: per counted token, the sum of its positions' input gradients.
    pub(super) we: BTreeMap<u32, Vec<f32>>,
    /// TracIn-WE-TopK: the same over the kept positions only.
    pub(super) topk: BTreeMap<u32, Vec<f32>>,
}

pub(super) fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn flat2(p: &Param<Tensor<2>>, grads: &Gradients, device: &Device) -> Tensor<1> {
    let [r, c] = p.val().dims();
    match p.val().grad(grads) {
        Some(g) => g.reshape([r * c]),
        None => Tensor::zeros([r * c], device),
    }
}

fn flat1(p: &Param<Tensor<1>>, grads: &Gradients, device: &Device) -> Tensor<1> {
    let [n] = p.val().dims();
    p.val()
        .grad(grads)
        .unwrap_or_else(|| Tensor::zeros([n], device))
}

fn push_linear(l: &Linear, grads: &Gradients, device: &Device, out: &mut Vec<Tensor<1>>) {
    out.push(flat2(&l.weight, grads, device));
    if let Some(b) = &l.bias {
        out.push(flat1(b, grads, device));
    }
}

fn push_norm(l: &LayerNorm, grads: &Gradients, device: &Device, out: &mut Vec<Tensor<1>>) {
    out.push(flat1(&l.gamma, grads, device));
    if let Some(b) = &l.beta {
        out.push(flat1(b, grads, device));
    }
}

/// The gradients of one text's mean token NLL under `model` (on an autodiff device).
pub(super) async fn example_grad(
    model: &Gpt,
    tokens: &[u32],
    bos: u32,
    include_bos: bool,
    topk: usize,
) -> Result<ExampleGrad, InfluenceError> {
    let device = model.wte.val().device();
    let plain = device.clone().without_autodiff();
    let t = tokens.len() - 1;
    let inputs = &tokens[..t];
    let ids = ids_tensor(&[inputs.to_vec()], t, 0, &device);
    let targets = ids_tensor(&[tokens[1..].to_vec()], t, 0, &device);
    // The looked-up embeddings as a leaf: its gradient is the lookup part alone, and the
    // embedding matrix then only receives the head's part (tied) or nothing (untied).
    let x = model.embed(ids).detach().require_grad();
    let logp = log_softmax(model.forward_embeddings(x.clone()), 2)
        .gather(2, targets.unsqueeze_dim(2))
        .squeeze_dim::<2>(2);
    let loss = -logp.sum() / (t as f64);
    let grads = loss.backward();
    let vocab = model.vocab_size();
    let d = model.d_model();
    // Layout of the read-back vector: x's gradient, the embedding matrix's (head part),
    // then every other parameter, then the untied head.
    let mut parts: Vec<Tensor<1>> = Vec::new();
    let xg = x
        .grad(&grads)
        .map(|g| g.reshape([t * d]))
        .unwrap_or_else(|| Tensor::zeros([t * d], &plain));
    parts.push(xg);
    parts.push(flat2(&model.wte, &grads, &plain));
    if let Some(wpe) = &model.wpe {
        parts.push(flat2(wpe, &grads, &plain));
    }
    for b in &model.blocks {
        push_norm(&b.ln1, &grads, &plain, &mut parts);
        push_linear(&b.attn.qkv, &grads, &plain, &mut parts);
        push_linear(&b.attn.proj, &grads, &plain, &mut parts);
        push_norm(&b.ln2, &grads, &plain, &mut parts);
        push_linear(&b.mlp.fc, &grads, &plain, &mut parts);
        push_linear(&b.mlp.proj, &grads, &plain, &mut parts);
    }
    push_norm(&model.ln_f, &grads, &plain, &mut parts);
    if let Some(h) = &model.head {
        parts.push(flat2(h, &grads, &plain));
    }
    let all = Tensor::cat(parts, 0)
        .into_data_async()
        .await
        .map_err(device_err)?
        .try_into_vec::<f32>()
        .map_err(device_err)?;
    let (xg, rest) = all.split_at(t * d);
    let (wte_head, others) = rest.split_at(vocab * d);
    // Full gradient: the embedding matrix's head part plus the lookup part scattered
    // into the rows of the input tokens, then the rest as read.
    let mut full = Vec::with_capacity(rest.len());
    full.extend_from_slice(wte_head);
    for (pos, &tok) in inputs.iter().enumerate() {
        let row = tok as usize * d;
        if let Some(dst) = full.get_mut(row..row + d) {
            for (a, &b) in dst.iter_mut().zip(&xg[pos * d..(pos + 1) * d]) {
                *a += b;
            }
        }
    }
    full.extend_from_slice(others);
    let head = if model.head.is_some() {
        others[others.len() - d * vocab..].to_vec()
    } else {
        wte_head.to_vec()
    };
    let counted: Vec<usize> = (0..t)
        .filter(|&p| include_bos || inputs[p] != bos)
        .collect();
    let by_token = |positions: &[usize]| {
        let mut m: BTreeMap<u32, Vec<f32>> = BTreeMap::new();
        for &p in positions {
            let g = m.entry(inputs[p]).or_insert_with(|| vec![0.0; d]);
            for (a, &b) in g.iter_mut().zip(&xg[p * d..(p + 1) * d]) {
                *a += b;
            }
        }
        m
    };
    let we = by_token(&counted);
    let mut ranked: Vec<(usize, f64)> = counted
        .iter()
        .map(|&p| {
            let row = &xg[p * d..(p + 1) * d];
            (p, dot(row, row))
        })
        .collect();
    // Largest norm first; ties to the earlier position (the sort is stable).
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let kept: Vec<usize> = ranked.iter().take(topk).map(|&(p, _)| p).collect();
    let topk = by_token(&kept);
    Ok(ExampleGrad {
        full,
        head,
        we,
        topk,
    })
}

/// Per-token terms `<g_w(a), g_w(b)>` of the tokens both maps hold.
pub(super) fn shared_terms<'a>(
    a: &'a BTreeMap<u32, Vec<f32>>,
    b: &'a BTreeMap<u32, Vec<f32>>,
) -> impl Iterator<Item = (u32, f64)> + 'a {
    a.iter()
        .filter_map(move |(w, ga)| b.get(w).map(|gb| (*w, dot(ga, gb))))
}
