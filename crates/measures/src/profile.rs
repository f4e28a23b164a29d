//! Memorisation profiles from a training run (METHODS.md section 1): the panel of
//! outcomes of sampled instances at every checkpoint, built from the trainer's recorded
//! data order, then estimated with [`crate::did::estimate`].
//!
//! Cohorts and checkpoints share units: checkpoint `k` is the `k`-th saved checkpoint
//! (step 0 is checkpoint 0), and an instance's cohort is the first checkpoint saved at or
//! after the step at which it was first trained. Instances of the held-out split are the
//! never-trained control group. Training instances that the run never reached are left
//! out (they were never treated, but they were not held out by design either).

use std::collections::HashMap;

use mnemo_core::rng::{self, Stream};
use mnemo_core::spec::{Outcome, ProfileSpec};
use mnemo_core::{Checkpoint, Corpus, Gpt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::did::{DidError, DidOptions, DidResult, Panel, PanelError, estimate};
pub use crate::eval::evaluate;

/// Why a profile could not be built.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// The run saved too few checkpoints to have cohorts with a pre-period.
    #[error(
        "the run saved {0} checkpoint(s); a profile needs at least 3 (set training.checkpoint_every to the cohort length)"
    )]
    TooFewCheckpoints(usize),
    /// Nothing held out: no control group.
    #[error(
        "no held-out instances: set data.heldout_fraction above 0 so there is a never-trained control group"
    )]
    NoControls,
    /// The panel is not estimable.
    #[error("panel: {0}")]
    Panel(#[from] PanelError),
    /// The estimator refused the panel.
    #[error("estimator: {0}")]
    Did(#[from] DidError),
    /// A device read failed.
    #[error("evaluation failed: {0}")]
    Device(String),
    /// A checkpoint could not be loaded.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] mnemo_core::CheckpointError),
}

/// Which instances enter the panel, with their cohorts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelPlan {
    /// Instance ids, in panel order.
    pub ids: Vec<u32>,
    /// Their cohorts (`None` = held out).
    pub cohorts: Vec<Option<usize>>,
    /// Checkpoint steps, in order (checkpoint index = position).
    pub checkpoint_steps: Vec<usize>,
}

/// The cohort of every trained instance: the index of the first checkpoint whose step is
/// at or after the instance's first training step. `order` is `(step, instance id)`.
pub fn cohorts_from_order(
    order: &[(usize, u32)],
    checkpoint_steps: &[usize],
) -> HashMap<u32, usize> {
    let mut first: HashMap<u32, usize> = HashMap::new();
    for &(step, id) in order {
        first.entry(id).or_insert(step);
    }
    first
        .into_iter()
        .filter_map(|(id, step)| {
            let k = checkpoint_steps.partition_point(|&s| s < step);
            (k < checkpoint_steps.len()).then_some((id, k))
        })
        .collect()
}

/// Sample `per_cohort` instances of every cohort and `heldout` held-out instances
/// (seeded from `seed`). Cohorts with fewer than two instances are left out.
pub fn plan_panel(
    corpus: &Corpus,
    order: &[(usize, u32)],
    checkpoint_steps: &[usize],
    spec: &ProfileSpec,
    seed: u64,
) -> Result<PanelPlan, ProfileError> {
    if checkpoint_steps.len() < 3 {
        return Err(ProfileError::TooFewCheckpoints(checkpoint_steps.len()));
    }
    if corpus.heldout.is_empty() {
        return Err(ProfileError::NoControls);
    }
    let cohort_of = cohorts_from_order(order, checkpoint_steps);
    let mut by_cohort: Vec<Vec<u32>> = vec![Vec::new(); checkpoint_steps.len()];
    let mut trained: Vec<(&u32, &usize)> = cohort_of.iter().collect();
    trained.sort();
    for (&id, &k) in trained {
        by_cohort[k].push(id);
    }
    let mut rng = rng::stream(seed, Stream::Panel);
    let mut ids = Vec::new();
    let mut cohorts = Vec::new();
    for (k, members) in by_cohort.iter_mut().enumerate() {
        rng::shuffle(members, &mut rng);
        // A cohort of one instance has no variance to estimate; leave such cohorts out.
        if members.len().min(spec.per_cohort) < 2 {
            continue;
        }
        for &id in members.iter().take(spec.per_cohort) {
            ids.push(id);
            cohorts.push(Some(k));
        }
    }
    let mut held = corpus.heldout.clone();
    rng::shuffle(&mut held, &mut rng);
    for &id in held.iter().take(spec.heldout) {
        ids.push(id);
        cohorts.push(None);
    }
    Ok(PanelPlan {
        ids,
        cohorts,
        checkpoint_steps: checkpoint_steps.to_vec(),
    })
}

/// The panel of a user's own checkpoint series (e.g. Pythia's, or checkpoints trained
/// elsewhere): every instance in `order` whose cohort can be estimated, and every
/// instance of `corpus.heldout` (never trained) as a control; no sampling. `order` is
/// `(step, instance id)`, an instance's first step counting (the step whose weights
/// first include it; see [`cohorts_from_order`]). Returns the plan and how many trained
/// instances were left out: those first trained at or before the first checkpoint (no
/// pre-period), after the last one (never observed trained), or in a cohort of one.
pub fn plan_from_order(
    corpus: &Corpus,
    order: &[(usize, u32)],
    checkpoint_steps: &[usize],
) -> Result<(PanelPlan, usize), ProfileError> {
    if checkpoint_steps.len() < 3 {
        return Err(ProfileError::TooFewCheckpoints(checkpoint_steps.len()));
    }
    if corpus.heldout.is_empty() {
        return Err(ProfileError::NoControls);
    }
    let cohort_of = cohorts_from_order(order, checkpoint_steps);
    let mut trained: Vec<u32> = order.iter().map(|&(_, id)| id).collect();
    trained.sort_unstable();
    trained.dedup();
    let mut by_cohort: Vec<Vec<u32>> = vec![Vec::new(); checkpoint_steps.len()];
    for (&id, &k) in &cohort_of {
        by_cohort[k].push(id);
    }
    let mut ids = Vec::new();
    let mut cohorts = Vec::new();
    for (k, members) in by_cohort.iter_mut().enumerate() {
        if k == 0 || members.len() < 2 {
            continue;
        }
        members.sort_unstable();
        for &id in members.iter() {
            ids.push(id);
            cohorts.push(Some(k));
        }
    }
    let dropped = trained.len() - ids.len();
    for &id in &corpus.heldout {
        ids.push(id);
        cohorts.push(None);
    }
    Ok((
        PanelPlan {
            ids,
            cohorts,
            checkpoint_steps: checkpoint_steps.to_vec(),
        },
        dropped,
    ))
}

/// Builds a panel one checkpoint at a time, so a shell can report progress, yield to its
/// event loop or stop between checkpoints. [`build_panel`] drives it natively.
#[derive(Debug)]
pub struct PanelBuilder<'a> {
    plan: &'a PanelPlan,
    outcome: Outcome,
    rows: Vec<(String, Option<usize>, usize, f64)>,
    done: usize,
}

impl<'a> PanelBuilder<'a> {
    /// An empty panel for `plan`.
    pub fn new(plan: &'a PanelPlan, outcome: Outcome) -> Self {
        Self {
            plan,
            outcome,
            rows: Vec::with_capacity(plan.ids.len() * plan.checkpoint_steps.len()),
            done: 0,
        }
    }

    /// Checkpoints evaluated so far.
    pub fn done(&self) -> usize {
        self.done
    }

    /// Evaluate every planned instance at the next checkpoint.
    pub async fn add_checkpoint(
        &mut self,
        checkpoint: &Checkpoint,
        corpus: &Corpus,
        device: &mnemo_core::backend::Device,
    ) -> Result<(), ProfileError> {
        let model = Gpt::from_checkpoint(checkpoint, device)?;
        let ys = evaluate(&model, corpus, &self.plan.ids, self.outcome, 64).await?;
        let k = self.done;
        for ((&id, &cohort), y) in self.plan.ids.iter().zip(&self.plan.cohorts).zip(ys) {
            self.rows.push((id.to_string(), cohort, k, y));
        }
        self.done += 1;
        Ok(())
    }

    /// The panel of the checkpoints added so far.
    pub fn finish(self) -> Result<Panel, ProfileError> {
        Ok(Panel::from_rows(self.rows)?)
    }
}

/// Build the panel: evaluate every planned instance at every checkpoint. `progress` is
/// called after each checkpoint with (done, total).
pub async fn build_panel(
    plan: &PanelPlan,
    checkpoints: &[Checkpoint],
    corpus: &Corpus,
    outcome: Outcome,
    device: &mnemo_core::backend::Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<Panel, ProfileError> {
    let mut builder = PanelBuilder::new(plan, outcome);
    for ck in checkpoints {
        builder.add_checkpoint(ck, corpus, device).await?;
        progress(builder.done(), checkpoints.len());
    }
    builder.finish()
}

/// Estimate the profile of a panel with the spec's settings.
pub fn estimate_profile(
    panel: &Panel,
    spec: &ProfileSpec,
    seed: u64,
) -> Result<DidResult, ProfileError> {
    let options = DidOptions {
        alpha: spec.alpha,
        draws: spec.bootstrap,
        seed,
        ..DidOptions::default()
    };
    Ok(estimate(panel, &options)?)
}
