//! Resume points: everything a [`Trainer`] needs to go on exactly where it stopped, so a
//! run cut short (a reloaded page, a closed tab) continues to the same losses as a run
//! that never stopped.
//!
//! A resume point holds the weights (as a [`Checkpoint`]), AdamW's state (burn's
//! optimiser record, in its own byte format), the parameter ids that record is keyed by,
//! the step, the tokens seen and the losses so far, and a digest of the spec it belongs
//! to, and the state of a stateful regulariser (loss truncation's window, the
//! spectral-norm penalty's power-iteration vectors; [`RegulariserState`]), absent from
//! resume points written before regularisers existed, which read as before. The data order and the learning-rate schedule are functions of the spec and the
//! step, so they need no saving.
//!
//! Byte layout of [`ResumePoint::to_bytes`]: the magic `MNEMO-RESUME-1\n`, a
//! little-endian `u32` length and that many bytes of JSON header, a little-endian `u64`
//! length and that many bytes of safetensors weights, then the optimiser record to the
//! end.
//!
//! Reading the optimiser state back is synchronous in burn, so resume points can only be
//! taken on backends that read tensors synchronously (the CPU backends, not WebGPU in a
//! browser); [`crate::BackendKind::resumable`] says which.

use std::collections::HashMap;

use burn::module::ParamId;
use burn::nn::{LayerNorm, Linear};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::model::Gpt;
use crate::regularise::RegulariserState;
use crate::spec::ExperimentSpec;

const MAGIC: &[u8] = b"MNEMO-RESUME-1\n";

/// Why a resume point could not be written, read or used.
#[derive(Debug, Error)]
pub enum ResumeError {
    /// The bytes are not a resume point (or a damaged one).
    #[error("not a Mnemo resume point: {0}")]
    Format(String),
    /// The weights inside could not be read.
    #[error("the resume point's weights: {0}")]
    Weights(#[from] CheckpointError),
    /// The optimiser state could not be written or read.
    #[error("the resume point's optimiser state: {0}")]
    Optimiser(String),
    /// The resume point belongs to another experiment.
    #[error("this resume point belongs to another experiment (its settings differ)")]
    OtherSpec,
    /// The run's regulariser has state that the resume point lacks or that does not fit.
    #[error("the resume point's regulariser state: {0}")]
    Regulariser(String),
    /// The step is past the end of the run.
    #[error("the resume point is at step {step}, past the run's {total} steps")]
    PastEnd {
        /// Its step.
        step: usize,
        /// Steps in the run.
        total: usize,
    },
}

/// The small part of a resume point, stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Header {
    step: usize,
    tokens_seen: usize,
    losses: Vec<(usize, f32)>,
    spec_digest: String,
    /// Parameter name -> the id burn's optimiser record is keyed by (as text: JSON
    /// numbers lose precision past 2^53 in some readers).
    param_ids: Vec<(String, String)>,
    /// The regulariser's state, when the run has a stateful one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regulariser: Option<RegulariserState>,
}

/// A run's state after `step` optimiser steps.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumePoint {
    /// Steps done.
    pub step: usize,
    /// Training tokens seen so far.
    pub tokens_seen: usize,
    /// Loss of every step so far.
    pub losses: Vec<(usize, f32)>,
    /// SHA-256 of the spec's canonical JSON ([`spec_digest`]).
    pub spec_digest: String,
    /// The weights.
    pub weights: Checkpoint,
    /// Every parameter's name and the id the optimiser state is keyed by.
    pub param_ids: Vec<(String, u64)>,
    /// burn's AdamW record.
    pub optimiser: Vec<u8>,
    /// The regulariser's state between steps, when the run has a stateful one.
    pub regulariser: Option<RegulariserState>,
}

/// SHA-256 (hex) of a spec's JSON: what ties a resume point to its experiment.
pub fn spec_digest(spec: &ExperimentSpec) -> String {
    let digest = Sha256::digest(spec.to_json().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn linear_ids<'a>(prefix: &str, l: &'a mut Linear, out: &mut Vec<(String, &'a mut ParamId)>) {
    out.push((format!("{prefix}.weight"), &mut l.weight.id));
    if let Some(b) = &mut l.bias {
        out.push((format!("{prefix}.bias"), &mut b.id));
    }
}

fn norm_ids<'a>(prefix: &str, l: &'a mut LayerNorm, out: &mut Vec<(String, &'a mut ParamId)>) {
    out.push((format!("{prefix}.weight"), &mut l.gamma.id));
    if let Some(b) = &mut l.beta {
        out.push((format!("{prefix}.bias"), &mut b.id));
    }
}

/// Every parameter's id, by the names of [`Gpt::named_tensors`].
fn ids_mut(model: &mut Gpt) -> Vec<(String, &mut ParamId)> {
    let Gpt {
        wte,
        wpe,
        blocks,
        ln_f,
        head,
        ..
    } = model;
    let mut out = vec![("wte.weight".to_string(), &mut wte.id)];
    if let Some(wpe) = wpe {
        out.push(("wpe.weight".to_string(), &mut wpe.id));
    }
    for (i, b) in blocks.iter_mut().enumerate() {
        norm_ids(&format!("h.{i}.ln_1"), &mut b.ln1, &mut out);
        linear_ids(&format!("h.{i}.attn.c_attn"), &mut b.attn.qkv, &mut out);
        linear_ids(&format!("h.{i}.attn.c_proj"), &mut b.attn.proj, &mut out);
        norm_ids(&format!("h.{i}.ln_2"), &mut b.ln2, &mut out);
        linear_ids(&format!("h.{i}.mlp.c_fc"), &mut b.mlp.fc, &mut out);
        linear_ids(&format!("h.{i}.mlp.c_proj"), &mut b.mlp.proj, &mut out);
    }
    norm_ids("ln_f", ln_f, &mut out);
    if let Some(h) = head {
        out.push(("lm_head.weight".to_string(), &mut h.id));
    }
    out
}

/// Every parameter's name and id.
pub fn param_ids(model: &Gpt) -> Vec<(String, u64)> {
    let mut copy = model.clone();
    ids_mut(&mut copy)
        .into_iter()
        .map(|(name, id)| (name, id.val()))
        .collect()
}

/// Give `model`'s parameters the ids in `ids` (by name), so that an optimiser record
/// keyed by them applies. Every parameter must be named.
pub fn set_param_ids(model: &mut Gpt, ids: &[(String, u64)]) -> Result<(), ResumeError> {
    let by_name: HashMap<&str, u64> = ids.iter().map(|(n, i)| (n.as_str(), *i)).collect();
    for (name, id) in ids_mut(model) {
        let v = by_name
            .get(name.as_str())
            .ok_or_else(|| ResumeError::Format(format!("no parameter id for {name}")))?;
        *id = ParamId::from(*v);
    }
    Ok(())
}

fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], ResumeError> {
    if bytes.len() < n {
        return Err(ResumeError::Format(format!("cut short in the {what}")));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

impl ResumePoint {
    /// Serialise (layout in the module notes).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ResumeError> {
        let header = Header {
            step: self.step,
            tokens_seen: self.tokens_seen,
            losses: self.losses.clone(),
            spec_digest: self.spec_digest.clone(),
            param_ids: self
                .param_ids
                .iter()
                .map(|(n, i)| (n.clone(), i.to_string()))
                .collect(),
            regulariser: self.regulariser.clone(),
        };
        let header = serde_json::to_vec(&header).map_err(|e| ResumeError::Format(e.to_string()))?;
        let weights = self.weights.to_safetensors()?;
        let header_len = u32::try_from(header.len())
            .map_err(|_| ResumeError::Format("header too large".into()))?;
        let mut out = Vec::with_capacity(
            MAGIC.len() + 12 + header.len() + weights.len() + self.optimiser.len(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&header_len.to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(weights.len() as u64).to_le_bytes());
        out.extend_from_slice(&weights);
        out.extend_from_slice(&self.optimiser);
        Ok(out)
    }

    /// Read what [`ResumePoint::to_bytes`] wrote; any damage is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ResumeError> {
        let mut rest = bytes;
        if take(&mut rest, MAGIC.len(), "magic")? != MAGIC {
            return Err(ResumeError::Format("wrong magic".into()));
        }
        let mut len4 = [0u8; 4];
        len4.copy_from_slice(take(&mut rest, 4, "header length")?);
        let header: Header = serde_json::from_slice(take(
            &mut rest,
            u32::from_le_bytes(len4) as usize,
            "header",
        )?)
        .map_err(|e| ResumeError::Format(format!("header: {e}")))?;
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(take(&mut rest, 8, "weights length")?);
        let n = usize::try_from(u64::from_le_bytes(len8))
            .map_err(|_| ResumeError::Format("weights too large".into()))?;
        let weights = Checkpoint::from_safetensors(take(&mut rest, n, "weights")?)?;
        let param_ids = header
            .param_ids
            .into_iter()
            .map(|(name, id)| {
                id.parse::<u64>()
                    .map(|id| (name, id))
                    .map_err(|_| ResumeError::Format(format!("parameter id {id:?}")))
            })
            .collect::<Result<_, _>>()?;
        if rest.is_empty() {
            return Err(ResumeError::Format("no optimiser state".into()));
        }
        // Read the record once here so that damage shows now, not at the first step.
        burn::optim::OptimizerRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(
            rest.to_vec(),
        ))
        .map_err(|e| ResumeError::Optimiser(format!("{e:?}")))?;
        Ok(ResumePoint {
            step: header.step,
            tokens_seen: header.tokens_seen,
            losses: header.losses,
            spec_digest: header.spec_digest,
            weights,
            param_ids,
            optimiser: rest.to_vec(),
            regulariser: header.regulariser,
        })
    }
}
