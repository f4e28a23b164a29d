//! Keeping runs (the shell's side of "Your runs"): every job a view starts is kept in
//! IndexedDB (`crate::store`) as it goes, from the job's generic messages (start, steps,
//! resume points, the end) and the results its view hands over.
//!
//! Choices written down here:
//! - A run is one job a view starts (train, a profile or the size comparison, an
//!   ensemble, soft prompts, extraction after training). Extraction and soft prompts on
//!   the last trained model add their result to the run that trained it.
//! - The run keeps the losses of the model its job trained last (the comparison keeps
//!   the last model's).
//! - Resume points are kept for plain training runs on the CPU path, every few seconds
//!   (WebGPU cannot read burn's optimiser state back; see `mnemo_core::resume`). A run
//!   found running when the page opens was cut short by a reload or a closed tab: it is
//!   marked interrupted and, with a resume point, offered "Resume from step N". Other
//!   interrupted runs are re-run from their spec ("Run again"): every draw is seeded, so
//!   that reproduces them.
//! - Reopening a run shows its spec in the form, its losses and its results as they were
//!   (the timings too); its model is not kept, so extraction needs it trained again.

use mnemo_core::{BackendKind, ExperimentSpec};
use yew::Callback;

use crate::hub::RunsList;
use crate::protocol::FromWorker;
use crate::store::{RunData, RunMeta, RunResult, RunStatus, Store, StoreError};

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

/// What the background work on the store reports.
pub enum Event {
    /// The store opened (or not), with the kept runs.
    Opened(Result<Store, String>, Result<Vec<RunMeta>, String>),
    /// A write finished.
    Kept(Result<(), String>),
    /// A resume point of run `id` at `step` was kept.
    ResumeKept(String, usize),
    /// A run was read (for `Load`).
    Loaded(String, Load, LoadedRun),
}

/// The runs store, the list, and the run being produced.
#[derive(Default)]
pub struct Runs {
    store: Option<Result<Store, String>>,
    list: Vec<RunMeta>,
    current: Option<(RunMeta, RunData)>,
    error: Option<String>,
    counter: u32,
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

impl Runs {
    /// Open the store and list the kept runs (at start-up).
    pub fn open(done: Callback<Event>) {
        wasm_bindgen_futures::spawn_local(async move {
            match Store::open().await {
                Ok(store) => {
                    let list = store.list_at_open().await;
                    done.emit(Event::Opened(Ok(store), list.map_err(|e| e.to_string())));
                }
                Err(e) => done.emit(Event::Opened(Err(e.to_string()), Ok(Vec::new()))),
            }
        });
    }

    /// What the runs view shows.
    pub fn snapshot(&self) -> RunsList {
        RunsList {
            store: self
                .store
                .as_ref()
                .map(|s| s.as_ref().map(|_| ()).map_err(Clone::clone)),
            list: self.list.clone(),
            running: self.running_meta().map(|m| m.id.clone()),
            error: self.error.clone(),
        }
    }

    fn store(&self) -> Option<Store> {
        self.store.as_ref().and_then(|s| s.as_ref().ok()).cloned()
    }

    fn running_meta(&self) -> Option<&RunMeta> {
        self.current
            .as_ref()
            .map(|(m, _)| m)
            .filter(|m| m.status == RunStatus::Running)
    }

    /// Whether the current run is still running.
    pub fn running(&self) -> bool {
        self.running_meta().is_some()
    }

    /// Start keeping a new run of `spec` for `view`.
    pub fn begin(
        &mut self,
        spec: &ExperimentSpec,
        view: &str,
        backend: BackendKind,
        done: &Callback<Event>,
    ) {
        self.counter += 1;
        let meta = RunMeta {
            id: format!("{:013.0}-{}", now_ms(), self.counter),
            name: spec.name.clone(),
            view: view.to_string(),
            created_ms: now_ms(),
            status: RunStatus::Running,
            step: 0,
            total_steps: 0,
            backend,
            resume_step: None,
        };
        let data = RunData {
            spec: spec.clone(),
            losses: Vec::new(),
            results: Vec::new(),
        };
        self.current = Some((meta, data));
        self.keep(true, None, done);
    }

    /// Go on with a kept run (resumed at `meta.step`).
    pub fn resume(&mut self, mut meta: RunMeta, data: RunData, done: &Callback<Event>) {
        meta.status = RunStatus::Running;
        self.current = Some((meta, data));
        self.keep(true, None, done);
    }

    /// Write the current run (its data too when `with_data`, and `resume` bytes when
    /// given) in one transaction, in the background; a failure shows in the runs view.
    fn keep(&mut self, with_data: bool, resume: Option<Vec<u8>>, done: &Callback<Event>) {
        let Some((meta, data)) = self.current.clone() else {
            return;
        };
        match self.list.iter_mut().find(|r| r.id == meta.id) {
            Some(r) => *r = meta.clone(),
            None => self.list.insert(0, meta.clone()),
        }
        let Some(store) = self.store() else { return };
        let done = done.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let data = with_data.then_some(&data);
            let outcome = store.save(&meta, data, resume.as_deref()).await;
            done.emit(Event::Kept(outcome.map_err(|e| e.to_string())));
        });
    }

    /// Update the running run and keep it.
    fn update(&mut self, done: &Callback<Event>, f: impl FnOnce(&mut RunMeta, &mut RunData)) {
        if !self.running() {
            return;
        }
        if let Some((meta, data)) = self.current.as_mut() {
            f(meta, data);
        }
        self.keep(true, None, done);
    }

    /// Follow a message of the running job: its start, steps, resume points and end.
    pub fn follow(&mut self, msg: &FromWorker, done: &Callback<Event>) {
        match msg {
            FromWorker::Started(info) => self.update(done, |m, _| {
                m.total_steps = info.total_steps;
                m.backend = info.backend;
            }),
            FromWorker::Step { progress } => {
                if let Some((m, d)) = self
                    .current
                    .as_mut()
                    .filter(|(m, _)| m.status == RunStatus::Running)
                {
                    // A new model (the next of a comparison) starts again at step 1; a
                    // resumed run goes on after the losses it kept.
                    while d.losses.last().is_some_and(|l| l.0 >= progress.step) {
                        d.losses.pop();
                    }
                    d.losses.push((progress.step, progress.loss));
                    m.step = progress.step;
                }
            }
            FromWorker::ResumePoint { step, bytes } => self.keep_resume(*step, bytes.clone(), done),
            FromWorker::Cancelled { .. } => {
                self.update(done, |m, _| m.status = RunStatus::Cancelled)
            }
            FromWorker::Failed { .. } => self.update(done, |m, _| m.status = RunStatus::Failed),
            FromWorker::Finished => self.update(done, |m, _| m.status = RunStatus::Done),
            FromWorker::Done { .. } => self.update(done, |_, _| {}),
            _ => {}
        }
    }

    /// Keep a resume point at `step` of the current run. The run's record names the
    /// point only once both are written (in one transaction), so a failed write leaves
    /// the last complete pair.
    fn keep_resume(&mut self, step: usize, bytes: Vec<u8>, done: &Callback<Event>) {
        let (Some((meta, data)), Some(store)) = (self.current.clone(), self.store()) else {
            return;
        };
        let mut meta = meta;
        meta.step = step;
        meta.resume_step = Some(step);
        let done = done.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match store.save(&meta, Some(&data), Some(&bytes)).await {
                Ok(()) => done.emit(Event::ResumeKept(meta.id, step)),
                Err(e) => done.emit(Event::Kept(Err(e.to_string()))),
            }
        });
    }

    /// Keep a result with the current run (the running one, or the finished run whose
    /// model the job measured).
    pub fn keep_result(&mut self, result: RunResult, done: &Callback<Event>) {
        if let Some((_, d)) = self.current.as_mut() {
            d.set_result(result);
            self.keep(true, None, done);
        }
    }

    /// Handle the background work's report; `Some` is a loaded run for the shell.
    pub fn on_event(
        &mut self,
        event: Event,
        done: &Callback<Event>,
    ) -> Option<(RunMeta, Load, LoadedRun)> {
        match event {
            Event::Opened(store, list) => {
                match list {
                    Ok(l) => self.list = l,
                    Err(e) => self.error = Some(e),
                }
                self.store = Some(store);
                // A run started before the store opened is kept now.
                if self.current.is_some() {
                    self.keep(true, None, done);
                }
            }
            Event::Kept(Ok(())) => {}
            Event::Kept(Err(e)) => self.error = Some(e),
            Event::ResumeKept(id, step) => {
                if let Some((m, _)) = self.current.as_mut().filter(|(m, _)| m.id == id) {
                    m.resume_step = Some(step);
                    m.step = m.step.max(step);
                    let m = m.clone();
                    if let Some(r) = self.list.iter_mut().find(|r| r.id == id) {
                        *r = m;
                    }
                }
            }
            Event::Loaded(id, why, loaded) => {
                let meta = self.list.iter().find(|r| r.id == id).cloned()?;
                if let Err(e) = &loaded {
                    self.error = Some(format!("“{}” could not be read: {e}", meta.name));
                    return None;
                }
                self.error = None;
                return Some((meta, why, loaded));
            }
        }
        None
    }

    /// Forget the current run (a kept run is shown instead).
    pub fn clear_current(&mut self) {
        self.current = None;
    }

    /// Say why something could not be done.
    pub fn set_error(&mut self, e: impl Into<String>) {
        self.error = Some(e.into());
    }

    /// Load a run's data (and, to resume, its resume point) in the background.
    pub fn load(&self, id: String, why: Load, done: &Callback<Event>) {
        let Some(store) = self.store() else { return };
        let done = done.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let loaded = async {
                let data = store.data(&id).await?;
                let bytes =
                    if why == Load::Resume {
                        Some(store.resume_bytes(&id).await?.ok_or_else(|| {
                            StoreError::Other("its resume point is missing".into())
                        })?)
                    } else {
                        None
                    };
                Ok::<_, StoreError>(Box::new((data, bytes)))
            }
            .await;
            done.emit(Event::Loaded(id, why, loaded.map_err(|e| e.to_string())));
        });
    }

    /// Delete a run (not the one running).
    pub fn delete(&mut self, id: String, done: &Callback<Event>) {
        let Some(store) = self.store() else { return };
        if self.running_meta().is_some_and(|m| m.id == id) {
            return;
        }
        self.list.retain(|r| r.id != id);
        if self.current.as_ref().is_some_and(|(m, _)| m.id == id) {
            self.current = None;
        }
        let done = done.clone();
        wasm_bindgen_futures::spawn_local(async move {
            done.emit(Event::Kept(
                store.delete(&id).await.map_err(|e| e.to_string()),
            ));
        });
    }

    /// Rename a run.
    pub fn rename(&mut self, id: String, name: &str, done: &Callback<Event>) {
        let name = name.trim().chars().take(120).collect::<String>();
        if name.is_empty() {
            self.error = Some("a run's name cannot be empty".into());
            return;
        }
        if let Some((m, _)) = self.current.as_mut().filter(|(m, _)| m.id == id) {
            m.name.clone_from(&name);
        }
        let Some(meta) = self.list.iter_mut().find(|r| r.id == id) else {
            return;
        };
        meta.name = name;
        let meta = meta.clone();
        if let Some(store) = self.store() {
            let done = done.clone();
            wasm_bindgen_futures::spawn_local(async move {
                done.emit(Event::Kept(
                    store
                        .save(&meta, None, None)
                        .await
                        .map_err(|e| e.to_string()),
                ));
            });
        }
    }
}
