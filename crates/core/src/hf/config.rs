//! `config.json` in Mnemo's terms: the model's shape and layout, its special ids, and
//! the fields Mnemo refuses because it does not implement them.

use serde_json::{Value, json};

use super::{Family, HfConfig, HfError};
use crate::model::{Activation, Layout, ModelConfig};
use crate::tokenizer::Specials;

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
