//! Job: canary exposure (`mnemo_measures::exposure`, METHODS.md section 7). Trains the
//! spec (its canaries inserted; the train job's messages, and the model is kept as the
//! last trained one), then scores the candidates one batch per step of the engine's
//! [`ExposureRun`], posting progress at most every 50 ms, yielding to the event loop and
//! looking at [`cancelled`] between batches. A cancelled run keeps the trained model and
//! no ranks.

use mnemo_core::{BackendKind, ExperimentSpec, Gpt};
use mnemo_measures::exposure::ExposureRun;

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
    let mut run = ExposureRun::new(&spec, &model.corpus, gpt).map_err(|e| e.to_string())?;
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
            return Ok(());
        }
        let progress = run.step().await.map_err(|e| e.to_string())?;
        if now_ms() - last > EVERY_MS {
            post(&FromWorker::ExposureProgress { progress });
            yield_now().await;
            last = now_ms();
        }
    }
    let result = run.finish().map_err(|e| e.to_string())?;
    post(&FromWorker::Exposure {
        result: Box::new(result),
        seconds: (now_ms() - start) / 1000.0,
    });
    Ok(())
}
