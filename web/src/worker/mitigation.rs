//! Job: TinyMem's unlearning methods (`mnemo_measures::unlearn`) on a built-in model
//! (fetched from the page's bundle), on the last trained model, or on the spec's model
//! trained first. The untouched model is measured once, then the methods of the spec's
//! `mitigation` section run, each on a copy. They are independent, so they are a pool's
//! parts ([`drive`]): with `workers > 1` on the CPU backend, helpers run methods (each is
//! handed the measured context, so the untouched model is measured once) while this
//! worker runs others. A method's
//! numbers depend only on the model, the corpus, its settings and the seed, so the rows
//! are those one worker computes; they are posted in the section's order as they are
//! ready. Methods report between their steps through [`Sink`], which posts the progress
//! and yields to the event loop, so Cancel stops the methods in progress; the finished
//! ones make the result.

use std::cell::RefCell;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::rc::Rc;

use js_sys::{ArrayBuffer, Uint8Array};
use mnemo_core::backend::Device;
use mnemo_core::{BackendKind, Checkpoint, Corpus, ExperimentSpec, builtin};
use mnemo_measures::tinymem::shown_examples;
use mnemo_measures::unlearn::{
    MethodResult, MitigationContext, MitigationOptions, MitigationSummary, ProgressSink,
    StepProgress, UnlearnError, prepare, run_method,
};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Response, WorkerGlobalScope};

use super::pool::{InOrder, OwnTask, Parts, drive};
use super::{
    cancelled, device_for, kept_or_err, memory_mib, now_ms, post, token_labels, yield_now,
};
use crate::protocol::{FromWorker, MitigationView, ToWorker};

/// Posts the progress of the method this worker runs (at most every 50 ms) and yields, so
/// Cancel and the helpers' answers are seen. A helper's sink posts nothing: its parent
/// reports the pool's progress.
struct Sink {
    run: usize,
    runs: usize,
    start: f64,
    last: f64,
    /// `(methods done, workers, the largest heap in MiB)`, shared with the job; `None`
    /// in a helper.
    pool: Option<Rc<RefCell<(usize, usize, f64)>>>,
}

impl ProgressSink for Sink {
    fn step(&mut self, p: StepProgress) -> Pin<Box<dyn Future<Output = ControlFlow<()>> + '_>> {
        Box::pin(async move {
            if now_ms() - self.last > 50.0 || p.done == p.total {
                if let Some(pool) = &self.pool {
                    let (done, workers, memory_mib) = *pool.borrow();
                    post(&FromWorker::MitigationProgress {
                        run: self.run,
                        runs: self.runs,
                        step: p,
                        elapsed_s: (now_ms() - self.start) / 1000.0,
                        done,
                        workers,
                        memory_mib,
                    });
                }
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

/// A method's row and what its edited model generated.
type Row = (MethodResult, Vec<Vec<u32>>);

/// Run method `j` of the section on a copy of `ctx`'s model.
async fn method(
    ctx: &MitigationContext,
    spec: &ExperimentSpec,
    j: usize,
    device: &Device,
    sink: &mut Sink,
) -> Result<Row, UnlearnError> {
    let settings = spec
        .mitigation
        .as_ref()
        .and_then(|m| m.methods.get(j))
        .ok_or_else(|| UnlearnError::Checkpoint(format!("the spec has no method {}", j + 1)))?;
    let clock = || now_ms() / 1000.0;
    let outcome = run_method(ctx, settings, spec.seed, device, &clock, sink).await?;
    let generated = outcome.after.generated();
    Ok((outcome.result, generated))
}

/// The methods as a pool's parts. This worker's own method runs as a task of its own
/// (it yields between its steps), so [`Parts::step`] only looks whether it is done and
/// the pool hands helpers their methods meanwhile.
struct Methods {
    spec: ExperimentSpec,
    backend: BackendKind,
    ctx: Rc<MitigationContext>,
    device: Device,
    /// `(done, workers, the largest heap in MiB)`, shown with the own method's progress.
    pool: Rc<RefCell<(usize, usize, f64)>>,
    /// The method this worker runs.
    own: OwnTask<Result<Row, UnlearnError>>,
    /// Rows reach the page in the section's order as they are ready.
    posting: RefCell<InOrder<Row>>,
}

impl Methods {
    /// Keep row `j` and post every row that is now next in the section's order.
    fn deliver(&self, j: usize, row: &Row) {
        self.posting
            .borrow_mut()
            .push(j, row.clone(), |_, (result, generated)| {
                post(&FromWorker::MitigationMethod {
                    result: Box::new(result),
                    generated,
                })
            });
    }
}

impl Parts for Methods {
    type Out = Row;

    fn count(&self) -> usize {
        self.spec.mitigation.as_ref().map_or(0, |m| m.methods.len())
    }

    fn message(&self, j: usize) -> ToWorker {
        ToWorker::MitigationPart {
            spec: self.spec.clone(),
            backend: self.backend,
            ctx: Box::new((*self.ctx).clone()),
            j,
        }
    }

    fn answer(&self, msg: FromWorker) -> Option<(usize, Row, f64)> {
        match msg {
            FromWorker::MitigationPart {
                j,
                result,
                generated,
                memory_mib,
            } => {
                let row = (*result, generated);
                self.deliver(j, &row);
                Some((j, row, memory_mib))
            }
            _ => None,
        }
    }

    fn begin(&mut self, j: usize) -> Result<(), String> {
        let (ctx, spec, device) = (self.ctx.clone(), self.spec.clone(), self.device.clone());
        let mut sink = Sink {
            run: j,
            runs: self.count(),
            start: now_ms(),
            last: 0.0,
            pool: Some(self.pool.clone()),
        };
        self.own.start(j, async move {
            method(&ctx, &spec, j, &device, &mut sink).await
        });
        Ok(())
    }

    async fn step(&mut self) -> Result<Option<(usize, Row)>, String> {
        match self.own.finished().await {
            Some((j, Ok(row))) => {
                self.deliver(j, &row);
                Ok(Some((j, row)))
            }
            Some((j, Err(e))) if !matches!(e, UnlearnError::Cancelled) => {
                let name = self
                    .spec
                    .mitigation
                    .as_ref()
                    .and_then(|m| m.methods.get(j))
                    .map_or("method", |s| s.method.name());
                Err(format!("{name}: {e}"))
            }
            // Still running, or cancelled (`drive` sees Cancel and stops).
            _ => Ok(None),
        }
    }
}

/// A helper's part: method `j` of `spec`'s section on a copy of `ctx`'s model, answered
/// with [`FromWorker::MitigationPart`].
pub async fn part(
    spec: ExperimentSpec,
    backend: BackendKind,
    ctx: MitigationContext,
    j: usize,
) -> Result<(), String> {
    let device = device_for(backend).await?;
    let mut sink = Sink {
        run: j,
        runs: spec.mitigation.as_ref().map_or(0, |m| m.methods.len()),
        start: now_ms(),
        last: 0.0,
        pool: None,
    };
    let (result, generated) = method(&ctx, &spec, j, &device, &mut sink)
        .await
        .map_err(|e| e.to_string())?;
    post(&FromWorker::MitigationPart {
        j,
        result: Box::new(result),
        generated,
        memory_mib: memory_mib(),
    });
    Ok(())
}

/// Run the spec's mitigation section on `workers` workers (this one included; WebGPU runs
/// one method at a time).
pub async fn run(
    spec: ExperimentSpec,
    backend: BackendKind,
    train: bool,
    workers: usize,
) -> Result<(), String> {
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
    let pooled = workers > 1 && runs > 1 && backend != BackendKind::Wgpu;
    let pool = Rc::new(RefCell::new((0usize, 1usize, 0.0f64)));
    let mut parts = Methods {
        spec,
        backend,
        ctx: Rc::new(ctx),
        device,
        pool: pool.clone(),
        own: OwnTask::default(),
        posting: RefCell::default(),
    };
    let driven = drive(
        &mut parts,
        if pooled { workers } else { 1 },
        backend,
        |done, workers, memory| {
            let most = memory.iter().copied().fold(0.0, f64::max);
            *pool.borrow_mut() = (done, workers, most);
            // Between methods: how many are done (`run == runs`: none runs here now).
            post(&FromWorker::MitigationProgress {
                run: runs,
                runs,
                step: StepProgress { done: 0, total: 0 },
                elapsed_s: 0.0,
                done,
                workers,
                memory_mib: most,
            });
        },
    )
    .await?;
    // Every finished row, in the section's order (after Cancel, a row whose predecessors
    // did not finish reaches the page only here).
    let mut done = driven.done;
    done.sort_by_key(|(j, _)| *j);
    for (_, (result, generated)) in done {
        view.push(result, generated);
    }
    if view.summary.results.is_empty() {
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
