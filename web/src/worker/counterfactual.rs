//! Job: a counterfactual ensemble. Members are independent, so with `workers > 1` on the
//! CPU backend this worker starts `workers - 1` helpers ([`Pool`]) and hands the next
//! member to whoever is free, training members itself between reading their answers. A
//! member's numbers depend only on its index, so the result is the one a single worker
//! computes ([`counterfactual_result_of`] takes members in any order). It yields now and
//! then so Cancel is seen; after Cancel the helpers are stopped and the members scored so
//! far make the result.

use std::cell::RefCell;

use mnemo_core::train::Trainer;
use mnemo_core::{BackendKind, Corpus, ExperimentSpec};
use mnemo_measures::counterfactual::{
    EnsemblePlan, MemberScores, counterfactual_result_of, member_model, plan_ensemble, score_member,
};

use super::pool::Pool;
use super::{cancelled, device_for, memory_mib, now_ms, post, sleep_ms, yield_now};
use crate::protocol::{FromWorker, ToWorker};

/// The most workers an ensemble uses (the page offers up to this many).
pub const MAX_WORKERS: usize = 16;

thread_local! {
    /// A helper's corpus and plan, kept between the members it is given (keyed by the
    /// spec's JSON).
    static PLANNED: RefCell<Option<(String, Corpus, EnsemblePlan)>> = const { RefCell::new(None) };
}

fn plan(spec: &ExperimentSpec) -> Result<(Corpus, EnsemblePlan), String> {
    spec.validate().map_err(|e| e.to_string())?;
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(|e| e.to_string())?;
    let settings = spec.counterfactual.clone().unwrap_or_default();
    let plan = plan_ensemble(&corpus, &settings, spec.seed).map_err(|e| e.to_string())?;
    Ok((corpus, plan))
}

/// Train member `j` to the end and score it (a helper's part).
async fn train_member(
    spec: &ExperimentSpec,
    corpus: &Corpus,
    plan: &EnsemblePlan,
    backend: BackendKind,
    j: usize,
) -> Result<MemberScores, String> {
    let device = device_for(backend).await?;
    let mut trainer = plan
        .member_trainer(j, spec, corpus, device.clone())
        .map_err(|e| e.to_string())?;
    while trainer.step().await.map_err(|e| e.to_string())?.is_some() {}
    finish(&trainer, corpus, plan, backend).await
}

async fn finish(
    trainer: &Trainer,
    corpus: &Corpus,
    plan: &EnsemblePlan,
    backend: BackendKind,
) -> Result<MemberScores, String> {
    let device = device_for(backend).await?;
    let model = member_model(trainer, &device)
        .await
        .map_err(|e| e.to_string())?;
    score_member(&model, corpus, plan)
        .await
        .map_err(|e| e.to_string())
}

/// A helper's part: member `j` of `spec`'s ensemble, answered with
/// [`FromWorker::MemberScored`].
pub async fn member(spec: ExperimentSpec, backend: BackendKind, j: usize) -> Result<(), String> {
    let key = spec.to_json();
    let cached = PLANNED.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|(k, _, _)| *k == key)
            .map(|(_, c, pl)| (c.clone(), pl.clone()))
    });
    let (corpus, plan) = match cached {
        Some(cp) => cp,
        None => {
            let (c, pl) = plan(&spec)?;
            PLANNED.with(|p| *p.borrow_mut() = Some((key, c.clone(), pl.clone())));
            (c, pl)
        }
    };
    let scores = train_member(&spec, &corpus, &plan, backend, j).await?;
    post(&FromWorker::MemberScored {
        j,
        scores,
        memory_mib: memory_mib(),
    });
    Ok(())
}

/// Train and score the ensemble of `spec`'s `counterfactual` section on `workers`
/// workers (this one included).
pub async fn run(spec: ExperimentSpec, backend: BackendKind, workers: usize) -> Result<(), String> {
    let (corpus, plan) = plan(&spec)?;
    let device = device_for(backend).await?;
    let total = plan.models();
    let wanted = match backend {
        BackendKind::Wgpu => 1,
        _ => workers.clamp(1, MAX_WORKERS).min(total.max(1)),
    };
    let mut pool = match Pool::start(wanted - 1) {
        Ok(p) => p,
        Err(e) => {
            // A browser that cannot start workers from a worker: one worker does it all.
            web_sys::console::warn_1(&format!("no helper workers ({e}); training alone").into());
            Pool::start(0)?
        }
    };
    let workers = pool.len() + 1;
    let start = now_ms();
    let mut memory = vec![memory_mib()];
    let progress = |done: usize, memory: &[f64]| {
        post(&FromWorker::EnsembleProgress {
            done,
            total,
            elapsed_s: (now_ms() - start) / 1000.0,
            workers,
            memory_mib: memory.to_vec(),
        })
    };
    progress(0, &memory);
    let mut next = 0usize;
    let mut done: Vec<(usize, MemberScores)> = Vec::with_capacity(total);
    let mut own: Option<(usize, Trainer)> = None;
    let mut last_yield = now_ms();
    let mut stopped = false;
    while done.len() < total {
        for (h, msg) in pool.take() {
            match msg {
                FromWorker::Ready => pool.set_idle(h),
                FromWorker::MemberScored {
                    j,
                    scores,
                    memory_mib,
                } => {
                    done.push((j, scores));
                    if memory.len() < h + 2 {
                        memory.resize(h + 2, 0.0);
                    }
                    memory[h + 1] = memory_mib;
                    pool.set_idle(h);
                    progress(done.len(), &memory);
                }
                FromWorker::Failed { message } => {
                    return Err(format!("helper worker {}: {message}", h + 1));
                }
                _ => {}
            }
        }
        for h in pool.idle() {
            if next < total {
                pool.assign(
                    h,
                    &ToWorker::Member {
                        spec: spec.clone(),
                        backend,
                        j: next,
                    },
                );
                next += 1;
            }
        }
        if own.is_none() && next < total {
            let trainer = plan
                .member_trainer(next, &spec, &corpus, device.clone())
                .map_err(|e| e.to_string())?;
            own = Some((next, trainer));
            next += 1;
        }
        let mut finished = false;
        match &mut own {
            Some((j, trainer)) => {
                if trainer.step().await.map_err(|e| e.to_string())?.is_none() {
                    let scores = finish(trainer, &corpus, &plan, backend).await?;
                    done.push((*j, scores));
                    own = None;
                    memory[0] = memory_mib();
                    progress(done.len(), &memory);
                    finished = true;
                }
            }
            // Every member handed out: wait for the helpers' answers.
            None => sleep_ms(10).await,
        }
        // Yield after each member and otherwise about every 50 ms: often enough for
        // Cancel and the helpers' answers, rarely enough that the timer's clamping does
        // not slow training.
        if finished || now_ms() - last_yield > 50.0 {
            yield_now().await;
            last_yield = now_ms();
        }
        if cancelled() {
            stopped = done.len() < total;
            break;
        }
    }
    drop(pool);
    if done.is_empty() {
        post(&FromWorker::Cancelled { step: 0 });
        return Ok(());
    }
    post(&FromWorker::Counterfactual {
        result: Box::new(counterfactual_result_of(&plan, &corpus, &done)),
        cancelled: stopped,
        elapsed_s: (now_ms() - start) / 1000.0,
    });
    Ok(())
}
