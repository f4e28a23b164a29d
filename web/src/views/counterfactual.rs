//! The "Counterfactual memorisation" view: an ensemble trained in the worker, the
//! histogram and scatter, and the most memorised texts with their details.

use mnemo_core::ExperimentSpec;
use mnemo_core::spec::{CounterfactualSpec, limits};
use mnemo_measures::counterfactual::{Contrast, CounterfactualResult};
use mnemo_plots::counterfactual::{in_out_scatter, mem_histogram};
use mnemo_plots::did::svg_of;
use yew::prelude::*;

use super::{CHART_SIZE, connect, export_button, input_value, text_field};
use crate::chart::draw_on;
use crate::download::{download_canvas, download_text};
use crate::hub::{Hub, JobRequest, Keep, ViewEvent};
use crate::protocol::{FromWorker, ToWorker};
use crate::store::RunResult;

/// This view's id.
pub const ID: &str = "counterfactual";

/// How many of the most memorised texts are listed.
const TOP: usize = 12;

/// Where the ensemble stands.
#[derive(Debug, Clone, PartialEq)]
pub enum CfStatus {
    /// Nothing asked.
    Idle,
    /// Members trained so far.
    Training {
        /// Done.
        done: usize,
        /// Planned.
        total: usize,
        /// Seconds so far.
        elapsed_s: f64,
        /// Workers training members.
        workers: usize,
        /// Memory of each worker that has reported, MiB.
        memory_mib: Vec<f64>,
    },
    /// Cancelled before any model was trained, or failed.
    Stopped,
    /// A result is in.
    Ready {
        /// Seconds in all.
        elapsed_s: f64,
        /// Cut short by Cancel.
        cancelled: bool,
    },
}

/// The view's state.
pub struct CfState {
    /// Progress.
    pub status: CfStatus,
    /// The last result.
    pub result: Option<CounterfactualResult>,
    /// The text whose detail is open (a unit index).
    pub selected: Option<usize>,
    /// The models field.
    pub models: String,
    /// Why the last ensemble failed.
    pub error: Option<String>,
    /// Charts need drawing.
    pub dirty: bool,
    hist: NodeRef,
    scatter: NodeRef,
}

impl Default for CfState {
    fn default() -> Self {
        CfState {
            status: CfStatus::Idle,
            result: None,
            selected: None,
            models: CounterfactualSpec::default().models.to_string(),
            error: None,
            dirty: false,
            hist: NodeRef::default(),
            scatter: NodeRef::default(),
        }
    }
}

impl CfState {
    /// Whether an ensemble is training.
    pub fn busy(&self) -> bool {
        matches!(self.status, CfStatus::Training { .. })
    }

    /// The models field, checked against the limits.
    pub fn models(&self) -> Result<usize, String> {
        let (lo, hi) = limits::MODELS;
        match self.models.trim().parse::<usize>() {
            Ok(m) if (lo..=hi).contains(&m) => Ok(m),
            _ => Err(format!("a whole number from {lo} to {hi}")),
        }
    }

    /// The spec of an ensemble: `base` (the demo or the form's settings) with this
    /// view's number of models.
    pub fn spec(&self, mut base: ExperimentSpec) -> Result<ExperimentSpec, String> {
        let mut settings = base.counterfactual.clone().unwrap_or_default();
        settings.models = self.models()?;
        base.counterfactual = Some(settings);
        base.validate().map_err(|e| e.to_string())?;
        Ok(base)
    }

    /// Draw the charts if something changed.
    pub fn draw(&mut self) {
        let Some(result) = &self.result else { return };
        if !self.dirty {
            return;
        }
        if let Some(c) = self.hist.cast() {
            draw_on(c, |a| mem_histogram(a, result));
        }
        if let Some(c) = self.scatter.cast() {
            draw_on(c, |a| in_out_scatter(a, result));
        }
        self.dirty = false;
    }

    /// Download a chart or table.
    pub fn export(&self, what: &str) -> Result<(), String> {
        let result = self.result.as_ref().ok_or("no result yet")?;
        let png = |node: &NodeRef, name: &str| download_canvas(node.cast(), name);
        match what {
            "mem_histogram.png" => png(&self.hist, what),
            "in_out.png" => png(&self.scatter, what),
            "mem_histogram.svg" => download_text(
                what,
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| mem_histogram(a, result)),
            ),
            "in_out.svg" => download_text(
                what,
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| in_out_scatter(a, result)),
            ),
            "counterfactual.json" => download_text(
                what,
                "application/json",
                &serde_json::to_string_pretty(result).map_err(|e| e.to_string())?,
            ),
            name => crate::download::download_table(
                mnemo_measures::export::counterfactual_tables(result),
                name,
            ),
        }
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "undefined".into(), |x| format!("{x:.3}"))
}

fn contrast_text(c: &Contrast) -> String {
    match (c.diff, c.se) {
        (Some(d), Some(se)) => format!("{d:+.3} ± {se:.3}"),
        (Some(d), None) => format!("{d:+.3}"),
        _ => "undefined".into(),
    }
}

/// Messages of the view.
pub enum Msg {
    /// The hub changed.
    Hub(Hub),
    /// From the shell.
    Event(ViewEvent),
    /// Train an ensemble: the demo, or (`true`) the form's settings.
    Run(bool),
    /// The number of models.
    SetModels(String),
    /// Open (or close) the detail of a text.
    Select(Option<usize>),
    /// Export a chart or table.
    Export(&'static str),
}

/// The view.
pub struct CfView {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    cf: CfState,
}

impl CfView {
    /// Start an ensemble of `base` (its `counterfactual` section, with the view's number
    /// of models).
    fn start(&mut self, base: ExperimentSpec) {
        let workers = self.hub.state.workers;
        match self.cf.spec(base) {
            Ok(spec) => {
                self.cf.error = None;
                self.cf.status = CfStatus::Training {
                    done: 0,
                    total: spec.counterfactual.as_ref().map_or(0, |c| c.models),
                    elapsed_s: 0.0,
                    workers: 1,
                    memory_mib: Vec::new(),
                };
                self.hub.start(JobRequest {
                    view: ID,
                    spec: spec.clone(),
                    job: ToWorker::Counterfactual {
                        spec,
                        backend: self.hub.state.backend,
                        workers,
                    },
                    keep: Keep::New,
                });
            }
            Err(e) => self.cf.error = Some(e),
        }
    }

    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => self.hub = hub,
            Msg::Event(ViewEvent::Worker(m)) => match &*m {
                FromWorker::EnsembleProgress {
                    done,
                    total,
                    elapsed_s,
                    workers,
                    memory_mib,
                } => {
                    self.cf.status = CfStatus::Training {
                        done: *done,
                        total: *total,
                        elapsed_s: *elapsed_s,
                        workers: *workers,
                        memory_mib: memory_mib.clone(),
                    }
                }
                FromWorker::Counterfactual {
                    result,
                    cancelled,
                    elapsed_s,
                } => {
                    self.hub.keep_result(RunResult::Counterfactual(
                        result.clone(),
                        *elapsed_s,
                        *cancelled,
                    ));
                    self.cf.result = Some((**result).clone());
                    self.cf.selected = None;
                    self.cf.dirty = true;
                    self.cf.status = CfStatus::Ready {
                        elapsed_s: *elapsed_s,
                        cancelled: *cancelled,
                    };
                }
                // Cancelled before any member finished: nothing to show.
                FromWorker::Cancelled { .. } if self.cf.busy() => {
                    self.cf.status = CfStatus::Stopped
                }
                FromWorker::Failed { message } => {
                    self.cf.error = Some(message.clone());
                    self.cf.status = CfStatus::Stopped;
                }
                _ => return false,
            },
            Msg::Event(ViewEvent::Start(spec)) => {
                if let Some(c) = &spec.counterfactual {
                    self.cf.models = c.models.to_string();
                }
                self.start((*spec).clone());
            }
            Msg::Event(ViewEvent::Restore(run)) => {
                self.cf.result = None;
                self.cf.status = CfStatus::Idle;
                for r in &run.1.results {
                    if let RunResult::Counterfactual(c, elapsed_s, cancelled) = r {
                        self.cf.result = Some((**c).clone());
                        self.cf.status = CfStatus::Ready {
                            elapsed_s: *elapsed_s,
                            cancelled: *cancelled,
                        };
                        self.cf.dirty = true;
                    }
                }
            }
            Msg::Event(ViewEvent::Resumed(_)) => return false,
            Msg::Run(own) => {
                if !self.hub.state.can_start() {
                    return false;
                }
                let base = if own {
                    match self.hub.state.form.as_deref().cloned() {
                        Some(s) => s,
                        None => {
                            self.cf.error = Some("fix the data and model settings first".into());
                            return true;
                        }
                    }
                } else {
                    ExperimentSpec::counterfactual_demo()
                };
                self.start(base);
            }
            Msg::SetModels(m) => self.cf.models = m,
            Msg::Select(u) => self.cf.selected = u,
            Msg::Export(what) => {
                if let Err(e) = self.cf.export(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
        }
        true
    }
}

impl Component for CfView {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        CfView {
            hub,
            _hub: handle,
            cf: CfState::default(),
        }
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        self.handle(msg)
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        self.cf.draw();
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let cf = &self.cf;
        let blocked = !self.hub.state.can_start();
        let models_err = cf.models().err();
        let (state, status) = match &cf.status {
            CfStatus::Idle => ("idle", "Trains several small models, each on a random half of 48 invented facts and a “my PIN is …” line repeated 8 times; then compares, text by text, the models that trained on it with those that did not.".to_string()),
            CfStatus::Training { done, total, elapsed_s, workers, memory_mib } => {
                let eta = if *done > 0 { format!(" · ETA {:.0} s", elapsed_s / *done as f64 * (total - done) as f64) } else { String::new() };
                let pool = if *workers > 1 {
                    let most = memory_mib.iter().copied().fold(0.0, f64::max);
                    format!(" on {workers} workers (up to {most:.0} MiB each)")
                } else {
                    String::new()
                };
                ("training", format!("{done} of {total} models trained{pool}{eta}… (Cancel keeps the models already trained)"))
            }
            CfStatus::Stopped => ("stopped", "Stopped before any model was trained.".to_string()),
            CfStatus::Ready { elapsed_s, cancelled } => ("ready", match &cf.result {
                Some(r) => format!("{} models trained and scored in {elapsed_s:.1} s{}; mem is defined for {} of {} texts.",
                    r.models, if *cancelled { format!(" (cancelled: {} of {} planned)", r.models, r.planned) } else { String::new() },
                    r.defined(), r.instances.len()),
                None => String::new(),
            }),
        };
        let progress = match &cf.status {
            CfStatus::Training { done, total, .. } => html! {
                <progress id="cf-progress" max={total.to_string()} value={done.to_string()}></progress>
            },
            _ => html! {},
        };
        let export = |what, label| export_button(link, what, label, Msg::Export);
        let results = match &cf.result {
            None => html! {},
            Some(r) => {
                let ranked = r.ranked();
                let top = ranked.iter().take(TOP).filter(|&&u| r.instances[u].mem.diff.is_some()).map(|&u| {
                    let inst = &r.instances[u];
                    let selected = cf.selected == Some(u);
                    html! {
                        <li class={classes!(selected.then_some("selected"))}>
                            <button class="link" onclick={link.callback(move |_| Msg::Select(if selected { None } else { Some(u) }))}>
                                <span class="score mono">{ num(inst.mem.diff) }</span>
                                { inst.text.clone() }
                                if inst.copies > 1 { { " " }<span class="repeated">{ format!("×{} in the data", inst.copies) }</span> }
                            </button>
                        </li>
                    }
                });
                let detail = cf.selected.and_then(|u| r.instances.get(u).map(|inst| (u, inst))).map(|(u, inst)| {
                    let per_model = r.membership.iter().zip(&r.scores).enumerate().map(|(j, (m, s))| html! {
                        <tr><td>{ format!("model {}", j + 1) }</td><td>{ if m[u] { "trained on it" } else { "not" } }</td><td class="num">{ format!("{:.3}", s[u]) }</td></tr>
                    });
                    let influence = r.influence.iter().map(|p| html! {
                        <tr><td>{ p.text.clone() }</td><td class="num">{ p.by_unit.get(u).map(contrast_text).unwrap_or_default() }</td></tr>
                    });
                    html! {
                        <div id="cf-detail" class="detail">
                            <p><strong>{ inst.text.clone() }</strong></p>
                            <p class="mono">{ format!("mem {} (SE {}) = in-mean {} over {} models − out-mean {} over {} models",
                                num(inst.mem.diff), num(inst.mem.se), num(inst.mem.in_mean), inst.mem.n_in, num(inst.mem.out_mean), inst.mem.n_out) }</p>
                            <table class="small"><thead><tr><th>{ "model" }</th><th>{ "subset" }</th><th>{ r.metric.label() }</th></tr></thead>
                                <tbody>{ for per_model }</tbody></table>
                            if !r.influence.is_empty() {
                                <p>{ "Its influence on held-out texts, infl(x ⇒ x′) = in-mean − out-mean of x′:" }</p>
                                <table class="small"><thead><tr><th>{ "held-out text x′" }</th><th>{ "influence" }</th></tr></thead>
                                    <tbody>{ for influence }</tbody></table>
                            }
                        </div>
                    }
                });
                html! {
                    <>
                    <canvas id="cf-histogram" ref={cf.hist.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("mem_histogram.png", "PNG") }{ export("mem_histogram.svg", "SVG") }{ export("counterfactual.csv", "CSV") }{ export("counterfactual.json", "JSON") }</div>
                    <canvas id="cf-scatter" ref={cf.scatter.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("in_out.png", "PNG") }{ export("in_out.svg", "SVG") }{ export("influence.csv", "Influence CSV") }</div>
                    <h3>{ "Most memorised" }</h3>
                    <p class="help">{ format!("mem = mean {} of the models that trained on the text − mean of those that did not. Click a text for its per-model scores and its influence on held-out texts.", r.metric.label()) }</p>
                    <ol id="cf-top" class="ranked">{ for top }</ol>
                    { detail.unwrap_or_default() }
                    </>
                }
            }
        };
        html! {
            <section class="panel" id="cf-panel">
                <h2>{ "Counterfactual memorisation" }</h2>
                <p class="help">{ "Zhang et al. (2023): a text is memorised when the models that trained on it predict it much better than models that did not see it." }</p>
                <div class="row actions">
                    <button id="cf-button" class="primary" onclick={link.callback(|_| Msg::Run(false))} disabled={blocked || models_err.is_some()}>{ "Run the counterfactual demo" }</button>
                    <button id="cf-form-button" onclick={link.callback(|_| Msg::Run(true))} disabled={blocked || models_err.is_some()}
                        title="Use the data, model and training settings">{ "On my data and settings" }</button>
                    { text_field("cf-models", "Models", &cf.models, models_err.clone().map_or(Ok(()), Err), "each on a random half", blocked,
                        link.callback(|e: InputEvent| Msg::SetModels(input_value(&e)))) }
                </div>
                <p id="cf-status" data-state={state}>{ status }</p>
                if let Some(e) = &cf.error { <p id="cf-error" class="error" role="alert">{ e }</p> }
                { progress }
                { results }
            </section>
        }
    }
}
