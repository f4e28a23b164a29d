//! Case deletion (METHODS.md section 4): for a test text, remove its top-`k` training
//! texts by a method (or `k` random ones, the baseline), retrain from the same initial
//! weights in the same data order minus them, and measure the rise of its loss. Every
//! retrain is an independent [`DeletionJob`]; jobs that remove the same texts share one
//! retrain ([`retrain_losses`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mnemo_core::backend::Device;
use mnemo_core::model::ids_tensor;
use mnemo_core::rng::{self, Stream};
#[cfg(not(target_family = "wasm"))]
use mnemo_core::train::block_on;
use mnemo_core::train::{Trainer, plan_excluding};
use mnemo_core::{Checkpoint, Corpus, ExperimentSpec, Gpt};
use serde::{Deserialize, Serialize};

use super::{InfluenceError, InfluenceResult, Method, device_err, order_by_score};

/// What a case-deletion retrain removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Removal {
    /// The test text's top-`k` training texts by a method.
    Top(Method),
    /// `k` training texts drawn at random (a seeded draw).
    Random,
}

impl Removal {
    /// The name in `deletion.csv`: the method's key, or `random`.
    pub fn key(self) -> &'static str {
        match self {
            Removal::Top(m) => m.key(),
            Removal::Random => "random",
        }
    }

    /// The name in charts.
    pub fn label(self) -> &'static str {
        match self {
            Removal::Top(m) => m.label(),
            Removal::Random => "random",
        }
    }
}

/// One retrain of case deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionJob {
    /// How the removed texts were chosen.
    pub removal: Removal,
    /// Texts removed.
    pub k: usize,
    /// Random draw (0 for the methods).
    pub draw: usize,
    /// The test text.
    pub test: u32,
    /// The removed training ids, ascending.
    pub removed: Vec<u32>,
}

/// Every retrain of a case deletion, and the test texts' losses before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionPlan {
    /// The test texts (the first `deletion_tests` of the run).
    pub tests: Vec<u32>,
    /// The retrains, by test, then `k`, then method (in the settings' order), then the
    /// random draws.
    pub jobs: Vec<DeletionJob>,
}

impl DeletionPlan {
    /// The distinct removed sets (retrains that give the same model are run once by
    /// [`run_deletion_blocking`]).
    pub fn distinct_retrains(&self) -> usize {
        self.jobs
            .iter()
            .map(|j| &j.removed)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// The jobs of each distinct removed set, in the order the sets are first needed:
    /// the independent parts of a case deletion (set `d`'s retrain serves every job in
    /// `retrains()[d]`).
    pub fn retrains(&self) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = Vec::new();
        for (i, job) in self.jobs.iter().enumerate() {
            match out
                .iter_mut()
                .find(|jobs| self.jobs[jobs[0]].removed == job.removed)
            {
                Some(jobs) => jobs.push(i),
                None => out.push(vec![i]),
            }
        }
        out
    }

    /// The test texts of `jobs`, in order.
    pub fn tests_of(&self, jobs: &[usize]) -> Vec<u32> {
        jobs.iter()
            .filter_map(|&i| self.jobs.get(i))
            .map(|j| j.test)
            .collect()
    }

    /// The rows of `jobs` (one retrain's, see [`DeletionPlan::retrains`]) from the losses
    /// of their test texts under the retrained model (`losses_after[i]` is `jobs[i]`'s)
    /// and the losses before, each with its job index.
    pub fn rows(
        &self,
        jobs: &[usize],
        losses_after: &[f64],
        before: &HashMap<u32, f64>,
    ) -> Vec<(usize, DeletionRow)> {
        jobs.iter()
            .zip(losses_after)
            .filter_map(|(&i, &loss_after)| {
                let job = self.jobs.get(i)?;
                Some((
                    i,
                    DeletionRow {
                        removal: job.removal,
                        k: job.k,
                        draw: job.draw,
                        test: job.test,
                        loss_before: before.get(&job.test).copied().unwrap_or(f64::NAN),
                        loss_after,
                    },
                ))
            })
            .collect()
    }

    /// The result from the rows of any retrains done, in any order (a pool finishes them
    /// out of order): rows in the plan's job order, then summarised.
    pub fn result_of(&self, mut rows: Vec<(usize, DeletionRow)>) -> DeletionResult {
        rows.sort_by_key(|(i, _)| *i);
        deletion_result(rows.into_iter().map(|(_, r)| r).collect())
    }
}

/// The losses of `tests` (text ids of `corpus`) under a retrained model.
pub async fn test_losses(
    model: &Gpt,
    corpus: &Corpus,
    tests: &[u32],
) -> Result<Vec<f64>, InfluenceError> {
    let mut out = Vec::with_capacity(tests.len());
    for &id in tests {
        let tokens = corpus.get(id).map(|x| x.tokens.clone()).unwrap_or_default();
        out.push(text_loss(model, &tokens).await?);
    }
    Ok(out)
}

/// Plan the case deletion of `spec`'s settings from an influence `result` on `corpus`.
/// Random draws come from `rng::stream(spec.seed, Stream::Influence)`, one shuffle of
/// the training ids per job in plan order.
pub fn plan_deletion(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    result: &InfluenceResult,
) -> Result<DeletionPlan, InfluenceError> {
    let settings = spec.influence.as_ref().ok_or(InfluenceError::NoSettings)?;
    let n = result.train.len();
    for &k in &settings.deletion_k {
        if k >= n {
            return Err(InfluenceError::KTooLarge { k, n });
        }
    }
    if settings.deletion_k.is_empty() {
        return Ok(DeletionPlan {
            tests: Vec::new(),
            jobs: Vec::new(),
        });
    }
    if settings.deletion_tests > result.tests.len() {
        return Err(InfluenceError::TooManyDeletionTests {
            asked: settings.deletion_tests,
            available: result.tests.len(),
        });
    }
    let _ = corpus;
    let mut rng = rng::stream(spec.seed, Stream::Influence);
    let mut jobs = Vec::new();
    let tests: Vec<u32> = result
        .tests
        .iter()
        .take(settings.deletion_tests)
        .map(|t| t.test)
        .collect();
    for t in result.tests.iter().take(settings.deletion_tests) {
        for &k in &settings.deletion_k {
            for m in &t.methods {
                let mut removed: Vec<u32> = order_by_score(&result.train, &m.scores)
                    .iter()
                    .take(k)
                    .map(|r| r.train)
                    .collect();
                removed.sort_unstable();
                jobs.push(DeletionJob {
                    removal: Removal::Top(m.method),
                    k,
                    draw: 0,
                    test: t.test,
                    removed,
                });
            }
            for draw in 0..settings.random_draws {
                let mut ids = result.train.clone();
                rng::shuffle(&mut ids, &mut rng);
                ids.truncate(k);
                ids.sort_unstable();
                jobs.push(DeletionJob {
                    removal: Removal::Random,
                    k,
                    draw,
                    test: t.test,
                    removed: ids,
                });
            }
        }
    }
    Ok(DeletionPlan { tests, jobs })
}

/// The spec a retrain runs: the experiment's, without checkpoints or analyses (the
/// seed, hence the initial weights and the data order, unchanged).
pub fn retrain_spec(spec: &ExperimentSpec) -> ExperimentSpec {
    spec.bare_run()
}

/// A trainer for `job` on `device`: the spec's run without the removed texts (same
/// initial weights, same data order minus them; see
/// [`mnemo_core::train::plan_excluding`]). Step it to the end, then measure
/// [`text_loss`] of the job's test text.
pub fn deletion_trainer(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    job: &DeletionJob,
    device: Device,
) -> Result<Trainer, InfluenceError> {
    let exclude: BTreeSet<u32> = job.removed.iter().copied().collect();
    // Fail early (and typed) when the removal leaves nothing to train on.
    plan_excluding(spec, corpus, &exclude)?;
    Ok(Trainer::with_corpus_excluding(
        retrain_spec(spec),
        corpus.clone(),
        device,
        exclude,
    )?)
}

/// Mean token NLL (nats) of `tokens` (BOS first) under `model`, over every target.
pub async fn text_loss(model: &Gpt, tokens: &[u32]) -> Result<f64, InfluenceError> {
    if tokens.len() < 2 {
        return Err(InfluenceError::Device("a text needs 2 tokens".into()));
    }
    let device = model.wte.val().device();
    let t = tokens.len() - 1;
    let ids = ids_tensor(&[tokens[..t].to_vec()], t, 0, &device);
    let targets = ids_tensor(&[tokens[1..].to_vec()], t, 0, &device);
    let nll = -model.token_log_probs(ids, targets).sum();
    let v: f32 = nll.into_scalar_async().await.map_err(device_err)?;
    Ok(v as f64 / t as f64)
}

/// One retrain's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionRow {
    /// How the removed texts were chosen.
    pub removal: Removal,
    /// Texts removed.
    pub k: usize,
    /// Random draw (0 for the methods).
    pub draw: usize,
    /// The test text.
    pub test: u32,
    /// Its loss under the original final model.
    pub loss_before: f64,
    /// Its loss under the retrained final model.
    pub loss_after: f64,
}

impl DeletionRow {
    /// `loss_after - loss_before`.
    pub fn rise(&self) -> f64 {
        self.loss_after - self.loss_before
    }
}

/// The mean loss rise of one removal at one `k`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionSummary {
    /// How the removed texts were chosen.
    pub removal: Removal,
    /// Texts removed.
    pub k: usize,
    /// Mean loss rise over every row (tests, and draws for random).
    pub mean_rise: f64,
    /// Sample standard deviation of the rise over the rows (0 for one row).
    pub sd_rise: f64,
    /// Smallest and largest per-draw mean (mean over tests of each draw; for a method,
    /// its single "draw": both equal `mean_rise`).
    pub draw_min: f64,
    /// See `draw_min`.
    pub draw_max: f64,
    /// Rows summarised.
    pub n: usize,
}

/// Case deletion's rows and their summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionResult {
    /// Every retrain.
    pub rows: Vec<DeletionRow>,
    /// Per (removal, k), removals in the order first seen, `k` ascending.
    pub summary: Vec<DeletionSummary>,
}

/// Summarise deletion rows.
pub fn deletion_result(rows: Vec<DeletionRow>) -> DeletionResult {
    let mut keys: Vec<(Removal, usize)> = Vec::new();
    for r in &rows {
        if !keys.contains(&(r.removal, r.k)) {
            keys.push((r.removal, r.k));
        }
    }
    let first_seen: Vec<Removal> = keys.iter().fold(Vec::new(), |mut v, (m, _)| {
        if !v.contains(m) {
            v.push(*m);
        }
        v
    });
    keys.sort_by_key(|(m, k)| (first_seen.iter().position(|x| x == m), *k));
    let summary = keys
        .into_iter()
        .map(|(removal, k)| {
            let sel: Vec<&DeletionRow> = rows
                .iter()
                .filter(|r| r.removal == removal && r.k == k)
                .collect();
            let n = sel.len();
            let rises: Vec<f64> = sel.iter().map(|r| r.rise()).collect();
            let mean = rises.iter().sum::<f64>() / n.max(1) as f64;
            let sd = if n > 1 {
                (rises.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else {
                0.0
            };
            let mut by_draw: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
            for r in &sel {
                let e = by_draw.entry(r.draw).or_insert((0.0, 0));
                e.0 += r.rise();
                e.1 += 1;
            }
            let draw_means: Vec<f64> = by_draw.values().map(|(s, c)| s / *c as f64).collect();
            DeletionSummary {
                removal,
                k,
                mean_rise: mean,
                sd_rise: sd,
                draw_min: draw_means.iter().copied().fold(f64::INFINITY, f64::min),
                draw_max: draw_means.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                n,
            }
        })
        .collect();
    DeletionResult { rows, summary }
}

/// The test texts' losses under the final weights (`final_ck`), on `device`: the
/// `loss_before` of every deletion row.
pub async fn losses_before(
    final_ck: &Checkpoint,
    corpus: &Corpus,
    tests: &[u32],
    device: &Device,
) -> Result<HashMap<u32, f64>, InfluenceError> {
    let model = Gpt::from_checkpoint(final_ck, &device.clone().autodiff())?;
    let mut out = HashMap::new();
    for &id in tests {
        let tokens = corpus.get(id).map(|i| i.tokens.clone()).unwrap_or_default();
        out.insert(id, text_loss(&model, &tokens).await?);
    }
    Ok(out)
}

/// One retrain: `spec`'s model trained without `job.removed` (same initial weights, same
/// data order minus them), then the losses of `tests` under it. Every job that removes
/// the same set shares this retrain ([`DeletionPlan::retrains`]); retrains are
/// independent, so they run in any order, on threads or web workers.
pub async fn retrain_losses(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    job: &DeletionJob,
    tests: &[u32],
    device: &Device,
) -> Result<Vec<f64>, InfluenceError> {
    let mut trainer = deletion_trainer(spec, corpus, job, device.clone())?;
    while trainer.step().await?.is_some() {}
    test_losses(trainer.model(), corpus, tests).await
}

/// Every job of `plan` on this thread: [`run_deletion_threads`] on one thread.
#[cfg(not(target_family = "wasm"))]
pub fn run_deletion_blocking(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    plan: &DeletionPlan,
    final_ck: &Checkpoint,
    device: &Device,
    on_progress: impl FnMut(usize, usize) -> std::ops::ControlFlow<()>,
) -> Result<DeletionResult, InfluenceError> {
    run_deletion_threads(spec, corpus, plan, final_ck, device, 1, on_progress)
}

/// Case deletion on `threads` threads (natively): each distinct removed set is one part
/// ([`crate::pool::map_threads`]): its retrain, then the loss of every job's test text
/// that removes it. Rows come back in the plan's job order, so the result is
/// the same whatever the thread count. `on_progress(retrains done,
/// distinct retrains)`; `Break` stops handing out retrains and keeps the rows of those
/// finished.
#[cfg(not(target_family = "wasm"))]
pub fn run_deletion_threads(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    plan: &DeletionPlan,
    final_ck: &Checkpoint,
    device: &Device,
    threads: usize,
    on_progress: impl FnMut(usize, usize) -> std::ops::ControlFlow<()>,
) -> Result<DeletionResult, InfluenceError> {
    let before = block_on(losses_before(final_ck, corpus, &plan.tests, device))?;
    let retrains = plan.retrains();
    let parts = crate::pool::map_threads(
        retrains.len(),
        threads,
        |d| {
            let jobs = &retrains[d];
            let losses = block_on(retrain_losses(
                spec,
                corpus,
                &plan.jobs[jobs[0]],
                &plan.tests_of(jobs),
                device,
            ))?;
            Ok::<_, InfluenceError>(plan.rows(jobs, &losses, &before))
        },
        on_progress,
    )?;
    Ok(plan.result_of(parts.into_iter().flat_map(|(_, r)| r).collect()))
}
