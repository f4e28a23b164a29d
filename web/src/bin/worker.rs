//! The training worker: receives specs, trains on WebGPU or the CPU, streams progress.
//! It yields to the event loop after every step so that a Cancel message is seen.

#[cfg(target_arch = "wasm32")]
mod worker {
    use std::cell::{Cell, RefCell};

    use js_sys::{Function, Promise, Reflect};
    use mnemo_core::backend::Device;
    use mnemo_core::spec::ExtractionSpec;
    use mnemo_core::train::{Progress, Trainer};
    use mnemo_core::{BackendKind, Checkpoint, Corpus, ExperimentSpec, Gpt, ResumePoint};
    use mnemo_measures::counterfactual::{EnsembleRun, EnsembleStep, plan_ensemble};
    use mnemo_measures::extraction::extract;
    use mnemo_measures::profile::{PanelBuilder, estimate_profile, plan_panel};
    use mnemo_measures::softprompt::{Method, SoftPromptRun};
    use mnemo_web::protocol::{ExtractionView, FromWorker, RunInfo, SoftPromptView, ToWorker};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::{JsFuture, spawn_local};
    use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

    thread_local! {
        static CANCEL: Cell<bool> = const { Cell::new(false) };
        static BUSY: Cell<bool> = const { Cell::new(false) };
        static WGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
        static CHECKPOINTS: RefCell<Vec<Checkpoint>> = const { RefCell::new(Vec::new()) };
        /// The final weights and corpus of the last finished training run (for extraction).
        static LAST: RefCell<Option<(Checkpoint, Corpus, BackendKind, String)>> = const { RefCell::new(None) };
    }

    fn scope() -> DedicatedWorkerGlobalScope {
        js_sys::global().unchecked_into()
    }

    fn post(msg: &FromWorker) {
        match serde_wasm_bindgen::to_value(msg) {
            Ok(v) => {
                let _ = scope().post_message(&v);
            }
            Err(e) => web_sys::console::error_1(&format!("cannot serialise {msg:?}: {e}").into()),
        }
    }

    fn now_ms() -> f64 {
        scope().performance().map(|p| p.now()).unwrap_or(0.0)
    }

    async fn yield_now() {
        let p = Promise::new(&mut |resolve, _| {
            let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        });
        let _ = JsFuture::from(p).await;
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

    async fn device_for(kind: BackendKind) -> Result<Device, String> {
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

    /// Train, then evaluate the panel and estimate the profile.
    async fn profile(
        spec: ExperimentSpec,
        backend: BackendKind,
        label: String,
    ) -> Result<(), String> {
        let Some(trainer) = train(spec.clone(), backend, None, false).await? else {
            return Ok(());
        };
        let settings = spec.profile.clone().unwrap_or_default();
        let checkpoints = CHECKPOINTS.with(|c| c.borrow().clone());
        let steps: Vec<usize> = checkpoints.iter().map(|c| c.step).collect();
        let plan = plan_panel(
            trainer.corpus(),
            &trainer.order(),
            &steps,
            &settings,
            spec.seed,
        )
        .map_err(|e| e.to_string())?;
        let device = device_for(backend).await?;
        let start = now_ms();
        post(&FromWorker::PanelProgress {
            done: 0,
            total: checkpoints.len(),
        });
        let mut builder = PanelBuilder::new(&plan, settings.outcome);
        for ck in &checkpoints {
            if CANCEL.with(Cell::get) {
                post(&FromWorker::Cancelled {
                    step: trainer.steps_done(),
                });
                return Ok(());
            }
            builder
                .add_checkpoint(ck, trainer.corpus(), &device)
                .await
                .map_err(|e| e.to_string())?;
            post(&FromWorker::PanelProgress {
                done: builder.done(),
                total: checkpoints.len(),
            });
            yield_now().await;
        }
        let panel = builder.finish().map_err(|e| e.to_string())?;
        let panel_s = (now_ms() - start) / 1000.0;
        let start = now_ms();
        let result = estimate_profile(&panel, &settings, spec.seed).map_err(|e| e.to_string())?;
        post(&FromWorker::Profile {
            label,
            result: Box::new(result),
            panel_s,
            estimate_s: (now_ms() - start) / 1000.0,
        });
        Ok(())
    }

    /// Seconds between resume points of a kept run.
    const KEEP_EVERY_MS: f64 = 4000.0;

    /// Train `spec` (from `resume` when given). With `keep`, post a resume point every
    /// [`KEEP_EVERY_MS`] on backends that can write one.
    async fn train(
        spec: ExperimentSpec,
        backend: BackendKind,
        resume: Option<ResumePoint>,
        keep: bool,
    ) -> Result<Option<Trainer>, String> {
        let device = device_for(backend).await?;
        let mut trainer = match &resume {
            Some(point) => Trainer::resume(spec.clone(), device, point),
            None => Trainer::new(spec.clone(), device),
        }
        .map_err(|e| e.to_string())?;
        let keep = keep && backend.resumable();
        let tokens_before = trainer.tokens_seen();
        let steps_before = trainer.steps_done();
        let corpus = trainer.corpus();
        post(&FromWorker::Started(RunInfo {
            total_steps: trainer.total_steps(),
            train: corpus.train.len(),
            heldout: corpus.heldout.len(),
            vocab: corpus.tokenizer.vocab_size(),
            params: spec.model.n_params(corpus.tokenizer.vocab_size()),
            truncated: corpus.truncated,
            backend,
        }));
        CHECKPOINTS.with(|c| c.borrow_mut().clear());
        let start = now_ms();
        let mut kept = now_ms();
        loop {
            if keep && now_ms() - kept > KEEP_EVERY_MS && !trainer.is_done() {
                let point = trainer.resume_point().await.map_err(|e| e.to_string())?;
                post(&FromWorker::ResumePoint {
                    step: point.step,
                    bytes: point.to_bytes().map_err(|e| e.to_string())?,
                });
                kept = now_ms();
            }
            if CANCEL.with(Cell::get) {
                post(&FromWorker::Cancelled {
                    step: trainer.steps_done(),
                });
                return Ok(None);
            }
            if trainer.checkpoint_due() {
                let ck = trainer.checkpoint().await.map_err(|e| e.to_string())?;
                post(&FromWorker::Checkpoint { step: ck.step });
                CHECKPOINTS.with(|c| c.borrow_mut().push(ck));
            }
            let Some(report) = trainer.step().await.map_err(|e| e.to_string())? else {
                break;
            };
            let elapsed = (now_ms() - start) / 1000.0;
            post(&FromWorker::Step {
                progress: Progress::resumed(
                    steps_before,
                    report.step,
                    trainer.total_steps(),
                    report.loss,
                    trainer.tokens_seen() - tokens_before,
                    elapsed,
                ),
            });
            yield_now().await;
        }
        let elapsed_s = (now_ms() - start) / 1000.0;
        let (train_loss, heldout_loss) = trainer
            .train_heldout_loss()
            .await
            .map_err(|e| e.to_string())?;
        let last = trainer.checkpoint().await.map_err(|e| e.to_string())?;
        LAST.with(|l| {
            *l.borrow_mut() = Some((
                last,
                trainer.corpus().clone(),
                backend,
                format!(
                    "{} ({} layers, d_model {}, {} steps)",
                    spec.name,
                    spec.model.n_layers,
                    spec.model.d_model,
                    trainer.steps_done()
                ),
            ))
        });
        post(&FromWorker::Done {
            train_loss,
            heldout_loss,
            elapsed_s,
            tokens_per_s: (trainer.tokens_seen() - tokens_before) as f64 / elapsed_s.max(1e-9),
            checkpoints: CHECKPOINTS.with(|c| c.borrow().iter().map(|c| c.step).collect()),
        });
        Ok(Some(trainer))
    }

    /// Train the ensemble one member after another, yielding now and then so Cancel is
    /// seen; after Cancel the members already scored make the result.
    async fn counterfactual(spec: ExperimentSpec, backend: BackendKind) -> Result<(), String> {
        spec.validate().map_err(|e| e.to_string())?;
        let device = device_for(backend).await?;
        let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
            .map_err(|e| e.to_string())?;
        let settings = spec.counterfactual.clone().unwrap_or_default();
        let plan = plan_ensemble(&corpus, &settings, spec.seed).map_err(|e| e.to_string())?;
        let total = plan.models();
        let start = now_ms();
        post(&FromWorker::EnsembleProgress {
            done: 0,
            total,
            elapsed_s: 0.0,
        });
        let mut run = EnsembleRun::new(&spec, &corpus, &plan, device);
        let mut cancelled = false;
        let mut last_yield = now_ms();
        while let Some(step) = run.step().await.map_err(|e| e.to_string())? {
            if let EnsembleStep::Member(done, total) = step {
                post(&FromWorker::EnsembleProgress {
                    done,
                    total,
                    elapsed_s: (now_ms() - start) / 1000.0,
                });
            }
            // Yield after each member and otherwise about every 50 ms: often enough for
            // Cancel, rarely enough that the timer's clamping does not slow training.
            if matches!(step, EnsembleStep::Member(..)) || now_ms() - last_yield > 50.0 {
                yield_now().await;
                last_yield = now_ms();
            }
            if CANCEL.with(Cell::get) {
                cancelled = run.done() < total;
                break;
            }
        }
        if run.done() == 0 {
            post(&FromWorker::Cancelled { step: 0 });
            return Ok(());
        }
        post(&FromWorker::Counterfactual {
            result: Box::new(run.result()),
            cancelled,
            elapsed_s: (now_ms() - start) / 1000.0,
        });
        Ok(())
    }

    /// The label of every token id of the corpus's tokenizer (shown as text).
    fn token_labels(corpus: &Corpus) -> Vec<String> {
        (0..corpus.tokenizer.vocab_size() as u32)
            .map(|id| corpus.tokenizer.token_label(id))
            .collect()
    }

    /// Extraction on the last trained model.
    async fn extraction(settings: ExtractionSpec) -> Result<(), String> {
        let Some((ck, corpus, backend, name)) = LAST.with(|l| l.borrow().clone()) else {
            return Err("train a model first (for example with “Run the demo”)".into());
        };
        let device = device_for(backend).await?;
        let model = Gpt::from_checkpoint(&ck, &device).map_err(|e| e.to_string())?;
        let start = now_ms();
        let result = extract(&model, &corpus, &settings)
            .await
            .map_err(|e| e.to_string())?;
        let labels = token_labels(&corpus);
        let prefixes = result
            .train
            .iter()
            .chain(&result.heldout)
            .filter_map(|r| {
                let tokens = &corpus.get(r.instance)?.tokens;
                Some((r.instance, tokens.get(..r.prefix_len)?.to_vec()))
            })
            .collect();
        post(&FromWorker::Extraction {
            view: Box::new(ExtractionView {
                result,
                labels,
                prefixes,
                model: name,
            }),
            elapsed_s: (now_ms() - start) / 1000.0,
        });
        Ok(())
    }

    /// Soft prompts: train the spec's model first (`train_first`) or take the last trained
    /// one, then train the constant prompt and the generator step by step (yielding about
    /// every 50 ms so Cancel is seen) and measure the three methods. After Cancel the
    /// prompts are measured as trained so far.
    async fn softprompt(
        spec: ExperimentSpec,
        backend: BackendKind,
        train_first: bool,
    ) -> Result<(), String> {
        let settings = spec.softprompt.unwrap_or_default();
        settings.validate().map_err(|e| e.to_string())?;
        if train_first && train(spec.clone(), backend, None, false).await?.is_none() {
            return Ok(());
        }
        let Some((ck, corpus, backend, name)) = LAST.with(|l| l.borrow().clone()) else {
            return Err("train a model first (for example with “Run the demo”)".into());
        };
        let device = device_for(backend).await?;
        let mut run = SoftPromptRun::new(&ck, &corpus, &settings, spec.seed, &device)
            .map_err(|e| e.to_string())?;
        let start = now_ms();
        let mut constant_s = None;
        let mut last_yield = now_ms();
        let mut cancelled = false;
        while let Some(step) = run.step().await.map_err(|e| e.to_string())? {
            if step.method == Method::Dynamic && constant_s.is_none() {
                constant_s = Some((now_ms() - start) / 1000.0);
            }
            post(&FromWorker::PromptStep {
                step,
                progress: run.progress(),
                elapsed_s: (now_ms() - start) / 1000.0,
            });
            if now_ms() - last_yield > 50.0 {
                yield_now().await;
                last_yield = now_ms();
            }
            if CANCEL.with(Cell::get) {
                cancelled = !run.is_done();
                break;
            }
        }
        let trained_s = (now_ms() - start) / 1000.0;
        let constant_s = constant_s.unwrap_or(trained_s);
        if run.progress().done == 0 {
            post(&FromWorker::Cancelled { step: 0 });
            return Ok(());
        }
        post(&FromWorker::PromptEvaluating);
        yield_now().await;
        let eval_start = now_ms();
        let result = run.result().await.map_err(|e| e.to_string())?;
        let labels = token_labels(&corpus);
        let prefixes = run
            .pairs()
            .test
            .iter()
            .map(|p| (p.instance, p.prefix.clone()))
            .collect();
        post(&FromWorker::SoftPrompt {
            view: Box::new(SoftPromptView {
                result,
                labels,
                prefixes,
                model: name,
            }),
            cancelled,
            constant_s,
            dynamic_s: trained_s - constant_s,
            eval_s: (now_ms() - eval_start) / 1000.0,
        });
        Ok(())
    }

    /// Check imported weights against the spec (model, vocabulary, every tensor's shape)
    /// and keep them as the last trained model. Nothing changes on an error.
    fn import_weights(bytes: &[u8], name: &str, spec: ExperimentSpec) -> Result<String, String> {
        let ck = Checkpoint::from_safetensors(bytes).map_err(|e| format!("“{name}” is {e}"))?;
        spec.validate().map_err(|e| e.to_string())?;
        let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
            .map_err(|e| e.to_string())?;
        ck.fits(&spec.model, corpus.tokenizer.vocab_size())
            .map_err(|e| format!("“{name}” does not fit the settings: {e}"))?;
        let device = BackendKind::Flex
            .cpu_device()
            .ok_or("the CPU backend is not part of this build")?;
        Gpt::from_checkpoint(&ck, &device).map_err(|e| format!("“{name}”: {e}"))?;
        let description = format!("weights “{name}” (step {})", ck.step);
        LAST.with(|l| *l.borrow_mut() = Some((ck, corpus, BackendKind::Flex, description.clone())));
        Ok(description)
    }

    /// Run one job at a time: refuse a second while one runs, reset Cancel, report errors.
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
        });
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
                run_exclusive(async move { train(spec, backend, None, true).await.map(|_| ()) })
            }
            ToWorker::Resume {
                spec,
                backend,
                point,
            } => run_exclusive(async move {
                let point = ResumePoint::from_bytes(&point).map_err(|e| e.to_string())?;
                train(spec, backend, Some(point), true).await.map(|_| ())
            }),
            ToWorker::Profile {
                spec,
                backend,
                label,
            } => run_exclusive(async move { profile(spec, backend, label).await }),
            ToWorker::Counterfactual { spec, backend } => {
                run_exclusive(async move { counterfactual(spec, backend).await })
            }
            ToWorker::SoftPrompt {
                spec,
                backend,
                train,
            } => run_exclusive(async move { softprompt(spec, backend, train).await }),
            ToWorker::ExportWeights => {
                let last = LAST.with(|l| l.borrow().clone());
                match last.map(|(ck, ..)| (ck.step, ck.to_safetensors())) {
                    Some((step, Ok(bytes))) => post(&FromWorker::Weights {
                        bytes,
                        name: format!("mnemo-weights-step{step}.safetensors"),
                    }),
                    Some((_, Err(e))) => post(&FromWorker::Imported {
                        outcome: Err(format!("the weights could not be written: {e}")),
                    }),
                    None => post(&FromWorker::Imported {
                        outcome: Err("train a model first".into()),
                    }),
                }
            }
            ToWorker::ImportWeights { bytes, name, spec } => {
                if BUSY.with(Cell::get) {
                    post(&FromWorker::Imported {
                        outcome: Err("wait for the current run to finish".into()),
                    });
                    return;
                }
                post(&FromWorker::Imported {
                    outcome: import_weights(&bytes, &name, spec),
                });
            }
            ToWorker::Extract { settings } => {
                run_exclusive(async move { extraction(settings).await })
            }
        }
    }

    pub fn start() {
        console_error_panic_hook::set_once();
        let handler = Closure::<dyn FnMut(MessageEvent)>::new(on_message);
        scope().set_onmessage(Some(handler.as_ref().unchecked_ref()));
        handler.forget();
        post(&FromWorker::Ready);
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    {
        mnemo_web::ctors::run_static_constructors();
        worker::start();
    }
}
