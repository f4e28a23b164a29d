//! The "Soft-prompt extraction" view: a constant soft prompt and a prompt generator are
//! trained in the worker against a frozen model, then extraction without a prompt, with
//! the constant prompt and with the dynamic one is compared on held-out test pairs.

use mnemo_core::ExperimentSpec;
use mnemo_core::spec::{SoftPromptSpec, limits};
use mnemo_measures::extraction::ExtractionRow;
use mnemo_measures::softprompt::{
    Method, SoftPromptProgress, pairs_csv, prompt_loss_csv, softprompt_csv,
};
use mnemo_plots::did::svg_of;
use mnemo_plots::softprompt::{method_label, prompt_loss_chart, prompt_losses_chart, rates_chart};
use yew::prelude::*;

use super::tokens::token_lines;
use super::{CHART_SIZE, connect, export_button, input_value, text_field};
use crate::chart::draw_on;
use crate::download::{download_canvas, download_text};
use crate::hub::{Hub, JobRequest, Keep, ViewEvent};
use crate::protocol::{FromWorker, SoftPromptView, ToWorker};
use crate::store::RunResult;

/// This view's id.
pub const ID: &str = "softprompt";

/// Test pairs shown token by token.
const SHOWN: usize = 12;

/// Where the soft-prompt experiment stands.
#[derive(Debug, Clone, PartialEq)]
pub enum SpStatus {
    /// Nothing asked.
    Idle,
    /// The target model is training: steps done and in all.
    TrainingModel(usize, usize),
    /// The prompts are training.
    Training {
        /// Where prompt training stands.
        progress: SoftPromptProgress,
        /// Seconds so far.
        elapsed_s: f64,
    },
    /// Decoding the test pairs with each method.
    Evaluating,
    /// Results in.
    Ready {
        /// Seconds training the constant prompt.
        constant_s: f64,
        /// Seconds training the generator.
        dynamic_s: f64,
        /// Seconds measuring.
        eval_s: f64,
        /// Prompt training was cut short by Cancel.
        cancelled: bool,
    },
}

/// The view's state.
pub struct SpState {
    /// Progress.
    pub status: SpStatus,
    /// The last results.
    pub view: Option<SoftPromptView>,
    /// Losses of the prompts training now: constant, dynamic.
    pub live: [Vec<(usize, f32)>; 2],
    /// Fields: prompt length, prefix, suffix, steps per prompt.
    pub fields: [String; 4],
    /// Why the last run failed.
    pub error: Option<String>,
    /// The charts need drawing.
    pub dirty: bool,
    rates: NodeRef,
    losses: NodeRef,
}

/// The fields: id, label, help, limits.
const FIELDS: [(&str, &str, &str, (usize, usize)); 4] = [
    ("sp-len", "Prompt length L", "vectors", limits::PROMPT_LEN),
    ("sp-prefix", "Prefix k", "tokens", limits::AFFIX),
    ("sp-suffix", "Suffix s", "tokens", limits::AFFIX),
    ("sp-steps", "Steps", "per prompt", limits::PROMPT_STEPS),
];

impl Default for SpState {
    fn default() -> Self {
        let mut s = SpState {
            status: SpStatus::Idle,
            view: None,
            live: [Vec::new(), Vec::new()],
            fields: Default::default(),
            error: None,
            dirty: false,
            rates: NodeRef::default(),
            losses: NodeRef::default(),
        };
        s.set_fields(&demo_settings());
        s
    }
}

/// The demo's prompt settings.
fn demo_settings() -> SoftPromptSpec {
    ExperimentSpec::softprompt_demo()
        .softprompt
        .unwrap_or_default()
}

fn whole(field: &str, (lo, hi): (usize, usize)) -> Result<usize, String> {
    match field.trim().parse::<usize>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!("a whole number from {lo} to {hi}")),
    }
}

impl SpState {
    /// Whether a soft-prompt job runs (including the target's training).
    pub fn busy(&self) -> bool {
        matches!(
            self.status,
            SpStatus::TrainingModel(..) | SpStatus::Training { .. } | SpStatus::Evaluating
        )
    }

    /// Fill the fields from settings (a link's, or the demo's).
    pub fn set_fields(&mut self, s: &SoftPromptSpec) {
        self.fields = [
            s.prompt_len.to_string(),
            s.prefix.to_string(),
            s.suffix.to_string(),
            s.steps.to_string(),
        ];
    }

    /// Each field checked against its limits.
    fn checked(&self) -> [Result<usize, String>; 4] {
        std::array::from_fn(|i| whole(&self.fields[i], FIELDS[i].3))
    }

    /// `base` with this view's settings in its `softprompt` section (the rest of the
    /// section as `base` has it, or the demo's).
    pub fn spec(&self, mut base: ExperimentSpec) -> Result<ExperimentSpec, String> {
        let [l, k, s, steps] = self.checked();
        let mut settings = base.softprompt.unwrap_or_else(demo_settings);
        settings.prompt_len = l.map_err(|e| format!("prompt length: {e}"))?;
        settings.prefix = k.map_err(|e| format!("prefix: {e}"))?;
        settings.suffix = s.map_err(|e| format!("suffix: {e}"))?;
        settings.steps = steps.map_err(|e| format!("steps: {e}"))?;
        base.softprompt = Some(settings);
        base.validate().map_err(|e| e.to_string())?;
        Ok(base)
    }

    /// A job was sent: clear what the last one drew.
    pub fn begin(&mut self, train_first: bool) {
        self.error = None;
        self.live = [Vec::new(), Vec::new()];
        self.dirty = true;
        self.status = if train_first {
            SpStatus::TrainingModel(0, 0)
        } else {
            SpStatus::Evaluating
        };
    }

    /// One prompt-training step came in.
    pub fn step(
        &mut self,
        method: Method,
        step: usize,
        loss: f32,
        progress: SoftPromptProgress,
        elapsed_s: f64,
    ) {
        let i = usize::from(method == Method::Dynamic);
        self.live[i].push((step, loss));
        self.status = SpStatus::Training {
            progress,
            elapsed_s,
        };
        self.dirty = true;
    }

    /// Draw the charts if something changed: the live loss curves while training, the
    /// results once in.
    pub fn draw(&mut self) {
        if !self.dirty {
            return;
        }
        match (&self.view, &self.status) {
            (Some(v), SpStatus::Ready { .. }) => {
                if let Some(c) = self.rates.cast() {
                    draw_on(c, |a| rates_chart(a, &v.result));
                }
                if let Some(c) = self.losses.cast() {
                    draw_on(c, |a| prompt_loss_chart(a, &v.result));
                }
            }
            _ => {
                if let Some(c) = self.losses.cast() {
                    draw_on(c, |a| {
                        prompt_losses_chart(
                            a,
                            &[
                                (Method::Constant, &self.live[0]),
                                (Method::Dynamic, &self.live[1]),
                            ],
                        )
                    });
                }
            }
        }
        self.dirty = false;
    }

    /// Download a chart or a table.
    pub fn export(&self, what: &str) -> Result<(), String> {
        let v = self.view.as_ref().ok_or("no result yet")?;
        let r = &v.result;
        match what {
            "softprompt.png" => download_canvas(self.rates.cast(), what),
            "prompt_loss.png" => download_canvas(self.losses.cast(), what),
            "softprompt.svg" => download_text(
                what,
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| rates_chart(a, r)),
            ),
            "prompt_loss.svg" => download_text(
                what,
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| prompt_loss_chart(a, r)),
            ),
            "pairs.csv" => {
                download_text(what, "text/csv", &pairs_csv(r).map_err(|e| e.to_string())?)
            }
            "prompt_loss.csv" => download_text(
                what,
                "text/csv",
                &prompt_loss_csv(r).map_err(|e| e.to_string())?,
            ),
            "softprompt.json" => download_text(
                what,
                "application/json",
                &serde_json::to_string_pretty(r).map_err(|e| e.to_string())?,
            ),
            _ => download_text(
                "softprompt.csv",
                "text/csv",
                &softprompt_csv(r).map_err(|e| e.to_string())?,
            ),
        }
    }
}

/// The test pairs the dynamic prompt does better on than no prompt: first those it
/// extracts exactly and no prompt does not, then by the gain in share reproduced.
fn better_pairs(v: &SoftPromptView) -> (usize, Vec<(&ExtractionRow, &ExtractionRow)>) {
    let rows = |m: Method| v.result.method(m).map_or(&[][..], |r| r.rows.as_slice());
    let (none, dynamic) = (rows(Method::None), rows(Method::Dynamic));
    let mut better: Vec<(&ExtractionRow, &ExtractionRow)> = none
        .iter()
        .zip(dynamic)
        .filter(|(n, d)| n.instance == d.instance && d.fraction > n.fraction)
        .collect();
    let only = |(n, d): &(&ExtractionRow, &ExtractionRow)| d.exact && !n.exact;
    better.sort_by(|a, b| {
        only(b)
            .cmp(&only(a))
            .then((b.1.fraction - b.0.fraction).total_cmp(&(a.1.fraction - a.0.fraction)))
    });
    (better.iter().filter(|p| only(p)).count(), better)
}

fn pair_html(v: &SoftPromptView, none: &ExtractionRow, dynamic: &ExtractionRow) -> Html {
    let prefix = v
        .prefixes
        .iter()
        .find(|(i, _)| *i == none.instance)
        .map_or(&[][..], |(_, p)| p.as_slice());
    let constant = v
        .result
        .method(Method::Constant)
        .and_then(|m| m.rows.iter().find(|r| r.instance == none.instance));
    let mut lines: Vec<(&str, &[u32])> = vec![("none", &none.generated)];
    if let Some(c) = constant {
        lines.push(("constant", &c.generated));
    }
    lines.push(("dynamic", &dynamic.generated));
    token_lines(&v.labels, prefix, &none.target, &lines, dynamic.exact)
}

/// Messages of the view.
pub enum Msg {
    /// The hub changed.
    Hub(Hub),
    /// From the shell.
    Event(ViewEvent),
    /// Train soft prompts: on a demo's own model (trained first) or on the last model.
    Run(Target),
    /// A field changed (index, text).
    SetField(usize, String),
    /// Stop prompt training (the prompts are measured as trained so far).
    Cancel,
    /// Export a chart or table.
    Export(&'static str),
}

/// Which model the prompts are trained against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The soft-prompt demo (facts, unpacked), trained first.
    Demo,
    /// The hidden-context demo (records behind a source line, packed), trained first,
    /// with its own prompt settings.
    ContextDemo,
    /// The last trained model.
    Last,
}

/// The view.
pub struct SpView {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    sp: SpState,
}

impl SpView {
    /// Train soft prompts for `base` with the view's settings: its own model first
    /// (`train_first`) or against the last trained model.
    fn start(&mut self, base: ExperimentSpec, train_first: bool) {
        match self.sp.spec(base) {
            Ok(spec) => {
                self.sp.begin(train_first);
                self.hub.start(JobRequest {
                    view: ID,
                    spec: spec.clone(),
                    job: ToWorker::SoftPrompt {
                        spec,
                        backend: self.hub.state.backend,
                        train: train_first,
                    },
                    keep: if train_first { Keep::New } else { Keep::Attach },
                });
            }
            Err(e) => self.sp.error = Some(e),
        }
    }

    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => self.hub = hub,
            Msg::Event(ViewEvent::Worker(m)) => match &*m {
                FromWorker::Started(info) => {
                    self.sp.status = SpStatus::TrainingModel(0, info.total_steps)
                }
                FromWorker::Step { progress } => {
                    self.sp.status = SpStatus::TrainingModel(progress.step, progress.total_steps)
                }
                FromWorker::PromptStep {
                    step,
                    progress,
                    elapsed_s,
                } => self
                    .sp
                    .step(step.method, step.step, step.loss, *progress, *elapsed_s),
                FromWorker::PromptEvaluating => self.sp.status = SpStatus::Evaluating,
                FromWorker::SoftPrompt {
                    view,
                    cancelled,
                    constant_s,
                    dynamic_s,
                    eval_s,
                } => {
                    self.hub.keep_result(RunResult::SoftPrompt(
                        view.clone(),
                        [*constant_s, *dynamic_s, *eval_s],
                        *cancelled,
                    ));
                    self.sp.view = Some((**view).clone());
                    self.sp.dirty = true;
                    self.sp.status = SpStatus::Ready {
                        constant_s: *constant_s,
                        dynamic_s: *dynamic_s,
                        eval_s: *eval_s,
                        cancelled: *cancelled,
                    };
                }
                FromWorker::Cancelled { .. } => self.sp.status = SpStatus::Idle,
                FromWorker::Failed { message } => {
                    self.sp.error = Some(message.clone());
                    self.sp.status = SpStatus::Idle;
                }
                _ => return false,
            },
            Msg::Event(ViewEvent::Start(spec)) => {
                if let Some(p) = &spec.softprompt {
                    self.sp.set_fields(p);
                }
                self.start((*spec).clone(), true);
            }
            Msg::Event(ViewEvent::Restore(run)) => {
                self.sp.view = None;
                self.sp.status = SpStatus::Idle;
                for r in &run.1.results {
                    if let RunResult::SoftPrompt(v, [constant_s, dynamic_s, eval_s], cancelled) = r
                    {
                        self.sp.view = Some((**v).clone());
                        self.sp.status = SpStatus::Ready {
                            constant_s: *constant_s,
                            dynamic_s: *dynamic_s,
                            eval_s: *eval_s,
                            cancelled: *cancelled,
                        };
                        self.sp.dirty = true;
                    }
                }
            }
            Msg::Event(ViewEvent::Resumed(_)) => return false,
            Msg::Run(target) => {
                if !self.hub.state.can_start() {
                    return false;
                }
                let base = match target {
                    Target::Demo => Some(ExperimentSpec::softprompt_demo()),
                    Target::ContextDemo => {
                        // Its prompt settings are part of the demo: show them in the fields.
                        let spec = ExperimentSpec::softprompt_context_demo();
                        self.sp.set_fields(&spec.softprompt.unwrap_or_default());
                        Some(spec)
                    }
                    Target::Last => self.hub.state.trained.as_ref().map(|t| t.1.clone()),
                };
                match base {
                    Some(base) => self.start(base, target != Target::Last),
                    None => self.sp.error = Some("train a model first".into()),
                }
            }
            Msg::SetField(i, v) => {
                if let Some(f) = self.sp.fields.get_mut(i) {
                    *f = v;
                }
            }
            Msg::Cancel => {
                self.hub.cancel();
                return false;
            }
            Msg::Export(what) => {
                if let Err(e) = self.sp.export(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
        }
        true
    }
}

impl Component for SpView {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        SpView {
            hub,
            _hub: handle,
            sp: SpState::default(),
        }
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        self.handle(msg)
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        self.sp.draw();
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let sp = &self.sp;
        let checked = sp.checked();
        let fields_ok = checked.iter().all(Result::is_ok);
        let busy = !self.hub.state.can_start();
        let trained = self.hub.state.trained.as_ref().map(|t| t.0.clone());
        let status = match &sp.status {
            SpStatus::Idle => match &trained {
                Some(m) => format!(
                    "Run the demo (trains its own model first), or train prompts against {m}."
                ),
                None => {
                    "Run the demo: it trains a small model on 64 invented facts, then the prompts."
                        .into()
                }
            },
            SpStatus::TrainingModel(s, t) => format!("Training the target model: step {s} of {t}…"),
            SpStatus::Training {
                progress: p,
                elapsed_s,
            } => format!(
                "Training the {} prompt: step {} of {} ({} of {} in all), loss {}, {:.1} s.",
                p.method.label(),
                p.step,
                p.steps,
                p.done,
                p.total,
                p.loss.map_or_else(|| "–".into(), |l| format!("{l:.3}")),
                elapsed_s
            ),
            SpStatus::Evaluating => "Decoding the test pairs with each method…".into(),
            SpStatus::Ready {
                constant_s,
                dynamic_s,
                eval_s,
                cancelled,
            } => format!(
                "Constant prompt trained in {constant_s:.1} s, generator in {dynamic_s:.1} s, measured in {eval_s:.1} s{}.",
                if *cancelled {
                    " (cancelled: the prompts are measured as far as they trained)"
                } else {
                    ""
                }
            ),
        };
        let state = match sp.status {
            SpStatus::Idle => "idle",
            SpStatus::TrainingModel(..) | SpStatus::Training { .. } => "training",
            SpStatus::Evaluating => "evaluating",
            SpStatus::Ready { .. } => "ready",
        };
        let progress = match &sp.status {
            SpStatus::Training { progress: p, .. } => {
                html! { <progress id="sp-progress" max={p.total.to_string()} value={p.done.to_string()}></progress> }
            }
            SpStatus::TrainingModel(s, t) => {
                html! { <progress id="sp-train-progress" max={(*t).max(1).to_string()} value={s.to_string()}></progress> }
            }
            _ => html! {},
        };
        let running = self.hub.state.busy.is_some();
        let field = |i: usize| {
            let (id, label, help, _) = FIELDS[i];
            let check = checked[i].as_ref().map(|_| ()).map_err(Clone::clone);
            text_field(
                id,
                label,
                &sp.fields[i],
                check,
                help,
                running,
                link.callback(move |e: InputEvent| Msg::SetField(i, input_value(&e))),
            )
        };
        let export = |what, label| export_button(link, what, label, Msg::Export);
        let training = matches!(sp.status, SpStatus::Training { .. });
        let show_results = sp.view.is_some() && matches!(sp.status, SpStatus::Ready { .. });
        let results = match (&sp.view, show_results) {
            (Some(v), true) => {
                let r = &v.result;
                let lengths = &r.lengths;
                let summary = format!(
                    "Target: {}. {} pairs trained the prompts, {} test pairs measured (k = {}, s = {}, L = {}{}{}).",
                    v.model,
                    r.train_pairs,
                    r.test_pairs,
                    lengths.prefix,
                    lengths.suffix,
                    lengths.prompt_len,
                    if lengths.clamped {
                        ", reduced to fit the context"
                    } else {
                        ""
                    },
                    if r.scaled > 0 {
                        format!("; {} shorter texts were split in proportion", r.scaled)
                    } else {
                        String::new()
                    }
                );
                let (only, better) = better_pairs(v);
                let heading = if better.is_empty() {
                    "On no test pair does the dynamic prompt reproduce more of the suffix than no prompt.".to_string()
                } else {
                    format!(
                        "{only} test pairs are extracted exactly with the dynamic prompt and not without one; on {} the dynamic prompt reproduces more of the suffix. The first {} (green: the true token, red: not):",
                        better.len(),
                        SHOWN.min(better.len())
                    )
                };
                html! {
                    <>
                    <p id="sp-summary">{ summary }</p>
                    <ul id="sp-methods">{ for r.methods.iter().map(|m| html! { <li data-method={m.method.label()}>{ method_label(m) }</li> }) }</ul>
                    <canvas id="sp-rates" ref={sp.rates.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("softprompt.png", "PNG") }{ export("softprompt.svg", "SVG") }{ export("softprompt.csv", "CSV") }{ export("pairs.csv", "Pairs CSV") }{ export("softprompt.json", "JSON") }</div>
                    <canvas id="sp-losses" ref={sp.losses.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("prompt_loss.png", "Loss PNG") }{ export("prompt_loss.svg", "Loss SVG") }{ export("prompt_loss.csv", "Loss CSV") }</div>
                    <p class="help" id="sp-pairs-heading">{ heading }</p>
                    <div id="sp-pairs">{ for better.iter().take(SHOWN).map(|(n, d)| pair_html(v, n, d)) }</div>
                    </>
                }
            }
            _ if training || sp.status == SpStatus::Evaluating => html! {
                <canvas id="sp-losses" ref={sp.losses.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
            },
            _ => html! {},
        };
        html! {
            <section class="panel" id="sp-panel">
                <h2>{ "Soft-prompt extraction" }</h2>
                <p class="help">{ "Ozdayi et al. (2023) train one constant soft prompt, Wang et al. (2024) a generator that writes a prompt for each prefix; both learn, with the model frozen, to make it reproduce the suffixes of training pairs. Extraction is then measured on held-out test pairs with no prompt, the constant prompt and the dynamic one." }</p>
                <p class="help" id="sp-settings-help">{ "Two demos. The soft-prompt demo trains each invented fact from position 0, as Mnemo trains by default: there a prompt in front of a prefix is something the model never saw, and on this tiny model no prompt extracts the most. The hidden-context demo sets up the papers' conditions: invented records of four kinds, each trained behind its kind's source line (“Parish roll:”, “Ship's log:”, ...) that the attacker never gets, packed into windows as GPT pretraining does, so the prompts sit in front of the text the way the papers' do and can stand in for the missing source line." }</p>
                <div class="row actions">
                    { field(0) }{ field(1) }{ field(2) }{ field(3) }
                </div>
                <div class="row actions">
                    <button id="sp-demo" class="primary" onclick={link.callback(|_| Msg::Run(Target::Demo))} disabled={busy || !fields_ok}>{ "Run the soft-prompt demo" }</button>
                    <button id="sp-context-demo" onclick={link.callback(|_| Msg::Run(Target::ContextDemo))} disabled={busy}>{ "Run the hidden-context demo" }</button>
                    <button id="sp-button" onclick={link.callback(|_| Msg::Run(Target::Last))} disabled={busy || !fields_ok || trained.is_none()}>{ "Train prompts on the last model" }</button>
                    <button id="sp-cancel" onclick={link.callback(|_| Msg::Cancel)} disabled={!sp.busy()}>{ "Cancel" }</button>
                </div>
                <p id="sp-status" data-state={state}>{ status }</p>
                { progress }
                if let Some(e) = &sp.error { <p id="sp-error" class="error" role="alert">{ e }</p> }
                { results }
            </section>
        }
    }
}
