//! Requests (not jobs): the kept model's weights out as safetensors, and weights in.

use mnemo_core::hf::{self, HfFiles};
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

/// Import a Hugging Face folder's files (GPT-2 or GPT-NeoX) and keep the model, with the
/// settings' texts and split in its own tokens; refused while a job runs.
pub fn import_hf(
    bytes: &[u8],
    name: &str,
    config: &str,
    tokenizer: Option<String>,
    spec: ExperimentSpec,
) {
    let outcome = if busy() {
        Err("wait for the current run to finish".into())
    } else {
        checked_hf(bytes, name, config, tokenizer, spec)
    };
    post(&FromWorker::Imported { outcome });
}

fn checked_hf(
    bytes: &[u8],
    name: &str,
    config: &str,
    tokenizer: Option<String>,
    spec: ExperimentSpec,
) -> Result<String, String> {
    let m = hf::import(&HfFiles {
        config,
        weights: bytes,
        tokenizer: tokenizer.as_deref(),
    })
    .map_err(|e| format!("the Hugging Face folder cannot be used: {e}"))?;
    spec.validate().map_err(|e| e.to_string())?;
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(|e| e.to_string())?;
    let ck = m.checkpoint;
    let corpus = match m.tokenizer {
        Some(t) => corpus
            .retokenised(t, ck.config.context)
            .map_err(|e| format!("the settings' texts in the model's tokens: {e}"))?,
        None if ck.vocab == corpus.tokenizer.vocab_size() => corpus,
        None => {
            return Err(format!(
                "select the folder's tokenizer.json too: the model's vocabulary has {} ids and the settings' tokenizer {}",
                ck.vocab,
                corpus.tokenizer.vocab_size()
            ));
        }
    };
    let device = BackendKind::Flex
        .cpu_device()
        .ok_or("the CPU backend is not part of this build")?;
    Gpt::from_checkpoint(&ck, &device).map_err(|e| format!("“{name}”: {e}"))?;
    let family = match m.family {
        hf::Family::Gpt2 => "GPT-2",
        hf::Family::Neox => "GPT-NeoX",
    };
    let description = format!(
        "Hugging Face {family} model “{name}” ({} layers, d_model {}, vocabulary {}, context {})",
        ck.config.n_layers, ck.config.d_model, ck.vocab, ck.config.context
    );
    keep(
        Kept {
            checkpoint: ck,
            corpus,
            backend: BackendKind::Flex,
            packed: false,
            description: description.clone(),
        },
        &spec,
    );
    Ok(description)
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
