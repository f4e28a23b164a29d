//! The "Extraction" view: greedy decoding from each text's prefix on the last trained
//! model, the rates, and the texts token by token.

use mnemo_core::spec::{ExtractionSpec, limits};
use mnemo_measures::extraction::{ExtractionRow, extraction_csv};
use mnemo_plots::did::svg_of;
use mnemo_plots::extraction::extraction_chart;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::tokens::token_lines;
use super::{App, CHART_SIZE, Msg};
use crate::chart::draw_on;
use crate::download::{download_canvas, download_text};
use crate::protocol::ExtractionView;

/// Texts shown token by token.
const SHOWN: usize = 20;

/// Where extraction stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ExStatus {
    /// Nothing asked.
    Idle,
    /// Decoding.
    Running,
    /// Results in.
    Ready {
        /// Seconds decoding.
        elapsed_s: f64,
    },
}

/// The view's state.
pub struct ExState {
    /// Progress.
    pub status: ExStatus,
    /// The last results.
    pub view: Option<ExtractionView>,
    /// Prefix field.
    pub prefix: String,
    /// Suffix field.
    pub suffix: String,
    /// Show held-out texts instead of training texts.
    pub heldout: bool,
    /// Why the last extraction failed.
    pub error: Option<String>,
    /// The chart needs drawing.
    pub dirty: bool,
    chart: NodeRef,
}

impl Default for ExState {
    fn default() -> Self {
        let d = ExtractionSpec::default();
        ExState {
            status: ExStatus::Idle,
            view: None,
            prefix: d.prefix.to_string(),
            suffix: d.suffix.to_string(),
            heldout: false,
            error: None,
            dirty: false,
            chart: NodeRef::default(),
        }
    }
}

fn affix(field: &str) -> Result<usize, String> {
    let (lo, hi) = limits::AFFIX;
    match field.trim().parse::<usize>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!("a whole number of tokens from {lo} to {hi}")),
    }
}

impl ExState {
    /// The settings in the fields, or the first problem per field.
    pub fn settings(&self) -> (Result<usize, String>, Result<usize, String>) {
        (affix(&self.prefix), affix(&self.suffix))
    }

    /// Whether extraction is running.
    pub fn busy(&self) -> bool {
        self.status == ExStatus::Running
    }

    /// Draw the chart if something changed.
    pub fn draw(&mut self) {
        let Some(v) = &self.view else { return };
        if !self.dirty {
            return;
        }
        if let Some(c) = self.chart.cast() {
            draw_on(c, |a| extraction_chart(a, &v.result));
        }
        self.dirty = false;
    }

    /// Download the chart or a table.
    pub fn export(&self, what: &str) -> Result<(), String> {
        let v = self.view.as_ref().ok_or("no result yet")?;
        match what {
            "extraction.png" => download_canvas(self.chart.cast(), what),
            "extraction.svg" => download_text(
                what,
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| extraction_chart(a, &v.result)),
            ),
            "extraction.json" => download_text(
                what,
                "application/json",
                &serde_json::to_string_pretty(&v.result).map_err(|e| e.to_string())?,
            ),
            "extraction_heldout.csv" => download_text(
                what,
                "text/csv",
                &extraction_csv(&v.result.heldout).map_err(|e| e.to_string())?,
            ),
            _ => download_text(
                "extraction.csv",
                "text/csv",
                &extraction_csv(&v.result.train).map_err(|e| e.to_string())?,
            ),
        }
    }
}

/// One text: its prefix, then the true suffix and the model's, token by token.
fn row_html(v: &ExtractionView, row: &ExtractionRow) -> Html {
    let prefix = v
        .prefixes
        .iter()
        .find(|(i, _)| *i == row.instance)
        .map_or(&[][..], |(_, p)| p.as_slice());
    token_lines(
        &v.labels,
        prefix,
        &row.target,
        &[("model", &row.generated)],
        row.exact,
    )
}

impl App {
    pub(super) fn view_extraction(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let ex = &self.ex;
        let (k, s) = ex.settings();
        let blocked = self.running() || self.trained_model.is_none();
        let status = match (&ex.status, &self.trained_model) {
            (ExStatus::Running, _) => "Decoding…".to_string(),
            (_, None) => "Train a model first (for example “Run the demo” above); extraction runs on the model of the last finished training run.".to_string(),
            (ExStatus::Idle, Some(m)) => format!("Ready to measure extraction on {m}."),
            (ExStatus::Ready { elapsed_s }, _) => format!("Decoded in {elapsed_s:.1} s."),
        };
        let state = match ex.status {
            ExStatus::Idle => "idle",
            ExStatus::Running => "running",
            ExStatus::Ready { .. } => "ready",
        };
        let export = |what: &'static str, label: &'static str| {
            html! { <button onclick={link.callback(move |_| Msg::ExportExtraction(what))}>{ label }</button> }
        };
        let field = |id: &'static str,
                     label: &'static str,
                     value: &str,
                     err: Option<String>,
                     which: bool| {
            html! {
                <label class={classes!("field", err.is_some().then_some("invalid"))}><span>{ label }</span>
                    <input id={id} type="text" inputmode="numeric" value={value.to_string()} disabled={self.running()}
                        oninput={link.callback(move |e: InputEvent| { let i: HtmlInputElement = e.target_unchecked_into(); Msg::SetAffix(which, i.value()) })} />
                    <small class={if err.is_some() { "error" } else { "help" }}>{ err.unwrap_or_else(|| "tokens".into()) }</small>
                </label>
            }
        };
        let results = match &ex.view {
            None => html! {},
            Some(v) => {
                let r = &v.result;
                let pct = |x: f64| format!("{:.0}%", x * 100.0);
                let summary = format!(
                    "On {}: training texts extracted exactly {} of {} ({}), suffix tokens reproduced {}; held-out texts {} of {} ({}), {}. Asked for k = {}, s = {}{}.",
                    v.model,
                    (r.train_rates.exact_rate * r.train_rates.n as f64).round(),
                    r.train_rates.n,
                    pct(r.train_rates.exact_rate),
                    pct(r.train_rates.fractional_rate),
                    (r.heldout_rates.exact_rate * r.heldout_rates.n as f64).round(),
                    r.heldout_rates.n,
                    pct(r.heldout_rates.exact_rate),
                    pct(r.heldout_rates.fractional_rate),
                    r.prefix,
                    r.suffix,
                    if r.scaled > 0 {
                        format!(
                            "; {} texts were shorter and used proportionally smaller k and s",
                            r.scaled
                        )
                    } else {
                        String::new()
                    },
                );
                let rows = if ex.heldout { &r.heldout } else { &r.train };
                let mut shown: Vec<&ExtractionRow> = rows.iter().collect();
                // Extracted first, then by share reproduced.
                shown.sort_by(|a, b| b.fraction.total_cmp(&a.fraction));
                let heldout = ex.heldout;
                html! {
                    <>
                    <p id="ex-summary">{ summary }</p>
                    <canvas id="ex-chart" ref={ex.chart.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("extraction.png", "PNG") }{ export("extraction.svg", "SVG") }{ export("extraction.csv", "CSV") }{ export("extraction_heldout.csv", "Held-out CSV") }{ export("extraction.json", "JSON") }</div>
                    <div class="row">
                        <label><input type="radio" name="ex-split" checked={!heldout} onchange={link.callback(|_| Msg::ShowHeldout(false))} />{ " training texts" }</label>
                        <label><input id="ex-show-heldout" type="radio" name="ex-split" checked={heldout} onchange={link.callback(|_| Msg::ShowHeldout(true))} />{ " held-out texts" }</label>
                    </div>
                    <p class="help">{ format!("The {} texts with the largest share reproduced, of {}. Grey: the prefix the model was given. Green: the model wrote the true token; red: it did not.", SHOWN.min(shown.len()), shown.len()) }</p>
                    <div id="ex-rows">{ for shown.iter().take(SHOWN).map(|row| row_html(v, row)) }</div>
                    </>
                }
            }
        };
        html! {
            <section class="panel" id="ex-panel">
                <h2>{ "Extraction" }</h2>
                <p class="help">{ "Carlini et al. (2023): give the model the first k tokens of a text and let it continue greedily; the text is extracted when the next s tokens come out exactly." }</p>
                <div class="row actions">
                    { field("ex-prefix", "Prefix k", &ex.prefix, k.as_ref().err().cloned(), true) }
                    { field("ex-suffix", "Suffix s", &ex.suffix, s.as_ref().err().cloned(), false) }
                    <button id="ex-button" class="primary" onclick={link.callback(|_| Msg::Extract)} disabled={blocked || k.is_err() || s.is_err()}>{ "Extract" }</button>
                </div>
                <p id="ex-status" data-state={state}>{ status }</p>
                if let Some(e) = &ex.error { <p id="ex-error" class="error" role="alert">{ e }</p> }
                { results }
            </section>
        }
    }
}
