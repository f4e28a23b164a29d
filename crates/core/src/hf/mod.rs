//! Hugging Face checkpoints in and out: a folder with `config.json`, `model.safetensors`
//! and `tokenizer.json`.
//!
//! Import reads GPT-2 (`GPT2LMHeadModel`) and GPT-NeoX (`GPTNeoXForCausalLM`, the Pythia
//! family) into a [`Checkpoint`] with Mnemo's tensor names and layouts, so that every
//! analysis that takes a checkpoint takes an imported model:
//! - GPT-2's `Conv1D` weights are already `[in, out]`, Mnemo's layout; a separate
//!   `lm_head.weight` (untied) is `[vocab, d]` and is transposed.
//! - GPT-NeoX's `nn.Linear` weights are `[out, in]` and are transposed; its fused
//!   `query_key_value` is laid out per head (`[head][q|k|v][dim]`) and is reordered into
//!   Mnemo's `[q|k|v][head][dim]`; `embed_out` is the untied head.
//!
//! Export writes one of Mnemo's own models (always GPT-2 layout) as a GPT-2 folder that
//! `transformers` loads with `GPT2LMHeadModel.from_pretrained`, with a `tokenizer.json`
//! that gives Mnemo's ids ([`crate::tokenizer::hf::export_json`]).
//!
//! Config fields that change the computation and that Mnemo does not implement are
//! refused with an error that names the field; fields that do not (dropout, the
//! initialiser, generation settings) are ignored.

mod config;
mod export;
mod import;

pub use config::parse_config;
pub use export::export_gpt2;
pub use import::import;

use thiserror::Error;

use crate::checkpoint::Checkpoint;
use crate::model::ModelConfig;
use crate::tokenizer::{Specials, Tokenizer, TokenizerError};

/// Why a Hugging Face folder could not be read or written.
#[derive(Debug, Error)]
pub enum HfError {
    /// `config.json` is not JSON.
    #[error("config.json is not valid JSON: {0}")]
    ConfigJson(String),
    /// A config field is missing or has the wrong type.
    #[error("config.json: `{0}` is missing or not a {1}")]
    Field(String, &'static str),
    /// A config value Mnemo does not implement.
    #[error("config.json: `{field}` = {value} is not supported: {why}")]
    Unsupported {
        /// The field.
        field: String,
        /// Its value, as JSON.
        value: String,
        /// What Mnemo supports instead.
        why: String,
    },
    /// The weights file is unreadable.
    #[error("model.safetensors: {0}")]
    Weights(String),
    /// A tensor the config implies is missing.
    #[error("model.safetensors has no tensor `{0}`")]
    Missing(String),
    /// A tensor has the wrong shape.
    #[error("model.safetensors: `{name}` has shape {found:?}; the config implies {expected:?}")]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape.
        found: Vec<usize>,
        /// The shape the config implies.
        expected: Vec<usize>,
    },
    /// The tokenizer could not be read or written.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The model cannot be exported.
    #[error("cannot export: {0}")]
    Export(String),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Which architecture a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `GPT2LMHeadModel`.
    Gpt2,
    /// `GPTNeoXForCausalLM`.
    Neox,
}

/// What a folder's `config.json` says, in Mnemo's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct HfConfig {
    /// The architecture.
    pub family: Family,
    /// The model's shape and layout.
    pub model: ModelConfig,
    /// Its special ids and vocabulary size.
    pub specials: Specials,
}

/// An imported model: its weights as a checkpoint and its tokenizer.
#[derive(Debug, Clone)]
pub struct HfModel {
    /// The architecture.
    pub family: Family,
    /// The weights (step 0: the folder does not say).
    pub checkpoint: Checkpoint,
    /// The model's own tokenizer, when the folder has one.
    pub tokenizer: Option<Tokenizer>,
}

/// A folder's files, as bytes and text (the browser has no folders).
#[derive(Debug, Clone, Copy)]
pub struct HfFiles<'a> {
    /// `config.json`.
    pub config: &'a str,
    /// `model.safetensors`.
    pub weights: &'a [u8],
    /// `tokenizer.json`, if present.
    pub tokenizer: Option<&'a str>,
}

/// `[r, c]` row-major -> `[c, r]`.
fn transpose(v: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = v[i * c + j];
        }
    }
    out
}

/// Read a folder from disk (native only).
#[cfg(not(target_family = "wasm"))]
pub fn read_dir(dir: &std::path::Path) -> Result<HfModel, HfError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| HfError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    };
    let config = String::from_utf8(read("config.json")?).map_err(|_| HfError::Io {
        path: dir.join("config.json").display().to_string(),
        message: "not UTF-8 text".into(),
    })?;
    let weights = read("model.safetensors")?;
    let tokenizer = match dir.join("tokenizer.json").exists() {
        true => Some(
            String::from_utf8(read("tokenizer.json")?).map_err(|_| HfError::Io {
                path: dir.join("tokenizer.json").display().to_string(),
                message: "not UTF-8 text".into(),
            })?,
        ),
        false => None,
    };
    import(&HfFiles {
        config: &config,
        weights: &weights,
        tokenizer: tokenizer.as_deref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Layout;

    const NEOX: &str = r#"{"model_type": "gpt_neox", "hidden_size": 32, "num_attention_heads": 4,
        "num_hidden_layers": 2, "intermediate_size": 128, "max_position_embeddings": 64,
        "vocab_size": 50, "rotary_pct": 0.25, "rotary_emb_base": 10000}"#;

    #[test]
    fn pythia_style_config_reads_its_rotary_fields() {
        let c = parse_config(NEOX).unwrap();
        assert_eq!(c.family, Family::Neox);
        assert_eq!(
            c.model.layout,
            Layout::Neox {
                rotary_dims: 2,
                rotary_base: 10_000,
                parallel: true
            }
        );
        assert!(!c.model.tied_head);
        assert_eq!(c.specials.vocab, 50);
    }

    #[test]
    fn unsupported_fields_are_named() {
        let bad = NEOX.replace("128", "96");
        let e = parse_config(&bad).unwrap_err().to_string();
        assert!(e.contains("`intermediate_size`"), "{e}");
        let bad = NEOX.replace(
            r#""vocab_size": 50"#,
            r#""vocab_size": 50, "hidden_act": "silu""#,
        );
        let e = parse_config(&bad).unwrap_err().to_string();
        assert!(e.contains("`hidden_act` = \"silu\""), "{e}");
        let bad = NEOX.replace(
            r#""vocab_size": 50"#,
            r#""vocab_size": 50, "rope_scaling": {"type": "linear", "factor": 2}"#,
        );
        let e = parse_config(&bad).unwrap_err().to_string();
        assert!(e.contains("`rope_scaling`"), "{e}");
        let e = parse_config(r#"{"model_type": "llama"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`model_type`"), "{e}");
        let e = parse_config("{").unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = parse_config(r#"{"model_type": "gpt2", "n_embd": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`n_embd`"), "{e}");
    }

    #[test]
    fn transpose_is_a_transpose() {
        assert_eq!(
            transpose(&[1., 2., 3., 4., 5., 6.], 2, 3),
            vec![1., 4., 2., 5., 3., 6.]
        );
    }
}
