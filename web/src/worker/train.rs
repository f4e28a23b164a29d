//! Job: train a spec (or go on from a resume point), streaming every step; the final
//! weights become the kept model. Other jobs that train a model first call [`run`].

use mnemo_core::train::{Progress, Trainer};
use mnemo_core::{BackendKind, Checkpoint, ExperimentSpec, ResumePoint};

use super::{Kept, cancelled, device_for, keep, now_ms, post, yield_now};
use crate::protocol::{FromWorker, RunInfo};

/// Seconds between resume points of a kept run.
const KEEP_EVERY_MS: f64 = 4000.0;

/// A finished training run: the trainer and the checkpoints it saved.
pub struct Trained {
    /// The trainer, at its last step.
    pub trainer: Trainer,
    /// The checkpoints, in step order.
    pub checkpoints: Vec<Checkpoint>,
}

/// Train `spec` (from `resume` when given). With `resumable`, post a resume point every
/// [`KEEP_EVERY_MS`] on backends that can write one. `None` when cancelled.
pub async fn run(
    spec: ExperimentSpec,
    backend: BackendKind,
    resume: Option<ResumePoint>,
    resumable: bool,
) -> Result<Option<Trained>, String> {
    let device = device_for(backend).await?;
    let mut trainer = match &resume {
        Some(point) => Trainer::resume(spec.clone(), device, point),
        None => Trainer::new(spec.clone(), device),
    }
    .map_err(|e| e.to_string())?;
    let resumable = resumable && backend.resumable();
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
    let mut checkpoints = Vec::new();
    let start = now_ms();
    let mut kept_at = now_ms();
    loop {
        if resumable && now_ms() - kept_at > KEEP_EVERY_MS && !trainer.is_done() {
            let point = trainer.resume_point().await.map_err(|e| e.to_string())?;
            post(&FromWorker::ResumePoint {
                step: point.step,
                bytes: point.to_bytes().map_err(|e| e.to_string())?,
            });
            kept_at = now_ms();
        }
        if cancelled() {
            post(&FromWorker::Cancelled {
                step: trainer.steps_done(),
            });
            return Ok(None);
        }
        if trainer.checkpoint_due() {
            let ck = trainer.checkpoint().await.map_err(|e| e.to_string())?;
            post(&FromWorker::Checkpoint { step: ck.step });
            checkpoints.push(ck);
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
    let description = format!(
        "“{}” ({} layers, d_model {}, {} steps)",
        spec.name,
        spec.model.n_layers,
        spec.model.d_model,
        trainer.steps_done()
    );
    keep(
        Kept {
            checkpoint: last,
            corpus: trainer.corpus().clone(),
            backend,
            packed: spec.training.packed,
            description,
        },
        &spec,
    );
    post(&FromWorker::Done {
        train_loss,
        heldout_loss,
        elapsed_s,
        tokens_per_s: (trainer.tokens_seen() - tokens_before) as f64 / elapsed_s.max(1e-9),
        checkpoints: checkpoints.iter().map(|c| c.step).collect(),
    });
    Ok(Some(Trained {
        trainer,
        checkpoints,
    }))
}
