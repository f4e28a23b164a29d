//! A run's schedule: how many steps it has, the order in which it visits the training
//! instances (seeded), and the learning rate at each step.

use std::collections::BTreeSet;

use super::*;

/// How many steps a run has, and the order in which it visits training instances.
pub fn plan(spec: &ExperimentSpec, corpus: &Corpus) -> (usize, Vec<u32>) {
    plan_excluding(spec, corpus, &BTreeSet::new()).unwrap_or_else(|_| (0, Vec::new()))
}

/// [`plan`] for a run that leaves the training instances `exclude` out (case deletion:
/// retraining "without" some texts).
///
/// The data order is the full run's: the same seeded shuffles of the *whole* training
/// set, epoch after epoch, with the excluded ids dropped from it; the remaining ids are
/// then cut into consecutive batches of `batch_size` (so a batch that lost an instance
/// is topped up from the next ones, and every later batch shifts accordingly).
/// `Epochs(e)` runs `e` passes over the remaining `n - r` instances
/// (`ceil(e * (n - r) / b)` steps, so the schedule is that many steps long);
/// `Steps(s)` keeps `s` steps, reading on into the following epochs' order as needed.
/// With nothing excluded this is exactly [`plan`]. Ids in `exclude` that are not
/// training ids are ignored; excluding every training instance is an error.
///
/// A packed run (`training.packed`) has the steps and the trained texts of its
/// [`Packing`], with the same data order.
pub fn plan_excluding(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    exclude: &BTreeSet<u32>,
) -> Result<(usize, Vec<u32>), TrainError> {
    if spec.training.packed {
        let p = Packing::plan(spec, corpus, exclude)?;
        return Ok((p.total_steps(), p.stream().to_vec()));
    }
    let n = corpus.train.len();
    let kept = corpus.train.iter().filter(|i| !exclude.contains(i)).count();
    if kept == 0 {
        return Err(TrainError::Corpus(CorpusError::TooFewForTraining(0)));
    }
    let b = spec.training.batch_size;
    let (total_steps, needed) = match spec.training.duration {
        Duration::Steps(s) => (s, s * b),
        Duration::Epochs(e) => ((e * kept).div_ceil(b), e * kept),
    };
    let mut stream = Vec::with_capacity(needed + n);
    for epoch in epochs(spec, corpus, exclude) {
        if stream.len() >= needed {
            break;
        }
        stream.extend(epoch);
    }
    stream.truncate(needed);
    Ok((total_steps, stream))
}

/// The data order of a run, epoch after epoch without end: each epoch a seeded shuffle
/// ([`Stream::DataOrder`]) of the whole training set with the ids in `exclude` dropped.
pub(crate) fn epochs<'a>(
    spec: &ExperimentSpec,
    corpus: &'a Corpus,
    exclude: &'a BTreeSet<u32>,
) -> impl Iterator<Item = Vec<u32>> + 'a {
    let mut rng = rng::stream(spec.seed, Stream::DataOrder);
    std::iter::repeat_with(move || {
        let mut epoch = corpus.train.clone();
        rng::shuffle(&mut epoch, &mut rng);
        epoch.retain(|i| !exclude.contains(i));
        epoch
    })
}

/// Learning rate at step `step` (1-based) of a run of `total_steps` steps with the
/// schedule `t`: linear warm-up, then the decay. (Step 0, before any update, gives 0
/// with a warm-up.)
pub fn lr_at(t: &crate::spec::TrainingConfig, total_steps: usize, step: usize) -> f64 {
    let peak = t.learning_rate;
    if t.warmup_steps > 0 && step <= t.warmup_steps {
        return peak * step as f64 / t.warmup_steps as f64;
    }
    let span = total_steps.saturating_sub(t.warmup_steps).max(1) as f64;
    let p = ((step.saturating_sub(t.warmup_steps)) as f64 / span).clamp(0.0, 1.0);
    let floor = peak * t.min_lr_ratio;
    match t.decay {
        Decay::Constant => peak,
        Decay::Linear => peak - (peak - floor) * p,
        Decay::Cosine => floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()),
    }
}

/// The learning rate "in effect" at the checkpoint taken after `step` steps, the
/// `eta_t` of TracIn: the rate of the step that produced these weights,
/// `lr_at(step)`; for the checkpoint at step 0 (the initial weights) the rate of the
/// first step, `lr_at(1)`.
pub fn checkpoint_lr(t: &crate::spec::TrainingConfig, total_steps: usize, step: usize) -> f64 {
    lr_at(t, total_steps, step.max(1))
}
