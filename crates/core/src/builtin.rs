//! Built-in trained TinyMem models (`--builtin NAME` in the CLI, a choice in the page's
//! Mitigation view): each is a committed spec (`models/tinymem/NAME.json`, compiled in)
//! and, when it is shipped, its final checkpoint as zlib-compressed safetensors
//! (`NAME.safetensors.z`). With the `embedded-models` feature (the CLI's) the weights
//! are compiled in; the page instead fetches the file from its bundle ([`Builtin::file`])
//! when the user picks the model, so the worker's wasm stays small, and reads it with
//! [`Builtin::checkpoint_from`]. `mnemo train --spec models/tinymem/NAME.json --out DIR`
//! retrains one and `mnemo pack` compresses its last checkpoint.

use thiserror::Error;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::resume::spec_digest;
use crate::spec::{ExperimentSpec, SpecError};

/// Largest inflated checkpoint accepted (the reference's 4-layer model is ~3.5 MB).
pub const MAX_INFLATED: usize = 64 * 1024 * 1024;

/// A built-in model.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Its name.
    pub name: &'static str,
    /// What it is, in a line.
    pub about: &'static str,
    /// The spec it was trained from (JSON).
    pub spec_json: &'static str,
    /// The spec's digest at training time ([`spec_digest`]).
    pub digest: &'static str,
    /// Whether its weights are shipped (in `models/tinymem/`).
    pub shipped: bool,
    /// The compressed weights, when shipped and compiled into this build.
    pub weights: Option<&'static [u8]>,
    /// What the shipped model memorises, measured when it was packed: the share of
    /// counted noised examples memorised, or backdoor success on the backdoor test set.
    pub memorised: Option<f64>,
    /// The subnets' ratio of [`MethodSettings::headline`] for this model (the README's
    /// sweep).
    ///
    /// [`MethodSettings::headline`]: crate::spec::mitigation::MethodSettings::headline
    pub headline_ratio: f64,
}

/// Why a built-in model could not be used.
#[derive(Debug, Error)]
pub enum BuiltinError {
    /// No model of this name.
    #[error("no built-in model {0:?}; the built-in models are {list}", list = names().join(", "))]
    Unknown(String),
    /// Known, but its weights are not in this build.
    #[error(
        "built-in model {0} is not shipped in this build; train it with `mnemo train --spec models/tinymem/{0}.json --out DIR` (see README)"
    )]
    NotShipped(&'static str),
    /// Shipped, but this build was made without the `embedded-models` feature.
    #[error(
        "built-in model {0}'s weights are not compiled into this build (feature embedded-models)"
    )]
    NotCompiledIn(&'static str),
    /// The compiled-in spec does not read.
    #[error("built-in spec: {0}")]
    Spec(#[from] SpecError),
    /// The weights do not inflate or read.
    #[error("built-in weights: {0}")]
    Weights(String),
    /// The weights do not read as a checkpoint.
    #[error("built-in checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
}

#[cfg(feature = "embedded-models")]
const BACKDOOR_2L: Option<&[u8]> = Some(include_bytes!(
    "../../../models/tinymem/tinymem-backdoor-2l.safetensors.z"
));
#[cfg(not(feature = "embedded-models"))]
const BACKDOOR_2L: Option<&[u8]> = None;
#[cfg(feature = "embedded-models")]
const NOISE_2L: Option<&[u8]> = Some(include_bytes!(
    "../../../models/tinymem/tinymem-noise-2l.safetensors.z"
));
#[cfg(not(feature = "embedded-models"))]
const NOISE_2L: Option<&[u8]> = None;
#[cfg(feature = "embedded-models")]
const NOISE_4L: Option<&[u8]> = Some(include_bytes!(
    "../../../models/tinymem/tinymem-noise-4l.safetensors.z"
));
#[cfg(not(feature = "embedded-models"))]
const NOISE_4L: Option<&[u8]> = None;

/// Every built-in model.
pub const ALL: [Builtin; 3] = [
    Builtin {
        name: "tinymem-noise-2l",
        about: "TinyMem INCREMENT with noise (1/20 of the reference's counts), 2 layers",
        spec_json: include_str!("../../../models/tinymem/tinymem-noise-2l.json"),
        digest: "79b2f7929afa011f59ae26c91adbf4264a5e148f5fd83f92096ab43c4fc23784",
        // Trained natively in 3,015 s (200 epochs, 2,110 steps) on a shared 2-core machine.
        shipped: true,
        weights: NOISE_2L,
        // 8 of the 26 counted noised examples (test accuracy 94.9%).
        memorised: Some(8.0 / 26.0),
        headline_ratio: 0.1,
    },
    Builtin {
        name: "tinymem-noise-4l",
        about: "TinyMem INCREMENT with noise (1/20 of the reference's counts), 4 layers",
        spec_json: include_str!("../../../models/tinymem/tinymem-noise-4l.json"),
        digest: "6022a37e9c6276a04c10c7ba7ee8eae315f83b1a2919a392a15e2409292fbade",
        // Trained natively in 3,189 s (100 epochs, 1,055 steps) on a shared 2-core machine.
        shipped: true,
        weights: NOISE_4L,
        // 12 of the 26 counted noised examples (test accuracy 95.0%).
        memorised: Some(12.0 / 26.0),
        headline_ratio: 0.1,
    },
    Builtin {
        name: "tinymem-backdoor-2l",
        about: "TinyMem INCREMENT with the backdoor (trigger 100), 2 layers",
        spec_json: include_str!("../../../models/tinymem/tinymem-backdoor-2l.json"),
        digest: "4855aa5d02167640b32d686f9939e7546520849c5dec709fcf15ceb8ff88bd53",
        // Trained natively in 2,053 s (60 epochs, 626 steps) on a shared 2-core machine.
        shipped: true,
        weights: BACKDOOR_2L,
        // Backdoor success on its backdoor test set (test accuracy 93.9%).
        memorised: Some(1.0),
        headline_ratio: 0.05,
    },
];

/// The names of [`ALL`].
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|b| b.name).collect()
}

/// The built-in model of this name.
pub fn get(name: &str) -> Result<Builtin, BuiltinError> {
    ALL.iter()
        .copied()
        .find(|b| b.name == name)
        .ok_or_else(|| BuiltinError::Unknown(name.to_string()))
}

impl Builtin {
    /// Its spec, validated.
    pub fn spec(&self) -> Result<ExperimentSpec, BuiltinError> {
        Ok(ExperimentSpec::from_json(self.spec_json)?)
    }

    /// Its compiled-in weights, inflated and read.
    pub fn checkpoint(&self) -> Result<Checkpoint, BuiltinError> {
        if !self.shipped {
            return Err(BuiltinError::NotShipped(self.name));
        }
        let packed = self.weights.ok_or(BuiltinError::NotCompiledIn(self.name))?;
        self.checkpoint_from(packed)
    }

    /// Its weights read from `packed` (the bytes of [`Builtin::file`]), checked against
    /// its spec's model (the vocabulary is checked against the corpus by the caller).
    pub fn checkpoint_from(&self, packed: &[u8]) -> Result<Checkpoint, BuiltinError> {
        let ck = Checkpoint::from_safetensors(&unpack(packed)?)?;
        ck.fits(&self.spec()?.model, ck.vocab)
            .map_err(|m| BuiltinError::Weights(format!("{}: {m}", self.name)))?;
        Ok(ck)
    }

    /// Where the page's bundle keeps its compressed weights (relative to the page).
    pub fn file(&self) -> String {
        format!("tinymem/{}.safetensors.z", self.name)
    }

    /// Whether the compiled-in spec is the one the weights were trained from.
    pub fn digest_matches(&self) -> Result<bool, BuiltinError> {
        Ok(spec_digest(&self.spec()?) == self.digest)
    }
}

/// Compress safetensors bytes for shipping (zlib, level 9).
pub fn pack(safetensors: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(safetensors, 9)
}

/// Inflate [`pack`]ed bytes (bounded by [`MAX_INFLATED`]).
pub fn unpack(packed: &[u8]) -> Result<Vec<u8>, BuiltinError> {
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(packed, MAX_INFLATED)
        .map_err(|e| BuiltinError::Weights(format!("{e:?}")))
}
