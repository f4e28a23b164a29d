//! The "Memorisation profile" view (Lesci et al., 2024): one model trained and its
//! panel estimated by difference-in-differences, or the size comparison; the heat map
//! with the numbers of the cell under the pointer, the aggregate charts and exports.

use mnemo_core::ExperimentSpec;
use mnemo_measures::did::DidResult;
use mnemo_plots::did::{
    HeatmapLayout, heatmap_cell_at, instantaneous_chart, persistent_chart, profile_heatmap,
    profile_heatmap_layout, residual_chart, simple_chart, svg_of,
};
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use super::{CHART_SIZE, connect, export_button};
use crate::chart::draw_on;
use crate::download::{download_canvas, download_text};
use crate::hub::{Hub, JobRequest, Keep, ViewEvent};
use crate::protocol::{FromWorker, ToWorker};
use crate::store::RunResult;

/// This view's id.
pub const ID: &str = "profile";

const HEATMAP_SIZE: (u32, u32) = (760, 420);

/// The model widths of the size comparison.
pub const COMPARE_WIDTHS: [usize; 3] = [32, 64, 128];

/// Where the memorisation profile stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileState {
    /// Nothing asked.
    Idle,
    /// Training model `index` of `count`.
    Training {
        /// 1-based.
        index: usize,
        /// Models in all.
        count: usize,
        /// Steps done and in all.
        step: (usize, usize),
    },
    /// Evaluating the panel.
    Evaluating {
        /// Checkpoints done.
        done: usize,
        /// Checkpoints in all.
        total: usize,
    },
    /// All results in.
    Ready {
        /// Seconds evaluating the (last) panel.
        panel_s: f64,
        /// Seconds estimating.
        estimate_s: f64,
    },
    /// Stopped by the user before a result.
    Cancelled,
    /// Could not run.
    Failed(String),
}

/// Messages of the view.
pub enum Msg {
    /// The hub changed.
    Hub(Hub),
    /// From the shell.
    Event(ViewEvent),
    /// Run the profile demo (one model) or the size comparison (`true`).
    Run(bool),
    /// Pointer over the heat map, in canvas pixels (`None` = left it).
    Hover(Option<(f64, f64)>),
    /// Export a chart or table.
    Export(&'static str),
}

/// The view.
pub struct ProfileView {
    hub: Hub,
    _hub: ContextHandle<Hub>,
    state: ProfileState,
    profiles: Vec<(String, DidResult)>,
    count: usize,
    /// On a pool: `(models done, workers, the largest heap in MiB)`.
    pool: Option<(usize, usize, f64)>,
    hover: Option<(f64, f64)>,
    layout: HeatmapLayout,
    dirty: bool,
    heatmap: NodeRef,
    persistent: NodeRef,
    instantaneous: NodeRef,
    residual: NodeRef,
    simple: NodeRef,
}

impl ProfileView {
    fn start(&mut self, runs: Vec<(ExperimentSpec, String)>) {
        let Some((first, _)) = runs.first().cloned() else {
            return;
        };
        self.profiles.clear();
        self.count = runs.len();
        self.pool = None;
        self.state = ProfileState::Training {
            index: 1,
            count: self.count,
            step: (0, 0),
        };
        self.hub.start(JobRequest {
            view: ID,
            spec: first,
            job: ToWorker::Profile {
                runs,
                backend: self.hub.state.backend,
                workers: self.hub.state.workers,
            },
            keep: Keep::New,
        });
    }

    fn on_worker(&mut self, msg: &FromWorker) {
        match msg {
            FromWorker::Started(info) => {
                self.state = ProfileState::Training {
                    index: self.profiles.len() + 1,
                    count: self.count,
                    step: (0, info.total_steps),
                }
            }
            FromWorker::Step { progress } => {
                if let ProfileState::Training { step, .. } = &mut self.state {
                    *step = (progress.step, progress.total_steps);
                }
            }
            &FromWorker::PanelProgress { done, total } => {
                self.state = ProfileState::Evaluating { done, total }
            }
            &FromWorker::ProfilesProgress {
                done,
                workers,
                memory_mib,
                ..
            } => {
                self.pool = Some((done, workers, memory_mib));
            }
            FromWorker::Profile {
                label,
                result,
                panel_s,
                estimate_s,
            } => {
                self.profiles.push((label.clone(), (**result).clone()));
                self.dirty = true;
                // On a pool, the models of this worker and of its helpers go on.
                self.state = if self.pool.is_some() && self.profiles.len() < self.count {
                    ProfileState::Training {
                        index: self.profiles.len() + 1,
                        count: self.count,
                        step: (0, 0),
                    }
                } else {
                    ProfileState::Ready {
                        panel_s: *panel_s,
                        estimate_s: *estimate_s,
                    }
                };
                self.hub.keep_result(RunResult::Profiles(
                    self.profiles.clone(),
                    *panel_s,
                    *estimate_s,
                ));
            }
            FromWorker::Cancelled { .. } if !matches!(self.state, ProfileState::Ready { .. }) => {
                self.state = ProfileState::Cancelled
            }
            FromWorker::Failed { message } => self.state = ProfileState::Failed(message.clone()),
            _ => {}
        }
    }

    fn export(&self, what: &str) -> Result<(), String> {
        let (_, result) = self.profiles.last().ok_or("no profile yet")?;
        let comparisons: Vec<(String, &DidResult)> =
            self.profiles.iter().map(|(l, r)| (l.clone(), r)).collect();
        let svg = |name: &str, text: String| download_text(name, "image/svg+xml", &text);
        match what {
            "heatmap.png" => download_canvas(self.heatmap.cast(), "profile.png"),
            "persistent.png" => download_canvas(self.persistent.cast(), what),
            "instantaneous.png" => download_canvas(self.instantaneous.cast(), what),
            "residual.png" => download_canvas(self.residual.cast(), what),
            "simple.png" => download_canvas(self.simple.cast(), what),
            "heatmap.svg" => svg(
                "profile.svg",
                svg_of(HEATMAP_SIZE, |a| profile_heatmap(a, result)),
            ),
            "persistent.svg" => svg(
                what,
                svg_of(CHART_SIZE, |a| persistent_chart(a, &comparisons)),
            ),
            "instantaneous.svg" => {
                svg(what, svg_of(CHART_SIZE, |a| instantaneous_chart(a, result)))
            }
            "residual.svg" => svg(what, svg_of(CHART_SIZE, |a| residual_chart(a, result))),
            "simple.svg" => svg(what, svg_of(CHART_SIZE, |a| simple_chart(a, result))),
            "profile.json" => download_text(
                what,
                "application/json",
                &serde_json::to_string_pretty(&self.profiles).map_err(|e| e.to_string())?,
            ),
            name => crate::download::download_table(mnemo_measures::export::tables(result), name),
        }
    }

    fn charts(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let Some((_, result)) = self.profiles.last() else {
            return html! {};
        };
        let export = |what, label| export_button(link, what, label, Msg::Export);
        let tooltip = self.hover.and_then(|(x, y)| heatmap_cell_at(result, &self.layout, x, y)).map(|c| {
            format!(
                "cohort {} · checkpoint {}{} · memorisation {:.3} (band {:.3} to {:.3}) · SE {:.3} · {}",
                c.cohort, c.checkpoint,
                if c.checkpoint < c.cohort { " (placebo: before training on it)" } else { "" },
                c.memorisation, -c.upper, -c.lower, c.se,
                if c.significant { "significant" } else { "not significant" })
        });
        let onmousemove = link.callback(|e: MouseEvent| {
            let canvas: HtmlCanvasElement = e.target_unchecked_into();
            let sx = canvas.width() as f64 / canvas.client_width().max(1) as f64;
            let sy = canvas.height() as f64 / canvas.client_height().max(1) as f64;
            Msg::Hover(Some((e.offset_x() as f64 * sx, e.offset_y() as f64 * sy)))
        });
        let overall = &result.overall;
        let compare = (self.profiles.len() > 1).then(|| {
            self.profiles
                .iter()
                .map(|(label, r)| {
                    let at = |e: i64| {
                        r.event
                            .iter()
                            .find(|a| a.key == e)
                            .map_or(f64::NAN, |a| a.memorisation)
                    };
                    format!(
                        "{label}: {:.3} right after training, {:.3} three checkpoints later",
                        at(0),
                        at(3)
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ")
        });
        let canvas = |id: &'static str, node: &NodeRef| {
            html! {
                <canvas id={id} ref={node.clone()} width={CHART_SIZE.0.to_string()} height={CHART_SIZE.1.to_string()}></canvas>
            }
        };
        html! {
            <>
            if let Some(text) = compare { <p id="compare-summary">{ format!("Persistent memorisation (nats/token) — {text}") }</p> }
            <p id="profile-summary">{ format!(
                "{} instances ({} never trained) in {} cohorts; average memorisation after training ",
                result.instances, result.never_trained, result.cohorts.len()) }
                <span id="profile-average">{ format!("{:.3}", overall.memorisation) }</span>
                { format!(" nats/token (band {:.3} to {:.3}).", -overall.upper, -overall.lower) }</p>
            <canvas id="profile-heatmap" ref={self.heatmap.clone()} width={HEATMAP_SIZE.0.to_string()} height={HEATMAP_SIZE.1.to_string()}
                data-plot-x={format!("{},{}", self.layout.x.start, self.layout.x.end)}
                data-plot-y={format!("{},{}", self.layout.y.start, self.layout.y.end)}
                {onmousemove} onmouseleave={link.callback(|_| Msg::Hover(None))}></canvas>
            <p id="cell-tooltip" class="mono">{ tooltip.unwrap_or_else(|| "Point at a cell for its numbers. Muted cells: the band includes 0. Dots: placebo cells before training.".into()) }</p>
            <div class="row actions">{ export("heatmap.png", "PNG") }{ export("heatmap.svg", "SVG") }{ export("att_gt.csv", "CSV") }{ export("profile.json", "JSON") }</div>
            { canvas("persistent-chart", &self.persistent) }
            <div class="row actions">{ export("persistent.png", "PNG") }{ export("persistent.svg", "SVG") }{ export("event.csv", "CSV") }</div>
            { canvas("instantaneous-chart", &self.instantaneous) }
            <div class="row actions">{ export("instantaneous.png", "PNG") }{ export("instantaneous.svg", "SVG") }{ export("instantaneous.csv", "CSV") }</div>
            { canvas("residual-chart", &self.residual) }
            <div class="row actions">{ export("residual.png", "PNG") }{ export("residual.svg", "SVG") }{ export("residual.csv", "CSV") }</div>
            { canvas("simple-chart", &self.simple) }
            <div class="row actions">{ export("simple.png", "PNG") }{ export("simple.svg", "SVG") }{ export("simple.csv", "CSV") }</div>
            </>
        }
    }
}

impl Component for ProfileView {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let (hub, handle) = connect(ctx.link(), ID, Msg::Hub, Msg::Event);
        ProfileView {
            hub,
            _hub: handle,
            state: ProfileState::Idle,
            profiles: Vec::new(),
            count: 0,
            pool: None,
            hover: None,
            layout: HeatmapLayout::default(),
            dirty: false,
            heatmap: NodeRef::default(),
            persistent: NodeRef::default(),
            instantaneous: NodeRef::default(),
            residual: NodeRef::default(),
            simple: NodeRef::default(),
        }
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Hub(hub) => self.hub = hub,
            Msg::Event(ViewEvent::Worker(m)) => self.on_worker(&m),
            Msg::Event(ViewEvent::Start(spec)) => {
                let label = format!("d_model {}", spec.model.d_model);
                self.start(vec![((*spec).clone(), label)]);
            }
            Msg::Event(ViewEvent::Restore(run)) => {
                self.profiles.clear();
                self.state = ProfileState::Idle;
                for r in &run.1.results {
                    if let RunResult::Profiles(p, panel_s, estimate_s) = r {
                        self.profiles.clone_from(p);
                        self.state = ProfileState::Ready {
                            panel_s: *panel_s,
                            estimate_s: *estimate_s,
                        };
                        self.dirty = true;
                    }
                }
            }
            Msg::Event(ViewEvent::Resumed(_)) => return false,
            Msg::Run(compare) => {
                if !self.hub.state.can_start() {
                    return false;
                }
                let base = ExperimentSpec::profile_demo();
                let runs = if compare {
                    COMPARE_WIDTHS
                        .iter()
                        .map(|&d| {
                            let mut s = base.clone();
                            s.model.d_model = d;
                            (s, format!("d_model {d}"))
                        })
                        .collect()
                } else {
                    vec![(base.clone(), format!("d_model {}", base.model.d_model))]
                };
                self.start(runs);
            }
            Msg::Hover(h) => self.hover = h,
            Msg::Export(what) => {
                if let Err(e) = self.export(what) {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
        }
        true
    }

    fn rendered(&mut self, ctx: &Context<Self>, _first: bool) {
        if !self.dirty {
            return;
        }
        let Some((_, result)) = self.profiles.last() else {
            return;
        };
        self.dirty = false;
        let comparisons: Vec<(String, &DidResult)> =
            self.profiles.iter().map(|(l, r)| (l.clone(), r)).collect();
        if let Some(c) = self.heatmap.cast::<HtmlCanvasElement>() {
            let mut layout = None;
            draw_on(c, |a| {
                layout = Some(profile_heatmap_layout(a, result)?);
                Ok(())
            });
            if let Some(layout) = layout.filter(|l| *l != self.layout) {
                // Re-render once so the page publishes where the plot landed.
                self.layout = layout;
                ctx.link().send_message(Msg::Hover(self.hover));
            }
        }
        if let Some(c) = self.persistent.cast::<HtmlCanvasElement>() {
            draw_on(c, |a| persistent_chart(a, &comparisons));
        }
        if let Some(c) = self.instantaneous.cast::<HtmlCanvasElement>() {
            draw_on(c, |a| instantaneous_chart(a, result));
        }
        if let Some(c) = self.residual.cast::<HtmlCanvasElement>() {
            draw_on(c, |a| residual_chart(a, result));
        }
        if let Some(c) = self.simple.cast::<HtmlCanvasElement>() {
            draw_on(c, |a| simple_chart(a, result));
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let blocked = !self.hub.state.can_start();
        let (state_name, status) = match &self.state {
            ProfileState::Idle => ("idle", "Train a model on 480 invented facts, each seen once, and measure how much it memorised each one when it saw it and later.".to_string()),
            ProfileState::Training { index, count, step: (s, t) } => ("training", match self.pool {
                Some((done, workers, mib)) => format!("Training {count} models on {workers} workers (up to {mib:.0} MiB each): {done} done; this worker's model at step {s} of {t}…"),
                None => format!("Training model {index} of {count}… step {s} of {t}"),
            }),
            ProfileState::Evaluating { done, total } => ("evaluating", format!("Evaluating the panel: checkpoint {done} of {total}…")),
            ProfileState::Ready { panel_s, estimate_s } => ("ready", format!(
                "Profile ready: panel evaluated in {panel_s:.1} s, estimated with 1000 bootstrap draws in {estimate_s:.2} s.")),
            ProfileState::Cancelled => ("cancelled", "Cancelled before a profile was ready.".to_string()),
            ProfileState::Failed(m) => ("failed", format!("The profile could not be made: {m}")),
        };
        let bar = match &self.state {
            ProfileState::Evaluating { done, total } => {
                html! { <progress id="panel-progress" max={total.to_string()} value={done.to_string()}></progress> }
            }
            ProfileState::Training { step: (s, t), .. } => {
                html! { <progress id="profile-train-progress" max={(*t).max(1).to_string()} value={s.to_string()}></progress> }
            }
            _ => html! {},
        };
        html! {
            <section class="panel" id="profile-panel">
                <h2>{ "Memorisation profile" }</h2>
                <p class="help">{ "Difference-in-differences (Lesci et al., 2024): how much better the model predicts an instance because it was trained on it, compared with held-out instances, at each checkpoint after training on it. Positive = memorised." }</p>
                <div class="row actions">
                    <button id="profile-button" class="primary" onclick={link.callback(|_| Msg::Run(false))} disabled={blocked}>{ "Run the profile demo" }</button>
                    <button id="compare-button" onclick={link.callback(|_| Msg::Run(true))} disabled={blocked}>
                        { format!("Compare model sizes (d_model {})", COMPARE_WIDTHS.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")) }</button>
                </div>
                <p id="profile-status" data-state={state_name}>{ status }</p>
                { bar }
                { self.charts(ctx) }
            </section>
        }
    }
}
