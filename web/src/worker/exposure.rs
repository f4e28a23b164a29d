//! Job: canary exposure (`mnemo_measures::exposure`, METHODS.md section 7). Trains the
//! spec (its canaries inserted; the train job's messages, and the model is kept as the
//! last trained one), then scores the candidates one batch per step of the engine's
//! [`ExposureRun`], posting progress at most every 50 ms, yielding to the event loop and
//! looking at [`cancelled`] between batches. A cancelled run keeps the trained model and
//! no ranks. [`unlearn`] then applies a post-hoc unlearning method to that model with
//! the canaries as the forget set and ranks them again.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;

use mnemo_core::spec::mitigation::MethodSettings;
use mnemo_core::{BackendKind, ExperimentSpec, Gpt};
use mnemo_measures::exposure::forget::unlearned_run;
use mnemo_measures::exposure::{ExposureError, ExposureResult, ExposureRun};
use mnemo_measures::unlearn::{ProgressSink, StepProgress, UnlearnError};

use super::{cancelled, device_for, kept_or_err, now_ms, post, yield_now};
use crate::protocol::FromWorker;

/// Milliseconds between two progress messages (and two yields).
const EVERY_MS: f64 = 50.0;

/// Train `spec` and measure its canaries' exposure.
pub async fn run(spec: ExperimentSpec, backend: BackendKind) -> Result<(), String> {
    spec.validate().map_err(|e| e.to_string())?;
    if spec.data.canaries.is_none() {
        return Err("the experiment has no canaries to measure".into());
    }
    if super::train::run(spec.clone(), backend, None, false)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let model = kept_or_err()?;
    let device = device_for(model.backend).await?;
    let gpt = Gpt::from_checkpoint(&model.checkpoint, &device).map_err(|e| e.to_string())?;
    let start = now_ms();
    let run = ExposureRun::new(&spec, &model.corpus, gpt).map_err(|e| e.to_string())?;
    if let Some(result) = score(run).await? {
        post(&FromWorker::Exposure {
            result: Box::new(result),
            seconds: (now_ms() - start) / 1000.0,
        });
    }
    Ok(())
}

/// Score every planned candidate, posting progress; `None` when cancelled.
async fn score(mut run: ExposureRun) -> Result<Option<ExposureResult>, String> {
    post(&FromWorker::ExposureProgress {
        progress: run.progress(),
    });
    yield_now().await;
    let mut last = now_ms();
    while !run.is_done() {
        if cancelled() {
            post(&FromWorker::Cancelled {
                step: run.progress().done,
            });
            return Ok(None);
        }
        let progress = run.step().await.map_err(|e| e.to_string())?;
        if now_ms() - last > EVERY_MS {
            post(&FromWorker::ExposureProgress { progress });
            yield_now().await;
            last = now_ms();
        }
    }
    run.finish().map(Some).map_err(|e| e.to_string())
}

/// Posts the unlearning method's progress (at most every 50 ms) and yields, so Cancel
/// is seen.
struct Sink {
    last: f64,
}

impl ProgressSink for Sink {
    fn step(&mut self, p: StepProgress) -> Pin<Box<dyn Future<Output = ControlFlow<()>> + '_>> {
        Box::pin(async move {
            if now_ms() - self.last > EVERY_MS || p.done == p.total {
                post(&FromWorker::ExposureUnlearning { step: p });
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

/// Unlearn the canaries from the last trained model (the exposure run's) with
/// `settings`, and rank the secrets again on the edited model.
pub async fn unlearn(spec: ExperimentSpec, settings: MethodSettings) -> Result<(), String> {
    let model = kept_or_err()?;
    let device = device_for(model.backend).await?;
    let start = now_ms();
    let mut sink = Sink { last: 0.0 };
    let (_, run) = match unlearned_run(
        &spec,
        &model.corpus,
        &model.checkpoint,
        &settings,
        &device,
        &mut sink,
    )
    .await
    {
        Ok(r) => r,
        Err(ExposureError::Unlearn(UnlearnError::Cancelled)) => {
            post(&FromWorker::Cancelled { step: 0 });
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    if let Some(result) = score(run).await? {
        post(&FromWorker::ExposureAfter {
            label: format!("{} (ratio {})", settings.method.name(), settings.ratio),
            result: Box::new(result),
            seconds: (now_ms() - start) / 1000.0,
        });
    }
    Ok(())
}
