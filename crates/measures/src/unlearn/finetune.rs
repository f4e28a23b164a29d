//! The methods that train (METHODS.md section 5, methods 1-6). The regularisers
//! (`loss-truncation`, `spectral-norm`, `example-tied-dropout`) train a new model with
//! the untouched model's spec, seed and data order and the regulariser on, so the
//! comparison is fair; the result is its test-time model (`Trainer::test_checkpoint`:
//! example-tied dropout's tied units dropped). The fine-tunes train the trained model for
//! a few epochs: on the clean versions of the memorised sequences (`finetune-clean`), on
//! the clean training data without them (`finetune-extra`), or on both (`finetune-both`).
//!
//! Choices written down here:
//! - "The memorised sequences" are the context's forget set (the noised training
//!   examples the model memorises, or the triggered ones on which the backdoor fires;
//!   see [`super::prepare`]); their clean versions are the texts before noise or
//!   trigger, tokenised as training tokenises (BOS, text, EOS, cut to the context + 1).
//! - "The clean training data" is every plain training example of every task.
//! - The run is Mnemo's trainer on the spec's optimiser (AdamW with the spec's weight
//!   decay, betas and batch size) at the settings' `lr`, no schedule, for the settings'
//!   `epochs`, in the spec's seeded data order over the chosen examples, starting from
//!   the model's weights. AdamW's state continues from [`MitigationContext::optimiser`]
//!   when the shell has the training run's last resume point (`mnemo train` writes
//!   `resume.bin`; `mnemo mitigate --resume`); otherwise (the built-in models ship their
//!   weights only) it starts fresh, and its first steps, of about `lr` per weight
//!   whatever the gradient's size, move the model more than continued training would.

use std::collections::BTreeSet;

use mnemo_core::burn::tensor::Device;
use mnemo_core::corpus::InstanceKind;
use mnemo_core::spec::{Decay, Duration, ExperimentSpec};
use mnemo_core::{Checkpoint, Trainer};

use super::{Method, MethodSettings, MitigationContext, OnProgress, UnlearnError, report};

/// The corpus the fine-tune trains on (the forget set's examples carry their clean
/// tokens) and the training ids it visits.
fn fine_tune_data(
    ctx: &MitigationContext,
    method: Method,
) -> Result<(mnemo_core::Corpus, BTreeSet<u32>), UnlearnError> {
    let mut corpus = ctx.corpus.clone();
    let forget: BTreeSet<u32> = ctx.forget_ids.iter().copied().collect();
    let context = ctx.spec.model.context;
    for inst in corpus
        .instances
        .iter_mut()
        .filter(|i| forget.contains(&i.id))
    {
        let clean = match &inst.kind {
            InstanceKind::Noised { clean } | InstanceKind::Backdoor { clean } => clean.clone(),
            _ => continue,
        };
        let t = &ctx.corpus.tokenizer;
        let mut tokens = vec![t.bos()];
        tokens.extend(
            t.encode(&clean)
                .map_err(|e| UnlearnError::Checkpoint(format!("clean text: {e}")))?,
        );
        tokens.push(t.eos());
        tokens.truncate(context + 1);
        inst.tokens = tokens;
    }
    let plain: BTreeSet<u32> = corpus
        .train
        .iter()
        .copied()
        .filter(|&i| corpus.get(i).is_some_and(|x| x.kind == InstanceKind::Plain))
        .filter(|i| !forget.contains(i))
        .collect();
    let visit: BTreeSet<u32> = match method {
        Method::FinetuneClean => forget,
        Method::FinetuneExtra => plain,
        _ => forget.union(&plain).copied().collect(),
    };
    Ok((corpus, visit))
}

/// The spec of a fine-tune: the model's spec at the settings' rate and epochs, no
/// schedule, no checkpoints but the last, no analysis sections.
fn fine_tune_spec(spec: &ExperimentSpec, settings: &MethodSettings) -> ExperimentSpec {
    let mut s = spec.bare_run();
    s.training.duration = Duration::Epochs(settings.epochs);
    s.training.learning_rate = settings.lr;
    s.training.warmup_steps = 0;
    s.training.decay = Decay::Constant;
    s.training.min_lr_ratio = 1.0;
    s
}

/// Train a new model with the context's spec and `settings`' regulariser, reporting
/// each step; its test-time weights.
pub async fn train_regularised(
    ctx: &MitigationContext,
    settings: &MethodSettings,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<Checkpoint, UnlearnError> {
    let mut spec = ctx.spec.bare_run();
    spec.training.regulariser = settings.regulariser.clone();
    let fail = |e: mnemo_core::TrainError| UnlearnError::Device(e.to_string());
    let mut trainer =
        Trainer::with_corpus(spec, ctx.corpus.clone(), device.clone()).map_err(fail)?;
    let total = trainer.total_steps();
    while let Some(r) = trainer.step().await.map_err(fail)? {
        report(progress, r.step, total).await?;
    }
    trainer.test_checkpoint().await.map_err(fail)
}

/// Fine-tune a copy of the context's model as `settings.method` says.
pub async fn fine_tune(
    ctx: &MitigationContext,
    settings: &MethodSettings,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<Checkpoint, UnlearnError> {
    let (corpus, visit) = fine_tune_data(ctx, settings.method)?;
    if visit.is_empty() {
        return Err(UnlearnError::NothingToForget);
    }
    let exclude: BTreeSet<u32> = corpus
        .train
        .iter()
        .copied()
        .filter(|i| !visit.contains(i))
        .collect();
    let spec = fine_tune_spec(&ctx.spec, settings);
    let fail = |e: mnemo_core::TrainError| UnlearnError::Device(e.to_string());
    let mut trainer =
        Trainer::with_corpus_excluding(spec, corpus, device.clone(), exclude).map_err(fail)?;
    trainer
        .start_from(&ctx.model, ctx.optimiser.as_ref())
        .map_err(fail)?;
    let total = trainer.total_steps();
    while let Some(r) = trainer.step().await.map_err(fail)? {
        report(progress, r.step, total).await?;
    }
    let mut out = trainer.checkpoint().await.map_err(fail)?;
    out.step = ctx.model.step;
    Ok(out)
}
