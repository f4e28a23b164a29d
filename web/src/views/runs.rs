//! The "Your runs" view: every experiment the page starts is kept in IndexedDB (the
//! shell's `crate::runs` keeps them as they go); the list reopens, renames, deletes and
//! resumes them. The list comes from the hub; this view only keeps the names being
//! edited.

use std::collections::HashMap;

use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::connect;
use crate::hub::{Hub, RunsAction, ViewEvent};
use crate::store::{RunMeta, RunStatus};

/// This view's id.
pub const ID: &str = "runs";

/// Messages of the view.
pub enum Msg {
    /// The hub changed.
    Hub(Hub),
    /// From the shell (nothing for this view).
    Event(ViewEvent),
    /// A run's name field changed.
    SetName(String, String),
    /// Ask the shell.
    Act(RunsAction),
}

/// The view.
pub struct RunsView {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    /// Names being edited: run id -> text.
    names: HashMap<String, String>,
}

impl Component for RunsView {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        RunsView {
            hub,
            _hub: handle,
            names: HashMap::new(),
        }
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => self.hub = hub,
            Msg::Event(_) => return false,
            Msg::SetName(id, name) => {
                self.names.insert(id, name);
            }
            Msg::Act(RunsAction::Rename(id, _)) => {
                if let Some(name) = self.names.remove(&id) {
                    self.hub.runs(RunsAction::Rename(id, name));
                }
            }
            Msg::Act(action) => self.hub.runs(action),
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let runs = &self.hub.state.runs;
        let note = match &runs.store {
            None => html! { <p class="help">{ "Opening the runs kept in this browser…" }</p> },
            Some(Err(e)) => {
                html! { <p id="runs-unavailable" class="error" role="alert">{ e.clone() }</p> }
            }
            Some(Ok(())) if runs.list.is_empty() => {
                html! { <p class="help" id="runs-empty">{ "No runs yet. Every experiment you start is kept here, with its settings, losses and results." }</p> }
            }
            Some(Ok(())) => html! {},
        };
        let can_start = self.hub.state.can_start();
        let row = |r: &RunMeta| {
            let id = r.id.clone();
            let is_running = runs.running.as_deref() == Some(r.id.as_str());
            let name = self
                .names
                .get(&r.id)
                .cloned()
                .unwrap_or_else(|| r.name.clone());
            let on_name = {
                let id = id.clone();
                link.callback(move |e: InputEvent| {
                    let i: HtmlInputElement = e.target_unchecked_into();
                    Msg::SetName(id.clone(), i.value())
                })
            };
            let action = |label: String, class: &'static str, act: RunsAction, enabled: bool| {
                html! { <button class={class} disabled={!enabled} onclick={link.callback(move |_| Msg::Act(act.clone()))}>{ label }</button> }
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
            let resume = r.resume_step.filter(|_| r.status == RunStatus::Interrupted);
            html! {
                <li class="run" data-id={r.id.clone()} data-status={r.status.label()} data-resume-step={r.resume_step.map(|s| s.to_string()).unwrap_or_default()}>
                    <input class="run-name" type="text" value={name} oninput={on_name} aria-label="run name" maxlength="120" />
                    { action("Rename".into(), "run-rename", RunsAction::Rename(id.clone(), String::new()), self.names.contains_key(&r.id)) }
                    <span class="run-facts">{ format!("{} · {} · {} · {} · {}", r.view, r.backend.label(), r.status.label(), steps, when) }</span>
                    if let Some(step) = resume {
                        { action(format!("Resume from step {step}"), "run-resume primary", RunsAction::Resume(id.clone()), can_start) }
                    }
                    if r.status == RunStatus::Interrupted && r.resume_step.is_none() {
                        { action("Run again".into(), "run-again", RunsAction::Again(id.clone()), can_start) }
                    }
                    { action("Open".into(), "run-open", RunsAction::Open(id.clone()), can_start && !is_running) }
                    { action("Delete".into(), "run-delete", RunsAction::Delete(id.clone()), !is_running) }
                </li>
            }
        };
        html! {
            <section class="panel" id="runs-panel">
                <h2>{ "Your runs" }</h2>
                { note }
                if let Some(e) = &runs.error { <p id="runs-error" class="error" role="alert">{ e.clone() }</p> }
                <ul id="runs-list">{ for runs.list.iter().map(row) }</ul>
            </section>
        }
    }
}
