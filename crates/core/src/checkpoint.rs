//! Checkpoints: a snapshot of a model's weights at a training step, with names that
//! follow GPT-2's, stored as safetensors (with the model config in the metadata).

use std::collections::HashMap;

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::{Gpt, ModelConfig};

/// One named weight tensor, on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    /// GPT-2-style name, e.g. `h.0.attn.c_attn.weight`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// A model's weights at one training step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The optimiser step after which the weights were taken (0 = initialisation).
    pub step: usize,
    /// Model shape.
    pub config: ModelConfig,
    /// Vocabulary size.
    pub vocab: usize,
    /// Weights.
    pub tensors: Vec<NamedTensor>,
}

/// Problems reading or applying a checkpoint.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// Not a safetensors file, or a damaged one.
    #[error("not a readable safetensors file: {0}")]
    Format(String),
    /// The metadata that describes the model is missing or unreadable.
    #[error("the file has no Mnemo model description in its metadata: {0}")]
    Metadata(String),
    /// A tensor is missing.
    #[error("tensor {0} is missing")]
    Missing(String),
    /// A tensor has the wrong shape.
    #[error("tensor {name} has shape {found:?}; this model needs {expected:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the config implies.
        expected: Vec<usize>,
    },
    /// Reading weights back from the device failed.
    #[error("reading weights from the device failed: {0}")]
    Device(String),
}

fn lin_names(prefix: &str, l: &Linear, out: &mut Vec<(String, Tensor<2>, bool)>) {
    out.push((format!("{prefix}.weight"), l.weight.val(), false));
    if let Some(b) = &l.bias {
        out.push((format!("{prefix}.bias"), b.val().unsqueeze(), true));
    }
}

fn ln_names(prefix: &str, l: &LayerNorm, out: &mut Vec<(String, Tensor<2>, bool)>) {
    out.push((format!("{prefix}.weight"), l.gamma.val().unsqueeze(), true));
    if let Some(b) = &l.beta {
        out.push((format!("{prefix}.bias"), b.val().unsqueeze(), true));
    }
}

impl Gpt {
    /// Every weight with its name, as 2-D tensors (1-D ones as `[1, n]`), in a fixed
    /// order, and whether the tensor is really 1-D. Linear weights are `[in, out]` (the
    /// transpose of PyTorch's layout).
    pub fn named_tensors(&self) -> Vec<(String, Tensor<2>, bool)> {
        let mut out = vec![("wte.weight".to_string(), self.wte.val(), false)];
        if let Some(wpe) = &self.wpe {
            out.push(("wpe.weight".to_string(), wpe.val(), false));
        }
        for (i, b) in self.blocks.iter().enumerate() {
            ln_names(&format!("h.{i}.ln_1"), &b.ln1, &mut out);
            lin_names(&format!("h.{i}.attn.c_attn"), &b.attn.qkv, &mut out);
            lin_names(&format!("h.{i}.attn.c_proj"), &b.attn.proj, &mut out);
            ln_names(&format!("h.{i}.ln_2"), &b.ln2, &mut out);
            lin_names(&format!("h.{i}.mlp.c_fc"), &b.mlp.fc, &mut out);
            lin_names(&format!("h.{i}.mlp.c_proj"), &b.mlp.proj, &mut out);
        }
        ln_names("ln_f", &self.ln_f, &mut out);
        if let Some(h) = &self.head {
            out.push(("lm_head.weight".to_string(), h.val(), false));
        }
        out
    }

    /// Read every weight back to the host (asynchronously: WebGPU needs it).
    pub async fn snapshot(
        &self,
        step: usize,
        config: ModelConfig,
    ) -> Result<Checkpoint, CheckpointError> {
        let mut tensors = Vec::new();
        for (name, t, is_vector) in self.named_tensors() {
            let dims = t.dims();
            let data = t
                .into_data_async()
                .await
                .map_err(|e| CheckpointError::Device(format!("{e:?}")))?;
            let values = data
                .try_into_vec::<f32>()
                .map_err(|e| CheckpointError::Device(format!("{e:?}")))?;
            let shape = if is_vector {
                vec![dims[1]]
            } else {
                dims.to_vec()
            };
            tensors.push(NamedTensor {
                name,
                shape,
                values,
            });
        }
        Ok(Checkpoint {
            step,
            config,
            vocab: self.vocab_size(),
            tensors,
        })
    }

    /// A model with the checkpoint's weights, on `device`. Every tensor's name and shape
    /// is checked against the checkpoint's config.
    pub fn from_checkpoint(ck: &Checkpoint, device: &Device) -> Result<Gpt, CheckpointError> {
        let mut model = Gpt::zeroed(&ck.config, ck.vocab, device);
        let by_name: HashMap<&str, &NamedTensor> =
            ck.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        let fetch = |name: &str, expected: Vec<usize>| -> Result<TensorData, CheckpointError> {
            let t = by_name
                .get(name)
                .ok_or_else(|| CheckpointError::Missing(name.to_string()))?;
            if t.shape != expected || t.values.len() != expected.iter().product::<usize>() {
                return Err(CheckpointError::Shape {
                    name: name.to_string(),
                    found: t.shape.clone(),
                    expected,
                });
            }
            Ok(TensorData::new(t.values.clone(), expected))
        };
        let p2 = |name: &str, shape: [usize; 2]| -> Result<Param<Tensor<2>>, CheckpointError> {
            Ok(Param::from_tensor(Tensor::from_data(
                fetch(name, shape.to_vec())?,
                device,
            )))
        };
        let p1 = |name: &str, n: usize| -> Result<Param<Tensor<1>>, CheckpointError> {
            Ok(Param::from_tensor(Tensor::from_data(
                fetch(name, vec![n])?,
                device,
            )))
        };
        let d = ck.config.d_model;
        model.wte = p2("wte.weight", [ck.vocab, d])?;
        if model.wpe.is_some() {
            model.wpe = Some(p2("wpe.weight", [ck.config.context, d])?);
        }
        let load_ln = |prefix: &str, ln: &mut LayerNorm| -> Result<(), CheckpointError> {
            ln.gamma = p1(&format!("{prefix}.weight"), d)?;
            ln.beta = Some(p1(&format!("{prefix}.bias"), d)?);
            Ok(())
        };
        let load_lin =
            |prefix: &str, l: &mut Linear, i: usize, o: usize| -> Result<(), CheckpointError> {
                l.weight = p2(&format!("{prefix}.weight"), [i, o])?;
                l.bias = Some(p1(&format!("{prefix}.bias"), o)?);
                Ok(())
            };
        for (i, b) in model.blocks.iter_mut().enumerate() {
            load_ln(&format!("h.{i}.ln_1"), &mut b.ln1)?;
            load_lin(&format!("h.{i}.attn.c_attn"), &mut b.attn.qkv, d, 3 * d)?;
            load_lin(&format!("h.{i}.attn.c_proj"), &mut b.attn.proj, d, d)?;
            load_ln(&format!("h.{i}.ln_2"), &mut b.ln2)?;
            load_lin(&format!("h.{i}.mlp.c_fc"), &mut b.mlp.fc, d, 4 * d)?;
            load_lin(&format!("h.{i}.mlp.c_proj"), &mut b.mlp.proj, 4 * d, d)?;
        }
        load_ln("ln_f", &mut model.ln_f)?;
        if model.head.is_some() {
            model.head = Some(p2("lm_head.weight", [d, ck.vocab])?);
        }
        Ok(model)
    }
}

impl Checkpoint {
    /// Check that these weights fit a spec's model and a corpus of `vocab` tokens,
    /// saying how they differ otherwise. (Tensor shapes are checked when the model is
    /// built, by [`crate::Gpt::from_checkpoint`].)
    pub fn fits(&self, model: &ModelConfig, vocab: usize) -> Result<(), String> {
        let describe = |c: &ModelConfig| {
            format!(
                "{} layer(s), d_model {}, {} head(s), context {}, {} head, {:?} MLP",
                c.n_layers,
                c.d_model,
                c.n_heads,
                c.context,
                if c.tied_head { "tied" } else { "untied" },
                c.activation
            )
        };
        if self.config != *model {
            return Err(format!(
                "the checkpoint's model ({}) is not the spec's ({})",
                describe(&self.config),
                describe(model)
            ));
        }
        if self.vocab != vocab {
            return Err(format!(
                "the checkpoint's vocabulary has {} tokens but the spec's corpus has {vocab}: \
                 it was trained on other data or with another tokenizer",
                self.vocab
            ));
        }
        Ok(())
    }

    /// Serialise as safetensors, with the config, vocabulary size and step in metadata.
    pub fn to_safetensors(&self) -> Result<Vec<u8>, CheckpointError> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|t| {
                let b: Vec<u8> = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
                (t.name.clone(), t.shape.clone(), b)
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(name, shape, b)| {
                TensorView::new(Dtype::F32, shape.clone(), b)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| CheckpointError::Format(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut meta = HashMap::new();
        meta.insert(
            "mnemo.config".to_string(),
            serde_json::to_string(&self.config)
                .map_err(|e| CheckpointError::Metadata(e.to_string()))?,
        );
        meta.insert("mnemo.vocab".to_string(), self.vocab.to_string());
        meta.insert("mnemo.step".to_string(), self.step.to_string());
        safetensors::tensor::serialize(views, Some(meta))
            .map_err(|e| CheckpointError::Format(e.to_string()))
    }

    /// Read a checkpoint written by [`Checkpoint::to_safetensors`] (tensors sorted by name).
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| CheckpointError::Format(e.to_string()))?;
        let meta = header
            .metadata()
            .clone()
            .ok_or_else(|| CheckpointError::Metadata("no metadata".into()))?;
        let get = |k: &str| {
            meta.get(k)
                .cloned()
                .ok_or_else(|| CheckpointError::Metadata(format!("missing {k}")))
        };
        let config: ModelConfig = serde_json::from_str(&get("mnemo.config")?)
            .map_err(|e| CheckpointError::Metadata(e.to_string()))?;
        config
            .validate()
            .map_err(|e| CheckpointError::Metadata(e.to_string()))?;
        let vocab: usize = get("mnemo.vocab")?
            .parse()
            .map_err(|_| CheckpointError::Metadata("mnemo.vocab is not a number".into()))?;
        let step: usize = get("mnemo.step")?
            .parse()
            .map_err(|_| CheckpointError::Metadata("mnemo.step is not a number".into()))?;
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Format(e.to_string()))?;
        let mut tensors = Vec::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(CheckpointError::Format(format!("{name} is not f32")));
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.push(NamedTensor {
                name,
                shape: view.shape().to_vec(),
                values,
            });
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Checkpoint {
            step,
            config,
            vocab,
            tensors,
        })
    }
}
