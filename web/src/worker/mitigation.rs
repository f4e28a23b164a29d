//! Job: TinyMem's unlearning methods (`mnemo_measures::unlearn`) on a built-in model
//! (fetched from the page's bundle), on the last trained model, or on the spec's model
//! trained first. The untouched model is measured once, then the methods of the spec's
//! `mitigation` section run one after another, each on a copy; every method posts its
//! row as it finishes. Methods report between their steps through [`Sink`], which posts
//! the progress and yields to the event loop, so Cancel stops the method in progress;
//! the finished ones make the result.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;

use js_sys::{ArrayBuffer, Uint8Array};
use mnemo_core::{BackendKind, Checkpoint, Corpus, ExperimentSpec, builtin};
use mnemo_measures::tinymem::shown_examples;
use mnemo_measures::unlearn::{
    MitigationOptions, MitigationSummary, ProgressSink, StepProgress, UnlearnError, prepare,
    run_method,
};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Response, WorkerGlobalScope};

use super::{cancelled, device_for, kept_or_err, now_ms, post, token_labels, yield_now};
use crate::protocol::{FromWorker, MitigationView};

/// Posts a method's progress (at most every 50 ms) and yields, so Cancel is seen.
struct Sink {
    run: usize,
    runs: usize,
    start: f64,
    last: f64,
}

impl ProgressSink for Sink {
    fn step(&mut self, p: StepProgress) -> Pin<Box<dyn Future<Output = ControlFlow<()>> + '_>> {
        Box::pin(async move {
            if now_ms() - self.last > 50.0 || p.done == p.total {
                post(&FromWorker::MitigationProgress {
                    run: self.run,
                    runs: self.runs,
                    step: p,
                    elapsed_s: (now_ms() - self.start) / 1000.0,
                });
                yield_now().await;
                self.last = now_ms();
            }
            if cancelled() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
    }
}

/// The bytes at `url`, relative to the worker's script.
async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let failed = |e: wasm_bindgen::JsValue| format!("could not load {url}: {e:?}");
    let resp: Response = JsFuture::from(scope.fetch_with_str(url))
        .await
        .map_err(failed)?
        .dyn_into()
        .map_err(failed)?;
    if !resp.ok() {
        return Err(format!(
            "could not load {url}: the server answered {} {}",
            resp.status(),
            resp.status_text()
        ));
    }
    let buf: ArrayBuffer = JsFuture::from(resp.array_buffer().map_err(failed)?)
        .await
        .map_err(failed)?
        .dyn_into()
        .map_err(failed)?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// The model to start from: `(weights, corpus, description, backend)`.
async fn model_of(
    spec: &ExperimentSpec,
    backend: BackendKind,
    name: Option<&str>,
    train: bool,
) -> Result<Option<(Checkpoint, Corpus, String, BackendKind)>, String> {
    if let Some(name) = name {
        let b = builtin::get(name).map_err(|e| e.to_string())?;
        if !b.shipped {
            return Err(builtin::BuiltinError::NotShipped(b.name).to_string());
        }
        let packed = fetch_bytes(&b.file()).await?;
        let ck = b.checkpoint_from(&packed).map_err(|e| e.to_string())?;
        let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
            .map_err(|e| e.to_string())?;
        return Ok(Some((ck, corpus, format!("built-in {name}"), backend)));
    }
    if train
        && super::train::run(spec.clone(), backend, None, false)
            .await?
            .is_none()
    {
        return Ok(None);
    }
    let kept = kept_or_err()?;
    Ok(Some((
        kept.checkpoint,
        kept.corpus,
        kept.description,
        kept.backend,
    )))
}

/// Run the spec's mitigation section.
pub async fn run(spec: ExperimentSpec, backend: BackendKind, train: bool) -> Result<(), String> {
    spec.validate().map_err(|e| e.to_string())?;
    let section = spec
        .mitigation
        .clone()
        .ok_or("the spec has no mitigation section")?;
    let start = now_ms();
    let Some((ck, corpus, label, backend)) =
        model_of(&spec, backend, section.model.as_deref(), train).await?
    else {
        return Ok(());
    };
    ck.fits(&spec.model, corpus.tokenizer.vocab_size())
        .map_err(|m| format!("the model does not fit the spec: {m}"))?;
    mnemo_measures::tinymem::layout(&corpus).map_err(|e| e.to_string())?;
    let device = device_for(backend).await?;
    let options = MitigationOptions {
        retain: section.retain,
    };
    let ctx = prepare(ck, corpus, options, &spec, &device)
        .await
        .map_err(|e| e.to_string())?;
    let mut view = MitigationView {
        summary: MitigationSummary::new(&ctx, &spec.name, &label),
        builtin: section.model.clone(),
        labels: token_labels(&ctx.corpus),
        examples: shown_examples(&ctx.corpus, &ctx.before).map_err(|e| e.to_string())?,
        before: ctx.before.generated(),
        after: Vec::new(),
    };
    post(&FromWorker::MitigationReady {
        view: Box::new(view.clone()),
        prepare_s: (now_ms() - start) / 1000.0,
    });
    yield_now().await;
    let runs = section.methods.len();
    let clock = || now_ms() / 1000.0;
    let mut stopped = cancelled();
    for (j, settings) in section.methods.iter().enumerate() {
        if stopped {
            break;
        }
        let mut sink = Sink {
            run: j,
            runs,
            start: now_ms(),
            last: 0.0,
        };
        match run_method(&ctx, settings, spec.seed, &device, &clock, &mut sink).await {
            Ok(outcome) => {
                let generated = outcome.after.generated();
                post(&FromWorker::MitigationMethod {
                    result: Box::new(outcome.result.clone()),
                    generated: generated.clone(),
                });
                view.push(outcome.result, generated);
                yield_now().await;
                stopped = cancelled();
            }
            Err(UnlearnError::Cancelled) => stopped = true,
            Err(e) => return Err(format!("{}: {e}", settings.method.name())),
        }
    }
    if stopped && view.summary.results.is_empty() {
        post(&FromWorker::Cancelled { step: 0 });
        return Ok(());
    }
    let cancelled = view.summary.results.len() < runs;
    post(&FromWorker::Mitigation {
        view: Box::new(view),
        cancelled,
    });
    Ok(())
}
