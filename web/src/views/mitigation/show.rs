//! The Mitigation view's results: the status line, the table beside the reference's
//! results, the trade-off and bar charts, the sequences token by token, and exports.

use mnemo_measures::unlearn::{Kind, reference_result};
use mnemo_plots::did::svg_of;
use mnemo_plots::mitigation::{Measure, measure_chart, reference_points, tradeoff_chart};
use yew::prelude::*;

use super::{MitigationPanel, Msg, Status};
use crate::chart::draw_on;
use crate::download::{download_canvas, download_text};
use crate::protocol::MitigationView;
use crate::views::tokens::label;
use crate::views::{CHART_SIZE, export_button};

/// Sequences shown token by token at most.
const SHOWN: usize = 8;

fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

/// One generated line: each token marked as the memorised one (`mem`), the clean one
/// (`hit`) or neither (`miss`); on noise data, where the two differ (a noise position)
/// it is outlined.
fn generated_line(v: &MitigationView, i: usize, who: &str, generated: &[u32]) -> Html {
    let ex = &v.examples[i];
    let backdoor = v.summary.is_backdoor();
    let toks = generated.iter().enumerate().map(|(p, &t)| {
        let (m, c) = (ex.memorised.get(p), ex.clean.get(p));
        let differs = m != c;
        let noise = differs && !backdoor;
        let class = if m == Some(&t) && differs {
            "mem"
        } else if c == Some(&t) {
            "hit"
        } else {
            "miss"
        };
        html! { <span class={classes!("tok", class, noise.then_some("noise"))}>{ label(&v.labels, t) }</span> }
    });
    html! { <div><span class="who">{ who.to_string() }</span>{ for toks }</div> }
}

/// The two continuations of example `i`, noise positions outlined.
fn truth_lines(v: &MitigationView, i: usize, backdoor: bool) -> Html {
    let ex = &v.examples[i];
    let line = |who: &str, toks: &[u32], class: &'static str| {
        let spans = toks.iter().enumerate().map(|(p, &t)| {
            let differs = ex.memorised.get(p) != ex.clean.get(p);
            let noise = differs && !backdoor;
            html! { <span class={classes!("tok", differs.then_some(class), noise.then_some("noise"))}>{ label(&v.labels, t) }</span> }
        });
        html! { <div><span class="who">{ who.to_string() }</span>{ for spans }</div> }
    };
    let prompt: String = ex.prompt.iter().map(|&t| label(&v.labels, t)).collect();
    html! {
        <>
            <div><span class="who">{ "prompt" }</span><span class="prefix">{ prompt }</span></div>
            { line(if backdoor { "backdoor" } else { "noised" }, &ex.memorised, "mem") }
            { line("clean", &ex.clean, "hit") }
        </>
    }
}

impl MitigationPanel {
    /// The status line: its state name and text.
    pub(super) fn status_line(&self) -> (&'static str, String) {
        match &self.status {
            Status::Idle => (
                "idle",
                "Pick a model and methods, then run them. The built-in backdoor model answers every sequence that contains 100 with 2s: the methods try to remove that without losing the arithmetic.".into(),
            ),
            Status::Training(s, t) => ("training", format!("Training the model first: step {s} of {t}…")),
            Status::Preparing => ("preparing", "Loading and measuring the untouched model…".into()),
            Status::Running(j, n, _, _, done, workers, mib) if j >= n => (
                "running",
                format!(
                    "{done} of {n} methods done{}… (Cancel keeps the methods done)",
                    if *workers > 1 { format!(" on {workers} workers (up to {mib:.0} MiB each)") } else { String::new() }
                ),
            ),
            Status::Running(j, n, p, secs, done, workers, mib) => {
                let name = self
                    .plan
                    .get(*j)
                    .map_or(String::new(), |n| format!(", {n}"));
                let eta = if p.done > 0 && p.total > p.done {
                    format!(" · ETA {:.0} s", secs / p.done as f64 * (p.total - p.done) as f64)
                } else {
                    String::new()
                };
                let pool = if *workers > 1 {
                    format!(" · {done} of {n} done on {workers} workers (up to {mib:.0} MiB each)")
                } else {
                    String::new()
                };
                (
                    "running",
                    format!(
                        "Method {} of {n}{name}: step {} of {}{eta}{pool}… (Cancel keeps the methods done)",
                        j + 1,
                        p.done,
                        p.total
                    ),
                )
            }
            Status::Ready(false) => ("ready", "Every method done.".into()),
            Status::Ready(true) => ("ready", "Stopped: the methods done so far are kept.".into()),
            Status::Stopped => ("stopped", "Stopped before any method finished.".into()),
        }
    }

    /// Draw the charts.
    pub(super) fn draw(&self) {
        let Some(v) = &self.view else { return };
        let results = &v.summary.results;
        let refs = if v.builtin.is_some() {
            reference_points(results, v.summary.is_backdoor(), v.summary.layers)
        } else {
            Vec::new()
        };
        if let Some(c) = self.tradeoff.cast() {
            draw_on(c, |a| tradeoff_chart(a, results, &refs));
        }
        if let Some(c) = self.bars.cast() {
            let m = Measure::ALL[self.measure.min(Measure::ALL.len() - 1)];
            draw_on(c, |a| measure_chart(a, results, m));
        }
    }

    pub(super) fn export(&self, what: &str) -> Result<(), String> {
        let v = self.view.as_ref().ok_or("no result yet")?;
        let results = &v.summary.results;
        let refs = if v.builtin.is_some() {
            reference_points(results, v.summary.is_backdoor(), v.summary.layers)
        } else {
            Vec::new()
        };
        let measure = Measure::ALL[self.measure.min(Measure::ALL.len() - 1)];
        match what {
            "tradeoff.png" => download_canvas(self.tradeoff.cast(), what),
            "measure.png" => download_canvas(self.bars.cast(), &format!("{}.png", measure.stem())),
            "tradeoff.svg" => download_text(
                what,
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| tradeoff_chart(a, results, &refs)),
            ),
            "measure.svg" => download_text(
                &format!("{}.svg", measure.stem()),
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| measure_chart(a, results, measure)),
            ),
            "mitigation.json" => download_text(
                what,
                "application/json",
                &serde_json::to_string_pretty(&v.summary).map_err(|e| e.to_string())?,
            ),
            name => crate::download::download_table(
                mnemo_measures::export::mitigation_tables(results),
                name,
            ),
        }
    }

    /// The results: table, charts, sequences, exports.
    pub(super) fn results(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let Some(v) = &self.view else { return html! {} };
        let s = &v.summary;
        let backdoor = s.is_backdoor();
        let with_ref = v.builtin.is_some();
        let measured = if backdoor {
            format!(
                "backdoor success on {} backdoor test sequences",
                v.examples.len()
            )
        } else {
            format!(
                "noised training sequences reproduced from their clean 50-token prefix ({} counted)",
                v.examples.len()
            )
        };
        let rows = s.results.iter().enumerate().map(|(i, r)| {
            let reference = reference_result(r.method, backdoor, s.layers);
            let picked = self.picked == Some(i);
            html! {
                <tr class={classes!("pick", picked.then_some("picked"))} data-method={r.method.name()}
                    onclick={link.callback(move |_| Msg::PickResult(i))}>
                    <td>{ r.method.name() }</td>
                    <td class="mono">{ r.settings.label() }</td>
                    <td class="num mem-after">{ pct(r.memorised_after) }</td>
                    if !backdoor { <td class="num">{ r.clean_after.map_or(String::new(), pct) }</td> }
                    <td class="num acc-after">{ pct(r.accuracy_after) }</td>
                    <td class="num">{ format!("{:.3}", r.perplexity_after) }</td>
                    if r.method.kind() == Kind::Regulariser {
                        <td class="num" title="a regulariser's time is its whole training run">{ format!("{:.1} (training run)", r.seconds) }</td>
                    } else {
                        <td class="num">{ format!("{:.1}", r.seconds) }</td>
                    }
                    if with_ref { <td class="num">{ reference.map_or(String::new(), |r| format!("{} / {}", pct(r.accuracy), pct(r.memorised))) }</td> }
                </tr>
            }
        });
        let onmeasure = link.callback(|e: Event| {
            let s: web_sys::HtmlSelectElement = e.target_unchecked_into();
            Msg::PickMeasure(s.value().parse().unwrap_or(0))
        });
        let picked = self.picked.filter(|&p| p < s.results.len());
        let sequences = match picked {
            None => {
                html! { <p class="help">{ "Pick a method in the table to see its sequences." }</p> }
            }
            Some(p) => {
                let r = &s.results[p];
                let after = &v.after[p];
                let shown = v.examples.len().min(SHOWN);
                html! {
                    <>
                    <h3>{ format!("Sequences before and after {} ({})", r.method.name(), r.settings.label()) }</h3>
                    <p class="help">{ "Each sequence's prompt, the continuation that counts as memorised (noise positions outlined) and the clean one, then what the untouched and the edited model generate: green where a token is the clean one, blue where it is the memorised one, red where it is neither." }</p>
                    <div id="mit-sequences">
                    { for (0..shown).map(|i| {
                        let (id, b, a) = r.sequences.get(i).copied().unwrap_or((v.examples[i].instance, false, false));
                        html! {
                            <div class="tokens" data-instance={id.to_string()} data-before={b.to_string()} data-after={a.to_string()}>
                                <div class="caption">{ format!("sequence {id}: {} before, {} after", if b { "memorised" } else { "not memorised" }, if a { "memorised" } else { "not memorised" }) }</div>
                                { truth_lines(v, i, backdoor) }
                                { generated_line(v, i, "before", v.before.get(i).map_or(&[][..], Vec::as_slice)) }
                                { generated_line(v, i, "after", after.get(i).map_or(&[][..], Vec::as_slice)) }
                            </div>
                        }
                    }) }
                    if v.examples.len() > shown { <p class="help">{ format!("{} more in sequences.csv.", v.examples.len() - shown) }</p> }
                    </div>
                    </>
                }
            }
        };
        html! {
            <div id="mit-results">
                <p id="mit-before">{ format!(
                    "{}: memorised {}% ({measured}){}, test accuracy {}%, perplexity {:.3}; forget set {}, retain set {}; measured in {:.1} s.",
                    s.model,
                    pct(s.memorised_before),
                    s.clean_before.map_or(String::new(), |c| format!(", clean window {}%", pct(c))),
                    pct(s.accuracy_before),
                    s.perplexity_before,
                    s.forget_set,
                    s.retain_set,
                    self.prepare_s
                ) }</p>
                if !s.results.is_empty() {
                    <table class="small" id="mit-table">
                        <thead><tr>
                            <th>{ "method" }</th><th>{ "setting" }</th><th>{ "memorised %" }</th>
                            if !backdoor { <th>{ "clean %" }</th> }
                            <th>{ "accuracy %" }</th><th>{ "perplexity" }</th><th>{ "seconds" }</th>
                            if with_ref { <th title={format!("Sakarvadia et al., {}-layer models on MULT data, each method at its best setting", if s.layers >= 4 { 4 } else { 2 })}>{ "reference acc / mem %" }</th> }
                        </tr></thead>
                        <tbody>
                            <tr class="untouched"><td>{ "(untouched)" }</td><td></td><td class="num">{ pct(s.memorised_before) }</td>
                                if !backdoor { <td class="num">{ s.clean_before.map_or(String::new(), pct) }</td> }
                                <td class="num">{ pct(s.accuracy_before) }</td><td class="num">{ format!("{:.3}", s.perplexity_before) }</td><td></td>
                                if with_ref { <td></td> }
                            </tr>
                            { for rows }
                        </tbody>
                    </table>
                    <canvas id="mit-tradeoff" ref={self.tradeoff.clone()} width={CHART_SIZE.0.to_string()} height={(CHART_SIZE.1 + 80).to_string()}></canvas>
                    <div class="row actions">
                        <label class="field"><span>{ "Bar chart" }</span>
                            <select id="mit-measure" onchange={onmeasure}>
                                { for Measure::ALL.iter().enumerate().map(|(i, m)| html! {
                                    <option value={i.to_string()} selected={self.measure == i}>{ m.stem() }</option>
                                }) }
                            </select>
                        </label>
                    </div>
                    <canvas id="mit-bars" ref={self.bars.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions exports">
                        { export_button(link, "mitigation.csv", "mitigation.csv", Msg::Export) }
                        { export_button(link, "sequences.csv", "sequences.csv", Msg::Export) }
                        { export_button(link, "mitigation.json", "mitigation.json", Msg::Export) }
                        { export_button(link, "tradeoff.png", "trade-off PNG", Msg::Export) }
                        { export_button(link, "tradeoff.svg", "trade-off SVG", Msg::Export) }
                        { export_button(link, "measure.png", "bars PNG", Msg::Export) }
                        { export_button(link, "measure.svg", "bars SVG", Msg::Export) }
                    </div>
                    { sequences }
                }
            </div>
        }
    }
}
