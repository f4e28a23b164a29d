//! The "Influence" view (Yeh et al., NeurIPS 2022; TracIn by Pruthi et al., 2020): which
//! training texts made the model say this? A model is trained and every test text is
//! scored against every training text by TracIn, TracIn-Last, TracIn-WE and its TopK;
//! the user picks a test text and sees its proponents and opponents per method, the
//! shared tokens shaded by their attribution, how well the methods agree, and (on
//! demand) case deletion: the loss rise of a test text when its top proponents are
//! removed and the model retrained, against random removal.
//!
//! With a tied head, TracIn-WE uses the embedding lookup's gradient only and TracIn-Last
//! the head's (the view says so). BOS, in every text, is left out of TracIn-WE unless
//! the spec includes it.

use mnemo_core::ExperimentSpec;
use mnemo_core::spec::{DataSource, InfluenceSpec};
use mnemo_measures::influence::{DeletionResult, InfluenceProgress, Method};
use mnemo_plots::influence::{agreement_chart, deletion_chart};
use yew::prelude::*;

mod show;

use super::{connect, input_value, text_field};
use crate::chart::draw_on;
use crate::hub::{Hub, JobRequest, Keep, ViewEvent};
use crate::protocol::{FromWorker, InfluenceView, ToWorker};
use crate::store::RunResult;

/// This view's id.
pub const ID: &str = "influence";

/// Proponents and opponents listed per method.
const LISTED: usize = 8;

/// Where the view stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Nothing asked.
    Idle,
    /// Training the model: steps done and in all.
    Training(usize, usize),
    /// The gradient pass.
    Gradients(InfluenceProgress, f64),
    /// Case deletion: retrains done, in all, seconds, workers.
    Deleting(usize, usize, f64, usize),
    /// Results in.
    Ready,
    /// Stopped before a result.
    Stopped,
}

/// Messages of the view.
pub enum Msg {
    /// The hub changed.
    Hub(Hub),
    /// From the shell.
    Event(ViewEvent),
    /// Run the demo (`false`) or the form's settings (`true`).
    Run(bool),
    /// Run case deletion on the current result.
    Delete,
    /// A settings field changed (index, text).
    SetField(usize, String),
    /// The search text of the test picker.
    Search(String),
    /// Pick a test text.
    PickTest(u32),
    /// Pick a method.
    PickMethod(Method),
    /// Pick the training text shown beside the test text.
    PickTrain(u32),
    /// Export a chart or table.
    Export(&'static str),
}

/// The fields: id, label, help.
const FIELDS: [(&str, &str, &str); 4] = [
    (
        "inf-topk",
        "TopK positions",
        "TracIn-WE-TopK keeps this many",
    ),
    ("inf-k", "Deletion k", "texts removed, e.g. 1,3,6"),
    ("inf-dtests", "Deletion tests", "test texts retrained for"),
    ("inf-draws", "Random draws", "per test and k"),
];

/// The view.
pub struct InfluencePanel {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    status: Status,
    error: Option<String>,
    spec: Option<ExperimentSpec>,
    view: Option<InfluenceView>,
    gradient_s: f64,
    deletion: Option<(DeletionResult, f64, bool)>,
    fields: [String; 4],
    search: String,
    test: Option<u32>,
    method: Method,
    train: Option<u32>,
    dirty: bool,
    agreement: NodeRef,
    deletion_chart: NodeRef,
}

/// What the demo button does, read off the demo spec.
fn demo_blurb() -> String {
    let spec = ExperimentSpec::influence_demo();
    let facts = match spec.data.source {
        DataSource::Builtin { instances, .. } => instances,
        _ => 0,
    };
    let repeated = spec.data.canary.as_ref().map_or(0, |c| c.repetitions);
    format!(
        "Trains a {}-layer model on {facts} invented facts ({:.0}% held out) and a “my PIN is …” line repeated {repeated} times, then asks, for each test text, which training texts made the model predict it.",
        spec.model.n_layers,
        spec.data.heldout_fraction * 100.0
    )
}

fn demo_settings() -> InfluenceSpec {
    ExperimentSpec::influence_demo()
        .influence
        .unwrap_or_default()
}

impl InfluencePanel {
    fn set_fields(&mut self, s: &InfluenceSpec) {
        self.fields = [
            s.topk.to_string(),
            s.deletion_k
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(","),
            s.deletion_tests.to_string(),
            s.random_draws.to_string(),
        ];
    }

    /// Each field checked.
    fn checked(&self) -> [Result<(), String>; 4] {
        let whole = |f: &str, (lo, hi): (usize, usize)| match f.trim().parse::<usize>() {
            Ok(v) if (lo..=hi).contains(&v) => Ok(()),
            _ => Err(format!("a whole number from {lo} to {hi}")),
        };
        [
            whole(&self.fields[0], (1, 256)),
            self.ks().map(|_| ()),
            whole(&self.fields[2], (1, 64)),
            whole(&self.fields[3], (1, 16)),
        ]
    }

    fn ks(&self) -> Result<Vec<usize>, String> {
        let ks: Result<Vec<usize>, _> = self.fields[1]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse::<usize>)
            .collect();
        match ks {
            Ok(ks) if !ks.is_empty() && ks.len() <= 8 && ks.iter().all(|&k| k >= 1) => Ok(ks),
            _ => Err("one to eight whole numbers from 1, separated by commas".into()),
        }
    }

    /// `base` with this view's settings in its `influence` section.
    fn spec(&self, mut base: ExperimentSpec) -> Result<ExperimentSpec, String> {
        if let Some(e) = self.checked().into_iter().find_map(Result::err) {
            return Err(e);
        }
        let mut s = base.influence.clone().unwrap_or_else(|| InfluenceSpec {
            heldout_tests: 8,
            ..InfluenceSpec::default()
        });
        s.topk = self.fields[0].trim().parse().unwrap_or(s.topk);
        s.deletion_k = self.ks()?;
        s.deletion_tests = self.fields[2].trim().parse().unwrap_or(s.deletion_tests);
        s.random_draws = self.fields[3].trim().parse().unwrap_or(s.random_draws);
        base.influence = Some(s);
        base.validate().map_err(|e| e.to_string())?;
        Ok(base)
    }

    fn start(&mut self, spec: ExperimentSpec) {
        self.error = None;
        self.status = Status::Training(0, 0);
        self.view = None;
        self.deletion = None;
        self.dirty = true;
        self.spec = Some(spec.clone());
        self.hub.start(JobRequest {
            view: ID,
            spec: spec.clone(),
            job: ToWorker::Influence {
                spec,
                backend: self.hub.state.backend,
            },
            keep: Keep::New,
        });
    }

    fn on_worker(&mut self, m: &FromWorker) -> bool {
        match m {
            FromWorker::Started(info) => self.status = Status::Training(0, info.total_steps),
            FromWorker::Step { progress } => {
                self.status = Status::Training(progress.step, progress.total_steps)
            }
            FromWorker::InfluenceProgress {
                progress,
                elapsed_s,
            } => self.status = Status::Gradients(*progress, *elapsed_s),
            FromWorker::Influence { view, gradient_s } => {
                self.hub
                    .keep_result(RunResult::Influence(view.clone(), *gradient_s));
                self.test = view.result.tests.first().map(|t| t.test);
                self.train = None;
                self.view = Some((**view).clone());
                self.gradient_s = *gradient_s;
                self.status = Status::Ready;
                self.dirty = true;
            }
            &FromWorker::DeletionProgress {
                done,
                total,
                elapsed_s,
                workers,
            } => self.status = Status::Deleting(done, total, elapsed_s, workers),
            FromWorker::Deletion {
                result,
                cancelled,
                elapsed_s,
            } => {
                self.hub
                    .keep_result(RunResult::Deletion(result.clone(), *elapsed_s, *cancelled));
                self.deletion = Some(((**result).clone(), *elapsed_s, *cancelled));
                self.status = Status::Ready;
                self.dirty = true;
            }
            FromWorker::Cancelled { .. } => {
                self.status = if self.view.is_some() {
                    Status::Ready
                } else {
                    Status::Stopped
                }
            }
            FromWorker::Failed { message } => {
                self.error = Some(message.clone());
                self.status = if self.view.is_some() {
                    Status::Ready
                } else {
                    Status::Stopped
                };
            }
            _ => return false,
        }
        true
    }
}

impl Component for InfluencePanel {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        let mut v = InfluencePanel {
            hub,
            _hub: handle,
            status: Status::Idle,
            error: None,
            spec: None,
            view: None,
            gradient_s: 0.0,
            deletion: None,
            fields: Default::default(),
            search: String::new(),
            test: None,
            method: Method::TracInWe,
            train: None,
            dirty: false,
            agreement: NodeRef::default(),
            deletion_chart: NodeRef::default(),
        };
        v.set_fields(&demo_settings());
        v
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => self.hub = hub,
            Msg::Event(ViewEvent::Worker(m)) => return self.on_worker(&m),
            Msg::Event(ViewEvent::Start(spec)) => {
                if let Some(s) = &spec.influence {
                    self.set_fields(s);
                }
                match self.spec((*spec).clone()) {
                    Ok(s) => self.start(s),
                    Err(e) => self.error = Some(e),
                }
            }
            Msg::Event(ViewEvent::Restore(run)) => {
                self.view = None;
                self.deletion = None;
                self.status = Status::Idle;
                self.spec = Some(run.1.spec.clone());
                for r in &run.1.results {
                    match r {
                        RunResult::Influence(v, secs) => {
                            self.test = v.result.tests.first().map(|t| t.test);
                            self.view = Some((**v).clone());
                            self.gradient_s = *secs;
                            self.status = Status::Ready;
                        }
                        RunResult::Deletion(d, secs, cancelled) => {
                            self.deletion = Some(((**d).clone(), *secs, *cancelled))
                        }
                        _ => {}
                    }
                }
                self.dirty = true;
            }
            Msg::Event(ViewEvent::Resumed(_)) => return false,
            Msg::Run(own) => {
                if !self.hub.state.can_start() {
                    return false;
                }
                let base = if own {
                    self.hub.state.form.as_deref().cloned()
                } else {
                    Some(ExperimentSpec::influence_demo())
                };
                match base
                    .ok_or_else(|| "fix the data and model settings first".to_string())
                    .and_then(|b| self.spec(b))
                {
                    Ok(spec) => self.start(spec),
                    Err(e) => self.error = Some(e),
                }
            }
            Msg::Delete => {
                let (Some(spec), Some(v)) = (self.spec.clone(), &self.view) else {
                    return false;
                };
                if !self.hub.state.can_start() {
                    return false;
                }
                match self.spec(spec) {
                    Ok(spec) => {
                        self.error = None;
                        self.status = Status::Deleting(0, 0, 0.0, 1);
                        self.spec = Some(spec.clone());
                        let job = ToWorker::Deletion {
                            spec: spec.clone(),
                            backend: self.hub.state.backend,
                            result: Box::new(v.result.clone()),
                            workers: self.hub.state.workers,
                        };
                        self.hub.start(JobRequest {
                            view: ID,
                            spec,
                            job,
                            keep: Keep::Attach,
                        });
                    }
                    Err(e) => self.error = Some(e),
                }
            }
            Msg::SetField(i, text) => {
                if let Some(f) = self.fields.get_mut(i) {
                    *f = text;
                }
            }
            Msg::Search(s) => {
                self.search = s;
                // Pick the first match, so the lists follow the search.
                if let Some(v) = &self.view {
                    let needle = self.search.to_lowercase();
                    if let Some(t) = v
                        .result
                        .tests
                        .iter()
                        .find(|t| self.text_of(v, t.test).to_lowercase().contains(&needle))
                    {
                        self.test = Some(t.test);
                        self.train = None;
                    }
                }
            }
            Msg::PickTest(t) => {
                self.test = Some(t);
                self.train = None;
            }
            Msg::PickMethod(m) => {
                self.method = m;
                self.train = None;
            }
            Msg::PickTrain(t) => self.train = Some(t),
            Msg::Export(what) => {
                if let Err(e) = self.export(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
        }
        true
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        if let (Some(v), Some(c)) = (&self.view, self.agreement.cast()) {
            draw_on(c, |a| agreement_chart(a, &v.result));
        }
        if let (Some((d, ..)), Some(c)) = (&self.deletion, self.deletion_chart.cast()) {
            draw_on(c, |a| deletion_chart(a, d));
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let state = &self.hub.state;
        let blocked = !state.can_start();
        let checked = self.checked();
        let fields_ok = checked.iter().all(Result::is_ok);
        let eta = |done: usize, total: usize, secs: f64| {
            if done > 0 && total > done {
                format!(" · ETA {:.0} s", secs / done as f64 * (total - done) as f64)
            } else {
                String::new()
            }
        };
        let (name, text) = match &self.status {
            Status::Idle => ("idle", demo_blurb()),
            Status::Training(s, t) => ("training", format!("Training the model: step {s} of {t}…")),
            Status::Gradients(p, secs) => (
                "gradients",
                format!(
                    "Per-example gradients: {} of {} (checkpoint {}){}…",
                    p.done,
                    p.total,
                    p.checkpoint + 1,
                    eta(p.done, p.total, *secs)
                ),
            ),
            Status::Deleting(d, t, secs, w) => (
                "deleting",
                format!(
                    "Case deletion: {d} of {t} retrains done{}{}… (Cancel keeps the retrains done)",
                    if *w > 1 {
                        format!(" on {w} workers")
                    } else {
                        String::new()
                    },
                    eta(*d, *t, *secs)
                ),
            ),
            Status::Ready => ("ready", "Scores ready.".to_string()),
            Status::Stopped => ("stopped", "Stopped before a result.".to_string()),
        };
        let bar = match &self.status {
            Status::Training(s, t) => {
                html! { <progress id="inf-train-progress" max={(*t).max(1).to_string()} value={s.to_string()}></progress> }
            }
            Status::Gradients(p, _) => {
                html! { <progress id="inf-progress" max={p.total.to_string()} value={p.done.to_string()}></progress> }
            }
            Status::Deleting(d, t, _, _) => {
                html! { <progress id="inf-del-progress" max={(*t).max(1).to_string()} value={d.to_string()}></progress> }
            }
            _ => html! {},
        };
        let running = state.busy.is_some();
        let field = |i: usize| {
            let (id, label, help) = FIELDS[i];
            text_field(
                id,
                label,
                &self.fields[i],
                checked[i].clone(),
                help,
                running,
                link.callback(move |e: InputEvent| Msg::SetField(i, input_value(&e))),
            )
        };
        html! {
            <section class="panel" id="inf-panel">
                <h2>{ "Training-data influence" }</h2>
                <p class="help">{ "TracIn (Pruthi et al., 2020) scores a training text by how much its gradient steps, at each checkpoint, lowered a test text's loss; TracIn-Last uses the output head only; TracIn-WE (Yeh et al., 2022) the word embeddings of the tokens the two texts share, and its TopK the positions with the largest gradients. With a tied head, TracIn-WE uses the embedding lookup and TracIn-Last the head part of the shared matrix. BOS is left out." }</p>
                <div class="row actions">{ field(0) }{ field(1) }{ field(2) }{ field(3) }</div>
                <div class="row actions">
                    <button id="inf-demo" class="primary" onclick={link.callback(|_| Msg::Run(false))} disabled={blocked || !fields_ok}>{ "Run the influence demo" }</button>
                    <button id="inf-form" onclick={link.callback(|_| Msg::Run(true))} disabled={blocked || !fields_ok} title="Use the data, model and training settings">{ "On my data and settings" }</button>
                    <button id="inf-delete" onclick={link.callback(|_| Msg::Delete)} disabled={blocked || !fields_ok || self.view.is_none()}>{ "Run case deletion" }</button>
                </div>
                <p id="inf-status" data-state={name}>{ text }</p>
                { bar }
                if let Some(e) = &self.error { <p id="inf-error" class="error" role="alert">{ e }</p> }
                { self.results(ctx) }
            </section>
        }
    }
}
