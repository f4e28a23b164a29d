//! The "Geometry" view: the geometry of memorisation (Ross et al., ICLR 2025; METHODS.md
//! section 6). A VP-SDE diffusion model is trained in the worker on points of a toy
//! manifold whose local intrinsic dimension (LID) is known everywhere; every training
//! point's LID is then estimated from the data (lPCA, MLE) and from the model (FLIPD,
//! the normal bundle), and a point is memorised when the model's LID falls below the
//! data's: overfitting-driven (OD-Mem) or data-driven (DD-Mem, a duplicated point).
//!
//! The form edits the data set and training of a base spec: the geometry demo's (a
//! lollipop with an isolated and a duplicated point), or the spec of the link or run
//! that was opened last; the settings the form does not show (the model, the sampler,
//! `t0`, the thresholds) are the base's. So "Run" with the fields as they start is the
//! demo, and a link reproduces every setting, seen or not.

use mnemo_core::ExperimentSpec;
use mnemo_core::spec::GeometrySpec;
use mnemo_core::spec::geometry::{Manifold, limits};
use mnemo_measures::geometry::{GeometryProgress, GeometryResult, MemClass};
use mnemo_plots::geometry::LidColour;
use yew::prelude::*;

mod show;

use super::{connect, input_value, text_field};
use crate::hub::{Hub, JobRequest, Keep, ViewEvent};
use crate::protocol::{FromWorker, ToWorker};
use crate::store::RunResult;

/// This view's id.
pub const ID: &str = "geometry";

/// The colour choices of the scatter: `(value of the select, estimator)`.
pub(crate) const COLOURS: [(&str, LidColour); 5] = [
    ("flipd", LidColour::Flipd),
    ("true", LidColour::True),
    ("lpca", LidColour::Lpca),
    ("mle", LidColour::Mle),
    ("normal_bundle", LidColour::NormalBundle),
];

/// The axis pairs a 3-D data set is projected on.
pub(crate) const AXES: [(usize, usize); 3] = [(0, 1), (0, 2), (1, 2)];

/// Where the view stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Nothing asked.
    Idle,
    /// The job runs (training, then sampling and estimating): its progress and seconds.
    Running(Option<GeometryProgress>, f64),
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
    /// Pick the manifold.
    PickManifold(String),
    /// The points field.
    SetPoints(String),
    /// The isolated-points field.
    SetIsolated(String),
    /// The duplicated-points field.
    SetDuplicated(String),
    /// The training-steps field.
    SetSteps(String),
    /// Run the geometry demo (its settings put in the form).
    Demo,
    /// Run the overfitting demo (a small training set whose isolated point the model
    /// memorises: OD-Mem).
    Overfit,
    /// Run with the form's settings.
    Run,
    /// Colour the scatter by this estimator (an index of [`COLOURS`]).
    PickColour(usize),
    /// Project on this axis pair (an index of [`AXES`]).
    PickAxes(usize),
    /// Show this training point's FLIPD curve.
    PickPoint(usize),
    /// Export a chart or table.
    Export(&'static str),
}

/// A field's check: `Err` holds what the field needs.
type Check = Result<(), String>;

/// The view.
pub struct GeometryPanel {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    status: Status,
    error: Option<String>,
    /// The spec the form edits (see the module).
    base: ExperimentSpec,
    manifold: Manifold,
    points: String,
    isolated: String,
    duplicated: String,
    steps: String,
    result: Option<GeometryResult>,
    seconds: f64,
    colour: usize,
    axes: usize,
    picked: Option<usize>,
    dirty: bool,
    scatter: NodeRef,
    curve: NodeRef,
    estimators: NodeRef,
}

/// `text` as a whole number within `range`.
fn whole(text: &str, range: (usize, usize)) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(v) if (range.0..=range.1).contains(&v) => Ok(v),
        _ => Err(format!("a whole number from {} to {}", range.0, range.1)),
    }
}

/// The name of a manifold in the form.
pub(crate) fn manifold_label(m: Manifold) -> &'static str {
    match m {
        Manifold::VonMises => "von Mises mixture on a circle (2-D, LID 1)",
        Manifold::Lollipop => "lollipop: disk, stick and point (2-D, LID 2/1/0)",
        Manifold::Sphere => "unit sphere (3-D, LID 2)",
        Manifold::Plane => "tilted plane (3-D, LID 2)",
        Manifold::SwissRoll => "swiss roll (3-D, LID 2)",
    }
}

/// The index of a training point's first FLIPD curve to show: the first memorised point,
/// else the first point.
fn first_flagged(r: &GeometryResult) -> Option<usize> {
    r.train
        .iter()
        .position(|p| matches!(p.class, MemClass::OdMem | MemClass::DdMem))
        .or((!r.train.is_empty()).then_some(0))
}

impl GeometryPanel {
    /// Each field checked: points, isolated, duplicated, steps.
    fn checks(&self) -> [Check; 4] {
        let points = whole(&self.points, limits::POINTS);
        let duplicated = whole(&self.duplicated, limits::DUPLICATED).and_then(|d| match points {
            Ok(p) if d > p => Err(format!("at most the {p} points")),
            _ => Ok(d),
        });
        [
            points.map(|_| ()),
            whole(&self.isolated, limits::ISOLATED).map(|_| ()),
            duplicated.map(|_| ()),
            whole(&self.steps, limits::STEPS).map(|_| ()),
        ]
    }

    /// The spec the form describes: the base with the form's data set and steps.
    fn spec(&self) -> Result<ExperimentSpec, String> {
        let mut spec = self.base.clone();
        let mut g = spec.geometry.clone().unwrap_or_default();
        g.data.manifold = self.manifold;
        g.data.points = whole(&self.points, limits::POINTS).map_err(|e| format!("points: {e}"))?;
        g.data.isolated =
            whole(&self.isolated, limits::ISOLATED).map_err(|e| format!("isolated points: {e}"))?;
        g.data.duplicated = whole(&self.duplicated, limits::DUPLICATED)
            .map_err(|e| format!("duplicated points: {e}"))?;
        g.training.steps =
            whole(&self.steps, limits::STEPS).map_err(|e| format!("training steps: {e}"))?;
        g.validate().map_err(|e| e.to_string())?;
        spec.geometry = Some(g);
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    /// Set the fields from a spec's section (a link, a kept run, the demo).
    fn set_fields(&mut self, g: &GeometrySpec) {
        self.manifold = g.data.manifold;
        self.points = g.data.points.to_string();
        self.isolated = g.data.isolated.to_string();
        self.duplicated = g.data.duplicated.to_string();
        self.steps = g.training.steps.to_string();
    }

    /// Make `spec` the base, put it in the form and run it.
    fn start(&mut self, spec: ExperimentSpec) {
        if let Some(g) = &spec.geometry {
            self.set_fields(g);
        }
        self.base = spec.clone();
        self.error = None;
        self.status = Status::Running(None, 0.0);
        self.result = None;
        self.picked = None;
        self.dirty = true;
        self.hub.start(JobRequest {
            view: ID,
            spec: spec.clone(),
            job: ToWorker::Geometry {
                spec,
                backend: self.hub.state.backend,
            },
            keep: Keep::New,
        });
    }

    /// Show a result.
    fn show(&mut self, result: GeometryResult, seconds: f64) {
        self.picked = first_flagged(&result);
        if result.dim < 3 {
            self.axes = 0;
        }
        self.result = Some(result);
        self.seconds = seconds;
        self.status = Status::Ready;
        self.dirty = true;
    }

    fn on_worker(&mut self, m: &FromWorker) -> bool {
        match m {
            &FromWorker::GeometryProgress {
                progress,
                elapsed_s,
            } => self.status = Status::Running(Some(progress), elapsed_s),
            FromWorker::Geometry { result, seconds } => {
                self.hub
                    .keep_result(RunResult::Geometry(result.clone(), *seconds));
                self.show((**result).clone(), *seconds);
            }
            FromWorker::Cancelled { .. } => self.status = Status::Stopped,
            FromWorker::Failed { message } => {
                self.error = Some(message.clone());
                self.status = Status::Stopped;
            }
            _ => return false,
        }
        true
    }
}

impl Component for GeometryPanel {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        let base = ExperimentSpec::geometry_demo();
        let mut panel = GeometryPanel {
            hub,
            _hub: handle,
            status: Status::Idle,
            error: None,
            base: base.clone(),
            manifold: Manifold::Lollipop,
            points: String::new(),
            isolated: String::new(),
            duplicated: String::new(),
            steps: String::new(),
            result: None,
            seconds: 0.0,
            colour: 0,
            axes: 0,
            picked: None,
            dirty: false,
            scatter: NodeRef::default(),
            curve: NodeRef::default(),
            estimators: NodeRef::default(),
        };
        if let Some(g) = &base.geometry {
            panel.set_fields(g);
        }
        panel
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => self.hub = hub,
            Msg::Event(ViewEvent::Worker(m)) => return self.on_worker(&m),
            Msg::Event(ViewEvent::Start(spec)) => {
                let Some(g) = spec.geometry.clone() else {
                    self.error = Some("this link has no geometry settings".into());
                    return true;
                };
                self.set_fields(&g);
                match spec.validate() {
                    Ok(()) => self.start((*spec).clone()),
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
            Msg::Event(ViewEvent::Restore(run)) => {
                self.result = None;
                self.picked = None;
                self.status = Status::Idle;
                if let Some(g) = &run.1.spec.geometry {
                    self.base = run.1.spec.clone();
                    self.set_fields(g);
                }
                for r in &run.1.results {
                    if let RunResult::Geometry(result, seconds) = r {
                        self.show((**result).clone(), *seconds);
                    }
                }
                self.dirty = true;
            }
            Msg::Event(ViewEvent::Resumed(_)) => return false,
            Msg::PickManifold(key) => {
                if let Some(&m) = Manifold::ALL.iter().find(|m| m.key() == key) {
                    self.manifold = m;
                }
            }
            Msg::SetPoints(t) => self.points = t,
            Msg::SetIsolated(t) => self.isolated = t,
            Msg::SetDuplicated(t) => self.duplicated = t,
            Msg::SetSteps(t) => self.steps = t,
            Msg::Demo => {
                if !self.hub.state.can_start() {
                    return false;
                }
                self.start(ExperimentSpec::geometry_demo());
            }
            Msg::Overfit => {
                if !self.hub.state.can_start() {
                    return false;
                }
                self.start(ExperimentSpec::geometry_overfit());
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
            Msg::PickColour(i) => {
                self.colour = i.min(COLOURS.len() - 1);
                self.dirty = true;
            }
            Msg::PickAxes(i) => {
                self.axes = i.min(AXES.len() - 1);
                self.dirty = true;
            }
            Msg::PickPoint(i) => {
                self.picked = Some(i);
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
        let [points_ok, isolated_ok, duplicated_ok, steps_ok] = self.checks();
        let fields_ok = [&points_ok, &isolated_ok, &duplicated_ok, &steps_ok]
            .iter()
            .all(|c| c.is_ok());
        // What the engine refuses beyond one field (e.g. too few points for k).
        let whole_check = if fields_ok { self.spec().err() } else { None };
        let (name, text) = self.status_line();
        let bar = match &self.status {
            Status::Running(Some(p), _) => html! {
                <progress id="geo-progress" max={p.total.max(1).to_string()} value={p.done.to_string()}></progress>
            },
            Status::Running(None, _) => html! { <progress id="geo-progress"></progress> },
            _ => html! {},
        };
        let onmanifold = link.callback(|e: Event| {
            let s: web_sys::HtmlSelectElement = e.target_unchecked_into();
            Msg::PickManifold(s.value())
        });
        html! {
            <section class="panel" id="geo-panel">
                <h2>{ "Geometry of memorisation" }</h2>
                <p class="help">{ "Ross et al. (2025) read memorisation off the local intrinsic dimension (LID) of a diffusion model: where the model's LID at a training point falls below the data's, the model has collapsed onto that point. Here a small VP-SDE model is trained on points of a toy manifold whose true LID is known everywhere; each training point's LID is estimated from the data (lPCA, MLE) and from the model (FLIPD, the normal bundle). OD-Mem: the model's LID is below the data's by more than the margin (overfitting); DD-Mem: both are near 0 (a duplicated point)." }</p>
                <div class="row actions">
                    <label class="field"><span>{ "Data set" }</span>
                        <select id="geo-manifold" onchange={onmanifold} disabled={running}>
                            { for Manifold::ALL.iter().map(|&m| html! {
                                <option value={m.key()} selected={self.manifold == m}>{ manifold_label(m) }</option>
                            }) }
                        </select>
                    </label>
                    { text_field("geo-points", "Points", &self.points, points_ok, "drawn from the manifold", running,
                        link.callback(|e: InputEvent| Msg::SetPoints(input_value(&e)))) }
                    { text_field("geo-isolated", "Isolated points", &self.isolated, isolated_ok, "each alone on a sparse arm", running,
                        link.callback(|e: InputEvent| Msg::SetIsolated(input_value(&e)))) }
                    { text_field("geo-duplicated", "Duplicated points", &self.duplicated, duplicated_ok, "each repeated (a point mass)", running,
                        link.callback(|e: InputEvent| Msg::SetDuplicated(input_value(&e)))) }
                    { text_field("geo-steps", "Training steps", &self.steps, steps_ok, "optimiser steps of the noise predictor", running,
                        link.callback(|e: InputEvent| Msg::SetSteps(input_value(&e)))) }
                </div>
                if let Some(e) = &whole_check { <p id="geo-invalid" class="error">{ e }</p> }
                <div class="row actions">
                    <button id="geo-demo" class="primary" onclick={link.callback(|_| Msg::Demo)} disabled={blocked}>{ "Run the geometry demo" }</button>
                    <button id="geo-overfit" onclick={link.callback(|_| Msg::Overfit)} disabled={blocked}
                        title="16 points on a circle and one isolated point: the model memorises the isolated point (FLIPD about 0 where the data has dimension 1: OD-Mem)">{ "Run the overfitting demo" }</button>
                    <button id="geo-run" onclick={link.callback(|_| Msg::Run)} disabled={blocked || !fields_ok || whole_check.is_some()}>{ "Run" }</button>
                </div>
                <p id="geo-status" data-state={name}>{ text }</p>
                { bar }
                if let Some(e) = &self.error { <p id="geo-error" class="error" role="alert">{ e }</p> }
                { self.results(ctx) }
            </section>
        }
    }
}
