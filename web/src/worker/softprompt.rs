//! Job: soft prompts. Train the spec's model first (`train_first`) or take the kept one,
//! then train the constant prompt and the generator step by step (yielding about every
//! 50 ms so Cancel is seen) and measure the three methods. After Cancel the prompts are
//! measured as trained so far.

use mnemo_core::{BackendKind, ExperimentSpec, PromptPositions};
use mnemo_measures::softprompt::{Method, SoftPromptRun};

use super::{cancelled, device_for, kept_or_err, now_ms, post, token_labels, yield_now};
use crate::protocol::{FromWorker, SoftPromptView};

/// Train and measure the prompts of `spec`'s `softprompt` section.
pub async fn run(
    spec: ExperimentSpec,
    backend: BackendKind,
    train_first: bool,
) -> Result<(), String> {
    let settings = spec.softprompt.unwrap_or_default();
    settings.validate().map_err(|e| e.to_string())?;
    if train_first
        && super::train::run(spec.clone(), backend, None, false)
            .await?
            .is_none()
    {
        return Ok(());
    }
    let model = kept_or_err()?;
    let device = device_for(model.backend).await?;
    let mut run = SoftPromptRun::new(
        &model.checkpoint,
        &model.corpus,
        &settings,
        spec.seed,
        PromptPositions::for_training(model.packed),
        &device,
    )
    .map_err(|e| e.to_string())?;
    let start = now_ms();
    let mut constant_s = None;
    let mut last_yield = now_ms();
    let mut stopped = false;
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
        if cancelled() {
            stopped = !run.is_done();
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
    let prefixes = run
        .pairs()
        .test
        .iter()
        .map(|p| (p.instance, p.prefix.clone()))
        .collect();
    post(&FromWorker::SoftPrompt {
        view: Box::new(SoftPromptView {
            result,
            labels: token_labels(&model.corpus),
            prefixes,
            model: model.description,
        }),
        cancelled: stopped,
        constant_s,
        dynamic_s: trained_s - constant_s,
        eval_s: (now_ms() - eval_start) / 1000.0,
    });
    Ok(())
}
