//! The mitigation section of a spec (METHODS.md section 5): TinyMem's post-hoc
//! unlearning methods with their settings, the model they start from and the retain
//! set's size. The methods themselves live in `mnemo_measures::unlearn`; their names and
//! settings live here so that a spec (and a link) can carry them.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{SpecError, check_usize};

/// A method name or setting that cannot be used.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum MethodError {
    /// A method name that is not one of [`Method::ALL`].
    #[error("unknown method {0:?}; the methods are {list}", list = Method::names().join(", "))]
    UnknownMethod(String),
    /// A regulariser's settings that do not fit (out of range, or another method's).
    #[error("regulariser: {0}")]
    Regulariser(String),
    /// A ratio outside `(0, 1)` or a setting outside its range.
    #[error("{field} = {value} is impossible: {why}")]
    Setting {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: f64,
        /// The allowed range.
        why: &'static str,
    },
}

/// The eleven post-hoc methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Regulariser: loss truncation during training (trains a model from scratch).
    LossTruncation,
    /// Regulariser: the spectral-norm penalty during training (trains from scratch).
    SpectralNorm,
    /// Regulariser: example-tied dropout during training (trains from scratch).
    ExampleTiedDropout,
    /// Fine-tune: a few epochs on the clean versions of the memorised sequences.
    FinetuneClean,
    /// Fine-tune: a few epochs on the clean training data without the memorised sequences.
    FinetuneExtra,
    /// Fine-tune: a few epochs on both.
    FinetuneBoth,
    /// Neuron level: the forget-loss change when the neuron alone is zeroed.
    ZeroOut,
    /// Neuron level: mean suffix activation times the norm of the output weights.
    Activations,
    /// Neuron level: integrated gradients of the target tokens' probability.
    IntegratedGradients,
    /// Neuron level: learned coefficients with an L1 penalty.
    Slimming,
    /// Neuron level: hard-concrete L0 gates.
    HardConcrete,
    /// Weight level: repeatedly zero the weight with the largest `w * grad`.
    Greedy,
    /// Weight level: top `|grad|` of the forget loss per MLP matrix.
    Durable,
    /// Weight level: top `|grad|` of the forget loss over all MLP weights.
    DurableAggregate,
    /// Weight level: optimal-brain-surgeon saliency with a block empirical Fisher.
    SecondOrder,
    /// Weight level: edge-popup masks that maximise the forget loss.
    Subnet,
    /// Weight level: edge-popup masks on a balance of forget and retain losses.
    BalancedSubnet,
}

/// The family of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Trains a new model with a regulariser (the same spec, seed and data order).
    Regulariser,
    /// Trains the model further on chosen data.
    FineTune,
    /// Scores MLP neurons.
    Neuron,
    /// Scores MLP weights.
    Weight,
}

impl Kind {
    /// Its name in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Regulariser => "regulariser",
            Kind::FineTune => "fine-tune",
            Kind::Neuron => "neuron",
            Kind::Weight => "weight",
        }
    }
}

impl Method {
    /// Every method, in the order of METHODS.md.
    pub const ALL: [Method; 17] = [
        Method::LossTruncation,
        Method::SpectralNorm,
        Method::ExampleTiedDropout,
        Method::FinetuneClean,
        Method::FinetuneExtra,
        Method::FinetuneBoth,
        Method::ZeroOut,
        Method::Activations,
        Method::IntegratedGradients,
        Method::Slimming,
        Method::HardConcrete,
        Method::Greedy,
        Method::Durable,
        Method::DurableAggregate,
        Method::SecondOrder,
        Method::Subnet,
        Method::BalancedSubnet,
    ];

    /// Its name in specs, the CLI and the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Method::LossTruncation => "loss-truncation",
            Method::SpectralNorm => "spectral-norm",
            Method::ExampleTiedDropout => "example-tied-dropout",
            Method::FinetuneClean => "finetune-clean",
            Method::FinetuneExtra => "finetune-extra",
            Method::FinetuneBoth => "finetune-both",
            Method::ZeroOut => "zero-out",
            Method::Activations => "activations",
            Method::IntegratedGradients => "integrated-gradients",
            Method::Slimming => "slimming",
            Method::HardConcrete => "hard-concrete",
            Method::Greedy => "greedy",
            Method::Durable => "durable",
            Method::DurableAggregate => "durable-aggregate",
            Method::SecondOrder => "second-order",
            Method::Subnet => "subnet",
            Method::BalancedSubnet => "balanced-subnet",
        }
    }

    /// Every name.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|m| m.name()).collect()
    }

    /// The method of this name.
    pub fn from_name(name: &str) -> Result<Method, MethodError> {
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.name() == name)
            .ok_or_else(|| MethodError::UnknownMethod(name.to_string()))
    }

    /// Its family.
    pub fn kind(self) -> Kind {
        match self {
            Method::LossTruncation | Method::SpectralNorm | Method::ExampleTiedDropout => {
                Kind::Regulariser
            }
            Method::FinetuneClean | Method::FinetuneExtra | Method::FinetuneBoth => Kind::FineTune,
            Method::ZeroOut
            | Method::Activations
            | Method::IntegratedGradients
            | Method::Slimming
            | Method::HardConcrete => Kind::Neuron,
            _ => Kind::Weight,
        }
    }
}

/// One method with its settings. [`MethodSettings::defaults`] gives the reference's
/// defaults (where the reference's scripts set them; otherwise the choice named there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSettings {
    /// The method.
    pub method: Method,
    /// Share of neurons (per layer) or weights (per matrix, or of all MLP weights) to
    /// zero, in `(0, 1)`.
    pub ratio: f64,
    /// Optimisation steps (fine-tunes: epochs over their data; Slimming, Hard Concrete:
    /// Adam steps on the forget set;
    /// Subnet, BalancedSubnet: epochs over the forget set).
    pub epochs: usize,
    /// Learning rate (Slimming, Hard Concrete: Adam; Subnet, BalancedSubnet: SGD).
    pub lr: f64,
    /// Weight of the sparsity penalty (Slimming's L1, Hard Concrete's L0).
    pub sparsity: f64,
    /// BalancedSubnet's `a` in `-(1 - a) L_forget + a L_retain`.
    pub alpha: f64,
    /// Integrated Gradients' steps from 0 to the activation.
    pub ig_steps: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// A regulariser's own settings (the regulariser methods only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regulariser: Option<super::regulariser::Regulariser>,
}

impl MethodSettings {
    /// The reference's defaults for `method`: ratio 0.01 for the neuron methods and
    /// Durable, 0.001 for Durable-Aggregate and Second-Order, 1e-4 for Greedy (one
    /// weight per step, so its time grows with the ratio), 0.05 for the subnets; Adam lr
    /// 0.1 and penalty 1000 for Slimming and Hard Concrete; SGD lr 0.1 (momentum 0.9,
    /// weight decay 5e-4) for the subnets, `a` = 0.7; 20 IG steps. The fine-tunes train 5
    /// epochs with the spec's AdamW (its weight decay, betas and batch size) at lr 1e-3,
    /// the TinyMem models' training rate; the ratio means nothing to them.
    pub fn defaults(method: Method) -> Self {
        let ratio = match method {
            Method::Greedy => 1e-4,
            Method::DurableAggregate | Method::SecondOrder => 1e-3,
            Method::Subnet | Method::BalancedSubnet => 0.05,
            _ => 0.01,
        };
        let epochs = match method {
            Method::FinetuneClean | Method::FinetuneExtra | Method::FinetuneBoth => 5,
            Method::Slimming | Method::HardConcrete => 50,
            Method::Subnet => 5,
            Method::BalancedSubnet => 20,
            _ => 1,
        };
        let lr = match method.kind() {
            Kind::FineTune => 1e-3,
            _ => 0.1,
        };
        MethodSettings {
            method,
            ratio,
            epochs,
            lr,
            sparsity: 1000.0,
            alpha: 0.7,
            ig_steps: 20,
            batch: 32,
            regulariser: super::regulariser::Regulariser::defaults(method.name()),
        }
    }

    /// Check every setting.
    pub fn validate(&self) -> Result<(), MethodError> {
        let bad = |field, value: f64, why| Err(MethodError::Setting { field, value, why });
        match (&self.regulariser, self.method.kind()) {
            (Some(r), Kind::Regulariser) if r.name() == self.method.name() => {
                if let Err(e) = r.validate() {
                    return Err(MethodError::Regulariser(e.to_string()));
                }
            }
            (None, k) if k != Kind::Regulariser => {}
            _ => {
                return Err(MethodError::Regulariser(format!(
                    "{} needs its own regulariser settings and no other method takes any",
                    self.method.name()
                )));
            }
        }
        if !(self.ratio > 0.0 && self.ratio < 1.0) {
            return bad("ratio", self.ratio, "a share strictly between 0 and 1");
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return bad("epochs", self.epochs as f64, "1 to 10,000");
        }
        if !(self.lr > 0.0 && self.lr <= 10.0) {
            return bad("lr", self.lr, "above 0, at most 10");
        }
        if !(self.sparsity >= 0.0 && self.sparsity <= 1e6) {
            return bad("sparsity", self.sparsity, "0 to 1e6");
        }
        if !(self.alpha >= 0.0 && self.alpha <= 1.0) {
            return bad("alpha", self.alpha, "0 to 1");
        }
        if self.ig_steps == 0 || self.ig_steps > 1000 {
            return bad("ig_steps", self.ig_steps as f64, "1 to 1,000");
        }
        if self.batch == 0 || self.batch > 1024 {
            return bad("batch", self.batch as f64, "1 to 1,024");
        }
        Ok(())
    }

    /// The settings as one CSV cell, e.g. `ratio=0.01`.
    pub fn label(&self) -> String {
        if let Some(r) = &self.regulariser {
            return match r {
                super::regulariser::Regulariser::LossTruncation(t) => {
                    format!("c={} window={}", t.c, t.window)
                }
                super::regulariser::Regulariser::SpectralNorm(n) => format!("lambda={}", n.lambda),
                super::regulariser::Regulariser::ExampleTiedDropout(d) => {
                    format!("shared={} tied={}", d.shared, d.tied)
                }
            };
        }
        if self.method.kind() == Kind::FineTune {
            return format!("epochs={} lr={}", self.epochs, self.lr);
        }
        let mut s = format!("ratio={}", self.ratio);
        match self.method {
            Method::Slimming | Method::HardConcrete => {
                s += &format!(
                    " steps={} lr={} penalty={}",
                    self.epochs, self.lr, self.sparsity
                )
            }
            Method::Subnet => s += &format!(" epochs={} lr={}", self.epochs, self.lr),
            Method::BalancedSubnet => {
                s += &format!(" epochs={} lr={} a={}", self.epochs, self.lr, self.alpha)
            }
            Method::IntegratedGradients => s += &format!(" steps={}", self.ig_steps),
            _ => {}
        }
        s
    }
}

/// Clean training examples in the retain set, by default.
pub const DEFAULT_RETAIN: usize = 64;

/// The retain set of [`MethodSettings::headline`].
pub const HEADLINE_RETAIN: usize = 256;

impl MethodSettings {
    /// The subnets at the setting where the README's sweep on the built-in models found
    /// the reference's headline (BalancedSubnet forgets everything at about unchanged
    /// accuracy; Subnet forgets at a large accuracy cost): `ratio` of each matrix, 80
    /// epochs, SGD lr 0.5, `a` = 0.9, with [`HEADLINE_RETAIN`] retain examples. The
    /// reference's own lr 0.1 and 20 epochs leave most of these models' memorisation in
    /// place (README, Mitigation).
    pub fn headline(method: Method, ratio: f64) -> Self {
        MethodSettings {
            ratio,
            epochs: 80,
            lr: 0.5,
            alpha: 0.9,
            ..MethodSettings::defaults(method)
        }
    }
}

fn default_retain() -> usize {
    DEFAULT_RETAIN
}

/// Settings of a mitigation run: which model, which methods (each with its settings;
/// a ratio sweep is the same method listed at several ratios), and the retain set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MitigationSpec {
    /// A built-in trained model to start from (`tinymem-noise-2l`, `tinymem-noise-4l`,
    /// `tinymem-backdoor-2l`); without one, the spec's own model (trained first, or in
    /// the page the last trained model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The methods to run, in order.
    pub methods: Vec<MethodSettings>,
    /// Clean training examples in the retain set.
    #[serde(default = "default_retain")]
    pub retain: usize,
}

impl MitigationSpec {
    /// Every method at its reference default, on `model`.
    pub fn all_defaults(model: Option<&str>) -> Self {
        MitigationSpec {
            model: model.map(str::to_string),
            methods: Method::ALL
                .iter()
                .map(|&m| MethodSettings::defaults(m))
                .collect(),
            retain: DEFAULT_RETAIN,
        }
    }

    /// Check the section: 1 to 64 runs, each method's settings, the retain set's size
    /// and the model's name.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_usize("mitigation.methods (runs)", self.methods.len(), (1, 64))?;
        check_usize("mitigation.retain", self.retain, (1, 10_000))?;
        for (i, m) in self.methods.iter().enumerate() {
            m.validate().map_err(|e| {
                SpecError::Inconsistent(format!(
                    "mitigation.methods[{i}] ({}): {e}",
                    m.method.name()
                ))
            })?;
        }
        if let Some(name) = &self.model
            && !crate::builtin::names().contains(&name.as_str())
        {
            return Err(SpecError::Inconsistent(format!(
                "mitigation.model {name:?} is not a built-in model; the built-in models are {}",
                crate::builtin::names().join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExperimentSpec;

    #[test]
    fn a_mitigation_section_round_trips_and_is_checked() {
        let mut spec = ExperimentSpec::tinymem_backdoor(2, 60);
        spec.mitigation = Some(MitigationSpec::all_defaults(Some("tinymem-backdoor-2l")));
        let back = ExperimentSpec::from_json(&spec.to_json()).unwrap();
        assert_eq!(back, spec);
        assert_eq!(
            back.mitigation.as_ref().map(|m| m.methods.len()),
            Some(Method::ALL.len())
        );

        let mut bad = spec.clone();
        if let Some(m) = bad.mitigation.as_mut() {
            m.methods[9].ratio = 1.0;
        }
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("mitigation.methods[9] (slimming)"), "{e}");
        assert!(e.contains("ratio = 1 is impossible"), "{e}");

        let mut bad = spec.clone();
        if let Some(m) = bad.mitigation.as_mut() {
            m.model = Some("gpt-5".into());
        }
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("not a built-in model")
        );

        let mut bad = spec;
        if let Some(m) = bad.mitigation.as_mut() {
            m.methods.clear();
        }
        assert!(bad.validate().is_err());
        let unknown = r#"{"methods":[{"method":"forget-all","ratio":0.1,"epochs":1,"lr":0.1,"sparsity":0,"alpha":0.5,"ig_steps":1,"batch":1}]}"#;
        assert!(serde_json::from_str::<MitigationSpec>(unknown).is_err());
        assert_eq!(
            Method::from_name("forget-all"),
            Err(MethodError::UnknownMethod("forget-all".into()))
        );
    }
}
