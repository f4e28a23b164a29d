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
    /// Transformer blocks of the model (picks the reference's 2- or 4-layer column;
    /// runs kept before this field read as 2).
    #[serde(default = "two")]
    pub layers: usize,
}

fn two() -> usize {
    2
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
            layers: ctx.spec.model.n_layers,
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
/// table, 2- and 4-layer models on MULT data, each method at its best setting).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReferenceResult {
    /// Test accuracy after, as a fraction.
    pub accuracy: f64,
    /// Memorised share after, as a fraction.
    pub memorised: f64,
}

/// The reference's result for `method` on noise (`backdoor` false) or backdoor data, for
/// a model of `layers` blocks (the 4-layer column from 4 blocks up, the 2-layer column
/// below); `None` for the methods its table does not list (the regularisers and the
/// fine-tunes).
pub fn reference_result(method: Method, backdoor: bool, layers: usize) -> Option<ReferenceResult> {
    // Accuracy and memorised in percent: noise 2 layers, noise 4, backdoor 2, backdoor 4.
    let cols: [(f64, f64); 4] = match method {
        Method::BalancedSubnet => [(96.4, 0.0), (96.9, 0.0), (92.1, 0.0), (96.7, 0.0)],
        Method::Subnet => [(93.2, 0.0), (93.3, 0.25), (87.1, 0.0), (76.4, 0.0)],
        Method::HardConcrete => [(90.0, 0.0), (92.6, 1.6), (89.1, 0.0), (94.3, 32.6)],
        Method::Slimming => [(90.7, 0.0), (93.0, 1.65), (88.2, 0.0), (92.6, 1.8)],
        Method::IntegratedGradients => [(86.1, 0.0), (90.6, 0.6), (89.8, 0.0), (94.4, 0.0)],
        Method::Activations => [(83.8, 0.0), (90.5, 0.3), (89.6, 0.0), (95.0, 0.0)],
        Method::ZeroOut => [(90.0, 0.6), (91.2, 20.7), (92.5, 96.1), (96.8, 99.4)],
        Method::Greedy => [(83.3, 0.0), (90.6, 1.4), (77.8, 4.3), (92.6, 78.5)],
        Method::Durable => [(86.5, 0.0), (94.7, 1.3), (69.8, 9.4), (89.0, 24.3)],
        Method::DurableAggregate => [(85.4, 0.0), (92.2, 1.9), (78.8, 29.0), (91.6, 31.1)],
        Method::SecondOrder => [(91.2, 0.0), (88.2, 0.6), (92.3, 94.9), (95.1, 96.4)],
        Method::LossTruncation
        | Method::SpectralNorm
        | Method::ExampleTiedDropout
        | Method::FinetuneClean
        | Method::FinetuneExtra
        | Method::FinetuneBoth => return None,
    };
    let (accuracy, memorised) = cols[2 * usize::from(backdoor) + usize::from(layers >= 4)];
    Some(ReferenceResult {
        accuracy: accuracy / 100.0,
        memorised: memorised / 100.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_column_follows_data_and_layers() {
        let r = |backdoor, layers| {
            reference_result(Method::ZeroOut, backdoor, layers).map(|r| {
                (
                    (1000.0 * r.accuracy).round(),
                    (1000.0 * r.memorised).round(),
                )
            })
        };
        assert_eq!(r(false, 2), Some((900.0, 6.0)));
        assert_eq!(r(false, 4), Some((912.0, 207.0)));
        assert_eq!(r(true, 2), Some((925.0, 961.0)));
        assert_eq!(r(true, 4), Some((968.0, 994.0)));
        assert_eq!(r(false, 1), r(false, 2));
        assert_eq!(r(true, 8), r(true, 4));
        assert_eq!(reference_result(Method::FinetuneBoth, false, 2), None);
    }
}
