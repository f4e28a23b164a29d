//! Messages between the page and the training worker (serialised with
//! serde-wasm-bindgen).

use mnemo_core::train::Progress;
use mnemo_core::{BackendKind, ExperimentSpec};
use mnemo_measures::did::DidResult;
use serde::{Deserialize, Serialize};

/// Page -> worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    /// Ask whether WebGPU gives an adapter here.
    Probe,
    /// Train a spec on a backend.
    Train {
        /// The experiment.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
    },
    /// Train a spec, then build and estimate its memorisation profile.
    Profile {
        /// The experiment (with its `profile` section).
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
        /// A label for the result (e.g. the model size in a comparison).
        label: String,
    },
    /// Stop the running job after its current step.
    Cancel,
}

/// Worker -> page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// The worker has loaded and listens for messages (messages sent before this are lost).
    Ready,
    /// The answer to [`ToWorker::Probe`]: the adapter's description, or why there is none.
    Probe {
        /// `Ok(adapter description)` or `Err(reason)`.
        webgpu: Result<String, String>,
    },
    /// Training started.
    Started {
        /// Steps in the run.
        total_steps: usize,
        /// Training instances.
        train: usize,
        /// Held-out instances.
        heldout: usize,
        /// Vocabulary size.
        vocab: usize,
        /// Trainable parameters.
        params: usize,
        /// Instances truncated to the context.
        truncated: usize,
        /// The backend actually used.
        backend: BackendKind,
    },
    /// One step done.
    Step {
        /// Progress so far.
        progress: Progress,
    },
    /// A checkpoint was saved.
    Checkpoint {
        /// Its step.
        step: usize,
    },
    /// The run finished.
    Done {
        /// Seconds.
        elapsed_s: f64,
        /// Tokens per second.
        tokens_per_s: f64,
        /// Checkpoints kept.
        checkpoints: Vec<usize>,
        /// Mean loss on the training instances after training.
        train_loss: Option<f32>,
        /// Mean loss on the held-out instances after training.
        heldout_loss: Option<f32>,
    },
    /// Panel evaluation: checkpoints done out of all.
    PanelProgress {
        /// Checkpoints evaluated.
        done: usize,
        /// Checkpoints in all.
        total: usize,
    },
    /// A memorisation profile is ready.
    Profile {
        /// Its label.
        label: String,
        /// The estimates.
        result: Box<DidResult>,
        /// Seconds spent evaluating the panel.
        panel_s: f64,
        /// Seconds spent estimating.
        estimate_s: f64,
    },
    /// The run stopped at the user's request.
    Cancelled {
        /// Steps done.
        step: usize,
    },
    /// The run could not start or go on.
    Failed {
        /// What went wrong, for the user.
        message: String,
    },
}
