//! What the shell shares with the views, through one yew context: the worker
//! connection (send a job, receive that job's messages), the form's current spec, the
//! last trained model, the backend, the runs store's list, and the actions a view may
//! ask of the shell. No view reads another view's state; the shell holds none of theirs.
//!
//! Each view registers one callback ([`Hub::register`]) under its id; the shell hands it
//! the messages of the jobs it started and the commands addressed to it ([`ViewEvent`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use mnemo_core::{BackendKind, ExperimentSpec};
use yew::Callback;

use crate::protocol::{FromWorker, ToWorker};
use crate::store::{RunData, RunMeta, RunResult};

/// A view's id: the `view` of links and kept runs, and the address's `?view=`.
pub type ViewId = &'static str;

/// What the shell tells a view.
#[derive(Debug, Clone)]
pub enum ViewEvent {
    /// A message of a job this view started (or the answer to its request).
    Worker(Rc<FromWorker>),
    /// Run this view's experiment for `spec` (a link being opened, or "Run again"),
    /// setting the view's own fields from the spec.
    Start(Rc<ExperimentSpec>),
    /// A kept run was reopened (sent to every view): show what it kept for you, and
    /// clear your results otherwise.
    Restore(Rc<(RunMeta, RunData)>),
    /// Go on training from a resume point (to the training view): the losses so far.
    Resumed(Rc<Vec<(usize, f32)>>),
}

/// How a job's run is kept in the runs store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// A new run of the job's view.
    New,
    /// The job adds its result to the current run (extraction or soft prompts on the
    /// model the last run trained).
    Attach,
    /// The job goes on with the current run (a resumed one).
    Continue,
}

/// A job a view asks the shell to send.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// Who asks (gets the job's messages).
    pub view: ViewId,
    /// The experiment, as a link would share it and a kept run would keep it.
    pub spec: ExperimentSpec,
    /// The message for the worker.
    pub job: ToWorker,
    /// How the run is kept.
    pub keep: Keep,
}

/// What a view may ask the shell to do with the kept runs.
#[derive(Debug, Clone, PartialEq)]
pub enum RunsAction {
    /// Rename a run.
    Rename(String, String),
    /// Delete a run.
    Delete(String),
    /// Show a run in its view.
    Open(String),
    /// Go on training an interrupted run from its resume point.
    Resume(String),
    /// Run an interrupted run's spec again.
    Again(String),
}

/// What the Lessons view and the guide ask of the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum GuideAction {
    /// Open the lesson with this id (at the step its kept progress names).
    Begin(String),
    /// The guide shows a step: open its view, and lock and hide what it names.
    Show {
        /// The step's view, if it names one.
        view: Option<ViewId>,
        /// Settings keys to lock.
        lock: Vec<String>,
        /// Panels to hide.
        hide: Vec<String>,
    },
    /// Run `spec` in `view` (the step's experiment).
    Run {
        /// The view.
        view: ViewId,
        /// The experiment.
        spec: Box<ExperimentSpec>,
    },
    /// Close the lesson (its progress stays kept).
    Close,
}

/// The kept runs as the runs view shows them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunsList {
    /// `None` while the store opens, `Err` when there is none.
    pub store: Option<Result<(), String>>,
    /// Newest first.
    pub list: Vec<RunMeta>,
    /// The id of the run being produced now.
    pub running: Option<String>,
    /// The last problem keeping or reading runs.
    pub error: Option<String>,
}

/// Shared facts: a change re-renders the views.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HubState {
    /// WebGPU's adapter or why there is none; `None` while the worker is being asked.
    pub webgpu: Option<Result<String, String>>,
    /// The view whose job is running.
    pub busy: Option<ViewId>,
    /// The backend the next job will use.
    pub backend: BackendKind,
    /// Workers a job of independent parts may use (the header's choice).
    pub workers: usize,
    /// The form's experiment, or `None` while a field is invalid (shared, not copied,
    /// at each render: a text can be megabytes).
    pub form: Option<Rc<ExperimentSpec>>,
    /// The last trained model (description, experiment), kept by the worker.
    pub trained: Option<Rc<(String, ExperimentSpec)>>,
    /// The kept runs.
    pub runs: RunsList,
    /// What the opened link hides.
    pub chrome: Chrome,
    /// The id of the lesson the guide shows.
    pub guide: Option<String>,
}

/// The panels and controls an opened link hides (a teacher's link, or the embed mode).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chrome {
    /// Hidden panel names (`demo`, `data`, `model`, `progress`, `backend`, `share`, a
    /// view's id).
    pub hidden: Vec<String>,
    /// Settings keys the link locks (`all` locks every one).
    pub locked: Vec<String>,
    /// One view with minimal chrome.
    pub embedded: bool,
}

impl Chrome {
    /// Whether the panel `name` is hidden.
    pub fn hides(&self, name: &str) -> bool {
        self.hidden.iter().any(|h| h == name)
    }

    /// Whether the settings key `key` is locked.
    pub fn locks(&self, key: &str) -> bool {
        self.locked.iter().any(|l| l == key || l == "all")
    }
}

impl HubState {
    /// Whether a new job can be sent: the worker answered its probe (messages sent before
    /// it listens are lost) and no job runs.
    pub fn can_start(&self) -> bool {
        self.webgpu.is_some() && self.busy.is_none()
    }
}

/// The views' registry: one callback each.
type Registry = Rc<RefCell<HashMap<ViewId, Callback<ViewEvent>>>>;

/// The context value.
#[derive(Clone)]
pub struct Hub {
    /// The facts.
    pub state: Rc<HubState>,
    pub(crate) job: Callback<JobRequest>,
    pub(crate) request: Callback<(ViewId, ToWorker)>,
    pub(crate) result: Callback<RunResult>,
    pub(crate) set_form: Callback<ExperimentSpec>,
    pub(crate) runs: Callback<RunsAction>,
    pub(crate) guide: Callback<GuideAction>,
    pub(crate) registry: Registry,
}

impl PartialEq for Hub {
    fn eq(&self, other: &Self) -> bool {
        self.state == other.state && Rc::ptr_eq(&self.registry, &other.registry)
    }
}

impl Hub {
    /// Receive this view's events (call once, when the view is created).
    pub fn register(&self, view: ViewId, events: Callback<ViewEvent>) {
        self.registry.borrow_mut().insert(view, events);
    }

    /// Send a job; its messages come back to `request.view`.
    pub fn start(&self, request: JobRequest) {
        self.job.emit(request);
    }

    /// Send a request that is not a job (weights out or in, Cancel).
    pub fn request(&self, view: ViewId, msg: ToWorker) {
        self.request.emit((view, msg));
    }

    /// Stop the running job after its current step.
    pub fn cancel(&self) {
        self.request.emit(("", ToWorker::Cancel));
    }

    /// Keep a result with the current run.
    pub fn keep_result(&self, result: RunResult) {
        self.result.emit(result);
    }

    /// Put `spec` in the data and model form.
    pub fn set_form(&self, spec: ExperimentSpec) {
        self.set_form.emit(spec);
    }

    /// Open, drive or close a lesson's guide.
    pub fn guide(&self, action: GuideAction) {
        self.guide.emit(action);
    }

    /// Act on the kept runs.
    pub fn runs(&self, action: RunsAction) {
        self.runs.emit(action);
    }
}

/// Deliver `event` to `view` (nothing when it is not registered).
pub(crate) fn deliver(registry: &Registry, view: ViewId, event: ViewEvent) {
    let cb = registry.borrow().get(view).cloned();
    if let Some(cb) = cb {
        cb.emit(event);
    }
}

/// Deliver `event` to every view.
pub(crate) fn broadcast(registry: &Registry, event: ViewEvent) {
    let all: Vec<Callback<ViewEvent>> = registry.borrow().values().cloned().collect();
    for cb in all {
        cb.emit(event.clone());
    }
}
