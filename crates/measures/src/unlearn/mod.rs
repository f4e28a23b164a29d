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

pub mod finetune;
pub mod neuron;
pub mod report;
pub mod weight;

pub use report::{MitigationSummary, ReferenceResult, reference_result};

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;

use mnemo_core::burn::tensor::activation::log_softmax;
use mnemo_core::burn::tensor::{Device, Tensor};
use mnemo_core::checkpoint::NamedTensor;
use mnemo_core::corpus::InstanceKind;
use mnemo_core::model::Mlp;
use mnemo_core::rng::{self, Stream};
use mnemo_core::train::token_batch;
use mnemo_core::{Checkpoint, CheckpointError, Corpus, ExperimentSpec, Gpt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use mnemo_core::spec::mitigation::{Kind, Method, MethodError, MethodSettings};

use crate::tinymem::{self, Memorisation, Quality, TinyMemError};

/// Why a method could not run.
#[derive(Debug, Error)]
pub enum UnlearnError {
    /// An unknown method or an impossible setting.
    #[error(transparent)]
    Settings(#[from] MethodError),
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
    /// A method that trains (a regulariser, a fine-tune) asked of [`unlearn`], which only
    /// edits weights:
    /// it runs through [`run_method`].
    #[error("{0} trains the model: run it with run_method")]
    Trains(&'static str),
}

impl From<CheckpointError> for UnlearnError {
    fn from(e: CheckpointError) -> Self {
        UnlearnError::Checkpoint(e.to_string())
    }
}

pub(crate) fn dev<E: std::fmt::Debug>(e: E) -> UnlearnError {
    UnlearnError::Device(format!("{e:?}"))
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

/// Where a method reports between its steps. A shell may yield to its event loop in
/// [`ProgressSink::step`] (the browser's worker does, so that a Cancel message is seen
/// while a method runs) and cancels by returning `ControlFlow::Break(())`. Any
/// `FnMut(StepProgress) -> ControlFlow<()>` is one (the CLI's and the tests').
pub trait ProgressSink {
    /// Steps done so far; `Break` cancels the method.
    fn step(&mut self, p: StepProgress) -> Pin<Box<dyn Future<Output = ControlFlow<()>> + '_>>;
}

impl<F: FnMut(StepProgress) -> ControlFlow<()>> ProgressSink for F {
    fn step(&mut self, p: StepProgress) -> Pin<Box<dyn Future<Output = ControlFlow<()>> + '_>> {
        Box::pin(std::future::ready(self(p)))
    }
}

/// The progress sink a method reports to.
pub type OnProgress<'a> = &'a mut dyn ProgressSink;

pub(crate) async fn report(
    p: OnProgress<'_>,
    done: usize,
    total: usize,
) -> Result<(), UnlearnError> {
    match p.step(StepProgress { done, total }).await {
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
        Method::LossTruncation
        | Method::SpectralNorm
        | Method::ExampleTiedDropout
        | Method::FinetuneClean
        | Method::FinetuneExtra
        | Method::FinetuneBoth => {
            return Err(UnlearnError::Trains(settings.method.name()));
        }
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

/// The untouched model measured once, with the forget and retain sets. It serialises
/// (without the optimiser state), so a shell can hand it to a helper worker instead of
/// having each helper measure the model again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MitigationContext {
    /// The untouched model.
    pub model: Checkpoint,
    /// The experiment it was trained from (fine-tunes train with its optimiser).
    pub spec: ExperimentSpec,
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
    /// The training run's resume point for the model (its optimiser state), when the
    /// shell has one: fine-tunes continue from it. [`prepare`] leaves it `None`; it is
    /// not serialised (the browser, which serialises contexts, never sets it).
    #[serde(skip)]
    pub optimiser: Option<mnemo_core::ResumePoint>,
}

/// Measure the untouched model and pick the forget and retain sets (see the module's
/// documentation). The checkpoint must fit the corpus (`Checkpoint::fits`).
pub async fn prepare(
    model: Checkpoint,
    corpus: Corpus,
    options: MitigationOptions,
    spec: &ExperimentSpec,
    device: &Device,
) -> Result<MitigationContext, UnlearnError> {
    let seed = spec.seed;
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
        spec: spec.clone(),
        corpus,
        before,
        quality_before,
        data,
        forget_ids,
        optimiser: None,
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

/// One method's result with the edited model and what it generated.
#[derive(Debug, Clone)]
pub struct MethodOutcome {
    /// The row of the table.
    pub result: MethodResult,
    /// The edited copy of the model.
    pub model: Checkpoint,
    /// The memorisation measure on the edited model (its generated tokens included).
    pub after: Memorisation,
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
) -> Result<MethodOutcome, UnlearnError> {
    let start = clock();
    let edited = match settings.method.kind() {
        Kind::Regulariser => finetune::train_regularised(ctx, settings, device, progress).await?,
        Kind::FineTune => finetune::fine_tune(ctx, settings, device, progress).await?,
        _ => unlearn(&ctx.model, &ctx.data, settings, seed, device, progress).await?,
    };
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
    Ok(MethodOutcome {
        result: MethodResult {
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
        model: edited,
        after,
    })
}
