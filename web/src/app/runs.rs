//! "Your runs": every experiment the page starts is kept in IndexedDB (see
//! `crate::store`) as it goes; the list reopens, renames, deletes and resumes them.
//!
//! Choices written down here:
//! - A run is one job the page starts (train, a profile, an ensemble, soft prompts).
//!   Extraction and soft prompts on the last trained model add their result to the run
//!   that trained it.
//! - Resume points are kept for plain training runs on the CPU path, every few seconds
//!   (WebGPU cannot read burn's optimiser state back; see `mnemo_core::resume`). A run
//!   found running when the page opens was cut short by a reload or a closed tab: it is
//!   marked interrupted and, with a resume point, offered "Resume from step N". Other
//!   interrupted runs are re-run from their spec ("Run again"): every draw is seeded, so
//!   that reproduces them.
//! - Reopening a run shows its spec in the form, its losses and its results as they were
//!   (the timings too); its model is not kept, so extraction needs it trained again.

use mnemo_core::{BackendKind, ExperimentSpec};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::counterfactual::CfStatus;
use super::extraction::ExStatus;
use super::softprompt::SpStatus;
use super::{App, Load, Msg, ProfileState, RunState};
use crate::form::Form;
use crate::protocol::ToWorker;
use crate::store::{RunData, RunMeta, RunResult, RunStatus, Store, StoreError};

/// The runs panel's state.
#[derive(Default)]
pub struct RunsState {
    /// The open store, or why there is none (`None` while opening).
    pub store: Option<Result<Store, String>>,
    /// Every kept run, newest first.
    pub list: Vec<RunMeta>,
    /// The run this page is producing or showing, as kept.
    pub current: Option<(RunMeta, RunData)>,
    /// The last problem keeping or reading runs (a full quota, ...).
    pub error: Option<String>,
    /// Names being edited: run id -> text.
    pub names: std::collections::HashMap<String, String>,
    counter: u32,
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

impl RunsState {
    /// The store, if it opened.
    pub fn store(&self) -> Option<Store> {
        self.store.as_ref().and_then(|s| s.as_ref().ok()).cloned()
    }

    /// Start keeping a new run of `spec` for `view`.
    pub fn begin(&mut self, spec: &ExperimentSpec, view: &str, backend: BackendKind) -> RunMeta {
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
        self.current = Some((
            meta.clone(),
            RunData {
                spec: spec.clone(),
                losses: Vec::new(),
                results: Vec::new(),
            },
        ));
        meta
    }

    /// The current run, while it is still running.
    pub fn running_meta(&self) -> Option<&RunMeta> {
        self.current
            .as_ref()
            .map(|(m, _)| m)
            .filter(|m| m.status == RunStatus::Running)
    }

    /// Whether the current run is still running.
    pub fn running(&self) -> bool {
        self.running_meta().is_some()
    }

    /// The current run's entry in the list, replaced or added at the top.
    fn show(&mut self, meta: &RunMeta) {
        match self.list.iter_mut().find(|r| r.id == meta.id) {
            Some(r) => *r = meta.clone(),
            None => self.list.insert(0, meta.clone()),
        }
    }
}

impl App {
    /// Write the current run (its data too when `with_data`, and `resume` bytes when
    /// given) in one transaction, in the background; a failure shows in the runs panel.
    pub(super) fn keep(&mut self, ctx: &Context<Self>, with_data: bool, resume: Option<Vec<u8>>) {
        let Some((meta, data)) = self.runs.current.clone() else {
            return;
        };
        self.runs.show(&meta);
        let Some(store) = self.runs.store() else {
            return;
        };
        let link = ctx.link().clone();
        wasm_bindgen_futures::spawn_local(async move {
            let data = with_data.then_some(&data);
            let outcome = store.save(&meta, data, resume.as_deref()).await;
            link.send_message(Msg::Kept(outcome.map_err(|e| e.to_string())));
        });
    }

    /// Keep a resume point at `step` of the current run. The run's record names the
    /// point only once both are written (in one transaction), so a failed write leaves
    /// the last complete pair.
    pub(super) fn keep_resume(&mut self, ctx: &Context<Self>, step: usize, bytes: Vec<u8>) {
        let (Some((meta, data)), Some(store)) = (self.runs.current.clone(), self.runs.store())
        else {
            return;
        };
        let mut meta = meta;
        meta.step = step;
        meta.resume_step = Some(step);
        let mut data = data;
        data.losses.clone_from(&self.losses);
        let link = ctx.link().clone();
        wasm_bindgen_futures::spawn_local(async move {
            match store.save(&meta, Some(&data), Some(&bytes)).await {
                Ok(()) => link.send_message(Msg::ResumeKept(meta.id, step)),
                Err(e) => link.send_message(Msg::Kept(Err(e.to_string()))),
            }
        });
    }

    /// Start keeping a run of `spec` (a new job of `view`).
    pub(super) fn keep_new(&mut self, ctx: &Context<Self>, spec: &ExperimentSpec, view: &str) {
        let backend = self.backend();
        self.runs.begin(spec, view, backend);
        self.keep(ctx, true, None);
    }

    /// Update the current run and keep it.
    pub(super) fn keep_update(
        &mut self,
        ctx: &Context<Self>,
        update: impl FnOnce(&mut RunMeta, &mut RunData),
        resume: Option<Vec<u8>>,
    ) {
        let Some((meta, data)) = self.runs.current.as_mut() else {
            return;
        };
        update(meta, data);
        data.losses.clone_from(&self.losses);
        self.keep(ctx, true, resume);
    }

    /// The current run ended with `status` (and `result`, when one came).
    pub(super) fn keep_end(
        &mut self,
        ctx: &Context<Self>,
        status: RunStatus,
        result: Option<RunResult>,
    ) {
        self.keep_update(
            ctx,
            |m, d| {
                m.status = status;
                if let Some(r) = result {
                    d.set_result(r);
                }
            },
            None,
        );
    }

    /// The current run ended with `status`, if it is still running.
    pub(super) fn keep_end_running(&mut self, ctx: &Context<Self>, status: RunStatus) {
        if self.runs.running() {
            self.keep_end(ctx, status, None);
        }
    }

    /// Keep a result with the current run: it ends the run when the run was this job
    /// (still running), and is added to a finished run otherwise (extraction or soft
    /// prompts on the model it trained).
    pub(super) fn keep_result(&mut self, ctx: &Context<Self>, result: RunResult) {
        if self.runs.running() {
            self.keep_end(ctx, RunStatus::Done, Some(result));
        } else {
            self.keep_update(ctx, |_, d| d.set_result(result), None);
        }
    }

    /// Open the runs store and list the kept runs (at start-up).
    pub(super) fn open_runs(ctx: &Context<Self>) {
        let link = ctx.link().clone();
        wasm_bindgen_futures::spawn_local(async move {
            match Store::open().await {
                Ok(store) => {
                    let list = store.list_at_open().await;
                    link.send_message(Msg::RunsOpened(Ok(store), list.map_err(|e| e.to_string())));
                }
                Err(e) => link.send_message(Msg::RunsOpened(Err(e.to_string()), Ok(Vec::new()))),
            }
        });
    }

    /// Load a run's data (and, to resume, its resume point) in the background.
    pub(super) fn load_run(&self, ctx: &Context<Self>, id: String, why: Load) {
        let resume = why == Load::Resume;
        let Some(store) = self.runs.store() else {
            return;
        };
        let link = ctx.link().clone();
        wasm_bindgen_futures::spawn_local(async move {
            let loaded = async {
                let data = store.data(&id).await?;
                let bytes =
                    if resume {
                        Some(store.resume_bytes(&id).await?.ok_or_else(|| {
                            StoreError::Other("its resume point is missing".into())
                        })?)
                    } else {
                        None
                    };
                Ok::<_, StoreError>(Box::new((data, bytes)))
            }
            .await;
            link.send_message(Msg::RunLoaded(id, why, loaded.map_err(|e| e.to_string())));
        });
    }

    /// Delete a run (not the one running).
    pub(super) fn delete_run(&mut self, ctx: &Context<Self>, id: String) {
        let Some(store) = self.runs.store() else {
            return;
        };
        self.runs.list.retain(|r| r.id != id);
        if self.runs.current.as_ref().is_some_and(|(m, _)| m.id == id) {
            self.runs.current = None;
        }
        let link = ctx.link().clone();
        wasm_bindgen_futures::spawn_local(async move {
            link.send_message(Msg::Kept(
                store.delete(&id).await.map_err(|e| e.to_string()),
            ));
        });
    }

    /// Rename a run to the text in its name field.
    pub(super) fn rename_run(&mut self, ctx: &Context<Self>, id: String) {
        let Some(name) = self.runs.names.remove(&id) else {
            return;
        };
        let name = name.trim().chars().take(120).collect::<String>();
        if name.is_empty() {
            self.runs.error = Some("a run's name cannot be empty".into());
            return;
        }
        if let Some((m, _)) = self.runs.current.as_mut().filter(|(m, _)| m.id == id) {
            m.name.clone_from(&name);
        }
        let Some(meta) = self.runs.list.iter_mut().find(|r| r.id == id) else {
            return;
        };
        meta.name = name;
        let meta = meta.clone();
        if let Some(store) = self.runs.store() {
            let link = ctx.link().clone();
            wasm_bindgen_futures::spawn_local(async move {
                link.send_message(Msg::Kept(
                    store
                        .save(&meta, None, None)
                        .await
                        .map_err(|e| e.to_string()),
                ));
            });
        }
    }

    /// Show, resume or re-run a kept run (see [`Load`]).
    pub(super) fn restore_run(
        &mut self,
        ctx: &Context<Self>,
        meta: RunMeta,
        data: RunData,
        why: Load,
        bytes: Option<Vec<u8>>,
    ) {
        if !self.can_start() {
            self.runs.error = Some("wait for the current run to finish".into());
            return;
        }
        let spec = data.spec.clone();
        let view = mnemo_core::link::VIEWS
            .iter()
            .copied()
            .find(|v| *v == meta.view)
            .unwrap_or("train");
        self.form = Form::from_spec(&spec);
        match why {
            Load::Open => {
                self.losses.clone_from(&data.losses);
                self.progress = None;
                self.info = None;
                self.spec_run = Some(spec.clone());
                self.last_job = Some((spec, view));
                self.run = RunState::Reopened {
                    name: meta.name.clone(),
                    status: meta.status,
                };
                self.runs.current = None;
                self.show_results(&data.results);
            }
            Load::Resume => {
                let (Some(point), Some(at)) = (bytes, meta.resume_step) else {
                    self.runs.error = Some("this run has no resume point".into());
                    return;
                };
                self.begin_training(&spec);
                self.losses = data.losses.iter().copied().filter(|l| l.0 <= at).collect();
                self.last_job = Some((spec.clone(), "train"));
                let mut meta = meta;
                meta.status = RunStatus::Running;
                meta.step = at;
                self.runs.current = Some((meta, data));
                self.keep_update(ctx, |_, _| {}, None);
                // Resume points are written on the CPU path; go on there.
                self.send(&ToWorker::Resume {
                    spec,
                    backend: BackendKind::Flex,
                    point,
                });
            }
            Load::Again => self.start_view(spec, view),
        }
    }

    /// Put kept results back in their views (and clear the views' other results).
    fn show_results(&mut self, results: &[RunResult]) {
        self.profiles.clear();
        self.profile_state = ProfileState::Idle;
        self.cf.result = None;
        self.cf.status = CfStatus::Idle;
        self.ex.view = None;
        self.ex.status = ExStatus::Idle;
        self.sp.view = None;
        self.sp.status = SpStatus::Idle;
        for r in results {
            match r.clone() {
                RunResult::Profiles(p, panel_s, estimate_s) => {
                    self.profiles = p;
                    self.profile_state = ProfileState::Ready {
                        panel_s,
                        estimate_s,
                    };
                    self.profile_dirty = true;
                }
                RunResult::Counterfactual(c, elapsed_s, cancelled) => {
                    self.cf.result = Some(*c);
                    self.cf.status = CfStatus::Ready {
                        elapsed_s,
                        cancelled,
                    };
                    self.cf.dirty = true;
                }
                RunResult::Extraction(v, elapsed_s) => {
                    self.ex.view = Some(*v);
                    self.ex.status = ExStatus::Ready { elapsed_s };
                    self.ex.dirty = true;
                }
                RunResult::SoftPrompt(v, [constant_s, dynamic_s, eval_s], cancelled) => {
                    self.sp.view = Some(*v);
                    self.sp.status = SpStatus::Ready {
                        constant_s,
                        dynamic_s,
                        eval_s,
                        cancelled,
                    };
                    self.sp.dirty = true;
                }
            }
        }
    }

    pub(super) fn view_runs(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let running_id = self.runs.running_meta().map(|m| m.id.clone());
        let note = match &self.runs.store {
            None => html! { <p class="help">{ "Opening the runs kept in this browser…" }</p> },
            Some(Err(e)) => {
                html! { <p id="runs-unavailable" class="error" role="alert">{ e.clone() }</p> }
            }
            Some(Ok(_)) if self.runs.list.is_empty() => {
                html! { <p class="help" id="runs-empty">{ "No runs yet. Every experiment you start is kept here, with its settings, losses and results." }</p> }
            }
            Some(Ok(_)) => html! {},
        };
        let can_start = self.can_start();
        let row = |r: &RunMeta| {
            let id = r.id.clone();
            let is_running = running_id.as_deref() == Some(r.id.as_str());
            let name = self
                .runs
                .names
                .get(&r.id)
                .cloned()
                .unwrap_or_else(|| r.name.clone());
            let on_name = {
                let id = id.clone();
                link.callback(move |e: InputEvent| {
                    let i: HtmlInputElement = e.target_unchecked_into();
                    Msg::SetRunName(id.clone(), i.value())
                })
            };
            let action = |label: String, class: &'static str, msg: Msg, enabled: bool| {
                let msg = std::cell::Cell::new(Some(msg));
                html! { <button class={class} disabled={!enabled} onclick={link.batch_callback(move |_| msg.take())}>{ label }</button> }
            };
            let steps = if r.total_steps > 0 {
                format!("{} / {} steps", r.step, r.total_steps)
            } else {
                String::new()
            };
            let when = js_sys::Date::new(&r.created_ms.into())
                .to_locale_string("en-GB", &wasm_bindgen::JsValue::UNDEFINED)
                .as_string()
                .unwrap_or_default();
            html! {
                <li class="run" data-id={r.id.clone()} data-status={r.status.label()} data-resume-step={r.resume_step.map(|s| s.to_string()).unwrap_or_default()}>
                    <input class="run-name" type="text" value={name} oninput={on_name} aria-label="run name" maxlength="120" />
                    { action("Rename".into(), "run-rename", Msg::RenameRun(id.clone()), self.runs.names.contains_key(&r.id)) }
                    <span class="run-facts">{ format!("{} · {} · {} · {}", r.view, r.status.label(), steps, when) }</span>
                    if r.status == RunStatus::Interrupted && r.resume_step.is_some() {
                        { action(format!("Resume from step {}", r.resume_step.unwrap_or(0)), "run-resume primary", Msg::ResumeRun(id.clone()), can_start) }
                    }
                    if r.status == RunStatus::Interrupted && r.resume_step.is_none() {
                        { action("Run again".into(), "run-again", Msg::RunAgain(id.clone()), can_start) }
                    }
                    { action("Open".into(), "run-open", Msg::OpenRun(id.clone()), can_start && !is_running) }
                    { action("Delete".into(), "run-delete", Msg::DeleteRun(id.clone()), !is_running) }
                </li>
            }
        };
        html! {
            <section class="panel" id="runs-panel">
                <h2>{ "Your runs" }</h2>
                { note }
                if let Some(e) = &self.runs.error { <p id="runs-error" class="error" role="alert">{ e.clone() }</p> }
                <ul id="runs-list">{ for self.runs.list.iter().map(row) }</ul>
            </section>
        }
    }
}
