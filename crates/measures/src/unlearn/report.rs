//! What a mitigation run reports beside its table: the summary written as
//! `mitigation.json` and the reference's published result for each method.

use serde::{Deserialize, Serialize};

use super::{Method, MethodResult, MitigationContext};
use crate::tinymem::Memorisation;

/// A mitigation run: the untouched model's measures, the sets and every method's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MitigationSummary {
    /// The spec's name.
    pub spec_name: String,
    /// The model (a built-in's name, a checkpoint's path, or the page's description).
    pub model: String,
    /// `noise` or `backdoor`.
    pub data: String,
    /// Memorised share of the untouched model.
    pub memorised_before: f64,
    /// Share reproducing the clean window (noise data).
    pub clean_before: Option<f64>,
    /// Test accuracy of the untouched model.
    pub accuracy_before: f64,
    /// Test perplexity of the untouched model.
    pub perplexity_before: f64,
    /// Examples in the forget set.
    pub forget_set: usize,
    /// Examples in the retain set.
    pub retain_set: usize,
    /// One row per method and setting, in the order run.
    pub results: Vec<MethodResult>,
}

impl MitigationSummary {
    /// The summary of `ctx` with no method run yet.
    pub fn new(ctx: &MitigationContext, spec_name: &str, model: &str) -> Self {
        MitigationSummary {
            spec_name: spec_name.to_string(),
            model: model.to_string(),
            data: if ctx.is_backdoor() {
                "backdoor"
            } else {
                "noise"
            }
            .into(),
            memorised_before: ctx.before.fraction(),
            clean_before: ctx.before.clean_fraction(),
            accuracy_before: ctx.quality_before.accuracy,
            perplexity_before: ctx.quality_before.perplexity,
            forget_set: ctx.data.forget.len(),
            retain_set: ctx.data.retain.len(),
            results: Vec::new(),
        }
    }

    /// Whether the data carries a backdoor.
    pub fn is_backdoor(&self) -> bool {
        self.data == "backdoor"
    }
}

impl MitigationContext {
    /// Whether the data carries a backdoor (otherwise it is noised).
    pub fn is_backdoor(&self) -> bool {
        matches!(self.before, Memorisation::Backdoor(_))
    }
}

/// The reference's result for a method (METHODS.md section 5: Sakarvadia et al.'s
/// table, 2-layer models on MULT data, each method at its best setting).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReferenceResult {
    /// Test accuracy after, as a fraction.
    pub accuracy: f64,
    /// Memorised share after, as a fraction.
    pub memorised: f64,
}

/// The reference's result for `method` on noise (`backdoor` false) or backdoor data;
/// `None` for the methods its table does not list (the fine-tunes).
pub fn reference_result(method: Method, backdoor: bool) -> Option<ReferenceResult> {
    // (noise: accuracy, memorised), (backdoor: accuracy, memorised), in percent.
    let (noise, bd) = match method {
        Method::BalancedSubnet => ((96.4, 0.0), (92.1, 0.0)),
        Method::Subnet => ((93.2, 0.0), (87.1, 0.0)),
        Method::HardConcrete => ((90.0, 0.0), (89.1, 0.0)),
        Method::Slimming => ((90.7, 0.0), (88.2, 0.0)),
        Method::IntegratedGradients => ((86.1, 0.0), (89.8, 0.0)),
        Method::Activations => ((83.8, 0.0), (89.6, 0.0)),
        Method::ZeroOut => ((90.0, 0.6), (92.5, 96.1)),
        Method::Greedy => ((83.3, 0.0), (77.8, 4.3)),
        Method::Durable => ((86.5, 0.0), (69.8, 9.4)),
        Method::DurableAggregate => ((85.4, 0.0), (78.8, 29.0)),
        Method::SecondOrder => ((91.2, 0.0), (92.3, 94.9)),
        Method::LossTruncation
        | Method::SpectralNorm
        | Method::ExampleTiedDropout
        | Method::FinetuneClean
        | Method::FinetuneExtra
        | Method::FinetuneBoth => return None,
    };
    let (accuracy, memorised) = if backdoor { bd } else { noise };
    Some(ReferenceResult {
        accuracy: accuracy / 100.0,
        memorised: memorised / 100.0,
    })
}
