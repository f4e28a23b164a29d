//! The memorisation-mitigating regularisers a run can train with (METHODS.md section 5,
//! methods 1-3): the spec's side (names, settings, defaults, ranges). What they compute
//! lives in [`crate::regularise`].
//!
//! In JSON a regulariser is an object tagged by `method`, e.g.
//! `{"method": "loss-truncation", "c": 0.4, "window": 10000}`; settings left out take the
//! reference's defaults (Sakarvadia et al. 2025, code msakarvadia/memorization).

use serde::{Deserialize, Serialize};

use super::{SpecError, check_range, check_usize};

/// Ranges of the regularisers' settings (shared by the spec, the CLI and the form).
pub mod limits {
    /// Loss truncation: the share `c` of sequences dropped.
    pub const TRUNCATION_C: (f64, f64) = (0.01, 0.99);
    /// Loss truncation: recent per-sequence losses kept.
    pub const TRUNCATION_WINDOW: (usize, usize) = (1, 100_000);
    /// Spectral-norm penalty: `lambda`.
    pub const SPECTRAL_LAMBDA: (f64, f64) = (0.0, 100.0);
    /// Example-tied dropout: share of the MLP's hidden units always active.
    pub const DROPOUT_SHARED: (f64, f64) = (0.01, 0.99);
    /// Example-tied dropout: share of the other units tied to each example.
    pub const DROPOUT_TIED: (f64, f64) = (0.01, 1.0);
}

/// A regulariser applied during training (one per run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Regulariser {
    /// (1) Drop the sequences of a batch whose loss is above a quantile of recent losses.
    LossTruncation(LossTruncation),
    /// (2) Add `lambda/2 * sum sigma_max(W)` over the weight matrices.
    SpectralNorm(SpectralNorm),
    /// (3) Example-tied dropout of the MLP's hidden units (Maini et al. 2023).
    ExampleTiedDropout(ExampleTiedDropout),
}

/// Loss truncation (Kang and Hashimoto 2020, as the reference uses it): the sequences of a
/// batch whose mean token loss is above the `(1 - c)` quantile of the last `window`
/// per-sequence losses are left out of the batch's loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossTruncation {
    /// Share of sequences dropped, in the long run (reference: 0.4).
    pub c: f64,
    /// How many recent per-sequence losses the quantile is taken over (reference: 10,000).
    pub window: usize,
}

impl Default for LossTruncation {
    fn default() -> Self {
        LossTruncation {
            c: 0.4,
            window: 10_000,
        }
    }
}

/// Spectral-norm regularisation (Yoshida and Miyato 2017): `lambda/2 * sum sigma_max(W)`
/// over the attention projections (per head) and the MLP matrices, each `sigma_max`
/// estimated by one power iteration per step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpectralNorm {
    /// Weight of the penalty (reference: 0.01).
    pub lambda: f64,
}

impl Default for SpectralNorm {
    fn default() -> Self {
        SpectralNorm { lambda: 0.01 }
    }
}

/// Example-tied dropout (Maini et al. 2023): a share of each MLP's hidden units is always
/// active; each training example is tied to a share of the other units, active only when
/// that example is trained; the tied units are dropped at test time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExampleTiedDropout {
    /// Share of hidden units always active (reference `p_fixed`: 0.2).
    pub shared: f64,
    /// Share of the remaining units tied to each example (reference `p_mem`: 0.1).
    pub tied: f64,
}

impl Default for ExampleTiedDropout {
    fn default() -> Self {
        ExampleTiedDropout {
            shared: 0.2,
            tied: 0.1,
        }
    }
}

impl Regulariser {
    /// The methods' names, as the spec writes them.
    pub const NAMES: [&'static str; 3] =
        ["loss-truncation", "spectral-norm", "example-tied-dropout"];

    /// The method `name` (one of [`Regulariser::NAMES`]) with the reference's defaults.
    pub fn defaults(name: &str) -> Option<Self> {
        match name {
            "loss-truncation" => Some(Regulariser::LossTruncation(LossTruncation::default())),
            "spectral-norm" => Some(Regulariser::SpectralNorm(SpectralNorm::default())),
            "example-tied-dropout" => Some(Regulariser::ExampleTiedDropout(
                ExampleTiedDropout::default(),
            )),
            _ => None,
        }
    }

    /// This method's name.
    pub fn name(&self) -> &'static str {
        match self {
            Regulariser::LossTruncation(_) => Self::NAMES[0],
            Regulariser::SpectralNorm(_) => Self::NAMES[1],
            Regulariser::ExampleTiedDropout(_) => Self::NAMES[2],
        }
    }

    /// Whether the method carries state from step to step (the loss window, the power
    /// iteration's vectors), which a resume point must hold.
    pub fn has_state(&self) -> bool {
        !matches!(self, Regulariser::ExampleTiedDropout(_))
    }

    /// Check the settings against [`limits`].
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            Regulariser::LossTruncation(t) => {
                check_range("training.regulariser.c", t.c, limits::TRUNCATION_C)?;
                check_usize(
                    "training.regulariser.window",
                    t.window,
                    limits::TRUNCATION_WINDOW,
                )
            }
            Regulariser::SpectralNorm(s) => check_range(
                "training.regulariser.lambda",
                s.lambda,
                limits::SPECTRAL_LAMBDA,
            ),
            Regulariser::ExampleTiedDropout(d) => {
                check_range(
                    "training.regulariser.shared",
                    d.shared,
                    limits::DROPOUT_SHARED,
                )?;
                check_range("training.regulariser.tied", d.tied, limits::DROPOUT_TIED)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regularisers_read_with_their_names_and_defaults_and_are_checked() {
        let t: Regulariser =
            serde_json::from_str(r#"{"method": "loss-truncation", "c": 0.3, "window": 50}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t,
            Regulariser::LossTruncation(LossTruncation { c: 0.3, window: 50 })
        );
        for name in Regulariser::NAMES {
            let r: Regulariser = serde_json::from_str(&format!(r#"{{"method": "{name}"}}"#))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(Some(&r), Regulariser::defaults(name).as_ref());
            assert_eq!(r.name(), name);
            assert!(r.validate().is_ok());
            let json = serde_json::to_string(&r).unwrap_or_default();
            assert!(json.contains(&format!(r#""method":"{name}""#)), "{json}");
        }
        assert_eq!(
            Regulariser::defaults("spectral-norm"),
            Some(Regulariser::SpectralNorm(SpectralNorm { lambda: 0.01 }))
        );
        assert_eq!(
            Regulariser::defaults("example-tied-dropout"),
            Some(Regulariser::ExampleTiedDropout(ExampleTiedDropout {
                shared: 0.2,
                tied: 0.1
            }))
        );
        assert!(Regulariser::defaults("dropout").is_none());
        for bad in [
            r#"{"method": "nope"}"#,
            r#"{"method": "spectral-norm", "lambda": 0.1, "surprise": 1}"#,
            r#"{"c": 0.4}"#,
        ] {
            assert!(serde_json::from_str::<Regulariser>(bad).is_err(), "{bad}");
        }
        for (r, field) in [
            (
                Regulariser::LossTruncation(LossTruncation { c: 1.0, window: 10 }),
                "training.regulariser.c",
            ),
            (
                Regulariser::LossTruncation(LossTruncation { c: 0.4, window: 0 }),
                "training.regulariser.window",
            ),
            (
                Regulariser::SpectralNorm(SpectralNorm { lambda: f64::NAN }),
                "training.regulariser.lambda",
            ),
            (
                Regulariser::ExampleTiedDropout(ExampleTiedDropout {
                    shared: 0.2,
                    tied: 0.0,
                }),
                "training.regulariser.tied",
            ),
        ] {
            assert!(
                matches!(r.validate(), Err(SpecError::OutOfRange { field: f, .. }) if f == field),
                "{r:?}"
            );
        }
    }
}
