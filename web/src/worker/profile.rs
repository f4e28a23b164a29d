//! Job: memorisation profiles. Each spec is trained, its panel evaluated checkpoint by
//! checkpoint and its profile estimated; one `Profile` message per model. The size
//! comparison's models are independent, so with `workers > 1` on the CPU backend they are
//! a pool's parts ([`drive`]): helpers train and profile some while this worker trains
//! others (showing its own training progress). A model's numbers depend only on its spec,
//! so the profiles are those one worker computes; they reach the page in the runs' order.

use std::cell::RefCell;

use mnemo_core::{BackendKind, ExperimentSpec};
use mnemo_measures::did::DidResult;
use mnemo_measures::profile::{PanelBuilder, estimate_profile, plan_panel};

use super::pool::{InOrder, OwnTask, Parts, drive};
use super::train::Trained;
use super::{cancelled, device_for, memory_mib, now_ms, post, yield_now};
use crate::protocol::{FromWorker, ToWorker};

/// A profile with the seconds its panel and its estimate took.
type Profiled = (DidResult, f64, f64);

/// Profile every `(spec, label)`: one after another on one worker (or on WebGPU), else on
/// `workers` workers.
pub async fn run(
    runs: Vec<(ExperimentSpec, String)>,
    backend: BackendKind,
    workers: usize,
) -> Result<(), String> {
    if runs.len() < 2 || workers < 2 || backend == BackendKind::Wgpu {
        for (spec, label) in runs {
            let Some((result, panel_s, estimate_s)) = profile(spec, backend, true).await? else {
                return Ok(());
            };
            post(&FromWorker::Profile {
                label,
                result: Box::new(result),
                panel_s,
                estimate_s,
            });
        }
        return Ok(());
    }
    let total = runs.len();
    let mut parts = Runs {
        runs,
        backend,
        own: OwnTask::default(),
        posting: RefCell::default(),
    };
    let driven = drive(&mut parts, workers, backend, |done, workers, memory| {
        post(&FromWorker::ProfilesProgress {
            done,
            total,
            workers,
            memory_mib: memory.iter().copied().fold(0.0, f64::max),
        })
    })
    .await?;
    if driven.stopped {
        post(&FromWorker::Cancelled { step: 0 });
    }
    Ok(())
}

/// A helper's part: run `j`'s profile, answered with [`FromWorker::ProfilePart`].
pub async fn part(spec: ExperimentSpec, backend: BackendKind, j: usize) -> Result<(), String> {
    let Some((result, panel_s, estimate_s)) = profile(spec, backend, false).await? else {
        return Ok(());
    };
    post(&FromWorker::ProfilePart {
        j,
        result: Box::new(result),
        panel_s,
        estimate_s,
        memory_mib: memory_mib(),
    });
    Ok(())
}

/// The runs as a pool's parts. This worker's own run is a task of its own (it yields
/// between its steps), so [`Parts::step`] only looks whether it is done.
struct Runs {
    runs: Vec<(ExperimentSpec, String)>,
    backend: BackendKind,
    /// The run this worker trains.
    own: OwnTask<Result<Option<Profiled>, String>>,
    /// Profiles reach the page in the runs' order as they are ready.
    posting: RefCell<InOrder<Profiled>>,
}

impl Runs {
    /// Keep run `j`'s profile and post every one that is now next in the runs' order.
    fn deliver(&self, j: usize, profiled: &Profiled) {
        self.posting
            .borrow_mut()
            .push(j, profiled.clone(), |k, (result, panel_s, estimate_s)| {
                post(&FromWorker::Profile {
                    label: self.runs.get(k).map(|r| r.1.clone()).unwrap_or_default(),
                    result: Box::new(result),
                    panel_s,
                    estimate_s,
                })
            });
    }
}

impl Parts for Runs {
    type Out = Profiled;

    fn count(&self) -> usize {
        self.runs.len()
    }

    fn message(&self, j: usize) -> ToWorker {
        ToWorker::ProfilePart {
            spec: self.runs[j].0.clone(),
            backend: self.backend,
            j,
        }
    }

    fn answer(&self, msg: FromWorker) -> Option<(usize, Profiled, f64)> {
        match msg {
            FromWorker::ProfilePart {
                j,
                result,
                panel_s,
                estimate_s,
                memory_mib,
            } => {
                let profiled = (*result, panel_s, estimate_s);
                self.deliver(j, &profiled);
                Some((j, profiled, memory_mib))
            }
            _ => None,
        }
    }

    fn begin(&mut self, j: usize) -> Result<(), String> {
        let spec = self.runs.get(j).map(|r| r.0.clone()).ok_or("no such run")?;
        self.own.start(j, profile(spec, self.backend, true));
        Ok(())
    }

    async fn step(&mut self) -> Result<Option<(usize, Profiled)>, String> {
        match self.own.finished().await {
            Some((j, Ok(Some(profiled)))) => {
                self.deliver(j, &profiled);
                Ok(Some((j, profiled)))
            }
            Some((_, Err(e))) => Err(e),
            // Still running, or cancelled (`drive` sees Cancel and stops).
            _ => Ok(None),
        }
    }
}

/// Train, then evaluate the panel and estimate the profile; `None` when cancelled. With
/// `report`, the panel's progress is posted (the training run posts its own).
async fn profile(
    spec: ExperimentSpec,
    backend: BackendKind,
    report: bool,
) -> Result<Option<Profiled>, String> {
    let Some(Trained {
        trainer,
        checkpoints,
    }) = super::train::run(spec.clone(), backend, None, false).await?
    else {
        return Ok(None);
    };
    let settings = spec.profile.clone().unwrap_or_default();
    let steps: Vec<usize> = checkpoints.iter().map(|c| c.step).collect();
    let plan = plan_panel(
        trainer.corpus(),
        &trainer.order(),
        &steps,
        &settings,
        spec.seed,
    )
    .map_err(|e| e.to_string())?;
    let device = device_for(backend).await?;
    let start = now_ms();
    if report {
        post(&FromWorker::PanelProgress {
            done: 0,
            total: checkpoints.len(),
        });
    }
    let mut builder = PanelBuilder::new(&plan, settings.outcome);
    for ck in &checkpoints {
        if cancelled() {
            post(&FromWorker::Cancelled {
                step: trainer.steps_done(),
            });
            return Ok(None);
        }
        builder
            .add_checkpoint(ck, trainer.corpus(), &device)
            .await
            .map_err(|e| e.to_string())?;
        if report {
            post(&FromWorker::PanelProgress {
                done: builder.done(),
                total: checkpoints.len(),
            });
        }
        yield_now().await;
    }
    let panel = builder.finish().map_err(|e| e.to_string())?;
    let panel_s = (now_ms() - start) / 1000.0;
    let start = now_ms();
    let result = estimate_profile(&panel, &settings, spec.seed).map_err(|e| e.to_string())?;
    Ok(Some((result, panel_s, (now_ms() - start) / 1000.0)))
}
