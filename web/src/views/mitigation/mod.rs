//! The "Mitigation" view (TinyMem, Sakarvadia et al., ICLR 2025; METHODS.md section 5):
//! can memorised data be removed from a trained model afterwards? The user picks a
//! built-in TinyMem model (fetched from the page's bundle) or the last trained model,
//! ticks methods and their settings, and runs them on the header's workers (one after
//! another on one), each on a copy of the model; the table, the trade-off chart (memorised against
//! accuracy, the untouched model marked, the reference's result beside each method for
//! the built-in models) and, for a chosen method, the measured sequences token by token
//! before and after, the noise positions marked.
//!
//! The defaults tick the methods that finish within a minute or two in a page on the
//! CPU (Zero-Out zeroes each of the 1,024 neurons alone and takes minutes); every method
//! can be ticked. A sweep list runs each ticked method at each of its ratios.

use mnemo_core::ExperimentSpec;
use mnemo_core::builtin;
use mnemo_core::spec::DataSource;
use mnemo_core::spec::mitigation::{
    DEFAULT_RETAIN, HEADLINE_RETAIN, Kind, Method, MethodSettings, MitigationSpec,
};
use mnemo_measures::unlearn::StepProgress;
use yew::prelude::*;

mod form;
use form::{MethodRow, default_rows, has_epochs, has_ratio};
mod show;

use super::{connect, input_value, text_field};
use crate::hub::{Hub, JobRequest, Keep, ViewEvent};
use crate::protocol::{FromWorker, MitigationView, ToWorker};
use crate::store::RunResult;

/// This view's id.
pub const ID: &str = "mitigation";

/// Ticked at first: the methods that finish quickly in a page.
const QUICK: [Method; 5] = [
    Method::Activations,
    Method::Durable,
    Method::SecondOrder,
    Method::Subnet,
    Method::BalancedSubnet,
];

/// The value of the model picker for the last trained model.
const LAST: &str = "last";

/// Where the view stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Nothing asked.
    Idle,
    /// Training the spec's model first: steps done and in all.
    Training(usize, usize),
    /// Loading and measuring the untouched model.
    Preparing,
    /// Methods run: the index of the one this page's worker runs, the count, its progress
    /// and seconds, then the methods finished on every worker, the workers and the
    /// largest heap among them (MiB).
    Running(usize, usize, StepProgress, f64, usize, usize, f64),
    /// Every method done, or cut short by Cancel.
    Ready(bool),
    /// Stopped before any method finished.
    Stopped,
}

/// Messages of the view.
pub enum Msg {
    /// The hub changed.
    Hub(Hub),
    /// From the shell.
    Event(ViewEvent),
    /// Pick the model (a built-in's name or [`LAST`]).
    PickModel(String),
    /// Tick or untick a method.
    Tick(usize),
    /// A method's ratio field.
    SetRatio(usize, String),
    /// A method's steps or epochs field.
    SetEpochs(usize, String),
    /// A method's learning-rate field.
    SetLr(usize, String),
    /// BalancedSubnet's `a` field.
    SetAlpha(usize, String),
    /// Tick the two subnets at the headline setting of the picked built-in model.
    Headline,
    /// The sweep field.
    SetSweep(String),
    /// The retain field.
    SetRetain(String),
    /// Run the ticked methods.
    Run,
    /// Show a method's sequences (a row of the results).
    PickResult(usize),
    /// Pick the measure of the bar chart.
    PickMeasure(usize),
    /// Export a chart or table.
    Export(&'static str),
}

/// The view.
pub struct MitigationPanel {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    status: Status,
    error: Option<String>,
    model: String,
    rows: Vec<MethodRow>,
    sweep: String,
    retain: String,
    view: Option<MitigationView>,
    /// The running job's methods, for the status line.
    plan: Vec<String>,
    prepare_s: f64,
    picked: Option<usize>,
    measure: usize,
    dirty: bool,
    tradeoff: NodeRef,
    bars: NodeRef,
}

/// A field's check: `Err` holds what the field needs.
type Check = Result<(), String>;

/// Whether `spec` is TinyMem data the measures can use (with test sets).
fn is_tinymem(spec: &ExperimentSpec) -> bool {
    matches!(&spec.data.source, DataSource::Tinymem(t) if t.test_sequences.is_some())
}

/// The first shipped built-in model.
fn first_shipped() -> String {
    builtin::ALL
        .iter()
        .find(|b| b.shipped)
        .map_or(LAST.to_string(), |b| b.name.to_string())
}

impl MitigationPanel {
    fn start(&mut self, spec: ExperimentSpec, train: bool) {
        self.error = None;
        self.status = if train {
            Status::Training(0, 0)
        } else {
            Status::Preparing
        };
        self.view = None;
        self.picked = None;
        self.dirty = true;
        let from_builtin = spec.mitigation.as_ref().is_some_and(|m| m.model.is_some());
        self.plan = spec
            .mitigation
            .iter()
            .flat_map(|m| &m.methods)
            .map(|s| format!("{} ({})", s.method.name(), s.label()))
            .collect();
        self.hub.start(JobRequest {
            view: ID,
            spec: spec.clone(),
            job: ToWorker::Mitigate {
                spec,
                backend: self.hub.state.backend,
                train,
                workers: self.hub.state.workers,
            },
            keep: if from_builtin || train {
                Keep::New
            } else {
                Keep::Attach
            },
        });
    }

    fn stopped(&mut self) {
        self.status = match &self.view {
            Some(v) if !v.summary.results.is_empty() => Status::Ready(true),
            _ => Status::Stopped,
        };
    }

    fn on_worker(&mut self, m: &FromWorker) -> bool {
        match m {
            FromWorker::Started(info) => self.status = Status::Training(0, info.total_steps),
            FromWorker::Step { progress } => {
                self.status = Status::Training(progress.step, progress.total_steps)
            }
            FromWorker::Done { .. } => self.status = Status::Preparing,
            FromWorker::MitigationReady { view, prepare_s } => {
                self.view = Some((**view).clone());
                self.prepare_s = *prepare_s;
                self.dirty = true;
            }
            &FromWorker::MitigationProgress {
                run,
                runs,
                step,
                elapsed_s,
                done,
                workers,
                memory_mib,
            } => {
                self.status = Status::Running(run, runs, step, elapsed_s, done, workers, memory_mib)
            }
            FromWorker::MitigationMethod { result, generated } => {
                if let Some(v) = &mut self.view {
                    v.push((**result).clone(), generated.clone());
                    self.picked = Some(v.summary.results.len() - 1);
                }
                self.dirty = true;
            }
            FromWorker::Mitigation { view, cancelled } => {
                self.hub
                    .keep_result(RunResult::Mitigation(view.clone(), *cancelled));
                if self.picked.is_none_or(|p| p >= view.summary.results.len()) {
                    self.picked = view.summary.results.len().checked_sub(1);
                }
                self.view = Some((**view).clone());
                self.status = Status::Ready(*cancelled);
                self.dirty = true;
            }
            FromWorker::Cancelled { .. } => self.stopped(),
            FromWorker::Failed { message } => {
                self.error = Some(message.clone());
                self.stopped();
            }
            _ => return false,
        }
        true
    }
}

impl Component for MitigationPanel {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        MitigationPanel {
            hub,
            _hub: handle,
            status: Status::Idle,
            error: None,
            model: first_shipped(),
            rows: default_rows(),
            sweep: String::new(),
            retain: DEFAULT_RETAIN.to_string(),
            view: None,
            plan: Vec::new(),
            prepare_s: 0.0,
            picked: None,
            measure: 0,
            dirty: false,
            tradeoff: NodeRef::default(),
            bars: NodeRef::default(),
        }
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => self.hub = hub,
            Msg::Event(ViewEvent::Worker(m)) => return self.on_worker(&m),
            Msg::Event(ViewEvent::Start(spec)) => {
                let Some(section) = spec.mitigation.clone() else {
                    self.error = Some("this link has no mitigation settings".into());
                    return true;
                };
                self.set_fields(&section);
                let train = section.model.is_none();
                match spec.validate() {
                    Ok(()) => self.start((*spec).clone(), train),
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
            Msg::Event(ViewEvent::Restore(run)) => {
                self.view = None;
                self.picked = None;
                self.status = Status::Idle;
                if let Some(section) = &run.1.spec.mitigation {
                    self.set_fields(section);
                }
                for r in &run.1.results {
                    if let RunResult::Mitigation(v, cancelled) = r {
                        self.picked = v.summary.results.len().checked_sub(1);
                        self.view = Some((**v).clone());
                        self.status = Status::Ready(*cancelled);
                    }
                }
                self.dirty = true;
            }
            Msg::Event(ViewEvent::Resumed(_)) => return false,
            Msg::PickModel(m) => self.model = m,
            Msg::Tick(i) => {
                if let Some(r) = self.rows.get_mut(i) {
                    r.ticked = !r.ticked;
                }
            }
            Msg::SetRatio(i, t) => {
                if let Some(r) = self.rows.get_mut(i) {
                    r.ratio = t;
                }
            }
            Msg::SetEpochs(i, t) => {
                if let Some(r) = self.rows.get_mut(i) {
                    r.epochs = t;
                }
            }
            Msg::SetLr(i, t) => {
                if let Some(r) = self.rows.get_mut(i) {
                    r.lr = t;
                }
            }
            Msg::SetAlpha(i, t) => {
                if let Some(r) = self.rows.get_mut(i) {
                    r.alpha = t;
                }
            }
            Msg::Headline => self.headline(),
            Msg::SetSweep(t) => self.sweep = t,
            Msg::SetRetain(t) => self.retain = t,
            Msg::Run => {
                if !self.hub.state.can_start() {
                    return false;
                }
                match self.spec() {
                    Ok(spec) => self.start(spec, false),
                    Err(e) => self.error = Some(e),
                }
            }
            Msg::PickResult(i) => self.picked = Some(i),
            Msg::PickMeasure(i) => {
                self.measure = i;
                self.dirty = true;
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
        let (rows, sweep_check, retain_check) = self.checks();
        let fields_ok = self.methods().is_ok();
        let trained = state.trained.as_deref();
        let last_ok = trained.is_some_and(|t| is_tinymem(&t.1));
        let (name, text) = self.status_line();
        let bar = match &self.status {
            Status::Training(s, t) => {
                html! { <progress id="mit-train-progress" max={(*t).max(1).to_string()} value={s.to_string()}></progress> }
            }
            Status::Running(j, n, p, _, done, workers, _) => {
                // Overall: finished methods plus the share of this one (on one worker, the
                // methods before it are the finished ones).
                let finished = if *workers > 1 || j >= n { *done } else { *j };
                let share = if p.total > 0 && j < n {
                    p.done as f64 / p.total as f64
                } else {
                    0.0
                };
                html! { <progress id="mit-progress" max={(*n).max(1).to_string()} value={format!("{:.3}", finished as f64 + share)}></progress> }
            }
            _ => html! {},
        };
        let onmodel = link.callback(|e: Event| {
            let s: web_sys::HtmlSelectElement = e.target_unchecked_into();
            Msg::PickModel(s.value())
        });
        let method_rows = self.rows.iter().enumerate().map(|(i, r)| {
            let err = rows[i].first_error();
            let bad = r.ticked && err.is_some();
            html! {
                <tr class={classes!(bad.then_some("invalid"))} data-method={r.method.name()}>
                    <td><label><input type="checkbox" id={format!("mit-tick-{}", r.method.name())} checked={r.ticked} disabled={running}
                        onchange={link.callback(move |_| Msg::Tick(i))} />{ format!(" {}", r.method.name()) }</label></td>
                    <td>{ r.method.kind().name() }</td>
                    <td>
                        if has_ratio(r.method) {
                            <input class="narrow" type="text" inputmode="decimal" id={format!("mit-ratio-{}", r.method.name())} value={r.ratio.clone()} disabled={running}
                                aria-invalid={bad.to_string()}
                                oninput={link.callback(move |e: InputEvent| Msg::SetRatio(i, input_value(&e)))} />
                        }
                    </td>
                    <td>
                        if has_epochs(r.method) {
                            <input class="narrow" type="text" inputmode="numeric" id={format!("mit-epochs-{}", r.method.name())} value={r.epochs.clone()} disabled={running}
                                oninput={link.callback(move |e: InputEvent| Msg::SetEpochs(i, input_value(&e)))} />
                        }
                    </td>
                    <td>
                        if has_epochs(r.method) {
                            <input class="narrow" type="text" inputmode="decimal" id={format!("mit-lr-{}", r.method.name())} value={r.lr.clone()} disabled={running}
                                oninput={link.callback(move |e: InputEvent| Msg::SetLr(i, input_value(&e)))} />
                        }
                    </td>
                    <td>
                        if r.method == Method::BalancedSubnet {
                            <input class="narrow" type="text" inputmode="decimal" id={format!("mit-alpha-{}", r.method.name())} value={r.alpha.clone()} disabled={running}
                                title="a in -(1 - a) L_forget + a L_retain: the weight of keeping the retain set"
                                oninput={link.callback(move |e: InputEvent| Msg::SetAlpha(i, input_value(&e)))} />
                        }
                    </td>
                    if bad {
                        <td class="error">{ err.unwrap_or_default() }</td>
                    } else if r.method.kind() == Kind::Regulariser {
                        <td class="help">{ format!("trains a new model with {}: as long as the original training", MethodSettings::defaults(r.method).label()) }</td>
                    } else {
                        <td></td>
                    }
                </tr>
            }
        });
        html! {
            <section class="panel" id="mit-panel">
                <h2>{ "Mitigation: unlearning memorised data" }</h2>
                <p class="help">{ "TinyMem (Sakarvadia et al., 2025) trains small models on arithmetic sequences, a few of them noised or carrying a backdoor, and asks whether what the model memorised can be removed afterwards without hurting the rest. Each method scores MLP neurons or weights and zeroes the top share of them, on a copy of the model; memorisation and test accuracy are measured before and after, as the reference code does." }</p>
                <div class="row actions">
                    <label class="field"><span>{ "Model" }</span>
                        <select id="mit-model" onchange={onmodel} disabled={running}>
                            { for builtin::ALL.iter().map(|b| html! {
                                <option value={b.name} selected={self.model == b.name} disabled={!b.shipped}>
                                    { if b.shipped { format!("{}: {}", b.name, b.about) } else { format!("{} (not shipped in this build)", b.name) } }
                                </option>
                            }) }
                            <option value={LAST} selected={self.model == LAST} disabled={!last_ok}>
                                { match trained {
                                    Some(t) if last_ok => format!("the last trained model: {}", t.0),
                                    Some(_) => "the last trained model (not TinyMem data)".to_string(),
                                    None => "the last trained model (none yet)".to_string(),
                                } }
                            </option>
                        </select>
                        <small class="help">{ "Built-in models are trained natively from the specs in models/tinymem (see README)." }</small>
                    </label>
                </div>
                <table class="small" id="mit-methods">
                    <thead><tr><th>{ "method" }</th><th>{ "level" }</th><th>{ "ratio" }</th><th>{ "steps / epochs" }</th><th>{ "lr" }</th><th title="BalancedSubnet's weight of the retain loss">{ "a" }</th><th></th></tr></thead>
                    <tbody>{ for method_rows }</tbody>
                </table>
                <div class="row actions">
                    { text_field("mit-sweep", "Ratio sweep", &self.sweep, sweep_check, "each ticked method at each, e.g. 0.01,0.05,0.1 (empty: its own)", running,
                        link.callback(|e: InputEvent| Msg::SetSweep(input_value(&e)))) }
                    { text_field("mit-retain", "Retain set", &self.retain, retain_check, "clean training examples BalancedSubnet keeps", running,
                        link.callback(|e: InputEvent| Msg::SetRetain(input_value(&e)))) }
                </div>
                <div class="row actions">
                    <button id="mit-headline" onclick={link.callback(|_| Msg::Headline)} disabled={running || self.model == LAST}
                        title="Tick only Subnet and BalancedSubnet at the setting where the README's sweep found the paper's result on this built-in model">{ "The paper's headline setting" }</button>
                    <button id="mit-run" class="primary" onclick={link.callback(|_| Msg::Run)} disabled={blocked || !fields_ok}>{ "Run the ticked methods" }</button>
                </div>
                <p id="mit-status" data-state={name}>{ text }</p>
                { bar }
                if let Some(e) = &self.error { <p id="mit-error" class="error" role="alert">{ e }</p> }
                { self.results(ctx) }
            </section>
        }
    }
}
