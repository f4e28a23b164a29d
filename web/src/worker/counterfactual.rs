//! Job: a counterfactual ensemble. Members are independent, so they are a pool's parts
//! ([`drive`]): with `workers > 1` on the CPU backend, helpers train members while this
//! worker trains others. A member's numbers depend only on its index, so the result is
//! the one a single worker computes ([`counterfactual_result_of`] takes members in any
//! order); after Cancel the members scored so far make the result.

use std::cell::RefCell;
use std::rc::Rc;

use mnemo_core::backend::Device;
use mnemo_core::train::Trainer;
use mnemo_core::{BackendKind, Corpus, ExperimentSpec};
use mnemo_measures::counterfactual::{
    EnsemblePlan, MemberScores, counterfactual_result_of, member_model, plan_ensemble, run_member,
    score_member,
};

use super::pool::{Parts, drive};
use super::{device_for, memory_mib, now_ms, post};
use crate::protocol::{FromWorker, ToWorker};

/// A spec's corpus and ensemble plan.
type Planned = Rc<(Corpus, EnsemblePlan)>;

thread_local! {
    /// A helper's corpus and plan, kept between the members it is given (keyed by the
    /// spec's JSON).
    static PLANNED: RefCell<Option<(String, Planned)>> = const { RefCell::new(None) };
}

fn plan(spec: &ExperimentSpec) -> Result<(Corpus, EnsemblePlan), String> {
    spec.validate().map_err(|e| e.to_string())?;
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
        .map_err(|e| e.to_string())?;
    let settings = spec.counterfactual.clone().unwrap_or_default();
    let plan = plan_ensemble(&corpus, &settings, spec.seed).map_err(|e| e.to_string())?;
    Ok((corpus, plan))
}

/// A helper's part: member `j` of `spec`'s ensemble, answered with
/// [`FromWorker::MemberScored`].
pub async fn member(spec: ExperimentSpec, backend: BackendKind, j: usize) -> Result<(), String> {
    let key = spec.to_json();
    let cached = PLANNED.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|(k, _)| *k == key)
            .map(|(_, planned)| planned.clone())
    });
    let planned = match cached {
        Some(planned) => planned,
        None => {
            let planned = Rc::new(plan(&spec)?);
            PLANNED.with(|p| *p.borrow_mut() = Some((key, planned.clone())));
            planned
        }
    };
    let (corpus, plan) = &*planned;
    let device = device_for(backend).await?;
    let scores = run_member(&spec, corpus, plan, j, &device)
        .await
        .map_err(|e| e.to_string())?;
    post(&FromWorker::MemberScored {
        j,
        scores,
        memory_mib: memory_mib(),
    });
    Ok(())
}

/// The ensemble's members as a pool's parts.
struct Members {
    spec: ExperimentSpec,
    backend: BackendKind,
    corpus: Corpus,
    plan: EnsemblePlan,
    device: Device,
    own: Option<(usize, Trainer)>,
}

impl Parts for Members {
    type Out = MemberScores;

    fn count(&self) -> usize {
        self.plan.models()
    }

    fn message(&self, j: usize) -> ToWorker {
        ToWorker::Member {
            spec: self.spec.clone(),
            backend: self.backend,
            j,
        }
    }

    fn answer(&self, msg: FromWorker) -> Option<(usize, MemberScores, f64)> {
        match msg {
            FromWorker::MemberScored {
                j,
                scores,
                memory_mib,
            } => Some((j, scores, memory_mib)),
            _ => None,
        }
    }

    fn begin(&mut self, j: usize) -> Result<(), String> {
        let trainer = self
            .plan
            .member_trainer(j, &self.spec, &self.corpus, self.device.clone())
            .map_err(|e| e.to_string())?;
        self.own = Some((j, trainer));
        Ok(())
    }

    async fn step(&mut self) -> Result<Option<(usize, MemberScores)>, String> {
        let Some((j, trainer)) = &mut self.own else {
            return Ok(None);
        };
        if trainer.step().await.map_err(|e| e.to_string())?.is_some() {
            return Ok(None);
        }
        let j = *j;
        let model = member_model(trainer, &self.device)
            .await
            .map_err(|e| e.to_string())?;
        let scores = score_member(&model, &self.corpus, &self.plan)
            .await
            .map_err(|e| e.to_string())?;
        self.own = None;
        Ok(Some((j, scores)))
    }
}

/// Train and score the ensemble of `spec`'s `counterfactual` section on `workers`
/// workers (this one included; WebGPU trains alone).
pub async fn run(spec: ExperimentSpec, backend: BackendKind, workers: usize) -> Result<(), String> {
    let (corpus, plan) = plan(&spec)?;
    let device = device_for(backend).await?;
    let total = plan.models();
    let start = now_ms();
    let mut members = Members {
        spec,
        backend,
        corpus,
        plan,
        device,
        own: None,
    };
    let driven = drive(&mut members, workers, backend, |done, workers, memory| {
        post(&FromWorker::EnsembleProgress {
            done,
            total,
            elapsed_s: (now_ms() - start) / 1000.0,
            workers,
            memory_mib: memory.to_vec(),
        })
    })
    .await?;
    if driven.done.is_empty() {
        post(&FromWorker::Cancelled { step: 0 });
        return Ok(());
    }
    post(&FromWorker::Counterfactual {
        result: Box::new(counterfactual_result_of(
            &members.plan,
            &members.corpus,
            &driven.done,
        )),
        cancelled: driven.stopped,
        elapsed_s: (now_ms() - start) / 1000.0,
    });
    Ok(())
}
