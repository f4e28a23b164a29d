//! Requests (not jobs): the kept model's weights out as safetensors, and weights in.

use mnemo_core::{BackendKind, Checkpoint, Corpus, ExperimentSpec, Gpt};

use super::{Kept, busy, keep, kept, post};
use crate::protocol::FromWorker;

/// Send the kept model's weights.
pub fn export() {
    match kept().map(|k| (k.checkpoint.step, k.checkpoint.to_safetensors())) {
        Some((step, Ok(bytes))) => post(&FromWorker::Weights {
            bytes,
            name: format!("mnemo-weights-step{step}.safetensors"),
        }),
        Some((_, Err(e))) => post(&FromWorker::Imported {
            outcome: Err(format!("the weights could not be written: {e}")),
        }),
        None => post(&FromWorker::Imported {
            outcome: Err("train a model first".into()),
        }),
    }
}

/// Check imported weights against the spec and keep them; refused while a job runs.
pub fn import(bytes: &[u8], name: &str, spec: ExperimentSpec) {
    let outcome = if busy() {
        Err("wait for the current run to finish".into())
    } else {
        checked(bytes, name, spec)
    };
    post(&FromWorker::Imported { outcome });
}

/// Check the weights against the spec (model, vocabulary, every tensor's shape) and keep
/// them as the last trained model. Nothing changes on an error.
fn checked(bytes: &[u8], name: &str, spec: ExperimentSpec) -> Result<String, String> {
    let ck = Checkpoint::from_safetensors(bytes).map_err(|e| format!("“{name}” is {e}"))?;
    spec.validate().map_err(|e| e.to_string())?;
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(|e| e.to_string())?;
    ck.fits(&spec.model, corpus.tokenizer.vocab_size())
        .map_err(|e| format!("“{name}” does not fit the settings: {e}"))?;
    let device = BackendKind::Flex
        .cpu_device()
        .ok_or("the CPU backend is not part of this build")?;
    Gpt::from_checkpoint(&ck, &device).map_err(|e| format!("“{name}”: {e}"))?;
    let description = format!("weights “{name}” (step {})", ck.step);
    keep(
        Kept {
            checkpoint: ck,
            corpus,
            backend: BackendKind::Flex,
            packed: spec.training.packed,
            description: description.clone(),
        },
        &spec,
    );
    Ok(description)
}
