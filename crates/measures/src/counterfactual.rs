//! Counterfactual memorisation (Zhang et al., NeurIPS 2023; METHODS.md section 2).
//!
//! `m` models are trained, each on an independent seeded random subset holding a fraction
//! `r` of the training instances. With `M(f, x)` the per-token accuracy (or the mean
//! log-likelihood), for a training instance `x` and any instance `x'`:
//!
//! ```text
//! mem(x)        = mean_{j: x in S_j} M(f_j, x)  - mean_{j: x not in S_j} M(f_j, x)
//! infl(x => x') = mean_{j: x in S_j} M(f_j, x') - mean_{j: x not in S_j} M(f_j, x')
//! ```
//!
//! **Membership units.** Copies of one text (a canary repeated `k` times, duplicated
//! lines) form one unit: they enter or leave a subset together, so "an instance repeated
//! many times" means a text that is trained on many times whenever it is in the subset.
//! Otherwise the copies would leak into the models that are meant to be without it.
//!
//! The standard error is Welch's, `sqrt(s_in^2/n_in + s_out^2/n_out)` with sample
//! variances over models; it is undefined (`None`) when either side has fewer than two
//! models. `mem` is undefined when no model (or every model) trained on the instance.
//! Nothing here produces a NaN.
//!
//! The models are independent: shells train them one after another ([`EnsemblePlan`]
//! gives each member's corpus and spec; [`score_member`] measures a trained member) and
//! [`counterfactual_result`] works from however many members have finished, so a
//! cancelled ensemble still gives a result from the models already trained.

use std::collections::HashMap;

use mnemo_core::backend::Device;
use mnemo_core::rng::{self, Stream};
use mnemo_core::spec::{CounterfactualSpec, Metric, Outcome};
use mnemo_core::train::{TrainError, Trainer};
use mnemo_core::{Corpus, ExperimentSpec, Gpt};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::eval::evaluate;
use crate::profile::ProfileError;

/// Held-out instances used as influence probes when the spec names none.
pub const DEFAULT_PROBES: usize = 5;

/// Why an ensemble could not be planned or scored.
#[derive(Debug, Error)]
pub enum CounterfactualError {
    /// Fewer than two distinct training texts: nothing to leave out.
    #[error("counterfactual memorisation needs at least 2 distinct training instances, found {0}")]
    TooFewInstances(usize),
    /// A probe id outside the corpus.
    #[error(
        "counterfactual.influence_on names instance {id}, but the corpus has {n} instances (ids 0 to {last})",
        last = n.saturating_sub(1)
    )]
    UnknownProbe {
        /// The id.
        id: u32,
        /// Instances in the corpus.
        n: usize,
    },
    /// Evaluating a member failed.
    #[error("{0}")]
    Eval(#[from] ProfileError),
    /// A member could not be trained.
    #[error("training a member: {0}")]
    Train(#[from] TrainError),
}

/// One side-by-side comparison of models that trained on a unit and models that did not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contrast {
    /// Mean of `M` over the models that trained on the unit.
    pub in_mean: Option<f64>,
    /// Mean of `M` over the models that did not.
    pub out_mean: Option<f64>,
    /// Models that trained on it.
    pub n_in: usize,
    /// Models that did not.
    pub n_out: usize,
    /// `in_mean - out_mean`: `mem` (or `infl`); `None` when either side is empty.
    pub diff: Option<f64>,
    /// Welch standard error of `diff`; `None` when either side has fewer than 2 models.
    pub se: Option<f64>,
}

fn mean_var(xs: &[f64]) -> (Option<f64>, Option<f64>) {
    if xs.is_empty() {
        return (None, None);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var =
        (xs.len() > 1).then(|| xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0));
    (Some(mean), var)
}

/// Compare `values[j]` between the models with `member[j]` and those without.
pub fn contrast(member: &[bool], values: &[f64]) -> Contrast {
    let (mut ins, mut outs) = (Vec::new(), Vec::new());
    for (&m, &v) in member.iter().zip(values) {
        if m { ins.push(v) } else { outs.push(v) }
    }
    let (in_mean, in_var) = mean_var(&ins);
    let (out_mean, out_var) = mean_var(&outs);
    let diff = in_mean.zip(out_mean).map(|(a, b)| a - b);
    let se = in_var
        .zip(out_var)
        .map(|(a, b)| (a / ins.len() as f64 + b / outs.len() as f64).sqrt());
    Contrast {
        in_mean,
        out_mean,
        n_in: ins.len(),
        n_out: outs.len(),
        diff,
        se,
    }
}

/// Which models train on which units, with their seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsemblePlan {
    /// Membership units: the training instance ids of each distinct text, ascending.
    pub units: Vec<Vec<u32>>,
    /// For every model, whether it trains on each unit (`[model][unit]`).
    pub membership: Vec<Vec<bool>>,
    /// Every model's seed (initial weights and data order).
    pub seeds: Vec<u64>,
    /// Instances whose influence from every unit is measured.
    pub probes: Vec<u32>,
    /// The settings.
    pub settings: CounterfactualSpec,
}

/// Plan the ensemble of `settings` on `corpus`: the units, each model's subset (exactly
/// `round(fraction * units)` units, at least 1 and at most all but one, drawn
/// independently per model) and seed, all from `seed`.
pub fn plan_ensemble(
    corpus: &Corpus,
    settings: &CounterfactualSpec,
    seed: u64,
) -> Result<EnsemblePlan, CounterfactualError> {
    let mut by_tokens: HashMap<&[u32], usize> = HashMap::new();
    let mut units: Vec<Vec<u32>> = Vec::new();
    let mut train = corpus.train.clone();
    train.sort_unstable();
    for id in train {
        let Some(inst) = corpus.get(id) else { continue };
        match by_tokens.get(inst.tokens.as_slice()) {
            Some(&u) => units[u].push(id),
            None => {
                by_tokens.insert(inst.tokens.as_slice(), units.len());
                units.push(vec![id]);
            }
        }
    }
    let n = units.len();
    if n < 2 {
        return Err(CounterfactualError::TooFewInstances(n));
    }
    let probes: Vec<u32> = if settings.influence_on.is_empty() {
        corpus
            .heldout
            .iter()
            .copied()
            .take(DEFAULT_PROBES)
            .collect()
    } else {
        for &id in &settings.influence_on {
            if corpus.get(id).is_none() {
                return Err(CounterfactualError::UnknownProbe {
                    id,
                    n: corpus.instances.len(),
                });
            }
        }
        settings.influence_on.clone()
    };
    let size = ((settings.fraction * n as f64).round() as usize).clamp(1, n - 1);
    let mut rng = rng::stream(seed, Stream::Ensemble);
    let mut membership = Vec::with_capacity(settings.models);
    let mut seeds = Vec::with_capacity(settings.models);
    for _ in 0..settings.models {
        let mut order: Vec<usize> = (0..n).collect();
        rng::shuffle(&mut order, &mut rng);
        let mut member = vec![false; n];
        for &u in &order[..size] {
            member[u] = true;
        }
        membership.push(member);
        seeds.push(rng.next_u64());
    }
    Ok(EnsemblePlan {
        units,
        membership,
        seeds,
        probes,
        settings: settings.clone(),
    })
}

impl EnsemblePlan {
    /// Models planned.
    pub fn models(&self) -> usize {
        self.membership.len()
    }

    /// The training ids of model `j` (every copy of each of its units), ascending.
    pub fn member_ids(&self, j: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .membership
            .get(j)
            .into_iter()
            .flat_map(|m| m.iter().zip(&self.units))
            .filter(|(m, _)| **m)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Model `j`'s corpus: `corpus` with only its subset left to train on.
    pub fn member_corpus(&self, j: usize, corpus: &Corpus) -> Corpus {
        let mut c = corpus.clone();
        c.train = self.member_ids(j);
        c
    }

    /// Model `j`'s spec: the experiment's, with its own seed and no checkpoints.
    pub fn member_spec(&self, j: usize, spec: &ExperimentSpec) -> ExperimentSpec {
        let mut s = spec.clone();
        s.seed = self.seeds.get(j).copied().unwrap_or(spec.seed);
        s.training.checkpoint_every = 0;
        s.training.checkpoint_steps.clear();
        s.profile = None;
        s
    }

    /// A trainer for model `j` on `device`.
    pub fn member_trainer(
        &self,
        j: usize,
        spec: &ExperimentSpec,
        corpus: &Corpus,
        device: Device,
    ) -> Result<Trainer, CounterfactualError> {
        Ok(Trainer::with_corpus(
            self.member_spec(j, spec),
            self.member_corpus(j, corpus),
            device,
        )?)
    }
}

/// What one trained member scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberScores {
    /// `M(f_j, x)` of each unit (its first copy), in unit order.
    pub units: Vec<f64>,
    /// `M(f_j, x')` of each probe.
    pub probes: Vec<f64>,
}

/// `M` of `ids` under `model`.
pub async fn measure(
    model: &Gpt,
    corpus: &Corpus,
    ids: &[u32],
    metric: Metric,
) -> Result<Vec<f64>, ProfileError> {
    // `evaluate` returns lower-is-better outcomes: minus accuracy, or surprisal.
    let outcome = match metric {
        Metric::Accuracy => Outcome::Accuracy,
        Metric::Loglik => Outcome::Surprisal,
    };
    Ok(evaluate(model, corpus, ids, outcome, 64)
        .await?
        .into_iter()
        .map(|y| -y)
        .collect())
}

/// Score a trained member on every unit and probe.
pub async fn score_member(
    model: &Gpt,
    corpus: &Corpus,
    plan: &EnsemblePlan,
) -> Result<MemberScores, CounterfactualError> {
    let reps: Vec<u32> = plan
        .units
        .iter()
        .filter_map(|u| u.first().copied())
        .collect();
    let metric = plan.settings.metric;
    Ok(MemberScores {
        units: measure(model, corpus, &reps, metric).await?,
        probes: measure(model, corpus, &plan.probes, metric).await?,
    })
}

/// Counterfactual memorisation of one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceMem {
    /// The unit's first instance id.
    pub instance: u32,
    /// Copies of its text in the training data.
    pub copies: usize,
    /// Its text.
    pub text: String,
    /// mem(x) with its means, counts and standard error.
    pub mem: Contrast,
}

/// Counterfactual influence on one probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Influence {
    /// The probe's instance id.
    pub probe: u32,
    /// Its text.
    pub text: String,
    /// Whether the probe is itself a training instance.
    pub trained: bool,
    /// `infl(x => probe)` for every unit, in unit order.
    pub by_unit: Vec<Contrast>,
}

/// Everything a counterfactual ensemble measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterfactualResult {
    /// Models whose scores entered the result.
    pub models: usize,
    /// Models planned.
    pub planned: usize,
    /// Share of units per subset.
    pub fraction: f64,
    /// The measure.
    pub metric: Metric,
    /// mem of every unit, in unit order.
    pub instances: Vec<InstanceMem>,
    /// Influence on every probe.
    pub influence: Vec<Influence>,
    /// `[model][unit]` membership of the models that entered.
    pub membership: Vec<Vec<bool>>,
    /// `[model][unit]` scores `M(f_j, x)` of the models that entered.
    pub scores: Vec<Vec<f64>>,
}

impl CounterfactualResult {
    /// Unit indices ordered by mem, highest first (undefined last).
    pub fn ranked(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.instances.len()).collect();
        let key = |i: &usize| self.instances[*i].mem.diff.unwrap_or(f64::NEG_INFINITY);
        idx.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.cmp(b)));
        idx
    }

    /// Units with a defined mem.
    pub fn defined(&self) -> usize {
        self.instances
            .iter()
            .filter(|i| i.mem.diff.is_some())
            .count()
    }
}

/// The result from the members that finished (`scores[j]` is model `j`'s).
pub fn counterfactual_result(
    plan: &EnsemblePlan,
    corpus: &Corpus,
    scores: &[MemberScores],
) -> CounterfactualResult {
    let done: Vec<(usize, &MemberScores)> = scores.iter().take(plan.models()).enumerate().collect();
    result_of(plan, corpus, &done)
}

/// The result from any set of finished members, `(j, model j's scores)` in any order
/// (a pool of workers finishes them out of order, and a Cancel may leave gaps). Members
/// are taken in ascending `j`, so the result does not depend on who finished first.
pub fn counterfactual_result_of(
    plan: &EnsemblePlan,
    corpus: &Corpus,
    scores: &[(usize, MemberScores)],
) -> CounterfactualResult {
    let mut done: Vec<(usize, &MemberScores)> = scores
        .iter()
        .filter(|(j, _)| *j < plan.models())
        .map(|(j, s)| (*j, s))
        .collect();
    done.sort_by_key(|(j, _)| *j);
    done.dedup_by_key(|(j, _)| *j);
    result_of(plan, corpus, &done)
}

fn result_of(
    plan: &EnsemblePlan,
    corpus: &Corpus,
    done: &[(usize, &MemberScores)],
) -> CounterfactualResult {
    let membership: Vec<Vec<bool>> = done
        .iter()
        .map(|(j, _)| plan.membership[*j].clone())
        .collect();
    // Which models trained on each unit, once (every probe reuses them).
    let columns: Vec<Vec<bool>> = (0..plan.units.len())
        .map(|u| membership.iter().map(|m| m[u]).collect())
        .collect();
    let text = |id: u32| corpus.get(id).map(|i| i.text.clone()).unwrap_or_default();
    let instances = plan
        .units
        .iter()
        .enumerate()
        .map(|(u, ids)| {
            let values: Vec<f64> = done.iter().map(|(_, s)| s.units[u]).collect();
            InstanceMem {
                instance: ids[0],
                copies: ids.len(),
                text: text(ids[0]),
                mem: contrast(&columns[u], &values),
            }
        })
        .collect();
    let influence = plan
        .probes
        .iter()
        .enumerate()
        .map(|(p, &probe)| {
            let values: Vec<f64> = done.iter().map(|(_, s)| s.probes[p]).collect();
            Influence {
                probe,
                text: text(probe),
                trained: corpus.train.contains(&probe),
                by_unit: (0..plan.units.len())
                    .map(|u| contrast(&columns[u], &values))
                    .collect(),
            }
        })
        .collect();
    CounterfactualResult {
        models: done.len(),
        planned: plan.models(),
        fraction: plan.settings.fraction,
        metric: plan.settings.metric,
        instances,
        influence,
        scores: done.iter().map(|(_, s)| s.units.clone()).collect(),
        membership,
    }
}

/// Train member `j` of `plan` to the end on `device` and score it: a member's numbers
/// depend only on `j`, so members can run in any order, on threads, web workers,
/// processes or machines, and be put together with [`counterfactual_result_of`].
pub async fn run_member(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    plan: &EnsemblePlan,
    j: usize,
    device: &Device,
) -> Result<MemberScores, CounterfactualError> {
    let mut trainer = plan.member_trainer(j, spec, corpus, device.clone())?;
    while trainer.step().await?.is_some() {}
    let model = member_model(&trainer, device).await?;
    score_member(&model, corpus, plan).await
}

/// Train and score the ensemble on this thread (natively), member after member.
/// `progress(j, m)` is called after each member; returning `Break` stops and keeps the
/// members done.
#[cfg(not(target_family = "wasm"))]
pub fn run_ensemble_blocking(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    plan: &EnsemblePlan,
    device: &Device,
    mut progress: impl FnMut(usize, usize) -> std::ops::ControlFlow<()>,
) -> Result<CounterfactualResult, CounterfactualError> {
    let mut scores = Vec::with_capacity(plan.models());
    for j in 0..plan.models() {
        scores.push(run_member_blocking(spec, corpus, plan, j, device)?);
        if progress(scores.len(), plan.models()).is_break() {
            break;
        }
    }
    Ok(counterfactual_result(plan, corpus, &scores))
}

/// Train and score member `j` alone on this thread (natively): what
/// [`run_ensemble_blocking`] computes for that member, so members can be spread over
/// processes or machines and their scores put together with [`counterfactual_result`].
#[cfg(not(target_family = "wasm"))]
pub fn run_member_blocking(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    plan: &EnsemblePlan,
    j: usize,
    device: &Device,
) -> Result<MemberScores, CounterfactualError> {
    mnemo_core::train::block_on(run_member(spec, corpus, plan, j, device))
}

/// Train and score the ensemble on `threads` threads (natively): each thread takes the
/// next member nobody has taken, trains and scores it as [`run_member_blocking`] does, so
/// the members and the result are [`run_ensemble_blocking`]'s whatever the thread count.
/// `progress(done, total)` is called on this thread after each member; returning `Break`
/// stops handing out members (members in training still finish and count). The first
/// member that fails stops the pool and is the error.
#[cfg(not(target_family = "wasm"))]
pub fn run_ensemble_threads(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    plan: &EnsemblePlan,
    device: &Device,
    threads: usize,
    progress: impl FnMut(usize, usize) -> std::ops::ControlFlow<()>,
) -> Result<CounterfactualResult, CounterfactualError> {
    let done = crate::pool::map_threads(
        plan.models(),
        threads,
        |j| run_member_blocking(spec, corpus, plan, j, device),
        progress,
    )?;
    Ok(counterfactual_result_of(plan, corpus, &done))
}

/// A trained member's weights as an inference model on `device`.
pub async fn member_model(trainer: &Trainer, device: &Device) -> Result<Gpt, CounterfactualError> {
    let ck = trainer.checkpoint().await?;
    Ok(Gpt::from_checkpoint(&ck, device).map_err(ProfileError::from)?)
}
