//! The experiment specification: one versioned, serde-serialisable description of a run
//! (data source, tokenizer, model, schedule, seeds). The CLI reads it from JSON and a
//! shared link will encode it. Every field is validated against the same limits the
//! interface uses; nothing in a spec is trusted.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::ModelConfig;
use crate::tokenizer::TokenizerKind;

mod analyses;
mod builtin;
pub mod exposure;
pub mod geometry;
pub mod mitigation;
pub mod regulariser;

pub use analyses::*;
pub use builtin::BUILTIN_SPECS;
pub use exposure::{CanarySet, ExposureSpec};
pub use geometry::GeometrySpec;
pub use mitigation::MitigationSpec;
pub use regulariser::Regulariser;

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
    /// Mitigation of memorised TinyMem data (METHODS.md section 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation: Option<MitigationSpec>,
    /// The geometry of memorisation (METHODS.md section 6), if run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<GeometrySpec>,
    /// Canary exposure (METHODS.md section 7): how the secrets of `data.canaries` are
    /// ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<ExposureSpec>,
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
    /// A secret inserted into the training data (one canary, as the counterfactual and
    /// influence demos use).
    #[serde(default)]
    pub canary: Option<CanarySpec>,
    /// Secrets of one format, each inserted its own number of times, for exposure
    /// (the Secret Sharer, METHODS.md section 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canaries: Option<CanarySet>,
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
    /// Invented records of four kinds (a parish register, a ship's log, a club roll, a
    /// clinic card), each trained behind its kind's source line: a *hidden training
    /// context* that extraction never gets (METHODS.md section 3). See
    /// [`crate::corpus::records`].
    Records,
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
    /// A memorisation-mitigating regulariser to train with (METHODS.md section 5,
    /// methods 1-3; see [`crate::regularise`]). Left out of the JSON when there is none,
    /// so specs written before the field existed keep their text and digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regulariser: Option<Regulariser>,
    /// Packed training, as GPT pretraining does: the texts, in the data order, joined
    /// one after another (each keeps its BOS and EOS, so EOS then BOS separates two texts)
    /// and cut into full windows of `context + 1` tokens from a seeded offset (see
    /// [`crate::train::Packing`]). Off by default: every text is then one row from
    /// position 0. Left out of the JSON when off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub packed: bool,
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
        if let Some(r) = &self.regulariser {
            r.validate()?;
            if self.packed {
                return Err(SpecError::Inconsistent(
                    "training.packed cannot be combined with a regulariser: the regularisers \
                     act on whole training texts, and packed windows cut texts apart"
                        .into(),
                ));
            }
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
        if let Some(c) = &self.canaries {
            c.validate()?;
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
