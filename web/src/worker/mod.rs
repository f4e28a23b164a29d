//! The training worker: a dispatcher over one module per job. Every job has the same
//! shape: it starts from a spec (or from the kept model), runs step by step, posts its
//! progress, looks at [`cancelled`] between steps (yielding to the event loop so the
//! Cancel message is seen), and ends with a result message. [`run_exclusive`] runs one
//! job at a time and posts [`FromWorker::Finished`] when it ends, whatever the outcome.
//!
//! Jobs share nothing but the kept model ([`kept`], [`keep`]) and the WebGPU device, so
//! several workers could each run one.
//!
//! Adding a job: a module here with `pub async fn run(...) -> Result<(), String>`, a
//! `ToWorker` variant in `crate::protocol`, and one arm in [`on_message`].

use std::cell::{Cell, RefCell};

use js_sys::{Function, Promise, Reflect};
use mnemo_core::backend::Device;
use mnemo_core::{BackendKind, Checkpoint, Corpus, ExperimentSpec, ResumePoint};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::protocol::{FromWorker, ToWorker};

mod counterfactual;
mod exposure;
mod extraction;
mod geometry;
mod influence;
mod mitigation;
pub mod pool;
mod profile;
mod softprompt;
mod train;
mod weights;

/// The model a finished training run (or an import) left behind: what extraction and
/// soft prompts measure when they train none of their own.
#[derive(Clone)]
pub struct Kept {
    /// Its final weights.
    pub checkpoint: Checkpoint,
    /// The corpus it was trained on.
    pub corpus: Corpus,
    /// Where it was trained.
    pub backend: BackendKind,
    /// Whether it was trained packed (`training.packed`): soft prompts then shift the
    /// text behind them.
    pub packed: bool,
    /// For the user.
    pub description: String,
}

thread_local! {
    static CANCEL: Cell<bool> = const { Cell::new(false) };
    static BUSY: Cell<bool> = const { Cell::new(false) };
    static WGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Send a message to the page.
pub fn post(msg: &FromWorker) {
    match serde_wasm_bindgen::to_value(msg) {
        Ok(v) => {
            let _ = scope().post_message(&v);
        }
        Err(e) => web_sys::console::error_1(&format!("cannot serialise {msg:?}: {e}").into()),
    }
}

/// Milliseconds on the worker's clock.
pub fn now_ms() -> f64 {
    scope().performance().map(|p| p.now()).unwrap_or(0.0)
}

/// Let the event loop run (a Cancel message is handled then).
pub async fn yield_now() {
    sleep_ms(0).await
}

/// Wait `ms` milliseconds, letting the event loop run.
pub async fn sleep_ms(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(p).await;
}

/// This worker's memory: the size of its WebAssembly heap, in MiB.
pub fn memory_mib() -> f64 {
    Reflect::get(&wasm_bindgen::memory(), &"buffer".into())
        .ok()
        .and_then(|b| Reflect::get(&b, &"byteLength".into()).ok())
        .and_then(|n| n.as_f64())
        .unwrap_or(0.0)
        / (1024.0 * 1024.0)
}

/// Whether the user asked the running job to stop.
pub fn cancelled() -> bool {
    CANCEL.with(Cell::get)
}

/// The kept model, if any.
pub fn kept() -> Option<Kept> {
    KEPT.with(|k| k.borrow().clone())
}

/// Keep `model` as the last trained model and tell the page (`spec` is the experiment
/// it belongs to).
pub fn keep(model: Kept, spec: &ExperimentSpec) {
    post(&FromWorker::ModelKept {
        description: model.description.clone(),
        spec: Box::new(spec.clone()),
    });
    KEPT.with(|k| *k.borrow_mut() = Some(model));
}

/// The kept model, or the message a job that needs one gives.
pub fn kept_or_err() -> Result<Kept, String> {
    kept().ok_or_else(|| "train a model first (for example with “Run the demo”)".into())
}

/// The label of every token id of the corpus's tokenizer (shown as text).
pub fn token_labels(corpus: &Corpus) -> Vec<String> {
    (0..corpus.tokenizer.vocab_size() as u32)
        .map(|id| corpus.tokenizer.token_label(id))
        .collect()
}

/// Ask `navigator.gpu` for an adapter without touching burn's runtime.
async fn probe_webgpu() -> Result<String, String> {
    let nav = scope().navigator();
    let gpu = Reflect::get(&nav, &"gpu".into()).map_err(|_| "navigator.gpu is unreadable")?;
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser does not offer WebGPU (navigator.gpu is missing)".into());
    }
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into())
        .map_err(|_| "navigator.gpu.requestAdapter is missing")?
        .dyn_into()
        .map_err(|_| "navigator.gpu.requestAdapter is not a function")?;
    let promise: Promise = request
        .call0(&gpu)
        .map_err(|e| format!("requestAdapter failed: {e:?}"))?
        .dyn_into()
        .map_err(|_| "requestAdapter did not return a promise")?;
    let adapter = JsFuture::from(promise)
        .await
        .map_err(|e| format!("requestAdapter failed: {e:?}"))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("the browser has WebGPU but it offers no adapter (no usable GPU)".into());
    }
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let field = |k: &str| {
        Reflect::get(&info, &k.into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
    };
    let parts: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|k| field(k))
        .collect();
    Ok(if parts.is_empty() {
        "WebGPU adapter".to_string()
    } else {
        parts.join(" ")
    })
}

/// The device of `kind` (WebGPU is initialised once, on first use).
pub async fn device_for(kind: BackendKind) -> Result<Device, String> {
    match kind {
        BackendKind::Wgpu => {
            if let Some(d) = WGPU.with(|w| w.borrow().clone()) {
                return Ok(d);
            }
            let d = Device::wgpu_options()
                .init_async()
                .await
                .map_err(|e| format!("WebGPU could not start: {e}"))?;
            WGPU.with(|w| *w.borrow_mut() = Some(d.clone()));
            Ok(d)
        }
        other => other
            .cpu_device()
            .ok_or_else(|| format!("{} is not part of this build", other.label())),
    }
}

/// Run one job at a time: refuse a second while one runs, reset Cancel, report errors,
/// and say when it ended.
fn run_exclusive(job: impl std::future::Future<Output = Result<(), String>> + 'static) {
    if BUSY.with(|b| b.replace(true)) {
        post(&FromWorker::Failed {
            message: "a run is already in progress".into(),
        });
        return;
    }
    CANCEL.with(|c| c.set(false));
    spawn_local(async move {
        if let Err(message) = job.await {
            post(&FromWorker::Failed { message });
        }
        BUSY.with(|b| b.set(false));
        post(&FromWorker::Finished);
    });
}

/// Whether a job is running.
pub fn busy() -> bool {
    BUSY.with(Cell::get)
}

fn on_message(event: MessageEvent) {
    let msg: ToWorker = match serde_wasm_bindgen::from_value(event.data()) {
        Ok(m) => m,
        Err(e) => {
            post(&FromWorker::Failed {
                message: format!("the worker received a malformed message: {e}"),
            });
            return;
        }
    };
    match msg {
        ToWorker::Cancel => CANCEL.with(|c| c.set(true)),
        ToWorker::Probe => spawn_local(async {
            post(&FromWorker::Probe {
                webgpu: probe_webgpu().await,
            })
        }),
        ToWorker::Train { spec, backend } => {
            run_exclusive(async move { train::run(spec, backend, None, true).await.map(|_| ()) })
        }
        ToWorker::Resume {
            spec,
            backend,
            point,
        } => run_exclusive(async move {
            let point = ResumePoint::from_bytes(&point).map_err(|e| e.to_string())?;
            train::run(spec, backend, Some(point), true)
                .await
                .map(|_| ())
        }),
        ToWorker::Profile {
            runs,
            backend,
            workers,
        } => run_exclusive(profile::run(runs, backend, workers)),
        ToWorker::ProfilePart { spec, backend, j } => {
            run_exclusive(profile::part(spec, backend, j))
        }
        ToWorker::Counterfactual {
            spec,
            backend,
            workers,
        } => run_exclusive(counterfactual::run(spec, backend, workers)),
        ToWorker::Member { spec, backend, j } => {
            run_exclusive(counterfactual::member(spec, backend, j))
        }
        ToWorker::Extract { settings, train } => run_exclusive(extraction::run(settings, train)),
        ToWorker::SoftPrompt {
            spec,
            backend,
            train,
        } => run_exclusive(softprompt::run(spec, backend, train)),
        ToWorker::Influence { spec, backend } => run_exclusive(influence::run(spec, backend)),
        ToWorker::Deletion {
            spec,
            backend,
            result,
            workers,
        } => run_exclusive(influence::deletion(spec, backend, *result, workers)),
        ToWorker::Retrain {
            spec,
            backend,
            job,
            tests,
            d,
        } => run_exclusive(influence::retrain(spec, backend, job, tests, d)),
        ToWorker::Mitigate {
            spec,
            backend,
            train,
            workers,
        } => run_exclusive(mitigation::run(spec, backend, train, workers)),
        ToWorker::MitigationPart {
            spec,
            backend,
            ctx,
            j,
        } => run_exclusive(mitigation::part(spec, backend, *ctx, j)),
        ToWorker::Geometry { spec, backend } => run_exclusive(geometry::run(spec, backend)),
        ToWorker::Exposure { spec, backend } => run_exclusive(exposure::run(spec, backend)),
        ToWorker::ExposureUnlearn { spec, settings } => {
            run_exclusive(exposure::unlearn(spec, settings))
        }
        ToWorker::ExportWeights => weights::export(),
        ToWorker::ImportWeights {
            bytes,
            name,
            spec,
            config,
            tokenizer,
        } => match config {
            Some(config) => weights::import_hf(&bytes, &name, &config, tokenizer, spec),
            None => weights::import(&bytes, &name, spec),
        },
    }
}

/// Listen for the page's messages and say so.
pub fn start() {
    console_error_panic_hook::set_once();
    let handler = Closure::<dyn FnMut(MessageEvent)>::new(on_message);
    scope().set_onmessage(Some(handler.as_ref().unchecked_ref()));
    handler.forget();
    post(&FromWorker::Ready);
}
