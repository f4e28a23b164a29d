//! Jobs: training-data influence. [`run`] trains the spec's model (keeping the
//! checkpoints its `influence` section sums over), then computes the per-example
//! gradients one example at a time (yielding about every 50 ms so Cancel is seen) and
//! posts the scores. [`deletion`] is case deletion: the spec's model trained once more
//! for the losses before, then one retrain per removed set, each an independent unit;
//! after Cancel the retrains done so far make the result.

use mnemo_core::{BackendKind, Corpus, ExperimentSpec, Trainer};
use mnemo_measures::influence::{
    DeletionRun, InfluenceResult, InfluenceRun, check, plan_deletion, retrain_spec,
};

use super::train::Trained;
use super::{cancelled, device_for, now_ms, post, token_labels, yield_now};
use crate::protocol::{FromWorker, InfluenceText, InfluenceView};

/// The corpus of `spec`, with the influence settings checked against it.
fn corpus_of(spec: &ExperimentSpec) -> Result<Corpus, String> {
    spec.validate().map_err(|e| e.to_string())?;
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(|e| e.to_string())?;
    check(spec, &corpus).map_err(|e| e.to_string())?;
    Ok(corpus)
}

/// Train, then score every test text against every training text.
pub async fn run(spec: ExperimentSpec, backend: BackendKind) -> Result<(), String> {
    let corpus = corpus_of(&spec)?;
    let Some(Trained {
        trainer,
        checkpoints,
    }) = super::train::run(spec.clone(), backend, None, false).await?
    else {
        return Ok(());
    };
    let device = device_for(backend).await?;
    let mut run = InfluenceRun::new(&spec, trainer.corpus(), &checkpoints, &device)
        .map_err(|e| e.to_string())?;
    let start = now_ms();
    let mut last_post = 0.0;
    while !run.is_done() {
        let progress = run.step().await.map_err(|e| e.to_string())?;
        if now_ms() - last_post > 50.0 || run.is_done() {
            post(&FromWorker::InfluenceProgress {
                progress,
                elapsed_s: (now_ms() - start) / 1000.0,
            });
            yield_now().await;
            last_post = now_ms();
        }
        if cancelled() {
            post(&FromWorker::Cancelled {
                step: trainer.steps_done(),
            });
            return Ok(());
        }
    }
    let gradient_s = (now_ms() - start) / 1000.0;
    let result = run.finish().map_err(|e| e.to_string())?;
    let heldout: std::collections::HashSet<u32> = corpus.heldout.iter().copied().collect();
    let texts = corpus
        .instances
        .iter()
        .map(|i| InfluenceText {
            id: i.id,
            heldout: heldout.contains(&i.id),
            tokens: i.tokens.clone(),
            text: i.text.clone(),
        })
        .collect();
    post(&FromWorker::Influence {
        view: Box::new(InfluenceView {
            result,
            labels: token_labels(&corpus),
            texts,
            bos: corpus.tokenizer.bos(),
        }),
        gradient_s,
    });
    Ok(())
}

/// Case deletion for `result` (the scores of a [`run`] of the same spec).
pub async fn deletion(
    spec: ExperimentSpec,
    backend: BackendKind,
    result: InfluenceResult,
) -> Result<(), String> {
    let corpus = corpus_of(&spec)?;
    let plan = plan_deletion(&spec, &corpus, &result).map_err(|e| e.to_string())?;
    if plan.jobs.is_empty() {
        return Err("no case deletion asked: give at least one k".into());
    }
    let device = device_for(backend).await?;
    let start = now_ms();
    let total = plan.jobs.len();
    post(&FromWorker::DeletionProgress {
        done: 0,
        total,
        elapsed_s: 0.0,
    });
    // The model before removal: the spec's run, trained again (same seed, same weights).
    let mut original = Trainer::with_corpus(retrain_spec(&spec), corpus.clone(), device.clone())
        .map_err(|e| e.to_string())?;
    let mut last_yield = now_ms();
    while original.step().await.map_err(|e| e.to_string())?.is_some() {
        if now_ms() - last_yield > 50.0 {
            yield_now().await;
            last_yield = now_ms();
        }
        if cancelled() {
            post(&FromWorker::Cancelled { step: 0 });
            return Ok(());
        }
    }
    let final_ck = original.checkpoint().await.map_err(|e| e.to_string())?;
    let mut run = DeletionRun::new(&spec, &corpus, plan, &final_ck, &device)
        .await
        .map_err(|e| e.to_string())?;
    let mut reported = 0;
    let mut stopped = false;
    while !run.is_done() {
        let (done, total) = run.step().await.map_err(|e| e.to_string())?;
        if done > reported {
            reported = done;
            post(&FromWorker::DeletionProgress {
                done,
                total,
                elapsed_s: (now_ms() - start) / 1000.0,
            });
        }
        if now_ms() - last_yield > 50.0 {
            yield_now().await;
            last_yield = now_ms();
        }
        if cancelled() {
            stopped = !run.is_done();
            break;
        }
    }
    if run.progress().0 == 0 {
        post(&FromWorker::Cancelled { step: 0 });
        return Ok(());
    }
    post(&FromWorker::Deletion {
        result: Box::new(run.result()),
        cancelled: stopped,
        elapsed_s: (now_ms() - start) / 1000.0,
    });
    Ok(())
}
