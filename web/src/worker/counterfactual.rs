//! Job: a counterfactual ensemble, one member after another (yielding now and then so
//! Cancel is seen); after Cancel the members already scored make the result.

use mnemo_core::{BackendKind, Corpus, ExperimentSpec};
use mnemo_measures::counterfactual::{EnsembleRun, EnsembleStep, plan_ensemble};

use super::{cancelled, device_for, now_ms, post, yield_now};
use crate::protocol::FromWorker;

/// Train and score the ensemble of `spec`'s `counterfactual` section.
pub async fn run(spec: ExperimentSpec, backend: BackendKind) -> Result<(), String> {
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
    let mut stopped = false;
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
        if cancelled() {
            stopped = run.done() < total;
            break;
        }
    }
    if run.done() == 0 {
        post(&FromWorker::Cancelled { step: 0 });
        return Ok(());
    }
    post(&FromWorker::Counterfactual {
        result: Box::new(run.result()),
        cancelled: stopped,
        elapsed_s: (now_ms() - start) / 1000.0,
    });
    Ok(())
}
