//! Weight-level methods (METHODS.md section 5, methods 12-17) on the MLP weight matrices
//! (`c_fc` `[d, 4d]` and `c_proj` `[4d, d]` of every block; biases untouched).
//!
//! - **Greedy**: a loss that rises on forget and falls on retain examples,
//!   `L = L_retain - L_forget`, on batches mixing both (half forget, half a seeded
//!   retain sample); the weights with the largest `w * dL/dw` (zeroing `w` changes `L` by
//!   about `-w dL/dw`) are zeroed, and the gradient is taken again. The reference zeroes
//!   one weight per round; Mnemo zeroes `ceil(k / 50)` per round (at most 50 rounds for
//!   `k` weights), so its time does not grow with the ratio.
//! - **Durable**: the top `ratio` of entries by `|dL_forget/dw|` in each MLP matrix.
//! - **Durable-Aggregate**: the same, ranked over all MLP weights together.
//! - **Second-Order Unlearning**: the optimal-brain-surgeon saliency `w^2 / (2
//!   [F^-1]_ii)` with a block empirical Fisher per MLP matrix, `F = lambda I + (1/N)
//!   sum_n g_n g_n^T` over the per-example forget-loss gradients `g_n` (N = at most 16
//!   examples; `lambda` = 0.1 times the mean of the Fisher's diagonal). Its inverse's
//!   diagonal is exact by the Woodbury identity, an N x N solve per matrix. The highest
//!   saliencies are zeroed.
//! - **Subnet** (edge-popup, Ramanujan et al.): a score per MLP weight, the weights
//!   frozen; the forward pass uses `w * mask`, the mask removing the `ratio` lowest
//!   scores per matrix, and the straight-through estimator passes `dL/d(w mask) * w` to
//!   the scores. SGD (lr 0.1, momentum 0.9, weight decay 5e-4) *maximises* the forget
//!   loss for `epochs` epochs over the forget set; the final mask is applied. As in the
//!   reference (`random_subnet.py`), scores start uniform in `(-b, b)` with
//!   `b = 1 / sqrt(fan_in)` (PyTorch's `kaiming_uniform_(a = sqrt(5))`, fan_in = the
//!   matrix's second dimension), drawn from the seed, and the mask ranks `|score|`, so the
//!   starting mask is a random pruning of `ratio` of each matrix (part of Subnet's
//!   accuracy cost).
//! - **BalancedSubnet**: the same on `-(1 - a) L_forget + a L_retain` with a retain batch
//!   beside each forget batch, so it forgets while keeping accuracy.

use mnemo_core::burn::tensor::{Device, Tensor, TensorData};
use mnemo_core::model::Mlp;
use mnemo_core::rng::{self, Stream};
use mnemo_core::{Checkpoint, Gpt};
use rand::Rng;

use super::{
    MethodSettings, OnProgress, UnlearnData, UnlearnError, count, host, mean_nll, mlp_matrices,
    report, top_k, zero_entries,
};
use crate::unlearn::Method;

/// Scores per MLP matrix: `(tensor name, one score per entry, row-major)`.
pub type MatrixScores = Vec<(String, Vec<f32>)>;

fn shape_of(model: &Checkpoint, name: &str) -> Result<Vec<usize>, UnlearnError> {
    model
        .tensors
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.shape.clone())
        .ok_or_else(|| UnlearnError::Checkpoint(format!("tensor {name} is missing")))
}

fn values_of<'a>(model: &'a Checkpoint, name: &str) -> Result<&'a [f32], UnlearnError> {
    model
        .tensors
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.values.as_slice())
        .ok_or_else(|| UnlearnError::Checkpoint(format!("tensor {name} is missing")))
}

/// Gradients of `loss(rows)` with respect to every MLP matrix, on the host.
async fn mlp_grads(gpt: &Gpt, loss: Tensor<1>) -> Result<Vec<Vec<f32>>, UnlearnError> {
    let grads = loss.backward();
    let mut out = Vec::new();
    for b in &gpt.blocks {
        for w in [&b.mlp.fc.weight, &b.mlp.proj.weight] {
            let g = w
                .val()
                .grad(&grads)
                .ok_or_else(|| UnlearnError::Device("no gradient for an MLP weight".into()))?;
            out.push(host(g).await?);
        }
    }
    Ok(out)
}

fn plain(_: usize, m: &Mlp, x: Tensor<3>) -> Tensor<3> {
    m.forward(x)
}

/// Durable's scores: `|dL_forget/dw|` per MLP weight.
pub async fn durable(
    model: &Checkpoint,
    data: &UnlearnData,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<MatrixScores, UnlearnError> {
    let gpt = Gpt::from_checkpoint(model, &device.clone().autodiff())?;
    let loss = mean_nll(&gpt, &data.forget, data.pad, &mut plain);
    let grads = mlp_grads(&gpt, loss).await?;
    report(progress, 1, 1).await?;
    Ok(mlp_matrices(model.config.n_layers)
        .into_iter()
        .zip(grads)
        .map(|(n, g)| (n, g.into_iter().map(f32::abs).collect()))
        .collect())
}

/// Second-Order Unlearning's saliencies (see the module's documentation).
pub async fn second_order(
    model: &Checkpoint,
    data: &UnlearnData,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<MatrixScores, UnlearnError> {
    let ad = device.clone().autodiff();
    let gpt = Gpt::from_checkpoint(model, &ad)?;
    let n = data.forget.len().min(16);
    let names = mlp_matrices(model.config.n_layers);
    // per_example[e][matrix] = gradient vector.
    let mut per_example: Vec<Vec<Vec<f32>>> = Vec::with_capacity(n);
    for (e, row) in data.forget.iter().take(n).enumerate() {
        let loss = mean_nll(&gpt, std::slice::from_ref(row), data.pad, &mut plain);
        per_example.push(mlp_grads(&gpt, loss).await?);
        report(progress, e + 1, n + 1).await?;
    }
    let mut out = Vec::new();
    for (mi, name) in names.into_iter().enumerate() {
        let w = values_of(model, &name)?;
        let p = w.len();
        let g: Vec<&[f32]> = per_example.iter().map(|ex| ex[mi].as_slice()).collect();
        let mean_diag = (0..p)
            .map(|i| g.iter().map(|ge| (ge[i] as f64).powi(2)).sum::<f64>() / n as f64)
            .sum::<f64>()
            / p as f64;
        let lambda = (0.1 * mean_diag).max(1e-12);
        // M = N lambda I + G^T G (N x N).
        let mut m = vec![vec![0.0f64; n]; n];
        for a in 0..n {
            for b in a..n {
                let dot: f64 = (0..p).map(|i| g[a][i] as f64 * g[b][i] as f64).sum();
                m[a][b] = dot;
                m[b][a] = dot;
            }
            m[a][a] += n as f64 * lambda;
        }
        let inv = invert(m).ok_or_else(|| UnlearnError::Device("singular Fisher block".into()))?;
        let mut s = Vec::with_capacity(p);
        for (i, &wi) in w.iter().enumerate() {
            let gi: Vec<f64> = g.iter().map(|ge| ge[i] as f64).collect();
            let mut quad = 0.0;
            for a in 0..n {
                let row: f64 = (0..n).map(|b| inv[a][b] * gi[b]).sum();
                quad += gi[a] * row;
            }
            let diag = ((1.0 - quad) / lambda).max(1e-30);
            s.push(((wi as f64).powi(2) / (2.0 * diag)) as f32);
        }
        out.push((name, s));
    }
    report(progress, n + 1, n + 1).await?;
    Ok(out)
}

/// Gauss-Jordan inverse of a symmetric positive definite matrix.
fn invert(mut a: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for c in 0..n {
        let piv = (c..n).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))?;
        if a[piv][c].abs() < 1e-300 {
            return None;
        }
        a.swap(c, piv);
        inv.swap(c, piv);
        let d = a[c][c];
        for j in 0..n {
            a[c][j] /= d;
            inv[c][j] /= d;
        }
        for r in 0..n {
            if r != c {
                let f = a[r][c];
                if f != 0.0 {
                    for j in 0..n {
                        a[r][j] -= f * a[c][j];
                        inv[r][j] -= f * inv[c][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

/// A seeded sample of `k` retain rows.
fn retain_sample(data: &UnlearnData, k: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<Vec<u32>> {
    let mut idx: Vec<usize> = (0..data.retain.len()).collect();
    rng::shuffle(&mut idx, rng);
    idx.into_iter()
        .take(k)
        .map(|i| data.retain[i].clone())
        .collect()
}

/// Greedy (see the module's documentation), editing `out` in place.
pub async fn greedy(
    out: &mut Checkpoint,
    data: &UnlearnData,
    settings: &MethodSettings,
    seed: u64,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<(), UnlearnError> {
    let names = mlp_matrices(out.config.n_layers);
    let mut sizes = Vec::new();
    for n in &names {
        sizes.push(values_of(out, n)?.len());
    }
    let total: usize = sizes.iter().sum();
    let k = count(settings.ratio, total);
    let per_round = k.div_ceil(50).max(1);
    let rounds = k.div_ceil(per_round);
    let mut rng = rng::stream(seed, Stream::Unlearn);
    let half = (settings.batch / 2).max(1);
    let ad = device.clone().autodiff();
    let mut removed = 0;
    for round in 0..rounds {
        let gpt = Gpt::from_checkpoint(out, &ad)?;
        let start = (round * half) % data.forget.len();
        let forget: Vec<Vec<u32>> = (0..half.min(data.forget.len()))
            .map(|i| data.forget[(start + i) % data.forget.len()].clone())
            .collect();
        let retain = retain_sample(data, half, &mut rng);
        let lf = mean_nll(&gpt, &forget, data.pad, &mut plain);
        let loss = if retain.is_empty() {
            -lf
        } else {
            mean_nll(&gpt, &retain, data.pad, &mut plain) - lf
        };
        let grads = mlp_grads(&gpt, loss).await?;
        let mut all = Vec::with_capacity(total);
        for (name, g) in names.iter().zip(&grads) {
            let w = values_of(out, name)?;
            all.extend(w.iter().zip(g).map(
                |(&w, &g)| {
                    if w == 0.0 { f32::NEG_INFINITY } else { w * g }
                },
            ));
        }
        let take = per_round.min(k - removed);
        let picks = top_k(&all, take);
        let mut offset = 0;
        for (name, &size) in names.iter().zip(&sizes) {
            let idx: Vec<usize> = picks
                .iter()
                .filter(|&&i| i >= offset && i < offset + size)
                .map(|&i| i - offset)
                .collect();
            zero_entries(out, name, &idx)?;
            offset += size;
        }
        removed += take;
        report(progress, round + 1, rounds).await?;
    }
    Ok(())
}

/// Subnet and BalancedSubnet: the final scores per MLP matrix (the `ratio` lowest are
/// removed by [`super::unlearn`]).
pub async fn subnet(
    model: &Checkpoint,
    data: &UnlearnData,
    settings: &MethodSettings,
    seed: u64,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<MatrixScores, UnlearnError> {
    let ad = device.clone().autodiff();
    let gpt = Gpt::from_checkpoint(model, &ad)?;
    let names = mlp_matrices(model.config.n_layers);
    let mut rng = rng::stream(seed, Stream::Unlearn);
    let mut shapes = Vec::new();
    let mut scores: Vec<Vec<f32>> = Vec::new();
    for n in &names {
        let shape = shape_of(model, n)?;
        let b = 1.0 / (shape.get(1).copied().unwrap_or(1).max(1) as f32).sqrt();
        let len = values_of(model, n)?.len();
        scores.push((0..len).map(|_| rng.random_range(-b..b)).collect());
        shapes.push(shape);
    }
    let weights: Vec<Tensor<2>> = gpt
        .blocks
        .iter()
        .flat_map(|b| {
            [
                b.mlp.fc.weight.val().detach(),
                b.mlp.proj.weight.val().detach(),
            ]
        })
        .collect();
    let mut velocity: Vec<Vec<f32>> = scores.iter().map(|s| vec![0.0; s.len()]).collect();
    let balanced = settings.method == Method::BalancedSubnet;
    let a = settings.alpha;
    let (momentum, decay, lr) = (0.9f32, 5e-4f32, settings.lr as f32);
    let batch = settings.batch.max(1);
    let per_epoch = data.forget.len().div_ceil(batch);
    let total = settings.epochs * per_epoch;
    let mut step = 0;
    for _ in 0..settings.epochs {
        for chunk in data.forget.chunks(batch) {
            // Masks from the current scores, and the scores as leaves.
            let mut eff: Vec<Tensor<2>> = Vec::new();
            let mut leaves: Vec<Tensor<2>> = Vec::new();
            for ((s, shape), w) in scores.iter().zip(&shapes).zip(&weights) {
                let neg: Vec<f32> = s.iter().map(|v| -v.abs()).collect();
                let mut mask = vec![1.0f32; s.len()];
                for i in top_k(&neg, count(settings.ratio, s.len())) {
                    mask[i] = 0.0;
                }
                let dims = [shape[0], shape[1]];
                let m = Tensor::<2>::from_data(TensorData::new(mask, dims), &ad);
                let leaf =
                    Tensor::<2>::from_data(TensorData::new(s.clone(), dims), &ad).require_grad();
                // Straight through: the mask's gradient reaches the scores through |s|.
                let abs = leaf.clone().abs();
                eff.push(w.clone() * (m + abs.clone() - abs.detach()));
                leaves.push(leaf);
            }
            let mut masked = |l: usize, m: &Mlp, x: Tensor<3>| -> Tensor<3> {
                let fc = x.matmul(eff[2 * l].clone().unsqueeze())
                    + m.fc.bias.as_ref().map_or_else(
                        || Tensor::zeros([1, 1, 1], &x_device(m)),
                        |b| b.val().unsqueeze(),
                    );
                let h = m.act(fc);
                h.matmul(eff[2 * l + 1].clone().unsqueeze())
                    + m.proj.bias.as_ref().map_or_else(
                        || Tensor::zeros([1, 1, 1], &x_device(m)),
                        |b| b.val().unsqueeze(),
                    )
            };
            let lf = mean_nll(&gpt, chunk, data.pad, &mut masked);
            let loss = if balanced && !data.retain.is_empty() {
                let retain = retain_sample(data, chunk.len(), &mut rng);
                let lr_ = mean_nll(&gpt, &retain, data.pad, &mut masked);
                lf * (-(1.0 - a)) + lr_ * a
            } else {
                -lf
            };
            let grads = loss.backward();
            for ((leaf, s), v) in leaves
                .iter()
                .zip(scores.iter_mut())
                .zip(velocity.iter_mut())
            {
                let g = match leaf.grad(&grads) {
                    Some(g) => host(g).await?,
                    None => vec![0.0; s.len()],
                };
                for i in 0..s.len() {
                    v[i] = momentum * v[i] + g[i] + decay * s[i];
                    s[i] -= lr * v[i];
                }
            }
            step += 1;
            report(progress, step, total).await?;
        }
    }
    Ok(names.into_iter().zip(scores).collect())
}

fn x_device(m: &Mlp) -> Device {
    m.fc.weight.val().device()
}
