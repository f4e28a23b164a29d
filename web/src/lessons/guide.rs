//! The guide: one lesson's current step above the views. It explains, opens the step's
//! view with its locks and hidden panels, runs the step's experiment there, points at
//! the result and checks the student's answers against the numbers the page shows.
//! Progress and answers are kept in the runs store (`lessons`), each answer naming the
//! run it was read from; the student can export them as CSV or JSON to hand in.

use std::collections::HashMap;

use mnemo_core::lesson::{
    Answer, Given, Lesson, Progress, Question, Step, Unshown, Verdict, first_number,
};
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::hub::{GuideAction, Hub};
use crate::store::Store;
use crate::views;

/// The guide's properties.
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The lesson.
    pub lesson: &'static Lesson,
}

/// What a question shows under it after "Check".
#[derive(Debug, Clone, PartialEq)]
enum Shown {
    Right(Given),
    Wrong,
    Unshown(String),
}

/// Messages.
pub enum Msg {
    Hub(Hub),
    Opened(Result<Store, String>, Option<Progress>),
    Kept(Result<(), String>),
    Go(usize),
    Run,
    Point,
    Number(String, String),
    Pick(String, usize),
    Check(String),
    Student(String),
    Export(&'static str),
    Close,
}

/// The guide component.
pub struct Guide {
    hub: Hub,
    _handle: ContextHandle<Hub>,
    store: Option<Store>,
    progress: Progress,
    numbers: HashMap<String, String>,
    picks: HashMap<String, usize>,
    shown: HashMap<String, Shown>,
    error: Option<String>,
}

/// The first number of the text of the element `selector` selects, if it shows one.
fn read_page(selector: &str) -> Option<f64> {
    let doc = web_sys::window()?.document()?;
    let el = doc.query_selector(selector).ok()??;
    first_number(&el.text_content()?)
}

fn show(g: &Given, q: &Question) -> String {
    match (g, q) {
        (Given::Number(x), _) => format!("{x}"),
        (Given::Choice(i), Question::Choice { options, .. }) => options
            .get(*i)
            .map_or_else(|| format!("option {}", i + 1), |o| o.label.clone()),
        (Given::Choice(i), _) => format!("option {}", i + 1),
    }
}

impl Guide {
    fn lesson<'a>(&self, ctx: &'a Context<Self>) -> &'a Lesson {
        ctx.props().lesson
    }

    fn step<'a>(&self, ctx: &'a Context<Self>) -> &'a Step {
        let l = self.lesson(ctx);
        &l.steps[self.progress.step.min(l.steps.len() - 1)]
    }

    /// Tell the shell which view, locks and hidden panels the current step wants.
    fn announce(&self, ctx: &Context<Self>) {
        let step = self.step(ctx);
        self.hub.guide(GuideAction::Show {
            view: step.view.as_deref().and_then(views::find).map(|v| v.id),
            lock: step.lock.clone(),
            hide: step.hide.clone(),
        });
    }

    fn keep(&self, ctx: &Context<Self>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let progress = self.progress.clone();
        let done = ctx.link().callback(Msg::Kept);
        wasm_bindgen_futures::spawn_local(async move {
            done.emit(
                store
                    .save_lesson(&progress)
                    .await
                    .map_err(|e| e.to_string()),
            );
        });
    }

    fn check(&mut self, ctx: &Context<Self>, qid: &str) {
        let lesson = self.lesson(ctx);
        let Some(q) = lesson.questions().find(|q| q.id() == qid) else {
            return;
        };
        let given = match q {
            Question::Number { .. } => {
                let text = self.numbers.get(qid).cloned().unwrap_or_default();
                match text.trim().replace(',', ".").parse::<f64>() {
                    Ok(x) if x.is_finite() => Given::Number(x),
                    _ => {
                        self.shown.insert(
                            qid.to_string(),
                            Shown::Unshown("Type a number first (for example 2.5).".into()),
                        );
                        return;
                    }
                }
            }
            Question::Choice { .. } => match self.picks.get(qid) {
                Some(&i) => Given::Choice(i),
                None => {
                    self.shown.insert(
                        qid.to_string(),
                        Shown::Unshown("Pick an option first.".into()),
                    );
                    return;
                }
            },
        };
        match q.check(&given, &read_page) {
            Ok(Verdict { correct, truth }) => {
                let view = self.step(ctx).view.clone();
                let run = self
                    .hub
                    .state
                    .runs
                    .list
                    .iter()
                    .find(|r| Some(&r.view) == view.as_ref())
                    .map(|r| r.id.clone());
                let tries = self.progress.answers.get(qid).map_or(0, |a| a.tries) + 1;
                self.progress.answers.insert(
                    qid.to_string(),
                    Answer {
                        question: qid.to_string(),
                        given,
                        correct,
                        truth: truth.clone(),
                        tries,
                        run,
                    },
                );
                self.shown.insert(
                    qid.to_string(),
                    if correct {
                        Shown::Right(truth)
                    } else {
                        Shown::Wrong
                    },
                );
                self.keep(ctx);
            }
            Err(Unshown(_)) => {
                self.shown.insert(
                    qid.to_string(),
                    Shown::Unshown(
                        "The page does not show this result yet: run this step's experiment (or wait for it to finish), then check again."
                            .into(),
                    ),
                );
            }
        }
    }

    fn export(&self, ctx: &Context<Self>, what: &'static str) -> Result<(), String> {
        let lesson = self.lesson(ctx);
        let stem = format!("mnemo-lesson-{}-answers", lesson.id);
        if what == "csv" {
            crate::download::download_text(
                &format!("{stem}.csv"),
                "text/csv",
                &self.progress.csv(lesson),
            )
        } else {
            let json = serde_json::json!({
                "lesson": lesson.id,
                "title": lesson.title,
                "student": self.progress.student,
                "exported": js_sys::Date::new_0().to_iso_string().as_string(),
                "questions": lesson.questions().count(),
                "correct": self.progress.correct(),
                "answers": lesson.questions().filter_map(|q| self.progress.answers.get(q.id())).collect::<Vec<_>>(),
            });
            let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
            crate::download::download_text(&format!("{stem}.json"), "application/json", &text)
        }
    }

    fn question(&self, ctx: &Context<Self>, q: &Question) -> Html {
        let link = ctx.link();
        let qid = q.id().to_string();
        let input = match q {
            Question::Number { .. } => {
                let id = qid.clone();
                let oninput = link
                    .callback(move |e: InputEvent| Msg::Number(id.clone(), views::input_value(&e)));
                html! {
                    <input id={format!("guide-q-{qid}")} type="text" inputmode="decimal" class="answer"
                        value={self.numbers.get(&qid).cloned().unwrap_or_default()} {oninput}
                        aria-label="your answer" />
                }
            }
            Question::Choice { options, .. } => html! {
                <div class="choices" role="radiogroup">{ for options.iter().enumerate().map(|(i, o)| {
                    let id = qid.clone();
                    let onchange = link.callback(move |_| Msg::Pick(id.clone(), i));
                    html! {
                        <label class="choice">
                            <input id={format!("guide-q-{qid}-{i}")} type="radio" name={format!("guide-q-{qid}")}
                                checked={self.picks.get(&qid) == Some(&i)} {onchange} />
                            { o.label.clone() }
                        </label>
                    }
                }) }</div>
            },
        };
        let id = qid.clone();
        let check = link.callback(move |_| Msg::Check(id.clone()));
        let (state, text) = match self.shown.get(&qid) {
            None => ("", String::new()),
            Some(Shown::Right(truth)) => (
                "correct",
                format!("Right: the page shows {}.", show(truth, q)),
            ),
            Some(Shown::Wrong) => ("wrong", format!("Not quite. Hint: {}", q.hint())),
            Some(Shown::Unshown(why)) => ("unshown", why.clone()),
        };
        html! {
            <div class="question" id={format!("guide-question-{qid}")}>
                <p>{ q.prompt() }</p>
                { input }
                <button id={format!("guide-check-{qid}")} onclick={check}>{ "Check" }</button>
                <p id={format!("guide-verdict-{qid}")} class={classes!("verdict", state)} data-verdict={state} role="status">{ text }</p>
            </div>
        }
    }
}

impl Component for Guide {
    type Message = Msg;
    type Properties = Props;

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = ctx
            .link()
            .context::<Hub>(ctx.link().callback(Msg::Hub))
            .expect("the guide lives inside the shell's hub provider");
        let lesson = ctx.props().lesson.id.clone();
        let done = ctx.link().callback(|(s, p)| Msg::Opened(s, p));
        wasm_bindgen_futures::spawn_local(async move {
            match Store::open().await {
                Ok(store) => {
                    let kept = store.lessons().await.unwrap_or_default();
                    let p = kept.into_iter().find(|p| p.lesson == lesson);
                    done.emit((Ok(store), p));
                }
                Err(e) => done.emit((Err(e.to_string()), None)),
            }
        });
        let guide = Guide {
            hub,
            _handle: handle,
            store: None,
            progress: Progress {
                lesson: ctx.props().lesson.id.clone(),
                ..Progress::default()
            },
            numbers: HashMap::new(),
            picks: HashMap::new(),
            shown: HashMap::new(),
            error: None,
        };
        guide.announce(ctx);
        guide
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Hub(h) => self.hub = h,
            Msg::Opened(store, kept) => {
                match store {
                    Ok(s) => self.store = Some(s),
                    Err(e) => self.error = Some(format!("Your answers are not kept: {e}")),
                }
                if let Some(p) = kept {
                    // Show the kept answers as they were checked.
                    for (qid, a) in &p.answers {
                        match &a.given {
                            Given::Number(x) => {
                                self.numbers.insert(qid.clone(), format!("{x}"));
                            }
                            Given::Choice(i) => {
                                self.picks.insert(qid.clone(), *i);
                            }
                        }
                        self.shown.insert(
                            qid.clone(),
                            if a.correct {
                                Shown::Right(a.truth.clone())
                            } else {
                                Shown::Wrong
                            },
                        );
                    }
                    let step = p.step.min(self.lesson(ctx).steps.len() - 1);
                    self.progress = Progress { step, ..p };
                    self.announce(ctx);
                }
            }
            Msg::Kept(r) => {
                self.error = r.err().map(|e| format!("Your answers were not kept: {e}"));
            }
            Msg::Go(step) => {
                self.progress.step = step.min(self.lesson(ctx).steps.len() - 1);
                self.announce(ctx);
                self.keep(ctx);
                if let Some(el) = web_sys::window()
                    .and_then(|w| w.document())
                    .and_then(|d| d.get_element_by_id("guide"))
                {
                    el.scroll_into_view();
                }
            }
            Msg::Run => {
                let step = self.step(ctx);
                let view = step.view.as_deref().and_then(views::find).map(|v| v.id);
                if let (Some(view), Some(setup)) = (view, &step.run) {
                    match setup.spec() {
                        Ok(spec) => self.hub.guide(GuideAction::Run {
                            view,
                            spec: Box::new(spec),
                        }),
                        Err(e) => self.error = Some(format!("This step's experiment: {e}")),
                    }
                }
            }
            Msg::Point => {
                if let Some(p) = &self.step(ctx).point
                    && let Some(el) = web_sys::window()
                        .and_then(|w| w.document())
                        .and_then(|d| d.query_selector(&p.selector).ok().flatten())
                {
                    el.scroll_into_view();
                    let _ = el.set_attribute("data-pointed", "true");
                    let el = el.clone();
                    let undo = wasm_bindgen::closure::Closure::once_into_js(move || {
                        let _ = el.remove_attribute("data-pointed");
                    });
                    if let Some(w) = web_sys::window() {
                        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
                            undo.unchecked_ref(),
                            4000,
                        );
                    }
                }
            }
            Msg::Number(q, v) => {
                self.numbers.insert(q, v);
                return false;
            }
            Msg::Pick(q, i) => {
                self.picks.insert(q, i);
            }
            Msg::Check(q) => self.check(ctx, &q),
            Msg::Student(name) => {
                self.progress.student = name.chars().take(120).collect();
                self.keep(ctx);
                return false;
            }
            Msg::Export(what) => {
                self.error = self
                    .export(ctx, what)
                    .err()
                    .map(|e| format!("The export failed: {e}"));
            }
            Msg::Close => self.hub.guide(GuideAction::Close),
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let lesson = self.lesson(ctx);
        let i = self.progress.step.min(lesson.steps.len() - 1);
        let step = &lesson.steps[i];
        let n = lesson.steps.len();
        let total = lesson.questions().count();
        let busy = self.hub.state.busy.is_some();
        let view = step.view.as_deref().and_then(views::find);
        let run = match (&step.run, view) {
            (Some(_), Some(v)) => html! {
                <button id="guide-run" class="primary" disabled={!self.hub.state.can_start()} onclick={link.callback(|_| Msg::Run)}>
                    { if busy { "Running…".to_string() } else { format!("Run this step's experiment ({})", v.label) } }
                </button>
            },
            _ => html! {},
        };
        let point = step.point.as_ref().map(|p| html! {
            <p class="pointer">{ format!("Look at {}. ", p.label) }
                <button id="guide-point" class="link" onclick={link.callback(|_| Msg::Point)}>{ "Show me" }</button></p>
        });
        let last = i + 1 == n;
        let student = link.callback(|e: InputEvent| Msg::Student(views::input_value(&e)));
        html! {
            <aside id="guide" class="panel guide" data-lesson={lesson.id.clone()} data-step={i.to_string()} aria-label="Lesson">
                <div class="guide-head">
                    <strong>{ lesson.title.clone() }</strong>
                    <span id="guide-score" class="help">{ format!(" · step {} of {n} · {} of {total} answered right", i + 1, self.progress.correct()) }</span>
                    <button id="guide-close" class="link" onclick={link.callback(|_| Msg::Close)}>{ "Close the lesson" }</button>
                </div>
                <h3 id="guide-title">{ step.title.clone() }</h3>
                { for step.text.split("\n\n").map(|p| html! { <p>{ p.to_string() }</p> }) }
                { run }
                { point.unwrap_or_default() }
                { for step.questions.iter().map(|q| self.question(ctx, q)) }
                if last {
                    <div class="handin">
                        <label class="field"><span>{ "Your name (for the file you hand in)" }</span>
                            <input id="guide-student" type="text" value={self.progress.student.clone()} oninput={student} /></label>
                        <div class="row actions">
                            <button id="guide-export-csv" onclick={link.callback(|_| Msg::Export("csv"))}>{ "Export answers (CSV)" }</button>
                            <button id="guide-export-json" onclick={link.callback(|_| Msg::Export("json"))}>{ "Export answers (JSON)" }</button>
                        </div>
                    </div>
                }
                if let Some(e) = &self.error { <p id="guide-error" class="error" role="alert">{ e }</p> }
                <div class="row actions">
                    <button id="guide-back" disabled={i == 0} onclick={link.callback(move |_| Msg::Go(i.saturating_sub(1)))}>{ "Back" }</button>
                    <button id="guide-next" disabled={last} onclick={link.callback(move |_| Msg::Go(i + 1))}>{ "Next" }</button>
                </div>
            </aside>
        }
    }
}
