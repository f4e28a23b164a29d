//! The "Extraction" view: greedy decoding from each text's prefix on the last trained
//! model, the rates, and the texts token by token.

use mnemo_core::spec::{ExtractionSpec, limits};
use mnemo_measures::extraction::{ExtractionRow, extraction_csv};
use mnemo_plots::did::svg_of;
use mnemo_plots::extraction::extraction_chart;
use yew::prelude::*;

use mnemo_core::ExperimentSpec;

use super::tokens::token_lines;
use super::{CHART_SIZE, connect, export_button, input_value, text_field};
use crate::chart::draw_on;
use crate::download::{download_canvas, download_text};
use crate::hub::{Hub, JobRequest, Keep, ViewEvent};
use crate::protocol::{ExtractionView, FromWorker, ToWorker};
use crate::store::RunResult;

/// This view's id.
pub const ID: &str = "extraction";

/// Texts shown token by token.
const SHOWN: usize = 20;

/// Where extraction stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ExStatus {
    /// Nothing asked.
    Idle,
    /// Training the model first (a link's extraction view).
    Training,
    /// Decoding.
    Running,
    /// Results in.
    Ready {
        /// Seconds decoding.
        elapsed_s: f64,
    },
}

/// The view's state.
pub struct ExState {
    /// Progress.
    pub status: ExStatus,
    /// The last results.
    pub view: Option<ExtractionView>,
    /// Prefix field.
    pub prefix: String,
    /// Suffix field.
    pub suffix: String,
    /// Show held-out texts instead of training texts.
    pub heldout: bool,
    /// Why the last extraction failed.
    pub error: Option<String>,
    /// The chart needs drawing.
    pub dirty: bool,
    chart: NodeRef,
}

impl Default for ExState {
    fn default() -> Self {
        let d = ExtractionSpec::default();
        ExState {
            status: ExStatus::Idle,
            view: None,
            prefix: d.prefix.to_string(),
            suffix: d.suffix.to_string(),
            heldout: false,
            error: None,
            dirty: false,
            chart: NodeRef::default(),
        }
    }
}

fn affix(field: &str) -> Result<usize, String> {
    let (lo, hi) = limits::AFFIX;
    match field.trim().parse::<usize>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!("a whole number of tokens from {lo} to {hi}")),
    }
}

impl ExState {
    /// The settings in the fields, or the first problem per field.
    pub fn settings(&self) -> (Result<usize, String>, Result<usize, String>) {
        (affix(&self.prefix), affix(&self.suffix))
    }

    /// Whether extraction is running.
    pub fn busy(&self) -> bool {
        matches!(self.status, ExStatus::Running | ExStatus::Training)
    }

    /// Draw the chart if something changed.
    pub fn draw(&mut self) {
        let Some(v) = &self.view else { return };
        if !self.dirty {
            return;
        }
        if let Some(c) = self.chart.cast() {
            draw_on(c, |a| extraction_chart(a, &v.result));
        }
        self.dirty = false;
    }

    /// Download the chart or a table.
    pub fn export(&self, what: &str) -> Result<(), String> {
        let v = self.view.as_ref().ok_or("no result yet")?;
        match what {
            "extraction.png" => download_canvas(self.chart.cast(), what),
            "extraction.svg" => download_text(
                what,
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| extraction_chart(a, &v.result)),
            ),
            "extraction.json" => download_text(
                what,
                "application/json",
                &serde_json::to_string_pretty(&v.result).map_err(|e| e.to_string())?,
            ),
            "extraction_heldout.csv" => download_text(
                what,
                "text/csv",
                &extraction_csv(&v.result.heldout).map_err(|e| e.to_string())?,
            ),
            _ => download_text(
                "extraction.csv",
                "text/csv",
                &extraction_csv(&v.result.train).map_err(|e| e.to_string())?,
            ),
        }
    }
}

/// One text: its prefix, then the true suffix and the model's, token by token.
fn row_html(v: &ExtractionView, row: &ExtractionRow) -> Html {
    let prefix = v
        .prefixes
        .iter()
        .find(|(i, _)| *i == row.instance)
        .map_or(&[][..], |(_, p)| p.as_slice());
    token_lines(
        &v.labels,
        prefix,
        &row.target,
        &[("model", &row.generated)],
        row.exact,
    )
}

/// Messages of the view.
pub enum Msg {
    /// The hub changed.
    Hub(Hub),
    /// From the shell.
    Event(ViewEvent),
    /// Prefix (`true`) or suffix length field.
    SetAffix(bool, String),
    /// Measure extraction on the last trained model.
    Extract,
    /// Show held-out texts (`true`) or training texts.
    ShowHeldout(bool),
    /// Export a chart or table.
    Export(&'static str),
}

/// The view.
pub struct ExView {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    ex: ExState,
}

impl ExView {
    /// Measure extraction with the fields' settings: on the last trained model, or on
    /// `train`'s model trained first.
    fn start(&mut self, train: Option<ExperimentSpec>) {
        let (Ok(prefix), Ok(suffix)) = self.ex.settings() else {
            return;
        };
        let settings = ExtractionSpec { prefix, suffix };
        let (spec, keep) = match &train {
            Some(s) => (s.clone(), Keep::New),
            None => match self.hub.state.trained.as_ref().map(|t| t.1.clone()) {
                Some(s) => (s, Keep::Attach),
                None => return,
            },
        };
        let mut spec = spec;
        spec.extraction = Some(settings);
        self.ex.error = None;
        self.ex.status = if train.is_some() {
            ExStatus::Training
        } else {
            ExStatus::Running
        };
        let backend = self.hub.state.backend;
        self.hub.start(JobRequest {
            view: ID,
            spec: spec.clone(),
            job: ToWorker::Extract {
                settings,
                train: train.map(|_| (spec, backend)),
            },
            keep,
        });
    }

    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => self.hub = hub,
            Msg::Event(ViewEvent::Worker(m)) => match &*m {
                FromWorker::Done { .. } if self.ex.status == ExStatus::Training => {
                    self.ex.status = ExStatus::Running
                }
                FromWorker::Extraction { view, elapsed_s } => {
                    self.hub
                        .keep_result(RunResult::Extraction(view.clone(), *elapsed_s));
                    self.ex.view = Some((**view).clone());
                    self.ex.dirty = true;
                    self.ex.status = ExStatus::Ready {
                        elapsed_s: *elapsed_s,
                    };
                }
                FromWorker::Cancelled { .. } => self.ex.status = ExStatus::Idle,
                FromWorker::Failed { message } => {
                    self.ex.error = Some(message.clone());
                    self.ex.status = ExStatus::Idle;
                }
                _ => return false,
            },
            Msg::Event(ViewEvent::Start(spec)) => {
                if let Some(e) = &spec.extraction {
                    self.ex.prefix = e.prefix.to_string();
                    self.ex.suffix = e.suffix.to_string();
                }
                self.start(Some((*spec).clone()));
            }
            Msg::Event(ViewEvent::Restore(run)) => {
                self.ex.view = None;
                self.ex.status = ExStatus::Idle;
                for r in &run.1.results {
                    if let RunResult::Extraction(v, elapsed_s) = r {
                        self.ex.view = Some((**v).clone());
                        self.ex.status = ExStatus::Ready {
                            elapsed_s: *elapsed_s,
                        };
                        self.ex.dirty = true;
                    }
                }
            }
            Msg::Event(ViewEvent::Resumed(_)) => return false,
            Msg::SetAffix(prefix, v) => {
                if prefix {
                    self.ex.prefix = v
                } else {
                    self.ex.suffix = v
                }
            }
            Msg::Extract => {
                if self.hub.state.can_start() {
                    self.start(None);
                }
            }
            Msg::ShowHeldout(h) => self.ex.heldout = h,
            Msg::Export(what) => {
                if let Err(e) = self.ex.export(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
        }
        true
    }
}

impl Component for ExView {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        ExView {
            hub,
            _hub: handle,
            ex: ExState::default(),
        }
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        self.handle(msg)
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        self.ex.draw();
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let ex = &self.ex;
        let (k, s) = ex.settings();
        let trained = self.hub.state.trained.as_ref().map(|t| t.0.clone());
        let blocked = !self.hub.state.can_start() || trained.is_none();
        let status = match (&ex.status, &trained) {
            (ExStatus::Training, _) => "Training the model first…".to_string(),
            (ExStatus::Running, _) => "Decoding…".to_string(),
            (_, None) => "Train a model first (for example “Run the demo” in Train); extraction runs on the model of the last finished training run.".to_string(),
            (ExStatus::Idle, Some(m)) => format!("Ready to measure extraction on {m}."),
            (ExStatus::Ready { elapsed_s }, _) => format!("Decoded in {elapsed_s:.1} s."),
        };
        let state = match ex.status {
            ExStatus::Idle => "idle",
            ExStatus::Training | ExStatus::Running => "running",
            ExStatus::Ready { .. } => "ready",
        };
        let export = |what, label| export_button(link, what, label, Msg::Export);
        let running = self.hub.state.busy.is_some();
        let field = |id: &'static str,
                     label: &'static str,
                     value: &str,
                     err: Option<String>,
                     which: bool| {
            text_field(
                id,
                label,
                value,
                err.map_or(Ok(()), Err),
                "tokens",
                running,
                link.callback(move |e: InputEvent| Msg::SetAffix(which, input_value(&e))),
            )
        };
        let results = match &ex.view {
            None => html! {},
            Some(v) => {
                let r = &v.result;
                let pct = |x: f64| format!("{:.0}%", x * 100.0);
                let scaled = if r.scaled > 0 {
                    format!(
                        "; {} texts were shorter and used proportionally smaller k and s",
                        r.scaled
                    )
                } else {
                    String::new()
                };
                // The same sentence as text; each rate in a span a lesson can read.
                let summary = html! {
                    <>
                    { format!("On {}: training texts extracted exactly {} of {} (", v.model,
                        (r.train_rates.exact_rate * r.train_rates.n as f64).round(), r.train_rates.n) }
                    <span id="ex-train-exact">{ pct(r.train_rates.exact_rate) }</span>
                    { "), suffix tokens reproduced " }<span id="ex-train-fraction">{ pct(r.train_rates.fractional_rate) }</span>
                    { format!("; held-out texts {} of {} (", (r.heldout_rates.exact_rate * r.heldout_rates.n as f64).round(), r.heldout_rates.n) }
                    <span id="ex-heldout-exact">{ pct(r.heldout_rates.exact_rate) }</span>
                    { "), " }<span id="ex-heldout-fraction">{ pct(r.heldout_rates.fractional_rate) }</span>
                    { format!(". Asked for k = {}, s = {}{scaled}.", r.prefix, r.suffix) }
                    </>
                };
                let rows = if ex.heldout { &r.heldout } else { &r.train };
                let mut shown: Vec<&ExtractionRow> = rows.iter().collect();
                // Extracted first, then by share reproduced.
                shown.sort_by(|a, b| b.fraction.total_cmp(&a.fraction));
                let heldout = ex.heldout;
                html! {
                    <>
                    <p id="ex-summary">{ summary }</p>
                    <canvas id="ex-chart" ref={ex.chart.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("extraction.png", "PNG") }{ export("extraction.svg", "SVG") }{ export("extraction.csv", "CSV") }{ export("extraction_heldout.csv", "Held-out CSV") }{ export("extraction.json", "JSON") }</div>
                    <div class="row">
                        <label><input type="radio" name="ex-split" checked={!heldout} onchange={link.callback(|_| Msg::ShowHeldout(false))} />{ " training texts" }</label>
                        <label><input id="ex-show-heldout" type="radio" name="ex-split" checked={heldout} onchange={link.callback(|_| Msg::ShowHeldout(true))} />{ " held-out texts" }</label>
                    </div>
                    <p class="help">{ format!("The {} texts with the largest share reproduced, of {}. Grey: the prefix the model was given. Green: the model wrote the true token; red: it did not.", SHOWN.min(shown.len()), shown.len()) }</p>
                    <div id="ex-rows">{ for shown.iter().take(SHOWN).map(|row| row_html(v, row)) }</div>
                    </>
                }
            }
        };
        html! {
            <section class="panel" id="ex-panel">
                <h2>{ "Extraction" }</h2>
                <p class="help">{ "Carlini et al. (2023): give the model the first k tokens of a text and let it continue greedily; the text is extracted when the next s tokens come out exactly." }</p>
                <div class="row actions">
                    { field("ex-prefix", "Prefix k", &ex.prefix, k.as_ref().err().cloned(), true) }
                    { field("ex-suffix", "Suffix s", &ex.suffix, s.as_ref().err().cloned(), false) }
                    <button id="ex-button" class="primary" onclick={link.callback(|_| Msg::Extract)} disabled={blocked || k.is_err() || s.is_err()}>{ "Extract" }</button>
                </div>
                <p id="ex-status" data-state={state}>{ status }</p>
                if let Some(e) = &ex.error { <p id="ex-error" class="error" role="alert">{ e }</p> }
                { results }
            </section>
        }
    }
}
