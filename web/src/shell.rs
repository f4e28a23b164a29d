//! The shell: the header (backend badge and switch), the navigation, the worker
//! connection, the runs store, the data and model settings and the Share panel. It knows
//! the list of views ([`crate::views::VIEWS`]) and nothing of what is inside them: views
//! start jobs and receive their messages through the [`Hub`] context.
//!
//! The address names the view (`?view=profile`), so back, forward and reload keep it; a
//! link's `#v1.…` fragment stays beside it. Every view stays mounted (hidden when not
//! shown), so each keeps its results while the user looks at another.

use std::rc::Rc;

use mnemo_core::train::Progress;
use mnemo_core::{BackendKind, ExperimentSpec};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{File, Worker};
use yew::prelude::*;

use crate::banner;
pub use crate::banner::BackendChoice;
use crate::connection::{self, Listener, spawn_worker, view_in_address};
use crate::hub::{
    self, Chrome, GuideAction, Hub, HubState, JobRequest, Keep, RunsAction, ViewEvent, ViewId,
};
use crate::lessons::{self, guide::Guide};
use crate::protocol::{FromWorker, ToWorker};
use crate::runs::{Event as RunsEvent, Load, LoadedRun, Runs};
use crate::settings::Settings;
use crate::share::{self, ShareState};
use crate::store::{RunData, RunMeta, RunResult};
use crate::views::{self, VIEWS};
use mnemo_core::lesson::Lesson;

/// Messages of the shell.
pub enum Msg {
    /// From the worker.
    Worker(FromWorker),
    /// A view sends a job.
    Job(Box<JobRequest>),
    /// A view sends a request that is not a job.
    Request(ViewId, ToWorker),
    /// A view's result, for the kept run.
    Result(RunResult),
    /// Put a spec in the settings.
    SetForm(Box<ExperimentSpec>),
    /// The settings' experiment changed.
    FormChanged(Option<ExperimentSpec>),
    /// Backend select.
    SetBackend(BackendChoice),
    /// The header's workers.
    SetWorkers(usize),
    /// Show a view (and name it in the address).
    Navigate(ViewId),
    /// Back or forward.
    PopState,
    /// Show or hide the settings on a view other than Train.
    ToggleSettings,
    /// A runs action from the runs view.
    Runs(RunsAction),
    /// The runs store reports.
    RunsEvent(RunsEvent),
    /// Make a link to the last experiment (`true`: the embed variant).
    MakeLink(bool),
    /// The Lessons view or the guide asks.
    Guide(GuideAction),
    /// The file an opened link names was picked.
    LinkFile(File),
    /// ... and read (or refused).
    LinkFileRead(Result<String, String>),
}

/// The page.
pub struct App {
    worker: Option<Worker>,
    _listeners: Vec<Listener>,
    worker_error: Option<String>,
    webgpu: Option<Result<String, String>>,
    /// Requests made before the worker answered its probe (a worker drops messages that
    /// arrive while its wasm still loads): sent once it has.
    pending: Vec<ToWorker>,
    choice: BackendChoice,
    /// Workers for jobs of independent parts (the header's choice).
    workers: usize,
    /// The view whose job runs, and the job's last training step.
    busy: Option<(ViewId, Option<Progress>)>,
    /// The view that gets the worker's answers.
    owner: ViewId,
    form: Option<Rc<ExperimentSpec>>,
    load: (Rc<ExperimentSpec>, u32),
    trained: Option<Rc<(String, ExperimentSpec)>>,
    runs: Runs,
    runs_done: Callback<RunsEvent>,
    share: ShareState,
    /// The last experiment started and its view (what "Copy link" shares).
    last_job: Option<(ExperimentSpec, ViewId)>,
    active: ViewId,
    settings_open: bool,
    on_form: Callback<Option<ExperimentSpec>>,
    /// The lesson the guide shows, and what its step locks and hides.
    guide: Option<GuideState>,
    /// Why a lesson could not be opened.
    guide_error: Option<String>,
    /// The hub's actions and registry (its state is made anew at each render).
    template: Hub,
}

/// The open lesson.
struct GuideState {
    lesson: &'static Lesson,
    lock: Vec<String>,
    hide: Vec<String>,
}

impl App {
    fn send(&self, msg: &ToWorker) {
        connection::send(self.worker.as_ref(), msg);
    }

    /// The backend the next run will use.
    fn backend(&self) -> BackendKind {
        match (self.choice, &self.webgpu) {
            (BackendChoice::WebGpu | BackendChoice::Auto, Some(Ok(_))) => BackendKind::Wgpu,
            _ => BackendKind::Flex,
        }
    }

    /// What is hidden and locked: the opened link's settings and the lesson step's.
    fn chrome(&self) -> Chrome {
        let names = ["backend", "demo", "data", "model", "progress", "share"];
        let step_hides = |n: &str| {
            self.guide
                .as_ref()
                .is_some_and(|g| g.hide.iter().any(|h| h == n))
        };
        let mut locked = self
            .share
            .opened
            .as_ref()
            .map(|p| p.lock.clone())
            .unwrap_or_default();
        if let Some(g) = &self.guide {
            locked.extend(g.lock.iter().cloned());
        }
        Chrome {
            hidden: names
                .iter()
                .copied()
                .chain(VIEWS.iter().map(|v| v.id))
                .filter(|n| self.share.hidden(n) || step_hides(n))
                .map(String::from)
                .collect(),
            locked,
            embedded: self.share.embedded(),
        }
    }

    fn on_guide(&mut self, action: GuideAction) {
        match action {
            GuideAction::Begin(id) => match lessons::find(&id) {
                Some(lesson) => {
                    self.guide_error = None;
                    self.guide = Some(GuideState {
                        lesson,
                        lock: Vec::new(),
                        hide: Vec::new(),
                    });
                }
                None => {
                    self.guide_error = Some(format!(
                        "This Mnemo has no lesson called “{}”; the Lessons tab lists the ones it has.",
                        id.chars().take(64).collect::<String>()
                    ))
                }
            },
            GuideAction::Show { view, lock, hide } => {
                if let Some(g) = &mut self.guide {
                    g.lock = lock;
                    g.hide = hide;
                }
                if let Some(v) = view {
                    self.navigate(v, true);
                }
            }
            GuideAction::Run { view, spec } => {
                if self.busy.is_some() {
                    return;
                }
                let spec = Rc::new(*spec);
                self.load = (spec.clone(), self.load.1 + 1);
                self.navigate(view, true);
                hub::deliver(&self.template.registry, view, ViewEvent::Start(spec));
            }
            GuideAction::Close => self.guide = None,
        }
    }

    fn job(&mut self, req: JobRequest) {
        if self.busy.is_some() || self.webgpu.is_none() {
            web_sys::console::warn_1(
                &format!("{} asked for a job while the worker is busy", req.view).into(),
            );
            return;
        }
        self.busy = Some((req.view, None));
        self.owner = req.view;
        if mnemo_core::link::VIEWS.contains(&req.view) {
            self.last_job = Some((req.spec.clone(), req.view));
        }
        if req.keep == Keep::New {
            self.runs
                .begin(&req.spec, req.view, self.backend(), &self.runs_done);
        }
        self.send(&req.job.on_backend(self.backend()));
    }

    fn navigate(&mut self, id: ViewId, push: bool) {
        if push
            && id != self.active
            && let Some(w) = web_sys::window()
        {
            let hash = w.location().hash().unwrap_or_default();
            if let Ok(h) = w.history() {
                let _ =
                    h.push_state_with_url(&JsValue::NULL, "", Some(&format!("?view={id}{hash}")));
            }
        }
        self.active = id;
    }

    /// Re-run the experiment of the link the page was opened with (once, when the
    /// worker is ready and any file it names is attached).
    fn run_link(&mut self) {
        if self.share.started || self.webgpu.is_none() || self.busy.is_some() {
            return;
        }
        let Some(p) = &self.share.opened else { return };
        if !p.run || p.corpus.is_some() {
            return;
        }
        let spec = Rc::new(p.spec.clone());
        let view = p
            .view
            .as_deref()
            .and_then(views::find)
            .map_or(views::train::ID, |v| v.id);
        self.share.started = true;
        hub::deliver(&self.template.registry, view, ViewEvent::Start(spec));
    }

    fn on_worker(&mut self, m: FromWorker) {
        match m {
            FromWorker::Ready => self.send(&ToWorker::Probe),
            FromWorker::Probe { webgpu } => {
                self.webgpu = Some(webgpu);
                for m in std::mem::take(&mut self.pending) {
                    self.send(&m);
                }
                self.run_link();
            }
            FromWorker::ModelKept { description, spec } => {
                self.trained = Some(Rc::new((description, *spec)))
            }
            FromWorker::Failed { message } if self.webgpu.is_none() => {
                self.webgpu = Some(Err(message))
            }
            m => {
                if let Some((_, progress)) = &mut self.busy {
                    if let FromWorker::Step { progress: p } = &m {
                        *progress = Some(p.clone());
                    }
                    self.runs.follow(&m, &self.runs_done);
                }
                if matches!(m, FromWorker::Finished) {
                    self.busy = None;
                }
                hub::deliver(
                    &self.template.registry,
                    self.owner,
                    ViewEvent::Worker(Rc::new(m)),
                );
            }
        }
    }

    /// Show, resume or re-run a kept run.
    fn restore(&mut self, meta: RunMeta, why: Load, loaded: LoadedRun) {
        let Ok(loaded) = loaded else { return };
        let (data, bytes): (RunData, Option<Vec<u8>>) = *loaded;
        if self.busy.is_some() {
            self.runs.set_error("wait for the current run to finish");
            return;
        }
        let view = views::find(&meta.view).map_or(views::train::ID, |v| v.id);
        let spec = data.spec.clone();
        self.load = (Rc::new(spec.clone()), self.load.1 + 1);
        match why {
            Load::Open => {
                self.runs.clear_current();
                self.last_job = Some((spec, view));
                hub::broadcast(
                    &self.template.registry,
                    ViewEvent::Restore(Rc::new((meta, data))),
                );
                self.navigate(view, true);
            }
            Load::Resume => {
                let (Some(point), Some(at)) = (bytes, meta.resume_step) else {
                    self.runs.set_error("this run has no resume point");
                    return;
                };
                let losses: Vec<(usize, f32)> =
                    data.losses.iter().copied().filter(|l| l.0 <= at).collect();
                let mut meta = meta;
                meta.step = at;
                let mut data = data;
                data.losses.clone_from(&losses);
                self.runs.resume(meta, data, &self.runs_done);
                hub::deliver(
                    &self.template.registry,
                    views::train::ID,
                    ViewEvent::Resumed(Rc::new(losses)),
                );
                self.navigate(views::train::ID, true);
                // Resume points are written on the CPU path; go on there.
                let job = ToWorker::Resume {
                    spec: spec.clone(),
                    backend: BackendKind::Flex,
                    point,
                };
                self.job(JobRequest {
                    view: views::train::ID,
                    spec,
                    job,
                    keep: Keep::Continue,
                });
            }
            Load::Again => {
                hub::deliver(
                    &self.template.registry,
                    view,
                    ViewEvent::Start(Rc::new(spec)),
                );
                self.navigate(view, true);
            }
        }
    }

    fn hub(&self) -> Hub {
        Hub {
            state: Rc::new(HubState {
                webgpu: self.webgpu.clone(),
                busy: self.busy.as_ref().map(|b| b.0),
                backend: self.backend(),
                workers: self.workers,
                form: self.form.clone(),
                trained: self.trained.clone(),
                runs: self.runs.snapshot(),
                chrome: self.chrome(),
                guide: self.guide.as_ref().map(|g| g.lesson.id.clone()),
            }),
            ..self.template.clone()
        }
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link();
        let (worker, mut listeners, worker_error) = match spawn_worker(link) {
            Ok((w, c)) => (Some(w), c, None),
            Err(e) => (
                None,
                Vec::new(),
                Some(format!("The training worker could not start: {e}")),
            ),
        };
        let l = link.clone();
        let on_pop =
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| l.send_message(Msg::PopState));
        if let Some(w) = web_sys::window() {
            let _ = w.add_event_listener_with_callback("popstate", on_pop.as_ref().unchecked_ref());
        }
        listeners.push(on_pop);
        let runs_done = link.callback(Msg::RunsEvent);
        Runs::open(runs_done.clone());
        let share = ShareState::from_location();
        let spec = share
            .opened
            .as_ref()
            .map_or_else(ExperimentSpec::demo, |p| p.spec.clone());
        let link_view = share
            .opened
            .as_ref()
            .and_then(|p| p.view.as_deref())
            .and_then(views::find)
            .map(|v| v.id);
        let active = if share.embedded() {
            link_view
        } else {
            view_in_address().or(link_view)
        };
        let guide = share
            .opened
            .as_ref()
            .and_then(|p| p.guide.as_deref())
            .map(|id| lessons::find(id).ok_or(id));
        let guide_error = match &guide {
            Some(Err(id)) => Some(format!(
                "This link opens the lesson “{id}”, which this Mnemo does not have; the Lessons tab lists the ones it has."
            )),
            _ => None,
        };
        let guide = guide.and_then(Result::ok).map(|lesson| GuideState {
            lesson,
            lock: Vec::new(),
            hide: Vec::new(),
        });
        App {
            worker,
            _listeners: listeners,
            worker_error,
            webgpu: None,
            pending: Vec::new(),
            choice: BackendChoice::Auto,
            workers: banner::default_workers(),
            busy: None,
            owner: views::train::ID,
            form: None,
            load: (Rc::new(spec), 0),
            trained: None,
            runs: Runs::default(),
            runs_done,
            share,
            last_job: None,
            active: active.unwrap_or(views::train::ID),
            settings_open: false,
            on_form: link.callback(Msg::FormChanged),
            guide,
            guide_error,
            template: Hub {
                state: Rc::new(HubState::default()),
                job: link.callback(|r| Msg::Job(Box::new(r))),
                request: link.callback(|(v, m)| Msg::Request(v, m)),
                result: link.callback(Msg::Result),
                set_form: link.callback(|s| Msg::SetForm(Box::new(s))),
                runs: link.callback(Msg::Runs),
                guide: link.callback(Msg::Guide),
                registry: Rc::default(),
            },
        }
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Worker(m) => self.on_worker(m),
            Msg::Job(req) => self.job(*req),
            Msg::Request(view, m) => {
                if !matches!(m, ToWorker::Cancel) {
                    self.owner = view;
                }
                if self.webgpu.is_none() {
                    self.pending.push(m);
                } else {
                    self.send(&m);
                }
                return false;
            }
            Msg::Result(r) => self.runs.keep_result(r, &self.runs_done),
            Msg::SetForm(spec) => self.load = (Rc::new(*spec), self.load.1 + 1),
            Msg::FormChanged(spec) => self.form = spec.map(Rc::new),
            Msg::SetBackend(c) => self.choice = c,
            Msg::SetWorkers(w) => self.workers = w,
            Msg::Navigate(id) => self.navigate(id, true),
            Msg::PopState => self.active = view_in_address().unwrap_or(views::train::ID),
            Msg::ToggleSettings => self.settings_open = !self.settings_open,
            Msg::Runs(action) => match action {
                RunsAction::Rename(id, name) => self.runs.rename(id, &name, &self.runs_done),
                RunsAction::Delete(id) => self.runs.delete(id, &self.runs_done),
                RunsAction::Open(id) => self.runs.load(id, Load::Open, &self.runs_done),
                RunsAction::Resume(id) => self.runs.load(id, Load::Resume, &self.runs_done),
                RunsAction::Again(id) => self.runs.load(id, Load::Again, &self.runs_done),
            },
            Msg::RunsEvent(e) => {
                if let Some((meta, why, loaded)) = self.runs.on_event(e, &self.runs_done) {
                    self.restore(meta, why, loaded);
                }
            }
            Msg::MakeLink(embed) => {
                let job = self
                    .last_job
                    .clone()
                    .or_else(|| self.form.as_deref().cloned().map(|s| (s, views::train::ID)));
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
            Msg::Guide(action) => self.on_guide(action),
            Msg::LinkFile(file) => {
                let link = _ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    link.send_message(Msg::LinkFileRead(crate::upload::read_text(&file).await));
                });
            }
            Msg::LinkFileRead(result) => match result.and_then(|text| self.share.attach(&text)) {
                Ok(()) => {
                    self.share.file_error = None;
                    if let Some(p) = &self.share.opened {
                        self.load = (Rc::new(p.spec.clone()), self.load.1 + 1);
                    }
                    self.run_link();
                }
                Err(e) => self.share.file_error = Some(e),
            },
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let hub = self.hub();
        let chrome = hub.state.chrome.clone();
        let backend = hub.state.backend;
        let running = self.busy.is_some();
        let nav = VIEWS.iter().filter(|v| !chrome.hides(v.id)).map(|v| {
            let id = v.id;
            let onclick = link.callback(move |e: MouseEvent| {
                e.prevent_default();
                Msg::Navigate(id)
            });
            let busy = self.busy.as_ref().is_some_and(|b| b.0 == id);
            html! {
                <a id={format!("nav-{id}")} href={format!("?view={id}")} class={classes!("tab", (id == self.active).then_some("active"), busy.then_some("busy"))}
                   aria-current={if id == self.active { "page" } else { "false" }} {onclick}>{ v.label }</a>
            }
        });
        let job_text = match &self.busy {
            None => "No job is running.".to_string(),
            Some((view, progress)) => {
                let label = views::find(view).map_or(*view, |v| v.label);
                match progress {
                    Some(p) => format!(
                        "{label}: training step {}/{} · loss {:.3} · ETA {:.0} s",
                        p.step, p.total_steps, p.loss, p.eta_s
                    ),
                    None => format!("{label}: running…"),
                }
            }
        };
        let summary = self.form.as_ref().map_or_else(
            || "a setting is invalid".to_string(),
            |s| {
                let length = match s.training.duration {
                    mnemo_core::spec::Duration::Steps(n) => format!("{n} steps"),
                    mnemo_core::spec::Duration::Epochs(n) => format!("{n} epochs"),
                };
                format!(
                    "“{}”: {} layers, d_model {}, {length}",
                    s.name, s.model.n_layers, s.model.d_model
                )
            },
        );
        let on_train = self.active == views::train::ID;
        // The Lessons view runs its experiments in the other views: no settings there.
        let no_settings = on_train
            || self.active == views::lessons::ID
            || chrome.hides("data") && chrome.hides("model");
        let summary = (!no_settings).then(|| html! {
            <p id="settings-summary" class="help">{ format!("Data and model: {summary}. ") }
                <button id="settings-toggle" class="link" onclick={link.callback(|_| Msg::ToggleSettings)}>
                    { if self.settings_open { "Hide the settings" } else { "Show the settings" } }</button>
            </p>
        });
        // The DOM order never changes (so nothing is re-created when the view changes):
        // the training view puts its settings below it with CSS order; elsewhere a summary
        // of the settings opens them above the view. Every view stays mounted (and keeps
        // its results) but only the shown one is visible; an embed mounts its one view.
        let layout = html! {
            <div class={classes!("stack", on_train.then_some("train-first"))}>
                { summary.unwrap_or_default() }
                <div id="settings" hidden={!on_train && !self.settings_open}>
                    <Settings load={self.load.0.clone()} generation={self.load.1} disabled={running} chrome={chrome.clone()} on_change={self.on_form.clone()} />
                </div>
                <div class="views">{ for VIEWS.iter().filter(|v| !chrome.embedded || v.id == self.active).map(|v| html! {
                    <div id={format!("view-{}", v.id)} class="view" hidden={v.id != self.active || chrome.hides(v.id)}>{ (v.render)() }</div>
                }) }</div>
            </div>
        };
        html! {
            <ContextProvider<Hub> context={hub}>
            <main>
                { banner::header(&self.webgpu, (self.choice, link.callback(Msg::SetBackend)), backend, (self.workers, link.callback(Msg::SetWorkers)), &chrome, running) }
                if !chrome.embedded { <nav id="views" class="tabs" aria-label="Analyses">{ for nav }</nav> }
                if let Some(Err(reason)) = &self.webgpu {
                    <p id="webgpu-notice" class="notice" role="status">
                        { format!("WebGPU is not available: {reason}. Mnemo trains on the CPU instead: the same results, only slower.") }
                    </p>
                }
                if let Some(e) = &self.worker_error { <p class="error" role="alert">{ e }</p> }
                if let Some(e) = &self.share.error { <p id="link-error" class="error" role="alert">{ e }</p> }
                { share::notices(&self.share, link.callback(Msg::LinkFile)) }
                <div id="job-bar" class={classes!("jobbar", running.then_some("running"))} data-busy={self.busy.as_ref().map_or("", |b| b.0)}>
                    <span id="job-text" class="mono">{ job_text }</span>
                    <button id="cancel-button" onclick={link.callback(|_| Msg::Request("", ToWorker::Cancel))} disabled={!running}>{ "Cancel" }</button>
                </div>
                if let Some(e) = &self.guide_error { <p id="guide-open-error" class="error" role="alert">{ e }</p> }
                if let Some(g) = &self.guide { <Guide key={g.lesson.id.clone()} lesson={g.lesson} /> }
                { layout }
                if !chrome.hides("share") { { share::panel(&self.share, link.callback(Msg::MakeLink)) } }
                <footer>
                    <small>{ "Mnemo runs entirely in this page: your text never leaves your computer." }</small>
                    <crate::offline::Offline {running} />
                </footer>
            </main>
            </ContextProvider<Hub>>
        }
    }
}
