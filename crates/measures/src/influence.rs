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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mnemo_core::backend::Device;
use mnemo_core::burn::module::Param;
use mnemo_core::burn::nn::{LayerNorm, Linear};
use mnemo_core::burn::tensor::activation::log_softmax;
use mnemo_core::burn::tensor::{Gradients, Tensor};
use mnemo_core::model::ids_tensor;
use mnemo_core::rng::{self, Stream};
use mnemo_core::spec::SpecError;
pub use mnemo_core::spec::{InfluenceMethod as Method, InfluenceSpec};
#[cfg(not(target_family = "wasm"))]
use mnemo_core::train::block_on;
use mnemo_core::train::{TrainError, Trainer, checkpoint_lr, plan, plan_excluding};
use mnemo_core::{Checkpoint, CheckpointError, Corpus, ExperimentSpec, Gpt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

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

/// One example's gradients at one checkpoint, on the host.
struct ExampleGrad {
    /// Every parameter's gradient (the embedding matrix's in full: head and lookup parts).
    full: Vec<f32>,
    /// The output head's part.
    head: Vec<f32>,
    /// TracIn-WE: per counted token, the sum of its positions' input gradients.
    we: BTreeMap<u32, Vec<f32>>,
    /// TracIn-WE-TopK: the same over the kept positions only.
    topk: BTreeMap<u32, Vec<f32>>,
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
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
async fn example_grad(
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
    parts.push(flat2(&model.wpe, &grads, &plain));
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
fn shared_terms<'a>(
    a: &'a BTreeMap<u32, Vec<f32>>,
    b: &'a BTreeMap<u32, Vec<f32>>,
) -> impl Iterator<Item = (u32, f64)> + 'a {
    a.iter()
        .filter_map(move |(w, ga)| b.get(w).map(|gb| (*w, dot(ga, gb))))
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
        let example = |id: u32| Example {
            id,
            tokens: corpus.get(id).map(|i| i.tokens.clone()).unwrap_or_default(),
        };
        let tests = test_ids(&settings, corpus)?
            .into_iter()
            .map(example)
            .collect();
        let mut train_ids = corpus.train.clone();
        train_ids.sort_unstable();
        let train = train_ids.into_iter().map(example).collect();
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

/// Average ranks (1-based; ties share the mean of their ranks).
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of `a` and `b` (Pearson's on average ranks); `None` for
/// fewer than two pairs, different lengths or a constant side.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// How far the methods agree: for every pair, Spearman's rank correlation of their
/// scores over the training texts, averaged over the test texts where it is defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The methods (rows and columns).
    pub methods: Vec<Method>,
    /// `matrix[i][j]`: mean rank correlation of methods `i` and `j` (`None` where no
    /// test text defines it).
    pub matrix: Vec<Vec<Option<f64>>>,
}

/// The rank agreement of the methods of `result`.
pub fn agreement(result: &InfluenceResult) -> Agreement {
    let methods = result.settings.methods.clone();
    let matrix = methods
        .iter()
        .map(|&a| {
            methods
                .iter()
                .map(|&b| {
                    let vals: Vec<f64> = result
                        .tests
                        .iter()
                        .filter_map(|t| spearman(&t.method(a)?.scores, &t.method(b)?.scores))
                        .collect();
                    (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
                })
                .collect()
        })
        .collect();
    Agreement { methods, matrix }
}

// ----------------------------------------------------------------------------------
// Case deletion.

/// What a case-deletion retrain removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Removal {
    /// The test text's top-`k` training texts by a method.
    Top(Method),
    /// `k` training texts drawn at random (a seeded draw).
    Random,
}

impl Removal {
    /// The name in `deletion.csv`: the method's key, or `random`.
    pub fn key(self) -> &'static str {
        match self {
            Removal::Top(m) => m.key(),
            Removal::Random => "random",
        }
    }

    /// The name in charts.
    pub fn label(self) -> &'static str {
        match self {
            Removal::Top(m) => m.label(),
            Removal::Random => "random",
        }
    }
}

/// One retrain of case deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionJob {
    /// How the removed texts were chosen.
    pub removal: Removal,
    /// Texts removed.
    pub k: usize,
    /// Random draw (0 for the methods).
    pub draw: usize,
    /// The test text.
    pub test: u32,
    /// The removed training ids, ascending.
    pub removed: Vec<u32>,
}

/// Every retrain of a case deletion, and the test texts' losses before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionPlan {
    /// The test texts (the first `deletion_tests` of the run).
    pub tests: Vec<u32>,
    /// The retrains, by test, then `k`, then method (in the settings' order), then the
    /// random draws.
    pub jobs: Vec<DeletionJob>,
}

impl DeletionPlan {
    /// The distinct removed sets (retrains that give the same model are run once by
    /// [`run_deletion_blocking`]).
    pub fn distinct_retrains(&self) -> usize {
        self.jobs
            .iter()
            .map(|j| &j.removed)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Plan the case deletion of `spec`'s settings from an influence `result` on `corpus`.
/// Random draws come from `rng::stream(spec.seed, Stream::Influence)`, one shuffle of
/// the training ids per job in plan order.
pub fn plan_deletion(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    result: &InfluenceResult,
) -> Result<DeletionPlan, InfluenceError> {
    let settings = spec.influence.as_ref().ok_or(InfluenceError::NoSettings)?;
    let n = result.train.len();
    for &k in &settings.deletion_k {
        if k >= n {
            return Err(InfluenceError::KTooLarge { k, n });
        }
    }
    if settings.deletion_k.is_empty() {
        return Ok(DeletionPlan {
            tests: Vec::new(),
            jobs: Vec::new(),
        });
    }
    if settings.deletion_tests > result.tests.len() {
        return Err(InfluenceError::TooManyDeletionTests {
            asked: settings.deletion_tests,
            available: result.tests.len(),
        });
    }
    let _ = corpus;
    let mut rng = rng::stream(spec.seed, Stream::Influence);
    let mut jobs = Vec::new();
    let tests: Vec<u32> = result
        .tests
        .iter()
        .take(settings.deletion_tests)
        .map(|t| t.test)
        .collect();
    for t in result.tests.iter().take(settings.deletion_tests) {
        for &k in &settings.deletion_k {
            for m in &t.methods {
                let mut removed: Vec<u32> = order_by_score(&result.train, &m.scores)
                    .iter()
                    .take(k)
                    .map(|r| r.train)
                    .collect();
                removed.sort_unstable();
                jobs.push(DeletionJob {
                    removal: Removal::Top(m.method),
                    k,
                    draw: 0,
                    test: t.test,
                    removed,
                });
            }
            for draw in 0..settings.random_draws {
                let mut ids = result.train.clone();
                rng::shuffle(&mut ids, &mut rng);
                ids.truncate(k);
                ids.sort_unstable();
                jobs.push(DeletionJob {
                    removal: Removal::Random,
                    k,
                    draw,
                    test: t.test,
                    removed: ids,
                });
            }
        }
    }
    Ok(DeletionPlan { tests, jobs })
}

/// The spec a retrain runs: the experiment's, without checkpoints or analyses (the
/// seed, hence the initial weights and the data order, unchanged).
pub fn retrain_spec(spec: &ExperimentSpec) -> ExperimentSpec {
    let mut s = spec.clone();
    s.training.checkpoint_every = 0;
    s.training.checkpoint_steps.clear();
    s.profile = None;
    s.counterfactual = None;
    s.extraction = None;
    s.softprompt = None;
    s.influence = None;
    s
}

/// A trainer for `job` on `device`: the spec's run without the removed texts (same
/// initial weights, same data order minus them; see
/// [`mnemo_core::train::plan_excluding`]). Step it to the end, then measure
/// [`text_loss`] of the job's test text.
pub fn deletion_trainer(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    job: &DeletionJob,
    device: Device,
) -> Result<Trainer, InfluenceError> {
    let exclude: BTreeSet<u32> = job.removed.iter().copied().collect();
    // Fail early (and typed) when the removal leaves nothing to train on.
    plan_excluding(spec, corpus, &exclude)?;
    Ok(Trainer::with_corpus_excluding(
        retrain_spec(spec),
        corpus.clone(),
        device,
        exclude,
    )?)
}

/// Mean token NLL (nats) of `tokens` (BOS first) under `model`, over every target.
pub async fn text_loss(model: &Gpt, tokens: &[u32]) -> Result<f64, InfluenceError> {
    if tokens.len() < 2 {
        return Err(InfluenceError::Device("a text needs 2 tokens".into()));
    }
    let device = model.wte.val().device();
    let t = tokens.len() - 1;
    let ids = ids_tensor(&[tokens[..t].to_vec()], t, 0, &device);
    let targets = ids_tensor(&[tokens[1..].to_vec()], t, 0, &device);
    let nll = -model.token_log_probs(ids, targets).sum();
    let v: f32 = nll.into_scalar_async().await.map_err(device_err)?;
    Ok(v as f64 / t as f64)
}

/// One retrain's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionRow {
    /// How the removed texts were chosen.
    pub removal: Removal,
    /// Texts removed.
    pub k: usize,
    /// Random draw (0 for the methods).
    pub draw: usize,
    /// The test text.
    pub test: u32,
    /// Its loss under the original final model.
    pub loss_before: f64,
    /// Its loss under the retrained final model.
    pub loss_after: f64,
}

impl DeletionRow {
    /// `loss_after - loss_before`.
    pub fn rise(&self) -> f64 {
        self.loss_after - self.loss_before
    }
}

/// The mean loss rise of one removal at one `k`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionSummary {
    /// How the removed texts were chosen.
    pub removal: Removal,
    /// Texts removed.
    pub k: usize,
    /// Mean loss rise over every row (tests, and draws for random).
    pub mean_rise: f64,
    /// Sample standard deviation of the rise over the rows (0 for one row).
    pub sd_rise: f64,
    /// Smallest and largest per-draw mean (mean over tests of each draw; for a method,
    /// its single "draw": both equal `mean_rise`).
    pub draw_min: f64,
    /// See `draw_min`.
    pub draw_max: f64,
    /// Rows summarised.
    pub n: usize,
}

/// Case deletion's rows and their summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionResult {
    /// Every retrain.
    pub rows: Vec<DeletionRow>,
    /// Per (removal, k), removals in the order first seen, `k` ascending.
    pub summary: Vec<DeletionSummary>,
}

/// Summarise deletion rows.
pub fn deletion_result(rows: Vec<DeletionRow>) -> DeletionResult {
    let mut keys: Vec<(Removal, usize)> = Vec::new();
    for r in &rows {
        if !keys.contains(&(r.removal, r.k)) {
            keys.push((r.removal, r.k));
        }
    }
    let first_seen: Vec<Removal> = keys.iter().fold(Vec::new(), |mut v, (m, _)| {
        if !v.contains(m) {
            v.push(*m);
        }
        v
    });
    keys.sort_by_key(|(m, k)| (first_seen.iter().position(|x| x == m), *k));
    let summary = keys
        .into_iter()
        .map(|(removal, k)| {
            let sel: Vec<&DeletionRow> = rows
                .iter()
                .filter(|r| r.removal == removal && r.k == k)
                .collect();
            let n = sel.len();
            let rises: Vec<f64> = sel.iter().map(|r| r.rise()).collect();
            let mean = rises.iter().sum::<f64>() / n.max(1) as f64;
            let sd = if n > 1 {
                (rises.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else {
                0.0
            };
            let mut by_draw: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
            for r in &sel {
                let e = by_draw.entry(r.draw).or_insert((0.0, 0));
                e.0 += r.rise();
                e.1 += 1;
            }
            let draw_means: Vec<f64> = by_draw.values().map(|(s, c)| s / *c as f64).collect();
            DeletionSummary {
                removal,
                k,
                mean_rise: mean,
                sd_rise: sd,
                draw_min: draw_means.iter().copied().fold(f64::INFINITY, f64::min),
                draw_max: draw_means.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                n,
            }
        })
        .collect();
    DeletionResult { rows, summary }
}

/// The test texts' losses under the final weights (`final_ck`), on `device`: the
/// `loss_before` of every deletion row.
pub async fn losses_before(
    final_ck: &Checkpoint,
    corpus: &Corpus,
    tests: &[u32],
    device: &Device,
) -> Result<HashMap<u32, f64>, InfluenceError> {
    let model = Gpt::from_checkpoint(final_ck, &device.clone().autodiff())?;
    let mut out = HashMap::new();
    for &id in tests {
        let tokens = corpus.get(id).map(|i| i.tokens.clone()).unwrap_or_default();
        out.insert(id, text_loss(&model, &tokens).await?);
    }
    Ok(out)
}

/// Case deletion as a step machine: one optimiser step of the current retrain per
/// [`DeletionRun::step`], so a shell can yield and cancel between steps. Retrains that
/// remove the same texts give the same model, so each removed set is trained once and
/// every job that removes it is measured on that model. [`DeletionRun::result`] works
/// from however many jobs are done (a cancelled run keeps them).
pub struct DeletionRun {
    spec: ExperimentSpec,
    corpus: Corpus,
    plan: DeletionPlan,
    device: Device,
    before: HashMap<u32, f64>,
    models: HashMap<Vec<u32>, Gpt>,
    trainer: Option<Trainer>,
    rows: Vec<DeletionRow>,
}

impl DeletionRun {
    /// A run of `plan`; the losses before come from the original final weights
    /// (`final_ck`).
    pub async fn new(
        spec: &ExperimentSpec,
        corpus: &Corpus,
        plan: DeletionPlan,
        final_ck: &Checkpoint,
        device: &Device,
    ) -> Result<Self, InfluenceError> {
        let before = losses_before(final_ck, corpus, &plan.tests, device).await?;
        Ok(DeletionRun {
            spec: spec.clone(),
            corpus: corpus.clone(),
            plan,
            device: device.clone(),
            before,
            models: HashMap::new(),
            trainer: None,
            rows: Vec::new(),
        })
    }

    /// Jobs done, and in all.
    pub fn progress(&self) -> (usize, usize) {
        (self.rows.len(), self.plan.jobs.len())
    }

    /// Whether every job is done.
    pub fn is_done(&self) -> bool {
        self.rows.len() == self.plan.jobs.len()
    }

    /// One optimiser step of the retrain the next job needs, then measure every job whose
    /// model is there. Returns the progress; does nothing once done.
    pub async fn step(&mut self) -> Result<(usize, usize), InfluenceError> {
        let Some(job) = self.plan.jobs.get(self.rows.len()).cloned() else {
            return Ok(self.progress());
        };
        if !self.models.contains_key(&job.removed) {
            if self.trainer.is_none() {
                self.trainer = Some(deletion_trainer(
                    &self.spec,
                    &self.corpus,
                    &job,
                    self.device.clone(),
                )?);
            }
            if let Some(trainer) = self.trainer.as_mut()
                && trainer.step().await?.is_some()
            {
                return Ok(self.progress());
            }
            if let Some(trainer) = self.trainer.take() {
                self.models
                    .insert(job.removed.clone(), trainer.model().clone());
            }
        }
        while let Some(job) = self.plan.jobs.get(self.rows.len()) {
            let Some(model) = self.models.get(&job.removed) else {
                break;
            };
            let tokens = self
                .corpus
                .get(job.test)
                .map(|x| x.tokens.clone())
                .unwrap_or_default();
            let loss_after = text_loss(model, &tokens).await?;
            self.rows.push(DeletionRow {
                removal: job.removal,
                k: job.k,
                draw: job.draw,
                test: job.test,
                loss_before: self.before.get(&job.test).copied().unwrap_or(f64::NAN),
                loss_after,
            });
        }
        Ok(self.progress())
    }

    /// The rows done so far and their summaries.
    pub fn result(&self) -> DeletionResult {
        deletion_result(self.rows.clone())
    }
}

/// Run every job of `plan` on this thread ([`DeletionRun`] driven to the end), reporting
/// `(jobs done, jobs)` whenever a job is done; `on_progress` returning `Break` stops
/// early with the rows done so far.
#[cfg(not(target_family = "wasm"))]
pub fn run_deletion_blocking(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    plan: &DeletionPlan,
    final_ck: &Checkpoint,
    device: &Device,
    mut on_progress: impl FnMut(usize, usize) -> std::ops::ControlFlow<()>,
) -> Result<DeletionResult, InfluenceError> {
    let mut run = block_on(DeletionRun::new(
        spec,
        corpus,
        plan.clone(),
        final_ck,
        device,
    ))?;
    let mut reported = 0;
    while !run.is_done() {
        let (done, total) = block_on(run.step())?;
        if done > reported {
            reported = done;
            if on_progress(done, total).is_break() {
                break;
            }
        }
    }
    Ok(run.result())
}
