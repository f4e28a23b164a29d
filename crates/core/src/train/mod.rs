//! The deterministic trainer: a hand-written loop (burn's training crate does not run in
//! wasm) with AdamW, warm-up then cosine or linear decay, a recorded data order and
//! checkpoints at chosen steps.
//!
//! The trainer is a step machine: a shell calls [`Trainer::step`] until
//! [`Trainer::is_done`], saving [`Trainer::checkpoint`] when [`Trainer::checkpoint_due`].
//! The browser's worker drives it with asynchronous reads and yields between steps (so a
//! Cancel message is seen); natively, [`run_blocking`] does the same on one thread.
//!
//! A run may train with one of the memorisation-mitigating regularisers of
//! `training.regulariser` (see [`crate::regularise`]): loss truncation, the spectral-norm
//! penalty or example-tied dropout.

use std::collections::BTreeSet;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::corpus::{Corpus, CorpusError};
use crate::model::{Gpt, ids_tensor};
use crate::optim::adamw;
use crate::regularise::{Active, LossWindow, TiedUnits};
use crate::resume::{ResumeError, ResumePoint, param_ids, set_param_ids, spec_digest};
use crate::rng::{self, Stream};
use crate::spec::{Decay, Duration, ExperimentSpec, SpecError};

mod batch;
mod pack;
mod schedule;

pub use batch::{Batch, batch_tensors, token_batch};
pub use pack::Packing;
pub use schedule::{checkpoint_lr, lr_at, plan, plan_excluding};

/// The epsilon of every run's AdamW (added to the square root of the second moment).
pub const ADAMW_EPSILON: f32 = 1e-8;

/// Why training could not start or go on.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The spec is invalid.
    #[error("invalid spec: {0}")]
    Spec(#[from] SpecError),
    /// The data could not be turned into a corpus.
    #[error("data: {0}")]
    Corpus(#[from] CorpusError),
    /// The loss became NaN or infinite.
    #[error("the loss became {loss} at step {step}; lower the learning rate")]
    Diverged {
        /// Step.
        step: usize,
        /// The value.
        loss: f32,
    },
    /// A device operation failed (for example a lost WebGPU device).
    #[error("device error: {0}")]
    Device(String),
    /// Reading a checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A resume point could not be taken or used.
    #[error("resume: {0}")]
    Resume(#[from] ResumeError),
}

/// What one optimiser step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step number (1-based).
    pub step: usize,
    /// Mean token cross-entropy of the batch (nats), before the update.
    pub loss: f32,
    /// Learning rate used.
    pub lr: f64,
    /// Target tokens in the batch.
    pub tokens: usize,
}

/// Progress of a run, as the interfaces show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Steps done.
    pub step: usize,
    /// Steps in the run.
    pub total_steps: usize,
    /// Loss of the last step.
    pub loss: f32,
    /// Training tokens per second so far.
    pub tokens_per_s: f64,
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Estimated seconds left.
    pub eta_s: f64,
}

impl Progress {
    /// Progress after `step` of `total_steps`, with `tokens` trained in `elapsed_s`.
    pub fn new(step: usize, total_steps: usize, loss: f32, tokens: usize, elapsed_s: f64) -> Self {
        Self::resumed(0, step, total_steps, loss, tokens, elapsed_s)
    }

    /// [`Progress::new`] for a run resumed after `from` steps: `tokens` and `elapsed_s`
    /// count from the resumption, and so do the rate and the estimate of time left.
    pub fn resumed(
        from: usize,
        step: usize,
        total_steps: usize,
        loss: f32,
        tokens: usize,
        elapsed_s: f64,
    ) -> Self {
        let done = step.saturating_sub(from);
        let per_step = if done > 0 {
            elapsed_s / done as f64
        } else {
            0.0
        };
        Progress {
            step,
            total_steps,
            loss,
            tokens_per_s: if elapsed_s > 0.0 {
                tokens as f64 / elapsed_s
            } else {
                0.0
            },
            elapsed_s,
            eta_s: per_step * (total_steps.saturating_sub(step)) as f64,
        }
    }
}

/// A run in progress.
pub struct Trainer {
    spec: ExperimentSpec,
    corpus: Corpus,
    model: Option<Gpt>,
    optim: ModuleOptimizer,
    device: Device,
    plan: Plan,
    total_steps: usize,
    step: usize,
    checkpoints: BTreeSet<usize>,
    tokens_seen: usize,
    losses: Vec<(usize, f32)>,
    excluded: BTreeSet<u32>,
    reg: Active,
}

/// What each step trains: consecutive batches of the data order, or packed windows.
enum Plan {
    /// The data order; step `s` trains its `s`-th batch of `batch_size` instances.
    Rows(Vec<u32>),
    /// Packed windows ([`Packing`]).
    Packed(Packing),
}

impl Trainer {
    /// Validate the spec, build its corpus and a fresh model on `device` (autodiff is
    /// switched on here).
    pub fn new(spec: ExperimentSpec, device: Device) -> Result<Self, TrainError> {
        spec.validate()?;
        let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)?;
        Self::with_corpus(spec, corpus, device)
    }

    /// Like [`Trainer::new`] with a corpus built elsewhere.
    pub fn with_corpus(
        spec: ExperimentSpec,
        corpus: Corpus,
        device: Device,
    ) -> Result<Self, TrainError> {
        Self::with_corpus_excluding(spec, corpus, device, BTreeSet::new())
    }

    /// Like [`Trainer::with_corpus`], but the training instances `exclude` are never
    /// visited: the same initial weights (the spec's seed) and the same data order with
    /// those ids dropped, batches re-formed as [`plan_excluding`] describes. Checkpoint
    /// steps past the shortened run's end are dropped.
    pub fn with_corpus_excluding(
        spec: ExperimentSpec,
        corpus: Corpus,
        device: Device,
        exclude: BTreeSet<u32>,
    ) -> Result<Self, TrainError> {
        spec.validate()?;
        let device = device.autodiff();
        let model = Gpt::new(
            &spec.model,
            corpus.tokenizer.vocab_size(),
            spec.seed,
            &device,
        );
        let t = &spec.training;
        let optim = adamw(t);
        let reg = Active::new(&spec, &model);
        let (total_steps, plan) = if spec.training.packed {
            let p = Packing::plan(&spec, &corpus, &exclude)?;
            (p.total_steps(), Plan::Packed(p))
        } else {
            let (steps, stream) = plan_excluding(&spec, &corpus, &exclude)?;
            (steps, Plan::Rows(stream))
        };
        let mut checkpoints: BTreeSet<usize> = [0, total_steps].into();
        if t.checkpoint_every > 0 {
            checkpoints.extend((0..=total_steps).step_by(t.checkpoint_every));
        }
        checkpoints.extend(
            t.checkpoint_steps
                .iter()
                .copied()
                .filter(|&s| s <= total_steps),
        );
        if let Some(inf) = &spec.influence {
            checkpoints.extend(
                inf.checkpoints
                    .iter()
                    .copied()
                    .filter(|&s| s <= total_steps),
            );
        }
        Ok(Trainer {
            spec,
            corpus,
            model: Some(model),
            optim,
            device,
            plan,
            total_steps,
            step: 0,
            checkpoints,
            tokens_seen: 0,
            losses: Vec::new(),
            excluded: exclude,
            reg,
        })
    }

    /// The spec being run.
    pub fn spec(&self) -> &ExperimentSpec {
        &self.spec
    }

    /// The corpus.
    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    /// The model in its current state.
    pub fn model(&self) -> &Gpt {
        self.model
            .as_ref()
            .unwrap_or_else(|| unreachable!("model is only taken inside step"))
    }

    /// Steps in the run.
    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// Steps done.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Target tokens trained on so far.
    pub fn tokens_seen(&self) -> usize {
        self.tokens_seen
    }

    /// `(step, loss)` of every step done.
    pub fn losses(&self) -> &[(usize, f32)] {
        &self.losses
    }

    /// Steps at which checkpoints are saved (0 and the last always).
    pub fn checkpoint_steps(&self) -> &BTreeSet<usize> {
        &self.checkpoints
    }

    /// Instances trained at step `step` (1-based); in a packed run, the texts whose first
    /// trained token is in the step's windows (see [`Packing`]).
    pub fn batch_ids(&self, step: usize) -> &[u32] {
        let stream = match &self.plan {
            Plan::Packed(p) => return p.texts(step),
            Plan::Rows(stream) => stream,
        };
        let b = self.spec.training.batch_size;
        let start = ((step.max(1) - 1) * b).min(stream.len());
        let end = (step * b).min(stream.len());
        &stream[start..end]
    }

    /// The recorded data order of the steps done: `(step, instance id)`.
    pub fn order(&self) -> Vec<(usize, u32)> {
        (1..=self.step)
            .flat_map(|s| self.batch_ids(s).iter().map(move |&i| (s, i)))
            .collect()
    }

    /// Learning rate at step `step` (1-based): linear warm-up, then the decay.
    pub fn lr_at(&self, step: usize) -> f64 {
        lr_at(&self.spec.training, self.total_steps, step)
    }

    /// Every checkpoint step with the learning rate in effect there
    /// ([`checkpoint_lr`]), ascending: the `(step, eta_t)` list TracIn weights by.
    pub fn checkpoint_lrs(&self) -> Vec<(usize, f64)> {
        self.checkpoints
            .iter()
            .map(|&s| (s, checkpoint_lr(&self.spec.training, self.total_steps, s)))
            .collect()
    }

    /// Training ids this run leaves out (see [`Trainer::with_corpus_excluding`]).
    pub fn excluded(&self) -> &BTreeSet<u32> {
        &self.excluded
    }

    /// Whether every step is done.
    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps
    }

    /// Whether the current state should be saved as a checkpoint (true before the first
    /// step, for step 0).
    pub fn checkpoint_due(&self) -> bool {
        self.checkpoints.contains(&self.step)
    }

    /// The current weights.
    pub async fn checkpoint(&self) -> Result<Checkpoint, TrainError> {
        Ok(self.model().snapshot(self.step, self.spec.model).await?)
    }

    /// The model as used at test time: with example-tied dropout, the trained weights
    /// with every non-shared MLP unit's input weights and bias zeroed (its tied units
    /// dropped, [`TiedUnits::test_model`]); otherwise the model itself.
    /// [`Trainer::train_heldout_loss`] evaluates this model.
    pub fn test_model(&self) -> Gpt {
        match &self.reg {
            Active::Dropout(units) => units.test_model(self.model()),
            _ => self.model().clone(),
        }
    }

    /// The weights as used at test time ([`Trainer::test_model`]): equal to
    /// [`Trainer::checkpoint`] except with example-tied dropout.
    pub async fn test_checkpoint(&self) -> Result<Checkpoint, TrainError> {
        match &self.reg {
            Active::Dropout(_) => Ok(self
                .test_model()
                .snapshot(self.step, self.spec.model)
                .await?),
            _ => self.checkpoint().await,
        }
    }

    /// Loss truncation's window of recent per-sequence losses (`None` for other runs).
    pub fn loss_window(&self) -> Option<&LossWindow> {
        match &self.reg {
            Active::Truncation { window, .. } => Some(window),
            _ => None,
        }
    }

    /// Example-tied dropout's unit assignment (`None` for other runs).
    pub fn tied_units(&self) -> Option<&TiedUnits> {
        match &self.reg {
            Active::Dropout(units) => Some(units),
            _ => None,
        }
    }

    /// Inputs, targets and the mask of scored positions for a batch of instances.
    pub fn batch_tensors(&self, ids: &[u32], device: &Device) -> Batch {
        batch_tensors(&self.corpus, ids, device)
    }

    /// Run one optimiser step and return its loss tensor (not yet read back) and the
    /// number of target tokens; `None` when the run is done.
    ///
    /// The loss is the batch's mean token cross-entropy; the step differentiates the
    /// regularised objective (see [`crate::regularise`]). Nothing is read back here.
    /// With loss truncation, the batch's per-sequence losses wait in the trainer until
    /// the next [`Trainer::step`] reads them into the window; a caller that only calls
    /// `step_lazy` leaves the window as it was (every later batch is then cut at the same
    /// threshold).
    pub fn step_lazy(&mut self) -> Option<(Tensor<1>, f64, usize)> {
        if self.is_done() {
            return None;
        }
        let step = self.step + 1;
        // The ids of the rows batch_tensors builds (it skips ids the corpus lacks).
        let ids: Vec<u32> = self
            .batch_ids(step)
            .iter()
            .copied()
            .filter(|&i| self.corpus.get(i).is_some())
            .collect();
        let (inputs, targets, mask, n_tokens) = match &self.plan {
            // Packed runs have no regulariser (the spec refuses one), so `ids` only
            // records the data order there.
            Plan::Packed(p) => {
                token_batch(&p.rows(step), self.corpus.tokenizer.pad(), &self.device)
            }
            Plan::Rows(_) => batch_tensors(&self.corpus, &ids, &self.device),
        };
        let model = self.model.take()?;
        let logp = self.reg.token_log_probs(&model, &ids, inputs, targets);
        let nll = -(logp * mask.clone());
        let loss = nll.clone().sum() / (n_tokens.max(1) as f64);
        let objective = self.reg.objective(&model, loss.clone(), nll, mask);
        let grads = GradientsParams::from_grads(objective.backward(), &model);
        let lr = self.lr_at(step);
        self.model = Some(self.optim.step(lr, model, grads));
        self.step = step;
        self.tokens_seen += n_tokens;
        Some((loss.detach(), lr, n_tokens))
    }

    /// The run as it stands, to go on later with [`Trainer::resume`]. Only on backends
    /// that are [`crate::BackendKind::resumable`] (the optimiser state is read back
    /// synchronously).
    pub async fn resume_point(&self) -> Result<ResumePoint, ResumeError> {
        let weights = self.checkpoint().await.map_err(|e| match e {
            TrainError::Checkpoint(c) => ResumeError::Weights(c),
            other => ResumeError::Optimiser(other.to_string()),
        })?;
        let optimiser = self
            .optim
            .into_bytes()
            .map_err(|e| ResumeError::Optimiser(format!("{e:?}")))?;
        let regulariser = self.reg.state().await?;
        Ok(ResumePoint {
            step: self.step,
            tokens_seen: self.tokens_seen,
            losses: self.losses.clone(),
            spec_digest: spec_digest(&self.spec),
            weights,
            param_ids: param_ids(self.model()),
            optimiser: optimiser.to_vec(),
            regulariser,
        })
    }

    /// Go on with a run of `spec` from `point` (taken from a run of the same spec): the
    /// weights, AdamW's moments, the step, the tokens seen and the losses are restored,
    /// so the next steps are the ones the run would have taken.
    pub fn resume(
        spec: ExperimentSpec,
        device: Device,
        point: &ResumePoint,
    ) -> Result<Self, TrainError> {
        if spec_digest(&spec) != point.spec_digest {
            return Err(ResumeError::OtherSpec.into());
        }
        let mut trainer = Self::new(spec, device)?;
        if point.step > trainer.total_steps {
            return Err(ResumeError::PastEnd {
                step: point.step,
                total: trainer.total_steps,
            }
            .into());
        }
        point
            .weights
            .fits(&trainer.spec.model, trainer.corpus.tokenizer.vocab_size())
            .map_err(ResumeError::Format)?;
        let mut model = Gpt::from_checkpoint(&point.weights, &trainer.device)?;
        set_param_ids(&mut model, &point.param_ids)?;
        let optim = adamw(&trainer.spec.training)
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(point.optimiser.clone()))
            .map_err(|e| ResumeError::Optimiser(format!("{e:?}")))?;
        trainer.reg = trainer.reg.restore(&trainer.spec, &model, point)?;
        trainer.model = Some(model);
        trainer.optim = optim;
        trainer.step = point.step;
        trainer.tokens_seen = point.tokens_seen;
        trainer.losses = point.losses.clone();
        Ok(trainer)
    }

    /// Mean loss on the training and the held-out instances (see [`mean_loss`]).
    /// The model evaluated is the test-time one ([`Trainer::test_model`]).
    pub async fn train_heldout_loss(&self) -> Result<(Option<f32>, Option<f32>), TrainError> {
        let b = self.spec.training.batch_size;
        let model = self.test_model();
        let train = mean_loss(&model, &self.corpus, &self.corpus.train, b).await?;
        let held = mean_loss(&model, &self.corpus, &self.corpus.heldout, b).await?;
        Ok((train, held))
    }

    /// Start from `weights` (a trained model that fits the spec's model and corpus)
    /// instead of the spec's initial weights: a fine-tune. With `optimiser` (a resume
    /// point of the run that trained `weights`, e.g. its last) AdamW's moments continue
    /// from it; otherwise the optimiser starts fresh. The data order and everything else
    /// stay the spec's.
    pub fn start_from(
        &mut self,
        weights: &Checkpoint,
        optimiser: Option<&ResumePoint>,
    ) -> Result<(), TrainError> {
        weights
            .fits(&self.spec.model, self.corpus.tokenizer.vocab_size())
            .map_err(ResumeError::Format)?;
        let mut model = Gpt::from_checkpoint(weights, &self.device)?;
        self.optim = adamw(&self.spec.training);
        if let Some(point) = optimiser {
            if point.weights.tensors != weights.tensors {
                return Err(ResumeError::Format(
                    "the resume point holds other weights than the model".into(),
                )
                .into());
            }
            set_param_ids(&mut model, &point.param_ids)?;
            self.optim = adamw(&self.spec.training)
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(point.optimiser.clone()))
                .map_err(|e| ResumeError::Optimiser(format!("{e:?}")))?;
        }
        self.model = Some(model);
        Ok(())
    }

    /// Run one step and read its loss back.
    pub async fn step(&mut self) -> Result<Option<StepReport>, TrainError> {
        let Some((loss, lr, tokens)) = self.step_lazy() else {
            return Ok(None);
        };
        let pending = self.reg.take_pending();
        // One read: the loss, then any per-sequence losses waiting for the window.
        let read = if pending.is_empty() {
            loss
        } else {
            let mut parts = vec![loss.reshape([1])];
            parts.extend(pending);
            Tensor::cat(parts, 0)
        };
        let values = read
            .into_data_async()
            .await
            .map_err(|e| TrainError::Device(format!("{e:?}")))?
            .try_into_vec::<f32>()
            .map_err(|e| TrainError::Device(format!("{e:?}")))?;
        let loss = values.first().copied().unwrap_or(f32::NAN);
        self.reg.read_back(values.get(1..).unwrap_or(&[]));
        if !loss.is_finite() {
            return Err(TrainError::Diverged {
                step: self.step,
                loss,
            });
        }
        self.losses.push((self.step, loss));
        Ok(Some(StepReport {
            step: self.step,
            loss,
            lr,
            tokens,
        }))
    }
}

/// Mean token cross-entropy (nats) of `model` on the instances `ids`, weighted by their
/// scored tokens, evaluated in batches of `batch`. `None` when `ids` is empty.
pub async fn mean_loss(
    model: &Gpt,
    corpus: &Corpus,
    ids: &[u32],
    batch: usize,
) -> Result<Option<f32>, TrainError> {
    let device = model.wte.val().device();
    let (mut total, mut count) = (0.0f64, 0usize);
    for chunk in ids.chunks(batch.max(1)) {
        let (inputs, targets, mask, n) = batch_tensors(corpus, chunk, &device);
        let nll = -(model.token_log_probs(inputs, targets) * mask).sum();
        let v: f32 = nll
            .into_scalar_async()
            .await
            .map_err(|e| TrainError::Device(format!("{e:?}")))?;
        total += v as f64;
        count += n;
    }
    Ok((count > 0).then(|| (total / count as f64) as f32))
}

/// The result of a native run.
pub struct RunOutcome {
    /// Whether the run was cancelled before its last step.
    pub cancelled: bool,
    /// Seconds spent.
    pub elapsed_s: f64,
}

/// Drive a trainer to the end on this thread, reporting progress after every step and
/// handing over each checkpoint. `on_progress` returning `Break` cancels the run
/// between steps.
#[cfg(not(target_family = "wasm"))]
pub fn run_blocking(
    trainer: &mut Trainer,
    mut on_progress: impl FnMut(&Progress) -> std::ops::ControlFlow<()>,
    mut on_checkpoint: impl FnMut(Checkpoint) -> Result<(), TrainError>,
) -> Result<RunOutcome, TrainError> {
    let start = std::time::Instant::now();
    loop {
        if trainer.checkpoint_due() {
            on_checkpoint(pollster::block_on(trainer.checkpoint())?)?;
        }
        let Some(report) = pollster::block_on(trainer.step())? else {
            break;
        };
        let p = Progress::new(
            report.step,
            trainer.total_steps(),
            report.loss,
            trainer.tokens_seen(),
            start.elapsed().as_secs_f64(),
        );
        if on_progress(&p).is_break() {
            return Ok(RunOutcome {
                cancelled: true,
                elapsed_s: start.elapsed().as_secs_f64(),
            });
        }
    }
    Ok(RunOutcome {
        cancelled: false,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}

/// Block on a future (native only): the engine's reads are asynchronous so that the
/// same code runs on WebGPU in the browser.
#[cfg(not(target_family = "wasm"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}
