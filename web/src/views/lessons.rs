//! The Lessons view: the guided lessons (`crate::lessons`) with each one's kept
//! progress, and the teacher's link builder: pick a lesson or a view, tick the panels
//! to hide and the settings to lock, preview the page as a student will see it, and copy
//! the link or the embed snippet.

use std::collections::BTreeSet;

use mnemo_core::lesson::Progress;
use mnemo_core::link::LinkPayload;
use yew::prelude::*;

use super::{VIEWS, connect};
use crate::form::FIELDS;
use crate::hub::{GuideAction, Hub, ViewEvent};
use crate::share;
use crate::store::Store;

/// This view's id.
pub const ID: &str = "lessons";

/// The panels a teacher may hide (besides the views).
const PANELS: [(&str, &str); 6] = [
    ("backend", "the backend switch"),
    ("demo", "the training demo"),
    ("data", "the data settings"),
    ("model", "the model settings"),
    ("progress", "the training progress"),
    ("share", "the Share panel"),
];

/// Messages of the view.
pub enum Msg {
    Hub(Hub),
    Event(ViewEvent),
    Progress(Vec<Progress>),
    Begin(String),
    What(String),
    Hide(String, bool),
    Lock(String, bool),
    Run(bool),
    Embed(bool),
    Note(String),
    Make,
    Preview,
}

/// The view.
pub struct LessonsView {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    kept: Vec<Progress>,
    guide: Option<String>,
    what: String,
    hide: BTreeSet<String>,
    lock: BTreeSet<String>,
    run: bool,
    embed: bool,
    note: String,
    link: Option<Result<String, String>>,
    preview: bool,
}

fn load_progress(ctx: &Context<LessonsView>) {
    let done = ctx.link().callback(Msg::Progress);
    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(store) = Store::open().await {
            done.emit(store.lessons().await.unwrap_or_default());
        }
    });
}

impl LessonsView {
    /// The link the builder's settings make.
    fn make(&self) -> Result<String, String> {
        let payload = if let Some(id) = self.what.strip_prefix("lesson:") {
            let lesson = crate::lessons::find(id).ok_or("pick a lesson or a view")?;
            let first = lesson.steps.iter().find(|s| s.run.is_some());
            let spec = match first.and_then(|s| s.run.as_ref()) {
                Some(setup) => setup.spec()?,
                None => mnemo_core::ExperimentSpec::demo(),
            };
            let mut p = LinkPayload::new(spec);
            p.view = lesson.steps.iter().find_map(|s| s.view.clone());
            p.guide = Some(lesson.id.clone());
            p
        } else {
            let view = self
                .what
                .strip_prefix("view:")
                .ok_or("pick a lesson or a view")?;
            let spec = self
                .hub
                .state
                .form
                .as_deref()
                .cloned()
                .ok_or("a setting is invalid: fix it in the settings first")?;
            let mut p = LinkPayload::new(spec);
            p.view = Some(view.to_string());
            p.run = self.run;
            p
        };
        let mut p = payload;
        p.embed = self.embed;
        p.hide = self.hide.iter().cloned().collect();
        p.lock = self.lock.iter().cloned().collect();
        let note = self.note.trim();
        if note.len() > 4000 {
            return Err(format!(
                "the note is {} bytes; a link carries at most 4000",
                note.len()
            ));
        }
        p.lesson = (!note.is_empty()).then(|| note.to_string());
        Ok(share::url_for(&p))
    }

    fn lessons(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        html! {
            <ol id="lesson-list" class="lessons">{ for crate::lessons::all().iter().map(|l| {
                let id = l.id.clone();
                let kept = self.kept.iter().find(|p| p.lesson == l.id);
                let questions = l.questions().count();
                let state = kept.map_or_else(
                    || "not started".to_string(),
                    |p| format!("{} of {questions} answered right", p.correct()),
                );
                let open = self.guide.as_deref() == Some(l.id.as_str());
                html! {
                    <li id={format!("lesson-{}", l.id)} class={classes!("lesson", open.then_some("open"))}>
                        <h3>{ l.title.clone() }</h3>
                        <p>{ l.goal.clone() }</p>
                        <p class="help">{ format!("{} steps, {questions} questions, about {} minutes · ", l.steps.len(), l.minutes) }
                            <span class="lesson-state">{ state }</span></p>
                        <button id={format!("lesson-start-{}", l.id)} class="primary" disabled={open}
                            onclick={link.callback(move |_| Msg::Begin(id.clone()))}>
                            { if open { "Open above" } else if kept.is_some() { "Continue" } else { "Start" } }
                        </button>
                    </li>
                }
            }) }</ol>
        }
    }

    fn builder(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let onwhat = link.callback(|e: Event| {
            let s: web_sys::HtmlSelectElement = e.target_unchecked_into();
            Msg::What(s.value())
        });
        let tick = |kind: &str, id: String, checked: bool, label: String| {
            let msg = if kind == "hide" { Msg::Hide } else { Msg::Lock };
            let name = id.clone();
            let onchange = link.callback(move |e: Event| {
                let i: web_sys::HtmlInputElement = e.target_unchecked_into();
                msg(name.clone(), i.checked())
            });
            html! {
                <label class="tick"><input type="checkbox" id={format!("teach-{kind}-{}", id.replace('.', "-"))}
                    {checked} {onchange} />{ label }</label>
            }
        };
        let hide = PANELS
            .iter()
            .map(|(n, l)| (n.to_string(), l.to_string()))
            .chain(
                VIEWS
                    .iter()
                    .filter(|v| v.id != ID)
                    .map(|v| (v.id.to_string(), format!("the {} view", v.label))),
            )
            .map(|(n, l)| {
                let on = self.hide.contains(&n);
                tick("hide", n, on, l)
            });
        let lock = std::iter::once(("all".to_string(), "every setting".to_string()))
            .chain(std::iter::once((
                "data".to_string(),
                "the data (source, text, split, tokenizer, held out)".to_string(),
            )))
            .chain(
                FIELDS
                    .iter()
                    .map(|(k, l, _)| (k.to_string(), l.to_string())),
            )
            .map(|(n, l)| {
                let on = self.lock.contains(&n);
                tick("lock", n, on, l)
            });
        let is_view = self.what.starts_with("view:");
        let run = link.callback(|e: Event| {
            let i: web_sys::HtmlInputElement = e.target_unchecked_into();
            Msg::Run(i.checked())
        });
        let embed = link.callback(|e: Event| {
            let i: web_sys::HtmlInputElement = e.target_unchecked_into();
            Msg::Embed(i.checked())
        });
        let note = link.callback(|e: InputEvent| {
            let t: web_sys::HtmlTextAreaElement = e.target_unchecked_into();
            Msg::Note(t.value())
        });
        let result = match &self.link {
            None => html! {},
            Some(Err(e)) => {
                html! { <p id="teach-error" class="error" role="alert">{ e.clone() }</p> }
            }
            Some(Ok(url)) => html! {
                <>
                <label class="field wide"><span>{ "The link (copied to the clipboard where the browser allows it)" }</span>
                    <input id="teach-link" class="mono wide" type="text" readonly=true value={url.clone()} /></label>
                <label class="field wide"><span>{ "The embed snippet, for a course page" }</span>
                    <textarea id="teach-embed" class="mono wide" rows="3" readonly=true value={share::iframe(url)} /></label>
                <button id="teach-preview" onclick={link.callback(|_| Msg::Preview)}>
                    { if self.preview { "Close the preview" } else { "Preview as a student" } }</button>
                if self.preview {
                    <iframe id="teach-preview-frame" class="preview" src={url.clone()} title="What a student sees" />
                }
                </>
            },
        };
        html! {
            <section id="teach" class="panel">
                <h2>{ "Make a link for a class" }</h2>
                <p class="help">{ "Pick a lesson or a view, tick what students should not see or change, and share the link. A link carries the experiment and these settings, not the app: it opens on any Mnemo of this version or a later one." }</p>
                <label class="field"><span>{ "The link opens" }</span>
                    <select id="teach-what" onchange={onwhat}>
                        <option value="" selected={self.what.is_empty()}>{ "Pick…" }</option>
                        { for crate::lessons::all().iter().map(|l| { let v = format!("lesson:{}", l.id); html! {
                            <option value={v.clone()} selected={self.what == v}>{ format!("Lesson: {}", l.title) }</option> } }) }
                        { for VIEWS.iter().filter(|v| mnemo_core::link::VIEWS.contains(&v.id)).map(|v| { let val = format!("view:{}", v.id); html! {
                            <option value={val.clone()} selected={self.what == val}>{ format!("The {} view, with the current settings", v.label) }</option> } }) }
                    </select></label>
                <fieldset><legend>{ "Hide" }</legend><div class="ticks">{ for hide }</div></fieldset>
                <fieldset><legend>{ "Lock (shown, not editable)" }</legend><div class="ticks">{ for lock }</div></fieldset>
                <div class="ticks">
                    if is_view { <label class="tick"><input id="teach-run" type="checkbox" checked={self.run} onchange={run} />{ "Run the experiment when the link opens" }</label> }
                    <label class="tick"><input id="teach-embed-mode" type="checkbox" checked={self.embed} onchange={embed} />{ "Embed mode (the view alone, for an iframe)" }</label>
                </div>
                <label class="field wide"><span>{ "A note shown above the page (optional)" }</span>
                    <textarea id="teach-note" rows="2" value={self.note.clone()} oninput={note} /></label>
                <div class="row actions"><button id="teach-make" class="primary" onclick={link.callback(|_| Msg::Make)}>{ "Make the link" }</button></div>
                { result }
            </section>
        }
    }
}

impl Component for LessonsView {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        load_progress(ctx);
        LessonsView {
            guide: hub.state.guide.clone(),
            hub,
            _hub: handle,
            kept: Vec::new(),
            what: String::new(),
            hide: BTreeSet::new(),
            lock: BTreeSet::new(),
            run: true,
            embed: false,
            note: String::new(),
            link: None,
            preview: false,
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => {
                if hub.state.guide != self.guide {
                    self.guide = hub.state.guide.clone();
                    load_progress(ctx);
                }
                self.hub = hub;
            }
            Msg::Event(_) => return false,
            Msg::Progress(p) => self.kept = p,
            Msg::Begin(id) => self.hub.guide(GuideAction::Begin(id)),
            Msg::What(w) => {
                self.what = w;
                self.link = None;
            }
            Msg::Hide(n, on) => {
                if on {
                    self.hide.insert(n);
                } else {
                    self.hide.remove(&n);
                }
            }
            Msg::Lock(n, on) => {
                if on {
                    self.lock.insert(n);
                } else {
                    self.lock.remove(&n);
                }
            }
            Msg::Run(on) => self.run = on,
            Msg::Embed(on) => self.embed = on,
            Msg::Note(t) => {
                self.note = t;
                return false;
            }
            Msg::Make => {
                let made = self.make();
                if let Ok(url) = &made {
                    share::copy_to_clipboard(url);
                }
                self.link = Some(made);
                self.preview = false;
            }
            Msg::Preview => self.preview = !self.preview,
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        html! {
            <section class="panel" id="lessons-panel">
                <h2>{ "Lessons" }</h2>
                <p class="help">{ "Each lesson walks through one analysis: it explains, sets up and runs a seeded experiment, points at the result and asks questions you answer from what the page shows. Your answers are kept in this browser with your runs; export them at the end to hand in." }</p>
                { self.lessons(ctx) }
                { self.builder(ctx) }
            </section>
        }
    }
}
