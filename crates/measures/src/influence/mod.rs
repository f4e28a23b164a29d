//! Training-data influence (METHODS.md section 4): TracIn (Pruthi et al., NeurIPS 2020),
//! its last-layer restriction, TracIn-WE and TracIn-WE-TopK (Yeh et al., NeurIPS 2022),
//! token attribution, and the case-deletion test.
//!
//! With checkpoints `t` of one run, `eta_t` the learning rate in effect at `t` and
//! `l(z)` the mean token NLL of a text `z` over its scored positions (every target
//! after BOS; a text is scored alone, so no padding enters), the score of a training
//! text `z'` for a test text `z` is
//!
//! ```text
//! TracIn(z, z')     = sum_t eta_t < grad_theta l(z; theta_t), grad_theta l(z'; theta_t) >
//! TracIn-Last       = the same over the output head's weight matrix only
//! TracIn-WE(z, z')  = sum_t eta_t sum_{w in z ∩ z'} < g_w(z; t), g_w(z'; t) >
//! ```
//!
//! Choices, as implemented:
//!
//! - **`eta_t`** is [`mnemo_core::train::checkpoint_lr`]: the learning rate of the step
//!   that produced the checkpoint (`lr_at(step)`; for step 0 the first step's rate). By
//!   default the run sums over every training checkpoint after step 0 (the random
//!   initial weights say nothing about the data).
//! - **`g_w(z; t)`** is the gradient of `l(z)` with respect to the input embedding vector
//!   at each position whose input token is `w`, summed over those positions: the
//!   *lookup* part of the embedding gradient. It is obtained by looking the embeddings
//!   up, detaching them into a leaf tensor and running [`Gpt::forward_embeddings`] on
//!   that leaf; the leaf's gradient, row by row, is the per-position gradient. The
//!   tokens of a text are its *input* tokens (BOS and the text; EOS is only ever a
//!   target). For an untied model `sum_w <g_w(z), g_w(z')>` is the dot product of the
//!   two embedding-matrix gradients (a test checks it).
//! - **Tied head.** When the head reuses the embedding matrix, that matrix's gradient
//!   has two parts. TracIn-WE uses the lookup part only (above), TracIn-Last the head
//!   part only (the gradient of the matrix when the lookup is detached), and full TracIn
//!   their sum, the matrix's true gradient.
//! - **BOS** occurs in every text and would add a shared term to every pair: it is left
//!   out of TracIn-WE, TopK and the token attribution unless `include_bos` is set. (The
//!   paper's reference keeps its special tokens.) Padding never counts: every text is
//!   differentiated alone, at its own length.
//! - **TopK.** Per example and checkpoint, the counted positions (BOS excluded by
//!   default) are ranked by the Euclidean norm of their input-embedding gradient; the
//!   `topk` largest are kept (ties to the earlier position) and summed by token as
//!   above. A token shared by the two texts counts only if both kept a position of it.
//! - **Token attribution** is the per-token terms of TracIn-WE, `sum_t eta_t <g_w(z; t),
//!   g_w(z'; t)>` for every shared token `w`: they sum to the TracIn-WE score.
//! - **Sign.** Proponents are the training texts with the largest positive scores,
//!   opponents the most negative ([`TOP`] of each).
//!
//! **Memory and time.** At each checkpoint the test texts' gradients are computed once
//! and kept on the host; then the training texts are streamed, one backward pass each,
//! and scored against every test gradient. Nothing holds the gradients of the whole
//! training set. Dot products are accumulated in `f64`. [`InfluenceRun`] is a step
//! machine (one example's gradient per [`InfluenceRun::step`]) so the browser's worker
//! can yield and cancel between steps; [`run_blocking`] drives it natively. Every read
//! of a tensor is asynchronous, so the same code runs on WebGPU.
//!
//! **Case deletion** ([`plan_deletion`], [`deletion_trainer`], [`text_loss`],
//! [`deletion_result`]): for each of the first `deletion_tests` test texts, its top-`k`
//! training texts by each method (the `k` largest scores) are removed and the model is
//! retrained from the same initial weights with the same data order otherwise
//! ([`Trainer::with_corpus_excluding`]); the rise of the test text's loss under the
//! retrained final model is the method's effect. Random removal of `k` training texts,
//! `random_draws` seeded draws per (test, `k`), is the baseline. Every retrain is an
//! independent [`DeletionJob`].

use std::collections::{BTreeMap, BTreeSet};

use mnemo_core::backend::Device;
use mnemo_core::spec::SpecError;
pub use mnemo_core::spec::{InfluenceMethod as Method, InfluenceSpec};
#[cfg(not(target_family = "wasm"))]
use mnemo_core::train::block_on;
use mnemo_core::train::{TrainError, checkpoint_lr, plan};
use mnemo_core::{Checkpoint, CheckpointError, Corpus, ExperimentSpec, Gpt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod agreement;
mod deletion;
mod gradients;

pub use agreement::{Agreement, agreement, spearman};
use gradients::{ExampleGrad, dot, example_grad, shared_terms};

pub use deletion::{
    DeletionJob, DeletionPlan, DeletionResult, DeletionRow, DeletionSummary, Removal,
    deletion_result, deletion_trainer, losses_before, plan_deletion, retrain_losses, retrain_spec,
    test_losses, text_loss,
};
#[cfg(not(target_family = "wasm"))]
pub use deletion::{run_deletion_blocking, run_deletion_threads};

/// Proponents and opponents reported per test text and method.
pub const TOP: usize = 10;

/// Why an influence run or a case deletion could not be set up or run.
#[derive(Debug, Error)]
pub enum InfluenceError {
    /// The spec has no `influence` section.
    #[error("the spec has no `influence` section")]
    NoSettings,
    /// The settings are out of range.
    #[error("invalid influence settings: {0}")]
    Spec(#[from] SpecError),
    /// A test id outside the corpus.
    #[error(
        "influence.tests names instance {id}, but the corpus has {n} instances (ids 0 to {last})",
        last = n.saturating_sub(1)
    )]
    UnknownTest {
        /// The id.
        id: u32,
        /// Instances in the corpus.
        n: usize,
    },
    /// No test texts at all.
    #[error("influence needs at least one test text (influence.tests or influence.heldout_tests)")]
    NoTests,
    /// More held-out tests asked for than there are held-out texts.
    #[error("influence.heldout_tests is {asked}, but the corpus holds out only {available} texts")]
    TooFewHeldout {
        /// Asked for.
        asked: usize,
        /// Held-out texts.
        available: usize,
    },
    /// No checkpoint to sum over.
    #[error("influence needs at least one checkpoint after step 0")]
    NoCheckpoints,
    /// A listed checkpoint step beyond the end of training.
    #[error("influence.checkpoints lists step {step}, but the run has {total} steps")]
    CheckpointPastEnd {
        /// The step.
        step: usize,
        /// Steps in the run.
        total: usize,
    },
    /// A listed checkpoint that was not handed over.
    #[error("no checkpoint at step {step} was supplied (have {available:?})")]
    MissingCheckpoint {
        /// The step.
        step: usize,
        /// Steps supplied.
        available: Vec<usize>,
    },
    /// The weights do not fit the spec's model or corpus.
    #[error("checkpoint at step {step}: {reason}")]
    Mismatch {
        /// The step.
        step: usize,
        /// How they differ.
        reason: String,
    },
    /// A deletion `k` larger than the training set allows.
    #[error(
        "influence.deletion_k has {k}, but only {n} training texts exist (at least one must remain)"
    )]
    KTooLarge {
        /// The k.
        k: usize,
        /// Training texts.
        n: usize,
    },
    /// Case deletion asks for more test texts than the run has.
    #[error("influence.deletion_tests is {asked}, but the run has {available} test texts")]
    TooManyDeletionTests {
        /// Asked for.
        asked: usize,
        /// Test texts.
        available: usize,
    },
    /// A text too short to have a scored position.
    #[error("instance {0} has fewer than 2 tokens: nothing to score")]
    TooShort(u32),
    /// The run has not finished yet, or was finished already.
    #[error("the influence run is not finished ({done} of {total} steps)")]
    NotDone {
        /// Steps done.
        done: usize,
        /// Steps in all.
        total: usize,
    },
    /// Weights could not be loaded.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A retrain failed.
    #[error("training: {0}")]
    Train(#[from] TrainError),
    /// A device operation failed.
    #[error("device error: {0}")]
    Device(String),
}

fn device_err(e: impl std::fmt::Debug) -> InfluenceError {
    InfluenceError::Device(format!("{e:?}"))
}

/// A text as the model reads it: its instance id and its tokens, BOS first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// Instance id.
    pub id: u32,
    /// Token ids, BOS first (inputs are all but the last, targets all but the first).
    pub tokens: Vec<u32>,
}

/// A checkpoint with its `eta_t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedCheckpoint {
    /// The weights.
    pub checkpoint: Checkpoint,
    /// The learning rate in effect there.
    pub lr: f64,
}

/// One training text's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// Training instance id.
    pub train: u32,
    /// Its score.
    pub score: f64,
}

/// One method's scores for one test text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodScores {
    /// The method.
    pub method: Method,
    /// Score of every training text, aligned with [`InfluenceResult::train`].
    pub scores: Vec<f64>,
    /// Up to [`TOP`] training texts with the largest positive scores, largest first.
    pub proponents: Vec<Ranked>,
    /// Up to [`TOP`] training texts with the most negative scores, most negative first.
    pub opponents: Vec<Ranked>,
}

/// One shared token's term of TracIn-WE.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenScore {
    /// Training instance id.
    pub train: u32,
    /// Token id.
    pub token: u32,
    /// `sum_t eta_t <g_w(test), g_w(train)>`.
    pub score: f64,
}

/// Everything measured for one test text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestInfluence {
    /// Test instance id.
    pub test: u32,
    /// Per method (in the settings' order).
    pub methods: Vec<MethodScores>,
    /// Token attribution: the TracIn-WE terms of every (training text, shared token),
    /// by training id then token id.
    pub tokens: Vec<TokenScore>,
}

impl TestInfluence {
    /// This text's scores by `method`, if it was scored.
    pub fn method(&self, method: Method) -> Option<&MethodScores> {
        self.methods.iter().find(|m| m.method == method)
    }
}

/// The result of an influence run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfluenceResult {
    /// The settings.
    pub settings: InfluenceSpec,
    /// Training instance ids, ascending (the columns of every score vector).
    pub train: Vec<u32>,
    /// `(step, eta_t)` of every checkpoint summed over.
    pub checkpoints: Vec<(usize, f64)>,
    /// Per test text, in the order of the run.
    pub tests: Vec<TestInfluence>,
}

impl InfluenceResult {
    /// The entry of test text `id`.
    pub fn test(&self, id: u32) -> Option<&TestInfluence> {
        self.tests.iter().find(|t| t.test == id)
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfluenceProgress {
    /// Example gradients done.
    pub done: usize,
    /// Example gradients in all (`checkpoints * (tests + training texts)`).
    pub total: usize,
    /// Index of the checkpoint being worked on.
    pub checkpoint: usize,
}

/// The test texts ([`test_ids`]) and the training texts (by id) of `corpus` as examples.
pub fn examples(
    settings: &InfluenceSpec,
    corpus: &Corpus,
) -> Result<(Vec<Example>, Vec<Example>), InfluenceError> {
    let example = |id: u32| Example {
        id,
        tokens: corpus.get(id).map(|i| i.tokens.clone()).unwrap_or_default(),
    };
    let tests = test_ids(settings, corpus)?
        .into_iter()
        .map(example)
        .collect();
    let mut train_ids = corpus.train.clone();
    train_ids.sort_unstable();
    Ok((tests, train_ids.into_iter().map(example).collect()))
}

/// The test ids of `settings` on `corpus`: the listed ids (checked), then the first
/// `heldout_tests` held-out ids, without repeats, in that order.
pub fn test_ids(settings: &InfluenceSpec, corpus: &Corpus) -> Result<Vec<u32>, InfluenceError> {
    let n = corpus.instances.len();
    let mut out: Vec<u32> = Vec::new();
    for &id in &settings.tests {
        if corpus.get(id).is_none() {
            return Err(InfluenceError::UnknownTest { id, n });
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if settings.heldout_tests > corpus.heldout.len() {
        return Err(InfluenceError::TooFewHeldout {
            asked: settings.heldout_tests,
            available: corpus.heldout.len(),
        });
    }
    for &id in corpus.heldout.iter().take(settings.heldout_tests) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.is_empty() {
        return Err(InfluenceError::NoTests);
    }
    for &id in &out {
        if corpus.get(id).is_none_or(|i| i.tokens.len() < 2) {
            return Err(InfluenceError::TooShort(id));
        }
    }
    Ok(out)
}

/// The checkpoint steps an influence run of `spec` sums over, checked against the run's
/// length: the listed ones, or (none listed) every training checkpoint after step 0.
pub fn checkpoint_steps(
    spec: &ExperimentSpec,
    corpus: &Corpus,
) -> Result<Vec<usize>, InfluenceError> {
    let settings = spec.influence.as_ref().ok_or(InfluenceError::NoSettings)?;
    let (total, _) = plan(spec, corpus);
    let mut steps: BTreeSet<usize> = BTreeSet::new();
    if settings.checkpoints.is_empty() {
        let t = &spec.training;
        steps.insert(total);
        if t.checkpoint_every > 0 {
            steps.extend((0..=total).step_by(t.checkpoint_every));
        }
        steps.extend(t.checkpoint_steps.iter().copied().filter(|&s| s <= total));
        steps.remove(&0);
    } else {
        for &s in &settings.checkpoints {
            if s > total {
                return Err(InfluenceError::CheckpointPastEnd { step: s, total });
            }
            steps.insert(s);
        }
    }
    if steps.is_empty() {
        return Err(InfluenceError::NoCheckpoints);
    }
    Ok(steps.into_iter().collect())
}

/// Check everything an influence run of `spec` on `corpus` needs before anything is
/// trained: the settings, the test ids, the checkpoint steps and the deletion `k`s.
pub fn check(spec: &ExperimentSpec, corpus: &Corpus) -> Result<(), InfluenceError> {
    let settings = spec.influence.as_ref().ok_or(InfluenceError::NoSettings)?;
    settings.validate()?;
    let tests = test_ids(settings, corpus)?;
    checkpoint_steps(spec, corpus)?;
    let n = corpus.train.len();
    for &k in &settings.deletion_k {
        if k >= n {
            return Err(InfluenceError::KTooLarge { k, n });
        }
    }
    if !settings.deletion_k.is_empty() && settings.deletion_tests > tests.len() {
        return Err(InfluenceError::TooManyDeletionTests {
            asked: settings.deletion_tests,
            available: tests.len(),
        });
    }
    Ok(())
}

/// An influence run in progress: a step machine over (checkpoint, example).
pub struct InfluenceRun {
    settings: InfluenceSpec,
    tests: Vec<Example>,
    train: Vec<Example>,
    bos: u32,
    checkpoints: Vec<WeightedCheckpoint>,
    device: Device,
    ck: usize,
    pos: usize,
    model: Option<Gpt>,
    test_grads: Vec<ExampleGrad>,
    /// `[test][train][method index in Method::ALL]`.
    scores: Vec<Vec<[f64; 4]>>,
    /// `[test][train]`: token -> term.
    tokens: Vec<Vec<BTreeMap<u32, f64>>>,
}

impl InfluenceRun {
    /// A run of `spec`'s influence settings on `corpus`, from the checkpoints of its
    /// training run (any superset of the steps [`checkpoint_steps`] names), on `device`
    /// (autodiff is switched on here). `eta_t` comes from the spec's schedule
    /// ([`checkpoint_lr`]).
    pub fn new(
        spec: &ExperimentSpec,
        corpus: &Corpus,
        checkpoints: &[Checkpoint],
        device: &Device,
    ) -> Result<Self, InfluenceError> {
        check(spec, corpus)?;
        let settings = spec.influence.clone().ok_or(InfluenceError::NoSettings)?;
        let (total, _) = plan(spec, corpus);
        let vocab = corpus.tokenizer.vocab_size();
        let mut chosen = Vec::new();
        for step in checkpoint_steps(spec, corpus)? {
            let ck = checkpoints.iter().find(|c| c.step == step).ok_or_else(|| {
                InfluenceError::MissingCheckpoint {
                    step,
                    available: checkpoints.iter().map(|c| c.step).collect(),
                }
            })?;
            ck.fits(&spec.model, vocab)
                .map_err(|reason| InfluenceError::Mismatch { step, reason })?;
            chosen.push(WeightedCheckpoint {
                checkpoint: ck.clone(),
                lr: checkpoint_lr(&spec.training, total, step),
            });
        }
        let (tests, train) = examples(&settings, corpus)?;
        Self::from_examples(
            settings,
            tests,
            train,
            corpus.tokenizer.bos(),
            chosen,
            device,
        )
    }

    /// A run on explicit texts and weighted checkpoints (what the reference fixtures
    /// hold). `settings.tests`, `heldout_tests` and `checkpoints` are not used here.
    pub fn from_examples(
        settings: InfluenceSpec,
        tests: Vec<Example>,
        train: Vec<Example>,
        bos: u32,
        checkpoints: Vec<WeightedCheckpoint>,
        device: &Device,
    ) -> Result<Self, InfluenceError> {
        settings.validate()?;
        if checkpoints.is_empty() {
            return Err(InfluenceError::NoCheckpoints);
        }
        if tests.is_empty() {
            return Err(InfluenceError::NoTests);
        }
        if let Some(e) = tests.iter().chain(&train).find(|e| e.tokens.len() < 2) {
            return Err(InfluenceError::TooShort(e.id));
        }
        for c in &checkpoints {
            let ck = &c.checkpoint;
            let bad = |reason: String| InfluenceError::Mismatch {
                step: ck.step,
                reason,
            };
            if let Some(e) = tests.iter().chain(&train).find(|e| {
                e.tokens.len() > ck.config.context + 1
                    || e.tokens.iter().any(|&w| w as usize >= ck.vocab)
            }) {
                return Err(bad(format!(
                    "instance {} is longer than the context or has a token outside the vocabulary",
                    e.id
                )));
            }
        }
        let (nt, nr) = (tests.len(), train.len());
        Ok(InfluenceRun {
            settings,
            tests,
            train,
            bos,
            checkpoints,
            device: device.clone().autodiff(),
            ck: 0,
            pos: 0,
            model: None,
            test_grads: Vec::new(),
            scores: vec![vec![[0.0; 4]; nr]; nt],
            tokens: vec![vec![BTreeMap::new(); nr]; nt],
        })
    }

    /// Example gradients per checkpoint.
    fn per_checkpoint(&self) -> usize {
        self.tests.len() + self.train.len()
    }

    /// Where the run stands.
    pub fn progress(&self) -> InfluenceProgress {
        InfluenceProgress {
            done: self.ck * self.per_checkpoint() + self.pos,
            total: self.checkpoints.len() * self.per_checkpoint(),
            checkpoint: self.ck.min(self.checkpoints.len().saturating_sub(1)),
        }
    }

    /// Whether every example gradient is done.
    pub fn is_done(&self) -> bool {
        self.ck >= self.checkpoints.len()
    }

    /// The test texts, in the order of the result.
    pub fn tests(&self) -> &[Example] {
        &self.tests
    }

    /// The training texts, in the order of the score vectors.
    pub fn train(&self) -> &[Example] {
        &self.train
    }

    /// One example's gradient at the current checkpoint: a test text's (kept), or a
    /// training text's (scored against every test text, then dropped). Returns the
    /// progress after it; does nothing once done.
    pub async fn step(&mut self) -> Result<InfluenceProgress, InfluenceError> {
        if self.is_done() {
            return Ok(self.progress());
        }
        let wc = &self.checkpoints[self.ck];
        if self.model.is_none() {
            self.model = Some(Gpt::from_checkpoint(&wc.checkpoint, &self.device)?);
        }
        let eta = wc.lr;
        let Some(model) = self.model.as_ref() else {
            return Ok(self.progress());
        };
        let (bos, inc, k) = (self.bos, self.settings.include_bos, self.settings.topk);
        let nt = self.tests.len();
        if self.pos < nt {
            let g = example_grad(model, &self.tests[self.pos].tokens, bos, inc, k).await?;
            self.test_grads.push(g);
        } else {
            let j = self.pos - nt;
            let g = example_grad(model, &self.train[j].tokens, bos, inc, k).await?;
            for (i, tg) in self.test_grads.iter().enumerate() {
                let s = &mut self.scores[i][j];
                s[0] += eta * dot(&tg.full, &g.full);
                s[1] += eta * dot(&tg.head, &g.head);
                let toks = &mut self.tokens[i][j];
                for (w, v) in shared_terms(&tg.we, &g.we) {
                    s[2] += eta * v;
                    *toks.entry(w).or_insert(0.0) += eta * v;
                }
                s[3] += shared_terms(&tg.topk, &g.topk)
                    .map(|(_, v)| eta * v)
                    .sum::<f64>();
            }
        }
        self.pos += 1;
        if self.pos == self.per_checkpoint() {
            self.pos = 0;
            self.ck += 1;
            self.model = None;
            self.test_grads.clear();
        }
        Ok(self.progress())
    }

    /// The result (only once [`InfluenceRun::is_done`]).
    pub fn finish(self) -> Result<InfluenceResult, InfluenceError> {
        if !self.is_done() {
            let p = self.progress();
            return Err(InfluenceError::NotDone {
                done: p.done,
                total: p.total,
            });
        }
        let train: Vec<u32> = self.train.iter().map(|e| e.id).collect();
        let tests = self
            .tests
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let methods = self
                    .settings
                    .methods
                    .iter()
                    .map(|&m| {
                        let mi = Method::ALL.iter().position(|&x| x == m).unwrap_or(0);
                        let scores: Vec<f64> = self.scores[i].iter().map(|s| s[mi]).collect();
                        ranked(m, &train, scores)
                    })
                    .collect();
                let tokens = self.tokens[i]
                    .iter()
                    .zip(&train)
                    .flat_map(|(m, &tr)| {
                        m.iter().map(move |(&token, &score)| TokenScore {
                            train: tr,
                            token,
                            score,
                        })
                    })
                    .collect();
                TestInfluence {
                    test: e.id,
                    methods,
                    tokens,
                }
            })
            .collect();
        Ok(InfluenceResult {
            settings: self.settings,
            train,
            checkpoints: self
                .checkpoints
                .iter()
                .map(|c| (c.checkpoint.step, c.lr))
                .collect(),
            tests,
        })
    }
}

/// Training ids by score: descending, ties to the smaller id.
fn order_by_score(train: &[u32], scores: &[f64]) -> Vec<Ranked> {
    let mut r: Vec<Ranked> = train
        .iter()
        .zip(scores)
        .map(|(&train, &score)| Ranked { train, score })
        .collect();
    r.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.train.cmp(&b.train)));
    r
}

fn ranked(method: Method, train: &[u32], scores: Vec<f64>) -> MethodScores {
    let order = order_by_score(train, &scores);
    let proponents = order
        .iter()
        .filter(|r| r.score > 0.0)
        .take(TOP)
        .copied()
        .collect();
    let opponents = order
        .iter()
        .rev()
        .filter(|r| r.score < 0.0)
        .take(TOP)
        .copied()
        .collect();
    MethodScores {
        method,
        scores,
        proponents,
        opponents,
    }
}

/// Drive a run to the end on this thread, reporting progress after every step;
/// `on_progress` returning `Break` stops it (then `Ok(None)`).
#[cfg(not(target_family = "wasm"))]
pub fn run_blocking(
    mut run: InfluenceRun,
    mut on_progress: impl FnMut(&InfluenceProgress) -> std::ops::ControlFlow<()>,
) -> Result<Option<InfluenceResult>, InfluenceError> {
    while !run.is_done() {
        let p = block_on(run.step())?;
        if on_progress(&p).is_break() {
            return Ok(None);
        }
    }
    run.finish().map(Some)
}

// ----------------------------------------------------------------------------------
// Rank agreement between methods.
