//! Post-hoc unlearning of memorised TinyMem data (METHODS.md section 5, methods 7-17,
//! after Sakarvadia et al., ICLR 2025): eleven named methods, each scoring MLP neurons
//! ([`neuron`]) or MLP weights ([`weight`]) of a trained model and zeroing the top
//! `ratio` of them, measured before and after with [`crate::tinymem`].
//!
//! Every method works on a **copy**: it takes the model as a [`Checkpoint`] (host
//! weights) and returns a new one; the original is never changed. Every random draw
//! (retain samples, hard-concrete noise, subnet scores) comes from
//! `rng::stream(seed, Stream::Unlearn)`. Everything runs on any burn [`Device`]: the
//! gradients on `device.clone().autodiff()`, every read through `into_data_async`.
//!
//! A shell (the CLI, the browser's worker) runs the methods one at a time:
//! [`prepare`] measures the untouched model once and picks the forget and retain sets,
//! then [`run_method`] applies one [`MethodSettings`] and measures the result, reporting
//! progress (and taking a Cancel) through its callback between steps. The shell
//! supplies the clock, so the same code times itself natively and in the browser.
//!
//! Choices written down here:
//! - The *forget set* is the noised training examples the untouched model memorises (or,
//!   on backdoor data, the triggered training examples on which the backdoor fires);
//!   when none is memorised, all counted noised (or triggered) examples. Its loss is the
//!   mean token cross-entropy over the whole example as trained on (noise included).
//! - The *retain set* is a seeded sample of [`MitigationOptions::retain`] clean training
//!   examples of all tasks.
//! - "Zeroing a neuron" sets its input weights (a column of `c_fc`) and its bias to 0,
//!   so its activation is `act(0) = 0` for ReLU and GELU. "Zeroing a weight" sets one
//!   entry of an MLP matrix (`c_fc` or `c_proj`; biases untouched) to 0.
//! - The number removed is `ceil(ratio * n)` per layer (neurons) or per matrix (weights),
//!   over all MLP weights for Durable-Aggregate and Greedy.

pub mod neuron;
pub mod weight;

use std::ops::ControlFlow;

use mnemo_core::burn::tensor::activation::log_softmax;
use mnemo_core::burn::tensor::{Device, Tensor};
use mnemo_core::checkpoint::NamedTensor;
use mnemo_core::corpus::InstanceKind;
use mnemo_core::model::Mlp;
use mnemo_core::rng::{self, Stream};
use mnemo_core::train::token_batch;
use mnemo_core::{Checkpoint, CheckpointError, Corpus, Gpt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::tinymem::{self, Memorisation, Quality, TinyMemError};

/// Why a method could not run.
#[derive(Debug, Error)]
pub enum UnlearnError {
    /// A method name that is not one of [`Method::ALL`].
    #[error("unknown method {0:?}; the methods are {list}", list = Method::names().join(", "))]
    UnknownMethod(String),
    /// A ratio outside `(0, 1)` or a setting outside its range.
    #[error("{field} = {value} is impossible: {why}")]
    Setting {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: f64,
        /// The allowed range.
        why: &'static str,
    },
    /// The checkpoint does not fit the data's model.
    #[error("the checkpoint does not fit: {0}")]
    Checkpoint(String),
    /// A measure failed.
    #[error("measure: {0}")]
    Measure(#[from] TinyMemError),
    /// The forget set is empty (no noised or triggered training examples).
    #[error("nothing to forget: the data has no noised or triggered training examples")]
    NothingToForget,
    /// A device operation failed.
    #[error("device: {0}")]
    Device(String),
    /// The caller cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl From<CheckpointError> for UnlearnError {
    fn from(e: CheckpointError) -> Self {
        UnlearnError::Checkpoint(e.to_string())
    }
}

pub(crate) fn dev<E: std::fmt::Debug>(e: E) -> UnlearnError {
    UnlearnError::Device(format!("{e:?}"))
}

/// The eleven post-hoc methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Neuron level: the forget-loss change when the neuron alone is zeroed.
    ZeroOut,
    /// Neuron level: mean suffix activation times the norm of the output weights.
    Activations,
    /// Neuron level: integrated gradients of the target tokens' probability.
    IntegratedGradients,
    /// Neuron level: learned coefficients with an L1 penalty.
    Slimming,
    /// Neuron level: hard-concrete L0 gates.
    HardConcrete,
    /// Weight level: repeatedly zero the weight with the largest `w * grad`.
    Greedy,
    /// Weight level: top `|grad|` of the forget loss per MLP matrix.
    Durable,
    /// Weight level: top `|grad|` of the forget loss over all MLP weights.
    DurableAggregate,
    /// Weight level: optimal-brain-surgeon saliency with a block empirical Fisher.
    SecondOrder,
    /// Weight level: edge-popup masks that maximise the forget loss.
    Subnet,
    /// Weight level: edge-popup masks on a balance of forget and retain losses.
    BalancedSubnet,
}

/// Neuron- or weight-level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Scores MLP neurons.
    Neuron,
    /// Scores MLP weights.
    Weight,
}

impl Kind {
    /// Its name in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Neuron => "neuron",
            Kind::Weight => "weight",
        }
    }
}

impl Method {
    /// Every method, in the order of METHODS.md.
    pub const ALL: [Method; 11] = [
        Method::ZeroOut,
        Method::Activations,
        Method::IntegratedGradients,
        Method::Slimming,
        Method::HardConcrete,
        Method::Greedy,
        Method::Durable,
        Method::DurableAggregate,
        Method::SecondOrder,
        Method::Subnet,
        Method::BalancedSubnet,
    ];

    /// Its name in specs, the CLI and the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Method::ZeroOut => "zero-out",
            Method::Activations => "activations",
            Method::IntegratedGradients => "integrated-gradients",
            Method::Slimming => "slimming",
            Method::HardConcrete => "hard-concrete",
            Method::Greedy => "greedy",
            Method::Durable => "durable",
            Method::DurableAggregate => "durable-aggregate",
            Method::SecondOrder => "second-order",
            Method::Subnet => "subnet",
            Method::BalancedSubnet => "balanced-subnet",
        }
    }

    /// Every name.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|m| m.name()).collect()
    }

    /// The method of this name.
    pub fn from_name(name: &str) -> Result<Method, UnlearnError> {
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.name() == name)
            .ok_or_else(|| UnlearnError::UnknownMethod(name.to_string()))
    }

    /// Neuron- or weight-level.
    pub fn kind(self) -> Kind {
        match self {
            Method::ZeroOut
            | Method::Activations
            | Method::IntegratedGradients
            | Method::Slimming
            | Method::HardConcrete => Kind::Neuron,
            _ => Kind::Weight,
        }
    }
}

/// One method with its settings. [`MethodSettings::defaults`] gives the reference's
/// defaults (where the reference's scripts set them; otherwise the choice named there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSettings {
    /// The method.
    pub method: Method,
    /// Share of neurons (per layer) or weights (per matrix, or of all MLP weights) to
    /// zero, in `(0, 1)`.
    pub ratio: f64,
    /// Optimisation steps (Slimming, Hard Concrete: Adam steps on the forget set;
    /// Subnet, BalancedSubnet: epochs over the forget set).
    pub epochs: usize,
    /// Learning rate (Slimming, Hard Concrete: Adam; Subnet, BalancedSubnet: SGD).
    pub lr: f64,
    /// Weight of the sparsity penalty (Slimming's L1, Hard Concrete's L0).
    pub sparsity: f64,
    /// BalancedSubnet's `a` in `-(1 - a) L_forget + a L_retain`.
    pub alpha: f64,
    /// Integrated Gradients' steps from 0 to the activation.
    pub ig_steps: usize,
    /// Sequences per batch.
    pub batch: usize,
}

impl MethodSettings {
    /// The reference's defaults for `method`: ratio 0.01 for the neuron methods and
    /// Durable, 0.001 for Durable-Aggregate and Second-Order, 1e-4 for Greedy (one
    /// weight per step, so its time grows with the ratio), 0.05 for the subnets; Adam lr
    /// 0.1 and penalty 1000 for Slimming and Hard Concrete; SGD lr 0.1 (momentum 0.9,
    /// weight decay 5e-4) for the subnets, `a` = 0.7; 20 IG steps.
    pub fn defaults(method: Method) -> Self {
        let ratio = match method {
            Method::Greedy => 1e-4,
            Method::DurableAggregate | Method::SecondOrder => 1e-3,
            Method::Subnet | Method::BalancedSubnet => 0.05,
            _ => 0.01,
        };
        let epochs = match method {
            Method::Slimming | Method::HardConcrete => 50,
            Method::Subnet => 5,
            Method::BalancedSubnet => 20,
            _ => 1,
        };
        MethodSettings {
            method,
            ratio,
            epochs,
            lr: 0.1,
            sparsity: 1000.0,
            alpha: 0.7,
            ig_steps: 20,
            batch: 32,
        }
    }

    /// Check every setting.
    pub fn validate(&self) -> Result<(), UnlearnError> {
        let bad = |field, value: f64, why| Err(UnlearnError::Setting { field, value, why });
        if !(self.ratio > 0.0 && self.ratio < 1.0) {
            return bad("ratio", self.ratio, "a share strictly between 0 and 1");
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return bad("epochs", self.epochs as f64, "1 to 10,000");
        }
        if !(self.lr > 0.0 && self.lr <= 10.0) {
            return bad("lr", self.lr, "above 0, at most 10");
        }
        if !(self.sparsity >= 0.0 && self.sparsity <= 1e6) {
            return bad("sparsity", self.sparsity, "0 to 1e6");
        }
        if !(self.alpha >= 0.0 && self.alpha <= 1.0) {
            return bad("alpha", self.alpha, "0 to 1");
        }
        if self.ig_steps == 0 || self.ig_steps > 1000 {
            return bad("ig_steps", self.ig_steps as f64, "1 to 1,000");
        }
        if self.batch == 0 || self.batch > 1024 {
            return bad("batch", self.batch as f64, "1 to 1,024");
        }
        Ok(())
    }

    /// The settings as one CSV cell, e.g. `ratio=0.01`.
    pub fn label(&self) -> String {
        let mut s = format!("ratio={}", self.ratio);
        match self.method {
            Method::Slimming | Method::HardConcrete => {
                s += &format!(
                    " steps={} lr={} penalty={}",
                    self.epochs, self.lr, self.sparsity
                )
            }
            Method::Subnet => s += &format!(" epochs={} lr={}", self.epochs, self.lr),
            Method::BalancedSubnet => {
                s += &format!(" epochs={} lr={} a={}", self.epochs, self.lr, self.alpha)
            }
            Method::IntegratedGradients => s += &format!(" steps={}", self.ig_steps),
            _ => {}
        }
        s
    }
}

/// The data every method reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlearnData {
    /// Forget set: token rows (BOS ... EOS, as trained on).
    pub forget: Vec<Vec<u32>>,
    /// Retain set: clean training rows.
    pub retain: Vec<Vec<u32>>,
    /// Padding id.
    pub pad: u32,
    /// First target position of the "suffix" (Activations, Integrated Gradients score
    /// positions from here on; the measure's prefix length).
    pub suffix_start: usize,
}

/// Progress within one method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepProgress {
    /// Steps done.
    pub done: usize,
    /// Steps in the method.
    pub total: usize,
}

/// The progress callback: return `ControlFlow::Break(())` to cancel.
pub type OnProgress<'a> = &'a mut dyn FnMut(StepProgress) -> ControlFlow<()>;

pub(crate) fn report(p: OnProgress<'_>, done: usize, total: usize) -> Result<(), UnlearnError> {
    match p(StepProgress { done, total }) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(UnlearnError::Cancelled),
    }
}

/// Apply one method to a copy of `model` and return the edited copy.
pub async fn unlearn(
    model: &Checkpoint,
    data: &UnlearnData,
    settings: &MethodSettings,
    seed: u64,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<Checkpoint, UnlearnError> {
    settings.validate()?;
    if data.forget.is_empty() {
        return Err(UnlearnError::NothingToForget);
    }
    let mut out = model.clone();
    match settings.method {
        Method::ZeroOut
        | Method::Activations
        | Method::IntegratedGradients
        | Method::Slimming
        | Method::HardConcrete => {
            let scores = neuron::scores(model, data, settings, seed, device, progress).await?;
            for (layer, s) in scores.iter().enumerate() {
                let k = count(settings.ratio, s.len());
                zero_neurons(&mut out, layer, &top_k(s, k))?;
            }
        }
        Method::Greedy => weight::greedy(&mut out, data, settings, seed, device, progress).await?,
        Method::Durable | Method::DurableAggregate | Method::SecondOrder => {
            let scores = match settings.method {
                Method::SecondOrder => weight::second_order(model, data, device, progress).await?,
                _ => weight::durable(model, data, device, progress).await?,
            };
            if settings.method == Method::DurableAggregate {
                let all: Vec<f32> = scores.iter().flat_map(|(_, s)| s.iter().copied()).collect();
                let k = count(settings.ratio, all.len());
                let threshold_idx = top_k(&all, k);
                let mut offset = 0;
                let mut picks: Vec<Vec<usize>> = vec![Vec::new(); scores.len()];
                let bounds: Vec<usize> = scores
                    .iter()
                    .map(|(_, s)| {
                        offset += s.len();
                        offset
                    })
                    .collect();
                for i in threshold_idx {
                    let m = bounds.partition_point(|&b| b <= i);
                    let start = if m == 0 { 0 } else { bounds[m - 1] };
                    picks[m].push(i - start);
                }
                for ((name, _), idx) in scores.iter().zip(picks) {
                    zero_entries(&mut out, name, &idx)?;
                }
            } else {
                for (name, s) in &scores {
                    zero_entries(&mut out, name, &top_k(s, count(settings.ratio, s.len())))?;
                }
            }
        }
        Method::Subnet | Method::BalancedSubnet => {
            let scores = weight::subnet(model, data, settings, seed, device, progress).await?;
            for (name, s) in &scores {
                // Remove the `ratio` lowest-scored weights: the top of minus the score.
                let neg: Vec<f32> = s.iter().map(|v| -v.abs()).collect();
                zero_entries(&mut out, name, &top_k(&neg, count(settings.ratio, s.len())))?;
            }
        }
    }
    Ok(out)
}

/// How many of `n` a ratio removes: `ceil(ratio * n)`, at most `n`.
pub fn count(ratio: f64, n: usize) -> usize {
    ((ratio * n as f64).ceil() as usize).min(n)
}

/// Indices of the `k` largest scores, largest first (ties to the lower index; NaN last).
pub fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (scores[a], scores[b]);
        y.partial_cmp(&x)
            .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
            .then(a.cmp(&b))
    });
    idx.truncate(k);
    idx
}

fn tensor_mut<'a>(ck: &'a mut Checkpoint, name: &str) -> Result<&'a mut NamedTensor, UnlearnError> {
    ck.tensors
        .iter_mut()
        .find(|t| t.name == name)
        .ok_or_else(|| UnlearnError::Checkpoint(format!("tensor {name} is missing")))
}

/// Zero neurons `neurons` of MLP layer `layer` in `ck`: their input weights (columns of
/// `c_fc.weight`, stored `[d, 4d]`) and their biases.
pub fn zero_neurons(
    ck: &mut Checkpoint,
    layer: usize,
    neurons: &[usize],
) -> Result<(), UnlearnError> {
    let w = tensor_mut(ck, &format!("h.{layer}.mlp.c_fc.weight"))?;
    let width = w.shape.get(1).copied().unwrap_or(0);
    for &j in neurons {
        if j >= width {
            return Err(UnlearnError::Checkpoint(format!("neuron {j} of {width}")));
        }
        for row in w.values.chunks_mut(width) {
            row[j] = 0.0;
        }
    }
    let b = tensor_mut(ck, &format!("h.{layer}.mlp.c_fc.bias"))?;
    for &j in neurons {
        if let Some(v) = b.values.get_mut(j) {
            *v = 0.0;
        }
    }
    Ok(())
}

/// Zero entries `idx` (row-major) of the tensor `name` in `ck`.
pub fn zero_entries(ck: &mut Checkpoint, name: &str, idx: &[usize]) -> Result<(), UnlearnError> {
    let t = tensor_mut(ck, name)?;
    for &i in idx {
        let n = t.values.len();
        *t.values
            .get_mut(i)
            .ok_or_else(|| UnlearnError::Checkpoint(format!("entry {i} of {name} ({n})")))? = 0.0;
    }
    Ok(())
}

/// Names of the MLP weight matrices, layer by layer: `c_fc` then `c_proj`.
pub fn mlp_matrices(layers: usize) -> Vec<String> {
    (0..layers)
        .flat_map(|l| {
            [
                format!("h.{l}.mlp.c_fc.weight"),
                format!("h.{l}.mlp.c_proj.weight"),
            ]
        })
        .collect()
}

/// Mean token cross-entropy of `rows` under `model` with its MLPs computed by `mlp`
/// (see [`Gpt::forward_with_mlp`]), padding excluded: a scalar tensor that keeps the
/// graph when the model is on an autodiff device.
pub fn mean_nll(
    model: &Gpt,
    rows: &[Vec<u32>],
    pad: u32,
    mlp: &mut dyn FnMut(usize, &Mlp, Tensor<3>) -> Tensor<3>,
) -> Tensor<1> {
    let device = model.wte.val().device();
    let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    let (inputs, targets, mask, n) = token_batch(&refs, pad, &device);
    let logp = log_softmax(model.forward_with_mlp(inputs, mlp), 2);
    let lp: Tensor<2> = logp.gather(2, targets.unsqueeze_dim(2)).squeeze_dim(2);
    -(lp * mask).sum() / (n.max(1) as f64)
}

/// Read a tensor to the host.
pub(crate) async fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, UnlearnError> {
    t.into_data_async()
        .await
        .map_err(dev)?
        .try_into_vec::<f32>()
        .map_err(dev)
}

/// Settings of a mitigation run that are not per method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MitigationOptions {
    /// Clean training examples in the retain set.
    pub retain: usize,
}

impl Default for MitigationOptions {
    fn default() -> Self {
        MitigationOptions { retain: 64 }
    }
}

/// The untouched model measured once, with the forget and retain sets.
#[derive(Debug, Clone)]
pub struct MitigationContext {
    /// The untouched model.
    pub model: Checkpoint,
    /// Its corpus.
    pub corpus: Corpus,
    /// Memorisation before.
    pub before: Memorisation,
    /// Accuracy and perplexity before.
    pub quality_before: Quality,
    /// Forget and retain sets.
    pub data: UnlearnData,
    /// The forget set's instance ids.
    pub forget_ids: Vec<u32>,
}

/// Measure the untouched model and pick the forget and retain sets (see the module's
/// documentation). The checkpoint must fit the corpus (`Checkpoint::fits`).
pub async fn prepare(
    model: Checkpoint,
    corpus: Corpus,
    options: MitigationOptions,
    seed: u64,
    device: &Device,
) -> Result<MitigationContext, UnlearnError> {
    if model.vocab != corpus.tokenizer.vocab_size() {
        return Err(UnlearnError::Checkpoint(format!(
            "its vocabulary has {} tokens, the corpus {}",
            model.vocab,
            corpus.tokenizer.vocab_size()
        )));
    }
    let layout = tinymem::layout(&corpus)?.clone();
    let gpt = Gpt::from_checkpoint(&model, device)?;
    let before = tinymem::memorisation(&gpt, &corpus).await?;
    let quality_before = tinymem::quality(&gpt, &corpus, &layout).await?;
    let forget_ids: Vec<u32> = match &before {
        Memorisation::Noise(n) => {
            let mem: Vec<u32> = n
                .rows
                .iter()
                .filter(|r| r.memorised)
                .map(|r| r.instance)
                .collect();
            if mem.is_empty() {
                n.rows
                    .iter()
                    .filter(|r| r.counted)
                    .map(|r| r.instance)
                    .collect()
            } else {
                mem
            }
        }
        Memorisation::Backdoor(_) => {
            let train =
                tinymem::backdoor_success(&gpt, &corpus, &layout, &layout.backdoor_train).await?;
            let fired: Vec<u32> = train
                .rows
                .iter()
                .filter(|r| r.fired)
                .map(|r| r.instance)
                .collect();
            if fired.is_empty() {
                layout.backdoor_train.clone()
            } else {
                fired
            }
        }
    };
    let mut clean: Vec<u32> = corpus
        .train
        .iter()
        .copied()
        .filter(|&i| corpus.get(i).is_some_and(|x| x.kind == InstanceKind::Plain))
        .collect();
    let mut r = rng::stream(seed, Stream::Unlearn);
    rng::shuffle(&mut clean, &mut r);
    clean.truncate(options.retain);
    let rows = |ids: &[u32]| -> Vec<Vec<u32>> {
        ids.iter()
            .filter_map(|&i| corpus.get(i).map(|x| x.tokens.clone()))
            .collect()
    };
    let data = UnlearnData {
        forget: rows(&forget_ids),
        retain: rows(&clean),
        pad: corpus.tokenizer.pad(),
        suffix_start: tinymem::PREFIX,
    };
    Ok(MitigationContext {
        model,
        corpus,
        before,
        quality_before,
        data,
        forget_ids,
    })
}

/// One method's outcome: a row of `mitigation.csv` and its per-sequence outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// The method.
    pub method: Method,
    /// Its settings.
    pub settings: MethodSettings,
    /// Memorised share before (noise: of the counted noised examples; backdoor: backdoor
    /// success on its test set).
    pub memorised_before: f64,
    /// Memorised share after.
    pub memorised_after: f64,
    /// Share reproducing the clean window after (noise data only).
    pub clean_after: Option<f64>,
    /// Test accuracy before.
    pub accuracy_before: f64,
    /// Test accuracy after.
    pub accuracy_after: f64,
    /// Test perplexity after.
    pub perplexity_after: f64,
    /// Seconds the method took (by the shell's clock), measuring excluded.
    pub seconds: f64,
    /// `(instance, memorised before, memorised after)` per measured example.
    pub sequences: Vec<(u32, bool, bool)>,
}

/// Run one method on a copy of the context's model and measure the result. `clock`
/// gives seconds (the shell's: `Instant` natively, `performance.now()` in a page).
pub async fn run_method(
    ctx: &MitigationContext,
    settings: &MethodSettings,
    seed: u64,
    device: &Device,
    clock: &dyn Fn() -> f64,
    progress: OnProgress<'_>,
) -> Result<(MethodResult, Checkpoint), UnlearnError> {
    let start = clock();
    let edited = unlearn(&ctx.model, &ctx.data, settings, seed, device, progress).await?;
    let seconds = clock() - start;
    let gpt = Gpt::from_checkpoint(&edited, device)?;
    let after = tinymem::memorisation(&gpt, &ctx.corpus).await?;
    let layout = tinymem::layout(&ctx.corpus)?;
    let q = tinymem::quality(&gpt, &ctx.corpus, layout).await?;
    let before_rows = ctx.before.per_sequence();
    let after_rows = after.per_sequence();
    let sequences = before_rows
        .iter()
        .zip(&after_rows)
        .map(|(&(id, b), &(_, a))| (id, b, a))
        .collect();
    Ok((
        MethodResult {
            method: settings.method,
            settings: settings.clone(),
            memorised_before: ctx.before.fraction(),
            memorised_after: after.fraction(),
            clean_after: after.clean_fraction(),
            accuracy_before: ctx.quality_before.accuracy,
            accuracy_after: q.accuracy,
            perplexity_after: q.perplexity,
            seconds,
            sequences,
        },
        edited,
    ))
}
