//! Messages between the page and the training worker (serialised with
//! serde-wasm-bindgen).

use mnemo_core::spec::ExtractionSpec;
use mnemo_core::spec::mitigation::MethodSettings;
use mnemo_core::train::Progress;
use mnemo_core::{BackendKind, ExperimentSpec};
use mnemo_measures::counterfactual::{CounterfactualResult, MemberScores};
use mnemo_measures::did::DidResult;
use mnemo_measures::exposure::{ExposureProgress, ExposureResult};
use mnemo_measures::extraction::ExtractionResult;
use mnemo_measures::geometry::{GeometryProgress, GeometryResult};
use mnemo_measures::influence::{DeletionJob, DeletionResult, InfluenceProgress, InfluenceResult};
use mnemo_measures::softprompt::{PromptStep, SoftPromptProgress, SoftPromptResult};
use mnemo_measures::tinymem::ShownExample;
use mnemo_measures::unlearn::{MethodResult, MitigationContext, MitigationSummary, StepProgress};
use serde::{Deserialize, Serialize};

fn one() -> usize {
    1
}

/// Facts about a training run, sent by the worker when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Steps in the run.
    pub total_steps: usize,
    /// Training instances.
    pub train: usize,
    /// Held-out instances.
    pub heldout: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Trainable parameters.
    pub params: usize,
    /// Instances truncated to the context.
    pub truncated: usize,
    /// The backend actually used.
    pub backend: BackendKind,
}

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
    /// Go on with a training run of `spec` from a resume point kept by the page.
    Resume {
        /// The experiment (the one the resume point belongs to).
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
        /// The resume point's bytes ([`mnemo_core::ResumePoint::to_bytes`]).
        #[serde(with = "serde_bytes")]
        point: Vec<u8>,
    },
    /// Train each spec in turn, then build and estimate its memorisation profile (one
    /// model, or several for the size comparison); a `Profile` message for each.
    Profile {
        /// The experiments (with their `profile` sections) and a label for each result
        /// (e.g. the model size in a comparison).
        runs: Vec<(ExperimentSpec, String)>,
        /// Where to run them.
        backend: BackendKind,
        /// Models trained at once, each in its own worker, when there are several (the
        /// CPU backend; WebGPU trains one at a time). The results do not depend on it.
        #[serde(default = "one")]
        workers: usize,
    },
    /// To a helper worker of a pool: train `spec`, build its panel and estimate its
    /// profile, and answer [`FromWorker::ProfilePart`].
    ProfilePart {
        /// The experiment.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
        /// Its index among the job's runs.
        j: usize,
    },
    /// Train a counterfactual ensemble (the spec's `counterfactual` section) and score it.
    Counterfactual {
        /// The experiment.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
        /// Members trained at once, each in its own worker (the CPU backend; WebGPU
        /// trains one at a time). The result does not depend on it.
        #[serde(default = "one")]
        workers: usize,
    },
    /// To a helper worker of a pool: train and score member `j` of `spec`'s ensemble and
    /// answer [`FromWorker::MemberScored`].
    Member {
        /// The experiment.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
        /// The member.
        j: usize,
    },
    /// Measure extraction on the model of the last finished training run, or on the
    /// model of `train` trained first (a link's extraction view).
    Extract {
        /// Prefix and suffix lengths.
        settings: ExtractionSpec,
        /// Train this spec on this backend first.
        train: Option<(ExperimentSpec, BackendKind)>,
    },
    /// Train constant and dynamic soft prompts against a frozen model and measure
    /// extraction with each and without one (the spec's `softprompt` section).
    SoftPrompt {
        /// The experiment: its model is trained first when `train` is set, otherwise the
        /// model of the last finished training run is the target.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
        /// Train the spec's model first.
        train: bool,
    },
    /// Train a spec and score its test texts against its training texts by every
    /// influence method (the spec's `influence` section).
    Influence {
        /// The experiment.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
    },
    /// Case deletion of an influence result: retrain without each test text's top
    /// proponents (and random texts) and measure the rise of its loss.
    Deletion {
        /// The experiment the result belongs to.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
        /// The scores that choose the texts to remove.
        result: Box<InfluenceResult>,
        /// Retrains at once, each in its own worker (the CPU backend).
        #[serde(default = "one")]
        workers: usize,
    },
    /// To a helper worker of a pool: retrain `spec`'s model without `job.removed` and
    /// answer [`FromWorker::Retrained`] with the losses of `tests`.
    Retrain {
        /// The experiment.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
        /// The retrain's first job (its removed set is what counts).
        job: DeletionJob,
        /// The test texts to measure after.
        tests: Vec<u32>,
        /// The retrain's index.
        d: usize,
    },
    /// Run the unlearning methods of the spec's `mitigation` section, one after another,
    /// each on a copy of the model: its built-in model, or the spec's model (trained
    /// first when `train` is set, otherwise the last trained model).
    Mitigate {
        /// The experiment, with its `mitigation` section.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
        /// Train the spec's model first (when the section names no built-in model).
        train: bool,
        /// Methods run at once, each in its own worker (the CPU backend; WebGPU runs
        /// one at a time). The result does not depend on it.
        #[serde(default = "one")]
        workers: usize,
    },
    /// To a helper worker of a pool: run method `j` of `spec`'s `mitigation` section on a
    /// copy of the context's model and answer [`FromWorker::MitigationPart`].
    MitigationPart {
        /// The experiment, with its `mitigation` section.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
        /// The untouched model, measured, with its forget and retain sets (the job's
        /// worker measured it once for every worker).
        ctx: Box<MitigationContext>,
        /// The method and setting (index into the section's `methods`).
        j: usize,
    },
    /// Run the spec's `geometry` section: train the VP-SDE noise predictor on its toy
    /// data, sample, and estimate every training point's LID.
    Geometry {
        /// The experiment, with its `geometry` section.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
    },
    /// Train a spec with its `data.canaries` inserted, then rank each canary's secret
    /// among its format's candidates (the spec's `exposure` section).
    Exposure {
        /// The experiment, with `data.canaries`.
        spec: ExperimentSpec,
        /// Where to run it.
        backend: BackendKind,
    },
    /// Unlearn the canaries from the last trained model (an exposure run's) with a
    /// post-hoc method, and rank them again.
    ExposureUnlearn {
        /// The exposure experiment the model was trained on.
        spec: ExperimentSpec,
        /// The method and its settings.
        settings: MethodSettings,
    },
    /// Send the weights of the last finished training run as safetensors.
    ExportWeights,
    /// Use these safetensors weights (checked against `spec`'s model and corpus) as the
    /// "last trained model", e.g. for extraction.
    ImportWeights {
        /// The file's bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        /// The file's name.
        name: String,
        /// The experiment the weights must fit.
        spec: ExperimentSpec,
        /// A Hugging Face folder's `config.json`, when the weights are a GPT-2 or
        /// GPT-NeoX model's `model.safetensors`.
        #[serde(default)]
        config: Option<String>,
        /// That folder's `tokenizer.json`.
        #[serde(default)]
        tokenizer: Option<String>,
    },
    /// Stop the running job after its current step.
    Cancel,
}

impl ToWorker {
    /// The job with the backend it trains on set to `b`: the shell's choice when it
    /// sends the job (a view's copy of the hub can be a render behind, for example when a
    /// link starts its run in the same update as the WebGPU probe's answer). `Resume`
    /// keeps the CPU, where resume points are written; the other messages carry none.
    pub fn on_backend(mut self, b: BackendKind) -> Self {
        match &mut self {
            ToWorker::Train { backend, .. }
            | ToWorker::Profile { backend, .. }
            | ToWorker::ProfilePart { backend, .. }
            | ToWorker::Counterfactual { backend, .. }
            | ToWorker::Member { backend, .. }
            | ToWorker::Retrain { backend, .. }
            | ToWorker::SoftPrompt { backend, .. }
            | ToWorker::Influence { backend, .. }
            | ToWorker::Deletion { backend, .. }
            | ToWorker::Mitigate { backend, .. }
            | ToWorker::MitigationPart { backend, .. }
            | ToWorker::Geometry { backend, .. }
            | ToWorker::Exposure { backend, .. }
            | ToWorker::Extract {
                train: Some((_, backend)),
                ..
            } => *backend = b,
            _ => {}
        }
        self
    }

    /// Whether this is a job: it runs alone, can be cancelled, and ends with
    /// [`FromWorker::Finished`]. The others are answered at once.
    pub fn is_job(&self) -> bool {
        !matches!(
            self,
            ToWorker::Probe
                | ToWorker::Cancel
                | ToWorker::ExportWeights
                | ToWorker::ImportWeights { .. }
        )
    }
}

/// Extraction results with what the page needs to show them token by token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractionView {
    /// The rates and per-instance rows.
    pub result: ExtractionResult,
    /// The label of every token id (as text, never HTML).
    pub labels: Vec<String>,
    /// The prefix tokens of every evaluated instance: `(instance, prefix)`.
    pub prefixes: Vec<(u32, Vec<u32>)>,
    /// The run whose model was measured.
    pub model: String,
}

/// Soft-prompt results with what the page needs to show the test pairs token by token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftPromptView {
    /// Rates, gains, losses and per-pair rows of the three methods.
    pub result: SoftPromptResult,
    /// The label of every token id (as text, never HTML).
    pub labels: Vec<String>,
    /// The prefix tokens of every test pair: `(instance, prefix)`.
    pub prefixes: Vec<(u32, Vec<u32>)>,
    /// The target model.
    pub model: String,
}

/// One text of an influence run, as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfluenceText {
    /// Instance id.
    pub id: u32,
    /// Held out (never trained on).
    pub heldout: bool,
    /// Token ids, BOS first.
    pub tokens: Vec<u32>,
    /// The text (shown as text, never HTML).
    pub text: String,
}

/// Influence scores with what the page needs to show the texts token by token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfluenceView {
    /// The scores.
    pub result: InfluenceResult,
    /// The label of every token id.
    pub labels: Vec<String>,
    /// Every text of the corpus.
    pub texts: Vec<InfluenceText>,
    /// The BOS token id (not shown).
    pub bos: u32,
}

/// A mitigation run as the page shows and keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MitigationView {
    /// The untouched model's measures and every method's row so far.
    pub summary: MitigationSummary,
    /// The built-in model measured, if it was one (the reference's results apply).
    pub builtin: Option<String>,
    /// The label of every token id (as text, never HTML).
    pub labels: Vec<String>,
    /// The measured examples: prompt, memorised and clean continuations.
    pub examples: Vec<ShownExample>,
    /// What the untouched model generated for each example.
    pub before: Vec<Vec<u32>>,
    /// What each method's edited model generated, per row of `summary.results`.
    pub after: Vec<Vec<Vec<u32>>>,
}

impl MitigationView {
    /// Add one method's row and what its model generated.
    pub fn push(&mut self, result: MethodResult, generated: Vec<Vec<u32>>) {
        self.summary.results.push(result);
        self.after.push(generated);
    }
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
    Started(RunInfo),
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
    /// A resume point of the plain training run in progress (every few seconds, on
    /// backends that can write one).
    ResumePoint {
        /// Steps done.
        step: usize,
        /// [`mnemo_core::ResumePoint::to_bytes`].
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
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
    /// To the job's worker, from a helper: run `j`'s profile.
    ProfilePart {
        /// The run.
        j: usize,
        /// The estimates.
        result: Box<DidResult>,
        /// Seconds spent evaluating the panel.
        panel_s: f64,
        /// Seconds spent estimating.
        estimate_s: f64,
        /// The helper's heap (MiB).
        memory_mib: f64,
    },
    /// Profiles on a pool: runs finished and workers (the page shows it beside the
    /// training progress of the run this worker trains).
    ProfilesProgress {
        /// Runs finished.
        done: usize,
        /// Runs in all.
        total: usize,
        /// Workers (this one and its helpers).
        workers: usize,
        /// The largest heap among the workers so far (MiB).
        memory_mib: f64,
    },
    /// Counterfactual ensemble: members trained and scored so far.
    EnsembleProgress {
        /// Members done.
        done: usize,
        /// Members planned.
        total: usize,
        /// Seconds since the ensemble started.
        elapsed_s: f64,
        /// Workers training members.
        #[serde(default = "one")]
        workers: usize,
        /// Memory of each worker that has reported, in MiB (the WebAssembly heap).
        #[serde(default)]
        memory_mib: Vec<f64>,
    },
    /// From a helper worker of a pool: member `j` trained and scored.
    MemberScored {
        /// The member.
        j: usize,
        /// Its scores.
        scores: MemberScores,
        /// The helper's memory (its WebAssembly heap), in MiB.
        memory_mib: f64,
    },
    /// A counterfactual result (from every member, or from those done before a Cancel).
    Counterfactual {
        /// The scores.
        result: Box<CounterfactualResult>,
        /// Whether the ensemble was cut short by Cancel.
        cancelled: bool,
        /// Seconds in all.
        elapsed_s: f64,
    },
    /// Extraction measured.
    Extraction {
        /// Results and token labels.
        view: Box<ExtractionView>,
        /// Seconds decoding.
        elapsed_s: f64,
    },
    /// One soft-prompt training step.
    PromptStep {
        /// The step.
        step: PromptStep,
        /// Where the run stands.
        progress: SoftPromptProgress,
        /// Seconds since prompt training started.
        elapsed_s: f64,
    },
    /// Prompt training is over (done or cancelled); measuring the three methods.
    PromptEvaluating,
    /// Extraction with soft prompts measured.
    SoftPrompt {
        /// Results and token labels.
        view: Box<SoftPromptView>,
        /// Whether prompt training was cut short by Cancel (the prompts are measured as
        /// trained so far).
        cancelled: bool,
        /// Seconds training the constant prompt.
        constant_s: f64,
        /// Seconds training the generator.
        dynamic_s: f64,
        /// Seconds measuring.
        eval_s: f64,
    },
    /// Influence: per-example gradients done.
    InfluenceProgress {
        /// Where the gradient pass stands.
        progress: InfluenceProgress,
        /// Seconds since it started.
        elapsed_s: f64,
    },
    /// Influence scores are ready.
    Influence {
        /// Scores and texts.
        view: Box<InfluenceView>,
        /// Seconds of the gradient pass.
        gradient_s: f64,
    },
    /// Case deletion: retrains done.
    DeletionProgress {
        /// Retrains done.
        done: usize,
        /// Retrains in all (distinct removed sets).
        total: usize,
        /// Seconds since it started.
        elapsed_s: f64,
        /// Workers retraining.
        #[serde(default = "one")]
        workers: usize,
    },
    /// From a helper worker of a pool: retrain `d` of a case deletion done.
    Retrained {
        /// The retrain (its index in `DeletionPlan::retrains`).
        d: usize,
        /// The losses of its jobs' test texts under the retrained model, in job order.
        losses: Vec<f64>,
        /// The helper's memory (its WebAssembly heap), in MiB.
        memory_mib: f64,
    },
    /// Case deletion measured (all retrains, or those done before Cancel).
    Deletion {
        /// Rows and summaries.
        result: Box<DeletionResult>,
        /// Cut short by Cancel.
        cancelled: bool,
        /// Seconds in all.
        elapsed_s: f64,
    },
    /// Mitigation: the untouched model is measured and the sets are chosen.
    MitigationReady {
        /// The run so far (no method yet).
        view: Box<MitigationView>,
        /// Seconds loading and measuring.
        prepare_s: f64,
    },
    /// Mitigation: where the method in progress stands.
    MitigationProgress {
        /// Index of the method and setting running in the job's own worker (from 0);
        /// `runs` between methods, when it runs none.
        run: usize,
        /// Methods and settings in all.
        runs: usize,
        /// Steps of this method.
        step: StepProgress,
        /// Seconds since this method started.
        elapsed_s: f64,
        /// Methods and settings finished, on every worker.
        #[serde(default)]
        done: usize,
        /// Workers running methods (this one and its helpers).
        #[serde(default = "one")]
        workers: usize,
        /// The largest heap among the workers so far (MiB).
        #[serde(default)]
        memory_mib: f64,
    },
    /// To the job's worker, from a helper: method `j` is done and measured.
    MitigationPart {
        /// The method and setting.
        j: usize,
        /// Its row.
        result: Box<MethodResult>,
        /// What its edited model generated for each measured example.
        generated: Vec<Vec<u32>>,
        /// The helper's heap (MiB).
        memory_mib: f64,
    },
    /// Mitigation: one method is done and measured.
    MitigationMethod {
        /// Its row.
        result: Box<MethodResult>,
        /// What its edited model generated for each measured example.
        generated: Vec<Vec<u32>>,
    },
    /// Mitigation is over: every method, or those finished before Cancel.
    Mitigation {
        /// The whole run.
        view: Box<MitigationView>,
        /// Cut short by Cancel.
        cancelled: bool,
    },
    /// Geometry: where the run stands (posted at most every 50 ms).
    GeometryProgress {
        /// Phase, units done and in all, optimiser step and loss.
        progress: GeometryProgress,
        /// Seconds since the job started.
        elapsed_s: f64,
    },
    /// Geometry: the run is finished and measured.
    Geometry {
        /// Every point's LIDs and class, the samples, the curve and the regions.
        result: Box<GeometryResult>,
        /// Seconds in all.
        seconds: f64,
    },
    /// Exposure: candidates scored so far (after training; posted at most every 50 ms).
    ExposureProgress {
        /// Candidates scored and in all.
        progress: ExposureProgress,
    },
    /// Exposure: every canary ranked.
    Exposure {
        /// The ranks, exposures and the candidates' histogram.
        result: Box<ExposureResult>,
        /// Seconds scoring (training not counted).
        seconds: f64,
    },
    /// Exposure after unlearning: the method's steps.
    ExposureUnlearning {
        /// Steps done and in all.
        step: StepProgress,
    },
    /// Exposure after unlearning: every canary ranked again on the edited model.
    ExposureAfter {
        /// The method and its ratio.
        label: String,
        /// The ranks and exposures after.
        result: Box<ExposureResult>,
        /// Seconds unlearning and scoring.
        seconds: f64,
    },
    /// The weights asked for with [`ToWorker::ExportWeights`].
    Weights {
        /// safetensors bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        /// A file name for them.
        name: String,
    },
    /// Imported weights were accepted (`Ok(description)`) or refused (`Err(reason)`).
    Imported {
        /// The outcome.
        outcome: Result<String, String>,
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
    /// The worker keeps a new "last trained model" (a training run finished, or weights
    /// were imported): every view that measures a trained model may use it now.
    ModelKept {
        /// What it is, for the user.
        description: String,
        /// The experiment it belongs to (its data and model settings).
        spec: Box<ExperimentSpec>,
    },
    /// The job in progress ended (after its result, `Cancelled` or `Failed`): the worker
    /// takes the next one.
    Finished,
}
