//! The VP-SDE, the MLP noise predictor, its training step and the sampler.
//!
//! - **Schedule** (METHODS.md section 6): `beta(t) = 0.1 + 19.9 t`, `B(t) = 0.1 t + 9.95
//!   t²`, `psi(t) = exp(-B/2)`, `sigma(t) = sqrt(1 - exp(-B))` (computed as
//!   `sqrt(-expm1(-B))`, exact at small `t`).
//! - **Network**: `eps(x, t) = MLP([x, emb(t)])`, `depth` hidden layers of `width` with
//!   SiLU, a linear output of size `D`. `emb(t)` is the sinusoidal embedding of the *log*
//!   time `c = 1 + ln(t) / ln(1e5)` (0 at `t = 1e-5`, 1 at `t = 1`, clamped):
//!   `[sin(100 c f_i), cos(100 c f_i)]`, `f_i = 10000^(-i / (E/2))`, `i < E/2`, built on
//!   the host (it does not depend on `x`, so no gradient flows through it). An embedding
//!   of `t` itself (DDPM's `1000 t`) is nearly constant below `t = 1e-3` and the network
//!   then cannot tell FLIPD's `t0 = 1e-4` from `1e-3`, where `eps` differs threefold near
//!   a manifold; the log time resolves every decade alike. Weights and
//!   biases are drawn on the host from `Stream::Init`, uniform in `±1/sqrt(fan_in)`
//!   (PyTorch's default for `nn.Linear`), so they are bit-identical on every backend.
//! - **Training**: Adam (burn's, `epsilon` 1e-8, no weight decay), constant rate. A step
//!   draws, from `Stream::DataOrder`, `batch` training indices with replacement, times
//!   and noise `e ~ N(0, I)`. Times: each is `U(1e-5, 1)` (METHODS.md's `U(0, 1)`, the
//!   lower end keeping `sigma > 0`) with probability 1/2 and log-uniform on `[1e-5, 1]`
//!   otherwise. With `U(0, 1)` alone one draw in 10,000 falls below FLIPD's `t0 = 1e-4`,
//!   and the network never learns the small-`t` noise that FLIPD reads (measured: FLIPD
//!   about 2 on every part of the lollipop); the mixture spends half the batch on the
//!   small times and keeps the usual weight on the rest. The loss is the mean over the
//!   batch and coordinates of
//!   `(eps(psi x0 + sigma e, t) - e)²`.
//! - **Sampler**: Euler-Maruyama on the reverse SDE `dx = [-beta x / 2 - beta s(x, t)] dt +
//!   sqrt(beta) dW` with `s = -eps / sigma`, from `x ~ N(0, I)` at `t = 1` down to
//!   `t_min` in `sample_steps` equal steps, the last without noise, then one Tweedie step
//!   `x0 = (x - sigma eps(x, t_min)) / psi`. Noise from `Stream::Geometry`.

use mnemo_core::backend::Device;
use mnemo_core::burn;
use mnemo_core::burn::module::{Module, Param};
use mnemo_core::burn::nn::Linear;
use mnemo_core::burn::tensor::activation::silu;
use mnemo_core::burn::tensor::{Tensor, TensorData};
use mnemo_core::spec::geometry::GeometryModel;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `beta(t)`.
pub fn beta(t: f64) -> f64 {
    0.1 + 19.9 * t
}

/// `B(t) = ∫_0^t beta`.
pub fn big_b(t: f64) -> f64 {
    0.1 * t + 9.95 * t * t
}

/// The signal scale `psi(t)`.
pub fn psi(t: f64) -> f64 {
    (-big_b(t) / 2.0).exp()
}

/// The noise scale `sigma(t)`.
pub fn sigma(t: f64) -> f64 {
    (-(-big_b(t)).exp_m1()).sqrt()
}

/// The sinusoidal embedding of time `t` (size `e`, even), as the network reads it.
pub fn time_embedding(t: f64, e: usize) -> Vec<f32> {
    let half = e / 2;
    let mut v = vec![0.0f32; e];
    let c = (1.0 + t.max(1e-300).ln() / 1e5f64.ln()).clamp(0.0, 1.0);
    for i in 0..half {
        let f = 10000f64.powf(-(i as f64) / half as f64);
        let a = 100.0 * c * f;
        v[i] = a.sin() as f32;
        v[half + i] = a.cos() as f32;
    }
    v
}

/// The noise predictor.
#[derive(Module, Debug)]
pub struct EpsNet {
    /// Hidden layers (the first takes `D + E` inputs).
    pub hidden: Vec<Linear>,
    /// Output layer (`width -> D`).
    pub out: Linear,
    /// Size of the time embedding.
    pub time_dim: usize,
}

fn uniform_linear(rng: &mut ChaCha8Rng, d_in: usize, d_out: usize, device: &Device) -> Linear {
    let bound = 1.0 / (d_in as f64).sqrt();
    let w: Vec<f32> = (0..d_in * d_out)
        .map(|_| rng.random_range(-bound..bound) as f32)
        .collect();
    let b: Vec<f32> = (0..d_out)
        .map(|_| rng.random_range(-bound..bound) as f32)
        .collect();
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [d_out]),
            device,
        ))),
    }
}

impl EpsNet {
    /// A fresh network for data of dimension `dim`, weights from `Stream::Init` of `seed`.
    pub fn new(config: &GeometryModel, dim: usize, seed: u64, device: &Device) -> Self {
        let mut rng = mnemo_core::rng::stream(seed, mnemo_core::rng::Stream::Init);
        let mut hidden = Vec::new();
        let mut d_in = dim + config.time_dim;
        for _ in 0..config.depth {
            hidden.push(uniform_linear(&mut rng, d_in, config.width, device));
            d_in = config.width;
        }
        let out = uniform_linear(&mut rng, d_in, dim, device);
        EpsNet {
            hidden,
            out,
            time_dim: config.time_dim,
        }
    }

    /// `eps(x, t)` for a batch `x` `[N, D]` and per-row embeddings `temb` `[N, E]`.
    pub fn forward(&self, x: Tensor<2>, temb: Tensor<2>) -> Tensor<2> {
        let mut h = Tensor::cat(vec![x, temb], 1);
        for l in &self.hidden {
            h = silu(l.forward(h));
        }
        self.out.forward(h)
    }

    /// `eps(x, t)` at one time `t` for every row of `x`.
    pub fn forward_at(&self, x: Tensor<2>, t: f64) -> Tensor<2> {
        let [n, _] = x.dims();
        let device = x.device();
        let e = time_embedding(t, self.time_dim);
        let temb = Tensor::<1>::from_data(TensorData::new(e, [self.time_dim]), &device)
            .unsqueeze::<2>()
            .expand([n, self.time_dim]);
        self.forward(x, temb)
    }
}

/// A standard normal draw as `f32`.
pub(super) fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    let v: f64 = StandardNormal.sample(rng);
    v as f32
}

/// One training batch drawn on the host: noised inputs `[B, D]`, time embeddings
/// `[B, E]` and the noise targets `[B, D]`.
pub(super) struct Batch {
    pub(super) y: Vec<f32>,
    pub(super) temb: Vec<f32>,
    pub(super) e: Vec<f32>,
}

pub(super) fn draw_batch(
    rng: &mut ChaCha8Rng,
    train: &[f32],
    dim: usize,
    batch: usize,
    time_dim: usize,
) -> Batch {
    let n = train.len() / dim;
    let mut y = Vec::with_capacity(batch * dim);
    let mut temb = Vec::with_capacity(batch * time_dim);
    let mut e = Vec::with_capacity(batch * dim);
    for _ in 0..batch {
        let i = rng.random_range(0..n);
        let t = if rng.random::<bool>() {
            rng.random_range(1e-5..1.0)
        } else {
            10f64.powf(rng.random_range(-5.0..0.0))
        };
        let (p, s) = (psi(t) as f32, sigma(t) as f32);
        for c in 0..dim {
            let z = gauss(rng);
            y.push(p * train[i * dim + c] + s * z);
            e.push(z);
        }
        temb.extend(time_embedding(t, time_dim));
    }
    Batch { y, temb, e }
}
