//! The page's header: the name, the tagline, the backend badge and the backend switch.

use mnemo_core::BackendKind;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::hub::Chrome;
use crate::worker::pool::MAX_WORKERS;

/// Where the user wants to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// WebGPU when there is an adapter, otherwise the CPU.
    Auto,
    /// Always the CPU.
    Cpu,
    /// WebGPU (only offered when there is an adapter).
    WebGpu,
}

/// The header. `webgpu` is the worker's probe (`None` while it is asked).
/// This machine's cores (`navigator.hardwareConcurrency`), 1 if unknown.
pub fn cores() -> usize {
    web_sys::window()
        .map_or(1, |w| w.navigator().hardware_concurrency() as usize)
        .max(1)
}

/// Workers by default: every core, less one for the page when there are more than two.
pub fn default_workers() -> usize {
    let n = cores();
    (if n > 2 { n - 1 } else { n }).min(MAX_WORKERS)
}

pub fn header(
    webgpu: &Option<Result<String, String>>,
    (choice, on_choice): (BackendChoice, Callback<BackendChoice>),
    backend: BackendKind,
    (workers, on_workers): (usize, Callback<usize>),
    chrome: &Chrome,
    running: bool,
) -> Html {
    let gpu = backend == BackendKind::Wgpu;
    let on_workers = on_workers.reform(|e: Event| {
        let s: HtmlSelectElement = e.target_unchecked_into();
        s.value().parse().unwrap_or(1)
    });
    let cores = cores();
    let most = cores.clamp(2, MAX_WORKERS);
    let onchange = on_choice.reform(|e: Event| {
        let s: HtmlSelectElement = e.target_unchecked_into();
        match s.value().as_str() {
            "cpu" => BackendChoice::Cpu,
            "webgpu" => BackendChoice::WebGpu,
            _ => BackendChoice::Auto,
        }
    });
    let title = match webgpu {
        Some(Ok(a)) => a.clone(),
        Some(Err(e)) => e.clone(),
        None => "checking for WebGPU".into(),
    };
    html! {
        <header>
            <h1>{ "Mnemo" }</h1>
            if !chrome.embedded { <p class="tagline">{ "Train a small language model in your browser and watch what it memorises." }</p> }
            <div class={classes!("backend", chrome.hides("backend").then_some("hidden"))}>
                <span id="backend-badge" class={classes!("badge", if gpu { "gpu" } else { "cpu" })} data-backend={if gpu { "webgpu" } else { "cpu" }} {title}>
                    { if webgpu.is_none() { "checking…" } else if gpu { "WebGPU" } else { "CPU" } }
                </span>
                <label>{ "Compute: " }
                    <select id="backend-select" {onchange} disabled={running}>
                        <option value="auto" selected={choice == BackendChoice::Auto}>{ "Automatic" }</option>
                        <option value="webgpu" disabled={!matches!(webgpu, Some(Ok(_)))} selected={choice == BackendChoice::WebGpu}>{ "WebGPU" }</option>
                        <option value="cpu" selected={choice == BackendChoice::Cpu}>{ "CPU" }</option>
                    </select>
                </label>
                <label title={format!("Independent parts of a job (ensemble members, case-deletion retrains) train at once, each in its own worker; the results do not depend on it. This machine has {cores} cores. WebGPU trains one at a time.")}>{ "Workers: " }
                    <select id="workers-select" onchange={on_workers} disabled={running || gpu}>
                        { for (1..=most).map(|w| html! { <option value={w.to_string()} selected={w == workers}>{ w }</option> }) }
                    </select>
                </label>
            </div>
        </header>
    }
}
