//! Mnemo's engine core: tokenizers, corpora, the GPT model, the deterministic trainer,
//! checkpoints and the experiment specification.
//!
//! Nothing here knows about the browser: the web app and the CLI are thin shells over
//! these functions, so every number the browser shows can be reproduced natively.

#![warn(missing_docs)]

pub use burn;

pub mod backend;
pub mod builtin;
pub mod checkpoint;
pub mod corpus;
pub mod hf;
pub mod lesson;
pub mod link;
pub mod model;
#[cfg(not(target_family = "wasm"))]
pub mod native;
mod optim;
pub mod regularise;
pub mod resume;
pub mod rng;
pub mod spec;
pub mod tokenizer;
pub mod train;
pub mod upload;

pub use backend::BackendKind;
pub use checkpoint::{Checkpoint, CheckpointError, NamedTensor};
pub use corpus::{Corpus, CorpusError, Instance};
pub use model::{Gpt, ModelConfig, PromptPositions};
pub use resume::{ResumeError, ResumePoint};
pub use spec::{ExperimentSpec, SpecError};
pub use tokenizer::{Tokenizer, TokenizerError, TokenizerKind};
pub use train::{Progress, StepReport, TrainError, Trainer};
