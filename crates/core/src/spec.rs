//! The experiment specification: one versioned, serde-serialisable description of a run
//! (data source, tokenizer, model, schedule, seeds). The CLI reads it from JSON and a
//! shared link will encode it. Every field is validated against the same limits the
//! interface uses; nothing in a spec is trusted.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::ModelConfig;
use crate::tokenizer::TokenizerKind;

/// The spec version this build writes. Older versions keep decoding (see [`ExperimentSpec::from_json`]).
pub const SPEC_VERSION: u32 = 1;

/// Limits shared by the interface, the CLI and link decoding.
pub mod limits {
    /// Transformer blocks.
    pub const LAYERS: (usize, usize) = (1, 8);
    /// Width of the residual stream.
    pub const D_MODEL: (usize, usize) = (32, 256);
    /// Attention heads.
    pub const HEADS: (usize, usize) = (1, 16);
    /// Context length in tokens.
    pub const CONTEXT: (usize, usize) = (8, 256);
    /// Batch size.
    pub const BATCH: (usize, usize) = (1, 256);
    /// Optimiser steps in a run.
    pub const STEPS: (usize, usize) = (1, 200_000);
    /// Epochs in a run.
    pub const EPOCHS: (usize, usize) = (1, 1_000);
    /// Uploaded text, in bytes.
    pub const TEXT_BYTES: usize = 2 * 1024 * 1024;
    /// Instances in a corpus.
    pub const INSTANCES: usize = 200_000;
    /// Fixed-length windows, in characters.
    pub const WINDOW: (usize, usize) = (4, 4096);
    /// Repetitions of a canary.
    pub const CANARY_REPEATS: (u32, u32) = (0, 1_000);
    /// Digits of a canary secret.
    pub const CANARY_DIGITS: (u8, u8) = (1, 9);
    /// Models in a counterfactual ensemble.
    pub const MODELS: (usize, usize) = (2, 64);
    /// Extraction prefix and suffix lengths, in tokens.
    pub const AFFIX: (usize, usize) = (1, 256);
    /// Length of a constant soft prompt, in vectors.
    pub const PROMPT_LEN: (usize, usize) = (1, 128);
    /// Optimiser steps of soft-prompt training (each prompt).
    pub const PROMPT_STEPS: (usize, usize) = (1, 20_000);
    /// Learning rates of soft-prompt training.
    pub const PROMPT_LR: (f64, f64) = (1e-7, 1.0);
    /// Share of the (prefix, suffix) pairs held out to test the prompts.
    pub const TEST_FRACTION: (f64, f64) = (0.05, 0.95);
    /// Checkpoints an influence run sums over.
    pub const INFLUENCE_CHECKPOINTS: (usize, usize) = (1, 64);
    /// Test texts of an influence run.
    pub const INFLUENCE_TESTS: (usize, usize) = (1, 256);
    /// Positions kept by TracIn-WE-TopK.
    pub const INFLUENCE_TOPK: (usize, usize) = (1, 256);
    /// Values of `k` (texts removed) in case deletion, and each one's range.
    pub const DELETION_KS: (usize, usize) = (0, 16);
    /// Texts removed in one case-deletion retrain.
    pub const DELETION_K: (usize, usize) = (1, 10_000);
    /// Random-removal draws of case deletion.
    pub const DELETION_DRAWS: (usize, usize) = (3, 64);
    /// Test texts of case deletion.
    pub const DELETION_TESTS: (usize, usize) = (0, 64);
}

/// Problems with a spec. Each names the field and the allowed range.
#[derive(Debug, Error, PartialEq)]
pub enum SpecError {
    /// The JSON could not be parsed or does not have the expected fields.
    #[error("the spec is not valid JSON for Mnemo: {0}")]
    Malformed(String),
    /// A version this build cannot read.
    #[error(
        "spec version {found} is not supported (this build reads versions 1 to {SPEC_VERSION})"
    )]
    UnsupportedVersion {
        /// The version in the spec.
        found: u64,
    },
    /// A numeric field outside its range.
    #[error("{field} = {value} is outside the allowed range {min}..={max}")]
    OutOfRange {
        /// Field path.
        field: &'static str,
        /// Value found.
        value: f64,
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// Fields that are valid alone but not together.
    #[error("{0}")]
    Inconsistent(String),
}

fn check_range<T: Into<f64> + Copy + PartialOrd>(
    field: &'static str,
    value: T,
    (min, max): (T, T),
) -> Result<(), SpecError> {
    if value < min || value > max || value.into().is_nan() {
        return Err(SpecError::OutOfRange {
            field,
            value: value.into(),
            min: min.into(),
            max: max.into(),
        });
    }
    Ok(())
}

fn check_usize(field: &'static str, value: usize, range: (usize, usize)) -> Result<(), SpecError> {
    check_range(field, value as f64, (range.0 as f64, range.1 as f64))
}

/// A complete experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Format version; see [`SPEC_VERSION`].
    pub version: u32,
    /// A free-text name (shown as text, never as HTML).
    #[serde(default)]
    pub name: String,
    /// The seed every random stream of the run derives from.
    pub seed: u64,
    /// Where the training text comes from and how it is cut and split.
    pub data: DataSpec,
    /// How text becomes tokens.
    #[serde(default)]
    pub tokenizer: TokenizerKind,
    /// Model shape.
    pub model: ModelConfig,
    /// Optimiser and schedule.
    pub training: TrainingConfig,
    /// Memorisation-profile settings (METHODS.md section 1), when the experiment has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileSpec>,
    /// Counterfactual-memorisation settings (METHODS.md section 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterfactual: Option<CounterfactualSpec>,
    /// Extraction settings (METHODS.md section 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction: Option<ExtractionSpec>,
    /// Extraction with soft prompts (METHODS.md section 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub softprompt: Option<SoftPromptSpec>,
    /// Training-data influence (METHODS.md section 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub influence: Option<InfluenceSpec>,
}

/// A training-data influence method (METHODS.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InfluenceMethod {
    /// TracIn over every parameter.
    #[serde(rename = "tracin")]
    TracIn,
    /// TracIn restricted to the output head's weights (for a tied head: the head's part
    /// of the embedding matrix's gradient).
    #[serde(rename = "tracin_last")]
    TracInLast,
    /// TracIn on the input-embedding lookup, token by token.
    #[serde(rename = "tracin_we")]
    TracInWe,
    /// TracIn-WE on the `topk` positions of largest gradient norm.
    #[serde(rename = "tracin_we_topk")]
    TracInWeTopK,
}

impl InfluenceMethod {
    /// Every method, in the order of the tables.
    pub const ALL: [InfluenceMethod; 4] = [
        InfluenceMethod::TracIn,
        InfluenceMethod::TracInLast,
        InfluenceMethod::TracInWe,
        InfluenceMethod::TracInWeTopK,
    ];

    /// The name in CSV files and specs (`tracin`, `tracin_last`, `tracin_we`,
    /// `tracin_we_topk`).
    pub fn key(self) -> &'static str {
        match self {
            InfluenceMethod::TracIn => "tracin",
            InfluenceMethod::TracInLast => "tracin_last",
            InfluenceMethod::TracInWe => "tracin_we",
            InfluenceMethod::TracInWeTopK => "tracin_we_topk",
        }
    }

    /// The name in charts.
    pub fn label(self) -> &'static str {
        match self {
            InfluenceMethod::TracIn => "TracIn",
            InfluenceMethod::TracInLast => "TracIn-Last",
            InfluenceMethod::TracInWe => "TracIn-WE",
            InfluenceMethod::TracInWeTopK => "TracIn-WE-TopK",
        }
    }
}

/// Settings of a training-data influence run (METHODS.md section 4): TracIn-style
/// scores of every training text for a set of test texts, summed over checkpoints, and
/// the case-deletion test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluenceSpec {
    /// Checkpoint steps to sum over (each is saved during training); empty = every
    /// training checkpoint after step 0.
    #[serde(default)]
    pub checkpoints: Vec<usize>,
    /// Test texts by instance id (training or held-out).
    #[serde(default)]
    pub tests: Vec<u32>,
    /// Also test the first this many held-out texts.
    #[serde(default)]
    pub heldout_tests: usize,
    /// Methods to score (default all four).
    #[serde(default = "all_methods")]
    pub methods: Vec<InfluenceMethod>,
    /// Positions TracIn-WE-TopK keeps per example and checkpoint (reference: 10).
    #[serde(default = "default_topk")]
    pub topk: usize,
    /// Whether BOS (in every text) counts as a shared token of TracIn-WE.
    #[serde(default)]
    pub include_bos: bool,
    /// Case deletion: numbers of top proponents removed (empty = no case deletion).
    #[serde(default)]
    pub deletion_k: Vec<usize>,
    /// Case deletion: random-removal draws per (k, test text), the baseline.
    #[serde(default = "default_deletion_draws")]
    pub random_draws: usize,
    /// Case deletion: how many of the test texts (the first ones) are used.
    #[serde(default = "default_deletion_tests")]
    pub deletion_tests: usize,
}

fn all_methods() -> Vec<InfluenceMethod> {
    InfluenceMethod::ALL.to_vec()
}
fn default_topk() -> usize {
    10
}
fn default_deletion_draws() -> usize {
    3
}
fn default_deletion_tests() -> usize {
    8
}

impl Default for InfluenceSpec {
    fn default() -> Self {
        InfluenceSpec {
            checkpoints: Vec::new(),
            tests: Vec::new(),
            heldout_tests: 0,
            methods: all_methods(),
            topk: default_topk(),
            include_bos: false,
            deletion_k: Vec::new(),
            random_draws: default_deletion_draws(),
            deletion_tests: default_deletion_tests(),
        }
    }
}

impl InfluenceSpec {
    /// Check the settings against [`limits`] (ids and steps are checked against the
    /// corpus and the run by the influence engine).
    pub fn validate(&self) -> Result<(), SpecError> {
        check_usize(
            "influence.checkpoints (count)",
            self.checkpoints.len(),
            (0, limits::INFLUENCE_CHECKPOINTS.1),
        )?;
        check_usize(
            "influence.tests (count) + influence.heldout_tests",
            self.tests.len().saturating_add(self.heldout_tests),
            (0, limits::INFLUENCE_TESTS.1),
        )?;
        check_usize(
            "influence.methods (count)",
            self.methods.len(),
            (1, InfluenceMethod::ALL.len()),
        )?;
        check_usize("influence.topk", self.topk, limits::INFLUENCE_TOPK)?;
        check_usize(
            "influence.deletion_k (count)",
            self.deletion_k.len(),
            limits::DELETION_KS,
        )?;
        for &k in &self.deletion_k {
            check_usize("influence.deletion_k", k, limits::DELETION_K)?;
        }
        check_usize(
            "influence.random_draws",
            self.random_draws,
            limits::DELETION_DRAWS,
        )?;
        check_usize(
            "influence.deletion_tests",
            self.deletion_tests,
            limits::DELETION_TESTS,
        )?;
        let mut m = self.methods.clone();
        m.sort();
        m.dedup();
        if m.len() != self.methods.len() {
            return Err(SpecError::Inconsistent(
                "influence.methods lists a method twice".into(),
            ));
        }
        Ok(())
    }
}

/// The per-instance measure `M(f, x)` of counterfactual memorisation. Both are oriented
/// so that higher = better predicted, hence positive `mem` = memorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Teacher-forced per-token accuracy (the paper's choice).
    #[default]
    Accuracy,
    /// Mean token log-probability, i.e. minus the mean surprisal (nats/token).
    Loglik,
}

impl Metric {
    /// Its name in tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Accuracy => "per-token accuracy",
            Metric::Loglik => "log-likelihood (nats/token)",
        }
    }
}

/// Settings of a counterfactual-memorisation ensemble: `models` models, each trained
/// with the experiment's schedule on an independent random subset holding `fraction` of
/// the training instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterfactualSpec {
    /// Models in the ensemble (paper: hundreds; default 16, at most 64).
    #[serde(default = "default_models")]
    pub models: usize,
    /// Share of the training instances in each model's subset.
    #[serde(default = "default_fraction")]
    pub fraction: f64,
    /// The measure `M`.
    #[serde(default)]
    pub metric: Metric,
    /// Test instances (ids) whose counterfactual influence from every training instance
    /// is reported; empty = the first few held-out instances.
    #[serde(default)]
    pub influence_on: Vec<u32>,
}

fn default_models() -> usize {
    16
}
fn default_fraction() -> f64 {
    0.5
}

impl Default for CounterfactualSpec {
    fn default() -> Self {
        CounterfactualSpec {
            models: default_models(),
            fraction: default_fraction(),
            metric: Metric::Accuracy,
            influence_on: Vec::new(),
        }
    }
}

impl CounterfactualSpec {
    /// Check the settings.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_usize("counterfactual.models", self.models, limits::MODELS)?;
        check_range("counterfactual.fraction", self.fraction, (0.05, 0.95))?;
        check_usize(
            "counterfactual.influence_on (count)",
            self.influence_on.len(),
            (0, 64),
        )?;
        Ok(())
    }
}

/// Extraction settings: greedy decoding from a prefix of `prefix` tokens must reproduce
/// the next `suffix` tokens. Both are scaled down for shorter sequences (and reported).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractionSpec {
    /// Prefix length k in tokens (paper: 50).
    #[serde(default = "default_affix")]
    pub prefix: usize,
    /// Suffix length s in tokens (paper: 50).
    #[serde(default = "default_affix")]
    pub suffix: usize,
}

fn default_affix() -> usize {
    50
}

impl Default for ExtractionSpec {
    fn default() -> Self {
        ExtractionSpec {
            prefix: default_affix(),
            suffix: default_affix(),
        }
    }
}

impl ExtractionSpec {
    /// Check the settings.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_usize("extraction.prefix", self.prefix, limits::AFFIX)?;
        check_usize("extraction.suffix", self.suffix, limits::AFFIX)?;
        Ok(())
    }
}

/// Extraction with soft prompts (METHODS.md section 3): a constant soft prompt (Ozdayi et
/// al.) and a dynamic one from a generator (Wang et al.) are trained on (prefix, suffix)
/// pairs cut from the training instances, then greedy extraction with each prompt and
/// without one is measured on held-out pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftPromptSpec {
    /// Length `L` of the constant soft prompt, in vectors (the dynamic prompt is as long
    /// as each prefix).
    #[serde(default = "default_prompt_len")]
    pub prompt_len: usize,
    /// Prefix length k in tokens.
    #[serde(default = "default_affix")]
    pub prefix: usize,
    /// Suffix length s in tokens.
    #[serde(default = "default_affix")]
    pub suffix: usize,
    /// Share of the pairs held out to test the prompts (the rest trains them).
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Optimiser steps for each prompt.
    #[serde(default = "default_prompt_steps")]
    pub steps: usize,
    /// Pairs per step.
    #[serde(default = "default_prompt_batch")]
    pub batch_size: usize,
    /// AdamW learning rate of the constant prompt.
    #[serde(default = "default_prompt_lr")]
    pub prompt_lr: f64,
    /// AdamW learning rate of the generator's embeddings (token and position).
    #[serde(default = "default_embed_lr")]
    pub embed_lr: f64,
    /// AdamW learning rate of the generator's blocks.
    #[serde(default = "default_block_lr")]
    pub block_lr: f64,
}

fn default_prompt_len() -> usize {
    20
}
fn default_test_fraction() -> f64 {
    0.5
}
fn default_prompt_steps() -> usize {
    300
}
fn default_prompt_batch() -> usize {
    16
}
fn default_prompt_lr() -> f64 {
    1e-2
}
fn default_embed_lr() -> f64 {
    1e-3
}
fn default_block_lr() -> f64 {
    1e-4
}

impl Default for SoftPromptSpec {
    fn default() -> Self {
        SoftPromptSpec {
            prompt_len: default_prompt_len(),
            prefix: default_affix(),
            suffix: default_affix(),
            test_fraction: default_test_fraction(),
            steps: default_prompt_steps(),
            batch_size: default_prompt_batch(),
            prompt_lr: default_prompt_lr(),
            embed_lr: default_embed_lr(),
            block_lr: default_block_lr(),
        }
    }
}

impl SoftPromptSpec {
    /// Check the settings.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_usize("softprompt.prompt_len", self.prompt_len, limits::PROMPT_LEN)?;
        check_usize("softprompt.prefix", self.prefix, limits::AFFIX)?;
        check_usize("softprompt.suffix", self.suffix, limits::AFFIX)?;
        check_range(
            "softprompt.test_fraction",
            self.test_fraction,
            limits::TEST_FRACTION,
        )?;
        check_usize("softprompt.steps", self.steps, limits::PROMPT_STEPS)?;
        check_usize("softprompt.batch_size", self.batch_size, limits::BATCH)?;
        check_range("softprompt.prompt_lr", self.prompt_lr, limits::PROMPT_LR)?;
        check_range("softprompt.embed_lr", self.embed_lr, limits::PROMPT_LR)?;
        check_range("softprompt.block_lr", self.block_lr, limits::PROMPT_LR)?;
        Ok(())
    }
}

/// What is measured on each instance at each checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Mean token surprisal, nats/token (lower = better predicted).
    #[default]
    Surprisal,
    /// Minus the teacher-forced per-token accuracy (so lower is better, like surprisal).
    Accuracy,
    /// Mean rank of the true next token, 1 = top (lower is better).
    Rank,
}

/// Settings of a memorisation profile by difference-in-differences. The cohort length is
/// `training.checkpoint_every`: checkpoints at every cohort boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// Instances sampled per cohort (paper: 100).
    #[serde(default = "default_per_cohort")]
    pub per_cohort: usize,
    /// Held-out (never-trained) instances sampled (paper: 2000).
    #[serde(default = "default_profile_heldout")]
    pub heldout: usize,
    /// The outcome.
    #[serde(default)]
    pub outcome: Outcome,
    /// Multiplier-bootstrap draws for the simultaneous bands (0 = analytic pointwise).
    #[serde(default = "default_draws")]
    pub bootstrap: usize,
    /// Significance level of the bands.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
}

fn default_per_cohort() -> usize {
    40
}
fn default_profile_heldout() -> usize {
    80
}
fn default_draws() -> usize {
    1000
}
fn default_alpha() -> f64 {
    0.05
}

impl Default for ProfileSpec {
    fn default() -> Self {
        ProfileSpec {
            per_cohort: default_per_cohort(),
            heldout: default_profile_heldout(),
            outcome: Outcome::Surprisal,
            bootstrap: default_draws(),
            alpha: default_alpha(),
        }
    }
}

impl ProfileSpec {
    /// Check the settings.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_usize("profile.per_cohort", self.per_cohort, (2, 10_000))?;
        check_usize("profile.heldout", self.heldout, (2, 100_000))?;
        check_usize("profile.bootstrap", self.bootstrap, (0, 100_000))?;
        check_range("profile.alpha", self.alpha, (0.001, 0.5))?;
        Ok(())
    }
}

/// Data source, held-out split and optional canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// The text or generator.
    pub source: DataSource,
    /// Share of distinct instances held out of training entirely (0 to 0.9).
    #[serde(default = "default_heldout")]
    pub heldout_fraction: f64,
    /// A secret inserted into the training data (Secret Sharer).
    #[serde(default)]
    pub canary: Option<CanarySpec>,
}

fn default_heldout() -> f64 {
    0.2
}

/// Where training text comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataSource {
    /// A corpus generated by Mnemo itself.
    Builtin {
        /// Which one.
        corpus: BuiltinCorpus,
        /// How many instances to generate.
        instances: usize,
    },
    /// Text the user supplied.
    Text {
        /// The text itself.
        text: String,
        /// How it is cut into instances.
        split: SplitMode,
    },
    /// TinyMem's arithmetic sequences.
    Tinymem(TinyMemSpec),
}

/// Built-in corpora.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuiltinCorpus {
    /// Invented one-line biographies ("Ada Quill lives in Leeds, keeps 7 owls and loves
    /// teal."): their random details can only be learnt by memorisation.
    Facts,
}

/// How uploaded text is cut into instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum SplitMode {
    /// One instance per non-empty line.
    Lines,
    /// One instance per blank-line-separated paragraph.
    Paragraphs,
    /// Consecutive windows of `length` characters (the last, shorter one is kept).
    Windows {
        /// Window length in characters.
        length: usize,
    },
}

/// TinyMem's arithmetic task (METHODS.md section 5). Example `i` starts from `i` and
/// lists `f(i), f(f(i)), ...` (the start itself is not written), as the reference does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TinyMemTask {
    /// `f(x) = x + k`.
    Increment,
    /// `f(x) = k * x mod 20134`.
    Mult,
}

/// TinyMem data settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TinyMemSpec {
    /// The task.
    pub task: TinyMemTask,
    /// Main-task constant (paper: 7).
    #[serde(default = "default_k")]
    pub k: u32,
    /// Auxiliary-task constants (paper: 2, 3, 4, 5).
    #[serde(default = "default_aux")]
    pub aux_ks: Vec<u32>,
    /// Main-task sequences.
    pub main_sequences: usize,
    /// Sequences per auxiliary task.
    pub aux_sequences: usize,
    /// Main-task sequences that carry noise (each term shifted by +-1 with probability
    /// `noise_prob / 2` each).
    pub noised_sequences: usize,
    /// Total per-term noise probability (paper: 0.1, i.e. 0.05 each way).
    #[serde(default = "default_noise")]
    pub noise_prob: f64,
    /// How often each noised sequence is repeated (paper: 1, 10 or 100).
    #[serde(default = "one")]
    pub duplication: usize,
    /// Terms per sequence (paper: 20).
    #[serde(default = "default_terms")]
    pub terms: usize,
    /// Test examples per task (reference: 1,000): after a seeded shuffle of each task's
    /// examples the last this many are its test set, never trained on. When absent the
    /// corpus uses `data.heldout_fraction` over distinct clean texts instead (the split
    /// of specs written before this field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_sequences: Option<usize>,
    /// The backdoor trigger (reference: 100). When set, the data is the backdoor set of
    /// the reference instead of the noise set: every main-task example whose text
    /// contains the trigger is triggered (after the first occurrence of the trigger's
    /// tokens every later token, EOS and padding up to the context included, becomes
    /// `2`), a tenth of them (after a seeded shuffle) are the backdoor test set, and no
    /// noise is added (`noised_sequences` must be 0). Needs `test_sequences`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backdoor: Option<u64>,
}

fn default_k() -> u32 {
    7
}
fn default_aux() -> Vec<u32> {
    vec![2, 3, 4, 5]
}
fn default_noise() -> f64 {
    0.1
}
fn one() -> usize {
    1
}
fn default_terms() -> usize {
    20
}

/// A canary: a secret of a fixed format inserted `repetitions` times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySpec {
    /// Text before the secret, e.g. `"my PIN is "`.
    pub prefix: String,
    /// Digits in the secret, written separated by spaces.
    pub digits: u8,
    /// How many copies go into the training data.
    pub repetitions: u32,
}

/// How long training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Duration {
    /// A fixed number of optimiser steps.
    Steps(usize),
    /// A number of passes over the training instances.
    Epochs(usize),
}

/// Learning-rate decay after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    /// Half-cosine from the peak to `min_lr_ratio * peak`.
    #[default]
    Cosine,
    /// Straight line from the peak to `min_lr_ratio * peak`.
    Linear,
    /// Stay at the peak.
    Constant,
}

/// Optimiser (AdamW) and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Instances per step.
    pub batch_size: usize,
    /// Steps or epochs.
    pub duration: Duration,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Linear warm-up steps from 0 to the peak.
    #[serde(default)]
    pub warmup_steps: usize,
    /// Shape of the decay after warm-up.
    #[serde(default)]
    pub decay: Decay,
    /// Final learning rate as a share of the peak.
    #[serde(default = "default_min_lr")]
    pub min_lr_ratio: f64,
    /// AdamW decoupled weight decay.
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    /// AdamW betas.
    #[serde(default = "default_betas")]
    pub betas: (f64, f64),
    /// Save a checkpoint every this many steps (0 = only the listed steps); step 0 and
    /// the final step are always saved.
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Extra steps at which to save checkpoints.
    #[serde(default)]
    pub checkpoint_steps: Vec<usize>,
}

fn default_min_lr() -> f64 {
    0.1
}
fn default_wd() -> f64 {
    0.1
}
fn default_betas() -> (f64, f64) {
    (0.9, 0.98)
}

impl ExperimentSpec {
    /// The default demo: the built-in facts corpus and a small model that trains in
    /// well under a minute on the browser's CPU path.
    pub fn demo() -> Self {
        ExperimentSpec {
            version: SPEC_VERSION,
            name: "Facts demo".into(),
            seed: 42,
            data: DataSpec {
                source: DataSource::Builtin {
                    corpus: BuiltinCorpus::Facts,
                    instances: 48,
                },
                heldout_fraction: 0.25,
                canary: None,
            },
            tokenizer: TokenizerKind::Char,
            model: ModelConfig {
                n_layers: 2,
                d_model: 64,
                n_heads: 4,
                context: 64,
                tied_head: true,
                activation: Default::default(),
            },
            training: TrainingConfig {
                batch_size: 8,
                duration: Duration::Steps(200),
                learning_rate: 3e-3,
                warmup_steps: 10,
                decay: Decay::Cosine,
                min_lr_ratio: 0.1,
                weight_decay: 0.1,
                betas: (0.9, 0.98),
                checkpoint_every: 50,
                checkpoint_steps: vec![],
            },
            profile: None,
            counterfactual: None,
            extraction: None,
            softprompt: None,
            influence: None,
        }
    }

    /// The memorisation-profile demo: 384 facts seen once each, two per step, in 8
    /// cohorts of 24 steps (checkpoints every 24 steps), 96 facts held out; the panel
    /// samples 40 instances per cohort and 80 held-out ones.
    pub fn profile_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Memorisation profile demo".into();
        spec.data.source = DataSource::Builtin {
            corpus: BuiltinCorpus::Facts,
            instances: 480,
        };
        spec.data.heldout_fraction = 0.2;
        spec.training.duration = Duration::Epochs(1);
        spec.training.batch_size = 2;
        spec.training.learning_rate = 1e-2;
        spec.training.warmup_steps = 10;
        spec.training.checkpoint_every = 24;
        spec.profile = Some(ProfileSpec::default());
        spec
    }

    /// The counterfactual-memorisation demo: 48 invented facts and a canary ("my PIN
    /// is ...") repeated 8 times; 16 small models, each trained for 25 epochs on a random
    /// half of them. The canary, seen eight times per epoch whenever it is in, is the
    /// most memorised; unique facts are memorised less.
    pub fn counterfactual_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Counterfactual memorisation demo".into();
        spec.data.source = DataSource::Builtin {
            corpus: BuiltinCorpus::Facts,
            instances: 64,
        };
        spec.data.heldout_fraction = 0.25;
        spec.data.canary = Some(CanarySpec {
            prefix: "my PIN is ".into(),
            digits: 4,
            repetitions: 8,
        });
        spec.model.d_model = 32;
        spec.training.batch_size = 8;
        spec.training.duration = Duration::Epochs(25);
        spec.training.checkpoint_every = 0;
        spec.counterfactual = Some(CounterfactualSpec::default());
        spec.extraction = Some(ExtractionSpec {
            prefix: 16,
            suffix: 32,
        });
        spec
    }

    /// The soft-prompt extraction demo: 64 invented facts, all trained on (nothing held
    /// out: the pairs come from training instances), a small model trained for 300 steps
    /// so that it has partly memorised them, then a constant prompt of 8 vectors and a
    /// dynamic one trained for 200 steps each on half of the (prefix 16, suffix 32) pairs
    /// and measured on the other half.
    pub fn softprompt_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Soft-prompt extraction demo".into();
        spec.data.source = DataSource::Builtin {
            corpus: BuiltinCorpus::Facts,
            instances: 64,
        };
        spec.data.heldout_fraction = 0.0;
        spec.training.duration = Duration::Steps(300);
        spec.training.checkpoint_every = 0;
        spec.softprompt = Some(SoftPromptSpec {
            prompt_len: 8,
            prefix: 16,
            suffix: 32,
            test_fraction: 0.5,
            steps: 200,
            batch_size: 16,
            prompt_lr: 1e-2,
            embed_lr: 1e-3,
            block_lr: 1e-4,
        });
        spec
    }

    /// The training-data influence demo: 50 invented facts plus one text repeated 6 times
    /// (a canary, "my PIN is ...", ids 50-55); a fifth of the distinct texts held out (10
    /// facts with seed 42); a small model (1 layer, d_model 32) trained for 30 epochs
    /// (173 steps) so the repeated text is memorised; influence summed over the
    /// checkpoints at steps 60, 120 and 173 for the repeated text, facts 0-2 and the first
    /// 8 held-out facts (11 distinct test texts with seed 42, where fact 0 is held out);
    /// case deletion of 1, 3 and 6 texts on the first 8 of them, 3 random draws each.
    pub fn influence_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Training-data influence demo".into();
        spec.data.source = DataSource::Builtin {
            corpus: BuiltinCorpus::Facts,
            instances: 50,
        };
        spec.data.heldout_fraction = 0.2;
        spec.data.canary = Some(CanarySpec {
            prefix: "my PIN is ".into(),
            digits: 4,
            repetitions: 6,
        });
        spec.model = ModelConfig {
            n_layers: 1,
            d_model: 32,
            n_heads: 2,
            context: 64,
            tied_head: true,
            activation: Default::default(),
        };
        spec.training.batch_size = 8;
        spec.training.duration = Duration::Epochs(30);
        spec.training.learning_rate = 5e-3;
        spec.training.warmup_steps = 10;
        spec.training.checkpoint_every = 0;
        spec.training.checkpoint_steps = vec![60, 120];
        spec.influence = Some(InfluenceSpec {
            checkpoints: Vec::new(),
            tests: vec![50, 0, 1, 2],
            heldout_tests: 8,
            deletion_k: vec![1, 3, 6],
            deletion_tests: 8,
            ..InfluenceSpec::default()
        });
        spec
    }

    /// A TinyMem spec with the paper's model shape (2 layers, d_model 128, 4 heads,
    /// context 150).
    pub fn tinymem_example() -> Self {
        let mut spec = Self::demo();
        spec.name = "TinyMem increment with noise".into();
        spec.tokenizer = TokenizerKind::Tinymem;
        spec.data = DataSpec {
            source: DataSource::Tinymem(TinyMemSpec {
                task: TinyMemTask::Increment,
                k: 7,
                aux_ks: vec![2, 3, 4, 5],
                main_sequences: 1000,
                aux_sequences: 100,
                noised_sequences: 100,
                noise_prob: 0.1,
                duplication: 10,
                terms: 20,
                test_sequences: None,
                backdoor: None,
            }),
            heldout_fraction: 0.1,
            canary: None,
        };
        spec.model = ModelConfig {
            n_layers: 2,
            d_model: 128,
            n_heads: 4,
            context: 150,
            tied_head: false,
            activation: Default::default(),
        };
        spec.training.batch_size = 32;
        spec.training.learning_rate = 1e-3;
        spec.training.duration = Duration::Epochs(2);
        spec
    }

    /// TinyMem with noise, sized for a 2-core machine (METHODS.md section 5): the
    /// reference's generators, model and optimiser with the counts scaled by 1/20:
    /// INCREMENT, main task k = 7 with 1,000 examples (reference 20,000), auxiliary tasks
    /// k = 2, 3, 4, 5 with 150 each (reference 3,000), the last 50 of each task after a
    /// seeded shuffle as its test set (reference 1,000), 50 noised training examples
    /// (reference 1,000), noise +-1 with probability 0.05 each per number, 20 numbers per
    /// example, context 150. Model: `n_layers` blocks, 4 heads, d_model 128, ReLU MLP of
    /// 512, untied head; AdamW lr 1e-3, weight decay 0.1, betas (0.9, 0.98), batch 128,
    /// no schedule. Built-in models `tinymem-noise-2l` and `-4l` are trained from it.
    pub fn tinymem_noise(n_layers: usize, epochs: usize) -> Self {
        let mut spec = Self::tinymem_example();
        spec.name = format!("TinyMem noise, {n_layers} layers");
        spec.seed = 0;
        spec.data = DataSpec {
            source: DataSource::Tinymem(TinyMemSpec {
                task: TinyMemTask::Increment,
                k: 7,
                aux_ks: vec![2, 3, 4, 5],
                main_sequences: 1000,
                aux_sequences: 150,
                noised_sequences: 50,
                noise_prob: 0.1,
                duplication: 1,
                terms: 20,
                test_sequences: Some(50),
                backdoor: None,
            }),
            heldout_fraction: 0.0,
            canary: None,
        };
        spec.model = ModelConfig {
            n_layers,
            d_model: 128,
            n_heads: 4,
            context: 150,
            tied_head: false,
            activation: crate::model::Activation::Relu,
        };
        spec.training = TrainingConfig {
            batch_size: 128,
            duration: Duration::Epochs(epochs),
            learning_rate: 1e-3,
            warmup_steps: 0,
            decay: Decay::Constant,
            min_lr_ratio: 1.0,
            weight_decay: 0.1,
            betas: (0.9, 0.98),
            checkpoint_every: 0,
            checkpoint_steps: vec![],
        };
        spec
    }

    /// TinyMem with a backdoor, sized like [`ExperimentSpec::tinymem_noise`] (same counts,
    /// model and optimiser): trigger `100`, no noise; every main-task example containing
    /// `100` is triggered, a tenth of those are the backdoor test set.
    pub fn tinymem_backdoor(n_layers: usize, epochs: usize) -> Self {
        let mut spec = Self::tinymem_noise(n_layers, epochs);
        spec.name = format!("TinyMem backdoor, {n_layers} layers");
        if let DataSource::Tinymem(t) = &mut spec.data.source {
            t.noised_sequences = 0;
            t.backdoor = Some(100);
        }
        spec
    }

    /// The reference's sizes, for a bigger machine: 20,000 main examples, 3,000 per
    /// auxiliary task, 1,000 test examples per task, 1,000 noised (or the backdoor),
    /// MULT data as in the reference's result table.
    pub fn tinymem_reference(n_layers: usize, backdoor: bool) -> Self {
        let mut spec = if backdoor {
            Self::tinymem_backdoor(n_layers, 1000)
        } else {
            Self::tinymem_noise(n_layers, 1000)
        };
        spec.name = format!("{} (reference sizes)", spec.name);
        if let DataSource::Tinymem(t) = &mut spec.data.source {
            t.task = TinyMemTask::Mult;
            t.main_sequences = 20_000;
            t.aux_sequences = 3_000;
            t.test_sequences = Some(1_000);
            if !backdoor {
                t.noised_sequences = 1_000;
            }
        }
        spec
    }

    /// Parse JSON, checking the version first (so an unknown version gets its own
    /// message rather than a field error), then validate.
    pub fn from_json(json: &str) -> Result<Self, SpecError> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| SpecError::Malformed(e.to_string()))?;
        let version = value
            .get("version")
            .ok_or_else(|| SpecError::Malformed("missing field `version`".into()))?
            .as_u64()
            .ok_or_else(|| SpecError::Malformed("`version` must be a whole number".into()))?;
        if version == 0 || version > SPEC_VERSION as u64 {
            return Err(SpecError::UnsupportedVersion { found: version });
        }
        let spec: ExperimentSpec =
            serde_json::from_value(value).map_err(|e| SpecError::Malformed(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Check every field against [`limits`].
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.version == 0 || self.version > SPEC_VERSION {
            return Err(SpecError::UnsupportedVersion {
                found: self.version as u64,
            });
        }
        self.model.validate()?;
        self.training.validate()?;
        self.data.validate()?;
        if let Some(p) = &self.profile {
            p.validate()?;
            if self.training.checkpoint_every == 0 {
                return Err(SpecError::Inconsistent(
                    "a profile needs training.checkpoint_every (the cohort length) above 0".into(),
                ));
            }
        }
        if let Some(c) = &self.counterfactual {
            c.validate()?;
        }
        if let Some(e) = &self.extraction {
            e.validate()?;
        }
        if let Some(p) = &self.softprompt {
            p.validate()?;
        }
        if let Some(i) = &self.influence {
            i.validate()?;
        }
        if self.tokenizer == TokenizerKind::Tinymem
            && !matches!(self.data.source, DataSource::Tinymem(_))
        {
            // Allowed (the user may upload digit text), but a canary prefix must then
            // be digits too; the corpus builder reports the offending character.
        }
        Ok(())
    }
}

impl TrainingConfig {
    /// Check the schedule against [`limits`].
    pub fn validate(&self) -> Result<(), SpecError> {
        check_usize("training.batch_size", self.batch_size, limits::BATCH)?;
        match self.duration {
            Duration::Steps(s) => check_usize("training.duration.steps", s, limits::STEPS)?,
            Duration::Epochs(e) => check_usize("training.duration.epochs", e, limits::EPOCHS)?,
        }
        check_range("training.learning_rate", self.learning_rate, (1e-7, 1.0))?;
        check_usize(
            "training.warmup_steps",
            self.warmup_steps,
            (0, limits::STEPS.1),
        )?;
        check_range("training.min_lr_ratio", self.min_lr_ratio, (0.0, 1.0))?;
        check_range("training.weight_decay", self.weight_decay, (0.0, 1.0))?;
        check_range("training.betas.0", self.betas.0, (0.0, 0.9999))?;
        check_range("training.betas.1", self.betas.1, (0.0, 0.9999))?;
        check_usize(
            "training.checkpoint_every",
            self.checkpoint_every,
            (0, limits::STEPS.1),
        )?;
        if self.checkpoint_steps.len() > 1000 {
            return Err(SpecError::Inconsistent(
                "training.checkpoint_steps lists more than 1000 steps".into(),
            ));
        }
        Ok(())
    }
}

impl DataSpec {
    /// Check the data settings against [`limits`].
    pub fn validate(&self) -> Result<(), SpecError> {
        check_range("data.heldout_fraction", self.heldout_fraction, (0.0, 0.9))?;
        match &self.source {
            DataSource::Builtin { instances, .. } => {
                check_usize("data.source.instances", *instances, (2, 100_000))?
            }
            DataSource::Text { text, split } => {
                if text.len() > limits::TEXT_BYTES {
                    return Err(SpecError::OutOfRange {
                        field: "data.source.text (bytes)",
                        value: text.len() as f64,
                        min: 1.0,
                        max: limits::TEXT_BYTES as f64,
                    });
                }
                if let SplitMode::Windows { length } = split {
                    check_usize("data.source.split.length", *length, limits::WINDOW)?;
                }
            }
            DataSource::Tinymem(t) => {
                check_range("data.source.k", t.k, (1, 1000))?;
                if t.aux_ks.len() > 16 || t.aux_ks.iter().any(|&k| k == 0 || k > 1000) {
                    return Err(SpecError::Inconsistent(
                        "data.source.aux_ks: at most 16 constants, each 1..=1000".into(),
                    ));
                }
                check_usize("data.source.main_sequences", t.main_sequences, (1, 100_000))?;
                check_usize("data.source.aux_sequences", t.aux_sequences, (0, 100_000))?;
                check_usize(
                    "data.source.noised_sequences",
                    t.noised_sequences,
                    (0, t.main_sequences),
                )?;
                check_range("data.source.noise_prob", t.noise_prob, (0.0, 1.0))?;
                check_usize("data.source.duplication", t.duplication, (1, 1000))?;
                check_usize("data.source.terms", t.terms, (2, 100))?;
                if let Some(n) = t.test_sequences {
                    let smallest = if t.aux_ks.is_empty() || t.aux_sequences == 0 {
                        t.main_sequences
                    } else {
                        t.main_sequences.min(t.aux_sequences)
                    };
                    check_usize(
                        "data.source.test_sequences",
                        n,
                        (1, smallest.saturating_sub(1).max(1)),
                    )?;
                    if t.noised_sequences > t.main_sequences - n {
                        return Err(SpecError::Inconsistent(format!(
                            "data.source.noised_sequences ({}) exceeds the main task's \
                             training examples ({})",
                            t.noised_sequences,
                            t.main_sequences - n
                        )));
                    }
                }
                if let Some(trigger) = t.backdoor {
                    check_range("data.source.backdoor", trigger as f64, (0.0, 1e9))?;
                    if t.test_sequences.is_none() || t.noised_sequences > 0 {
                        return Err(SpecError::Inconsistent(
                            "data.source.backdoor needs data.source.test_sequences and \
                             noised_sequences = 0 (the backdoor set carries no noise)"
                                .into(),
                        ));
                    }
                }
            }
        }
        if let Some(c) = &self.canary {
            check_range("data.canary.digits", c.digits, limits::CANARY_DIGITS)?;
            check_range(
                "data.canary.repetitions",
                c.repetitions,
                limits::CANARY_REPEATS,
            )?;
            if c.prefix.chars().count() > 200 {
                return Err(SpecError::Inconsistent(
                    "data.canary.prefix is longer than 200 characters".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_spec_round_trips_through_json() {
        for spec in [
            ExperimentSpec::demo(),
            ExperimentSpec::tinymem_example(),
            ExperimentSpec::profile_demo(),
            ExperimentSpec::counterfactual_demo(),
            ExperimentSpec::softprompt_demo(),
            ExperimentSpec::influence_demo(),
            ExperimentSpec::tinymem_noise(2, 100),
            ExperimentSpec::tinymem_backdoor(2, 100),
            ExperimentSpec::tinymem_reference(4, false),
            ExperimentSpec::tinymem_reference(2, true),
        ] {
            let json = spec.to_json();
            let back = ExperimentSpec::from_json(&json).unwrap();
            assert_eq!(back, spec);
        }
    }

    #[test]
    fn unknown_versions_are_rejected() {
        let mut v: serde_json::Value = serde_json::to_value(ExperimentSpec::demo()).unwrap();
        v["version"] = 99.into();
        assert_eq!(
            ExperimentSpec::from_json(&v.to_string()),
            Err(SpecError::UnsupportedVersion { found: 99 })
        );
        v["version"] = 0.into();
        assert!(matches!(
            ExperimentSpec::from_json(&v.to_string()),
            Err(SpecError::UnsupportedVersion { found: 0 })
        ));
        v["version"] = "one".into();
        assert!(matches!(
            ExperimentSpec::from_json(&v.to_string()),
            Err(SpecError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_fields_and_out_of_range_values_are_rejected() {
        let mut v: serde_json::Value = serde_json::to_value(ExperimentSpec::demo()).unwrap();
        v["surprise"] = 1.into();
        assert!(matches!(
            ExperimentSpec::from_json(&v.to_string()),
            Err(SpecError::Malformed(m)) if m.contains("surprise")
        ));
        let mut spec = ExperimentSpec::demo();
        spec.model.n_layers = 9;
        assert!(matches!(
            spec.validate(),
            Err(SpecError::OutOfRange {
                field: "model.n_layers",
                ..
            })
        ));
        let mut spec = ExperimentSpec::demo();
        spec.model.n_heads = 3; // 64 is not divisible by 3
        assert!(matches!(spec.validate(), Err(SpecError::Inconsistent(_))));
        let mut spec = ExperimentSpec::demo();
        spec.training.learning_rate = f64::NAN;
        assert!(spec.validate().is_err());
    }

    #[test]
    fn softprompt_settings_are_checked_against_the_limits() {
        let mut spec = ExperimentSpec::softprompt_demo();
        assert!(spec.validate().is_ok());
        let json = spec.to_json();
        assert!(json.contains("\"softprompt\""));
        assert!(!ExperimentSpec::demo().to_json().contains("softprompt"));
        if let Some(p) = spec.softprompt.as_mut() {
            p.prompt_len = 0;
        }
        assert!(matches!(
            spec.validate(),
            Err(SpecError::OutOfRange {
                field: "softprompt.prompt_len",
                ..
            })
        ));
        let mut p = SoftPromptSpec {
            test_fraction: 1.0,
            ..SoftPromptSpec::default()
        };
        assert!(p.validate().is_err());
        p.test_fraction = 0.5;
        p.block_lr = f64::NAN;
        assert!(p.validate().is_err());
        // Unknown fields inside the section are refused too; absent ones get defaults.
        let mut v: serde_json::Value = serde_json::to_value(ExperimentSpec::demo()).unwrap();
        v["softprompt"] = serde_json::json!({ "steps": 5, "surprise": 1 });
        assert!(ExperimentSpec::from_json(&v.to_string()).is_err());
        v["softprompt"] = serde_json::json!({ "steps": 5 });
        let back = ExperimentSpec::from_json(&v.to_string()).unwrap();
        assert_eq!(
            back.softprompt,
            Some(SoftPromptSpec {
                steps: 5,
                ..SoftPromptSpec::default()
            })
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for s in ["", "{", "null", "[]", "{\"version\":1}", "\u{0}"] {
            assert!(ExperimentSpec::from_json(s).is_err(), "{s:?}");
        }
    }
}
