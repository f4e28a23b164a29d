//! Writing one of Mnemo's models as a GPT-2 folder.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;

use super::{HfError, transpose};
use crate::checkpoint::Checkpoint;
use crate::model::Activation;
use crate::tokenizer::Tokenizer;

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
