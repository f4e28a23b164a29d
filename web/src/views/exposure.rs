//! The "Exposure" view: canary exposure (the Secret Sharer, Carlini et al. 2019;
//! METHODS.md section 7). Secrets of one format ("my PIN is {d} {d} {d} {d}") are
//! inserted into the training data, each its own number of times; after training, each
//! secret is ranked by the model's log-perplexity among every candidate of the format,
//! and its exposure `log2 |R| - log2 rank` says how many bits of it the model gives away.
//!
//! The form edits the canaries of a base spec: the demo's, or the spec of the link or
//! run that was opened last; everything else (the corpus, the model, training, the
//! exposure settings) is the base's, so a link reproduces every setting.

use mnemo_core::ExperimentSpec;
use mnemo_core::spec::CanarySet;
use mnemo_core::spec::exposure::ExposureMethod;
use mnemo_core::spec::mitigation::{Kind, Method, MethodSettings};
use mnemo_measures::exposure::{ExposureProgress, ExposureResult, format_rank};
use mnemo_measures::unlearn::StepProgress;
use mnemo_plots::did::svg_of;
use mnemo_plots::exposure::{exposure_chart, perplexity_chart, space_label};
use yew::prelude::*;

use super::{CHART_SIZE, connect, export_button, input_value};
use crate::chart::draw_on;
use crate::download::{download_canvas, download_text};
use crate::hub::{Hub, JobRequest, Keep, ViewEvent};
use crate::protocol::{FromWorker, ToWorker};
use crate::store::RunResult;

/// This view's id.
pub const ID: &str = "exposure";

/// Where the view stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Nothing asked.
    Idle,
    /// Training: step and steps in all.
    Training(usize, usize),
    /// Scoring candidates.
    Scoring(ExposureProgress),
    /// Unlearning the canaries.
    Unlearning(StepProgress),
    /// A result is shown.
    Ready,
    /// Stopped by Cancel or an error before a result.
    Stopped,
}

/// Messages of the view.
pub enum Msg {
    /// The hub changed.
    Hub(Hub),
    /// From the shell.
    Event(ViewEvent),
    /// The format field.
    SetFormat(String),
    /// The repetitions field.
    SetRepetitions(String),
    /// Run the demo.
    Demo,
    /// Train and measure with the form's canaries.
    Run,
    /// Show the candidates ranked above this canary.
    Pick(usize),
    /// The unlearning method select.
    SetMethod(String),
    /// The unlearning ratio field.
    SetRatio(String),
    /// Unlearn the canaries and rank them again.
    Unlearn,
    /// Export a chart or table.
    Export(&'static str),
}

/// The view.
pub struct ExposureView {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    status: Status,
    error: Option<String>,
    base: ExperimentSpec,
    format: String,
    repetitions: String,
    result: Option<ExposureResult>,
    seconds: f64,
    /// The ranks after an unlearning method: its label, the result, the seconds.
    after: Option<(String, ExposureResult, f64)>,
    method: String,
    ratio: String,
    picked: usize,
    dirty: bool,
    chart: NodeRef,
    hist: NodeRef,
}

/// The repetitions field as numbers: comma- or space-separated whole numbers.
fn parse_repetitions(text: &str) -> Result<Vec<u32>, String> {
    let list: Result<Vec<u32>, _> = text
        .split([',', ' '])
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<u32>())
        .collect();
    match list {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err("whole numbers separated by commas, one per canary (e.g. 1, 2, 4, 8)".into()),
    }
}

impl ExposureView {
    /// The canary set the form describes, checked.
    fn set(&self) -> Result<CanarySet, String> {
        let set = CanarySet {
            format: self.format.clone(),
            repetitions: parse_repetitions(&self.repetitions)?,
        };
        set.validate().map_err(|e| e.to_string())?;
        Ok(set)
    }

    /// The spec the form describes: the base with the form's canaries.
    fn spec(&self) -> Result<ExperimentSpec, String> {
        let mut spec = self.base.clone();
        let set = self.set()?;
        let space = set.parsed().map_err(|e| e.to_string())?.candidates();
        let e = spec.exposure.unwrap_or_default();
        e.exact_for(space).map_err(|e| e.to_string())?;
        spec.data.canaries = Some(set);
        spec.exposure = Some(e);
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    /// The unlearning method the form describes, checked.
    fn unlearn_settings(&self) -> Result<MethodSettings, String> {
        let method = Method::from_name(&self.method).map_err(|e| e.to_string())?;
        let ratio: f64 = self
            .ratio
            .trim()
            .parse()
            .map_err(|_| "the ratio is a number between 0 and 1 (e.g. 0.2)".to_string())?;
        let settings = MethodSettings {
            ratio,
            ..MethodSettings::defaults(method)
        };
        settings.validate().map_err(|e| e.to_string())?;
        Ok(settings)
    }

    fn set_fields(&mut self, spec: &ExperimentSpec) {
        if let Some(c) = &spec.data.canaries {
            self.format = c.format.clone();
            self.repetitions = c
                .repetitions
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ");
        }
    }

    fn start(&mut self, spec: ExperimentSpec) {
        self.set_fields(&spec);
        self.base = spec.clone();
        self.error = None;
        self.result = None;
        self.after = None;
        self.status = Status::Training(0, 0);
        self.hub.start(JobRequest {
            view: ID,
            spec: spec.clone(),
            job: ToWorker::Exposure {
                spec,
                backend: self.hub.state.backend,
            },
            keep: Keep::New,
        });
    }

    fn show(&mut self, result: ExposureResult, seconds: f64) {
        // Show first what the most repeated canary's rivals are.
        self.picked = result
            .canaries
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| c.repetitions)
            .map_or(0, |(i, _)| i);
        self.result = Some(result);
        self.seconds = seconds;
        self.status = Status::Ready;
        self.dirty = true;
    }

    fn on_worker(&mut self, m: &FromWorker) -> bool {
        match m {
            FromWorker::Step { progress } => {
                self.status = Status::Training(progress.step, progress.total_steps)
            }
            FromWorker::Started(_) | FromWorker::Checkpoint { .. } => return false,
            &FromWorker::ExposureProgress { progress } => self.status = Status::Scoring(progress),
            FromWorker::Exposure { result, seconds } => {
                self.hub
                    .keep_result(RunResult::Exposure(result.clone(), *seconds));
                self.show((**result).clone(), *seconds);
            }
            &FromWorker::ExposureUnlearning { step } => self.status = Status::Unlearning(step),
            FromWorker::ExposureAfter {
                label,
                result,
                seconds,
            } => {
                self.hub.keep_result(RunResult::ExposureAfter(
                    label.clone(),
                    result.clone(),
                    *seconds,
                ));
                self.after = Some((label.clone(), (**result).clone(), *seconds));
                self.status = Status::Ready;
                self.dirty = true;
            }
            FromWorker::Cancelled { .. } if self.result.is_some() => self.status = Status::Ready,
            FromWorker::Cancelled { .. } => self.status = Status::Stopped,
            FromWorker::Failed { message } => {
                self.error = Some(message.clone());
                self.status = if self.result.is_some() {
                    Status::Ready
                } else {
                    Status::Stopped
                };
            }
            _ => return false,
        }
        true
    }

    fn draw(&self) {
        let Some(r) = &self.result else { return };
        let after = self.after.as_ref().map(|(l, a, _)| (l.as_str(), a));
        if let Some(c) = self.chart.cast() {
            draw_on(c, |a| exposure_chart(a, r, after));
        }
        if let Some(c) = self.hist.cast() {
            draw_on(c, |a| perplexity_chart(a, r));
        }
    }

    fn export(&self, what: &str) -> Result<(), String> {
        let r = self.result.as_ref().ok_or("no result yet")?;
        let after = self.after.as_ref().map(|(l, a, _)| (l.as_str(), a));
        match what {
            "exposure.png" => download_canvas(self.chart.cast(), what),
            "perplexity.png" => download_canvas(self.hist.cast(), what),
            "exposure.svg" => download_text(
                what,
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| exposure_chart(a, r, after)),
            ),
            "perplexity.svg" => download_text(
                what,
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| perplexity_chart(a, r)),
            ),
            "exposure_after.csv" => download_text(
                what,
                "text/csv",
                &after
                    .ok_or("no result after unlearning")?
                    .1
                    .csv()
                    .map_err(|e| e.to_string())?,
            ),
            "exposure.json" => download_text(
                what,
                "application/json",
                &serde_json::to_string_pretty(r).map_err(|e| e.to_string())?,
            ),
            _ => download_text(
                "exposure.csv",
                "text/csv",
                &r.csv().map_err(|e| e.to_string())?,
            ),
        }
    }

    fn status_line(&self) -> (&'static str, String) {
        match &self.status {
            Status::Idle => (
                "idle",
                "Run the demo (six 4-digit PINs seen 1 to 32 times among 160 invented facts; about a minute on the CPU), or write your own format and repetitions.".into(),
            ),
            Status::Training(_, 0) => ("training", "Starting…".into()),
            Status::Training(s, n) => ("training", format!("Training: step {s} of {n}…")),
            Status::Scoring(p) => (
                "scoring",
                format!("Scoring candidates: {} of {}…", p.done, p.total),
            ),
            Status::Unlearning(p) => (
                "unlearning",
                format!("Unlearning the canaries: step {} of {}…", p.done, p.total),
            ),
            Status::Ready => match &self.after {
                Some((label, _, s)) => (
                    "ready",
                    format!(
                        "Ranked in {:.1} s; unlearned with {label} and ranked again in {s:.1} s.",
                        self.seconds
                    ),
                ),
                None => ("ready", format!("Ranked in {:.1} s.", self.seconds)),
            },
            Status::Stopped => ("stopped", "Stopped; nothing was measured.".into()),
        }
    }

    /// The unlearning form under the table: a post-hoc method (neuron or weight) and its
    /// ratio, applied to the trained model with the canaries as the forget set.
    fn unlearn_form(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let check = self.unlearn_settings().err();
        let blocked = !self.hub.state.can_start();
        let onchange = link.callback(|e: Event| {
            let s: web_sys::HtmlSelectElement = e.target_unchecked_into();
            Msg::SetMethod(s.value())
        });
        html! {
            <div id="exp-unlearn-panel" class="detail">
                <p>{ "After unlearning: remove the canaries from the trained model with a post-hoc method of the Mitigation view (the canaries are the forget set, 64 other training texts the retain set) and rank the secrets again. The methods edit MLP neurons or weights; the ones that train are in the Mitigation view." }</p>
                <div class="row actions">
                    <label class="field"><span>{ "Method" }</span>
                        <select id="exp-unlearn-method" {onchange}>
                            { for Method::ALL.iter().filter(|m| matches!(m.kind(), Kind::Neuron | Kind::Weight)).map(|m| html! {
                                <option value={m.name()} selected={self.method == m.name()}>{ m.name() }</option>
                            }) }
                        </select></label>
                    <label class="field"><span>{ "Ratio" }</span>
                        <input id="exp-unlearn-ratio" class="narrow" type="text" inputmode="decimal" value={self.ratio.clone()}
                            oninput={link.callback(|e: InputEvent| Msg::SetRatio(input_value(&e)))} /></label>
                    <button id="exp-unlearn" onclick={link.callback(|_| Msg::Unlearn)} disabled={blocked || check.is_some()}>{ "Unlearn and rank again" }</button>
                </div>
                if let Some(e) = check { <p id="exp-unlearn-invalid" class="error">{ e }</p> }
            </div>
        }
    }

    fn results(&self, ctx: &Context<Self>) -> Html {
        let Some(r) = &self.result else {
            return html! {};
        };
        let link = ctx.link();
        let export = |what, label| export_button(link, what, label, Msg::Export);
        let summary = format!(
            "{} canaries of the format “{}”, each ranked among {} candidates ({} ranks, {} scored). Largest possible exposure log2 |R| = ",
            r.canaries.len(),
            r.format,
            space_label(r.space),
            match r.method {
                ExposureMethod::Extrapolated => "extrapolated",
                _ => "exact",
            },
            r.scored,
        );
        let rows = r.canaries.iter().map(|c| {
            let i = c.canary;
            html! {
                <tr data-canary={i.to_string()} data-repetitions={c.repetitions.to_string()} class={classes!((i == self.picked).then_some("picked"))}
                    onclick={link.callback(move |_| Msg::Pick(i))}>
                    <td>{ &c.text }</td>
                    <td class="num">{ c.repetitions }</td>
                    <td class="num">{ format!("{:.2}", c.log_perplexity) }</td>
                    <td class="num">{ format_rank(c.rank) }</td>
                    <td class="num">{ format!("{}", c.candidates) }</td>
                    <td class="num">{ format!("{:.2}", c.exposure) }</td>
                    if let Some((_, a, _)) = &self.after {
                        <td class="num after">{ a.canaries.iter().find(|x| x.canary == i).map_or_else(String::new, |x| format!("{:.2}", x.exposure)) }</td>
                        <td class="num after-rank">{ a.canaries.iter().find(|x| x.canary == i).map_or_else(String::new, |x| format_rank(x.rank)) }</td>
                    }
                </tr>
            }
        });
        let picked = r.canaries.get(self.picked);
        let above = picked.map_or_else(
            || html! {},
            |c| {
                if c.above.is_empty() {
                    html! { <p id="exp-above" class="help">{ format!("No candidate is more likely than “{}”: the model ranks the secret first.", c.text) }</p> }
                } else {
                    html! {
                        <ol id="exp-above">
                            { for c.above.iter().map(|a| html! {
                                <li>{ format!("{} ({:.2} bits)", a.text, a.log_perplexity) }</li>
                            }) }
                        </ol>
                    }
                }
            },
        );
        html! {
            <div id="exp-results">
                <p id="exp-summary">{ summary }<span id="exp-max">{ format!("{:.2}", r.max_exposure) }</span>{ " bits." }</p>
                <canvas id="exp-chart" ref={self.chart.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                <table class="small" id="exp-table">
                    <thead><tr><th>{ "canary" }</th><th>{ "times in training" }</th><th>{ "log-perplexity (bits)" }</th><th>{ "rank" }</th><th>{ "candidates" }</th><th>{ "exposure (bits)" }</th>
                        if let Some((label, _, _)) = &self.after { <th>{ format!("exposure after {label}") }</th><th>{ "rank after" }</th> }</tr></thead>
                    <tbody>{ for rows }</tbody>
                </table>
                { self.unlearn_form(ctx) }
                <h3>{ picked.map_or("Candidates ranked above the secret".to_string(), |c| format!("Candidates the model finds more likely than “{}” (seen {} times)", c.text, c.repetitions)) }</h3>
                <p class="help">{ "Click a row of the table to see another canary's. The other canaries' secrets are not counted or listed." }</p>
                { above }
                <canvas id="exp-hist" ref={self.hist.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                <div class="row actions">
                    { export("exposure.csv", "exposure.csv") }{ export("exposure.json", "exposure.json") }
                    { export("exposure.png", "exposure PNG") }{ export("exposure.svg", "exposure SVG") }
                    { export("perplexity.png", "perplexity PNG") }{ export("perplexity.svg", "perplexity SVG") }
                    if self.after.is_some() { { export("exposure_after.csv", "exposure_after.csv") } }
                </div>
            </div>
        }
    }
}

impl Component for ExposureView {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        let base = ExperimentSpec::canary_demo();
        let mut view = ExposureView {
            hub,
            _hub: handle,
            status: Status::Idle,
            error: None,
            base: base.clone(),
            format: String::new(),
            repetitions: String::new(),
            result: None,
            seconds: 0.0,
            after: None,
            method: "balanced-subnet".into(),
            ratio: "0.2".into(),
            picked: 0,
            dirty: false,
            chart: NodeRef::default(),
            hist: NodeRef::default(),
        };
        view.set_fields(&base);
        view
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => self.hub = hub,
            Msg::Event(ViewEvent::Worker(m)) => return self.on_worker(&m),
            Msg::Event(ViewEvent::Start(spec)) => {
                if spec.data.canaries.is_none() {
                    self.error = Some("this link has no canaries (data.canaries)".into());
                    return true;
                }
                self.set_fields(&spec);
                match spec.validate() {
                    Ok(()) => self.start((*spec).clone()),
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
            Msg::Event(ViewEvent::Restore(run)) => {
                self.result = None;
                self.status = Status::Idle;
                if run.1.spec.data.canaries.is_some() {
                    self.base = run.1.spec.clone();
                    self.set_fields(&run.1.spec);
                }
                self.after = None;
                for r in &run.1.results {
                    if let RunResult::Exposure(result, seconds) = r {
                        self.show((**result).clone(), *seconds);
                    }
                }
                for r in &run.1.results {
                    if let RunResult::ExposureAfter(label, result, seconds) = r {
                        self.after = Some((label.clone(), (**result).clone(), *seconds));
                    }
                }
            }
            Msg::Event(ViewEvent::Resumed(_)) => return false,
            Msg::SetFormat(t) => self.format = t,
            Msg::SetRepetitions(t) => self.repetitions = t,
            Msg::Demo => {
                if !self.hub.state.can_start() {
                    return false;
                }
                self.start(ExperimentSpec::canary_demo());
            }
            Msg::Run => {
                if !self.hub.state.can_start() {
                    return false;
                }
                match self.spec() {
                    Ok(spec) => self.start(spec),
                    Err(e) => self.error = Some(e),
                }
            }
            Msg::Pick(i) => self.picked = i,
            Msg::SetMethod(m) => self.method = m,
            Msg::SetRatio(r) => self.ratio = r,
            Msg::Unlearn => {
                if !self.hub.state.can_start() || self.result.is_none() {
                    return false;
                }
                match self.unlearn_settings() {
                    Ok(settings) => {
                        self.error = None;
                        self.status = Status::Unlearning(StepProgress { done: 0, total: 0 });
                        self.hub.start(JobRequest {
                            view: ID,
                            spec: self.base.clone(),
                            job: ToWorker::ExposureUnlearn {
                                spec: self.base.clone(),
                                settings,
                            },
                            keep: Keep::Attach,
                        });
                    }
                    Err(e) => self.error = Some(e),
                }
            }
            Msg::Export(what) => {
                if let Err(e) = self.export(what) {
                    self.error = Some(format!("export: {e}"));
                    return true;
                }
                return false;
            }
        }
        true
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        if self.dirty {
            self.dirty = false;
            self.draw();
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let state = &self.hub.state;
        let running = state.busy.is_some();
        let blocked = !state.can_start();
        let check = self.spec().err();
        let (name, text) = self.status_line();
        let bar = match &self.status {
            Status::Training(s, n) if *n > 0 => html! {
                <progress id="exp-progress" max={n.to_string()} value={s.to_string()}></progress>
            },
            Status::Scoring(p) => html! {
                <progress id="exp-progress" max={p.total.max(1).to_string()} value={p.done.to_string()}></progress>
            },
            Status::Unlearning(p) if p.total > 0 => html! {
                <progress id="exp-progress" max={p.total.to_string()} value={p.done.to_string()}></progress>
            },
            Status::Training(..) | Status::Unlearning(_) => {
                html! { <progress id="exp-progress"></progress> }
            }
            _ => html! {},
        };
        html! {
            <section class="panel" id="exp-panel">
                <h2>{ "Canary exposure" }</h2>
                <p class="help">{ "Carlini et al. (2019), the Secret Sharer: put a secret of a fixed format into the training data a few times, train, and rank the secret by how likely the model finds it among every text of the same format. Exposure = log2 (candidates) − log2 (rank): 0 bits when the secret is the least likely candidate, the largest value when it is the most likely, so the model gives it away." }</p>
                <div class="row actions">
                    <label class="field wide"><span>{ "Format" }</span>
                        <input id="exp-format" type="text" value={self.format.clone()} disabled={running}
                            oninput={link.callback(|e: InputEvent| Msg::SetFormat(input_value(&e)))} />
                        <small class="help">{ "{d} is a digit, {l} a lowercase letter" }</small>
                    </label>
                    <label class="field wide"><span>{ "Times each canary is in training" }</span>
                        <input id="exp-repetitions" type="text" value={self.repetitions.clone()} disabled={running}
                            oninput={link.callback(|e: InputEvent| Msg::SetRepetitions(input_value(&e)))} />
                        <small class="help">{ "one number per canary; 0 is a control that is never trained on" }</small>
                    </label>
                </div>
                if let Some(e) = &check { <p id="exp-invalid" class="error">{ e }</p> }
                <div class="row actions">
                    <button id="exp-demo" class="primary" onclick={link.callback(|_| Msg::Demo)} disabled={blocked}>{ "Run the exposure demo" }</button>
                    <button id="exp-run" onclick={link.callback(|_| Msg::Run)} disabled={blocked || check.is_some()}>{ "Train and measure" }</button>
                </div>
                <p id="exp-status" data-state={name}>{ text }</p>
                { bar }
                if let Some(e) = &self.error { <p id="exp-error" class="error" role="alert">{ e }</p> }
                { self.results(ctx) }
            </section>
        }
    }
}
