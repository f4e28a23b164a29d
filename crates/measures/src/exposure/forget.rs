//! Exposure after unlearning: the trained canaries as the forget set of a post-hoc
//! unlearning method ([`crate::unlearn::unlearn`]), so each secret's exposure can be
//! measured again on the edited model with [`super::ExposureRun`].
//!
//! Choices written down here: the forget set holds one row per canary that was trained
//! on (its copies are the same row; the controls, seen 0 times, are not in it); the
//! retain set is up to `retain` of the other training texts, drawn with the spec's seed
//! (`Stream::Unlearn`, as TinyMem's retain set); the methods' "suffix" starts at the
//! secret (the targets after the format's fixed prefix), so Activations and Integrated
//! Gradients score the secret's positions, as they score TinyMem's memorised suffix.

use mnemo_core::backend::Device;
use mnemo_core::corpus::InstanceKind;
use mnemo_core::rng::{self, Stream};
use mnemo_core::spec::mitigation::{Kind, MethodSettings};
use mnemo_core::{Checkpoint, Corpus, ExperimentSpec, Gpt};

use super::{ExposureError, ExposureRun, trained_canaries};
use crate::unlearn::{OnProgress, UnlearnData, unlearn};

/// The retain set's size (as TinyMem's default).
pub const RETAIN: usize = mnemo_core::spec::mitigation::DEFAULT_RETAIN;

/// The forget and retain sets of `spec`'s canaries in `corpus` (see the module); a
/// corpus built without them is refused ([`ExposureError::NotTrainedOn`]) before any
/// unlearning work.
pub fn forget_set(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    retain: usize,
) -> Result<UnlearnData, ExposureError> {
    let set = spec
        .data
        .canaries
        .as_ref()
        .ok_or(ExposureError::NoCanaries)?;
    let format = set.parsed()?;
    trained_canaries(set, spec.seed, corpus)?;
    let row = |id: u32| corpus.get(id).map(|x| x.tokens.clone());
    let forget: Vec<Vec<u32>> = corpus
        .canaries
        .iter()
        .filter_map(|c| c.ids.first().and_then(|&id| row(id)))
        .collect();
    let mut clean: Vec<u32> = corpus
        .train
        .iter()
        .copied()
        .filter(|&i| corpus.get(i).is_some_and(|x| x.kind == InstanceKind::Plain))
        .collect();
    let mut r = rng::stream(spec.seed, Stream::Unlearn);
    rng::shuffle(&mut clean, &mut r);
    clean.truncate(retain);
    Ok(UnlearnData {
        forget,
        retain: clean.into_iter().filter_map(row).collect(),
        pad: corpus.tokenizer.pad(),
        // Target position t predicts row[t + 1] and row[0] is BOS: the secret's first
        // token is predicted at the prefix's length.
        suffix_start: corpus.tokenizer.encode(format.prefix())?.len(),
    })
}

/// Apply the post-hoc unlearning method `settings` to `model` with `spec`'s canaries as
/// the forget set ([`forget_set`], [`RETAIN`] retain texts), and plan the exposure
/// measurement of the edited model. Methods that train (the regularisers and the
/// fine-tunes) are refused: they need TinyMem's training data, and the Mitigation view
/// runs them.
pub async fn unlearned_run(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    model: &Checkpoint,
    settings: &MethodSettings,
    device: &Device,
    progress: OnProgress<'_>,
) -> Result<(Checkpoint, ExposureRun), ExposureError> {
    if matches!(settings.method.kind(), Kind::Regulariser | Kind::FineTune) {
        return Err(ExposureError::Trains(settings.method.name()));
    }
    let data = forget_set(spec, corpus, RETAIN)?;
    let edited = unlearn(model, &data, settings, spec.seed, device, progress).await?;
    let gpt =
        Gpt::from_checkpoint(&edited, device).map_err(|e| ExposureError::Device(e.to_string()))?;
    let run = ExposureRun::new(spec, corpus, gpt)?;
    Ok((edited, run))
}
