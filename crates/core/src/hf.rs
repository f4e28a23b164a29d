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

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{Value, json};
use thiserror::Error;

use crate::checkpoint::{Checkpoint, NamedTensor};
use crate::model::{Activation, Layout, ModelConfig};
use crate::tokenizer::{HfTokenizer, Specials, Tokenizer, TokenizerError};

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

struct Fields<'a> {
    v: &'a Value,
}

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.v.get(key).filter(|v| !v.is_null())
    }

    fn usize(&self, key: &str) -> Result<usize, HfError> {
        self.get(key)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| HfError::Field(key.into(), "whole number"))
    }

    fn usize_or(&self, key: &str, default: usize) -> Result<usize, HfError> {
        match self.get(key) {
            None => Ok(default),
            Some(_) => self.usize(key),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, HfError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| HfError::Field(key.into(), "boolean")),
        }
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64, HfError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| HfError::Field(key.into(), "number")),
        }
    }

    fn str(&self, key: &str) -> Result<&str, HfError> {
        self.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| HfError::Field(key.into(), "string"))
    }

    /// Refuse `key` unless it is absent or `ok(value)`.
    fn require(&self, key: &str, ok: impl Fn(&Value) -> bool, why: &str) -> Result<(), HfError> {
        match self.get(key) {
            Some(v) if !ok(v) => Err(HfError::Unsupported {
                field: key.into(),
                value: v.to_string(),
                why: why.into(),
            }),
            _ => Ok(()),
        }
    }
}

fn unsupported(field: &str, value: impl ToString, why: &str) -> HfError {
    HfError::Unsupported {
        field: field.into(),
        value: value.to_string(),
        why: why.into(),
    }
}

fn activation(field: &str, name: &str) -> Result<Activation, HfError> {
    match name {
        "gelu" => Ok(Activation::Gelu),
        "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
        "relu" => Ok(Activation::Relu),
        other => Err(unsupported(
            field,
            json!(other),
            "Mnemo has gelu, gelu_new (= gelu_pytorch_tanh) and relu",
        )),
    }
}

fn layer_norm_eps(f: &Fields, key: &str) -> Result<(), HfError> {
    let eps = f.f64_or(key, 1e-5)?;
    if (eps - 1e-5).abs() > 1e-12 {
        return Err(unsupported(key, eps, "Mnemo's layer norms use 1e-5"));
    }
    Ok(())
}

/// Read `config.json`.
pub fn parse_config(text: &str) -> Result<HfConfig, HfError> {
    let v: Value = serde_json::from_str(text).map_err(|e| HfError::ConfigJson(e.to_string()))?;
    let f = Fields { v: &v };
    let model_type = f.str("model_type")?;
    let (family, model, vocab) = match model_type {
        "gpt2" => {
            let d = f.usize("n_embd")?;
            f.require(
                "n_inner",
                |v| v.as_u64() == Some(4 * d as u64),
                "the MLP must be 4 x n_embd wide (null)",
            )?;
            f.require(
                "scale_attn_weights",
                |v| v == &json!(true),
                "attention scores are scaled by 1/sqrt(head dim)",
            )?;
            f.require(
                "scale_attn_by_inverse_layer_idx",
                |v| v == &json!(false),
                "Mnemo does not scale attention by layer",
            )?;
            f.require(
                "add_cross_attention",
                |v| v == &json!(false),
                "decoder-only models only",
            )?;
            layer_norm_eps(&f, "layer_norm_epsilon")?;
            let act = match f.get("activation_function") {
                None => Activation::GeluTanh,
                Some(_) => activation("activation_function", f.str("activation_function")?)?,
            };
            let context = match f.get("n_positions") {
                Some(_) => f.usize("n_positions")?,
                None => f.usize("n_ctx")?,
            };
            let model = ModelConfig {
                n_layers: f.usize("n_layer")?,
                d_model: d,
                n_heads: f.usize("n_head")?,
                context,
                tied_head: f.bool_or("tie_word_embeddings", true)?,
                activation: act,
                layout: Layout::Gpt2,
            };
            (Family::Gpt2, model, f.usize("vocab_size")?)
        }
        "gpt_neox" => {
            let d = f.usize("hidden_size")?;
            let heads = f.usize("num_attention_heads")?;
            if f.usize("intermediate_size")? != 4 * d {
                return Err(unsupported(
                    "intermediate_size",
                    f.usize("intermediate_size")?,
                    "the MLP must be 4 x hidden_size wide",
                ));
            }
            layer_norm_eps(&f, "layer_norm_eps")?;
            f.require(
                "rope_scaling",
                |_| false,
                "Mnemo implements unscaled rotary embeddings",
            )?;
            f.require(
                "attention_bias",
                |v| v == &json!(true),
                "Mnemo's attention has biases",
            )?;
            // transformers 5 writes `rope_parameters`; Pythia's own configs (older) write
            // `rotary_pct` and `rotary_emb_base`.
            let (pct, theta) = match f.get("rope_parameters") {
                Some(rp) => {
                    let rf = Fields { v: rp };
                    rf.require(
                        "rope_type",
                        |v| v == &json!("default"),
                        "Mnemo implements the default rotary embedding",
                    )
                    .map_err(|e| prefix_field(e, "rope_parameters."))?;
                    (
                        rf.f64_or("partial_rotary_factor", 1.0)
                            .map_err(|e| prefix_field(e, "rope_parameters."))?,
                        rf.f64_or("rope_theta", 10_000.0)
                            .map_err(|e| prefix_field(e, "rope_parameters."))?,
                    )
                }
                None => (
                    f.f64_or("rotary_pct", 0.25)?,
                    match f.get("rope_theta") {
                        Some(_) => f.f64_or("rope_theta", 10_000.0)?,
                        None => f.f64_or("rotary_emb_base", 10_000.0)?,
                    },
                ),
            };
            if heads == 0 || !d.is_multiple_of(heads) {
                return Err(unsupported(
                    "num_attention_heads",
                    heads,
                    "it must divide hidden_size",
                ));
            }
            if !(0.0..=1.0).contains(&pct) {
                return Err(unsupported(
                    "partial_rotary_factor",
                    pct,
                    "a fraction of the head dimension",
                ));
            }
            if theta.fract() != 0.0 || !(2.0..=u32::MAX as f64).contains(&theta) {
                return Err(unsupported(
                    "rope_theta",
                    theta,
                    "Mnemo takes a whole-number base of at least 2",
                ));
            }
            let act = match f.get("hidden_act") {
                None => Activation::Gelu,
                Some(_) => activation("hidden_act", f.str("hidden_act")?)?,
            };
            let model = ModelConfig {
                n_layers: f.usize("num_hidden_layers")?,
                d_model: d,
                n_heads: heads,
                context: f.usize("max_position_embeddings")?,
                tied_head: f.bool_or("tie_word_embeddings", false)?,
                activation: act,
                layout: Layout::Neox {
                    // As transformers computes it: int(head_dim * factor).
                    rotary_dims: ((d / heads) as f64 * pct) as usize,
                    rotary_base: theta as u32,
                    parallel: f.bool_or("use_parallel_residual", true)?,
                },
            };
            (Family::Neox, model, f.usize("vocab_size")?)
        }
        other => {
            return Err(unsupported(
                "model_type",
                json!(other),
                "Mnemo imports gpt2 and gpt_neox models",
            ));
        }
    };
    model
        .validate_imported()
        .map_err(|e| HfError::Unsupported {
            field: "config".into(),
            value: model_type.into(),
            why: e.to_string(),
        })?;
    if vocab == 0 {
        return Err(HfError::Field("vocab_size".into(), "positive number"));
    }
    let eos = f.usize_or("eos_token_id", 0)? as u32;
    let specials = Specials {
        bos: f.usize_or("bos_token_id", eos as usize)? as u32,
        eos,
        pad: f.usize_or("pad_token_id", eos as usize)? as u32,
        vocab,
    };
    Ok(HfConfig {
        family,
        model,
        specials,
    })
}

fn prefix_field(e: HfError, prefix: &str) -> HfError {
    match e {
        HfError::Unsupported { field, value, why } => HfError::Unsupported {
            field: format!("{prefix}{field}"),
            value,
            why,
        },
        HfError::Field(field, kind) => HfError::Field(format!("{prefix}{field}"), kind),
        other => other,
    }
}

/// Tensors by name: shape and f32 values.
type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// The tensors of a safetensors file as f32 (f16 and bf16 are widened), by name.
fn read_tensors(bytes: &[u8]) -> Result<Tensors, HfError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| HfError::Weights(e.to_string()))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            // Buffers such as GPT-2's causal mask (`attn.bias`, bool or u8) are not weights.
            _ => continue,
        };
        out.insert(name, (view.shape().to_vec(), values));
    }
    Ok(out)
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

struct Source {
    tensors: Tensors,
    prefix: &'static str,
}

impl Source {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, HfError> {
        let key = if self.tensors.contains_key(name) {
            name.to_string()
        } else {
            format!("{}{name}", self.prefix)
        };
        let (found, values) = self
            .tensors
            .remove(&key)
            .ok_or_else(|| HfError::Missing(format!("{}{name}", self.prefix)))?;
        if found != shape {
            return Err(HfError::Shape {
                name: key,
                found,
                expected: shape.to_vec(),
            });
        }
        Ok(values)
    }
}

fn named(name: impl Into<String>, shape: Vec<usize>, values: Vec<f32>) -> NamedTensor {
    NamedTensor {
        name: name.into(),
        shape,
        values,
    }
}

/// Read a folder's files.
pub fn import(files: &HfFiles) -> Result<HfModel, HfError> {
    let config = parse_config(files.config)?;
    let tensors = read_tensors(files.weights)?;
    let m = config.model;
    let (d, v) = (m.d_model, config.specials.vocab);
    let mut out = Vec::new();
    match config.family {
        Family::Gpt2 => {
            let mut src = Source {
                tensors,
                prefix: "transformer.",
            };
            out.push(named(
                "wte.weight",
                vec![v, d],
                src.take("wte.weight", &[v, d])?,
            ));
            let wpe = src.take("wpe.weight", &[m.context, d])?;
            out.push(named("wpe.weight", vec![m.context, d], wpe));
            let mut copy = |name: String, shape: Vec<usize>| -> Result<(), HfError> {
                let values = src.take(&name, &shape)?;
                out.push(named(name, shape, values));
                Ok(())
            };
            for i in 0..m.n_layers {
                for ln in ["ln_1", "ln_2"] {
                    copy(format!("h.{i}.{ln}.weight"), vec![d])?;
                    copy(format!("h.{i}.{ln}.bias"), vec![d])?;
                }
                for (name, din, dout) in [
                    ("attn.c_attn", d, 3 * d),
                    ("attn.c_proj", d, d),
                    ("mlp.c_fc", d, 4 * d),
                    ("mlp.c_proj", 4 * d, d),
                ] {
                    copy(format!("h.{i}.{name}.weight"), vec![din, dout])?;
                    copy(format!("h.{i}.{name}.bias"), vec![dout])?;
                }
            }
            copy("ln_f.weight".into(), vec![d])?;
            copy("ln_f.bias".into(), vec![d])?;
            if !m.tied_head {
                let head = src.take("lm_head.weight", &[v, d])?;
                out.push(named("lm_head.weight", vec![d, v], transpose(&head, v, d)));
            }
        }
        Family::Neox => {
            let mut src = Source {
                tensors,
                prefix: "gpt_neox.",
            };
            let h = m.n_heads;
            let hd = d / h;
            out.push(named(
                "wte.weight",
                vec![v, d],
                src.take("embed_in.weight", &[v, d])?,
            ));
            for i in 0..m.n_layers {
                let p = format!("layers.{i}");
                for (from, to) in [
                    ("input_layernorm", "ln_1"),
                    ("post_attention_layernorm", "ln_2"),
                ] {
                    for part in ["weight", "bias"] {
                        let values = src.take(&format!("{p}.{from}.{part}"), &[d])?;
                        out.push(named(format!("h.{i}.{to}.{part}"), vec![d], values));
                    }
                }
                // query_key_value: out index (head, j, e) -> Mnemo's column (j, head, e).
                let w = src.take(
                    &format!("{p}.attention.query_key_value.weight"),
                    &[3 * d, d],
                )?;
                let b = src.take(&format!("{p}.attention.query_key_value.bias"), &[3 * d])?;
                let mnemo_col = |o: usize| {
                    let (head, rest) = (o / (3 * hd), o % (3 * hd));
                    let (j, e) = (rest / hd, rest % hd);
                    j * d + head * hd + e
                };
                let mut qkv_w = vec![0.0; 3 * d * d];
                let mut qkv_b = vec![0.0; 3 * d];
                for o in 0..3 * d {
                    let c = mnemo_col(o);
                    qkv_b[c] = b[o];
                    for i_in in 0..d {
                        qkv_w[i_in * 3 * d + c] = w[o * d + i_in];
                    }
                }
                out.push(named(
                    format!("h.{i}.attn.c_attn.weight"),
                    vec![d, 3 * d],
                    qkv_w,
                ));
                out.push(named(format!("h.{i}.attn.c_attn.bias"), vec![3 * d], qkv_b));
                for (from, to, din, dout) in [
                    ("attention.dense", "attn.c_proj", d, d),
                    ("mlp.dense_h_to_4h", "mlp.c_fc", d, 4 * d),
                    ("mlp.dense_4h_to_h", "mlp.c_proj", 4 * d, d),
                ] {
                    let w = src.take(&format!("{p}.{from}.weight"), &[dout, din])?;
                    out.push(named(
                        format!("h.{i}.{to}.weight"),
                        vec![din, dout],
                        transpose(&w, dout, din),
                    ));
                    let b = src.take(&format!("{p}.{from}.bias"), &[dout])?;
                    out.push(named(format!("h.{i}.{to}.bias"), vec![dout], b));
                }
            }
            for part in ["weight", "bias"] {
                let values = src.take(&format!("final_layer_norm.{part}"), &[d])?;
                out.push(named(format!("ln_f.{part}"), vec![d], values));
            }
            if !m.tied_head {
                let head = src.take("embed_out.weight", &[v, d])?;
                out.push(named("lm_head.weight", vec![d, v], transpose(&head, v, d)));
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    let tokenizer = files
        .tokenizer
        .map(|json| HfTokenizer::from_json(json, config.specials).map(Tokenizer::Hf))
        .transpose()?;
    Ok(HfModel {
        family: config.family,
        checkpoint: Checkpoint {
            step: 0,
            config: m,
            vocab: v,
            tensors: out,
        },
        tokenizer,
    })
}

/// The files of a GPT-2 folder for one of Mnemo's models (GPT-2 layout), as
/// `(file name, bytes)`: `config.json`, `model.safetensors` and `tokenizer.json`.
pub fn export_gpt2(
    checkpoint: &Checkpoint,
    tokenizer: &Tokenizer,
) -> Result<Vec<(&'static str, Vec<u8>)>, HfError> {
    let m = checkpoint.config;
    if !m.layout.is_gpt2() {
        return Err(HfError::Export(
            "only GPT-2-layout models can be written as GPT-2".into(),
        ));
    }
    if tokenizer.vocab_size() != checkpoint.vocab {
        return Err(HfError::Export(format!(
            "the tokenizer has {} ids but the model's vocabulary has {}",
            tokenizer.vocab_size(),
            checkpoint.vocab
        )));
    }
    let (d, v) = (m.d_model, checkpoint.vocab);
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for t in &checkpoint.tensors {
        let (name, shape, values) = if t.name == "lm_head.weight" {
            (
                "lm_head.weight".to_string(),
                vec![v, d],
                transpose(&t.values, d, v),
            )
        } else {
            (
                format!("transformer.{}", t.name),
                t.shape.clone(),
                t.values.clone(),
            )
        };
        let bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect();
        tensors.push((name, shape, bytes));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, b)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|view| (name.clone(), view))
                .map_err(|e| HfError::Weights(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // transformers refuses a safetensors file without this metadata.
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let weights = safetensors::tensor::serialize(views, Some(meta))
        .map_err(|e| HfError::Weights(e.to_string()))?;
    let activation = match m.activation {
        Activation::Gelu => "gelu",
        Activation::GeluTanh => "gelu_new",
        Activation::Relu => "relu",
    };
    let config = json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": v,
        "n_positions": m.context,
        "n_embd": d,
        "n_layer": m.n_layers,
        "n_head": m.n_heads,
        "n_inner": null,
        "activation_function": activation,
        "layer_norm_epsilon": 1e-5,
        "tie_word_embeddings": m.tied_head,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "bos_token_id": tokenizer.bos(),
        "eos_token_id": tokenizer.eos(),
        "pad_token_id": tokenizer.pad(),
        "mnemo_step": checkpoint.step,
    });
    let config = serde_json::to_string_pretty(&config)
        .map_err(|e| HfError::Export(e.to_string()))?
        .into_bytes();
    let tok = crate::tokenizer::hf::export_json(tokenizer)?.into_bytes();
    Ok(vec![
        ("config.json", config),
        ("model.safetensors", weights),
        ("tokenizer.json", tok),
    ])
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
