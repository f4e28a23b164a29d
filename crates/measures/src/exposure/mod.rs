//! Canary exposure (the Secret Sharer, Carlini et al. 2019; METHODS.md section 7).
//!
//! The training data holds the secrets of a [`CanarySet`] (one format, several canaries,
//! each inserted its own number of times). After training, every candidate of the
//! format's space `R` (exact ranking, up to `exposure.exact_limit` candidates) or a
//! uniform sample of it (extrapolation) is scored by its **log-perplexity**: the bits
//! `-sum log2 p(token | everything before)` of the candidate's tokens after the format's
//! fixed prefix (the prefix is the same for every candidate, so its tokens change no
//! rank; the end-of-text token is not scored). Each secret is then ranked among the
//! candidates that are **not another canary's secret** (with several canaries in one run,
//! the other secrets are memorised too and would otherwise take the first ranks), so its
//! space has `|R| - (canaries - 1)` candidates; [`rank`] holds the rank, the exposure and
//! the extrapolation.
//!
//! [`ExposureRun`] is a step machine: one batch of candidates per [`ExposureRun::step`],
//! so the worker can post progress and answer Cancel between batches; the result is
//! computed by [`ExposureRun::finish`]. Every read of a tensor is asynchronous, so the
//! same code runs on WebGPU.

pub mod forget;
pub mod rank;

use mnemo_core::burn::tensor::Tensor;
use mnemo_core::corpus::{CorpusError, exposure_canaries};
use mnemo_core::rng::{self, Stream};
use mnemo_core::spec::exposure::CanaryFormat;
pub use mnemo_core::spec::exposure::ExposureMethod;
use mnemo_core::spec::{CanarySet, ExposureSpec, SpecError};
use mnemo_core::train::token_batch;
use mnemo_core::{Corpus, ExperimentSpec, Gpt, TokenizerError};
use rand::Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use rank::{SkewNormal, exact_rank, exposure, extrapolate};

/// Bins of the log-perplexity histogram.
pub const HISTOGRAM_BINS: usize = 40;

/// Why exposure could not be measured.
#[derive(Debug, Error)]
pub enum ExposureError {
    /// The spec has no `data.canaries`.
    #[error("the spec has no canaries (data.canaries): exposure ranks the secrets inserted there")]
    NoCanaries,
    /// The settings are out of range or inconsistent.
    #[error("{0}")]
    Settings(#[from] SpecError),
    /// The corpus could not be built.
    #[error("{0}")]
    Corpus(#[from] CorpusError),
    /// The model's corpus does not hold the spec's canaries.
    #[error("the model was trained without these canaries: train it on the spec's data first")]
    NotTrainedOn,
    /// A candidate the tokenizer cannot write.
    #[error("a candidate cannot be tokenized: {0}")]
    Tokenizer(#[from] TokenizerError),
    /// Candidates of different token lengths (a tokenizer that merges characters).
    #[error(
        "the candidates have different token lengths ({0} and {1}); exposure needs a \
         tokenizer with one token per character (byte, char or tinymem)"
    )]
    Ragged(usize, usize),
    /// Candidates longer than the model's context.
    #[error("a candidate has {0} tokens, more than the model's context of {1}")]
    TooLong(usize, usize),
    /// The extrapolation's fit failed.
    #[error("{0}")]
    Fit(#[from] rank::FitError),
    /// A read back from the device failed.
    #[error("device: {0}")]
    Device(String),
    /// The unlearning method before a measurement failed (or was cancelled).
    #[error("unlearning: {0}")]
    Unlearn(#[from] crate::unlearn::UnlearnError),
    /// An unlearning method that trains, asked to edit an exposure model.
    #[error(
        "{0} trains the model; after exposure, only the methods that edit weights run \
         (neuron and weight methods)"
    )]
    Trains(&'static str),
}

/// A candidate and its log-perplexity (bits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The candidate, written out.
    pub text: String,
    /// Its log-perplexity, in bits.
    pub log_perplexity: f64,
}

/// One canary's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryExposure {
    /// Its position in the set (0-based).
    pub canary: usize,
    /// Its text (the secret written in the format).
    pub text: String,
    /// Copies in the training data.
    pub repetitions: u32,
    /// Its log-perplexity, in bits.
    pub log_perplexity: f64,
    /// Its rank among `candidates` (exact: a whole number; extrapolated: an estimate,
    /// at least 1).
    pub rank: f64,
    /// The candidates it is ranked among: `|R|` less the other canaries' secrets.
    pub candidates: f64,
    /// `log2 candidates - log2 rank`.
    pub exposure: f64,
    /// The most likely candidates ranked above it (at most `exposure.top`; from the
    /// sample when extrapolated), most likely first.
    pub above: Vec<Candidate>,
}

/// A histogram of the scored candidates' log-perplexities (the canaries' secrets not
/// among them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The left edge of the first bin, in bits.
    pub lo: f64,
    /// Bin width, in bits.
    pub width: f64,
    /// Candidates per bin.
    pub counts: Vec<u64>,
}

/// The result of an exposure measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExposureResult {
    /// The format.
    pub format: String,
    /// `|R|`.
    pub space: f64,
    /// `log2 |R|`: the largest exposure.
    pub max_exposure: f64,
    /// Exact or extrapolated (never auto).
    pub method: ExposureMethod,
    /// Candidates scored (the secrets included).
    pub scored: usize,
    /// One per canary, in the set's order.
    pub canaries: Vec<CanaryExposure>,
    /// The fitted distribution (extrapolation only).
    pub fit: Option<SkewNormal>,
    /// The scored candidates' log-perplexities.
    pub histogram: Histogram,
}

impl ExposureResult {
    /// `exposure.csv`: `canary,repetitions,rank,candidates,exposure,method`.
    pub fn csv(&self) -> Result<String, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "canary",
            "repetitions",
            "rank",
            "candidates",
            "exposure",
            "method",
        ])?;
        for c in &self.canaries {
            w.write_record([
                c.text.clone(),
                c.repetitions.to_string(),
                format_rank(c.rank),
                format!("{}", c.candidates),
                format!("{:.6}", c.exposure),
                self.method.key().to_string(),
            ])?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A rank as written: a whole number when it is one, else 3 significant decimals.
pub fn format_rank(rank: f64) -> String {
    if rank.fract() == 0.0 && rank < 1e15 {
        format!("{rank:.0}")
    } else {
        format!("{rank:.3}")
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposureProgress {
    /// Candidates scored.
    pub done: usize,
    /// Candidates to score.
    pub total: usize,
}

/// What is scored: every candidate, or the secrets then a sample.
enum Plan {
    /// Candidates `0..n`, in order.
    All(usize),
    /// These candidates, in order (the secrets first).
    Listed(Vec<u128>),
}

impl Plan {
    fn len(&self) -> usize {
        match self {
            Plan::All(n) => *n,
            Plan::Listed(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> u128 {
        match self {
            Plan::All(_) => i as u128,
            Plan::Listed(v) => v[i],
        }
    }
}

/// The canaries `set` draws with `seed` (index in the space, text), checked to be the
/// ones `corpus` was built with.
pub(crate) fn trained_canaries(
    set: &CanarySet,
    seed: u64,
    corpus: &Corpus,
) -> Result<Vec<(u128, String)>, ExposureError> {
    let drawn = exposure_canaries(set, seed)?;
    let trained = corpus.canaries.iter().map(|c| c.text.as_str());
    if !trained.eq(drawn.iter().map(|(_, t)| t.as_str())) {
        return Err(ExposureError::NotTrainedOn);
    }
    Ok(drawn)
}

/// The exposure measurement as a step machine (see the module).
pub struct ExposureRun {
    model: Gpt,
    corpus_pad: u32,
    tokenizer: mnemo_core::Tokenizer,
    format: CanaryFormat,
    set: CanarySet,
    settings: ExposureSpec,
    secrets: Vec<u128>,
    plan: Plan,
    /// Log-perplexity (bits) of each planned candidate scored so far.
    scores: Vec<f64>,
    /// Tokens before the first scored target (BOS and the format's prefix).
    skip: usize,
    /// Tokens per candidate, BOS included.
    len: usize,
}

impl ExposureRun {
    /// Plan the measurement of `spec`'s canaries on `model`, trained on `corpus`.
    pub fn new(spec: &ExperimentSpec, corpus: &Corpus, model: Gpt) -> Result<Self, ExposureError> {
        let set = spec
            .data
            .canaries
            .clone()
            .ok_or(ExposureError::NoCanaries)?;
        let settings = spec.exposure.unwrap_or_default();
        settings.validate()?;
        let format = set.parsed()?;
        let drawn = trained_canaries(&set, spec.seed, corpus)?;
        let secrets: Vec<u128> = drawn.iter().map(|(i, _)| *i).collect();
        let space = format.candidates();
        let plan = if settings.exact_for(space)? {
            Plan::All(space as usize)
        } else {
            let mut rng = rng::stream(spec.seed, Stream::Exposure);
            let mut listed = secrets.clone();
            listed.extend((0..settings.samples).map(|_| rng.random_range(0..space)));
            Plan::Listed(listed)
        };
        let tokenizer = corpus.tokenizer.clone();
        let skip = 1 + tokenizer.encode(format.prefix())?.len();
        let len = 1 + tokenizer.encode(&format.render(0))?.len();
        if len > model.context() + 1 {
            return Err(ExposureError::TooLong(len - 1, model.context()));
        }
        Ok(ExposureRun {
            model,
            corpus_pad: corpus.tokenizer.pad(),
            tokenizer,
            format,
            set,
            settings,
            secrets,
            scores: Vec::with_capacity(plan.len()),
            plan,
            skip,
            len,
        })
    }

    /// Where the run stands.
    pub fn progress(&self) -> ExposureProgress {
        ExposureProgress {
            done: self.scores.len(),
            total: self.plan.len(),
        }
    }

    /// Whether every planned candidate is scored.
    pub fn is_done(&self) -> bool {
        self.scores.len() >= self.plan.len()
    }

    /// Score the next batch of candidates.
    pub async fn step(&mut self) -> Result<ExposureProgress, ExposureError> {
        let start = self.scores.len();
        let end = (start + self.settings.batch.max(1)).min(self.plan.len());
        if start >= end {
            return Ok(self.progress());
        }
        let mut rows = Vec::with_capacity(end - start);
        for i in start..end {
            let text = self.format.render(self.plan.get(i));
            let mut row = Vec::with_capacity(self.len);
            row.push(self.tokenizer.bos());
            row.extend(self.tokenizer.encode(&text)?);
            if row.len() != self.len {
                return Err(ExposureError::Ragged(self.len - 1, row.len() - 1));
            }
            rows.push(row);
        }
        let refs: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
        let device = self.model.wte.val().device();
        let (inputs, targets, _, _) = token_batch(&refs, self.corpus_pad, &device);
        let b = refs.len();
        let t = self.len - 1;
        let logp: Tensor<2> = self.model.token_log_probs(inputs, targets);
        let nats = logp
            .slice([0..b, (self.skip - 1)..t])
            .sum_dim(1)
            .reshape([b]);
        let values = nats
            .into_data_async()
            .await
            .map_err(|e| ExposureError::Device(format!("{e:?}")))?
            .try_into_vec::<f32>()
            .map_err(|e| ExposureError::Device(format!("{e:?}")))?;
        self.scores
            .extend(values.iter().map(|&v| -(v as f64) / std::f64::consts::LN_2));
        Ok(self.progress())
    }

    /// Rank the secrets (every candidate must be scored).
    pub fn finish(self) -> Result<ExposureResult, ExposureError> {
        let space = self.format.candidates() as f64;
        let k = self.secrets.len();
        let exact = matches!(self.plan, Plan::All(_));
        // The secrets' log-perplexities, and those of the other candidates.
        let secret_lp: Vec<f64> = match &self.plan {
            Plan::All(_) => self
                .secrets
                .iter()
                .map(|&s| self.scores[s as usize])
                .collect(),
            Plan::Listed(_) => self.scores[..k].to_vec(),
        };
        let others: Vec<(u128, f64)> = match &self.plan {
            Plan::All(_) => self
                .scores
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as u128, v))
                .filter(|(i, _)| !self.secrets.contains(i))
                .collect(),
            Plan::Listed(v) => v[k..]
                .iter()
                .copied()
                .zip(self.scores[k..].iter().copied())
                .filter(|(i, _)| !self.secrets.contains(i))
                .collect(),
        };
        let candidates = space - (k as f64 - 1.0);
        let fit = if exact {
            None
        } else {
            let values: Vec<f64> = others.iter().map(|(_, v)| *v).collect();
            Some(SkewNormal::fit(&values)?)
        };
        // The most likely others, enough to list `top` above any secret.
        let mut best = others.clone();
        best.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        best.truncate(self.settings.top);
        let canaries = secret_lp
            .iter()
            .enumerate()
            .map(|(c, &lp)| {
                let (rank, exp) = match &fit {
                    None => {
                        let r = exact_rank(lp, others.iter().map(|(_, v)| *v)) as f64;
                        (r, exposure(candidates, r))
                    }
                    Some(f) => {
                        let e = extrapolate(f, lp, candidates);
                        (e.rank, e.exposure)
                    }
                };
                CanaryExposure {
                    canary: c,
                    text: self.format.render(self.secrets[c]),
                    repetitions: self.set.repetitions[c],
                    log_perplexity: lp,
                    rank,
                    candidates,
                    exposure: exp,
                    above: best
                        .iter()
                        .filter(|(_, v)| *v <= lp)
                        .map(|(i, v)| Candidate {
                            text: self.format.render(*i),
                            log_perplexity: *v,
                        })
                        .collect(),
                }
            })
            .collect();
        let histogram = histogram(
            others.iter().map(|(_, v)| *v),
            secret_lp.iter().copied(),
            HISTOGRAM_BINS,
        );
        Ok(ExposureResult {
            format: self.set.format.clone(),
            space,
            max_exposure: self.format.max_exposure(),
            method: if exact {
                ExposureMethod::Exact
            } else {
                ExposureMethod::Extrapolated
            },
            scored: self.scores.len(),
            canaries,
            fit,
            histogram,
        })
    }
}

/// A histogram of `values` in `bins` bins spanning them and `marks` (so every secret
/// lies within its range).
fn histogram(
    values: impl Iterator<Item = f64> + Clone,
    marks: impl Iterator<Item = f64>,
    bins: usize,
) -> Histogram {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.clone().chain(marks).filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return Histogram {
            lo: 0.0,
            width: 1.0,
            counts: vec![0; bins],
        };
    }
    let width = ((hi - lo) / bins as f64).max(1e-9);
    let mut counts = vec![0u64; bins];
    for v in values.filter(|v| v.is_finite()) {
        let b = (((v - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    Histogram { lo, width, counts }
}

/// Run the whole measurement on this thread (the CLI and tests).
#[cfg(not(target_family = "wasm"))]
pub fn measure_blocking(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    model: Gpt,
) -> Result<ExposureResult, ExposureError> {
    let mut run = ExposureRun::new(spec, corpus, model)?;
    while !run.is_done() {
        mnemo_core::train::block_on(run.step())?;
    }
    run.finish()
}
