//! The Mnemo page: data, model and training settings, a backend badge, live progress and
//! the loss chart. Training happens in the worker (see `bin/worker.rs`); this component
//! only sends specs and draws what comes back.

use mnemo_core::train::Progress;
use mnemo_core::upload::UPLOAD_CAP;
use mnemo_core::{BackendKind, ExperimentSpec};
use mnemo_plots::{LossSeries, loss_svg};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    File, HtmlCanvasElement, HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement,
    MessageEvent, Worker, WorkerOptions, WorkerType,
};
use yew::prelude::*;

mod counterfactual;
mod extraction;
mod runs;
mod share;
mod softprompt;
mod tokens;

use counterfactual::{CfState, CfStatus};
use extraction::{ExState, ExStatus};
use runs::RunsState;
use share::ShareState;
use softprompt::{SpState, SpStatus};

use crate::chart::{draw_loss, draw_on};
use crate::download::{download_canvas, download_text};
use crate::form::{FIELDS, Form, Source};
use crate::protocol::{FromWorker, RunInfo, ToWorker};
use crate::store::{RunData, RunMeta, RunResult, RunStatus, Store};
use mnemo_measures::did::DidResult;
use mnemo_plots::did::{
    HeatmapLayout, heatmap_cell_at, instantaneous_chart, persistent_chart, profile_heatmap,
    profile_heatmap_layout, residual_chart, simple_chart, svg_of,
};

/// Where the user wants to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// WebGPU when there is an adapter, otherwise the CPU.
    Auto,
    /// Always the CPU.
    Cpu,
    /// WebGPU (only offered when there is an adapter).
    WebGpu,
}

/// What the current run is doing.
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
    /// A kept run was reopened: its settings, losses and results are shown.
    Reopened {
        /// Its name.
        name: String,
        /// How it ended.
        status: RunStatus,
    },
}

/// A kept run's data and resume point as read (or why not).
pub type LoadedRun = Result<Box<(RunData, Option<Vec<u8>>)>, String>;

/// Why a kept run is being loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// To show it.
    Open,
    /// To go on training from its resume point.
    Resume,
    /// To run its spec again.
    Again,
}

/// Messages of the app component.
pub enum Msg {
    /// From the worker.
    Worker(FromWorker),
    /// Data source radio.
    SetSource(Source),
    /// Text area.
    SetText(String),
    /// Split select.
    SetSplit(String),
    /// Window length.
    SetWindow(String),
    /// Tokenizer select.
    SetTokenizer(String),
    /// Held-out percentage.
    SetHeldout(String),
    /// A numeric field.
    SetField(&'static str, String),
    /// A file was picked or dropped.
    FileChosen(File),
    /// A file was read (or refused).
    FileRead(Result<(String, mnemo_core::upload::UploadedTexts), String>),
    /// Drag state of the drop zone.
    Dragging(bool),
    /// Backend select.
    SetBackend(BackendChoice),
    /// Train the form's spec.
    Train,
    /// Reset to the demo and train it.
    RunDemo,
    /// Cancel the run.
    Cancel,
    /// Exports.
    Export(&'static str),
    /// Run the profile demo (one model) or the size comparison (several).
    RunProfile(bool),
    /// Pointer over the heat map, in canvas pixels (`None` = left it).
    Hover(Option<(f64, f64)>),
    /// Export a profile chart or table.
    ExportProfile(&'static str),
    /// Train a counterfactual ensemble: the demo, or (`true`) the form's settings.
    RunCounterfactual(bool),
    /// The number of models.
    SetCfModels(String),
    /// Open (or close) the detail of a text.
    SelectUnit(Option<usize>),
    /// Export a counterfactual chart or table.
    ExportCf(&'static str),
    /// Prefix (`true`) or suffix length field.
    SetAffix(bool, String),
    /// Measure extraction on the last trained model.
    Extract,
    /// Show held-out texts (`true`) or training texts in the extraction list.
    ShowHeldout(bool),
    /// Export an extraction chart or table.
    ExportExtraction(&'static str),
    /// Make a link to the last experiment (`true`: the embed variant).
    MakeLink(bool),
    /// Ask the worker for the last model's weights.
    ExportWeights,
    /// A weights file was picked.
    ImportWeights(File),
    /// ... and read, to be checked against this spec.
    WeightsRead(String, Box<ExperimentSpec>, Result<Vec<u8>, String>),
    /// Train soft prompts: the demo (its own model first, `true`) or on the last model.
    RunSoftPrompt(bool),
    /// A soft-prompt field changed (index, text).
    SetSpField(usize, String),
    /// Export a soft-prompt chart or table.
    ExportSp(&'static str),
    /// The runs store opened (or not), with the kept runs.
    RunsOpened(Result<Store, String>, Result<Vec<RunMeta>, String>),
    /// A write to the runs store finished.
    Kept(Result<(), String>),
    /// A resume point of run `id` at `step` was kept.
    ResumeKept(String, usize),
    /// A run's name field changed.
    SetRunName(String, String),
    /// Rename a run to its name field's text.
    RenameRun(String),
    /// Reopen a kept run.
    OpenRun(String),
    /// Resume an interrupted run from its resume point.
    ResumeRun(String),
    /// Run an interrupted run's spec again.
    RunAgain(String),
    /// Delete a kept run.
    DeleteRun(String),
    /// A kept run was read (for `Load`).
    RunLoaded(String, Load, LoadedRun),
    /// The file an opened link names was picked.
    LinkFile(File),
    /// ... and read (or refused).
    LinkFileRead(Result<String, String>),
}

/// Where the memorisation profile stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileState {
    /// Nothing asked.
    Idle,
    /// Training model `index` of `count`.
    Training {
        /// 1-based.
        index: usize,
        /// Models in all.
        count: usize,
    },
    /// Evaluating the panel.
    Evaluating {
        /// Checkpoints done.
        done: usize,
        /// Checkpoints in all.
        total: usize,
    },
    /// All results in.
    Ready {
        /// Seconds evaluating the (last) panel.
        panel_s: f64,
        /// Seconds estimating.
        estimate_s: f64,
    },
}

const HEATMAP_SIZE: (u32, u32) = (760, 420);
const CHART_SIZE: (u32, u32) = (760, 340);

/// The model widths of the size comparison.
pub const COMPARE_WIDTHS: [usize; 3] = [32, 64, 128];

/// The app.
pub struct App {
    form: Form,
    worker: Option<Worker>,
    _on_message: Option<OnMessage>,
    worker_error: Option<String>,
    webgpu: Option<Result<String, String>>,
    choice: BackendChoice,
    run: RunState,
    info: Option<RunInfo>,
    progress: Option<Progress>,
    losses: Vec<(usize, f32)>,
    spec_run: Option<ExperimentSpec>,
    upload: Option<Result<String, String>>,
    dragging: bool,
    canvas: NodeRef,
    profile_state: ProfileState,
    profiles: Vec<(String, DidResult)>,
    queue: Vec<(ExperimentSpec, String)>,
    hover: Option<(f64, f64)>,
    heatmap_layout: HeatmapLayout,
    heatmap: NodeRef,
    persistent: NodeRef,
    instantaneous: NodeRef,
    residual: NodeRef,
    simple: NodeRef,
    profile_dirty: bool,
    /// (points, last step) of the loss curve as last drawn.
    loss_drawn: Option<(usize, Option<usize>)>,
    cf: CfState,
    ex: ExState,
    sp: SpState,
    runs: RunsState,
    /// A new run to keep (spec and view), set where jobs start and kept after `update`.
    new_run: Option<(ExperimentSpec, &'static str)>,
    /// A description of the model of the last finished training run (kept by the worker).
    trained_model: Option<String>,
    share: ShareState,
    /// The outcome of the last weights export or import.
    weights_message: Option<Result<String, String>>,
    /// The last experiment started and its view (what "Copy link" shares).
    last_job: Option<(ExperimentSpec, &'static str)>,
    /// Measure extraction when the current training run finishes (a link's extraction view).
    extract_after_train: bool,
}

/// The worker's message handler; kept alive as long as the worker.
type OnMessage = Closure<dyn FnMut(MessageEvent)>;

fn spawn_worker(link: &html::Scope<App>) -> Result<(Worker, OnMessage), String> {
    let opts = WorkerOptions::new();
    opts.set_type(WorkerType::Classic);
    let worker =
        Worker::new_with_options("./worker_loader.js", &opts).map_err(|e| format!("{e:?}"))?;
    let link_for_errors = link.clone();
    let link = link.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        match serde_wasm_bindgen::from_value::<FromWorker>(e.data()) {
            Ok(msg) => link.send_message(Msg::Worker(msg)),
            Err(err) => link.send_message(Msg::Worker(FromWorker::Failed {
                message: format!("unreadable message from the worker: {err}"),
            })),
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let error_link = link_for_errors;
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
        error_link.send_message(Msg::Worker(FromWorker::Failed {
            message: "the training worker stopped unexpectedly (see the browser console)".into(),
        }));
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    Ok((worker, on_message))
}

impl App {
    fn send(&self, msg: &ToWorker) {
        let Some(w) = &self.worker else { return };
        let sent = serde_wasm_bindgen::to_value(msg)
            .map_err(|e| e.to_string())
            .and_then(|v| w.post_message(&v).map_err(|e| format!("{e:?}")));
        if let Err(e) = sent {
            // Not expected: every message is plain data. Say so rather than wait forever.
            web_sys::console::error_1(&format!("cannot send {msg:?} to the worker: {e}").into());
        }
    }

    /// Whether the worker can take a job now: it has answered the probe (messages sent
    /// before it listens are lost) and nothing runs.
    fn can_start(&self) -> bool {
        self.webgpu.is_some() && !self.running()
    }

    fn webgpu_ok(&self) -> bool {
        matches!(self.webgpu, Some(Ok(_)))
    }

    /// The backend the next run will use.
    fn backend(&self) -> BackendKind {
        match self.choice {
            BackendChoice::Cpu => BackendKind::Flex,
            BackendChoice::WebGpu | BackendChoice::Auto if self.webgpu_ok() => BackendKind::Wgpu,
            _ => BackendKind::Flex,
        }
    }

    fn running(&self) -> bool {
        matches!(self.run, RunState::Starting | RunState::Running)
            || matches!(
                self.profile_state,
                ProfileState::Training { .. } | ProfileState::Evaluating { .. }
            )
            || self.cf.busy()
            || self.ex.busy()
            || self.sp.busy()
    }

    /// A training run of `spec` is about to start: clear the last one's curve and facts.
    fn begin_training(&mut self, spec: &ExperimentSpec) {
        self.losses.clear();
        self.progress = None;
        self.info = None;
        self.run = RunState::Starting;
        self.spec_run = Some(spec.clone());
    }

    fn start(&mut self, spec: ExperimentSpec) {
        self.begin_training(&spec);
        self.last_job = Some((spec.clone(), "train"));
        self.new_run = Some((spec.clone(), "train"));
        self.send(&ToWorker::Train {
            spec,
            backend: self.backend(),
        });
    }

    /// Send the next queued profile job, if any.
    fn next_profile(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        let (spec, label) = self.queue.remove(0);
        let count = self.profiles.len() + self.queue.len() + 1;
        self.profile_state = ProfileState::Training {
            index: self.profiles.len() + 1,
            count,
        };
        self.begin_training(&spec);
        if self.profiles.is_empty() {
            self.new_run = Some((spec.clone(), "profile"));
            self.last_job = Some((spec.clone(), "profile"));
        }
        self.send(&ToWorker::Profile {
            spec,
            backend: self.backend(),
            label,
        });
    }

    /// Start a counterfactual ensemble of `spec` (its `counterfactual` section, with the
    /// view's number of models).
    fn start_counterfactual(&mut self, base: ExperimentSpec) {
        match self.cf.spec(base) {
            Ok(spec) => {
                self.cf.error = None;
                self.cf.status = CfStatus::Training {
                    done: 0,
                    total: spec.counterfactual.as_ref().map_or(0, |c| c.models),
                    elapsed_s: 0.0,
                };
                self.last_job = Some((spec.clone(), "counterfactual"));
                self.new_run = Some((spec.clone(), "counterfactual"));
                self.send(&ToWorker::Counterfactual {
                    spec,
                    backend: self.backend(),
                });
            }
            Err(e) => self.cf.error = Some(e),
        }
    }

    /// Train soft prompts for `base` with the view's settings: its own model first
    /// (`train_first`) or against the last trained model.
    fn start_softprompt(&mut self, base: ExperimentSpec, train_first: bool) {
        match self.sp.spec(base) {
            Ok(spec) => {
                self.sp.begin(train_first);
                if train_first {
                    self.begin_training(&spec);
                    self.new_run = Some((spec.clone(), "softprompt"));
                }
                self.last_job = Some((spec.clone(), "softprompt"));
                self.send(&ToWorker::SoftPrompt {
                    spec,
                    backend: self.backend(),
                    train: train_first,
                });
            }
            Err(e) => self.sp.error = Some(e),
        }
    }

    /// Re-run the experiment of the link the page was opened with (once, when the
    /// worker is ready and any file it names is attached).
    fn run_link(&mut self) {
        if self.share.started || self.webgpu.is_none() || self.running() {
            return;
        }
        let Some(p) = &self.share.opened else { return };
        if !p.run || p.corpus.is_some() {
            return;
        }
        let (spec, view) = (p.spec.clone(), p.view.clone().unwrap_or_default());
        self.share.started = true;
        self.start_view(spec, &view);
    }

    /// Start the job of `view` for `spec`, with the view's fields set from the spec (a
    /// link's experiment, or a kept run run again).
    fn start_view(&mut self, spec: ExperimentSpec, view: &str) {
        match view {
            "profile" => {
                self.profiles.clear();
                let label = format!("d_model {}", spec.model.d_model);
                self.queue = vec![(spec, label)];
                self.next_profile();
            }
            "counterfactual" => {
                if let Some(c) = &spec.counterfactual {
                    self.cf.models = c.models.to_string();
                }
                self.start_counterfactual(spec);
            }
            "extraction" => {
                if let Some(e) = &spec.extraction {
                    self.ex.prefix = e.prefix.to_string();
                    self.ex.suffix = e.suffix.to_string();
                }
                self.extract_after_train = true;
                self.start(spec);
            }
            "softprompt" => {
                if let Some(p) = &spec.softprompt {
                    self.sp.set_fields(p);
                }
                self.start_softprompt(spec, true);
            }
            _ => self.start(spec),
        }
    }

    fn export_profile(&self, what: &str) -> Result<(), String> {
        let (_, result) = self.profiles.last().ok_or("no profile yet")?;
        let tables = mnemo_measures::export::tables(result).map_err(|e| e.to_string())?;
        let table = |name: &str| {
            tables
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| format!("no table {name}"))
        };
        let canvas_png = |node: &NodeRef, name: &str| download_canvas(node.cast(), name);
        let comparisons: Vec<(String, &DidResult)> =
            self.profiles.iter().map(|(l, r)| (l.clone(), r)).collect();
        match what {
            "heatmap.png" => canvas_png(&self.heatmap, "profile.png"),
            "persistent.png" => canvas_png(&self.persistent, "persistent.png"),
            "instantaneous.png" => canvas_png(&self.instantaneous, "instantaneous.png"),
            "residual.png" => canvas_png(&self.residual, "residual.png"),
            "simple.png" => canvas_png(&self.simple, "simple.png"),
            "heatmap.svg" => download_text(
                "profile.svg",
                "image/svg+xml",
                &svg_of(HEATMAP_SIZE, |a| profile_heatmap(a, result)),
            ),
            "persistent.svg" => download_text(
                "persistent.svg",
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| persistent_chart(a, &comparisons)),
            ),
            "instantaneous.svg" => download_text(
                "instantaneous.svg",
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| instantaneous_chart(a, result)),
            ),
            "residual.svg" => download_text(
                "residual.svg",
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| residual_chart(a, result)),
            ),
            "profile.json" => download_text(
                what,
                "application/json",
                &serde_json::to_string_pretty(&self.profiles).map_err(|e| e.to_string())?,
            ),
            "simple.svg" => download_text(
                "simple.svg",
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| simple_chart(a, result)),
            ),
            name => download_text(name, "text/csv", &table(name)?),
        }
    }

    fn export(&self, what: &str) -> Result<(), String> {
        let series = [LossSeries {
            label: String::new(),
            points: self.losses.clone(),
        }];
        match what {
            "csv" => {
                let mut csv = String::from("step,loss\n");
                for (s, l) in &self.losses {
                    csv.push_str(&format!("{s},{l}\n"));
                }
                download_text("loss.csv", "text/csv", &csv)
            }
            "svg" => download_text("loss.svg", "image/svg+xml", &loss_svg(&series, (800, 480))),
            "png" => download_canvas(self.canvas.cast(), "loss.png"),
            "spec" => {
                let spec = match &self.spec_run {
                    Some(s) => s.clone(),
                    None => self
                        .form
                        .to_spec()
                        .map_err(|_| "fix the settings first".to_string())?,
                };
                download_text("mnemo-spec.json", "application/json", &spec.to_json())
            }
            _ => Ok(()),
        }
    }
}

fn read_file(file: File, link: html::Scope<App>) {
    wasm_bindgen_futures::spawn_local(async move {
        let name = file.name();
        let result = crate::upload::read_text(&file).await.and_then(|text| {
            mnemo_core::upload::read_texts(&name, &text)
                .map(|t| (name.clone(), t))
                .map_err(|e| e.to_string())
        });
        link.send_message(Msg::FileRead(result));
    });
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

impl App {
    fn view_profile(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let running = self.running();
        let probing = self.webgpu.is_none();
        let (state_name, status) = match &self.profile_state {
            ProfileState::Idle => ("idle", "Train a model on 480 invented facts, each seen once, and measure how much it memorised each one when it saw it and later.".to_string()),
            ProfileState::Training { index, count } => ("training", format!("Training model {index} of {count}…")),
            ProfileState::Evaluating { done, total } => ("evaluating", format!("Evaluating the panel: checkpoint {done} of {total}…")),
            ProfileState::Ready { panel_s, estimate_s } => ("ready", format!(
                "Profile ready: panel evaluated in {panel_s:.1} s, estimated with 1000 bootstrap draws in {estimate_s:.2} s.")),
        };
        let eval_bar = match &self.profile_state {
            ProfileState::Evaluating { done, total } => {
                html! { <progress id="panel-progress" max={total.to_string()} value={done.to_string()}></progress> }
            }
            _ => html! {},
        };
        let export = |what: &'static str, label: &'static str| {
            html! { <button onclick={link.callback(move |_| Msg::ExportProfile(what))}>{ label }</button> }
        };
        let charts = match self.profiles.last() {
            None => html! {},
            Some((_, result)) => {
                let tooltip = self.hover.and_then(|(x, y)| heatmap_cell_at(result, &self.heatmap_layout, x, y)).map(|c| {
                    format!(
                        "cohort {} · checkpoint {}{} · memorisation {:.3} (band {:.3} to {:.3}) · SE {:.3} · {}",
                        c.cohort, c.checkpoint,
                        if c.checkpoint < c.cohort { " (placebo: before training on it)" } else { "" },
                        c.memorisation, -c.upper, -c.lower, c.se,
                        if c.significant { "significant" } else { "not significant" })
                });
                let onmousemove = link.callback(|e: MouseEvent| {
                    let canvas: HtmlCanvasElement = e.target_unchecked_into();
                    let sx = canvas.width() as f64 / canvas.client_width().max(1) as f64;
                    let sy = canvas.height() as f64 / canvas.client_height().max(1) as f64;
                    Msg::Hover(Some((e.offset_x() as f64 * sx, e.offset_y() as f64 * sy)))
                });
                let overall = &result.overall;
                let compare = (self.profiles.len() > 1).then(|| {
                    self.profiles
                        .iter()
                        .map(|(label, r)| {
                            let at = |e: i64| r.event.iter().find(|a| a.key == e).map_or(f64::NAN, |a| a.memorisation);
                            format!("{label}: {:.3} right after training, {:.3} three checkpoints later", at(0), at(3))
                        })
                        .collect::<Vec<_>>()
                        .join(" · ")
                });
                html! {
                    <>
                    if let Some(text) = compare { <p id="compare-summary">{ format!("Persistent memorisation (nats/token) — {text}") }</p> }
                    <p id="profile-summary">{ format!(
                        "{} instances ({} never trained) in {} cohorts; average memorisation after training {:.3} nats/token (band {:.3} to {:.3}).",
                        result.instances, result.never_trained, result.cohorts.len(), overall.memorisation, -overall.upper, -overall.lower) }</p>
                    <canvas id="profile-heatmap" ref={self.heatmap.clone()} width={HEATMAP_SIZE.0.to_string()} height={HEATMAP_SIZE.1.to_string()}
                        data-plot-x={format!("{},{}", self.heatmap_layout.x.start, self.heatmap_layout.x.end)}
                        data-plot-y={format!("{},{}", self.heatmap_layout.y.start, self.heatmap_layout.y.end)}
                        {onmousemove} onmouseleave={link.callback(|_| Msg::Hover(None))}></canvas>
                    <p id="cell-tooltip" class="mono">{ tooltip.unwrap_or_else(|| "Point at a cell for its numbers. Muted cells: the band includes 0. Dots: placebo cells before training.".into()) }</p>
                    <div class="row actions">{ export("heatmap.png", "PNG") }{ export("heatmap.svg", "SVG") }{ export("att_gt.csv", "CSV") }{ export("profile.json", "JSON") }</div>
                    <canvas id="persistent-chart" ref={self.persistent.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("persistent.png", "PNG") }{ export("persistent.svg", "SVG") }{ export("event.csv", "CSV") }</div>
                    <canvas id="instantaneous-chart" ref={self.instantaneous.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("instantaneous.png", "PNG") }{ export("instantaneous.svg", "SVG") }{ export("instantaneous.csv", "CSV") }</div>
                    <canvas id="residual-chart" ref={self.residual.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("residual.png", "PNG") }{ export("residual.svg", "SVG") }{ export("residual.csv", "CSV") }</div>
                    <canvas id="simple-chart" ref={self.simple.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("simple.png", "PNG") }{ export("simple.svg", "SVG") }{ export("simple.csv", "CSV") }</div>
                    </>
                }
            }
        };
        html! {
            <section class="panel" id="profile-panel">
                <h2>{ "Memorisation profile" }</h2>
                <p class="help">{ "Difference-in-differences (Lesci et al., 2024): how much better the model predicts an instance because it was trained on it, compared with held-out instances, at each checkpoint after training on it. Positive = memorised." }</p>
                <div class="row actions">
                    <button id="profile-button" class="primary" onclick={link.callback(|_| Msg::RunProfile(false))} disabled={running || probing}>{ "Run the profile demo" }</button>
                    <button id="compare-button" onclick={link.callback(|_| Msg::RunProfile(true))} disabled={running || probing}>
                        { format!("Compare model sizes (d_model {})", COMPARE_WIDTHS.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")) }</button>
                </div>
                <p id="profile-status" data-state={state_name}>{ status }</p>
                { eval_bar }
                { charts }
            </section>
        }
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (worker, on_message, worker_error) = match spawn_worker(ctx.link()) {
            Ok((w, c)) => (Some(w), Some(c), None),
            Err(e) => (
                None,
                None,
                Some(format!("The training worker could not start: {e}")),
            ),
        };
        Self::open_runs(ctx);
        let share = ShareState::from_location();
        let form = match &share.opened {
            Some(p) => Form::from_spec(&p.spec),
            None => Form::from_spec(&ExperimentSpec::demo()),
        };
        App {
            form,
            worker,
            _on_message: on_message,
            worker_error,
            webgpu: None,
            choice: BackendChoice::Auto,
            run: RunState::Idle,
            info: None,
            progress: None,
            losses: Vec::new(),
            spec_run: None,
            upload: None,
            dragging: false,
            canvas: NodeRef::default(),
            profile_state: ProfileState::Idle,
            profiles: Vec::new(),
            queue: Vec::new(),
            hover: None,
            heatmap_layout: HeatmapLayout::default(),
            heatmap: NodeRef::default(),
            persistent: NodeRef::default(),
            instantaneous: NodeRef::default(),
            residual: NodeRef::default(),
            simple: NodeRef::default(),
            profile_dirty: false,
            loss_drawn: None,
            cf: CfState::default(),
            ex: ExState::default(),
            sp: SpState::default(),
            runs: RunsState::default(),
            new_run: None,
            trained_model: None,
            share,
            weights_message: None,
            last_job: None,
            extract_after_train: false,
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Self::Message) -> bool {
        let render = self.handle(ctx, msg);
        if let Some((spec, view)) = self.new_run.take() {
            self.keep_new(ctx, &spec, view);
            return true;
        }
        render
    }

    fn rendered(&mut self, ctx: &Context<Self>, _first_render: bool) {
        self.cf.draw();
        self.ex.draw();
        self.sp.draw();
        if let Some((_, result)) = self.profiles.last().filter(|_| self.profile_dirty) {
            self.profile_dirty = false;
            let comparisons: Vec<(String, &DidResult)> =
                self.profiles.iter().map(|(l, r)| (l.clone(), r)).collect();
            if let Some(c) = self.heatmap.cast::<HtmlCanvasElement>() {
                let mut layout = None;
                draw_on(c, |a| {
                    layout = Some(profile_heatmap_layout(a, result)?);
                    Ok(())
                });
                if let Some(layout) = layout.filter(|l| *l != self.heatmap_layout) {
                    // Re-render once so the page publishes where the plot landed.
                    self.heatmap_layout = layout;
                    ctx.link().send_message(Msg::Hover(self.hover));
                }
            }
            if let Some(c) = self.persistent.cast::<HtmlCanvasElement>() {
                draw_on(c, |a| persistent_chart(a, &comparisons));
            }
            if let Some(c) = self.instantaneous.cast::<HtmlCanvasElement>() {
                draw_on(c, |a| instantaneous_chart(a, result));
            }
            if let Some(c) = self.residual.cast::<HtmlCanvasElement>() {
                draw_on(c, |a| residual_chart(a, result));
            }
            if let Some(c) = self.simple.cast::<HtmlCanvasElement>() {
                draw_on(c, |a| simple_chart(a, result));
            }
        }
        // Redraw the loss curve only when it changed (not on every hover or status).
        let drawn = (self.losses.len(), self.losses.last().map(|l| l.0));
        if let Some(canvas) = self
            .canvas
            .cast::<HtmlCanvasElement>()
            .filter(|_| self.loss_drawn.replace(drawn) != Some(drawn))
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
        let spec = self.form.to_spec();
        let errors = spec.as_ref().err().cloned().unwrap_or_default();
        let running = self.running();
        let backend = self.backend();
        let probing = self.webgpu.is_none();
        let data_locked = self.share.locked("data");

        let badge = html! {
            <span id="backend-badge" class={classes!("badge", if backend == BackendKind::Wgpu { "gpu" } else { "cpu" })}
                  data-backend={if backend == BackendKind::Wgpu { "webgpu" } else { "cpu" }}
                  title={match &self.webgpu { Some(Ok(a)) => a.clone(), Some(Err(e)) => e.clone(), None => "checking for WebGPU".into() }}>
                { if probing { "checking…" } else if backend == BackendKind::Wgpu { "WebGPU" } else { "CPU" } }
            </span>
        };
        let on_backend = link.callback(|e: Event| {
            let s: HtmlSelectElement = e.target_unchecked_into();
            Msg::SetBackend(match s.value().as_str() {
                "cpu" => BackendChoice::Cpu,
                "webgpu" => BackendChoice::WebGpu,
                _ => BackendChoice::Auto,
            })
        });
        let notice = match &self.webgpu {
            Some(Err(reason)) => html! {
                <p id="webgpu-notice" class="notice" role="status">
                    { format!("WebGPU is not available: {reason}. Mnemo trains on the CPU instead: the same results, only slower.") }
                </p>
            },
            _ => html! {},
        };

        let field = |key: &'static str, label: &'static str, help: &'static str| {
            let value = self.form.fields.get(key).cloned().unwrap_or_default();
            let err = errors.get(key).cloned();
            let oninput = link.callback(move |e: InputEvent| {
                let i: HtmlInputElement = e.target_unchecked_into();
                Msg::SetField(key, i.value())
            });
            let id = format!("f-{}", key.replace('.', "-"));
            html! {
                <label class={classes!("field", err.is_some().then_some("invalid"))}>
                    <span>{ label }</span>
                    <input id={id} type="text" inputmode="decimal" value={value} {oninput} disabled={running || self.share.locked(key)}
                           aria-invalid={if err.is_some() { "true" } else { "false" }} />
                    <small class={if err.is_some() { "error" } else { "help" }}>{ err.unwrap_or_else(|| help.to_string()) }</small>
                </label>
            }
        };

        let ondrop = link.callback(|e: DragEvent| {
            e.prevent_default();
            match e
                .data_transfer()
                .and_then(|d| d.files())
                .and_then(|f| f.get(0))
            {
                Some(file) => Msg::FileChosen(file),
                None => Msg::Dragging(false),
            }
        });
        let ondragover = link.callback(|e: DragEvent| {
            e.prevent_default();
            Msg::Dragging(true)
        });
        let ondragleave = link.callback(|_: DragEvent| Msg::Dragging(false));
        let onfile = link.batch_callback(|e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let file = input.files().and_then(|f| f.get(0));
            input.set_value("");
            file.map(Msg::FileChosen)
        });

        let status = match &self.run {
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
                        <span id="generalisation-gap">{ format!(" Mean loss on training instances {t:.3}, on held-out instances {h:.3} nats/token{}",
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
        };
        let state_name = match &self.run {
            RunState::Idle => "idle",
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Done { .. } => "done",
            RunState::Cancelled { .. } => "cancelled",
            RunState::Failed(_) => "failed",
            RunState::Reopened { .. } => "reopened",
        };
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
        let loss_json = serde_json::to_string(&self.losses).unwrap_or_default();
        let used_backend = self
            .info
            .as_ref()
            .map(|i| {
                if i.backend == BackendKind::Wgpu {
                    "webgpu"
                } else {
                    "cpu"
                }
            })
            .unwrap_or("");

        html! {
            <main>
                <header>
                    <h1>{ "Mnemo" }</h1>
                    if !self.share.embedded() {
                        <p class="tagline">{ "Train a small language model in your browser and watch what it memorises." }</p>
                    }
                    <div class={classes!("backend", self.share.hidden("backend").then_some("hidden"))}>
                        { badge }
                        <label>{ "Compute: " }
                            <select id="backend-select" onchange={on_backend} disabled={running}>
                                <option value="auto" selected={self.choice == BackendChoice::Auto}>{ "Automatic" }</option>
                                <option value="webgpu" disabled={!self.webgpu_ok()} selected={self.choice == BackendChoice::WebGpu}>{ "WebGPU" }</option>
                                <option value="cpu" selected={self.choice == BackendChoice::Cpu}>{ "CPU" }</option>
                            </select>
                        </label>
                    </div>
                </header>
                { notice }
                if let Some(e) = &self.worker_error { <p class="error" role="alert">{ e }</p> }
                if let Some(e) = &self.share.error { <p id="link-error" class="error" role="alert">{ e }</p> }
                if let Some(lesson) = self.share.opened.as_ref().and_then(|p| p.lesson.clone()) {
                    <section id="lesson" class="notice">{ lesson }</section>
                }
                if let Some((name, bytes)) = self.share.waiting_for_file() {
                    <section id="link-file" class="notice">
                        <p>{ format!("This link trains on a text of {bytes} bytes{} that was too large to travel inside it. Attach that file to run the experiment; Mnemo checks that it is the same file.",
                            if name.is_empty() { String::new() } else { format!(" (“{name}”)") }) }</p>
                        <input id="link-file-input" type="file" accept=".txt,text/plain"
                            onchange={link.batch_callback(|e: Event| { let i: HtmlInputElement = e.target_unchecked_into(); let f = i.files().and_then(|f| f.get(0)); i.set_value(""); f.map(Msg::LinkFile) })} />
                        if let Some(e) = &self.share.file_error { <p id="link-file-error" class="error" role="alert">{ e }</p> }
                    </section>
                }

                <section class={classes!("quick", self.share.hidden("demo").then_some("hidden"))}>
                    <button id="demo-button" class="primary" onclick={link.callback(|_| Msg::RunDemo)} disabled={running || probing}>{ "Run the demo" }</button>
                    <span class="help">{ demo_blurb() }</span>
                </section>

                <section class={classes!("panel", self.share.hidden("data").then_some("hidden"))}>
                    <h2>{ "Data" }</h2>
                    <div class="row">
                        <label><input type="radio" name="source" checked={self.form.source == Source::Builtin} disabled={running || data_locked}
                            onchange={link.callback(|_| Msg::SetSource(Source::Builtin))} />{ " Built-in: invented facts" }</label>
                        <label><input id="source-text" type="radio" name="source" checked={self.form.source == Source::Text} disabled={running || data_locked}
                            onchange={link.callback(|_| Msg::SetSource(Source::Text))} />{ " My text" }</label>
                    </div>
                    <div class={classes!("dropzone", self.dragging.then_some("dragging"))} {ondrop} {ondragover} {ondragleave}>
                        <textarea id="text-input" rows="6" placeholder="Paste or type text here, or drop a .txt file on this box: one instance per line or paragraph."
                            value={self.form.text.clone()} disabled={running || data_locked}
                            oninput={link.callback(|e: InputEvent| { let t: HtmlTextAreaElement = e.target_unchecked_into(); Msg::SetText(t.value()) })}
                            onfocus={link.callback(|_| Msg::SetSource(Source::Text))} />
                        <div class="row">
                            <label class="file">{ "Upload a text file " }
                                <input id="file-input" type="file" accept=".txt,.csv,.jsonl,.ndjson,text/plain,text/csv" onchange={onfile} disabled={running || data_locked} />
                            </label>
                            <small class="help">{ format!("Plain UTF-8 text, or a .csv / .jsonl table with a “text” column; up to {} MiB.", UPLOAD_CAP / 1024 / 1024) }</small>
                        </div>
                    </div>
                    { match &self.upload {
                        Some(Ok(m)) => html! { <p id="upload-message" class="ok" role="status">{ m }</p> },
                        Some(Err(m)) => html! { <p id="upload-message" class="error" role="alert">{ m }</p> },
                        None => html! {},
                    } }
                    if let Some(e) = errors.get("data") { <p class="error">{ e }</p> }
                    <div class="row">
                        <label class="field"><span>{ "Instances" }</span>
                            <select id="split-select" disabled={running || data_locked} onchange={link.callback(|e: Event| { let s: HtmlSelectElement = e.target_unchecked_into(); Msg::SetSplit(s.value()) })}>
                                <option value="lines" selected={self.form.split == "lines"}>{ "one per line" }</option>
                                <option value="paragraphs" selected={self.form.split == "paragraphs"}>{ "one per paragraph" }</option>
                                <option value="windows" selected={self.form.split == "windows"}>{ "fixed-length windows" }</option>
                            </select>
                        </label>
                        if self.form.split == "windows" {
                            <label class="field"><span>{ "Window (characters)" }</span>
                                <input type="text" value={self.form.window.clone()} disabled={running || data_locked}
                                    oninput={link.callback(|e: InputEvent| { let i: HtmlInputElement = e.target_unchecked_into(); Msg::SetWindow(i.value()) })} />
                                if let Some(e) = errors.get("data.source.split.length") { <small class="error">{ e }</small> }
                            </label>
                        }
                        <label class="field"><span>{ "Tokenizer" }</span>
                            <select disabled={running || data_locked} onchange={link.callback(|e: Event| { let s: HtmlSelectElement = e.target_unchecked_into(); Msg::SetTokenizer(s.value()) })}>
                                <option value="char" selected={self.form.tokenizer == "char"}>{ "characters" }</option>
                                <option value="byte" selected={self.form.tokenizer == "byte"}>{ "bytes (UTF-8)" }</option>
                            </select>
                        </label>
                        <label class={classes!("field", errors.contains_key("data.heldout_fraction").then_some("invalid"))}><span>{ "Held out (%)" }</span>
                            <input type="text" value={self.form.heldout.clone()} disabled={running || data_locked}
                                oninput={link.callback(|e: InputEvent| { let i: HtmlInputElement = e.target_unchecked_into(); Msg::SetHeldout(i.value()) })} />
                            <small class={if errors.contains_key("data.heldout_fraction") { "error" } else { "help" }}>
                                { errors.get("data.heldout_fraction").cloned().unwrap_or_else(|| "never trained on".into()) }</small>
                        </label>
                    </div>
                </section>

                <section class={classes!("panel", self.share.hidden("model").then_some("hidden"))}>
                    <h2>{ "Model and training" }</h2>
                    <div class="grid">
                        { for FIELDS.iter().map(|(k, l, h)| field(k, l, h)) }
                    </div>
                    <div class="row actions">
                        <button id="train-button" class="primary" onclick={link.callback(|_| Msg::Train)} disabled={running || spec.is_err() || probing}>{ "Train" }</button>
                        <button id="cancel-button" onclick={link.callback(|_| Msg::Cancel)} disabled={!running}>{ "Cancel" }</button>
                        <button onclick={link.callback(|_| Msg::Export("spec"))} disabled={spec.is_err() && self.spec_run.is_none()}>{ "Download spec" }</button>
                    </div>
                </section>

                <section class={classes!("panel", self.share.hidden("progress").then_some("hidden"))}>
                    <h2>{ "Progress" }</h2>
                    <progress id="progress-bar" max={total.to_string()} value={step.to_string()}></progress>
                    <p id="progress-text" class="mono">{ progress_text.unwrap_or_default() }</p>
                    if let Some(t) = info_text { <p class="help">{ t }</p> }
                    <p id="status" data-state={state_name} data-backend={used_backend}>{ status }</p>
                    <canvas id="loss-chart" ref={self.canvas.clone()} width="760" height="380"></canvas>
                    <output id="loss-json" hidden=true>{ loss_json }</output>
                    <div class="row actions">
                        <button onclick={link.callback(|_| Msg::Export("csv"))} disabled={self.losses.is_empty()}>{ "Loss CSV" }</button>
                        <button onclick={link.callback(|_| Msg::Export("svg"))} disabled={self.losses.is_empty()}>{ "Chart SVG" }</button>
                        <button onclick={link.callback(|_| Msg::Export("png"))} disabled={self.losses.is_empty()}>{ "Chart PNG" }</button>
                        <button id="weights-download" onclick={link.callback(|_| Msg::ExportWeights)} disabled={self.trained_model.is_none() || running}
                            title="The final weights of the last run, as safetensors (GPT-2 tensor names, the model config in the metadata)">{ "Weights (safetensors)" }</button>
                        <label class="file">{ "Import weights " }
                            <input id="weights-input" type="file" accept=".safetensors" disabled={running}
                                onchange={link.batch_callback(|e: Event| { let i: HtmlInputElement = e.target_unchecked_into(); let f = i.files().and_then(|f| f.get(0)); i.set_value(""); f.map(Msg::ImportWeights) })} />
                        </label>
                    </div>
                    { match &self.weights_message {
                        Some(Ok(m)) => html! { <p id="weights-message" class="ok" role="status">{ m }</p> },
                        Some(Err(m)) => html! { <p id="weights-message" class="error" role="alert">{ m }</p> },
                        None => html! {},
                    } }
                </section>
                if !self.share.hidden("profile") { { self.view_profile(ctx) } }
                if !self.share.hidden("counterfactual") { { self.view_counterfactual(ctx) } }
                if !self.share.hidden("extraction") { { self.view_extraction(ctx) } }
                if !self.share.hidden("softprompt") { { self.view_softprompt(ctx) } }
                if !self.share.embedded() { { self.view_runs(ctx) } }
                if !self.share.hidden("share") {
                    <section class="panel" id="share-panel">
                        <h2>{ "Share" }</h2>
                        <p class="help">{ "A link holds the whole experiment (data, model, schedule, seed, the analysis and its settings): whoever opens it re-runs it and gets the same numbers on the same kind of backend." }</p>
                        <div class="row actions">
                            <button id="copy-link" onclick={link.callback(|_| Msg::MakeLink(false))}>{ "Copy link" }</button>
                            <button id="embed-button" onclick={link.callback(|_| Msg::MakeLink(true))}>{ "Embed" }</button>
                            <button onclick={link.callback(|_| Msg::Export("spec"))} disabled={spec.is_err() && self.spec_run.is_none()}>{ "Download spec" }</button>
                        </div>
                        if let Some(l) = &self.share.link { <input id="share-link" class="mono wide" type="text" readonly=true value={l.clone()} /> }
                        if let Some(e) = &self.share.embed { <textarea id="embed-snippet" class="mono wide" rows="3" readonly=true value={e.clone()} /> }
                    </section>
                }
                <footer><small>{ "Mnemo runs entirely in this page: your text never leaves your computer." }</small></footer>
            </main>
        }
    }
}

impl App {
    /// The app's update (see `Component::update`, which keeps new runs after it).
    fn handle(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Worker(m) => {
                // A failure ends the kept run whichever view's job it was.
                if matches!(m, FromWorker::Failed { .. }) && self.running() {
                    self.keep_end_running(ctx, RunStatus::Failed);
                }
                match m {
                    FromWorker::Ready => self.send(&ToWorker::Probe),
                    FromWorker::Probe { webgpu } => {
                        self.webgpu = Some(webgpu);
                        self.run_link();
                    }
                    FromWorker::Started(info) => {
                        self.run = RunState::Running;
                        self.keep_update(
                            ctx,
                            |m, _| {
                                m.total_steps = info.total_steps;
                                m.backend = info.backend;
                            },
                            None,
                        );
                        self.info = Some(info);
                    }
                    FromWorker::Step { progress } => {
                        self.losses.push((progress.step, progress.loss));
                        self.progress = Some(progress);
                    }
                    FromWorker::Checkpoint { .. } => return false,
                    FromWorker::ResumePoint { step, bytes } => self.keep_resume(ctx, step, bytes),
                    FromWorker::Done {
                        elapsed_s,
                        tokens_per_s,
                        train_loss,
                        heldout_loss,
                        ..
                    } => {
                        self.trained_model = self.spec_run.as_ref().map(|s| {
                            format!(
                                "“{}” ({} layers, d_model {})",
                                s.name, s.model.n_layers, s.model.d_model
                            )
                        });
                        if std::mem::take(&mut self.extract_after_train) {
                            // Send after the Done handling: the worker is free once it posted Done.
                            ctx.link().send_message(Msg::Extract);
                        }
                        self.run = RunState::Done {
                            elapsed_s,
                            tokens_per_s,
                            train_loss,
                            heldout_loss,
                        };
                        let steps = self.losses.last().map_or(0, |l| l.0);
                        let plain = self
                            .runs
                            .current
                            .as_ref()
                            .is_some_and(|(m, _)| m.view == "train");
                        self.keep_update(
                            ctx,
                            |m, _| {
                                m.step = steps;
                                if plain {
                                    m.status = RunStatus::Done;
                                }
                            },
                            None,
                        );
                    }
                    FromWorker::Cancelled { step } => {
                        self.keep_end_running(ctx, RunStatus::Cancelled);
                        let prompts = matches!(
                            self.sp.status,
                            SpStatus::Training { .. } | SpStatus::Evaluating
                        );
                        if self.sp.busy() {
                            self.sp.status = SpStatus::Idle;
                            if prompts {
                                // The target had finished training: its run stays done.
                                return true;
                            }
                        }
                        if self.cf.busy() {
                            // Cancelled before any member finished: nothing to show.
                            self.cf.status = CfStatus::Idle;
                            return true;
                        }
                        self.run = RunState::Cancelled { step };
                        self.queue.clear();
                        if !matches!(self.profile_state, ProfileState::Ready { .. }) {
                            self.profile_state = ProfileState::Idle;
                        }
                    }
                    FromWorker::PanelProgress { done, total } => {
                        self.profile_state = ProfileState::Evaluating { done, total }
                    }
                    FromWorker::Profile {
                        label,
                        result,
                        panel_s,
                        estimate_s,
                    } => {
                        self.profiles.push((label, *result));
                        self.profile_dirty = true;
                        self.profile_state = ProfileState::Ready {
                            panel_s,
                            estimate_s,
                        };
                        let last = self.queue.is_empty();
                        let result =
                            RunResult::Profiles(self.profiles.clone(), panel_s, estimate_s);
                        if last {
                            self.keep_end(ctx, RunStatus::Done, Some(result));
                        } else {
                            self.keep_update(ctx, |_, d| d.set_result(result), None);
                        }
                        self.next_profile();
                    }
                    FromWorker::EnsembleProgress {
                        done,
                        total,
                        elapsed_s,
                    } => {
                        self.cf.status = CfStatus::Training {
                            done,
                            total,
                            elapsed_s,
                        }
                    }
                    FromWorker::Counterfactual {
                        result,
                        cancelled,
                        elapsed_s,
                    } => {
                        self.keep_end(
                            ctx,
                            RunStatus::Done,
                            Some(RunResult::Counterfactual(
                                result.clone(),
                                elapsed_s,
                                cancelled,
                            )),
                        );
                        self.cf.result = Some(*result);
                        self.cf.selected = None;
                        self.cf.dirty = true;
                        self.cf.status = CfStatus::Ready {
                            elapsed_s,
                            cancelled,
                        };
                    }
                    FromWorker::Weights { bytes, name } => {
                        if let Err(e) = crate::download::download_bytes(
                            &name,
                            "application/octet-stream",
                            &bytes,
                        ) {
                            self.weights_message = Some(Err(e));
                        }
                    }
                    FromWorker::Imported { outcome } => {
                        if let Ok(d) = &outcome {
                            self.trained_model = Some(d.clone());
                        }
                        self.weights_message = Some(
                            outcome.map(|d| format!("Loaded {d}: extraction now runs on it.")),
                        );
                    }
                    FromWorker::Extraction { view, elapsed_s } => {
                        let kept = RunResult::Extraction(view.clone(), elapsed_s);
                        self.keep_result(ctx, kept);
                        self.ex.view = Some(*view);
                        self.ex.dirty = true;
                        self.ex.status = ExStatus::Ready { elapsed_s };
                    }
                    FromWorker::PromptStep {
                        step,
                        progress,
                        elapsed_s,
                    } => self
                        .sp
                        .step(step.method, step.step, step.loss, progress, elapsed_s),
                    FromWorker::PromptEvaluating => self.sp.status = SpStatus::Evaluating,
                    FromWorker::SoftPrompt {
                        view,
                        cancelled,
                        constant_s,
                        dynamic_s,
                        eval_s,
                    } => {
                        let kept = RunResult::SoftPrompt(
                            view.clone(),
                            [constant_s, dynamic_s, eval_s],
                            cancelled,
                        );
                        self.keep_result(ctx, kept);
                        self.sp.view = Some(*view);
                        self.sp.dirty = true;
                        self.sp.status = SpStatus::Ready {
                            constant_s,
                            dynamic_s,
                            eval_s,
                            cancelled,
                        };
                    }
                    FromWorker::Failed { message } if self.sp.busy() => {
                        if matches!(self.run, RunState::Starting | RunState::Running) {
                            self.run = RunState::Failed(message.clone());
                        }
                        self.sp.error = Some(message);
                        self.sp.status = SpStatus::Idle;
                    }
                    FromWorker::Failed { message } if self.cf.busy() => {
                        self.cf.error = Some(message);
                        self.cf.status = CfStatus::Idle;
                    }
                    FromWorker::Failed { message } if self.ex.busy() => {
                        self.ex.error = Some(message);
                        self.ex.status = ExStatus::Idle;
                    }
                    FromWorker::Failed { message } => {
                        if self.webgpu.is_none() {
                            self.webgpu = Some(Err(message.clone()));
                        }
                        self.queue.clear();
                        if !matches!(self.profile_state, ProfileState::Ready { .. }) {
                            self.profile_state = ProfileState::Idle;
                        }
                        self.run = RunState::Failed(message);
                    }
                }
            }
            Msg::SetSource(s) => self.form.source = s,
            Msg::SetText(t) => self.form.text = t,
            Msg::SetSplit(s) => self.form.split = s,
            Msg::SetWindow(w) => self.form.window = w,
            Msg::SetTokenizer(t) => self.form.tokenizer = t,
            Msg::SetHeldout(h) => self.form.heldout = h,
            Msg::SetField(k, v) => {
                self.form.fields.insert(k, v);
            }
            Msg::FileChosen(file) => {
                self.dragging = false;
                read_file(file, ctx.link().clone());
            }
            Msg::FileRead(Ok((name, texts))) => {
                let text = texts.text;
                self.upload = Some(Ok(match texts.records {
                    Some(n) => {
                        // One record per line: split by lines.
                        self.form.split = "lines".into();
                        format!(
                            "Loaded “{name}”: {n} records from its text column, one instance each."
                        )
                    }
                    None => {
                        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
                        format!(
                            "Loaded “{name}”: {} characters, {lines} non-empty lines.",
                            text.chars().count()
                        )
                    }
                }));
                self.form.text = text;
                self.form.source = Source::Text;
            }
            Msg::FileRead(Err(message)) => {
                self.dragging = false;
                self.upload = Some(Err(message));
            }
            Msg::Dragging(d) => self.dragging = d,
            Msg::SetBackend(c) => self.choice = c,
            Msg::Train => {
                if self.running() {
                    return false;
                }
                if let Ok(spec) = self.form.to_spec() {
                    self.start(spec);
                }
            }
            Msg::RunDemo => {
                if self.running() {
                    return false;
                }
                self.form = Form::from_spec(&ExperimentSpec::demo());
                self.start(ExperimentSpec::demo());
            }
            Msg::Cancel => self.send(&ToWorker::Cancel),
            Msg::RunProfile(compare) => {
                if self.running() {
                    return false;
                }
                self.profiles.clear();
                let base = ExperimentSpec::profile_demo();
                self.queue = if compare {
                    COMPARE_WIDTHS
                        .iter()
                        .map(|&d| {
                            let mut s = base.clone();
                            s.model.d_model = d;
                            (s, format!("d_model {d}"))
                        })
                        .collect()
                } else {
                    vec![(base.clone(), format!("d_model {}", base.model.d_model))]
                };
                self.next_profile();
            }
            Msg::Hover(h) => self.hover = h,
            Msg::RunCounterfactual(own) => {
                if self.running() {
                    return false;
                }
                let base = if own {
                    match self.form.to_spec() {
                        Ok(s) => s,
                        Err(_) => {
                            self.cf.error = Some("fix the settings above first".into());
                            return true;
                        }
                    }
                } else {
                    ExperimentSpec::counterfactual_demo()
                };
                self.start_counterfactual(base);
            }
            Msg::SetCfModels(m) => self.cf.models = m,
            Msg::SelectUnit(u) => self.cf.selected = u,
            Msg::ExportCf(what) => {
                if let Err(e) = self.cf.export(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
            Msg::SetAffix(prefix, v) => {
                if prefix {
                    self.ex.prefix = v
                } else {
                    self.ex.suffix = v
                }
            }
            Msg::Extract => {
                if self.running() {
                    return false;
                }
                if let (Ok(prefix), Ok(suffix)) = self.ex.settings() {
                    if let Some(spec) = &self.spec_run {
                        let mut spec = spec.clone();
                        spec.extraction = Some(mnemo_core::spec::ExtractionSpec { prefix, suffix });
                        self.last_job = Some((spec, "extraction"));
                    }
                    self.ex.error = None;
                    self.ex.status = ExStatus::Running;
                    self.send(&ToWorker::Extract {
                        settings: mnemo_core::spec::ExtractionSpec { prefix, suffix },
                    });
                }
            }
            Msg::ShowHeldout(h) => self.ex.heldout = h,
            Msg::MakeLink(embed) => {
                let job = self
                    .last_job
                    .clone()
                    .or_else(|| self.form.to_spec().ok().map(|s| (s, "train")));
                match job {
                    Some((spec, view)) => {
                        let url = self.share.make_link(&spec, view, embed);
                        if embed {
                            self.share.embed = Some(share::iframe(&url));
                        } else {
                            self.share.link = Some(url);
                        }
                    }
                    None => {
                        self.share.link =
                            Some("Fix the settings first: a link needs a valid experiment.".into())
                    }
                }
            }
            Msg::ExportWeights => {
                self.send(&ToWorker::ExportWeights);
                return false;
            }
            Msg::ImportWeights(file) => {
                let spec = match self
                    .spec_run
                    .clone()
                    .map(Ok)
                    .unwrap_or_else(|| self.form.to_spec())
                {
                    Ok(s) => s,
                    Err(_) => {
                        self.weights_message = Some(Err(
                            "fix the settings first: the weights are checked against them".into(),
                        ));
                        return true;
                    }
                };
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let name = file.name();
                    let bytes = crate::upload::read_weights(&file).await;
                    link.send_message(Msg::WeightsRead(name, Box::new(spec), bytes));
                });
            }
            Msg::WeightsRead(name, spec, bytes) => match bytes {
                Ok(bytes) => self.send(&ToWorker::ImportWeights {
                    bytes,
                    name,
                    spec: *spec,
                }),
                Err(e) => self.weights_message = Some(Err(e)),
            },
            Msg::RunsOpened(store, list) => {
                match list {
                    Ok(l) => self.runs.list = l,
                    Err(e) => self.runs.error = Some(e),
                }
                self.runs.store = Some(store);
                // A run started before the store opened is kept now.
                if self.runs.current.is_some() {
                    self.keep(ctx, true, None);
                }
            }
            Msg::ResumeKept(id, step) => {
                if let Some((m, _)) = self.runs.current.as_mut().filter(|(m, _)| m.id == id) {
                    m.resume_step = Some(step);
                    m.step = m.step.max(step);
                    let m = m.clone();
                    if let Some(r) = self.runs.list.iter_mut().find(|r| r.id == id) {
                        *r = m;
                    }
                }
            }
            Msg::Kept(outcome) => match outcome {
                Ok(()) => return false,
                Err(e) => self.runs.error = Some(e),
            },
            Msg::SetRunName(id, name) => {
                self.runs.names.insert(id, name);
            }
            Msg::RenameRun(id) => self.rename_run(ctx, id),
            Msg::DeleteRun(id) => self.delete_run(ctx, id),
            Msg::OpenRun(id) => self.load_run(ctx, id, Load::Open),
            Msg::ResumeRun(id) => self.load_run(ctx, id, Load::Resume),
            Msg::RunAgain(id) => self.load_run(ctx, id, Load::Again),
            Msg::RunLoaded(id, why, loaded) => {
                let Some(meta) = self.runs.list.iter().find(|r| r.id == id).cloned() else {
                    return false;
                };
                match loaded {
                    Err(e) => {
                        self.runs.error = Some(format!("“{}” could not be read: {e}", meta.name))
                    }
                    Ok(loaded) => {
                        let (data, bytes) = *loaded;
                        self.runs.error = None;
                        self.restore_run(ctx, meta, data, why, bytes);
                    }
                }
            }
            Msg::RunSoftPrompt(demo) => {
                if !self.can_start() {
                    return false;
                }
                let base = if demo {
                    Some(ExperimentSpec::softprompt_demo())
                } else {
                    self.spec_run.clone().or_else(|| self.form.to_spec().ok())
                };
                match base {
                    Some(base) => self.start_softprompt(base, demo),
                    None => self.sp.error = Some("train a model first".into()),
                }
            }
            Msg::SetSpField(i, v) => {
                if let Some(f) = self.sp.fields.get_mut(i) {
                    *f = v;
                }
            }
            Msg::ExportSp(what) => {
                if let Err(e) = self.sp.export(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
            Msg::LinkFile(file) => {
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    link.send_message(Msg::LinkFileRead(crate::upload::read_text(&file).await));
                });
            }
            Msg::LinkFileRead(result) => match result.and_then(|text| self.share.attach(&text)) {
                Ok(()) => {
                    self.share.file_error = None;
                    if let Some(p) = &self.share.opened {
                        self.form = Form::from_spec(&p.spec);
                    }
                    self.run_link();
                }
                Err(e) => self.share.file_error = Some(e),
            },
            Msg::ExportExtraction(what) => {
                if let Err(e) = self.ex.export(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
            Msg::ExportProfile(what) => {
                if let Err(e) = self.export_profile(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
            Msg::Export(what) => {
                if let Err(e) = self.export(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
        }
        true
    }
}
