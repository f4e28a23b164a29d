//! The Geometry view's results: the status line, the summary, the scatter coloured by a
//! chosen LID (3-D data projected on a chosen pair of axes), the memorised points and
//! the FLIPD curve of a picked one, the regions table against the true dimension, the
//! estimator chart, and exports.

use mnemo_measures::geometry::{GeometryResult, MemClass, Phase, Region, export};
use mnemo_plots::did::svg_of;
use mnemo_plots::geometry::{estimator_chart, flipd_curve_chart, scatter_chart};
use yew::prelude::*;

use super::{AXES, COLOURS, GeometryPanel, Msg, Status};
use crate::chart::draw_on;
use crate::download::{download_canvas, download_text};
use crate::views::{CHART_SIZE, export_button};

/// Size of the scatter canvas (square-ish, so a disk looks round).
const SCATTER_SIZE: (u32, u32) = (760, 560);

/// Memorised points listed at most (the rest are in training.csv).
const LISTED: usize = 50;

fn num(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.2}"))
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Train => "Training the noise predictor",
        Phase::Sample => "Sampling",
        Phase::Flipd => "FLIPD of the training points and samples",
        Phase::NormalBundle => "The normal bundle",
        Phase::Curve => "The FLIPD curve",
        Phase::Estimate => "lPCA, MLE and the classes",
        Phase::Done => "Done",
    }
}

/// The training points the picker offers: the memorised ones, then the first point of
/// each region not among them (so every region's curve can be seen).
fn offered(r: &GeometryResult) -> Vec<usize> {
    let mut out: Vec<usize> = r
        .train
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.class, MemClass::OdMem | MemClass::DdMem))
        .map(|(i, _)| i)
        .take(LISTED)
        .collect();
    for region in Region::ALL {
        if let Some(i) = r.train.iter().position(|p| p.region == region)
            && !out.contains(&i)
        {
            out.push(i);
        }
    }
    out
}

impl GeometryPanel {
    /// The status line: its state name and text.
    pub(super) fn status_line(&self) -> (&'static str, String) {
        match &self.status {
            Status::Idle => (
                "idle",
                "Run the demo (a lollipop with an isolated and a duplicated point; a minute or two in a page on the CPU), the overfitting demo (16 circle points and an isolated one, which the model memorises), or choose a data set.".into(),
            ),
            Status::Running(None, _) => ("training", "Starting…".into()),
            Status::Running(Some(p), secs) => {
                let what = if p.phase == Phase::Train {
                    let steps = self
                        .base
                        .geometry
                        .as_ref()
                        .map_or(0, |g| g.training.steps);
                    format!(
                        "{}: step {} of {steps}{}",
                        phase_name(p.phase),
                        p.step,
                        p.loss.map_or(String::new(), |l| format!(", loss {l:.4}"))
                    )
                } else {
                    phase_name(p.phase).to_string()
                };
                let eta = if p.done > 0 && p.total > p.done {
                    format!(" · ETA {:.0} s", secs / p.done as f64 * (p.total - p.done) as f64)
                } else {
                    String::new()
                };
                (
                    "training",
                    format!("{what} ({} of {} units, {secs:.0} s){eta}…", p.done, p.total),
                )
            }
            Status::Ready => ("ready", format!("Done in {:.1} s.", self.seconds)),
            Status::Stopped => ("stopped", "Stopped: nothing is kept of an unfinished run.".into()),
        }
    }

    fn axes(&self, r: &GeometryResult) -> (usize, usize) {
        if r.dim < 3 {
            (0, 1)
        } else {
            AXES[self.axes.min(AXES.len() - 1)]
        }
    }

    fn curve_points(&self) -> Vec<usize> {
        self.picked.into_iter().collect()
    }

    /// Draw the charts.
    pub(super) fn draw(&self) {
        let Some(r) = &self.result else { return };
        let colour = COLOURS[self.colour.min(COLOURS.len() - 1)].1;
        if let Some(c) = self.scatter.cast() {
            draw_on(c, |a| scatter_chart(a, r, colour, self.axes(r)));
        }
        if let Some(c) = self.curve.cast() {
            draw_on(c, |a| flipd_curve_chart(a, r, &self.curve_points()));
        }
        if let Some(c) = self.estimators.cast() {
            draw_on(c, |a| estimator_chart(a, r));
        }
    }

    pub(super) fn export(&self, what: &str) -> Result<(), String> {
        let r = self.result.as_ref().ok_or("no result yet")?;
        let colour = COLOURS[self.colour.min(COLOURS.len() - 1)].1;
        let axes = self.axes(r);
        let points = self.curve_points();
        let svg = |text: String| download_text(what, "image/svg+xml", &text);
        match what {
            "scatter.png" => download_canvas(self.scatter.cast(), what),
            "flipd_curve.png" => download_canvas(self.curve.cast(), what),
            "estimators.png" => download_canvas(self.estimators.cast(), what),
            "scatter.svg" => svg(svg_of(SCATTER_SIZE, |a| scatter_chart(a, r, colour, axes))),
            "flipd_curve.svg" => svg(svg_of(CHART_SIZE, |a| flipd_curve_chart(a, r, &points))),
            "estimators.svg" => svg(svg_of(CHART_SIZE, |a| estimator_chart(a, r))),
            "geometry.json" => download_text(
                what,
                "application/json",
                &serde_json::to_string_pretty(r).map_err(|e| e.to_string())?,
            ),
            name => crate::download::download_table(export::tables(r), name),
        }
    }

    /// The results: summary, charts, tables, exports.
    pub(super) fn results(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let Some(r) = &self.result else {
            return html! {};
        };
        let [od, dd, not, undefined] = r.class_counts();
        let g = &r.settings;
        let summary = format!(
            "{} training points ({}-D {}), {} samples ({} copying a training point); OD-Mem {od}, DD-Mem {dd}, not memorised {not}, undefined {undefined}; FLIPD at t0 = {} ({} trace); {:.1} s.",
            r.train.len(),
            r.dim,
            g.data.manifold.name(),
            r.samples.len(),
            r.copies(),
            g.t0,
            if r.exact_trace { "exact" } else { "Hutchinson" },
            self.seconds
        );
        let onpick = |f: fn(usize) -> Msg| {
            link.callback(move |e: Event| {
                let s: web_sys::HtmlSelectElement = e.target_unchecked_into();
                f(s.value().parse().unwrap_or(0))
            })
        };
        let regions = r.regions.iter().map(|s| {
            html! {
                <tr data-region={s.region.key()}>
                    <td>{ s.region.key() }</td>
                    <td class="num n">{ s.n }</td>
                    <td class="num true">{ format!("{}", s.true_lid) }</td>
                    <td class="num lpca">{ num(s.lpca) }</td>
                    <td class="num mle">{ num(s.mle) }</td>
                    <td class="num flipd">{ num(s.flipd) }</td>
                    <td class="num normal-bundle">{ num(s.normal_bundle) }</td>
                </tr>
            }
        });
        let offered = offered(r);
        let flagged = r
            .train
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.class, MemClass::OdMem | MemClass::DdMem))
            .take(LISTED)
            .map(|(i, p)| {
                let picked = self.picked == Some(i);
                html! {
                    <tr class={classes!("pick", picked.then_some("picked"))} data-point={i.to_string()} data-class={p.class.key()}
                        onclick={link.callback(move |_| Msg::PickPoint(i))}>
                        <td class="num">{ i }</td>
                        <td>{ p.region.key() }</td>
                        <td>{ p.class.label() }</td>
                        <td class="num">{ format!("{}", p.true_lid) }</td>
                        <td class="num">{ num(p.lid_star) }</td>
                        <td class="num">{ format!("{:.2}", p.flipd) }</td>
                        <td class="num">{ num(p.lpca) }</td>
                        <td class="num">{ num(p.mle) }</td>
                        <td class="num">{ num(p.normal_bundle) }</td>
                    </tr>
                }
            });
        let n_flagged = od + dd;
        html! {
            <div id="geo-results">
                <p id="geo-summary">{ summary }</p>
                <div class="row actions">
                    <label class="field"><span>{ "Colour by" }</span>
                        <select id="geo-colour" onchange={onpick(Msg::PickColour)}>
                            { for COLOURS.iter().enumerate().map(|(i, (key, c))| html! {
                                <option value={i.to_string()} data-key={*key} selected={self.colour == i}>{ c.label() }</option>
                            }) }
                        </select>
                    </label>
                    if r.dim >= 3 {
                        <label class="field"><span>{ "Projection" }</span>
                            <select id="geo-axes" onchange={onpick(Msg::PickAxes)}>
                                { for AXES.iter().enumerate().map(|(i, (a, b))| html! {
                                    <option value={i.to_string()} selected={self.axes == i}>{ format!("x{a} / x{b}") }</option>
                                }) }
                            </select>
                        </label>
                    }
                </div>
                <canvas id="geo-scatter" ref={self.scatter.clone()} width={SCATTER_SIZE.0.to_string()} height={SCATTER_SIZE.1.to_string()}></canvas>
                <h3>{ "Per region: every estimator's mean against the true dimension" }</h3>
                <table class="small" id="geo-regions">
                    <thead><tr><th>{ "region" }</th><th>{ "points" }</th><th>{ "true LID" }</th><th>{ "lPCA" }</th><th>{ "MLE" }</th><th>{ "FLIPD" }</th><th>{ "normal bundle" }</th></tr></thead>
                    <tbody>{ for regions }</tbody>
                </table>
                <canvas id="geo-estimators" ref={self.estimators.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                <h3>{ "FLIPD curve" }</h3>
                <p class="help">{ "FLIPD of one training point as t0 grows: a memorised point's curve stays below its true LID. Pick a point here or a row of the memorised points below." }</p>
                <div class="row actions">
                    <label class="field"><span>{ "Point" }</span>
                        <select id="geo-point" onchange={onpick(Msg::PickPoint)}>
                            { for offered.iter().map(|&i| {
                                let p = &r.train[i];
                                html! {
                                    <option value={i.to_string()} selected={self.picked == Some(i)}>
                                        { format!("point {i}: {}, {} (FLIPD {:.2}, true {})", p.region.key(), p.class.label(), p.flipd, p.true_lid) }
                                    </option>
                                }
                            }) }
                        </select>
                    </label>
                </div>
                if r.curve.is_empty() {
                    <p class="help">{ "This run computed no curve (curve_points is 0)." }</p>
                } else {
                    <canvas id="geo-curve" ref={self.curve.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
                }
                <h3>{ format!("Memorised training points ({n_flagged})") }</h3>
                if n_flagged == 0 {
                    <p class="help">{ "No training point is classed OD-Mem or DD-Mem." }</p>
                } else {
                    <table class="small" id="geo-flagged">
                        <thead><tr><th>{ "point" }</th><th>{ "region" }</th><th>{ "class" }</th><th>{ "true LID" }</th><th>{ "LID*" }</th><th>{ "FLIPD" }</th><th>{ "lPCA" }</th><th>{ "MLE" }</th><th>{ "normal bundle" }</th></tr></thead>
                        <tbody>{ for flagged }</tbody>
                    </table>
                    if n_flagged > LISTED { <p class="help">{ format!("{} more in training.csv.", n_flagged - LISTED) }</p> }
                }
                <div class="row actions exports">
                    { export_button(link, "training.csv", "training.csv", Msg::Export) }
                    { export_button(link, "samples.csv", "samples.csv", Msg::Export) }
                    { export_button(link, "flipd_curve.csv", "flipd_curve.csv", Msg::Export) }
                    { export_button(link, "geometry.json", "geometry.json", Msg::Export) }
                    { export_button(link, "scatter.png", "scatter PNG", Msg::Export) }
                    { export_button(link, "scatter.svg", "scatter SVG", Msg::Export) }
                    { export_button(link, "estimators.png", "estimators PNG", Msg::Export) }
                    { export_button(link, "estimators.svg", "estimators SVG", Msg::Export) }
                    { export_button(link, "flipd_curve.png", "curve PNG", Msg::Export) }
                    { export_button(link, "flipd_curve.svg", "curve SVG", Msg::Export) }
                </div>
            </div>
        }
    }
}
