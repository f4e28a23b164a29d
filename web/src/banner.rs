//! The page's header: the name, the tagline, the backend badge and the backend switch.

use mnemo_core::BackendKind;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::hub::Chrome;

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
pub fn header(
    webgpu: &Option<Result<String, String>>,
    choice: BackendChoice,
    backend: BackendKind,
    chrome: &Chrome,
    running: bool,
    on_choice: Callback<BackendChoice>,
) -> Html {
    let gpu = backend == BackendKind::Wgpu;
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
            </div>
        </header>
    }
}
