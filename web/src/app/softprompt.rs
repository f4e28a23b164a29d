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
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::tokens::token_lines;
use super::{App, CHART_SIZE, Msg};
use crate::chart::draw_on;
use crate::download::{download_canvas, download_text};
use crate::protocol::SoftPromptView;

/// Test pairs shown token by token.
const SHOWN: usize = 12;

/// Where the soft-prompt experiment stands.
#[derive(Debug, Clone, PartialEq)]
pub enum SpStatus {
    /// Nothing asked.
    Idle,
    /// The target model is training (shown in the training panel).
    TrainingModel,
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
            SpStatus::TrainingModel | SpStatus::Training { .. } | SpStatus::Evaluating
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
            SpStatus::TrainingModel
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

impl App {
    pub(super) fn view_softprompt(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let sp = &self.sp;
        let checked = sp.checked();
        let fields_ok = checked.iter().all(Result::is_ok);
        let busy = !self.can_start();
        let status = match &sp.status {
            SpStatus::Idle => match &self.trained_model {
                Some(m) => format!(
                    "Run the demo (trains its own model first), or train prompts against {m}."
                ),
                None => {
                    "Run the demo: it trains a small model on 64 invented facts, then the prompts."
                        .into()
                }
            },
            SpStatus::TrainingModel => "Training the target model (see the training panel)…".into(),
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
            SpStatus::TrainingModel | SpStatus::Training { .. } => "training",
            SpStatus::Evaluating => "evaluating",
            SpStatus::Ready { .. } => "ready",
        };
        let progress = match &sp.status {
            SpStatus::Training { progress: p, .. } => {
                html! { <progress id="sp-progress" max={p.total.to_string()} value={p.done.to_string()}></progress> }
            }
            _ => html! {},
        };
        let field = |i: usize| {
            let (id, label, help, _) = FIELDS[i];
            let err = checked[i].as_ref().err().cloned();
            html! {
                <label class={classes!("field", err.is_some().then_some("invalid"))}><span>{ label }</span>
                    <input id={id} type="text" inputmode="numeric" value={sp.fields[i].clone()} disabled={self.running()}
                        oninput={link.callback(move |e: InputEvent| { let t: HtmlInputElement = e.target_unchecked_into(); Msg::SetSpField(i, t.value()) })} />
                    <small class={if err.is_some() { "error" } else { "help" }}>{ err.unwrap_or_else(|| help.into()) }</small>
                </label>
            }
        };
        let export = |what: &'static str, label: &'static str| {
            html! { <button onclick={link.callback(move |_| Msg::ExportSp(what))}>{ label }</button> }
        };
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
                <div class="row actions">
                    { field(0) }{ field(1) }{ field(2) }{ field(3) }
                </div>
                <div class="row actions">
                    <button id="sp-demo" class="primary" onclick={link.callback(|_| Msg::RunSoftPrompt(true))} disabled={busy || !fields_ok}>{ "Run the soft-prompt demo" }</button>
                    <button id="sp-button" onclick={link.callback(|_| Msg::RunSoftPrompt(false))} disabled={busy || !fields_ok || self.trained_model.is_none()}>{ "Train prompts on the last model" }</button>
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
