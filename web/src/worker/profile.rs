//! Job: memorisation profiles. Each spec is trained, its panel evaluated checkpoint by
//! checkpoint and its profile estimated; one `Profile` message per model.

use mnemo_core::{BackendKind, ExperimentSpec};
use mnemo_measures::profile::{PanelBuilder, estimate_profile, plan_panel};

use super::train::Trained;
use super::{cancelled, device_for, now_ms, post, yield_now};
use crate::protocol::FromWorker;

/// Profile every `(spec, label)` in turn (the size comparison has several).
pub async fn run(runs: Vec<(ExperimentSpec, String)>, backend: BackendKind) -> Result<(), String> {
    for (spec, label) in runs {
        if !one(spec, backend, label).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Train, then evaluate the panel and estimate the profile. `false` when cancelled.
async fn one(spec: ExperimentSpec, backend: BackendKind, label: String) -> Result<bool, String> {
    let Some(Trained {
        trainer,
        checkpoints,
    }) = super::train::run(spec.clone(), backend, None, false).await?
    else {
        return Ok(false);
    };
    let settings = spec.profile.clone().unwrap_or_default();
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
        if cancelled() {
            post(&FromWorker::Cancelled {
                step: trainer.steps_done(),
            });
            return Ok(false);
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
    Ok(true)
}
