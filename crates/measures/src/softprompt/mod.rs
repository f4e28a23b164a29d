//! Extraction with soft prompts (METHODS.md section 3): a *constant* soft prompt (Ozdayi
//! et al., ACL 2023) and a *dynamic* one made for each prefix by a generator (Wang et al.,
//! EMNLP 2024) are trained on (prefix, suffix) pairs cut from the training instances, with
//! the target model frozen; then greedy extraction without a prompt, with the constant
//! prompt and with the dynamic one is measured side by side on held-out test pairs.
//!
//! Choices written down here:
//! - **Pairs.** One pair per distinct training text (copies of a text, such as a repeated
//!   canary, would otherwise sit on both sides of the train/test split), cut as
//!   [`crate::extraction`] cuts them: the instance's tokens (BOS first) split by
//!   [`split_lengths`] into a prefix of `k` and a suffix of `s` tokens, scaled down in
//!   proportion for shorter instances (counted in [`PairSet::scaled`]). The pairs are
//!   shuffled with the experiment seed's [`Stream::Pairs`] and `round(test_fraction * n)`
//!   of them (at least one, at most all but one) are the test pairs.
//! - **Window.** The target reads `[soft prompt ; prefix ; suffix]` and predicts the
//!   suffix, so `prompt + k + s - 1` inputs must fit its context; the dynamic prompt is as
//!   long as the prefix. [`fit_lengths`] clamps the constant prompt to `context - 1` and
//!   then scales the requested `k` and `s` down (as [`split_lengths`] does) until
//!   `max(L, k) + k + s <= context + 1`; the values used are reported in
//!   [`FittedLengths`]. All three methods use the same pairs.
//! - **Positions.** How the target reads `[prompt ; prefix ; suffix]` follows how it
//!   was trained ([`PromptPositions::for_training`]). A model trained unpacked only ever
//!   saw a text from position 0: the prompt is a sequence of residual-stream vectors
//!   without position embeddings and the text behind it keeps positions 0, 1, ...
//!   ([`PromptPositions::Kept`]); shifting the prefix behind an `L`-vector prompt would
//!   wreck what such a model memorised (the prompt would measure the shift, not the
//!   prompt). A model trained packed (`training.packed`) saw texts at every offset, so
//!   the prompt takes positions 0..L and the text follows, as in the papers
//!   ([`PromptPositions::Shifted`]).
//! - **Hidden context.** Pairs are cut from [`mnemo_core::corpus::Instance::visible_tokens`]:
//!   an instance trained behind a hidden context (the records corpus's source line) is
//!   split as BOS then its own text; the context's tokens are never in a pair.
//! - **Loss.** Mean cross-entropy of the suffix tokens only ([`prompt_loss`]): positions
//!   of the prompt and the prefix are never scored.
//! - **Frozen target.** The target is held without autodiff (on the plain device, after
//!   [`Module::valid`]); its tensors only enter the graph as constants and no optimiser
//!   ever sees them, so its weights stay bit-identical.
//! - **Constant prompt.** `L` vectors initialised with the target's embeddings of `L`
//!   tokens drawn (seeded) from the training prefixes; AdamW (no weight decay) with
//!   `prompt_lr`.
//! - **Dynamic prompt.** A [`PromptGenerator`] of [`GENERATOR_BLOCKS`] blocks with the
//!   target's shape, as in Wang et al.'s code (`build_generator` with
//!   `is_init_from_pretrain` and `is_zero_init`): token embeddings copied from the target,
//!   position embeddings zeroed, blocks copied from the target's first blocks (fresh,
//!   seeded ones when the target has fewer) with the attention and MLP output projections
//!   (weights and biases) zeroed, so every block starts as the identity. The prompt is
//!   the generator's *second-to-last hidden states* in the sense of Hugging Face's
//!   `hidden_states[-2]` (the reference code's `embed_idx = -2`): with 2 blocks that is
//!   the residual stream after block 1, before block 2 and without a final LayerNorm. At
//!   initialisation it equals the prefix's token embeddings. Block 2 therefore receives no
//!   gradient and stays the identity, as in the reference. AdamW (no weight decay) with
//!   `embed_lr` on the token and position embeddings and `block_lr` on the blocks, as
//!   two optimisers.
//! - **Evaluation.** Greedy decoding of `s` tokens per test pair: from the prefix alone
//!   ([`Gpt::greedy_batch`]), or from `[prompt ; prefix]` ([`Gpt::greedy_embeddings`]),
//!   scored with [`ExtractionRow::score`] and [`ExtractionRates::of`]. The relative gain
//!   of a prompt is `(rate - base) / base` against no prompt, undefined (`None`) when the
//!   base rate is 0.
//!
//! [`SoftPromptRun`] is a step machine over both prompts, as [`mnemo_core::Trainer`] is:
//! a shell calls [`SoftPromptRun::step`] until it returns `None` (the constant prompt
//! trains first, then the generator), then [`SoftPromptRun::result`]. Natively,
//! [`run_blocking`] does that on one thread.

use std::collections::{BTreeMap, HashSet};

use mnemo_core::burn;
use mnemo_core::burn::module::{Module, Param};
use mnemo_core::burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use mnemo_core::burn::tensor::activation::log_softmax;
use mnemo_core::burn::tensor::{Device, Int, Tensor, TensorData};
use mnemo_core::model::{Block, ModelConfig, ids_tensor};
use mnemo_core::rng::{self, Stream};
use mnemo_core::spec::SpecError;
use mnemo_core::{Checkpoint, CheckpointError, Corpus, Gpt, PromptPositions};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::extraction::{ExtractionRates, ExtractionRow, MAX_BATCH, split_lengths};

mod export;
mod pairs;
mod prompts;

pub use export::*;
pub use pairs::*;
pub use prompts::*;

pub use mnemo_core::spec::SoftPromptSpec;

/// Blocks of the dynamic prompt's generator (Wang et al.: 2).
pub const GENERATOR_BLOCKS: usize = 2;

/// The prompt is the generator's residual stream after this many blocks (Hugging Face's
/// `hidden_states[-2]` of a 2-block generator: the output of block 1).
pub const PROMPT_BLOCK: usize = GENERATOR_BLOCKS - 1;

/// Why extraction with soft prompts could not be measured.
#[derive(Debug, Error)]
pub enum SoftPromptError {
    /// A setting is outside its limits.
    #[error("soft-prompt settings: {0}")]
    Settings(#[from] SpecError),
    /// Fewer than two distinct training texts long enough to split: nothing to train on
    /// and test with.
    #[error(
        "soft prompts need at least 2 distinct training instances of 2 or more tokens, found {0}"
    )]
    TooFewPairs(usize),
    /// The corpus lists an id it has no instance for.
    #[error("instance {0} is listed in the corpus split but does not exist")]
    MissingInstance(u32),
    /// An instance holds a token outside the model's vocabulary.
    #[error(
        "instance {instance} holds token {token}, outside the model's vocabulary of {vocab}: the model was not trained on this corpus"
    )]
    Vocabulary {
        /// The instance.
        instance: u32,
        /// The token id.
        token: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
    /// A batch is longer than the model's context.
    #[error("a soft-prompt input of {len} positions does not fit the context of {context}")]
    TooLong {
        /// Positions needed.
        len: usize,
        /// The model's context.
        context: usize,
    },
    /// The model could not be built from the checkpoint.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// Prompt training diverged.
    #[error("the {method} prompt's loss became {loss} at step {step}; lower its learning rate")]
    Diverged {
        /// Which prompt.
        method: Method,
        /// Step.
        step: usize,
        /// The value.
        loss: f32,
    },
    /// A device operation or read failed.
    #[error("device error: {0}")]
    Device(String),
}

fn device_err(e: impl std::fmt::Debug) -> SoftPromptError {
    SoftPromptError::Device(format!("{e:?}"))
}

/// How extraction is prompted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Greedy decoding from the prefix alone.
    None,
    /// A constant soft prompt before every prefix (Ozdayi et al.).
    Constant,
    /// A soft prompt generated from each prefix (Wang et al.).
    Dynamic,
}

impl Method {
    /// The three, in report order.
    pub const ALL: [Method; 3] = [Method::None, Method::Constant, Method::Dynamic];

    /// Its name in tables (`none`, `constant`, `dynamic`).
    pub fn label(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Constant => "constant",
            Method::Dynamic => "dynamic",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The layout of one batch of `[soft prompt ; prefix ; suffix]` inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptBatch {
    /// Soft-prompt length of each row.
    pub prompt_lens: Vec<usize>,
    /// The token part of each row: the prefix, then the suffix without its last token.
    pub tokens: Vec<Vec<u32>>,
    /// Positions per row (the longest row; shorter rows are padded at the end).
    pub len: usize,
    /// Next-token label at every position of each row, `[rows][len]`: the token that
    /// follows the position in `[prompt ; prefix ; suffix]` (0 where none does).
    pub labels: Vec<Vec<u32>>,
    /// Whether each label is scored: exactly the positions that predict a suffix token.
    pub scored: Vec<Vec<bool>>,
}

impl PromptBatch {
    /// Rows.
    pub fn rows(&self) -> usize {
        self.tokens.len()
    }

    /// Scored labels (suffix tokens) in the batch.
    pub fn scored_count(&self) -> usize {
        self.scored.iter().flatten().filter(|&&s| s).count()
    }
}

/// Lay out `pairs` behind soft prompts of `prompt_lens` (one per pair).
pub fn prompt_batch(pairs: &[&Pair], prompt_lens: &[usize]) -> PromptBatch {
    let rows = pairs.len().min(prompt_lens.len());
    let tokens: Vec<Vec<u32>> = pairs[..rows]
        .iter()
        .map(|p| {
            let mut t = p.prefix.clone();
            t.extend_from_slice(&p.suffix[..p.suffix.len().saturating_sub(1)]);
            t
        })
        .collect();
    let len = (0..rows)
        .map(|i| prompt_lens[i] + tokens[i].len())
        .max()
        .unwrap_or(0);
    let mut labels = Vec::with_capacity(rows);
    let mut scored = Vec::with_capacity(rows);
    for (i, p) in pairs[..rows].iter().enumerate() {
        let l = prompt_lens[i];
        let k = p.prefix.len();
        let all: Vec<u32> = p.prefix.iter().chain(&p.suffix).copied().collect();
        let mut lab = vec![0u32; len];
        let mut sc = vec![false; len];
        for t in 0..len {
            // Position t is followed by element t + 1 of the sequence; elements from `l`
            // on are tokens.
            if t + 1 >= l
                && let Some(&tok) = all.get(t + 1 - l)
            {
                lab[t] = tok;
                sc[t] = t + 1 - l >= k;
            }
        }
        labels.push(lab);
        scored.push(sc);
    }
    PromptBatch {
        prompt_lens: prompt_lens[..rows].to_vec(),
        tokens,
        len,
        labels,
        scored,
    }
}

/// The residual-stream input `[rows, len, d]` of `batch`, as
/// [`Gpt::forward_prompted_at`] builds it with `positions`: row `i` is its first
/// `prompt_lens[i]` vectors of `prompts` (`[rows, P, d]`, `P` the longest prompt), then
/// the target's embeddings of its tokens; with [`PromptPositions::Kept`] the prompt has
/// no position embedding and the tokens get positions 0, 1, ..., with
/// [`PromptPositions::Shifted`] every element of the row gets its place in the row.
/// Callers check that the row fits the context.
fn assemble(
    target: &Gpt,
    positions: PromptPositions,
    prompts: Tensor<3>,
    batch: &PromptBatch,
) -> Tensor<3> {
    let [b, p, d] = prompts.dims();
    let tdev = target.wte.val().device();
    let m = batch.tokens.iter().map(Vec::len).max().unwrap_or(0);
    let mut parts = Vec::with_capacity(2);
    if p > 0 {
        parts.push(prompts);
    }
    if m > 0 {
        let tokens = target.embed(ids_tensor(&batch.tokens, m, 0, &tdev));
        parts.push(match positions {
            PromptPositions::Kept => target.add_positions(tokens),
            PromptPositions::Shifted => tokens,
        });
    }
    let src = Tensor::cat(parts, 1);
    let place = |x: Tensor<3>| match positions {
        PromptPositions::Kept => x,
        PromptPositions::Shifted => target.add_positions(x),
    };
    if batch.prompt_lens.iter().all(|&l| l == p) && p + m == batch.len {
        // Every row's tokens start right after the prompt: already laid out.
        return place(src);
    }
    let mut index: Vec<i64> = Vec::with_capacity(b * batch.len * d);
    for (i, &l) in batch.prompt_lens.iter().enumerate() {
        let n_tok = batch.tokens[i].len();
        for t in 0..batch.len {
            let j = if t < l {
                t
            } else if t - l < n_tok {
                p + t - l
            } else {
                0 // padding after the row's end: never scored, never attended to
            };
            index.extend(std::iter::repeat_n(j as i64, d));
        }
    }
    let index: Tensor<3, Int> =
        Tensor::from_data(TensorData::new(index, [b, batch.len, d]), &src.device());
    place(src.gather(1, index))
}

/// Mean cross-entropy (nats/token) of the suffix tokens of `batch` under `target`, with
/// the soft prompts `prompts` (`[rows, P, d]`) in front, read as
/// [`Gpt::forward_prompted_at`] reads them with `positions`. Only positions that
/// [`PromptBatch::scored`] marks count, so the prompt and the prefix are never scored.
/// The result keeps the autodiff graph of `prompts`.
pub fn prompt_loss(
    target: &Gpt,
    positions: PromptPositions,
    prompts: Tensor<3>,
    batch: &PromptBatch,
) -> Result<Tensor<1>, SoftPromptError> {
    let context = target.context();
    if batch.len > context {
        return Err(SoftPromptError::TooLong {
            len: batch.len,
            context,
        });
    }
    let rows = batch.rows();
    let x = assemble(target, positions, prompts, batch);
    let device = x.device();
    let logp = log_softmax(target.forward_residual(x), 2);
    let labels = ids_tensor(&batch.labels, batch.len, 0, &device);
    let mask: Vec<f32> = batch
        .scored
        .iter()
        .flatten()
        .map(|&s| if s { 1.0 } else { 0.0 })
        .collect();
    let mask: Tensor<2> = Tensor::from_data(TensorData::new(mask, [rows, batch.len]), &device);
    let picked = logp.gather(2, labels.unsqueeze_dim(2)).squeeze_dim::<2>(2);
    Ok(-(picked * mask).sum() / batch.scored_count().max(1) as f64)
}

/// Greedy extraction on `pairs` (decoding `s` tokens after each prefix), from the prefix
/// alone (`prompts` `None`) or behind `prompts[i]` (`[L_i, d]`, on the model's device,
/// read with `positions`). One row per pair, in order; its `instance` is the pair's
/// instance.
pub async fn extract_pairs(
    model: &Gpt,
    positions: PromptPositions,
    pairs: &[Pair],
    prompts: Option<&[Tensor<2>]>,
) -> Result<Vec<ExtractionRow>, SoftPromptError> {
    let mut rows = Vec::with_capacity(pairs.len());
    for (c, chunk) in pairs.chunks(MAX_BATCH).enumerate() {
        let n = chunk.iter().map(|p| p.suffix.len()).max().unwrap_or(0);
        let prefixes: Vec<Vec<u32>> = chunk.iter().map(|p| p.prefix.clone()).collect();
        let generated = match prompts {
            None => model.greedy_batch(&prefixes, n).await,
            Some(all) => {
                let start = c * MAX_BATCH;
                let soft = all.get(start..start + chunk.len()).unwrap_or(&[]);
                model.greedy_embeddings(positions, soft, &prefixes, n).await
            }
        }
        .map_err(device_err)?;
        for (i, p) in chunk.iter().enumerate() {
            let mut g = generated.get(i).cloned().unwrap_or_default();
            g.truncate(p.suffix.len());
            rows.push(ExtractionRow::score(
                p.instance,
                p.prefix.len(),
                p.suffix.clone(),
                g,
            ));
        }
    }
    Ok(rows)
}

/// `(rate - base) / base`; undefined (`None`) when the base is 0 (or not finite).
pub fn relative_gain(rate: f64, base: f64) -> Option<f64> {
    (base > 0.0 && base.is_finite() && rate.is_finite()).then(|| (rate - base) / base)
}

/// The outcome of one method on the test pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// The method.
    pub method: Method,
    /// Exact and fractional extraction rates over the test pairs.
    pub rates: ExtractionRates,
    /// Relative gain of the exact rate over no prompt; `None` for no prompt itself and
    /// when no prompt's exact rate is 0.
    pub exact_gain: Option<f64>,
    /// Relative gain of the fractional rate over no prompt (`None` likewise).
    pub fractional_gain: Option<f64>,
    /// Prompt-training steps done (0 for no prompt).
    pub steps: usize,
    /// Prompt-training loss per step, `(step, loss)` (empty for no prompt).
    pub losses: Vec<(usize, f32)>,
    /// One row per test pair, in test order.
    pub rows: Vec<ExtractionRow>,
}

/// Extraction with and without soft prompts, measured on the test pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftPromptResult {
    /// The settings as requested.
    pub settings: SoftPromptSpec,
    /// The lengths used after fitting the window.
    pub lengths: FittedLengths,
    /// Every `(k, s)` used, with pair counts.
    pub pair_lengths: Vec<PairLengths>,
    /// Pairs that trained the prompts.
    pub train_pairs: usize,
    /// Pairs measured.
    pub test_pairs: usize,
    /// Pairs split in proportion (instance shorter than `k + s`).
    pub scaled: usize,
    /// Training instances too short to split.
    pub skipped: usize,
    /// Training instances left out as copies of an earlier text.
    pub duplicates: usize,
    /// No prompt, constant, dynamic, in that order.
    pub methods: Vec<MethodResult>,
}

impl SoftPromptResult {
    /// The result of one method.
    pub fn method(&self, method: Method) -> Option<&MethodResult> {
        self.methods.iter().find(|m| m.method == method)
    }

    /// The same without the per-pair rows (for a summary file).
    pub fn summary(&self) -> SoftPromptResult {
        let mut s = self.clone();
        for m in &mut s.methods {
            m.rows.clear();
        }
        s
    }
}

/// Where a [`SoftPromptRun`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SoftPromptProgress {
    /// The prompt being trained (the last one once all are done).
    pub method: Method,
    /// Its steps done.
    pub step: usize,
    /// Its steps in all.
    pub steps: usize,
    /// Steps done over both prompts.
    pub done: usize,
    /// Steps over both prompts.
    pub total: usize,
    /// Loss of the last step, if any.
    pub loss: Option<f32>,
}

/// One step of a [`SoftPromptRun`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PromptStep {
    /// The prompt trained.
    pub method: Method,
    /// Its step number (1-based).
    pub step: usize,
    /// Suffix cross-entropy of the batch before the update (nats/token).
    pub loss: f32,
}

/// The whole experiment as a step machine: pairs, the frozen target, and the constant
/// and dynamic prompt trainers (trained in that order).
pub struct SoftPromptRun {
    settings: SoftPromptSpec,
    positions: PromptPositions,
    pairs: PairSet,
    target: Gpt,
    constant: PromptTrainer,
    dynamic: PromptTrainer,
}

impl SoftPromptRun {
    /// Set up the experiment for the model in `checkpoint` and the training instances of
    /// `corpus` (its training corpus), with `seed` (the experiment's) for the pairs and
    /// the prompts, on `device` (plain or autodiff; prompts train with autodiff, the
    /// target is held without it). `positions` is how the target reads a prompt:
    /// [`PromptPositions::for_training`] of how it was trained.
    pub fn new(
        checkpoint: &Checkpoint,
        corpus: &Corpus,
        settings: &SoftPromptSpec,
        seed: u64,
        positions: PromptPositions,
        device: &Device,
    ) -> Result<Self, SoftPromptError> {
        settings.validate()?;
        let plain = device.clone().without_autodiff();
        let target = Gpt::from_checkpoint(checkpoint, &plain)?;
        let pairs = make_pairs(
            corpus,
            settings,
            checkpoint.config.context,
            checkpoint.vocab,
            seed,
        )?;
        let constant = PromptTrainer::constant(&target, &pairs, settings, positions, device)?;
        let dynamic =
            PromptTrainer::dynamic(&target, checkpoint, &pairs, settings, positions, device)?;
        Ok(SoftPromptRun {
            settings: *settings,
            positions,
            pairs,
            target,
            constant,
            dynamic,
        })
    }

    /// The pairs.
    pub fn pairs(&self) -> &PairSet {
        &self.pairs
    }

    /// The frozen target.
    pub fn target(&self) -> &Gpt {
        &self.target
    }

    /// How the target reads the prompts.
    pub fn positions(&self) -> PromptPositions {
        self.positions
    }

    /// The constant prompt's trainer.
    pub fn constant(&self) -> &PromptTrainer {
        &self.constant
    }

    /// The dynamic prompt's trainer.
    pub fn dynamic(&self) -> &PromptTrainer {
        &self.dynamic
    }

    /// Whether both prompts are trained.
    pub fn is_done(&self) -> bool {
        self.constant.is_done() && self.dynamic.is_done()
    }

    /// Where the run stands.
    pub fn progress(&self) -> SoftPromptProgress {
        let t = if self.constant.is_done() {
            &self.dynamic
        } else {
            &self.constant
        };
        SoftPromptProgress {
            method: t.method(),
            step: t.steps_done(),
            steps: t.total_steps(),
            done: self.constant.steps_done() + self.dynamic.steps_done(),
            total: self.constant.total_steps() + self.dynamic.total_steps(),
            loss: t.losses().last().map(|l| l.1),
        }
    }

    /// Train one step of the constant prompt, or of the generator once the constant
    /// prompt is done; `None` when both are.
    pub async fn step(&mut self) -> Result<Option<PromptStep>, SoftPromptError> {
        let trainer = if self.constant.is_done() {
            &mut self.dynamic
        } else {
            &mut self.constant
        };
        Ok(trainer.step().await?.map(|loss| PromptStep {
            method: trainer.method(),
            step: trainer.steps_done(),
            loss,
        }))
    }

    /// Measure the three methods on the test pairs, with the prompts as trained so far
    /// (so a cancelled run still has a result).
    pub async fn result(&self) -> Result<SoftPromptResult, SoftPromptError> {
        let test = &self.pairs.test;
        let none = extract_pairs(&self.target, self.positions, test, None).await?;
        let constant = self.constant.evaluate(test).await?;
        let dynamic = self.dynamic.evaluate(test).await?;
        let base = ExtractionRates::of(&none);
        let method = |method: Method, rows: Vec<ExtractionRow>, trainer: Option<&PromptTrainer>| {
            let rates = ExtractionRates::of(&rows);
            let prompted = trainer.is_some();
            MethodResult {
                method,
                rates,
                exact_gain: prompted
                    .then(|| relative_gain(rates.exact_rate, base.exact_rate))
                    .flatten(),
                fractional_gain: prompted
                    .then(|| relative_gain(rates.fractional_rate, base.fractional_rate))
                    .flatten(),
                steps: trainer.map_or(0, PromptTrainer::steps_done),
                losses: trainer.map_or_else(Vec::new, |t| t.losses().to_vec()),
                rows,
            }
        };
        Ok(SoftPromptResult {
            settings: self.settings,
            lengths: self.pairs.lengths,
            pair_lengths: self.pairs.pair_lengths(),
            train_pairs: self.pairs.train.len(),
            test_pairs: test.len(),
            scaled: self.pairs.scaled,
            skipped: self.pairs.skipped,
            duplicates: self.pairs.duplicates,
            methods: vec![
                method(Method::None, none, None),
                method(Method::Constant, constant, Some(&self.constant)),
                method(Method::Dynamic, dynamic, Some(&self.dynamic)),
            ],
        })
    }
}

/// Train both prompts on this thread and measure (natively). `on_step` sees every step;
/// returning `Break` stops training and measures the prompts as they are.
#[cfg(not(target_family = "wasm"))]
pub fn run_blocking(
    run: &mut SoftPromptRun,
    mut on_step: impl FnMut(&PromptStep, &SoftPromptProgress) -> std::ops::ControlFlow<()>,
) -> Result<SoftPromptResult, SoftPromptError> {
    while let Some(step) = mnemo_core::train::block_on(run.step())? {
        if on_step(&step, &run.progress()).is_break() {
            break;
        }
    }
    mnemo_core::train::block_on(run.result())
}
