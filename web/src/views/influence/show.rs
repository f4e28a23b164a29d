//! What the influence view shows once scores are in: the test-text picker, proponents
//! and opponents, the two texts token by token, the charts, case deletion's table, and
//! the exports.

use std::collections::HashMap;

use mnemo_measures::influence::agreement;
use mnemo_plots::did::svg_of;
use mnemo_plots::influence::{agreement_chart, deletion_chart};
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use super::{InfluencePanel, LISTED, Msg};
use crate::download::{download_canvas, download_text};
use crate::protocol::InfluenceView;
use crate::views::{CHART_SIZE, export_button, input_value};

impl InfluencePanel {
    pub(super) fn export(&self, what: &str) -> Result<(), String> {
        let v = self.view.as_ref().ok_or("no result yet")?;
        match what {
            "agreement.png" => download_canvas(self.agreement.cast(), what),
            "deletion.png" => download_canvas(self.deletion_chart.cast(), what),
            "agreement.svg" => download_text(
                what,
                "image/svg+xml",
                &svg_of(CHART_SIZE, |a| agreement_chart(a, &v.result)),
            ),
            "deletion.svg" => {
                let (d, ..) = self.deletion.as_ref().ok_or("no case deletion yet")?;
                download_text(
                    what,
                    "image/svg+xml",
                    &svg_of(CHART_SIZE, |a| deletion_chart(a, d)),
                )
            }
            "deletion.csv" => {
                let (d, ..) = self.deletion.as_ref().ok_or("no case deletion yet")?;
                download_text(
                    what,
                    "text/csv",
                    &mnemo_measures::export::deletion_table(d).map_err(|e| e.to_string())?,
                )
            }
            "influence.json" => {
                let json = serde_json::json!({
                    "result": v.result,
                    "agreement": agreement(&v.result),
                    "deletion": self.deletion.as_ref().map(|d| &d.0),
                    "gradient_s": self.gradient_s,
                });
                download_text(
                    what,
                    "application/json",
                    &serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?,
                )
            }
            name => crate::download::download_table(
                mnemo_measures::export::influence_tables(&v.result),
                name,
            ),
        }
    }

    pub(super) fn text_of<'a>(&self, v: &'a InfluenceView, id: u32) -> &'a str {
        v.texts
            .iter()
            .find(|t| t.id == id)
            .map_or("", |t| t.text.as_str())
    }

    /// The test text and one training text token by token, the shared tokens shaded by
    /// their TracIn-WE term (blue: a proponent's push, red: an opponent's).
    fn pair(&self, v: &InfluenceView, test: u32, train: u32) -> Html {
        let Some(t) = v.result.test(test) else {
            return html! {};
        };
        let terms: HashMap<u32, f64> = t
            .tokens
            .iter()
            .filter(|s| s.train == train)
            .map(|s| (s.token, s.score))
            .collect();
        let top = terms
            .values()
            .fold(0.0f64, |m, x| m.max(x.abs()))
            .max(1e-12);
        let line = |id: u32, who: &'static str| {
            let tokens = v
                .texts
                .iter()
                .find(|x| x.id == id)
                .map_or(&[][..], |x| x.tokens.as_slice());
            let spans = tokens.iter().filter(|&&tok| tok != v.bos).take(400).map(|&tok| {
                let label = v.labels.get(tok as usize).cloned().unwrap_or_else(|| "?".into());
                match terms.get(&tok) {
                    Some(&s) => {
                        let a = (s.abs() / top).clamp(0.08, 1.0) * 0.6;
                        let style = if s >= 0.0 { format!("background: rgba(0, 114, 178, {a:.2})") } else { format!("background: rgba(213, 94, 0, {a:.2})") };
                        html! { <span class="tok att" {style} title={format!("{s:.3e}")}>{ label }</span> }
                    }
                    None => html! { <span class="tok">{ label }</span> },
                }
            });
            html! { <div><span class="who">{ who }</span>{ for spans }</div> }
        };
        html! {
            <div id="inf-pair" class="tokens">
                { line(test, "test") }
                { line(train, "train") }
            </div>
        }
    }

    pub(super) fn results(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let Some(v) = &self.view else { return html! {} };
        let export = |what, label| export_button(link, what, label, Msg::Export);
        let needle = self.search.to_lowercase();
        let options = v.result.tests.iter().filter(|t| needle.is_empty() || self.text_of(v, t.test).to_lowercase().contains(&needle)).map(|t| {
            let held = v.texts.iter().any(|x| x.id == t.test && x.heldout);
            let text: String = self.text_of(v, t.test).chars().take(90).collect();
            html! { <option value={t.test.to_string()} selected={self.test == Some(t.test)}>{ format!("#{} ({}) {text}", t.test, if held { "held-out" } else { "training" }) }</option> }
        });
        let on_test = link.batch_callback(|e: Event| {
            let s: HtmlSelectElement = e.target_unchecked_into();
            s.value().parse().ok().map(Msg::PickTest)
        });
        let methods = v.result.settings.methods.iter().map(|&m| {
            html! { <label><input type="radio" name="inf-method" checked={m == self.method} onchange={link.callback(move |_| Msg::PickMethod(m))} />{ format!(" {} ", m.label()) }</label> }
        });
        let scores = self
            .test
            .and_then(|t| v.result.test(t))
            .and_then(|t| t.method(self.method));
        let rows = |list: &[mnemo_measures::influence::Ranked], id: &'static str| {
            let items = list.iter().take(LISTED).map(|r| {
                let train = r.train;
                let selected = self.train == Some(train);
                html! {
                    <li class={classes!(selected.then_some("selected"))}>
                        <button class="link" onclick={link.callback(move |_| Msg::PickTrain(train))}>
                            <span class="score mono">{ format!("{:+.3e}", r.score) }</span>{ format!("#{train} {}", self.text_of(v, train)) }</button>
                    </li>
                }
            });
            html! { <ol id={id} class="ranked">{ for items }</ol> }
        };
        let deletion = match &self.deletion {
            None => {
                html! { <p class="help">{ "Case deletion retrains the model without each test text's top proponents (and without random texts, the baseline) and measures how much its loss rises." }</p> }
            }
            Some((d, secs, cancelled)) => {
                let ks: Vec<usize> = {
                    let mut ks: Vec<usize> = d.summary.iter().map(|s| s.k).collect();
                    ks.sort_unstable();
                    ks.dedup();
                    ks
                };
                let mut removals = Vec::new();
                for s in &d.summary {
                    if !removals.contains(&s.removal) {
                        removals.push(s.removal);
                    }
                }
                let cell = |r, k| match d.summary.iter().find(|s| s.removal == r && s.k == k) {
                    Some(s) if s.n > 1 && s.draw_min < s.draw_max => format!(
                        "{:+.3} ({:+.3} to {:+.3})",
                        s.mean_rise, s.draw_min, s.draw_max
                    ),
                    Some(s) => format!("{:+.3}", s.mean_rise),
                    None => String::new(),
                };
                let lines = html! {
                    <table id="inf-deletion-table" class="small">
                        <thead><tr><th>{ "removed" }</th>{ for ks.iter().map(|k| html! { <th>{ format!("k = {k}") }</th> }) }</tr></thead>
                        <tbody>{ for removals.iter().map(|&r| html! {
                            <tr data-removal={r.key()}><td>{ r.label() }</td>{ for ks.iter().map(|&k| html! { <td class="num">{ cell(r, k) }</td> }) }</tr>
                        }) }</tbody>
                    </table>
                };
                html! {
                    <>
                    <p id="inf-deletion-summary">{ format!("{} retrains in {secs:.1} s{}. Mean rise of the test texts' loss (nats/token) when their top-k proponents are removed and the model retrained; random removal with the range of its draws' means:", d.rows.len(), if *cancelled { " (cancelled: the retrains done so far)" } else { "" }) }</p>
                    { lines }
                    <canvas id="inf-deletion" ref={self.deletion_chart.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                    <div class="row actions">{ export("deletion.png", "PNG") }{ export("deletion.svg", "SVG") }{ export("deletion.csv", "CSV") }</div>
                    </>
                }
            }
        };
        html! {
            <>
            <p id="inf-summary">{ format!("{} test texts scored against {} training texts at {} checkpoints in {:.1} s.", v.result.tests.len(), v.result.train.len(), v.result.checkpoints.len(), self.gradient_s) }</p>
            <div class="row">
                <label class="field"><span>{ "Find a test text" }</span>
                    <input id="inf-search" type="search" value={self.search.clone()} placeholder="words in the text" oninput={link.callback(|e: InputEvent| Msg::Search(input_value(&e)))} /></label>
                <label class="field wide-field"><span>{ "Test text" }</span>
                    <select id="inf-test" onchange={on_test}>{ for options }</select></label>
            </div>
            <div class="row" id="inf-methods">{ for methods }</div>
            if let Some(s) = scores {
                <div class="columns">
                    <div><h3>{ "Proponents" }</h3><p class="help">{ "Training texts that lowered this text's loss most." }</p>{ rows(&s.proponents, "inf-proponents") }</div>
                    <div><h3>{ "Opponents" }</h3><p class="help">{ "Training texts that raised it most." }</p>{ rows(&s.opponents, "inf-opponents") }</div>
                </div>
            }
            if let (Some(t), Some(tr)) = (self.test, self.train.or_else(|| scores.and_then(|s| s.proponents.first().map(|r| r.train)))) {
                <p class="help">{ "Shared tokens shaded by their TracIn-WE term: blue pushed the test text's loss down, orange up." }</p>
                { self.pair(v, t, tr) }
            }
            <div class="row actions">{ export("influence.csv", "Scores CSV") }{ export("tokens.csv", "Tokens CSV") }{ export("influence.json", "JSON") }</div>
            <h3>{ "Do the methods agree?" }</h3>
            <canvas id="inf-agreement" ref={self.agreement.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
            <div class="row actions">{ export("agreement.png", "PNG") }{ export("agreement.svg", "SVG") }</div>
            <h3>{ "Case deletion" }</h3>
            { deletion }
            </>
        }
    }
}
