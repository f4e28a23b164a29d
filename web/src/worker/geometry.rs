//! Job: the geometry of memorisation (`mnemo_measures::geometry`, METHODS.md section 6).
//! The engine's [`GeometryRun`] is a step machine (one optimiser step, one sampler step,
//! one FLIPD pass, ...); this job drives it one unit at a time, posts the progress at
//! most every 50 ms and then yields to the event loop, and looks at [`cancelled`] after
//! every unit, so Cancel stops it between two steps. A cancelled run keeps nothing: the
//! LIDs need the trained model, and half a training run says nothing about the paper's
//! classes.

use mnemo_core::{BackendKind, ExperimentSpec};
use mnemo_measures::geometry::GeometryRun;

use super::{cancelled, device_for, now_ms, post, yield_now};
use crate::protocol::FromWorker;

/// Milliseconds between two progress messages (and two yields).
const EVERY_MS: f64 = 50.0;

/// Run the spec's geometry section.
pub async fn run(spec: ExperimentSpec, backend: BackendKind) -> Result<(), String> {
    spec.validate().map_err(|e| e.to_string())?;
    let start = now_ms();
    let device = device_for(backend).await?;
    let mut run = GeometryRun::new(&spec, &device).map_err(|e| e.to_string())?;
    let elapsed = || (now_ms() - start) / 1000.0;
    post(&FromWorker::GeometryProgress {
        progress: run.progress(),
        elapsed_s: elapsed(),
    });
    yield_now().await;
    let mut last = now_ms();
    while !run.is_done() {
        if cancelled() {
            post(&FromWorker::Cancelled {
                step: run.progress().step,
            });
            return Ok(());
        }
        let progress = run.step().await.map_err(|e| e.to_string())?;
        if now_ms() - last > EVERY_MS || run.is_done() {
            post(&FromWorker::GeometryProgress {
                progress,
                elapsed_s: elapsed(),
            });
            yield_now().await;
            last = now_ms();
        }
    }
    let result = run.finish().await.map_err(|e| e.to_string())?;
    post(&FromWorker::Geometry {
        result: Box::new(result),
        seconds: elapsed(),
    });
    Ok(())
}
