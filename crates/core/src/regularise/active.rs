//! The regulariser a [`crate::Trainer`] applies, with its state: what a step asks of it
//! (the log-probabilities, the objective), what the step reads back into it, and its
//! state in a resume point.

use burn::tensor::{Int, Tensor};

use super::{
    LossWindow, PowerIteration, RegulariserState, TiedUnits, from_bits, to_bits, truncated_loss,
};
use crate::model::Gpt;
use crate::resume::{ResumeError, ResumePoint};
use crate::spec::{ExperimentSpec, Regulariser};

/// The regulariser a trainer applies, with its state.
#[derive(Debug, Clone)]
pub(crate) enum Active {
    None,
    Truncation {
        c: f64,
        window: LossWindow,
        /// Per-sequence losses `[B]` of steps built but not read back yet, in step order.
        pending: Vec<Tensor<1>>,
    },
    Spectral {
        lambda: f64,
        power: PowerIteration,
    },
    Dropout(TiedUnits),
}

impl Active {
    /// The fresh regulariser of `spec`'s training for `model`.
    pub(crate) fn new(spec: &ExperimentSpec, model: &Gpt) -> Self {
        match &spec.training.regulariser {
            None => Active::None,
            Some(Regulariser::LossTruncation(t)) => Active::Truncation {
                c: t.c,
                window: LossWindow::new(t.window),
                pending: Vec::new(),
            },
            Some(Regulariser::SpectralNorm(s)) => Active::Spectral {
                lambda: s.lambda,
                power: PowerIteration::new(model, spec.seed),
            },
            Some(Regulariser::ExampleTiedDropout(d)) => {
                Active::Dropout(TiedUnits::for_model(d, model, spec.seed))
            }
        }
    }

    /// The training forward pass's token log-probabilities of the batch `ids`
    /// (example-tied dropout masks each example's units).
    pub(crate) fn token_log_probs(
        &self,
        model: &Gpt,
        ids: &[u32],
        inputs: Tensor<2, Int>,
        targets: Tensor<2, Int>,
    ) -> Tensor<2> {
        match self {
            Active::Dropout(units) => units.token_log_probs(model, ids, inputs, targets),
            _ => model.token_log_probs(inputs, targets),
        }
    }

    /// The objective to differentiate from the batch's mean token loss `loss`, its
    /// per-token losses `nll` and the mask of scored positions.
    pub(crate) fn objective(
        &mut self,
        model: &Gpt,
        loss: Tensor<1>,
        nll: Tensor<2>,
        mask: Tensor<2>,
    ) -> Tensor<1> {
        match self {
            Active::None | Active::Dropout(_) => loss,
            Active::Truncation { c, window, pending } => {
                let cut = truncated_loss(nll, mask, window.threshold(*c));
                pending.push(cut.per_sequence);
                cut.objective
            }
            Active::Spectral { lambda, power } => loss + power.penalty(model, *lambda),
        }
    }

    /// The per-sequence losses waiting to be read back (loss truncation's).
    pub(crate) fn take_pending(&mut self) -> Vec<Tensor<1>> {
        match self {
            Active::Truncation { pending, .. } => std::mem::take(pending),
            _ => Vec::new(),
        }
    }

    /// The read-back values of [`Active::take_pending`]'s tensors, into the window.
    pub(crate) fn read_back(&mut self, values: &[f32]) {
        if let Active::Truncation { window, .. } = self {
            window.push(values);
        }
    }

    /// The state a resume point keeps (`None` for the stateless ones).
    pub(crate) async fn state(&self) -> Result<Option<RegulariserState>, ResumeError> {
        Ok(match self {
            Active::None | Active::Dropout(_) => None,
            Active::Truncation {
                window, pending, ..
            } => {
                if !pending.is_empty() {
                    return Err(ResumeError::Regulariser(
                        "a step's per-sequence losses are not read back yet (drive the \
                         trainer with step, not step_lazy, before taking a resume point)"
                            .into(),
                    ));
                }
                Some(RegulariserState::LossWindow {
                    losses: to_bits(&window.values()),
                })
            }
            Active::Spectral { power, .. } => Some(RegulariserState::PowerVectors {
                vectors: power
                    .to_host()
                    .await
                    .map_err(ResumeError::Regulariser)?
                    .into_iter()
                    .map(|(shape, v)| (shape, to_bits(&v)))
                    .collect(),
            }),
        })
    }

    /// This fresh regulariser of `spec` with the state the resume point `point` holds
    /// put in (a stateful regulariser needs its state).
    pub(crate) fn restore(
        self,
        spec: &ExperimentSpec,
        model: &Gpt,
        point: &ResumePoint,
    ) -> Result<Active, ResumeError> {
        Ok(match (self, &point.regulariser) {
            (Active::None, None) => Active::None,
            (Active::Dropout(units), None) => Active::Dropout(units),
            (
                Active::Truncation { c, window, .. },
                Some(RegulariserState::LossWindow { losses }),
            ) => Active::Truncation {
                c,
                window: LossWindow::with_values(window.capacity(), &from_bits(losses)),
                pending: Vec::new(),
            },
            (Active::Spectral { lambda, .. }, Some(RegulariserState::PowerVectors { vectors })) => {
                let host: Vec<(Vec<usize>, Vec<f32>)> = vectors
                    .iter()
                    .map(|(shape, v)| (shape.clone(), from_bits(v)))
                    .collect();
                let power = PowerIteration::from_host(model, &host).ok_or_else(|| {
                    ResumeError::Regulariser(
                        "the power-iteration vectors do not fit the model".into(),
                    )
                })?;
                Active::Spectral { lambda, power }
            }
            (_, state) => {
                let want = spec
                    .training
                    .regulariser
                    .as_ref()
                    .map_or("no regulariser", |r| r.name());
                let got = state
                    .as_ref()
                    .map_or("no regulariser state", |s| s.method());
                return Err(ResumeError::Regulariser(format!(
                    "the run trains with {want} but the resume point holds {got}"
                )));
            }
        })
    }
}
