//! Reading a folder's weights into a [`Checkpoint`] with Mnemo's names and layouts.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors};

use super::{Family, HfError, HfFiles, HfModel, parse_config, transpose};
use crate::checkpoint::{Checkpoint, NamedTensor};
use crate::tokenizer::{HfTokenizer, Tokenizer};

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
