//! The analysis sections of a spec: profile, counterfactual, extraction, soft prompts
//! and influence, each with its defaults and its checks against [`super::limits`].

use serde::{Deserialize, Serialize};

use super::{SpecError, check_range, check_usize, limits};

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
