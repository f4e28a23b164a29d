//! Jobs: training-data influence. [`run`] trains the spec's model (keeping the
//! checkpoints its `influence` section sums over), then computes the per-example
//! gradients one example at a time (yielding about every 50 ms so Cancel is seen) and
//! posts the scores. [`deletion`] is case deletion: the spec's model trained once more
//! for the losses before, then one retrain per removed set, each an independent part of
//! a pool ([`drive`]: helpers retrain while this worker does too); after Cancel the
//! retrains done so far make the result.

use mnemo_core::backend::Device;
use mnemo_core::{BackendKind, Corpus, ExperimentSpec, Trainer};
use mnemo_measures::influence::{
    DeletionJob, DeletionPlan, InfluenceResult, InfluenceRun, check, deletion_trainer,
    losses_before, plan_deletion, retrain_losses, retrain_spec, test_losses,
};

use super::pool::{Parts, drive};
use super::train::Trained;
use super::{cancelled, device_for, memory_mib, now_ms, post, token_labels, yield_now};
use crate::protocol::{FromWorker, InfluenceText, InfluenceView, ToWorker};

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
    workers: usize,
) -> Result<(), String> {
    let corpus = corpus_of(&spec)?;
    let plan = plan_deletion(&spec, &corpus, &result).map_err(|e| e.to_string())?;
    if plan.jobs.is_empty() {
        return Err("no case deletion asked: give at least one k".into());
    }
    let device = device_for(backend).await?;
    let start = now_ms();
    let retrains = plan.retrains();
    let total = retrains.len();
    post(&FromWorker::DeletionProgress {
        done: 0,
        total,
        elapsed_s: 0.0,
        workers: 1,
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
    let before = losses_before(&final_ck, &corpus, &plan.tests, &device)
        .await
        .map_err(|e| e.to_string())?;
    let mut parts = Retrains {
        spec,
        backend,
        corpus,
        plan,
        retrains,
        device,
        own: None,
    };
    let driven = drive(&mut parts, workers, backend, |done, workers, _| {
        post(&FromWorker::DeletionProgress {
            done,
            total,
            elapsed_s: (now_ms() - start) / 1000.0,
            workers,
        })
    })
    .await?;
    if driven.done.is_empty() {
        post(&FromWorker::Cancelled { step: 0 });
        return Ok(());
    }
    let rows = driven
        .done
        .iter()
        .flat_map(|(d, losses)| parts.plan.rows(&parts.retrains[*d], losses, &before))
        .collect();
    post(&FromWorker::Deletion {
        result: Box::new(parts.plan.result_of(rows)),
        cancelled: driven.stopped,
        elapsed_s: (now_ms() - start) / 1000.0,
    });
    Ok(())
}

/// Case deletion's retrains as a pool's parts: part `d` retrains without the removed set
/// of `retrains[d]`'s jobs and measures their test texts.
struct Retrains {
    spec: ExperimentSpec,
    backend: BackendKind,
    corpus: Corpus,
    plan: DeletionPlan,
    retrains: Vec<Vec<usize>>,
    device: Device,
    own: Option<(usize, Trainer)>,
}

impl Parts for Retrains {
    type Out = Vec<f64>;

    fn count(&self) -> usize {
        self.retrains.len()
    }

    fn message(&self, d: usize) -> ToWorker {
        ToWorker::Retrain {
            spec: self.spec.clone(),
            backend: self.backend,
            job: self.plan.jobs[self.retrains[d][0]].clone(),
            tests: self.plan.tests_of(&self.retrains[d]),
            d,
        }
    }

    fn answer(&self, msg: FromWorker) -> Option<(usize, Vec<f64>, f64)> {
        match msg {
            FromWorker::Retrained {
                d,
                losses,
                memory_mib,
            } => Some((d, losses, memory_mib)),
            _ => None,
        }
    }

    fn begin(&mut self, d: usize) -> Result<(), String> {
        let job = &self.plan.jobs[self.retrains[d][0]];
        let trainer = deletion_trainer(&self.spec, &self.corpus, job, self.device.clone())
            .map_err(|e| e.to_string())?;
        self.own = Some((d, trainer));
        Ok(())
    }

    async fn step(&mut self) -> Result<Option<(usize, Vec<f64>)>, String> {
        let Some((d, trainer)) = &mut self.own else {
            return Ok(None);
        };
        if trainer.step().await.map_err(|e| e.to_string())?.is_some() {
            return Ok(None);
        }
        let d = *d;
        let Some((_, trainer)) = self.own.take() else {
            return Ok(None);
        };
        let losses = test_losses(
            trainer.model(),
            &self.corpus,
            &self.plan.tests_of(&self.retrains[d]),
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(Some((d, losses)))
    }
}

/// A helper's part: retrain without `job.removed`, then answer
/// [`FromWorker::Retrained`] with the losses of `tests`.
pub async fn retrain(
    spec: ExperimentSpec,
    backend: BackendKind,
    job: DeletionJob,
    tests: Vec<u32>,
    d: usize,
) -> Result<(), String> {
    let corpus = corpus_of(&spec)?;
    let device = device_for(backend).await?;
    let losses = retrain_losses(&spec, &corpus, &job, &tests, &device)
        .await
        .map_err(|e| e.to_string())?;
    post(&FromWorker::Retrained {
        d,
        losses,
        memory_mib: memory_mib(),
    });
    Ok(())
}
