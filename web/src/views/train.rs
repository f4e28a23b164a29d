//! The "Train" view: the demo, training the form's settings, live progress and the loss
//! curve, the final weights out (safetensors) and weights in.

use mnemo_core::train::Progress;
use mnemo_core::{BackendKind, ExperimentSpec};
use mnemo_plots::{LossSeries, loss_svg};
use web_sys::{File, HtmlCanvasElement, HtmlInputElement};
use yew::prelude::*;

use super::connect;
use crate::chart::draw_loss;
use crate::download::{download_bytes, download_canvas, download_text};
use crate::hub::{Hub, JobRequest, Keep, ViewEvent};
use crate::protocol::{FromWorker, RunInfo, ToWorker};
use crate::store::RunStatus;

/// This view's id.
pub const ID: &str = "train";

/// What the view's training run is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Nothing has run yet.
    Idle,
    /// Sent to the worker; no step yet.
    Starting,
    /// Steps are coming in.
    Running,
    /// Finished.
    Done {
        /// Seconds.
        elapsed_s: f64,
        /// Tokens per second.
        tokens_per_s: f64,
        /// Mean loss on training instances.
        train_loss: Option<f32>,
        /// Mean loss on held-out instances.
        heldout_loss: Option<f32>,
    },
    /// Stopped by the user.
    Cancelled {
        /// Steps done.
        step: usize,
    },
    /// Could not start or go on.
    Failed(String),
    /// A kept run was reopened: its settings and losses are shown.
    Reopened {
        /// Its name.
        name: String,
        /// How it ended.
        status: RunStatus,
    },
}

impl RunState {
    fn name(&self) -> &'static str {
        match self {
            RunState::Idle => "idle",
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Done { .. } => "done",
            RunState::Cancelled { .. } => "cancelled",
            RunState::Failed(_) => "failed",
            RunState::Reopened { .. } => "reopened",
        }
    }
}

/// Messages of the view.
pub enum Msg {
    /// The hub changed.
    Hub(Hub),
    /// From the shell.
    Event(ViewEvent),
    /// Train the form's spec.
    Train,
    /// Reset the form to the demo and train it.
    RunDemo,
    /// Export the loss as CSV, SVG, PNG.
    Export(&'static str),
    /// Ask the worker for the last model's weights.
    ExportWeights,
    /// A weights file was picked.
    ImportWeights(Vec<File>),
    /// ... and read, to be checked against this spec.
    WeightsRead(String, Box<ExperimentSpec>, Result<WeightFiles, String>),
}

/// The view.
pub struct TrainView {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    run: RunState,
    info: Option<RunInfo>,
    progress: Option<Progress>,
    losses: Vec<(usize, f32)>,
    canvas: NodeRef,
    /// (points, last step) of the loss curve as last drawn.
    drawn: Option<(usize, Option<usize>)>,
    weights_message: Option<Result<String, String>>,
    /// How many weights messages were shown (for tests and screen readers: a new message
    /// with the same text is still new).
    weights_n: u32,
}

/// What the demo button does, read off the demo spec itself.
fn demo_blurb() -> String {
    let spec = ExperimentSpec::demo();
    let n = match spec.data.source {
        mnemo_core::spec::DataSource::Builtin { instances, .. } => instances,
        _ => 0,
    };
    format!(
        "Trains a {}-layer model on {n} invented one-line biographies, {:.0}% of them held out and never trained on.",
        spec.model.n_layers,
        spec.data.heldout_fraction * 100.0
    )
}

impl TrainView {
    fn start(&mut self, spec: ExperimentSpec) {
        self.losses.clear();
        self.progress = None;
        self.info = None;
        self.run = RunState::Starting;
        self.hub.start(JobRequest {
            view: ID,
            spec: spec.clone(),
            job: ToWorker::Train {
                spec,
                backend: self.hub.state.backend,
            },
            keep: Keep::New,
        });
    }

    fn on_worker(&mut self, msg: &FromWorker) {
        match msg {
            FromWorker::Started(info) => {
                self.run = RunState::Running;
                self.info = Some(info.clone());
            }
            FromWorker::Step { progress } => {
                self.losses.push((progress.step, progress.loss));
                self.progress = Some(progress.clone());
            }
            &FromWorker::Done {
                elapsed_s,
                tokens_per_s,
                train_loss,
                heldout_loss,
                ..
            } => {
                self.run = RunState::Done {
                    elapsed_s,
                    tokens_per_s,
                    train_loss,
                    heldout_loss,
                }
            }
            &FromWorker::Cancelled { step } => self.run = RunState::Cancelled { step },
            FromWorker::Failed { message } => self.run = RunState::Failed(message.clone()),
            FromWorker::Weights { bytes, name } => {
                if let Err(e) = download_bytes(name, "application/octet-stream", bytes) {
                    self.weights_n += 1;
                    self.weights_message = Some(Err(e));
                }
            }
            FromWorker::Imported { outcome } => {
                self.weights_n += 1;
                self.weights_message = Some(
                    outcome
                        .clone()
                        .map(|d| format!("Loaded {d}: extraction now runs on it.")),
                );
            }
            _ => {}
        }
    }

    fn export(&self, what: &str) -> Result<(), String> {
        match what {
            "csv" => {
                let mut csv = String::from("step,loss\n");
                for (s, l) in &self.losses {
                    csv.push_str(&format!("{s},{l}\n"));
                }
                download_text("loss.csv", "text/csv", &csv)
            }
            "svg" => {
                let series = [LossSeries {
                    label: String::new(),
                    points: self.losses.clone(),
                }];
                download_text("loss.svg", "image/svg+xml", &loss_svg(&series, (800, 480)))
            }
            _ => download_canvas(self.canvas.cast(), "loss.png"),
        }
    }

    fn status(&self) -> Html {
        match &self.run {
            RunState::Idle => {
                html! { <span>{ "Ready. Press “Run the demo” to train a small model on invented facts." }</span> }
            }
            RunState::Starting => html! { <span>{ "Starting…" }</span> },
            RunState::Running => html! { <span>{ "Training…" }</span> },
            RunState::Done {
                elapsed_s,
                tokens_per_s,
                train_loss,
                heldout_loss,
            } => html! {
                <>
                <span>{ format!("Training finished in {elapsed_s:.1} s ({tokens_per_s:.0} tokens/s).") }</span>
                { match (train_loss, heldout_loss) {
                    (Some(t), Some(h)) => html! {
                        <span id="generalisation-gap">{ " Mean loss on training instances " }<span id="train-loss">{ format!("{t:.3}") }</span>
                            { ", on held-out instances " }<span id="heldout-loss">{ format!("{h:.3}") }</span>{ format!(" nats/token{}",
                            if h - t > 0.1 { ": the gap is what the model learnt about its training text that does not carry over to new text." } else { "." }) }</span>
                    },
                    (Some(t), None) => html! { <span>{ format!(" Mean loss on training instances {t:.3} nats/token (nothing held out).") }</span> },
                    _ => html! {},
                } }
                </>
            },
            RunState::Cancelled { step } => {
                html! { <span>{ format!("Cancelled after step {step}. The curve so far is kept.") }</span> }
            }
            RunState::Failed(m) => {
                html! { <span class="error">{ format!("Training failed: {m}") }</span> }
            }
            RunState::Reopened { name, status } => html! {
                <span>{ format!("Reopened the kept run “{name}” ({}): its settings, losses and results as they were. Its model is not kept: train again to measure it further.", status.label()) }</span>
            },
        }
    }
}

impl Component for TrainView {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        TrainView {
            hub,
            _hub: handle,
            run: RunState::Idle,
            info: None,
            progress: None,
            losses: Vec::new(),
            canvas: NodeRef::default(),
            drawn: None,
            weights_message: None,
            weights_n: 0,
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => self.hub = hub,
            Msg::Event(ViewEvent::Worker(m)) => self.on_worker(&m),
            Msg::Event(ViewEvent::Start(spec)) => self.start((*spec).clone()),
            Msg::Event(ViewEvent::Restore(run)) => {
                let (meta, data) = &*run;
                self.losses.clone_from(&data.losses);
                self.progress = None;
                self.info = None;
                self.run = RunState::Reopened {
                    name: meta.name.clone(),
                    status: meta.status,
                };
            }
            Msg::Event(ViewEvent::Resumed(losses)) => {
                self.losses = (*losses).clone();
                self.progress = None;
                self.info = None;
                self.run = RunState::Starting;
            }
            Msg::Train => {
                if let (true, Some(spec)) = (
                    self.hub.state.can_start(),
                    self.hub.state.form.as_deref().cloned(),
                ) {
                    self.start(spec);
                }
            }
            Msg::RunDemo => {
                if self.hub.state.can_start() {
                    self.hub.set_form(ExperimentSpec::demo());
                    self.start(ExperimentSpec::demo());
                }
            }
            Msg::Export(what) => {
                if let Err(e) = self.export(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
            Msg::ExportWeights => {
                self.hub.request(ID, ToWorker::ExportWeights);
                return false;
            }
            Msg::ImportWeights(files) => {
                let state = &self.hub.state;
                let Some(spec) = state
                    .form
                    .as_deref()
                    .cloned()
                    .or_else(|| state.trained.as_ref().map(|t| t.1.clone()))
                else {
                    self.weights_n += 1;
                    self.weights_message = Some(Err(
                        "fix the settings first: the weights are checked against them".into(),
                    ));
                    return true;
                };
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let (name, read) = read_weight_files(&files).await;
                    link.send_message(Msg::WeightsRead(name, Box::new(spec), read));
                });
            }
            Msg::WeightsRead(name, spec, read) => match read {
                Ok(f) => self.hub.request(
                    ID,
                    ToWorker::ImportWeights {
                        bytes: f.weights,
                        name,
                        spec: *spec,
                        config: f.config,
                        tokenizer: f.tokenizer,
                    },
                ),
                Err(e) => {
                    self.weights_n += 1;
                    self.weights_message = Some(Err(e));
                }
            },
        }
        true
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        // Redraw the loss curve only when it changed (not on every hover or status).
        let drawn = (self.losses.len(), self.losses.last().map(|l| l.0));
        if let Some(canvas) = self
            .canvas
            .cast::<HtmlCanvasElement>()
            .filter(|_| self.drawn.replace(drawn) != Some(drawn))
        {
            draw_loss(
                canvas,
                &[LossSeries {
                    label: String::new(),
                    points: self.losses.clone(),
                }],
            );
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let state = &self.hub.state;
        let running = state.busy.is_some();
        let can_start = state.can_start();
        let (step, total) = match (&self.progress, &self.info) {
            (Some(p), _) => (p.step, p.total_steps),
            (None, Some(i)) => (0, i.total_steps),
            _ => (0, 1),
        };
        let progress_text = self.progress.as_ref().map(|p| {
            format!(
                "step {}/{} · loss {:.3} · {:.0} tokens/s · ETA {:.0} s",
                p.step, p.total_steps, p.loss, p.tokens_per_s, p.eta_s
            )
        });
        let info_text = self.info.as_ref().map(|i| {
            format!(
                "{} training and {} held-out instances · vocabulary {} · {} parameters · on {}{}",
                i.train,
                i.heldout,
                i.vocab,
                i.params,
                i.backend.label(),
                if i.truncated > 0 {
                    format!(" · {} instances cut to the context", i.truncated)
                } else {
                    String::new()
                }
            )
        });
        let used_backend = self.info.as_ref().map_or("", |i| {
            if i.backend == BackendKind::Wgpu {
                "webgpu"
            } else {
                "cpu"
            }
        });
        let loss_json = serde_json::to_string(&self.losses).unwrap_or_default();
        let no_losses = self.losses.is_empty();
        let on_weights = link.batch_callback(|e: Event| {
            let i: HtmlInputElement = e.target_unchecked_into();
            let files: Vec<File> = i
                .files()
                .map(|l| (0..l.length()).filter_map(|k| l.get(k)).collect())
                .unwrap_or_default();
            i.set_value("");
            (!files.is_empty()).then_some(Msg::ImportWeights(files))
        });
        html! {
            <>
            if !state.chrome.hides("demo") {
                <section class="quick">
                    <button id="demo-button" class="primary" onclick={link.callback(|_| Msg::RunDemo)} disabled={!can_start}>{ "Run the demo" }</button>
                    <span class="help">{ demo_blurb() }</span>
                </section>
            }
            <section class={classes!("panel", state.chrome.hides("progress").then_some("hidden"))} id="train-panel">
                <h2>{ "Training" }</h2>
                <div class="row actions">
                    <button id="train-button" class="primary" onclick={link.callback(|_| Msg::Train)} disabled={!can_start || state.form.is_none()}
                        title="Train a model with the data and model settings">{ "Train" }</button>
                    <span class="help">{ "with the data and model settings below" }</span>
                </div>
                <progress id="progress-bar" max={total.to_string()} value={step.to_string()}></progress>
                <p id="progress-text" class="mono">{ progress_text.unwrap_or_default() }</p>
                if let Some(t) = info_text { <p class="help">{ t }</p> }
                <p id="status" data-state={self.run.name()} data-backend={used_backend}>{ self.status() }</p>
                <canvas id="loss-chart" ref={self.canvas.clone()} width="760" height="380"></canvas>
                <output id="loss-json" hidden=true>{ loss_json }</output>
                <div class="row actions">
                    <button onclick={link.callback(|_| Msg::Export("csv"))} disabled={no_losses}>{ "Loss CSV" }</button>
                    <button onclick={link.callback(|_| Msg::Export("svg"))} disabled={no_losses}>{ "Chart SVG" }</button>
                    <button onclick={link.callback(|_| Msg::Export("png"))} disabled={no_losses}>{ "Chart PNG" }</button>
                    <button id="weights-download" onclick={link.callback(|_| Msg::ExportWeights)} disabled={state.trained.is_none() || running}
                        title="The final weights of the last run, as safetensors (GPT-2 tensor names, the model config in the metadata)">{ "Weights (safetensors)" }</button>
                    <label class="file">{ "Import weights " }
                        <input id="weights-input" type="file" accept=".safetensors,.json" multiple=true disabled={running} onchange={on_weights} />
                    </label>
                </div>
                <p class="help" id="weights-help">{ format!(
                    "Import weights takes a Mnemo .safetensors file, or a Hugging Face GPT-2 or GPT-NeoX folder's config.json, model.safetensors and tokenizer.json selected together (up to {} MiB of weights: they run on the CPU here; bigger models belong to the mnemo CLI).",
                    crate::upload::WEIGHTS_CAP / 1024 / 1024
                ) }</p>
                { match &self.weights_message {
                    Some(Ok(m)) => html! { <p id="weights-message" class="ok" role="status" data-n={self.weights_n.to_string()}>{ m }</p> },
                    Some(Err(m)) => html! { <p id="weights-message" class="error" role="alert" data-n={self.weights_n.to_string()}>{ m }</p> },
                    None => html! {},
                } }
            </section>
            </>
        }
    }
}

/// What the weights input gave: the weights, and a Hugging Face folder's JSON files.
#[derive(Debug)]
pub struct WeightFiles {
    weights: Vec<u8>,
    config: Option<String>,
    tokenizer: Option<String>,
}

/// Read the picked files: one Mnemo `.safetensors`, or a Hugging Face folder's
/// `config.json`, `*.safetensors` and (optionally) `tokenizer.json`. Returns the name to
/// show and the files, or why they cannot be used.
async fn read_weight_files(files: &[File]) -> (String, Result<WeightFiles, String>) {
    let names: Vec<String> = files.iter().map(File::name).collect();
    // The weights: the one file that is not a folder's JSON (any name: a download may
    // have lost its extension).
    let weights: Vec<&File> = files
        .iter()
        .filter(|f| f.name() != "config.json" && f.name() != "tokenizer.json")
        .collect();
    let find = |n: &str| files.iter().find(|f| f.name() == n);
    let config = find("config.json");
    let tokenizer = find("tokenizer.json");
    let name = weights
        .first()
        .map_or_else(|| names.join(", "), |f| f.name());
    let read = async {
        let [w] = weights.as_slice() else {
            if weights.is_empty() {
                return Err("pick the weights too (model.safetensors)".to_string());
            }
            if let Some(f) = weights.iter().find(|f| !f.name().ends_with(".safetensors")) {
                return Err(format!(
                    "“{}” is not part of a model: pick a .safetensors file, with config.json and tokenizer.json for a Hugging Face model",
                    f.name()
                ));
            }
            return Err(
                "pick one weights file (sharded Hugging Face models are not supported)".into(),
            );
        };
        if config.is_none() && tokenizer.is_some() {
            return Err("a Hugging Face model needs its config.json too".into());
        }
        let weights = crate::upload::read_weights(w).await?;
        let config = match config {
            Some(f) => Some(crate::upload::read_json(f).await?),
            None => None,
        };
        let tokenizer = match tokenizer {
            Some(f) => Some(crate::upload::read_json(f).await?),
            None => None,
        };
        Ok(WeightFiles {
            weights,
            config,
            tokenizer,
        })
    };
    (name, read.await)
}
