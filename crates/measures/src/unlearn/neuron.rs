//! Neuron-level methods (METHODS.md section 5, methods 7-11): a score for every MLP
//! neuron of every layer; [`super::unlearn`] zeroes the top `ratio` per layer. Scores
//! are taken on the first `batch` (default 32) examples of the forget set.
//!
//! - **Zero-Out**: the increase of the forget loss when that neuron alone is zeroed.
//!   (The reference's mask keeps *only* that neuron instead of removing it; Mnemo does
//!   what the name says.)
//! - **Activations**: the neuron's mean activation over the forget set's suffix positions
//!   (targets from position [`super::UnlearnData::suffix_start`] on), times the L2 norm
//!   of its output weights (its row of `c_proj`).
//! - **Integrated Gradients**: per layer, the activation is scaled by `alpha = s/S`,
//!   `s = 1..S` (S = `ig_steps`, 20), and the gradient of the summed probability of the
//!   target tokens at the suffix positions with respect to the scaled activation is
//!   averaged over the steps; the score is activation times mean gradient, summed over
//!   positions and examples.
//! - **Slimming**: a coefficient in [0, 1] per neuron (starting at 1) multiplies its
//!   activation; Adam (lr 0.1) minimises the forget set's LM loss plus
//!   `sparsity * mean |c|` for `epochs` steps, clamping to [0, 1] after each; the
//!   score is the coefficient (neurons the memorised output needs keep theirs).
//! - **Hard Concrete**: an L0 gate per neuron (Louizos et al.: `log_alpha` starting at 3,
//!   temperature beta 2/3, stretched to (-0.1, 1.1) and clamped to [0, 1]; noise drawn
//!   from the seed); Adam minimises the LM loss plus `sparsity` times the expected share
//!   of open gates; the score is `log_alpha`.

use mnemo_core::burn::tensor::activation::{sigmoid, softmax};
use mnemo_core::burn::tensor::{Device, Tensor, TensorData};
use mnemo_core::rng::{self, Stream};
use mnemo_core::train::token_batch;
use mnemo_core::{Checkpoint, Gpt};
use rand::Rng;

use super::{
    MethodError, MethodSettings, OnProgress, UnlearnData, UnlearnError, host, mean_nll, report,
};
use crate::unlearn::Method;

/// Scores of every neuron, `[layer][neuron]` (higher = zeroed first).
pub async fn scores(
    model: &Checkpoint,
    data: &UnlearnData,
    settings: &MethodSettings,
    seed: u64,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<Vec<Vec<f32>>, UnlearnError> {
    // Scores are taken on the first `batch` forget examples (one batch).
    let forget: Vec<Vec<u32>> = data
        .forget
        .iter()
        .take(settings.batch.max(1))
        .cloned()
        .collect();
    match settings.method {
        Method::ZeroOut => zero_out(model, &forget, data.pad, device, progress).await,
        Method::Activations => activations(model, &forget, data, device, progress).await,
        Method::IntegratedGradients => {
            integrated_gradients(model, &forget, data, settings.ig_steps, device, progress).await
        }
        Method::Slimming | Method::HardConcrete => {
            gates(model, &forget, data.pad, settings, seed, device, progress).await
        }
        _ => Err(MethodError::UnknownMethod(settings.method.name().into()).into()),
    }
}

fn width(model: &Checkpoint) -> usize {
    4 * model.config.d_model
}

/// A `[1, 1, n]` tensor of per-neuron factors.
fn factors(v: &[f32], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(v.to_vec(), [1, 1, v.len()]), device)
}

async fn zero_out(
    model: &Checkpoint,
    forget: &[Vec<u32>],
    pad: u32,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<Vec<Vec<f32>>, UnlearnError> {
    let gpt = Gpt::from_checkpoint(model, device)?;
    let w = width(model);
    let layers = model.config.n_layers;
    let base = host(mean_nll(&gpt, forget, pad, &mut |_, m, x| m.forward(x))).await?[0];
    let mut out = vec![vec![0.0f32; w]; layers];
    for (l, row) in out.iter_mut().enumerate() {
        for (j, score) in row.iter_mut().enumerate() {
            let mut keep = vec![1.0f32; w];
            keep[j] = 0.0;
            let keep = factors(&keep, device);
            let loss = mean_nll(&gpt, forget, pad, &mut |layer, m, x| {
                if layer == l {
                    m.proj.forward(m.hidden(x) * keep.clone())
                } else {
                    m.forward(x)
                }
            });
            *score = host(loss).await?[0] - base;
            report(progress, l * w + j + 1, layers * w).await?;
        }
    }
    Ok(out)
}

/// `[B, T, 1]` mask of the suffix targets (scored and at or after `start`).
fn suffix_mask(rows: &[Vec<u32>], start: usize, pad: u32, device: &Device) -> (Tensor<3>, f32) {
    let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    let (_, _, mask, _) = token_batch(&refs, pad, device);
    let [b, t] = mask.dims();
    let mut pos = vec![0.0f32; b * t];
    let mut n = 0.0;
    for (i, r) in rows.iter().enumerate() {
        for j in start.min(t)..t {
            if j + 1 < r.len() {
                pos[i * t + j] = 1.0;
                n += 1.0;
            }
        }
    }
    (
        Tensor::from_data(TensorData::new(pos, [b, t, 1]), device),
        n,
    )
}

async fn activations(
    model: &Checkpoint,
    forget: &[Vec<u32>],
    data: &UnlearnData,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<Vec<Vec<f32>>, UnlearnError> {
    let gpt = Gpt::from_checkpoint(model, device)?;
    let (mask, n) = suffix_mask(forget, data.suffix_start, data.pad, device);
    let refs: Vec<&[u32]> = forget.iter().map(Vec::as_slice).collect();
    let (inputs, _, _, _) = token_batch(&refs, data.pad, device);
    let mut means: Vec<Tensor<1>> = Vec::new();
    let _ = gpt.forward_with_mlp(inputs, &mut |_, m, x| {
        let h = m.hidden(x);
        let [_, _, w] = h.dims();
        means.push(
            (h.clone() * mask.clone())
                .sum_dim(0)
                .sum_dim(1)
                .reshape([w])
                / n.max(1.0) as f64,
        );
        m.proj.forward(h)
    });
    let mut out = Vec::new();
    for (l, mean) in means.into_iter().enumerate() {
        let norms = gpt.blocks[l]
            .mlp
            .proj
            .weight
            .val()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt();
        let [w, _] = norms.dims();
        out.push(host(mean * norms.reshape([w])).await?);
        report(progress, l + 1, gpt.blocks.len()).await?;
    }
    Ok(out)
}

async fn integrated_gradients(
    model: &Checkpoint,
    forget: &[Vec<u32>],
    data: &UnlearnData,
    steps: usize,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<Vec<Vec<f32>>, UnlearnError> {
    let ad = device.clone().autodiff();
    let gpt = Gpt::from_checkpoint(model, &ad)?;
    let layers = model.config.n_layers;
    let refs: Vec<&[u32]> = forget.iter().map(Vec::as_slice).collect();
    let (inputs, targets, _, _) = token_batch(&refs, data.pad, &ad);
    let (mask, _) = suffix_mask(forget, data.suffix_start, data.pad, &ad);
    let mask2: Tensor<2> = mask.clone().squeeze_dim(2);
    let mut out = Vec::new();
    for l in 0..layers {
        // The layer's activation on the forget set, as a constant.
        let mut act: Option<Tensor<3>> = None;
        let _ = gpt.forward_with_mlp(inputs.clone(), &mut |layer, m, x| {
            let h = m.hidden(x);
            if layer == l {
                act = Some(h.clone().detach());
            }
            m.proj.forward(h)
        });
        let act = act.ok_or_else(|| UnlearnError::Device("no activation recorded".into()))?;
        let mut total: Option<Tensor<3>> = None;
        for s in 1..=steps {
            let alpha = s as f64 / steps as f64;
            let scaled = (act.clone() * alpha).require_grad();
            let leaf = scaled.clone();
            let logits = gpt.forward_with_mlp(inputs.clone(), &mut |layer, m, x| {
                if layer == l {
                    m.proj.forward(leaf.clone())
                } else {
                    m.forward(x)
                }
            });
            let p: Tensor<2> = softmax(logits, 2)
                .gather(2, targets.clone().unsqueeze_dim(2))
                .squeeze_dim(2);
            let objective = (p * mask2.clone()).sum();
            let grads = objective.backward();
            let g = scaled
                .grad(&grads)
                .ok_or_else(|| UnlearnError::Device("no gradient for the activation".into()))?;
            total = Some(match total {
                Some(t) => t + g,
                None => g,
            });
            report(progress, l * steps + s, layers * steps).await?;
        }
        let total = total.ok_or_else(|| UnlearnError::Device("no steps".into()))?;
        let act_plain = act.detach();
        let attr = act_plain * total.detach() / steps as f64;
        let [_, _, w] = attr.dims();
        let attr = (attr * mask.clone().detach())
            .sum_dim(0)
            .sum_dim(1)
            .reshape([w]);
        out.push(host(attr).await?);
    }
    Ok(out)
}

/// Slimming and Hard Concrete: learned per-neuron gates.
async fn gates(
    model: &Checkpoint,
    forget: &[Vec<u32>],
    pad: u32,
    settings: &MethodSettings,
    seed: u64,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<Vec<Vec<f32>>, UnlearnError> {
    let ad = device.clone().autodiff();
    let gpt = Gpt::from_checkpoint(model, &ad)?;
    let layers = model.config.n_layers;
    let w = width(model);
    let hard = settings.method == Method::HardConcrete;
    let (beta, gamma, zeta) = (2.0f64 / 3.0, -0.1f64, 1.1f64);
    let init = if hard { 3.0f32 } else { 1.0 };
    let mut params: Vec<Vec<f32>> = vec![vec![init; w]; layers];
    let (mut m1, mut m2) = (vec![vec![0.0f32; w]; layers], vec![vec![0.0f32; w]; layers]);
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut rng = rng::stream(seed, Stream::Unlearn);
    let n_total = (layers * w) as f64;
    for step in 1..=settings.epochs {
        let leaves: Vec<Tensor<1>> = params
            .iter()
            .map(|p| Tensor::<1>::from_data(TensorData::new(p.clone(), [w]), &ad).require_grad())
            .collect();
        let noise: Vec<Tensor<1>> = (0..layers)
            .map(|_| {
                let u: Vec<f32> = (0..w)
                    .map(|_| rng.random_range(1e-6f32..1.0 - 1e-6))
                    .collect();
                let logit: Vec<f32> = u.iter().map(|&u| (u / (1.0 - u)).ln()).collect();
                Tensor::<1>::from_data(TensorData::new(logit, [w]), &ad)
            })
            .collect();
        let gate = |l: usize| -> Tensor<1> {
            if hard {
                let s = sigmoid((noise[l].clone() + leaves[l].clone()) / beta);
                (s * (zeta - gamma) + gamma).clamp(0.0, 1.0)
            } else {
                leaves[l].clone()
            }
        };
        let gs: Vec<Tensor<1>> = (0..layers).map(gate).collect();
        let lm = mean_nll(&gpt, forget, pad, &mut |l, m, x| {
            m.proj
                .forward(m.hidden(x) * gs[l].clone().reshape([1, 1, w]))
        });
        let penalty: Tensor<1> = leaves
            .iter()
            .map(|p| {
                if hard {
                    sigmoid(p.clone() - beta * (-gamma / zeta).ln()).sum()
                } else {
                    p.clone().abs().sum()
                }
            })
            .reduce(|a, b| a + b)
            .ok_or_else(|| UnlearnError::Device("no layers".into()))?
            / n_total;
        let loss = lm + penalty * settings.sparsity;
        let grads = loss.backward();
        // Adam on the host (a few thousand numbers), deterministic on every device.
        let t = step as i32;
        for l in 0..layers {
            let g = match leaves[l].grad(&grads) {
                Some(g) => host(g).await?,
                None => vec![0.0; w],
            };
            for j in 0..w {
                m1[l][j] = b1 * m1[l][j] + (1.0 - b1) * g[j];
                m2[l][j] = b2 * m2[l][j] + (1.0 - b2) * g[j] * g[j];
                let mh = m1[l][j] / (1.0 - b1.powi(t));
                let vh = m2[l][j] / (1.0 - b2.powi(t));
                params[l][j] -= settings.lr as f32 * mh / (vh.sqrt() + eps);
                if !hard {
                    params[l][j] = params[l][j].clamp(0.0, 1.0);
                }
            }
        }
        report(progress, step, settings.epochs).await?;
    }
    Ok(params)
}
