//! The settings form: every field is kept as the text the user typed, and turned into an
//! [`ExperimentSpec`] with one message per invalid field, so errors show as they type.

use std::collections::BTreeMap;

use mnemo_core::spec::{DataSource, Duration, SplitMode};
use mnemo_core::tokenizer::TokenizerKind;
use mnemo_core::{ExperimentSpec, SpecError};

/// Where the training text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The built-in facts corpus.
    Builtin,
    /// Text typed, pasted or uploaded.
    Text,
}

/// The form's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    /// Data source.
    pub source: Source,
    /// The user's text.
    pub text: String,
    /// `lines`, `paragraphs` or `windows`.
    pub split: String,
    /// Window length in characters.
    pub window: String,
    /// `char` or `byte`.
    pub tokenizer: String,
    /// Held-out share, in percent.
    pub heldout: String,
    /// Field name -> typed text, for the numeric settings.
    pub fields: BTreeMap<&'static str, String>,
}

/// Numeric fields: (key, label, help).
pub const FIELDS: &[(&str, &str, &str)] = &[
    ("model.n_layers", "Layers", "1 to 8"),
    ("model.d_model", "Width (d_model)", "32 to 256"),
    ("model.n_heads", "Heads", "must divide the width"),
    ("model.context", "Context (tokens)", "8 to 256"),
    ("training.batch_size", "Batch size", "1 to 256"),
    ("training.duration.steps", "Steps", "1 to 200000"),
    ("training.learning_rate", "Learning rate", "e.g. 0.003"),
    ("seed", "Seed", "any whole number"),
];

impl Form {
    /// The form for a spec.
    pub fn from_spec(spec: &ExperimentSpec) -> Self {
        let (source, text, split, window) = match &spec.data.source {
            DataSource::Text { text, split } => {
                let (s, w) = match split {
                    SplitMode::Lines => ("lines", 64),
                    SplitMode::Paragraphs => ("paragraphs", 64),
                    SplitMode::Windows { length } => ("windows", *length),
                };
                (Source::Text, text.clone(), s, w)
            }
            _ => (Source::Builtin, String::new(), "lines", 64),
        };
        let steps = match spec.training.duration {
            Duration::Steps(s) => s,
            Duration::Epochs(_) => 100,
        };
        let fields = BTreeMap::from([
            ("model.n_layers", spec.model.n_layers.to_string()),
            ("model.d_model", spec.model.d_model.to_string()),
            ("model.n_heads", spec.model.n_heads.to_string()),
            ("model.context", spec.model.context.to_string()),
            ("training.batch_size", spec.training.batch_size.to_string()),
            ("training.duration.steps", steps.to_string()),
            (
                "training.learning_rate",
                spec.training.learning_rate.to_string(),
            ),
            ("seed", spec.seed.to_string()),
        ]);
        Form {
            source,
            text,
            split: split.into(),
            window: window.to_string(),
            tokenizer: match spec.tokenizer {
                TokenizerKind::Byte => "byte",
                _ => "char",
            }
            .into(),
            heldout: format!("{}", (spec.data.heldout_fraction * 100.0).round()),
            fields,
        }
    }

    fn num<T: std::str::FromStr>(
        &self,
        key: &'static str,
        errors: &mut BTreeMap<&'static str, String>,
    ) -> Option<T> {
        let raw = self.fields.get(key).map(|s| s.trim()).unwrap_or("");
        match raw.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                errors.insert(
                    key,
                    if raw.is_empty() {
                        "required".to_string()
                    } else {
                        format!("“{raw}” is not a valid number")
                    },
                );
                None
            }
        }
    }

    /// The spec, or the message for each invalid field (keyed like [`FIELDS`], plus
    /// `data` for the text and `data.split` for the window).
    pub fn to_spec(&self) -> Result<ExperimentSpec, BTreeMap<&'static str, String>> {
        let mut errors = BTreeMap::new();
        let mut spec = ExperimentSpec::demo();
        let n_layers = self.num::<usize>("model.n_layers", &mut errors);
        let d_model = self.num::<usize>("model.d_model", &mut errors);
        let n_heads = self.num::<usize>("model.n_heads", &mut errors);
        let context = self.num::<usize>("model.context", &mut errors);
        let batch = self.num::<usize>("training.batch_size", &mut errors);
        let steps = self.num::<usize>("training.duration.steps", &mut errors);
        let lr = self.num::<f64>("training.learning_rate", &mut errors);
        let seed = self.num::<u64>("seed", &mut errors);
        let heldout = self
            .heldout
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|h| (0.0..=90.0).contains(h));
        if heldout.is_none() {
            errors.insert("data.heldout_fraction", "a percentage from 0 to 90".into());
        }
        if self.source == Source::Text {
            if self.text.trim().is_empty() {
                errors.insert("data", "type or upload some text first".into());
            }
            let split = match self.split.as_str() {
                "paragraphs" => Some(SplitMode::Paragraphs),
                "windows" => match self.window.trim().parse::<usize>() {
                    Ok(length) => Some(SplitMode::Windows { length }),
                    Err(_) => {
                        errors.insert(
                            "data.source.split.length",
                            "a whole number of characters".into(),
                        );
                        None
                    }
                },
                _ => Some(SplitMode::Lines),
            };
            if let Some(split) = split {
                spec.data.source = DataSource::Text {
                    text: self.text.clone(),
                    split,
                };
            }
            spec.name = "My text".into();
        }
        spec.tokenizer = if self.tokenizer == "byte" {
            TokenizerKind::Byte
        } else {
            TokenizerKind::Char
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        // All parsed: the Option unwraps below cannot fail.
        spec.model.n_layers = n_layers.unwrap_or_default();
        spec.model.d_model = d_model.unwrap_or_default();
        spec.model.n_heads = n_heads.unwrap_or_default();
        spec.model.context = context.unwrap_or_default();
        spec.training.batch_size = batch.unwrap_or_default();
        let steps = steps.unwrap_or_default();
        spec.training.duration = Duration::Steps(steps);
        spec.training.warmup_steps = (steps / 10).min(100);
        spec.training.checkpoint_every = (steps / 4).max(1);
        spec.training.learning_rate = lr.unwrap_or_default();
        spec.seed = seed.unwrap_or_default();
        spec.data.heldout_fraction = heldout.unwrap_or_default() / 100.0;
        match spec.validate() {
            Ok(()) => Ok(spec),
            Err(SpecError::OutOfRange {
                field, min, max, ..
            }) => {
                let key = FIELDS
                    .iter()
                    .map(|f| f.0)
                    .find(|k| *k == field)
                    .unwrap_or("data");
                errors.insert(key, format!("must be between {min} and {max}"));
                Err(errors)
            }
            Err(SpecError::Inconsistent(msg)) => {
                let key = if msg.contains("n_heads") {
                    "model.n_heads"
                } else {
                    "data"
                };
                errors.insert(key, msg);
                Err(errors)
            }
            Err(other) => {
                errors.insert("data", other.to_string());
                Err(errors)
            }
        }
    }
}
